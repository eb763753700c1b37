//! The `automation` rules on real people, from the public logs in `../shared/datasets/` (read in
//! place, never copied). Skips, saying so, when a dataset is absent.
//!
//! - UCI EPM: the imported heartbeats (with the students' real mouse and keyboard counts) go
//!   through ingest and every detector with the default settings, as `creditguard run` does; no
//!   `automation` flag may come out, and no student at course material may go as long without
//!   input as `no_input` requires (measured on more than 100 students).
//! - EdNet KT4: a person's own action timing, measured as if each action were a heartbeat, by
//!   the cadence rule's code: its spread must be far above `cadence_max_std_s`.

use creditguard_contract::time::DayRange;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use creditguard_detect::automation::stretches;
use creditguard_detect::config::AutomationConfig;
use creditguard_detect::{load_events, read_flags, run_jobs, Catalog, Flag, JobsConfig};
use creditguard_import::{catalog_csv, import, write_ndjson, Format, Options};
use creditguard_lake::Lake;
use polars::prelude::*;

fn dataset(name: &str) -> Option<PathBuf> {
    let d = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets"
    ))
    .join(name);
    if d.is_dir() {
        Some(d)
    } else {
        println!(
            "SKIPPED: {} is absent; the real-log detection checks did not run",
            d.display()
        );
        None
    }
}

/// The lines ingested into a fresh lake in `dir`, as `creditguard run` ingests a file.
fn lake_of(lines: &[String], dir: &Path) -> Lake {
    assert!(!lines.is_empty(), "nothing imported");
    let file = dir.join("events.ndjson");
    write_ndjson(&file, lines).unwrap();
    let lake = Lake::open(dir.join("lake").to_str().unwrap()).unwrap();
    let stats = creditguard_ingest::ingest(
        &lake,
        &[creditguard_ingest::Input::Path(file)],
        &creditguard_ingest::IngestOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(stats.valid, lines.len() as u64, "{stats:?}");
    lake
}

fn event_days(lake: &Lake) -> (i64, i64) {
    let days = lake.days("events").unwrap();
    (days[0], days[days.len() - 1])
}

/// Every detector with the default settings over all days; the flags.
fn run_all(lake: &Lake, catalog: &Catalog) -> Vec<Flag> {
    let (first, last) = event_days(lake);
    run_jobs(
        lake,
        catalog,
        &JobsConfig::default(),
        DayRange::of_indices(first, last).unwrap(),
        "real-logs",
    )
    .unwrap();
    (first..=last)
        .flat_map(|d| read_flags(lake, d).unwrap())
        .collect()
}

fn i64s(df: &DataFrame, name: &str) -> Vec<i64> {
    let ca = df.column(name).unwrap().i64().unwrap().clone();
    (0..ca.len()).map(|i| ca.get(i).unwrap_or(0)).collect()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    let ca = df.column(name).unwrap().f64().unwrap().clone();
    (0..ca.len())
        .map(|i| ca.get(i).unwrap_or(f64::NAN))
        .collect()
}

fn strs(df: &DataFrame, name: &str) -> Vec<String> {
    let ca = df.column(name).unwrap().str().unwrap().clone();
    (0..ca.len())
        .map(|i| ca.get(i).unwrap_or_default().to_string())
        .collect()
}

#[test]
fn uci_epm_students_are_never_without_input() {
    let Some(d) = dataset("uci_epm_deeds") else {
        return;
    };
    let out = import(
        Format::UciEpm,
        &Options {
            input: d,
            contents: None,
        },
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake_of(&out.lines, tmp.path());
    let catalog_file = tmp.path().join("catalog.csv");
    std::fs::write(&catalog_file, catalog_csv(&out.catalog)).unwrap();
    let flags = run_all(&lake, &Catalog::load(&catalog_file).unwrap());
    let mut per_rule = BTreeMap::<&str, usize>::new();
    for f in &flags {
        *per_rule.entry(f.rule.as_str()).or_default() += 1;
    }
    println!(
        "uci-epm: {} learners, flags per rule: {per_rule:?}",
        out.stats.users.len()
    );

    assert!(
        per_rule.keys().all(|r| !r.starts_with("automation.")),
        "{per_rule:?}"
    );

    // A lab session is one course, so `no_input` (two courses at least) has nothing to judge
    // here: its measurement says how long people at course material go without input.
    let cfg = AutomationConfig::default();
    let (first, last) = event_days(&lake);
    let events = load_events(&lake, first, last).unwrap();
    let s = stretches(events.lazy(), &cfg).unwrap().collect().unwrap();
    let (users, play) = (strs(&s, "user_id"), f64s(&s, "play_s"));
    let (beats, reported, inputs) = (
        i64s(&s, "heartbeats"),
        i64s(&s, "input_reported"),
        i64s(&s, "input_events"),
    );
    let judged: Vec<usize> = (0..s.height())
        .filter(|&i| reported[i] as f64 >= beats[i] as f64 * cfg.no_input_reported_share)
        .collect();
    let judged_users: BTreeSet<&str> = judged.iter().map(|&i| users[i].as_str()).collect();
    let longest = judged.iter().map(|&i| play[i]).fold(0.0, f64::max);
    let longest_silent = judged
        .iter()
        .filter(|&&i| inputs[i] == 0)
        .map(|&i| play[i])
        .fold(0.0, f64::max);
    // Within stretches too: the longest run of a session's heartbeats that all report 0.
    let mut run_start: BTreeMap<String, Option<i64>> = BTreeMap::new();
    let mut longest_run_s = 0.0f64;
    for l in &out.lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["type"] != "heartbeat" {
            continue;
        }
        let t = creditguard_contract::time::parse_rfc3339_us(v["ts"].as_str().unwrap()).unwrap();
        let start = run_start
            .entry(v["session_id"].as_str().unwrap().to_string())
            .or_default();
        if v["input_events"].as_i64() == Some(0) {
            let from = *start.get_or_insert(t);
            longest_run_s = longest_run_s.max((t - from) as f64 / 1e6);
        } else {
            *start = None;
        }
    }
    println!(
        "uci-epm: {} stretches with input counts on {} learners, longest {:.0} s; longest \
         stretch without input {:.0} s; longest run of heartbeats without input {:.0} s \
         (no_input needs {:.0} s)",
        judged.len(),
        judged_users.len(),
        longest,
        longest_silent,
        longest_run_s,
        cfg.no_input_min_play_s
    );
    assert!(
        judged_users.len() >= 100,
        "too few learners measured: {}",
        judged_users.len()
    );
    assert!(longest_silent < cfg.no_input_min_play_s);
    assert!(longest_run_s > 0.0 && longest_run_s < cfg.no_input_min_play_s);
}

#[test]
fn ednet_kt4_human_action_timing_is_no_timer() {
    let Some(d) = dataset("ednet_kt4_sample") else {
        return;
    };
    let out = import(
        Format::EdnetKt4,
        &Options {
            input: d,
            contents: None,
        },
    )
    .unwrap();
    // Each action of a session as a playing, visible heartbeat: the stretches are then runs of
    // a person's actions at most `max_gap_s` apart.
    let beats: Vec<String> = out
        .lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let lesson = ["lesson_id", "quiz_id", "course_id"]
                .iter()
                .find_map(|k| v[*k].as_str())
                .unwrap();
            serde_json::json!({
                "event_id": v["event_id"], "type": "heartbeat", "ts": v["ts"],
                "user_id": v["user_id"], "session_id": v["session_id"],
                "course_id": v["course_id"], "lesson_id": lesson,
                "position_s": v["position_s"].as_f64().unwrap_or(0.0),
                "playing": true, "visible": true,
            })
            .to_string()
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let lake = lake_of(&beats, tmp.path());
    let (first, last) = event_days(&lake);
    let events = load_events(&lake, first, last).unwrap();
    let cfg = AutomationConfig::default();
    let s = stretches(events.lazy(), &cfg).unwrap().collect().unwrap();
    let (intervals, courses, std) = (
        i64s(&s, "intervals"),
        i64s(&s, "courses"),
        f64s(&s, "interval_std_s"),
    );
    let long: Vec<usize> = (0..s.height())
        .filter(|&i| intervals[i] >= 30 && courses[i] >= i64::from(cfg.cadence_min_courses))
        .collect();
    let smallest = long.iter().map(|&i| std[i]).fold(f64::INFINITY, f64::min);
    let most = long.iter().map(|&i| intervals[i]).max().unwrap_or(0);
    println!(
        "ednet-kt4: {} runs of ≥ 30 action intervals over ≥ {} courses (up to {most} \
         intervals); smallest spread {smallest:.3} s (timer_cadence: ≤ {} s over ≥ {})",
        long.len(),
        cfg.cadence_min_courses,
        cfg.cadence_max_std_s,
        cfg.cadence_min_intervals
    );
    assert!(long.len() >= 10, "too few runs to judge: {}", long.len());
    assert!(smallest > 100.0 * cfg.cadence_max_std_s, "{smallest}");
}
