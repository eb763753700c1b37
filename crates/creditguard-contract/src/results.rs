//! The results-v1 records (`flags`, `credits`, `cases`, `decisions`, `rule_feedback`) and their
//! Arrow schemas.
//!
//! Extensions since the first results-v1 text, all compatible (new optional fields, new values,
//! new record kinds; nothing renamed or removed):
//! - `credits.status` gains `released` (a reviewer dismissed the case that withheld it: granted)
//!   and `cancelled` (a reviewer confirmed it: never granted);
//! - `cases` are review cases that live across runs (one per learner episode, id stable across
//!   re-scores), with the lifecycle statuses of [`CASE_STATUSES`] and the optional fields
//!   `previous_case_id` (the learner's earlier case) and `assignee`;
//! - the `decisions` table and the stream kinds `case_decision`, `credit_released`,
//!   `credit_cancelled` ([`Decision`], [`CreditDecision`]);
//! - the `rule_feedback` table ([`RuleFeedback`]);
//! - the `warnings` table and the stream kind `warning` ([`Warning`], [`WARNING_REASONS`]):
//!   reminders for a notifier, each with an id that stays the same for the same reminder;
//! - the stream kind `progress` ([`Progress`], the rows of `results/progress`): each learner's
//!   standing against their yearly target, on the last day of each scored period;
//! - the optional fields `rules_version` and `rules_name` of `flags` and `credits`, and
//!   `policy_version` of `credits`: which thresholds (and credit policy) produced the record
//!   ([`Flag::rules_version`], [`Credit::rules_version`]). Files and records written before them
//!   read with the fields absent.
//! - the optional stream field `employee_id` ([`StreamRecord`]): the learner's real id beside the
//!   pseudonym in `user_id`, on the results topic and `--emit ndjson` only, with
//!   `[results] identify = true`; never in the tables.
//!
//! The same records go to the result tables (Parquet) and to the results stream (one JSON object
//! per record, with `kind`). Timestamps are UTC microseconds in memory and in Parquet, RFC 3339
//! strings in JSON.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::schema::ts_type;

/// Every detector name of results-v1.
pub const DETECTORS: [&str; 8] = [
    "watch_time",
    "multi_login",
    "course_switching",
    "credit_burst",
    "quiz_speed",
    "shared_device",
    "automation",
    "proxy_learning",
];

/// Every rule name of results-v1 (`<detector>.<rule>`).
pub const RULES: [&str; 17] = [
    "watch_time.background_playback",
    "watch_time.speed",
    "watch_time.low_coverage",
    "multi_login.concurrent_sessions",
    "multi_login.impossible_travel",
    "course_switching.rapid_switching",
    "course_switching.parallel_playback",
    "credit_burst.poisson_tail",
    "quiz_speed.too_fast",
    "shared_device.many_accounts",
    "automation.unbroken_play",
    "automation.timer_cadence",
    "automation.no_input",
    "automation.missed_checks",
    "automation.machine_responses",
    "proxy_learning.borrowed_device",
    "proxy_learning.alternating_accounts",
];

/// A deterministic id: the first 128 bits of SHA-256 over the parts, hex. The parts are
/// separated by a unit separator so `("ab","c")` and `("a","bc")` differ.
///
/// ```
/// let a = creditguard_contract::stable_id(&["watch_time.speed", "u1", "2026-03-02"]);
/// assert_eq!(a.len(), 32);
/// assert_eq!(a, creditguard_contract::stable_id(&["watch_time.speed", "u1", "2026-03-02"]));
/// assert_ne!(a, creditguard_contract::stable_id(&["watch_time.speed", "u12026-03-02"]));
/// ```
pub fn stable_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

mod ts_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::format_rfc3339_us(*v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::time::parse_rfc3339_us(&s).map_err(serde::de::Error::custom)
    }
}

/// One suspicious pattern found (`results/flags`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    pub flag_id: String,
    pub run_id: String,
    pub detector: String,
    pub rule: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    pub course_id: Option<String>,
    #[serde(with = "ts_json")]
    pub window_start: i64,
    #[serde(with = "ts_json")]
    pub window_end: i64,
    pub severity: f64,
    /// A JSON object: the measured values and the thresholds they crossed.
    pub evidence: String,
    pub explanation: String,
    /// The version of the detector thresholds that raised the flag: the first 12 hex digits of
    /// the SHA-256 of the detectors' effective settings (`[jobs.<detector>]` sections), so a flag
    /// can be traced to the settings that produced it. Absent in flags written before versions.
    #[serde(default)]
    pub rules_version: Option<String>,
    /// The name the pipeline gives those settings (its `[pipeline] name`).
    #[serde(default)]
    pub rules_name: Option<String>,
}

/// One credit claim judged (`results/credits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credit {
    pub credit_id: String,
    pub run_id: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    pub course_id: String,
    pub category: String,
    #[serde(with = "ts_json")]
    pub completed_at: i64,
    pub credits_claimed: f64,
    pub credits_granted: f64,
    /// `granted`, `withheld` (pending review), `released` (a reviewer dismissed the flags:
    /// granted) or `cancelled` (a reviewer confirmed them: not granted).
    pub status: String,
    pub flag_ids: Vec<String>,
    /// The version of the thresholds the claim was decided under: the first 12 hex digits of
    /// the SHA-256 of the detector thresholds' version and the scorer's decision settings
    /// (`[score]` weights, thresholds, linking and lookback). A re-score under another version
    /// keeps a decided claim's record (see the scorer). Absent in records written before versions.
    #[serde(default)]
    pub rules_version: Option<String>,
    /// The name the pipeline gives those settings (its `[pipeline] name`).
    #[serde(default)]
    pub rules_name: Option<String>,
    /// The credit policy's version (as `Progress::policy_version`; `global` without a policy).
    #[serde(default)]
    pub policy_version: Option<String>,
}

/// Every value of `Case::status`: `below_threshold` (flags whose combined risk opens no case),
/// then the review lifecycle.
pub const CASE_STATUSES: [&str; 8] = [
    "below_threshold",
    "open",
    "in_review",
    "needs_info",
    "confirmed",
    "dismissed",
    "partially_confirmed",
    "appealed",
];

/// Whether a case status means the case waits for a reviewer (`open`, `in_review`,
/// `needs_info`, `appealed`).
pub fn case_awaits_review(status: &str) -> bool {
    matches!(status, "open" | "in_review" | "needs_info" | "appealed")
}

/// Every value of `Credit::status`.
pub const CREDIT_STATUSES: [&str; 4] = ["granted", "withheld", "released", "cancelled"];

/// A learner's review case as of a scoring run (`results/cases`, partition = the run's last day).
/// A case is one suspected episode: it lives across runs in the review database, and its id is
/// stable across re-scores of the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub case_id: String,
    pub run_id: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    #[serde(with = "ts_json")]
    pub period_start: i64,
    #[serde(with = "ts_json")]
    pub period_end: i64,
    pub risk: f64,
    pub flag_ids: Vec<String>,
    pub detectors: Vec<String>,
    pub credits_withheld: f64,
    /// One of [`CASE_STATUSES`].
    pub status: String,
    /// The learner's case before this one (a repeat after a decision, or after a quiet gap).
    #[serde(default)]
    pub previous_case_id: Option<String>,
    /// The reviewer working the case.
    #[serde(default)]
    pub assignee: Option<String>,
}

/// A reviewer's decision on a case (`results/decisions`, partition = day of `decided_at`;
/// stream kind `case_decision`). A decision after an appeal supersedes the earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `stable_id(case_id, decided_at)`.
    pub decision_id: String,
    pub case_id: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    /// `confirmed`, `dismissed` or `partially_confirmed`.
    pub decision: String,
    pub reviewer: String,
    pub reason: String,
    #[serde(with = "ts_json")]
    pub decided_at: i64,
    pub released_credit_ids: Vec<String>,
    pub cancelled_credit_ids: Vec<String>,
    pub credits_released: f64,
    pub credits_cancelled: f64,
    /// The case's flags the decision covers.
    pub flag_ids: Vec<String>,
    /// The decision this one replaces (after an appeal).
    pub supersedes: Option<String>,
}

/// One claim released or cancelled by a decision (stream kinds `credit_released` and
/// `credit_cancelled`): what the learning platform books.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditDecision {
    pub credit_id: String,
    pub decision_id: String,
    pub case_id: String,
    pub user_id: String,
    pub course_id: String,
    #[serde(with = "ts_json")]
    pub completed_at: i64,
    /// Credits granted (released) or taken away for good (cancelled).
    pub credits: f64,
    #[serde(with = "ts_json")]
    pub decided_at: i64,
}

/// Reviewers' verdicts on one rule's flags in one org unit (`results/rule_feedback`): precision
/// as reviewers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleFeedback {
    pub rule: String,
    pub org_unit: Option<String>,
    /// Flags in confirmed cases (in a partially confirmed case: flags behind a cancelled claim,
    /// or behind no claim).
    pub confirmed: i64,
    /// Flags in dismissed cases (in a partially confirmed case: flags behind released claims only).
    pub dismissed: i64,
    /// Flags in cases not decided yet.
    pub pending: i64,
    /// `confirmed / (confirmed + dismissed)`; absent before the first decision.
    pub confirmed_share: Option<f64>,
    #[serde(with = "ts_json")]
    pub as_of: i64,
}

/// The reasons of a [`Warning`].
pub const WARNING_REASONS: [&str; 5] = [
    "due_soon",
    "overdue",
    "behind_pace",
    "department_lagging",
    "monthly_hours_low",
];

/// A reminder for a notifier (DingTalk, WeCom, e-mail; creditguard sends nothing itself):
/// `results/warnings` and stream kind `warning`. `warning_id` is stable: the same reminder (a
/// learner, a reason and its threshold) has the same id on every run, and each is written once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    pub warning_id: String,
    pub run_id: String,
    /// One of [`WARNING_REASONS`].
    pub reason: String,
    /// Who it is for: the learner, or for `department_lagging` the department's manager (the
    /// org path when the roster names no manager there).
    pub user_id: String,
    pub org_unit: Option<String>,
    /// `due_soon`, `overdue`: the assigned course.
    pub course_id: Option<String>,
    /// `behind_pace`: `total` or the category (`mandatory`, `elective`, `practice`).
    pub category: Option<String>,
    /// `due_soon`, `overdue`: the due date, `YYYY-MM-DD` in the business time zone;
    /// `monthly_hours_low`: the month's last day.
    pub due_on: Option<String>,
    /// `due_soon`: days left (the threshold crossed is the smallest configured one ≥ this);
    /// `overdue`: negative; `monthly_hours_low`: days left in the month.
    pub days_left: Option<i64>,
    /// `behind_pace`: credits short of the pace; `department_lagging`: share of the department's
    /// learners behind; `monthly_hours_low`: engaged hours short of the month's pace.
    pub value: Option<f64>,
    /// The reminder in English and in Chinese.
    pub message: String,
    pub message_zh: String,
    /// End of the scored day the warning was raised on, UTC µs.
    #[serde(with = "ts_json")]
    pub as_of: i64,
}

/// Arrow schema of `results/warnings`.
pub fn warnings_schema() -> SchemaRef {
    use DataType::{Float64, Int64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("warning_id", Utf8, false),
        Field::new("run_id", Utf8, false),
        Field::new("reason", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("course_id", Utf8, true),
        Field::new("category", Utf8, true),
        Field::new("due_on", Utf8, true),
        Field::new("days_left", Int64, true),
        Field::new("value", Float64, true),
        Field::new("message", Utf8, false),
        Field::new("message_zh", Utf8, false),
        Field::new("as_of", ts_type(), false),
    ]))
}

/// One learner's progress towards the yearly target (`results/progress`, stream kind
/// `progress`), as of a day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// `stable_id(user_id, year, as_of day)`.
    pub progress_id: String,
    pub run_id: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    pub year: i32,
    /// End of the day the progress is measured at (exclusive), UTC µs.
    #[serde(with = "ts_json")]
    pub as_of: i64,
    /// Granted this year, each course counted once.
    pub credits_granted: f64,
    /// Waiting for a reviewer this year.
    pub credits_withheld: f64,
    pub mandatory_granted: f64,
    pub mandatory_withheld: f64,
    pub target_credits: f64,
    pub mandatory_target: f64,
    /// The pro-rata target at `as_of`: target × elapsed share of the year.
    pub expected_by_now: f64,
    /// `credits_granted / target_credits`.
    pub share_of_target: f64,
    /// `mandatory_granted / mandatory_target` (1 when no mandatory target).
    pub mandatory_share: f64,
    /// `complete` (targets reached), `on_track` (at or above the pro-rata pace on the total and
    /// every category minimum), `at_risk` (below pace, but on pace if the withheld credits are
    /// released: depends on a review), `behind` (below pace even counting withheld credits).
    pub status: String,
    pub elective_granted: f64,
    /// The rule's elective minimum (0 when it sets none).
    pub elective_target: f64,
    pub practice_granted: f64,
    pub practice_target: f64,
    /// `policy name/rule name` of the rule the learner was measured against.
    pub policy_rule: Option<String>,
    /// The policy text's version (the first 12 hex digits of its SHA-256; `global` for the
    /// `[score]` defaults).
    pub policy_version: Option<String>,
    /// The rule's minimums per course topic: `topic=granted/minimum` (credits, the minimum
    /// prorated like the target) joined by `;`, sorted by topic, e.g. `management=12.5/20`;
    /// `None` when the rule sets none. Absent from older records.
    #[serde(default)]
    pub topic_credits: Option<String>,
}

/// One record of the results stream: a JSON object with `kind` (`flag`, `credit`, `case`,
/// `warning`, `progress`, and the decision kinds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultRecord {
    Flag(Flag),
    Credit(Credit),
    Case(Case),
    CaseDecision(Decision),
    CreditReleased(CreditDecision),
    CreditCancelled(CreditDecision),
    Warning(Warning),
    Progress(Progress),
}

impl ResultRecord {
    /// The Kafka key: the learner.
    pub fn user_id(&self) -> &str {
        match self {
            ResultRecord::Flag(f) => &f.user_id,
            ResultRecord::Credit(c) => &c.user_id,
            ResultRecord::Case(c) => &c.user_id,
            ResultRecord::CaseDecision(d) => &d.user_id,
            ResultRecord::CreditReleased(c) | ResultRecord::CreditCancelled(c) => &c.user_id,
            ResultRecord::Warning(w) => &w.user_id,
            ResultRecord::Progress(p) => &p.user_id,
        }
    }
}

/// A results-stream record as the results topic and `--emit ndjson` carry it: the record, and
/// with `[results] identify = true` the learner's real id (`employee_id`, from the roster) for
/// the platform that books credits. Absent when identification is off or the roster lacks the
/// learner; a consumer reading [`ResultRecord`] ignores it. The tables never hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    #[serde(flatten)]
    pub record: ResultRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
}

impl From<ResultRecord> for StreamRecord {
    fn from(record: ResultRecord) -> StreamRecord {
        StreamRecord {
            record,
            employee_id: None,
        }
    }
}

fn list_of_strings() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// Arrow schema of `results/flags`.
pub fn flags_schema() -> SchemaRef {
    use DataType::{Float64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("flag_id", Utf8, false),
        Field::new("run_id", Utf8, false),
        Field::new("detector", Utf8, false),
        Field::new("rule", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("course_id", Utf8, true),
        Field::new("window_start", ts_type(), false),
        Field::new("window_end", ts_type(), false),
        Field::new("severity", Float64, false),
        Field::new("evidence", Utf8, false),
        Field::new("explanation", Utf8, false),
        Field::new("rules_version", Utf8, true),
        Field::new("rules_name", Utf8, true),
    ]))
}

/// Arrow schema of `results/credits`.
pub fn credits_schema() -> SchemaRef {
    use DataType::{Float64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("credit_id", Utf8, false),
        Field::new("run_id", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("course_id", Utf8, false),
        Field::new("category", Utf8, false),
        Field::new("completed_at", ts_type(), false),
        Field::new("credits_claimed", Float64, false),
        Field::new("credits_granted", Float64, false),
        Field::new("status", Utf8, false),
        Field::new("flag_ids", list_of_strings(), false),
        Field::new("rules_version", Utf8, true),
        Field::new("rules_name", Utf8, true),
        Field::new("policy_version", Utf8, true),
    ]))
}

/// Arrow schema of `results/cases`.
pub fn cases_schema() -> SchemaRef {
    use DataType::{Float64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("case_id", Utf8, false),
        Field::new("run_id", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("period_start", ts_type(), false),
        Field::new("period_end", ts_type(), false),
        Field::new("risk", Float64, false),
        Field::new("flag_ids", list_of_strings(), false),
        Field::new("detectors", list_of_strings(), false),
        Field::new("credits_withheld", Float64, false),
        Field::new("status", Utf8, false),
        Field::new("previous_case_id", Utf8, true),
        Field::new("assignee", Utf8, true),
    ]))
}

/// Arrow schema of `results/decisions`.
pub fn decisions_schema() -> SchemaRef {
    use DataType::{Float64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("decision_id", Utf8, false),
        Field::new("case_id", Utf8, false),
        Field::new("user_id", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("decision", Utf8, false),
        Field::new("reviewer", Utf8, false),
        Field::new("reason", Utf8, false),
        Field::new("decided_at", ts_type(), false),
        Field::new("released_credit_ids", list_of_strings(), false),
        Field::new("cancelled_credit_ids", list_of_strings(), false),
        Field::new("credits_released", Float64, false),
        Field::new("credits_cancelled", Float64, false),
        Field::new("flag_ids", list_of_strings(), false),
        Field::new("supersedes", Utf8, true),
    ]))
}

/// Arrow schema of `results/rule_feedback`.
pub fn rule_feedback_schema() -> SchemaRef {
    use DataType::{Float64, Int64, Utf8};
    Arc::new(Schema::new(vec![
        Field::new("rule", Utf8, false),
        Field::new("org_unit", Utf8, true),
        Field::new("confirmed", Int64, false),
        Field::new("dismissed", Int64, false),
        Field::new("pending", Int64, false),
        Field::new("confirmed_share", Float64, true),
        Field::new("as_of", ts_type(), false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_record_has_kind_and_rfc3339_times() {
        let f = Flag {
            flag_id: stable_id(&["r", "u"]),
            run_id: "run1".into(),
            detector: "quiz_speed".into(),
            rule: "quiz_speed.too_fast".into(),
            user_id: "u1".into(),
            org_unit: None,
            course_id: Some("c1".into()),
            window_start: 0,
            window_end: 1_000_000,
            severity: 0.9,
            evidence: "{}".into(),
            explanation: "x".into(),
            rules_version: Some("0123456789ab".into()),
            rules_name: None,
        };
        let json = serde_json::to_string(&ResultRecord::Flag(f.clone())).unwrap();
        assert!(json.starts_with(r#"{"kind":"flag","flag_id":"#), "{json}");
        assert!(
            json.contains(r#""window_end":"1970-01-01T00:00:01.000000Z""#),
            "{json}"
        );
        let back: ResultRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ResultRecord::Flag(f.clone()));

        // A record written before versions (no `rules_version`) still reads.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        let obj = old.as_object_mut().unwrap();
        obj.remove("rules_version");
        obj.remove("rules_name");
        let back: ResultRecord = serde_json::from_value(old).unwrap();
        assert_eq!(
            back,
            ResultRecord::Flag(Flag {
                rules_version: None,
                ..f.clone()
            })
        );
        // `employee_id` is an optional extension: absent unless set, ignored by ResultRecord.
        let plain = StreamRecord::from(ResultRecord::Flag(f.clone()));
        assert_eq!(serde_json::to_string(&plain).unwrap(), json);
        let named = StreamRecord {
            employee_id: Some("E-1001".into()),
            ..plain
        };
        let text = serde_json::to_string(&named).unwrap();
        assert!(
            text.starts_with(r#"{"kind":"flag","flag_id":"#)
                && text.ends_with(r#","employee_id":"E-1001"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<StreamRecord>(&text).unwrap(), named);
        assert_eq!(
            serde_json::from_str::<ResultRecord>(&text).unwrap(),
            ResultRecord::Flag(f)
        );
    }
}
