//! What reviewers do to a case: assign, ask for information, comment, decide, appeal. Each action
//! is one transaction: the writers' lock, the version check, the lifecycle check, the change, its
//! audit record and (for decisions) the stream records in the outbox.

use creditguard_contract::{stable_id, CreditDecision, Decision, ResultRecord};
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::db::{append_audit, case_claims, case_flags, load_case, lock_writers, NewAudit};
use crate::model::{Action, CaseRow, CaseStatus, ClaimDecision, Verdict};
use crate::{Context as _, Error, Result, Review};

use creditguard_contract::time::DAY_US;

/// A reviewer's decision on a case.
#[derive(Debug, Clone)]
pub struct DecideRequest {
    pub case_id: String,
    pub verdict: Verdict,
    /// Required: why, in the reviewer's words.
    pub reason: String,
    pub reviewer: String,
    /// For `partially_confirmed`: the claims (credit ids) the reviewer confirms, which are
    /// cancelled; the case's other claims are released. Empty otherwise.
    pub cancel_claims: Vec<String>,
    /// The case version the reviewer looked at; a case changed since is a conflict.
    pub expect_version: Option<i64>,
}

fn required<'a>(what: &str, case_id: &str, text: &'a str) -> Result<&'a str> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Error::Invalid(format!(
            "case `{case_id}`: {what} is required"
        )));
    }
    Ok(t)
}

/// Loads the case under the writers' lock and checks the caller's version and the lifecycle.
async fn begin_change(
    tx: &mut AnyConnection,
    case_id: &str,
    action: Action,
    expect_version: Option<i64>,
) -> Result<CaseRow> {
    lock_writers(tx).await?;
    let case = load_case(tx, case_id).await?;
    if let Some(v) = expect_version.filter(|v| *v != case.version) {
        return Err(Error::Conflict {
            case_id: case_id.to_string(),
            expected: v,
            found: case.version,
            status: case.status,
        });
    }
    if !case.status.allows(action) {
        return Err(Error::Transition {
            case_id: case_id.to_string(),
            status: case.status,
            action,
            allowed: CaseStatus::allowed_from(action),
        });
    }
    Ok(case)
}

/// The stream record of one claim's decision.
pub(crate) fn credit_record(d: ClaimDecision, rec: CreditDecision) -> ResultRecord {
    match d {
        ClaimDecision::Released => ResultRecord::CreditReleased(rec),
        ClaimDecision::Cancelled => ResultRecord::CreditCancelled(rec),
    }
}

/// Puts a stream record in the outbox (idempotent by record id). `seq` is the audit record of
/// the action, `pos` the record's place among that action's records.
pub(crate) async fn push_outbox(
    tx: &mut AnyConnection,
    seq: i64,
    pos: i64,
    record: &ResultRecord,
    at: i64,
) -> Result<()> {
    let (kind, id) = match record {
        ResultRecord::CaseDecision(d) => ("case_decision", d.decision_id.clone()),
        ResultRecord::CreditReleased(c) => (
            "credit_released",
            stable_id(&[&c.decision_id, &c.credit_id, &c.case_id]),
        ),
        ResultRecord::CreditCancelled(c) => (
            "credit_cancelled",
            stable_id(&[&c.decision_id, &c.credit_id, &c.case_id]),
        ),
        _ => {
            return Err(Error::Invalid(
                "only decision records go through the outbox".into(),
            ))
        }
    };
    let json = serde_json::to_string(record)
        .map_err(|e| Error::Invalid(format!("encoding a {kind} record: {e}")))?;
    sqlx::query(
        "INSERT INTO outbox (record_id, seq, pos, record_key, record, day, published_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT (record_id) DO NOTHING",
    )
    .bind(stable_id(&[kind, &id]))
    .bind(seq)
    .bind(pos)
    .bind(record.user_id().to_string())
    .bind(json)
    .bind(at.div_euclid(DAY_US))
    .execute(&mut *tx)
    .await
    .ctx(|| format!("queueing a {kind} record"))?;
    Ok(())
}

impl Review {
    /// Runs `change` on a case in one transaction after [`begin_change`], appends its audit
    /// record, commits and returns the case as stored.
    #[allow(clippy::too_many_arguments)]
    async fn simple_change(
        &self,
        case_id: &str,
        action: Action,
        actor: &str,
        reason: Option<&str>,
        expect_version: Option<i64>,
        new_status: Option<CaseStatus>,
        assignee: Option<&str>,
        now: i64,
    ) -> Result<CaseRow> {
        let actor = required("the acting person (--as)", case_id, actor)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx(|| format!("{}: {action} on case {case_id}", self.name))?;
        let case = begin_change(&mut tx, case_id, action, expect_version).await?;
        let after = new_status.unwrap_or(case.status);
        if action != Action::Comment {
            sqlx::query(
                "UPDATE cases SET status = $1, assignee = COALESCE($2, assignee), updated_at = $3, \
                 version = version + 1 WHERE case_id = $4",
            )
            .bind(after.as_str())
            .bind(assignee.map(str::to_string))
            .bind(now)
            .bind(case_id)
            .execute(&mut *tx)
            .await
            .ctx(|| format!("{action} on case {case_id}"))?;
        }
        append_audit(
            &mut tx,
            NewAudit {
                at: now,
                actor,
                action: action.as_str(),
                case_id: Some(case_id),
                before_state: Some(case.status.as_str()),
                after_state: Some(after.as_str()),
                reason,
                detail: json!({"assignee": assignee, "version": case.version}),
            },
        )
        .await?;
        let row = load_case(&mut tx, case_id).await?;
        tx.commit()
            .await
            .ctx(|| format!("{}: {action} on case {case_id}", self.name))?;
        Ok(row)
    }

    /// Assigns a case to a reviewer: `in_review`.
    pub async fn assign(
        &self,
        case_id: &str,
        to: &str,
        actor: &str,
        expect_version: Option<i64>,
        now: i64,
    ) -> Result<CaseRow> {
        let to = required("the assignee (--to)", case_id, to)?;
        self.simple_change(
            case_id,
            Action::Assign,
            actor,
            None,
            expect_version,
            Some(CaseStatus::InReview),
            Some(to),
            now,
        )
        .await
    }

    /// Asks for more information before deciding: `needs_info` (a reason is required).
    pub async fn request_info(
        &self,
        case_id: &str,
        reason: &str,
        actor: &str,
        expect_version: Option<i64>,
        now: i64,
    ) -> Result<CaseRow> {
        let reason = required("a reason (--reason)", case_id, reason)?;
        self.simple_change(
            case_id,
            Action::RequestInfo,
            actor,
            Some(reason),
            expect_version,
            Some(CaseStatus::NeedsInfo),
            None,
            now,
        )
        .await
    }

    /// Adds a comment to a case's history (any status).
    pub async fn comment(
        &self,
        case_id: &str,
        text: &str,
        actor: &str,
        now: i64,
    ) -> Result<CaseRow> {
        let text = required("the comment text", case_id, text)?;
        self.simple_change(
            case_id,
            Action::Comment,
            actor,
            Some(text),
            None,
            None,
            None,
            now,
        )
        .await
    }

    /// A learner's appeal: a decided case goes back to review as `appealed` (a reason is
    /// required). The claims keep their decision until the case is decided again.
    pub async fn appeal(
        &self,
        case_id: &str,
        reason: &str,
        actor: &str,
        expect_version: Option<i64>,
        now: i64,
    ) -> Result<CaseRow> {
        let reason = required("a reason (--reason)", case_id, reason)?;
        self.simple_change(
            case_id,
            Action::Appeal,
            actor,
            Some(reason),
            expect_version,
            Some(CaseStatus::Appealed),
            None,
            now,
        )
        .await
    }

    /// Decides a case: its claims are cancelled (confirmed), released (dismissed) or either per
    /// claim (partially confirmed); the decision and its stream records are stored with it.
    pub async fn decide(&self, req: &DecideRequest, now: i64) -> Result<Decision> {
        let case_id = req.case_id.as_str();
        let reason = required("a reason (--reason)", case_id, &req.reason)?;
        let reviewer = required("the reviewer (--as)", case_id, &req.reviewer)?;
        let mut tx = self
            .pool
            .begin()
            .await
            .ctx(|| format!("{}: deciding case {case_id}", self.name))?;
        let case = begin_change(&mut tx, case_id, Action::Decide, req.expect_version).await?;
        let claims = case_claims(&mut tx, case_id).await?;
        let flags = case_flags(&mut tx, case_id).await?;
        let decide_claim = claim_rule(req, &claims)?;

        let decision_id = stable_id(&[case_id, &now.to_string()]);
        let supersedes: Option<String> = sqlx::query(
            "SELECT decision_id FROM decisions WHERE case_id = $1 ORDER BY decided_at DESC, decision_id DESC",
        )
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await
        .ctx(|| format!("reading the decisions of case {case_id}"))?
        .and_then(|r| r.try_get(0).ok());
        let mut decision = Decision {
            decision_id: decision_id.clone(),
            case_id: case_id.to_string(),
            user_id: case.user_id.clone(),
            org_unit: case.org_unit.clone(),
            decision: req.verdict.as_str().to_string(),
            reviewer: reviewer.to_string(),
            reason: reason.to_string(),
            decided_at: now,
            released_credit_ids: Vec::new(),
            cancelled_credit_ids: Vec::new(),
            credits_released: 0.0,
            credits_cancelled: 0.0,
            flag_ids: flags.iter().map(|f| f.flag_id.clone()).collect(),
            supersedes,
        };
        let mut credit_records = Vec::with_capacity(claims.len());
        for c in &claims {
            let d = decide_claim(&c.credit_id);
            sqlx::query(
                "UPDATE case_claims SET decision = $1, decided_at = $2 WHERE case_id = $3 AND credit_id = $4",
            )
            .bind(d.as_str())
            .bind(now)
            .bind(case_id)
            .bind(&c.credit_id)
            .execute(&mut *tx)
            .await
            .ctx(|| format!("deciding claim {} of case {case_id}", c.credit_id))?;
            match d {
                ClaimDecision::Released => {
                    decision.released_credit_ids.push(c.credit_id.clone());
                    decision.credits_released += c.credits_value;
                }
                ClaimDecision::Cancelled => {
                    decision.cancelled_credit_ids.push(c.credit_id.clone());
                    decision.credits_cancelled += c.credits_value;
                }
            }
            credit_records.push(credit_record(
                d,
                CreditDecision {
                    credit_id: c.credit_id.clone(),
                    decision_id: decision_id.clone(),
                    case_id: case_id.to_string(),
                    user_id: c.user_id.clone(),
                    course_id: c.course_id.clone(),
                    completed_at: c.completed_at,
                    credits: c.credits_value,
                    decided_at: now,
                },
            ));
        }
        let after = req.verdict.status();
        sqlx::query(
            "UPDATE cases SET status = $1, decided_at = $2, decided_by = $3, decision_reason = $4, \
             updated_at = $2, version = version + 1 WHERE case_id = $5",
        )
        .bind(after.as_str())
        .bind(now)
        .bind(reviewer)
        .bind(reason)
        .bind(case_id)
        .execute(&mut *tx)
        .await
        .ctx(|| format!("deciding case {case_id}"))?;
        let record = serde_json::to_string(&decision)
            .map_err(|e| Error::Invalid(format!("encoding decision {decision_id}: {e}")))?;
        sqlx::query(
            "INSERT INTO decisions (decision_id, case_id, user_id, org_unit, decision, reviewer, \
             reason, decided_at, day, record, supersedes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&decision_id)
        .bind(case_id)
        .bind(&case.user_id)
        .bind(case.org_unit.clone())
        .bind(req.verdict.as_str())
        .bind(reviewer)
        .bind(reason)
        .bind(now)
        .bind(now.div_euclid(DAY_US))
        .bind(record)
        .bind(decision.supersedes.clone())
        .execute(&mut *tx)
        .await
        .ctx(|| format!("recording decision {decision_id}"))?;
        let seq = append_audit(
            &mut tx,
            NewAudit {
                at: now,
                actor: reviewer,
                action: Action::Decide.as_str(),
                case_id: Some(case_id),
                before_state: Some(case.status.as_str()),
                after_state: Some(after.as_str()),
                reason: Some(reason),
                detail: json!({
                    "decision_id": decision_id,
                    "released": decision.released_credit_ids,
                    "cancelled": decision.cancelled_credit_ids,
                    "version": case.version,
                }),
            },
        )
        .await?;
        push_outbox(
            &mut tx,
            seq,
            0,
            &ResultRecord::CaseDecision(decision.clone()),
            now,
        )
        .await?;
        for (pos, r) in (1..).zip(&credit_records) {
            push_outbox(&mut tx, seq, pos, r, now).await?;
        }
        tx.commit()
            .await
            .ctx(|| format!("{}: deciding case {case_id}", self.name))?;
        tracing::info!(case_id, decision = %req.verdict.as_str(), reviewer, released = decision.released_credit_ids.len(), cancelled = decision.cancelled_credit_ids.len(), "Decided case.");
        Ok(decision)
    }
}

/// Checks the claims a decision names and returns what it does to each claim of the case.
fn claim_rule<'a>(
    req: &'a DecideRequest,
    claims: &[crate::CaseClaim],
) -> Result<impl Fn(&str) -> ClaimDecision + 'a> {
    let case_id = &req.case_id;
    for id in &req.cancel_claims {
        if !claims.iter().any(|c| &c.credit_id == id) {
            return Err(Error::Invalid(format!(
                "case `{case_id}` holds no withheld claim `{id}` (its claims: {})",
                if claims.is_empty() {
                    "none".to_string()
                } else {
                    claims
                        .iter()
                        .map(|c| c.credit_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
    }
    match req.verdict {
        Verdict::PartiallyConfirmed => {
            if req.cancel_claims.is_empty() || req.cancel_claims.len() >= claims.len() {
                return Err(Error::Invalid(format!(
                    "case `{case_id}`: a partial confirmation names some but not all of the case's {} claim(s) to cancel (--claims); to cancel all, confirm",
                    claims.len()
                )));
            }
        }
        _ if !req.cancel_claims.is_empty() => {
            return Err(Error::Invalid(format!(
                "case `{case_id}`: --claims goes with partially_confirmed only"
            )));
        }
        _ => {}
    }
    Ok(move |credit_id: &str| match req.verdict {
        Verdict::Confirmed => ClaimDecision::Cancelled,
        Verdict::Dismissed => ClaimDecision::Released,
        Verdict::PartiallyConfirmed => {
            if req.cancel_claims.iter().any(|c| c == credit_id) {
                ClaimDecision::Cancelled
            } else {
                ClaimDecision::Released
            }
        }
    })
}
