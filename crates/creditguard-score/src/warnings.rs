//! Reminders for a notifier (`results/warnings`, stream kind `warning`): assigned courses due
//! soon or overdue, learners falling behind the pace of their target, departments where most
//! learners are behind. creditguard sends nothing itself; a scheduler reads the table or the
//! topic and sends each reminder once, by its `warning_id`.
//!
//! Each reminder is raised once per threshold crossing across daily runs: `due_soon` once per
//! (learner, course, due date, threshold), `overdue` once per (learner, course, due date),
//! `behind_pace` on the day a learner goes from on pace to behind (per category),
//! `department_lagging` at most once per department and week. Re-scoring a day gives the same
//! rows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use creditguard_contract::time::{civil_from_days, days_from_civil, format_day, parse_day};
use creditguard_contract::{stable_id, Credit, Warning};
use serde::{Deserialize, Serialize};

use crate::policy::{in_subtree, parse_topic_credits, topic_key, Policy, Roster};
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
    /// Ids of warnings written on earlier days of the year.
    pub emitted: &'a HashSet<String>,
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
        .filter(|c| c.status != "cancelled" && w.policy.local_day(c.completed_at) <= w.as_of_day)
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
}
