//! `watch_time`: how much of a lesson really played, and how it played.
//!
//! Per lesson stream (user × session × course × lesson, ordered by time) every event sets a state
//! that holds until the next event: *playing* (play / pause / ended / heartbeat `playing`),
//! *visible* (heartbeat, visibility), *muted* (heartbeat). The interval from one event to the next
//! counts as playing while the player plays, as engaged while it plays visibly and not muted;
//! an interval longer than `max_gap_s` counts as nothing. Visibility events without a lesson
//! apply to the session's most recent lesson.
//!
//! Positions are judged against wall-clock time, never against what the client says about its
//! own speed or visibility (helper scripts fake both): between two position-bearing events the
//! position advance per wall second is measured; an advance faster than `max_rate` is *fast*, and
//! only advances at a plausible speed count as covered content. Seeks move the position without
//! covering anything.
//!
//! Features (`features/watch_time`), one row per user × course × lesson × day: `play_s`,
//! `engaged_s`, `hidden_s`, `muted_s`, `hidden_share`, `fast_s`, `max_rate` (fastest advance
//! per wall second over intervals ≥ `min_interval_s`), `covered_s` (union of played position
//! ranges), `duration_s` (lesson length when the player said), `seg_from`/`seg_to` (the covered
//! ranges, which later days read for coverage at completion), `first_t`/`last_t`.
//!
//! Rules:
//! - `background_playback`: a lesson with hidden share ≥ `hidden_share` over ≥ `min_play_s` of
//!   play in a day; one flag per user × course × day, naming the lessons.
//! - `speed` per user × course × day: ≥ `min_fast_s` wall seconds advancing faster than
//!   `max_rate × (1 + rate_tolerance)`.
//! - `low_coverage` per `course_complete`: content covered of the course (this period and the
//!   `coverage_lookback_days` before, from earlier features) < the catalog's `min_watch_ratio`.

use polars::prelude::*;
use serde_json::json;

use crate::catalog::Catalog;
use crate::config::WatchTimeConfig;
use crate::events::{day_of, same_as_next, same_as_prev, secs, sort_opts, type_in};
use crate::explain;
use crate::flags::{list_strings, r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// Event types that drive a lesson stream.
pub const MEDIA_TYPES: [&str; 7] = [
    "heartbeat",
    "video_play",
    "video_pause",
    "video_ended",
    "video_seek",
    "video_rate",
    "visibility",
];

const STREAM: [&str; 4] = ["user_id", "session_id", "course_id", "lesson_id"];
const LESSON_DAY: [&str; 4] = ["user_id", "course_id", "lesson_id", "day"];
/// Position of a stream before its first position-bearing event (no real position is this low).
const NO_POS: f64 = -1e18;

/// One row per media event, in stream order, with the state after the event and the interval
/// that follows it (`play_s`, `engaged_s`, `hidden_s`, `muted_s`), and the advance measured from
/// the previous position-bearing event of the stream to this one (`wall_s`, `adv_s`, `rate`,
/// `fast_s`, and the covered range `range_from..range_to` when the advance is plausible).
///
/// `watch_time`, `course_switching` (parallel playback) and `credit_burst` (engaged time) share
/// it, so [`run_jobs`](crate::run_jobs) computes it once per batch.
pub fn intervals(events: LazyFrame, cfg: &WatchTimeConfig) -> LazyFrame {
    let streams = lesson_streams(events);
    let states = player_state(streams);
    let timed = position_advances(states, cfg);
    split_time(timed, cfg).select([
        col("user_id"),
        col("org_unit"),
        col("session_id"),
        col("course_id"),
        col("lesson_id"),
        col("t"),
        col("day"),
        col("_dt_s").alias("dt_s"),
        col("playing"),
        col("visible"),
        col("muted"),
        col("play_s"),
        col("engaged_s"),
        col("hidden_s"),
        col("muted_s"),
        col("rate"),
        col("fast_s"),
        col("range_from"),
        col("range_to"),
        col("duration_s"),
    ])
}

/// `null` typed as a boolean.
fn null_bool() -> Expr {
    lit(NULL).cast(DataType::Boolean)
}

/// `null` typed as a float.
fn null_f64() -> Expr {
    lit(NULL).cast(DataType::Float64)
}

/// Forward fill inside runs: the first row of each run (`run_start`) is made non-null (`default`
/// when it has no value), so a plain forward fill over the sorted frame never carries a value
/// into the next run.
fn fill_in_run(raw: Expr, run_start: Expr, default: Expr) -> Expr {
    when(run_start.and(raw.clone().is_null()))
        .then(default)
        .otherwise(raw)
        .fill_null_with_strategy(FillNullStrategy::Forward(None))
}

/// The media events of sessions, each with its lesson (visibility events may lack it: they get
/// the session's latest), sorted by lesson stream (user, session, course, lesson) and time;
/// `_start` marks a stream's first row, `_cont_next` a row whose stream continues.
fn lesson_streams(events: LazyFrame) -> LazyFrame {
    let media = events
        .filter(type_in(&MEDIA_TYPES).and(col("session_id").is_not_null()))
        .select([
            col("user_id"),
            col("org_unit"),
            col("session_id"),
            col("course_id"),
            col("lesson_id"),
            col("t"),
            col("event_id"),
            col("event_type"),
            col("position_s"),
            col("duration_s"),
            col("playing"),
            col("visible"),
            col("muted"),
            col("seek_from_s"),
            col("seek_to_s"),
        ]);

    // Visibility events may lack the lesson: give them the session's latest lesson.
    let session_start = same_as_prev(&["user_id", "session_id"]).not();
    media
        .sort(["user_id", "session_id", "t", "event_id"], sort_opts())
        .with_column(session_start.alias("_ss"))
        .with_columns([
            fill_in_run(col("course_id"), col("_ss"), lit("")).alias("course_id"),
            fill_in_run(col("lesson_id"), col("_ss"), lit("")).alias("lesson_id"),
        ])
        .filter(
            col("lesson_id")
                .neq(lit(""))
                .and(col("course_id").neq(lit(""))),
        )
        .sort(
            [
                "user_id",
                "session_id",
                "course_id",
                "lesson_id",
                "t",
                "event_id",
            ],
            sort_opts(),
        )
        .with_columns([
            same_as_prev(&STREAM).not().alias("_start"),
            same_as_next(&STREAM).alias("_cont_next"),
        ])
}

/// The player's state after each event (`playing`, `visible`, `muted`, carried forward within
/// the stream), the last known position and its time (`_anchor_pos`, `_anchor_t`), and the time
/// to the stream's next event (`_dt_us`).
fn player_state(streams: LazyFrame) -> LazyFrame {
    let is = |t: &str| col("event_type").eq(lit(t));
    streams
        .with_columns([
            when(is("video_play"))
                .then(lit(true))
                .when(is("video_pause").or(is("video_ended")))
                .then(lit(false))
                .when(is("heartbeat"))
                .then(col("playing"))
                .otherwise(null_bool())
                .alias("_playing_raw"),
            when(is("heartbeat").or(is("visibility")))
                .then(col("visible"))
                .otherwise(null_bool())
                .alias("_visible_raw"),
            when(is("heartbeat"))
                .then(col("muted"))
                .otherwise(null_bool())
                .alias("_muted_raw"),
            when(is("video_seek"))
                .then(col("seek_to_s"))
                .otherwise(col("position_s"))
                .alias("_pos_after"),
            when(is("video_seek"))
                .then(col("seek_from_s"))
                .otherwise(col("position_s"))
                .alias("_pos_before"),
        ])
        .with_columns([
            fill_in_run(col("_playing_raw"), col("_start"), lit(false)).alias("playing"),
            fill_in_run(col("_visible_raw"), col("_start"), lit(true)).alias("visible"),
            fill_in_run(col("_muted_raw"), col("_start"), lit(false)).alias("muted"),
            fill_in_run(col("_pos_after"), col("_start"), lit(NO_POS)).alias("_anchor_pos"),
            fill_in_run(
                when(col("_pos_after").is_not_null())
                    .then(col("t"))
                    .otherwise(lit(NULL).cast(DataType::Int64)),
                col("_start"),
                col("t"),
            )
            .alias("_anchor_t"),
            when(col("_cont_next"))
                .then(col("t").shift(lit(-1)) - col("t"))
                .otherwise(lit(0i64))
                .alias("_dt_us"),
        ])
}

/// Per pair of position-bearing events while playing: the wall time and the position's advance
/// between them (`wall_s`, `adv_s`), the `rate`, and the start of the content range covered at a
/// plausible speed (`range_from`); `_dt_s` is the gap to the next event, 0 past `max_gap_s`.
fn position_advances(states: LazyFrame, cfg: &WatchTimeConfig) -> LazyFrame {
    let max_gap_us = (cfg.max_gap_s * 1e6) as i64;
    let fast_rate = cfg.max_rate * (1.0 + cfg.rate_tolerance);
    states
        .with_columns([
            when(col("_dt_us").gt(lit(max_gap_us)))
                .then(lit(0.0))
                .otherwise(secs(col("_dt_us")))
                .alias("_dt_s"),
            // The advance from the previous anchor (position-bearing event) to this event.
            secs(col("t") - col("_anchor_t").shift(lit(1))).alias("wall_s"),
            (col("_pos_before") - col("_anchor_pos").shift(lit(1))).alias("adv_s"),
            col("_anchor_pos").shift(lit(1)).alias("_from"),
            col("playing").shift(lit(1)).alias("_was_playing"),
        ])
        .with_columns([col("_start")
            .not()
            .and(col("_pos_before").is_not_null())
            .and(col("_from").gt(lit(NO_POS / 2.0)))
            .and(col("_was_playing"))
            .and(col("wall_s").gt(lit(0.0)))
            .and(col("wall_s").lt_eq(lit(cfg.max_gap_s)))
            .fill_null(lit(false))
            .alias("_pair")])
        .with_columns([
            when(col("_pair").and(col("wall_s").gt_eq(lit(cfg.min_interval_s))))
                .then(col("adv_s") / col("wall_s"))
                .otherwise(null_f64())
                .alias("rate"),
            when(
                col("_pair")
                    .and(col("adv_s").gt(lit(0.0)))
                    .and(col("adv_s").lt_eq(col("wall_s") * lit(fast_rate))),
            )
            .then(col("_from"))
            .otherwise(null_f64())
            .alias("range_from"),
        ])
}

/// The time to the next event split by what the player was doing: `play_s`, `engaged_s`
/// (playing, visible, sound on), `hidden_s`, `muted_s`; the time played too fast (`fast_s`) and
/// the covered range's end (`range_to`).
fn split_time(timed: LazyFrame, cfg: &WatchTimeConfig) -> LazyFrame {
    let fast_rate = cfg.max_rate * (1.0 + cfg.rate_tolerance);
    timed.with_columns([
        when(col("range_from").is_not_null())
            .then(col("_pos_before"))
            .otherwise(null_f64())
            .alias("range_to"),
        when(col("rate").gt(lit(fast_rate)))
            .then(col("wall_s"))
            .otherwise(lit(0.0))
            .alias("fast_s"),
        when(col("playing"))
            .then(col("_dt_s"))
            .otherwise(lit(0.0))
            .alias("play_s"),
        when(col("playing").and(col("visible")).and(col("muted").not()))
            .then(col("_dt_s"))
            .otherwise(lit(0.0))
            .alias("engaged_s"),
        when(col("playing").and(col("visible").not()))
            .then(col("_dt_s"))
            .otherwise(lit(0.0))
            .alias("hidden_s"),
        when(col("playing").and(col("muted")))
            .then(col("_dt_s"))
            .otherwise(lit(0.0))
            .alias("muted_s"),
        day_of(col("t")).alias("day"),
    ])
}

/// Covered ranges of [`intervals`] chained in stream order: consecutive ranges that continue each
/// other become one, per user × session × course × lesson × day. Columns: the stream keys, `day`,
/// `from`, `to`, `t` (time the chain ended). Cheap, and it shrinks the union's input a hundredfold.
fn chains(intervals: LazyFrame) -> LazyFrame {
    let keys = ["user_id", "session_id", "course_id", "lesson_id", "day"];
    intervals
        .filter(col("range_from").is_not_null())
        .select([
            col("user_id"),
            col("session_id"),
            col("course_id"),
            col("lesson_id"),
            col("day"),
            col("t"),
            col("range_from").alias("from"),
            col("range_to").alias("to"),
        ])
        .with_column(
            same_as_prev(&keys)
                .and(col("from").eq(col("to").shift(lit(1))))
                .fill_null(lit(false))
                .not()
                .cast(DataType::UInt32)
                .cum_sum(false)
                .alias("_chain"),
        )
        .group_by([col("_chain")])
        .agg([
            col("user_id").first(),
            col("course_id").first(),
            col("lesson_id").first(),
            col("day").first(),
            col("from").min(),
            col("to").max(),
            col("t").max(),
        ])
        .drop(cols(["_chain"]))
}

/// Union of ranges `from..to` per `keys`: overlapping or touching ranges merge. Output: `keys`,
/// `from`, `to`, one row per merged range.
pub fn union_ranges(ranges: LazyFrame, keys: &[&str]) -> PolarsResult<LazyFrame> {
    let mut by: Vec<&str> = keys.to_vec();
    by.push("from");
    by.push("to");
    let key_exprs: Vec<Expr> = keys.iter().map(|k| col(*k)).collect();
    let mut group: Vec<Expr> = key_exprs.clone();
    group.push(col("_seg"));
    Ok(ranges
        .sort(by, sort_opts())
        .with_column(
            col("to")
                .cum_max(false)
                .shift(lit(1))
                .over(key_exprs.clone())?
                .alias("_prev_max"),
        )
        .with_column(
            col("_prev_max")
                .is_null()
                .or(col("from").gt(col("_prev_max")))
                .cast(DataType::UInt32)
                .cum_sum(false)
                .alias("_seg"),
        )
        .group_by(group)
        .agg([col("from").min(), col("to").max()])
        .drop(cols(["_seg"])))
}

/// The `watch_time` features (see the module docs) of [`intervals`].
pub fn features(intervals: LazyFrame) -> PolarsResult<LazyFrame> {
    features_with_chains(intervals.clone(), chains(intervals))
}

/// [`features`], given the [`chains`] of the intervals (computed once: `low_coverage` reads
/// them too).
fn features_with_chains(intervals: LazyFrame, chains: LazyFrame) -> PolarsResult<LazyFrame> {
    let key_exprs: Vec<Expr> = LESSON_DAY.iter().map(|k| col(*k)).collect();
    let covered = union_ranges(
        chains.select([
            col("user_id"),
            col("course_id"),
            col("lesson_id"),
            col("day"),
            col("from"),
            col("to"),
        ]),
        &LESSON_DAY,
    )?
    .sort(
        ["user_id", "course_id", "lesson_id", "day", "from"],
        sort_opts(),
    )
    .group_by(key_exprs.clone())
    .agg([
        (col("to") - col("from")).sum().alias("covered_s"),
        col("from").alias("seg_from"),
        col("to").alias("seg_to"),
    ]);
    let agg = intervals.group_by(key_exprs.clone()).agg([
        col("org_unit").drop_nulls().first().alias("org_unit"),
        col("play_s").sum(),
        col("engaged_s").sum(),
        col("hidden_s").sum(),
        col("muted_s").sum(),
        col("fast_s").sum(),
        col("rate").max().alias("max_rate"),
        col("duration_s").max(),
        col("t").min().alias("first_t"),
        col("t").max().alias("last_t"),
    ]);
    Ok(agg
        .join(
            covered,
            key_exprs.clone(),
            key_exprs,
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("covered_s").fill_null(lit(0.0)),
            when(col("play_s").gt(lit(0.0)))
                .then(col("hidden_s") / col("play_s"))
                .otherwise(lit(0.0))
                .alias("hidden_share"),
        ])
        .select([
            col("user_id"),
            col("org_unit"),
            col("course_id"),
            col("lesson_id"),
            col("day"),
            col("play_s"),
            col("engaged_s"),
            col("hidden_s"),
            col("muted_s"),
            col("hidden_share"),
            col("fast_s"),
            col("max_rate"),
            col("covered_s"),
            col("duration_s"),
            col("seg_from"),
            col("seg_to"),
            col("first_t"),
            col("last_t"),
        ])
        .sort(["user_id", "course_id", "lesson_id", "day"], sort_opts()))
}

/// `course_complete` rows of the events: `event_id`, `user_id`, `org_unit`, `course_id`, `t`,
/// `credits`, `category`.
pub fn completions(events: LazyFrame) -> LazyFrame {
    events
        .filter(
            col("event_type")
                .eq(lit("course_complete"))
                .and(col("course_id").is_not_null()),
        )
        .select([
            col("event_id"),
            col("user_id"),
            col("org_unit"),
            col("course_id"),
            col("t"),
            col("credits"),
            col("category"),
        ])
}

/// [`completions`] of a collected batch of events, collected, found without comparing every row's
/// `event_type`. Every `course_complete` carries `credits` (telemetry-v1 requires it; ingest sends
/// an event without to the dead letters) and few other events do, so the rows with `credits` are
/// taken first (a read of the column's validity bitmap: 0.3 ms over a batch of 3 M events, where
/// the type comparison costs 7 ms) and the type is compared on those alone. The two steps are
/// collected apart because polars folds consecutive filters into one predicate over every row.
pub fn completions_in(events: &DataFrame) -> PolarsResult<DataFrame> {
    let with_credits = events
        .clone()
        .lazy()
        .select(
            [
                "event_type",
                "event_id",
                "user_id",
                "org_unit",
                "course_id",
                "t",
                "credits",
                "category",
            ]
            .map(col),
        )
        .filter(col("credits").is_not_null())
        .collect()?;
    completions(with_credits.lazy()).collect()
}

/// Runs `watch_time` from the events alone (no earlier features): [`intervals`], then [`detect`].
pub fn detect_events(
    events: LazyFrame,
    catalog: &Catalog,
    cfg: &WatchTimeConfig,
) -> Result<JobOutput> {
    let iv = intervals(events.clone(), cfg).collect()?;
    detect(iv.lazy(), completions(events), None, catalog, cfg)
}

/// The `watch_time` job over [`intervals`] and [`completions`]. `prior` is earlier days'
/// `features/watch_time` (for coverage at completion); features are returned for every day in
/// the input.
pub fn detect(
    intervals: LazyFrame,
    completions: LazyFrame,
    prior: Option<LazyFrame>,
    catalog: &Catalog,
    cfg: &WatchTimeConfig,
) -> Result<JobOutput> {
    let chained = chains(intervals.clone()).collect()?;
    let features = features_with_chains(intervals.clone(), chained.clone().lazy())?.collect()?;
    let mut drafts = Vec::new();
    course_day_rules(&features, cfg, &mut drafts)?;
    low_coverage(
        intervals,
        chained.lazy(),
        completions,
        prior,
        catalog,
        cfg,
        &mut drafts,
    )?;
    let mut flags: Vec<_> = drafts.into_iter().map(Draft::finish).collect();
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

/// The rules judged per user, course and day: `background_playback` and `speed`.
fn course_day_rules(
    features: &DataFrame,
    cfg: &WatchTimeConfig,
    out: &mut Vec<Draft>,
) -> Result<()> {
    background_playback(&background_days(features, cfg).collect()?, cfg, out)?;
    speed(&fast_days(features, cfg).collect()?, cfg, out)
}

/// Lessons past the background thresholds, per user, course and day: the play, hidden, engaged
/// and muted time summed, the largest lesson's `max_lesson_share`, the course's `hidden_share`.
fn background_days(features: &DataFrame, cfg: &WatchTimeConfig) -> LazyFrame {
    let ucd = [col("user_id"), col("course_id"), col("day")];
    features
        .clone()
        .lazy()
        .filter(
            col("play_s")
                .gt_eq(lit(cfg.min_play_s))
                .and(col("hidden_share").gt_eq(lit(cfg.hidden_share))),
        )
        .group_by(ucd)
        .agg([
            col("org_unit").drop_nulls().first(),
            col("play_s").sum(),
            col("hidden_s").sum(),
            col("engaged_s").sum(),
            col("muted_s").sum(),
            col("hidden_share").max().alias("max_lesson_share"),
            col("lesson_id")
                .unique()
                .sort(SortOptions::default())
                .alias("lessons"),
            col("first_t").min(),
            col("last_t").max(),
        ])
        .with_column((col("hidden_s") / col("play_s")).alias("hidden_share"))
        .sort(["user_id", "course_id", "day"], sort_opts())
}

/// `background_playback`: a flag per row of [`background_days`].
fn background_playback(bg: &DataFrame, cfg: &WatchTimeConfig, out: &mut Vec<Draft>) -> Result<()> {
    let r = Rows(bg);
    let (user, org, course, lessons) = (
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("course_id")?,
        r.list("lessons")?,
    );
    let (play, hidden, engaged, muted, share, max_share) = (
        r.f64("play_s")?,
        r.f64("hidden_s")?,
        r.f64("engaged_s")?,
        r.f64("muted_s")?,
        r.f64("hidden_share")?,
        r.f64("max_lesson_share")?,
    );
    let (first, last) = (r.i64("first_t")?, r.i64("last_t")?);
    for i in 0..r.len() {
        let c = course.get(i).unwrap_or_default().to_string();
        let (p, h, e, m) = (
            play.get(i).unwrap_or(0.0),
            hidden.get(i).unwrap_or(0.0),
            engaged.get(i).unwrap_or(0.0),
            muted.get(i).unwrap_or(0.0),
        );
        let (ws, we) = (first.get(i).unwrap_or(0), last.get(i).unwrap_or(0));
        let (sh, msh) = (share.get(i).unwrap_or(0.0), max_share.get(i).unwrap_or(0.0));
        let ls = list_strings(lessons, i);
        let excess = if cfg.hidden_share < 1.0 {
            (msh - cfg.hidden_share) / (1.0 - cfg.hidden_share)
        } else {
            1.0
        };
        // Long background play weighs more than a lesson that barely reaches min_play_s.
        let sev = ramp(excess) * (0.75 + 0.25 * (p / (4.0 * cfg.min_play_s)).min(1.0));
        let text = explain::background_playback(
            &explain::BackgroundPlayback {
                course: &c,
                lessons: ls.len(),
                play_s: p,
                engaged_s: e,
                hidden_share: sh,
                start: ws,
                end: we,
            },
            cfg,
        );
        out.push(Draft {
            rule: "watch_time.background_playback",
            user_id: user.get(i).unwrap_or_default().to_string(),
            org_unit: org.get(i).map(str::to_string),
            course_id: Some(c.clone()),
            window_start: ws,
            window_end: we,
            severity: sev,
            key: c.clone(),
            evidence: json!({
                "play_s": r3(p), "hidden_s": r3(h), "engaged_s": r3(e), "muted_s": r3(m),
                "hidden_share": r3(sh), "max_lesson_hidden_share": r3(msh), "lessons": ls,
                "threshold_hidden_share": cfg.hidden_share, "threshold_min_play_s": cfg.min_play_s,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: text.en,
            zh: text.zh,
        });
    }
    Ok(())
}

/// Fast wall time summed over each course's lessons of a day, the days at or past `min_fast_s`.
fn fast_days(features: &DataFrame, cfg: &WatchTimeConfig) -> LazyFrame {
    let ucd = [col("user_id"), col("course_id"), col("day")];
    features
        .clone()
        .lazy()
        .group_by(ucd)
        .agg([
            col("org_unit").drop_nulls().first(),
            col("play_s").sum(),
            col("fast_s").sum(),
            col("max_rate").max(),
            col("lesson_id")
                .filter(col("fast_s").gt(lit(0.0)))
                .unique()
                .sort(SortOptions::default())
                .alias("lessons"),
            col("first_t").min(),
            col("last_t").max(),
        ])
        .filter(col("fast_s").gt_eq(lit(cfg.min_fast_s)))
        .sort(["user_id", "course_id", "day"], sort_opts())
}

/// `speed`: a flag per row of [`fast_days`].
fn speed(fast: &DataFrame, cfg: &WatchTimeConfig, out: &mut Vec<Draft>) -> Result<()> {
    let fast_rate = cfg.max_rate * (1.0 + cfg.rate_tolerance);
    let r = Rows(fast);
    let (user, org, course, lessons) = (
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("course_id")?,
        r.list("lessons")?,
    );
    let (play, fs, maxr) = (r.f64("play_s")?, r.f64("fast_s")?, r.f64("max_rate")?);
    let (first, last) = (r.i64("first_t")?, r.i64("last_t")?);
    for i in 0..r.len() {
        let c = course.get(i).unwrap_or_default().to_string();
        let (p, f) = (play.get(i).unwrap_or(0.0), fs.get(i).unwrap_or(0.0));
        let (ws, we) = (first.get(i).unwrap_or(0), last.get(i).unwrap_or(0));
        let mr = maxr.get(i).unwrap_or(fast_rate);
        let ls = list_strings(lessons, i);
        let sev = ramp((mr - fast_rate) / cfg.max_rate)
            * (0.75 + 0.25 * (f / (10.0 * cfg.min_fast_s)).min(1.0));
        let text = explain::speed(&explain::Speed {
            course: &c,
            start: ws,
            fast_rate,
            fast_s: f,
            max_rate: mr,
        });
        out.push(Draft {
            rule: "watch_time.speed",
            user_id: user.get(i).unwrap_or_default().to_string(),
            org_unit: org.get(i).map(str::to_string),
            course_id: Some(c.clone()),
            window_start: ws,
            window_end: we,
            severity: sev,
            key: c.clone(),
            evidence: json!({
                "fast_s": r3(f), "max_rate": r3(mr), "play_s": r3(p), "lessons": ls,
                "threshold_rate": cfg.max_rate, "rate_tolerance": cfg.rate_tolerance, "threshold_fast_s": cfg.min_fast_s,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: text.en,
            zh: text.zh,
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn low_coverage(
    intervals: LazyFrame,
    chains: LazyFrame,
    completions: LazyFrame,
    prior: Option<LazyFrame>,
    catalog: &Catalog,
    cfg: &WatchTimeConfig,
    out: &mut Vec<Draft>,
) -> Result<()> {
    let done = completions.collect()?;
    if done.height() == 0 {
        return Ok(());
    }
    let (ranges, durations) = watched_ranges(intervals, chains, &done, prior)?;
    let judged = coverage_at_completion(&done, ranges, durations)?.collect()?;
    coverage_flags(&judged, catalog, cfg, out)
}

/// The content ranges the completing learners watched, with the time each was covered by (this
/// period's chains; earlier days' feature segments, as of the end of their day), and the
/// duration of every lesson the player reported, for the (user, course) pairs of `done`.
fn watched_ranges(
    intervals: LazyFrame,
    chains: LazyFrame,
    done: &DataFrame,
    prior: Option<LazyFrame>,
) -> Result<(LazyFrame, LazyFrame)> {
    let pairs = done
        .clone()
        .lazy()
        .select([col("user_id"), col("course_id")])
        .unique(None, UniqueKeepStrategy::Any);
    let uc = [col("user_id"), col("course_id")];
    let mut ranges = chains
        .join(
            pairs.clone(),
            uc.clone(),
            uc.clone(),
            JoinArgs::new(JoinType::Semi),
        )
        .select([
            col("user_id"),
            col("course_id"),
            col("lesson_id"),
            col("t"),
            col("from"),
            col("to"),
        ]);
    let mut durations = intervals
        .join(
            pairs.clone(),
            uc.clone(),
            uc.clone(),
            JoinArgs::new(JoinType::Semi),
        )
        .group_by([col("user_id"), col("course_id"), col("lesson_id")])
        .agg([col("duration_s").max()]);
    if let Some(prior) = prior {
        let prior = prior.join(pairs, uc.clone(), uc.clone(), JoinArgs::new(JoinType::Semi));
        let old = prior
            .clone()
            .select([
                col("user_id"),
                col("course_id"),
                col("lesson_id"),
                ((col("day") + lit(1i64)) * lit(crate::DAY_US) - lit(1i64)).alias("t"),
                col("seg_from").alias("from"),
                col("seg_to").alias("to"),
            ])
            .explode(
                cols(["from", "to"]),
                ExplodeOptions {
                    empty_as_null: false,
                    keep_nulls: false,
                },
            )
            .filter(col("from").is_not_null());
        ranges = concat([ranges, old], UnionArgs::default())?;
        let old_dur = prior.select([
            col("user_id"),
            col("course_id"),
            col("lesson_id"),
            col("duration_s"),
        ]);
        durations = concat([durations, old_dur], UnionArgs::default())?
            .group_by([col("user_id"), col("course_id"), col("lesson_id")])
            .agg([col("duration_s").max()]);
    }
    Ok((ranges, durations))
}

/// Per completion of `done`: the content covered before it (`covered_s`, ranges unioned per
/// lesson), the lessons watched, and the sum of the lessons' reported durations.
fn coverage_at_completion(
    done: &DataFrame,
    ranges: LazyFrame,
    durations: LazyFrame,
) -> Result<LazyFrame> {
    let uc = [col("user_id"), col("course_id")];
    // Coverage as of each completion: ranges covered before it, unioned per lesson.
    let per_completion = done
        .clone()
        .lazy()
        .select([
            col("event_id"),
            col("user_id"),
            col("course_id"),
            col("t").alias("t_done"),
        ])
        .join(
            ranges,
            uc.clone(),
            uc.clone(),
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col("t").lt_eq(col("t_done")))
        .select([col("event_id"), col("lesson_id"), col("from"), col("to")]);
    // Summed in whole microseconds: a sum of fractional seconds depends on the order of its
    // terms, which a hash group-by does not fix, and a re-run (or a shard of the users) must
    // give the same bits.
    let covered = union_ranges(per_completion, &["event_id", "lesson_id"])?
        .group_by([col("event_id"), col("lesson_id")])
        .agg([((col("to") - col("from")) * lit(1e6))
            .round(0, RoundMode::default())
            .cast(DataType::Int64)
            .sum()
            .alias("_covered_us")])
        .group_by([col("event_id")])
        .agg([
            col("_covered_us").sum(),
            col("lesson_id")
                .n_unique()
                .cast(DataType::Int64)
                .alias("lessons_watched"),
        ])
        .with_column((col("_covered_us").cast(DataType::Float64) / lit(1e6)).alias("covered_s"))
        .drop(cols(["_covered_us"]));
    let lesson_total = durations
        .sort(["user_id", "course_id", "lesson_id"], sort_opts())
        .group_by(uc.clone())
        .agg([col("duration_s").sum().alias("lessons_duration_s")]);
    Ok(done
        .clone()
        .lazy()
        .join(
            covered,
            [col("event_id")],
            [col("event_id")],
            JoinArgs::new(JoinType::Left),
        )
        .join(lesson_total, uc.clone(), uc, JoinArgs::new(JoinType::Left))
        .with_columns([
            col("covered_s").fill_null(lit(0.0)),
            col("lessons_watched").fill_null(lit(0i64)),
        ])
        .sort(["user_id", "t", "event_id"], sort_opts()))
}

/// `low_coverage`: the completions of [`coverage_at_completion`] below the course's required share.
fn coverage_flags(
    judged: &DataFrame,
    catalog: &Catalog,
    cfg: &WatchTimeConfig,
    out: &mut Vec<Draft>,
) -> Result<()> {
    let r = Rows(judged);
    let (ev, user, org, course) = (
        r.str("event_id")?,
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("course_id")?,
    );
    let (t, covered, lessons_dur, watched) = (
        r.i64("t")?,
        r.f64("covered_s")?,
        r.f64("lessons_duration_s")?,
        r.i64("lessons_watched")?,
    );
    for i in 0..r.len() {
        let c = course.get(i).unwrap_or_default();
        let entry = catalog.course(c);
        let (duration, source) = match (entry, lessons_dur.get(i)) {
            (Some(e), _) => (e.duration_s, "catalog"),
            (None, Some(d)) if d > 0.0 => (d, "player"),
            _ => continue, // Nothing says how long the course is: coverage cannot be judged.
        };
        let need = entry
            .map(|e| e.min_watch_ratio)
            .unwrap_or(cfg.default_min_watch_ratio);
        let cov = covered.get(i).unwrap_or(0.0);
        let ratio = (cov / duration).min(1.0);
        if ratio >= need || need <= 0.0 {
            continue;
        }
        let tc = t.get(i).unwrap_or(0);
        let text = explain::low_coverage(&explain::LowCoverage {
            course: c,
            completed_at: tc,
            covered_s: cov,
            duration_s: duration,
            covered_ratio: ratio,
            required_ratio: need,
        });
        out.push(Draft {
            rule: "watch_time.low_coverage",
            user_id: user.get(i).unwrap_or_default().to_string(),
            org_unit: org.get(i).map(str::to_string),
            course_id: Some(c.to_string()),
            window_start: tc,
            window_end: tc,
            severity: ramp((need - ratio) / need),
            key: ev.get(i).unwrap_or_default().to_string(),
            evidence: json!({
                "covered_s": r3(cov), "duration_s": r3(duration), "duration_source": source,
                "covered_ratio": r3(ratio), "lessons_watched": watched.get(i).unwrap_or(0),
                "threshold_min_watch_ratio": need, "lookback_days": cfg.coverage_lookback_days,
                "completion_event_id": ev.get(i).unwrap_or_default(),
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: text.en,
            zh: text.zh,
        });
    }
    Ok(())
}

/// Engaged seconds per user and day, from [`intervals`]: `user_id`, `day`, `engaged_s`.
pub fn engaged_daily(intervals: LazyFrame) -> LazyFrame {
    intervals
        .group_by([col("user_id"), col("day")])
        .agg([col("engaged_s").sum()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn run(events: &[String]) -> JobOutput {
        let ev = frame(events);
        detect_events(ev.lazy(), &catalog(), &WatchTimeConfig::default()).unwrap()
    }

    /// Heartbeats every `step` s from `t0` for `n` beats, position advancing `rate`× wall time.
    fn beats(
        u: &str,
        s: &str,
        c: &str,
        l: &str,
        t0: f64,
        n: usize,
        step: f64,
        rate: f64,
        visible: bool,
    ) -> Vec<String> {
        (0..n)
            .map(|k| {
                let t = t0 + k as f64 * step;
                hb(u, s, c, l, t, k as f64 * step * rate, true, visible)
            })
            .collect()
    }

    #[test]
    fn background_playback_fires_and_a_short_tab_switch_does_not() {
        // 20 min playing, all hidden.
        let bg = run(&beats("u1", "s1", "c1", "l1", 0.0, 61, 20.0, 1.0, false));
        assert_eq!(rules(&bg.flags), ["watch_time.background_playback"]);
        let f = &bg.flags[0];
        assert!(f.severity > 0.9, "{f:?}");
        assert!(
            f.evidence.contains("\"hidden_share\":1.0"),
            "{}",
            f.evidence
        );
        assert!(
            f.explanation.contains("100% of it in a hidden page"),
            "{}",
            f.explanation
        );
        // 20 min playing with a 2-minute tab switch in the middle: share 0.1. The visibility
        // events carry no lesson: they apply to the session's current one.
        let mut ev: Vec<String> = (0..61)
            .map(|k| {
                let t = k as f64 * 20.0;
                hb(
                    "u2",
                    "s2",
                    "c1",
                    "l1",
                    t,
                    t,
                    true,
                    !(600.0..720.0).contains(&t),
                )
            })
            .collect();
        ev.push(vis("u2", "s2", 601.0, false));
        ev.push(vis("u2", "s2", 721.0, true));
        let out = run(&ev);
        assert!(out.flags.is_empty(), "{:?}", out.flags);
        let hidden: f64 = out
            .features
            .column("hidden_s")
            .unwrap()
            .f64()
            .unwrap()
            .sum()
            .unwrap();
        assert!((hidden - 120.0).abs() < 1e-6, "{hidden}");
    }

    #[test]
    fn background_playback_boundaries() {
        // Exactly 300 s of play (16 beats 20 s apart = 15 intervals), all hidden: fires.
        assert_eq!(
            rules(&run(&beats("u1", "s1", "c1", "l1", 0.0, 16, 20.0, 1.0, false)).flags),
            ["watch_time.background_playback"]
        );
        // 280 s: does not.
        assert!(
            run(&beats("u1", "s1", "c1", "l1", 0.0, 15, 20.0, 1.0, false))
                .flags
                .is_empty()
        );
        // Gaps beyond max_gap_s count as nothing: 10 beats 120 s apart are 0 s of play.
        let out = run(&beats("u1", "s1", "c1", "l1", 0.0, 10, 120.0, 1.0, false));
        assert!(out.flags.is_empty());
        assert_eq!(
            out.features.column("play_s").unwrap().f64().unwrap().sum(),
            Some(0.0)
        );
    }

    #[test]
    fn speed_fires_at_4x_not_at_1_5x_or_2x() {
        let fast = run(&beats("u1", "s1", "c1", "l1", 0.0, 31, 20.0, 4.0, true));
        assert_eq!(rules(&fast.flags), ["watch_time.speed"]);
        assert!(
            fast.flags[0].evidence.contains("\"max_rate\":4.0"),
            "{}",
            fast.flags[0].evidence
        );
        for rate in [1.5, 2.0, 2.09] {
            let out = run(&beats("u1", "s1", "c1", "l1", 0.0, 31, 20.0, rate, true));
            assert!(out.flags.is_empty(), "rate {rate}: {:?}", out.flags);
        }
        // Past the tolerance (2.3×), but only for 20 s of wall time (< min_fast_s 30): no flag;
        // for 40 s: a flag.
        let mut ev = beats("u1", "s1", "c1", "l1", 0.0, 10, 20.0, 1.0, true);
        ev.push(hb(
            "u1",
            "s1",
            "c1",
            "l1",
            200.0,
            180.0 + 20.0 * 2.3,
            true,
            true,
        ));
        assert!(run(&ev).flags.is_empty());
        ev.push(hb(
            "u1",
            "s1",
            "c1",
            "l1",
            220.0,
            180.0 + 40.0 * 2.3,
            true,
            true,
        ));
        assert_eq!(rules(&run(&ev).flags), ["watch_time.speed"]);
    }

    #[test]
    fn seeks_move_without_covering_and_low_coverage_fires_on_completion() {
        // Course c1 lasts 3600 s (catalog), min ratio 0.8. Watch 10 min, seek to the end, complete.
        let mut ev = beats("u1", "s1", "c1", "l1", 0.0, 31, 20.0, 1.0, true);
        ev.push(seek("u1", "s1", "c1", "l1", 610.0, 600.0, 3590.0));
        ev.push(complete("u1", "c1", 700.0, 4.0));
        let out = run(&ev);
        assert_eq!(rules(&out.flags), ["watch_time.low_coverage"]);
        let f = &out.flags[0];
        assert!(f.evidence.contains("\"covered_s\":600.0"), "{}", f.evidence);
        assert!(f.explanation.contains("17%"), "{}", f.explanation);
        // Watching the whole hour at 1× and completing: no flag.
        let mut ev = beats("u2", "s1", "c1", "l1", 0.0, 181, 20.0, 1.0, true);
        ev.push(complete("u2", "c1", 3700.0, 4.0));
        assert!(run(&ev).flags.is_empty());
    }

    #[test]
    fn a_client_clock_running_ahead_is_bounded_by_received_at() {
        // The hour played at 1× from t = 0 and the server stamps the completion at 3700 s. The
        // client clock runs 30 min ahead: its heartbeats claim t + 1800 s and arrive at t + 1 s.
        let ahead = beats("u1", "s1", "c1", "l1", 1800.0, 181, 20.0, 1.0, true);
        let mut raw = ahead.clone();
        raw.push(complete("u1", "c1", 3700.0, 4.0));
        // Taken at its word, the clock says half the hour played after the completion.
        assert_eq!(rules(&run(&raw).flags), ["watch_time.low_coverage"]);
        let mut ev: Vec<String> = ahead
            .iter()
            .enumerate()
            .map(|(k, l)| received(l, k as f64 * 20.0 + 1.0))
            .collect();
        ev.push(received(&complete("u1", "c1", 3700.0, 4.0), 3700.5));
        assert!(run(&ev).flags.is_empty(), "{:?}", run(&ev).flags);
        // A clock behind (or a late delivery) is left alone: received long after, nothing moves.
        let mut late: Vec<String> = beats("u2", "s2", "c1", "l1", 0.0, 181, 20.0, 1.0, true)
            .iter()
            .enumerate()
            .map(|(k, l)| received(l, k as f64 * 20.0 + 7200.0))
            .collect();
        late.push(complete("u2", "c1", 3700.0, 4.0));
        assert!(run(&late).flags.is_empty(), "{:?}", run(&late).flags);
    }

    #[test]
    fn completions_found_through_credits_are_the_completions() {
        let mut ev = beats("u1", "s1", "c1", "l1", 0.0, 10, 20.0, 1.0, true);
        ev.push(complete("u1", "c1", 300.0, 4.0));
        ev.push(complete("u2", "c2", 400.0, 0.0));
        // Another type carrying `credits` (the contract does not forbid it) is not a completion.
        let login = act("login", "u3", "s3", "pc3", "203.0.113.7", 500.0, None);
        ev.push(login.replace(r#""type":"login""#, r#""type":"login","credits":2"#));
        let f = frame(&ev);
        let a = completions(f.clone().lazy()).collect().unwrap();
        let b = completions_in(&f).unwrap();
        assert_eq!(a.height(), 2);
        assert!(a.equals_missing(&b), "{a}\n{b}");
    }

    #[test]
    fn an_event_without_a_session_is_corrected_on_its_own() {
        // Two completions (no session) of one learner: the first claims a time an hour after
        // the platform received it, the second is on time. Only the first moves.
        let ev = [
            received(&complete("u1", "c1", 5000.0, 2.0), 1400.0),
            received(&complete("u1", "c2", 10_000.0, 2.0), 10_000.5),
        ];
        let t: Vec<i64> = completions(frame(&ev).lazy())
            .sort(["course_id"], Default::default())
            .collect()
            .unwrap()
            .column("t")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(t, [T0_US + 1_400_000_000, T0_US + 10_000_000_000]);
    }

    #[test]
    fn coverage_at_16x_is_not_coverage() {
        // The whole hour "played" in 4 minutes: speed flag and low coverage.
        let mut ev = beats("u1", "s1", "c1", "l1", 0.0, 12, 20.0, 16.0, true);
        ev.push(complete("u1", "c1", 300.0, 4.0));
        assert_eq!(
            rules(&run(&ev).flags),
            ["watch_time.low_coverage", "watch_time.speed"]
        );
    }

    #[test]
    fn duplicates_and_shuffled_input_give_the_same_flags() {
        let mut ev = beats("u1", "s1", "c1", "l1", 0.0, 61, 20.0, 1.0, false);
        ev.extend(beats("u2", "s2", "c1", "l1", 0.0, 31, 20.0, 4.0, true));
        ev.push(complete("u2", "c1", 700.0, 4.0));
        let clean = run(&ev);
        assert_eq!(clean.flags.len(), 3);
        let messy = run(&shuffle_with_duplicates(&ev));
        assert_eq!(clean.flags, messy.flags);
        assert!(clean.features.equals_missing(&messy.features));
    }
}
