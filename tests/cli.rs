//! `creditguard run` and `validate` on pipeline files: summaries, exit codes, config errors.

use crate::util::*;

const EVENTS: &str = concat!(
    r#"{"event_id":"e1","type":"login","ts":"2026-03-02T09:00:00+08:00","user_id":"u1","session_id":"s1"}"#,
    "\n",
    r#"{"event_id":"e2","type":"heartbeat","ts":"2026-03-02T09:00:20+08:00","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":20,"playing":true,"visible":true}"#,
    "\n",
    r#"{"event_id":"e2","type":"heartbeat","ts":"2026-03-02T09:00:20+08:00","user_id":"u1","session_id":"s1","course_id":"c1","lesson_id":"l1","position_s":20,"playing":true,"visible":true}"#,
    "\n",
    r#"{"event_id":"e3","type":"heartbeat","ts":"2026-03-02T09:00:40+08:00","user_id":"u1"}"#,
    "\n",
);

fn pipeline(s: &Scratch, extra: &str) -> std::path::PathBuf {
    let input = s.write("in/t.ndjson", EVENTS);
    s.write(
        "p.toml",
        format!(
            "[pipeline]\nname = \"t\"\nstages = [\"ingest\"]\n[source]\nkind = \"ndjson\"\npath = \"{}\"\n[lake]\nroot = \"{}\"\n[privacy]\npseudonymise = \"off\"\n{extra}",
            input.display(),
            s.lake().display()
        ),
    )
}

#[test]
fn run_ingests_and_prints_a_summary() {
    let s = Scratch::new();
    let p = pipeline(&s, "");
    let out = run(creditguard().arg("run").arg(&p));
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("valid                   2"), "{stdout}");
    assert!(stdout.contains("duplicates              1"), "{stdout}");
    assert!(
        stdout.contains("dead-lettered           1  (missing_field 1)"),
        "{stdout}"
    );
    assert_eq!(parquet_files(&s.lake().join("events")), 1);
    assert_eq!(parquet_files(&s.lake().join("dead_letters")), 1);

    // Running again changes nothing in the lake (deterministic names).
    assert!(run(creditguard().arg("run").arg(&p)).status.success());
    assert_eq!(parquet_files(&s.lake().join("events")), 1);
}

#[test]
fn command_line_overrides_win_over_the_file() {
    let s = Scratch::new();
    let p = pipeline(&s, "");
    let other = s.write("other.ndjson", &EVENTS[..EVENTS.find('\n').unwrap() + 1]);
    let lake2 = s.path("lake2");
    let out = run(creditguard()
        .arg("run")
        .arg(&p)
        .arg("--input")
        .arg(&other)
        .arg("--lake")
        .arg(&lake2));
    assert!(out.status.success());
    assert_eq!(parquet_files(&lake2.join("events")), 1);
    assert!(!s.lake().exists());
    // And from the environment.
    let lake3 = s.path("lake3");
    let out = run(creditguard()
        .arg("run")
        .arg(&p)
        .env("CREDITGUARD_LAKE", &lake3));
    assert!(out.status.success());
    assert_eq!(parquet_files(&lake3.join("events")), 1);
}

#[test]
fn stdin_is_a_source() {
    use std::io::Write;
    let s = Scratch::new();
    let p = pipeline(&s, "");
    let mut child = creditguard()
        .args(["run", p.to_str().unwrap(), "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(EVENTS.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("valid                   2"));
}

#[test]
fn a_bad_pipeline_file_exits_2_naming_file_and_keys() {
    let s = Scratch::new();
    let p = pipeline(&s, "[ingest]\nchunk_lines = 0\n");
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "stages = [\"ingest\"]",
        "stages = [\"ingest\", \"teleport\"]",
    );
    std::fs::write(&p, text).unwrap();
    for cmd in ["validate", "run"] {
        let out = run(creditguard().arg(cmd).arg(&p));
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!("{}: 2 problems", p.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains("key `pipeline.stages[1]`: unknown stage `teleport`"),
            "{stderr}"
        );
        assert!(
            stderr.contains("key `ingest.chunk_lines`: must be at least 1"),
            "{stderr}"
        );
    }
    assert!(!s.lake().exists(), "nothing ran");

    let typo = pipeline(&s, "[lake2]\nroot = \"x\"\n");
    let out = run(creditguard().arg("validate").arg(&typo));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("unknown field `lake2`"));
}

#[test]
fn an_unreadable_input_exits_1() {
    let s = Scratch::new();
    let p = pipeline(&s, "");
    s.write("in/broken.ndjson.gz", b"\x1f\x8b\x08\x00garbage");
    let out = run(creditguard()
        .arg("run")
        .arg(&p)
        .arg("--input")
        .arg(s.path("in")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("broken.ndjson.gz"));
}

#[test]
fn the_shipped_pipelines_validate() {
    let dir = repo().join("pipelines");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            // The reference pipeline takes its key from the environment, as by default.
            let out = run(creditguard()
                .current_dir(repo())
                .env("CREDITGUARD_PSEUDONYM_KEY", "ab".repeat(32))
                .arg("validate")
                .arg(&p));
            assert!(out.status.success(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 1);
}

#[test]
fn the_reference_pipeline_holds_the_built_in_defaults() {
    use creditguard::config::{Overrides, Pipeline};
    let p = Pipeline::load(
        &repo().join("pipelines/reference.toml"),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        p.section::<creditguard_detect::JobsConfig>("jobs").unwrap(),
        creditguard_detect::JobsConfig::default()
    );
    assert_eq!(
        p.section::<creditguard_score::ScoreConfig>("score")
            .unwrap(),
        creditguard_score::ScoreConfig::default()
    );
    assert_eq!(
        p.ingest.chunk_lines,
        creditguard::ingest::IngestOptions::default().chunk_lines
    );
    assert_eq!(
        creditguard::review::settings(&p).unwrap(),
        creditguard::review::ReviewSettings::default()
    );
    assert_eq!(p.privacy, creditguard::config::PrivacySection::default());
    assert_eq!(p.retention, creditguard::config::RetentionSection::default());
}

/// The README's first command, into a scratch lake: ingest → jobs → score in one run, then a
/// report of the result, and a single job re-run for one day.
#[test]
fn the_default_pipeline_goes_from_the_sample_to_results_and_a_report() {
    let s = Scratch::new();
    let out = run(creditguard()
        .current_dir(repo())
        .args(["run", "pipelines/default.toml", "--lake"])
        .arg(s.lake()));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "ingest",
        "jobs",
        "total flags",
        "claims:",
        "cases:",
        "progress:",
    ] {
        assert!(
            text.contains(needle),
            "`{needle}` missing from the summary:\n{text}"
        );
    }
    for table in [
        "events",
        "results/flags",
        "results/credits",
        "results/cases",
        "results/progress",
    ] {
        assert!(
            parquet_files(&s.lake().join(table)) > 0,
            "no files in {table}"
        );
    }
    for job in creditguard_contract::DETECTORS {
        assert!(
            parquet_files(&s.lake().join("features").join(job)) > 0,
            "no features of {job}"
        );
    }

    let html = s.path("report.html");
    let out = run(creditguard()
        .arg("report")
        .arg("--lake")
        .arg(s.lake())
        .arg("--html")
        .arg(&html));
    assert!(out.status.success());
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.contains("withheld"), "{report}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("</html>"));

    // One job for one day replaces that day's features and flags; nothing else moves.
    let flags_before = parquet_files(&s.lake().join("results/flags"));
    let out = run(creditguard()
        .current_dir(repo())
        .args([
            "job",
            "watch_time",
            "--pipeline",
            "pipelines/default.toml",
            "--day",
            "2026-03-05",
            "--lake",
        ])
        .arg(s.lake()));
    assert!(out.status.success());
    assert_eq!(parquet_files(&s.lake().join("results/flags")), flags_before);
}

#[test]
fn generate_writes_contract_valid_telemetry_catalog_and_labels() {
    let s = Scratch::new();
    let out = run(creditguard()
        .args([
            "generate",
            "--users",
            "40",
            "--days",
            "6",
            "--seed",
            "3",
            "--fault-rate",
            "0.01",
            "--out",
        ])
        .arg(s.path("g/telemetry.ndjson")));
    assert!(out.status.success());
    let body = std::fs::read_to_string(s.path("g/telemetry.ndjson")).unwrap();
    let labels = creditguard_synth::Labels::read(s.path("g/telemetry.labels.json")).unwrap();
    assert_eq!(labels.learners.len(), 40);
    let invalid = body
        .lines()
        .filter(|l| creditguard_contract::parse_event(l.as_bytes()).is_err())
        .count() as u64;
    assert_eq!(
        invalid, labels.summary.invalid_lines,
        "only the deliberately invalid lines fail"
    );
    assert_eq!(body.lines().count() as u64, labels.summary.lines);
    let catalog = std::fs::read_to_string(s.path("g/telemetry.catalog.csv")).unwrap();
    assert!(catalog.starts_with("course_id,title,category,credits,duration_s,min_watch_ratio"));
}

#[test]
fn the_binary_allocates_with_jemalloc_as_configured() {
    // jemalloc prints its options in effect at exit when asked to (the compiled-in
    // configuration, then this variable's additions).
    let out = run(creditguard()
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true"));
    assert!(out.status.success());
    let stats = String::from_utf8_lossy(&out.stderr);
    for option in creditguard::lake::memory::JEMALLOC_CONF.split(',') {
        let (key, value) = option.split_once(':').unwrap();
        assert!(
            stats
                .lines()
                .any(|l| l.trim().starts_with(&format!("opt.{key}: {value}"))),
            "opt.{key} is not {value}:\n{stats}"
        );
    }
}
