//! Scorer throughput on a synthetic lake: `cargo bench --release -p creditguard-score`
//! (`harness = false`; prints its figures).
//!
//! 30 days × `USERS` learners, each with heartbeats on one course per day and a completion every
//! third day; 5 % of learners carry a course-less multi-login flag and a watch-time flag per day,
//! so the activity join is exercised.

use std::time::Instant;

use creditguard_contract::time::{format_day, format_rfc3339_us, parse_day};
use creditguard_contract::{events_schema, parse_event, stable_id, EventBatchBuilder, Flag};
use creditguard_lake::Lake;
use creditguard_score::{compute, tables, write_results, Catalog, ScoreConfig};

const USERS: usize = 4000;
const DAYS: i64 = 30;
const BEATS: i64 = 20;
use creditguard_contract::time::DAY_US;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let mut csv = String::from("course_id,title,category,credits,duration_s,min_watch_ratio\n");
    for c in 0..50 {
        csv.push_str(&format!(
            "c{c},Course {c},{},2,1800,0.8\n",
            if c % 3 == 0 { "mandatory" } else { "elective" }
        ));
    }
    let catalog = Catalog::parse(&csv).unwrap();
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
    let cfg = ScoreConfig::default();
    for round in 0..3 {
        let t = Instant::now();
        let report = compute(&lake, &catalog, &cfg, first, first + DAYS - 1, "bench").unwrap();
        let c = t.elapsed().as_secs_f64();
        let t = Instant::now();
        write_results(&lake, &report, true).unwrap();
        let w = t.elapsed().as_secs_f64();
        let tot = report.totals();
        println!(
            "round {round}: compute {c:.3} s ({:.2} M events/s scanned, {:.0} claims/s), write {w:.3} s; {} withheld, {} open cases",
            events as f64 / c / 1e6,
            claims as f64 / c,
            tot.withheld,
            tot.cases_open
        );
    }
}
