//! `quiz_speed`: quizzes handed in faster than they can be read, with a high score.
//!
//! Features (`features/quiz_speed`), one row per `quiz_submit`: `seconds_per_question`
//! (`elapsed_s / questions`) and `score_ratio` (`score / max_score`). Rule `too_fast`: fewer than
//! `min_seconds_per_question` seconds per question and a score ratio ≥ `min_score_ratio`. A fast
//! quiz with a poor score is guessing, not cheating, and is left alone.

use polars::prelude::*;
use serde_json::json;

use crate::config::QuizSpeedConfig;
use crate::events::day_of;
use crate::flags::{hhmm, r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// The `quiz_speed` job over the events.
pub fn detect(events: LazyFrame, cfg: &QuizSpeedConfig) -> Result<JobOutput> {
    let features = events
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
        .collect()?;
    let hits = features
        .clone()
        .lazy()
        .filter(
            col("seconds_per_question")
                .lt(lit(cfg.min_seconds_per_question))
                .and(col("score_ratio").gt_eq(lit(cfg.min_score_ratio)))
                .and(col("questions").gt_eq(lit(cfg.min_questions))),
        )
        .collect()?;
    let r = Rows(&hits);
    let (ev, user, org, course, quiz) = (
        r.str("event_id")?,
        r.str("user_id")?,
        r.str("org_unit")?,
        r.str("course_id")?,
        r.str("quiz_id")?,
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
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                en: format!(
                    "Quiz {qz} of course {c} was submitted at {} after {:.0} s for {n} questions ({:.1} s per question, under {:.1} s) with a score of {:.0}%.",
                    hhmm(te), e, p, cfg.min_seconds_per_question, ra * 100.0
                ),
                zh: format!(
                    "课程 {c} 的测验 {qz} 于 {} 提交，{n} 道题仅用时 {:.0} 秒（每题 {:.1} 秒，低于 {:.1} 秒），得分率 {:.0}%。",
                    hhmm(te), e, p, cfg.min_seconds_per_question, ra * 100.0
                ),
            }
            .finish(),
        );
    }
    sort(&mut flags);
    Ok(JobOutput { features, flags })
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
