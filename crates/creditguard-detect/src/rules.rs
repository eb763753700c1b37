//! The rules, declared: for each, the pipeline keys of its thresholds, how its severity grows, and
//! the evidence every one of its flags carries. The detectors measure and apply these; the
//! explanation of each rule is in [`crate::explain`].
//!
//! Tests hold the declaration to the code: the rule names are results-v1's, every threshold key
//! is a key of `[jobs]`, and every flag a detector raises in the unit tests carries exactly the
//! evidence declared for its rule (checked when a draft flag is finished).

/// One rule of results-v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSpec {
    /// `<detector>.<rule>`.
    pub name: &'static str,
    /// Keys under `[jobs]` of the settings that decide whether the rule fires.
    pub thresholds: &'static [&'static str],
    /// How the severity in (0, 1] is computed: 0.5 at the threshold, up to 1 far past it.
    pub severity: &'static str,
    /// The keys of the flag's `evidence` object (besides `explanation_zh`, which every flag has).
    pub evidence: &'static [&'static str],
}

/// Every rule, in results-v1 order.
pub const RULES: [RuleSpec; 17] = [
    RuleSpec {
        name: "watch_time.background_playback",
        thresholds: &["watch_time.hidden_share", "watch_time.min_play_s"],
        severity: "ramp of the hidden share past the threshold, weighted up with play time",
        evidence: &[
            "play_s",
            "hidden_s",
            "engaged_s",
            "muted_s",
            "hidden_share",
            "max_lesson_hidden_share",
            "lessons",
            "threshold_hidden_share",
            "threshold_min_play_s",
        ],
    },
    RuleSpec {
        name: "watch_time.speed",
        thresholds: &[
            "watch_time.max_rate",
            "watch_time.rate_tolerance",
            "watch_time.min_fast_s",
        ],
        severity: "ramp of the fastest rate past the threshold, weighted up with fast time",
        evidence: &[
            "fast_s",
            "max_rate",
            "play_s",
            "lessons",
            "threshold_rate",
            "rate_tolerance",
            "threshold_fast_s",
        ],
    },
    RuleSpec {
        name: "watch_time.low_coverage",
        thresholds: &[
            "watch_time.default_min_watch_ratio",
            "watch_time.coverage_lookback_days",
        ],
        severity: "ramp of the missing share of the required coverage",
        evidence: &[
            "covered_s",
            "duration_s",
            "duration_source",
            "covered_ratio",
            "lessons_watched",
            "threshold_min_watch_ratio",
            "lookback_days",
            "completion_event_id",
        ],
    },
    RuleSpec {
        name: "multi_login.concurrent_sessions",
        thresholds: &[
            "multi_login.min_overlap_s",
            "multi_login.require_different_network",
        ],
        severity: "ramp of the overlap past the threshold (1 at 31 × the threshold)",
        evidence: &[
            "overlap_s",
            "sessions",
            "devices",
            "ips",
            "networks",
            "threshold_s",
            "require_different_network",
        ],
    },
    RuleSpec {
        name: "multi_login.impossible_travel",
        thresholds: &[
            "multi_login.max_speed_kmh",
            "multi_login.min_distance_km",
            "multi_login.min_interval_s",
        ],
        severity: "ramp of the fastest jump's speed past the threshold (1 at 5 × the threshold)",
        evidence: &[
            "hops",
            "max_speed_kmh",
            "distance_km",
            "seconds_between",
            "fastest_hop",
            "threshold_kmh",
            "min_distance_km",
        ],
    },
    RuleSpec {
        name: "course_switching.rapid_switching",
        thresholds: &[
            "course_switching.min_changes",
            "course_switching.window_s",
            "course_switching.count_working_visits",
            "course_switching.work_event_types",
        ],
        severity: "ramp of the changes past the threshold (1 at 3 × the threshold)",
        evidence: &[
            "changes",
            "courses",
            "burst_s",
            "fastest_window_s",
            "threshold_changes",
            "threshold_window_s",
            "changes_after_work_not_counted",
            "count_working_visits",
            "work_event_types",
        ],
    },
    RuleSpec {
        name: "course_switching.parallel_playback",
        thresholds: &["course_switching.min_overlap_s"],
        severity: "ramp of the overlap past the threshold (1 at 21 × the threshold)",
        evidence: &["overlap_s", "courses", "threshold_s"],
    },
    RuleSpec {
        name: "credit_burst.poisson_tail",
        thresholds: &[
            "credit_burst.min_credits",
            "credit_burst.support_ratio",
            "credit_burst.support_days",
            "credit_burst.alpha",
            "credit_burst.baseline_days",
        ],
        severity: "ramp of the watching missing behind the claims; raised by an improbable count",
        evidence: &[
            "conditions",
            "credits",
            "completions",
            "unit",
            "x",
            "lambda",
            "lambda_user",
            "lambda_peers_day",
            "lambda_peers_trailing",
            "p_tail",
            "alpha",
            "min_credits",
            "baseline_days",
            "engaged_s",
            "required_s",
            "support_ratio",
            "support_days",
            "courses",
        ],
    },
    RuleSpec {
        name: "quiz_speed.too_fast",
        thresholds: &[
            "quiz_speed.min_seconds_per_question",
            "quiz_speed.min_score_ratio",
            "quiz_speed.min_fast_per_day",
            "quiz_speed.min_fast_share",
            "quiz_speed.exempt_resubmissions",
        ],
        severity: "ramp of how far under the seconds per question the quiz was answered",
        evidence: &[
            "quiz_id",
            "questions",
            "elapsed_s",
            "seconds_per_question",
            "score",
            "max_score",
            "score_ratio",
            "threshold_seconds_per_question",
            "threshold_score_ratio",
            "event_id",
            "fast_first_attempts_day",
            "first_attempts_day",
            "threshold_fast_per_day",
            "threshold_fast_share",
            "resubmissions_exempt",
        ],
    },
    RuleSpec {
        name: "shared_device.many_accounts",
        thresholds: &["shared_device.min_accounts", "shared_device.event_types"],
        severity: "ramp of the accounts past the threshold (1 at 2 × the threshold)",
        evidence: &[
            "device_id",
            "accounts",
            "users",
            "events",
            "event_types",
            "threshold_accounts",
        ],
    },
    RuleSpec {
        name: "automation.unbroken_play",
        thresholds: &[
            "automation.unbroken_min_play_s",
            "automation.unbroken_min_courses",
        ],
        severity: "ramp of the play past the threshold, plus a bonus at unusual hours",
        evidence: STRETCH_EVIDENCE,
    },
    RuleSpec {
        name: "automation.timer_cadence",
        thresholds: &[
            "automation.cadence_min_intervals",
            "automation.cadence_min_courses",
            "automation.cadence_max_std_s",
        ],
        severity: "a fixed 0.9: a timer's cadence is strong evidence on its own",
        evidence: STRETCH_EVIDENCE,
    },
    RuleSpec {
        name: "automation.no_input",
        thresholds: &[
            "automation.no_input_min_play_s",
            "automation.no_input_min_courses",
            "automation.no_input_reported_share",
        ],
        severity: "ramp of the play past the threshold, plus a bonus at unusual hours",
        evidence: STRETCH_EVIDENCE,
    },
    RuleSpec {
        name: "automation.missed_checks",
        thresholds: &[
            "automation.missed_min_checks",
            "automation.missed_min_share",
        ],
        severity: "ramp of the missed share past the threshold",
        evidence: &[
            "session_id",
            "checks",
            "missed_while_playing",
            "missed_share",
            "missed_event_ids",
            "threshold_missed_min_checks",
            "threshold_missed_min_share",
        ],
    },
    RuleSpec {
        name: "automation.machine_responses",
        thresholds: &[
            "automation.min_human_response_s",
            "automation.max_response_cv",
            "automation.responses_min_checks",
            "automation.regular_min_checks",
        ],
        severity: "0.8 for too fast or too regular answers, 1 for both",
        evidence: &[
            "session_id",
            "responses",
            "correct",
            "response_median_s",
            "response_cv",
            "conditions",
            "threshold_min_human_response_s",
            "threshold_max_response_cv",
            "threshold_responses_min_checks",
            "threshold_regular_min_checks",
        ],
    },
    RuleSpec {
        name: "proxy_learning.borrowed_device",
        thresholds: &[
            "proxy_learning.min_play_s",
            "proxy_learning.owner_min_days",
            "proxy_learning.guest_max_days",
            "proxy_learning.household_max_accounts",
        ],
        severity: "a fixed 0.6",
        evidence: &[
            "device_id",
            "day",
            "play_s",
            "courses",
            "days_on_device",
            "device_owner",
            "owner_days",
            "threshold_min_play_s",
            "threshold_owner_min_days",
            "threshold_guest_max_days",
            "accounts_on_own_address",
            "threshold_household_max_accounts",
        ],
    },
    RuleSpec {
        name: "proxy_learning.alternating_accounts",
        thresholds: &[
            "proxy_learning.alternating_min_switches",
            "proxy_learning.alternating_min_days",
            "proxy_learning.time_zone",
            "proxy_learning.day_starts_at_hour",
        ],
        severity: "a fixed 0.6",
        evidence: &[
            "device_id",
            "device_owner",
            "days",
            "switches_per_day",
            "threshold_alternating_min_switches",
            "threshold_alternating_min_days",
            "time_zone",
            "day_starts_at_hour",
        ],
    },
];

/// What the three rules about a stretch of unbroken play show: the whole stretch.
const STRETCH_EVIDENCE: &[&str] = &[
    "session_id",
    "play_s",
    "heartbeats",
    "courses",
    "heartbeat_intervals",
    "interval_std_s",
    "input_reported",
    "input_events",
    "other_hours_share",
    "unusual_hours",
    "interruptions_that_end_a_stretch",
    "threshold_unbroken_min_play_s",
    "threshold_unbroken_min_courses",
    "threshold_cadence_min_intervals",
    "threshold_cadence_max_std_s",
    "threshold_no_input_min_play_s",
    "threshold_unusual_hours_share",
];

/// The declaration of `rule`, if it is one.
pub fn spec(rule: &str) -> Option<&'static RuleSpec> {
    RULES.iter().find(|r| r.name == rule)
}

/// Checks a draft flag's evidence against its rule's declaration: panics naming the rule and the
/// keys that differ. Called as each flag is finished in the crate's own tests.
#[cfg(test)]
pub(crate) fn check_evidence(rule: &str, evidence: &serde_json::Map<String, serde_json::Value>) {
    let spec = spec(rule).unwrap_or_else(|| panic!("rule {rule} is not declared in rules::RULES"));
    let has: std::collections::BTreeSet<&str> = evidence
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "explanation_zh")
        .collect();
    let declared: std::collections::BTreeSet<&str> = spec.evidence.iter().copied().collect();
    assert_eq!(
        has, declared,
        "{rule}: the evidence differs from rules::RULES (left: what the flag carries)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobsConfig;

    #[test]
    fn the_rules_are_results_v1s() {
        let names: Vec<&str> = RULES.iter().map(|r| r.name).collect();
        assert_eq!(names, creditguard_contract::RULES);
    }

    #[test]
    fn every_threshold_is_a_key_of_the_jobs_section() {
        let jobs = serde_json::to_value(JobsConfig::default()).unwrap();
        for rule in &RULES {
            assert!(!rule.thresholds.is_empty(), "{}", rule.name);
            let detector = rule.name.split('.').next().unwrap();
            for key in rule.thresholds {
                let (section, name) = key.split_once('.').unwrap();
                assert_eq!(section, detector, "{}: {key}", rule.name);
                assert!(
                    jobs[section].get(name).is_some(),
                    "{}: `jobs.{key}` is not a setting",
                    rule.name
                );
            }
        }
    }

    #[test]
    fn evidence_is_declared_once_per_key() {
        for rule in &RULES {
            let mut keys = rule.evidence.to_vec();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(keys.len(), rule.evidence.len(), "{}", rule.name);
        }
    }
}
