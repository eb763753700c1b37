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
fn relative_paths_out_of_the_working_directory_are_refused_unless_absolute() {
    // Run from `work/`; the telemetry sits next to it, reached by `..` or through a link.
    let s = Scratch::new();
    let input = s.write("outside/t.ndjson", EVENTS);
    std::fs::create_dir(s.path("work")).unwrap();
    std::os::unix::fs::symlink(s.path("outside"), s.path("work/data")).unwrap();
    let write = |source: &str| {
        s.write(
            "work/p.toml",
            format!(
                "[pipeline]\nname = \"t\"\nstages = [\"ingest\"]\n[source]\nkind = \"ndjson\"\npath = \"{source}\"\n[lake]\nroot = \"lake\"\n[privacy]\npseudonymise = \"off\"\n"
            ),
        )
    };
    for source in ["../outside/t.ndjson", "data/t.ndjson"] {
        let p = write(source);
        let out = run(creditguard().current_dir(s.path("work")).arg("run").arg(&p));
        assert_eq!(out.status.code(), Some(2), "{source}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains(&format!(
                "key `source.path`: `{source}` leads outside the working directory"
            )),
            "{stderr}"
        );
    }
    assert!(!s.path("work/lake").exists(), "nothing ran");
    // Written absolute, or given on the command line, the same file is read.
    let p = write(&input.display().to_string());
    let out = run(creditguard().current_dir(s.path("work")).arg("run").arg(&p));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = write("../outside/t.ndjson");
    let out = run(creditguard()
        .current_dir(s.path("work"))
        .arg("run")
        .arg(&p)
        .args(["--input", "../outside/t.ndjson"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    assert_eq!(p.jobs, creditguard_detect::JobsConfig::default());
    assert_eq!(p.score, creditguard_score::ScoreConfig::default());
    let ingest = creditguard::ingest::IngestOptions::default();
    assert_eq!(
        (
            p.ingest.chunk_lines,
            p.ingest.chunk_bytes,
            p.ingest.max_line_bytes,
            p.ingest.max_decompression_ratio
        ),
        (
            ingest.chunk_lines,
            ingest.chunk_bytes,
            ingest.max_line_bytes,
            ingest.max_decompression_ratio
        )
    );
    assert_eq!(p.review, creditguard::review::ReviewSettings::default());
    assert_eq!(p.privacy, creditguard::config::PrivacySection::default());
    assert_eq!(
        p.retention,
        creditguard::config::RetentionSection::default()
    );
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
        "    CN/East: ",
        "roster: not_in_roster 1, org_unit_differs 1",
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
            "--roster",
        ])
        .arg(s.path("g/roster.csv"))
        .arg("--out")
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
    // The roster and its leave file beside it, as `[roster]` reads them: every learner, plus
    // employees without activity.
    let roster = creditguard_score::policy::Roster::load(
        &s.path("g/roster.csv"),
        Some(&s.path("g/roster.leave.csv")),
    )
    .unwrap();
    assert!(labels
        .learners
        .iter()
        .all(|l| roster.get(&l.user_id).is_some()));
    assert!(roster.people.len() > labels.learners.len());
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
    for option in creditguard::alloc::JEMALLOC_CONF.split(',') {
        let (key, value) = option.split_once(':').unwrap();
        assert!(
            stats
                .lines()
                .any(|l| l.trim().starts_with(&format!("opt.{key}: {value}"))),
            "opt.{key} is not {value}:\n{stats}"
        );
    }
}

#[test]
fn a_bad_roster_or_policy_exits_2_naming_keys_and_lines() {
    let s = Scratch::new();
    let roster = s.write(
        "roster.csv",
        "user_id,org_path,role,level,hired_on,left_on\nu1,HQ/East,,,2026-02-30,\n",
    );
    let policy = s.write(
        "policy.toml",
        "[policy]\nname = \"p\"\ntime_zone = \"Europe/Paris\"\n[[rule]]\nname = \"a\"\ntarget_credits = 10\nminimum = { mandatory = 20 }\n",
    );
    let p = pipeline(
        &s,
        &format!(
            "[roster]\npath = \"{}\"\n[policy]\npath = \"{}\"\n",
            roster.display(),
            policy.display()
        ),
    );
    let out = run(creditguard().arg("validate").arg(&p));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    for needle in [
        "key `roster`:",
        "line 2: `hired_on` `2026-02-30`",
        "key `policy.path`:",
        "key `policy.time_zone`: time zone `Europe/Paris`",
        "key `rule[0] (a).minimum`: the minimums add up to 20",
    ] {
        assert!(stderr.contains(needle), "`{needle}` missing:\n{stderr}");
    }
}

#[test]
fn a_policy_topic_the_catalog_lacks_is_named_with_its_rule() {
    let s = Scratch::new();
    let catalog = s.write(
        "catalog.csv",
        "course_id,title,category,credits,duration_s,min_watch_ratio,topic\nc1,Leading,elective,2,600,0.8,management\n",
    );
    let policy = s.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n[[rule]]\nname = \"heads\"\ntarget_credits = 10\ntopics = { managment = 2, management = 2 }\n",
    );
    let extra = format!(
        "[catalog]\npath = \"{}\"\n[policy]\npath = \"{}\"\n",
        catalog.display(),
        policy.display()
    );
    let out = run(creditguard().arg("validate").arg(pipeline(&s, &extra)));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let want = "key `rule[0] (heads).topics.managment`: no course of the catalog has topic `managment` (the catalog's topics: management)";
    assert!(stderr.contains(want), "`{want}` missing:\n{stderr}");
    assert!(!stderr.contains("topics.management`"), "{stderr}");
}

#[test]
fn policy_explain_names_the_rule_that_applies_and_why() {
    let out = run(creditguard().current_dir(repo()).args([
        "policy",
        "explain",
        "u00005",
        "--pipeline",
        "pipelines/default.toml",
        "--as-of",
        "2026-03-15",
    ]));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("u00005: org CN/North/ou01-beijing, role staff"),
        "{text}"
    );
    assert!(
        text.contains("applies: `credits-2026/company`: 137.3 credits in 2026 (92% of the year expected, prorated)"),
        "hired on 2026-02-01: {text}"
    );
    assert!(
        text.contains("at least 8.0 engaged hours a month"),
        "the company rule's monthly minimum: {text}"
    );
    let out = run(creditguard().current_dir(repo()).args([
        "policy",
        "explain",
        "u00000",
        "--pipeline",
        "pipelines/default.toml",
        "--as-of",
        "2026-03-15",
    ]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("applies: `credits-2026/china managers`"),
        "{text}"
    );
    assert!(
        text.contains("at least 20.0 in management courses (topic)"),
        "{text}"
    );
}

/// Every Parquet file of a lake with its length and modification time.
fn lake_state(lake: &std::path::Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    fn walk(d: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u64, std::time::SystemTime)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                walk(&e.path(), out);
            } else if e
                .path()
                .extension()
                .is_some_and(|x| x == "parquet" || x == "ndjson")
            {
                out.push((e.path(), m.len(), m.modified().unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(lake, &mut out);
    out.sort();
    out
}

#[test]
fn backtest_shows_the_direction_of_a_threshold_change_and_writes_nothing() {
    let s = Scratch::new();
    let out = run(creditguard()
        .current_dir(repo())
        .args(["run", "pipelines/default.toml", "--lake"])
        .arg(s.lake()));
    assert!(out.status.success());
    let default = std::fs::read_to_string(repo().join("pipelines/default.toml")).unwrap();
    // The sample pipeline with absolute paths, on the test's lake.
    let absolute = default
        .replace(
            "\"sample-data/",
            &format!("\"{}/sample-data/", repo().display()),
        )
        .replace("\"policies/", &format!("\"{}/policies/", repo().display()))
        .replace(
            "root = \"./lake\"",
            &format!("root = \"{}\"", s.lake().display()),
        );
    // Reviewers decide two quiz_speed cases: one confirmed, one dismissed.
    let real = s.write("real.toml", &absolute);
    let out = run(creditguard()
        .args([
            "review",
            "list",
            "--rule",
            "quiz_speed.too_fast",
            "--pipeline",
        ])
        .arg(&real));
    let listing = String::from_utf8(out.stdout).unwrap();
    let cases: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(cases.len() >= 2, "{listing}");
    for (case, verdict) in [(cases[0], "confirmed"), (cases[1], "dismissed")] {
        let out = run(creditguard()
            .args([
                "review", "decide", case, "--as", "ana", "--reason", "checked",
            ])
            .args(["--decision", verdict, "--pipeline"])
            .arg(&real));
        assert!(out.status.success(), "{out:?}");
    }
    let before = lake_state(&s.lake());
    let candidate = |seconds: f64| {
        s.write(
            &format!("candidate-{seconds}.toml"),
            format!("{absolute}\n[jobs.quiz_speed]\nmin_seconds_per_question = {seconds}\n"),
        )
    };
    let quiz_rows = |seconds: f64| -> (usize, usize, String) {
        let p = candidate(seconds);
        let out = run(creditguard()
            .args([
                "backtest",
                "--from",
                "2026-03-01",
                "--to",
                "2026-03-15",
                "--pipeline",
            ])
            .arg(&p));
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        let (mut added, mut removed) = (0, 0);
        for line in text
            .lines()
            .filter(|l| l.starts_with("quiz_speed.too_fast"))
        {
            let cols: Vec<&str> = line.split_whitespace().collect();
            added += cols[4].parse::<usize>().unwrap();
            removed += cols[5].parse::<usize>().unwrap();
        }
        for line in text.lines().filter(|l| {
            l.contains('.')
                && !l.starts_with("quiz_speed")
                && !l.starts_with("backtest")
                && !l.starts_with("claims")
                && !l.starts_with("cases")
        }) {
            panic!("only quiz_speed moves: {line}\n{text}");
        }
        (added, removed, text)
    };
    let (added, removed, text) = quiz_rows(6.0);
    // The thresholds' versions: the lake's flags were raised by the sample's, the candidate's
    // differ.
    let version = |p: &std::path::Path| {
        let pipeline =
            creditguard::config::Pipeline::load(p, &creditguard::config::Overrides::default())
                .unwrap();
        pipeline.jobs_config().unwrap().rules_version()
    };
    let (sample, looser) = (version(&real), version(&candidate(6.0)));
    assert_ne!(sample, looser);
    assert!(
        text.contains(&format!("thresholds in the lake: {sample} (default) "))
            && text.contains(&format!("; candidate: {looser} (default)")),
        "{text}"
    );
    assert!(
        added > 0 && removed == 0,
        "a looser threshold only adds: {text}"
    );
    assert!(text.contains("0 would be granted"), "{text}");
    let (added, removed, text) = quiz_rows(1.0);
    assert!(
        added == 0 && removed > 0,
        "a stricter threshold only removes: {text}"
    );
    assert!(text.contains("0 newly withheld"), "{text}");
    assert_eq!(lake_state(&s.lake()), before, "the real lake is untouched");
}

#[test]
fn a_parquet_catalog_serves_the_jobs_and_the_scorer_alike() {
    use std::sync::Arc;
    let s = Scratch::new();
    let entries =
        creditguard_lake::catalog::load_with_terms(&repo().join("sample-data/catalog.csv"))
            .unwrap();
    let courses: Vec<_> = entries.iter().map(|(c, _)| c.clone()).collect();
    // The optional columns as the policy needs them: topics (its topic minimum) and quizzes.
    let terms =
        |f: fn(&creditguard_lake::catalog::CourseTerms) -> String| -> Arc<dyn arrow_array::Array> {
            Arc::new(arrow_array::StringArray::from(
                entries.iter().map(|(_, t)| f(t)).collect::<Vec<_>>(),
            ))
        };
    let text =
        |f: fn(&creditguard_lake::catalog::Course) -> String| -> Arc<dyn arrow_array::Array> {
            Arc::new(arrow_array::StringArray::from(
                courses.iter().map(f).collect::<Vec<_>>(),
            ))
        };
    let num = |f: fn(&creditguard_lake::catalog::Course) -> f64| -> Arc<dyn arrow_array::Array> {
        Arc::new(arrow_array::Float64Array::from(
            courses.iter().map(f).collect::<Vec<_>>(),
        ))
    };
    let batch = arrow_array::RecordBatch::try_from_iter([
        ("course_id", text(|c| c.course_id.clone())),
        ("title", text(|c| c.title.clone())),
        ("category", text(|c| c.category.clone())),
        ("credits", num(|c| c.credits)),
        ("duration_s", num(|c| c.duration_s)),
        ("min_watch_ratio", num(|c| c.min_watch_ratio)),
        ("topic", terms(|t| t.topic.clone().unwrap_or_default())),
        (
            "quiz",
            terms(|t| if t.quiz { "yes" } else { "no" }.to_string()),
        ),
    ])
    .unwrap();
    let path = s.path("catalog.parquet");
    creditguard_lake::write_parquet_to(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        &[batch],
    )
    .unwrap();
    let out = run(creditguard()
        .current_dir(repo())
        .args(["run", "pipelines/default.toml", "--catalog"])
        .arg(&path)
        .arg("--lake")
        .arg(s.lake()));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("total flags 89") && text.contains("claim issues: none"),
        "{text}"
    );
}

#[test]
fn rules_lists_every_rule_with_the_thresholds_the_pipeline_sets() {
    let s = Scratch::new();
    let p = pipeline(&s, "[jobs.course_switching]\nmin_changes = 9\n");
    let out = run(creditguard().arg("rules").arg(&p));
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for rule in creditguard::contract::RULES {
        assert!(
            text.contains(&format!("{rule}\n")),
            "{rule} missing:\n{text}"
        );
    }
    assert!(
        text.contains("jobs.course_switching.min_changes = 9"),
        "{text}"
    );

    // Without a pipeline: the defaults, as JSON for scripts.
    let out = run(creditguard().args(["rules", "--format", "json"]));
    assert!(out.status.success(), "{out:?}");
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules = rules.as_array().unwrap();
    assert_eq!(rules.len(), creditguard::contract::RULES.len());
    let switching = rules
        .iter()
        .find(|r| r["rule"] == "course_switching.rapid_switching")
        .unwrap();
    assert_eq!(
        switching["thresholds"]["jobs.course_switching.min_changes"],
        6
    );
    assert!(switching["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "fastest_window_s"));
}
