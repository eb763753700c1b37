//! Reminders for a notifier (`results/warnings`, stream kind `warning`): assigned courses due
//! soon or overdue, learners falling behind the pace of their target, departments where most
//! learners are behind. creditguard sends nothing itself; a scheduler reads the table or the
//! topic and sends each reminder once, by its `warning_id`.
//!
//! Each reminder is raised once per threshold crossing across daily runs: `due_soon` once per
//! (learner, course, due date, threshold), `overdue` once per (learner, course, due date),
//! `behind_pace` on the day a learner goes from on pace to behind (per category),
//! `department_lagging` at most once per department and week, `monthly_hours_low` at most once
//! per learner and month. Re-scoring a day gives the same rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use creditguard_contract::time::{civil_from_days, days_from_civil, format_day, parse_day};
use creditguard_contract::{stable_id, Credit, Warning};
use serde::{Deserialize, Serialize};

use crate::policy::{in_subtree, parse_topic_credits, topic_key, working_days, Policy, Roster};
use crate::tables::Progress;
use crate::{Error, Result};
use creditguard_lake::catalog::csv_records as parse_csv;

/// A course assigned to an audience with a due date (a row of `[policy] assignments`).
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub course_id: String,
    /// The org subtree it is assigned to (absent: everyone).
    pub org: Option<String>,
    pub role: Option<String>,
    /// Business-local date.
    pub due_on: i64,
    /// Due again every year on the same month and day.
    pub recurring: bool,
}

/// When reminders are raised (`[policy]` keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarningSettings {
    /// Days before a due date at which `due_soon` is raised.
    pub due_soon_days: Vec<i64>,
    /// `behind_pace` when a learner is short of the pace by more than this share of it.
    pub behind_margin: f64,
    /// `department_lagging` when at least this share of a department's learners (3 or more)
    /// are behind.
    pub lagging_share: f64,
}

impl Default for WarningSettings {
    fn default() -> Self {
        WarningSettings {
            due_soon_days: vec![30, 14, 1],
            behind_margin: 0.1,
            lagging_share: 0.5,
        }
    }
}

impl WarningSettings {
    /// Every problem at once, each naming its key.
    pub fn validate(&self) -> std::result::Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.due_soon_days.iter().any(|d| !(0..=366).contains(d)) {
            errs.push("key `policy.due_soon_days`: days must be in 0..=366".to_string());
        }
        if !(0.0..1.0).contains(&self.behind_margin) {
            errs.push("key `policy.behind_margin`: must be in [0, 1)".to_string());
        }
        if !(self.lagging_share > 0.0 && self.lagging_share <= 1.0) {
            errs.push("key `policy.lagging_share`: must be in (0, 1]".to_string());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// Reads assignments: CSV `course_id,org,role,due_on,recurring` (`org`, `role` and `recurring`
/// may be empty; `recurring` is `yes`/`no`). Every bad line is named.
pub fn load_assignments(path: &Path) -> Result<Vec<Assignment>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_assignments(&text).map_err(|errs| Error::Schema {
        path: path.to_path_buf(),
        msg: errs.join("; "),
    })
}

pub fn parse_assignments(text: &str) -> std::result::Result<Vec<Assignment>, Vec<String>> {
    let rows = parse_csv(text).map_err(|e| vec![e])?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(vec!["empty file, expected a header row".into()]);
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(course), Some(due)) = (col("course_id"), col("due_on")) else {
        return Err(vec![format!(
            "header needs `course_id` and `due_on` (has: {})",
            header.join(",")
        )]);
    };
    let (org, role, recurring) = (col("org"), col("role"), col("recurring"));
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (line, r) in rows {
        if r.len() == 1 && r[0].trim().is_empty() {
            continue;
        }
        let get = |i: Option<usize>| {
            i.and_then(|i| r.get(i))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let Some(course_id) = get(Some(course)) else {
            errs.push(format!("line {line}: empty `course_id`"));
            continue;
        };
        let due_on = match get(Some(due)).map(|d| parse_day(&d).map_err(|e| (d, e))) {
            Some(Ok(d)) => d,
            Some(Err((d, e))) => {
                errs.push(format!("line {line}: `due_on` `{d}`: {e}"));
                continue;
            }
            None => {
                errs.push(format!("line {line}: empty `due_on`"));
                continue;
            }
        };
        let recurring = match get(recurring).as_deref() {
            None | Some("no") | Some("false") => false,
            Some("yes") | Some("true") => true,
            Some(other) => {
                errs.push(format!(
                    "line {line}: `recurring` must be yes or no, got `{other}`"
                ));
                false
            }
        };
        out.push(Assignment {
            course_id,
            org: get(org),
            role: get(role),
            due_on,
            recurring,
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// What the warnings of one scored day are computed from.
pub struct WarningInput<'a> {
    pub policy: &'a Policy,
    pub roster: Option<&'a Roster>,
    pub assignments: &'a [Assignment],
    pub settings: &'a WarningSettings,
    /// Progress as of the day, and as of the latest earlier day scored (empty on a first run).
    pub progress: &'a [Progress],
    pub previous: &'a HashMap<String, Progress>,
    /// The credit year's records up to the day.
    pub credits: &'a [Credit],
    /// The ids of those records whose completion the earning rules refused
    /// ([`crate::earning::QUIZ_NOT_PASSED`]): they do not complete an assigned course.
    pub refused: &'a HashSet<String>,
    /// Ids of warnings written on earlier days of the year.
    pub emitted: &'a HashSet<String>,
    /// Engaged hours per learner in the month of `as_of_day` up to it (`None`: not measured, no
    /// `monthly_hours_low`).
    pub engaged_hours: Option<&'a HashMap<String, f64>>,
    /// The scored day, as a business-local date.
    pub as_of_day: i64,
    pub run_id: &'a str,
}

/// Credits short of the pace, per category (`total`, each category with a minimum and each
/// topic with a minimum as `topic:NAME`), counting withheld credits for the total and mandatory
/// ones (they depend on a review, not on the learner).
fn shortfalls(p: &Progress) -> Vec<(String, f64, f64)> {
    let elapsed = if p.target_credits > 0.0 {
        p.expected_by_now / p.target_credits
    } else {
        1.0
    };
    let mut out = vec![(
        "total".to_string(),
        p.expected_by_now,
        p.credits_granted + p.credits_withheld,
    )];
    for (cat, target, got) in [
        (
            "mandatory",
            p.mandatory_target,
            p.mandatory_granted + p.mandatory_withheld,
        ),
        ("elective", p.elective_target, p.elective_granted),
        ("practice", p.practice_target, p.practice_granted),
    ] {
        if target > 0.0 {
            out.push((cat.to_string(), target * elapsed, got));
        }
    }
    let topics = p.topic_credits.as_deref().map(parse_topic_credits);
    for (topic, got, min) in topics.into_iter().flatten() {
        if min > 0.0 {
            out.push((topic_key(&topic), min * elapsed, got));
        }
    }
    out
}

fn behind(pace: f64, got: f64, margin: f64) -> bool {
    pace > 0.0 && pace - got > margin * pace && pace - got >= 0.5
}

/// The day's new warnings, sorted by id.
pub fn warnings(w: &WarningInput<'_>) -> Vec<Warning> {
    let (year, _, _) = civil_from_days(w.as_of_day);
    let as_of = (w.as_of_day + 1) * creditguard_contract::time::DAY_US - w.policy.utc_offset_us;
    let mut out: BTreeMap<String, Warning> = BTreeMap::new();
    let mut add = |mut warning: Warning, key: &[&str]| {
        warning.warning_id = stable_id(key);
        if !w.emitted.contains(&warning.warning_id) {
            out.insert(warning.warning_id.clone(), warning);
        }
    };
    let blank = |reason: &str, p: &Progress| Warning {
        warning_id: String::new(),
        run_id: w.run_id.to_string(),
        reason: reason.to_string(),
        user_id: p.user_id.clone(),
        org_unit: p.org_unit.clone(),
        course_id: None,
        category: None,
        due_on: None,
        days_left: None,
        value: None,
        message: String::new(),
        message_zh: String::new(),
        as_of,
    };

    // Assigned courses.
    let done: HashSet<(&str, &str)> = w
        .credits
        .iter()
        .filter(|c| {
            c.status != "cancelled"
                && w.policy.local_day(c.completed_at) <= w.as_of_day
                && !w.refused.contains(&c.credit_id)
        })
        .map(|c| (c.user_id.as_str(), c.course_id.as_str()))
        .collect();
    let mut thresholds = w.settings.due_soon_days.clone();
    thresholds.sort_unstable();
    for a in w.assignments {
        let due = if a.recurring {
            let (_, m, d) = civil_from_days(a.due_on);
            days_from_civil(year, m, d)
        } else {
            a.due_on
        };
        if civil_from_days(due).0 != year {
            continue;
        }
        let days_left = due - w.as_of_day;
        for p in w.progress {
            let person = w.roster.and_then(|r| r.get(&p.user_id));
            let org = p.org_unit.as_deref().unwrap_or("");
            let audience = a.org.as_deref().is_none_or(|o| in_subtree(org, o))
                && a.role
                    .as_deref()
                    .is_none_or(|r| person.and_then(|p| p.role.as_deref()) == Some(r));
            if !audience || done.contains(&(p.user_id.as_str(), a.course_id.as_str())) {
                continue;
            }
            let due_s = format_day(due);
            if days_left < 0 {
                let mut x = blank("overdue", p);
                x.message = format!(
                    "Course {} was due on {due_s} and is not completed.",
                    a.course_id
                );
                x.message_zh = format!("课程 {} 已于 {due_s} 到期，尚未完成。", a.course_id);
                (x.course_id, x.due_on, x.days_left) = (
                    Some(a.course_id.clone()),
                    Some(due_s.clone()),
                    Some(days_left),
                );
                add(x, &[&p.user_id, "overdue", &a.course_id, &due_s]);
            } else if let Some(n) = thresholds.iter().find(|n| days_left <= **n) {
                let mut x = blank("due_soon", p);
                x.message = format!(
                    "Course {} is due on {due_s}, in {days_left} day(s).",
                    a.course_id
                );
                x.message_zh = format!(
                    "课程 {} 将于 {due_s} 到期，还剩 {days_left} 天。",
                    a.course_id
                );
                (x.course_id, x.due_on, x.days_left) = (
                    Some(a.course_id.clone()),
                    Some(due_s.clone()),
                    Some(days_left),
                );
                add(
                    x,
                    &[&p.user_id, "due_soon", &a.course_id, &due_s, &n.to_string()],
                );
            }
        }
    }

    // Falling behind the pace.
    let margin = w.settings.behind_margin;
    let day = format_day(w.as_of_day);
    for p in w.progress {
        let before: HashMap<String, bool> = w
            .previous
            .get(&p.user_id)
            .map(|q| {
                shortfalls(q)
                    .into_iter()
                    .map(|(c, pace, got)| (c, behind(pace, got, margin)))
                    .collect()
            })
            .unwrap_or_default();
        for (cat, pace, got) in shortfalls(p) {
            if !behind(pace, got, margin) || before.get(&cat).copied().unwrap_or(false) {
                continue;
            }
            let mut x = blank("behind_pace", p);
            let short = pace - got;
            let what = match cat.strip_prefix("topic:") {
                _ if cat == "total" => "credits".to_string(),
                Some(topic) => format!("credits in {topic} courses"),
                None => format!("{cat} credits"),
            };
            x.message = format!(
                "{short:.1} {what} behind the pace of the year's target ({got:.1} of {pace:.1} expected by {day})."
            );
            let cat_zh = match cat.as_str() {
                "mandatory" => "必修".to_string(),
                "elective" => "选修".to_string(),
                "practice" => "实践".to_string(),
                other => other
                    .strip_prefix("topic:")
                    .map(|t| format!("{t} 主题课程"))
                    .unwrap_or_default(),
            };
            x.message_zh = format!(
                "{cat_zh}学分落后年度目标进度 {short:.1} 分（截至 {day} 应达 {pace:.1}，已获 {got:.1}）。"
            );
            (x.category, x.value) = (Some(cat.clone()), Some(short));
            add(x, &[&p.user_id, "behind_pace", &cat, &day]);
        }
    }

    for (x, month) in monthly_hours_low(w, &blank) {
        add(x, &[&month.0, "monthly_hours_low", &month.1]);
    }

    // Departments where most learners are behind: one summary per department and week.
    if let Some(roster) = w.roster {
        let mut units: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for p in w.progress {
            if let Some(org) = p
                .org_unit
                .as_deref()
                .filter(|_| roster.get(&p.user_id).is_some())
            {
                let e = units.entry(org).or_default();
                e.0 += 1;
                e.1 += usize::from(p.status == "behind");
            }
        }
        // Day 0 (1970-01-01) was a Thursday: weeks start on Monday.
        let week = format_day(w.as_of_day - (w.as_of_day + 3).rem_euclid(7));
        for (unit, (all, late)) in units {
            let share = late as f64 / all as f64;
            if all < 3 || share < w.settings.lagging_share {
                continue;
            }
            let managers: Vec<&str> = roster
                .people
                .values()
                .filter(|m| m.org_path == unit && m.role.as_deref() == Some("manager"))
                .map(|m| m.user_id.as_str())
                .collect();
            let recipients = if managers.is_empty() {
                vec![unit]
            } else {
                managers
            };
            for to in recipients {
                let x = Warning {
                    warning_id: String::new(),
                    run_id: w.run_id.to_string(),
                    reason: "department_lagging".into(),
                    user_id: to.to_string(),
                    org_unit: Some(unit.to_string()),
                    course_id: None,
                    category: None,
                    due_on: None,
                    days_left: None,
                    value: Some(share),
                    message: format!(
                        "{late} of {all} learners of {unit} ({:.0}%) are behind their credit target.",
                        share * 100.0
                    ),
                    message_zh: format!(
                        "{unit} 的 {all} 名学员中有 {late} 名（{:.0}%）落后于学分目标。",
                        share * 100.0
                    ),
                    as_of,
                };
                add(x, &["department_lagging", unit, to, &week]);
            }
        }
    }
    out.into_values().collect()
}

/// The month of a day: its first and last day.
pub fn month_of(day: i64) -> (i64, i64) {
    let (y, m, _) = civil_from_days(day);
    let next = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    (days_from_civil(y, m, 1), next - 1)
}

/// Learners whose engaged hours this month fall short of their rule's monthly minimum at the
/// pace of the month: the minimum (prorated by the month's working days, as the yearly target
/// is) times the share of those days passed, short by more than `behind_margin` of it and by
/// at least an hour. Each with (learner, `YYYY-MM`), its key.
fn monthly_hours_low(
    w: &WarningInput<'_>,
    blank: &dyn Fn(&str, &Progress) -> Warning,
) -> Vec<(Warning, (String, String))> {
    let Some(hours) = w.engaged_hours else {
        return Vec::new();
    };
    let (first, last) = month_of(w.as_of_day);
    let month = format_day(first)[..7].to_string();
    let (day, last_s) = (format_day(w.as_of_day), format_day(last));
    let mut out = Vec::new();
    for p in w.progress {
        let rule = p
            .policy_rule
            .as_deref()
            .and_then(|r| r.strip_prefix(&format!("{}/", w.policy.name)))
            .and_then(|name| w.policy.rules.iter().find(|r| r.name == name));
        let Some((rule, minimum)) = rule.and_then(|r| Some((r, r.monthly_hours?))) else {
            continue;
        };
        let person = w
            .roster
            .and_then(|r| r.get(&p.user_id))
            .filter(|_| rule.prorate);
        let expected = working_days(person, first, last);
        if expected == 0 {
            continue;
        }
        let minimum = minimum * expected as f64 / (last - first + 1) as f64;
        let pace = minimum * working_days(person, first, w.as_of_day) as f64 / expected as f64;
        let got = hours.get(&p.user_id).copied().unwrap_or(0.0);
        let short = pace - got;
        if !(short > w.settings.behind_margin * pace && short >= 1.0) {
            continue;
        }
        let mut x = blank("monthly_hours_low", p);
        x.message = format!(
            "{got:.1} engaged hours of study in {month}, {short:.1} behind the pace of the month's minimum of {minimum:.1} hours ({pace:.1} expected by {day}; the month ends on {last_s})."
        );
        x.message_zh = format!(
            "{month} 已学习 {got:.1} 小时，落后本月最低 {minimum:.1} 小时的进度 {short:.1} 小时（截至 {day} 应达 {pace:.1} 小时；本月截止 {last_s}）。"
        );
        (x.due_on, x.days_left, x.value) =
            (Some(last_s.clone()), Some(last - w.as_of_day), Some(short));
        out.push((x, (p.user_id.clone(), month.clone())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_errors_name_the_line() {
        let errs = parse_assignments(
            "course_id,org,role,due_on,recurring\nc1,HQ,,2026-03-31,yes\n,HQ,,2026-03-31,\nc2,,,2026-02-30,\nc3,,,2026-04-01,maybe\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(errs.contains("line 3: empty `course_id`"), "{errs}");
        assert!(errs.contains("line 4: `due_on` `2026-02-30`"), "{errs}");
        assert!(
            errs.contains("line 5: `recurring` must be yes or no"),
            "{errs}"
        );
        let ok = parse_assignments("course_id,due_on\nc1,2026-03-31\n").unwrap();
        assert_eq!((ok[0].org.clone(), ok[0].recurring), (None, false));
    }

    const MONTHLY: &str = r#"
[policy]
name = "hours"

[[rule]]
name = "company"
target_credits = 100
monthly_hours = 8

[[rule]]
name = "sales"
org = "HQ/Sales"
target_credits = 100
"#;

    /// The `monthly_hours_low` reminders of `day` for everyone of the roster with these engaged
    /// hours, given the ids already written.
    fn monthly(day: &str, hours: &[(&str, f64)], emitted: &HashSet<String>) -> Vec<Warning> {
        let roster = Roster::parse(
            "user_id,org_path\nidle,HQ/Dev\nbusy,HQ/Dev\naway,HQ/Dev\nseller,HQ/Sales\n",
            Some("user_id,kind,from,to\naway,leave,2026-03-01,2026-03-09\n"),
        )
        .unwrap();
        let policy = Policy::parse(MONTHLY).unwrap();
        let cfg = crate::ScoreConfig {
            expectations: crate::config::Expectations {
                roster: Some(roster.clone()),
                policy: Some(policy.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let as_of_day = parse_day(day).unwrap();
        let progress = crate::decide::progress(
            &[],
            &Default::default(),
            &crate::Catalog::default(),
            &cfg,
            as_of_day,
            "r",
        );
        let engaged: HashMap<String, f64> =
            hours.iter().map(|(u, h)| (u.to_string(), *h)).collect();
        let input = WarningInput {
            policy: &policy,
            roster: Some(&roster),
            assignments: &[],
            settings: &WarningSettings::default(),
            progress: &progress,
            previous: &HashMap::new(),
            credits: &[],
            refused: &HashSet::new(),
            emitted,
            engaged_hours: Some(&engaged),
            as_of_day,
            run_id: "r",
        };
        warnings(&input)
            .into_iter()
            .filter(|w| w.reason == "monthly_hours_low")
            .collect()
    }

    #[test]
    fn monthly_hours_low_fires_once_a_month_at_the_months_pace_prorated() {
        // 10 March: 8 h × 10/31 = 2.6 h expected. `busy` has 3 h; `away` was on leave for 9 of
        // the 10 days (pace 0.3 h); the sales rule sets no monthly minimum.
        let none = HashSet::new();
        let w = monthly("2026-03-10", &[("busy", 3.0), ("idle", 0.5)], &none);
        let users: Vec<&str> = w.iter().map(|w| w.user_id.as_str()).collect();
        assert_eq!(users, ["idle"]);
        let idle = &w[0];
        assert_eq!(idle.due_on.as_deref(), Some("2026-03-31"));
        assert_eq!(idle.days_left, Some(21));
        assert!((idle.value.unwrap() - (8.0 * 10.0 / 31.0 - 0.5)).abs() < 1e-9);
        assert!(idle.message.contains("2026-03"), "{}", idle.message);
        // The same day again gives the same id; the next day, once written, it is not raised
        // again that month; in April it is a new reminder.
        assert_eq!(
            monthly("2026-03-10", &[("busy", 3.0), ("idle", 0.5)], &none)[0].warning_id,
            idle.warning_id
        );
        let written: HashSet<String> = [idle.warning_id.clone()].into();
        assert!(monthly("2026-03-11", &[("busy", 3.5), ("idle", 0.5)], &written).is_empty());
        let april = monthly("2026-04-05", &[("busy", 2.0)], &written);
        let mut users: Vec<&str> = april.iter().map(|w| w.user_id.as_str()).collect();
        users.sort_unstable();
        assert_eq!(users, ["away", "idle"]);
        assert!(april.iter().all(|w| w.warning_id != idle.warning_id));
        // The first days of a month are not behind by an hour yet.
        assert!(monthly("2026-03-03", &[], &none).is_empty());
    }

    #[test]
    fn a_monthly_minimum_beyond_a_month_is_refused_with_its_key() {
        let bad = MONTHLY.replace("monthly_hours = 8", "monthly_hours = 800");
        let errs = Policy::parse(&bad).unwrap_err().join("\n");
        assert!(
            errs.contains("key `rule[0] (company).monthly_hours`: must be between 0 and 744"),
            "{errs}"
        );
    }
}
