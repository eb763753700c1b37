//! `/cases/{case_id}` and its actions, `/learners/{user_id}`. Every handler loads the case (or
//! learner) through the scope check first; views, exports and decisions are audit records.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use creditguard_contract::time::day_of_us;
use creditguard_contract::{Case, Credit, Flag};
use creditguard_review::{now_us, CaseDetail, CaseRow, CaseStatus, DecideRequest, Role, Verdict};
use creditguard_score::events::SharedUse;
use maud::{html, Markup, PreEscaped};
use serde_json::json;

use super::{
    employee, layout, learner_cases, page, reidentify, scoped_case, status_badge, when, MAX_VALUE,
};
use crate::auth::{local_path, pct, Viewer};
use crate::error::{Result, WebError};
use crate::i18n::Lang;
use crate::lake::blocking;
use crate::AppState;

/// The form fields, in order (repeated keys, such as `cancel`, kept).
type Fields = Vec<(String, String)>;

fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn version(f: &Fields) -> Result<Option<i64>> {
    match field(f, "version").map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| WebError::BadRequest(format!("`version`: `{v}` is not a number"))),
    }
}

/// What the lake adds to a case: the flags' records, the claims' credit records, the timeline.
#[derive(Default)]
struct LakePart {
    flags: BTreeMap<String, Flag>,
    credits: BTreeMap<String, Credit>,
    titles: BTreeMap<String, String>,
    timeline: Option<String>,
    progress: Option<creditguard_score::Progress>,
    /// Other learners on the learner's devices or addresses over the timeline's days.
    shared: BTreeMap<String, SharedUse>,
}

fn contract_case(d: &CaseDetail) -> Case {
    Case {
        case_id: d.case.case_id.clone(),
        run_id: String::new(),
        user_id: d.case.user_id.clone(),
        org_unit: d.case.org_unit.clone(),
        period_start: d.case.first_flag_at,
        period_end: d.case.last_flag_at,
        risk: d.case.risk,
        flag_ids: d.flags.iter().map(|f| f.flag_id.clone()).collect(),
        detectors: d
            .flags
            .iter()
            .map(|f| f.detector.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        credits_withheld: d.claims.iter().map(|c| c.credits_value).sum(),
        status: d.case.status.as_str().to_string(),
        previous_case_id: d.case.previous_case_id.clone(),
        assignee: d.case.assignee.clone(),
    }
}

/// The timeline covers at most this many days of sessions (a long case shows its flags and
/// claims, and the sessions of its last weeks).
const TIMELINE_MAX_DAYS: i64 = 31;

/// An address shared by more learners than this (an office, a carrier's NAT) relates nobody.
const MAX_IP_USERS: usize = 10;

/// Related learners shown at most (those sharing the most first).
const MAX_RELATED_LEARNERS: usize = 20;

async fn lake_part(state: &AppState, d: &CaseDetail, with_timeline: bool) -> Result<LakePart> {
    if state.lake().is_none() {
        return Ok(LakePart::default());
    }
    let st = state.clone();
    let d = d.clone();
    blocking(move || {
        let lake = st.lake().expect("checked above");
        let wanted: Vec<(String, i64)> =
            d.flags.iter().map(|f| (f.flag_id.clone(), f.day)).collect();
        let flags: BTreeMap<String, Flag> = lake.flags(&wanted)?.into_iter().collect();
        let claims: Vec<(String, i64)> = d
            .claims
            .iter()
            .map(|c| (c.credit_id.clone(), c.completed_at))
            .collect();
        let credits: BTreeMap<String, Credit> = lake.credits(&claims)?.into_iter().collect();
        let titles = d
            .claims
            .iter()
            .map(|c| c.course_id.clone())
            .chain(d.flags.iter().filter_map(|f| f.course_id.clone()))
            .filter_map(|c| lake.course_title(&c).map(|t| (c.clone(), t.to_string())))
            .collect();
        let progress = lake.progress()?.get(&d.case.user_id).cloned();
        let mut shared = BTreeMap::new();
        let timeline = if with_timeline {
            let mut t0 = d.case.first_flag_at;
            let mut t1 = d.case.last_flag_at;
            for c in &d.claims {
                t0 = t0.min(c.completed_at);
                t1 = t1.max(c.completed_at);
            }
            let to = day_of_us(t1);
            let from = day_of_us(t0).max(to - TIMELINE_MAX_DAYS);
            let sessions = lake.sessions(&d.case.user_id, from, to)?;
            shared = creditguard_score::events::read_shared_use(
                &lake.lake,
                from,
                to,
                &d.case.user_id,
                MAX_IP_USERS,
            )?;
            let fl: Vec<&Flag> = flags.values().collect();
            let cr: Vec<&Credit> = credits.values().collect();
            Some(creditguard_score::report::timeline_svg(
                &contract_case(&d),
                &sessions,
                &fl,
                &cr,
            ))
        } else {
            None
        };
        Ok(LakePart {
            flags,
            credits,
            titles,
            timeline,
            progress,
            shared,
        })
    })
    .await
}

/// Why another case is related.
enum Relation {
    /// An earlier or later case of the same learner.
    Learner,
    /// Named in the flags' evidence (a shared device's `users`).
    Evidence,
    /// The other learner used these devices and addresses of this one's.
    Shared(SharedUse),
}

/// The learner's other cases, and the cases (inside the viewer's scope) of learners named in
/// the evidence or sharing a device or a small network with the learner.
async fn related_cases(
    state: &AppState,
    viewer: &Viewer,
    d: &CaseDetail,
    lake: &LakePart,
) -> Result<Vec<(CaseRow, Relation)>> {
    let scope = &viewer.account.scope;
    let mut related: Vec<(CaseRow, Relation)> = d
        .related
        .iter()
        .filter(|c| scope.covers(c.org_unit.as_deref()))
        .map(|c| (c.clone(), Relation::Learner))
        .collect();
    let mut others: Vec<(String, Option<SharedUse>)> = named_learners(&lake.flags, &d.case.user_id)
        .into_iter()
        .map(|u| (u, None))
        .collect();
    let mut sharing: Vec<(&String, &SharedUse)> = lake
        .shared
        .iter()
        .filter(|(u, _)| !others.iter().any(|(o, _)| o == *u))
        .collect();
    sharing.sort_by_key(|(u, s)| (std::cmp::Reverse(s.devices.len() * 10 + s.ips.len()), *u));
    others.extend(
        sharing
            .into_iter()
            .map(|(u, s)| (u.clone(), Some(s.clone()))),
    );
    for (user, shared) in others.into_iter().take(MAX_RELATED_LEARNERS) {
        match learner_cases(state, viewer, &user).await {
            Ok(cases) => related.extend(cases.into_iter().map(|c| {
                let why = match &shared {
                    Some(s) => Relation::Shared(s.clone()),
                    None => Relation::Evidence,
                };
                (c, why)
            })),
            Err(WebError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(related)
}

fn relation_text(l: Lang, why: &Relation) -> String {
    match why {
        Relation::Learner => l
            .t("earlier case of the learner", "该学员的其他案件")
            .to_string(),
        Relation::Evidence => l
            .t(
                "same device (from the flags' evidence)",
                "同一设备（来自标记证据）",
            )
            .to_string(),
        Relation::Shared(s) => {
            let mut parts = Vec::new();
            if !s.devices.is_empty() {
                parts.push(format!(
                    "{} {}",
                    l.t("same device", "同一设备"),
                    s.devices.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if !s.ips.is_empty() {
                parts.push(format!(
                    "{} {}",
                    l.t("same IP address", "同一IP地址"),
                    s.ips.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            parts.join(l.t("; ", "；"))
        }
    }
}

/// The explanation of a flag in the viewer's language (the detectors write `explanation` in
/// English and `explanation_zh` into the evidence).
fn explanation(lang: Lang, f: &Flag) -> String {
    let zh = serde_json::from_str::<serde_json::Value>(&f.evidence)
        .ok()
        .and_then(|v| {
            v.get("explanation_zh")
                .and_then(|z| z.as_str())
                .map(str::to_string)
        });
    match (lang, zh) {
        (Lang::Zh, Some(z)) if !z.is_empty() => z,
        _ => f.explanation.clone(),
    }
}

/// The measured values and thresholds of a flag's evidence, as `key: value` pairs.
fn evidence(f: &Flag) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Value>(&f.evidence) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .filter(|(k, _)| k != "explanation_zh")
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Number(n) => match n.as_f64() {
                        Some(x) if x.fract() != 0.0 => format!("{x:.3}"),
                        _ => n.to_string(),
                    },
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Other learners named in the flags' evidence (a shared device's `users`), whose cases are
/// related.
fn named_learners(flags: &BTreeMap<String, Flag>, me: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in flags.values() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&f.evidence) {
            if let Some(users) = v.get("users").and_then(|u| u.as_array()) {
                for u in users.iter().filter_map(|u| u.as_str()) {
                    if u != me {
                        out.insert(u.to_string());
                    }
                }
            }
        }
    }
    out
}

fn progress_block(l: Lang, p: &Option<creditguard_score::Progress>) -> Markup {
    html! {
        @if let Some(p) = p {
            p.progress {
                (l.t("Progress toward the year's target", "年度学分目标进度")) " " (p.year) ": "
                strong { (format!("{:.1}", p.credits_granted)) " / " (format!("{:.1}", p.target_credits)) }
                " (" (format!("{:.0}%", p.share_of_target * 100.0)) "), "
                (l.t("withheld", "暂扣")) " " (format!("{:.1}", p.credits_withheld)) ", "
                (l.t("expected by now", "当前应达")) " " (format!("{:.1}", p.expected_by_now)) " — "
                span class={"badge p-" (p.status)} { (l.progress_status(&p.status)) }
            }
        } @else {
            p.progress { (l.t("No progress record for this learner yet.", "暂无该学员的进度记录。")) }
        }
    }
}

/// `GET /cases/{case_id}`.
pub async fn case(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
) -> Result<Response> {
    scoped_case(&state, &viewer, &case_id).await?;
    let review = state.review();
    let d = review.show(&case_id).await?;
    let lake = lake_part(&state, &d, true).await?;
    let now = now_us();
    review
        .record_access(
            viewer.name(),
            "view_case",
            Some(&case_id),
            json!({"user_id": d.case.user_id}),
            now,
        )
        .await?;
    let who = reidentify(&state, &viewer, &d.case.user_id, Some(&case_id)).await?;
    let related = related_cases(&state, &viewer, &d, &lake).await?;
    let l = viewer.lang;
    let c = &d.case;
    let role = viewer.role();
    let can_work = matches!(role, Role::Reviewer | Role::Lead);
    let can_decide = can_work
        && !c.status.is_decided()
        && (c.status != CaseStatus::Appealed || role == Role::Lead);
    let body = html! {
        section.summary {
            p {
                (status_badge(l, c.status)) " "
                (l.t("risk", "风险")) " " strong { (format!("{:.2}", c.risk)) } " · "
                (l.t("learner", "学员")) " " a href={"/learners/" (pct(&c.user_id))} { (c.user_id) }
                (employee(l, &who)) " · "
                (l.t("org unit", "组织单元")) " " (c.org_unit.clone().unwrap_or_else(|| "—".into())) " · "
                (l.t("assignee", "处理人")) " " (c.assignee.clone().unwrap_or_else(|| "—".into())) " · "
                (l.t("version", "版本")) " " (c.version)
            }
            p { (l.t("Flags from", "标记时间")) " " (when(c.first_flag_at)) " – " (when(c.last_flag_at)) " · "
                (l.t("opened", "立案")) " " (when(c.opened_at)) }
            @if let Some(r) = &c.decision_reason {
                p.decision { (l.t("Decision", "结论")) ": " (l.status(c.status)) " — " (c.decided_by.clone().unwrap_or_default()) ": “" (r) "”" }
            }
            (progress_block(l, &lake.progress))
            p { a href={"/cases/" (pct(&c.case_id)) "/export"} { (l.t("Export (JSON)", "导出（JSON）")) } }
        }
        h2 { (l.t("Flags", "异常标记")) }
        table.flags {
            thead { tr { th { (l.t("Rule", "规则")) } th { (l.t("Window", "时间窗口")) } th { (l.t("Severity", "严重度")) }
                th { (l.t("Measured values and thresholds", "测量值与阈值")) } th { (l.t("Explanation", "说明")) } } }
            tbody {
                @for f in &d.flags {
                    tr {
                        td { (f.rule) br; small { (f.detector) } }
                        td { (when(f.window_start)) br; "– " (when(f.window_end)) }
                        td.num { (format!("{:.2}", f.weighted_severity)) }
                        @if let Some(lf) = lake.flags.get(&f.flag_id) {
                            td { dl.evidence { @for (k, v) in evidence(lf) { dt { (k) } dd { (v) } } } }
                            td.explanation { (explanation(l, lf)) }
                        } @else {
                            td { "—" }
                            td { (l.t("(the lake holds no record of this flag)", "（数据湖中没有该标记的记录）")) }
                        }
                    }
                }
            }
        }
        h2 { (l.t("Withheld claims", "暂扣的学分申请")) }
        table.claims {
            thead { tr { th { (l.t("Claim", "申请")) } th { (l.t("Course", "课程")) } th { (l.t("Completed", "完成时间")) }
                th { (l.t("Credits", "学分")) } th { (l.t("Decision", "决定")) } th { (l.t("Credit record", "学分记录")) } } }
            tbody {
                @for k in &d.claims {
                    tr {
                        td { (k.credit_id) }
                        td { (k.course_id) @if let Some(t) = lake.titles.get(&k.course_id) { br; span.title { (t) } } }
                        td { (when(k.completed_at)) }
                        td.num { (format!("{:.1}", k.credits_value)) }
                        td { (k.decision.map(|x| l.credit_status(x.as_str())).unwrap_or(l.t("pending", "待定"))) }
                        td { @if let Some(cr) = lake.credits.get(&k.credit_id) {
                                span class={"badge c-" (cr.status)} { (l.credit_status(&cr.status)) } " " (format!("{:.1}", cr.credits_granted))
                            } @else { "—" } }
                    }
                }
            }
        }
        h2 { (l.t("Timeline", "时间线")) }
        @if let Some(svg) = &lake.timeline {
            p.small { (l.t("Point at a mark to see what it is; every mark is also listed below.", "将鼠标指向标记可查看详情；所有标记也列在下方。")) }
            div.timeline { (PreEscaped(svg)) }
            details.marks open {
                summary { (l.t("Marks on the timeline", "时间线上的标记")) }
                ul {
                    @for f in lake.flags.values() {
                        li { (l.t("flag", "标记")) " " (f.rule) ": " (when(f.window_start)) " – " (when(f.window_end)) " — " (explanation(l, f)) }
                    }
                    @for k in lake.credits.values() {
                        li { (l.t("claim", "申请")) " " (k.course_id)
                            @if let Some(t) = lake.titles.get(&k.course_id) { " (" (t) ")" }
                            ": " (when(k.completed_at)) " — " (l.credit_status(&k.status)) }
                    }
                }
            }
        } @else {
            p { (l.t("No lake configured: no timeline.", "未配置数据湖：无时间线。")) }
        }
        h2 { (l.t("Related cases", "相关案件")) }
        @if related.is_empty() { p { (l.t("None in your scope.", "您的范围内没有。")) } }
        ul.related {
            @for (r, why) in &related {
                li { a href={"/cases/" (pct(&r.case_id))} { (r.case_id) } " " (status_badge(l, r.status)) " "
                    (r.user_id) " · " (when(r.opened_at)) " · "
                    (relation_text(l, why)) }
            }
        }
        h2 { (l.t("History and comments", "处理记录与备注")) }
        table.history {
            tbody {
                @for h in &d.history {
                    tr { td { (when(h.at)) } td { (h.actor) } td { (h.action) }
                        td { (h.before_state.clone().unwrap_or_default()) " → " (h.after_state.clone().unwrap_or_default()) }
                        td { (h.reason.clone().unwrap_or_default()) } }
                }
            }
        }
        @if can_work {
            h2 { (l.t("Actions", "操作")) }
            div.actions {
                @if !c.status.is_decided() {
                    form method="post" action={"/cases/" (pct(&c.case_id)) "/assign"} {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="version" value=(c.version);
                        @if role == Role::Lead {
                            label { (l.t("Assign to", "分配给")) input type="text" name="to" value="me"; }
                        } @else {
                            input type="hidden" name="to" value="me";
                        }
                        button type="submit" { (l.t("Assign", "分配")) }
                    }
                }
                form method="post" action={"/cases/" (pct(&c.case_id)) "/comment"} {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    label { (l.t("Comment", "备注")) textarea name="text" rows="2" required {} }
                    button type="submit" { (l.t("Add comment", "添加备注")) }
                }
                @if can_decide {
                    form id="decide" method="post" action={"/cases/" (pct(&c.case_id)) "/decision"} {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="version" value=(c.version);
                        fieldset {
                            legend { (l.t("Decide", "作出决定")) }
                            label { input type="radio" name="verdict" value="dismissed" required; (l.t("Dismiss: no cheating, release the claims", "驳回：未作弊，释放学分")) }
                            label { input type="radio" name="verdict" value="confirmed"; (l.t("Confirm: cheating, cancel the claims", "确认：作弊，取消学分")) }
                            label { input type="radio" name="verdict" value="partially_confirmed"; (l.t("Partially confirm: cancel the ticked claims, release the rest", "部分确认：取消勾选的申请，释放其余")) }
                            @for k in &d.claims {
                                label.claim { input type="checkbox" name="cancel" value=(k.credit_id);
                                    (k.credit_id) " · " (k.course_id) @if let Some(t) = lake.titles.get(&k.course_id) { " (" (t) ")" } }
                            }
                            label { (l.t("Reason (required)", "理由（必填）")) textarea name="reason" rows="3" required {} }
                            button type="submit" { (l.t("Record decision", "提交决定")) }
                        }
                    }
                }
                @if c.status.is_decided() && role == Role::Lead {
                    form method="post" action={"/cases/" (pct(&c.case_id)) "/appeal"} {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        input type="hidden" name="version" value=(c.version);
                        label { (l.t("Reopen on appeal: reason", "因申诉重新打开：理由")) textarea name="reason" rows="2" required {} }
                        button type="submit" { (l.t("Reopen", "重新打开")) }
                    }
                }
            }
        }
    };
    let title = format!("{} {}", l.t("Case", "案件"), c.case_id);
    Ok(page(layout(&viewer, &title, body)))
}

fn back_to_case(case_id: &str) -> Response {
    Redirect::to(&format!("/cases/{}", pct(case_id))).into_response()
}

/// `POST /cases/{case_id}/decision`: confirm, dismiss or partially confirm, with a reason;
/// then the lake's credit records of the claims, the day's decisions and review stream.
pub async fn decide(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response> {
    viewer.check_csrf(field(&f, "csrf"))?;
    let case = scoped_case(&state, &viewer, &case_id).await?;
    viewer.require(&[Role::Reviewer, Role::Lead])?;
    if case.status == CaseStatus::Appealed && viewer.role() != Role::Lead {
        return Err(WebError::Forbidden(
            viewer
                .lang
                .t(
                    "only a lead decides an appealed case",
                    "申诉案件只能由组长决定",
                )
                .into(),
        ));
    }
    let verdict = field(&f, "verdict")
        .and_then(Verdict::parse)
        .ok_or_else(|| {
            WebError::BadRequest("choose confirmed, dismissed or partially_confirmed".into())
        })?;
    let cancel: Vec<String> = if verdict == Verdict::PartiallyConfirmed {
        f.iter()
            .filter(|(k, _)| k == "cancel")
            .map(|(_, v)| v.clone())
            .collect()
    } else {
        Vec::new()
    };
    let req = DecideRequest {
        case_id: case_id.clone(),
        verdict,
        reason: field(&f, "reason").unwrap_or("").to_string(),
        reviewer: viewer.name().to_string(),
        cancel_claims: cancel,
        expect_version: version(&f)?,
    };
    let now = now_us();
    let decision = state.review().decide(&req, now).await?;
    state.metrics().decision(verdict.as_str());
    if state.lake().is_some() {
        let st = state.clone();
        let id = case_id.clone();
        let at = decision.decided_at;
        let written = blocking(move || {
            let handle = tokio::runtime::Handle::current();
            let lake = st.lake().expect("checked above");
            crate::lake::write_decision_tables(&handle, st.review(), &lake.lake, &id, at)
        })
        .await;
        if let Err(e) = written {
            // The decision stands (it is in the database and its outbox); the next score run
            // rewrites the credit records from it.
            tracing::error!(case_id, error = %e, "Decided, but writing the lake's decision tables failed.");
        }
    }
    Ok(back_to_case(&case_id))
}

/// `POST /cases/{case_id}/assign`: a reviewer takes a case (`to=me`); a lead may give it to
/// anyone.
pub async fn assign(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response> {
    viewer.check_csrf(field(&f, "csrf"))?;
    scoped_case(&state, &viewer, &case_id).await?;
    viewer.require(&[Role::Reviewer, Role::Lead])?;
    let to = match field(&f, "to").map(str::trim) {
        None | Some("") | Some("me") => viewer.name().to_string(),
        Some(other) if other == viewer.name() => other.to_string(),
        Some(other) => {
            if viewer.role() != Role::Lead {
                return Err(WebError::Forbidden(
                    viewer
                        .lang
                        .t(
                            "only a lead assigns cases to others",
                            "只有组长可以把案件分配给他人",
                        )
                        .into(),
                ));
            }
            if other.len() > MAX_VALUE {
                return Err(WebError::BadRequest("assignee too long".into()));
            }
            other.to_string()
        }
    };
    state
        .review()
        .assign(&case_id, &to, viewer.name(), version(&f)?, now_us())
        .await?;
    Ok(match field(&f, "back") {
        Some(b) => Redirect::to(&local_path(Some(b))).into_response(),
        None => back_to_case(&case_id),
    })
}

/// `POST /cases/{case_id}/comment`.
pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response> {
    viewer.check_csrf(field(&f, "csrf"))?;
    scoped_case(&state, &viewer, &case_id).await?;
    viewer.require(&[Role::Reviewer, Role::Lead])?;
    state
        .review()
        .comment(
            &case_id,
            field(&f, "text").unwrap_or(""),
            viewer.name(),
            now_us(),
        )
        .await?;
    Ok(back_to_case(&case_id))
}

/// `POST /cases/{case_id}/appeal`: a lead reopens a decided case on the learner's appeal.
pub async fn appeal(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
    Form(f): Form<Fields>,
) -> Result<Response> {
    viewer.check_csrf(field(&f, "csrf"))?;
    scoped_case(&state, &viewer, &case_id).await?;
    viewer.require(&[Role::Lead])?;
    state
        .review()
        .appeal(
            &case_id,
            field(&f, "reason").unwrap_or(""),
            viewer.name(),
            version(&f)?,
            now_us(),
        )
        .await?;
    Ok(back_to_case(&case_id))
}

/// `GET /cases/{case_id}/timeline.svg`: the timeline alone.
pub async fn timeline(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
) -> Result<Response> {
    scoped_case(&state, &viewer, &case_id).await?;
    let d = state.review().show(&case_id).await?;
    let lake = lake_part(&state, &d, true).await?;
    let Some(svg) = lake.timeline else {
        return Err(WebError::NotFound);
    };
    state
        .review()
        .record_access(
            viewer.name(),
            "view_timeline",
            Some(&case_id),
            json!({"user_id": d.case.user_id}),
            now_us(),
        )
        .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("image/svg+xml"),
        )],
        svg,
    )
        .into_response())
}

/// `GET /cases/{case_id}/export`: the case with its flags' records as a JSON download.
pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(case_id): Path<String>,
) -> Result<Response> {
    scoped_case(&state, &viewer, &case_id).await?;
    let d = state.review().show(&case_id).await?;
    let lake = lake_part(&state, &d, false).await?;
    state
        .review()
        .record_access(
            viewer.name(),
            "export_case",
            Some(&case_id),
            json!({"user_id": d.case.user_id}),
            now_us(),
        )
        .await?;
    let doc = json!({
        "case": d,
        "flags": lake.flags.values().collect::<Vec<_>>(),
        "credits": lake.credits.values().collect::<Vec<_>>(),
        "exported_by": viewer.name(),
    });
    let name: String = case_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!("attachment; filename=\"case-{name}.json\""))
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
        .into_response())
}

/// `GET /learners/{user_id}`: a learner's cases inside the viewer's scope and their progress.
pub async fn learner(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(user_id): Path<String>,
) -> Result<Response> {
    let cases = learner_cases(&state, &viewer, &user_id).await?;
    state
        .review()
        .record_access(
            viewer.name(),
            "view_learner",
            None,
            json!({"user_id": user_id}),
            now_us(),
        )
        .await?;
    let who = reidentify(&state, &viewer, &user_id, None).await?;
    let progress = match state.lake() {
        Some(_) => {
            let st = state.clone();
            let u = user_id.clone();
            blocking(move || Ok(st.lake().expect("checked").progress()?.get(&u).cloned())).await?
        }
        None => None,
    };
    let l = viewer.lang;
    let body = html! {
        @if who.is_some() {
            p.employee { (l.t("learner", "学员")) " " (user_id) (employee(l, &who)) }
        }
        (progress_block(l, &progress))
        table.queue {
            thead { tr { th { (l.t("Case", "案件")) } th { (l.t("Status", "状态")) } th { (l.t("Risk", "风险")) } th { (l.t("Opened", "立案")) } } }
            tbody {
                @for c in &cases {
                    tr { td { a href={"/cases/" (pct(&c.case_id))} { (c.case_id) } } td { (status_badge(l, c.status)) }
                        td.num { (format!("{:.2}", c.risk)) } td { (when(c.opened_at)) } }
                }
            }
        }
    };
    let title = format!("{} {}", l.t("Learner", "学员"), user_id);
    Ok(page(layout(&viewer, &title, body)))
}
