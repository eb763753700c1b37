//! A learner's erasure from the review database, and audit records of lake operations
//! (retention, erasure) that concern no single case.
//!
//! The audit trail itself is kept: it is the accountable record of what reviewers did, chained by
//! hashes, and names cases, reviewers and the SHA-256 of the erased id, not the learner.

use serde::Serialize;
use serde_json::json;

use crate::db::{append_audit, lock_writers, NewAudit};
use crate::{Context as _, Result, Review};

/// Rows an erasure removed, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub cases: u64,
    pub flags: u64,
    pub claims: u64,
    pub decisions: u64,
    pub outbox: u64,
}

impl Erased {
    /// Rows removed in all.
    pub fn total(&self) -> u64 {
        self.cases + self.flags + self.claims + self.decisions + self.outbox
    }
}

impl Review {
    /// Removes every row about the learner stored as `user_id` (their cases, the cases' flags
    /// and claims, decisions, outbox records keyed by them) in one transaction, with an audit
    /// record `learner_erased` whose detail holds the counts and `user_sha256` (the SHA-256 of
    /// `user_id`: proof of the erasure to whoever knows the id, nothing to anyone else).
    pub async fn erase_learner(&self, user_id: &str, actor: &str, now: i64) -> Result<Erased> {
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx(|| format!("{}: erasing a learner", self.name))?;
        lock_writers(&mut tx).await?;
        let mut erased = Erased::default();
        // Children first: claims and flags reference cases.
        for (sql, slot) in [
            (
                "DELETE FROM case_claims WHERE user_id = $1",
                &mut erased.claims,
            ),
            (
                "DELETE FROM case_flags WHERE user_id = $1",
                &mut erased.flags,
            ),
            (
                "DELETE FROM decisions WHERE user_id = $1",
                &mut erased.decisions,
            ),
            (
                "DELETE FROM outbox WHERE record_key = $1",
                &mut erased.outbox,
            ),
            ("DELETE FROM cases WHERE user_id = $1", &mut erased.cases),
        ] {
            *slot = sqlx::query(sql)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .ctx(|| format!("erasing a learner: {sql}"))?
                .rows_affected();
        }
        append_audit(
            &mut tx,
            NewAudit {
                at: now,
                actor,
                action: "learner_erased",
                case_id: None,
                before_state: None,
                after_state: None,
                reason: None,
                detail: json!({"user_sha256": sha256_hex(user_id), "removed": erased}),
            },
        )
        .await?;
        tx.commit()
            .await
            .ctx(|| format!("{}: erasing a learner", self.name))?;
        Ok(erased)
    }

    /// Appends an audit record of an operation on the lake (`action`: `retention`,
    /// `lake_erasure`, …) with `detail`, outside any case.
    pub async fn record_operation(
        &self,
        actor: &str,
        action: &str,
        detail: serde_json::Value,
        now: i64,
    ) -> Result<i64> {
        self.audited(actor, action, None, detail, now, |_| {
            Box::pin(async { Ok(()) })
        })
        .await
    }
}

/// SHA-256 of `s`, in hex.
pub fn sha256_hex(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
