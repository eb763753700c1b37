//! Crashes with the real binary: named crash points (`CREDITGUARD_FAULT`) and SIGKILL at random
//! moments; after restarts every valid event is in the lake exactly once, no partial file is
//! visible, and every invalid one is on the DLQ.

use std::time::Duration;

use super::harness::{self, with_broker, IngestOpts, IngestProc};

fn crash_at(point: &str, after: u32) {
    let b = with_broker!();
    let topic = b.topic(&point.replace('_', "-"), 3);
    let fx = harness::fixture(point, 4000, 61);
    harness::produce(b, &topic, &fx.lines);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let group = format!("g-{point}");

    let mut crashing = IngestProc::start(
        b,
        &topic,
        &group,
        &lake,
        IngestOpts {
            roll_rows: 400,
            fault: Some((point, after)),
            ..IngestOpts::default()
        },
    );
    let status = crashing
        .wait(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no crash at {point}; log:\n{}", crashing.log_text()));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(6),
        "aborted at {point}: {status:?}\n{}",
        crashing.log_text()
    );
    assert!(crashing
        .log_text()
        .contains(&format!("CREDITGUARD_FAULT={point}")));
    // What the crash left is either complete or invisible (lake_rows panics on a torn file).
    let (before, _) = harness::lake_rows(&lake);
    assert!(before.len() < fx.valid.len());
    if point == "mid_file" {
        let tmp = walk(&lake)
            .into_iter()
            .filter(|p| p.contains(".tmp-"))
            .count();
        assert!(
            tmp >= 1,
            "a partial temporary file is left behind, invisible to readers"
        );
    }

    let ingest = IngestProc::start(
        b,
        &topic,
        &group,
        &lake,
        IngestOpts {
            roll_rows: 400,
            fault: None,
            ..IngestOpts::default()
        },
    );
    harness::wait_for_rows(&lake, fx.valid.len(), Duration::from_secs(60), &[&ingest]);
    assert!(ingest.terminate().success());
    harness::assert_exactly_once(&lake, &fx);
    harness::assert_dead_letters(b, &topic, &fx, fx.invalid.len());
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[test]
fn crash_after_files_before_commit_rewrites_the_same_files() {
    crash_at("after_file_before_commit", 3);
}

#[test]
fn crash_mid_file_leaves_nothing_visible() {
    crash_at("mid_file", 2);
}

#[test]
fn crash_between_the_days_of_a_range_completes_it_on_replay() {
    crash_at("between_files", 2);
}

#[test]
fn sigkill_at_random_moments_loses_and_doubles_nothing() {
    let b = with_broker!();
    let topic = b.topic("sigkill", 3);
    let fx = harness::fixture("sigkill", 30_000, 97);
    harness::produce(b, &topic, &fx.lines);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // A fixed seed: the kill moments differ between runs only by scheduling noise.
    let mut seed: u64 = 0x5eed_cafe;
    let start = || {
        IngestProc::start(
            b,
            &topic,
            "g-sigkill",
            &lake,
            IngestOpts {
                roll_rows: 500,
                fault: None,
                ..IngestOpts::default()
            },
        )
    };
    for round in 0..3 {
        let ingest = start();
        // Kill once it is reading: after its first commit of this round, plus a random delay.
        let start_rows = harness::lake_rows(&lake).0.len();
        harness::wait_until(Duration::from_secs(20), || {
            harness::lake_rows(&lake).0.len() > start_rows
        });
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(20 + (seed >> 33) % 300));
        eprintln!("round {round}: SIGKILL");
        ingest.kill();
    }
    let ingest = start();
    harness::wait_for_rows(&lake, fx.valid.len(), Duration::from_secs(90), &[&ingest]);
    assert!(ingest.terminate().success());
    harness::assert_exactly_once(&lake, &fx);
    harness::assert_dead_letters(b, &topic, &fx, fx.invalid.len());
}
