//! The decisions, as pure functions over records in memory: which flags touch which claim, the
//! credit records, the claim issues, the cases and the yearly progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use creditguard_contract::time::{
    civil_from_days, day_of_us, days_from_civil, format_day, format_rfc3339_us,
};
use creditguard_contract::{stable_id, Case, Credit, Flag};

use crate::catalog::Catalog;
use crate::config::ScoreConfig;
use crate::events::{Activity, Claim};
use crate::policy::{self, Policy, CATEGORIES};
use crate::tables::{ClaimIssue, Progress};

use creditguard_contract::time::DAY_US;

/// Comparisons against thresholds forgive this much floating-point noise, so a risk computed as
/// 0.49999999999999994 from severities that multiply out to exactly 0.5 still meets 0.5.
pub const EPS: f64 = 1e-9;

/// A flag as the scorer sees it: whether it lies in the scored period (its partition day) or only
/// in the lookback before it.
#[derive(Debug, Clone)]
pub struct ScoredFlag {
    pub flag: Flag,
    pub in_period: bool,
}

/// `severity × weight`, clamped to [0, 1].
pub fn weighted(flag: &Flag, cfg: &ScoreConfig) -> f64 {
    (flag.severity * cfg.weight(&flag.detector)).clamp(0.0, 1.0)
}

/// Noisy-OR: the probability that at least one of independent signals is right.
pub fn noisy_or(ps: impl IntoIterator<Item = f64>) -> f64 {
    1.0 - ps
        .into_iter()
        .fold(1.0, |acc, p| acc * (1.0 - p.clamp(0.0, 1.0)))
}

/// Whether `flag` touches `claim` (the DESIGN's linking rules):
/// - it must be the learner's and, when it names a course, that course: a flag on course A never
///   touches course B;
/// - `credit_burst`: the claim was completed on a day the flag's window covers;
/// - any other flag naming the course (watch time, quiz speed, …): it started no later than the
///   completion (plus `activity_slack_s`), i.e. it concerns the work this claim stands on;
/// - a flag naming no course (multi-login, switching, shared device): its window, widened by
///   `activity_slack_s`, overlaps a stretch of the learner's activity on the course that began
///   before the completion.
pub fn touches(flag: &Flag, claim: &Claim, activity: &Activity, cfg: &ScoreConfig) -> bool {
    if flag.user_id != claim.user_id {
        return false;
    }
    if flag
        .course_id
        .as_ref()
        .is_some_and(|c| *c != claim.course_id)
    {
        return false;
    }
    let slack = (cfg.activity_slack_s * 1e6) as i64;
    if flag.detector == "credit_burst" {
        let first = day_of_us(flag.window_start);
        let last = day_of_us((flag.window_end - 1).max(flag.window_start));
        return (first..=last).contains(&day_of_us(claim.completed_at));
    }
    if flag.course_id.is_some() {
        return flag.window_start <= claim.completed_at + slack;
    }
    let Some(stretches) = activity.get(&(claim.user_id.clone(), claim.course_id.clone())) else {
        return false;
    };
    let (lo, hi) = (flag.window_start - slack, flag.window_end + slack);
    stretches
        .iter()
        .any(|&(s, e)| s <= claim.completed_at + slack && s <= hi && e >= lo)
}

/// Everything the scorer decides for one period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decisions {
    pub credits: Vec<Credit>,
    pub issues: Vec<ClaimIssue>,
    pub cases: Vec<Case>,
}

/// Judges every claim and builds the cases of the period `from..=to`.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    claims: &[Claim],
    flags: &[ScoredFlag],
    activity: &Activity,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    from: i64,
    to: i64,
    run_id: &str,
) -> Decisions {
    let mut by_user: HashMap<&str, Vec<&ScoredFlag>> = HashMap::new();
    for f in flags {
        by_user.entry(f.flag.user_id.as_str()).or_default().push(f);
    }
    let mut out = Decisions::default();
    // The value a claim is worth: the catalog's credits, or what was claimed for a course the
    // catalog does not know (it cannot be checked, so it is reported, not silently zeroed).
    let mut withheld_value: BTreeMap<String, f64> = BTreeMap::new();
    let mut linked_flags: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut first_claim: HashMap<(&str, &str), &Claim> = HashMap::new();
    let (rules_version, policy_version) = (cfg.rules_version(), cfg.policy_version());
    for claim in claims {
        let claimed = claim.credits.unwrap_or(0.0);
        let course = catalog.get(&claim.course_id);
        let credit_id = stable_id(&[&claim.user_id, &claim.course_id, &claim.event_id]);
        let mut issue = |kind: &str, catalog_credits: Option<f64>, detail: String| {
            out.issues.push(ClaimIssue {
                issue_id: stable_id(&[&credit_id, kind]),
                run_id: run_id.to_string(),
                credit_id: credit_id.clone(),
                user_id: claim.user_id.clone(),
                course_id: claim.course_id.clone(),
                completed_at: claim.completed_at,
                issue: kind.to_string(),
                credits_claimed: claimed,
                catalog_credits,
                detail,
            })
        };
        let (mut value, category) = match course {
            // A day of live sessions is worth the hours it accrued (`crate::earning`).
            Some(c) if claim.accrued => (claimed, c.category.clone()),
            Some(c) => {
                if (c.credits - claimed).abs() > EPS {
                    issue(
                        "credits_mismatch",
                        Some(c.credits),
                        format!(
                            "Claimed {claimed} credits for course {} but the catalog says {}; {} granted at most.",
                            c.course_id, c.credits, c.credits
                        ),
                    );
                }
                if let Some(cat) = claim.category.as_deref().filter(|cat| *cat != c.category) {
                    issue(
                        "category_mismatch",
                        Some(c.credits),
                        format!(
                            "Claimed as {cat} but the catalog lists course {} as {}.",
                            c.course_id, c.category
                        ),
                    );
                }
                (c.credits, c.category.clone())
            }
            None => {
                issue(
                    "unknown_course",
                    None,
                    format!(
                        "Course {} is not in the catalog; the {claimed} claimed credits cannot be checked.",
                        claim.course_id
                    ),
                );
                (
                    claimed,
                    claim
                        .category
                        .clone()
                        .unwrap_or_else(|| "unknown".to_string()),
                )
            }
        };
        // Credit accrues once per course: a second completion of the same course is reported and
        // worth nothing more.
        match first_claim.get(&(claim.user_id.as_str(), claim.course_id.as_str())) {
            _ if claim.accrued => {}
            Some(first) => {
                issue(
                    "repeat_completion",
                    course.map(|c| c.credits),
                    format!(
                        "Course {} was already completed at {} (event {}); a repeat adds no credits.",
                        claim.course_id,
                        format_rfc3339_us(first.completed_at),
                        first.event_id
                    ),
                );
                value = 0.0;
            }
            None => {
                first_claim.insert((claim.user_id.as_str(), claim.course_id.as_str()), claim);
            }
        }
        let flag_ids: BTreeSet<String> = by_user
            .get(claim.user_id.as_str())
            .into_iter()
            .flatten()
            .filter(|f| {
                weighted(&f.flag, cfg) >= cfg.withhold_severity - EPS
                    && touches(&f.flag, claim, activity, cfg)
            })
            .map(|f| f.flag.flag_id.clone())
            .collect();
        let withheld = !flag_ids.is_empty();
        if withheld {
            *withheld_value.entry(claim.user_id.clone()).or_default() += value;
            linked_flags
                .entry(claim.user_id.clone())
                .or_default()
                .extend(flag_ids.iter().cloned());
        }
        out.credits.push(Credit {
            credit_id,
            run_id: run_id.to_string(),
            user_id: claim.user_id.clone(),
            org_unit: claim.org_unit.clone(),
            course_id: claim.course_id.clone(),
            category,
            completed_at: claim.completed_at,
            credits_claimed: claimed,
            credits_granted: if withheld { 0.0 } else { value },
            status: if withheld { "withheld" } else { "granted" }.to_string(),
            flag_ids: flag_ids.into_iter().collect(),
            rules_version: Some(rules_version.clone()),
            rules_name: cfg.rules.name.clone(),
            policy_version: Some(policy_version.clone()),
        });
    }

    // A case gathers the learner's flags of the period and any earlier flag that withheld one of
    // the period's claims, so every withheld credit is in front of a reviewer.
    let period = format!("{}/{}", format_day(from), format_day(to));
    let mut users: Vec<&str> = by_user.keys().copied().collect();
    users.sort_unstable();
    for user in users {
        let linked = linked_flags.get(user);
        let mut case_flags: BTreeMap<&str, &Flag> = BTreeMap::new();
        for f in &by_user[user] {
            if f.in_period || linked.is_some_and(|l| l.contains(&f.flag.flag_id)) {
                case_flags.insert(&f.flag.flag_id, &f.flag);
            }
        }
        if case_flags.is_empty() {
            continue;
        }
        let risk = noisy_or(case_flags.values().map(|f| weighted(f, cfg)));
        let detectors: BTreeSet<String> = case_flags.values().map(|f| f.detector.clone()).collect();
        let org_unit = case_flags
            .values()
            .find_map(|f| f.org_unit.clone())
            .or_else(|| {
                claims
                    .iter()
                    .find(|c| c.user_id == user)
                    .and_then(|c| c.org_unit.clone())
            });
        out.cases.push(Case {
            case_id: stable_id(&[user, &period]),
            run_id: run_id.to_string(),
            user_id: user.to_string(),
            org_unit,
            period_start: from * DAY_US,
            period_end: (to + 1) * DAY_US,
            risk,
            flag_ids: case_flags.keys().map(|s| s.to_string()).collect(),
            detectors: detectors.into_iter().collect(),
            credits_withheld: withheld_value.get(user).copied().unwrap_or(0.0),
            status: if risk >= cfg.review_threshold - EPS {
                "open"
            } else {
                "below_threshold"
            }
            .to_string(),
            previous_case_id: None,
            assignee: None,
        });
    }
    out
}

/// The claims of a re-scored period that an earlier run recorded under other thresholds or
/// another credit policy, by what was decided about them then.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EarlierVersions {
    /// Claims a reviewer released or cancelled: re-scoring them needs `--rescore-decided`.
    pub reviewed: Vec<String>,
    /// Claims the scorer granted: their records are kept as decided unless re-scoring is asked.
    pub granted: Vec<String>,
    /// Both, by the (thresholds, policy) versions they were recorded under.
    pub versions: BTreeMap<(String, String), usize>,
}

impl EarlierVersions {
    pub fn is_empty(&self) -> bool {
        self.reviewed.is_empty() && self.granted.is_empty()
    }

    /// `thresholds X, policy P: N claim(s)` for each version, joined by `; `.
    pub fn describe(&self) -> String {
        self.versions
            .iter()
            .map(|((rules, policy), n)| {
                format!("thresholds {rules}, policy {policy}: {n} claim(s)")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Which of `credits` (a period as scored now) `stored` (the same period's records as earlier
/// runs left them) recorded under another version. A version an earlier record lacks (written
/// before versions existed) is taken as the current one. Claims that were withheld, waiting for
/// a reviewer, are not listed: nothing was decided, and they follow the current thresholds.
pub fn earlier_versions(stored: &[Credit], credits: &[Credit]) -> EarlierVersions {
    let now: HashMap<&str, &Credit> = credits.iter().map(|c| (c.credit_id.as_str(), c)).collect();
    let differs =
        |a: &Option<String>, b: &Option<String>| matches!((a, b), (Some(a), Some(b)) if a != b);
    let mut out = EarlierVersions::default();
    for old in stored {
        let Some(new) = now.get(old.credit_id.as_str()) else {
            continue;
        };
        if !differs(&old.rules_version, &new.rules_version)
            && !differs(&old.policy_version, &new.policy_version)
        {
            continue;
        }
        let list = match old.status.as_str() {
            "released" | "cancelled" => &mut out.reviewed,
            "granted" => &mut out.granted,
            _ => continue,
        };
        list.push(old.credit_id.clone());
        let version = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unrecorded)".into());
        *out.versions
            .entry((version(&old.rules_version), version(&old.policy_version)))
            .or_default() += 1;
    }
    out
}

/// Puts back the records of claims decided under another version ([`EarlierVersions::granted`])
/// as earlier runs left them. Returns how many.
pub fn keep_earlier(credits: &mut [Credit], stored: &[Credit], ids: &[String]) -> usize {
    let ids: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let keep: HashMap<&str, &Credit> = stored
        .iter()
        .filter(|c| ids.contains(c.credit_id.as_str()))
        .map(|c| (c.credit_id.as_str(), c))
        .collect();
    let mut kept = 0;
    for c in credits.iter_mut() {
        if let Some(old) = keep.get(c.credit_id.as_str()) {
            *c = (*old).clone();
            kept += 1;
        }
    }
    kept
}

/// What a claim is worth when granted: the catalog's credits for its course, else what was claimed.
/// A live session's credits are the hours its record claims ([`crate::earning`]).
pub fn claim_value(credit: &Credit, catalog: &Catalog) -> f64 {
    catalog
        .get(&credit.course_id)
        .filter(|_| !catalog.is_live(&credit.course_id))
        .map(|k| k.credits)
        .unwrap_or(credit.credits_claimed)
}

/// Each learner's progress in the credit year of `as_of_day` (a business-local date in the
/// policy's time zone), from that year's credit records up to and including `as_of_day`. A
/// course counts once: its best granted record, else (if none was granted) its withheld value.
/// The learners are those with credits, those in `extra_users` (with a case) and everyone the
/// roster employs during the year; each is measured against the policy rule that applies to them
/// (prorated), or against `[score] target_credits` and `mandatory_credits` when no rule matches.
pub fn progress(
    credits: &[Credit],
    extra_users: &BTreeMap<String, Option<String>>,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    as_of_day: i64,
    run_id: &str,
) -> Vec<Progress> {
    let fallback = Policy::global(cfg.target_credits, cfg.mandatory_credits);
    let policy = cfg.expectations.policy.as_ref().unwrap_or(&fallback);
    let roster = cfg.expectations.roster.as_ref();
    let (year, _, _) = civil_from_days(as_of_day);
    let jan1 = days_from_civil(year, 1, 1);
    let dec31 = days_from_civil(year + 1, 1, 1) - 1;
    // (user, course, or the credit of a day's live sessions) → (granted, withheld, category,
    // course)
    let mut per_course: BTreeMap<(&str, &str), (f64, f64, &str, &str)> = BTreeMap::new();
    let mut org: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for c in credits {
        let day = policy.local_day(c.completed_at);
        if day < jan1 || day > as_of_day {
            continue;
        }
        let e = per_course
            .entry((&c.user_id, course_key(c, catalog)))
            .or_insert((0.0, 0.0, c.category.as_str(), c.course_id.as_str()));
        match c.status.as_str() {
            // Released by a reviewer: granted like any other.
            "granted" | "released" => e.0 = e.0.max(c.credits_granted),
            "withheld" => e.1 = e.1.max(claim_value(c, catalog)),
            // Cancelled by a reviewer: worth nothing, not even pending.
            _ => {}
        }
        let o = org.entry(c.user_id.clone()).or_insert((i64::MIN, None));
        if c.completed_at >= o.0 && c.org_unit.is_some() {
            *o = (c.completed_at, c.org_unit.clone());
        }
    }
    // Per user: granted and withheld, in total and per category.
    let mut totals: BTreeMap<String, Sums> = BTreeMap::new();
    for ((user, _), (granted, withheld, category, course)) in per_course {
        let t = totals.entry(user.to_string()).or_default();
        let withheld = if granted > 0.0 { 0.0 } else { withheld };
        t.add("", granted, withheld);
        t.add(category, granted, withheld);
        if let Some(topic) = catalog.topic(course) {
            t.add(&policy::topic_key(topic), granted, withheld);
        }
    }
    for user in extra_users.keys() {
        totals.entry(user.clone()).or_default();
    }
    for p in roster.iter().flat_map(|r| r.people.values()) {
        let employed = p.hired_on.is_none_or(|h| h <= dec31) && p.left_on.is_none_or(|l| l >= jan1);
        if employed {
            totals.entry(p.user_id.clone()).or_default();
        }
    }
    let as_of = (as_of_day + 1) * DAY_US - policy.utc_offset_us;
    totals
        .into_iter()
        .map(|(user, sums)| {
            let person = roster.and_then(|r| r.get(&user));
            let seen_org = org
                .get(&user)
                .and_then(|o| o.1.clone())
                .or_else(|| extra_users.get(&user).cloned().flatten());
            let org_unit = person.map(|p| p.org_path.clone()).or(seen_org);
            let matched = policy.rule_for(
                org_unit.as_deref().unwrap_or(""),
                person.and_then(|p| p.role.as_deref()),
                person.and_then(|p| p.level.as_deref()),
            );
            let (policy_used, rule) = match matched {
                Some(r) => (policy, r),
                None => (&fallback, &fallback.rules[0]),
            };
            let target = policy::target(rule, person, year, as_of_day);
            let min = |c: &str| target.minimum.get(c).copied().unwrap_or(0.0);
            let meets = |extra: bool, share: f64| {
                let got = |c: &str| sums.granted(c) + if extra { sums.withheld(c) } else { 0.0 };
                got("") >= target.credits * share - EPS
                    && CATEGORIES.iter().all(|c| got(c) >= min(c) * share - EPS)
                    && target
                        .topics
                        .iter()
                        .all(|(topic, m)| got(&policy::topic_key(topic)) >= m * share - EPS)
            };
            let status = if meets(false, 1.0) {
                "complete"
            } else if meets(false, target.elapsed) {
                "on_track"
            } else if meets(true, target.elapsed) {
                "at_risk"
            } else {
                "behind"
            };
            let ratio = |got: f64, want: f64| if want > 0.0 { got / want } else { 1.0 };
            Progress {
                progress_id: stable_id(&[&user, &year.to_string(), &format_day(as_of_day)]),
                run_id: run_id.to_string(),
                user_id: user,
                org_unit,
                year: year as i32,
                as_of,
                credits_granted: sums.granted(""),
                credits_withheld: sums.withheld(""),
                mandatory_granted: sums.granted("mandatory"),
                mandatory_withheld: sums.withheld("mandatory"),
                target_credits: target.credits,
                mandatory_target: min("mandatory"),
                expected_by_now: target.credits * target.elapsed,
                share_of_target: ratio(sums.granted(""), target.credits),
                mandatory_share: ratio(sums.granted("mandatory"), min("mandatory")),
                status: status.to_string(),
                elective_granted: sums.granted("elective"),
                elective_target: min("elective"),
                practice_granted: sums.granted("practice"),
                practice_target: min("practice"),
                policy_rule: Some(format!("{}/{}", policy_used.name, rule.name)),
                policy_version: Some(policy_used.version.clone()),
                topic_credits: topic_credits(&sums, &target),
            }
        })
        .collect()
}

/// Progress counts a course once, but a live session's credits of each day add up: those are
/// keyed by their credit.
fn course_key<'a>(c: &'a Credit, catalog: &Catalog) -> &'a str {
    if catalog.is_live(&c.course_id) {
        &c.credit_id
    } else {
        &c.course_id
    }
}

/// The rule's topic minimums with the credits granted per topic (`Progress::topic_credits`).
fn topic_credits(sums: &Sums, target: &policy::Target) -> Option<String> {
    let rows: Vec<(String, f64, f64)> = target
        .topics
        .iter()
        .map(|(t, m)| (t.clone(), sums.granted(&policy::topic_key(t)), *m))
        .collect();
    policy::format_topic_credits(&rows)
}

/// Granted and withheld credits, in total (`""`), per category and per topic
/// ([`policy::topic_key`]).
#[derive(Default)]
struct Sums(BTreeMap<String, (f64, f64)>);

impl Sums {
    fn add(&mut self, key: &str, granted: f64, withheld: f64) {
        let e = self.0.entry(key.to_string()).or_default();
        e.0 += granted;
        e.1 += withheld;
    }
    fn granted(&self, key: &str) -> f64 {
        self.0.get(key).map_or(0.0, |e| e.0)
    }
    fn withheld(&self, key: &str) -> f64 {
        self.0.get(key).map_or(0.0, |e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noisy_or_combines_independent_signals() {
        assert_eq!(noisy_or([]), 0.0);
        assert_eq!(noisy_or([0.5]), 0.5);
        assert!((noisy_or([0.5, 0.5]) - 0.75).abs() < 1e-12);
        assert_eq!(noisy_or([1.0, 0.2]), 1.0);
    }

    fn credit(id: &str, status: &str, rules: Option<&str>, policy: &str) -> Credit {
        Credit {
            credit_id: id.into(),
            run_id: "r".into(),
            user_id: "u1".into(),
            org_unit: None,
            course_id: id.into(),
            category: "mandatory".into(),
            completed_at: 0,
            credits_claimed: 2.0,
            credits_granted: if status == "withheld" { 0.0 } else { 2.0 },
            status: status.into(),
            flag_ids: Vec::new(),
            rules_version: rules.map(str::to_string),
            rules_name: None,
            policy_version: Some(policy.into()),
        }
    }

    #[test]
    fn only_claims_decided_under_another_version_are_kept_or_need_asking() {
        let stored = vec![
            credit("granted-old", "granted", Some("aaa"), "p1"),
            credit("released-old", "released", Some("aaa"), "p1"),
            credit("cancelled-policy", "cancelled", Some("bbb"), "p0"),
            credit("withheld-old", "withheld", Some("aaa"), "p1"),
            credit("granted-same", "granted", Some("bbb"), "p1"),
            credit("released-unversioned", "released", None, "p1"),
            credit("gone", "granted", Some("aaa"), "p1"),
        ];
        let mut now: Vec<Credit> = stored
            .iter()
            .filter(|c| c.credit_id != "gone")
            .map(|c| Credit {
                status: "withheld".into(),
                credits_granted: 0.0,
                rules_version: Some("bbb".into()),
                policy_version: Some("p1".into()),
                ..c.clone()
            })
            .collect();
        let e = earlier_versions(&stored, &now);
        assert_eq!(e.granted, ["granted-old"]);
        assert_eq!(e.reviewed, ["released-old", "cancelled-policy"]);
        assert_eq!(
            e.describe(),
            "thresholds aaa, policy p1: 2 claim(s); thresholds bbb, policy p0: 1 claim(s)"
        );
        assert_eq!(keep_earlier(&mut now, &stored, &e.granted), 1);
        assert_eq!(now[0], stored[0]);
        assert_eq!(now[3].status, "withheld");
        assert!(earlier_versions(&stored, &stored[..6]).is_empty());
    }
}
