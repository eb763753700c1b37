//! Who must learn how much: the employee roster, periods of leave, and credit policies that
//! differ by branch, role and level.
//!
//! - **Roster** (CSV `user_id,org_path,role,level,hired_on,left_on`; dates `YYYY-MM-DD`, all
//!   but `user_id` and `org_path` may be empty): who is expected to learn. Learners without
//!   any activity still get a progress record.
//! - **Leave** (CSV `user_id,kind,from,to`, inclusive dates, `kind` `leave` or `travel`): days
//!   taken off the year's target when the rule prorates.
//! - **Policy** (TOML, [`PolicyFile`]): rules matching an org subtree, a role and a level; the
//!   most specific rule wins: the deeper org path, then a rule naming the role, then one naming
//!   the level. Two rules with the same criteria are an error.
//!
//! The credit year runs in the policy's business time zone: a completion at
//! 2027-01-01 00:30 +08:00 counts for 2027 in `Asia/Shanghai`.

use std::collections::BTreeMap;
use std::path::Path;

use creditguard_contract::time::{days_from_civil, parse_day};
use serde::Deserialize;

use crate::{Error, Result};
use creditguard_lake::catalog::csv_records as parse_csv;

/// Categories a rule may set a minimum for (the catalog's categories).
pub const CATEGORIES: [&str; 3] = ["mandatory", "elective", "practice"];

/// One employee of the roster.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub user_id: String,
    /// `HQ/East/Shanghai/Sales`: the org unit and its ancestors.
    pub org_path: String,
    pub role: Option<String>,
    pub level: Option<String>,
    /// First and last day of employment (business-local dates as days since the epoch).
    pub hired_on: Option<i64>,
    pub left_on: Option<i64>,
    /// Inclusive periods of leave or travel: (from, to, kind).
    pub absences: Vec<(i64, i64, String)>,
}

/// The roster, by user id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    pub people: BTreeMap<String, Person>,
}

fn csv_rows(
    text: &str,
    columns: &[&str],
    required: usize,
) -> std::result::Result<Vec<(usize, Vec<String>)>, Vec<String>> {
    let rows = parse_csv(text).map_err(|e| vec![e])?;
    let mut rows = rows.into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(vec!["empty file, expected a header row".into()]);
    };
    let mut idx = Vec::new();
    let mut errs = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        match header.iter().position(|h| h.trim() == *name) {
            Some(p) => idx.push(Some(p)),
            None if i < required => {
                errs.push(format!(
                    "header lacks column `{name}` (has: {})",
                    header.join(",")
                ));
                idx.push(None);
            }
            None => idx.push(None),
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(rows
        .filter(|(_, r)| !(r.len() == 1 && r[0].trim().is_empty()))
        .map(|(line, r)| {
            let fields = idx
                .iter()
                .map(|i| {
                    i.and_then(|i| r.get(i))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default()
                })
                .collect();
            (line, fields)
        })
        .collect())
}

fn opt_day(line: usize, column: &str, v: &str, errs: &mut Vec<String>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    match parse_day(v) {
        Ok(d) => Some(d),
        Err(e) => {
            errs.push(format!("line {line}: `{column}` `{v}`: {e}"));
            None
        }
    }
}

fn opt(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_string())
}

impl Roster {
    /// Reads the roster and, if given, the leave file.
    pub fn load(roster: &Path, leave: Option<&Path>) -> Result<Roster> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| Error::Io {
                path: p.to_path_buf(),
                source,
            })
        };
        let leave_text = leave.map(read).transpose()?;
        Roster::parse(&read(roster)?, leave_text.as_deref()).map_err(|(file, errs)| {
            let path = if file == "leave" {
                leave.unwrap_or(roster)
            } else {
                roster
            };
            Error::Schema {
                path: path.to_path_buf(),
                msg: errs.join("; "),
            }
        })
    }

    /// Parses roster and leave CSV; an error names the file (`roster` or `leave`) and every bad
    /// line.
    pub fn parse(
        roster: &str,
        leave: Option<&str>,
    ) -> std::result::Result<Roster, (&'static str, Vec<String>)> {
        let cols = [
            "user_id", "org_path", "role", "level", "hired_on", "left_on",
        ];
        let rows = csv_rows(roster, &cols, 2).map_err(|e| ("roster", e))?;
        let mut errs = Vec::new();
        let mut people = BTreeMap::new();
        for (line, f) in rows {
            if f[0].is_empty() || f[1].is_empty() {
                errs.push(format!(
                    "line {line}: `user_id` and `org_path` are required"
                ));
                continue;
            }
            if f[1].starts_with('/') || f[1].ends_with('/') || f[1].contains("//") {
                errs.push(format!(
                    "line {line}: `org_path` `{}` must be units joined by `/`, like HQ/East/Sales",
                    f[1]
                ));
            }
            let hired_on = opt_day(line, "hired_on", &f[4], &mut errs);
            let left_on = opt_day(line, "left_on", &f[5], &mut errs);
            if let (Some(h), Some(l)) = (hired_on, left_on) {
                if l < h {
                    errs.push(format!("line {line}: `left_on` is before `hired_on`"));
                }
            }
            let p = Person {
                user_id: f[0].clone(),
                org_path: f[1].clone(),
                role: opt(&f[2]),
                level: opt(&f[3]),
                hired_on,
                left_on,
                absences: Vec::new(),
            };
            if people.insert(p.user_id.clone(), p).is_some() {
                errs.push(format!("line {line}: user_id `{}` appears twice", f[0]));
            }
        }
        if !errs.is_empty() {
            return Err(("roster", errs));
        }
        if let Some(text) = leave {
            let rows =
                csv_rows(text, &["user_id", "kind", "from", "to"], 4).map_err(|e| ("leave", e))?;
            for (line, f) in rows {
                let from = opt_day(line, "from", &f[2], &mut errs);
                let to = opt_day(line, "to", &f[3], &mut errs);
                if !matches!(f[1].as_str(), "leave" | "travel") {
                    errs.push(format!(
                        "line {line}: `kind` must be leave or travel, got `{}`",
                        f[1]
                    ));
                }
                let Some(person) = people.get_mut(&f[0]) else {
                    errs.push(format!(
                        "line {line}: user_id `{}` is not in the roster",
                        f[0]
                    ));
                    continue;
                };
                match (from, to) {
                    (Some(a), Some(b)) if a <= b => person.absences.push((a, b, f[1].clone())),
                    (Some(_), Some(_)) => errs.push(format!("line {line}: `to` is before `from`")),
                    _ => errs.push(format!("line {line}: `from` and `to` are required")),
                }
            }
            if !errs.is_empty() {
                return Err(("leave", errs));
            }
        }
        Ok(Roster { people })
    }

    pub fn get(&self, user_id: &str) -> Option<&Person> {
        self.people.get(user_id)
    }

    /// The roster keyed and identified by the lake's pseudonyms of its user ids (telemetry is
    /// pseudonymised at ingest; the roster is where real ids live).
    pub fn pseudonymised(self, pseudonym: impl Fn(&str) -> String) -> Roster {
        Roster {
            people: self
                .people
                .into_values()
                .map(|mut p| {
                    p.user_id = pseudonym(&p.user_id);
                    (p.user_id.clone(), p)
                })
                .collect(),
        }
    }

    /// Learners seen in telemetry (user, org unit) that the roster lacks, or whose org unit is
    /// neither the roster's org path nor its last unit. One issue per learner, sorted by user.
    pub fn issues<'a>(
        &self,
        seen: impl IntoIterator<Item = (&'a String, &'a Option<String>)>,
    ) -> Vec<RosterIssue> {
        let mut out: BTreeMap<&str, RosterIssue> = BTreeMap::new();
        for (user, org) in seen {
            if out.contains_key(user.as_str()) {
                continue;
            }
            let issue = match self.get(user) {
                None => Some("not_in_roster"),
                Some(p) => org
                    .as_deref()
                    .filter(|o| *o != p.org_path && p.org_path.rsplit('/').next() != Some(*o))
                    .map(|_| "org_unit_differs"),
            };
            if let Some(issue) = issue {
                out.insert(
                    user,
                    RosterIssue {
                        user_id: user.clone(),
                        issue,
                        telemetry_org_unit: org.clone(),
                        roster_org_path: self.get(user).map(|p| p.org_path.clone()),
                    },
                );
            }
        }
        out.into_values().collect()
    }
}

/// A disagreement between the roster and telemetry; the learner is still scored (a learner
/// missing from the roster is measured by the org unit of their telemetry).
#[derive(Debug, Clone, PartialEq)]
pub struct RosterIssue {
    pub user_id: String,
    /// `not_in_roster` or `org_unit_differs`.
    pub issue: &'static str,
    pub telemetry_org_unit: Option<String>,
    pub roster_org_path: Option<String>,
}

/// A rule's minimum for a category: credits, or a share of the target (`"40%"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "RawMinimum")]
pub enum Minimum {
    Credits(f64),
    Share(f64),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawMinimum {
    Number(f64),
    Text(String),
}

impl TryFrom<RawMinimum> for Minimum {
    type Error = String;

    fn try_from(raw: RawMinimum) -> std::result::Result<Minimum, String> {
        match raw {
            RawMinimum::Number(c) => Ok(Minimum::Credits(c)),
            RawMinimum::Text(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<f64>().ok())
                .filter(|v| (0.0..=100.0).contains(v))
                .map(|v| Minimum::Share(v / 100.0))
                .ok_or_else(|| {
                    format!("`{s}`: expected credits (a number) or a share such as \"40%\"")
                }),
        }
    }
}

impl Minimum {
    /// In credits, for a target.
    pub fn credits(self, target: f64) -> f64 {
        match self {
            Minimum::Credits(c) => c,
            Minimum::Share(s) => s * target,
        }
    }
}

/// One rule of a policy file (`[[rule]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// The org subtree it applies to (absent: everyone).
    #[serde(default)]
    pub org: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    /// Credits per credit year.
    pub target_credits: f64,
    /// Minimum per category (`mandatory`, `elective`, `practice`).
    #[serde(default)]
    pub minimum: BTreeMap<String, Minimum>,
    /// Minimum per course topic (the catalog's `topic` column), credits or shares like
    /// `minimum`.
    #[serde(default)]
    pub topics: BTreeMap<String, Minimum>,
    /// Scale the target (and minimums) by the share of the year the person is employed and not
    /// on leave or travel.
    #[serde(default = "yes")]
    pub prorate: bool,
    /// Minimum engaged hours per calendar month (`monthly_hours_low` reminders), prorated like
    /// the target; absent: none.
    #[serde(default)]
    pub monthly_hours: Option<f64>,
}

fn yes() -> bool {
    true
}

/// `[policy]` of a policy file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyHead {
    pub name: String,
    /// The business time zone of the credit year (default `Asia/Shanghai`).
    #[serde(default = "shanghai")]
    pub time_zone: String,
}

fn shanghai() -> String {
    "Asia/Shanghai".into()
}

/// `[earning]` of a policy file: how credits are earned beyond completing a course. Absent
/// settings leave completion as the only way.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Earning {
    /// A completion of a course with a quiz (catalog `quiz` `yes`) earns its credits only when
    /// the learner's best score on that course's quizzes up to the completion, in percent of the
    /// quiz's `max_score`, is at least this. Retakes are fine: the best score counts.
    #[serde(default)]
    pub quiz_pass_score: Option<f64>,
    /// Live sessions (catalog `kind` `live`) earn this many credits per engaged hour instead of
    /// credits on completion.
    #[serde(default)]
    pub live_credits_per_hour: Option<f64>,
    /// At most this many live-session credits per learner and business day.
    #[serde(default)]
    pub live_daily_cap: Option<f64>,
}

impl Earning {
    /// Every problem, each naming its key.
    fn problems(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if let Some(s) = self.quiz_pass_score.filter(|s| !(*s > 0.0 && *s <= 100.0)) {
            errs.push(format!(
                "key `earning.quiz_pass_score`: {s} must be a percentage of the quiz's maximum, above 0 and at most 100"
            ));
        }
        for (key, v) in [
            ("live_credits_per_hour", self.live_credits_per_hour),
            ("live_daily_cap", self.live_daily_cap),
        ] {
            if let Some(v) = v.filter(|v| !(*v > 0.0 && v.is_finite())) {
                errs.push(format!("key `earning.{key}`: {v} must be > 0"));
            }
        }
        if self.live_daily_cap.is_some() && self.live_credits_per_hour.is_none() {
            errs.push(
                "key `earning.live_daily_cap`: caps hourly accrual, which needs `earning.live_credits_per_hour`".into(),
            );
        }
        errs
    }
}

/// A policy file as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub policy: PolicyHead,
    #[serde(default)]
    pub earning: Earning,
    #[serde(default)]
    pub rule: Vec<Rule>,
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// The first 12 hex digits of the SHA-256 of the file's text: which text decided.
    pub version: String,
    pub time_zone: String,
    /// Offset of the business time zone from UTC, in microseconds.
    pub utc_offset_us: i64,
    pub earning: Earning,
    pub rules: Vec<Rule>,
}

/// The zone table and offsets are the contract's: the detectors' business days use them too.
pub use creditguard_contract::time::{utc_offset_minutes, FIXED_ZONES};

/// Problems of a rule's topic minimums: each ≥ 0 and together at most the target (a course has
/// one topic, so topic credits never count twice).
fn topic_problems(key: &str, r: &Rule) -> Vec<String> {
    let mut errs = Vec::new();
    let mut sum = 0.0;
    for (topic, m) in &r.topics {
        let c = m.credits(r.target_credits);
        if topic.trim().is_empty() {
            errs.push(format!("key `{key}.topics`: a topic name is empty"));
        }
        if !(c >= 0.0) {
            errs.push(format!("key `{key}.topics.{topic}`: must be ≥ 0"));
        }
        sum += c;
    }
    if sum > r.target_credits + 1e-9 {
        errs.push(format!(
            "key `{key}.topics`: the topic minimums add up to {sum}, more than target_credits {}",
            r.target_credits
        ));
    }
    errs
}

/// The rule's specificity: org depth, then role, then level.
fn specificity(r: &Rule) -> (usize, bool, bool) {
    (
        r.org.as_deref().map_or(0, |o| o.split('/').count()),
        r.role.is_some(),
        r.level.is_some(),
    )
}

/// `path` is `unit` or below it (`HQ/East` holds `HQ/East/Sales`, not `HQ/Eastern`).
pub(crate) fn in_subtree(path: &str, unit: &str) -> bool {
    path == unit || (path.starts_with(unit) && path[unit.len()..].starts_with('/'))
}

impl Policy {
    /// The company-wide policy of a pipeline without a policy file: `[score] target_credits` and
    /// `mandatory_credits` for everyone, in UTC, without proration (the behaviour before
    /// policies existed).
    pub fn global(target_credits: f64, mandatory_credits: f64) -> Policy {
        Policy {
            name: "score".into(),
            version: "global".into(),
            time_zone: "UTC".into(),
            utc_offset_us: 0,
            earning: Earning::default(),
            rules: vec![Rule {
                name: "everyone".into(),
                org: None,
                role: None,
                level: None,
                target_credits,
                minimum: [("mandatory".to_string(), Minimum::Credits(mandatory_credits))].into(),
                topics: BTreeMap::new(),
                prorate: false,
                monthly_hours: None,
            }],
        }
    }

    /// Reads and checks a policy file: every problem at once, each naming its key.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(&text).map_err(|errs| Error::Schema {
            path: path.to_path_buf(),
            msg: errs.join("; "),
        })
    }

    /// Checks policy text.
    pub fn parse(text: &str) -> std::result::Result<Policy, Vec<String>> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| vec![e.to_string().trim_end().to_string()])?;
        let mut errs = Vec::new();
        let utc_offset_us = match utc_offset_minutes(&file.policy.time_zone) {
            Ok(m) => m * 60_000_000,
            Err(e) => {
                errs.push(format!("key `policy.time_zone`: {e}"));
                0
            }
        };
        errs.extend(file.earning.problems());
        if file.rule.is_empty() {
            errs.push("key `rule`: a policy needs at least one `[[rule]]`".into());
        }
        for (i, r) in file.rule.iter().enumerate() {
            let key = format!("rule[{i}] ({})", r.name);
            if !(r.target_credits >= 0.0 && r.target_credits.is_finite()) {
                errs.push(format!("key `{key}.target_credits`: must be ≥ 0"));
            }
            let mut sum = 0.0;
            for (cat, m) in &r.minimum {
                if !CATEGORIES.contains(&cat.as_str()) {
                    errs.push(format!(
                        "key `{key}.minimum.{cat}`: unknown category, expected one of {}",
                        CATEGORIES.join(", ")
                    ));
                }
                let c = m.credits(r.target_credits);
                if !(c >= 0.0) {
                    errs.push(format!("key `{key}.minimum.{cat}`: must be ≥ 0"));
                }
                sum += c;
            }
            if let Some(h) = r.monthly_hours.filter(|h| !(0.0..=744.0).contains(h)) {
                errs.push(format!(
                    "key `{key}.monthly_hours`: must be between 0 and 744 (the hours of a month), got {h}"
                ));
            }
            if sum > r.target_credits + 1e-9 {
                errs.push(format!(
                    "key `{key}.minimum`: the minimums add up to {sum}, more than target_credits {}",
                    r.target_credits
                ));
            }
            errs.extend(topic_problems(&key, r));
            if let Some(o) = &r.org {
                if o.is_empty() || o.starts_with('/') || o.ends_with('/') || o.contains("//") {
                    errs.push(format!(
                        "key `{key}.org`: `{o}` must be units joined by `/`"
                    ));
                }
            }
            for (j, other) in file.rule.iter().enumerate().take(i) {
                if (&other.org, &other.role, &other.level) == (&r.org, &r.role, &r.level) {
                    errs.push(format!(
                        "key `{key}`: matches exactly whom rule[{j}] ({}) matches, with equal specificity",
                        other.name
                    ));
                }
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(text.as_bytes());
        Ok(Policy {
            name: file.policy.name,
            version: digest.iter().take(6).map(|b| format!("{b:02x}")).collect(),
            time_zone: file.policy.time_zone,
            utc_offset_us,
            earning: file.earning,
            rules: file.rule,
        })
    }

    /// Topic minimums naming a topic no course of the catalog has, one problem per rule and
    /// topic (such a minimum could never be met).
    pub fn unknown_topics(&self, catalog: &crate::Catalog) -> Vec<String> {
        let known = catalog.topics();
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            for topic in r.topics.keys().filter(|t| !known.contains(t.as_str())) {
                out.push(format!(
                    "key `rule[{i}] ({}).topics.{topic}`: no course of the catalog has topic `{topic}` (the catalog's topics: {})",
                    r.name,
                    if known.is_empty() {
                        "none; add a `topic` column".to_string()
                    } else {
                        known.iter().copied().collect::<Vec<_>>().join(", ")
                    }
                ));
            }
        }
        out
    }

    /// The rule that applies to a person, with why the others lost: `None` when no rule matches.
    pub fn rule_for(
        &self,
        org_path: &str,
        role: Option<&str>,
        level: Option<&str>,
    ) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| Self::matches(r, org_path, role, level))
            .max_by_key(|r| specificity(r))
    }

    fn matches(r: &Rule, org_path: &str, role: Option<&str>, level: Option<&str>) -> bool {
        r.org.as_deref().is_none_or(|o| in_subtree(org_path, o))
            && r.role.as_deref().is_none_or(|x| role == Some(x))
            && r.level.as_deref().is_none_or(|x| level == Some(x))
    }

    /// Every rule with whether it matches the person, most specific first: for `policy explain`.
    pub fn explain(&self, p: &Person) -> Vec<(&Rule, bool)> {
        let mut out: Vec<(&Rule, bool)> = self
            .rules
            .iter()
            .map(|r| {
                (
                    r,
                    Self::matches(r, &p.org_path, p.role.as_deref(), p.level.as_deref()),
                )
            })
            .collect();
        out.sort_by_key(|(r, m)| (std::cmp::Reverse(*m), std::cmp::Reverse(specificity(r))));
        out
    }

    /// The business-local date (days since the epoch) of a UTC instant.
    pub fn local_day(&self, utc_us: i64) -> i64 {
        (utc_us + self.utc_offset_us).div_euclid(creditguard_contract::time::DAY_US)
    }
}

/// What a rule asks of one person in one credit year, prorated.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub rule: String,
    pub credits: f64,
    /// Per category, in credits.
    pub minimum: BTreeMap<String, f64>,
    /// Per course topic, in credits.
    pub topics: BTreeMap<String, f64>,
    /// The share of the year the person is expected to learn (1 without proration).
    pub share_of_year: f64,
    /// The share of those expected days that have passed at the as-of day.
    pub elapsed: f64,
}

/// The key under which progress sums a topic's credits, apart from the category names.
pub fn topic_key(topic: &str) -> String {
    format!("topic:{topic}")
}

/// `Progress::topic_credits`: `topic=granted/minimum` per topic, sorted, joined by `;`.
pub fn format_topic_credits(topics: &[(String, f64, f64)]) -> Option<String> {
    let round = |v: f64| (v * 100.0).round() / 100.0;
    (!topics.is_empty()).then(|| {
        topics
            .iter()
            .map(|(t, got, min)| format!("{t}={}/{}", round(*got), round(*min)))
            .collect::<Vec<_>>()
            .join(";")
    })
}

/// Reads `Progress::topic_credits` back: (topic, granted, minimum); malformed parts are skipped.
pub fn parse_topic_credits(text: &str) -> Vec<(String, f64, f64)> {
    text.split(';')
        .filter_map(|part| {
            let (topic, nums) = part.rsplit_once('=')?;
            let (got, min) = nums.split_once('/')?;
            Some((topic.to_string(), got.parse().ok()?, min.parse().ok()?))
        })
        .collect()
}

/// Days of `[a, b]` inside `[lo, hi]`.
fn overlap(a: i64, b: i64, lo: i64, hi: i64) -> i64 {
    (b.min(hi) - a.max(lo) + 1).max(0)
}

/// Days of `[lo, hi]` the person is employed and not away.
pub(crate) fn working_days(p: Option<&Person>, lo: i64, hi: i64) -> i64 {
    let Some(p) = p else {
        return (hi - lo + 1).max(0);
    };
    let start = p.hired_on.map_or(lo, |h| h.max(lo));
    let end = p.left_on.map_or(hi, |l| l.min(hi));
    if end < start {
        return 0;
    }
    let mut away: Vec<(i64, i64)> = p
        .absences
        .iter()
        .map(|(a, b, _)| (*a.max(&start), *b.min(&end)))
        .filter(|(a, b)| a <= b)
        .collect();
    away.sort_unstable();
    // Overlapping absences count once.
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (a, b) in away {
        match merged.last_mut() {
            Some((_, e)) if a <= *e + 1 => *e = (*e).max(b),
            _ => merged.push((a, b)),
        }
    }
    let away: i64 = merged
        .iter()
        .map(|(a, b)| overlap(*a, *b, start, end))
        .sum();
    (end - start + 1 - away).max(0)
}

/// The target of a person (or of a learner missing from the roster, with the org unit seen in
/// telemetry) in the credit year `year`, as of the local day `as_of_day`.
pub fn target(rule: &Rule, person: Option<&Person>, year: i64, as_of_day: i64) -> Target {
    let jan1 = days_from_civil(year, 1, 1);
    let dec31 = days_from_civil(year + 1, 1, 1) - 1;
    let year_days = (dec31 - jan1 + 1) as f64;
    let person = if rule.prorate { person } else { None };
    let expected_days = working_days(person, jan1, dec31);
    let passed = working_days(person, jan1, as_of_day.min(dec31));
    let share_of_year = expected_days as f64 / year_days;
    let elapsed = if expected_days > 0 {
        passed as f64 / expected_days as f64
    } else {
        1.0
    };
    Target {
        rule: rule.name.clone(),
        credits: rule.target_credits * share_of_year,
        minimum: rule
            .minimum
            .iter()
            .map(|(c, m)| (c.clone(), m.credits(rule.target_credits) * share_of_year))
            .collect(),
        topics: rule
            .topics
            .iter()
            .map(|(t, m)| (t.clone(), m.credits(rule.target_credits) * share_of_year))
            .collect(),
        share_of_year,
        elapsed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[policy]
name = "credits"

[[rule]]
name = "company"
target_credits = 150
minimum = { mandatory = "40%", elective = 30 }

[[rule]]
name = "sales"
org = "HQ/South/Sales"
target_credits = 120

[[rule]]
name = "hq managers"
org = "HQ"
role = "manager"
target_credits = 150
minimum = { mandatory = 60 }
prorate = false
"#;

    fn person(org: &str, role: Option<&str>) -> Person {
        Person {
            user_id: "u".into(),
            org_path: org.into(),
            role: role.map(str::to_string),
            level: None,
            hired_on: None,
            left_on: None,
            absences: Vec::new(),
        }
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let p = Policy::parse(POLICY).unwrap();
        let rule =
            |org: &str, role: Option<&str>| p.rule_for(org, role, None).unwrap().name.clone();
        assert_eq!(rule("HQ/East", None), "company");
        assert_eq!(rule("HQ/South/Sales/Team1", None), "sales");
        assert_eq!(
            rule("HQ/South/Salesforce", None),
            "company",
            "a prefix is not a subtree"
        );
        assert_eq!(rule("HQ/East", Some("manager")), "hq managers");
        // The deeper org path outranks the role.
        assert_eq!(rule("HQ/South/Sales", Some("manager")), "sales");
        assert_eq!(rule("Branch2", Some("manager")), "company");
        let explained = p.explain(&person("HQ/East", Some("manager")));
        assert_eq!(explained[0].0.name, "hq managers");
        assert!(explained[0].1 && !explained.last().unwrap().1);
    }

    #[test]
    fn every_problem_is_named_with_its_key() {
        let bad = r#"
[policy]
name = "x"
time_zone = "Europe/Berlin"

[[rule]]
name = "a"
org = "HQ/"
target_credits = 10
minimum = { mandatory = 8, cooking = 1, elective = "30%" }

[[rule]]
name = "b"
org = "HQ/"
target_credits = -1
"#;
        let errs = Policy::parse(bad).unwrap_err().join("\n");
        for want in [
            "key `policy.time_zone`: time zone `Europe/Berlin`",
            "key `rule[0] (a).minimum.cooking`: unknown category",
            "key `rule[0] (a).minimum`: the minimums add up to 12",
            "key `rule[0] (a).org`: `HQ/` must be units",
            "key `rule[1] (b).target_credits`: must be ≥ 0",
            "key `rule[1] (b)`: matches exactly whom rule[0] (a) matches",
        ] {
            assert!(errs.contains(want), "missing `{want}` in:\n{errs}");
        }
        let share = Policy::parse("[policy]\nname='x'\n[[rule]]\nname='a'\ntarget_credits=1\nminimum={mandatory='140%'}\n");
        assert!(share.unwrap_err()[0].contains("share such as"));
    }

    #[test]
    fn proration_for_hiring_leaving_and_leave() {
        let p = Policy::parse(POLICY).unwrap();
        let company = &p.rules[0];
        let year = 2026;
        let day = |s: &str| parse_day(s).unwrap();
        let dec31 = day("2026-12-31");
        let full = target(company, Some(&person("HQ/East", None)), year, dec31);
        assert_eq!(full.credits, 150.0);
        assert_eq!(full.minimum["mandatory"], 60.0);
        assert_eq!(full.minimum["elective"], 30.0);
        let mut hired = person("HQ/East", None);
        hired.hired_on = Some(day("2026-07-02"));
        let t = target(company, Some(&hired), year, day("2026-09-30"));
        // 2 July – 31 December: 183 of 365 days.
        assert!((t.credits - 150.0 * 183.0 / 365.0).abs() < 1e-9, "{t:?}");
        assert!((t.elapsed - 91.0 / 183.0).abs() < 1e-9, "{t:?}");
        let mut away = person("HQ/East", None);
        away.left_on = Some(day("2026-06-30"));
        // Overlapping leave and travel count once: 1–20 March.
        away.absences = vec![
            (day("2026-03-01"), day("2026-03-15"), "leave".into()),
            (day("2026-03-10"), day("2026-03-20"), "travel".into()),
        ];
        let t = target(company, Some(&away), year, dec31);
        assert!(
            (t.credits - 150.0 * (181.0 - 20.0) / 365.0).abs() < 1e-9,
            "{t:?}"
        );
        assert_eq!(t.elapsed, 1.0);
        // A rule without proration asks the full target of everyone.
        let t = target(&p.rules[2], Some(&hired), year, dec31);
        assert_eq!(t.credits, 150.0);
    }

    #[test]
    fn the_credit_year_follows_the_business_time_zone() {
        let p = Policy::parse(POLICY).unwrap();
        assert_eq!(p.time_zone, "Asia/Shanghai");
        // 2027-01-01 00:30 +08:00 is 2026-12-31 16:30 UTC.
        let t = creditguard_contract::time::parse_rfc3339_us("2026-12-31T16:30:00Z").unwrap();
        assert_eq!(p.local_day(t), parse_day("2027-01-01").unwrap());
        assert_eq!(
            Policy::global(150.0, 50.0).local_day(t),
            parse_day("2026-12-31").unwrap()
        );
        assert_eq!(utc_offset_minutes("-05:30"), Ok(-330));
        assert!(utc_offset_minutes("America/New_York").is_err());
    }

    #[test]
    fn roster_and_leave_errors_name_the_line() {
        let r = Roster::parse(
            "user_id,org_path,role,level,hired_on,left_on\nu1,HQ/East,manager,L3,2026-02-01,\nu2,/HQ,,,,\nu1,HQ,,,2026-13-01,\n",
            None,
        )
        .unwrap_err();
        assert_eq!(r.0, "roster");
        let text = r.1.join("\n");
        assert!(text.contains("line 3: `org_path` `/HQ`"), "{text}");
        assert!(text.contains("line 4: `hired_on` `2026-13-01`"), "{text}");
        assert!(
            text.contains("line 4: user_id `u1` appears twice"),
            "{text}"
        );
        let ok = Roster::parse(
            "user_id,org_path\nu1,HQ/East\n",
            Some("user_id,kind,from,to\nu1,leave,2026-03-01,2026-03-05\n"),
        )
        .unwrap();
        assert_eq!(ok.get("u1").unwrap().absences.len(), 1);
        let bad = Roster::parse(
            "user_id,org_path\nu1,HQ/East\n",
            Some("user_id,kind,from,to\nu9,sick,2026-03-05,2026-03-01\n"),
        )
        .unwrap_err();
        assert_eq!(bad.0, "leave");
        let text = bad.1.join("\n");
        assert!(text.contains("`kind` must be leave or travel"), "{text}");
        assert!(text.contains("user_id `u9` is not in the roster"), "{text}");
    }
}
