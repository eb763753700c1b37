use std::time::Duration;

use creditguard_contract::{stable_id, Case, Credit, Flag, ResultRecord};

use super::harness::{self, with_broker};

fn records() -> Vec<ResultRecord> {
    let mut out = Vec::new();
    for u in 0..40 {
        let user = format!("u{u}");
        let flag_id = stable_id(&["quiz_speed.too_fast", &user]);
        out.push(ResultRecord::Flag(Flag {
            flag_id: flag_id.clone(),
            run_id: "run-1".into(),
            detector: "quiz_speed".into(),
            rule: "quiz_speed.too_fast".into(),
            user_id: user.clone(),
            org_unit: Some("ou-1".into()),
            course_id: Some("c1".into()),
            window_start: 1_772_000_000_000_000,
            window_end: 1_772_000_060_000_000,
            severity: 0.75,
            evidence: r#"{"s_per_question":1.2}"#.into(),
            explanation: "Answered 10 questions in 12 s with 100 %.".into(),
            rules_version: None,
            rules_name: None,
        }));
        out.push(ResultRecord::Credit(Credit {
            credit_id: stable_id(&["credit", &user]),
            run_id: "run-1".into(),
            user_id: user.clone(),
            org_unit: None,
            course_id: "c1".into(),
            category: "mandatory".into(),
            completed_at: 1_772_000_100_000_000,
            credits_claimed: 2.0,
            credits_granted: 0.0,
            status: "withheld".into(),
            flag_ids: vec![flag_id.clone()],
            rules_version: None,
            rules_name: None,
            policy_version: None,
        }));
        out.push(ResultRecord::Case(Case {
            case_id: stable_id(&["case", &user]),
            run_id: "run-1".into(),
            user_id: user,
            org_unit: None,
            period_start: 1_771_900_000_000_000,
            period_end: 1_772_500_000_000_000,
            risk: 0.6,
            flag_ids: vec![flag_id],
            detectors: vec!["quiz_speed".into()],
            credits_withheld: 2.0,
            status: "open".into(),
            previous_case_id: None,
            assignee: None,
        }));
    }
    out
}

#[test]
fn results_round_trip_through_the_topic() {
    let b = with_broker!();
    let topic = b.topic("results", 3);
    let sent = records();
    let report = harness::block_on(creditguard_kafka::produce_results(
        &b.client(),
        &topic,
        sent.clone(),
    ))
    .unwrap();
    assert_eq!(report.records as usize, sent.len());
    assert_eq!(report.partitions.values().sum::<u64>() as usize, sent.len());

    let got = b.read_all(&topic, sent.len(), Duration::from_secs(20));
    assert_eq!(got.len(), sent.len());
    let mut decoded = Vec::new();
    let mut partition_of_user = std::collections::HashMap::new();
    for r in &got {
        assert_eq!(r.header("schema_version"), Some("1"));
        let rec: ResultRecord = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(r.key.as_deref(), Some(rec.user_id()));
        // One learner's records share a partition (and so keep their order).
        let p = *partition_of_user
            .entry(rec.user_id().to_string())
            .or_insert(r.partition);
        assert_eq!(p, r.partition);
        decoded.push(rec);
    }
    let key = |r: &ResultRecord| serde_json::to_string(r).unwrap();
    let mut a: Vec<String> = sent.iter().map(key).collect();
    let mut d: Vec<String> = decoded.iter().map(key).collect();
    a.sort();
    d.sort();
    assert_eq!(a, d);
}

#[test]
fn producing_to_a_missing_topic_fails_instead_of_reporting_success() {
    let b = with_broker!();
    let mut client = b.client();
    client.set("message.timeout.ms", "3000");
    let err = harness::block_on(creditguard_kafka::produce_results(
        &client,
        "no-such-topic-results",
        records().into_iter().take(1),
    ));
    assert!(err.is_err(), "{err:?}");
}

/// `[results] identify = true` on the results topic (`creditguard score` on the shipped sample):
/// each record of a roster learner carries `employee_id`, the real id whose pseudonym is its
/// `user_id` and key; without the setting no record has the field.
#[test]
fn identify_puts_the_real_id_on_the_topic_only_when_on() {
    let b = with_broker!();
    let s = crate::util::Scratch::new();
    let (p, key) = crate::privacy::default_pipeline(&s);
    let lake = s.lake();
    let out = crate::util::run(
        crate::util::creditguard()
            .current_dir(crate::util::repo())
            .arg("run")
            .arg(&p)
            .arg("--lake")
            .arg(&lake),
    );
    assert!(out.status.success());
    let roster =
        std::fs::read_to_string(crate::util::repo().join("sample-data/roster.csv")).unwrap();
    let real_of: std::collections::HashMap<String, String> = roster
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|id| (key.user(id), id.to_string()))
        .collect();
    let base = std::fs::read_to_string(&p).unwrap();
    let mut identified = 0;
    for identify in [false, true] {
        let topic = b.topic("identify", 2);
        let text = format!(
            "{base}\n[kafka]\nbrokers = \"{}\"\nresults_topic = \"{topic}\"\n[results]\nidentify = {identify}\n",
            b.addr
        );
        let pipeline = s.write(&format!("p-{identify}.toml"), text);
        let out = crate::util::run(
            crate::util::creditguard()
                .current_dir(crate::util::repo())
                .args(["score", "--emit", "ndjson", "--pipeline"])
                .arg(&pipeline)
                .arg("--lake")
                .arg(&lake),
        );
        assert!(out.status.success());
        let n = String::from_utf8(out.stdout).unwrap().lines().count();
        let got = b.read_all(&topic, n, Duration::from_secs(30));
        assert_eq!(got.len(), n, "{topic}");
        for r in &got {
            let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
            let user = v["user_id"].as_str().unwrap();
            assert_eq!(r.key.as_deref(), Some(user), "the key stays the pseudonym");
            let expected = real_of.get(user).filter(|_| identify);
            assert_eq!(
                v.get("employee_id").and_then(|e| e.as_str()),
                expected.map(String::as_str)
            );
            identified += usize::from(expected.is_some());
        }
    }
    assert!(identified > 100, "{identified}");
}
