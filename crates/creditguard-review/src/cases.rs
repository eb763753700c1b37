//! [`Review::sync`]: a scoring run's flags and withheld claims into cases that live across runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use creditguard_contract::{stable_id, CreditDecision};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::credits::{ClaimDecisions, ClaimVerdict};
use crate::db::{
    append_audit, case_claims, case_row, load_case, lock_writers, NewAudit, CASE_COLS, CLAIM_COLS,
};
use crate::model::{
    CaseRow, CaseStatus, ClaimDecision, SyncCandidate, SyncFlag, SyncInput, SyncOutcome,
};
use crate::{Context as _, Result, Review};

use creditguard_contract::time::DAY_US;
/// Threshold comparisons forgive floating-point noise (as the scorer's do).
const EPS: f64 = 1e-9;
/// The actor of what the scorer does to cases.
pub const SCORER: &str = "creditguard score";

/// Noisy-OR of weighted severities.
pub(crate) fn noisy_or(ps: impl IntoIterator<Item = f64>) -> f64 {
    1.0 - ps
        .into_iter()
        .fold(1.0, |acc, p| acc * (1.0 - p.clamp(0.0, 1.0)))
}

/// Where a run of unattached flags goes: the learner's active case, or a new episode.
struct Episode<'a> {
    existing: Option<String>,
    flags: Vec<&'a SyncFlag>,
    last_end: i64,
}

/// Splits a learner's unattached flags (sorted by start) into episodes: flags join the active
/// case while they start within `reopen_us` of its last flag, then consecutive flags within
/// `reopen_us` of each other form new episodes.
fn episodes<'a>(
    flags: &[&'a SyncFlag],
    active: Option<&CaseRow>,
    reopen_us: i64,
) -> Vec<Episode<'a>> {
    let mut out: Vec<Episode<'a>> = Vec::new();
    if let Some(a) = active {
        out.push(Episode {
            existing: Some(a.case_id.clone()),
            flags: Vec::new(),
            last_end: a.last_flag_at,
        });
    }
    for &f in flags {
        match out.last_mut() {
            Some(e) if f.window_start <= e.last_end + reopen_us => {
                e.flags.push(f);
                e.last_end = e.last_end.max(f.window_end);
            }
            _ => out.push(Episode {
                existing: None,
                flags: vec![f],
                last_end: f.window_end,
            }),
        }
    }
    out.retain(|e| !e.flags.is_empty());
    out
}

impl Review {
    /// Brings the review state up to date with one scoring run, in one transaction:
    /// 1. each learner's flags that belong to no case yet join the active case or open new ones
    ///    (a new episode becomes a case when its flags' combined risk reaches the review
    ///    threshold; below it, the flags wait unattached for more evidence);
    /// 2. each withheld claim is recorded with the cases of the flags that withheld it (a claim
    ///    that reaches an already decided case takes that decision: dismissed flags release it,
    ///    confirmed ones cancel it);
    /// 3. the decisions standing on the run's claims are returned for the credit records.
    ///
    /// Ids and groupings depend only on the flags, so re-scoring the same data changes nothing.
    pub async fn sync(&self, input: &SyncInput, now: i64) -> Result<SyncOutcome> {
        let name = self.name.clone();
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx(|| format!("{name}: starting the case sync"))?;
        lock_writers(&mut tx).await?;
        let mut out = SyncOutcome::default();
        let mut candidates: Vec<&SyncCandidate> = input.candidates.iter().collect();
        candidates.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        for cand in candidates {
            attach_candidate(&mut tx, cand, input, now, &mut out).await?;
        }
        let touched_by_claims = record_claims(&mut tx, input, &out.flag_case, now).await?;
        out.decisions = standing_decisions(&mut tx, &input.claim_ids).await?;
        let mut ids: BTreeSet<String> = out.flag_case.values().cloned().collect();
        ids.extend(touched_by_claims);
        ids.extend(
            out.decisions
                .by_credit
                .values()
                .flatten()
                .map(|v| v.case_id.clone()),
        );
        for id in ids {
            out.cases.push(load_case(&mut tx, &id).await?);
        }
        tx.commit()
            .await
            .ctx(|| format!("{name}: committing the case sync"))?;
        tracing::info!(
            database = %name,
            opened = out.opened,
            flags_attached = out.flags_attached,
            cases = out.cases.len(),
            "Synced review cases."
        );
        Ok(out)
    }
}

async fn attach_candidate(
    tx: &mut AnyConnection,
    cand: &SyncCandidate,
    input: &SyncInput,
    now: i64,
    out: &mut SyncOutcome,
) -> Result<()> {
    let user = cand.user_id.as_str();
    let rows = sqlx::query("SELECT flag_id, case_id FROM case_flags WHERE user_id = $1")
        .bind(user)
        .fetch_all(&mut *tx)
        .await
        .ctx(|| format!("reading the case flags of {user}"))?;
    let mut attached: HashMap<String, String> = HashMap::with_capacity(rows.len());
    for r in &rows {
        let (f, c): (String, String) = (
            r.try_get(0).ctx(|| "case_flags".into())?,
            r.try_get(1).ctx(|| "case_flags".into())?,
        );
        attached.insert(f, c);
    }
    let mut unattached: Vec<&SyncFlag> = Vec::new();
    for f in &cand.flags {
        match attached.get(&f.flag_id) {
            Some(case_id) => {
                out.flag_case.insert(f.flag_id.clone(), case_id.clone());
            }
            None => unattached.push(f),
        }
    }
    if unattached.is_empty() {
        return Ok(());
    }
    unattached.sort_by(|a, b| (a.window_start, &a.flag_id).cmp(&(b.window_start, &b.flag_id)));
    unattached.dedup_by(|a, b| a.flag_id == b.flag_id);
    let rows = sqlx::query(&format!(
        "SELECT {CASE_COLS} FROM cases WHERE user_id = $1 ORDER BY first_flag_at DESC, case_id DESC"
    ))
    .bind(user)
    .fetch_all(&mut *tx)
    .await
    .ctx(|| format!("reading the cases of {user}"))?;
    let cases = rows.iter().map(case_row).collect::<Result<Vec<_>>>()?;
    let active = cases.iter().find(|c| !c.status.is_decided());
    let mut previous = cases.first().map(|c| c.case_id.clone());
    let reopen_us = input.reopen_after_days.max(0) * DAY_US;
    for ep in episodes(&unattached, active, reopen_us) {
        let case_id = match ep.existing {
            Some(id) => {
                add_flags(tx, &id, &ep.flags, now).await?;
                id
            }
            None => {
                let risk = noisy_or(ep.flags.iter().map(|f| f.weighted_severity));
                if risk < input.review_threshold - EPS {
                    continue;
                }
                let id = open_case(tx, cand, &ep.flags, previous.as_deref(), risk, now).await?;
                out.opened += 1;
                previous = Some(id.clone());
                id
            }
        };
        out.flags_attached += ep.flags.len();
        for f in &ep.flags {
            out.flag_case.insert(f.flag_id.clone(), case_id.clone());
        }
    }
    Ok(())
}

async fn insert_flags(
    tx: &mut AnyConnection,
    case_id: &str,
    user: &str,
    flags: &[&SyncFlag],
) -> Result<()> {
    for f in flags {
        sqlx::query(
            "INSERT INTO case_flags (flag_id, case_id, user_id, detector, rule, org_unit, course_id, \
             window_start, window_end, weighted_severity, day) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&f.flag_id)
        .bind(case_id)
        .bind(user)
        .bind(&f.detector)
        .bind(&f.rule)
        .bind(f.org_unit.clone())
        .bind(f.course_id.clone())
        .bind(f.window_start)
        .bind(f.window_end)
        .bind(f.weighted_severity)
        .bind(f.day)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("attaching flag {} to case {case_id}", f.flag_id))?;
    }
    // The case's rules (`,rule,rule,`), which the queue's rule filter reads.
    let rows = sqlx::query("SELECT DISTINCT rule FROM case_flags WHERE case_id = $1 ORDER BY rule")
        .bind(case_id)
        .fetch_all(&mut *tx)
        .await
        .ctx(|| format!("reading the rules of case {case_id}"))?;
    let mut rules = String::from(",");
    for r in &rows {
        let rule: String = r.try_get(0).ctx(|| "case_flags.rule".into())?;
        rules.push_str(&rule);
        rules.push(',');
    }
    sqlx::query("UPDATE cases SET rules = $1 WHERE case_id = $2")
        .bind(rules)
        .bind(case_id)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("recording the rules of case {case_id}"))?;
    Ok(())
}

async fn open_case(
    tx: &mut AnyConnection,
    cand: &SyncCandidate,
    flags: &[&SyncFlag],
    previous: Option<&str>,
    risk: f64,
    now: i64,
) -> Result<String> {
    let user = cand.user_id.as_str();
    let first = flags[0];
    let case_id = stable_id(&["case", user, &first.flag_id]);
    let first_at = flags.iter().map(|f| f.window_start).min().unwrap_or(0);
    let last_at = flags.iter().map(|f| f.window_end).max().unwrap_or(0);
    let org = cand
        .org_unit
        .clone()
        .or_else(|| flags.iter().find_map(|f| f.org_unit.clone()));
    sqlx::query(&format!(
        "INSERT INTO cases ({CASE_COLS}) VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $9, $9, NULL, NULL, NULL, 1)"
    ))
    .bind(&case_id)
    .bind(user)
    .bind(org)
    .bind(CaseStatus::Open.as_str())
    .bind(risk)
    .bind(first_at)
    .bind(last_at)
    .bind(previous.map(str::to_string))
    .bind(now)
    .execute(&mut *tx)
    .await
    .ctx(|| format!("opening case {case_id}"))?;
    insert_flags(tx, &case_id, user, flags).await?;
    let flag_ids: Vec<&str> = flags.iter().map(|f| f.flag_id.as_str()).collect();
    append_audit(
        tx,
        NewAudit {
            at: now,
            actor: SCORER,
            action: "open",
            case_id: Some(&case_id),
            before_state: None,
            after_state: Some(CaseStatus::Open.as_str()),
            reason: None,
            detail: json!({"user_id": user, "risk": risk, "flag_ids": flag_ids, "previous_case_id": previous}),
        },
    )
    .await?;
    Ok(case_id)
}

async fn add_flags(
    tx: &mut AnyConnection,
    case_id: &str,
    flags: &[&SyncFlag],
    now: i64,
) -> Result<()> {
    let case = load_case(tx, case_id).await?;
    insert_flags(tx, case_id, &case.user_id, flags).await?;
    let sev = sqlx::query("SELECT weighted_severity FROM case_flags WHERE case_id = $1")
        .bind(case_id)
        .fetch_all(&mut *tx)
        .await
        .ctx(|| format!("reading the flags of case {case_id}"))?;
    let risk = noisy_or(sev.iter().map(|r| r.try_get::<f64, _>(0).unwrap_or(0.0)));
    let first_at = flags
        .iter()
        .map(|f| f.window_start)
        .fold(case.first_flag_at, i64::min);
    let last_at = flags
        .iter()
        .map(|f| f.window_end)
        .fold(case.last_flag_at, i64::max);
    sqlx::query(
        "UPDATE cases SET risk = $1, first_flag_at = $2, last_flag_at = $3, updated_at = $4, \
         version = version + 1 WHERE case_id = $5",
    )
    .bind(risk)
    .bind(first_at)
    .bind(last_at)
    .bind(now)
    .bind(case_id)
    .execute(&mut *tx)
    .await
    .ctx(|| format!("updating case {case_id}"))?;
    let flag_ids: Vec<&str> = flags.iter().map(|f| f.flag_id.as_str()).collect();
    append_audit(
        tx,
        NewAudit {
            at: now,
            actor: SCORER,
            action: "add_flags",
            case_id: Some(case_id),
            before_state: Some(case.status.as_str()),
            after_state: Some(case.status.as_str()),
            reason: None,
            detail: json!({"flag_ids": flag_ids, "risk_before": case.risk, "risk": risk}),
        },
    )
    .await?;
    Ok(())
}

/// Records each withheld claim with the cases of its flags; returns the cases that gained claims.
async fn record_claims(
    tx: &mut AnyConnection,
    input: &SyncInput,
    flag_case: &HashMap<String, String>,
    now: i64,
) -> Result<BTreeSet<String>> {
    // case → (claim, the claim's flags in that case)
    let mut per_case: BTreeMap<&str, Vec<(&crate::WithheldClaim, Vec<String>)>> = BTreeMap::new();
    for w in &input.withheld {
        let mut by_case: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for f in &w.flag_ids {
            if let Some(c) = flag_case.get(f) {
                by_case.entry(c.as_str()).or_default().push(f.clone());
            }
        }
        for (c, flags) in by_case {
            per_case.entry(c).or_default().push((w, flags));
        }
    }
    let mut touched = BTreeSet::new();
    for (case_id, claims) in per_case {
        let mut added = Vec::new();
        let mut inherited = Vec::new();
        let case = load_case(tx, case_id).await?;
        let existing = case_claims(tx, case_id).await?;
        for (w, flags) in claims {
            if existing.iter().any(|c| c.credit_id == w.credit_id) {
                continue;
            }
            let decision = inherited_decision(&case, &existing, &flags);
            sqlx::query(&format!(
                "INSERT INTO case_claims ({CLAIM_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(case_id)
            .bind(&w.credit_id)
            .bind(&w.user_id)
            .bind(&w.course_id)
            .bind(w.completed_at)
            .bind(w.credits_value)
            .bind(serde_json::to_string(&flags).unwrap_or_default())
            .bind(decision.map(|d| d.as_str().to_string()))
            .bind(decision.map(|_| now))
            .execute(&mut *tx)
            .await
            .ctx(|| format!("recording claim {} with case {case_id}", w.credit_id))?;
            added.push(w.credit_id.clone());
            if let Some(d) = decision {
                inherited.push((w, d));
            }
        }
        if added.is_empty() {
            continue;
        }
        touched.insert(case_id.to_string());
        let inherited_ids: Vec<(&str, &str)> = inherited
            .iter()
            .map(|(w, d)| (w.credit_id.as_str(), d.as_str()))
            .collect();
        let seq = append_audit(
            tx,
            NewAudit {
                at: now,
                actor: crate::cases::SCORER,
                action: "add_claims",
                case_id: Some(case_id),
                before_state: Some(case.status.as_str()),
                after_state: Some(case.status.as_str()),
                reason: None,
                detail: json!({"credit_ids": added, "decided_by_the_case": inherited_ids}),
            },
        )
        .await?;
        if !inherited.is_empty() {
            let decision_id: Option<String> = sqlx::query(
                "SELECT decision_id FROM decisions WHERE case_id = $1 ORDER BY decided_at DESC, decision_id DESC",
            )
            .bind(case_id)
            .fetch_optional(&mut *tx)
            .await
            .ctx(|| format!("reading the decision of case {case_id}"))?
            .and_then(|r| r.try_get(0).ok());
            for (pos, (w, d)) in (1..).zip(inherited) {
                let rec = CreditDecision {
                    credit_id: w.credit_id.clone(),
                    decision_id: decision_id.clone().unwrap_or_default(),
                    case_id: case_id.to_string(),
                    user_id: w.user_id.clone(),
                    course_id: w.course_id.clone(),
                    completed_at: w.completed_at,
                    credits: w.credits_value,
                    decided_at: now,
                };
                crate::decide::push_outbox(
                    tx,
                    seq,
                    pos,
                    &crate::decide::credit_record(d, rec),
                    now,
                )
                .await?;
            }
        }
    }
    Ok(touched)
}

/// The decision a new claim takes from the decided case it reaches: a dismissal releases it, a
/// confirmation cancels it, a partial confirmation cancels it when it shares a flag with a claim
/// the reviewer cancelled. An undecided case decides nothing.
fn inherited_decision(
    case: &CaseRow,
    existing: &[crate::CaseClaim],
    flags: &[String],
) -> Option<ClaimDecision> {
    match case.status {
        CaseStatus::Dismissed => Some(ClaimDecision::Released),
        CaseStatus::Confirmed => Some(ClaimDecision::Cancelled),
        CaseStatus::PartiallyConfirmed => {
            let cancelled: BTreeSet<&str> = existing
                .iter()
                .filter(|c| c.decision == Some(ClaimDecision::Cancelled))
                .flat_map(|c| c.flag_ids.iter().map(String::as_str))
                .collect();
            Some(if flags.iter().any(|f| cancelled.contains(f.as_str())) {
                ClaimDecision::Cancelled
            } else {
                ClaimDecision::Released
            })
        }
        _ => None,
    }
}

/// The decisions standing on the given claims, with the flags each deciding case covers.
impl Review {
    /// The decisions standing on these claims (credit ids), for rewriting their credit records
    /// after a decision (see [`apply_decisions`](crate::apply_decisions)).
    pub async fn decisions_for(&self, credit_ids: &[String]) -> Result<ClaimDecisions> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("{}: reading the decisions on claims", self.name))?;
        standing_decisions(&mut conn, credit_ids).await
    }
}

pub(crate) async fn standing_decisions(
    tx: &mut AnyConnection,
    credit_ids: &[String],
) -> Result<ClaimDecisions> {
    let mut out = ClaimDecisions::default();
    let mut covered: HashMap<String, BTreeSet<String>> = HashMap::new();
    for chunk in credit_ids.chunks(500) {
        let params: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {CLAIM_COLS} FROM case_claims WHERE decision IS NOT NULL AND credit_id IN ({})",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id.clone());
        }
        let rows = q
            .fetch_all(&mut *tx)
            .await
            .ctx(|| "reading the decisions on claims".into())?;
        for r in &rows {
            let claim = crate::db::claim_row(r)?;
            let Some(decision) = claim.decision else {
                continue;
            };
            if !covered.contains_key(&claim.case_id) {
                let flags = sqlx::query("SELECT flag_id FROM case_flags WHERE case_id = $1")
                    .bind(&claim.case_id)
                    .fetch_all(&mut *tx)
                    .await
                    .ctx(|| format!("reading the flags of case {}", claim.case_id))?;
                let set = flags
                    .iter()
                    .filter_map(|r| r.try_get::<String, _>(0).ok())
                    .collect();
                covered.insert(claim.case_id.clone(), set);
            }
            out.by_credit
                .entry(claim.credit_id.clone())
                .or_default()
                .push(ClaimVerdict {
                    covered_flags: covered[&claim.case_id].clone(),
                    case_id: claim.case_id,
                    decision,
                    credits_value: claim.credits_value,
                });
        }
    }
    for v in out.by_credit.values_mut() {
        v.sort_by(|a, b| a.case_id.cmp(&b.case_id));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(id: &str, start_day: i64) -> SyncFlag {
        SyncFlag {
            flag_id: id.into(),
            detector: "quiz_speed".into(),
            rule: "quiz_speed.too_fast".into(),
            org_unit: None,
            course_id: None,
            window_start: start_day * DAY_US,
            window_end: start_day * DAY_US + 3_600_000_000,
            weighted_severity: 0.6,
            day: start_day,
        }
    }

    #[test]
    fn flags_split_into_episodes_by_the_quiet_gap() {
        let fs = [flag("a", 1), flag("b", 3), flag("c", 40), flag("d", 45)];
        let refs: Vec<&SyncFlag> = fs.iter().collect();
        let eps = episodes(&refs, None, 30 * DAY_US);
        let ids: Vec<Vec<&str>> = eps
            .iter()
            .map(|e| e.flags.iter().map(|f| f.flag_id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["a", "b"], vec!["c", "d"]]);
        assert!(eps.iter().all(|e| e.existing.is_none()));
    }
}
