//! The review store against both back ends: every test runs on SQLite (a file in a temporary
//! directory) and on a real PostgreSQL server started for the tests (skipped with a message when
//! PostgreSQL is not installed, unless CREDITGUARD_REQUIRE_POSTGRES=1).

use creditguard_contract::{Credit, ResultRecord};
use creditguard_review::{
    apply_decisions, CaseFilter, CaseStatus, ClaimDecision, DecideRequest, Error, Review,
    SyncCandidate, SyncFlag, SyncInput, Verdict, WithheldClaim,
};

const DAY: i64 = creditguard_contract::time::DAY_US;
const NOW: i64 = 1_775_000_000_000_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs an `async fn(url)` test on SQLite and on PostgreSQL.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/review.sqlite?mode=rwc", dir.path().display());
                super::rt().block_on(super::$name(url));
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
                super::rt().block_on(super::$name(url));
            }
        }
    };
}

fn flag(id: &str, day: i64, sev: f64) -> SyncFlag {
    SyncFlag {
        flag_id: id.into(),
        detector: if id.starts_with('w') {
            "watch_time"
        } else {
            "quiz_speed"
        }
        .into(),
        rule: if id.starts_with('w') {
            "watch_time.background_playback"
        } else {
            "quiz_speed.too_fast"
        }
        .into(),
        org_unit: Some("HQ/East/Sales".into()),
        course_id: Some("c1".into()),
        window_start: day * DAY + 3_600_000_000,
        window_end: day * DAY + 7_200_000_000,
        weighted_severity: sev,
        day,
    }
}

fn cand(user: &str, flags: Vec<SyncFlag>) -> SyncCandidate {
    SyncCandidate {
        user_id: user.into(),
        org_unit: Some("HQ/East/Sales".into()),
        flags,
    }
}

fn claim(id: &str, user: &str, day: i64, flags: &[&str]) -> WithheldClaim {
    WithheldClaim {
        credit_id: id.into(),
        user_id: user.into(),
        course_id: "c1".into(),
        completed_at: day * DAY + 8_000_000_000,
        credits_value: 2.0,
        flag_ids: flags.iter().map(|s| s.to_string()).collect(),
    }
}

fn input(candidates: Vec<SyncCandidate>, withheld: Vec<WithheldClaim>) -> SyncInput {
    let claim_ids = withheld.iter().map(|w| w.credit_id.clone()).collect();
    SyncInput {
        candidates,
        withheld,
        claim_ids,
        review_threshold: 0.5,
        reopen_after_days: 30,
    }
}

fn credit(w: &WithheldClaim) -> Credit {
    Credit {
        credit_id: w.credit_id.clone(),
        run_id: "r".into(),
        user_id: w.user_id.clone(),
        org_unit: None,
        course_id: w.course_id.clone(),
        category: "mandatory".into(),
        completed_at: w.completed_at,
        credits_claimed: 2.0,
        credits_granted: 0.0,
        status: "withheld".into(),
        flag_ids: w.flag_ids.clone(),
        rules_version: None,
        rules_name: None,
        policy_version: None,
    }
}

fn decide(case_id: &str, verdict: Verdict, cancel: &[&str]) -> DecideRequest {
    DecideRequest {
        case_id: case_id.into(),
        verdict,
        reason: "Checked the timeline with the learner's manager.".into(),
        reviewer: "hr.wang".into(),
        cancel_claims: cancel.iter().map(|s| s.to_string()).collect(),
        expect_version: None,
    }
}

async fn one_case_per_episode_stable_across_rescoring(url: String) {
    let r = Review::open(&url).await.unwrap();
    let run = input(
        vec![
            cand("u1", vec![flag("q1", 10, 0.6), flag("w1", 11, 0.7)]),
            // Below the review threshold on its own: no case.
            cand("u2", vec![flag("q9", 10, 0.2)]),
        ],
        vec![claim("k1", "u1", 11, &["q1", "w1"])],
    );
    let out = r.sync(&run, NOW).await.unwrap();
    assert_eq!((out.opened, out.flags_attached), (1, 2));
    assert_eq!(out.cases.len(), 1);
    let case = out.cases[0].clone();
    assert_eq!(case.status, CaseStatus::Open);
    assert!(
        (case.risk - (1.0 - 0.4 * 0.3)).abs() < 1e-9,
        "{}",
        case.risk
    );
    assert_eq!(case.version, 1);

    // The same run again: nothing changes, the same id.
    let again = r.sync(&run, NOW + 1).await.unwrap();
    assert_eq!((again.opened, again.flags_attached), (0, 0));
    assert_eq!(again.cases, vec![case.clone()]);

    // A daily schedule: day 12's new flag joins the open case (a new version, one case).
    let day12 = input(vec![cand("u1", vec![flag("q2", 12, 0.6)])], vec![]);
    let out = r.sync(&day12, NOW + 2).await.unwrap();
    assert_eq!((out.opened, out.flags_attached), (0, 1));
    assert_eq!(out.cases[0].case_id, case.case_id);
    assert_eq!(out.cases[0].version, 2);

    // Flags after a quiet gap longer than reopen_after_days start a new case linked to the old.
    let later = input(vec![cand("u1", vec![flag("q3", 60, 0.6)])], vec![]);
    let out = r.sync(&later, NOW + 3).await.unwrap();
    assert_eq!(out.opened, 1);
    assert_eq!(
        out.cases[0].previous_case_id.as_deref(),
        Some(case.case_id.as_str())
    );
    let all = r.list(&CaseFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);

    // The same flags synced at once into a fresh database give the same first case id.
    let dir = tempfile::tempdir().unwrap();
    let other = Review::open(&format!(
        "sqlite://{}/r.sqlite?mode=rwc",
        dir.path().display()
    ))
    .await
    .unwrap();
    let at_once = input(
        vec![cand(
            "u1",
            vec![
                flag("q1", 10, 0.6),
                flag("w1", 11, 0.7),
                flag("q2", 12, 0.6),
            ],
        )],
        vec![],
    );
    let out = other.sync(&at_once, NOW).await.unwrap();
    assert_eq!(out.cases[0].case_id, case.case_id);
}
on_both!(one_case_per_episode_stable_across_rescoring);

async fn decisions_release_and_cancel_and_scoring_honours_them(url: String) {
    let r = Review::open(&url).await.unwrap();
    let withheld = vec![
        claim("k1", "u1", 11, &["q1"]),
        claim("k2", "u2", 11, &["q2"]),
        claim("k3", "u3", 11, &["q3"]),
        claim("k4", "u3", 12, &["q4"]),
    ];
    let run = input(
        vec![
            cand("u1", vec![flag("q1", 10, 0.6)]),
            cand("u2", vec![flag("q2", 10, 0.6)]),
            cand("u3", vec![flag("q3", 10, 0.6), flag("q4", 11, 0.6)]),
        ],
        withheld.clone(),
    );
    let out = r.sync(&run, NOW).await.unwrap();
    let id = |u: &str| {
        out.cases
            .iter()
            .find(|c| c.user_id == u)
            .unwrap()
            .case_id
            .clone()
    };
    let (c1, c2, c3) = (id("u1"), id("u2"), id("u3"));
    let d1 = r
        .decide(&decide(&c1, Verdict::Dismissed, &[]), NOW + 10)
        .await
        .unwrap();
    assert_eq!(d1.released_credit_ids, vec!["k1".to_string()]);
    assert_eq!(d1.credits_released, 2.0);
    let d2 = r
        .decide(&decide(&c2, Verdict::Confirmed, &[]), NOW + 11)
        .await
        .unwrap();
    assert_eq!(d2.cancelled_credit_ids, vec!["k2".to_string()]);
    let d3 = r
        .decide(&decide(&c3, Verdict::PartiallyConfirmed, &["k4"]), NOW + 12)
        .await
        .unwrap();
    assert_eq!(
        (
            d3.released_credit_ids.clone(),
            d3.cancelled_credit_ids.clone()
        ),
        (vec!["k3".to_string()], vec!["k4".to_string()])
    );

    // The next score: the same flags, the same claims; the decisions stand.
    let out = r.sync(&run, NOW + 20).await.unwrap();
    assert_eq!(out.opened, 0);
    let mut credits: Vec<Credit> = withheld.iter().map(credit).collect();
    assert_eq!(apply_decisions(&mut credits, &out.decisions), 4);
    let status: Vec<(&str, &str, f64)> = credits
        .iter()
        .map(|c| (c.credit_id.as_str(), c.status.as_str(), c.credits_granted))
        .collect();
    assert_eq!(
        status,
        vec![
            ("k1", "released", 2.0),
            ("k2", "cancelled", 0.0),
            ("k3", "released", 2.0),
            ("k4", "cancelled", 0.0)
        ]
    );
    let listed = r.list(&CaseFilter::default()).await.unwrap();
    let statuses: Vec<CaseStatus> = listed.iter().map(|c| c.status).collect();
    assert_eq!(listed.len(), 3, "no new case for the same flags");
    assert!(statuses.iter().all(|s| s.is_decided()), "{statuses:?}");

    // A new flag after the dismissal opens a new case linked to the dismissed one, and a new
    // claim it withholds stays withheld: the dismissal did not cover it.
    let run2 = input(
        vec![cand("u1", vec![flag("q1", 10, 0.6), flag("q5", 13, 0.6)])],
        vec![claim("k1", "u1", 11, &["q1", "q5"])],
    );
    let out = r.sync(&run2, NOW + 30).await.unwrap();
    assert_eq!(out.opened, 1);
    let new_case = out.cases.iter().find(|c| c.case_id != c1).unwrap();
    assert_eq!(new_case.previous_case_id.as_deref(), Some(c1.as_str()));
    let mut k1 = vec![credit(&run2.withheld[0])];
    apply_decisions(&mut k1, &out.decisions);
    assert_eq!(
        (k1[0].status.as_str(), k1[0].flag_ids.clone()),
        ("withheld", vec!["q5".to_string()])
    );

    // A claim that reaches a confirmed case's flag later takes the case's decision.
    let run3 = input(
        vec![cand("u2", vec![flag("q2", 10, 0.6)])],
        vec![claim("k6", "u2", 14, &["q2"])],
    );
    let out = r.sync(&run3, NOW + 40).await.unwrap();
    let v = &out.decisions.by_credit["k6"];
    assert_eq!(v[0].decision, ClaimDecision::Cancelled);

    // The outbox holds the stream records of every decision, until acknowledged.
    let pending = r.unpublished().await.unwrap();
    let kinds: Vec<String> = pending
        .iter()
        .map(
            |(_, _, json)| match serde_json::from_str::<ResultRecord>(json).unwrap() {
                ResultRecord::CaseDecision(_) => "case_decision".into(),
                ResultRecord::CreditReleased(c) => format!("credit_released {}", c.credit_id),
                ResultRecord::CreditCancelled(c) => format!("credit_cancelled {}", c.credit_id),
                other => panic!("unexpected {other:?}"),
            },
        )
        .collect();
    assert_eq!(
        kinds,
        vec![
            "case_decision",
            "credit_released k1",
            "case_decision",
            "credit_cancelled k2",
            "case_decision",
            "credit_released k3",
            "credit_cancelled k4",
            "credit_cancelled k6"
        ]
    );
    let ids: Vec<String> = pending.iter().map(|p| p.0.clone()).collect();
    r.mark_published(&ids).await.unwrap();
    assert!(r.unpublished().await.unwrap().is_empty());
    let day = (NOW + 10).div_euclid(DAY);
    assert_eq!(r.decisions_of_day(day).await.unwrap().len(), 3);
}
on_both!(decisions_release_and_cancel_and_scoring_honours_them);

async fn every_transition_allowed_and_refused(url: String) {
    let r = Review::open(&url).await.unwrap();
    let out = r
        .sync(
            &input(
                vec![cand("u1", vec![flag("q1", 10, 0.6)])],
                vec![
                    claim("k1", "u1", 11, &["q1"]),
                    claim("k2", "u1", 11, &["q1"]),
                ],
            ),
            NOW,
        )
        .await
        .unwrap();
    let c = out.cases[0].case_id.clone();
    let refused = |e: Error, want: &str| {
        let msg = e.to_string();
        assert!(e.is_usage(), "{msg}");
        assert!(msg.contains(want), "{msg} should contain {want}");
    };
    refused(
        r.request_info(&c, "why", "hr.wang", None, NOW)
            .await
            .unwrap_err(),
        "is open: request_info is not allowed (allowed from: in_review)",
    );
    refused(
        r.appeal(&c, "unfair", "u1", None, NOW).await.unwrap_err(),
        "is open: appeal is not allowed",
    );
    refused(
        r.assign("nope", "hr.wang", "hr.lead", None, NOW)
            .await
            .unwrap_err(),
        "no case `nope`",
    );
    let mut no_reason = decide(&c, Verdict::Confirmed, &[]);
    no_reason.reason = "  ".into();
    refused(
        r.decide(&no_reason, NOW).await.unwrap_err(),
        "a reason (--reason) is required",
    );
    refused(
        r.decide(&decide(&c, Verdict::Confirmed, &["k1"]), NOW)
            .await
            .unwrap_err(),
        "--claims goes with partially_confirmed only",
    );
    refused(
        r.decide(&decide(&c, Verdict::PartiallyConfirmed, &["k1", "k2"]), NOW)
            .await
            .unwrap_err(),
        "some but not all",
    );
    refused(
        r.decide(&decide(&c, Verdict::PartiallyConfirmed, &["k9"]), NOW)
            .await
            .unwrap_err(),
        "holds no withheld claim `k9`",
    );

    let a = r
        .assign(&c, "hr.wang", "hr.lead", None, NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.assignee.as_deref(), a.version),
        (CaseStatus::InReview, Some("hr.wang"), 2)
    );
    let n = r
        .request_info(
            &c,
            "Ask the manager about the night sessions.",
            "hr.wang",
            Some(2),
            NOW + 2,
        )
        .await
        .unwrap();
    assert_eq!(n.status, CaseStatus::NeedsInfo);
    refused(
        r.assign(&c, "hr.li", "hr.lead", Some(2), NOW + 3)
            .await
            .unwrap_err(),
        "changed since version 2 (now version 3, needs_info)",
    );
    r.comment(
        &c,
        "Manager confirms the learner was on leave.",
        "hr.wang",
        NOW + 4,
    )
    .await
    .unwrap();
    let d = r
        .decide(&decide(&c, Verdict::Dismissed, &[]), NOW + 5)
        .await
        .unwrap();
    assert!(d.supersedes.is_none());
    for e in [
        r.decide(&decide(&c, Verdict::Confirmed, &[]), NOW + 6)
            .await
            .unwrap_err(),
        r.assign(&c, "hr.li", "hr.lead", None, NOW + 6)
            .await
            .unwrap_err(),
        r.request_info(&c, "x", "hr.li", None, NOW + 6)
            .await
            .unwrap_err(),
    ] {
        refused(e, "is dismissed");
    }
    let ap = r
        .appeal(
            &c,
            "Second look requested by works council.",
            "u1",
            None,
            NOW + 7,
        )
        .await
        .unwrap();
    assert_eq!(ap.status, CaseStatus::Appealed);
    let d2 = r
        .decide(&decide(&c, Verdict::PartiallyConfirmed, &["k2"]), NOW + 8)
        .await
        .unwrap();
    assert_eq!(d2.supersedes.as_deref(), Some(d.decision_id.as_str()));

    let detail = r.show(&c).await.unwrap();
    let trail: Vec<(String, Option<String>, Option<String>)> = detail
        .history
        .iter()
        .map(|h| {
            (
                h.action.clone(),
                h.before_state.clone(),
                h.after_state.clone(),
            )
        })
        .collect();
    let s = |x: &str| Some(x.to_string());
    assert_eq!(
        trail,
        vec![
            ("open".into(), None, s("open")),
            ("add_claims".into(), s("open"), s("open")),
            ("assign".into(), s("open"), s("in_review")),
            ("request_info".into(), s("in_review"), s("needs_info")),
            ("comment".into(), s("needs_info"), s("needs_info")),
            ("decide".into(), s("needs_info"), s("dismissed")),
            ("appeal".into(), s("dismissed"), s("appealed")),
            ("decide".into(), s("appealed"), s("partially_confirmed")),
        ]
    );
    assert!(detail
        .history
        .iter()
        .skip(2)
        .all(|h| h.reason.is_some() || h.action == "assign"));
    assert!(r.verify_audit().await.unwrap().ok());
}
on_both!(every_transition_allowed_and_refused);

async fn concurrent_decisions_one_wins(url: String) {
    let r = Review::open(&url).await.unwrap();
    let out = r
        .sync(
            &input(
                vec![cand("u1", vec![flag("q1", 10, 0.6)])],
                vec![claim("k1", "u1", 11, &["q1"])],
            ),
            NOW,
        )
        .await
        .unwrap();
    let c = out.cases[0].case_id.clone();
    for round in 0..3 {
        // Two reviewers, two connections pools, the same case version, at once.
        let (a, b) = (
            Review::open(&url).await.unwrap(),
            Review::open(&url).await.unwrap(),
        );
        let version = r.case(&c).await.unwrap().version;
        let mut ra = decide(&c, Verdict::Confirmed, &[]);
        let mut rb = decide(&c, Verdict::Dismissed, &[]);
        ra.expect_version = Some(version);
        rb.expect_version = Some(version);
        rb.reviewer = "hr.li".into();
        let (x, y) = tokio::join!(
            tokio::spawn(async move { a.decide(&ra, NOW + 100 + round).await }),
            tokio::spawn(async move { b.decide(&rb, NOW + 200 + round).await })
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x.is_ok() != y.is_ok(), "exactly one wins: {x:?} / {y:?}");
        let loser = x.err().or(y.err()).unwrap();
        assert!(matches!(loser, Error::Conflict { .. }), "{loser}");
        assert!(r.case(&c).await.unwrap().status.is_decided());
        r.appeal(&c, "again", "u1", None, NOW + 300 + round)
            .await
            .unwrap();
    }
    let detail = r.show(&c).await.unwrap();
    let decides = detail
        .history
        .iter()
        .filter(|h| h.action == "decide")
        .count();
    assert_eq!(decides, 3);
    assert!(r.verify_audit().await.unwrap().ok());
}
on_both!(concurrent_decisions_one_wins);

async fn raw(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(sql).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn audit_verify_finds_edits_and_deletions(url: String) {
    let r = Review::open(&url).await.unwrap();
    let out = r
        .sync(
            &input(vec![cand("u1", vec![flag("q1", 10, 0.6)])], vec![]),
            NOW,
        )
        .await
        .unwrap();
    let c = out.cases[0].case_id.clone();
    for i in 0..4 {
        r.comment(&c, &format!("note {i}"), "hr.wang", NOW + i)
            .await
            .unwrap();
    }
    let ok = r.verify_audit().await.unwrap();
    assert_eq!((ok.records, ok.ok()), (5, true));

    raw(
        &url,
        "UPDATE audit SET reason = 'nothing to see' WHERE seq = 3",
    )
    .await;
    let bad = r.verify_audit().await.unwrap();
    assert!(
        bad.problem.as_deref().unwrap().contains("record 3"),
        "{bad:?}"
    );
    raw(&url, "UPDATE audit SET reason = 'note 1' WHERE seq = 3").await;
    assert!(r.verify_audit().await.unwrap().ok(), "restored");

    raw(&url, "DELETE FROM audit WHERE seq = 2").await;
    let bad = r.verify_audit().await.unwrap();
    assert!(
        bad.problem
            .as_deref()
            .unwrap()
            .contains("record 2 is missing"),
        "{bad:?}"
    );

    let r2 = Review::open(&url).await.unwrap();
    raw(&url, "DELETE FROM audit").await;
    let bad = r2.verify_audit().await.unwrap();
    assert!(
        bad.problem.as_deref().unwrap().contains("deleted"),
        "{bad:?}"
    );
}
on_both!(audit_verify_finds_edits_and_deletions);

async fn migrations_upgrade_an_older_database(url: String) {
    let old = Review::open_at(&url, 1).await.unwrap();
    assert_eq!(old.schema_versions().await.unwrap(), vec![1]);
    // A case as the first schema held it, written the way that version's code did.
    raw(
        &url,
        "INSERT INTO cases (case_id, user_id, org_unit, status, assignee, risk, first_flag_at, \
         last_flag_at, previous_case_id, opened_at, updated_at, decided_at, decided_by, \
         decision_reason, version) VALUES ('c-old', 'u1', 'HQ/East/Sales', 'open', NULL, 0.6, \
         1000, 2000, NULL, 3000, 3000, NULL, NULL, NULL, 1)",
    )
    .await;
    for (id, rule) in [
        ("q1", "quiz_speed.too_fast"),
        ("q2", "quiz_speed.too_fast"),
        ("w1", "watch_time.speed"),
    ] {
        raw(
            &url,
            &format!(
                "INSERT INTO case_flags (flag_id, case_id, user_id, detector, rule, org_unit, \
                 course_id, window_start, window_end, weighted_severity, day) VALUES ('{id}', \
                 'c-old', 'u1', 'x', '{rule}', 'HQ/East/Sales', 'c1', 1000, 2000, 0.6, 10)"
            ),
        )
        .await;
    }
    let new = Review::open(&url).await.unwrap();
    assert_eq!(new.schema_versions().await.unwrap(), vec![1, 2, 3, 4, 5]);
    let cases = new.list(&CaseFilter::default()).await.unwrap();
    assert_eq!(cases.len(), 1, "the data survives the upgrade");
    // The rules of old cases are filled in: the rule filter finds them.
    for (rule, found) in [
        ("quiz_speed.too_fast", 1),
        ("watch_time.speed", 1),
        ("watch_time.background_playback", 0),
        ("quiz_speed", 0),
    ] {
        let f = CaseFilter {
            rule: Some(rule.into()),
            ..Default::default()
        };
        assert_eq!(new.list(&f).await.unwrap().len(), found, "{rule}");
    }
    new.decide(&decide(&cases[0].case_id, Verdict::Dismissed, &[]), NOW + 1)
        .await
        .unwrap();
    // Opening again changes nothing.
    assert_eq!(
        Review::open(&url)
            .await
            .unwrap()
            .schema_versions()
            .await
            .unwrap(),
        vec![1, 2, 3, 4, 5]
    );

    raw(
        &url,
        "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1",
    )
    .await;
    let e = Review::open(&url).await.unwrap_err().to_string();
    assert!(
        e.contains("migration 1 (cases) was applied from a different text"),
        "{e}"
    );
    raw(&url, "INSERT INTO schema_migrations (version, description, checksum, applied_at) VALUES (99, 'future', 'x', 0)").await;
    let e = Review::open(&url).await.unwrap_err().to_string();
    assert!(
        e.contains("schema version 99, newer than this creditguard knows (5)"),
        "{e}"
    );
}
on_both!(migrations_upgrade_an_older_database);

async fn rule_feedback_counts_reviewers_verdicts(url: String) {
    let r = Review::open(&url).await.unwrap();
    let out = r
        .sync(
            &input(
                vec![
                    cand("u1", vec![flag("q1", 10, 0.6), flag("w1", 10, 0.6)]),
                    cand("u2", vec![flag("q2", 10, 0.6)]),
                    cand("u3", vec![flag("q3", 10, 0.6), flag("w3", 10, 0.6)]),
                    cand("u4", vec![flag("w4", 10, 0.6)]),
                ],
                vec![
                    claim("k3a", "u3", 11, &["q3"]),
                    claim("k3b", "u3", 11, &["w3"]),
                ],
            ),
            NOW,
        )
        .await
        .unwrap();
    let id = |u: &str| {
        out.cases
            .iter()
            .find(|c| c.user_id == u)
            .unwrap()
            .case_id
            .clone()
    };
    r.decide(&decide(&id("u1"), Verdict::Confirmed, &[]), NOW + 1)
        .await
        .unwrap();
    r.decide(&decide(&id("u2"), Verdict::Dismissed, &[]), NOW + 2)
        .await
        .unwrap();
    // u3: the quiz claim is cancelled, the watch-time claim released.
    r.decide(
        &decide(&id("u3"), Verdict::PartiallyConfirmed, &["k3a"]),
        NOW + 3,
    )
    .await
    .unwrap();
    let fb = r.rule_feedback(NOW + 4).await.unwrap();
    let rows: Vec<(&str, i64, i64, i64, Option<f64>)> = fb
        .iter()
        .map(|f| {
            (
                f.rule.as_str(),
                f.confirmed,
                f.dismissed,
                f.pending,
                f.confirmed_share,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("quiz_speed.too_fast", 2, 1, 0, Some(2.0 / 3.0)),
            ("watch_time.background_playback", 1, 1, 1, Some(0.5)),
        ]
    );
    assert!(fb
        .iter()
        .all(|f| f.org_unit.as_deref() == Some("HQ/East/Sales")));
}
on_both!(rule_feedback_counts_reviewers_verdicts);

async fn the_queue_filters_by_org_subtree_rule_and_status(url: String) {
    let r = Review::open(&url).await.unwrap();
    let mut other = cand("u2", vec![flag("w2", 10, 0.9)]);
    other.org_unit = Some("HQ/West".into());
    r.sync(
        &input(vec![cand("u1", vec![flag("q1", 10, 0.6)]), other], vec![]),
        NOW,
    )
    .await
    .unwrap();
    let users = |v: Vec<creditguard_review::CaseRow>| -> Vec<String> {
        v.into_iter().map(|c| c.user_id).collect()
    };
    let all = r.list(&CaseFilter::default()).await.unwrap();
    assert_eq!(users(all), vec!["u2", "u1"], "highest risk first");
    let east = CaseFilter {
        org_unit: Some("HQ/East".into()),
        ..Default::default()
    };
    assert_eq!(users(r.list(&east).await.unwrap()), vec!["u1"]);
    let ea = CaseFilter {
        org_unit: Some("HQ/Ea".into()),
        ..Default::default()
    };
    assert!(
        r.list(&ea).await.unwrap().is_empty(),
        "a prefix is not a subtree"
    );
    let rule = CaseFilter {
        rule: Some("watch_time.background_playback".into()),
        ..Default::default()
    };
    assert_eq!(users(r.list(&rule).await.unwrap()), vec!["u2"]);
    for odd in [
        "watch_time.background_playback,quiz_speed.too_fast",
        "watch_time",
        ",",
    ] {
        let f = CaseFilter {
            rule: Some(odd.into()),
            ..Default::default()
        };
        assert!(r.list(&f).await.unwrap().is_empty(), "`{odd}` is no rule");
    }
    let decided = CaseFilter {
        statuses: vec![CaseStatus::Confirmed],
        ..Default::default()
    };
    assert!(r.list(&decided).await.unwrap().is_empty());
}
on_both!(the_queue_filters_by_org_subtree_rule_and_status);

/// A subtree is the unit and what lies below a `/`: never a sibling that shares a prefix, sorts
/// inside the byte range, differs in case or holds a LIKE wildcard, on either backend.
async fn a_scope_is_exactly_a_subtree(url: String) {
    let r = Review::open(&url).await.unwrap();
    let units = [
        "HQ/B1",
        "HQ/B1/T0",
        "HQ/B1/T0/深圳",
        "HQ/B10",
        "HQ/B1-x",
        "HQ/B1 x",
        "HQ/B1.x",
        "hq/b1",
        "HQ/B",
        "HQ/B1%",
        "HQ/B_1",
        "HQ",
    ];
    let candidates = units
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut c = cand(&format!("u{i}"), vec![flag(&format!("q{i}"), 10, 0.6)]);
            c.org_unit = Some(u.to_string());
            c
        })
        .collect();
    r.sync(&input(candidates, vec![]), NOW).await.unwrap();
    let units_in = |scope: &[&str], org_unit: Option<&str>| {
        let q = creditguard_review::QueueQuery {
            scope: creditguard_review::Scope(scope.iter().map(|s| s.to_string()).collect()),
            org_unit: org_unit.map(str::to_string),
            limit: 100,
            ..Default::default()
        };
        let r = r.clone();
        async move {
            let page = r.queue(&q).await.unwrap();
            assert_eq!(page.total, page.cases.len() as i64, "counts match the rows");
            let mut got: Vec<String> = page
                .cases
                .into_iter()
                .map(|c| c.org_unit.unwrap())
                .collect();
            got.sort();
            got
        }
    };
    assert_eq!(
        units_in(&["HQ/B1"], None).await,
        vec!["HQ/B1", "HQ/B1/T0", "HQ/B1/T0/深圳"]
    );
    assert_eq!(units_in(&["HQ/B1%"], None).await, vec!["HQ/B1%"]);
    assert_eq!(units_in(&["HQ/B_1"], None).await, vec!["HQ/B_1"]);
    assert_eq!(
        units_in(&["HQ/B1/T0", "HQ/B10"], None).await,
        vec!["HQ/B1/T0", "HQ/B1/T0/深圳", "HQ/B10"]
    );
    assert_eq!(
        units_in(&["HQ"], Some("HQ/B1/T0")).await,
        vec!["HQ/B1/T0", "HQ/B1/T0/深圳"],
        "a filter inside the scope"
    );
    assert!(
        units_in(&["HQ/B10"], Some("HQ/B1")).await.is_empty(),
        "a filter outside the scope shows nothing"
    );
    assert_eq!(units_in(&["*"], None).await.len(), units.len());
    let like = CaseFilter {
        org_unit: Some("HQ/B_".into()),
        ..Default::default()
    };
    assert!(
        r.list(&like).await.unwrap().is_empty(),
        "`_` is no wildcard"
    );
}
on_both!(a_scope_is_exactly_a_subtree);
