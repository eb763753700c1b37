//! Open edX tracking logs → telemetry-v1.
//!
//! Input: a `tracking.log` (one JSON event per line), a `.json` file holding one event (the
//! event-routing-backends fixtures, pretty-printed), or a directory of them (searched
//! recursively for `*.log` and `*.json`). Both the classic envelope (`event_type`, `time`,
//! `event`) and the newer one (`name`, `timestamp`, `data`) are read. An identical line seen in
//! two files is one event (counted as a duplicate).
//!
//! Mapping (the fields named in `contract/telemetry-v1.md`):
//! - `user_id` = `openedx:<username>` (`username`, else `context.username`); no username → skipped;
//! - `session_id` = the edX session key (`session`, else `context.session`); an event without
//!   one takes the key of the user's nearest keyed event within 30 minutes (server events of a
//!   browser session often lack it), else a session numbered by 30-minute silences;
//! - `device_id` = `ua-` + hash of the user agent; `ip` = `ip` / `context.ip`; `org_unit` =
//!   `context.org_id`; `platform` = `web` (`other` for `event_source` `mobile`);
//! - `course_id` = `context.course_id`, else the course in the page URL;
//! - `play_video` / `edx.video.played` → `video_play`, `pause_video` / `edx.video.paused` →
//!   `video_pause`, `stop_video` / `edx.video.stopped` → `video_ended` (position =
//!   `currentTime`, lesson = the video block `id`); `seek_video` / `edx.video.position.changed`
//!   → `video_seek` (`old_time` → `new_time`); `speed_change_video` /
//!   `edx.video.speed.changed` → `video_rate` (`new_speed`);
//! - server `problem_check` (with `grade`, `max_grade`) → `quiz_submit`: `questions` = the
//!   submitted inputs, `score` = `grade`, `max_score` = `max_grade`. Open edX logs no time on
//!   task, so `elapsed_s` is *derived*: the time since the session last displayed a unit
//!   (courseware page view, `seq_goto` / `seq_next` / `seq_prev`, `problem_show`, the
//!   `…/problem_get` and `…/goto_position` calls, `edx.ui.lms.sequence.*`), at most 30 minutes
//!   back; without one the check is skipped. (Timing from the previous event of any kind measured
//!   0.02 s on the real logs: hint feedback and AJAX calls accompany the check itself.) The browser `problem_check` (answers only, no grade) is skipped: its server twin
//!   carries the grade;
//! - server page views of courseware (`/courses/<id>/courseware…`) → `course_enter`;
//! - events whose type names a login (`/user_api/v1/account/login_session/`, `/accounts/login`,
//!   `/login_ajax`) and that carry a username → `login`; `/logout` → `logout`;
//! - `edx.course.grade.passed.first_time` → `course_complete` with the synthesized catalog's
//!   credits (1) and category (`elective`);
//! - every other event type: no telemetry-v1 equivalent (skipped, counted per type; page views
//!   and AJAX calls are counted together).
//!
//! The synthesized catalog has one row per course seen: `elective`, 1 credit, `duration_s` = the
//! sum over its videos of the reported `duration` or else the furthest position seen (a course
//! with no video position is left out, see `Import::uncatalogued`), `min_watch_ratio` 0.8.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use creditguard_contract::time::parse_rfc3339_us;
use serde_json::{json, Map, Value};

use crate::{event, file_name, CatalogRow, Error, Import, Options, Result};

const SESSION_GAP_US: i64 = 30 * 60 * 1_000_000;

/// One parsed source event.
struct Rec {
    file: String,
    line: u64,
    t: i64,
    user: String,
    event_type: String,
    source: String,
    payload: Value,
    context: Map<String, Value>,
    top: Map<String, Value>,
    session_key: Option<String>,
}

fn files(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![input.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| Error::Io(dir.clone(), e))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log" || x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::Input(format!(
            "{}: no *.log or *.json files",
            input.display()
        )));
    }
    Ok(out)
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A number from a JSON number or a numeric string.
fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// The course in an LMS URL: `/courses/course-v1:X+Y+Z/…` or `/courses/Org/Num/Run/…`.
fn course_from_url(url: &str) -> Option<String> {
    let rest = &url[url.find("/courses/")? + "/courses/".len()..];
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.first()?.starts_with("course-v1:") {
        Some(parts[0].to_string())
    } else if parts.len() >= 3 && parts[..3].iter().all(|p| !p.is_empty()) {
        Some(parts[..3].join("/"))
    } else {
        None
    }
}

/// A navigation that displays a unit (and so its problems): where the time spent on a problem
/// can start. Events that accompany a check (`problem_graded`, the `…/problem_check` AJAX call,
/// hint feedback) or typing (`…/input_ajax`) are not: timing from them measured fractions of a
/// second on the real logs.
fn displays_unit(r: &Rec) -> bool {
    let et = r.event_type.as_str();
    (et.starts_with("/courses/") && et.contains("/courseware"))
        || et.ends_with("/problem_get")
        || et.ends_with("/goto_position")
        || matches!(et, "seq_goto" | "seq_next" | "seq_prev" | "problem_show")
        || et.starts_with("edx.ui.lms.sequence.")
        || et == "edx.ui.lms.outline.selected"
}

fn parse_doc(
    v: Value,
    file: &str,
    line: u64,
    out: &mut Import,
    seen: &mut HashSet<String>,
    recs: &mut Vec<Rec>,
) {
    let Value::Object(top) = v else {
        out.stats.skip("openedx: not a JSON object");
        return;
    };
    let key = Value::Object(top.clone()).to_string();
    if !seen.insert(key) {
        out.stats
            .skip("openedx: duplicate (an identical event was already read)");
        return;
    }
    if top.contains_key("messageId") && !top.contains_key("event_type") {
        out.stats
            .skip("openedx: Segment.io message (not a tracking-log event)");
        return;
    }
    let context = match top.get("context") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    let Some(event_type) = str_of(&top, "event_type")
        .or_else(|| str_of(&top, "name"))
        .map(str::to_string)
    else {
        out.stats.skip("openedx: no event_type / name");
        return;
    };
    let Some(user) = str_of(&top, "username")
        .or_else(|| str_of(&context, "username"))
        .map(str::to_string)
    else {
        out.stats.skip("openedx: no username (anonymous event)");
        return;
    };
    let time = str_of(&top, "time").or_else(|| str_of(&top, "timestamp"));
    let Some(t) = time.and_then(|s| parse_rfc3339_us(s).ok()) else {
        out.stats.skip("openedx: missing or unparseable time");
        return;
    };
    let raw_payload = top.get("event").or_else(|| top.get("data")).cloned();
    let payload = match raw_payload {
        Some(Value::String(s)) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        Some(v) => v,
        None => Value::Null,
    };
    let session_key = str_of(&top, "session")
        .or_else(|| str_of(&context, "session"))
        .map(str::to_string);
    let source = str_of(&top, "event_source").unwrap_or("").to_string();
    recs.push(Rec {
        file: file.to_string(),
        line,
        t,
        user,
        event_type,
        source,
        payload,
        context,
        top,
        session_key,
    });
}

/// Imports Open edX tracking logs.
pub fn import(opts: &Options) -> Result<Import> {
    let mut out = Import::default();
    let mut seen = HashSet::new();
    let mut recs = Vec::new();
    for f in files(&opts.input)? {
        let text = std::fs::read(&f).map_err(|e| Error::Io(f.clone(), e))?;
        let text = String::from_utf8_lossy(&text);
        // Relative to the input folder, so two `tracking.log` in different folders differ.
        let name = f
            .strip_prefix(&opts.input)
            .ok()
            .map(|r| r.to_string_lossy().into_owned())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| file_name(&f));
        let whole_doc = f.extension().is_some_and(|x| x == "json");
        if whole_doc {
            out.stats.records += 1;
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => parse_doc(v, &name, 1, &mut out, &mut seen, &mut recs),
                Err(_) => out.stats.skip("openedx: not valid JSON"),
            }
            continue;
        }
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            out.stats.records += 1;
            match serde_json::from_str::<Value>(l) {
                Ok(v) => parse_doc(v, &name, i as u64 + 1, &mut out, &mut seen, &mut recs),
                Err(_) => out.stats.skip("openedx: not valid JSON"),
            }
        }
    }
    recs.sort_by(|a, b| (&a.user, a.t, &a.file, a.line).cmp(&(&b.user, b.t, &b.file, b.line)));
    let sessions = assign_sessions(&recs);

    // Videos per course: (reported duration, furthest position) for the catalog.
    let mut videos: BTreeMap<String, BTreeMap<String, (Option<f64>, f64)>> = BTreeMap::new();
    let mut events: Vec<(usize, Map<String, Value>)> = Vec::new();
    // Last unit display per (user, session), for problem_check elapsed.
    let mut last_display: HashMap<(String, String), i64> = HashMap::new();

    for (i, r) in recs.iter().enumerate() {
        let session = sessions[i].clone();
        let skey = (r.user.clone(), session.clone());
        let displayed_at = last_display.get(&skey).copied();
        if displays_unit(r) {
            last_display.insert(skey.clone(), r.t);
        }
        let course = str_of(&r.context, "course_id")
            .map(str::to_string)
            .or_else(|| {
                r.top
                    .get("page")
                    .and_then(Value::as_str)
                    .and_then(course_from_url)
            })
            .or_else(|| {
                r.payload
                    .get("course_id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            });
        let mut base: Vec<(&str, Value)> = vec![
            ("event_id", json!(format!("openedx:{}:{}", r.file, r.line))),
            (
                "ts",
                json!(creditguard_contract::time::format_rfc3339_us(r.t)),
            ),
            ("user_id", json!(format!("openedx:{}", r.user))),
            ("session_id", json!(session)),
            (
                "platform",
                json!(if r.source == "mobile" { "other" } else { "web" }),
            ),
        ];
        if let Some(org) = str_of(&r.context, "org_id") {
            base.push(("org_unit", json!(org)));
        }
        let agent = str_of(&r.top, "agent").or_else(|| str_of(&r.context, "agent"));
        if let Some(a) = agent {
            base.push((
                "device_id",
                json!(format!(
                    "ua-{}",
                    &creditguard_contract::stable_id(&[a])[..12]
                )),
            ));
        }
        let ip = str_of(&r.top, "ip").or_else(|| str_of(&r.context, "ip"));
        if let Some(ip) = ip.filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()) {
            base.push(("ip", json!(ip)));
        }
        let with =
            |mut base: Vec<(&'static str, Value)>, ty: &str, extra: Vec<(&'static str, Value)>| {
                base.push(("type", json!(ty)));
                base.extend(extra);
                event(base)
            };
        let video = match r.event_type.as_str() {
            "play_video" | "edx.video.played" => Some("video_play"),
            "pause_video" | "edx.video.paused" => Some("video_pause"),
            "stop_video" | "edx.video.stopped" => Some("video_ended"),
            "seek_video" | "edx.video.position.changed" => Some("video_seek"),
            "speed_change_video" | "edx.video.speed.changed" => Some("video_rate"),
            _ => None,
        };
        let et = r.event_type.as_str();
        if let Some(ty) = video {
            let p = &r.payload;
            let Some(course) = course else {
                out.stats.skip(format!("openedx: {et} without a course"));
                continue;
            };
            let Some(lesson) = p
                .get("id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            else {
                out.stats.skip(format!("openedx: {et} without a video id"));
                continue;
            };
            let mut extra = vec![("course_id", json!(course)), ("lesson_id", json!(lesson))];
            let mut furthest = None;
            match ty {
                "video_seek" => {
                    let (Some(from), Some(to)) = (num(p.get("old_time")), num(p.get("new_time")))
                    else {
                        out.stats
                            .skip(format!("openedx: {et} without old_time/new_time"));
                        continue;
                    };
                    if from < 0.0 || to < 0.0 {
                        out.stats
                            .skip(format!("openedx: {et} with a negative time"));
                        continue;
                    }
                    extra.push(("seek_from_s", json!(from)));
                    extra.push(("seek_to_s", json!(to)));
                    furthest = Some(from.max(to));
                }
                "video_rate" => {
                    let Some(rate) = num(p.get("new_speed")).filter(|x| *x > 0.0 && *x <= 16.0)
                    else {
                        out.stats
                            .skip(format!("openedx: {et} without a valid new_speed"));
                        continue;
                    };
                    extra.push(("rate", json!(rate)));
                }
                _ => {
                    let Some(pos) = num(p.get("currentTime")).filter(|x| *x >= 0.0) else {
                        out.stats.skip(format!("openedx: {et} without currentTime"));
                        continue;
                    };
                    extra.push(("position_s", json!(pos)));
                    furthest = Some(pos);
                }
            }
            let duration = num(p.get("duration")).filter(|d| *d > 0.0);
            if let Some(d) = duration {
                if ty != "video_seek" && ty != "video_rate" {
                    extra.push(("duration_s", json!(d)));
                }
            }
            let v = videos
                .entry(course.clone())
                .or_default()
                .entry(lesson.to_string())
                .or_insert((None, 0.0));
            if duration.is_some() {
                v.0 = duration;
            }
            v.1 = v.1.max(furthest.unwrap_or(0.0));
            events.push((i, with(base, ty, extra)));
        } else if et == "problem_check" {
            if r.source != "server" {
                out.stats.skip(
                    "openedx: problem_check from the browser (answers only; its server twin has the grade)",
                );
                continue;
            }
            let p = &r.payload;
            let (Some(grade), Some(max_grade)) = (num(p.get("grade")), num(p.get("max_grade")))
            else {
                out.stats
                    .skip("openedx: server problem_check without grade/max_grade");
                continue;
            };
            if max_grade <= 0.0 || grade < 0.0 {
                out.stats
                    .skip("openedx: server problem_check with max_grade 0 or a negative grade");
                continue;
            }
            let Some(course) = course else {
                out.stats.skip("openedx: problem_check without a course");
                continue;
            };
            let Some(start) = displayed_at.filter(|s| r.t - s <= SESSION_GAP_US) else {
                out.stats.skip(
                    "openedx: problem_check with no display of its unit in the 30 min before (no start to time it from)",
                );
                continue;
            };
            let inputs = ["submission", "correct_map", "answers"]
                .iter()
                .filter_map(|k| p.get(*k).and_then(Value::as_object))
                .map(Map::len)
                .max()
                .unwrap_or(0)
                .max(1);
            let quiz = p
                .get("problem_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}:{}", r.file, r.line));
            let extra = vec![
                ("course_id", json!(course)),
                ("quiz_id", json!(quiz)),
                ("questions", json!(inputs)),
                ("score", json!(grade)),
                ("max_score", json!(max_grade)),
                ("elapsed_s", json!((r.t - start) as f64 / 1e6)),
            ];
            events.push((i, with(base, "quiz_submit", extra)));
        } else if et.starts_with("/courses/") && et.contains("/courseware") {
            match course.or_else(|| course_from_url(et)) {
                Some(c) => {
                    let e = with(base, "course_enter", vec![("course_id", json!(c))]);
                    events.push((i, e));
                }
                None => out
                    .stats
                    .skip("openedx: courseware page view without a course"),
            }
        } else if et == "/user_api/v1/account/login_session/"
            || et == "/accounts/login"
            || et == "/login_ajax"
        {
            events.push((i, with(base, "login", vec![])));
        } else if et == "/logout" {
            events.push((i, with(base, "logout", vec![])));
        } else if et == "edx.course.grade.passed.first_time" {
            let Some(course) = course else {
                out.stats
                    .skip("openedx: edx.course.grade.passed.first_time without a course");
                continue;
            };
            let extra = vec![
                ("course_id", json!(course)),
                ("credits", json!(1.0)),
                ("category", json!("elective")),
            ];
            events.push((i, with(base, "course_complete", extra)));
        } else if et.starts_with('/') {
            out.stats
                .skip("openedx: server page view or AJAX call (no telemetry-v1 equivalent)");
        } else {
            out.stats
                .skip(format!("openedx: {et} (no telemetry-v1 equivalent)"));
        }
    }
    let mut courses: BTreeMap<String, f64> = BTreeMap::new();
    for (_, e) in &events {
        if let Some(c) = e.get("course_id").and_then(Value::as_str) {
            courses.entry(c.to_string()).or_insert(0.0);
        }
    }
    for (c, vids) in &videos {
        let total: f64 = vids.values().map(|(d, far)| d.unwrap_or(*far)).sum();
        courses.insert(c.clone(), total);
    }
    for (_, e) in events {
        out.push(e);
    }
    out.catalog = courses
        .into_iter()
        .map(|(course_id, duration_s)| CatalogRow {
            title: format!("Open edX {course_id}"),
            course_id,
            category: "elective",
            credits: 1.0,
            duration_s: (duration_s * 1000.0).round() / 1000.0,
            min_watch_ratio: 0.8,
        })
        .collect();
    Ok(out)
}

/// The session of each record (records sorted by user, time): the edX key, else the key of the
/// user's nearest keyed event within 30 minutes, else a session numbered by silences.
fn assign_sessions(recs: &[Rec]) -> Vec<String> {
    let mut out = vec![String::new(); recs.len()];
    let mut start = 0;
    while start < recs.len() {
        let user = &recs[start].user;
        let end = recs[start..]
            .iter()
            .position(|r| &r.user != user)
            .map_or(recs.len(), |p| start + p);
        let keyed: Vec<(i64, &str)> = recs[start..end]
            .iter()
            .filter_map(|r| r.session_key.as_deref().map(|k| (r.t, k)))
            .collect();
        let mut derived = 0u32;
        let mut last_derived_t: Option<i64> = None;
        for i in start..end {
            let r = &recs[i];
            if let Some(k) = &r.session_key {
                out[i] = format!("openedx:{k}");
                continue;
            }
            let nearest = keyed
                .iter()
                .filter(|(t, _)| (t - r.t).abs() <= SESSION_GAP_US)
                .min_by_key(|(t, _)| ((t - r.t).abs(), *t > r.t));
            out[i] = match nearest {
                Some((_, k)) => format!("openedx:{k}"),
                None => {
                    if last_derived_t.is_none_or(|lt| r.t - lt > SESSION_GAP_US) {
                        derived += 1;
                    }
                    last_derived_t = Some(r.t);
                    format!("openedx:{user}:nokey-s{derived}")
                }
            };
        }
        start = end;
    }
    out
}
