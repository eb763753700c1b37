//! `automation`: signs that a script, not a person, drives the player. Browser helper scripts
//! keep the page "visible" and the sound on, never pause and play course after course, so what
//! the client says about itself is not evidence; these rules use what the server sees.
//!
//! Measurements (`features/automation`, column `measure`):
//! - `stretch` rows: one per stretch of unbroken play (see [`AutomationConfig`]): `start`,
//!   `end`, `play_s`, `heartbeats`, `courses`, `lessons`, the heartbeat intervals' count, mean
//!   and standard deviation, how many heartbeats reported `input_events` and their sum, and
//!   `other_hours_share`: the share of the learner's other heartbeats of the batch that fall in
//!   the hours of day (UTC) the stretch covers (the learner's own history; null without one).
//! - `checks` rows: one per session with attention checks: checks shown, missed, missed
//!   while the video kept playing, answered with a response time, and those times' median, mean,
//!   standard deviation and coefficient of variation.
//!
//! Rules:
//! - `unbroken_play`: a stretch of at least `unbroken_min_play_s` over `unbroken_min_courses`
//!   courses. A long lecture is one course; people who catch up pause between courses.
//! - `timer_cadence`: a stretch of at least `cadence_min_intervals` heartbeat intervals over
//!   `cadence_min_courses` courses whose intervals vary by at most `cadence_max_std_s`: a timer
//!   replaying requests, not a browser whose heartbeat timer restarts with each page.
//! - `no_input`: a stretch of at least `no_input_min_play_s` over `no_input_min_courses` courses
//!   in which the platform reported input counts and every one was 0.
//! - `missed_checks`: `missed_min_checks` attention checks missed in a session while the video kept
//!   playing, at least `missed_min_share` of the day's checks.
//! - `machine_responses`: in a session, at least `responses_min_checks` answered checks whose median
//!   response time is under `min_human_response_s`, or at least `regular_min_checks` whose
//!   coefficient of variation is under `max_response_cv`.
//!
//! The hour of day is a weak signal: a stretch in hours the learner is otherwise never active
//! in (share under `unusual_hours_share`) adds `unusual_hours_severity` to an `unbroken_play` or
//! `no_input` flag, and never raises a flag by itself (night learners are honest people).

use polars::prelude::*;
use serde_json::json;

use crate::config::AutomationConfig;
use crate::events::{day_of, same_as_prev, secs, sort_opts, sorted_by, type_in};
use crate::explain;
use crate::flags::{r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// Events that end a stretch of unbroken play: a person touching the player or the page.
pub const BREAKS: [&str; 6] = [
    "video_pause",
    "video_seek",
    "video_rate",
    "visibility",
    "login",
    "logout",
];

const HOUR_US: i64 = 3_600_000_000;

/// The `automation` job over the events.
pub fn detect(events: LazyFrame, cfg: &AutomationConfig) -> Result<JobOutput> {
    let stretches = stretches(events.clone(), cfg)?.collect()?;
    let checks = check_days(events, cfg)?.collect()?;
    let mut flags = stretch_flags(&stretches, cfg)?;
    flags.extend(check_flags(&checks, cfg)?);
    sort(&mut flags);
    let features = concat(
        [
            feature_rows(stretches.lazy(), "stretch"),
            feature_rows(checks.lazy(), "checks"),
        ],
        UnionArgs::default(),
    )?
    .sort(["day", "user_id", "start"], sort_opts())
    .collect()?;
    Ok(JobOutput { features, flags })
}

/// Every column of `features/automation`, with its type: each kind of row fills its own.
fn feature_columns() -> Vec<(&'static str, DataType)> {
    use DataType::{Float64, Int64, String};
    vec![
        ("measure", String),
        ("user_id", String),
        ("org_unit", String),
        ("day", Int64),
        ("start", Int64),
        ("end", Int64),
        ("session_id", String),
        ("play_s", Float64),
        ("heartbeats", Int64),
        ("courses", Int64),
        ("lessons", Int64),
        ("intervals", Int64),
        ("interval_mean_s", Float64),
        ("interval_std_s", Float64),
        ("input_reported", Int64),
        ("input_events", Int64),
        ("other_hours_share", Float64),
        ("checks", Int64),
        ("missed", Int64),
        ("missed_playing", Int64),
        ("responses", Int64),
        ("correct", Int64),
        ("response_median_s", Float64),
        ("response_mean_s", Float64),
        ("response_std_s", Float64),
        ("response_cv", Float64),
    ]
}

/// `rows` in the columns of [`feature_columns`] (those it lacks as nulls), tagged `measure`.
fn feature_rows(rows: LazyFrame, measure: &str) -> LazyFrame {
    let have = rows.clone().collect_schema().ok();
    let has = |name: &str| have.as_ref().is_some_and(|s| s.contains(name));
    let exprs: Vec<Expr> = feature_columns()
        .into_iter()
        .map(|(name, dt)| match name {
            "measure" => lit(measure).alias(name),
            _ if has(name) => col(name).cast(dt),
            _ => lit(NULL).cast(dt).alias(name),
        })
        .collect();
    rows.select(exprs)
}

/// One row per stretch of unbroken play with at least two heartbeats (see the module docs).
pub fn stretches(events: LazyFrame, cfg: &AutomationConfig) -> Result<LazyFrame> {
    let beats = stretch_heartbeats(events, cfg)?.collect()?;
    let per_stretch = per_stretch(&beats)?;
    with_learner_hours(per_stretch, beats, cfg)
}

/// The playing, visible heartbeats numbered by stretch (`stretch`), with the interval since the
/// previous one of the stretch (`_interval`) and the hour of day (`_hour`).
fn stretch_heartbeats(events: LazyFrame, cfg: &AutomationConfig) -> Result<LazyFrame> {
    let mut types = BREAKS.to_vec();
    types.push("heartbeat");
    let gap_us = (cfg.max_gap_s * 1e6) as i64;
    let plays = col("event_type")
        .eq(lit("heartbeat"))
        .and(col("playing").fill_null(lit(false)))
        .and(col("visible").fill_null(lit(false)));
    // A stretch starts at a playing heartbeat whose previous row is another learner or session,
    // an interruption, or too long ago.
    let starts = col("_play").and(
        same_as_prev(&["user_id", "session_id"])
            .not()
            .or(col("_play").shift(lit(1)).fill_null(lit(false)).not())
            .or((col("t") - col("t").shift(lit(1))).gt(lit(gap_us))),
    );
    let rows = events
        .filter(type_in(&types))
        .select([
            col("user_id"),
            col("org_unit"),
            col("session_id"),
            col("course_id"),
            col("lesson_id"),
            col("t"),
            col("event_id"),
            col("input_events"),
            plays.alias("_play"),
        ])
        .collect()?;
    let rows = sorted_by(rows, &["user_id", "t", "event_id"])?;
    Ok(rows
        .lazy()
        .with_column(starts.alias("_start"))
        .with_column(
            col("_start")
                .cast(DataType::Int64)
                .cum_sum(false)
                .alias("stretch"),
        )
        .filter(col("_play"))
        // Rows of one stretch are adjacent once the interruptions are gone.
        .with_column(
            when(col("_start"))
                .then(lit(NULL).cast(DataType::Float64))
                .otherwise(secs(col("t") - col("t").shift(lit(1))))
                .alias("_interval"),
        )
        .with_column((col("t") / lit(HOUR_US) % lit(24i64)).alias("_hour")))
}

/// The stretches of [`stretch_heartbeats`] with at least two heartbeats: their span, courses,
/// lessons, the intervals' mean and spread, and the input the platform reported. One pass over
/// the heartbeats, whose stretches are runs of adjacent rows.
fn per_stretch(beats: &DataFrame) -> Result<DataFrame> {
    let r = Rows(beats);
    let (user, org, session) = (r.str("user_id")?, r.str("org_unit")?, r.str("session_id")?);
    let (course, lesson) = (r.str("course_id")?, r.str("lesson_id")?);
    let (t, stretch, input) = (r.i64("t")?, r.i64("stretch")?, r.i64("input_events")?);
    let interval = r.f64("_interval")?;
    let mut out = StretchColumns::default();
    let mut run = StretchRun::default();
    let rows = user
        .iter()
        .zip(org.iter())
        .zip(session.iter())
        .zip(course.iter().zip(lesson.iter()))
        .zip(t.iter().zip(stretch.iter()))
        .zip(input.iter().zip(interval.iter()));
    let mut current: Option<i64> = None;
    for (((((u, o), s), (c, l)), (t, id)), (input, interval)) in rows {
        if current != id {
            out.push(&run);
            run.start(id.unwrap_or(0), u, o, s);
            current = id;
        }
        run.add(c, l, t.unwrap_or(0), input, interval);
    }
    out.push(&run);
    Ok(out.frame()?)
}

/// The stretch being read by [`per_stretch`].
#[derive(Default)]
struct StretchRun<'a> {
    stretch: i64,
    user_id: Option<&'a str>,
    org_unit: Option<&'a str>,
    session_id: Option<&'a str>,
    start: i64,
    end: i64,
    heartbeats: i64,
    /// The distinct courses and lessons seen: a stretch has a few, so a list beats hashing
    /// every heartbeat's strings.
    courses: Vec<Option<&'a str>>,
    lessons: Vec<Option<&'a str>>,
    intervals: Vec<f64>,
    input_reported: i64,
    input_events: i64,
}

impl<'a> StretchRun<'a> {
    fn start(
        &mut self,
        stretch: i64,
        user: Option<&'a str>,
        org: Option<&'a str>,
        session: Option<&'a str>,
    ) {
        self.stretch = stretch;
        (self.user_id, self.org_unit, self.session_id) = (user, org, session);
        (self.heartbeats, self.input_reported, self.input_events) = (0, 0, 0);
        self.courses.clear();
        self.lessons.clear();
        self.intervals.clear();
    }

    fn add(
        &mut self,
        course: Option<&'a str>,
        lesson: Option<&'a str>,
        t: i64,
        input: Option<i64>,
        interval: Option<f64>,
    ) {
        if self.heartbeats == 0 {
            (self.start, self.end) = (t, t);
        }
        (self.start, self.end) = (self.start.min(t), self.end.max(t));
        self.heartbeats += 1;
        insert_distinct(&mut self.courses, course);
        insert_distinct(&mut self.lessons, lesson);
        self.intervals.extend(interval);
        if let Some(n) = input {
            self.input_reported += 1;
            self.input_events += n;
        }
    }
}

/// Adds `value` to `seen` unless it is there; the last one added is checked first (a stretch's
/// heartbeats stay in one lesson for minutes).
fn insert_distinct<'a>(seen: &mut Vec<Option<&'a str>>, value: Option<&'a str>) {
    if seen.last() != Some(&value) && !seen.contains(&value) {
        seen.push(value);
    }
}

/// The columns [`per_stretch`] builds, one row per stretch of two heartbeats or more.
#[derive(Default)]
struct StretchColumns {
    stretch: Vec<i64>,
    user_id: Vec<Option<String>>,
    org_unit: Vec<Option<String>>,
    session_id: Vec<Option<String>>,
    start: Vec<i64>,
    end: Vec<i64>,
    heartbeats: Vec<i64>,
    courses: Vec<i64>,
    lessons: Vec<i64>,
    intervals: Vec<i64>,
    interval_mean_s: Vec<Option<f64>>,
    interval_std_s: Vec<Option<f64>>,
    input_reported: Vec<i64>,
    input_events: Vec<i64>,
}

impl StretchColumns {
    fn push(&mut self, run: &StretchRun<'_>) {
        if run.heartbeats < 2 {
            return;
        }
        self.stretch.push(run.stretch);
        self.user_id.push(run.user_id.map(str::to_string));
        self.org_unit.push(run.org_unit.map(str::to_string));
        self.session_id.push(run.session_id.map(str::to_string));
        self.start.push(run.start);
        self.end.push(run.end);
        self.heartbeats.push(run.heartbeats);
        self.courses.push(run.courses.len() as i64);
        self.lessons.push(run.lessons.len() as i64);
        let (mean, std) = mean_std(&run.intervals);
        self.intervals.push(run.intervals.len() as i64);
        self.interval_mean_s.push(mean);
        self.interval_std_s.push(std);
        self.input_reported.push(run.input_reported);
        self.input_events.push(run.input_events);
    }

    fn frame(self) -> PolarsResult<DataFrame> {
        let play_s: Vec<f64> = (self.start.iter().zip(&self.end))
            .map(|(a, b)| (b - a) as f64 / 1e6)
            .collect();
        let day: Vec<i64> = self
            .start
            .iter()
            .map(|t| t.div_euclid(crate::DAY_US))
            .collect();
        DataFrame::new_infer_height(vec![
            Column::new("user_id".into(), self.user_id),
            Column::new("stretch".into(), self.stretch),
            Column::new("org_unit".into(), self.org_unit),
            Column::new("session_id".into(), self.session_id),
            Column::new("start".into(), self.start),
            Column::new("end".into(), self.end),
            Column::new("heartbeats".into(), self.heartbeats),
            Column::new("courses".into(), self.courses),
            Column::new("lessons".into(), self.lessons),
            Column::new("intervals".into(), self.intervals),
            Column::new("interval_mean_s".into(), self.interval_mean_s),
            Column::new("interval_std_s".into(), self.interval_std_s),
            Column::new("input_reported".into(), self.input_reported),
            Column::new("input_events".into(), self.input_events),
            Column::new("play_s".into(), play_s),
            Column::new("day".into(), day),
        ])
    }
}

/// Mean and sample standard deviation (null below one and two values, as polars gives them).
fn mean_std(values: &[f64]) -> (Option<f64>, Option<f64>) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (None, None);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (Some(mean), None);
    }
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (Some(mean), Some((squares / (n - 1.0)).sqrt()))
}

/// The stretches with `other_hours_share` joined (see [`other_hours`]).
fn with_learner_hours(
    per_stretch: DataFrame,
    beats: DataFrame,
    cfg: &AutomationConfig,
) -> Result<LazyFrame> {
    // The learner's history matters only to stretches long enough for a rule: measure it for
    // the learners who have one.
    let shortest = cfg.unbroken_min_play_s.min(cfg.no_input_min_play_s);
    let long_users = per_stretch
        .clone()
        .lazy()
        .filter(col("play_s").gt_eq(lit(shortest)))
        .select([col("user_id")])
        .unique(None, UniqueKeepStrategy::Any);
    let their_beats = beats.lazy().join(
        long_users,
        [col("user_id")],
        [col("user_id")],
        JoinArgs::new(JoinType::Semi),
    );
    Ok(per_stretch.lazy().join(
        other_hours(their_beats)?,
        [col("user_id"), col("stretch")],
        [col("user_id"), col("stretch")],
        JoinArgs::new(JoinType::Left),
    ))
}

/// Per stretch, `other_hours_share`: of the learner's heartbeats outside the stretch, the share
/// in the hours of day the stretch covers (null when the learner has none outside it).
fn other_hours(beats: LazyFrame) -> Result<LazyFrame> {
    let user_hours = beats
        .clone()
        .group_by([col("user_id"), col("_hour")])
        .agg([len().cast(DataType::Int64).alias("_user_n")]);
    let stretch_hours = beats
        .clone()
        .group_by([col("user_id"), col("stretch"), col("_hour")])
        .agg([len().cast(DataType::Int64).alias("_stretch_n")]);
    let user_total = beats
        .group_by([col("user_id")])
        .agg([len().cast(DataType::Int64).alias("_user_total")]);
    Ok(stretch_hours
        .join(
            user_hours,
            [col("user_id"), col("_hour")],
            [col("user_id"), col("_hour")],
            JoinArgs::new(JoinType::Left),
        )
        .group_by([col("user_id"), col("stretch")])
        .agg([
            (col("_user_n") - col("_stretch_n"))
                .sum()
                .alias("_other_in_hours"),
            col("_stretch_n").sum().alias("_stretch_total"),
        ])
        .join(
            user_total,
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Left),
        )
        .with_column(
            (col("_user_total") - col("_stretch_total"))
                .cast(DataType::Float64)
                .alias("_other_total"),
        )
        .select([
            col("user_id"),
            col("stretch"),
            when(col("_other_total").gt(lit(0.0)))
                .then(col("_other_in_hours").cast(DataType::Float64) / col("_other_total"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("other_hours_share"),
        ]))
}

/// One row per session with attention checks (see the module docs).
pub fn check_days(events: LazyFrame, cfg: &AutomationConfig) -> Result<LazyFrame> {
    Ok(per_session_checks(checks_with_next_heartbeat(events, cfg)?))
}

/// The attention checks of the sessions that showed any, each with `_missed_playing`: unanswered
/// while the session's next heartbeat (within `max_gap_s`) was playing.
fn checks_with_next_heartbeat(events: LazyFrame, cfg: &AutomationConfig) -> Result<LazyFrame> {
    let gap_us = (cfg.max_gap_s * 1e6) as i64;
    let is_beat = col("event_type").eq(lit("heartbeat"));
    let by_session = [col("user_id"), col("session_id")];
    let next_beat = |value: Expr| -> PolarsResult<Expr> {
        when(is_beat.clone())
            .then(value)
            .otherwise(lit(NULL))
            .fill_null_with_strategy(FillNullStrategy::Backward(None))
            .over(by_session.clone())
    };
    let answered = col("answered").fill_null(lit(false));
    // Only the sessions that showed a check: most platforms send none, and then this is free
    // (the session ids filter first, the join on user and session is exact).
    let checked_sessions = events
        .clone()
        .filter(col("event_type").eq(lit("attention_check")))
        .select([col("user_id"), col("session_id")])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()?;
    let ids: Vec<&str> = checked_sessions
        .column("session_id")?
        .str()?
        .iter()
        .flatten()
        .collect();
    let in_checked = col("session_id").is_in(
        lit(Series::new("checked".into(), ids)).implode(false),
        false,
    );
    Ok(events
        .filter(type_in(&["heartbeat", "attention_check"]).and(in_checked))
        .join(
            checked_sessions.lazy(),
            [col("user_id"), col("session_id")],
            [col("user_id"), col("session_id")],
            JoinArgs::new(JoinType::Semi),
        )
        .select([
            col("user_id"),
            col("org_unit"),
            col("session_id"),
            col("t"),
            col("event_id"),
            col("event_type"),
            col("playing"),
            col("answered"),
            col("response_s"),
            col("correct"),
        ])
        .sort(["user_id", "session_id", "t", "event_id"], sort_opts())
        .with_columns([
            next_beat(col("playing"))?.alias("_next_playing"),
            next_beat(col("t"))?.alias("_next_t"),
        ])
        .filter(col("event_type").eq(lit("attention_check")))
        // Platforms pause the video while a check is shown: play going on past a missed check
        // means nobody saw it, or something suppressed it.
        .with_column(
            answered
                .clone()
                .not()
                .and(col("_next_playing").fill_null(lit(false)))
                .and(
                    (col("_next_t") - col("t"))
                        .lt_eq(lit(gap_us))
                        .fill_null(lit(false)),
                )
                .alias("_missed_playing"),
        ))
}

/// Per session: the checks shown, missed, missed while playing, answered and correct; the
/// response times' median, mean, spread (`response_cv`); the first missed ids.
fn per_session_checks(checks: LazyFrame) -> LazyFrame {
    let answered = col("answered").fill_null(lit(false));
    let with_time = answered.clone().and(col("response_s").is_not_null());
    checks
        // Per session: a script runs in one, and a person's answers elsewhere that day would
        // only blur it.
        .group_by([col("user_id"), col("session_id")])
        .agg([
            day_of(col("t").min()).alias("day"),
            col("org_unit").first(),
            col("t").min().alias("start"),
            col("t").max().alias("end"),
            len().cast(DataType::Int64).alias("checks"),
            answered
                .clone()
                .not()
                .sum()
                .cast(DataType::Int64)
                .alias("missed"),
            col("_missed_playing")
                .sum()
                .cast(DataType::Int64)
                .alias("missed_playing"),
            col("response_s")
                .filter(with_time.clone())
                .count()
                .cast(DataType::Int64)
                .alias("responses"),
            col("correct")
                .fill_null(lit(false))
                .sum()
                .cast(DataType::Int64)
                .alias("correct"),
            col("response_s")
                .filter(with_time.clone())
                .median()
                .alias("response_median_s"),
            col("response_s")
                .filter(with_time.clone())
                .mean()
                .alias("response_mean_s"),
            col("response_s")
                .filter(with_time)
                .std(1)
                .alias("response_std_s"),
            col("event_id")
                .filter(col("_missed_playing"))
                .head(Some(10))
                .implode(true)
                .alias("missed_ids"),
        ])
        .with_column(
            when(col("response_mean_s").gt(lit(0.0)))
                .then(col("response_std_s") / col("response_mean_s"))
                .otherwise(lit(NULL).cast(DataType::Float64))
                .alias("response_cv"),
        )
}

/// What one stretch row says, for its flags.
struct Stretch {
    user_id: String,
    org_unit: Option<String>,
    session_id: String,
    start: i64,
    end: i64,
    play_s: f64,
    heartbeats: i64,
    courses: i64,
    intervals: i64,
    interval_std_s: f64,
    input_reported: i64,
    input_events: i64,
    other_hours_share: Option<f64>,
}

fn stretch_rows(df: &DataFrame) -> Result<Vec<Stretch>> {
    let r = Rows(df);
    let (user, org, session) = (r.str("user_id")?, r.str("org_unit")?, r.str("session_id")?);
    let (start, end, play) = (r.i64("start")?, r.i64("end")?, r.f64("play_s")?);
    let (beats, courses, intervals) =
        (r.i64("heartbeats")?, r.i64("courses")?, r.i64("intervals")?);
    let (std, reported, inputs, hours) = (
        r.f64("interval_std_s")?,
        r.i64("input_reported")?,
        r.i64("input_events")?,
        r.f64("other_hours_share")?,
    );
    Ok((0..r.len())
        .map(|i| Stretch {
            user_id: user.get(i).unwrap_or_default().to_string(),
            org_unit: org.get(i).map(str::to_string),
            session_id: session.get(i).unwrap_or_default().to_string(),
            start: start.get(i).unwrap_or(0),
            end: end.get(i).unwrap_or(0),
            play_s: play.get(i).unwrap_or(0.0),
            heartbeats: beats.get(i).unwrap_or(0),
            courses: courses.get(i).unwrap_or(0),
            intervals: intervals.get(i).unwrap_or(0),
            interval_std_s: std.get(i).unwrap_or(f64::INFINITY),
            input_reported: reported.get(i).unwrap_or(0),
            input_events: inputs.get(i).unwrap_or(0),
            other_hours_share: hours.get(i),
        })
        .collect())
}

impl Stretch {
    fn is_unbroken(&self, cfg: &AutomationConfig) -> bool {
        self.play_s >= cfg.unbroken_min_play_s
            && self.courses >= i64::from(cfg.unbroken_min_courses)
    }

    fn is_timer(&self, cfg: &AutomationConfig) -> bool {
        self.intervals >= i64::from(cfg.cadence_min_intervals)
            && self.courses >= i64::from(cfg.cadence_min_courses)
            && self.interval_std_s <= cfg.cadence_max_std_s
    }

    fn is_without_input(&self, cfg: &AutomationConfig) -> bool {
        self.play_s >= cfg.no_input_min_play_s
            && self.courses >= i64::from(cfg.no_input_min_courses)
            && self.input_reported as f64 >= self.heartbeats as f64 * cfg.no_input_reported_share
            && self.input_reported > 0
            && self.input_events == 0
    }

    /// Whether the stretch lies in hours the learner is otherwise not active in.
    fn in_unusual_hours(&self, cfg: &AutomationConfig) -> bool {
        self.other_hours_share
            .is_some_and(|share| share < cfg.unusual_hours_share)
    }

    fn evidence(&self, cfg: &AutomationConfig) -> serde_json::Map<String, serde_json::Value> {
        json!({
            "session_id": self.session_id, "play_s": r3(self.play_s),
            "heartbeats": self.heartbeats, "courses": self.courses,
            "heartbeat_intervals": self.intervals,
            "interval_std_s": r3(self.interval_std_s.min(1e9)),
            "input_reported": self.input_reported, "input_events": self.input_events,
            "other_hours_share": self.other_hours_share.map(r3),
            "unusual_hours": self.in_unusual_hours(cfg),
            "interruptions_that_end_a_stretch": BREAKS,
            "threshold_unbroken_min_play_s": cfg.unbroken_min_play_s,
            "threshold_unbroken_min_courses": cfg.unbroken_min_courses,
            "threshold_cadence_min_intervals": cfg.cadence_min_intervals,
            "threshold_cadence_max_std_s": cfg.cadence_max_std_s,
            "threshold_no_input_min_play_s": cfg.no_input_min_play_s,
            "threshold_unusual_hours_share": cfg.unusual_hours_share,
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn draft(&self, rule: &'static str, severity: f64, cfg: &AutomationConfig) -> Draft {
        Draft {
            rule,
            user_id: self.user_id.clone(),
            org_unit: self.org_unit.clone(),
            course_id: None,
            window_start: self.start,
            window_end: self.end,
            severity,
            key: self.session_id.clone(),
            evidence: self.evidence(cfg),
            en: String::new(),
            zh: String::new(),
        }
    }

    /// The facts the explanation catalog words.
    fn facts(&self, cfg: &AutomationConfig) -> explain::Stretch {
        explain::Stretch {
            start: self.start,
            end: self.end,
            play_s: self.play_s,
            courses: self.courses,
            intervals: self.intervals,
            interval_std_s: self.interval_std_s,
            input_reported: self.input_reported,
            unusual_hours: self.in_unusual_hours(cfg),
        }
    }
}

fn stretch_flags(
    df: &DataFrame,
    cfg: &AutomationConfig,
) -> Result<Vec<creditguard_contract::Flag>> {
    let mut flags = Vec::new();
    for s in stretch_rows(df)? {
        let hours_bonus = if s.in_unusual_hours(cfg) {
            cfg.unusual_hours_severity
        } else {
            0.0
        };
        let facts = s.facts(cfg);
        if s.is_unbroken(cfg) {
            let excess = (s.play_s - cfg.unbroken_min_play_s) / cfg.unbroken_min_play_s;
            let mut d = s.draft("automation.unbroken_play", ramp(excess) + hours_bonus, cfg);
            let text = explain::unbroken_play(&facts, cfg);
            (d.en, d.zh) = (text.en, text.zh);
            flags.push(d.finish());
        }
        if s.is_timer(cfg) {
            let mut d = s.draft("automation.timer_cadence", 0.9, cfg);
            let text = explain::timer_cadence(&facts, cfg);
            (d.en, d.zh) = (text.en, text.zh);
            flags.push(d.finish());
        }
        if s.is_without_input(cfg) {
            let excess = (s.play_s - cfg.no_input_min_play_s) / cfg.no_input_min_play_s;
            let mut d = s.draft("automation.no_input", ramp(excess) + hours_bonus, cfg);
            let text = explain::no_input(&facts, cfg);
            (d.en, d.zh) = (text.en, text.zh);
            flags.push(d.finish());
        }
    }
    Ok(flags)
}

fn check_flags(df: &DataFrame, cfg: &AutomationConfig) -> Result<Vec<creditguard_contract::Flag>> {
    let r = Rows(df);
    let (user, org, session) = (r.str("user_id")?, r.str("org_unit")?, r.str("session_id")?);
    let (start, end) = (r.i64("start")?, r.i64("end")?);
    let (checks, missed_playing, responses, correct) = (
        r.i64("checks")?,
        r.i64("missed_playing")?,
        r.i64("responses")?,
        r.i64("correct")?,
    );
    let (median, cv) = (r.f64("response_median_s")?, r.f64("response_cv")?);
    let ids = r.list("missed_ids")?;
    let mut flags = Vec::new();
    for i in 0..r.len() {
        let shown = checks.get(i).unwrap_or(0);
        let missed = missed_playing.get(i).unwrap_or(0);
        let answered = responses.get(i).unwrap_or(0);
        let right = correct.get(i).unwrap_or(0);
        let (window_start, window_end) = (start.get(i).unwrap_or(0), end.get(i).unwrap_or(0));
        let checks = explain::Checks {
            start: window_start,
            end: window_end,
            shown,
            missed_playing: missed,
            answered,
            correct: right,
            response_median_s: median.get(i).unwrap_or(0.0),
            response_cv: cv.get(i).unwrap_or(0.0),
        };
        let draft = |rule: &'static str, severity: f64, evidence: serde_json::Value| Draft {
            rule,
            user_id: user.get(i).unwrap_or_default().to_string(),
            org_unit: org.get(i).map(str::to_string),
            course_id: None,
            window_start,
            window_end,
            severity,
            key: session.get(i).unwrap_or_default().to_string(),
            evidence: evidence.as_object().cloned().unwrap_or_default(),
            en: String::new(),
            zh: String::new(),
        };
        let missed_share = missed as f64 / shown.max(1) as f64;
        if missed >= i64::from(cfg.missed_min_checks) && missed_share >= cfg.missed_min_share {
            let mut d = draft(
                "automation.missed_checks",
                ramp(
                    (missed_share - cfg.missed_min_share) / (1.0 - cfg.missed_min_share).max(1e-9),
                ),
                json!({
                    "session_id": session.get(i).unwrap_or_default(),
                    "checks": shown, "missed_while_playing": missed,
                    "missed_share": r3(missed_share),
                    "missed_event_ids": crate::flags::list_strings(ids, i),
                    "threshold_missed_min_checks": cfg.missed_min_checks,
                    "threshold_missed_min_share": cfg.missed_min_share,
                }),
            );
            let text = explain::missed_checks(&checks, cfg);
            (d.en, d.zh) = (text.en, text.zh);
            flags.push(d.finish());
        }
        let (median_s, spread) = (median.get(i), cv.get(i));
        let too_fast = answered >= i64::from(cfg.responses_min_checks)
            && median_s.is_some_and(|m| m < cfg.min_human_response_s);
        let too_regular = answered >= i64::from(cfg.regular_min_checks)
            && spread.is_some_and(|v| v < cfg.max_response_cv);
        if too_fast || too_regular {
            let median_s = median_s.unwrap_or(0.0);
            let spread = spread.unwrap_or(0.0);
            let mut conditions = Vec::new();
            if too_fast {
                conditions.push("too_fast");
            }
            if too_regular {
                conditions.push("too_regular");
            }
            let mut d = draft(
                "automation.machine_responses",
                if too_fast && too_regular { 1.0 } else { 0.8 },
                json!({
                    "session_id": session.get(i).unwrap_or_default(),
                    "responses": answered, "correct": right,
                    "response_median_s": r3(median_s), "response_cv": r3(spread),
                    "conditions": conditions,
                    "threshold_min_human_response_s": cfg.min_human_response_s,
                    "threshold_max_response_cv": cfg.max_response_cv,
                    "threshold_responses_min_checks": cfg.responses_min_checks,
                    "threshold_regular_min_checks": cfg.regular_min_checks,
                }),
            );
            let text = explain::machine_responses(&checks, cfg);
            (d.en, d.zh) = (text.en, text.zh);
            flags.push(d.finish());
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests;
