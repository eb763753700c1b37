//! `quiz_speed`: quizzes handed in faster than they can be read, with a high score.
//!
//! Features (`features/quiz_speed`), one row per `quiz_submit`: `seconds_per_question`
//! (`elapsed_s / questions`) and `score_ratio` (`score / max_score`). Rule `too_fast`: fewer than
//! `min_seconds_per_question` seconds per question and a score ratio ≥ `min_score_ratio`. A fast
//! quiz with a poor score is guessing, not cheating, and is left alone.
//!
//! Two more conditions keep heavy learners out (EdNet KT1: 1,109 flags on 10 of 12 honest
//! learners without them):
//! - `exempt_resubmissions`: a quiz whose `quiz_id` the learner submitted before is a retry and
//!   is not judged (feature `first_attempt` false). Earlier attempts are looked for in the data
//!   the job reads (its batch plus one day of context before), not in older days.
//! - Per learner and day, the fast first attempts must number ≥ `min_fast_per_day` and be
//!   ≥ `min_fast_share` of that day's first attempts: a few recognised items among a hundred
//!   answered at a reading pace are not a pattern.
//!
//! Features also carry `first_attempt`, and per learner-day `first_attempts_day` and
//! `fast_first_attempts_day`.

use polars::prelude::*;
use serde_json::json;

use crate::config::QuizSpeedConfig;
use crate::events::day_of;
use crate::explain;
use crate::flags::{r3, ramp, sort, Draft, Rows};
use crate::{Flag, JobOutput, Result};

/// The `quiz_speed` job over the events.
pub fn detect(events: LazyFrame, cfg: &QuizSpeedConfig) -> Result<JobOutput> {
    detect_with_prior(events, None, cfg)
}

/// [`detect`] with the `features/quiz_speed` rows of earlier days (`user_id`, `quiz_id`; any
/// days before the events' first one): a quiz the learner submitted there is a re-submission
/// too. Without them an attempt older than the events read is not seen (on EdNet KT1, run in
/// 7-day batches, 4 retries of quizzes first handed in 26–53 days earlier are then judged as
/// first attempts). The job runner passes `None` until it reads them.
pub fn detect_with_prior(
    events: LazyFrame,
    prior: Option<LazyFrame>,
    cfg: &QuizSpeedConfig,
) -> Result<JobOutput> {
    let mut subs = submissions(events, cfg)?;
    if let (Some(prior), true) = (prior, cfg.exempt_resubmissions) {
        subs = resubmissions_of_prior(subs, prior);
    }
    let features = per_day_counts(subs)?.collect()?;
    let hits = fast_first_attempts(&features, cfg).collect()?;
    let features = features.drop("_fast")?;
    let mut flags = too_fast(&hits, cfg)?;
    sort(&mut flags);
    Ok(JobOutput { features, flags })
}

/// The quiz submissions in time order with their speed and score (`seconds_per_question`,
/// `score_ratio`), whether each is the learner's first attempt at the quiz in these events
/// (`first_attempt`; every submission counts as one without `exempt_resubmissions`) and whether
/// it is fast with a high score (`_fast`).
fn submissions(events: LazyFrame, cfg: &QuizSpeedConfig) -> Result<LazyFrame> {
    Ok(events
        .filter(
            col("event_type")
                .eq(lit("quiz_submit"))
                .and(col("questions").gt(lit(0i64)))
                .and(col("max_score").gt(lit(0.0))),
        )
        .select([
            col("event_id"),
            col("user_id"),
            col("org_unit"),
            col("course_id"),
            col("quiz_id"),
            col("t"),
            day_of(col("t")).alias("day"),
            col("questions"),
            col("elapsed_s"),
            col("score"),
            col("max_score"),
            (col("elapsed_s") / col("questions").cast(DataType::Float64))
                .alias("seconds_per_question"),
            (col("score") / col("max_score")).alias("score_ratio"),
        ])
        .sort(["user_id", "t", "event_id"], crate::events::sort_opts())
        .with_columns([
            // Rows are in time order, so the count so far says whether this is the first.
            (col("t")
                .cum_count(false)
                .over([col("user_id"), col("quiz_id")])?
                .eq(lit(1))
                .or(col("quiz_id").is_null())
                .or(lit(!cfg.exempt_resubmissions)))
            .alias("first_attempt"),
            col("seconds_per_question")
                .lt(lit(cfg.min_seconds_per_question))
                .and(col("score_ratio").gt_eq(lit(cfg.min_score_ratio)))
                .and(col("questions").gt_eq(lit(cfg.min_questions)))
                .alias("_fast"),
        ]))
}

/// Marks submissions of quizzes the learner already submitted on earlier days (`prior`
/// features) as re-submissions.
fn resubmissions_of_prior(subs: LazyFrame, prior: LazyFrame) -> LazyFrame {
    let seen = prior
        .select([col("user_id"), col("quiz_id")])
        .filter(col("quiz_id").is_not_null())
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit(true).alias("_seen"));
    subs.join(
        seen,
        [col("user_id"), col("quiz_id")],
        [col("user_id"), col("quiz_id")],
        JoinArgs::new(JoinType::Left),
    )
    .with_column(
        col("first_attempt")
            .and(col("_seen").is_null())
            .alias("first_attempt"),
    )
    .drop(cols(["_seen"]))
    .sort(["user_id", "t", "event_id"], crate::events::sort_opts())
}

/// Per learner and day: the first attempts (`first_attempts_day`) and the fast ones among them
/// (`fast_first_attempts_day`), on every submission row.
fn per_day_counts(subs: LazyFrame) -> Result<LazyFrame> {
    Ok(subs.with_columns([
        col("first_attempt")
            .sum()
            .cast(DataType::Int64)
            .over([col("user_id"), col("day")])?
            .alias("first_attempts_day"),
        col("first_attempt")
            .and(col("_fast"))
            .sum()
            .cast(DataType::Int64)
            .over([col("user_id"), col("day")])?
            .alias("fast_first_attempts_day"),
    ]))
}

/// The fast first attempts on days past the per-day count and share thresholds.
fn fast_first_attempts(features: &DataFrame, cfg: &QuizSpeedConfig) -> LazyFrame {
    features.clone().lazy().filter(
        col("_fast")
            .and(col("first_attempt"))
            .and(col("fast_first_attempts_day").gt_eq(lit(cfg.min_fast_per_day as i64)))
            .and(
                col("fast_first_attempts_day")
                    .cast(DataType::Float64)
                    .gt_eq(
                        col("first_attempts_day").cast(DataType::Float64) * lit(cfg.min_fast_share),
                    ),
            ),
    )
}

/// `too_fast`: a flag per row of [`fast_first_attempts`].
fn too_fast(hits: &DataFrame, cfg: &QuizSpeedConfig) -> Result<Vec<Flag>> {
    let r = Rows(hits);
    let (ev, user, org, course, quiz) = (
        r.str("event_id")?,
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("course_id")?,
        r.str("quiz_id")?,
    );
    let (n_first, n_fast) = (
        r.i64("first_attempts_day")?,
        r.i64("fast_first_attempts_day")?,
    );
    let (t, q, el, sc, mx, spq, ratio) = (
        r.i64("t")?,
        r.i64("questions")?,
        r.f64("elapsed_s")?,
        r.f64("score")?,
        r.f64("max_score")?,
        r.f64("seconds_per_question")?,
        r.f64("score_ratio")?,
    );
    let mut flags = Vec::new();
    for i in 0..r.len() {
        let (te, n, e, s, m, p, ra) = (
            t.get(i).unwrap_or(0),
            q.get(i).unwrap_or(0),
            el.get(i).unwrap_or(0.0),
            sc.get(i).unwrap_or(0.0),
            mx.get(i).unwrap_or(0.0),
            spq.get(i).unwrap_or(0.0),
            ratio.get(i).unwrap_or(0.0),
        );
        let (c, qz) = (
            course.get(i).unwrap_or_default(),
            quiz.get(i).unwrap_or_default(),
        );
        let start = te - (e.max(0.0) * 1e6) as i64;
        let (nf, nd) = (n_fast.get(i).unwrap_or(0), n_first.get(i).unwrap_or(0));
        let text = explain::too_fast(
            &explain::TooFast {
                course: c,
                quiz: qz,
                submitted_at: te,
                questions: n,
                elapsed_s: e,
                seconds_per_question: p,
                score_ratio: ra,
                fast_that_day: nf,
                first_attempts_that_day: nd,
            },
            cfg,
        );
        flags.push(
            Draft {
                rule: "quiz_speed.too_fast",
                user_id: user.get(i).unwrap_or_default().to_string(),
                org_unit: org.get(i).map(str::to_string),
                course_id: Some(c.to_string()),
                window_start: start,
                window_end: te,
                severity: ramp((cfg.min_seconds_per_question - p) / cfg.min_seconds_per_question),
                key: format!("{qz}\u{1f}{}", ev.get(i).unwrap_or_default()),
                evidence: json!({
                    "quiz_id": qz, "questions": n, "elapsed_s": r3(e), "seconds_per_question": r3(p),
                    "score": s, "max_score": m, "score_ratio": r3(ra),
                    "threshold_seconds_per_question": cfg.min_seconds_per_question,
                    "threshold_score_ratio": cfg.min_score_ratio,
                    "event_id": ev.get(i).unwrap_or_default(),
                    "fast_first_attempts_day": nf, "first_attempts_day": nd,
                    "threshold_fast_per_day": cfg.min_fast_per_day,
                    "threshold_fast_share": cfg.min_fast_share,
                    "resubmissions_exempt": cfg.exempt_resubmissions,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                en: text.en,
                zh: text.zh,
            }
            .finish(),
        );
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn run(ev: &[String]) -> JobOutput {
        detect(frame(ev).lazy(), &QuizSpeedConfig::default()).unwrap()
    }

    #[test]
    fn fast_and_right_fires_fast_and_wrong_or_slow_does_not() {
        let out = run(&[
            quiz("u1", "c1", "q1", 0.0, 20, 30.0, 19.0, 20.0), // 1.5 s/q, 95 %
            quiz("u2", "c1", "q1", 0.0, 20, 30.0, 8.0, 20.0),  // fast but 40 %: guessing
            quiz("u3", "c1", "q1", 0.0, 20, 300.0, 20.0, 20.0), // 15 s/q
        ]);
        assert_eq!(rules(&out.flags), ["quiz_speed.too_fast"]);
        let f = &out.flags[0];
        assert_eq!(f.user_id, "u1");
        assert!(
            f.explanation.contains("1.5 s per question"),
            "{}",
            f.explanation
        );
        assert!(f.evidence.contains("每题"), "{}", f.evidence);
        assert_eq!(f.window_end - f.window_start, 30_000_000);
        assert_eq!(out.features.height(), 3);
    }

    #[test]
    fn boundaries_are_strict_on_time_and_inclusive_on_score() {
        let out = run(&[
            quiz("u1", "c1", "q1", 0.0, 10, 30.0, 9.0, 10.0), // exactly 3.0 s/q: not under
            quiz("u2", "c1", "q1", 0.0, 10, 29.9, 9.0, 10.0), // 2.99 s/q, exactly 90 %: fires
            quiz("u3", "c1", "q1", 0.0, 10, 29.9, 8.9, 10.0), // 89 %: not
        ]);
        assert_eq!(
            out.flags
                .iter()
                .map(|f| f.user_id.as_str())
                .collect::<Vec<_>>(),
            ["u2"]
        );
    }

    #[test]
    fn a_fast_resubmission_is_a_retry_not_judged() {
        let ev = [
            quiz("u1", "c1", "q1", 0.0, 5, 100.0, 3.0, 5.0), // read: 20 s/q, 60 %
            quiz("u1", "c1", "q1", 2820.0, 5, 6.0, 5.0, 5.0), // 47 min later: 1.2 s/q, 100 %
        ];
        let out = run(&ev);
        assert!(out.flags.is_empty(), "{:?}", out.flags);
        let first = out.features.column("first_attempt").unwrap();
        let first: Vec<_> = (0..first.len())
            .map(|i| first.bool().unwrap().get(i))
            .collect();
        assert_eq!(first, [Some(true), Some(false)]);
        // Without the exemption the retry fires.
        let cfg = QuizSpeedConfig {
            exempt_resubmissions: false,
            ..Default::default()
        };
        let flags = detect(frame(&ev).lazy(), &cfg).unwrap().flags;
        assert_eq!(rules(&flags), ["quiz_speed.too_fast"]);
        // Another learner's earlier submission of the same quiz does not make it a retry.
        let out = run(&[
            quiz("u2", "c1", "q1", 0.0, 5, 100.0, 3.0, 5.0),
            quiz("u3", "c1", "q1", 60.0, 5, 6.0, 5.0, 5.0),
        ]);
        assert_eq!(out.flags.len(), 1);
        assert_eq!(out.flags[0].user_id, "u3");
    }

    /// `slow` first attempts at a reading pace and `fast` ones at 1 s per question, one day.
    fn day(u: &str, slow: usize, fast: usize) -> Vec<String> {
        let mut ev = Vec::new();
        for i in 0..slow {
            ev.push(quiz(
                u,
                "c1",
                &format!("s{i}"),
                i as f64 * 300.0,
                10,
                200.0,
                9.0,
                10.0,
            ));
        }
        for i in 0..fast {
            ev.push(quiz(
                u,
                "c2",
                &format!("f{i}"),
                20_000.0 + i as f64 * 60.0,
                10,
                10.0,
                10.0,
                10.0,
            ));
        }
        ev
    }

    #[test]
    fn the_day_share_of_fast_first_attempts_decides() {
        // 1 fast of 4 first attempts: exactly 25 %, fires; 1 of 5 (20 %) does not.
        let out = run(&day("u1", 3, 1));
        assert_eq!(out.flags.len(), 1);
        assert!(
            out.flags[0]
                .explanation
                .contains("1 of the learner's 4 first-attempt"),
            "{}",
            out.flags[0].explanation
        );
        assert!(run(&day("u2", 4, 1)).flags.is_empty());
        // 2 of 8: fires, both.
        assert_eq!(run(&day("u3", 6, 2)).flags.len(), 2);
        // Re-submissions are not first attempts: they do not dilute the share.
        let mut ev = day("u4", 3, 1);
        ev.extend((0..5).map(|i| {
            quiz(
                "u4",
                "c1",
                "s0",
                10_000.0 + i as f64 * 60.0,
                10,
                200.0,
                9.0,
                10.0,
            )
        }));
        assert_eq!(run(&ev).flags.len(), 1);
        // The same counts on another day are judged apart: 3 fast tomorrow among 30 slow today.
        let mut ev = day("u5", 30, 0);
        ev.extend((0..3).map(|i| {
            quiz(
                "u5",
                "c2",
                &format!("g{i}"),
                86_400.0 + i as f64 * 60.0,
                10,
                10.0,
                10.0,
                10.0,
            )
        }));
        assert_eq!(run(&ev).flags.len(), 3);
    }

    #[test]
    fn min_fast_per_day_is_inclusive() {
        let cfg = QuizSpeedConfig {
            min_fast_per_day: 3,
            ..Default::default()
        };
        let go = |ev: Vec<String>| detect(frame(&ev).lazy(), &cfg).unwrap().flags.len();
        assert_eq!(go(day("u1", 0, 2)), 0);
        assert_eq!(go(day("u2", 0, 3)), 3);
        // 3 fast of 13 (23 %) stays under the 25 % share.
        assert_eq!(go(day("u3", 10, 3)), 0);
    }

    #[test]
    fn an_attempt_on_an_earlier_day_read_from_prior_features_is_a_retry() {
        let first = run(&[quiz("u1", "c1", "q1", 0.0, 5, 100.0, 3.0, 5.0)]).features;
        let later = [
            quiz("u1", "c1", "q1", 40.0 * 86_400.0, 5, 6.0, 5.0, 5.0),
            quiz("u2", "c1", "q1", 40.0 * 86_400.0, 5, 6.0, 5.0, 5.0),
        ];
        assert_eq!(run(&later).flags.len(), 2);
        let cfg = QuizSpeedConfig::default();
        let out = detect_with_prior(frame(&later).lazy(), Some(first.lazy()), &cfg).unwrap();
        assert_eq!(
            out.flags
                .iter()
                .map(|f| f.user_id.as_str())
                .collect::<Vec<_>>(),
            ["u2"]
        );
        assert_eq!(out.features.height(), 2);
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let ev: Vec<String> = (0..9)
            .map(|i| {
                quiz(
                    &format!("u{i}"),
                    "c1",
                    "q1",
                    i as f64,
                    10,
                    10.0 + i as f64,
                    10.0,
                    10.0,
                )
            })
            .collect();
        assert_eq!(run(&ev).flags, run(&shuffle_with_duplicates(&ev)).flags);
        assert_eq!(run(&ev).flags.len(), 9);
    }
}
