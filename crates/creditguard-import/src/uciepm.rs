//! UCI Educational Process Mining (EPM, Vahdat et al. 2015) → telemetry-v1 heartbeats.
//!
//! 115 students of a digital-electronics lab at the University of Genoa, six lab sessions, each
//! student's work logged as activity records: the window in focus (an `activity` label), the
//! exercise, start and end (local time, whole seconds), and the mouse and keyboard input counted
//! over the record. No media plays: the dataset says how long real people stay at learning
//! material without touching mouse or keyboard, and when they turn to something else.
//!
//! Files `Processes/Session_<n>/<student>.csv`, no header:
//! `session, student_Id, exercise, activity, start_time, end_time, idle_time, mouse_wheel,
//! mouse_wheel_click, mouse_click_left, mouse_click_right, mouse_movement, keystroke`.
//!
//! Mapping:
//! - learner `uci-epm:<student>`, `org_unit` `uci-epm`, device `uci-epm:<student>:lab` (a lab
//!   PC per student), platform `desktop`; a session is a student's records of one lab session
//!   with gaps ≤ 30 minutes;
//! - a *course* is a lab session (`uci-epm-session-<n>`), a *lesson* an exercise (`Es_<session>_<n>`;
//!   `Es` before the first one is started). The exercise label follows the window in focus, and
//!   students flip between the windows of several exercises while working on them (278 of 520
//!   student-sessions change exercise 6 times or more within 10 minutes): exercises as courses
//!   would make that look like hopping between courses;
//! - each record becomes heartbeats over its span, at most [`MAX_SPACING_S`] apart (at its end
//!   when it lasts 0 s), at whole seconds like the source; the last carries the record's input
//!   as `input_events` (wheel + wheel clicks + left and right clicks + keystrokes, plus 1 when the
//!   mouse moved), the others 0, so any run of whole records sums to the recorded input;
//! - `visible` and `playing`: the window in focus is course material, i.e. every activity but
//!   `Other` (the dataset's label for pages unrelated to the course, e.g. social media). The
//!   position advances with the wall clock (`position_s` = seconds since the session began),
//!   so nothing plays faster or slower than real time;
//! - the first record of a session → `course_enter` at its start;
//! - local time (Europe/Rome) → UTC with the EU summer-time rule;
//! - `idle_time` is not used: it often exceeds the record's own span (e.g. 104 000 s in a
//!   9-minute record), so its unit or meaning is unclear.
//!
//! Records with a malformed field are skipped and counted. The catalog: each lab session an
//! `elective` of 1 credit, `duration_s` the median time the students spent in it, min_watch_ratio
//! 0.8 (an assumption: the lab has no credits).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{
    event, file_name, files_in, rfc3339_ms, split_csv, CatalogRow, Error, Import, Options, Result,
};

/// Heartbeats of one record are at most this many seconds apart.
pub const MAX_SPACING_S: i64 = 30;
/// A session ends after this much silence.
const SESSION_GAP_MS: i64 = 30 * 60 * 1000;

/// One activity record.
struct Record {
    file: String,
    line: u64,
    session: u32,
    student: String,
    exercise: String,
    activity: String,
    start_ms: i64,
    end_ms: i64,
    input: i64,
}

/// Imports UCI EPM: `--in` is the dataset folder (with `Processes/`), `Processes/`, one
/// `Session_<n>` folder, or one file.
pub fn import(opts: &Options) -> Result<Import> {
    let files = inputs(&opts.input)?;
    let mut out = Import::default();
    let mut records = Vec::new();
    for f in &files {
        read_file(f, &mut out, &mut records)?;
    }
    records.sort_by(|a, b| {
        (&a.student, a.start_ms, a.end_ms, &a.file, a.line)
            .cmp(&(&b.student, b.start_ms, b.end_ms, &b.file, b.line))
    });
    let mut time_in: BTreeMap<String, HashMap<String, i64>> = BTreeMap::new();
    // The previous record's student, the latest end of theirs so far (records may overlap) and
    // its course.
    let mut prev: Option<(&str, i64, String)> = None;
    let mut session_no = 0u32;
    let mut entered_at: HashMap<String, i64> = HashMap::new();
    for r in &records {
        let course = format!("uci-epm-session-{}", r.session);
        let last = prev.as_ref().filter(|p| p.0 == r.student);
        if last.is_none() {
            session_no = 0;
        }
        let new_session = last.is_none_or(|p| r.start_ms - p.1 > SESSION_GAP_MS);
        if new_session {
            session_no += 1;
            entered_at.clear();
        }
        let changed = new_session || last.is_some_and(|p| p.2 != course);
        let last_end = last.map_or(r.end_ms, |p| p.1.max(r.end_ms));
        let user = format!("uci-epm:{}", r.student);
        let session = format!("{user}:s{}:{session_no}", r.session);
        let id = format!("uci-epm:{}:{}", r.file, r.line);
        let base = |ty: &str, id: String, ms: i64| -> Vec<(&'static str, Value)> {
            vec![
                ("event_id", json!(id)),
                ("type", json!(ty)),
                ("ts", json!(rfc3339_ms(ms))),
                ("user_id", json!(user)),
                ("org_unit", json!("uci-epm")),
                ("session_id", json!(session)),
                ("device_id", json!(format!("{user}:lab"))),
                ("platform", json!("desktop")),
            ]
        };
        if changed {
            let mut e = base("course_enter", format!("{id}:enter"), r.start_ms);
            e.push(("course_id", json!(course)));
            out.push(event(e));
            out.stats
                .add("uci-epm: course_enter at the start of a session");
        }
        let entered = *entered_at.entry(course.clone()).or_insert(r.start_ms);
        let course_material = r.activity != "Other";
        let span_s = (r.end_ms - r.start_ms) / 1000;
        let n = ((span_s + MAX_SPACING_S - 1) / MAX_SPACING_S).max(1);
        for k in 1..=n {
            let t = r.start_ms + (span_s * k / n) * 1000;
            let mut e = base(
                "heartbeat",
                if k == n {
                    id.clone()
                } else {
                    format!("{id}:{k}")
                },
                t,
            );
            e.extend([
                ("course_id", json!(course)),
                ("lesson_id", json!(r.exercise)),
                ("position_s", json!(((t - entered) / 1000).max(0) as f64)),
                ("playing", json!(course_material)),
                ("visible", json!(course_material)),
                ("input_events", json!(if k == n { r.input } else { 0 })),
            ]);
            out.push(event(e));
            if k < n {
                out.stats
                    .add("uci-epm: further heartbeat of a record longer than 30 s");
            }
        }
        *time_in
            .entry(course.clone())
            .or_default()
            .entry(r.student.clone())
            .or_default() += r.end_ms - r.start_ms;
        prev = Some((&r.student, last_end, course));
    }
    out.catalog = time_in
        .into_iter()
        .map(|(course, per_student)| {
            let mut ms: Vec<i64> = per_student.into_values().collect();
            ms.sort_unstable();
            CatalogRow {
                title: format!(
                    "Deeds lab session {} (UCI EPM)",
                    course.trim_start_matches("uci-epm-session-")
                ),
                course_id: course,
                category: "elective",
                credits: 1.0,
                duration_s: ms[ms.len() / 2] as f64 / 1000.0,
                min_watch_ratio: 0.8,
            }
        })
        .collect();
    Ok(out)
}

/// The CSV files of an input: a file; or `Processes/Session_*/*.csv`, `Session_*/*.csv` or
/// `*.csv` in a folder.
fn inputs(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let processes = if input.join("Processes").is_dir() {
        input.join("Processes")
    } else {
        input.to_path_buf()
    };
    let rd = std::fs::read_dir(&processes).map_err(|e| Error::Io(processes.clone(), e))?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && file_name(p).starts_with("Session_"))
        .collect();
    dirs.sort();
    let mut files = Vec::new();
    for d in &dirs {
        files.extend(files_in(d, &[".csv"])?);
    }
    if files.is_empty() {
        files = files_in(&processes, &[".csv"])?;
    }
    if files.is_empty() {
        return Err(Error::Input(format!(
            "{}: no CSV files (expected Processes/Session_<n>/<student>.csv)",
            input.display()
        )));
    }
    Ok(files)
}

fn read_file(path: &Path, out: &mut Import, records: &mut Vec<Record>) -> Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let session_dir = path
        .parent()
        .map(|p| file_name(p))
        .filter(|n| n.starts_with("Session_"));
    let file = match session_dir {
        Some(d) => format!("{d}/{}", file_name(path)),
        None => file_name(path),
    };
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.stats.records += 1;
        match parse(line) {
            Some((session, student, exercise, activity, start_ms, end_ms, input)) => {
                if end_ms < start_ms {
                    out.stats.skip("uci-epm: end_time before start_time");
                    continue;
                }
                records.push(Record {
                    file: file.clone(),
                    line: i as u64 + 1,
                    session,
                    student,
                    exercise,
                    activity,
                    start_ms,
                    end_ms,
                    input,
                });
            }
            None => out.stats.skip("uci-epm: malformed record"),
        }
    }
    Ok(())
}

type Parsed = (u32, String, String, String, i64, i64, i64);

fn parse(line: &str) -> Option<Parsed> {
    let f: Vec<String> = split_csv(line.trim_end_matches('\r'))
        .into_iter()
        .map(|s| s.trim().to_string())
        .collect();
    if f.len() != 13 {
        return None;
    }
    let n = |i: usize| f[i].parse::<i64>().ok().filter(|v| *v >= 0);
    let session = f[0].parse::<u32>().ok()?;
    let (student, exercise, activity) = (f[1].clone(), f[2].clone(), f[3].clone());
    if student.is_empty() || exercise.is_empty() || activity.is_empty() {
        return None;
    }
    let start = local_ms(&f[4])?;
    let end = local_ms(&f[5])?;
    let (wheel, wheel_click, left, right, movement, keys) =
        (n(7)?, n(8)?, n(9)?, n(10)?, n(11)?, n(12)?);
    let input = wheel + wheel_click + left + right + keys + i64::from(movement > 0);
    Some((session, student, exercise, activity, start, end, input))
}

/// `d.m.yyyy h:m:s` in Europe/Rome local time → UTC milliseconds.
fn local_ms(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once(' ')?;
    let d: Vec<i64> = date
        .split('.')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 || !(1..=12).contains(&d[1]) || !(1..=31).contains(&d[0]) {
        return None;
    }
    if t[0] > 23 || t[1] > 59 || t[2] > 60 {
        return None;
    }
    let day = creditguard_contract::time::days_from_civil(d[2], d[1] as u32, d[0] as u32);
    let local_s = day * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    // CET is UTC+1; summer time (UTC+2) runs from 01:00 UTC on the last Sunday of March to
    // 01:00 UTC on the last Sunday of October.
    let utc_guess = local_s - 3600;
    let offset = if in_summer_time(utc_guess, d[2]) {
        7200
    } else {
        3600
    };
    Some((local_s - offset) * 1000)
}

/// Whether UTC second `utc_s` of `year` falls in EU summer time.
fn in_summer_time(utc_s: i64, year: i64) -> bool {
    let last_sunday = |month: u32| {
        let last = creditguard_contract::time::days_from_civil(year, month, 31);
        // 1970-01-01 was a Thursday: (days + 4) % 7 is the weekday, 0 = Sunday.
        last - (last + 4).rem_euclid(7)
    };
    let from = last_sunday(3) * 86_400 + 3600;
    let to = last_sunday(10) * 86_400 + 3600;
    (from..to).contains(&utc_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_follows_eu_summer_time() {
        // 23.10.2014 is in summer time (UTC+2), 13.11.2014 in winter time (UTC+1).
        assert_eq!(
            rfc3339_ms(local_ms("23.10.2014 11:17:34").unwrap()),
            "2014-10-23T09:17:34.000000Z"
        );
        assert_eq!(
            rfc3339_ms(local_ms("13.11.2014 9:5:7").unwrap()),
            "2014-11-13T08:05:07.000000Z"
        );
        // 2014's changes: 30 March and 26 October.
        assert_eq!(
            rfc3339_ms(local_ms("26.10.2014 12:00:00").unwrap()),
            "2014-10-26T11:00:00.000000Z"
        );
        assert_eq!(
            rfc3339_ms(local_ms("30.3.2014 12:00:00").unwrap()),
            "2014-03-30T10:00:00.000000Z"
        );
        assert!(local_ms("32.10.2014 11:17:34").is_none());
    }
}
