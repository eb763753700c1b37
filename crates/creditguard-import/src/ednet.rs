//! EdNet (Riiid's Santa TOEIC app) KT4 and KT1 → telemetry-v1.
//!
//! EdNet has no course catalog in the corporate sense: the app teaches one exam, TOEIC, in seven
//! parts. A *course* here is a TOEIC part (`ednet-part-<n>`, from EdNet-Contents
//! `questions.csv` / `lectures.csv`, or KT1's `part` column); a *lesson* is an item (a lecture
//! `l…` or a question bundle `b…` whose listening audio has a player).
//!
//! Shared assumptions:
//! - timestamps are UTC milliseconds (Riiid shifted them by a fixed offset; kept as they are);
//! - sessions: a user's events on one platform with gaps ≤ 30 minutes (EdNet has no login);
//!   device = `<user>:<platform>` (KT4 says `mobile` or `web`; KT1 says nothing: `app`);
//!   platform `web` → `web`, `mobile` → `other` (EdNet does not say iOS or Android);
//! - `org_unit` = the dataset (`ednet-kt4`, `ednet-kt1`), so peers are the other sampled users.
//!
//! KT4 (`timestamp,action_type,item_id,cursor_time,source,user_answer,platform`):
//! - `enter` → `course_enter` (course of the item); a bundle's `enter` also opens a quiz;
//! - `respond` → folded into the open bundle's quiz (the last answer per question counts);
//! - `submit` → `quiz_submit`: `questions` = the bundle's questions (contents), `score` = correct
//!   answers among them (a submit with no answer, e.g. a listening item left unanswered,
//!   scores 0), `max_score` = `questions`, `elapsed_s` = submit − enter;
//! - `play_video` / `play_audio` → `video_play`, `pause_*` → `video_pause`, `lesson_id` = item,
//!   `position_s` = `cursor_time` / 1000, `duration_s` = the lecture's `video_length` when known;
//! - `quit` → `course_leave`;
//! - `erase_choice`, `pay`: no telemetry-v1 equivalent (skipped, counted).
//!
//! KT1 (`timestamp,solving_id,question_id,user_answer,elapsed_time[,bundle_id,part,correct…]`):
//! one row per answered question; the questions of one bundle presentation share `solving_id`
//! and `elapsed_time` and arrive within milliseconds. Checked against KT4 of the same learner
//! (u1): for a bundle of n questions `elapsed_time` is the bundle's time / n (b5186: 4 × 53.5 s
//! against 220.7 s from enter to submit in KT4). So one presentation → one `quiz_submit` with
//! `questions` = n, `elapsed_s` = n × `elapsed_time` / 1000, `score` = correct answers. Rows with
//! `elapsed_time` ≤ 0 (not recorded) and exact duplicate rows are skipped and counted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{
    event, field, file_name, files_in, rfc3339_ms, CatalogRow, Csv, Error, Import, Options, Result,
};

/// A session ends after this much silence.
const SESSION_GAP_MS: i64 = 30 * 60 * 1000;
/// Rows of one KT1 bundle presentation arrive within this span.
const BUNDLE_SPAN_MS: i64 = 2_000;

/// TOEIC part names, for catalog titles.
const PARTS: [&str; 7] = [
    "Photographs",
    "Question-Response",
    "Conversations",
    "Talks",
    "Incomplete Sentences",
    "Text Completion",
    "Reading Comprehension",
];

/// EdNet-Contents: what each item is and which part it belongs to.
#[derive(Debug, Default)]
pub struct Contents {
    /// question → (bundle, part, correct answer)
    questions: HashMap<String, (String, String, String)>,
    /// bundle → number of questions
    bundle_size: HashMap<String, i64>,
    /// bundle / explanation / lecture → part
    part: HashMap<String, String>,
    /// lecture → video length in seconds (when > 0)
    video_s: HashMap<String, f64>,
    /// part → summed lecture video length in seconds
    part_video_s: BTreeMap<String, f64>,
}

impl Contents {
    /// Loads `questions.csv` and `lectures.csv` from `dir`.
    pub fn load(dir: &Path) -> Result<Contents> {
        let mut c = Contents::default();
        let q = Csv::read(&dir.join("questions.csv"))?;
        let need = |csv: &Csv, name: &str, file: &str| {
            csv.col(name)
                .ok_or_else(|| Error::Input(format!("{file}: no column `{name}`")))
        };
        let (qi, bi, ei, ai, pi) = (
            need(&q, "question_id", "questions.csv")?,
            need(&q, "bundle_id", "questions.csv")?,
            need(&q, "explanation_id", "questions.csv")?,
            need(&q, "correct_answer", "questions.csv")?,
            need(&q, "part", "questions.csv")?,
        );
        for (_, r) in &q.rows {
            let (qid, b, e, a, p) = (
                field(r, qi),
                field(r, bi),
                field(r, ei),
                field(r, ai),
                field(r, pi),
            );
            c.questions
                .insert(qid.into(), (b.into(), p.into(), a.into()));
            *c.bundle_size.entry(b.into()).or_default() += 1;
            c.part.insert(b.into(), p.into());
            c.part.insert(e.into(), p.into());
        }
        let l = Csv::read(&dir.join("lectures.csv"))?;
        let (li, lp, lv) = (
            need(&l, "lecture_id", "lectures.csv")?,
            need(&l, "part", "lectures.csv")?,
            need(&l, "video_length", "lectures.csv")?,
        );
        for (_, r) in &l.rows {
            let (id, p) = (field(r, li), field(r, lp));
            c.part.insert(id.into(), p.into());
            if let Ok(ms) = field(r, lv).parse::<f64>() {
                if ms > 0.0 {
                    c.video_s.insert(id.into(), ms / 1000.0);
                    *c.part_video_s.entry(p.into()).or_default() += ms / 1000.0;
                }
            }
        }
        Ok(c)
    }
}

/// The course id of a TOEIC part; lectures of no part (`-1` in EdNet-Contents) are
/// `ednet-general`.
fn course_of_part(part: &str) -> String {
    match part.parse::<i64>() {
        Ok(p) if p >= 1 => format!("ednet-part-{p}"),
        _ => "ednet-general".to_string(),
    }
}

/// The synthesized catalog of the courses that occur in the output (an assumption, documented
/// in the README: EdNet has no credits): every part is an `elective` worth 1 credit, its duration
/// is the summed length of the part's lecture videos (a part without any is left out of the
/// catalog, see [`Import::uncatalogued`](crate::Import::uncatalogued)), min_watch_ratio 0.8.
fn catalog(courses: &BTreeSet<String>, contents: Option<&Contents>) -> Vec<CatalogRow> {
    courses
        .iter()
        .map(|course| {
            let part = course.trim_start_matches("ednet-part-");
            let name = part
                .parse::<usize>()
                .ok()
                .and_then(|n| PARTS.get(n.wrapping_sub(1)));
            let title = match name {
                Some(name) => format!("TOEIC Part {part} {name} (EdNet Santa)"),
                None => "TOEIC general lectures (EdNet Santa)".to_string(),
            };
            CatalogRow {
                course_id: course.clone(),
                title,
                category: "elective",
                credits: 1.0,
                duration_s: contents
                    .map(|c| {
                        c.part_video_s
                            .iter()
                            .filter(|(p, _)| course_of_part(p) == *course)
                            .fold(0.0, |acc, (_, s)| acc + s)
                    })
                    .unwrap_or(0.0),
                min_watch_ratio: 0.8,
            }
        })
        .collect()
}

/// Session numbering by silence, per key (user × platform).
#[derive(Default)]
struct Sessions {
    last: HashMap<String, (i64, u32)>,
}

impl Sessions {
    fn id(&mut self, key: &str, t: i64) -> String {
        let e = self.last.entry(key.to_string()).or_insert((t, 0));
        if e.1 == 0 || t - e.0 > SESSION_GAP_MS {
            e.1 += 1;
        }
        e.0 = t;
        format!("{key}:s{}", e.1)
    }
}

fn find_contents(opts: &Options, input_dir: &Path) -> Option<PathBuf> {
    if let Some(c) = &opts.contents {
        return Some(c.clone());
    }
    [input_dir.join("contents"), input_dir.join("../contents")]
        .into_iter()
        .find(|d| d.join("questions.csv").is_file())
}

/// The CSV files of an input: the file itself, or `<dir>/<sub>/*.csv` for each sub folder that
/// exists, or `<dir>/*.csv`.
fn csv_inputs(input: &Path, subs: &[&str]) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    let mut files = Vec::new();
    for s in subs {
        let d = input.join(s);
        if d.is_dir() {
            files.extend(files_in(&d, &[".csv"])?);
        }
    }
    if files.is_empty() && input.is_dir() {
        files = files_in(input, &[".csv"])?;
    }
    if files.is_empty() {
        return Err(Error::Input(format!(
            "{}: no CSV files (expected {} or *.csv)",
            input.display(),
            subs.join(", ")
        )));
    }
    Ok(files)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Imports EdNet KT4: `--in` is the dataset folder (with `KT4/` and `contents/`), a folder of
/// `u*.csv`, or one file.
pub fn import_kt4(opts: &Options) -> Result<Import> {
    let input = &opts.input;
    let files = csv_inputs(input, &["KT4"])?;
    let dir = if input.is_file() {
        input.parent().unwrap_or(Path::new(".")).to_path_buf()
    } else {
        input.clone()
    };
    let contents_dir = find_contents(opts, &dir).ok_or_else(|| {
        Error::Input(format!(
            "EdNet KT4 needs EdNet-Contents (questions.csv, lectures.csv): none in {}/contents; \
             pass --contents DIR",
            dir.display()
        ))
    })?;
    let contents = Contents::load(&contents_dir)?;
    let mut out = Import::default();
    let mut courses = BTreeSet::new();
    for f in &files {
        kt4_file(f, &contents, &mut out, &mut courses)?;
    }
    out.catalog = catalog(&courses, Some(&contents));
    Ok(out)
}

/// A bundle entered and not yet submitted.
struct OpenBundle {
    bundle: String,
    enter_t: i64,
    answers: BTreeMap<String, String>,
    responses: u64,
}

fn kt4_file(
    path: &Path,
    contents: &Contents,
    out: &mut Import,
    courses: &mut BTreeSet<String>,
) -> Result<()> {
    let csv = Csv::read(path)?;
    let col = |n: &str| {
        csv.col(n).ok_or_else(|| {
            Error::Input(format!(
                "{}: no column `{n}` (not EdNet KT4?)",
                path.display()
            ))
        })
    };
    let (ti, ai, ii, ci, ui, pi) = (
        col("timestamp")?,
        col("action_type")?,
        col("item_id")?,
        col("cursor_time")?,
        col("user_answer")?,
        col("platform")?,
    );
    let user_file = stem(path);
    let user = format!("ednet-kt4:{user_file}");
    let mut rows: Vec<(i64, u64, &Vec<String>)> = Vec::new();
    for (line, r) in &csv.rows {
        out.stats.records += 1;
        match field(r, ti).parse::<i64>() {
            Ok(t) => rows.push((t, *line, r)),
            Err(_) => out.stats.skip("ednet-kt4: timestamp is not an integer"),
        }
    }
    rows.sort_by_key(|&(t, line, _)| (t, line));

    let mut sessions = Sessions::default();
    let mut open: Option<OpenBundle> = None;
    let abandon = |open: &mut Option<OpenBundle>, out: &mut Import| {
        if let Some(b) = open.take() {
            for _ in 0..b.responses {
                out.stats
                    .skip("ednet-kt4: respond in a bundle that was never submitted");
            }
        }
    };
    for (t, line, r) in rows {
        let action = field(r, ai);
        let item = field(r, ii);
        let platform = field(r, pi);
        if action == "pay" {
            out.stats
                .skip("ednet-kt4: pay (a purchase; no telemetry-v1 equivalent)");
            continue;
        }
        if action == "erase_choice" {
            out.stats.skip(
                "ednet-kt4: erase_choice (an answer erased before submitting; no telemetry-v1 equivalent)",
            );
            continue;
        }
        if platform.is_empty() {
            out.stats.skip("ednet-kt4: action without platform");
            continue;
        }
        let device = format!("{user}:{platform}");
        let session = sessions.id(&device, t);
        let part = contents
            .part
            .get(item)
            .or_else(|| contents.questions.get(item).map(|q| &q.1));
        let Some(part) = part else {
            out.stats
                .skip("ednet-kt4: item not in EdNet-Contents (no part, so no course)");
            continue;
        };
        let course = course_of_part(part);
        let base = |ty: &str| -> Vec<(&'static str, Value)> {
            vec![
                ("event_id", json!(format!("{user}:{line}"))),
                ("type", json!(ty)),
                ("ts", json!(rfc3339_ms(t))),
                ("user_id", json!(user)),
                ("org_unit", json!("ednet-kt4")),
                ("session_id", json!(session)),
                ("device_id", json!(device)),
                (
                    "platform",
                    json!(if platform == "web" { "web" } else { "other" }),
                ),
            ]
        };
        match action {
            "enter" => {
                abandon(&mut open, out);
                if item.starts_with('b') {
                    open = Some(OpenBundle {
                        bundle: item.to_string(),
                        enter_t: t,
                        answers: BTreeMap::new(),
                        responses: 0,
                    });
                }
                let mut e = base("course_enter");
                e.push(("course_id", json!(course)));
                courses.insert(course);
                out.push(event(e));
            }
            "respond" => {
                let bundle_of = contents.questions.get(item).map(|q| q.0.as_str());
                match open.as_mut() {
                    Some(b) if bundle_of == Some(b.bundle.as_str()) => {
                        b.answers.insert(item.to_string(), field(r, ui).to_string());
                        b.responses += 1;
                    }
                    _ => out
                        .stats
                        .skip("ednet-kt4: respond outside the bundle last entered"),
                }
            }
            "submit" => match open.take() {
                Some(b) if b.bundle == item => {
                    let size = contents.bundle_size.get(item).copied().unwrap_or(0);
                    let questions = size.max(b.answers.len() as i64);
                    let correct = b
                        .answers
                        .iter()
                        .filter(|(q, a)| contents.questions.get(*q).is_some_and(|c| &c.2 == *a))
                        .count();
                    let mut e = base("quiz_submit");
                    e.extend([
                        ("course_id", json!(course)),
                        ("quiz_id", json!(item)),
                        ("questions", json!(questions)),
                        ("score", json!(correct)),
                        ("max_score", json!(questions)),
                        ("elapsed_s", json!((t - b.enter_t) as f64 / 1000.0)),
                    ]);
                    courses.insert(course);
                    out.push(event(e));
                    for _ in 0..b.responses {
                        out.stats
                            .fold("ednet-kt4: respond → its bundle's quiz_submit");
                    }
                }
                other => {
                    abandon(&mut { other }, out);
                    out.stats
                        .skip("ednet-kt4: submit without its bundle's enter before it");
                }
            },
            "quit" => {
                abandon(&mut open, out);
                let mut e = base("course_leave");
                e.push(("course_id", json!(course)));
                courses.insert(course);
                out.push(event(e));
            }
            "play_video" | "play_audio" | "pause_video" | "pause_audio" => {
                let Ok(cursor) = field(r, ci).parse::<f64>() else {
                    out.stats
                        .skip(format!("ednet-kt4: {action} without cursor_time"));
                    continue;
                };
                if cursor < 0.0 {
                    out.stats
                        .skip(format!("ednet-kt4: {action} with negative cursor_time"));
                    continue;
                }
                let ty = if action.starts_with("play") {
                    "video_play"
                } else {
                    "video_pause"
                };
                let mut e = base(ty);
                e.extend([
                    ("course_id", json!(course)),
                    ("lesson_id", json!(item)),
                    ("position_s", json!(cursor / 1000.0)),
                ]);
                if let Some(d) = contents.video_s.get(item) {
                    e.push(("duration_s", json!(d)));
                }
                courses.insert(course);
                out.push(event(e));
            }
            other => out
                .stats
                .skip(format!("ednet-kt4: unknown action_type `{other}`")),
        }
    }
    abandon(&mut open, out);
    Ok(())
}

/// Imports EdNet KT1: `--in` is the dataset folder (`KT1_merged/`, `KT1_raw/`), a folder of
/// `u*.csv`, or one file. Raw KT1 files (no `part` / `correct` columns) need EdNet-Contents
/// (`--contents`); without it their rows are skipped and counted.
pub fn import_kt1(opts: &Options) -> Result<Import> {
    let input = &opts.input;
    let files = csv_inputs(input, &["KT1_merged", "KT1_raw"])?;
    let contents = match &opts.contents {
        Some(d) => Some(Contents::load(d)?),
        None => None,
    };
    let mut out = Import::default();
    let mut courses = BTreeSet::new();
    for f in &files {
        kt1_file(f, contents.as_ref(), &mut out, &mut courses)?;
    }
    out.catalog = catalog(&courses, contents.as_ref());
    Ok(out)
}

/// One answered question of KT1, resolved.
struct Answer {
    t: i64,
    line: u64,
    solving: String,
    question: String,
    bundle: String,
    part: String,
    correct: bool,
    elapsed_ms: f64,
}

/// One bundle presentation being gathered.
struct Presentation {
    first: Answer,
    questions: HashSet<String>,
    correct: usize,
}

fn kt1_file(
    path: &Path,
    contents: Option<&Contents>,
    out: &mut Import,
    courses: &mut BTreeSet<String>,
) -> Result<()> {
    let csv = Csv::read(path)?;
    let col = |n: &str| {
        csv.col(n).ok_or_else(|| {
            Error::Input(format!(
                "{}: no column `{n}` (not EdNet KT1?)",
                path.display()
            ))
        })
    };
    let (ti, si, qi, ai, ei) = (
        col("timestamp")?,
        col("solving_id")?,
        col("question_id")?,
        col("user_answer")?,
        col("elapsed_time")?,
    );
    let merged = match (csv.col("bundle_id"), csv.col("part"), csv.col("correct")) {
        (Some(b), Some(p), Some(c)) => Some((b, p, c)),
        _ => None,
    };
    let uid_col = csv.col("user_id");
    let file_user = stem(path);
    let fname = file_name(path);

    let mut seen: HashSet<&Vec<String>> = HashSet::new();
    let mut answers: Vec<(String, Answer)> = Vec::new();
    for (line, r) in &csv.rows {
        out.stats.records += 1;
        if !seen.insert(r) {
            out.stats.skip("ednet-kt1: exact duplicate row");
            continue;
        }
        let Ok(t) = field(r, ti).parse::<f64>() else {
            out.stats.skip("ednet-kt1: timestamp is not a number");
            continue;
        };
        let Ok(elapsed_ms) = field(r, ei).parse::<f64>() else {
            out.stats.skip("ednet-kt1: elapsed_time is not a number");
            continue;
        };
        if elapsed_ms <= 0.0 {
            out.stats
                .skip("ednet-kt1: elapsed_time 0 (not recorded; a person cannot answer in 0 s)");
            continue;
        }
        let question = field(r, qi).to_string();
        let resolved = match (merged, contents) {
            (Some((b, p, c)), _) => Some((
                field(r, b).to_string(),
                field(r, p).to_string(),
                field(r, c) == "1",
            )),
            (None, Some(c)) => c
                .questions
                .get(&question)
                .map(|(b, p, a)| (b.clone(), p.clone(), a == field(r, ai))),
            (None, None) => {
                out.stats.skip(
                    "ednet-kt1: raw row without part/correctness and no --contents to look them up",
                );
                continue;
            }
        };
        let Some((bundle, part, correct)) = resolved else {
            out.stats.skip("ednet-kt1: question not in EdNet-Contents");
            continue;
        };
        if bundle.is_empty() || part.is_empty() {
            out.stats.skip("ednet-kt1: row without bundle or part");
            continue;
        }
        let user = match uid_col.map(|i| field(r, i)) {
            Some(u) if !u.is_empty() => u.to_string(),
            _ => file_user.clone(),
        };
        answers.push((
            user,
            Answer {
                t: t as i64,
                line: *line,
                solving: field(r, si).to_string(),
                question,
                bundle,
                part,
                correct,
                elapsed_ms,
            },
        ));
    }
    answers.sort_by(|a, b| (&a.0, a.1.t, a.1.line).cmp(&(&b.0, b.1.t, b.1.line)));

    let mut sessions = Sessions::default();
    let mut current: Option<(String, Presentation)> = None;
    let mut flush = |cur: Option<(String, Presentation)>, out: &mut Import| {
        let Some((user, p)) = cur else { return };
        let user_id = format!("ednet-kt1:{user}");
        let device = format!("{user_id}:app");
        let session = sessions.id(&device, p.first.t);
        let n = p.questions.len();
        let course = course_of_part(&p.first.part);
        let e = event(vec![
            (
                "event_id",
                json!(format!("ednet-kt1:{fname}:{}", p.first.line)),
            ),
            ("type", json!("quiz_submit")),
            ("ts", json!(rfc3339_ms(p.first.t))),
            ("user_id", json!(user_id)),
            ("org_unit", json!("ednet-kt1")),
            ("session_id", json!(session)),
            ("device_id", json!(device)),
            ("course_id", json!(course)),
            ("quiz_id", json!(p.first.bundle)),
            ("questions", json!(n)),
            ("score", json!(p.correct)),
            ("max_score", json!(n)),
            ("elapsed_s", json!(p.first.elapsed_ms * n as f64 / 1000.0)),
        ]);
        courses.insert(course);
        out.push(e);
        for _ in 1..n {
            out.stats
                .fold("ednet-kt1: answer of a multi-question bundle → one quiz_submit");
        }
    };
    for (user, a) in answers {
        let joins = match &current {
            Some((u, p)) => {
                *u == user
                    && p.first.bundle == a.bundle
                    && p.first.solving == a.solving
                    && p.first.elapsed_ms == a.elapsed_ms
                    && a.t - p.first.t <= BUNDLE_SPAN_MS
                    && !p.questions.contains(&a.question)
            }
            None => false,
        };
        if joins {
            let (_, p) = current.as_mut().expect("joins implies a presentation");
            p.questions.insert(a.question.clone());
            p.correct += usize::from(a.correct);
        } else {
            flush(current.take(), out);
            let mut questions = HashSet::new();
            questions.insert(a.question.clone());
            let correct = usize::from(a.correct);
            current = Some((
                user,
                Presentation {
                    first: a,
                    questions,
                    correct,
                },
            ));
        }
    }
    flush(current.take(), out);
    Ok(())
}
