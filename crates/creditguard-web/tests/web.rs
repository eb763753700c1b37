//! The review web app over HTTP, on SQLite and PostgreSQL: authentication on every route, scope
//! on every route, CSRF, the login lockout, hostile input rendered inert, decisions that release
//! credits in the lake, the audit trail, roles, language, health and metrics.

mod common;

use common::{start, Client, DAY, FLAG_DAY, PASSWORD, XSS};
use creditguard_score::tables;

/// Every route that shows or changes learner data, with a method.
fn routes(case: &str) -> Vec<(&'static str, String)> {
    vec![
        ("GET", "/".into()),
        ("GET", "/cases".into()),
        ("GET", "/cases?org_unit=HQ%2FEast".into()),
        ("GET", format!("/cases/{case}")),
        ("GET", format!("/cases/{case}/timeline.svg")),
        ("GET", format!("/cases/{case}/export")),
        ("GET", "/learners/u1".into()),
        ("GET", "/overview".into()),
        ("GET", "/audit".into()),
        ("GET", "/accounts".into()),
        ("POST", format!("/cases/{case}/decision")),
        ("POST", format!("/cases/{case}/assign")),
        ("POST", format!("/cases/{case}/comment")),
        ("POST", format!("/cases/{case}/appeal")),
        ("POST", "/logout".into()),
    ]
}

fn every_route_without_a_session_redirects_to_login(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut c = Client::new(app.addr);
    for (method, path) in routes(&app.east_case) {
        let r = c.request(
            method,
            &path,
            (method == "POST").then_some(&[("csrf", "x")][..]),
        );
        assert_eq!(r.status, 303, "{method} {path}: {r:?}");
        let loc = r.header("location").unwrap();
        assert!(loc.starts_with("/login"), "{method} {path} → {loc}");
        if method == "GET" {
            assert_eq!(loc, format!("/login?next={}", common::pct(&path)));
        }
    }
    // A forged or expired session cookie is no session.
    c.cookies.insert("cg_session".into(), "0".repeat(64));
    let r = c.get("/cases");
    assert_eq!(r.status, 303);
    // Public: the login page, health, readiness, metrics.
    assert_eq!(c.get("/login").status, 200);
    assert_eq!(c.get("/healthz").body, "ok\n");
    assert_eq!(c.get("/readyz").body, "ready\n");
    let m = c.get("/metrics");
    assert!(
        m.body
            .contains("creditguard_web_requests_total{route=\"/cases\",status=\"303\"}"),
        "{}",
        m.body
    );
    assert!(m
        .body
        .contains("creditguard_web_request_duration_seconds_bucket{route=\"/cases/{case_id}\""));
}
on_both!(every_route_without_a_session_redirects_to_login);

fn every_route_outside_scope_is_404(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut west = Client::logged_in(app.addr, "west");
    let csrf = west.csrf();
    // West's own case is visible: the 404s below are about scope, not a broken page.
    assert_eq!(west.get(&format!("/cases/{}", app.west_case)).status, 200);
    let east = app.east_case.clone();
    for (method, path) in [
        ("GET", format!("/cases/{east}")),
        ("GET", format!("/cases/{east}/timeline.svg")),
        ("GET", format!("/cases/{east}/export")),
        ("GET", "/learners/u1".to_string()),
        ("GET", "/cases/no-such-case".to_string()),
        ("POST", format!("/cases/{east}/decision")),
        ("POST", format!("/cases/{east}/assign")),
        ("POST", format!("/cases/{east}/comment")),
        ("POST", format!("/cases/{east}/appeal")),
    ] {
        let form = [
            ("csrf", csrf.as_str()),
            ("verdict", "dismissed"),
            ("reason", "r"),
            ("text", "t"),
            ("to", "me"),
        ];
        let r = west.request(method, &path, (method == "POST").then_some(&form[..]));
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert!(!r.body.contains("u1"), "{path} leaks the learner");
    }
    // The queue never lists another branch, whatever the filter says.
    for q in [
        "/cases",
        "/cases?status=all",
        "/cases?org_unit=HQ%2FEast",
        "/cases?user=u1&status=all",
        "/cases?org_unit=HQ",
    ] {
        let r = west.get(q);
        assert_eq!(r.status, 200, "{q}");
        assert!(
            !r.body.contains(&east) && !r.body.contains(">u1<"),
            "{q} lists the east case"
        );
    }
    let case = app.rt.block_on(app.review.case(&east)).unwrap();
    assert_eq!(case.version, 1, "nothing happened to the east case");
    // The lead of HQ sees both branches.
    let mut lead = Client::logged_in(app.addr, "lead");
    let r = lead.get("/cases");
    assert!(r.body.contains(&east) && r.body.contains(&app.west_case));
}
on_both!(every_route_outside_scope_is_404);

fn posts_without_csrf_are_refused(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut east = Client::logged_in(app.addr, "east");
    let path = format!("/cases/{}/decision", app.east_case);
    for form in [
        vec![("verdict", "dismissed"), ("reason", "no token")],
        vec![
            ("csrf", "forged"),
            ("verdict", "dismissed"),
            ("reason", "wrong token"),
        ],
    ] {
        let r = east.post(&path, &form);
        assert_eq!(r.status, 403, "{r:?}");
    }
    let r = east.post(
        &format!("/cases/{}/comment", app.east_case),
        &[("text", "hi")],
    );
    assert_eq!(r.status, 403);
    let r = east.post("/logout", &[]);
    assert_eq!(r.status, 403);
    // Another session's token is no good either.
    let mut lead = Client::logged_in(app.addr, "lead");
    let lead_csrf = lead.csrf();
    let r = east.post(
        &path,
        &[
            ("csrf", &lead_csrf),
            ("verdict", "dismissed"),
            ("reason", "x"),
        ],
    );
    assert_eq!(r.status, 403);
    let case = app.rt.block_on(app.review.case(&app.east_case)).unwrap();
    assert_eq!(case.status.as_str(), "open");
    // The login form needs its own token too.
    let mut anon = Client::new(app.addr);
    let r = anon.post("/login", &[("username", "east"), ("password", PASSWORD)]);
    assert_eq!(
        r.header("location").unwrap(),
        "/login?error=stale&next=%2Fcases"
    );
    assert!(!anon.cookies.contains_key("cg_session"));
}
on_both!(posts_without_csrf_are_refused);

fn login_locks_out_after_repeated_failures(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut c = Client::new(app.addr);
    for i in 0..5 {
        let r = c.login("east", "wrong password");
        assert_eq!(
            r.header("location").unwrap(),
            "/login?error=invalid&next=%2Fcases",
            "attempt {i}"
        );
    }
    let r = c.login("east", PASSWORD);
    assert_eq!(
        r.header("location").unwrap(),
        "/login?error=locked&next=%2Fcases"
    );
    assert!(!c.cookies.contains_key("cg_session"));
    let page = c.get("/login?error=locked");
    assert!(page.body.contains("Too many failed attempts"));
    // Another account from another client is not locked by east's failures (5 < 20 per address).
    Client::logged_in(app.addr, "west");
    // Unknown users fail the same way, and count against the address.
    let r = c.login("nobody", "whatever1");
    assert!(r.header("location").unwrap().contains("error="));
    let m = c.get("/metrics").body;
    assert!(
        m.contains("creditguard_web_logins_total{result=\"locked\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("creditguard_web_logins_total{result=\"failure\"} 6"),
        "{m}"
    );
}
on_both!(login_locks_out_after_repeated_failures);

fn hostile_values_render_inert(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut east = Client::logged_in(app.addr, "east");
    let csrf = east.csrf();
    let path = format!("/cases/{}", app.east_case);
    let evil = "<img src=x onerror=alert(2)>\"'";
    let r = east.post(
        &format!("{path}/comment"),
        &[("csrf", &csrf), ("text", evil)],
    );
    assert_eq!(r.status, 303);
    let page = east.get(&path);
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the course title is shown as text"
    );
    assert!(!page.body.contains(XSS), "the course title is not markup");
    assert!(page
        .body
        .contains("&lt;img src=x onerror=alert(2)&gt;&quot;'"));
    assert!(!page.body.contains("<img src=x"));
    assert!(!page.body.contains("<script"), "no script at all");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");

    // SQL in filters is a value like any other: no error, no rows, no damage.
    for (q, status) in [
        ("org_unit=' OR 1=1 --", 200),
        ("org_unit=HQ/East%' OR '1'='1", 200),
        ("rule=x'; DROP TABLE cases; --", 200),
        ("assignee=' OR ''='", 200),
        ("user=u1' OR 'a'='a", 200),
        ("status=open' OR '1'='1", 400),
        ("min_risk=0 OR 1=1", 400),
        ("older_than_days=1; DELETE FROM cases", 400),
        ("page=-1", 400),
    ] {
        let (k, v) = q.split_once('=').unwrap();
        let r = east.get(&format!("/cases?{k}={}", common::pct(v)));
        assert_eq!(r.status, status, "{q}: {}", r.body);
        assert!(!r.body.contains(&app.west_case), "{q}");
        if status == 200 {
            assert!(
                r.body.contains("0 cases") || !r.body.contains(&app.east_case) || k == "user",
                "{q}"
            );
        } else {
            assert!(!r.body.contains("<script"), "{q}");
        }
    }
    let r = east.get(&format!(
        "/cases?org_unit={}",
        common::pct("<script>alert(3)</script>")
    ));
    assert!(r.body.contains("&lt;script&gt;alert(3)") && !r.body.contains("<script>alert(3)"));
    // The tables survived, and the learner's case is still listed normally.
    let r = east.get("/cases");
    assert!(r.body.contains(&app.east_case));
    assert_eq!(app.rt.block_on(app.review.accounts()).unwrap().len(), 5);
}
on_both!(hostile_values_render_inert);

fn a_dismissal_releases_credits_and_is_audited(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut east = Client::logged_in(app.addr, "east");
    let csrf = east.csrf();
    let path = format!("/cases/{}", app.east_case);
    let page = east.get(&path);
    assert!(page.body.contains("12% watched"), "the English explanation");
    assert!(
        page.body.contains("watch_ratio") && page.body.contains("min_watch_ratio"),
        "measured values and thresholds"
    );
    assert!(
        page.body.contains("<svg class=\"timeline\""),
        "the timeline"
    );
    // A reason is required.
    let r = east.post(
        &format!("{path}/decision"),
        &[("csrf", &csrf), ("verdict", "dismissed"), ("reason", "  ")],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body.contains("reason"));
    // Reviewers may not reopen on appeal, nor assign to others.
    let r = east.post(
        &format!("{path}/assign"),
        &[("csrf", &csrf), ("to", "west")],
    );
    assert_eq!(r.status, 403);
    let r = east.post(
        &format!("{path}/assign"),
        &[("csrf", &csrf), ("to", "me"), ("back", "/cases")],
    );
    assert_eq!((r.status, r.header("location")), (303, Some("/cases")));
    let r = east.post(
        &format!("{path}/decision"),
        &[
            ("csrf", &csrf),
            ("verdict", "dismissed"),
            ("reason", "Watched on the train; manager confirms."),
            ("version", "2"),
        ],
    );
    assert_eq!(r.status, 303, "{r:?}");
    let page = east.get(&path);
    assert!(
        page.body.contains("badge s-dismissed"),
        "the decision shows on the case"
    );
    assert!(
        page.body.contains("badge c-released"),
        "and in the credit record"
    );
    let credits = tables::read_credits(&app.lake, FLAG_DAY, FLAG_DAY).unwrap();
    let k = credits.iter().find(|c| c.credit_id == "k-east").unwrap();
    assert_eq!((k.status.as_str(), k.credits_granted), ("released", 2.0));
    let w = credits.iter().find(|c| c.credit_id == "k-west").unwrap();
    assert_eq!(
        w.status, "withheld",
        "the other branch's claim is untouched"
    );
    assert!(app.lake.days(tables::DECISIONS).unwrap().len() == 1);
    // Deciding again is a conflict, shown as such.
    let r = east.post(
        &format!("{path}/decision"),
        &[
            ("csrf", &csrf),
            ("verdict", "confirmed"),
            ("reason", "again"),
        ],
    );
    assert_eq!(r.status, 409);
    // The lead reopens it on appeal; reviewers cannot decide an appealed case.
    let mut lead = Client::logged_in(app.addr, "lead");
    let lead_csrf = lead.csrf();
    let r = lead.post(
        &format!("{path}/appeal"),
        &[("csrf", &lead_csrf), ("reason", "The learner appealed.")],
    );
    assert_eq!(r.status, 303);
    let r = east.post(
        &format!("{path}/decision"),
        &[("csrf", &csrf), ("verdict", "confirmed"), ("reason", "x")],
    );
    assert_eq!(r.status, 403);
    // The auditor sees who looked and who decided; the chain verifies.
    let mut auditor = Client::logged_in(app.addr, "auditor");
    let r = auditor.get(&format!("/audit?case_id={}", common::pct(&app.east_case)));
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Hash chain verified"), "{}", r.body);
    for action in ["view_case", "decide", "assign", "appeal"] {
        assert!(r.body.contains(&format!("<td>{action}</td>")), "{action}");
    }
    let r = auditor.get("/audit?action=login&actor=east");
    assert!(r.body.contains("<td>login</td>"));
    assert!(app.rt.block_on(app.review.verify_audit()).unwrap().ok());
    let m = auditor.get("/metrics").body;
    assert!(
        m.contains("creditguard_web_decisions_total{outcome=\"dismissed\"} 1"),
        "{m}"
    );
    // Exports are audited too.
    let r = east.get(&format!("{path}/export"));
    assert_eq!(r.status, 200);
    assert!(r.body.contains("\"k-east\""));
    let recs = app
        .rt
        .block_on(app.review.audit_records(0, i64::MAX))
        .unwrap();
    assert!(recs
        .iter()
        .any(|r| r.action == "export_case" && r.actor == "east"));
    let _ = DAY;
}
on_both!(a_dismissal_releases_credits_and_is_audited);

fn roles_see_their_pages_only(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut east = Client::logged_in(app.addr, "east");
    assert_eq!(east.get("/audit").status, 403);
    assert_eq!(east.get("/accounts").status, 403);
    let o = east.get("/overview");
    assert_eq!(o.status, 200);
    assert!(
        o.body.contains("HQ/East/Sales") && !o.body.contains("HQ/West"),
        "overview is scoped"
    );
    let mut auditor = Client::logged_in(app.addr, "auditor");
    assert_eq!(auditor.get("/cases").status, 403);
    assert_eq!(
        auditor.get(&format!("/cases/{}", app.east_case)).status,
        404
    );
    assert_eq!(auditor.get("/").header("location"), Some("/audit"));
    let mut admin = Client::logged_in(app.addr, "admin");
    let r = admin.get("/accounts");
    assert!(r.status == 200 && r.body.contains("auditor") && !r.body.contains("argon2"));
    assert_eq!(admin.get(&format!("/cases/{}", app.east_case)).status, 404);
    assert_eq!(admin.get("/overview").status, 403);
    // A disabled account's session ends at once.
    app.rt
        .block_on(
            app.review
                .disable_account("east", "admin", creditguard_review::now_us()),
        )
        .unwrap();
    assert_eq!(east.get("/cases").status, 303);
}
on_both!(roles_see_their_pages_only);

fn pages_speak_english_and_chinese(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut c = Client::new(app.addr);
    c.accept_language = Some("zh-CN,zh;q=0.9,en;q=0.5".into());
    assert!(c.get("/login").body.contains("登录"));
    let r = c.login("east", PASSWORD);
    assert_eq!(r.status, 303);
    let path = format!("/cases/{}", app.east_case);
    let page = c.get(&path);
    assert!(
        page.body.contains("视频在后台播放"),
        "the Chinese explanation"
    );
    assert!(page.body.contains("lang=\"zh-CN\""));
    let r = c.get(&format!("/lang?to=en&back={}", common::pct(&path)));
    assert_eq!(r.header("location"), Some(path.as_str()));
    let page = c.get(&path);
    assert!(page.body.contains("12% watched") && page.body.contains("Withheld claims"));
    // The toggle never sends anyone off-site.
    let r = c.get("/lang?to=zh&back=//evil.example/");
    assert_eq!(r.header("location"), Some("/cases"));
}
on_both!(pages_speak_english_and_chinese);

fn proxy_header_authenticates_known_accounts(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |c| {
        c.auth = creditguard_web::AuthMode::Proxy {
            header: axum::http::HeaderName::from_static("x-remote-user"),
        }
    });
    let mut c = Client::new(app.addr);
    assert_eq!(c.get("/cases").status, 303);
    // The tiny client cannot add headers per request; use a raw request.
    use std::io::{Read, Write};
    let ask = |user: &str| {
        let mut s = std::net::TcpStream::connect(app.addr).unwrap();
        write!(
            s,
            "GET /cases HTTP/1.1\r\nHost: x\r\nX-Remote-User: {user}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let ok = ask("east");
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains(&app.east_case));
    assert!(ask("mallory").starts_with("HTTP/1.1 403"));
}
on_both!(proxy_header_authenticates_known_accounts);

/// Heartbeats of u1 and u2 on one tablet, and of u1 and u9 (no case) behind one small network.
fn write_shared_device_events(app: &common::App) {
    use creditguard_contract::{
        events_schema, parse_event, time::format_rfc3339_us, EventBatchBuilder,
    };
    let at = |min: i64| {
        format_rfc3339_us(common::FLAG_DAY * common::DAY + 3_600_000_000 + min * 60_000_000)
    };
    let rows = [
        ("e1", "u1", "tablet-7", "10.1.1.1", 0),
        ("e2", "u2", "tablet-7", "10.2.2.2", 90),
        ("e3", "u9", "laptop-9", "10.1.1.1", 5),
    ];
    let mut b = EventBatchBuilder::default();
    for (i, (id, user, device, ip, min)) in rows.into_iter().enumerate() {
        let line = format!(
            r#"{{"event_id":"{id}","type":"heartbeat","ts":"{}","user_id":"{user}","session_id":"s-{id}","device_id":"{device}","platform":"web","ip":"{ip}","course_id":"c-safe","lesson_id":"l1","position_s":1,"playing":true,"visible":true}}"#,
            at(min)
        );
        b.push(
            &parse_event(line.as_bytes()).unwrap(),
            "fixture.ndjson",
            i as i64 + 1,
        );
    }
    app.lake
        .write_parquet(
            "events",
            common::FLAG_DAY,
            "part-0.parquet",
            events_schema(),
            &[b.finish()],
        )
        .unwrap();
}

fn related_cases_share_a_device_inside_the_scope_only(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    write_shared_device_events(&app);
    let mut lead = Client::logged_in(app.addr, "lead");
    let page = lead.get(&format!("/cases/{}", app.east_case)).body;
    let related = page
        .split("Related cases")
        .nth(1)
        .expect("a related section");
    assert!(
        related.contains(&format!("/cases/{}", app.west_case))
            && related.contains("same device tablet-7"),
        "the lead sees u2's case through the shared tablet: {related}"
    );
    assert!(!related.contains("u9"), "u9 has no case to show");
    let mut east = Client::logged_in(app.addr, "east");
    let page = east.get(&format!("/cases/{}", app.east_case)).body;
    let related = page
        .split("Related cases")
        .nth(1)
        .expect("a related section");
    assert!(
        !related.contains(&app.west_case) && !related.contains("u2"),
        "another branch's case stays hidden: {related}"
    );
    let zh = lead.get(&format!("/lang?to=zh&back=/cases/{}", app.east_case));
    assert!(zh.status == 303 || zh.status == 200, "{zh:?}");
    let page = lead.get(&format!("/cases/{}", app.east_case)).body;
    assert!(
        page.contains("同一设备 tablet-7"),
        "the relation in Chinese"
    );
}
on_both!(related_cases_share_a_device_inside_the_scope_only);

/// With the roster, reviewers and leads see the employee behind a learner of their own scope on
/// the case and learner pages, each time recorded as `reidentify`; outside the scope the pages
/// are 404 and name nobody; the queue, auditors and an app without the roster show pseudonyms.
fn reviewers_see_the_employees_of_their_own_scope_only(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |c| c.identities = Some(common::identities()));
    let mut east = Client::logged_in(app.addr, "east");
    let r = east.get(&format!("/cases/{}", app.east_case));
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("<strong class=\"employee\">E-1001</strong> Li Wei"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("E-2002") && !r.body.contains("Zhang Min"));
    let r = east.get("/learners/u1");
    assert!(
        r.body.contains("E-1001") && r.body.contains("Li Wei"),
        "{}",
        r.body
    );
    for path in [
        format!("/cases/{}", app.west_case),
        "/learners/u2".to_string(),
    ] {
        let r = east.get(&path);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            !r.body.contains("E-2002") && !r.body.contains("Zhang Min"),
            "{path}"
        );
    }
    let r = east.get("/cases?status=all");
    assert!(
        r.body.contains(">u1<") && !r.body.contains("E-1001"),
        "the queue shows pseudonyms"
    );
    // The lead of HQ sees both branches' employees.
    let mut lead = Client::logged_in(app.addr, "lead");
    assert!(lead
        .get(&format!("/cases/{}", app.west_case))
        .body
        .contains("E-2002"));
    // An auditor with a scope reads the case, by pseudonym only.
    let hash = creditguard_web::auth::hash_password(PASSWORD).unwrap();
    let scope = ["HQ".to_string()];
    let added = app.review.add_account(
        "scoped-auditor",
        creditguard_review::Role::Auditor,
        &scope,
        &hash,
        "test setup",
        creditguard_review::now_us(),
    );
    app.rt.block_on(added).unwrap();
    let mut auditor = Client::logged_in(app.addr, "scoped-auditor");
    let r = auditor.get(&format!("/cases/{}", app.east_case));
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("E-1001"));

    let recs = app
        .rt
        .block_on(app.review.audit_records(0, i64::MAX))
        .unwrap();
    let seen: Vec<(&str, Option<&str>, String)> = recs
        .iter()
        .filter(|r| r.action == "reidentify")
        .map(|r| {
            let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap();
            let user = detail["user_id"].as_str().unwrap_or_default().to_string();
            (r.actor.as_str(), r.case_id.as_deref(), user)
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("east", Some(app.east_case.as_str()), "u1".to_string()),
            ("east", None, "u1".to_string()),
            ("lead", Some(app.west_case.as_str()), "u2".to_string()),
        ]
    );
    assert!(
        recs.iter()
            .all(|r| !r.detail.contains("E-1001") && !r.detail.contains("E-2002")),
        "the trail names pseudonyms only"
    );
    assert!(app.rt.block_on(app.review.verify_audit()).unwrap().ok());
}
on_both!(reviewers_see_the_employees_of_their_own_scope_only);

/// Without the roster the pages show pseudonyms and nothing is re-identified.
fn without_the_roster_pages_show_pseudonyms(url: String, dir: tempfile::TempDir) {
    let app = start(&url, dir, |_| {});
    let mut east = Client::logged_in(app.addr, "east");
    let r = east.get(&format!("/cases/{}", app.east_case));
    assert_eq!(r.status, 200);
    assert!(!r.body.contains("class=\"employee\""));
    let recs = app
        .rt
        .block_on(app.review.audit_records(0, i64::MAX))
        .unwrap();
    assert!(recs.iter().all(|r| r.action != "reidentify"));
}
on_both!(without_the_roster_pages_show_pseudonyms);
