//! The whole Kafka path against the file path, with the real binary at every step:
//! `creditguard generate --kafka` (also writing the same lines to a file) → tansu →
//! `creditguard ingest` → lake A → `creditguard run` (jobs, score, results topic);
//! and `creditguard run` (ingest, jobs, score) of the file → lake B. Both must agree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use arrow_array::{Array, BinaryArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::harness::{self, with_broker, IngestOpts, IngestProc};
use crate::util::{creditguard, run};

/// A result record with what legitimately differs between the two runs removed, as sorted-key
/// JSON. Only `run_id` differs: it is derived from the pipeline file's text, and the two
/// pipelines differ (source, lake, stages, `[kafka]`). Every id (`flag_id`, `credit_id`,
/// `case_id`), every measured value, explanation, timestamp and list must be equal.
fn normalized(json: &[u8]) -> String {
    let mut v: serde_json::Value = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("not a JSON record ({e}): {}", String::from_utf8_lossy(json)));
    let obj = v.as_object_mut().expect("a result record is a JSON object");
    assert!(
        obj.remove("run_id")
            .is_some_and(|r| r.as_str().is_some_and(|s| !s.is_empty())),
        "run_id missing"
    );
    // The thresholds' name is the pipeline's, which differs between the two runs compared; their
    // version (the content) must not.
    obj.remove("rules_name");
    // serde_json's map is ordered by key (no `preserve_order`), so equal records print equally.
    let sorted: BTreeMap<String, serde_json::Value> = obj.clone().into_iter().collect();
    serde_json::to_string(&sorted).unwrap()
}

/// Every record of the file-mode results stream (`results/stream/dt=*/part-*.ndjson`).
fn stream_records(lake: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let dir = lake.join("results/stream");
    let mut days: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    days.sort();
    for day in days {
        for f in std::fs::read_dir(&day).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "ndjson") {
                for line in std::fs::read(&p)
                    .unwrap()
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                {
                    out.push(normalized(line));
                }
            }
        }
    }
    out.sort();
    out
}

/// The raw bytes of every dead letter the file ingest kept (`dead_letters/dt=*/…parquet`).
fn file_dead_letters(lake: &Path) -> BTreeSet<Vec<u8>> {
    let mut out = BTreeSet::new();
    let mut stack = vec![lake.join("dead_letters")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                let reader =
                    ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                        .unwrap()
                        .build()
                        .unwrap();
                for batch in reader {
                    let batch = batch.unwrap();
                    let raw = batch
                        .column_by_name("raw")
                        .unwrap()
                        .as_any()
                        .downcast_ref::<BinaryArray>()
                        .unwrap()
                        .clone();
                    for i in 0..raw.len() {
                        out.insert(raw.value(i).to_vec());
                    }
                }
            }
        }
    }
    out
}

fn event_ids(lake: &Path) -> BTreeSet<String> {
    harness::lake_rows(lake)
        .0
        .into_iter()
        .map(|r| r.event_id)
        .collect()
}

#[test]
fn generate_to_kafka_ingest_jobs_score_results_topic_equal_a_file_mode_run() {
    let b = with_broker!();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    // Created by `generate --kafka` itself (with its `.dlq`), not by the harness.
    let topic = format!("t-gen-{}", std::process::id());
    let results = b.topic("results-e2e", 2);
    let telemetry = dir.join("telemetry.ndjson");

    // 1. generate: the same lines to a file and to the topic.
    let out = run(creditguard()
        .args([
            "generate",
            "--users",
            "60",
            "--days",
            "6",
            "--seed",
            "11",
            "--cheat-share",
            "0.08",
            "--fault-rate",
            "0.01",
        ])
        .arg("--out")
        .arg(&telemetry)
        .args([
            "--kafka",
            "--brokers",
            &b.addr,
            "--topic",
            &topic,
            "--partitions",
            "3",
        ]));
    assert!(out.status.success(), "generate failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("to topic `{topic}`")), "{stderr}");
    let text = std::fs::read(&telemetry).unwrap();
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let labels = creditguard_synth::Labels::read(dir.join("telemetry.labels.json")).unwrap();
    assert_eq!(labels.summary.lines as usize, lines.len());
    assert!(
        labels.summary.invalid_lines > 0 && labels.summary.duplicates > 0,
        "{:?}",
        labels.summary
    );
    let catalog = dir.join("telemetry.catalog.csv");
    assert!(catalog.is_file());
    // The lines the contract rejects (the same validator for both paths; the generator's own
    // count must agree with it).
    let invalid: BTreeSet<Vec<u8>> = lines
        .iter()
        .filter(|l| creditguard_contract::parse_event(l).is_err())
        .map(|l| l.to_vec())
        .collect();
    assert_eq!(invalid.len() as u64, labels.summary.invalid_lines);

    // 2. file mode: ingest, jobs, score of the file into lake B.
    let lake_b = dir.join("lake-b");
    let pipeline_b = dir.join("file.toml");
    std::fs::write(
        &pipeline_b,
        format!(
            "[pipeline]\nname = \"e2e-file\"\nstages = [\"ingest\", \"jobs\", \"score\"]\n\
             [source]\nkind = \"ndjson\"\npath = {:?}\n[lake]\nroot = {:?}\n[privacy]\npseudonymise = \"off\"\n[catalog]\npath = {:?}\n",
            telemetry, lake_b, catalog
        ),
    )
    .unwrap();
    let out = run(creditguard().arg("run").arg(&pipeline_b));
    assert!(out.status.success(), "file-mode run failed");

    // 3. Kafka mode: the ingest service drains the topic into lake A.
    let lake_a = dir.join("lake-a");
    let ingest = IngestProc::start(
        b,
        &topic,
        "g-e2e-gen",
        &lake_a,
        IngestOpts {
            roll_rows: 4000,
            fault: None,
            ..IngestOpts::default()
        },
    );
    let total = lines.len() as f64;
    let drained = harness::wait_until(Duration::from_secs(120), || {
        ingest.metric_sum("creditguard_events_committed_total")
            + ingest.metric_sum("creditguard_dead_letters_total")
            >= total
    });
    if !drained {
        panic!(
            "ingest did not drain {total} messages in 120 s (committed {}, dead letters {}); log:\n{}",
            ingest.metric_sum("creditguard_events_committed_total"),
            ingest.metric_sum("creditguard_dead_letters_total"),
            ingest.log_text()
        );
    }
    let status = ingest.terminate();
    assert!(status.success(), "ingest exit status {status:?}");

    // 4. jobs and score on lake A, results to the topic.
    let pipeline_a = dir.join("kafka.toml");
    std::fs::write(
        &pipeline_a,
        format!(
            "[pipeline]\nname = \"e2e-kafka\"\nstages = [\"jobs\", \"score\"]\n\
             [source]\nkind = \"kafka\"\n[lake]\nroot = {:?}\n[catalog]\npath = {:?}\n\
             [kafka]\nbrokers = \"{}\"\ntopic = \"{topic}\"\ngroup = \"g-e2e-gen\"\nresults_topic = \"{results}\"\n",
            lake_a, catalog, b.addr
        ),
    )
    .unwrap();
    let out = run(creditguard().arg("run").arg(&pipeline_a));
    assert!(out.status.success(), "Kafka-mode run failed");

    // Lakes: the same valid events (lake A may hold a duplicate delivery twice, jobs de-duplicate).
    let (ids_a, ids_b) = (event_ids(&lake_a), event_ids(&lake_b));
    assert_eq!(ids_a.len() as u64, labels.summary.events);
    assert!(
        ids_a == ids_b,
        "event ids differ: only in A {:?}, only in B {:?}",
        ids_a.difference(&ids_b).take(5).collect::<Vec<_>>(),
        ids_b.difference(&ids_a).take(5).collect::<Vec<_>>()
    );

    // The results topic holds exactly the file-mode results stream.
    let expected = stream_records(&lake_b);
    let kinds: BTreeSet<String> = expected
        .iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["case", "credit", "flag", "progress"].map(String::from)),
        "the input should give every kind of record"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("{} records", expected.len()))
            && summary.contains(&format!("`{results}`")),
        "{summary}"
    );
    // Read until the expected count, then a little longer: a surplus (a record produced twice)
    // must show up as a failure too.
    let got = b.read_all(&results, expected.len() + 1, Duration::from_secs(20));
    for r in &got {
        assert_eq!(r.header("schema_version"), Some("1"), "{r:?}");
        let v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
        assert_eq!(r.key.as_deref(), v["user_id"].as_str(), "key = user_id");
    }
    let mut got: Vec<String> = got.iter().map(|r| normalized(&r.payload)).collect();
    got.sort();
    assert_eq!(got.len(), expected.len(), "records on the results topic");
    assert!(
        got == expected,
        "results topic differs from the file-mode stream; first difference: {:?}",
        got.iter().zip(&expected).find(|(a, b)| a != b)
    );

    // `creditguard score` on its own (the scheduled batch job) sends to the results topic too.
    let results2 = b.topic("e2e-results-score", 3);
    let pipeline_score = dir.join("score.toml");
    std::fs::write(
        &pipeline_score,
        std::fs::read_to_string(&pipeline_a).unwrap().replace(
            &format!("results_topic = \"{results}\""),
            &format!("results_topic = \"{results2}\""),
        ),
    )
    .unwrap();
    let out = run(creditguard()
        .arg("score")
        .arg("--pipeline")
        .arg(&pipeline_score));
    assert!(out.status.success(), "creditguard score failed");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains(&format!("{} records", expected.len()))
            && summary.contains(&format!("`{results2}`")),
        "{summary}"
    );
    let mut got2: Vec<String> = b
        .read_all(&results2, expected.len() + 1, Duration::from_secs(20))
        .iter()
        .map(|r| normalized(&r.payload))
        .collect();
    got2.sort();
    assert!(
        got2 == expected,
        "`creditguard score` sent {} records, expected the {} of the stream",
        got2.len(),
        expected.len()
    );

    // Invalid lines: on the DLQ (original bytes) and in lake B's dead letters, the same set.
    let dlq = b.read_until(&format!("{topic}.dlq"), Duration::from_secs(20), |out| {
        out.iter()
            .map(|r| &r.payload)
            .collect::<BTreeSet<_>>()
            .len()
            >= invalid.len()
    });
    let dlq: BTreeSet<Vec<u8>> = dlq.into_iter().map(|r| r.payload).collect();
    assert!(
        dlq == invalid,
        "DLQ has {} distinct payloads, expected the {} invalid lines",
        dlq.len(),
        invalid.len()
    );
    assert_eq!(
        file_dead_letters(&lake_b),
        invalid,
        "file-mode dead letters"
    );
    eprintln!(
        "e2e: {} lines, {} distinct valid events, {} invalid; {} result records ({:?}) equal on both paths",
        lines.len(),
        ids_a.len(),
        invalid.len(),
        expected.len(),
        kinds
    );
}

#[test]
fn a_results_topic_that_does_not_exist_fails_the_run_naming_it() {
    let b = with_broker!();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let telemetry = dir.join("t.ndjson");
    let out = run(creditguard()
        .args([
            "generate",
            "--users",
            "12",
            "--days",
            "5",
            "--cheat-share",
            "0.05",
        ])
        .arg("--out")
        .arg(&telemetry));
    assert!(out.status.success());
    let missing = format!("no-such-results-{}", std::process::id());
    let pipeline = dir.join("p.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[pipeline]\nname = \"missing-results\"\nstages = [\"ingest\", \"jobs\", \"score\"]\n\
             [source]\nkind = \"ndjson\"\npath = {:?}\n[lake]\nroot = {:?}\n[privacy]\npseudonymise = \"off\"\n[catalog]\npath = {:?}\n\
             [kafka]\nbrokers = \"{}\"\nresults_topic = \"{missing}\"\n",
            telemetry,
            dir.join("lake"),
            dir.join("t.catalog.csv"),
            b.addr
        ),
    )
    .unwrap();
    let out = run(creditguard().arg("run").arg(&pipeline));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed delivery is a failure (exit 1)"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("`{missing}`")),
        "the error names the topic: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("results topic"),
        "no success summary"
    );
}

#[test]
fn bad_generate_arguments_exit_2_with_every_problem() {
    let out = run(creditguard()
        .args([
            "generate",
            "--kafka",
            "--partitions",
            "0",
            "--start",
            "2026-13-01",
            "-X",
            "novalue",
        ])
        .env_remove("CREDITGUARD_KAFKA_BROKERS"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "--brokers",
        "--topic",
        "--partitions 0",
        "--start `2026-13-01`",
        "-X `novalue`",
    ] {
        assert!(stderr.contains(needle), "{needle} missing in {stderr}");
    }
    let out = run(creditguard().args(["generate", "--users", "5"]));
    assert_eq!(out.status.code(), Some(2), "no --out and no --kafka");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out is required"));
    let out = run(creditguard().args(["generate", "--out", "-", "--topic", "x"]));
    assert_eq!(out.status.code(), Some(2), "--topic without --kafka");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--topic `x` needs --kafka"));
}
