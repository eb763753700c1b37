//! Reviewers' decisions applied to the scorer's credit records (pure, no IO).

use std::collections::{BTreeSet, HashMap};

use creditguard_contract::Credit;

use crate::model::ClaimDecision;

/// One case's decision on one claim.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimVerdict {
    pub case_id: String,
    pub decision: ClaimDecision,
    /// Every flag of the deciding case: the flags the decision covered.
    pub covered_flags: BTreeSet<String>,
    /// What the claim is worth when granted.
    pub credits_value: f64,
}

/// The decisions standing on a set of claims, by credit id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimDecisions {
    pub by_credit: HashMap<String, Vec<ClaimVerdict>>,
}

impl ClaimDecisions {
    pub fn is_empty(&self) -> bool {
        self.by_credit.is_empty()
    }
}

/// Applies reviewers' decisions to credit records as the scorer made them:
/// - a claim any decision cancelled is `cancelled` (0 credits), whatever the flags say now;
/// - a claim a decision released is withheld again only by flags no releasing decision covered
///   (it keeps those as its `flag_ids`); otherwise it is `released`, granted at its value;
/// - claims without a decision are left as they are.
///
/// Returns how many records changed.
pub fn apply_decisions(credits: &mut [Credit], decisions: &ClaimDecisions) -> usize {
    let mut changed = 0;
    for credit in credits.iter_mut() {
        let Some(verdicts) = decisions.by_credit.get(&credit.credit_id) else {
            continue;
        };
        let before = (
            credit.status.clone(),
            credit.credits_granted,
            credit.flag_ids.len(),
        );
        if verdicts
            .iter()
            .any(|v| v.decision == ClaimDecision::Cancelled)
        {
            credit.status = "cancelled".into();
            credit.credits_granted = 0.0;
        } else {
            let covered: BTreeSet<&str> = verdicts
                .iter()
                .flat_map(|v| v.covered_flags.iter().map(String::as_str))
                .collect();
            let remaining: Vec<String> = credit
                .flag_ids
                .iter()
                .filter(|f| !covered.contains(f.as_str()))
                .cloned()
                .collect();
            if credit.status == "withheld" && !remaining.is_empty() {
                credit.flag_ids = remaining;
            } else {
                let value = verdicts
                    .iter()
                    .map(|v| v.credits_value)
                    .fold(credit.credits_granted, f64::max);
                credit.status = "released".into();
                credit.credits_granted = value;
            }
        }
        if (
            credit.status.clone(),
            credit.credits_granted,
            credit.flag_ids.len(),
        ) != before
        {
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credit(id: &str, status: &str, flags: &[&str]) -> Credit {
        Credit {
            credit_id: id.into(),
            run_id: "r".into(),
            user_id: "u1".into(),
            org_unit: None,
            course_id: "c1".into(),
            category: "mandatory".into(),
            completed_at: 0,
            credits_claimed: 2.0,
            credits_granted: if status == "granted" { 2.0 } else { 0.0 },
            status: status.into(),
            flag_ids: flags.iter().map(|s| s.to_string()).collect(),
            rules_version: None,
            rules_name: None,
            policy_version: None,
        }
    }

    fn verdict(case: &str, d: ClaimDecision, flags: &[&str]) -> ClaimVerdict {
        ClaimVerdict {
            case_id: case.into(),
            decision: d,
            covered_flags: flags.iter().map(|s| s.to_string()).collect(),
            credits_value: 2.0,
        }
    }

    #[test]
    fn decisions_release_cancel_and_leave_new_flags_withholding() {
        let mut credits = vec![
            credit("a", "withheld", &["f1"]),
            credit("b", "withheld", &["f1", "f9"]),
            credit("c", "granted", &[]),
            credit("d", "withheld", &["f2"]),
            credit("e", "withheld", &["f3"]),
        ];
        let mut d = ClaimDecisions::default();
        let released = verdict("k1", ClaimDecision::Released, &["f1"]);
        d.by_credit.insert("a".into(), vec![released.clone()]);
        d.by_credit.insert("b".into(), vec![released]);
        // Cancelled stays cancelled even when the scorer now grants the claim.
        d.by_credit.insert(
            "c".into(),
            vec![verdict("k2", ClaimDecision::Cancelled, &["f0"])],
        );
        assert_eq!(apply_decisions(&mut credits, &d), 3);
        assert_eq!(
            (credits[0].status.as_str(), credits[0].credits_granted),
            ("released", 2.0)
        );
        // f9 is a flag the dismissal did not cover: still withheld, by f9 alone.
        assert_eq!(credits[1].status, "withheld");
        assert_eq!(credits[1].flag_ids, vec!["f9".to_string()]);
        assert_eq!(
            (credits[2].status.as_str(), credits[2].credits_granted),
            ("cancelled", 0.0)
        );
        assert_eq!(credits[3].status, "withheld");
        assert_eq!(credits[4].status, "withheld");
    }
}
