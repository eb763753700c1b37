//! `creditguard rules`: every rule with the thresholds a pipeline sets for it, how its severity
//! grows and the evidence its flags carry, from the rules' declaration
//! (`creditguard_detect::rules`).

use creditguard_detect::rules::{RuleSpec, RULES};
use creditguard_detect::JobsConfig;
use serde_json::{json, Value};

/// The value of `jobs.<key>` in `jobs`, as the pipeline file would spell it.
fn setting(jobs: &Value, key: &str) -> Value {
    key.split('.')
        .try_fold(jobs, |v, part| v.get(part))
        .cloned()
        .unwrap_or(Value::Null)
}

fn detector(rule: &RuleSpec) -> &'static str {
    rule.name.split('.').next().unwrap_or(rule.name)
}

/// The rules as JSON: `[{rule, enabled, thresholds: {key: value}, severity, evidence}]`.
pub fn to_json(cfg: &JobsConfig) -> Value {
    let jobs = serde_json::to_value(cfg).unwrap_or(Value::Null);
    Value::Array(
        RULES
            .iter()
            .map(|rule| {
                let thresholds: serde_json::Map<String, Value> = rule
                    .thresholds
                    .iter()
                    .map(|k| (format!("jobs.{k}"), setting(&jobs, k)))
                    .collect();
                json!({
                    "rule": rule.name,
                    "enabled": cfg.is_enabled(detector(rule)),
                    "thresholds": thresholds,
                    "severity": rule.severity,
                    "evidence": rule.evidence,
                })
            })
            .collect(),
    )
}

/// The rules as text for a terminal: a block per rule.
pub fn render(cfg: &JobsConfig) -> String {
    let jobs = serde_json::to_value(cfg).unwrap_or(Value::Null);
    let mut out = String::new();
    for rule in &RULES {
        let state = if cfg.is_enabled(detector(rule)) {
            ""
        } else {
            "  (detector not enabled)"
        };
        let thresholds: Vec<String> = rule
            .thresholds
            .iter()
            .map(|k| format!("jobs.{k} = {}", setting(&jobs, k)))
            .collect();
        out.push_str(&format!(
            "{}{state}\n  thresholds  {}\n  severity    {}\n  evidence    {}\n",
            rule.name,
            thresholds.join(", "),
            rule.severity,
            rule.evidence.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_threshold_shows_the_pipelines_value() {
        let mut cfg = JobsConfig::default();
        cfg.course_switching.min_changes = 9;
        let text = render(&cfg);
        assert!(
            text.contains("jobs.course_switching.min_changes = 9"),
            "{text}"
        );
        let rules = to_json(&cfg);
        let rules = rules.as_array().unwrap();
        assert_eq!(rules.len(), RULES.len());
        for r in rules {
            for (key, value) in r["thresholds"].as_object().unwrap() {
                assert!(!value.is_null(), "{key} has no value");
            }
        }
    }
}
