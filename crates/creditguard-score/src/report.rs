//! `creditguard report`: the result tables of a period for people — a terminal summary and a
//! self-contained HTML page (inline CSS and SVG, nothing fetched) with a timeline per case of the
//! learner's sessions by device, the flags and the credit claims.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use creditguard_contract::time::{civil_from_days, format_day, format_rfc3339_us};
use creditguard_contract::{Case, Credit, Flag};
use creditguard_lake::Lake;

use crate::events::{read_sessions, SessionSpan};
use crate::tables::{self, ClaimIssue, Progress};
use crate::Result;

use creditguard_contract::time::DAY_US;

/// Flags this many days before the report's first day are still read, for cases whose flag list
/// reaches back into the scorer's lookback.
pub const FLAG_LOOKBACK_DAYS: i64 = 62;

/// Everything the report shows, read from the lake.
#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub from_day: i64,
    pub to_day: i64,
    /// Flags of the period, and older flags a case refers to; by id.
    pub flags: BTreeMap<String, Flag>,
    /// Flag ids whose partition day is in the period.
    pub period_flags: BTreeSet<String>,
    pub credits: Vec<Credit>,
    /// Sorted by risk, highest first, then user.
    pub cases: Vec<Case>,
    pub issues: Vec<ClaimIssue>,
    /// The latest progress snapshot on or before the last day.
    pub progress: Vec<Progress>,
    /// Sessions of the learners of the top cases.
    pub sessions: BTreeMap<String, Vec<SessionSpan>>,
    /// How many cases get a timeline.
    pub timelines: usize,
}

/// Reads the result tables of `from..=to`, and the sessions of the `timelines` riskiest cases.
pub fn load(lake: &Lake, from: i64, to: i64, timelines: usize) -> Result<ReportData> {
    let mut cases = tables::read_cases(lake, from, to)?;
    cases.sort_by(|a, b| {
        b.risk
            .total_cmp(&a.risk)
            .then_with(|| a.user_id.cmp(&b.user_id))
            .then(a.case_id.cmp(&b.case_id))
    });
    let wanted: HashSet<&str> = cases
        .iter()
        .flat_map(|c| c.flag_ids.iter().map(String::as_str))
        .collect();
    let mut flags = BTreeMap::new();
    let mut period_flags = BTreeSet::new();
    for (day, f) in tables::read_flags(lake, from - FLAG_LOOKBACK_DAYS, to)? {
        if day >= from {
            period_flags.insert(f.flag_id.clone());
        } else if !wanted.contains(f.flag_id.as_str()) {
            continue;
        }
        flags.insert(f.flag_id.clone(), f);
    }
    let credits = tables::read_credits(lake, from, to)?;
    let issues = tables::read_claim_issues(lake, from, to)?;
    let progress = match lake
        .days(tables::PROGRESS)?
        .into_iter()
        .filter(|d| *d <= to)
        .max()
    {
        Some(day) => tables::read_progress(lake, day)?,
        None => Vec::new(),
    };
    let users: HashSet<String> = cases
        .iter()
        .take(timelines)
        .map(|c| c.user_id.clone())
        .collect();
    let sessions = read_sessions(lake, from, to, &users, 30 * 60 * 1_000_000)?;
    Ok(ReportData {
        from_day: from,
        to_day: to,
        flags,
        period_flags,
        credits,
        cases,
        issues,
        progress,
        sessions,
        timelines,
    })
}

struct Tallies {
    /// org unit → (open cases, all cases, credits withheld)
    by_org: BTreeMap<String, (usize, usize, f64)>,
    /// detector → (flags, learners, flags in open cases)
    by_detector: BTreeMap<String, (usize, usize, usize)>,
    granted: usize,
    withheld: usize,
    credits_granted: f64,
    credits_withheld: f64,
    issues: BTreeMap<String, usize>,
    progress: BTreeMap<String, usize>,
}

fn tally(d: &ReportData) -> Tallies {
    let mut by_org: BTreeMap<String, (usize, usize, f64)> = BTreeMap::new();
    for c in &d.cases {
        let e = by_org
            .entry(c.org_unit.clone().unwrap_or_else(|| "(none)".into()))
            .or_default();
        e.1 += 1;
        if creditguard_contract::case_awaits_review(&c.status) {
            e.0 += 1;
        }
        e.2 += c.credits_withheld;
    }
    let open_flags: HashSet<&str> = d
        .cases
        .iter()
        .filter(|c| creditguard_contract::case_awaits_review(&c.status))
        .flat_map(|c| c.flag_ids.iter().map(String::as_str))
        .collect();
    let mut learners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut by_detector: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    for f in d
        .flags
        .values()
        .filter(|f| d.period_flags.contains(&f.flag_id))
    {
        let e = by_detector.entry(f.detector.clone()).or_default();
        e.0 += 1;
        if open_flags.contains(f.flag_id.as_str()) {
            e.2 += 1;
        }
        learners.entry(&f.detector).or_default().insert(&f.user_id);
    }
    for (det, users) in learners {
        if let Some(e) = by_detector.get_mut(det) {
            e.1 = users.len();
        }
    }
    let mut t = Tallies {
        by_org,
        by_detector,
        granted: 0,
        withheld: 0,
        credits_granted: 0.0,
        credits_withheld: 0.0,
        issues: BTreeMap::new(),
        progress: BTreeMap::new(),
    };
    for c in &d.credits {
        match c.status.as_str() {
            "withheld" => t.withheld += 1,
            // Cancelled by a reviewer: neither granted nor pending.
            "cancelled" => {}
            _ => t.granted += 1,
        }
        t.credits_granted += c.credits_granted;
    }
    // A fold from +0.0: `sum()` of no floats is -0.0, which prints as "-0.0".
    t.credits_withheld = d.cases.iter().fold(0.0, |acc, c| acc + c.credits_withheld);
    for i in &d.issues {
        *t.issues.entry(i.issue.clone()).or_default() += 1;
    }
    for p in &d.progress {
        *t.progress.entry(p.status.clone()).or_default() += 1;
    }
    t
}

fn join_counts(m: &BTreeMap<String, usize>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The terminal summary: totals, cases by org unit, flags by detector, the `top` riskiest cases
/// with their flags' explanations, claim issues and progress.
pub fn render_text(d: &ReportData, top: usize) -> String {
    let t = tally(d);
    let mut s = String::new();
    let open = d
        .cases
        .iter()
        .filter(|c| creditguard_contract::case_awaits_review(&c.status))
        .count();
    let _ = writeln!(
        s,
        "creditguard report {} .. {}",
        format_day(d.from_day),
        format_day(d.to_day)
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "flags          {}", d.period_flags.len());
    let _ = writeln!(
        s,
        "credit claims  {} ({} granted, {} withheld)",
        t.granted + t.withheld,
        t.granted,
        t.withheld
    );
    let _ = writeln!(
        s,
        "credits        {:.1} granted, {:.1} withheld pending review",
        t.credits_granted, t.credits_withheld
    );
    let _ = writeln!(
        s,
        "cases          {} open, {} below threshold",
        open,
        d.cases.len() - open
    );
    let _ = writeln!(s, "claim issues   {}", join_counts(&t.issues));
    let _ = writeln!(s, "progress       {}", join_counts(&t.progress));
    let _ = writeln!(s);
    let _ = writeln!(s, "cases by org unit");
    let _ = writeln!(
        s,
        "  {:<24} {:>6} {:>6} {:>16}",
        "org_unit", "open", "all", "credits_withheld"
    );
    for (org, (open, all, w)) in &t.by_org {
        let _ = writeln!(s, "  {:<24} {:>6} {:>6} {:>16.1}", org, open, all, w);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "flags by detector");
    let _ = writeln!(
        s,
        "  {:<24} {:>6} {:>9} {:>14}",
        "detector", "flags", "learners", "in_open_cases"
    );
    for (det, (n, users, in_open)) in &t.by_detector {
        let _ = writeln!(s, "  {:<24} {:>6} {:>9} {:>14}", det, n, users, in_open);
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "top cases");
    for (i, c) in d.cases.iter().take(top).enumerate() {
        let _ = writeln!(
            s,
            "  {}. {} ({}) risk {:.2} {}, {:.1} credits withheld, detectors: {}",
            i + 1,
            c.user_id,
            c.org_unit.as_deref().unwrap_or("-"),
            c.risk,
            c.status,
            c.credits_withheld,
            c.detectors.join(", ")
        );
        let mut fl: Vec<&Flag> = c.flag_ids.iter().filter_map(|id| d.flags.get(id)).collect();
        fl.sort_by(|a, b| {
            b.severity
                .total_cmp(&a.severity)
                .then(a.window_start.cmp(&b.window_start))
        });
        for f in fl.iter().take(5) {
            let _ = writeln!(s, "     - [{} {:.2}] {}", f.rule, f.severity, f.explanation);
        }
        if fl.len() > 5 {
            let _ = writeln!(s, "     … and {} more flags", fl.len() - 5);
        }
    }
    if d.cases.is_empty() {
        let _ = writeln!(s, "  (no cases)");
    }
    s
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const DEVICE_COLOURS: [&str; 8] = [
    "#2f6db5", "#e08a1e", "#2a9d8f", "#8e5bb5", "#c4452f", "#5c7a29", "#b5487d", "#6b6b6b",
];

fn detector_colour(d: &str) -> &'static str {
    match d {
        "watch_time" => "#d1495b",
        "multi_login" => "#8e44ad",
        "course_switching" => "#e67e22",
        "credit_burst" => "#c0392b",
        "quiz_speed" => "#16a085",
        "shared_device" => "#2c3e50",
        "automation" => "#34495e",
        "proxy_learning" => "#8d6e63",
        _ => "#7f8c8d",
    }
}

fn short_time(us: i64) -> String {
    // `2026-03-02T09:15:04.000000Z` → `03-02 09:15`
    let s = format_rfc3339_us(us);
    format!("{} {}", &s[5..10], &s[11..16])
}

/// The timeline of one case: a lane per device with its sessions, a lane per flag rule with the
/// flags' windows (opacity = severity), and a lane of credit claims (green granted, red withheld).
pub fn timeline_svg(
    case: &Case,
    sessions: &[SessionSpan],
    flags: &[&Flag],
    credits: &[&Credit],
) -> String {
    const W: f64 = 1100.0;
    const LABEL: f64 = 190.0;
    const LANE: f64 = 26.0;
    let mut t0 = i64::MAX;
    let mut t1 = i64::MIN;
    for s in sessions {
        t0 = t0.min(s.start);
        t1 = t1.max(s.end);
    }
    for f in flags {
        t0 = t0.min(f.window_start);
        t1 = t1.max(f.window_end);
    }
    for c in credits {
        t0 = t0.min(c.completed_at);
        t1 = t1.max(c.completed_at);
    }
    if t0 > t1 {
        t0 = case.period_start;
        t1 = case.period_end;
    }
    let pad = ((t1 - t0) / 40).max(5 * 60 * 1_000_000);
    let (t0, t1) = (t0 - pad, t1 + pad);
    let x = |t: i64| LABEL + (W - LABEL - 10.0) * ((t - t0) as f64 / (t1 - t0) as f64);

    let mut devices: Vec<String> = Vec::new();
    for s in sessions {
        let d = s.device_id.clone().unwrap_or_else(|| "(no device)".into());
        if !devices.contains(&d) {
            devices.push(d);
        }
    }
    let mut rules: Vec<&str> = flags
        .iter()
        .map(|f| f.rule.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    rules.sort_unstable();
    let lanes = devices.len() + rules.len() + 1;
    let h = 30.0 + lanes as f64 * LANE + 30.0;
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" role="img" aria-label="timeline of {}">"#,
        esc(&case.user_id)
    );
    // Background stripes and lane labels.
    let lane_y = |i: usize| 30.0 + i as f64 * LANE;
    for i in 0..lanes {
        if i % 2 == 0 {
            let _ = write!(
                o,
                r##"<rect x="0" y="{}" width="{W}" height="{LANE}" fill="#f4f6f8"/>"##,
                lane_y(i)
            );
        }
    }
    // Day and hour grid.
    let span = t1 - t0;
    let step = [
        900_000_000i64,
        1_800_000_000,
        3_600_000_000,
        6 * 3_600_000_000,
        DAY_US,
        7 * DAY_US,
    ]
    .into_iter()
    .find(|s| span / s <= 12)
    .unwrap_or(30 * DAY_US);
    let mut tick = (t0 / step + 1) * step;
    while tick < t1 {
        let tx = x(tick);
        let _ = write!(
            o,
            r##"<line x1="{tx:.1}" y1="24" x2="{tx:.1}" y2="{}" stroke="#cfd6dd" stroke-width="1"/><text x="{tx:.1}" y="18" font-size="10" text-anchor="middle" fill="#555">{}</text>"##,
            h - 28.0,
            short_time(tick)
        );
        tick += step;
    }
    for (i, d) in devices.iter().enumerate() {
        let y = lane_y(i);
        let colour = DEVICE_COLOURS[i % DEVICE_COLOURS.len()];
        let _ = write!(
            o,
            r##"<text x="6" y="{:.1}" font-size="11" fill="{colour}">device {}</text>"##,
            y + 17.0,
            esc(&truncate(d, 22))
        );
        for s in sessions
            .iter()
            .filter(|s| s.device_id.as_deref().unwrap_or("(no device)") == d)
        {
            let (a, b) = (x(s.start), x(s.end));
            let _ = write!(
                o,
                r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="2" fill="{colour}" opacity="0.85"><title>session {} on {} ({}, ip {}): {} – {}; courses: {}</title></rect>"#,
                y + 5.0,
                (b - a).max(2.5),
                LANE - 10.0,
                esc(&s.session_id),
                esc(d),
                esc(s.platform.as_deref().unwrap_or("?")),
                esc(s.ip.as_deref().unwrap_or("?")),
                format_rfc3339_us(s.start),
                format_rfc3339_us(s.end),
                esc(&s.courses.join(", "))
            );
        }
    }
    for (j, rule) in rules.iter().enumerate() {
        let y = lane_y(devices.len() + j);
        let _ = write!(
            o,
            r##"<text x="6" y="{:.1}" font-size="11" fill="#333">{}</text>"##,
            y + 17.0,
            esc(&truncate(rule, 28))
        );
        for f in flags.iter().filter(|f| f.rule == *rule) {
            let (a, b) = (x(f.window_start), x(f.window_end));
            let _ = write!(
                o,
                r##"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="{:.2}" stroke="{}" stroke-width="1"><title>{} (severity {:.2}{}): {}</title></rect>"##,
                y + 4.0,
                (b - a).max(3.0),
                LANE - 8.0,
                detector_colour(&f.detector),
                0.25 + 0.75 * f.severity.clamp(0.0, 1.0),
                detector_colour(&f.detector),
                esc(&f.rule),
                f.severity,
                f.course_id
                    .as_deref()
                    .map(|c| format!(", course {}", esc(c)))
                    .unwrap_or_default(),
                esc(&f.explanation)
            );
        }
    }
    let y = lane_y(lanes - 1);
    let _ = write!(
        o,
        r##"<text x="6" y="{:.1}" font-size="11" fill="#333">credit claims</text>"##,
        y + 17.0
    );
    for c in credits {
        let cx = x(c.completed_at);
        let cy = y + LANE / 2.0;
        let colour = if c.status == "withheld" {
            "#c0392b"
        } else {
            "#27ae60"
        };
        let _ = write!(
            o,
            r#"<path d="M{:.1} {:.1} l7 7 l-7 7 l-7 -7 z" fill="{colour}"><title>{} {}: claimed {} credits at {}</title></path>"#,
            cx,
            cy - 7.0,
            esc(&c.course_id),
            c.status,
            c.credits_claimed,
            format_rfc3339_us(c.completed_at)
        );
    }
    let _ = write!(
        o,
        r##"<text x="{LABEL}" y="{:.1}" font-size="10" fill="#777">{} → {} (UTC)</text></svg>"##,
        h - 8.0,
        format_rfc3339_us(t0),
        format_rfc3339_us(t1)
    );
    o
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

fn bar_chart(rows: &[(String, f64, &str)]) -> String {
    let max = rows.iter().map(|r| r.1).fold(0.0f64, f64::max).max(1.0);
    let h = 22.0 * rows.len() as f64 + 6.0;
    let mut o = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="520" height="{h}" viewBox="0 0 520 {h}">"#
    );
    for (i, (label, v, colour)) in rows.iter().enumerate() {
        let y = 4.0 + 22.0 * i as f64;
        let w = 300.0 * v / max;
        let _ = write!(
            o,
            r##"<text x="0" y="{:.1}" font-size="12" fill="#333">{}</text><rect x="170" y="{y:.1}" width="{w:.1}" height="16" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#333">{}</text>"##,
            y + 12.5,
            esc(&truncate(label, 24)),
            176.0 + w,
            y + 12.5,
            v
        );
    }
    o.push_str("</svg>");
    o
}

const CSS: &str = r#"
body{font-family:-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:0}
.sub{color:#666;margin-bottom:16px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #dde3e8;border-radius:8px;padding:10px 14px;min-width:150px;background:#fafbfc}
.card b{display:block;font-size:22px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e5e8eb;padding:4px 10px;text-align:left} th{background:#f0f3f6}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.case{border:1px solid #dde3e8;border-radius:8px;padding:12px 14px;margin:14px 0}
.open{color:#fff;background:#c0392b;border-radius:4px;padding:1px 6px;font-size:12px}
.below_threshold{color:#333;background:#e5e8eb;border-radius:4px;padding:1px 6px;font-size:12px}
.granted{color:#1e8449}.withheld{color:#c0392b;font-weight:600}
.risk{display:inline-block;width:120px;height:10px;background:#eee;border-radius:5px;vertical-align:middle;margin:0 6px}
.risk i{display:block;height:10px;border-radius:5px;background:linear-gradient(90deg,#f1c40f,#c0392b)}
ul.flags{margin:6px 0 8px 0;padding-left:18px;font-size:13px} ul.flags li{margin:2px 0}
.dot{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:middle}
.timeline{display:block;margin-top:6px;max-width:100%;height:auto}
"#;

/// The HTML page: summary cards, cases by org unit, flags by detector, claim issues, progress,
/// then the riskiest cases (up to `timelines`) with their flags, claims and timeline.
pub fn render_html(d: &ReportData) -> String {
    let t = tally(d);
    let open = d
        .cases
        .iter()
        .filter(|c| creditguard_contract::case_awaits_review(&c.status))
        .count();
    let mut o = String::new();
    let title = format!(
        "creditguard report {} – {}",
        format_day(d.from_day),
        format_day(d.to_day)
    );
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(o, "<h1>{}</h1><div class=\"sub\">Withheld credits wait for a reviewer's decision; nothing here cancels credits.</div>", esc(&title));
    let _ = write!(o, "<div class=\"cards\">");
    for (label, value) in [
        ("open cases", open.to_string()),
        ("cases below threshold", (d.cases.len() - open).to_string()),
        ("flags", d.period_flags.len().to_string()),
        ("claims granted", t.granted.to_string()),
        ("claims withheld", t.withheld.to_string()),
        ("credits withheld", format!("{:.1}", t.credits_withheld)),
        ("claim issues", t.issues.values().sum::<usize>().to_string()),
    ] {
        let _ = write!(
            o,
            "<div class=\"card\"><b>{}</b>{}</div>",
            esc(&value),
            esc(label)
        );
    }
    o.push_str("</div>");

    o.push_str("<h2>Cases by org unit</h2><table><tr><th>org unit</th><th>open</th><th>all</th><th>credits withheld</th></tr>");
    for (org, (open, all, w)) in &t.by_org {
        let _ = write!(o, "<tr><td>{}</td><td class=n>{open}</td><td class=n>{all}</td><td class=n>{w:.1}</td></tr>", esc(org));
    }
    o.push_str("</table>");

    o.push_str("<h2>Flags by detector</h2>");
    let rows: Vec<(String, f64, &str)> = t
        .by_detector
        .iter()
        .map(|(k, v)| (k.clone(), v.0 as f64, detector_colour(k)))
        .collect();
    o.push_str(&bar_chart(&rows));
    o.push_str(
        "<table><tr><th>detector</th><th>flags</th><th>learners</th><th>in open cases</th></tr>",
    );
    for (det, (n, users, in_open)) in &t.by_detector {
        let _ = write!(
            o,
            "<tr><td><span class=dot style=\"background:{}\"></span>{}</td><td class=n>{n}</td><td class=n>{users}</td><td class=n>{in_open}</td></tr>",
            detector_colour(det),
            esc(det)
        );
    }
    o.push_str("</table>");

    if !d.issues.is_empty() {
        o.push_str("<h2>Claim issues</h2><table><tr><th>learner</th><th>course</th><th>issue</th><th>detail</th></tr>");
        for i in d.issues.iter().take(200) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&i.user_id),
                esc(&i.course_id),
                esc(&i.issue),
                esc(&i.detail)
            );
        }
        o.push_str("</table>");
        if d.issues.len() > 200 {
            let _ = write!(o, "<p>… and {} more.</p>", d.issues.len() - 200);
        }
    }

    if !d.progress.is_empty() {
        let (year, _, _) = civil_from_days(d.to_day);
        let _ = write!(
            o,
            "<h2>Progress towards the {year} target</h2><p>{}</p>",
            esc(&join_counts(&t.progress))
        );
        let mut behind: Vec<&Progress> = d
            .progress
            .iter()
            .filter(|p| p.status == "behind" || p.status == "at_risk")
            .collect();
        behind.sort_by(|a, b| {
            a.share_of_target
                .total_cmp(&b.share_of_target)
                .then(a.user_id.cmp(&b.user_id))
        });
        if !behind.is_empty() {
            o.push_str("<table><tr><th>learner</th><th>org unit</th><th>status</th><th>granted</th><th>withheld</th><th>expected by now</th><th>mandatory</th></tr>");
            for p in behind.iter().take(50) {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td class=n>{:.1}</td><td class=n>{:.1}</td><td class=n>{:.1}</td><td class=n>{:.1} / {:.1}</td></tr>",
                    esc(&p.user_id),
                    esc(p.org_unit.as_deref().unwrap_or("-")),
                    esc(&p.status),
                    p.credits_granted,
                    p.credits_withheld,
                    p.expected_by_now,
                    p.mandatory_granted,
                    p.mandatory_target
                );
            }
            o.push_str("</table>");
        }
    }

    let _ = write!(
        o,
        "<h2>Cases ({} shown with timelines)</h2>",
        d.timelines.min(d.cases.len())
    );
    if d.cases.is_empty() {
        o.push_str("<p>No cases in this period.</p>");
    }
    let empty = Vec::new();
    for c in d.cases.iter().take(d.timelines) {
        let mut fl: Vec<&Flag> = c.flag_ids.iter().filter_map(|id| d.flags.get(id)).collect();
        fl.sort_by(|a, b| {
            a.window_start
                .cmp(&b.window_start)
                .then(a.flag_id.cmp(&b.flag_id))
        });
        let cr: Vec<&Credit> = d
            .credits
            .iter()
            .filter(|k| k.user_id == c.user_id)
            .collect();
        let _ = write!(
            o,
            "<div class=\"case\" id=\"case-{}\"><h3>{} <small>{}</small> <span class=\"{}\">{}</span> risk {:.2}<span class=risk><i style=\"width:{:.0}%\"></i></span> {:.1} credits withheld</h3>",
            esc(&c.case_id),
            esc(&c.user_id),
            esc(c.org_unit.as_deref().unwrap_or("")),
            esc(&c.status),
            esc(&c.status.replace('_', " ")),
            c.risk,
            c.risk * 100.0,
            c.credits_withheld
        );
        o.push_str("<ul class=flags>");
        for f in &fl {
            let _ = write!(
                o,
                "<li><span class=dot style=\"background:{}\"></span><b>{}</b> {:.2} · {} – {}: {}</li>",
                detector_colour(&f.detector),
                esc(&f.rule),
                f.severity,
                short_time(f.window_start),
                short_time(f.window_end),
                esc(&f.explanation)
            );
        }
        o.push_str("</ul>");
        if !cr.is_empty() {
            o.push_str(
                "<table><tr><th>course</th><th>completed</th><th>claimed</th><th>status</th></tr>",
            );
            for k in &cr {
                let _ = write!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td class=n>{}</td><td class=\"{}\">{}</td></tr>",
                    esc(&k.course_id),
                    format_rfc3339_us(k.completed_at),
                    k.credits_claimed,
                    esc(&k.status),
                    esc(&k.status)
                );
            }
            o.push_str("</table>");
        }
        let sessions = d.sessions.get(&c.user_id).unwrap_or(&empty);
        o.push_str(&timeline_svg(c, sessions, &fl, &cr));
        o.push_str("</div>");
    }
    if d.cases.len() > d.timelines {
        o.push_str("<table><tr><th>learner</th><th>org unit</th><th>risk</th><th>status</th><th>detectors</th><th>credits withheld</th></tr>");
        for c in d.cases.iter().skip(d.timelines) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=n>{:.2}</td><td>{}</td><td>{}</td><td class=n>{:.1}</td></tr>",
                esc(&c.user_id),
                esc(c.org_unit.as_deref().unwrap_or("-")),
                c.risk,
                esc(&c.status),
                esc(&c.detectors.join(", ")),
                c.credits_withheld
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "<p class=sub>Generated by creditguard from the lake's result tables; days {}–{} (UTC).</p></body></html>", format_day(d.from_day), format_day(d.to_day));

    o
}
