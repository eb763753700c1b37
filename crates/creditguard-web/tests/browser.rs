//! The browser scenario in Debian's headless Chromium, driven over WebDriver
//! (chromedriver): log in, filter the queue to one org unit, open a case, read its timeline and
//! explanations in both languages, dismiss it with a reason, see its credits released; as a
//! reviewer of another branch fail to open it; as an auditor see both actions in the audit
//! trail. Screenshots of the queue, the case and the overview are checked and written to
//! `$CARGO_TARGET_TMPDIR/screenshots/`.
//!
//! Skipped with a message when chromium or chromedriver is missing, unless
//! CREDITGUARD_REQUIRE_BROWSER=1 (CI), where that is a failure.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{start, PASSWORD};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A chromedriver process and one WebDriver session of it.
struct Driver {
    child: Child,
    port: u16,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> std::io::Result<Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    // chromedriver keeps connections open whatever the request says: read by Content-Length.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head_end, length) = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other("chromedriver closed the connection"));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| std::io::Error::other(format!("no Content-Length: {head}")))?;
            break (i + 4, length);
        }
    };
    while raw.len() < head_end + length {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&raw[head_end..]).to_string();
    serde_json::from_str(&body).map_err(|e| std::io::Error::other(format!("{e}: {body}")))
}

impl Driver {
    fn start() -> Option<Driver> {
        let required = std::env::var("CREDITGUARD_REQUIRE_BROWSER").as_deref() == Ok("1");
        let driver = chromedriver();
        if !Path::new(CHROMIUM).exists() || driver.is_none() {
            let msg = "chromium or chromedriver is not installed (apt-get install chromium chromium-driver; .ci/run does)";
            assert!(!required, "CREDITGUARD_REQUIRE_BROWSER=1 but {msg}");
            eprintln!("skipped: {msg}");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(driver.unwrap())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http(port, "GET", "/status", None).is_ok_and(|v| v["value"]["ready"] == true) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                         "--window-size=1280,1500", "--lang=en-US"],
                "prefs": {"intl.accept_languages": "en-US,en"}
            }
        }}});
        let mut d = Driver {
            child,
            port,
            session: String::new(),
        };
        let v = d.call("POST", "/session", Some(&caps));
        d.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Some(d)
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let v = http(self.port, method, path, body).unwrap();
        let value = v["value"].clone();
        if let Some(e) = value.get("error") {
            panic!("WebDriver {method} {path}: {e}: {}", value["message"]);
        }
        value
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(&json!({"url": url})));
    }

    fn find(&self, css: &str) -> String {
        let v = self.call(
            "POST",
            &self.s("/element"),
            Some(&json!({"using": "css selector", "value": css})),
        );
        match v[ELEMENT].as_str() {
            Some(e) => e.to_string(),
            None => panic!(
                "no element `{css}` ({v}) on {}:\n{}",
                self.url(),
                self.source()
            ),
        }
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/click")),
            Some(&json!({})),
        );
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/clear")),
            Some(&json!({})),
        );
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            Some(&json!({"text": text})),
        );
    }

    fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits (up to 10 s) until the page's URL contains `part`: a click's navigation may still
    /// be under way when the click returns.
    fn wait_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.url().contains(part) {
            assert!(
                Instant::now() < deadline,
                "never reached a URL with `{part}`: {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (up to 10 s) until the page source contains `part`, and returns the source.
    fn wait_source(&self, part: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let src = self.source();
            if src.contains(part) {
                return src;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed `{part}`:\n{src}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn forget_cookies(&self) {
        self.call("DELETE", &self.s("/cookie"), None);
    }

    fn login(&self, base: &str, user: &str) {
        self.forget_cookies();
        self.go(&format!("{base}/login"));
        self.type_into("input[name=username]", user);
        self.type_into("input[name=password]", PASSWORD);
        self.click("form[action='/login'] button");
        self.wait_url("/cases");
    }

    /// Takes a screenshot, checks it is a real, non-blank page-sized PNG, and writes it.
    fn screenshot(&self, name: &str) -> PathBuf {
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64(b64.as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}: a PNG");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert!(w >= 1000 && h >= 600, "{name}: {w}×{h}");
        // A blank page compresses to a few KB; text, tables and charts do not.
        assert!(
            png.len() > 25_000,
            "{name}: only {} bytes, the page looks empty",
            png.len()
        );
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, &png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= (val(*c) as u32) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

#[test]
fn a_reviewer_dismisses_a_case_in_chromium() {
    let Some(d) = Driver::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/review.sqlite?mode=rwc", dir.path().display());
    let app = start(&url, dir, |c| c.identities = Some(common::identities()));
    let base = format!("http://{}", app.addr);
    let east = app.east_case.clone();

    // Log in and filter the queue to one org unit.
    d.login(&base, "east");
    d.type_into("input[name=org_unit]", "HQ/East/Sales");
    d.click("form.filters button");
    d.wait_url("org_unit=HQ%2FEast%2FSales");
    let src = d.wait_source("1 cases");
    assert!(src.contains(&east) && !src.contains(&app.west_case));
    d.screenshot("queue");

    // Open the case: timeline and explanations in English, then in Chinese.
    d.click(&format!("table.queue a[href='/cases/{east}']"));
    let src = d.wait_source("Marks on the timeline");
    assert!(src.contains("<svg class=\"timeline\""), "the timeline");
    assert!(src.contains("12% watched"), "the English explanation");
    assert!(src.contains("Marks on the timeline"));
    assert!(
        src.contains("E-1001") && src.contains("Li Wei"),
        "the employee behind the pseudonym, inside east's scope"
    );
    assert!(
        src.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the hostile course title as text"
    );
    d.screenshot("case");
    d.click("a.lang");
    let src = d.wait_source("时间线");
    assert!(
        src.contains("视频在后台播放") && src.contains("时间线"),
        "the Chinese page"
    );
    d.click("a.lang");
    d.wait_source("Withheld claims");

    // Dismiss it with a reason; the credits are released at once.
    d.click("input[name=verdict][value=dismissed]");
    d.type_into(
        "#decide textarea[name=reason]",
        "Watched on a train with the screen off; manager confirmed.",
    );
    d.click("#decide button[type=submit]");
    let src = d.wait_source("badge s-dismissed");
    assert!(src.contains("badge s-dismissed"), "the case is dismissed");
    assert!(src.contains("badge c-released"), "its credit is released");

    d.go(&format!("{base}/overview"));
    d.wait_source("HQ/East/Sales");
    d.screenshot("overview");

    // A reviewer of another branch cannot open it.
    d.login(&base, "west");
    d.go(&format!("{base}/cases/{east}"));
    let src = d.source();
    assert!(
        src.contains("404") && !src.contains("12% watched") && !src.contains("E-1001"),
        "west is refused"
    );

    // The auditor sees the view and the decision.
    d.forget_cookies();
    d.go(&format!("{base}/login"));
    d.type_into("input[name=username]", "auditor");
    d.type_into("input[name=password]", PASSWORD);
    d.click("form[action='/login'] button");
    d.wait_url("/cases");
    d.go(&format!("{base}/audit?case_id={}", common::pct(&east)));
    let src = d.source();
    assert!(src.contains("Hash chain verified"));
    assert!(src.contains("<td>view_case</td>") && src.contains("<td>decide</td>"));
    assert!(
        src.contains("<td>reidentify</td>"),
        "the re-identification is in the trail"
    );
    assert!(
        src.contains("Watched on a train"),
        "the reason is in the trail"
    );
}
