//! The records of the review store and the lifecycle rules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    Open,
    InReview,
    NeedsInfo,
    Confirmed,
    Dismissed,
    PartiallyConfirmed,
    Appealed,
}

/// What a person (or the scorer) does to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The scorer opened the case.
    Open,
    /// The scorer attached new flags to the case.
    AddFlags,
    Assign,
    RequestInfo,
    Comment,
    Decide,
    Appeal,
}

impl CaseStatus {
    pub const ALL: [CaseStatus; 7] = [
        CaseStatus::Open,
        CaseStatus::InReview,
        CaseStatus::NeedsInfo,
        CaseStatus::Confirmed,
        CaseStatus::Dismissed,
        CaseStatus::PartiallyConfirmed,
        CaseStatus::Appealed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::InReview => "in_review",
            CaseStatus::NeedsInfo => "needs_info",
            CaseStatus::Confirmed => "confirmed",
            CaseStatus::Dismissed => "dismissed",
            CaseStatus::PartiallyConfirmed => "partially_confirmed",
            CaseStatus::Appealed => "appealed",
        }
    }

    pub fn parse(s: &str) -> Option<CaseStatus> {
        CaseStatus::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A reviewer has decided it (until an appeal).
    pub fn is_decided(self) -> bool {
        matches!(
            self,
            CaseStatus::Confirmed | CaseStatus::Dismissed | CaseStatus::PartiallyConfirmed
        )
    }

    /// The lifecycle: whether `action` may be taken on a case in this status.
    /// - assign: any undecided status (re-assigning a case in review is allowed);
    /// - request info: only while in review;
    /// - decide: any undecided status (deciding takes the case);
    /// - appeal: only a decided case;
    /// - comment: always. Open and AddFlags are the scorer's (AddFlags on undecided cases only).
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Comment => true,
            Action::Open => false,
            Action::RequestInfo => self == CaseStatus::InReview,
            Action::Appeal => self.is_decided(),
            Action::Assign | Action::Decide | Action::AddFlags => !self.is_decided(),
        }
    }

    /// The statuses `action` is allowed from, for error messages.
    pub fn allowed_from(action: Action) -> String {
        let from: Vec<&str> = CaseStatus::ALL
            .into_iter()
            .filter(|s| s.allows(action))
            .map(CaseStatus::as_str)
            .collect();
        if from.is_empty() {
            "none".into()
        } else {
            from.join(", ")
        }
    }
}

impl fmt::Display for CaseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Open => "open",
            Action::AddFlags => "add_flags",
            Action::Assign => "assign",
            Action::RequestInfo => "request_info",
            Action::Comment => "comment",
            Action::Decide => "decide",
            Action::Appeal => "appeal",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reviewer's verdict on a whole case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Confirmed,
    Dismissed,
    PartiallyConfirmed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "confirmed" => Some(Verdict::Confirmed),
            "dismissed" => Some(Verdict::Dismissed),
            "partially_confirmed" => Some(Verdict::PartiallyConfirmed),
            _ => None,
        }
    }

    pub fn status(self) -> CaseStatus {
        match self {
            Verdict::Confirmed => CaseStatus::Confirmed,
            Verdict::Dismissed => CaseStatus::Dismissed,
            Verdict::PartiallyConfirmed => CaseStatus::PartiallyConfirmed,
        }
    }
}

/// What a decision did to one claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimDecision {
    Released,
    Cancelled,
}

impl ClaimDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimDecision::Released => "released",
            ClaimDecision::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ClaimDecision> {
        match s {
            "released" => Some(ClaimDecision::Released),
            "cancelled" => Some(ClaimDecision::Cancelled),
            _ => None,
        }
    }
}

/// A case as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    pub case_id: String,
    pub user_id: String,
    pub org_unit: Option<String>,
    pub status: CaseStatus,
    pub assignee: Option<String>,
    /// Noisy-OR of the weighted severities of the case's flags.
    pub risk: f64,
    /// Earliest `window_start` and latest `window_end` of the case's flags (UTC µs).
    pub first_flag_at: i64,
    pub last_flag_at: i64,
    pub previous_case_id: Option<String>,
    pub opened_at: i64,
    pub updated_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub decision_reason: Option<String>,
    /// Bumped by every change; a change that names an older version is a conflict.
    pub version: i64,
}

/// A flag attached to a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseFlag {
    pub flag_id: String,
    pub case_id: String,
    pub detector: String,
    pub rule: String,
    pub org_unit: Option<String>,
    pub course_id: Option<String>,
    pub window_start: i64,
    pub window_end: i64,
    /// Severity × detector weight.
    pub weighted_severity: f64,
    /// Partition day of the flag.
    pub day: i64,
}

/// A withheld claim a case holds, and what was decided for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseClaim {
    pub case_id: String,
    pub credit_id: String,
    pub user_id: String,
    pub course_id: String,
    pub completed_at: i64,
    /// What the claim is worth when granted.
    pub credits_value: f64,
    /// The case's flags that withheld it.
    pub flag_ids: Vec<String>,
    pub decision: Option<ClaimDecision>,
    pub decided_at: Option<i64>,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub case_id: Option<String>,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    pub reason: Option<String>,
    /// A JSON object with what the action changed.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A case with everything a reviewer looks at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDetail {
    pub case: CaseRow,
    pub flags: Vec<CaseFlag>,
    pub claims: Vec<CaseClaim>,
    /// The case's audit records, oldest first (comments are among them).
    pub history: Vec<AuditRecord>,
    /// The learner's other cases, newest first.
    pub related: Vec<CaseRow>,
}

/// Which cases to list.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub statuses: Vec<CaseStatus>,
    /// An org unit and everything under it (`HQ/East` matches `HQ/East/Sales`).
    pub org_unit: Option<String>,
    /// Cases with at least one flag of this rule.
    pub rule: Option<String>,
    pub user_id: Option<String>,
    pub assignee: Option<String>,
    pub min_risk: Option<f64>,
    pub limit: Option<i64>,
}

/// A flag as [`Review::sync`](crate::Review::sync) receives it from the scorer.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncFlag {
    pub flag_id: String,
    pub detector: String,
    pub rule: String,
    pub org_unit: Option<String>,
    pub course_id: Option<String>,
    pub window_start: i64,
    pub window_end: i64,
    pub weighted_severity: f64,
    pub day: i64,
}

/// One learner's flags of a scoring run (the period's and those of the lookback that withheld a
/// claim of the period).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncCandidate {
    pub user_id: String,
    pub org_unit: Option<String>,
    pub flags: Vec<SyncFlag>,
}

/// A claim the scorer withheld, before any decision is applied.
#[derive(Debug, Clone, PartialEq)]
pub struct WithheldClaim {
    pub credit_id: String,
    pub user_id: String,
    pub course_id: String,
    pub completed_at: i64,
    pub credits_value: f64,
    pub flag_ids: Vec<String>,
}

/// What one scoring run hands to the review store.
#[derive(Debug, Clone, Default)]
pub struct SyncInput {
    pub candidates: Vec<SyncCandidate>,
    pub withheld: Vec<WithheldClaim>,
    /// The credit ids of every claim of the run (granted ones included: a cancelled claim stays
    /// cancelled even when its flags are gone).
    pub claim_ids: Vec<String>,
    /// `[score] review_threshold`: the risk at which unattached flags open a case.
    pub review_threshold: f64,
    /// `[review] reopen_after_days`.
    pub reopen_after_days: i64,
}

/// What [`Review::sync`](crate::Review::sync) did and found.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// Every case that holds a flag or claim of the run, as stored after the sync.
    pub cases: Vec<CaseRow>,
    /// flag id → case id, for the run's flags that belong to a case.
    pub flag_case: std::collections::HashMap<String, String>,
    /// The decisions standing on the run's claims.
    pub decisions: crate::ClaimDecisions,
    pub opened: usize,
    pub flags_attached: usize,
}

/// The result of [`Review::verify_audit`](crate::Review::verify_audit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub records: i64,
    /// The first problem found, naming the record.
    pub problem: Option<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_allows_and_refuses() {
        use Action::{AddFlags, Appeal, Assign, Comment, Decide, RequestInfo};
        use CaseStatus::{
            Appealed, Confirmed, Dismissed, InReview, NeedsInfo, Open, PartiallyConfirmed,
        };
        for s in [Open, InReview, NeedsInfo, Appealed] {
            assert!(
                s.allows(Assign) && s.allows(Decide) && s.allows(AddFlags),
                "{s}"
            );
            assert!(!s.allows(Appeal), "{s}");
        }
        for s in [Confirmed, Dismissed, PartiallyConfirmed] {
            assert!(s.allows(Appeal), "{s}");
            assert!(!s.allows(Assign) && !s.allows(Decide) && !s.allows(AddFlags));
            assert!(!s.allows(RequestInfo));
        }
        assert!(InReview.allows(RequestInfo));
        assert!(!Open.allows(RequestInfo) && !NeedsInfo.allows(RequestInfo));
        for s in CaseStatus::ALL {
            assert!(s.allows(Comment) && !s.allows(Action::Open));
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(
            CaseStatus::allowed_from(Appeal),
            "confirmed, dismissed, partially_confirmed"
        );
    }
}
