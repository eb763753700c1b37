//! `credit_burst`: credits arriving in a burst, or faster than the watching behind them.
//!
//! Per user and day: `x` = completions (or credits, see [`BurstUnit`]) claimed that day. The rate
//! it is tested against is the largest of
//! - the user's own trailing baseline: `x` summed over the `baseline_days` before, divided by
//!   `baseline_days`;
//! - the org unit's peers that day: mean `x` of the other users of the unit who claimed that day
//!   (an honest pre-deadline rush lifts the whole unit, and so the rate);
//! - the peers' trailing baseline: mean `x` per claiming user-day in the unit over the
//!   `baseline_days` before;
//! - `min_lambda`.
//!
//! Rule `poisson_tail`, one per user-day with ≥ `min_credits` credits, when either
//! - P(X ≥ x | λ) < `alpha` (Poisson upper tail, statrs), or
//! - the user's engaged watch time over the last `support_days` is below `support_ratio` × the
//!   watch time the claimed courses require (catalog `duration_s × min_watch_ratio`): credits the
//!   watching cannot support. The evidence says which condition fired.
//!
//! Features (`features/credit_burst`), one row per user × day with a claim: `credits`,
//! `completions`, `x`, the three rates, `lambda`, `p_tail`, `required_s`, `engaged_s`.

use polars::prelude::*;
use serde_json::json;
use statrs::distribution::{DiscreteCDF, Poisson};

use crate::catalog::Catalog;
use crate::config::{BurstUnit, CreditBurstConfig};
use crate::events::{day_of, sort_opts};
use crate::flags::{date, dur, dur_zh, hhmm, list_strings, r3, ramp, sort, Draft, Rows};
use crate::{JobOutput, Result};

/// P(X ≥ x) for X ~ Poisson(λ).
pub fn upper_tail(x: u64, lambda: f64) -> f64 {
    if x == 0 {
        return 1.0;
    }
    match Poisson::new(lambda) {
        Ok(p) => p.sf(x - 1),
        Err(_) => f64::NAN,
    }
}

/// The `credit_burst` job. `claims`: `course_complete` rows (see
/// [`watch_time::completions`](crate::watch_time::completions)) of the period *and* the
/// `baseline_days` before it; `engaged`: rows of engaged seconds (`user_id`, `day`, `engaged_s`:
/// per day as [`watch_time::engaged_daily`](crate::watch_time::engaged_daily) sums them, or finer,
/// such as `watch_time`'s lesson-day features; they are summed) of the period and the
/// `support_days` before it.
pub fn detect(
    claims: LazyFrame,
    engaged: LazyFrame,
    catalog: &Catalog,
    cfg: &CreditBurstConfig,
) -> Result<JobOutput> {
    detect_from(claims, engaged, catalog, cfg, i64::MIN)
}

/// [`detect`] for the days from `from_day` on only: earlier days of `claims` and `engaged` serve
/// as baselines and support, but get no features or flags of their own. A batch of the jobs
/// passes its first day: computing the 28 baseline days' own rows too (each against its own
/// trailing window) only to drop them made the self-joins five times larger than needed.
pub fn detect_from(
    claims: LazyFrame,
    engaged: LazyFrame,
    catalog: &Catalog,
    cfg: &CreditBurstConfig,
    from_day: i64,
) -> Result<JobOutput> {
    let daily = daily(claims, catalog, cfg).collect()?;
    detect_daily(daily, engaged, cfg, from_day)
}

/// The claims per user and day: `org_unit`, `credits`, `completions`, `required_s`,
/// `courses_not_in_catalog`, `courses`, `first_t`, `last_t` and `x`. A day's rows depend on that
/// day's claims alone, so the jobs compute each day once per run and keep it for the later
/// batches whose baseline it is.
pub fn daily(claims: LazyFrame, catalog: &Catalog, cfg: &CreditBurstConfig) -> LazyFrame {
    let required = catalog.lazy().select([
        col("course_id"),
        (col("duration_s") * col("min_watch_ratio")).alias("req_s"),
    ]);
    let x_expr = match cfg.unit {
        BurstUnit::Completions => col("completions").cast(DataType::Float64),
        BurstUnit::Credits => col("credits").ceil(),
    };
    claims
        .with_column(day_of(col("t")).alias("day"))
        .join(
            required,
            [col("course_id")],
            [col("course_id")],
            JoinArgs::new(JoinType::Left),
        )
        .group_by([col("user_id"), col("day")])
        .agg([
            col("org_unit").drop_nulls().first(),
            col("credits").sum(),
            len().cast(DataType::Int64).alias("completions"),
            col("req_s").fill_null(lit(0.0)).sum().alias("required_s"),
            col("req_s")
                .is_null()
                .sum()
                .cast(DataType::Int64)
                .alias("courses_not_in_catalog"),
            col("course_id")
                .unique()
                .sort(SortOptions::default())
                .alias("courses"),
            col("t").min().alias("first_t"),
            col("t").max().alias("last_t"),
        ])
        .with_column(x_expr.alias("x"))
}

/// [`detect_from`] over [`daily`] rows (of the period and the `baseline_days` before it).
pub fn detect_daily(
    daily: DataFrame,
    engaged: LazyFrame,
    cfg: &CreditBurstConfig,
    from_day: i64,
) -> Result<JobOutput> {
    let b = cfg.baseline_days as i64;
    // The user-days that get features and flags, numbered: the windows below are summed per
    // row number and joined back on it, an integer instead of the (user, day) pair.
    let target = daily
        .clone()
        .lazy()
        .filter(col("day").gt_eq(lit(from_day)))
        .with_row_index("row", None)
        .collect()?;
    // Sums `value` over a user's rows of `other` whose day (`d2`) passes `in_window` (an
    // expression of `d2` and the row's `day`), one sum per row number.
    let per_row = |other: LazyFrame, value: &str, in_window: Expr, alias: &str| {
        target
            .clone()
            .lazy()
            .select([col("row"), col("user_id"), col("day")])
            .join(
                other.select([
                    col("user_id"),
                    col("day").alias("d2"),
                    col(value).alias("v2"),
                ]),
                [col("user_id")],
                [col("user_id")],
                JoinArgs::new(JoinType::Inner),
            )
            .filter(in_window)
            .group_by([col("row")])
            .agg([col("v2").sum().alias(alias)])
    };

    // The user's own trailing baseline.
    let own = per_row(
        daily.clone().lazy(),
        "x",
        col("d2")
            .lt(col("day"))
            .and(col("d2").gt_eq(col("day") - lit(b))),
        "x_trailing",
    )
    .select([
        col("row"),
        (col("x_trailing") / lit(b as f64)).alias("lambda_user"),
    ]);
    // Peers: per org unit and day, the sum of x and the number of claiming users.
    let org_days = daily
        .clone()
        .lazy()
        .filter(col("org_unit").is_not_null())
        .group_by([col("org_unit"), col("day")])
        .agg([
            col("x").sum().alias("org_x"),
            len().cast(DataType::Float64).alias("org_n"),
        ]);
    let org_trailing = org_days
        .clone()
        .filter(col("day").gt_eq(lit(from_day)))
        .select([col("org_unit"), col("day")])
        .join(
            org_days.clone().select([
                col("org_unit"),
                col("day").alias("d2"),
                col("org_x").alias("x2"),
                col("org_n").alias("n2"),
            ]),
            [col("org_unit")],
            [col("org_unit")],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(
            col("d2")
                .lt(col("day"))
                .and(col("d2").gt_eq(col("day") - lit(b))),
        )
        .group_by([col("org_unit"), col("day")])
        .agg([(col("x2").sum() / col("n2").sum()).alias("lambda_peers_trailing")]);
    let od = [col("org_unit"), col("day")];
    let floor = lit(cfg.min_lambda);
    let support = cfg.support_days as i64;
    let engaged_window = per_row(
        engaged,
        "engaged_s",
        col("d2")
            .lt_eq(col("day"))
            .and(col("d2").gt(col("day") - lit(support))),
        "engaged_s",
    );
    let row = [col("row")];
    let mut features = target
        .lazy()
        .join(own, row.clone(), row.clone(), JoinArgs::new(JoinType::Left))
        .join(
            org_days,
            od.clone(),
            od.clone(),
            JoinArgs::new(JoinType::Left),
        )
        .join(org_trailing, od.clone(), od, JoinArgs::new(JoinType::Left))
        .join(
            engaged_window,
            row.clone(),
            row,
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col("lambda_user").fill_null(lit(0.0)),
            when(col("org_n").gt(lit(1.0)))
                .then((col("org_x") - col("x")) / (col("org_n") - lit(1.0)))
                .otherwise(lit(0.0))
                .alias("lambda_peers_day"),
            col("lambda_peers_trailing").fill_null(lit(0.0)),
            col("engaged_s").fill_null(lit(0.0)),
        ])
        .with_column(
            polars::lazy::dsl::max_horizontal([
                col("lambda_user"),
                col("lambda_peers_day"),
                col("lambda_peers_trailing"),
                floor,
            ])?
            .alias("lambda"),
        )
        .select([
            col("user_id"),
            col("org_unit"),
            col("day"),
            col("credits"),
            col("completions"),
            col("x"),
            col("lambda_user"),
            col("lambda_peers_day"),
            col("lambda_peers_trailing"),
            col("lambda"),
            col("required_s"),
            col("engaged_s"),
            col("courses_not_in_catalog"),
            col("courses"),
            col("first_t"),
            col("last_t"),
        ])
        .sort(["user_id", "day"], sort_opts())
        .collect()?;

    // The tail probability of every row (statrs, in Rust: polars has no Poisson CDF).
    let p_tail: Vec<f64> = {
        let r = Rows(&features);
        let (x, lambda) = (r.f64("x")?, r.f64("lambda")?);
        (0..r.len())
            .map(|i| {
                upper_tail(
                    x.get(i).unwrap_or(0.0).max(0.0) as u64,
                    lambda.get(i).unwrap_or(cfg.min_lambda),
                )
            })
            .collect()
    };
    features.with_column(Column::new("p_tail".into(), p_tail))?;

    let mut flags = Vec::new();
    let r = Rows(&features);
    let (user, org, courses) = (r.str("user_id")?, r.str("org_unit")?, r.list("courses")?);
    let (credits, x, lambda, p, req, eng) = (
        r.f64("credits")?,
        r.f64("x")?,
        r.f64("lambda")?,
        r.f64("p_tail")?,
        r.f64("required_s")?,
        r.f64("engaged_s")?,
    );
    let (lu, lpd, lpt) = (
        r.f64("lambda_user")?,
        r.f64("lambda_peers_day")?,
        r.f64("lambda_peers_trailing")?,
    );
    let (day, first, last, n) = (
        r.i64("day")?,
        r.i64("first_t")?,
        r.i64("last_t")?,
        r.i64("completions")?,
    );
    let unit = match cfg.unit {
        BurstUnit::Completions => "completions",
        BurstUnit::Credits => "credits",
    };
    for i in 0..r.len() {
        let c = credits.get(i).unwrap_or(0.0);
        if c < cfg.min_credits {
            continue;
        }
        let (xv, lv, pv) = (
            x.get(i).unwrap_or(0.0),
            lambda.get(i).unwrap_or(0.0),
            p.get(i).unwrap_or(1.0),
        );
        let (rq, en) = (req.get(i).unwrap_or(0.0), eng.get(i).unwrap_or(0.0));
        let tail = pv < cfg.alpha;
        let unsupported = rq > 0.0 && en < cfg.support_ratio * rq;
        if !(tail || unsupported) {
            continue;
        }
        let mut conditions = Vec::new();
        let mut sev: f64 = 0.0;
        if tail {
            conditions.push("poisson_tail");
            sev = sev.max(ramp((cfg.alpha / pv.max(1e-300)).log10() / 6.0));
        }
        if unsupported {
            conditions.push("unsupported_by_watch_time");
            sev = sev.max(ramp(1.0 - en / (cfg.support_ratio * rq)));
        }
        let (ws, we) = (first.get(i).unwrap_or(0), last.get(i).unwrap_or(0));
        let d = day.get(i).unwrap_or(0);
        let cs = list_strings(courses, i);
        let nc = n.get(i).unwrap_or(0);
        let why_en = match (tail, unsupported) {
            (true, true) => format!(
                "P(X ≥ {xv:.0} | λ = {lv:.2}) = {pv:.1e} is below {:.0e}, and {} of engaged watching in the last {} day(s) covers less than {:.0}% of the {} the courses require",
                cfg.alpha, dur(en), cfg.support_days, cfg.support_ratio * 100.0, dur(rq)
            ),
            (true, false) => format!("P(X ≥ {xv:.0} | λ = {lv:.2}) = {pv:.1e} is below {:.0e}", cfg.alpha),
            _ => format!(
                "only {} of engaged watching in the last {} day(s) stands behind courses that require {} (less than {:.0}%)",
                dur(en), cfg.support_days, dur(rq), cfg.support_ratio * 100.0
            ),
        };
        let why_zh = match (tail, unsupported) {
            (true, true) => format!(
                "泊松上尾概率 P(X ≥ {xv:.0} | λ = {lv:.2}) = {pv:.1e}，低于 {:.0e}；且近 {} 天有效观看仅 {}，不足课程要求 {} 的 {:.0}%",
                cfg.alpha, cfg.support_days, dur_zh(en), dur_zh(rq), cfg.support_ratio * 100.0
            ),
            (true, false) => format!("泊松上尾概率 P(X ≥ {xv:.0} | λ = {lv:.2}) = {pv:.1e}，低于 {:.0e}", cfg.alpha),
            _ => format!(
                "近 {} 天有效观看仅 {}，不足课程要求 {} 的 {:.0}%",
                cfg.support_days, dur_zh(en), dur_zh(rq), cfg.support_ratio * 100.0
            ),
        };
        flags.push(
            Draft {
                rule: "credit_burst.poisson_tail",
                user_id: user.get(i).unwrap_or_default().to_string(),
                org_unit: org.get(i).map(str::to_string),
                course_id: None,
                window_start: ws,
                window_end: we,
                severity: sev,
                key: creditguard_contract::time::format_day(d),
                evidence: json!({
                    "conditions": conditions, "credits": r3(c), "completions": nc, "unit": unit, "x": xv,
                    "lambda": r3(lv), "lambda_user": r3(lu.get(i).unwrap_or(0.0)),
                    "lambda_peers_day": r3(lpd.get(i).unwrap_or(0.0)), "lambda_peers_trailing": r3(lpt.get(i).unwrap_or(0.0)),
                    "p_tail": pv, "alpha": cfg.alpha, "min_credits": cfg.min_credits, "baseline_days": cfg.baseline_days,
                    "engaged_s": r3(en), "required_s": r3(rq), "support_ratio": cfg.support_ratio,
                    "support_days": cfg.support_days, "courses": cs,
                })
                .as_object()
                .cloned()
                .unwrap_or_default(),
                en: format!(
                    "{c:.1} credits from {nc} completed course(s) were claimed on {} between {} and {}: {why_en}.",
                    date(ws), hhmm(ws), hhmm(we)
                ),
                zh: format!("{} {} 至 {} 期间通过 {nc} 门课程申领了 {c:.1} 学分：{why_zh}。", date(ws), hhmm(ws), hhmm(we)),
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
    use crate::watch_time::{completions, engaged_daily, intervals};

    const DAY: f64 = 86_400.0;

    fn run(ev: &[String]) -> JobOutput {
        let f = frame(ev);
        let iv = intervals(f.clone().lazy(), &Default::default());
        detect(
            completions(f.lazy()),
            engaged_daily(iv),
            &catalog(),
            &CreditBurstConfig::default(),
        )
        .unwrap()
    }

    /// An honest history: one 2-credit course every `every` days for 28 days before day 30.
    fn history(u: &str, ou: &str, every: usize) -> Vec<String> {
        (2..30)
            .step_by(every)
            .map(|d| complete_in(u, ou, "c2", d as f64 * DAY, 2.0))
            .collect()
    }

    /// Enough honest watching on day `d` to support `courses` 30-minute courses.
    fn watching(u: &str, d: f64, courses: usize) -> Vec<String> {
        let n = courses * 1800 / 20 + 1;
        (0..n)
            .map(|k| {
                hb(
                    u,
                    &format!("s-{u}"),
                    "c2",
                    "l1",
                    d * DAY + k as f64 * 20.0,
                    k as f64 * 20.0,
                    true,
                    true,
                )
            })
            .collect()
    }

    #[test]
    fn upper_tail_matches_known_values() {
        assert!((upper_tail(1, 1.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert_eq!(upper_tail(0, 3.0), 1.0);
        assert!(upper_tail(10, 0.5) < 1e-9);
    }

    #[test]
    fn ten_courses_in_a_day_without_watching_fire() {
        let mut ev = history("u1", "ou1", 7);
        ev.extend((0..10).map(|i| {
            complete_in(
                "u1",
                "ou1",
                &format!("c{}", 2 + i % 8),
                30.0 * DAY + i as f64 * 60.0,
                2.0,
            )
        }));
        let out = run(&ev);
        assert_eq!(rules(&out.flags), ["credit_burst.poisson_tail"]);
        let f = &out.flags[0];
        assert!(
            f.evidence
                .contains(r#""conditions":["poisson_tail","unsupported_by_watch_time"]"#),
            "{}",
            f.evidence
        );
        assert!(
            f.explanation
                .starts_with("20.0 credits from 10 completed course(s)"),
            "{}",
            f.explanation
        );
        assert!(f.severity > 0.9);
    }

    #[test]
    fn an_honest_pre_deadline_rush_does_not() {
        // The whole unit finishes 5 courses (10 credits) each on deadline day, with the watching
        // behind them: the peers' rate that day is 10.
        let mut ev = Vec::new();
        for u in 0..8 {
            let u = format!("u{u}");
            ev.extend(history(&u, "ou1", 7));
            ev.extend((0..5).map(|i| {
                complete_in(
                    &u,
                    "ou1",
                    &format!("c{}", 2 + i),
                    30.0 * DAY + 3600.0 * 20.0 + i as f64 * 60.0,
                    2.0,
                )
            }));
            ev.extend(watching(&u, 30.0, 5));
        }
        let out = run(&ev);
        assert!(out.flags.is_empty(), "{:?}", out.flags);
        // Below min_credits nothing is judged: 4 courses (8 credits) with no watching at all.
        let mut ev = history("u9", "ou9", 7);
        ev.extend((0..4).map(|i| {
            complete_in(
                "u9",
                "ou9",
                &format!("c{}", 2 + i),
                30.0 * DAY + i as f64,
                2.0,
            )
        }));
        assert!(run(&ev).flags.is_empty());
    }

    #[test]
    fn watched_but_unusual_fires_only_on_the_tail() {
        // 6 courses = 12 credits, all watched; a quiet user alone in the unit (λ = min_lambda 0.5).
        let mut ev: Vec<String> = (0..6)
            .map(|i| {
                complete_in(
                    "u1",
                    "ou1",
                    &format!("c{}", 2 + i),
                    30.0 * DAY + 80_000.0 + i as f64,
                    2.0,
                )
            })
            .collect();
        ev.extend(watching("u1", 30.0, 6));
        let out = run(&ev);
        assert_eq!(out.flags.len(), 1);
        assert!(
            out.flags[0]
                .evidence
                .contains(r#""conditions":["poisson_tail"]"#),
            "{}",
            out.flags[0].evidence
        );
        // The boundary of the tail test at x = 10: λ 2.9 is below α, λ 3.2 is not.
        assert!(upper_tail(10, 2.9) < 1e-3, "{}", upper_tail(10, 2.9));
        assert!(upper_tail(10, 3.2) > 1e-3, "{}", upper_tail(10, 3.2));
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let mut ev = history("u1", "ou1", 3);
        ev.extend((0..10).map(|i| {
            complete_in(
                "u1",
                "ou1",
                &format!("c{}", 2 + i % 8),
                30.0 * DAY + i as f64 * 60.0,
                2.0,
            )
        }));
        let a = run(&ev);
        assert_eq!(a.flags.len(), 1);
        let b = run(&shuffle_with_duplicates(&ev));
        assert_eq!(a.flags, b.flags);
        assert!(a.features.equals_missing(&b.features));
    }
}
