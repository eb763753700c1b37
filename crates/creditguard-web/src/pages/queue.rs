//! `/cases`: the queue inside the viewer's scope, filtered by org unit (subtree), rule, status,
//! risk, age and assignee, highest risk then oldest first, with counts per status.

use axum::extract::{Query, State};
use axum::response::Response;
use creditguard_review::{now_us, CaseStatus, QueueQuery, Role};
use maud::html;
use serde::Deserialize;

use super::{age_days, layout, page, status_badge, MAX_VALUE};
use crate::auth::{pct, Viewer};
use crate::error::{Result, WebError};
use crate::AppState;

const PAGE_SIZE: i64 = 50;
use creditguard_contract::time::DAY_US;

/// The filters as typed; each is checked before it reaches a query (as a bound parameter).
#[derive(Debug, Default, Deserialize)]
pub struct QueueParams {
    org_unit: Option<String>,
    rule: Option<String>,
    status: Option<String>,
    min_risk: Option<String>,
    older_than_days: Option<String>,
    assignee: Option<String>,
    user: Option<String>,
    page: Option<String>,
}

fn text(name: &str, v: &Option<String>) -> Result<Option<String>> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.len() > MAX_VALUE || s.chars().any(char::is_control) => {
            Err(WebError::BadRequest(format!(
                "filter `{name}`: too long or contains control characters"
            )))
        }
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// The statuses waiting for a reviewer (the default view).
pub(crate) const WAITING: [CaseStatus; 4] = [
    CaseStatus::Open,
    CaseStatus::InReview,
    CaseStatus::NeedsInfo,
    CaseStatus::Appealed,
];

impl QueueParams {
    fn query(&self, viewer: &Viewer, now: i64) -> Result<(QueueQuery, i64)> {
        let statuses = match text("status", &self.status)?.as_deref() {
            None | Some("waiting") => WAITING.to_vec(),
            Some("all") => Vec::new(),
            Some(s) => vec![CaseStatus::parse(s).ok_or_else(|| {
                WebError::BadRequest(format!(
                    "filter `status`: `{s}` is not one of waiting, all, {}",
                    CaseStatus::ALL.map(|c| c.as_str()).join(", ")
                ))
            })?],
        };
        let min_risk = match text("min_risk", &self.min_risk)? {
            None => None,
            Some(s) => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        WebError::BadRequest(format!(
                            "filter `min_risk`: `{s}` is not a number from 0 to 1"
                        ))
                    })?,
            ),
        };
        let opened_before = match text("older_than_days", &self.older_than_days)? {
            None => None,
            Some(s) => Some(
                s.parse::<i64>()
                    .ok()
                    .filter(|d| (0..=3650).contains(d))
                    .map(|d| now - d * DAY_US)
                    .ok_or_else(|| {
                        WebError::BadRequest(format!(
                            "filter `older_than_days`: `{s}` is not a whole number of days from 0 to 3650"
                        ))
                    })?,
            ),
        };
        let assignee = match text("assignee", &self.assignee)?.as_deref() {
            None => None,
            Some("me") => Some(Some(viewer.name().to_string())),
            Some("none") => Some(None),
            Some(a) => Some(Some(a.to_string())),
        };
        let page = match text("page", &self.page)? {
            None => 1,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| {
                    WebError::BadRequest(format!("`page`: `{s}` is not a page number"))
                })?,
        };
        Ok((
            QueueQuery {
                scope: viewer.account.scope.clone(),
                statuses,
                org_unit: text("org_unit", &self.org_unit)?,
                rule: text("rule", &self.rule)?,
                user_id: text("user", &self.user)?,
                assignee,
                min_risk,
                opened_before,
                limit: PAGE_SIZE,
                offset: (page - 1) * PAGE_SIZE,
            },
            page,
        ))
    }

    /// The query string of these filters with `status` and `page` replaced.
    fn link(&self, status: Option<&str>, page: Option<i64>) -> String {
        let mut parts = Vec::new();
        let mut add = |k: &str, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                parts.push(format!("{k}={}", pct(v)));
            }
        };
        add("org_unit", self.org_unit.as_deref());
        add("rule", self.rule.as_deref());
        add("status", status.or(self.status.as_deref()));
        add("min_risk", self.min_risk.as_deref());
        add("older_than_days", self.older_than_days.as_deref());
        add("assignee", self.assignee.as_deref());
        add("user", self.user.as_deref());
        let p = page.map(|p| p.to_string());
        add("page", p.as_deref());
        format!("/cases?{}", parts.join("&"))
    }
}

/// `GET /cases`.
pub async fn queue(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(params): Query<QueueParams>,
) -> Result<Response> {
    if viewer.account.scope.is_empty() {
        return Err(WebError::Forbidden(
            viewer
                .lang
                .t(
                    "your account sees no org units",
                    "您的账户没有可查看的组织单元",
                )
                .into(),
        ));
    }
    let now = now_us();
    let (q, page_no) = params.query(&viewer, now)?;
    let review = state.review();
    let (result, rules) = tokio::try_join!(
        async { Ok::<_, WebError>(review.queue(&q).await?) },
        state.rules()
    )?;
    let l = viewer.lang;
    let can_take = matches!(viewer.role(), Role::Reviewer | Role::Lead);
    let pages = (result.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let status_value = params.status.clone().unwrap_or_default();
    let body = html! {
        p.scope { (l.t("Your scope", "您的范围")) ": " (viewer.account.scope.0.join(", ")) }
        ul.counts {
            @for (s, n) in &result.by_status {
                li { a href=(params.link(Some(s.as_str()), None)) { (status_badge(l, *s)) " " (n) } }
            }
            li { a href=(params.link(Some("all"), None)) { (l.t("all", "全部")) } }
        }
        form.filters method="get" action="/cases" {
            label { (l.t("Org unit (and below)", "组织单元（含下级）"))
                input type="text" name="org_unit" value=(params.org_unit.clone().unwrap_or_default()); }
            label { (l.t("Rule", "规则"))
                select name="rule" {
                    option value="" { (l.t("any", "全部")) }
                    @for r in rules.iter() {
                        option value=(r) selected[params.rule.as_deref() == Some(r.as_str())] { (r) }
                    }
                }
            }
            label { (l.t("Status", "状态"))
                select name="status" {
                    option value="waiting" selected[status_value.is_empty() || status_value == "waiting"] { (l.t("waiting for review", "待审核")) }
                    option value="all" selected[status_value == "all"] { (l.t("all", "全部")) }
                    @for s in CaseStatus::ALL {
                        option value=(s.as_str()) selected[status_value == s.as_str()] { (l.status(s)) }
                    }
                }
            }
            label { (l.t("Risk at least", "风险不低于"))
                input type="text" name="min_risk" size="4" value=(params.min_risk.clone().unwrap_or_default()); }
            label { (l.t("Older than (days)", "超过天数"))
                input type="text" name="older_than_days" size="4" value=(params.older_than_days.clone().unwrap_or_default()); }
            label { (l.t("Assignee", "处理人"))
                input type="text" name="assignee" size="10" placeholder=(l.t("me / none / name", "me / none / 用户名")) value=(params.assignee.clone().unwrap_or_default()); }
            button type="submit" { (l.t("Filter", "筛选")) }
        }
        p { (result.total) " " (l.t("cases", "个案件")) }
        table.queue {
            thead { tr {
                th { (l.t("Risk", "风险")) } th { (l.t("Case", "案件")) } th { (l.t("Learner", "学员")) }
                th { (l.t("Org unit", "组织单元")) } th { (l.t("Status", "状态")) } th { (l.t("Assignee", "处理人")) }
                th { (l.t("Age (days)", "天数")) } th {}
            } }
            tbody {
                @for c in &result.cases {
                    tr {
                        td.num { (format!("{:.2}", c.risk)) }
                        td { a href={"/cases/" (pct(&c.case_id))} { (c.case_id) } }
                        td { a href={"/learners/" (pct(&c.user_id))} { (c.user_id) } }
                        td { (c.org_unit.clone().unwrap_or_default()) }
                        td { (status_badge(l, c.status)) }
                        td { (c.assignee.clone().unwrap_or_default()) }
                        td.num { (age_days(now, c.opened_at)) }
                        td {
                            @if can_take && !c.status.is_decided() && c.assignee.as_deref() != Some(viewer.name()) {
                                form.inline method="post" action={"/cases/" (pct(&c.case_id)) "/assign"} {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    input type="hidden" name="to" value="me";
                                    input type="hidden" name="back" value=(viewer.here);
                                    button type="submit" { (l.t("Assign to me", "分配给我")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if pages > 1 {
            p.pages {
                @if page_no > 1 { a href=(params.link(None, Some(page_no - 1))) { "← " (l.t("previous", "上一页")) } " " }
                (page_no) " / " (pages)
                @if page_no < pages { " " a href=(params.link(None, Some(page_no + 1))) { (l.t("next", "下一页")) " →" } }
            }
        }
    };
    Ok(page(layout(&viewer, l.t("Review queue", "审核队列"), body)))
}
