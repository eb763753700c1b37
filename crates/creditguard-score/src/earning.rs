//! How credits are earned beyond completing a course: the `[earning]` section of a credit policy
//! ([`Earning`]), applied to the period's claims before the flags are weighed.
//!
//! - **Quiz pass** (`quiz_pass_score`): a completion of a course with a quiz (catalog `quiz`
//!   `yes`) earns its credits only when the learner's best score on that course's quizzes, from
//!   `lookback_days` before the period up to the completion (plus `activity_slack_s`, for a
//!   quiz logged just after), reaches the pass mark in percent of `max_score`. Retakes count: the
//!   best score decides. A completion that does not pass is recorded as granted with 0 credits
//!   and a claim issue `quiz_not_passed` giving the best score; a later completion after a pass
//!   earns the credits (it is not a repeat).
//! - **Hourly accrual for live sessions** (`live_credits_per_hour`, `live_daily_cap`): a catalog
//!   item of `kind` `live` earns credits per engaged hour, per learner and business day (the
//!   policy's time zone), instead of on completion. Engaged time runs between consecutive
//!   heartbeats on the item at most [`LIVE_MAX_GAP_S`] apart whose page is in view (a heartbeat
//!   with `visible` false ends it). One item accrues at a time: time engaged on two live items at
//!   once counts once, for the item whose stretch began first. A day's credits, capped at
//!   `live_daily_cap` (items in the order they were joined), become one claim per item and day
//!   (`event_id` `live:COURSE:YYYY-MM-DD`), which the flags may withhold like any claim. The
//!   claim of business day D belongs to the run that scores the UTC date D (the one day a
//!   business day of a zone within ±12 h always overlaps, at its local noon), so a run that sees
//!   only part of a business day never claims it: it is completed at the day's last engaged
//!   instant on the item, kept within that UTC date. A `course_complete` of a live item earns
//!   nothing then (claim issue `live_accrues_hourly`), so a session is never paid twice.

use std::collections::{BTreeMap, HashMap};

use creditguard_contract::time::{format_day, DAY_US};
use creditguard_contract::{stable_id, Credit};

use crate::events::{Claim, EarningEvents, LiveBeat};
use crate::policy::{Earning, Policy};
use crate::{Catalog, ClaimIssue, ScoreConfig};

/// The claim issue of a completion refused for want of a passed quiz: it does not complete the
/// course (an assignment of it stays open).
pub const QUIZ_NOT_PASSED: &str = "quiz_not_passed";

/// Heartbeats on a live session further apart than this (seconds) leave the time between them
/// unengaged (players send one every 15–30 s).
pub const LIVE_MAX_GAP_S: i64 = 120;

/// The claims to judge, after the earning rules: completions that earn nothing by the rules are
/// taken out as `unearned` credit records with their issues; days of live sessions are added.
#[derive(Debug, Default)]
pub struct Earned {
    pub claims: Vec<Claim>,
    pub unearned: Vec<Credit>,
    pub issues: Vec<ClaimIssue>,
}

/// The days of events the policy's earning rules may read when scoring `from..=to`: quiz
/// submissions from `lookback_days` before the period (when the catalog has a course with a
/// quiz) and live-session heartbeats from the day before to the day after (a business day may
/// begin on the UTC day before the first one and end on the day after). `None`: no such rule.
pub fn wanted_days(
    cfg: &ScoreConfig,
    catalog: &Catalog,
    (from, to): (i64, i64),
) -> (Option<(i64, i64)>, Option<(i64, i64)>) {
    let Some(rules) = cfg.expectations.policy.as_ref().map(|p| &p.earning) else {
        return (None, None);
    };
    let quiz_days = rules
        .quiz_pass_score
        .filter(|_| catalog.terms.values().any(|t| t.quiz))
        .map(|_| (from - cfg.lookback_days, to));
    let live_days = rules
        .live_credits_per_hour
        .filter(|_| catalog.terms.values().any(|t| t.live))
        .map(|_| (from - 1, to + 1));
    (quiz_days, live_days)
}

/// Applies the policy's earning rules to the claims of the days `from..=to`, taking quiz
/// submissions and live-session heartbeats from `scan` (which read [`wanted_days`]) when a rule
/// needs them.
pub fn apply(
    scan: &crate::events::EventScan,
    claims: Vec<Claim>,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    (from, to): (i64, i64),
    run_id: &str,
) -> crate::Result<Earned> {
    let Some(policy) = cfg.expectations.policy.as_ref() else {
        return Ok(Earned {
            claims,
            ..Earned::default()
        });
    };
    let rules = &policy.earning;
    // Quizzes are taken only where a claim of a course with a quiz needs them.
    let (quiz_days, live_days) = wanted_days(cfg, catalog, (from, to));
    let quiz_days = quiz_days.filter(|_| claims.iter().any(|c| catalog.has_quiz(&c.course_id)));
    let events = scan.earning_events(catalog, quiz_days, live_days)?;
    let slack = (cfg.activity_slack_s * 1e6) as i64;
    let mut out = judge(claims, &events, rules, catalog, slack, run_id);
    // Refused completions are decisions too: they record the versions that made them.
    let (rules_version, policy_version) = (cfg.rules_version(), cfg.policy_version());
    for credit in &mut out.unearned {
        credit.rules_version = Some(rules_version.clone());
        credit.rules_name = cfg.rules.name.clone();
        credit.policy_version = Some(policy_version.clone());
    }
    out.claims
        .extend(live_claims(&events, policy, catalog, (from, to)));
    out.claims
        .sort_by(|a, b| (a.completed_at, &a.event_id).cmp(&(b.completed_at, &b.event_id)));
    Ok(out)
}

/// Sorts completions into those judged by the flags and those the earning rules refuse.
fn judge(
    claims: Vec<Claim>,
    events: &EarningEvents,
    rules: &Earning,
    catalog: &Catalog,
    slack_us: i64,
    run_id: &str,
) -> Earned {
    let mut out = Earned::default();
    for claim in claims {
        let refusal = if rules.live_credits_per_hour.is_some() && catalog.is_live(&claim.course_id)
        {
            Some((
                "live_accrues_hourly",
                format!(
                    "Live session {} earns credits per engaged hour, not on completion; its days are recorded as their own claims.",
                    claim.course_id
                ),
            ))
        } else {
            rules
                .quiz_pass_score
                .filter(|_| catalog.has_quiz(&claim.course_id))
                .and_then(|pass| quiz_refusal(&claim, events, pass, slack_us))
                .map(|detail| (QUIZ_NOT_PASSED, detail))
        };
        match refusal {
            None => out.claims.push(claim),
            Some((issue, detail)) => {
                let (credit, issue) = unearned(&claim, catalog, issue, detail, run_id);
                out.unearned.push(credit);
                out.issues.push(issue);
            }
        }
    }
    out
}

/// Why a completion of a course with a quiz earns nothing: no quiz handed in by then, or a best
/// score below the pass mark. `None` when it passed.
fn quiz_refusal(claim: &Claim, events: &EarningEvents, pass: f64, slack_us: i64) -> Option<String> {
    let best = events
        .quizzes
        .get(&(claim.user_id.clone(), claim.course_id.clone()))
        .into_iter()
        .flatten()
        .filter(|(at, _)| *at <= claim.completed_at + slack_us)
        .map(|(_, pct)| *pct)
        .fold(None, |best: Option<f64>, p| {
            Some(best.map_or(p, |b| b.max(p)))
        });
    match best {
        Some(b) if b >= pass - crate::decide::EPS => None,
        Some(b) => Some(format!(
            "The best quiz score on course {} before this completion was {}%, below the pass mark of {pass}%; the completion earns no credits.",
            claim.course_id,
            (b * 10.0).round() / 10.0
        )),
        None => Some(format!(
            "Course {} ends in a quiz, and none was handed in before this completion (pass mark {pass}%); the completion earns no credits.",
            claim.course_id
        )),
    }
}

/// A completion that earns nothing: a granted record of 0 credits, and its issue.
fn unearned(
    claim: &Claim,
    catalog: &Catalog,
    issue: &str,
    detail: String,
    run_id: &str,
) -> (Credit, ClaimIssue) {
    let credit_id = stable_id(&[&claim.user_id, &claim.course_id, &claim.event_id]);
    let course = catalog.get(&claim.course_id);
    let claimed = claim.credits.unwrap_or(0.0);
    let credit = Credit {
        credit_id: credit_id.clone(),
        run_id: run_id.to_string(),
        user_id: claim.user_id.clone(),
        org_unit: claim.org_unit.clone(),
        course_id: claim.course_id.clone(),
        category: course
            .map(|c| c.category.clone())
            .or_else(|| claim.category.clone())
            .unwrap_or_else(|| "unknown".into()),
        completed_at: claim.completed_at,
        credits_claimed: claimed,
        credits_granted: 0.0,
        status: "granted".into(),
        flag_ids: Vec::new(),
        // Set by `apply`, which knows the settings.
        rules_version: None,
        rules_name: None,
        policy_version: None,
    };
    let issue = ClaimIssue {
        issue_id: stable_id(&[&credit_id, issue]),
        run_id: run_id.to_string(),
        credit_id,
        user_id: claim.user_id.clone(),
        course_id: claim.course_id.clone(),
        completed_at: claim.completed_at,
        issue: issue.to_string(),
        credits_claimed: claimed,
        catalog_credits: course.map(|c| c.credits),
        detail,
    };
    (credit, issue)
}

/// One item's engaged time on one business day.
#[derive(Debug, Default)]
struct DayOnItem {
    engaged_us: i64,
    first: i64,
    last: i64,
    org_unit: Option<String>,
}

/// The claims of the business days `from..=to` of live sessions.
pub fn live_claims(
    events: &EarningEvents,
    policy: &Policy,
    catalog: &Catalog,
    (from, to): (i64, i64),
) -> Vec<Claim> {
    let Some(rate) = policy.earning.live_credits_per_hour else {
        return Vec::new();
    };
    let cap = policy.earning.live_daily_cap.unwrap_or(f64::INFINITY);
    let mut users: Vec<&String> = events.live.keys().collect();
    users.sort_unstable();
    let mut out = Vec::new();
    for user in users {
        let days = engaged_by_day(&events.live[user], policy);
        for (day, items) in days {
            let mut order: Vec<(&String, &DayOnItem)> = items.iter().collect();
            order.sort_by_key(|(c, d)| (d.first, *c));
            let mut left = cap;
            for (course, d) in order {
                let hours = d.engaged_us as f64 / 3_600e6;
                let credits = ((hours * rate).min(left) * 100.0).round() / 100.0;
                left -= credits;
                if credits <= 0.0 || !(from..=to).contains(&day) {
                    continue;
                }
                let completed_at = d.last.clamp(day * DAY_US, (day + 1) * DAY_US - 1);
                out.push(Claim {
                    event_id: format!("live:{course}:{}", format_day(day)),
                    user_id: user.clone(),
                    org_unit: d.org_unit.clone(),
                    course_id: course.clone(),
                    completed_at,
                    credits: Some(credits),
                    category: catalog.get(course).map(|c| c.category.clone()),
                    accrued: true,
                });
            }
        }
    }
    out
}

/// A learner's engaged time per business day and live item, one item at a time: the learner's
/// engaged stretches (consecutive in-view heartbeats on one item, at most [`LIVE_MAX_GAP_S`]
/// apart) in order of their start, each counting only the time no earlier stretch covered.
fn engaged_by_day(
    beats: &[LiveBeat],
    policy: &Policy,
) -> BTreeMap<i64, BTreeMap<String, DayOnItem>> {
    let max_gap = LIVE_MAX_GAP_S * 1_000_000;
    // Per item: the last heartbeat's time, whether it was in view, the stretch it extends.
    let mut open: HashMap<&str, (i64, bool, Option<usize>)> = HashMap::new();
    let mut stretches: Vec<(i64, i64, &LiveBeat)> = Vec::new();
    for b in beats {
        let next = match open.get(b.course_id.as_str()) {
            Some(&(at, true, idx)) if b.engaged && b.at - at <= max_gap => {
                let idx = match idx {
                    Some(i) => i,
                    None => {
                        stretches.push((at, at, b));
                        stretches.len() - 1
                    }
                };
                stretches[idx].1 = b.at;
                (b.at, true, Some(idx))
            }
            _ => (b.at, b.engaged, None),
        };
        open.insert(&b.course_id, next);
    }
    stretches.sort_by_key(|s| (s.0, s.1));
    let mut out: BTreeMap<i64, BTreeMap<String, DayOnItem>> = BTreeMap::new();
    let mut covered = i64::MIN;
    for (start, end, beat) in stretches {
        let mut a = start.max(covered);
        covered = covered.max(end);
        // Split at business midnights: each day accrues its own hours.
        while a < end {
            let day = policy.local_day(a);
            let midnight = (day + 1) * DAY_US - policy.utc_offset_us;
            let b = end.min(midnight);
            let d = out
                .entry(day)
                .or_default()
                .entry(beat.course_id.clone())
                .or_insert_with(|| DayOnItem {
                    first: a,
                    ..DayOnItem::default()
                });
            d.engaged_us += b - a;
            d.last = d.last.max(b);
            d.org_unit = beat.org_unit.clone().or(d.org_unit.take());
            a = b;
        }
    }
    out
}
