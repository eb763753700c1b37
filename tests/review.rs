//! Reviewer decisions end to end with the real binary, on the embedded SQLite default and on a real
//! PostgreSQL server: the sample is scored, cases are worked and decided on the command line, and
//! a later score run honours the decisions (released credits granted, cancelled ones never).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::util::*;

/// The database of one test: `None` = the embedded default (`review.sqlite` in the lake).
enum Db {
    Sqlite,
    Postgres(String),
}

impl Db {
    fn postgres() -> Option<Db> {
        match creditguard_review::testing::shared().expect("PostgreSQL for the tests") {
            Some(pg) => Some(Db::Postgres(pg.fresh_database().unwrap())),
            None => {
                eprintln!("skipped: {}", creditguard_review::testing::INSTALL_HINT);
                None
            }
        }
    }
}

/// `creditguard <args>` on the default pipeline with the scratch lake and the test's database.
fn cg(s: &Scratch, db: &Db, args: &[&str]) -> Command {
    let mut cmd = creditguard();
    cmd.current_dir(repo()).args(args);
    cmd.env("CREDITGUARD_LAKE", s.lake());
    cmd.env("CREDITGUARD_PIPELINE", "pipelines/default.toml");
    match db {
        Db::Sqlite => cmd.env_remove(creditguard::review::DATABASE_ENV),
        Db::Postgres(url) => cmd.env(creditguard::review::DATABASE_ENV, url),
    };
    cmd
}

/// Runs a command (owned or borrowed) and returns its output.
fn exec(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    run(cmd.borrow_mut())
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "exit {:?}", out.status.code());
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// Every credit record of the lake, by credit id.
fn credits(lake: &Path) -> BTreeMap<String, creditguard_contract::Credit> {
    let lake = creditguard_lake::Lake::open(lake.to_str().unwrap()).unwrap();
    creditguard_score::tables::read_credits(&lake, 0, 100_000)
        .unwrap()
        .into_iter()
        .map(|c| (c.credit_id.clone(), c))
        .collect()
}

/// The NDJSON records under a lake table (all partitions).
fn ndjson_records(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(dir) else {
        return out;
    };
    for day in days.flatten() {
        if !day.path().is_dir() || day.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for f in std::fs::read_dir(day.path()).unwrap().flatten() {
            if f.path().extension().is_some_and(|x| x == "ndjson") {
                let text = std::fs::read_to_string(f.path()).unwrap();
                out.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
    }
    out
}

/// Two cases of the queue that withhold claims, as (case id, version, credit ids).
fn two_cases_with_claims(s: &Scratch, db: &Db) -> Vec<(String, i64, Vec<String>)> {
    let queue = json(exec(cg(
        s,
        db,
        &["review", "list", "--format", "json", "--limit", "1000"],
    )));
    let mut picked = Vec::new();
    for case in queue.as_array().unwrap() {
        let id = case["case_id"].as_str().unwrap();
        let detail = json(exec(cg(s, db, &["review", "show", id, "--format", "json"])));
        let claims: Vec<String> = detail["claims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["credit_id"].as_str().unwrap().to_string())
            .collect();
        if !claims.is_empty() {
            picked.push((
                id.to_string(),
                detail["case"]["version"].as_i64().unwrap(),
                claims,
            ));
        }
        if picked.len() == 2 {
            break;
        }
    }
    assert_eq!(picked.len(), 2, "the sample has cases with withheld claims");
    picked
}

fn decisions_released_and_cancelled_credits(db: Db) {
    let s = Scratch::new();
    let summary = ok(exec(cg(&s, &db, &["run", "pipelines/default.toml"])));
    assert!(summary.contains("review     "), "{summary}");
    let before = credits(&s.lake());
    let queue = json(exec(cg(
        &s,
        &db,
        &["review", "list", "--format", "json", "--limit", "1000"],
    )));
    let queue = queue.as_array().unwrap();
    assert!(!queue.is_empty());
    assert!(queue.iter().all(|c| c["status"] == "open"), "{queue:?}");
    let opened = queue.len();

    let picked = two_cases_with_claims(&s, &db);
    let (dismiss, v_dismiss, dismiss_claims) = &picked[0];
    let (confirm, _, confirm_claims) = &picked[1];
    for id in dismiss_claims.iter().chain(confirm_claims) {
        assert_eq!(before[id].status, "withheld", "{id}");
    }

    // Assign, then decide against the version seen: a stale version is refused (exit 2).
    let text = ok(exec(cg(
        &s,
        &db,
        &[
            "review",
            "assign",
            dismiss,
            "--as",
            "lead",
            "--to",
            "ana",
            "--expect-version",
            &v_dismiss.to_string(),
        ],
    )));
    assert!(text.contains("in_review, assigned to ana"), "{text}");
    let stale = exec(cg(
        &s,
        &db,
        &[
            "review",
            "decide",
            dismiss,
            "--as",
            "ana",
            "--decision",
            "dismissed",
            "--reason",
            "watched at work",
            "--expect-version",
            &v_dismiss.to_string(),
        ],
    ));
    assert_eq!(stale.status.code(), Some(2));
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(
        err.contains(dismiss.as_str()) && err.contains("changed since version"),
        "{err}"
    );

    let text = ok(exec(cg(
        &s,
        &db,
        &[
            "review",
            "decide",
            dismiss,
            "--as",
            "ana",
            "--decision",
            "dismissed",
            "--reason",
            "the learner watched on a shared screen in a meeting room",
        ],
    )));
    assert!(text.contains("dismissed by ana"), "{text}");
    let text = ok(exec(cg(
        &s,
        &db,
        &[
            "review",
            "decide",
            confirm,
            "--as",
            "ana",
            "--decision",
            "confirmed",
            "--reason",
            "video muted in a hidden tab for hours",
        ],
    )));
    assert!(text.contains("confirmed by ana"), "{text}");

    // A decided case cannot be decided again; an unknown case is named.
    let again = exec(cg(
        &s,
        &db,
        &[
            "review",
            "decide",
            dismiss,
            "--as",
            "ana",
            "--decision",
            "confirmed",
            "--reason",
            "x",
        ],
    ));
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(dismiss.as_str()) && err.contains("dismissed"),
        "{err}"
    );
    let unknown = exec(cg(&s, &db, &["review", "show", "no-such-case"]));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no case `no-such-case`"));
    // No reviewer, no change.
    let anonymous = exec(
        cg(&s, &db, &["review", "comment", confirm, "--text", "hi"])
            .env_remove("CREDITGUARD_REVIEWER"),
    );
    assert_eq!(anonymous.status.code(), Some(2));

    // The decision rewrote the claims' credit records at once.
    let after = credits(&s.lake());
    for id in dismiss_claims {
        assert_eq!(after[id].status, "released", "{id}");
        assert!(after[id].credits_granted > 0.0);
    }
    for id in confirm_claims {
        assert_eq!(
            (after[id].status.as_str(), after[id].credits_granted),
            ("cancelled", 0.0)
        );
    }
    assert!(parquet_files(&s.lake().join("results/decisions")) > 0);
    let stream = ndjson_records(&s.lake().join("results/review_stream"));
    let kinds: Vec<&str> = stream.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "case_decision").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "credit_released").count(),
        dismiss_claims.len()
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "credit_cancelled").count(),
        confirm_claims.len()
    );

    // A later score run honours the decisions and opens no new case for the decided flags.
    let summary = ok(exec(cg(&s, &db, &["score"])));
    assert!(
        summary.contains("released") && summary.contains("cancelled"),
        "{summary}"
    );
    assert!(summary.contains("2 decided"), "{summary}");
    assert!(summary.contains("0 case(s) opened"), "{summary}");
    let rescored = credits(&s.lake());
    for id in dismiss_claims {
        assert_eq!(rescored[id].status, "released", "{id}");
    }
    for id in confirm_claims {
        assert_eq!(rescored[id].status, "cancelled", "{id}");
    }
    let all = json(exec(cg(
        &s,
        &db,
        &[
            "review", "list", "--status", "all", "--format", "json", "--limit", "1000",
        ],
    )));
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), opened, "no new case");
    let status: BTreeMap<&str, &str> = all
        .iter()
        .map(|c| {
            (
                c["case_id"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(status[dismiss.as_str()], "dismissed");
    assert_eq!(status[confirm.as_str()], "confirmed");
    // The case records of the run carry the persistent ids and statuses.
    let lake = creditguard_lake::Lake::open(s.lake().to_str().unwrap()).unwrap();
    let cases = creditguard_score::tables::read_cases(&lake, 0, 100_000).unwrap();
    assert!(cases
        .iter()
        .any(|c| c.case_id == *dismiss && c.status == "dismissed"));
    assert!(cases
        .iter()
        .any(|c| c.case_id == *confirm && c.status == "confirmed"));
    // Progress counts the released credits as granted and the cancelled ones as nothing.
    let progress_users: BTreeSet<String> = rescored
        .values()
        .filter(|c| c.status == "released")
        .map(|c| c.user_id.clone())
        .collect();
    assert!(!progress_users.is_empty());

    // An appeal puts the dismissed case back in the queue; the audit trail holds every step.
    let text = ok(exec(cg(
        &s,
        &db,
        &[
            "review",
            "appeal",
            confirm,
            "--as",
            "hr-appeals",
            "--reason",
            "the learner says a colleague used the laptop",
        ],
    )));
    assert!(text.contains("appealed"), "{text}");
    let queue = json(exec(cg(
        &s,
        &db,
        &["review", "list", "--format", "json", "--limit", "1000"],
    )));
    assert!(queue
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["case_id"] == confirm.as_str()));
    let verify = ok(exec(cg(&s, &db, &["audit", "verify"])));
    assert!(verify.contains("hash chain intact"), "{verify}");
    let export = ok(exec(cg(&s, &db, &["audit", "export"])));
    let actions: Vec<String> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for a in ["assign", "decide", "appeal"] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
    let feedback = json(exec(cg(
        &s,
        &db,
        &["review", "feedback", "--format", "json"],
    )));
    let confirmed: i64 = feedback
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["confirmed"].as_i64().unwrap())
        .sum();
    let dismissed: i64 = feedback
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dismissed"].as_i64().unwrap())
        .sum();
    assert!(dismissed > 0, "{feedback}");
    // The confirmed case is under appeal: its flags are pending again.
    assert_eq!(confirmed, 0, "{feedback}");
}

#[test]
fn decisions_release_and_cancel_credits_on_sqlite() {
    decisions_released_and_cancelled_credits(Db::Sqlite);
}

#[test]
fn decisions_release_and_cancel_credits_on_postgres() {
    if let Some(db) = Db::postgres() {
        decisions_released_and_cancelled_credits(db);
    }
}

/// Scoring the sample one day at a time (the daily schedule) gives each learner one case per
/// episode, the same cases as scoring the whole period at once.
#[test]
fn a_daily_schedule_gives_one_case_per_learner_episode() {
    let db = Db::Sqlite;
    let daily = Scratch::new();
    // Ingest and detect only; scoring follows day by day.
    let p = daily.write(
        "p.toml",
        std::fs::read_to_string(repo().join("pipelines/default.toml"))
            .unwrap()
            .replace(
                r#"stages = ["ingest", "jobs", "score"]"#,
                r#"stages = ["ingest", "jobs"]"#,
            ),
    );
    ok(exec(cg(&daily, &db, &["run"]).arg(&p)));
    let lake = creditguard_lake::Lake::open(daily.lake().to_str().unwrap()).unwrap();
    let (first, last) = creditguard::jobs::event_days(&lake).unwrap().unwrap();
    for day in first..=last {
        let d = creditguard_contract::time::format_day(day);
        ok(exec(cg(&daily, &db, &["score", "--day", &d])));
    }
    let daily_cases = json(exec(cg(
        &daily,
        &db,
        &[
            "review", "list", "--status", "all", "--format", "json", "--limit", "10000",
        ],
    )));

    let whole = Scratch::new();
    ok(exec(cg(&whole, &db, &["run", "pipelines/default.toml"])));
    let whole_cases = json(exec(cg(
        &whole,
        &db,
        &[
            "review", "list", "--status", "all", "--format", "json", "--limit", "10000",
        ],
    )));

    let per_user = |v: &Value| -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in v.as_array().unwrap() {
            m.entry(c["user_id"].as_str().unwrap().to_string())
                .or_default()
                .push(c["case_id"].as_str().unwrap().to_string());
        }
        m
    };
    let (daily_users, whole_users) = (per_user(&daily_cases), per_user(&whole_cases));
    assert!(!daily_users.is_empty());
    // The sample spans less than `reopen_after_days`: one episode, one case per learner.
    assert!(last - first < 30);
    for (user, cases) in &daily_users {
        assert_eq!(cases.len(), 1, "{user}: {cases:?}");
    }
    assert_eq!(daily_users, whole_users);
}

/// The default pipeline with lower thresholds (more flags withhold claims) and a changed credit
/// policy, as a file of the scratch directory; with its thresholds' and policy's versions.
fn changed_pipeline(s: &Scratch) -> (std::path::PathBuf, String, String) {
    let policy = std::fs::read_to_string(repo().join("policies/credits.toml"))
        .unwrap()
        .replacen("target_credits = 150", "target_credits = 160", 1);
    let policy = s.write("credits-changed.toml", policy);
    let text = std::fs::read_to_string(repo().join("pipelines/default.toml"))
        .unwrap()
        .replace(
            r#"path = "policies/credits.toml""#,
            &format!("path = {:?}", policy.to_str().unwrap()),
        );
    let p = s.write(
        "changed.toml",
        format!("{text}\n[score]\nreview_threshold = 0.3\nwithhold_severity = 0.3\n"),
    );
    let pipeline =
        creditguard::config::Pipeline::load(&p, &creditguard::config::Overrides::default())
            .unwrap();
    let cfg = pipeline.score_config().unwrap();
    (p, cfg.rules_version(), cfg.policy_version())
}

/// A rule or policy change does not rewrite what was decided: re-scoring a period where
/// reviewers decided claims under other versions is refused, naming the period, the versions and
/// the count; scoring a day without such claims (the daily run) keeps the claims the scorer
/// granted as they were; `--rescore-decided` re-scores everything and says so in the audit trail.
#[test]
fn a_rule_change_leaves_decided_claims_alone_unless_asked() {
    let db = Db::Sqlite;
    let s = Scratch::new();
    ok(exec(cg(&s, &db, &["run", "pipelines/default.toml"])));
    let (changed, rules_new, policy_new) = changed_pipeline(&s);
    let changed = changed.to_str().unwrap();
    let first = credits(&s.lake());
    let old = first.values().next().unwrap();
    let (rules_old, policy_old) = (
        old.rules_version.clone().unwrap(),
        old.policy_version.clone().unwrap(),
    );
    assert_ne!((&rules_old, &policy_old), (&rules_new, &policy_new));
    assert!(first
        .values()
        .all(|c| c.rules_version.as_ref() == Some(&rules_old)
            && c.rules_name.as_deref() == Some("default")
            && c.policy_version.as_ref() == Some(&policy_old)));

    let picked = two_cases_with_claims(&s, &db);
    let (case, _, released) = &picked[0];
    ok(exec(cg(
        &s,
        &db,
        &[
            "review",
            "decide",
            case,
            "--as",
            "ana",
            "--decision",
            "dismissed",
            "--reason",
            "watched in a meeting room",
        ],
    )));
    let decided = credits(&s.lake());
    for id in released {
        assert_eq!(decided[id].status, "released");
        assert_eq!(decided[id].rules_version.as_ref(), Some(&rules_old));
    }

    // The whole period under the changed pipeline: refused, nothing written.
    let refused = exec(cg(&s, &db, &["score", "--pipeline", changed]));
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    let lake = creditguard_lake::Lake::open(s.lake().to_str().unwrap()).unwrap();
    let (from, to) = creditguard::jobs::event_days(&lake).unwrap().unwrap();
    let day = creditguard_contract::time::format_day;
    for part in [
        format!("scoring {} .. {}", day(from), day(to)),
        format!(
            "{} claim(s) of the period were decided by reviewers",
            released.len()
        ),
        format!("thresholds {rules_old}, policy {policy_old}"),
        format!("thresholds {rules_new}, policy {policy_new}"),
        "--rescore-decided".to_string(),
    ] {
        assert!(err.contains(&part), "{part}\n{err}");
    }
    assert_eq!(credits(&s.lake()), decided);

    // The daily run: a day without reviewed claims scores; what the scorer granted there under
    // the earlier versions stays as it was, the rest follows the new versions.
    let reviewed_days: BTreeSet<i64> = released
        .iter()
        .map(|id| creditguard_contract::time::day_of_us(decided[id].completed_at))
        .collect();
    let daily = (from..=to)
        .rev()
        .find(|d| {
            !reviewed_days.contains(d)
                && decided.values().any(|c| {
                    c.status == "granted"
                        && creditguard_contract::time::day_of_us(c.completed_at) == *d
                })
        })
        .expect("a day with granted claims and no reviewed one");
    let text = ok(exec(cg(
        &s,
        &db,
        &["score", "--pipeline", changed, "--day", &day(daily)],
    )));
    assert!(
        text.contains("granted under other versions kept as decided"),
        "{text}"
    );
    let after = credits(&s.lake());
    for (id, c) in &after {
        let before = &decided[id];
        if creditguard_contract::time::day_of_us(c.completed_at) != daily {
            assert_eq!(c, before);
        } else if before.status == "granted" {
            assert_eq!(c, before, "a granted claim is kept as decided");
        } else {
            assert_eq!(c.rules_version.as_ref(), Some(&rules_new));
        }
    }

    // Asked for: everything is re-scored under the new versions, and the audit trail says who.
    let text = ok(exec(cg(
        &s,
        &db,
        &[
            "score",
            "--pipeline",
            changed,
            "--rescore-decided",
            "--as",
            "ops.lead",
        ],
    )));
    assert!(
        text.contains("decided under other versions re-scored"),
        "{text}"
    );
    let rescored = credits(&s.lake());
    assert!(rescored
        .values()
        .all(|c| c.rules_version.as_ref() == Some(&rules_new)
            && c.policy_version.as_ref() == Some(&policy_new)));
    let audit = ok(exec(cg(&s, &db, &["audit", "export"])));
    let record: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["action"] == "rescore_decided")
        .expect("an audit record of the re-score");
    assert_eq!(record["actor"], "ops.lead");
    let detail: Value = serde_json::from_str(record["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["rules_version"], rules_new.as_str());
    assert_eq!(
        detail["claims_decided_by_reviewers"]
            .as_array()
            .unwrap()
            .len(),
        released.len()
    );
    ok(exec(cg(&s, &db, &["audit", "verify"])));
}
