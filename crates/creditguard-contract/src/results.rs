//! The results-v1 records (`flags`, `credits`, `cases`) and their Arrow schemas.
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
pub const DETECTORS: [&str; 6] = [
    "watch_time",
    "multi_login",
    "course_switching",
    "credit_burst",
    "quiz_speed",
    "shared_device",
];

/// Every rule name of results-v1 (`<detector>.<rule>`).
pub const RULES: [&str; 10] = [
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
    /// `granted` or `withheld`.
    pub status: String,
    pub flag_ids: Vec<String>,
}

/// One learner's review case for a period (`results/cases`).
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
    /// `open` or `below_threshold`.
    pub status: String,
}

/// One record of the results stream: a JSON object with `kind` = `flag`, `credit` or `case`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResultRecord {
    Flag(Flag),
    Credit(Credit),
    Case(Case),
}

impl ResultRecord {
    /// The Kafka key: the learner.
    pub fn user_id(&self) -> &str {
        match self {
            ResultRecord::Flag(f) => &f.user_id,
            ResultRecord::Credit(c) => &c.user_id,
            ResultRecord::Case(c) => &c.user_id,
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
        };
        let json = serde_json::to_string(&ResultRecord::Flag(f.clone())).unwrap();
        assert!(json.starts_with(r#"{"kind":"flag","flag_id":"#), "{json}");
        assert!(
            json.contains(r#""window_end":"1970-01-01T00:00:01.000000Z""#),
            "{json}"
        );
        let back: ResultRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ResultRecord::Flag(f));
    }
}
