//! `/overview` ("数据大屏"): per org unit of the viewer's scope, learners on track / at risk /
//! behind, credits granted / withheld / released / cancelled, open cases and their age, flags
//! per rule per week, and reviewers' confirmed share per rule. Charts are server-side SVG.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Response;
use creditguard_contract::time::format_day;
use creditguard_review::{now_us, Role};
use maud::{html, PreEscaped};

use super::queue::WAITING;
use super::{age_days, layout, page};
use crate::auth::Viewer;
use crate::error::{Result, WebError};
use crate::lake::blocking;
use crate::AppState;

#[derive(Default)]
struct Unit {
    on_track: i64,
    at_risk: i64,
    behind: i64,
    granted: f64,
    withheld: f64,
    released: f64,
    cancelled: f64,
    open_cases: i64,
    oldest_open: Option<i64>,
}

fn esc(s: &str) -> String {
    maud::html! { (s) }.into_string()
}

const RULE_COLOURS: [&str; 8] = [
    "#d1495b", "#2f6db5", "#e08a1e", "#2a9d8f", "#8e5bb5", "#5c7a29", "#b5487d", "#6b6b6b",
];

/// Stacked horizontal bars of learners on track / at risk / behind, one per org unit.
fn progress_chart(units: &BTreeMap<String, Unit>, labels: [&str; 3]) -> String {
    let w = 760.0;
    let label_w = 220.0;
    let row = 24.0;
    let h = 30.0 + units.len() as f64 * row + 10.0;
    let mut o = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#
    );
    let colours = ["#2a9d8f", "#e08a1e", "#d1495b"];
    for (i, (l, c)) in labels.iter().zip(colours).enumerate() {
        let _ = write!(
            o,
            r#"<rect x="{}" y="4" width="12" height="12" fill="{c}"/><text x="{}" y="14" font-size="12">{}</text>"#,
            label_w + i as f64 * 150.0,
            label_w + 16.0 + i as f64 * 150.0,
            esc(l)
        );
    }
    for (i, (name, u)) in units.iter().enumerate() {
        let y = 28.0 + i as f64 * row;
        let total = (u.on_track + u.at_risk + u.behind).max(1) as f64;
        let _ = write!(
            o,
            r#"<text x="4" y="{:.1}" font-size="12">{}</text>"#,
            y + 15.0,
            esc(name)
        );
        let mut x = label_w;
        for (n, c) in [u.on_track, u.at_risk, u.behind].into_iter().zip(colours) {
            let bw = (w - label_w - 10.0) * n as f64 / total;
            if n > 0 {
                let _ = write!(
                    o,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{c}"><title>{n}</title></rect>"#,
                    row - 6.0
                );
            }
            x += bw;
        }
    }
    o + "</svg>"
}

/// Flags per rule per week: a bar group per week (the last 12 weeks with flags).
fn weekly_chart(rows: &[(String, i64, i64)]) -> String {
    let mut weeks: Vec<i64> = rows.iter().map(|r| r.1).collect();
    weeks.sort_unstable();
    weeks.dedup();
    let weeks: Vec<i64> = weeks.into_iter().rev().take(12).rev().collect();
    let mut rules: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    let max = rows
        .iter()
        .filter(|r| weeks.contains(&r.1))
        .map(|r| r.2)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (w, h, top, bottom) = (760.0, 260.0, 20.0, 40.0);
    let legend_h = 18.0 * rules.len() as f64;
    let total_h = h + legend_h;
    let mut o = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{w}" height="{total_h}" viewBox="0 0 {w} {total_h}" role="img">"#
    );
    let group = ((w - 40.0) / weeks.len().max(1) as f64).min(90.0);
    let bar = (group - 8.0) / rules.len().max(1) as f64;
    let _ = write!(
        o,
        r##"<text x="4" y="14" font-size="11" fill="#555">max {max}</text>"##
    );
    for (i, wk) in weeks.iter().enumerate() {
        let gx = 30.0 + i as f64 * group;
        for (j, rule) in rules.iter().enumerate() {
            let n = rows
                .iter()
                .find(|r| r.0 == *rule && r.1 == *wk)
                .map(|r| r.2)
                .unwrap_or(0);
            let bh = (h - top - bottom) * n as f64 / max;
            let _ = write!(
                o,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{}"><title>{} · {}: {n}</title></rect>"#,
                gx + j as f64 * bar,
                h - bottom - bh,
                bar.max(1.0),
                RULE_COLOURS[j % RULE_COLOURS.len()],
                esc(rule),
                format_day(*wk)
            );
        }
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            gx + group / 2.0 - 4.0,
            h - bottom + 14.0,
            &format_day(*wk)[5..]
        );
    }
    for (j, rule) in rules.iter().enumerate() {
        let y = h + j as f64 * 18.0;
        let _ = write!(
            o,
            r#"<rect x="30" y="{y:.1}" width="12" height="12" fill="{}"/><text x="48" y="{:.1}" font-size="12">{}</text>"#,
            RULE_COLOURS[j % RULE_COLOURS.len()],
            y + 10.0,
            esc(rule)
        );
    }
    o + "</svg>"
}

/// `GET /overview`.
pub async fn overview(State(state): State<AppState>, viewer: Viewer) -> Result<Response> {
    viewer.require(&[Role::Reviewer, Role::Lead, Role::Auditor])?;
    let scope = viewer.account.scope.clone();
    if scope.is_empty() {
        return Err(WebError::Forbidden(
            viewer
                .lang
                .t(
                    "your account sees no org units",
                    "您的账户没有可查看的组织单元",
                )
                .into(),
        ));
    }
    let now = now_us();
    let review = state.review();
    let (counts, decided, weekly, feedback) = tokio::try_join!(
        review.case_counts(&scope),
        review.claim_decisions(&scope),
        review.flags_per_week(&scope),
        review.rule_feedback(now),
    )?;
    let none = "(none)".to_string();
    let mut units: BTreeMap<String, Unit> = BTreeMap::new();
    for (ou, status, n, oldest) in counts {
        let u = units.entry(ou.unwrap_or_else(|| none.clone())).or_default();
        if WAITING.contains(&status) {
            u.open_cases += n;
            u.oldest_open = Some(u.oldest_open.map_or(oldest, |o| o.min(oldest)));
        }
    }
    for (ou, decision, _, credits) in decided {
        let u = units.entry(ou.unwrap_or_else(|| none.clone())).or_default();
        match decision.as_str() {
            "released" => u.released += credits,
            "cancelled" => u.cancelled += credits,
            _ => {}
        }
    }
    if state.lake().is_some() {
        let st = state.clone();
        let progress = blocking(move || st.lake().expect("checked").progress()).await?;
        for p in progress
            .values()
            .filter(|p| scope.covers(p.org_unit.as_deref()))
        {
            let u = units
                .entry(p.org_unit.clone().unwrap_or_else(|| none.clone()))
                .or_default();
            match p.status.as_str() {
                "complete" | "on_track" => u.on_track += 1,
                "at_risk" => u.at_risk += 1,
                "behind" => u.behind += 1,
                _ => {}
            }
            u.granted += p.credits_granted;
            u.withheld += p.credits_withheld;
        }
    }
    let feedback: Vec<_> = feedback
        .into_iter()
        .filter(|f| scope.covers(f.org_unit.as_deref()))
        .collect();
    let mut by_rule: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for f in &feedback {
        let e = by_rule.entry(f.rule.clone()).or_default();
        e.0 += f.confirmed;
        e.1 += f.dismissed;
        e.2 += f.pending;
    }
    let l = viewer.lang;
    let labels = [
        l.t("on track", "进度正常"),
        l.t("at risk", "有风险"),
        l.t("behind", "落后"),
    ];
    let body = html! {
        h2 { (l.t("Learners against the year's target", "学员年度目标完成情况")) }
        div.chart { (PreEscaped(progress_chart(&units, labels))) }
        table.overview {
            thead { tr {
                th { (l.t("Org unit", "组织单元")) } th { (labels[0]) } th { (labels[1]) } th { (labels[2]) }
                th { (l.t("Credits granted", "已授予学分")) } th { (l.t("withheld", "暂扣")) } th { (l.t("released", "已释放")) } th { (l.t("cancelled", "已取消")) }
                th { (l.t("Open cases", "待审案件")) } th { (l.t("Oldest (days)", "最久（天）")) }
            } }
            tbody {
                @for (name, u) in &units {
                    tr { td { (name) } td.num { (u.on_track) } td.num { (u.at_risk) } td.num { (u.behind) }
                        td.num { (format!("{:.1}", u.granted)) } td.num { (format!("{:.1}", u.withheld)) }
                        td.num { (format!("{:.1}", u.released)) } td.num { (format!("{:.1}", u.cancelled)) }
                        td.num { (u.open_cases) } td.num { (u.oldest_open.map(|o| age_days(now, o).to_string()).unwrap_or_default()) } }
                }
            }
        }
        h2 { (l.t("Flags per rule per week", "每周各规则标记数")) }
        div.chart { (PreEscaped(weekly_chart(&weekly))) }
        h2 { (l.t("Reviewers' verdicts per rule", "各规则审核结论")) }
        table.overview {
            thead { tr { th { (l.t("Rule", "规则")) } th { (l.t("confirmed", "确认")) } th { (l.t("dismissed", "驳回")) } th { (l.t("pending", "待定")) } th { (l.t("Confirmed share", "确认比例")) } } }
            tbody {
                @for (rule, (c, d, p)) in &by_rule {
                    tr { td { (rule) } td.num { (c) } td.num { (d) } td.num { (p) }
                        td { @if c + d > 0 {
                            @let share = *c as f64 / (*c + *d) as f64;
                            meter min="0" max="1" value=(format!("{share:.3}")) {} " " (format!("{:.0}%", share * 100.0))
                        } @else { "—" } } }
                }
            }
        }
    };
    Ok(page(layout(&viewer, l.t("Overview", "数据大屏"), body)))
}
