//! The hash chain of the audit trail.
//!
//! Record `n` stores `prev_hash` (the hash of record `n − 1`, or 64 zeros for the first) and
//! `hash` = SHA-256 over its own fields and `prev_hash`. Editing a record breaks its hash;
//! deleting one breaks the sequence or the next record's `prev_hash`; deleting the last one leaves
//! the head (`audit_head`, updated in the same transaction as every record) pointing past the end.

use sha2::{Digest, Sha256};

use crate::model::{AuditRecord, VerifyReport};

/// The `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a record: SHA-256, hex, over its fields (each length-prefixed, so no two field
/// lists hash alike) and the previous record's hash.
pub fn hash_record(r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    field(&r.seq.to_string());
    field(&r.at.to_string());
    field(&r.actor);
    field(&r.action);
    field(r.case_id.as_deref().unwrap_or("\u{0}"));
    field(r.before_state.as_deref().unwrap_or("\u{0}"));
    field(r.after_state.as_deref().unwrap_or("\u{0}"));
    field(r.reason.as_deref().unwrap_or("\u{0}"));
    field(&r.detail);
    field(&r.prev_hash);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a whole trail, oldest first, against the head (`head_seq`, `head_hash`).
pub fn verify(records: &[AuditRecord], head_seq: i64, head_hash: &str) -> VerifyReport {
    let problem = (|| {
        let mut prev = GENESIS.to_string();
        for (i, r) in records.iter().enumerate() {
            let want_seq = i as i64 + 1;
            if r.seq != want_seq {
                return Some(format!(
                    "record {want_seq} is missing (the next record is {})",
                    r.seq
                ));
            }
            if r.prev_hash != prev {
                return Some(format!(
                    "record {} does not follow record {}: its prev_hash differs from that record's hash",
                    r.seq,
                    r.seq - 1
                ));
            }
            let h = hash_record(r);
            if h != r.hash {
                return Some(format!(
                    "record {} ({} on case {}) was changed: its contents no longer match its hash",
                    r.seq,
                    r.action,
                    r.case_id.as_deref().unwrap_or("-")
                ));
            }
            prev = h;
        }
        let last = records.len() as i64;
        if head_seq != last || head_hash != prev {
            return Some(format!(
                "the trail ends at record {last} but its head says {head_seq}: records at the end were deleted"
            ));
        }
        None
    })();
    VerifyReport {
        records: records.len() as i64,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let mut r = AuditRecord {
                seq,
                at: seq * 1000,
                actor: "hr.li".into(),
                action: "comment".into(),
                case_id: Some("k1".into()),
                before_state: Some("open".into()),
                after_state: Some("open".into()),
                reason: Some(format!("note {seq}")),
                detail: "{}".into(),
                prev_hash: out.last().map(|p| p.hash.clone()).unwrap_or(GENESIS.into()),
                hash: String::new(),
            };
            r.hash = hash_record(&r);
            out.push(r);
        }
        out
    }

    #[test]
    fn an_intact_chain_verifies_and_every_tampering_is_named() {
        let c = chain(4);
        let head = c[3].hash.clone();
        assert!(verify(&c, 4, &head).ok());
        assert!(verify(&[], 0, GENESIS).ok());

        let mut edited = c.clone();
        edited[1].reason = Some("rewritten".into());
        let p = verify(&edited, 4, &head).problem.unwrap();
        assert!(p.contains("record 2") && p.contains("changed"), "{p}");

        let mut deleted = c.clone();
        deleted.remove(2);
        let p = verify(&deleted, 4, &head).problem.unwrap();
        assert!(p.contains("record 3 is missing"), "{p}");

        let p = verify(&c[..3], 4, &head).problem.unwrap();
        assert!(p.contains("deleted"), "{p}");

        // A rewritten record with a recomputed hash still breaks the next link.
        let mut forged = c.clone();
        forged[1].reason = Some("rewritten".into());
        forged[1].hash = hash_record(&forged[1]);
        let p = verify(&forged, 4, &head).problem.unwrap();
        assert!(p.contains("record 3 does not follow record 2"), "{p}");
    }
}
