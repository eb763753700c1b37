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
//!   Only changes out of visits that did no work count (see [`changes`]): a learner who hands
//!   in a quiz and is taken to the next question in another course (an app's mixed review quiz)
//!   is working, not hopping; `count_working_visits = true` counts every change.
//!
//! Features (`features/course_switching`), one row per user × day: `changes` (counted),
//! `changes_not_counted` (out of visits with work), `courses`, `bursts`, `max_changes_in_burst`,
//! `playing_episodes`, `parallel_s`.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde_json::json;

use crate::config::CourseSwitchingConfig;
use crate::events::{day_of, overlap_sweep, same_as_prev, secs, sort_opts, type_in};
use crate::explain;
use crate::flags::{list_strings, r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// Changes of course per user: rows of the switch events where the course differs from the
/// user's previous one. Columns `user_id`, `org_unit`, `t`, `course_id`, `prev_course`,
/// `after_work` and `counted`.
///
/// A *visit* runs from a switch event into a course to the next change of course. `after_work`
/// is true when the visit the change leaves holds a work event (`work_event_types`, by default a
/// `quiz_submit`) of that visit's course, at or before the change: the learner moved on after
/// handing in work, as an app's mixed review quiz does when it picks the next question from
/// another course. `counted` is what `rapid_switching` counts: every change with
/// `count_working_visits`, otherwise only changes out of visits that did no work. Playing is
/// not work: farming time by hopping between courses is playing a little of each.
pub fn changes(events: LazyFrame, cfg: &CourseSwitchingConfig) -> Result<LazyFrame> {
    let types: Vec<&str> = cfg.switch_event_types.iter().map(String::as_str).collect();
    let work: Vec<&str> = cfg.work_event_types.iter().map(String::as_str).collect();
    let user = [col("user_id")];
    Ok(events
        .filter(
            col("course_id")
                .is_not_null()
                .and(type_in(&types).or(type_in(&work))),
        )
        .select([
            col("user_id"),
            col("org_unit"),
            col("t"),
            col("event_id"),
            col("course_id"),
            type_in(&types).alias("_sw"),
        ])
        // At the same instant, work belongs to the visit being left.
        .sort(["user_id", "t", "_sw", "event_id"], sort_opts())
        .with_columns([
            same_as_prev(&["user_id"]).alias("_same"),
            // The course of the visit in progress after each row (null before the first one).
            when(col("_sw"))
                .then(col("course_id"))
                .otherwise(lit(NULL).cast(DataType::String))
                .fill_null_with_strategy(FillNullStrategy::Forward(None))
                .over(user.clone())?
                .alias("_cur"),
        ])
        .with_column(
            when(col("_same"))
                .then(col("_cur").shift(lit(1)))
                .otherwise(lit(NULL).cast(DataType::String))
                .alias("prev_course"),
        )
        .with_column(
            col("_sw")
                .and(col("course_id").neq_missing(col("prev_course")))
                .alias("_new"),
        )
        .with_column(
            col("_new")
                .cast(DataType::UInt32)
                .cum_sum(false)
                .alias("_v"),
        )
        .with_column(
            col("_sw")
                .not()
                .and(col("course_id").eq(col("_cur")).fill_null(lit(false)))
                .any(true)
                .over([col("_v")])?
                .alias("_worked"),
        )
        .with_column(
            col("_worked")
                .shift(lit(1))
                .fill_null(lit(false))
                .alias("after_work"),
        )
        .filter(
            col("_new")
                .and(col("_same"))
                .and(col("prev_course").is_not_null()),
        )
        .select([
            col("user_id"),
            col("org_unit"),
            col("t"),
            col("course_id"),
            col("prev_course"),
            col("after_work"),
            if cfg.count_working_visits {
                lit(true)
            } else {
                col("after_work").not()
            }
            .alias("counted"),
        ]))
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
    let all = changes(events, cfg)?.collect()?;
    let bursts = bursts(&all, cfg)?;
    let mut drafts = rapid_switching(&bursts, cfg)?;
    // Collected once: the sweep and the daily features both read it.
    let episodes = playing_episodes(intervals)
        .sort(["user_id", "start", "course_id"], sort_opts())
        .collect()?;
    let pairs = parallel_pairs(&episodes)?;
    drafts.extend(parallel_playback(&pairs, cfg));
    let features = daily_features(all, bursts, episodes, &pairs)?;
    let mut flags: Vec<_> = drafts.into_iter().map(Draft::finish).collect();
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

/// Bursts of switching, one row per episode: `user_id`, `org_unit`, `start`, `end`, `fastest_us`
/// (the shortest time `min_changes` changes took), and the exact `changes`, `not_counted`
/// (changes out of working visits), `c_in`/`c_prev` (the courses) inside it.
fn bursts(all: &DataFrame, cfg: &CourseSwitchingConfig) -> Result<DataFrame> {
    let k = cfg.min_changes as i64;
    let window_us = (cfg.window_s * 1e6) as i64;
    let ch = all
        .clone()
        .lazy()
        .filter(col("counted"))
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
            all.clone().lazy().select([
                col("user_id"),
                col("t").alias("ct"),
                col("course_id"),
                col("prev_course"),
                col("counted"),
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
            col("counted").sum().cast(DataType::Int64).alias("changes"),
            col("counted")
                .not()
                .sum()
                .cast(DataType::Int64)
                .alias("not_counted"),
            col("course_id").filter(col("counted")).alias("c_in"),
            col("prev_course").filter(col("counted")).alias("c_prev"),
        ]);
    Ok(bursts
        .join(
            in_burst,
            [col("user_id"), col("start")],
            [col("user_id"), col("start")],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["user_id", "start"], sort_opts())
        .collect()?)
}

/// `rapid_switching`: a flag per burst.
fn rapid_switching(bursts: &DataFrame, cfg: &CourseSwitchingConfig) -> Result<Vec<Draft>> {
    let k = cfg.min_changes as i64;
    let mut drafts = Vec::new();
    let r = Rows(bursts);
    let (user, org, c_in, c_prev) = (
        r.str("user_id")?,
        r.str("org_unit")?,
        r.list("c_in")?,
        r.list("c_prev")?,
    );
    let (start, end, fastest, n, skipped) = (
        r.i64("start")?,
        r.i64("end")?,
        r.i64("fastest_us")?,
        r.i64("changes")?,
        r.i64("not_counted")?,
    );
    for i in 0..r.len() {
        let (ws, we) = (start.get(i).unwrap_or(0), end.get(i).unwrap_or(0));
        let n = n.get(i).unwrap_or(k);
        let skipped = skipped.get(i).unwrap_or(0);
        let fastest_s = fastest.get(i).unwrap_or(0) as f64 / 1e6;
        let mut cs = list_strings(c_in, i);
        cs.extend(list_strings(c_prev, i));
        cs.sort_unstable();
        cs.dedup();
        let text = explain::rapid_switching(
            &explain::RapidSwitching {
                start: ws,
                end: we,
                changes: n,
                courses: cs.len(),
                fastest_s,
                not_counted: skipped,
            },
            cfg,
        );
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
                "changes_after_work_not_counted": skipped,
                "count_working_visits": cfg.count_working_visits,
                "work_event_types": cfg.work_event_types,
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            en: text.en,
            zh: text.zh,
        });
    }
    Ok(drafts)
}

/// Time two courses played at once, per user, pair of courses (in order) and day.
struct ParallelPair {
    org: Option<String>,
    overlap_us: i64,
    first: i64,
    last: i64,
}

type Pairs = BTreeMap<(String, String, String, i64), ParallelPair>;

/// Sweeps the playing episodes in start order per user for overlaps of two courses.
fn parallel_pairs(episodes: &DataFrame) -> Result<Pairs> {
    let overlaps = overlap_sweep(
        episodes.clone().lazy(),
        "user_id",
        &[("course_id", "o_course")],
    )?
    .filter(
        col("o_course")
            .is_not_null()
            .and(col("o_course").neq(col("course_id"))),
    )
    .collect()?;
    let mut par = Pairs::new();
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
                .or_insert(ParallelPair {
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
    Ok(par)
}

/// `parallel_playback`: a flag per user, pair of courses and day past the threshold.
fn parallel_playback(pairs: &Pairs, cfg: &CourseSwitchingConfig) -> Vec<Draft> {
    let mut drafts = Vec::new();
    for ((u, ca, cb, _day), p) in pairs {
        let s = p.overlap_us as f64 / 1e6;
        if s < cfg.min_overlap_s {
            continue;
        }
        let text = explain::parallel_playback(
            &explain::ParallelPlayback {
                courses: [ca, cb],
                overlap_s: s,
                start: p.first,
                end: p.last,
            },
            cfg,
        );
        drafts.push(Draft {
            rule: "course_switching.parallel_playback",
            user_id: u.clone(),
            org_unit: p.org.clone(),
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
            en: text.en,
            zh: text.zh,
        });
    }
    drafts
}

/// The features, one row per user and day.
fn daily_features(
    all: DataFrame,
    bursts: DataFrame,
    episodes: DataFrame,
    pairs: &Pairs,
) -> Result<DataFrame> {
    let (users, (days, seconds)): (Vec<&str>, (Vec<i64>, Vec<f64>)) = pairs
        .iter()
        .map(|((u, _, _, day), p)| (u.as_str(), (*day, p.overlap_us as f64 / 1e6)))
        .unzip();
    let par_df = DataFrame::new_infer_height(vec![
        Column::new("user_id".into(), users),
        Column::new("day".into(), days),
        Column::new("parallel_s".into(), seconds),
    ])?
    .lazy()
    .group_by([col("user_id"), col("day")])
    .agg([col("parallel_s").sum()]);
    let ud = [col("user_id"), col("day")];
    let change_days = all
        .lazy()
        .with_column(day_of(col("t")).alias("day"))
        .group_by(ud.clone())
        .agg([
            col("org_unit").drop_nulls().first(),
            col("counted").sum().cast(DataType::Int64).alias("changes"),
            col("counted")
                .not()
                .sum()
                .cast(DataType::Int64)
                .alias("changes_not_counted"),
            col("course_id")
                .filter(col("counted"))
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
        .lazy()
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
            col("changes_not_counted").fill_null(lit(0i64)),
            col("courses").fill_null(lit(0i64)),
            col("bursts").fill_null(lit(0i64)),
            col("max_changes_in_burst"),
            col("playing_episodes").fill_null(lit(0i64)),
            col("playing_s").fill_null(lit(0.0)),
            col("parallel_s").fill_null(lit(0.0)),
        ])
        .sort(["user_id", "day"], sort_opts())
        .collect()?;
    Ok(features)
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

    fn run_with(ev: &[String], cfg: &CourseSwitchingConfig) -> JobOutput {
        let f = frame(ev);
        let iv = intervals(f.clone().lazy(), &WatchTimeConfig::default())
            .collect()
            .unwrap();
        detect(f.lazy(), iv.lazy(), cfg).unwrap()
    }

    /// Visits of `step` seconds: enter, then a quiz of that course handed in 5 s before leaving.
    fn quiz_visits(u: &str, courses: &[&str], t0: f64, step: f64) -> Vec<String> {
        let mut ev = Vec::new();
        for (i, c) in courses.iter().enumerate() {
            let t = t0 + i as f64 * step;
            ev.push(enter(u, "s1", c, t));
            ev.push(quiz(
                u,
                c,
                &format!("q{i}"),
                t + step - 5.0,
                1,
                step - 6.0,
                0.0,
                1.0,
            ));
        }
        ev
    }

    #[test]
    fn moving_on_after_a_submitted_quiz_is_not_a_change_that_counts() {
        // A mixed review quiz: 12 visits 40 s apart, each ending with a submitted answer.
        let courses: Vec<&str> = (0..12).map(|i| ["c1", "c2", "c3"][i % 3]).collect();
        let ev = quiz_visits("u1", &courses, 0.0, 40.0);
        let out = run(&ev);
        assert!(out.flags.is_empty(), "{:?}", out.flags);
        let f = &out.features;
        assert_eq!(f.column("changes").unwrap().i64().unwrap().get(0), Some(0));
        assert_eq!(
            f.column("changes_not_counted")
                .unwrap()
                .i64()
                .unwrap()
                .get(0),
            Some(11)
        );
        // Counting working visits too, as before.
        let cfg = CourseSwitchingConfig {
            count_working_visits: true,
            ..Default::default()
        };
        assert_eq!(
            rules(&run_with(&ev, &cfg).flags),
            ["course_switching.rapid_switching"]
        );
        // A quiz of another course does not make the visit a working one.
        let mut ev = hops("u2", &["c1", "c2", "c3", "c1", "c2", "c3", "c1"], 0.0, 60.0);
        ev.push(quiz("u2", "c9", "q9", 30.0, 1, 20.0, 1.0, 1.0));
        assert_eq!(run(&ev).flags.len(), 1);
        // A quiz handed in at the very instant of the next entry belongs to the visit it ends.
        let mut ev = hops("u3", &["c1", "c2", "c3", "c1", "c2", "c3", "c1"], 0.0, 60.0);
        ev.push(quiz("u3", "c2", "q2", 120.0, 1, 50.0, 1.0, 1.0));
        assert!(run(&ev).flags.is_empty());
    }

    #[test]
    fn farming_by_playing_a_little_of_each_course_still_fires() {
        // The synthetic pattern: enter, play, heartbeats, pause, leave; 14 changes, 25 s each.
        let mut ev = Vec::new();
        for v in 0..15 {
            let c = ["c1", "c2", "c3", "c4"][v % 4];
            let t = v as f64 * 25.0;
            ev.push(enter("u1", "s1", c, t));
            ev.push(video("video_play", "u1", "s1", c, "l1", t + 1.0, 0.0));
            ev.push(hb("u1", "s1", c, "l1", t + 16.0, 15.0, true, true));
            ev.push(video("video_pause", "u1", "s1", c, "l1", t + 23.0, 22.0));
        }
        let out = run(&ev);
        assert_eq!(rules(&out.flags), ["course_switching.rapid_switching"]);
        let f = &out.flags[0];
        assert!(f.evidence.contains("\"changes\":14"), "{}", f.evidence);
        assert!(
            f.evidence.contains("\"changes_after_work_not_counted\":0"),
            "{}",
            f.evidence
        );
        assert!(
            f.explanation.contains("were not counted"),
            "{}",
            f.explanation
        );
    }

    #[test]
    fn six_changes_without_work_fire_among_working_ones_five_do_not() {
        // 9 visits 60 s apart = 8 changes; the visits left by `work` changes did work.
        let courses = ["c1", "c2", "c3", "c1", "c2", "c3", "c1", "c2", "c3"];
        let build = |u: &str, worked: &[usize]| {
            let mut ev = hops(u, &courses, 0.0, 60.0);
            for &i in worked {
                let c = courses[i];
                ev.push(quiz(
                    u,
                    c,
                    &format!("q{i}"),
                    i as f64 * 60.0 + 50.0,
                    1,
                    40.0,
                    1.0,
                    1.0,
                ));
            }
            ev
        };
        // Visits 0 and 4 worked: 6 of 8 changes counted.
        let out = run(&build("u1", &[0, 4]));
        assert_eq!(out.flags.len(), 1);
        let e = &out.flags[0].evidence;
        assert!(e.contains("\"changes\":6"), "{e}");
        // The burst runs from the first counted change (120 s) to the last: only the change
        // out of visit 4 lies inside it.
        assert!(e.contains("\"changes_after_work_not_counted\":1"), "{e}");
        assert!(e.contains("\"burst_s\":360.0"), "{e}");
        // Visits 0, 4 and 7 worked: 5 counted, under 6.
        assert!(run(&build("u2", &[0, 4, 7])).flags.is_empty());
        // Work in the last visit leaves no change behind: still 8 counted.
        assert!(run(&build("u3", &[8])).flags[0]
            .evidence
            .contains("\"changes\":8"));
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
