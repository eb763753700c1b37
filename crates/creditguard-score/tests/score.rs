//! The scorer end to end on hand-built lakes: events and flags in, result tables out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use creditguard_contract::time::{parse_day, parse_rfc3339_us};
use creditguard_contract::{parse_event, stable_id, EventBatchBuilder, Flag, ResultRecord};
use creditguard_lake::Lake;
use creditguard_score::tables::{self, read_cases, read_claim_issues, read_credits, read_progress};
use creditguard_score::{report, score, Catalog, ScoreConfig, ScoreReport};

const CATALOG: &str = "course_id,title,category,credits,duration_s,min_watch_ratio
c1,Safety basics,mandatory,2,1800,0.8
c2,\"Negotiation, advanced\",elective,3,3600,0.7
c3,Forklift practice,practice,1,600,0.5
";

fn day(s: &str) -> i64 {
    parse_day(s).unwrap()
}

fn ts(s: &str) -> i64 {
    parse_rfc3339_us(s).unwrap()
}

/// A lake in a temporary directory, filled by the test.
struct Fixture {
    _dir: tempfile::TempDir,
    lake: Lake,
    catalog: Catalog,
    events: Vec<String>,
    flags: BTreeMap<i64, Vec<Flag>>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().join("lake").to_str().unwrap()).unwrap();
        Fixture {
            _dir: dir,
            lake,
            catalog: Catalog::parse(CATALOG).unwrap(),
            events: Vec::new(),
            flags: BTreeMap::new(),
        }
    }

    fn complete(
        &mut self,
        id: &str,
        user: &str,
        course: &str,
        at: &str,
        credits: f64,
        category: &str,
    ) -> &mut Self {
        self.events.push(format!(
            r#"{{"event_id":"{id}","type":"course_complete","ts":"{at}","user_id":"{user}","org_unit":"org-{}","course_id":"{course}","credits":{credits},"category":"{category}"}}"#,
            &user[..2]
        ));
        self
    }

    /// Heartbeats every 30 s from `from` for `minutes`, on one session and device.
    fn watch(
        &mut self,
        user: &str,
        course: &str,
        session: &str,
        device: &str,
        from: &str,
        minutes: i64,
    ) -> &mut Self {
        let start = ts(from);
        for k in 0..minutes * 2 {
            let t = creditguard_contract::time::format_rfc3339_us(start + k * 30_000_000);
            self.events.push(format!(
                r#"{{"event_id":"{session}-{course}-{k}","type":"heartbeat","ts":"{t}","user_id":"{user}","org_unit":"org-{}","session_id":"{session}","device_id":"{device}","platform":"web","ip":"10.0.0.1","course_id":"{course}","lesson_id":"l1","position_s":{},"playing":true,"visible":true}}"#,
                &user[..2],
                k * 30
            ));
        }
        self
    }

    fn flag(
        &mut self,
        detector: &str,
        rule: &str,
        user: &str,
        course: Option<&str>,
        from: &str,
        to: &str,
        severity: f64,
    ) -> String {
        let (ws, we) = (ts(from), ts(to));
        let id = stable_id(&[rule, user, from, course.unwrap_or("")]);
        let f = Flag {
            flag_id: id.clone(),
            run_id: "detect-run".into(),
            detector: detector.into(),
            rule: rule.into(),
            user_id: user.into(),
            org_unit: Some(format!("org-{}", &user[..2])),
            course_id: course.map(str::to_string),
            window_start: ws,
            window_end: we,
            severity,
            evidence: format!(r#"{{"severity":{severity}}}"#),
            explanation: format!("{rule} for {user} with severity {severity}."),
            rules_version: None,
            rules_name: None,
        };
        self.flags
            .entry(creditguard_contract::time::day_of_us(ws))
            .or_default()
            .push(f);
        id
    }

    /// Writes the events (one file per day) and the flags (one partition per day) to the lake.
    fn commit(&self) {
        let mut by_day: BTreeMap<i64, EventBatchBuilder> = BTreeMap::new();
        for (i, line) in self.events.iter().enumerate() {
            let ev =
                parse_event(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {}", e.reason));
            let d = creditguard_contract::time::day_of_us(ev.ts_us);
            by_day
                .entry(d)
                .or_default()
                .push(&ev, "fixture.ndjson", i as i64 + 1);
        }
        for (d, mut b) in by_day {
            let batch = b.finish();
            self.lake
                .write_parquet(
                    "events",
                    d,
                    "part-0.parquet",
                    creditguard_contract::events_schema(),
                    &[batch],
                )
                .unwrap();
        }
        for (d, flags) in &self.flags {
            tables::write_flags(&self.lake, *d, flags).unwrap();
        }
    }

    fn score(&self, cfg: &ScoreConfig, from: &str, to: &str) -> ScoreReport {
        score(&self.lake, &self.catalog, cfg, day(from), day(to), "run-1").unwrap()
    }
}

fn status_of(r: &ScoreReport, course: &str, user: &str) -> (String, Vec<String>, f64) {
    let c = r
        .credits
        .iter()
        .find(|c| c.course_id == course && c.user_id == user)
        .unwrap();
    (c.status.clone(), c.flag_ids.clone(), c.credits_granted)
}

#[test]
fn no_flags_grants_every_claim() {
    let mut f = Fixture::new();
    f.complete("e1", "u1", "c1", "2026-03-02T10:00:00Z", 2.0, "mandatory")
        .complete("e2", "u1", "c2", "2026-03-02T11:00:00Z", 3.0, "elective")
        .complete("e3", "u2", "c3", "2026-03-03T09:00:00Z", 1.0, "practice")
        // Delivered twice: one claim.
        .complete("e3", "u2", "c3", "2026-03-03T09:00:00Z", 1.0, "practice");
    f.commit();
    let r = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-03");
    assert_eq!(r.credits.len(), 3);
    assert!(r
        .credits
        .iter()
        .all(|c| c.status == "granted" && c.flag_ids.is_empty()));
    assert_eq!(
        r.credits.iter().map(|c| c.credits_granted).sum::<f64>(),
        6.0
    );
    assert!(r.cases.is_empty());
    assert!(r.issues.is_empty());
    // Read back from the lake: the same records, partitioned by completion day.
    assert_eq!(
        read_credits(&f.lake, day("2026-03-02"), day("2026-03-03")).unwrap(),
        r.credits
    );
    assert_eq!(
        read_credits(&f.lake, day("2026-03-03"), day("2026-03-03"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(r.credits[0].credit_id, stable_id(&["u1", "c1", "e1"]));
    let p = read_progress(&f.lake, day("2026-03-03")).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].user_id, "u1");
    assert_eq!((p[0].credits_granted, p[0].mandatory_granted), (5.0, 2.0));
    // 5 credits by 3 March of a 150-credit year (pace ≈ 25.9): behind even with nothing withheld.
    assert_eq!(p[0].status, "behind");
}

#[test]
fn a_flag_on_course_a_never_withholds_course_b() {
    let mut f = Fixture::new();
    f.watch("u1", "c1", "s1", "d1", "2026-03-02T08:00:00Z", 30)
        .watch("u1", "c2", "s2", "d1", "2026-03-02T14:00:00Z", 30)
        .complete("e1", "u1", "c1", "2026-03-02T08:31:00Z", 2.0, "mandatory")
        .complete("e2", "u1", "c2", "2026-03-02T14:31:00Z", 3.0, "elective");
    let wt = f.flag(
        "watch_time",
        "watch_time.background_playback",
        "u1",
        Some("c1"),
        "2026-03-02T08:00:00Z",
        "2026-03-02T08:30:00Z",
        0.9,
    );
    // A multi-login flag names no course: it touches the course whose activity it overlaps (c1,
    // 08:00–08:30, within the 5-minute slack), not c2 (14:00–14:30).
    let ml = f.flag(
        "multi_login",
        "multi_login.concurrent_sessions",
        "u1",
        None,
        "2026-03-02T08:20:00Z",
        "2026-03-02T08:50:00Z",
        0.8,
    );
    f.commit();
    let r = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-02");
    let (s1, ids1, g1) = status_of(&r, "c1", "u1");
    assert_eq!((s1.as_str(), g1), ("withheld", 0.0));
    let mut want = vec![wt.clone(), ml.clone()];
    want.sort();
    assert_eq!(ids1, want);
    assert_eq!(status_of(&r, "c2", "u1"), ("granted".into(), vec![], 3.0));
    assert_eq!(r.cases.len(), 1);
    assert_eq!(r.cases[0].credits_withheld, 2.0);
    assert_eq!(
        r.cases[0].detectors,
        vec!["multi_login".to_string(), "watch_time".to_string()]
    );
    assert_eq!(r.cases[0].status, "open");
    // The same multi-login flag at noon touches neither course.
    let mut g = Fixture::new();
    g.events = f.events.clone();
    g.flag(
        "multi_login",
        "multi_login.concurrent_sessions",
        "u1",
        None,
        "2026-03-02T11:00:00Z",
        "2026-03-02T12:00:00Z",
        0.8,
    );
    g.commit();
    let r = g.score(&ScoreConfig::default(), "2026-03-02", "2026-03-02");
    assert!(
        r.credits.iter().all(|c| c.status == "granted"),
        "{:?}",
        r.credits
    );
    assert_eq!(r.cases[0].status, "open", "the flag still opens a case");
}

#[test]
fn a_burst_withholds_the_claims_of_its_day_only() {
    let mut f = Fixture::new();
    f.complete("e1", "u1", "c1", "2026-03-05T09:00:00Z", 2.0, "mandatory")
        .complete("e2", "u1", "c2", "2026-03-05T23:59:00Z", 3.0, "elective")
        .complete("e3", "u1", "c3", "2026-03-06T00:01:00Z", 1.0, "practice")
        .complete("e4", "u2", "c1", "2026-03-05T10:00:00Z", 2.0, "mandatory");
    let b = f.flag(
        "credit_burst",
        "credit_burst.poisson_tail",
        "u1",
        None,
        "2026-03-05T00:00:00Z",
        "2026-03-06T00:00:00Z",
        0.95,
    );
    f.commit();
    let r = f.score(&ScoreConfig::default(), "2026-03-05", "2026-03-06");
    assert_eq!(status_of(&r, "c1", "u1").0, "withheld");
    assert_eq!(status_of(&r, "c2", "u1"), ("withheld".into(), vec![b], 0.0));
    assert_eq!(
        status_of(&r, "c3", "u1").0,
        "granted",
        "the next day is not the burst's"
    );
    assert_eq!(status_of(&r, "c1", "u2").0, "granted", "another learner");
    assert_eq!(r.cases.len(), 1);
    assert_eq!(r.cases[0].credits_withheld, 5.0);
}

#[test]
fn claims_that_disagree_with_the_catalog_are_reported() {
    let mut f = Fixture::new();
    f.complete("e1", "u1", "c99", "2026-03-02T10:00:00Z", 4.0, "elective")
        .complete("e2", "u1", "c1", "2026-03-02T11:00:00Z", 5.0, "mandatory")
        .complete("e3", "u1", "c3", "2026-03-02T12:00:00Z", 1.0, "elective")
        .complete("e4", "u1", "c3", "2026-03-02T13:00:00Z", 1.0, "practice");
    f.commit();
    let r = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-02");
    let issues: Vec<(String, String)> = r
        .issues
        .iter()
        .map(|i| (i.course_id.clone(), i.issue.clone()))
        .collect();
    assert_eq!(
        issues,
        vec![
            ("c99".into(), "unknown_course".into()),
            ("c1".into(), "credits_mismatch".into()),
            ("c3".into(), "category_mismatch".into()),
            ("c3".into(), "repeat_completion".into()),
        ]
    );
    // Unknown course: the claim cannot be checked, so it is granted as claimed and reported.
    assert_eq!(status_of(&r, "c99", "u1"), ("granted".into(), vec![], 4.0));
    let c1 = r.credits.iter().find(|c| c.course_id == "c1").unwrap();
    assert_eq!(
        (c1.credits_claimed, c1.credits_granted, c1.category.as_str()),
        (5.0, 2.0, "mandatory")
    );
    let c3: Vec<f64> = r
        .credits
        .iter()
        .filter(|c| c.course_id == "c3")
        .map(|c| c.credits_granted)
        .collect();
    assert_eq!(c3, vec![1.0, 0.0], "a repeat completion adds nothing");
    assert!(r.to_string().contains("claim issues: category_mismatch 1, credits_mismatch 1, repeat_completion 1, unknown_course 1"), "{r}");
    assert_eq!(
        read_claim_issues(&f.lake, day("2026-03-02"), day("2026-03-02")).unwrap(),
        r.issues
    );
}

#[test]
fn cases_at_exactly_the_threshold_open() {
    let mut f = Fixture::new();
    f.flag(
        "quiz_speed",
        "quiz_speed.too_fast",
        "u1",
        Some("c1"),
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:01:00Z",
        0.5,
    );
    f.flag(
        "quiz_speed",
        "quiz_speed.too_fast",
        "u2",
        Some("c1"),
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:01:00Z",
        0.4999,
    );
    // Noisy-OR of 0.25 and 1/3 is 0.5 up to rounding: still at the threshold.
    f.flag(
        "quiz_speed",
        "quiz_speed.too_fast",
        "u3",
        Some("c1"),
        "2026-03-02T10:00:00Z",
        "2026-03-02T10:01:00Z",
        0.25,
    );
    f.flag(
        "watch_time",
        "watch_time.speed",
        "u3",
        Some("c2"),
        "2026-03-02T11:00:00Z",
        "2026-03-02T11:01:00Z",
        1.0 / 3.0,
    );
    f.commit();
    let r = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-02");
    let st: Vec<(&str, &str)> = r
        .cases
        .iter()
        .map(|c| (c.user_id.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(
        st,
        vec![("u1", "open"), ("u2", "below_threshold"), ("u3", "open")]
    );
    assert_eq!(r.cases[0].risk, 0.5);
    assert_eq!(
        r.cases[0].case_id,
        stable_id(&["u1", "2026-03-02/2026-03-02"])
    );
    assert_eq!(
        read_cases(&f.lake, day("2026-03-02"), day("2026-03-02")).unwrap(),
        r.cases
    );
}

fn mixed() -> Fixture {
    let mut f = Fixture::new();
    f.watch("u1", "c1", "s1", "d1", "2026-03-02T08:00:00Z", 20)
        .watch("u1", "c2", "s1", "d1", "2026-03-02T09:00:00Z", 20)
        .complete("e1", "u1", "c1", "2026-03-02T08:21:00Z", 2.0, "mandatory")
        .complete("e2", "u1", "c2", "2026-03-02T09:21:00Z", 3.0, "elective")
        .complete("e3", "u2", "c1", "2026-03-03T08:00:00Z", 2.0, "mandatory")
        .complete("e4", "u3", "c3", "2026-03-03T08:00:00Z", 1.0, "practice");
    f.flag(
        "watch_time",
        "watch_time.low_coverage",
        "u1",
        Some("c1"),
        "2026-03-02T08:00:00Z",
        "2026-03-02T08:21:00Z",
        0.6,
    );
    f.flag(
        "quiz_speed",
        "quiz_speed.too_fast",
        "u1",
        Some("c2"),
        "2026-03-02T09:15:00Z",
        "2026-03-02T09:16:00Z",
        0.9,
    );
    f.flag(
        "watch_time",
        "watch_time.speed",
        "u2",
        Some("c1"),
        "2026-03-03T07:00:00Z",
        "2026-03-03T07:30:00Z",
        0.45,
    );
    f.flag(
        "shared_device",
        "shared_device.many_accounts",
        "u3",
        Some("c3"),
        "2026-03-03T07:55:00Z",
        "2026-03-03T08:00:00Z",
        0.75,
    );
    f.commit();
    f
}

#[test]
fn a_rerun_gives_identical_ids_and_rows() {
    let f = mixed();
    let cfg = ScoreConfig::default();
    let a = f.score(&cfg, "2026-03-02", "2026-03-03");
    let files = |t: &str| -> Vec<Vec<u8>> {
        f.lake
            .files(t, day("2026-03-02"), day("2026-03-03"))
            .unwrap()
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    };
    let before: Vec<_> = [
        tables::CREDITS,
        tables::CASES,
        tables::CLAIM_ISSUES,
        tables::PROGRESS,
    ]
    .iter()
    .map(|t| files(t))
    .collect();
    let b = f.score(&cfg, "2026-03-02", "2026-03-03");
    assert_eq!(a, b);
    let after: Vec<_> = [
        tables::CREDITS,
        tables::CASES,
        tables::CLAIM_ISSUES,
        tables::PROGRESS,
    ]
    .iter()
    .map(|t| files(t))
    .collect();
    assert_eq!(before, after, "byte-identical Parquet files");
    // Scoring day by day gives the same credit records as scoring the range.
    let d1 = f.score(&cfg, "2026-03-02", "2026-03-02");
    let d2 = f.score(&cfg, "2026-03-03", "2026-03-03");
    let mut by_day = d1.credits.clone();
    by_day.extend(d2.credits.clone());
    assert_eq!(by_day, a.credits);
}

/// A credit record without the thresholds' version it names.
fn unversioned(c: &creditguard_contract::Credit) -> creditguard_contract::Credit {
    creditguard_contract::Credit {
        rules_version: None,
        ..c.clone()
    }
}

#[test]
fn a_changed_threshold_changes_only_what_it_should() {
    let f = mixed();
    let base = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-03");
    // Review threshold down: the same credits, the same cases with the same risks; only u2's case
    // (risk 0.45) changes status.
    let lower = ScoreConfig {
        review_threshold: 0.4,
        ..ScoreConfig::default()
    };
    let r = f.score(&lower, "2026-03-02", "2026-03-03");
    // The same decisions, under another version of the thresholds.
    let plain = |v: &[creditguard_contract::Credit]| v.iter().map(unversioned).collect::<Vec<_>>();
    assert_eq!(plain(&r.credits), plain(&base.credits));
    assert_eq!(
        base.credits[0].rules_version,
        Some(ScoreConfig::default().rules_version())
    );
    assert!(r
        .credits
        .iter()
        .all(|c| c.rules_version == Some(lower.rules_version())
            && c.policy_version.as_deref() == Some("global")));
    assert_ne!(
        lower.rules_version(),
        ScoreConfig::default().rules_version()
    );
    assert_eq!(r.cases.len(), base.cases.len());
    for (a, b) in base.cases.iter().zip(&r.cases) {
        assert_eq!(
            (&a.case_id, a.risk, &a.flag_ids, a.credits_withheld),
            (&b.case_id, b.risk, &b.flag_ids, b.credits_withheld)
        );
        let changed = a.status != b.status;
        assert_eq!(
            changed,
            a.user_id == "u2",
            "{} {} → {}",
            a.user_id,
            a.status,
            b.status
        );
    }
    // Withholding threshold up to 0.7: u1's c1 claim (its only flag is 0.6) is granted now; the
    // cases keep their risks and statuses; u1's withheld credits drop by c1's 2 credits.
    let stricter = ScoreConfig {
        withhold_severity: 0.7,
        ..ScoreConfig::default()
    };
    let r = f.score(&stricter, "2026-03-02", "2026-03-03");
    for (a, b) in base.credits.iter().zip(&r.credits) {
        assert_eq!(a.credit_id, b.credit_id);
        let changed = unversioned(a) != unversioned(b);
        assert_eq!(
            changed,
            a.course_id == "c1" && a.user_id == "u1",
            "{a:?} → {b:?}"
        );
    }
    assert_eq!(status_of(&r, "c1", "u1").0, "granted");
    for (a, b) in base.cases.iter().zip(&r.cases) {
        assert_eq!(
            (&a.case_id, a.risk, &a.status),
            (&b.case_id, b.risk, &b.status)
        );
        let dw = a.credits_withheld - b.credits_withheld;
        assert_eq!(dw, if a.user_id == "u1" { 2.0 } else { 0.0 });
    }
    // A config that would withhold credits in cases nobody opens is refused.
    let bad = ScoreConfig {
        review_threshold: 0.8,
        ..ScoreConfig::default()
    };
    let err = score(
        &f.lake,
        &f.catalog,
        &bad,
        day("2026-03-02"),
        day("2026-03-02"),
        "r",
    )
    .unwrap_err();
    assert!(err.to_string().contains("withhold_severity"), "{err}");
}

#[test]
fn an_earlier_flag_in_the_lookback_withholds_and_joins_the_case() {
    let mut f = Fixture::new();
    f.complete("e1", "u1", "c1", "2026-03-10T10:00:00Z", 2.0, "mandatory");
    let old = f.flag(
        "watch_time",
        "watch_time.background_playback",
        "u1",
        Some("c1"),
        "2026-03-04T10:00:00Z",
        "2026-03-04T11:00:00Z",
        0.8,
    );
    f.commit();
    let r = f.score(&ScoreConfig::default(), "2026-03-10", "2026-03-10");
    assert_eq!(
        status_of(&r, "c1", "u1"),
        ("withheld".into(), vec![old.clone()], 0.0)
    );
    assert_eq!(r.cases[0].flag_ids, vec![old]);
    assert!(
        r.flags.is_empty(),
        "the stream carries the period's flags only"
    );
    let none = ScoreConfig {
        lookback_days: 0,
        ..ScoreConfig::default()
    };
    assert_eq!(
        f.score(&none, "2026-03-10", "2026-03-10").credits[0].status,
        "granted"
    );
}

#[test]
fn the_stream_holds_every_record_once_with_its_kind() {
    let f = mixed();
    let r = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-03");
    let mut lines = Vec::new();
    for d in [day("2026-03-02"), day("2026-03-03")] {
        let dir = f.lake.partition_dir(tables::STREAM, d);
        let text = std::fs::read_to_string(dir.join("part-0.ndjson")).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    assert_eq!(
        lines.len(),
        r.flags.len() + r.credits.len() + r.cases.len() + r.progress.len()
    );
    assert_eq!(
        (
            r.flags.len(),
            r.credits.len(),
            r.cases.len(),
            r.progress.len()
        ),
        (4, 4, 3, 3)
    );
    // Compared as JSON text: serde_json parses floats to the nearest value only with its
    // `float_roundtrip` feature, and the producer side only ever serializes.
    let expected: Vec<String> = r
        .records()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let mut kinds = BTreeMap::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        *kinds
            .entry(v["kind"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        assert!(serde_json::from_str::<ResultRecord>(l).is_ok(), "{l}");
        assert!(expected.contains(l), "{l}");
    }
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("case".into(), 3),
            ("credit".into(), 4),
            ("flag".into(), 4),
            ("progress".into(), 3)
        ])
    );
    // A progress record round-trips with its time as RFC 3339.
    let p = lines
        .iter()
        .find(|l| l.contains(r#""kind":"progress""#))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(p).unwrap();
    assert!(v["as_of"].as_str().unwrap().ends_with('Z'), "{p}");
    let mut buf = Vec::new();
    r.write_ndjson(&mut buf).unwrap();
    assert_eq!(String::from_utf8(buf).unwrap().lines().count(), lines.len());
}

fn python_duckdb() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn duckdb_reads_every_result_table() {
    if !python_duckdb() {
        eprintln!("SKIPPED duckdb_reads_every_result_table: `python3 -c \"import duckdb\"` fails (pip install duckdb)");
        return;
    }
    let f = mixed();
    let r = f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-03");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/duckdb_results.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(f.lake.root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = r.totals();
    assert_eq!(v["flags"]["rows"], 4);
    assert_eq!(v["credits"]["rows"], r.credits.len());
    assert_eq!(v["credits"]["withheld"], t.withheld);
    assert_eq!(v["cases"]["rows"], r.cases.len());
    assert_eq!(v["cases"]["open"], t.cases_open);
    assert_eq!(v["claim_issues"]["rows"], r.issues.len());
    assert_eq!(v["progress"]["rows"], r.progress.len());
    // The days come from the hive partition column, as dashboards read them.
    assert_eq!(
        v["credits"]["days"],
        serde_json::json!(["2026-03-02", "2026-03-03"])
    );
    // Types as results-v1 says, as DuckDB sees them.
    assert_eq!(v["credits"]["types"]["flag_ids"], "VARCHAR[]");
    assert_eq!(
        v["credits"]["types"]["completed_at"],
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(v["cases"]["types"]["detectors"], "VARCHAR[]");
    assert_eq!(v["cases"]["types"]["risk"], "DOUBLE");
    assert_eq!(
        v["flags"]["types"]["window_start"],
        "TIMESTAMP WITH TIME ZONE"
    );
}

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .map(str::to_string)
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
}

#[test]
fn the_html_report_renders_in_a_headless_browser() {
    let f = mixed();
    f.score(&ScoreConfig::default(), "2026-03-02", "2026-03-03");
    let data = report::load(&f.lake, day("2026-03-02"), day("2026-03-03"), 20).unwrap();
    let html = report::render_html(&data);
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "no network resources"
    );
    assert!(!html.contains("<script"), "no scripts");
    assert_eq!(
        html.matches("<svg class=\"timeline\"").count(),
        3,
        "one timeline per case"
    );
    assert!(html.contains("device d1"), "sessions by device");
    assert!(html.contains("quiz_speed.too_fast"));
    let text = report::render_text(&data, 10);
    assert!(
        text.contains("cases          2 open, 1 below threshold"),
        "{text}"
    );
    assert!(
        text.contains("quiz_speed.too_fast for u1 with severity 0.9."),
        "{text}"
    );
    let Some(browser) = chromium() else {
        eprintln!("SKIPPED the_html_report_renders_in_a_headless_browser (screenshot part): no chromium (apt-get install -y chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let png = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let out = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,1600")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // For a person to look at: `CREDITGUARD_KEEP_REPORT=/tmp/r cargo test …` keeps the page and
    // the screenshot as /tmp/r.html and /tmp/r.png.
    if let Ok(keep) = std::env::var("CREDITGUARD_KEEP_REPORT") {
        std::fs::copy(&page, format!("{keep}.html")).unwrap();
        std::fs::copy(&png, format!("{keep}.png")).unwrap();
    }
    let colours = distinct_colours(&std::fs::read(&png).unwrap());
    assert!(
        colours > 50,
        "screenshot looks blank: {colours} distinct colours"
    );
}

/// Distinct RGB colours of a PNG screenshot (8-bit RGB or RGBA, non-interlaced, as Chromium
/// writes them).
fn distinct_colours(png: &[u8]) -> usize {
    png_pixels(png)
        .into_iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
}

fn png_pixels(png: &[u8]) -> Vec<[u8; 3]> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut i = 8;
    let (mut w, mut h, mut channels) = (0usize, 0usize, 0usize);
    let mut idat = Vec::new();
    while i + 8 <= png.len() {
        let len = u32::from_be_bytes(png[i..i + 4].try_into().unwrap()) as usize;
        let kind = &png[i + 4..i + 8];
        let data = &png[i + 8..i + 8 + len];
        match kind {
            b"IHDR" => {
                w = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                h = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "bit depth");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        i += 12 + len;
    }
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&idat[..]), &mut raw).unwrap();
    let stride = w * channels;
    let mut prev = vec![0u8; stride];
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let filter = line[0];
        let mut cur = line[1..].to_vec();
        for x in 0..stride {
            let a = if x >= channels { cur[x - channels] } else { 0 };
            let b = prev[x];
            let c = if x >= channels { prev[x - channels] } else { 0 };
            cur[x] = cur[x].wrapping_add(match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("filter {f}"),
            });
        }
        for px in cur.chunks(channels) {
            out.push([px[0], px[1], px[2]]);
        }
        prev = cur;
    }
    out
}

/// A heartbeat of `user` on `device` from `ip` at `at`.
fn beat(fx: &mut Fixture, id: &str, user: &str, device: &str, ip: &str, at: &str) {
    fx.events.push(format!(
        r#"{{"event_id":"{id}","type":"heartbeat","ts":"{at}","user_id":"{user}","session_id":"s-{id}","device_id":"{device}","platform":"web","ip":"{ip}","course_id":"c1","lesson_id":"l1","position_s":1,"playing":true,"visible":true}}"#
    ));
}

#[test]
fn shared_devices_and_small_networks_relate_learners() {
    let mut fx = Fixture::new();
    beat(
        &mut fx,
        "e1",
        "u1",
        "d-home",
        "10.0.0.1",
        "2026-03-02T09:00:00Z",
    );
    beat(
        &mut fx,
        "e2",
        "u2",
        "d-home",
        "10.9.9.9",
        "2026-03-03T20:00:00Z",
    );
    beat(
        &mut fx,
        "e3",
        "u3",
        "d-u3",
        "10.0.0.1",
        "2026-03-02T10:00:00Z",
    );
    // An office address behind which many learners work relates none of them.
    beat(
        &mut fx,
        "e4",
        "u1",
        "d-home",
        "172.16.0.1",
        "2026-03-02T11:00:00Z",
    );
    for k in 0..5 {
        beat(
            &mut fx,
            &format!("o{k}"),
            &format!("v{k}"),
            &format!("d-v{k}"),
            "172.16.0.1",
            "2026-03-02T12:00:00Z",
        );
    }
    // Outside the days asked for.
    beat(
        &mut fx,
        "e5",
        "u4",
        "d-home",
        "10.0.0.1",
        "2026-03-09T09:00:00Z",
    );
    fx.commit();
    let shared = creditguard_score::events::read_shared_use(
        &fx.lake,
        day("2026-03-01"),
        day("2026-03-05"),
        "u1",
        3,
    )
    .unwrap();
    let users: Vec<&str> = shared.keys().map(String::as_str).collect();
    assert_eq!(users, ["u2", "u3"]);
    assert_eq!(shared["u2"].devices.iter().collect::<Vec<_>>(), ["d-home"]);
    assert!(shared["u2"].ips.is_empty());
    assert_eq!(shared["u3"].ips.iter().collect::<Vec<_>>(), ["10.0.0.1"]);
    assert!(shared["u3"].devices.is_empty());
}

fn with_policy(roster: &str) -> ScoreConfig {
    use creditguard_score::policy::{Policy, Roster};
    let mut cfg = ScoreConfig::default();
    cfg.expectations.policy = Some(
        Policy::parse(
            "[policy]\nname = \"p\"\n[[rule]]\nname = \"all\"\ntarget_credits = 10\n\
             [[rule]]\nname = \"east\"\norg = \"HQ/East\"\ntarget_credits = 4\nminimum = { mandatory = \"50%\" }\n",
        )
        .unwrap(),
    );
    cfg.expectations.roster = Some(Roster::parse(roster, None).unwrap());
    cfg
}

#[test]
fn the_roster_brings_learners_without_activity_and_their_rules() {
    let mut fx = Fixture::new();
    fx.complete("e1", "u1x", "c1", "2026-03-02T09:00:00Z", 2.0, "mandatory")
        .complete("e2", "u1x", "c2", "2026-03-03T09:00:00Z", 3.0, "elective")
        .complete("e3", "u3x", "c2", "2026-03-03T10:00:00Z", 3.0, "elective")
        .complete("e4", "u4x", "c2", "2026-03-03T11:00:00Z", 3.0, "elective");
    fx.commit();
    // Telemetry names `org-u1` etc.: u1x's roster path ends in it; u3x is missing from the
    // roster; u4x's telemetry names another unit than the roster.
    let cfg = with_policy(
        "user_id,org_path,role,level,hired_on,left_on\n\
         u1x,HQ/East/org-u1,,,,\nu2x,HQ/West,,,,\nu4x,HQ/West/Ops,,,,\nu5x,HQ/West,,,2020-01-01,2025-12-31\n",
    );
    let r = fx.score(&cfg, "2026-03-02", "2026-03-03");
    let p = |u: &str| r.progress.iter().find(|p| p.user_id == u).cloned();
    let u1 = p("u1x").unwrap();
    assert_eq!(
        u1.org_unit.as_deref(),
        Some("HQ/East/org-u1"),
        "the roster's org path"
    );
    assert_eq!(u1.policy_rule.as_deref(), Some("p/east"));
    assert!(
        (u1.target_credits - 4.0).abs() < 1e-9 && u1.mandatory_target == 2.0,
        "{u1:?}"
    );
    assert_eq!(u1.status, "complete", "5 credits of 4, 2 of them mandatory");
    let u2 = p("u2x").expect("a roster learner without activity appears");
    assert_eq!((u2.credits_granted, u2.status.as_str()), (0.0, "behind"));
    assert_eq!(u2.policy_rule.as_deref(), Some("p/all"));
    assert!(p("u5x").is_none(), "left before the year began");
    assert_eq!(p("u3x").unwrap().policy_rule.as_deref(), Some("p/all"));
    let issues: Vec<(&str, &str)> = r
        .roster_issues
        .iter()
        .map(|i| (i.user_id.as_str(), i.issue))
        .collect();
    assert_eq!(
        issues,
        [("u3x", "not_in_roster"), ("u4x", "org_unit_differs")]
    );
    assert!(
        r.to_string()
            .contains("roster: not_in_roster 1, org_unit_differs 1"),
        "{r}"
    );
}

#[test]
fn the_credit_year_turns_in_the_policy_time_zone() {
    let mut fx = Fixture::new();
    // 2027-01-01 00:30 in Shanghai.
    fx.complete("e1", "u1x", "c1", "2026-12-31T16:30:00Z", 2.0, "mandatory");
    fx.commit();
    let mut cfg = with_policy("user_id,org_path\nu1x,HQ/East\n");
    // The default time zone of a policy is Asia/Shanghai.
    assert_eq!(
        cfg.expectations.policy.as_ref().unwrap().time_zone,
        "Asia/Shanghai"
    );
    let old_year = fx.score(&cfg, "2026-12-31", "2026-12-31");
    let p = &old_year.progress[0];
    assert_eq!(
        (p.year, p.credits_granted),
        (2026, 0.0),
        "not in 2026: {p:?}"
    );
    let new_year = fx.score(&cfg, "2027-01-01", "2027-01-01");
    let p = &new_year.progress[0];
    assert_eq!(
        (p.year, p.credits_granted),
        (2027, 2.0),
        "counts for 2027: {p:?}"
    );
    // Without a policy the year turns in UTC, as before.
    cfg.expectations.policy = None;
    let utc = fx.score(&cfg, "2026-12-31", "2026-12-31");
    assert_eq!(
        (utc.progress[0].year, utc.progress[0].credits_granted),
        (2026, 2.0)
    );
}

#[test]
fn each_warning_fires_once_per_threshold_crossing_across_daily_runs() {
    use creditguard_score::policy::{Policy, Roster};
    let mut fx = Fixture::new();
    // u2x completes the assigned course five days before it is due; u1x never does.
    fx.complete("e1", "u2x", "c1", "2026-01-15T09:00:00Z", 2.0, "mandatory");
    fx.commit();
    let mut cfg = ScoreConfig::default();
    cfg.expectations.policy = Some(
        Policy::parse("[policy]\nname = \"p\"\n[[rule]]\nname = \"all\"\ntarget_credits = 36.5\n")
            .unwrap(),
    );
    cfg.expectations.roster =
        Some(Roster::parse("user_id,org_path\nu1x,HQ/East\nu2x,HQ/East\n", None).unwrap());
    cfg.expectations.assignments =
        creditguard_score::warnings::parse_assignments("course_id,org,due_on\nc1,HQ,2026-01-20\n")
            .unwrap();
    cfg.expectations.warnings.due_soon_days = vec![14, 1];
    let mut seen: Vec<(String, String, String, String)> = Vec::new();
    let first = day("2026-01-02");
    for d in first..=day("2026-01-22") {
        let s = creditguard_contract::time::format_day(d);
        let r = fx.score(&cfg, &s, &s);
        for w in &r.warnings {
            let what = w
                .days_left
                .map(|n| n.to_string())
                .or(w.category.clone())
                .unwrap_or_default();
            seen.push((s.clone(), w.user_id.clone(), w.reason.clone(), what));
        }
        if d == day("2026-01-10") {
            // Re-scoring a day neither repeats nor loses its reminders.
            let again = fx.score(&cfg, &s, &s);
            assert_eq!(again.warnings, r.warnings);
        }
    }
    let expected: Vec<(&str, &str, &str, &str)> = vec![
        ("2026-01-05", "u1x", "behind_pace", "total"),
        ("2026-01-05", "u2x", "behind_pace", "total"),
        ("2026-01-06", "u1x", "due_soon", "14"),
        ("2026-01-06", "u2x", "due_soon", "14"),
        ("2026-01-19", "u1x", "due_soon", "1"),
        ("2026-01-21", "u1x", "overdue", "-1"),
    ];
    let mut got: Vec<(&str, &str, &str, &str)> = seen
        .iter()
        .map(|(a, b, c, d)| (a.as_str(), b.as_str(), c.as_str(), d.as_str()))
        .collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want);
    let ids =
        creditguard_score::tables::read_warning_ids(&fx.lake, first, day("2026-01-22")).unwrap();
    assert_eq!(
        ids.len(),
        expected.len(),
        "one row per reminder in results/warnings"
    );
}

/// Writes `features/watch_time` of a day as the job does for the columns the scorer reads:
/// engaged seconds per learner, watched around 12:00 in Shanghai (04:00 UTC).
fn engaged(lake: &Lake, d: i64, rows: &[(&str, f64)]) {
    let noon = d * creditguard_contract::time::DAY_US + 4 * 3_600_000_000;
    let rows: Vec<(&str, f64, i64, i64)> = rows.iter().map(|r| (r.0, r.1, noon, noon)).collect();
    engaged_at(lake, d, &rows);
}

/// Writes `features/watch_time` of a UTC day: (learner, engaged seconds, first and last event).
fn engaged_at(lake: &Lake, d: i64, rows: &[(&str, f64, i64, i64)]) {
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    // Event times in UTC µs, as the job keeps them.
    let times = |f: fn(&(&str, f64, i64, i64)) -> i64| {
        std::sync::Arc::new(Int64Array::from_iter_values(rows.iter().map(f))) as ArrayRef
    };
    let batch = RecordBatch::try_from_iter([
        (
            "user_id",
            std::sync::Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)))
                as ArrayRef,
        ),
        (
            "engaged_s",
            std::sync::Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.1))),
        ),
        ("first_t", times(|r| r.2)),
        ("last_t", times(|r| r.3)),
    ])
    .unwrap();
    lake.write_parquet(
        tables::WATCH_TIME_FEATURES,
        d,
        "part-0.parquet",
        batch.schema(),
        &[batch],
    )
    .unwrap();
}

/// A policy of one rule with a monthly minimum of 8 engaged hours (in Asia/Shanghai), and the
/// roster.
fn monthly_hours_config(roster: &str) -> ScoreConfig {
    use creditguard_score::policy::{Policy, Roster};
    let mut cfg = ScoreConfig::default();
    cfg.expectations.policy = Some(
        Policy::parse(
            "[policy]\nname = \"p\"\n[[rule]]\nname = \"all\"\ntarget_credits = 36.5\nmonthly_hours = 8\n",
        )
        .unwrap(),
    );
    cfg.expectations.roster = Some(Roster::parse(roster, None).unwrap());
    cfg
}

/// Monthly engaged hours are counted by the policy's business month (Asia/Shanghai): watching
/// on 2027-02-01 00:30 +08:00 (still 31 January in UTC) counts for February, watching on
/// 2027-01-31 23:00 +08:00 for January.
#[test]
fn monthly_hours_are_counted_by_the_business_month() {
    let mut fx = Fixture::new();
    fx.complete(
        "e1",
        "early",
        "c1",
        "2027-01-05T03:00:00Z",
        2.0,
        "mandatory",
    );
    fx.commit();
    let cfg = monthly_hours_config("user_id,org_path\nearly,HQ/East\nlate,HQ/East\n");
    engaged(&fx.lake, day("2027-01-05"), &[]);
    // 8 h each on UTC 31 January: `early` from 15:00 to 23:00 in Shanghai on the 31st, `late`
    // from 00:30 to 08:30 in Shanghai on 1 February.
    engaged_at(
        &fx.lake,
        day("2027-01-31"),
        &[
            (
                "early",
                8.0 * 3600.0,
                ts("2027-01-31T07:00:00Z"),
                ts("2027-01-31T15:00:00Z"),
            ),
            (
                "late",
                8.0 * 3600.0,
                ts("2027-01-31T16:30:00Z"),
                ts("2027-02-01T00:30:00Z"),
            ),
        ],
    );
    for d in day("2027-02-01")..=day("2027-02-05") {
        engaged(&fx.lake, d, &[]);
    }
    let low = |from: &str| {
        let r = fx.score(&cfg, from, from);
        let mut users: Vec<String> = r
            .warnings
            .iter()
            .filter(|w| w.reason == "monthly_hours_low")
            .map(|w| w.user_id.clone())
            .collect();
        users.sort();
        users
    };
    // 31 January: 8 h expected; `late` watched none of them in January.
    assert_eq!(low("2027-01-31"), ["late"]);
    // 5 February: 8 h × 5/28 expected; `early` has none in February, `late` has 8.
    assert_eq!(low("2027-02-05"), ["early"]);
    // A row across a window's edge counts by the share of its span inside: half of `late`'s
    // 16:30–00:30 UTC lies after 20:30 UTC.
    let hours = tables::engaged_hours(
        &fx.lake,
        ts("2027-01-31T16:00:00Z"),
        ts("2027-02-01T16:00:00Z"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(hours.get("late").copied(), Some(8.0));
    let split = tables::engaged_hours(
        &fx.lake,
        ts("2027-01-31T20:30:00Z"),
        ts("2027-02-05T16:00:00Z"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(split.get("late").copied(), Some(4.0));
    assert_eq!(split.get("early").copied(), None);
}

#[test]
fn monthly_hours_low_fires_once_a_month_across_daily_runs() {
    let mut fx = Fixture::new();
    fx.complete("e1", "u2x", "c1", "2026-03-02T09:00:00Z", 2.0, "mandatory");
    fx.complete("e2", "u2x", "c2", "2026-03-09T09:00:00Z", 3.0, "elective");
    fx.commit();
    let cfg = monthly_hours_config("user_id,org_path\nu1x,HQ/East\nu2x,HQ/East\n");
    // u2x studies half an hour a day (more than 8 h / 31 days); u1x a quarter of an hour on the
    // 1st only.
    for d in day("2026-03-01")..=day("2026-03-10") {
        let first = d == day("2026-03-01");
        engaged(
            &fx.lake,
            d,
            &[("u2x", 1800.0), ("u1x", if first { 900.0 } else { 0.0 })],
        );
    }
    let mut seen = Vec::new();
    for d in day("2026-03-01")..=day("2026-03-10") {
        let s = creditguard_contract::time::format_day(d);
        let r = fx.score(&cfg, &s, &s);
        let low: Vec<_> = r
            .warnings
            .iter()
            .filter(|w| w.reason == "monthly_hours_low")
            .cloned()
            .collect();
        if d == day("2026-03-05") {
            // Re-scoring the day gives the same reminder.
            let again = fx.score(&cfg, &s, &s);
            assert_eq!(
                again
                    .warnings
                    .iter()
                    .filter(|w| w.reason == "monthly_hours_low")
                    .count(),
                low.len()
            );
        }
        seen.extend(low.into_iter().map(|w| (s.clone(), w)));
    }
    // 8 h × 5/31 = 1.29 h expected by the 5th, 0.25 h done: short by an hour for the first time.
    let got: Vec<(&str, &str)> = seen
        .iter()
        .map(|(d, w)| (d.as_str(), w.user_id.as_str()))
        .collect();
    assert_eq!(got, [("2026-03-05", "u1x")]);
    let w = &seen[0].1;
    assert_eq!(w.due_on.as_deref(), Some("2026-03-31"));
    assert!(
        (w.value.unwrap() - (8.0 * 5.0 / 31.0 - 0.25)).abs() < 1e-9,
        "{w:?}"
    );

    // A day with events but no watch-time features (the job did not run): hours unknown, no
    // reminder from undercounted hours.
    fx.complete("e3", "u2x", "c3", "2026-04-06T09:00:00Z", 1.0, "practice");
    fx.commit();
    let r = fx.score(&cfg, "2026-04-06", "2026-04-06");
    assert!(
        r.warnings.iter().all(|w| w.reason != "monthly_hours_low"),
        "{:?}",
        r.warnings
    );
    engaged(&fx.lake, day("2026-04-06"), &[("u2x", 7200.0)]);
    let r = fx.score(&cfg, "2026-04-06", "2026-04-06");
    let low: Vec<&str> = r
        .warnings
        .iter()
        .filter(|w| w.reason == "monthly_hours_low")
        .map(|w| w.user_id.as_str())
        .collect();
    assert_eq!(low, ["u1x"]);
}

/// A learner whose device clock runs three hours ahead of the platform: the scorer reads the
/// watching and the completion at the time the detectors measure them (`ts` moved back by the
/// session's lead over `received_at`), so a flag's window and the activity it is linked to are on
/// one clock. A clock behind (a late delivery) and a lead within the tolerance stay as sent.
#[test]
fn the_scorer_reads_event_time_with_the_detectors_skew_bound() {
    const H3: i64 = 3 * 3_600_000_000;
    let fmt = creditguard_contract::time::format_rfc3339_us;
    let mut fx = Fixture::new();
    let real = ts("2026-03-02T09:00:00Z");
    let mut push = |id: String,
                    user: &str,
                    session: &str,
                    course: &str,
                    sent: i64,
                    received: i64| {
        fx.events.push(format!(
            r#"{{"event_id":"{id}","type":"heartbeat","ts":"{}","received_at":"{}","user_id":"{user}","session_id":"{session}","device_id":"d-{user}","platform":"web","ip":"10.0.0.1","course_id":"{course}","lesson_id":"l1","position_s":1,"playing":true,"visible":true}}"#,
            fmt(sent),
            fmt(received)
        ));
    };
    for k in 0..4 {
        let t = real + k * 30_000_000;
        // u1's clock runs 3 h ahead; one heartbeat arrived an hour late, which is not a lead.
        let received = if k == 2 { t + 3_600_000_000 } else { t };
        push(format!("a{k}"), "u1", "s-ahead", "c1", t + H3, received);
        // u2's clock runs behind by 10 minutes (indistinguishable from a late delivery).
        push(format!("b{k}"), "u2", "s-behind", "c1", t, t + 600_000_000);
        // u3's clock leads by half a second: inside the tolerance.
        push(format!("c{k}"), "u3", "s-close", "c1", t + 500_000, t);
    }
    // A completion without a session, sent 3 h ahead: its own lead moves it.
    let done = real + 5 * 60_000_000;
    fx.events.push(format!(
        r#"{{"event_id":"done-1","type":"course_complete","ts":"{}","received_at":"{}","user_id":"u1","org_unit":"org-u1","course_id":"c1","credits":2,"category":"elective"}}"#,
        fmt(done + H3),
        fmt(done)
    ));
    fx.commit();
    let d = day("2026-03-02");
    let users: std::collections::HashSet<String> =
        ["u1", "u2", "u3"].iter().map(|u| u.to_string()).collect();
    let activity =
        creditguard_score::events::read_activity(&fx.lake, d, d, &users, 120_000_000).unwrap();
    let span = |u: &str| activity[&(u.to_string(), "c1".to_string())].clone();
    // The completion names the course too: activity of its own, at its corrected time.
    assert_eq!(span("u1"), vec![(real, real + 90_000_000), (done, done)]);
    assert_eq!(span("u2"), vec![(real, real + 90_000_000)]);
    assert_eq!(span("u3"), vec![(real + 500_000, real + 90_500_000)]);
    let claims = creditguard_score::events::read_claims(&fx.lake, d, d).unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].completed_at, done);
    let sessions =
        creditguard_score::events::read_sessions(&fx.lake, d, d, &users, 120_000_000).unwrap();
    assert_eq!(sessions["u1"][0].start, real);
}
