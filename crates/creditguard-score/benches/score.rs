//! Scorer throughput: `cargo bench --locked -p creditguard -p creditguard-score --bench score`
//! (`harness = false`; prints its figures).
//!
//! Without arguments, on a lake it builds: 30 days × `USERS` learners, each with heartbeats on
//! one course per day and a completion every third day; 5 % of learners carry a course-less
//! multi-login flag and a watch-time flag per day, so the activity join is exercised. Scored
//! without and then with a roster and the credit policy of [`POLICY`] (one course in ten is a
//! live session; the others end in a quiz nobody hands in, so every completion is checked).
//!
//! `-- lake EVENTS DAYS` scores the lake the detection-job bench leaves in
//! `target/bench-lake-EVENTS-DAYS/` (`target/release/examples/jobs_bench EVENTS DAYS` generates
//! it and writes the jobs' flags), with a roster of every learner it generated and [`POLICY`]:
//! the whole period at once, then its last day alone (the daily run; `-- lake EVENTS DAYS daily`:
//! only that). Prints wall time, CPU time
//! and the process's peak RSS after each. `CG_BENCH_NO_POLICY=1` scores without roster and
//! policy, for comparison.

use std::time::Instant;

// jemalloc, as the `creditguard` program scores with.
creditguard_alloc::use_jemalloc!();

use creditguard_contract::time::{format_day, format_rfc3339_us, parse_day};
use creditguard_contract::{events_schema, parse_event, stable_id, EventBatchBuilder, Flag};
use creditguard_lake::Lake;
use creditguard_score::{compute, tables, write_results, Catalog, ScoreConfig};

const USERS: usize = 4000;

/// The credit policy the benches score with: every earning rule and a topic minimum.
const POLICY: &str = r#"
[policy]
name = "bench"
[earning]
quiz_pass_score = 60
live_credits_per_hour = 1.0
live_daily_cap = 4.0
[[rule]]
name = "company"
target_credits = 120
minimum = { mandatory = "40%", elective = "30%" }
[[rule]]
name = "managers"
role = "manager"
target_credits = 150
minimum = { mandatory = 60 }
topics = { management = 20 }
"#;
const DAYS: i64 = 30;
const BEATS: i64 = 20;
use creditguard_contract::time::DAY_US;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("lake") {
        let num = |i: usize| {
            args.get(i)
                .map(|s| s.replace('_', "").parse::<u64>().expect("a number"))
        };
        let daily_only = args.get(3).map(String::as_str) == Some("daily");
        return score_jobs_lake(
            num(1).unwrap_or(1_000_000),
            num(2).unwrap_or(30),
            daily_only,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    // The others with a quiz that nobody hands in: every completion is checked and refused under
    // the policy.
    let catalog = bench_catalog(50, |c| {
        let category = if c % 3 == 0 { "mandatory" } else { "elective" };
        (format!("c{c}"), category, 2, 1800)
    });
    let first = parse_day("2026-03-01").unwrap();
    let t = Instant::now();
    let mut events = 0usize;
    let mut claims = 0usize;
    let mut flags_n = 0usize;
    for d in first..first + DAYS {
        let mut b = EventBatchBuilder::new();
        let mut flags = Vec::new();
        for u in 0..USERS {
            let course = format!("c{}", (u as i64 + d) % 50);
            let start = d * DAY_US + (u as i64 % 600) * 60_000_000;
            for k in 0..BEATS {
                let line = format!(
                    r#"{{"event_id":"h{u}-{d}-{k}","type":"heartbeat","ts":"{}","user_id":"u{u}","org_unit":"o{}","session_id":"s{u}-{d}","device_id":"d{u}","course_id":"{course}","lesson_id":"l1","position_s":{},"playing":true,"visible":true}}"#,
                    format_rfc3339_us(start + k * 30_000_000),
                    u % 20,
                    k * 30
                );
                b.push(&parse_event(line.as_bytes()).unwrap(), "bench", 0);
                events += 1;
            }
            if (u as i64 + d) % 3 == 0 {
                let line = format!(
                    r#"{{"event_id":"cc{u}-{d}","type":"course_complete","ts":"{}","user_id":"u{u}","org_unit":"o{}","course_id":"{course}","credits":2,"category":"elective"}}"#,
                    format_rfc3339_us(start + BEATS * 30_000_000),
                    u % 20
                );
                b.push(&parse_event(line.as_bytes()).unwrap(), "bench", 0);
                events += 1;
                claims += 1;
            }
            if u % 20 == 0 {
                for (det, rule, c) in [
                    ("multi_login", "multi_login.concurrent_sessions", None),
                    (
                        "watch_time",
                        "watch_time.background_playback",
                        Some(course.clone()),
                    ),
                ] {
                    flags.push(Flag {
                        flag_id: stable_id(&[rule, &u.to_string(), &d.to_string()]),
                        run_id: "bench".into(),
                        detector: det.into(),
                        rule: rule.into(),
                        user_id: format!("u{u}"),
                        org_unit: Some(format!("o{}", u % 20)),
                        course_id: c,
                        window_start: start,
                        window_end: start + 300_000_000,
                        severity: 0.8,
                        evidence: "{}".into(),
                        explanation: "bench".into(),
                        rules_version: None,
                        rules_name: None,
                    });
                    flags_n += 1;
                }
            }
        }
        lake.write_parquet(
            "events",
            d,
            "part-0.parquet",
            events_schema(),
            &[b.finish()],
        )
        .unwrap();
        tables::write_flags(&lake, d, &flags).unwrap();
    }
    println!(
        "fixture: {events} events, {claims} claims, {flags_n} flags over {DAYS} days from {} ({:.1} s to build)",
        format_day(first),
        t.elapsed().as_secs_f64()
    );
    let roster: String = std::iter::once("user_id,org_path,role\n".to_string())
        .chain((0..USERS).map(|u| {
            let role = if u % 9 == 0 { "manager" } else { "staff" };
            format!("u{u},R{}/o{},{role}\n", u % 20 % 4, u % 20)
        }))
        .collect();
    for (name, cfg) in [
        ("no policy", ScoreConfig::default()),
        ("policy", with_policy(&roster)),
    ] {
        for round in 0..2 {
            let (report, c, w) = timed_score(&lake, &catalog, &cfg, first, first + DAYS - 1);
            let tot = report.totals();
            println!(
                "{name}, round {round}: compute {c:.3} s ({:.2} M events/s scanned, {:.0} claims/s), write {w:.3} s; {} withheld, {} open cases, progress {:?}",
                events as f64 / c / 1e6,
                claims as f64 / c,
                tot.withheld,
                tot.cases_open,
                tot.progress
            );
        }
    }
}

/// Scores `from..=to` and writes the results: the report, compute and write seconds.
fn timed_score(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    from: i64,
    to: i64,
) -> (creditguard_score::ScoreReport, f64, f64) {
    let t = Instant::now();
    let report = compute(lake, catalog, cfg, from, to, "bench").unwrap();
    let c = t.elapsed().as_secs_f64();
    let t = Instant::now();
    write_results(lake, &report, true).unwrap();
    (report, c, t.elapsed().as_secs_f64())
}

fn with_policy(roster: &str) -> ScoreConfig {
    let mut cfg = ScoreConfig::default();
    cfg.expectations.policy = Some(creditguard_score::policy::Policy::parse(POLICY).unwrap());
    cfg.expectations.roster = Some(creditguard_score::policy::Roster::parse(roster, None).unwrap());
    cfg
}

/// The jobs bench's first day (2026-01-30).
const JOBS_START_DAY: i64 = 20_483;

/// The jobs bench's catalog (`course-000` … `course-039`).
fn jobs_catalog() -> Catalog {
    bench_catalog(40, |c| {
        let category = ["mandatory", "elective", "practice"][c % 3];
        (
            format!("course-{c:03}"),
            category,
            1 + c % 4,
            1200 + (c % 5) * 600,
        )
    })
}

/// `n` courses (id, category, credits, duration from `course`), one in five on `management`, one
/// in ten a live session (its heartbeats accrue credits by the hour), the others ending in a quiz.
fn bench_catalog(
    n: usize,
    course: impl Fn(usize) -> (String, &'static str, usize, usize),
) -> Catalog {
    let mut csv = String::from(
        "course_id,title,category,credits,duration_s,min_watch_ratio,topic,kind,quiz\n",
    );
    for c in 0..n {
        let (id, category, credits, duration) = course(c);
        let live = c % 10 == 9;
        csv.push_str(&format!(
            "{id},Course {c},{category},{credits},{duration},0.8,{},{},{}\n",
            if c % 5 == 0 { "management" } else { "general" },
            if live { "live" } else { "course" },
            if live { "no" } else { "yes" }
        ));
    }
    Catalog::parse(&csv).unwrap()
}

/// Peak resident memory of this process so far, MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:"));
    kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<f64> = after
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // Fields 14 and 15 of stat (utime, stime), counted after the command name.
    (f.get(10).unwrap_or(&f64::NAN) + f.get(11).unwrap_or(&f64::NAN)) / 100.0
}

fn score_jobs_lake(events: u64, days: u64, daily_only: bool) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/bench-lake-{events}-{days}"));
    let lake = Lake::open(root.to_str().unwrap()).unwrap();
    assert!(
        lake.days("events").unwrap().len() == days as usize,
        "{}: no lake of {days} days; run `target/release/examples/jobs_bench {events} {days}` first",
        root.display()
    );
    // As the jobs bench sizes its population.
    let users = ((events as f64 / (days as f64 * 0.6 * 28.0)).ceil() as u64).max(10);
    let mut roster = String::from("user_id,org_path,role,level\n");
    for u in 0..users + users / 50 {
        let role = if u % 9 == 0 { "manager" } else { "staff" };
        let branch = u % 97;
        roster.push_str(&format!(
            "emp-{u:06},R{}/branch-{branch:03},{role},L{}\n",
            branch % 5,
            1 + u % 5
        ));
    }
    // `CG_BENCH_NO_POLICY=1`: the same lake scored without roster and policy, for comparison.
    let cfg = match std::env::var("CG_BENCH_NO_POLICY") {
        Ok(v) if v == "1" => ScoreConfig::default(),
        _ => with_policy(&roster),
    };
    let catalog = jobs_catalog();
    let (from, to) = (JOBS_START_DAY, JOBS_START_DAY + days as i64 - 1);
    println!(
        "lake {} ({events} events, {days} days), roster of {} learners ({} of them without activity)",
        root.display(),
        users + users / 50,
        users / 50
    );
    let runs = [("whole period", from), ("last day", to)];
    for (name, first) in runs.into_iter().skip(usize::from(daily_only)) {
        let cpu = cpu_seconds();
        let (report, c, w) = timed_score(&lake, &catalog, &cfg, first, to);
        let tot = report.totals();
        println!(
            "{name}: compute {c:.1} s, write {w:.1} s, CPU {:.1} s, peak RSS {:.0} MiB; {} claims ({} withheld), {} flags, {} open cases, {} warnings, progress {:?}, claim issues {:?}",
            cpu_seconds() - cpu,
            peak_rss_mib(),
            tot.claims,
            tot.withheld,
            tot.flags,
            tot.cases_open,
            report.warnings.len(),
            tot.progress,
            tot.issues
        );
    }
}
