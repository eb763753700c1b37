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
            "[pipeline]\nname = \"t\"\nstages = [\"ingest\"]\n[source]\nkind = \"ndjson\"\npath = \"{}\"\n[lake]\nroot = \"{}\"\n{extra}",
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
            let out = run(creditguard().current_dir(repo()).arg("validate").arg(&p));
            assert!(out.status.success(), "{}", p.display());
            n += 1;
        }
    }
    assert!(n >= 1);
}
