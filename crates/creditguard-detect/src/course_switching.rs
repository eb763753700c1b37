//! `course_switching`: farming "time spent" by hopping between courses or playing several at once.
//!
//! - `rapid_switching`: the user's sequence of course ids (from `switch_event_types`, by default
//!   `course_enter` and `video_play`: what the learner does, not the heartbeats of open tabs);
//!   a burst is ≥ `min_changes` changes of course inside `window_s`. Found with one shift: the
//!   k-th change before a change is at most `window_s` earlier. Overlapping bursts merge into one
//!   episode, one flag each.
//! - `parallel_playback`: playing episodes (consecutive playing intervals of one lesson stream,
//!   from [`watch_time::intervals`](crate::watch_time::intervals)) of two different courses
//!   overlapping ≥ `min_overlap_s`; swept in start order like `multi_login`. One flag per user,
//!   pair of courses and day.
//!
//! Features (`features/course_switching`), one row per user × day: `changes`, `courses`,
//! `bursts`, `max_changes_in_burst`, `playing_episodes`, `parallel_s`.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde_json::json;

use crate::config::CourseSwitchingConfig;
use crate::events::{day_of, same_as_prev, secs, sort_opts, type_in};
use crate::flags::{date, dur, dur_zh, hhmm, list_strings, r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// Changes of course per user: rows of the switch events where the course differs from the
/// user's previous one. Columns `user_id`, `org_unit`, `t`, `course_id`, `prev_course`.
pub fn changes(events: LazyFrame, cfg: &CourseSwitchingConfig) -> LazyFrame {
    let types: Vec<&str> = cfg.switch_event_types.iter().map(String::as_str).collect();
    events
        .filter(type_in(&types).and(col("course_id").is_not_null()))
        .select([
            col("user_id"),
            col("org_unit"),
            col("t"),
            col("event_id"),
            col("course_id"),
        ])
        .sort(["user_id", "t", "event_id"], sort_opts())
        .with_columns([
            same_as_prev(&["user_id"]).alias("_same"),
            col("course_id").shift(lit(1)).alias("prev_course"),
        ])
        .filter(col("_same").and(col("course_id").neq(col("prev_course"))))
        .select([
            col("user_id"),
            col("org_unit"),
            col("t"),
            col("course_id"),
            col("prev_course"),
        ])
}

/// Playing episodes: runs of consecutive playing intervals of one lesson stream. Columns
/// `user_id`, `org_unit`, `course_id`, `start`, `end` (µs).
pub fn playing_episodes(intervals: LazyFrame) -> LazyFrame {
    let stream = ["user_id", "session_id", "course_id", "lesson_id"];
    intervals
        .with_column((col("play_s").gt(lit(0.0))).alias("_on"))
        .with_column(
            same_as_prev(&stream)
                .and(col("_on").shift(lit(1)).fill_null(lit(false)))
                .and(col("_on"))
                .not()
                .cast(DataType::UInt32)
                .cum_sum(false)
                .alias("_ep"),
        )
        .filter(col("_on"))
        .group_by([col("_ep")])
        .agg([
            col("user_id").first(),
            col("org_unit").drop_nulls().first(),
            col("course_id").first(),
            col("t").min().alias("start"),
            (col("t") + (col("play_s") * lit(1e6)).cast(DataType::Int64))
                .max()
                .alias("end"),
        ])
        .drop(cols(["_ep"]))
}

/// The `course_switching` job over the events and their [`watch_time::intervals`](crate::watch_time::intervals).
pub fn detect(
    events: LazyFrame,
    intervals: LazyFrame,
    cfg: &CourseSwitchingConfig,
) -> Result<JobOutput> {
    let k = cfg.min_changes as i64;
    let window_us = (cfg.window_s * 1e6) as i64;
    let ch = changes(events, cfg)
        .with_columns([
            col("user_id")
                .eq(col("user_id").shift(lit(k - 1)))
                .fill_null(lit(false))
                .alias("_k_same"),
            col("t").shift(lit(k - 1)).alias("k_start"),
        ])
        .with_column(
            col("_k_same")
                .and((col("t") - col("k_start")).lt_eq(lit(window_us)))
                .alias("burst_end"),
        )
        .collect()?;
    // Episodes: burst ends of a user no more than one window apart belong together.
    let bursts = ch
        .clone()
        .lazy()
        .filter(col("burst_end"))
        .with_column(
            same_as_prev(&["user_id"])
                .and((col("k_start") - col("t").shift(lit(1))).lt_eq(lit(0i64)))
                .fill_null(lit(false))
                .not()
                .cast(DataType::UInt32)
                .cum_sum(false)
                .alias("_ep"),
        )
        .group_by([col("_ep")])
        .agg([
            col("user_id").first(),
            col("org_unit").drop_nulls().first(),
            col("k_start").min().alias("start"),
            col("t").max().alias("end"),
            (col("t") - col("k_start")).min().alias("fastest_us"),
        ])
        .drop(cols(["_ep"]));
    // Count the changes and courses inside each episode exactly.
    let in_burst = bursts
        .clone()
        .join(
            ch.clone().lazy().select([
                col("user_id"),
                col("t").alias("ct"),
                col("course_id"),
                col("prev_course"),
            ]),
            [col("user_id")],
            [col("user_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col("ct")
                .gt_eq(col("start"))
                .and(col("ct").lt_eq(col("end"))),
        )
        .group_by([col("user_id"), col("start")])
        .agg([
            len().cast(DataType::Int64).alias("changes"),
            col("course_id").alias("c_in"),
            col("prev_course").alias("c_prev"),
        ]);
    let bursts = bursts
        .join(
            in_burst,
            [col("user_id"), col("start")],
            [col("user_id"), col("start")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["user_id", "start"], sort_opts())
        .collect()?;

    let mut drafts = Vec::new();
    {
        let r = Rows(&bursts);
        let (user, org, c_in, c_prev) = (
            r.str("user_id")?,
            r.str("org_unit")?,
            r.list("c_in")?,
            r.list("c_prev")?,
        );
        let (start, end, fastest, n) = (
            r.i64("start")?,
            r.i64("end")?,
            r.i64("fastest_us")?,
            r.i64("changes")?,
        );
        for i in 0..r.len() {
            let (ws, we) = (start.get(i).unwrap_or(0), end.get(i).unwrap_or(0));
            let n = n.get(i).unwrap_or(k);
            let fastest_s = fastest.get(i).unwrap_or(0) as f64 / 1e6;
            let mut cs = list_strings(c_in, i);
            cs.extend(list_strings(c_prev, i));
            cs.sort_unstable();
            cs.dedup();
            drafts.push(Draft {
                rule: "course_switching.rapid_switching",
                user_id: user.get(i).unwrap_or_default().to_string(),
                org_unit: org.get(i).map(str::to_string),
                course_id: None,
                window_start: ws,
                window_end: we,
                severity: ramp((n - k) as f64 / (2.0 * k as f64)),
                key: String::new(),
                evidence: json!({
                    "changes": n, "courses": cs, "burst_s": r3((we - ws) as f64 / 1e6),
                    "fastest_window_s": r3(fastest_s),
                    "threshold_changes": k, "threshold_window_s": cfg.window_s,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                en: format!(
                    "Switched course {n} times between {} and {} on {} across {} courses ({k} changes took only {}; threshold {k} changes in {}).",
                    hhmm(ws), hhmm(we), date(ws), cs.len(), dur(fastest_s), dur(cfg.window_s)
                ),
                zh: format!(
                    "{} {} 至 {} 期间在 {} 门课程之间切换了 {n} 次（{k} 次切换仅用时 {}；阈值为 {} 内 {k} 次）。",
                    date(ws), hhmm(ws), hhmm(we), cs.len(), dur_zh(fastest_s), dur_zh(cfg.window_s)
                ),
            });
        }
    }

    // Parallel playback: sweep playing episodes in start order per user.
    let episodes = playing_episodes(intervals).sort(["user_id", "start", "course_id"], sort_opts());
    let user = [col("user_id")];
    let overlaps = episodes
        .clone()
        .with_column(
            col("end")
                .eq(col("end").cum_max(false).over(user.clone())?)
                .alias("_is_max"),
        )
        .with_columns([
            col("end")
                .cum_max(false)
                .shift(lit(1))
                .over(user.clone())?
                .alias("o_end"),
            when(col("_is_max"))
                .then(col("course_id"))
                .otherwise(lit(NULL).cast(DataType::String))
                .fill_null_with_strategy(FillNullStrategy::Forward(None))
                .shift(lit(1))
                .over(user.clone())?
                .alias("o_course"),
        ])
        .filter(
            col("o_course")
                .is_not_null()
                .and(col("o_course").neq(col("course_id"))),
        )
        .with_column(
            (when(col("end").lt(col("o_end")))
                .then(col("end"))
                .otherwise(col("o_end"))
                - col("start"))
            .alias("overlap_us"),
        )
        .filter(col("overlap_us").gt(lit(0i64)))
        .collect()?;
    struct Par {
        org: Option<String>,
        overlap_us: i64,
        first: i64,
        last: i64,
    }
    let mut par: BTreeMap<(String, String, String, i64), Par> = BTreeMap::new();
    {
        let r = Rows(&overlaps);
        let (user, org, c, oc) = (
            r.str("user_id")?,
            r.str("org_unit")?,
            r.str("course_id")?,
            r.str("o_course")?,
        );
        let (start, end, o_end, ov) = (
            r.i64("start")?,
            r.i64("end")?,
            r.i64("o_end")?,
            r.i64("overlap_us")?,
        );
        for i in 0..r.len() {
            let (a, b) = (c.get(i).unwrap_or_default(), oc.get(i).unwrap_or_default());
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let ws = start.get(i).unwrap_or(0);
            let we = end.get(i).unwrap_or(0).min(o_end.get(i).unwrap_or(0));
            let e = par
                .entry((
                    user.get(i).unwrap_or_default().to_string(),
                    lo.to_string(),
                    hi.to_string(),
                    ws.div_euclid(crate::DAY_US),
                ))
                .or_insert(Par {
                    org: org.get(i).map(str::to_string),
                    overlap_us: 0,
                    first: ws,
                    last: we,
                });
            e.overlap_us += ov.get(i).unwrap_or(0);
            e.first = e.first.min(ws);
            e.last = e.last.max(we);
        }
    }
    let mut parallel_rows: Vec<(String, i64, f64)> = Vec::new();
    for ((u, ca, cb, day), p) in par {
        let s = p.overlap_us as f64 / 1e6;
        parallel_rows.push((u.clone(), day, s));
        if s < cfg.min_overlap_s {
            continue;
        }
        drafts.push(Draft {
            rule: "course_switching.parallel_playback",
            user_id: u,
            org_unit: p.org,
            course_id: None,
            window_start: p.first,
            window_end: p.last,
            severity: ramp((s - cfg.min_overlap_s) / (20.0 * cfg.min_overlap_s)),
            key: format!("{ca}\u{1f}{cb}"),
            evidence: json!({
                "overlap_s": r3(s), "courses": [ca, cb], "threshold_s": cfg.min_overlap_s,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: format!(
                "Courses {ca} and {cb} were playing at the same time for {} between {} and {} on {} (threshold {}).",
                dur(s), hhmm(p.first), hhmm(p.last), date(p.first), dur(cfg.min_overlap_s)
            ),
            zh: format!(
                "{} {} 至 {} 期间，课程 {ca} 与 {cb} 同时播放了 {}（阈值 {}）。",
                date(p.first), hhmm(p.first), hhmm(p.last), dur_zh(s), dur_zh(cfg.min_overlap_s)
            ),
        });
    }

    // Features per user and day.
    let par_df = DataFrame::new_infer_height(vec![
        Column::new(
            "user_id".into(),
            parallel_rows
                .iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "day".into(),
            parallel_rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ),
        Column::new(
            "parallel_s".into(),
            parallel_rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ),
    ])?
    .lazy()
    .group_by([col("user_id"), col("day")])
    .agg([col("parallel_s").sum()]);
    let ud = [col("user_id"), col("day")];
    let change_days = ch
        .lazy()
        .with_column(day_of(col("t")).alias("day"))
        .group_by(ud.clone())
        .agg([
            col("org_unit").drop_nulls().first(),
            len().cast(DataType::Int64).alias("changes"),
            col("course_id")
                .n_unique()
                .cast(DataType::Int64)
                .alias("courses"),
        ]);
    let burst_days = bursts
        .lazy()
        .with_column(day_of(col("start")).alias("day"))
        .group_by(ud.clone())
        .agg([
            len().cast(DataType::Int64).alias("bursts"),
            col("changes").max().alias("max_changes_in_burst"),
        ]);
    let ep_days = episodes
        .with_column(day_of(col("start")).alias("day"))
        .group_by(ud.clone())
        .agg([
            col("org_unit").drop_nulls().first().alias("org_unit_ep"),
            len().cast(DataType::Int64).alias("playing_episodes"),
            secs(col("end") - col("start")).sum().alias("playing_s"),
        ]);
    let full = JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns);
    let features = change_days
        .join(ep_days, ud.clone(), ud.clone(), full.clone())
        .join(
            burst_days,
            ud.clone(),
            ud.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .join(par_df, ud.clone(), ud, JoinArgs::new(JoinType::Left))
        .select([
            col("user_id"),
            col("org_unit")
                .fill_null(col("org_unit_ep"))
                .alias("org_unit"),
            col("day"),
            col("changes").fill_null(lit(0i64)),
            col("courses").fill_null(lit(0i64)),
            col("bursts").fill_null(lit(0i64)),
            col("max_changes_in_burst"),
            col("playing_episodes").fill_null(lit(0i64)),
            col("playing_s").fill_null(lit(0.0)),
            col("parallel_s").fill_null(lit(0.0)),
        ])
        .sort(["user_id", "day"], sort_opts())
        .collect()?;
    let mut flags: Vec<_> = drafts.into_iter().map(Draft::finish).collect();
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WatchTimeConfig;
    use crate::testkit::*;
    use crate::watch_time::intervals;

    fn run(ev: &[String]) -> JobOutput {
        let f = frame(ev);
        let iv = intervals(f.clone().lazy(), &WatchTimeConfig::default())
            .collect()
            .unwrap();
        detect(f.lazy(), iv.lazy(), &CourseSwitchingConfig::default()).unwrap()
    }

    fn hops(u: &str, courses: &[&str], t0: f64, step: f64) -> Vec<String> {
        courses
            .iter()
            .enumerate()
            .map(|(i, c)| enter(u, "s1", c, t0 + i as f64 * step))
            .collect()
    }

    #[test]
    fn six_changes_in_ten_minutes_fire_five_do_not() {
        // 7 entries = 6 changes, 90 s apart: 540 s.
        let out = run(&hops(
            "u1",
            &["c1", "c2", "c3", "c1", "c2", "c3", "c1"],
            0.0,
            90.0,
        ));
        assert_eq!(rules(&out.flags), ["course_switching.rapid_switching"]);
        assert!(
            out.flags[0].evidence.contains("\"changes\":6"),
            "{}",
            out.flags[0].evidence
        );
        assert!(
            out.flags[0]
                .evidence
                .contains(r#""courses":["c1","c2","c3"]"#),
            "{}",
            out.flags[0].evidence
        );
        // 6 changes spread over 12.5 minutes (150 s apart): no.
        assert!(run(&hops(
            "u1",
            &["c1", "c2", "c3", "c1", "c2", "c3", "c1"],
            0.0,
            150.0
        ))
        .flags
        .is_empty());
        // Boundary: 6 changes in exactly 600 s fire, in 605 s do not.
        assert_eq!(
            run(&hops(
                "u1",
                &["c1", "c2", "c3", "c1", "c2", "c3", "c1"],
                0.0,
                120.0
            ))
            .flags
            .len(),
            1
        );
        assert!(run(&hops(
            "u1",
            &["c1", "c2", "c3", "c1", "c2", "c3", "c1"],
            0.0,
            121.0
        ))
        .flags
        .is_empty());
        // Re-entering the same course is not a change.
        assert!(run(&hops(
            "u1",
            &["c1", "c1", "c1", "c1", "c1", "c1", "c1", "c2"],
            0.0,
            10.0
        ))
        .flags
        .is_empty());
    }

    #[test]
    fn a_long_burst_is_one_flag() {
        let courses: Vec<&str> = (0..30).map(|i| ["c1", "c2", "c3"][i % 3]).collect();
        let out = run(&hops("u1", &courses, 0.0, 30.0));
        assert_eq!(out.flags.len(), 1);
        assert!(
            out.flags[0].evidence.contains("\"changes\":29"),
            "{}",
            out.flags[0].evidence
        );
    }

    #[test]
    fn two_courses_playing_at_once_fire_and_alternating_does_not() {
        let mut ev = Vec::new();
        for k in 0..31 {
            let t = k as f64 * 20.0;
            ev.push(hb("u1", "s1", "c1", "l1", t, t, true, true));
            ev.push(hb("u1", "s1", "c2", "l7", t + 5.0, t, true, false));
        }
        let out = run(&ev);
        assert_eq!(rules(&out.flags), ["course_switching.parallel_playback"]);
        assert!(
            out.flags[0].evidence.contains(r#""courses":["c1","c2"]"#),
            "{}",
            out.flags[0].evidence
        );
        // One course, paused, then the other: play c1 0..300, pause; play c2 310..600.
        let mut ev = vec![video("video_play", "u2", "s1", "c1", "l1", 0.0, 0.0)];
        ev.extend((1..15).map(|k| {
            hb(
                "u2",
                "s1",
                "c1",
                "l1",
                k as f64 * 20.0,
                k as f64 * 20.0,
                true,
                true,
            )
        }));
        ev.push(video("video_pause", "u2", "s1", "c1", "l1", 300.0, 300.0));
        ev.push(video("video_play", "u2", "s1", "c2", "l7", 310.0, 0.0));
        ev.extend((1..15).map(|k| {
            hb(
                "u2",
                "s1",
                "c2",
                "l7",
                310.0 + k as f64 * 20.0,
                k as f64 * 20.0,
                true,
                true,
            )
        }));
        assert!(run(&ev).flags.is_empty(), "{:?}", run(&ev).flags);
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let mut ev = hops(
            "u1",
            &["c1", "c2", "c3", "c1", "c2", "c3", "c1", "c2"],
            0.0,
            60.0,
        );
        for k in 0..31 {
            let t = 1000.0 + k as f64 * 20.0;
            ev.push(hb("u2", "s1", "c1", "l1", t, t, true, true));
            ev.push(hb("u2", "s2", "c2", "l7", t + 5.0, t, true, true));
        }
        let a = run(&ev);
        assert_eq!(
            rules(&a.flags),
            [
                "course_switching.parallel_playback",
                "course_switching.rapid_switching"
            ]
        );
        let b = run(&shuffle_with_duplicates(&ev));
        assert_eq!(a.flags, b.flags);
        assert!(a.features.equals_missing(&b.features));
    }
}
