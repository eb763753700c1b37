//! Small hand-built event sequences for the detector tests: each helper writes one telemetry-v1
//! JSON line; [`frame`] validates them with the contract's parser and turns them into the frame a
//! detector sees (through Parquet, like the lake, then de-duplication).

use std::sync::atomic::{AtomicU64, Ordering};

use creditguard_contract::{parse_event, time::format_rfc3339_us, EventBatchBuilder, Flag};
use polars::prelude::*;

use crate::catalog::{Catalog, Course};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// 2026-03-02T08:00:00Z: every test day starts here (seconds given to helpers are offsets).
pub const T0_US: i64 = 1_772_438_400_000_000;

pub fn ts(t_s: f64) -> String {
    format_rfc3339_us(T0_US + (t_s * 1e6).round() as i64)
}

fn id() -> String {
    format!("e{:08}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// A heartbeat at `t` seconds.
#[allow(clippy::too_many_arguments)]
pub fn hb(
    u: &str,
    s: &str,
    c: &str,
    l: &str,
    t: f64,
    pos: f64,
    playing: bool,
    visible: bool,
) -> String {
    format!(
        r#"{{"event_id":"{}","type":"heartbeat","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"{s}","device_id":"d-{s}","course_id":"{c}","lesson_id":"{l}","position_s":{pos},"playing":{playing},"visible":{visible}}}"#,
        id(),
        ts(t)
    )
}

/// `line` with `received_at` set to `t` seconds (the platform's receipt time).
pub fn received(line: &str, t: f64) -> String {
    let body = line.strip_suffix('}').expect("a JSON object");
    format!(r#"{body},"received_at":"{}"}}"#, ts(t))
}

pub fn vis(u: &str, s: &str, t: f64, visible: bool) -> String {
    format!(
        r#"{{"event_id":"{}","type":"visibility","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"{s}","visible":{visible}}}"#,
        id(),
        ts(t)
    )
}

pub fn seek(u: &str, s: &str, c: &str, l: &str, t: f64, from: f64, to: f64) -> String {
    format!(
        r#"{{"event_id":"{}","type":"video_seek","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"{s}","course_id":"{c}","lesson_id":"{l}","seek_from_s":{from},"seek_to_s":{to}}}"#,
        id(),
        ts(t)
    )
}

pub fn video(kind: &str, u: &str, s: &str, c: &str, l: &str, t: f64, pos: f64) -> String {
    format!(
        r#"{{"event_id":"{}","type":"{kind}","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"{s}","course_id":"{c}","lesson_id":"{l}","position_s":{pos}}}"#,
        id(),
        ts(t)
    )
}

pub fn complete(u: &str, c: &str, t: f64, credits: f64) -> String {
    format!(
        r#"{{"event_id":"{}","type":"course_complete","ts":"{}","user_id":"{u}","org_unit":"ou1","course_id":"{c}","credits":{credits},"category":"elective"}}"#,
        id(),
        ts(t)
    )
}

pub fn complete_in(u: &str, ou: &str, c: &str, t: f64, credits: f64) -> String {
    format!(
        r#"{{"event_id":"{}","type":"course_complete","ts":"{}","user_id":"{u}","org_unit":"{ou}","course_id":"{c}","credits":{credits},"category":"elective"}}"#,
        id(),
        ts(t)
    )
}

/// Any session-bearing event with device, address and optional location.
#[allow(clippy::too_many_arguments)]
pub fn act(
    kind: &str,
    u: &str,
    s: &str,
    dev: &str,
    ip: &str,
    t: f64,
    geo: Option<(f64, f64)>,
) -> String {
    let geo = geo
        .map(|(a, b)| format!(r#","geo_lat":{a},"geo_lon":{b}"#))
        .unwrap_or_default();
    format!(
        r#"{{"event_id":"{}","type":"{kind}","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"{s}","device_id":"{dev}","ip":"{ip}","course_id":"c1"{geo}}}"#,
        id(),
        ts(t)
    )
}

pub fn enter(u: &str, s: &str, c: &str, t: f64) -> String {
    format!(
        r#"{{"event_id":"{}","type":"course_enter","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"{s}","course_id":"{c}"}}"#,
        id(),
        ts(t)
    )
}

#[allow(clippy::too_many_arguments)]
pub fn quiz(
    u: &str,
    c: &str,
    q: &str,
    t: f64,
    questions: i64,
    elapsed: f64,
    score: f64,
    max: f64,
) -> String {
    format!(
        r#"{{"event_id":"{}","type":"quiz_submit","ts":"{}","user_id":"{u}","org_unit":"ou1","session_id":"s-{u}","course_id":"{c}","quiz_id":"{q}","score":{score},"max_score":{max},"questions":{questions},"elapsed_s":{elapsed}}}"#,
        id(),
        ts(t)
    )
}

pub fn checkin(u: &str, c: &str, dev: &str, t: f64) -> String {
    format!(
        r#"{{"event_id":"{}","type":"checkin","ts":"{}","user_id":"{u}","org_unit":"ou1","course_id":"{c}","method":"qr","device_id":"{dev}","ip":"10.0.0.9"}}"#,
        id(),
        ts(t)
    )
}

/// The lake's `events` rows for these lines, as a detector sees them ([`crate::events::prepare`]).
pub fn frame(lines: &[String]) -> DataFrame {
    let mut b = EventBatchBuilder::new();
    for (i, line) in lines.iter().enumerate() {
        let ev = parse_event(line.as_bytes())
            .unwrap_or_else(|e| panic!("test event {line}: {}", e.reason));
        b.push(&ev, "test", i as i64);
    }
    let batch = b.finish();
    let mut buf = Vec::new();
    creditguard_lake::write_parquet_to(&mut buf, batch.schema(), &[batch]).unwrap();
    let raw = ParquetReader::new(std::io::Cursor::new(buf))
        .finish()
        .unwrap();
    crate::events::prepare(raw.lazy().select(crate::events::scan_columns()))
        .unwrap()
        .collect()
        .unwrap()
}

/// The same events reordered (reversed, then interleaved) with every third one delivered twice.
pub fn shuffle_with_duplicates(lines: &[String]) -> Vec<String> {
    let mut rev: Vec<String> = lines.iter().rev().cloned().collect();
    let (a, b) = rev.split_at_mut(lines.len() / 2);
    let mut out = Vec::new();
    for i in 0..a.len().max(b.len()) {
        if let Some(x) = b.get(i) {
            out.push(x.clone());
        }
        if let Some(x) = a.get(i) {
            out.push(x.clone());
        }
    }
    let dups: Vec<String> = lines.iter().step_by(3).cloned().collect();
    out.extend(dups);
    out
}

/// Rule names of flags, sorted.
pub fn rules(flags: &[Flag]) -> Vec<&str> {
    let mut r: Vec<&str> = flags.iter().map(|f| f.rule.as_str()).collect();
    r.sort_unstable();
    r
}

/// c1: 1 h, 4 credits, 80 % to watch; c2..c9: 30 min, 2 credits, 80 %.
pub fn catalog() -> Catalog {
    let mut courses = vec![Course {
        course_id: "c1".into(),
        title: "Safety".into(),
        category: "mandatory".into(),
        credits: 4.0,
        duration_s: 3600.0,
        min_watch_ratio: 0.8,
    }];
    for i in 2..10 {
        courses.push(Course {
            course_id: format!("c{i}"),
            title: format!("Course {i}"),
            category: "elective".into(),
            credits: 2.0,
            duration_s: 1800.0,
            min_watch_ratio: 0.8,
        });
    }
    Catalog::from_courses(courses)
}
