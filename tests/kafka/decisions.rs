//! Reviewers' decisions on the results topic: `review decide` produces `case_decision` and
//! `credit_released`/`credit_cancelled` records (key = user_id) and exits 0 only once the broker
//! acknowledged them; records a broker outage held back go with the next score run.

use std::time::Duration;

use creditguard_contract::ResultRecord;
use serde_json::Value;

use super::harness::with_broker;
use crate::util::{creditguard, repo, run, Scratch};

fn pipeline(s: &Scratch, brokers: &str, topic: &str) -> std::path::PathBuf {
    let repo = repo();
    s.write(
        "p.toml",
        format!(
            "[pipeline]\nname = \"decisions\"\nstages = [\"ingest\", \"jobs\", \"score\"]\n\
             [source]\nkind = \"ndjson\"\npath = \"{}/sample-data/telemetry.ndjson.zst\"\n\
             [lake]\nroot = \"{}\"\n[privacy]\npseudonymise = \"off\"\n[catalog]\npath = \"{}/sample-data/catalog.csv\"\n\
             [kafka]\nbrokers = \"{brokers}\"\nresults_topic = \"{topic}\"\n",
            repo.display(),
            s.lake().display(),
            repo.display()
        ),
    )
}

/// The first queued case that withholds claims: (case id, its user, its credit ids).
fn a_case_with_claims(p: &std::path::Path) -> (String, String, Vec<String>) {
    let out = run(creditguard()
        .args(["review", "list", "--format", "json", "--pipeline"])
        .arg(p));
    assert!(out.status.success());
    let queue: Value = serde_json::from_slice(&out.stdout).unwrap();
    for case in queue.as_array().unwrap() {
        let id = case["case_id"].as_str().unwrap();
        let out = run(creditguard()
            .args(["review", "show", id, "--format", "json", "--pipeline"])
            .arg(p));
        let detail: Value = serde_json::from_slice(&out.stdout).unwrap();
        let claims: Vec<String> = detail["claims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["credit_id"].as_str().unwrap().to_string())
            .collect();
        if !claims.is_empty() {
            return (
                id.to_string(),
                case["user_id"].as_str().unwrap().to_string(),
                claims,
            );
        }
    }
    panic!("no case with claims in the sample");
}

fn decide(p: &std::path::Path, case: &str, decision: &str) -> std::process::Output {
    run(creditguard()
        .args([
            "review",
            "decide",
            case,
            "--as",
            "ana",
            "--decision",
            decision,
        ])
        .args([
            "--reason",
            "checked with the learner's manager",
            "--pipeline",
        ])
        .arg(p))
}

#[test]
fn a_decision_reaches_the_results_topic_before_the_command_exits() {
    let b = with_broker!();
    let s = Scratch::new();
    let topic = b.topic("decisions", 2);
    let p = pipeline(&s, &b.addr, &topic);
    let out = run(creditguard().arg("run").arg(&p));
    assert!(out.status.success());
    let scored = b
        .read_until(&topic, Duration::from_secs(20), |r| !r.is_empty())
        .len();
    assert!(scored > 0);

    let (case, user, claims) = a_case_with_claims(&p);
    let out = decide(&p, &case, "dismissed");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("all acknowledged"));

    // Acknowledged before exit: the records are there as soon as we look.
    let expected = 1 + claims.len();
    let is_decision = |payload: &[u8]| {
        payload.starts_with(br#"{"kind":"case_decision""#)
            || payload.starts_with(br#"{"kind":"credit_released""#)
    };
    let got = b.read_until(&topic, Duration::from_secs(20), |r| {
        r.iter().filter(|m| is_decision(&m.payload)).count() >= expected
    });
    let mut decision = 0;
    let mut released = Vec::new();
    for m in &got {
        let Ok(rec) = serde_json::from_slice::<ResultRecord>(&m.payload) else {
            continue;
        };
        match rec {
            ResultRecord::CaseDecision(d) => {
                assert_eq!(
                    (d.case_id.as_str(), d.decision.as_str()),
                    (case.as_str(), "dismissed")
                );
                assert_eq!(m.key.as_deref(), Some(user.as_str()));
                decision += 1;
            }
            ResultRecord::CreditReleased(c) => {
                assert_eq!(m.key.as_deref(), Some(user.as_str()));
                released.push(c.credit_id);
            }
            _ => {}
        }
    }
    assert_eq!(decision, 1);
    released.sort();
    let mut want = claims.clone();
    want.sort();
    assert_eq!(released, want);
}

#[test]
fn decisions_held_back_by_a_broker_outage_go_with_the_next_score_run() {
    let b = with_broker!();
    let s = Scratch::new();
    let topic = b.topic("held", 1);
    // First without the topic: run and decide while "the broker is away" (a dead address).
    let dead = format!("127.0.0.1:{}", super::harness::free_port());
    let p = pipeline(&s, &b.addr, &topic);
    assert!(run(creditguard().arg("run").arg(&p)).status.success());
    let (case, user, _) = a_case_with_claims(&p);
    let away = s.write(
        "away.toml",
        std::fs::read_to_string(&p)
            .unwrap()
            .replace(&b.addr, &dead)
            .replace(
                "[kafka]\n",
                "[kafka]\nsettings = { \"message.timeout.ms\" = \"3000\" }\n",
            ),
    );
    let out = decide(&away, &case, "confirmed");
    // The decision itself is stored; only its delivery failed, and the command says so.
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stay in the outbox"), "{err}");
    let out = run(creditguard()
        .args([
            "review",
            "list",
            "--status",
            "confirmed",
            "--format",
            "json",
            "--pipeline",
        ])
        .arg(&p));
    let confirmed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(confirmed.as_array().unwrap().len(), 1);

    // The broker is back: the next score run sends what was held back.
    let out = run(creditguard().args(["score", "--pipeline"]).arg(&p));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("decision records held back earlier"));
    let got = b.read_until(&topic, Duration::from_secs(20), |r| {
        r.iter()
            .any(|m| m.payload.starts_with(br#"{"kind":"case_decision""#))
    });
    let decisions: Vec<_> = got
        .iter()
        .filter_map(|m| serde_json::from_slice::<ResultRecord>(&m.payload).ok())
        .filter_map(|r| match r {
            ResultRecord::CaseDecision(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(decisions.len(), 1);
    assert_eq!(
        (decisions[0].case_id.as_str(), decisions[0].user_id.as_str()),
        (case.as_str(), user.as_str())
    );
    // Sent once: a further run has nothing held back.
    let out = run(creditguard().args(["score", "--pipeline"]).arg(&p));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("held back"));
}
