//! The `[score]` section of a pipeline file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How flags become cases and credit decisions (`[score]` in `pipelines/*.toml`).
///
/// ```
/// // Any serde format works; the binary hands over the TOML section.
/// let cfg: creditguard_score::ScoreConfig =
///     serde_json::from_str(r#"{"review_threshold": 0.6, "weights": {"quiz_speed": 0.5}}"#).unwrap();
/// assert_eq!(cfg.review_threshold, 0.6);
/// assert_eq!(cfg.weight("quiz_speed"), 0.5);
/// assert_eq!(cfg.weight("watch_time"), 1.0);
/// assert_eq!(cfg.target_credits, 150.0);
/// assert!(serde_json::from_str::<creditguard_score::ScoreConfig>(r#"{"treshold": 1}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreConfig {
    /// Weight of each detector's flags, by detector name (`watch_time`, `multi_login`,
    /// `course_switching`, `credit_burst`, `quiz_speed`, `shared_device`). A detector not listed
    /// weighs 1.0; 0.0 switches a detector off for both cases and withholding.
    pub weights: BTreeMap<String, f64>,
    /// A case opens when the learner's risk (noisy-OR of severity × weight) is at or above this.
    pub review_threshold: f64,
    /// A flag withholds the claims it touches when its severity × weight is at or above this.
    /// The default equals `review_threshold`: a flag strong enough to open a case on its own
    /// withholds the credits it touches, so every withheld credit sits in an open case that a
    /// reviewer sees. Must not be below `review_threshold` (a withheld credit in a case nobody
    /// reviews would never be released).
    pub withhold_severity: f64,
    /// Credits each learner must earn per calendar year.
    pub target_credits: f64,
    /// Of `target_credits`, how many must come from `mandatory` courses.
    pub mandatory_credits: f64,
    /// How far (seconds) the window of a flag without a course (multi-login, switching, shared
    /// device) may lie from the learner's activity on a course and still touch that course.
    pub activity_slack_s: f64,
    /// Events of one course closer together than this (seconds) form one stretch of activity on
    /// it; a longer pause starts a new stretch.
    pub activity_gap_s: f64,
    /// Flags up to this many days before the scored period still withhold the period's claims
    /// (a course watched in a background tab on Monday and completed on Friday).
    pub lookback_days: i64,
    /// Also write the results stream as NDJSON files (`results/stream/dt=D/part-0.ndjson`): the
    /// embedded default's stand-in for the results topic.
    pub write_stream: bool,
    /// The roster and credit policy (from the pipeline's `[roster]` and `[policy]`, not from
    /// this section): without them, `target_credits` and `mandatory_credits` apply to every
    /// learner with activity, in UTC.
    #[serde(skip)]
    pub expectations: Expectations,
    /// The detector thresholds' version and the pipeline's name (from `[jobs]` and
    /// `[pipeline]`, not from this section), part of what credit records name as the thresholds
    /// they were decided under ([`ScoreConfig::rules_version`]).
    #[serde(skip)]
    pub rules: RulesOrigin,
}

/// Where the thresholds come from, beyond `[score]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesOrigin {
    /// `JobsConfig::rules_version` of the pipeline's detectors.
    pub detectors_version: Option<String>,
    /// The name the pipeline gives its thresholds (its `[pipeline] name`).
    pub name: Option<String>,
}

/// Who must learn how much: the roster and the credit policy, when the pipeline names them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectations {
    pub roster: Option<crate::policy::Roster>,
    pub policy: Option<crate::policy::Policy>,
    /// Courses assigned with due dates (`[policy] assignments`).
    pub assignments: Vec<crate::warnings::Assignment>,
    pub warnings: crate::warnings::WarningSettings,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            weights: creditguard_contract::DETECTORS
                .iter()
                .map(|d| (d.to_string(), 1.0))
                .collect(),
            review_threshold: 0.5,
            withhold_severity: 0.5,
            target_credits: 150.0,
            mandatory_credits: 50.0,
            activity_slack_s: 300.0,
            activity_gap_s: 1800.0,
            lookback_days: 30,
            write_stream: true,
            expectations: Expectations::default(),
            rules: RulesOrigin::default(),
        }
    }
}

impl ScoreConfig {
    /// The weight of a detector (1.0 when not configured).
    pub fn weight(&self, detector: &str) -> f64 {
        self.weights.get(detector).copied().unwrap_or(1.0)
    }

    /// The version of the thresholds a claim is decided under, which credit records name: the
    /// first 12 hex digits of the SHA-256 of the detector thresholds' version and this section's
    /// decision settings as JSON (weights, thresholds, linking, lookback). `target_credits` and
    /// `mandatory_credits` measure progress, not claims, and `write_stream` is where results go:
    /// they are left out.
    ///
    /// ```
    /// let a = creditguard_score::ScoreConfig::default();
    /// let mut b = a.clone();
    /// b.target_credits = 120.0;
    /// assert_eq!(a.rules_version(), b.rules_version());
    /// b.rules.detectors_version = Some("0123456789ab".into());
    /// assert_ne!(a.rules_version(), b.rules_version());
    /// ```
    pub fn rules_version(&self) -> String {
        let mut settings = serde_json::to_value(self).expect("the settings are plain data");
        if let Some(map) = settings.as_object_mut() {
            for other in ["target_credits", "mandatory_credits", "write_stream"] {
                map.remove(other);
            }
        }
        let detectors = self.rules.detectors_version.as_deref().unwrap_or("");
        creditguard_contract::stable_id(&[detectors, &settings.to_string()])[..12].to_string()
    }

    /// The credit policy's version (`global` without a policy file), as progress records it.
    pub fn policy_version(&self) -> String {
        self.expectations
            .policy
            .as_ref()
            .map_or_else(|| "global".to_string(), |p| p.version.clone())
    }

    /// Every problem of the section at once, each naming its key (``key `score.x`: …``).
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        for (d, w) in &self.weights {
            if !w.is_finite() || *w < 0.0 {
                errs.push(format!(
                    "key `score.weights.{d}`: must be a finite number ≥ 0, got {w}"
                ));
            }
        }
        if !unit(self.review_threshold) || self.review_threshold == 0.0 {
            errs.push(format!(
                "key `score.review_threshold`: must be in (0, 1], got {}",
                self.review_threshold
            ));
        }
        if !unit(self.withhold_severity) || self.withhold_severity == 0.0 {
            errs.push(format!(
                "key `score.withhold_severity`: must be in (0, 1], got {}",
                self.withhold_severity
            ));
        }
        if self.withhold_severity < self.review_threshold {
            errs.push(format!(
                "key `score.withhold_severity`: {} is below `score.review_threshold` ({}): credits would be \
                 withheld in cases no reviewer opens",
                self.withhold_severity, self.review_threshold
            ));
        }
        if !(self.target_credits >= 0.0) {
            errs.push(format!(
                "key `score.target_credits`: must be ≥ 0, got {}",
                self.target_credits
            ));
        }
        if !(self.mandatory_credits >= 0.0 && self.mandatory_credits <= self.target_credits) {
            errs.push(format!(
                "key `score.mandatory_credits`: must be between 0 and target_credits ({}), got {}",
                self.target_credits, self.mandatory_credits
            ));
        }
        if !(self.activity_slack_s >= 0.0) {
            errs.push(format!(
                "key `score.activity_slack_s`: must be ≥ 0, got {}",
                self.activity_slack_s
            ));
        }
        if !(self.activity_gap_s > 0.0) {
            errs.push(format!(
                "key `score.activity_gap_s`: must be > 0, got {}",
                self.activity_gap_s
            ));
        }
        if !(0..=366).contains(&self.lookback_days) {
            errs.push(format!(
                "key `score.lookback_days`: must be in 0..=366, got {}",
                self.lookback_days
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}
