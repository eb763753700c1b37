//! 50 concurrent reviewers against a review database with 100 000 cases, on SQLite and on
//! PostgreSQL: each logs in and sends a mix of queue pages (60 %, with varied filters), case
//! pages (30 %) and decisions (10 %) to the real server over HTTP. Prints p50 and p99 latency per
//! route and requests per second, in two phases on the same database:
//! - **paced**: each reviewer pauses a random 0–2×THINK ms between requests (THINK 1000: every
//!   reviewer clicking about once a second, far busier than people reading cases), the load the
//!   target is about: p99 ≤ 150 ms for queue and case pages on 2 cores;
//! - **saturated**: no pause, every reviewer sends its next request as soon as the last answers:
//!   the capacity in requests/s (the latencies are then queueing: 50 requests in flight).
//!
//! `cargo bench -p creditguard-web --bench concurrent_reviewers`; sizes from the environment:
//! CREDITGUARD_BENCH_CASES (100000), CREDITGUARD_BENCH_REVIEWERS (50),
//! CREDITGUARD_BENCH_REQUESTS (requests per reviewer and phase, 40), CREDITGUARD_BENCH_THINK_MS
//! (1000), CREDITGUARD_BENCH_BACKENDS (`sqlite`, `postgres`; both by default). PostgreSQL is skipped when it is not installed. The lake is not configured: this
//! measures the database, scope checks, rendering and the audit records of views and decisions.

#[path = "../tests/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Client, PASSWORD};
use creditguard_review::{now_us, Review, Role, SyncCandidate, SyncFlag, SyncInput, WithheldClaim};
use creditguard_web::{AppState, Config};

const DAY: i64 = creditguard_contract::time::DAY_US;
const BRANCHES: usize = 10;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn branch(i: usize) -> String {
    format!("HQ/B{}/T{}", i % BRANCHES, (i / BRANCHES) % 3)
}

/// `n` cases over ten branches, each with one flag and one withheld claim.
fn populate(rt: &tokio::runtime::Runtime, review: &Review, n: usize) {
    let started = Instant::now();
    let now = now_us();
    let rules = [
        "watch_time.background_playback",
        "quiz_speed.too_fast",
        "multi_login.overlap",
    ];
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let mut input = SyncInput {
            review_threshold: 0.5,
            reopen_after_days: 30,
            ..SyncInput::default()
        };
        for &i in chunk {
            let user = format!("u{i:06}");
            let day = 20_400 + (i % 90) as i64;
            let flag = format!("f{i:06}");
            input.candidates.push(SyncCandidate {
                user_id: user.clone(),
                org_unit: Some(branch(i)),
                flags: vec![SyncFlag {
                    flag_id: flag.clone(),
                    detector: rules[i % 3].split('.').next().unwrap().into(),
                    rule: rules[i % 3].into(),
                    org_unit: Some(branch(i)),
                    course_id: Some(format!("c{}", i % 40)),
                    window_start: day * DAY,
                    window_end: day * DAY + 3_600_000_000,
                    weighted_severity: 0.5 + (i % 50) as f64 / 100.0,
                    day,
                }],
            });
            input.withheld.push(WithheldClaim {
                credit_id: format!("k{i:06}"),
                user_id: user,
                course_id: format!("c{}", i % 40),
                completed_at: day * DAY + 7_200_000_000,
                credits_value: 2.0,
                flag_ids: vec![flag],
            });
            input.claim_ids.push(format!("k{i:06}"));
        }
        rt.block_on(review.sync(&input, now - (chunk[0] as i64 % 30) * DAY))
            .unwrap();
    }
    eprintln!(
        "populated {n} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i].as_secs_f64() * 1000.0
}

/// A pause of 0–2×`mean_ms` (a cheap generator seeded per reviewer: no dependency for it).
fn pause(state: &mut u64, mean_ms: usize) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    Duration::from_millis(*state % (2 * mean_ms as u64 + 1))
}

fn run(backend: &str, url: &str) {
    let (cases, reviewers) = (
        env("CREDITGUARD_BENCH_CASES", 100_000),
        env("CREDITGUARD_BENCH_REVIEWERS", 50),
    );
    let rt = common::rt();
    let review = rt.block_on(Review::open(url)).unwrap();
    populate(&rt, &review, cases);
    let hash = creditguard_web::auth::hash_password(PASSWORD).unwrap();
    for r in 0..reviewers {
        let scope = vec![format!("HQ/B{}", r % BRANCHES)];
        rt.block_on(review.add_account(
            &format!("r{r}"),
            Role::Reviewer,
            &scope,
            &hash,
            "bench",
            now_us(),
        ))
        .unwrap();
    }
    let state = AppState::new(review.clone(), Config::default()).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(creditguard_web::serve(
        listener,
        creditguard_web::router_with(state),
        std::future::pending(),
    ));
    let think = env("CREDITGUARD_BENCH_THINK_MS", 1000);
    if think > 0 {
        phase(
            &format!("{backend}, paced (pause 0–{} ms)", 2 * think),
            addr,
            cases,
            reviewers,
            think,
        );
    }
    phase(
        &format!("{backend}, saturated (no pause)"),
        addr,
        cases,
        reviewers,
        0,
    );
}

fn phase(title: &str, addr: std::net::SocketAddr, cases: usize, reviewers: usize, think: usize) {
    let requests = env("CREDITGUARD_BENCH_REQUESTS", 40);
    let started = Instant::now();
    let threads: Vec<_> = (0..reviewers)
        .map(|r| {
            std::thread::spawn(move || {
                let mut c = Client::logged_in(addr, &format!("r{r}"));
                let csrf = c.csrf();
                let mut times: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
                let mut seen: Vec<String> = Vec::new();
                let filters = [
                    ("queue: waiting", "/cases".to_string()),
                    (
                        "queue: org unit",
                        format!("/cases?org_unit=HQ%2FB{}%2FT1", r % BRANCHES),
                    ),
                    ("queue: rule", "/cases?rule=quiz_speed.too_fast".into()),
                    (
                        "queue: risk ≥ 0.8, all",
                        "/cases?min_risk=0.8&status=all".into(),
                    ),
                    (
                        "queue: 10 days old, page 3",
                        "/cases?older_than_days=10&page=3".into(),
                    ),
                    ("queue: unassigned", "/cases?assignee=none".into()),
                ];
                let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ (r as u64 + 1);
                for i in 0..requests {
                    if think > 0 {
                        std::thread::sleep(pause(&mut seed, think));
                    }
                    let kind = match i % 10 {
                        0..=5 => "queue",
                        6..=8 => "case",
                        _ => "decision",
                    };
                    let label = if kind == "case" && seen.is_empty() {
                        "queue"
                    } else {
                        kind
                    };
                    let t = Instant::now();
                    let mut filter = None;
                    let ok = match kind {
                        "queue" | "case" if seen.is_empty() || kind == "queue" => {
                            let (name, url) = &filters[(i + r) % filters.len()];
                            filter = Some(*name);
                            let resp = c.get(url);
                            for part in resp.body.split("href=\"/cases/").skip(1).take(20) {
                                if let Some(id) = part.split('"').next() {
                                    seen.push(id.to_string());
                                }
                            }
                            resp.status == 200
                        }
                        "case" => {
                            c.get(&format!("/cases/{}", seen[(i * 7 + r) % seen.len()]))
                                .status
                                == 200
                        }
                        _ => match seen.pop() {
                            Some(id) => {
                                let resp = c.post(
                                    &format!("/cases/{id}/decision"),
                                    &[
                                        ("csrf", &csrf),
                                        ("verdict", "dismissed"),
                                        ("reason", "bench"),
                                    ],
                                );
                                // Another reviewer of the branch may have decided it first.
                                resp.status == 303 || resp.status == 409
                            }
                            None => true,
                        },
                    };
                    assert!(ok, "{kind} request failed");
                    let took = t.elapsed();
                    times.entry(label).or_default().push(took);
                    if let Some(f) = filter {
                        times.entry(f).or_default().push(took);
                    }
                }
                times
            })
        })
        .collect();
    let mut all: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
    for t in threads {
        for (k, v) in t.join().unwrap() {
            all.entry(k).or_default().extend(v);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let total: usize = all
        .iter()
        .filter(|(k, _)| !k.starts_with("queue:"))
        .map(|(_, v)| v.len())
        .sum();
    println!("\n{title}: {cases} cases, {reviewers} concurrent reviewers, {total} requests in {secs:.1} s = {:.0} requests/s", total as f64 / secs);
    println!("| route | requests | p50 ms | p99 ms |\n|---|---:|---:|---:|");
    for (k, mut v) in all {
        let n = v.len();
        println!(
            "| {k} | {n} | {:.1} | {:.1} |",
            pct(&mut v, 0.5),
            pct(&mut v, 0.99)
        );
    }
}

fn main() {
    // CREDITGUARD_BENCH_BACKENDS: `sqlite`, `postgres` or both (the default).
    let backends = std::env::var("CREDITGUARD_BENCH_BACKENDS").unwrap_or_default();
    let wants = |b: &str| backends.is_empty() || backends.split(',').any(|x| x.trim() == b);
    let dir = tempfile::tempdir().unwrap();
    if wants("sqlite") {
        run(
            "SQLite",
            &format!("sqlite://{}/review.sqlite?mode=rwc", dir.path().display()),
        );
    }
    if !wants("postgres") {
        return;
    }
    match creditguard_review::testing::TempPostgres::start() {
        Ok(Some(pg)) => run("PostgreSQL", &pg.fresh_database().unwrap()),
        Ok(None) => eprintln!(
            "skipped PostgreSQL: {}",
            creditguard_review::testing::INSTALL_HINT
        ),
        Err(e) => panic!("PostgreSQL: {e}"),
    }
}
