//! Review state: the cases reviewers work, their decisions, and what those decisions do to credits.
//!
//! The scorer writes flags and credit claims to the lake every run; this crate keeps what must
//! outlive a run, in a real database written by many reviewers at once (SQLite embedded by
//! default, PostgreSQL in production, one code path through sqlx's `any` driver):
//!
//! - **Cases that persist** ([`Review::sync`]): a case is one learner's suspected episode. A new
//!   flag joins the learner's active case (while one is active and its last flag is less than
//!   `reopen_after_days` old), or starts a new one whose id is `stable_id("case", user, first
//!   flag id)`, linked to the learner's earlier case. A flag belongs to one case forever, so a
//!   re-score never reopens a decided case for flags it already covered.
//! - **Lifecycle** ([`CaseStatus`], [`Action`]): `open` → `in_review` (assigned) →
//!   `confirmed` | `dismissed` | `partially_confirmed`, with `needs_info`, and `appealed` (a
//!   decided case reopened for a second look). Every transition is checked against
//!   [`CaseStatus::allows`], guarded by the case's `version` (optimistic concurrency) and recorded
//!   with who, when, the reason and the previous state.
//! - **Decisions change credits** ([`Review::decide`], [`apply_decisions`]): `confirmed` cancels
//!   the case's withheld claims, `dismissed` releases them, `partially_confirmed` does either per
//!   claim. Later scoring honours them: a cancelled claim is never granted again; a released one is
//!   withheld again only by flags the decision did not cover.
//! - **Audit trail** ([`audit`]): every action is an append-only record holding the SHA-256 of the
//!   record before it, so [`Review::verify_audit`] finds an edited or deleted record.
//! - **Outbox** ([`Review::unpublished`]): the stream records a decision produces
//!   (`case_decision`, `credit_released`, `credit_cancelled`) are written in the decision's own
//!   transaction and handed to the results topic afterwards, so a broker outage delays them but
//!   never loses them.
//! - **Rule feedback** ([`Review::rule_feedback`]): per rule and org unit, flags confirmed,
//!   dismissed and pending.
//!
//! Times are UTC microseconds stored as integers (the `any` driver maps only integers, floats and
//! text the same way on both back ends).

pub mod accounts;
pub mod audit;
mod cases;
mod credits;
mod db;
mod decide;
mod erase;
mod feedback;
mod model;
pub mod testing;

pub use accounts::{Account, AuditQuery, QueuePage, QueueQuery, Role, Scope, SessionInfo};
pub use credits::{apply_decisions, ClaimDecisions, ClaimVerdict};
pub use db::{default_sqlite_url, Review, MIGRATIONS};
pub use decide::DecideRequest;
pub use erase::{sha256_hex, Erased};
pub use model::{
    Action, AuditRecord, CaseClaim, CaseDetail, CaseFilter, CaseFlag, CaseRow, CaseStatus,
    ClaimDecision, SyncCandidate, SyncFlag, SyncInput, SyncOutcome, Verdict, VerifyReport,
    WithheldClaim,
};

/// Errors of the review store. [`Error::is_usage`] tells the command line which ones are the
/// caller's to fix (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("review database {what}: {source}")]
    Database {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("review database schema: {0}")]
    Schema(String),
    #[error("no case `{0}`")]
    UnknownCase(String),
    #[error("case `{case_id}` is {status}: {action} is not allowed (allowed from: {allowed})")]
    Transition {
        case_id: String,
        status: CaseStatus,
        action: Action,
        allowed: String,
    },
    #[error("case `{case_id}` changed since version {expected} (now version {found}, {status}): reload it and decide again")]
    Conflict {
        case_id: String,
        expected: i64,
        found: i64,
        status: CaseStatus,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Whether the caller can fix it (an unknown case, a refused transition, a conflict, a
    /// missing reason): exit 2 on the command line, 4xx on the web.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::UnknownCase(_)
                | Error::Transition { .. }
                | Error::Conflict { .. }
                | Error::Invalid(_)
        )
    }
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Database {
            what: what(),
            source,
        })
    }
}

/// Now, as UTC microseconds.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
