//! Rule feedback: what reviewers decided about each rule's flags, per org unit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use creditguard_contract::RuleFeedback;
use sqlx::Row;

use crate::model::{CaseStatus, ClaimDecision};
use crate::{Context as _, Result, Review};

/// A flag's verdict as reviewers gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagVerdict {
    Confirmed,
    Dismissed,
    Pending,
}

impl Review {
    /// Per rule and org unit: flags confirmed, dismissed and pending, and the confirmed share.
    /// In a partially confirmed case a flag counts as confirmed when it withheld a claim the
    /// reviewer cancelled (or withheld no claim), as dismissed when it withheld released claims
    /// only.
    pub async fn rule_feedback(&self, as_of: i64) -> Result<Vec<RuleFeedback>> {
        let name = &self.name;
        let rows = sqlx::query(
            "SELECT f.flag_id, f.rule, f.org_unit, f.case_id, c.status FROM case_flags f \
             JOIN cases c ON c.case_id = f.case_id",
        )
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("{name}: reading flags for rule feedback"))?;
        let partial_claims = sqlx::query(
            "SELECT k.case_id, k.flag_ids, k.decision FROM case_claims k \
             JOIN cases c ON c.case_id = k.case_id WHERE c.status = 'partially_confirmed'",
        )
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("{name}: reading claims for rule feedback"))?;
        // case → (flags behind a cancelled claim, flags behind any claim)
        let mut partial: HashMap<String, (BTreeSet<String>, BTreeSet<String>)> = HashMap::new();
        for r in &partial_claims {
            let case_id: String = r.try_get(0).ctx(|| "case_claims.case_id".into())?;
            let flags: String = r.try_get(1).ctx(|| "case_claims.flag_ids".into())?;
            let decision: Option<String> = r.try_get(2).ctx(|| "case_claims.decision".into())?;
            let flags: Vec<String> = serde_json::from_str(&flags).unwrap_or_default();
            let e = partial.entry(case_id).or_default();
            if decision.as_deref().and_then(ClaimDecision::parse) == Some(ClaimDecision::Cancelled)
            {
                e.0.extend(flags.iter().cloned());
            }
            e.1.extend(flags);
        }
        let mut counts: BTreeMap<(String, Option<String>), [i64; 3]> = BTreeMap::new();
        for r in &rows {
            let flag_id: String = r.try_get(0).ctx(|| "case_flags.flag_id".into())?;
            let rule: String = r.try_get(1).ctx(|| "case_flags.rule".into())?;
            let org: Option<String> = r.try_get(2).ctx(|| "case_flags.org_unit".into())?;
            let case_id: String = r.try_get(3).ctx(|| "case_flags.case_id".into())?;
            let status: String = r.try_get(4).ctx(|| "cases.status".into())?;
            let verdict = match CaseStatus::parse(&status) {
                Some(CaseStatus::Confirmed) => FlagVerdict::Confirmed,
                Some(CaseStatus::Dismissed) => FlagVerdict::Dismissed,
                Some(CaseStatus::PartiallyConfirmed) => match partial.get(&case_id) {
                    Some((cancelled, any))
                        if any.contains(&flag_id) && !cancelled.contains(&flag_id) =>
                    {
                        FlagVerdict::Dismissed
                    }
                    _ => FlagVerdict::Confirmed,
                },
                _ => FlagVerdict::Pending,
            };
            let c = counts.entry((rule, org)).or_default();
            c[verdict as usize] += 1;
        }
        Ok(counts
            .into_iter()
            .map(
                |((rule, org_unit), [confirmed, dismissed, pending])| RuleFeedback {
                    rule,
                    org_unit,
                    confirmed,
                    dismissed,
                    pending,
                    confirmed_share: (confirmed + dismissed > 0)
                        .then(|| confirmed as f64 / (confirmed + dismissed) as f64),
                    as_of,
                },
            )
            .collect())
    }
}
