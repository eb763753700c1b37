//! `/audit` for auditors (the trail, filterable, with the chain's verification) and `/accounts`
//! for administrators (who has which role and scope; no learner data).

use axum::extract::{Query, State};
use axum::response::Response;
use creditguard_contract::time::parse_day;
use creditguard_review::{AuditQuery, Role};
use maud::html;
use serde::Deserialize;

use super::{layout, page, when, MAX_VALUE};
use crate::auth::Viewer;
use crate::error::{Result, WebError};
use crate::AppState;

use creditguard_contract::time::DAY_US;

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    case_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn value(name: &str, v: &Option<String>) -> Result<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() > MAX_VALUE => {
            Err(WebError::BadRequest(format!("filter `{name}` is too long")))
        }
        Some(s) => Ok(Some(s.to_string())),
    }
}

fn day(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    value(name, v)?
        .map(|s| {
            parse_day(&s).map_err(|e| {
                WebError::BadRequest(format!("filter `{name}`: `{s}`: {e} (expected YYYY-MM-DD)"))
            })
        })
        .transpose()
}

/// `GET /audit`.
pub async fn audit(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(p): Query<AuditParams>,
) -> Result<Response> {
    viewer.require(&[Role::Auditor])?;
    let q = AuditQuery {
        actor: value("actor", &p.actor)?,
        action: value("action", &p.action)?,
        case_id: value("case_id", &p.case_id)?,
        from: day("from", &p.from)?.map(|d| d * DAY_US),
        to: day("to", &p.to)?.map(|d| (d + 1) * DAY_US),
        limit: 500,
    };
    let review = state.review();
    let (records, verify) = tokio::try_join!(review.audit_search(&q), review.verify_audit())?;
    let l = viewer.lang;
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        @match &verify.problem {
            None => p.ok { (l.t("Hash chain verified", "哈希链校验通过")) ": " (verify.records) " " (l.t("records, none changed or deleted.", "条记录，无篡改或删除。")) },
            Some(problem) => p.error { (l.t("Hash chain BROKEN", "哈希链已损坏")) ": " (problem) },
        }
        form.filters method="get" action="/audit" {
            label { (l.t("Who", "操作人")) input type="text" name="actor" value=(v(&p.actor)); }
            label { (l.t("Action", "操作")) input type="text" name="action" value=(v(&p.action)) placeholder="view_case, decide…"; }
            label { (l.t("Case", "案件")) input type="text" name="case_id" value=(v(&p.case_id)); }
            label { (l.t("From", "从")) input type="text" name="from" size="10" placeholder="YYYY-MM-DD" value=(v(&p.from)); }
            label { (l.t("To", "到")) input type="text" name="to" size="10" placeholder="YYYY-MM-DD" value=(v(&p.to)); }
            button type="submit" { (l.t("Filter", "筛选")) }
        }
        p.small { (l.t("Newest first, at most 500.", "最新在前，最多 500 条。")) }
        table.audit {
            thead { tr { th { "#" } th { (l.t("When", "时间")) } th { (l.t("Who", "操作人")) } th { (l.t("Action", "操作")) }
                th { (l.t("Case", "案件")) } th { (l.t("State", "状态")) } th { (l.t("Reason", "理由")) } th { (l.t("Detail", "详情")) } } }
            tbody {
                @for r in &records {
                    tr { td.num { (r.seq) } td { (when(r.at)) } td { (r.actor) } td { (r.action) }
                        td { (r.case_id.clone().unwrap_or_default()) }
                        td { (r.before_state.clone().unwrap_or_default()) @if r.after_state.is_some() { " → " (r.after_state.clone().unwrap_or_default()) } }
                        td { (r.reason.clone().unwrap_or_default()) }
                        td { code { (r.detail) } } }
                }
            }
        }
    };
    Ok(page(layout(&viewer, l.t("Audit trail", "审计日志"), body)))
}

/// `GET /accounts`.
pub async fn accounts(State(state): State<AppState>, viewer: Viewer) -> Result<Response> {
    viewer.require(&[Role::Admin])?;
    let accounts = state.review().accounts().await?;
    let l = viewer.lang;
    let body = html! {
        p { (l.t("Accounts are managed with `creditguard users add|disable|set-password|list`.", "账户通过 `creditguard users add|disable|set-password|list` 管理。")) }
        table {
            thead { tr { th { (l.t("Username", "用户名")) } th { (l.t("Role", "角色")) } th { (l.t("Scopes", "范围")) } th { (l.t("Enabled", "启用")) } th { (l.t("Created", "创建")) } } }
            tbody {
                @for a in &accounts {
                    tr { td { (a.username) } td { (a.role.as_str()) } td { (a.scope.0.join(", ")) }
                        td { (if a.disabled { l.t("disabled", "已停用") } else { l.t("yes", "是") }) } td { (when(a.created_at)) } }
                }
            }
        }
    };
    Ok(page(layout(&viewer, l.t("Accounts", "账户"), body)))
}
