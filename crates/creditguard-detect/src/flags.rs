//! Turning measured rows into results-v1 flags: ids, severities, evidence, explanations, and the
//! flags as a polars frame for callers that want one (the table itself is
//! `creditguard_lake::flags`).

use creditguard_contract::time::format_rfc3339_us;

// The sentence helpers live with the explanation catalog; re-exported for detectors that word
// their own flags.
pub(crate) use crate::explain::{date, dur, dur_zh, hhmm};
use creditguard_contract::{stable_id, Flag};
use polars::prelude::*;
use serde_json::{Map, Value};

/// A flag before it gets its id and run.
pub(crate) struct Draft {
    pub rule: &'static str,
    pub user_id: String,
    pub org_unit: Option<String>,
    pub course_id: Option<String>,
    pub window_start: i64,
    pub window_end: i64,
    pub severity: f64,
    /// What distinguishes this flag from another of the same rule, user and start (a course, a
    /// session pair, a device…): part of the id.
    pub key: String,
    pub evidence: Map<String, Value>,
    pub en: String,
    pub zh: String,
}

impl Draft {
    pub fn finish(mut self) -> Flag {
        #[cfg(test)]
        crate::rules::check_evidence(self.rule, &self.evidence);
        let start = format_rfc3339_us(self.window_start);
        let flag_id = stable_id(&[self.rule, &self.user_id, &start, &self.key]);
        self.evidence
            .insert("explanation_zh".into(), Value::String(self.zh));
        let detector = self.rule.split('.').next().unwrap_or(self.rule).to_string();
        Flag {
            flag_id,
            run_id: String::new(),
            detector,
            rule: self.rule.to_string(),
            user_id: self.user_id,
            org_unit: self.org_unit,
            course_id: self.course_id,
            window_start: self.window_start,
            window_end: self.window_end,
            severity: clamp_severity(self.severity),
            evidence: Value::Object(self.evidence).to_string(),
            explanation: self.en,
            rules_version: None,
            rules_name: None,
        }
    }
}

/// Severity in (0, 1]: 0.5 at the threshold, rising linearly to 1 when `excess` (how far past the
/// threshold, as a share of the distance to the extreme) reaches 1. 0.5 at the threshold is the
/// scorer's review threshold: a flag that just crosses one rule alone is worth a look, not more.
pub(crate) fn ramp(excess: f64) -> f64 {
    clamp_severity(0.5 + 0.5 * excess.clamp(0.0, 1.0))
}

pub(crate) fn clamp_severity(s: f64) -> f64 {
    if s.is_nan() {
        0.5
    } else {
        s.clamp(0.01, 1.0)
    }
}

/// Rounds to 3 decimals for evidence (stable JSON, readable numbers).
pub(crate) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Sorts flags into their table order: rule, user, window start, id.
pub(crate) fn sort(flags: &mut [Flag]) {
    flags.sort_by(|a, b| {
        (
            a.rule.as_str(),
            a.user_id.as_str(),
            a.window_start,
            a.flag_id.as_str(),
        )
            .cmp(&(
                b.rule.as_str(),
                b.user_id.as_str(),
                b.window_start,
                b.flag_id.as_str(),
            ))
    });
}

/// Typed column accessors over a collected frame, for turning candidate rows into flags.
pub(crate) struct Rows<'a>(pub &'a DataFrame);

impl<'a> Rows<'a> {
    pub fn str(&self, name: &str) -> PolarsResult<&'a StringChunked> {
        self.0.column(name)?.str()
    }
    pub fn f64(&self, name: &str) -> PolarsResult<&'a Float64Chunked> {
        self.0.column(name)?.f64()
    }
    pub fn i64(&self, name: &str) -> PolarsResult<&'a Int64Chunked> {
        self.0.column(name)?.i64()
    }
    pub fn list(&self, name: &str) -> PolarsResult<&'a ListChunked> {
        self.0.column(name)?.list()
    }
    pub fn len(&self) -> usize {
        self.0.height()
    }
}

/// The strings of one list cell (nulls skipped).
pub(crate) fn list_strings(l: &ListChunked, i: usize) -> Vec<String> {
    match l.get_as_series(i) {
        Some(s) => match s.str() {
            Ok(ca) => (0..ca.len())
                .filter_map(|i| ca.get(i))
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    }
}

/// Flags as a polars frame in the results-v1 columns (timestamps as Datetime µs UTC).
pub fn flags_frame(flags: &[Flag]) -> PolarsResult<DataFrame> {
    let s = |name: &str, f: &dyn Fn(&Flag) -> &str| {
        Column::new(name.into(), flags.iter().map(f).collect::<Vec<_>>())
    };
    let o = |name: &str, f: &dyn Fn(&Flag) -> Option<&str>| {
        Column::new(name.into(), flags.iter().map(f).collect::<Vec<_>>())
    };
    let ts = |name: &str, f: &dyn Fn(&Flag) -> i64| -> PolarsResult<Column> {
        Column::new(name.into(), flags.iter().map(f).collect::<Vec<_>>()).cast(&DataType::Datetime(
            TimeUnit::Microseconds,
            Some(TimeZone::UTC),
        ))
    };
    DataFrame::new_infer_height(vec![
        s("flag_id", &|f| &f.flag_id),
        s("run_id", &|f| &f.run_id),
        s("detector", &|f| &f.detector),
        s("rule", &|f| &f.rule),
        s("user_id", &|f| &f.user_id),
        o("org_unit", &|f| f.org_unit.as_deref()),
        o("course_id", &|f| f.course_id.as_deref()),
        ts("window_start", &|f| f.window_start)?,
        ts("window_end", &|f| f.window_end)?,
        Column::new(
            "severity".into(),
            flags.iter().map(|f| f.severity).collect::<Vec<_>>(),
        ),
        s("evidence", &|f| &f.evidence),
        s("explanation", &|f| &f.explanation),
    ])
}
