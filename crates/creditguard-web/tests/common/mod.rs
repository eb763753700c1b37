//! The test fixture: a lake and review database with one case in each of two branches, the real
//! app on 127.0.0.1:0, accounts of every role, and a small HTTP/1.1 client with a cookie jar
//! (tests talk to the server over TCP only, as a browser would).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use creditguard_contract::{Credit, Flag};
use creditguard_lake::Lake;
use creditguard_review::{now_us, Review, Role, SyncCandidate, SyncFlag, SyncInput, WithheldClaim};
use creditguard_score::{tables, Catalog, Progress};
use creditguard_web::{AppState, Config, LakeView};

pub const DAY: i64 = creditguard_contract::time::DAY_US;
pub const FLAG_DAY: i64 = 20_500;
pub const PASSWORD: &str = "correct horse battery staple";
pub const XSS: &str = "<script>alert(1)</script>";

/// Runs an `async fn(url)` test on SQLite and on PostgreSQL (skipped with a message when
/// PostgreSQL is not installed, unless CREDITGUARD_REQUIRE_POSTGRES=1).
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/review.sqlite?mode=rwc", dir.path().display());
                super::$name(url, dir);
            }

            #[test]
            fn postgres() {
                let Some(pg) = creditguard_review::testing::shared().unwrap() else {
                    eprintln!(
                        "skipped: no PostgreSQL server binaries (install Debian's postgresql, or set CREDITGUARD_PG_BIN)"
                    );
                    return;
                };
                let url = pg.fresh_database().unwrap();
                super::$name(url, tempfile::tempdir().unwrap());
            }
        }
    };
}

/// A running app with its data.
pub struct App {
    pub addr: SocketAddr,
    pub rt: tokio::runtime::Runtime,
    pub review: Review,
    pub lake: Lake,
    pub state: AppState,
    /// The case of `HQ/East/Sales` (learner u1) and of `HQ/West` (learner u2).
    pub east_case: String,
    pub west_case: String,
    pub dir: tempfile::TempDir,
}

fn flag(id: &str, user: &str, org: &str, course: &str) -> Flag {
    Flag {
        flag_id: id.into(),
        run_id: "r1".into(),
        detector: "watch_time".into(),
        rule: "watch_time.background_playback".into(),
        user_id: user.into(),
        org_unit: Some(org.into()),
        course_id: Some(course.into()),
        window_start: FLAG_DAY * DAY + 3_600_000_000,
        window_end: FLAG_DAY * DAY + 7_200_000_000,
        severity: 0.8,
        evidence: serde_json::json!({
            "watch_ratio": 0.12, "min_watch_ratio": 0.8,
            "explanation_zh": "视频在后台播放，实际观看比例 12%，低于要求的 80%。"
        })
        .to_string(),
        explanation: "The video played in the background: 12% watched, below the required 80%."
            .into(),
        rules_version: None,
        rules_name: None,
    }
}

fn credit(id: &str, user: &str, org: &str, course: &str, flag: &str) -> Credit {
    Credit {
        credit_id: id.into(),
        run_id: "r1".into(),
        user_id: user.into(),
        org_unit: Some(org.into()),
        course_id: course.into(),
        category: "mandatory".into(),
        completed_at: FLAG_DAY * DAY + 8_000_000_000,
        credits_claimed: 2.0,
        credits_granted: 0.0,
        status: "withheld".into(),
        flag_ids: vec![flag.into()],
        rules_version: None,
        rules_name: None,
        policy_version: None,
    }
}

fn progress(user: &str, org: &str, status: &str) -> Progress {
    Progress {
        progress_id: format!("p-{user}"),
        run_id: "r1".into(),
        user_id: user.into(),
        org_unit: Some(org.into()),
        year: 2026,
        as_of: (FLAG_DAY + 1) * DAY,
        credits_granted: 10.0,
        credits_withheld: 2.0,
        mandatory_granted: 6.0,
        mandatory_withheld: 2.0,
        target_credits: 40.0,
        mandatory_target: 20.0,
        expected_by_now: 5.0,
        share_of_target: 0.25,
        mandatory_share: 0.3,
        status: status.into(),
        elective_granted: 4.0,
        elective_target: 0.0,
        practice_granted: 0.0,
        practice_target: 0.0,
        policy_rule: Some("credits/everyone".into()),
        policy_version: Some("0123456789ab".into()),
        topic_credits: None,
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Builds the lake and database, creates the accounts and starts the server.
pub fn start(url: &str, dir: tempfile::TempDir, config: impl FnOnce(&mut Config)) -> App {
    let rt = rt();
    let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
    let flags = vec![
        flag("f-east", "u1", "HQ/East/Sales", "c-xss"),
        flag("f-west", "u2", "HQ/West", "c-safe"),
    ];
    tables::write_flags(&lake, FLAG_DAY, &flags).unwrap();
    let credits = vec![
        credit("k-east", "u1", "HQ/East/Sales", "c-xss", "f-east"),
        credit("k-west", "u2", "HQ/West", "c-safe", "f-west"),
    ];
    tables::replace_day(
        &lake,
        tables::CREDITS,
        FLAG_DAY,
        tables::credits_batch(&credits).unwrap(),
    )
    .unwrap();
    let progress = vec![
        progress("u1", "HQ/East/Sales", "at_risk"),
        progress("u2", "HQ/West", "on_track"),
    ];
    tables::replace_day(
        &lake,
        tables::PROGRESS,
        FLAG_DAY,
        tables::progress_batch(&progress).unwrap(),
    )
    .unwrap();
    let catalog = Catalog::parse(&format!(
        "course_id,title,category,credits,duration_s,min_watch_ratio\n\
         c-xss,\"{XSS}\",mandatory,2,1800,0.8\nc-safe,Fire safety,mandatory,2,1800,0.8\n"
    ))
    .unwrap();

    let review = rt.block_on(Review::open(url)).unwrap();
    let sync = SyncInput {
        candidates: flags
            .iter()
            .map(|f| SyncCandidate {
                user_id: f.user_id.clone(),
                org_unit: f.org_unit.clone(),
                flags: vec![SyncFlag {
                    flag_id: f.flag_id.clone(),
                    detector: f.detector.clone(),
                    rule: f.rule.clone(),
                    org_unit: f.org_unit.clone(),
                    course_id: f.course_id.clone(),
                    window_start: f.window_start,
                    window_end: f.window_end,
                    weighted_severity: 0.8,
                    day: FLAG_DAY,
                }],
            })
            .collect(),
        withheld: credits
            .iter()
            .map(|c| WithheldClaim {
                credit_id: c.credit_id.clone(),
                user_id: c.user_id.clone(),
                course_id: c.course_id.clone(),
                completed_at: c.completed_at,
                credits_value: 2.0,
                flag_ids: c.flag_ids.clone(),
            })
            .collect(),
        claim_ids: credits.iter().map(|c| c.credit_id.clone()).collect(),
        review_threshold: 0.5,
        reopen_after_days: 30,
    };
    let out = rt.block_on(review.sync(&sync, now_us() - 3 * DAY)).unwrap();
    let case_of = |u: &str| {
        out.cases
            .iter()
            .find(|c| c.user_id == u)
            .unwrap()
            .case_id
            .clone()
    };
    let (east_case, west_case) = (case_of("u1"), case_of("u2"));

    let hash = creditguard_web::auth::hash_password(PASSWORD).unwrap();
    let accounts: [(&str, Role, &[&str]); 5] = [
        ("east", Role::Reviewer, &["HQ/East"]),
        ("west", Role::Reviewer, &["HQ/West"]),
        ("lead", Role::Lead, &["HQ"]),
        ("auditor", Role::Auditor, &[]),
        ("admin", Role::Admin, &[]),
    ];
    for (name, role, scopes) in accounts {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        rt.block_on(review.add_account(name, role, &scopes, &hash, "test setup", now_us()))
            .unwrap();
    }

    let mut cfg = Config {
        lake: Some(LakeView::new(lake.clone(), catalog)),
        ..Config::default()
    };
    config(&mut cfg);
    let state = AppState::new(review.clone(), cfg).unwrap();
    let app = creditguard_web::router_with(state.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(creditguard_web::serve(
        listener,
        app,
        std::future::pending(),
    ));
    App {
        addr,
        rt,
        review,
        lake,
        state,
        east_case,
        west_case,
        dir,
    }
}

/// One response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name="csrf" value="…"` of the first form.
    pub fn csrf(&self) -> String {
        let i = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a csrf field");
        let rest = &self.body[i + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A browser-like client: a cookie jar over plain HTTP/1.1.
pub struct Client {
    pub addr: SocketAddr,
    pub cookies: BTreeMap<String, String>,
    pub accept_language: Option<String>,
}

pub fn pct(s: &str) -> String {
    creditguard_web::auth::pct(s)
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            cookies: BTreeMap::new(),
            accept_language: None,
        }
    }

    pub fn request(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Resp {
        let body = form
            .map(|f| {
                f.iter()
                    .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                    .collect::<Vec<_>>()
                    .join("&")
            })
            .unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req += &format!("Cookie: {}\r\n", c.join("; "));
        }
        if let Some(l) = &self.accept_language {
            req += &format!("Accept-Language: {l}\r\n");
        }
        if form.is_some() {
            req += "Content-Type: application/x-www-form-urlencoded\r\n";
        }
        req += &format!("Content-Length: {}\r\n\r\n{body}", body.len());
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap();
                let (name, value) = pair.split_once('=').unwrap();
                if value.is_empty() || v.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_string(), value.to_string());
                }
            }
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn get(&mut self, path: &str) -> Resp {
        self.request("GET", path, None)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        self.request("POST", path, Some(form))
    }

    /// Logs in through the form; returns the response to the form post.
    pub fn login(&mut self, user: &str, password: &str) -> Resp {
        let page = self.get("/login");
        assert_eq!(page.status, 200);
        let csrf = page.csrf();
        self.post(
            "/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("next", "/cases"),
            ],
        )
    }

    /// Logs in and checks it worked.
    pub fn logged_in(addr: SocketAddr, user: &str) -> Client {
        let mut c = Client::new(addr);
        let r = c.login(user, PASSWORD);
        assert_eq!(r.status, 303, "{r:?}");
        assert_eq!(r.header("location"), Some("/cases"), "{user}: {r:?}");
        assert!(c.cookies.contains_key("cg_session"));
        c
    }

    /// The CSRF token of this session (from a page with a form).
    pub fn csrf(&mut self) -> String {
        self.get("/healthz");
        let r = self.get("/lang?to=en&back=/cases");
        assert_eq!(r.status, 303);
        let page = self.get("/cases");
        if page.status == 200 {
            return page.csrf();
        }
        let page = self.get("/audit");
        if page.status == 200 {
            return page.csrf();
        }
        self.get("/accounts").csrf()
    }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n.min(after.len())]);
        rest = after.get(n + 2..).unwrap_or("");
    }
    out
}

/// The roster's employees for the fixture's learners (u1 of HQ/East/Sales, u2 of HQ/West).
pub fn identities() -> std::sync::Arc<creditguard_contract::privacy::Identities> {
    use creditguard_contract::privacy::Identity;
    let who = |id: &str, name: &str| Identity {
        employee_id: id.into(),
        name: Some(name.into()),
    };
    std::sync::Arc::new(
        [
            ("u1".to_string(), who("E-1001", "Li Wei")),
            ("u2".to_string(), who("E-2002", "Zhang Min")),
        ]
        .into_iter()
        .collect(),
    )
}
