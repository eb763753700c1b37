//! The importers over the real public logs in `../shared/datasets/` (read in place, never
//! copied): every produced line validates against the contract, the counts are non-zero, every
//! record is accounted for, and a second import gives the same bytes. Skips, saying so, when
//! the datasets are absent.

use std::path::{Path, PathBuf};

use creditguard_import::{import, Format, Import, Options};

fn datasets() -> Option<PathBuf> {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/datasets"
    ));
    if root.is_dir() {
        Some(root.to_path_buf())
    } else {
        println!(
            "SKIPPED: {} is absent; the real-log import checks did not run",
            root.display()
        );
        None
    }
}

fn dataset(name: &str) -> Option<PathBuf> {
    let d = datasets()?.join(name);
    if d.is_dir() {
        Some(d)
    } else {
        println!("SKIPPED: {} is absent", d.display());
        None
    }
}

/// The checks every real import must pass; returns the import for dataset-specific ones.
fn check(format: Format, opts: Options) -> Import {
    let out = import(format, &opts).unwrap_or_else(|e| panic!("{}: {e}", format.name()));
    println!("{} {}:\n{}", format.name(), opts.input.display(), out.stats);
    assert!(!out.lines.is_empty(), "no events");
    assert!(!out.stats.users.is_empty(), "no learners");
    for l in &out.lines {
        if let Err(e) = creditguard_contract::parse_event(l.as_bytes()) {
            panic!("contract rejects {l}: {e}");
        }
    }
    let rejected: u64 = out
        .stats
        .skipped
        .iter()
        .filter(|(k, _)| k.starts_with("contract rejected"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(
        rejected, 0,
        "mapped events the contract rejects: {}",
        out.stats
    );
    let folded: u64 = out.stats.folded.values().sum();
    assert_eq!(
        out.stats.records,
        out.stats.total_events() - out.stats.total_added() + out.stats.total_skipped() + folded,
        "records not accounted for"
    );
    let mut ids: Vec<String> = out
        .lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["event_id"].as_str().unwrap().to_string()
        })
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "event ids are not unique");
    let again = import(format, &opts).unwrap();
    assert_eq!(again.lines, out.lines, "a second import differs");
    assert_eq!(again.catalog, out.catalog);
    assert!(!out.catalog.is_empty());
    out
}

#[test]
fn ednet_kt4_sample_imports() {
    let Some(d) = dataset("ednet_kt4_sample") else {
        return;
    };
    let out = check(
        Format::EdnetKt4,
        Options {
            input: d,
            contents: None,
        },
    );
    // 9 users in the sample; the play/pause of videos and audio and the quizzes all map.
    assert_eq!(out.stats.users.len(), 9);
    for ty in ["video_play", "video_pause", "quiz_submit", "course_enter"] {
        assert!(
            out.stats.events.get(ty).copied().unwrap_or(0) > 0,
            "no {ty}"
        );
    }
}

#[test]
fn ednet_kt1_imports_merged_and_raw() {
    let (Some(kt1), Some(kt4)) = (dataset("ednet_kt1_premonish"), dataset("ednet_kt4_sample"))
    else {
        return;
    };
    let out = check(
        Format::EdnetKt1,
        Options {
            input: kt1,
            contents: Some(kt4.join("contents")),
        },
    );
    // 11 merged users plus the raw u1.
    assert_eq!(out.stats.users.len(), 12);
    assert!(out.stats.events["quiz_submit"] > 100_000);
}

#[test]
fn openedx_tracking_logs_import() {
    let Some(d) = dataset("openedx_analytics_pipeline_tracking_logs") else {
        return;
    };
    let out = check(
        Format::OpenEdx,
        Options {
            input: d,
            contents: None,
        },
    );
    for ty in ["video_play", "video_pause", "quiz_submit"] {
        assert!(
            out.stats.events.get(ty).copied().unwrap_or(0) > 0,
            "no {ty}"
        );
    }
    // The deliberately malformed lines are counted, not dropped.
    assert!(out.stats.skipped["openedx: not valid JSON"] > 0);
}

#[test]
fn openedx_event_routing_fixtures_import() {
    let Some(d) = dataset("openedx_event_routing_fixtures") else {
        return;
    };
    let out = check(
        Format::OpenEdx,
        Options {
            input: d.join("edx_events_current"),
            contents: None,
        },
    );
    for ty in ["video_play", "video_seek", "course_complete"] {
        assert!(
            out.stats.events.get(ty).copied().unwrap_or(0) > 0,
            "no {ty}"
        );
    }
}

#[test]
fn uci_epm_imports() {
    let Some(d) = dataset("uci_epm_deeds") else {
        return;
    };
    let out = check(
        Format::UciEpm,
        Options {
            input: d,
            contents: None,
        },
    );
    // 230,318 records (the official count) of 115 students; each record is a heartbeat with
    // the mouse and keyboard counts.
    assert_eq!(out.stats.records, 230_318);
    assert_eq!(out.stats.users.len(), 115);
    let with_input = out
        .lines
        .iter()
        .filter(|l| l.contains("\"input_events\":") && !l.contains("\"input_events\":0"))
        .count();
    assert!(with_input > 100_000, "{with_input} heartbeats with input");
}
