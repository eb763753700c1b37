//! A smoke run of the ingest service in-process against a local tansu: produce events (some
//! invalid), ingest until everything is committed, stop, check the lake and the DLQ counts.
//!
//! `cargo run --release -p creditguard-kafka --example smoke -- [events]` (tansu on PATH,
//! in `$HOME/.local/bin`, or `CREDITGUARD_TANSU`).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, StringArray};
use creditguard_kafka::{ClientSettings, Fault, IngestConfig, Metrics, RollPolicy};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let tansu = std::env::var("CREDITGUARD_TANSU").unwrap_or_else(|_| {
        format!(
            "{}/.local/bin/tansu",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let mut broker = Command::new(tansu)
        .args([
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu");
    while std::net::TcpStream::connect(&addr).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = ClientSettings::new(&addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(creditguard_kafka::create_topics(
        &client,
        &[("smoke", 3), ("smoke.dlq", 1)],
    ))
    .unwrap();
    let mut invalid = 0;
    let lines: Vec<String> = (0..n)
        .map(|i| {
            if i % 50 == 49 {
                invalid += 1;
                format!("broken {i}")
            } else {
                format!(
                    r#"{{"event_id":"e{i}","type":"heartbeat","ts":"2026-03-0{}T09:00:{:02}Z","user_id":"u{}","session_id":"s","course_id":"c","lesson_id":"l","position_s":1.5,"playing":true,"visible":true}}"#,
                    1 + i % 3,
                    i % 60,
                    i % 41
                )
            }
        })
        .collect();
    let valid = n - invalid;
    let t = Instant::now();
    creditguard_kafka::produce_ndjson_lines(&client, "smoke", &lines).unwrap();
    println!("produced {n} in {:?}", t.elapsed());

    let dir = tempfile::tempdir().unwrap();
    let lake = creditguard_lake::Lake::open(dir.path().to_str().unwrap()).unwrap();
    let cfg = IngestConfig {
        client,
        topic: "smoke".into(),
        group: "smoke".into(),
        dlq_topic: "smoke.dlq".into(),
        roll: RollPolicy {
            rows: 2000,
            bytes: 64 << 20,
            age: Duration::from_millis(500),
        },
    };
    let metrics = Arc::new(Metrics::new("smoke"));
    let stop = Arc::new(AtomicBool::new(false));
    let (m2, s2, l2) = (metrics.clone(), stop.clone(), lake.clone());
    let t = Instant::now();
    let th = std::thread::spawn(move || {
        creditguard_kafka::ingest::run(&cfg, &l2, m2, Arc::new(Fault::none()), &s2)
    });
    while (metrics.events_committed.load(Ordering::Relaxed) as usize) < valid
        || metrics.dead_letters_total() < invalid as u64
    {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "timeout:\n{}",
            metrics.render()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "ingested {valid} valid + {invalid} dead letters in {:?}",
        t.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    let summary = th.join().unwrap().unwrap();
    println!("{summary:?}");
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut files = 0;
    for day in lake.days("events").unwrap() {
        for p in lake.partition_files("events", day).unwrap() {
            files += 1;
            for b in ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                .unwrap()
                .build()
                .unwrap()
            {
                let b = b.unwrap();
                let ids = b
                    .column_by_name("event_id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                for i in 0..ids.len() {
                    *seen.entry(ids.value(i).to_string()).or_default() += 1;
                }
            }
        }
    }
    assert_eq!(seen.len(), valid, "distinct events in the lake");
    assert!(seen.values().all(|c| *c == 1), "an event twice");
    println!("lake: {valid} events exactly once in {files} files; OK");
    let _ = broker.kill();
}
