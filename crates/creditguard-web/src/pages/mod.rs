//! The pages. Every value goes through maud's escaping; the only unescaped markup is the
//! timeline and chart SVG this crate and `creditguard-score` build, which escape their text.
//! Every case, learner, timeline and export is loaded through [`scoped_case`] /
//! [`learner_cases`], which answer 404 outside the viewer's scope.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use creditguard_contract::time::format_rfc3339_us;
use creditguard_review::{CaseRow, CaseStatus, QueueQuery, Role};
use maud::{html, Markup, DOCTYPE};

use crate::auth::{pct, Viewer};
use crate::error::{Result, WebError};
use crate::i18n::Lang;
use crate::AppState;

mod audit;
mod case;
mod overview;
mod queue;

pub use audit::{accounts, audit};
pub use case::{appeal, assign, case, comment, decide, export, learner, timeline};
pub use overview::overview;
pub use queue::queue;

/// Longest id or filter value accepted (longer ones are refused, not truncated).
pub(crate) const MAX_VALUE: usize = 200;

/// A case the viewer may see: 404 when it does not exist *or* is outside the viewer's scope.
pub(crate) async fn scoped_case(
    state: &AppState,
    viewer: &Viewer,
    case_id: &str,
) -> Result<CaseRow> {
    if case_id.len() > MAX_VALUE {
        return Err(WebError::NotFound);
    }
    match state.review().case(case_id).await {
        Ok(c) if viewer.account.scope.covers(c.org_unit.as_deref()) => Ok(c),
        Ok(_) | Err(creditguard_review::Error::UnknownCase(_)) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// A learner's cases inside the viewer's scope: 404 when there are none.
pub(crate) async fn learner_cases(
    state: &AppState,
    viewer: &Viewer,
    user_id: &str,
) -> Result<Vec<CaseRow>> {
    if user_id.len() > MAX_VALUE || viewer.account.scope.is_empty() {
        return Err(WebError::NotFound);
    }
    let page = state
        .review()
        .queue(&QueueQuery {
            scope: viewer.account.scope.clone(),
            user_id: Some(user_id.to_string()),
            limit: 500,
            ..QueueQuery::default()
        })
        .await?;
    if page.cases.is_empty() {
        return Err(WebError::NotFound);
    }
    Ok(page.cases)
}

/// The employee behind `user_id` for a viewer who may see them: a reviewer or lead, a learner
/// the caller has already checked is inside the viewer's scope ([`scoped_case`],
/// [`learner_cases`]), and an app given the roster. Each time is an audit record `reidentify`
/// (naming the pseudonym, never the employee).
pub(crate) async fn reidentify(
    state: &AppState,
    viewer: &Viewer,
    user_id: &str,
    case_id: Option<&str>,
) -> Result<Option<creditguard_contract::privacy::Identity>> {
    let Some(ids) = state.config().identities.as_deref() else {
        return Ok(None);
    };
    if !viewer.role().may_reidentify() {
        return Ok(None);
    }
    let Some(who) = ids.get(user_id) else {
        return Ok(None);
    };
    state
        .review()
        .record_access(
            viewer.name(),
            "reidentify",
            case_id,
            serde_json::json!({"user_id": user_id}),
            creditguard_review::now_us(),
        )
        .await?;
    Ok(Some(who.clone()))
}

/// ` · employee E-1001 Li Wei` after a learner's pseudonym; nothing when not re-identified.
pub(crate) fn employee(l: Lang, who: &Option<creditguard_contract::privacy::Identity>) -> Markup {
    html! {
        @if let Some(w) = who {
            " · " (l.t("employee", "员工")) " " strong.employee { (w.employee_id) }
            @if let Some(n) = &w.name { " " (n) }
        }
    }
}

/// `2026-03-02 09:15 UTC`.
pub(crate) fn when(us: i64) -> String {
    let s = format_rfc3339_us(us);
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// Whole days between two times.
pub(crate) fn age_days(now: i64, then: i64) -> i64 {
    (now - then).max(0) / creditguard_contract::time::DAY_US
}

pub(crate) fn status_badge(lang: Lang, s: CaseStatus) -> Markup {
    html! { span class={"badge s-" (s.as_str())} { (lang.status(s)) } }
}

/// The frame of every signed-in page: navigation by role, the language toggle, logout.
pub(crate) fn layout(v: &Viewer, title: &str, body: Markup) -> Markup {
    let l = v.lang;
    let role = v.role();
    let sees_cases = !v.account.scope.is_empty();
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · creditguard" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header.top {
                    span.brand { "creditguard" }
                    nav {
                        @if sees_cases {
                            a href="/cases" { (l.t("Queue", "审核队列")) }
                            a href="/overview" { (l.t("Overview", "数据大屏")) }
                        }
                        @if role == Role::Auditor {
                            a href="/audit" { (l.t("Audit trail", "审计日志")) }
                        }
                        @if role == Role::Admin {
                            a href="/accounts" { (l.t("Accounts", "账户")) }
                        }
                    }
                    span.who { (v.name()) " (" (role.as_str()) ")" }
                    a.lang href={"/lang?to=" (match l.other() { Lang::En => "en", Lang::Zh => "zh" }) "&back=" (pct(&v.here))} {
                        (l.t("中文", "English"))
                    }
                    form.inline method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(v.csrf);
                        button type="submit" { (l.t("Log out", "退出")) }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The login page.
pub(crate) fn login(lang: Lang, csrf: &str, next: &str, message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                title { (lang.t("Log in", "登录")) " · creditguard" }
                link rel="stylesheet" href="/static/app.css";
            }
            body.login {
                main {
                    h1 { "creditguard" }
                    p { (lang.t("Review of flagged training credits", "培训学分异常审核")) }
                    @if let Some(m) = message { p.error { (m) } }
                    form method="post" action="/login" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="next" value=(next);
                        label { (lang.t("Username", "用户名")) input type="text" name="username" autocomplete="username" required; }
                        label { (lang.t("Password", "密码")) input type="password" name="password" autocomplete="current-password" required; }
                        button type="submit" { (lang.t("Log in", "登录")) }
                    }
                    p.small {
                        a href={"/lang?to=" (match lang.other() { Lang::En => "en", Lang::Zh => "zh" }) "&back=" (pct(&format!("/login?next={}", pct(next))))} {
                            (lang.t("中文", "English"))
                        }
                    }
                }
            }
        }
    }
}

/// The page of a refused or failed request (bilingual: the viewer may not be known).
pub(crate) fn error_page(status: StatusCode, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { (status.as_u16()) " · creditguard" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                main {
                    h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                    p.error { (message) }
                    p { a href="/cases" { "← creditguard" } }
                }
            }
        }
    }
}

/// `/`: each role's first page.
pub async fn home(viewer: Viewer) -> Redirect {
    Redirect::to(match viewer.role() {
        Role::Admin => "/accounts",
        Role::Auditor if viewer.account.scope.is_empty() => "/audit",
        _ => "/cases",
    })
}

/// Markup as an HTML response.
pub(crate) fn page(m: Markup) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        m.into_string(),
    )
        .into_response()
}

pub async fn stylesheet(State(_): State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=3600"),
            ),
        ],
        include_str!("app.css"),
    )
        .into_response()
}
