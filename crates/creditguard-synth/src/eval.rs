//! Detection quality at the learner level: how well a run's flags and credit decisions match
//! the generator's labels.
//!
//! A learner counts once per rule, however many flags or episodes: a learner labelled with rule
//! R and flagged with R is a true positive for R; flagged with R but not labelled R is a false
//! positive for R (even when labelled with another rule); labelled R and not flagged R is a
//! false negative. "Any rule" compares "flagged with anything" with "labelled with anything".
//!
//! ```
//! use creditguard_synth::eval::evaluate;
//! # use creditguard_synth::{Config, Labels, Label, LearnerLabel, Strength, Summary};
//! # let learner = |id: &str, rule: Option<&str>| LearnerLabel {
//! #     user_id: id.into(), org_unit: "ou1".into(), honest: rule.is_none(),
//! #     labels: rule.map(|r| Label { rule: r.into(), course_id: Some("C1".into()),
//! #         window_start: String::new(), window_end: String::new(), strength: Strength::Blatant,
//! #         claims: vec!["C1".into()], detail: String::new() }).into_iter().collect() };
//! # let labels = Labels { config: Config::default(), summary: Summary::default(),
//! #     learners: vec![learner("u1", Some("watch_time.speed")), learner("u2", None)] };
//! let q = evaluate(
//!     &labels,
//!     [("u1", "watch_time.speed")],
//!     [("u1", "C1", "withheld"), ("u2", "C1", "granted")],
//! );
//! assert_eq!(q.rule("watch_time.speed").unwrap().recall(), Some(1.0));
//! assert_eq!(q.honest_flagged_share(), Some(0.0));
//! println!("{q}"); // a markdown table
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use crate::config::Strength;
use crate::labels::Labels;

/// Learner-level counts for one rule (or for "any rule").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleQuality {
    pub rule: String,
    /// Learners labelled with the rule.
    pub labelled: u64,
    /// Learners flagged with the rule.
    pub flagged: u64,
    /// Learners labelled and flagged.
    pub true_positives: u64,
    pub labelled_blatant: u64,
    pub found_blatant: u64,
    pub labelled_subtle: u64,
    pub found_subtle: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl RuleQuality {
    pub fn false_positives(&self) -> u64 {
        self.flagged - self.true_positives
    }
    pub fn false_negatives(&self) -> u64 {
        self.labelled - self.true_positives
    }
    /// TP / flagged; `None` when nothing was flagged.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.true_positives, self.flagged)
    }
    /// TP / labelled; `None` when nobody was labelled.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.true_positives, self.labelled)
    }
    pub fn recall_blatant(&self) -> Option<f64> {
        ratio(self.found_blatant, self.labelled_blatant)
    }
    pub fn recall_subtle(&self) -> Option<f64> {
        ratio(self.found_subtle, self.labelled_subtle)
    }
}

/// The result of [`evaluate`]. `Display` renders it as markdown tables.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quality {
    /// One row per results-v1 rule, then any other flagged rule names.
    pub rules: Vec<RuleQuality>,
    /// Flagged with anything vs labelled with anything.
    pub overall: RuleQuality,
    pub honest_learners: u64,
    /// Honest learners with at least one flag.
    pub honest_flagged: u64,
    /// Credit claims (records) of honest learners, and how many were withheld.
    pub honest_claims: u64,
    pub honest_claims_withheld: u64,
    /// Claims of labelled learners for the courses their episodes taint (`Label::claims`).
    pub tainted_claims: u64,
    pub tainted_claims_withheld: u64,
    /// Tainted claims the policy's earning rules refused (a completion without a passed quiz:
    /// granted 0 credits), which the flags then need not withhold.
    pub tainted_claims_refused: u64,
    /// All claims of labelled learners, tainted or not.
    pub cheater_claims: u64,
    pub cheater_claims_withheld: u64,
    /// Flags and credit records naming users the labels do not know (ignored otherwise).
    pub unknown_users: u64,
}

impl RuleQuality {
    fn add(&mut self, o: &RuleQuality) {
        self.labelled += o.labelled;
        self.flagged += o.flagged;
        self.true_positives += o.true_positives;
        self.labelled_blatant += o.labelled_blatant;
        self.found_blatant += o.found_blatant;
        self.labelled_subtle += o.labelled_subtle;
        self.found_subtle += o.found_subtle;
    }
}

impl Quality {
    /// Adds the counts of another evaluation (another seed or population) to these, rule by
    /// rule, so several populations give one table.
    pub fn merge(&mut self, other: &Quality) {
        for r in &other.rules {
            match self.rules.iter_mut().find(|m| m.rule == r.rule) {
                Some(m) => m.add(r),
                None => self.rules.push(r.clone()),
            }
        }
        if self.overall.rule.is_empty() {
            self.overall.rule = other.overall.rule.clone();
        }
        self.overall.add(&other.overall);
        self.honest_learners += other.honest_learners;
        self.honest_flagged += other.honest_flagged;
        self.honest_claims += other.honest_claims;
        self.honest_claims_withheld += other.honest_claims_withheld;
        self.tainted_claims += other.tainted_claims;
        self.tainted_claims_withheld += other.tainted_claims_withheld;
        self.tainted_claims_refused += other.tainted_claims_refused;
        self.cheater_claims += other.cheater_claims;
        self.cheater_claims_withheld += other.cheater_claims_withheld;
        self.unknown_users += other.unknown_users;
    }

    /// The row of one rule.
    pub fn rule(&self, rule: &str) -> Option<&RuleQuality> {
        self.rules.iter().find(|r| r.rule == rule)
    }
    pub fn honest_flagged_share(&self) -> Option<f64> {
        ratio(self.honest_flagged, self.honest_learners)
    }
    pub fn honest_claims_withheld_share(&self) -> Option<f64> {
        ratio(self.honest_claims_withheld, self.honest_claims)
    }
    pub fn tainted_claims_withheld_share(&self) -> Option<f64> {
        ratio(self.tainted_claims_withheld, self.tainted_claims)
    }
    /// Tainted claims that earned the cheater nothing: withheld by the flags or refused by the
    /// policy's earning rules.
    pub fn tainted_claims_stopped_share(&self) -> Option<f64> {
        ratio(
            self.tainted_claims_withheld + self.tainted_claims_refused,
            self.tainted_claims,
        )
    }
    pub fn cheater_claims_withheld_share(&self) -> Option<f64> {
        ratio(self.cheater_claims_withheld, self.cheater_claims)
    }
}

/// Scores a run against the labels.
///
/// - `flags`: `(user_id, rule)` for every flag raised (duplicates are fine);
/// - `credits`: `(user_id, course_id, status)` for every credit record, `status` as in
///   results-v1 (`"granted"` or `"withheld"`), or `"refused"` for a completion the policy's
///   earning rules refused (granted 0 credits with a `quiz_not_passed` claim issue).
pub fn evaluate(
    labels: &Labels,
    flags: impl IntoIterator<Item = (impl AsRef<str>, impl AsRef<str>)>,
    credits: impl IntoIterator<Item = (impl AsRef<str>, impl AsRef<str>, impl AsRef<str>)>,
) -> Quality {
    let mut q = Quality::default();
    // user → (rule → strength) of the labels.
    let mut truth: HashMap<&str, BTreeMap<&str, Strength>> = HashMap::new();
    let mut tainted: HashSet<(&str, &str)> = HashSet::new();
    for l in &labels.learners {
        let rules = truth.entry(l.user_id.as_str()).or_default();
        for lab in &l.labels {
            // Blatant wins when a learner has episodes of both strengths for one rule.
            let s = rules.entry(lab.rule.as_str()).or_insert(lab.strength);
            if lab.strength == Strength::Blatant {
                *s = Strength::Blatant;
            }
            for c in &lab.claims {
                tainted.insert((l.user_id.as_str(), c.as_str()));
            }
        }
    }
    let mut flagged: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (u, r) in flags {
        let (u, r) = (u.as_ref(), r.as_ref());
        if !truth.contains_key(u) {
            q.unknown_users += 1;
            continue;
        }
        flagged
            .entry(u.to_string())
            .or_default()
            .insert(r.to_string());
    }
    let mut names: Vec<String> = creditguard_contract::RULES
        .iter()
        .map(|r| r.to_string())
        .collect();
    let extra: BTreeSet<&String> = flagged
        .values()
        .flatten()
        .filter(|r| !names.contains(r))
        .collect();
    names.extend(extra.into_iter().cloned());

    let count = |row: &mut RuleQuality, labelled: Option<Strength>, hit: bool| {
        if hit {
            row.flagged += 1;
        }
        if let Some(s) = labelled {
            row.labelled += 1;
            let (lab, found) = match s {
                Strength::Blatant => (&mut row.labelled_blatant, &mut row.found_blatant),
                Strength::Subtle => (&mut row.labelled_subtle, &mut row.found_subtle),
            };
            *lab += 1;
            if hit {
                row.true_positives += 1;
                *found += 1;
            }
        }
    };
    q.rules = names
        .iter()
        .map(|n| RuleQuality {
            rule: n.clone(),
            ..RuleQuality::default()
        })
        .collect();
    q.overall.rule = "any rule".to_string();
    for l in &labels.learners {
        let rules = &truth[l.user_id.as_str()];
        let raised = flagged.get(&l.user_id);
        for row in &mut q.rules {
            let hit = raised.is_some_and(|r| r.contains(&row.rule));
            count(row, rules.get(row.rule.as_str()).copied(), hit);
        }
        let any_strength = if rules.is_empty() {
            None
        } else if rules.values().any(|&s| s == Strength::Blatant) {
            Some(Strength::Blatant)
        } else {
            Some(Strength::Subtle)
        };
        let hit = raised.is_some_and(|r| !r.is_empty());
        count(&mut q.overall, any_strength, hit);
        if rules.is_empty() {
            q.honest_learners += 1;
            if hit {
                q.honest_flagged += 1;
            }
        }
    }
    for (u, c, status) in credits {
        let (u, c) = (u.as_ref(), c.as_ref());
        let withheld = status.as_ref() == "withheld";
        let Some(rules) = truth.get(u) else {
            q.unknown_users += 1;
            continue;
        };
        if rules.is_empty() {
            q.honest_claims += 1;
            q.honest_claims_withheld += u64::from(withheld);
        } else {
            q.cheater_claims += 1;
            q.cheater_claims_withheld += u64::from(withheld);
            if tainted.contains(&(u, c)) {
                q.tainted_claims += 1;
                q.tainted_claims_withheld += u64::from(withheld);
                q.tainted_claims_refused += u64::from(status.as_ref() == "refused");
            }
        }
    }
    q
}

struct Pct(Option<f64>);

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{:.3}", v),
            None => f.write_str("–"),
        }
    }
}

fn share(f: &mut fmt::Formatter<'_>, what: &str, num: u64, den: u64) -> fmt::Result {
    match ratio(num, den) {
        Some(v) => writeln!(f, "| {what} | {num} / {den} | {:.2} % |", v * 100.0),
        None => writeln!(f, "| {what} | 0 / 0 | – |"),
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| rule | labelled | flagged | TP | FP | FN | precision | recall | recall blatant | recall subtle |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for r in self.rules.iter().chain(std::iter::once(&self.overall)) {
            let name = if r.rule == "any rule" {
                "**any rule**".to_string()
            } else {
                format!("`{}`", r.rule)
            };
            writeln!(
                f,
                "| {name} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} ({}) |",
                r.labelled,
                r.flagged,
                r.true_positives,
                r.false_positives(),
                r.false_negatives(),
                Pct(r.precision()),
                Pct(r.recall()),
                Pct(r.recall_blatant()),
                r.labelled_blatant,
                Pct(r.recall_subtle()),
                r.labelled_subtle,
            )?;
        }
        writeln!(f)?;
        writeln!(f, "| learner-level measure | count | share |")?;
        writeln!(f, "|---|---:|---:|")?;
        share(
            f,
            "honest learners flagged",
            self.honest_flagged,
            self.honest_learners,
        )?;
        share(
            f,
            "honest credit claims withheld",
            self.honest_claims_withheld,
            self.honest_claims,
        )?;
        share(
            f,
            "cheaters' tainted claims withheld",
            self.tainted_claims_withheld,
            self.tainted_claims,
        )?;
        share(
            f,
            "cheaters' tainted claims refused by the policy (no passed quiz)",
            self.tainted_claims_refused,
            self.tainted_claims,
        )?;
        share(
            f,
            "cheaters' tainted claims withheld or refused",
            self.tainted_claims_withheld + self.tainted_claims_refused,
            self.tainted_claims,
        )?;
        share(
            f,
            "cheaters' claims withheld (all)",
            self.cheater_claims_withheld,
            self.cheater_claims,
        )?;
        if self.unknown_users > 0 {
            writeln!(
                f,
                "| flags/credits of users not in the labels (ignored) | {} | |",
                self.unknown_users
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::labels::{Label, LearnerLabel, Summary};

    fn learner(id: &str, labels: &[(&str, Strength, &[&str])]) -> LearnerLabel {
        LearnerLabel {
            user_id: id.to_string(),
            org_unit: "ou00".to_string(),
            honest: labels.is_empty(),
            labels: labels
                .iter()
                .map(|(rule, s, claims)| Label {
                    rule: rule.to_string(),
                    course_id: None,
                    window_start: "2026-03-02T00:00:00.000000Z".to_string(),
                    window_end: "2026-03-02T01:00:00.000000Z".to_string(),
                    strength: *s,
                    claims: claims.iter().map(|c| c.to_string()).collect(),
                    detail: String::new(),
                })
                .collect(),
        }
    }

    fn population() -> Labels {
        let speed = "watch_time.speed";
        let quiz = "quiz_speed.too_fast";
        Labels {
            config: Config::default(),
            summary: Summary::default(),
            learners: vec![
                learner("a", &[(speed, Strength::Blatant, &["C1"])]),
                learner("b", &[(speed, Strength::Subtle, &["C2"])]),
                learner(
                    "c",
                    &[
                        (quiz, Strength::Blatant, &["C3"]),
                        (quiz, Strength::Subtle, &["C4"]),
                    ],
                ),
                learner("h1", &[]),
                learner("h2", &[]),
                learner("h3", &[]),
                learner("h4", &[]),
            ],
        }
    }

    #[test]
    fn merging_two_populations_adds_their_counts() {
        let labels = population();
        let one = evaluate(
            &labels,
            [("a", "watch_time.speed"), ("h1", "x.extra")],
            [("a", "C1", "withheld"), ("h2", "C9", "granted")],
        );
        let two = evaluate(
            &labels,
            [("b", "watch_time.speed")],
            [("h2", "C9", "withheld")],
        );
        let mut m = Quality::default();
        m.merge(&one);
        m.merge(&two);
        let speed = m.rule("watch_time.speed").unwrap();
        assert_eq!(
            (speed.labelled, speed.flagged, speed.true_positives),
            (4, 2, 2)
        );
        assert_eq!((speed.found_blatant, speed.found_subtle), (1, 1));
        // A rule only one population raised is kept.
        assert_eq!(m.rule("x.extra").unwrap().flagged, 1);
        assert_eq!(m.overall.rule, "any rule");
        assert_eq!((m.honest_learners, m.honest_flagged), (8, 1));
        assert_eq!((m.honest_claims, m.honest_claims_withheld), (2, 1));
        assert_eq!((m.tainted_claims, m.tainted_claims_withheld), (1, 1));
    }

    #[test]
    fn counts_learners_not_flags() {
        let labels = population();
        let flags = [
            ("a", "watch_time.speed"),
            ("a", "watch_time.speed"), // a second flag of the same learner and rule
            ("c", "quiz_speed.too_fast"),
            ("c", "watch_time.speed"), // a cheater flagged for a rule they were not labelled with
            ("h1", "watch_time.speed"),
            ("zz", "watch_time.speed"), // not in the population
        ];
        let q = evaluate(&labels, flags, Vec::<(&str, &str, &str)>::new());
        let speed = q.rule("watch_time.speed").unwrap();
        assert_eq!(
            (speed.labelled, speed.flagged, speed.true_positives),
            (2, 3, 1)
        );
        assert_eq!((speed.false_positives(), speed.false_negatives()), (2, 1));
        assert_eq!(speed.precision(), Some(1.0 / 3.0));
        assert_eq!(speed.recall(), Some(0.5));
        assert_eq!(speed.recall_blatant(), Some(1.0));
        assert_eq!(speed.recall_subtle(), Some(0.0));
        let quiz = q.rule("quiz_speed.too_fast").unwrap();
        // Two episodes of both strengths on one learner: one learner, counted as blatant.
        assert_eq!(
            (quiz.labelled, quiz.labelled_blatant, quiz.true_positives),
            (1, 1, 1)
        );
        let bg = q.rule("watch_time.background_playback").unwrap();
        assert_eq!(
            (bg.labelled, bg.flagged, bg.precision(), bg.recall()),
            (0, 0, None, None)
        );
        // Any rule: cheaters a, b, c; flagged a, c, h1.
        assert_eq!(
            (
                q.overall.labelled,
                q.overall.flagged,
                q.overall.true_positives
            ),
            (3, 3, 2)
        );
        assert_eq!((q.honest_learners, q.honest_flagged), (4, 1));
        assert_eq!(q.honest_flagged_share(), Some(0.25));
        assert_eq!(q.unknown_users, 1);
        assert_eq!(q.rules.len(), creditguard_contract::RULES.len());
    }

    #[test]
    fn credit_shares() {
        let labels = population();
        let credits = [
            ("a", "C1", "withheld"), // tainted, withheld
            ("a", "C9", "granted"),  // a cheater's other claim
            ("b", "C2", "granted"),  // tainted, granted: missed
            ("c", "C3", "withheld"),
            ("c", "C4", "refused"), // tainted, refused by the quiz rule: not withheld, stopped
            ("h1", "C1", "withheld"), // honest claim withheld
            ("h2", "C1", "granted"),
            ("h3", "C5", "granted"),
            ("h4", "C6", "granted"),
        ];
        let q = evaluate(&labels, Vec::<(&str, &str)>::new(), credits);
        assert_eq!((q.honest_claims, q.honest_claims_withheld), (4, 1));
        assert_eq!((q.tainted_claims, q.tainted_claims_withheld), (4, 2));
        assert_eq!(q.tainted_claims_refused, 1);
        assert_eq!((q.cheater_claims, q.cheater_claims_withheld), (5, 2));
        assert_eq!(q.honest_claims_withheld_share(), Some(0.25));
        assert_eq!(q.tainted_claims_withheld_share(), Some(0.5));
        assert_eq!(q.tainted_claims_stopped_share(), Some(0.75));
    }

    #[test]
    fn unknown_rule_names_get_their_own_row_and_the_table_renders() {
        let labels = population();
        let q = evaluate(
            &labels,
            [("h2", "watch_time.experimental")],
            [("h2", "C1", "granted")],
        );
        let row = q.rule("watch_time.experimental").unwrap();
        assert_eq!((row.flagged, row.false_positives()), (1, 1));
        let table = q.to_string();
        assert!(
            table.contains(
                "| `watch_time.speed` | 2 | 0 | 0 | 0 | 2 | – | 0.000 | 0.000 (1) | 0.000 (1) |"
            ),
            "{table}"
        );
        assert!(
            table.contains("| honest learners flagged | 1 / 4 | 25.00 % |"),
            "{table}"
        );
        assert!(table.contains("**any rule**"));
    }
}
