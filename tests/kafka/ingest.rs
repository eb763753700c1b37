use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::harness::{self, with_broker, IngestOpts, IngestProc};

#[test]
fn every_valid_event_lands_once_and_invalid_ones_go_to_the_dlq_with_their_bytes() {
    let b = with_broker!();
    let topic = b.topic("e2e", 3);
    let fx = harness::fixture("e2e", 3000, 40);
    harness::produce(b, &topic, &fx.lines);
    // One more poison message with a header of its own, which the DLQ copy must keep.
    let poison = b"\xff\xfe not even utf-8".to_vec();
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .create()
        .unwrap();
    harness::block_on(
        producer.send(
            FutureRecord::to(&topic).key("u1").payload(&poison).headers(
                OwnedHeaders::new().insert(Header {
                    key: "trace_id",
                    value: Some("abc"),
                }),
            ),
            Duration::from_secs(10),
        ),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let ingest = IngestProc::start(
        b,
        &topic,
        "g-e2e",
        &lake,
        IngestOpts {
            roll_rows: 700,
            fault: None,
            malloc_stats: true,
            ..IngestOpts::default()
        },
    );
    harness::wait_for_rows(&lake, fx.valid.len(), Duration::from_secs(60), &[&ingest]);
    let dead = fx.invalid.len() as f64 + 1.0;
    assert!(
        harness::wait_until(Duration::from_secs(20), || ingest
            .metric_sum("creditguard_dead_letters_total")
            == dead),
        "dead letters confirmed: {}",
        ingest.metric_sum("creditguard_dead_letters_total")
    );

    // Operations endpoint while running.
    let (code, _) = creditguard_kafka::http::get(&ingest.metrics_addr, "/readyz").unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        creditguard_kafka::http::get(&ingest.metrics_addr, "/healthz")
            .unwrap()
            .0,
        200
    );
    let m = ingest.metrics().unwrap();
    assert_eq!(
        creditguard_kafka::metrics::sample(&m, "creditguard_events_in_total", ""),
        Some(fx.valid.len() as f64)
    );
    for p in 0..3 {
        let lag = creditguard_kafka::metrics::sample(
            &m,
            "creditguard_consumer_lag_messages",
            &format!("topic=\"{topic}\",partition=\"{p}\""),
        );
        assert!(lag.is_some(), "lag of partition {p} in {m}");
    }

    let log_at_exit = ingest.log.clone();
    let status = ingest.terminate();
    assert!(status.success(), "exit status {status:?}");
    harness::assert_exactly_once(&lake, &fx);
    // The service hands freed memory back (the batch jobs' allocator setting keeps it).
    let stats = std::fs::read_to_string(&log_at_exit).unwrap();
    let decay = creditguard::alloc::SERVICE_DIRTY_DECAY_MS;
    for (kind, value) in [("dirty", decay), ("muzzy", 0)] {
        let (opt, now) = (
            format!("opt.{kind}_decay_ms:"),
            format!("(arenas.{kind}_decay_ms: {value})"),
        );
        assert!(
            stats
                .lines()
                .any(|l| l.trim().starts_with(&opt) && l.contains(&now)),
            "{opt} ... {now} in the ingest's jemalloc statistics:\n{stats}"
        );
    }

    // Rows say where they came from, file names say which offsets they hold.
    let (rows, names) = harness::lake_rows(&lake);
    for r in &rows {
        let (t, p) = r.src.rsplit_once('/').unwrap();
        assert_eq!(t, topic);
        let name_prefix = format!("part-{topic}-{p}-");
        assert!(
            names.iter().any(|n| n.starts_with(&name_prefix)),
            "{name_prefix} in {names:?}"
        );
    }
    for n in &names {
        let rest = n
            .strip_prefix(&format!("part-{topic}-"))
            .unwrap()
            .strip_suffix(".parquet")
            .unwrap();
        let nums: Vec<i64> = rest.split('-').map(|x| x.parse().unwrap()).collect();
        assert_eq!(nums.len(), 3, "{n}");
        assert!(nums[1] <= nums[2], "{n}");
    }

    let mut fx_with_poison = fx;
    fx_with_poison
        .invalid
        .insert(String::from_utf8_lossy(&poison).into_owned());
    let dlq = b.read_all(
        &format!("{topic}.dlq"),
        fx_with_poison.invalid.len(),
        Duration::from_secs(20),
    );
    let payloads: BTreeSet<Vec<u8>> = dlq.iter().map(|r| r.payload.clone()).collect();
    assert!(payloads.contains(&poison), "original bytes kept exactly");
    let mut expected: BTreeSet<Vec<u8>> = fx_with_poison
        .invalid
        .iter()
        .filter(|l| !l.contains('\u{fffd}'))
        .map(|l| l.as_bytes().to_vec())
        .collect();
    expected.insert(poison.clone());
    assert_eq!(payloads, expected);
    let p = dlq.iter().find(|r| r.payload == poison).unwrap();
    assert_eq!(p.header("trace_id"), Some("abc"));
    assert_eq!(p.header("error_kind"), Some("not_utf8"));
    assert_eq!(p.key.as_deref(), Some("u1"));
    assert_eq!(p.header("source_topic"), Some(topic.as_str()));
    for r in &dlq {
        assert!(r.header("error").is_some_and(|e| !e.is_empty()));
        assert!(r.header("source_offset").unwrap().parse::<i64>().is_ok());
    }
}

#[test]
fn a_restart_resumes_from_committed_offsets_without_rereading() {
    let b = with_broker!();
    let topic = b.topic("resume", 2);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let first = harness::fixture("resume-a", 800, 0);
    harness::produce(b, &topic, &first.lines);
    let ingest = IngestProc::start(b, &topic, "g-resume", &lake, IngestOpts::default());
    harness::wait_for_rows(
        &lake,
        first.valid.len(),
        Duration::from_secs(60),
        &[&ingest],
    );
    assert!(ingest.terminate().success());
    let (_, files_before) = harness::lake_rows(&lake);

    let second = harness::fixture("resume-b", 500, 0);
    harness::produce(b, &topic, &second.lines);
    let ingest = IngestProc::start(b, &topic, "g-resume", &lake, IngestOpts::default());
    let all = harness::Fixture {
        lines: vec![],
        valid: first.valid.union(&second.valid).cloned().collect(),
        invalid: BTreeSet::new(),
    };
    harness::wait_for_rows(&lake, all.valid.len(), Duration::from_secs(60), &[&ingest]);
    // Only the new offsets were read the second time.
    assert!(harness::wait_until(Duration::from_secs(10), || ingest
        .metric("creditguard_kafka_messages_total")
        >= 500.0));
    assert_eq!(ingest.metric("creditguard_kafka_messages_total"), 500.0);
    assert!(ingest.terminate().success());
    harness::assert_exactly_once(&lake, &all);
    let (_, files_after) = harness::lake_rows(&lake);
    assert!(files_before.iter().all(|f| files_after.contains(f)));
}

/// With a key, the service stores pseudonyms, the same ones file ingest makes with that key.
#[test]
fn with_a_key_the_service_stores_pseudonyms() {
    let b = with_broker!();
    let topic = b.topic("pseudo", 2);
    let fx = harness::fixture("pseudo", 600, 0);
    harness::produce(b, &topic, &fx.lines);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pseudonym.key");
    std::fs::write(&key, creditguard_contract::privacy::format_key(&[9u8; 32])).unwrap();
    let lake = dir.path().join("lake");
    let ingest = IngestProc::start(
        b,
        &topic,
        "g-pseudo",
        &lake,
        IngestOpts {
            key_file: Some(&key),
            ..IngestOpts::default()
        },
    );
    harness::wait_for_rows(&lake, fx.valid.len(), Duration::from_secs(60), &[&ingest]);
    assert!(ingest.terminate().success());
    let p = creditguard_contract::privacy::Pseudonymiser::new(&[9u8; 32]);
    let expected: BTreeSet<String> = (0..37).map(|u| p.user(&format!("u{u}"))).collect();
    let users = crate::privacy::strings(&crate::privacy::table(&lake.join("events")), "user_id");
    assert_eq!(users.len(), fx.valid.len());
    let found: BTreeSet<String> = users.into_iter().collect();
    assert_eq!(found, expected);
}

#[test]
fn a_10_mb_message_is_dead_lettered_and_the_messages_after_it_are_consumed() {
    let b = with_broker!();
    // One partition: the oversized messages sit between the valid ones.
    let topic = b.topic("big", 1);
    let before = harness::fixture("big-a", 100, 0);
    let after = harness::fixture("big-b", 100, 0);
    harness::produce(b, &topic, &before.lines);
    let head = r#"{"event_id":"huge","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"u1","session_id":"s1","pad":""#;
    let mut huge = head.as_bytes().to_vec();
    huge.resize(10 << 20, b'x');
    huge.extend_from_slice(b"\"}");
    // Under the size cap but over what a dead-letter topic takes by default.
    let mut invalid = b"not json ".to_vec();
    invalid.resize(1 << 20, b'y');
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("message.max.bytes", "16000000")
        .create()
        .unwrap();
    for payload in [&huge, &invalid] {
        harness::block_on(
            producer.send(
                FutureRecord::<str, [u8]>::to(&topic)
                    .key("u1")
                    .payload(payload),
                Duration::from_secs(30),
            ),
        )
        .unwrap_or_else(|(e, _)| panic!("producing {} bytes: {e}", payload.len()));
    }
    harness::produce(b, &topic, &after.lines);

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let ingest = IngestProc::start(b, &topic, "g-big", &lake, IngestOpts::default());
    let all = harness::Fixture {
        lines: vec![],
        valid: before.valid.union(&after.valid).cloned().collect(),
        invalid: BTreeSet::new(),
    };
    harness::wait_for_rows(&lake, all.valid.len(), Duration::from_secs(60), &[&ingest]);
    assert!(
        harness::wait_until(Duration::from_secs(20), || ingest
            .metric_sum("creditguard_dead_letters_total")
            == 2.0),
        "dead letters confirmed: {}\n{}",
        ingest.metric_sum("creditguard_dead_letters_total"),
        ingest.log_text()
    );
    assert!(ingest.terminate().success());
    harness::assert_exactly_once(&lake, &all);

    let dlq = b.read_all(&format!("{topic}.dlq"), 2, Duration::from_secs(20));
    assert_eq!(dlq.len(), 2, "{dlq:?}");
    let (big, bad) = (&dlq[0], &dlq[1]);
    assert_eq!(big.header("error_kind"), Some("too_large"));
    assert!(
        big.header("error")
            .unwrap()
            .contains(&format!("{} bytes", huge.len())),
        "{:?}",
        big.header("error")
    );
    assert_eq!(big.payload, huge[..64 << 10]);
    assert_eq!(bad.header("error_kind"), Some("not_json"));
    assert_eq!(bad.payload, invalid[..64 << 10]);
    for (r, len) in [(big, huge.len()), (bad, invalid.len())] {
        assert_eq!(r.header("payload_truncated"), Some("true"));
        assert_eq!(r.header("payload_bytes"), Some(len.to_string().as_str()));
        assert_eq!(r.key.as_deref(), Some("u1"));
    }
    assert_eq!(big.header("source_offset"), Some("100"));
    assert_eq!(bad.header("source_offset"), Some("101"));
}

/// Oversized keys and headers: a dead letter keeps the first 4 KiB of the key and 64 KiB of the
/// headers, and says what was cut and how long it was, so it stays under the 1 MB a topic takes
/// by default; a valid event with a huge key and header is stored (neither is held); the
/// service keeps consuming.
#[test]
fn huge_keys_and_headers_are_cut_in_dead_letters() {
    let b = with_broker!();
    let topic = b.topic("bigkey", 1);
    let before = harness::fixture("bigkey-a", 50, 0);
    let after = harness::fixture("bigkey-b", 50, 0);
    harness::produce(b, &topic, &before.lines);
    let huge_key = "k".repeat(3 << 20);
    let huge_value = vec![b'h'; 3 << 20];
    let valid = r#"{"event_id":"bigkey-valid","type":"login","ts":"2026-03-02T09:00:00Z","user_id":"u1","session_id":"s1"}"#;
    let many = (0..200).fold(OwnedHeaders::new(), |h, i| {
        h.insert(Header {
            key: &format!("h{i:03}"),
            value: Some(&[b'v'; 1000][..]),
        })
    });
    let sends: [(&str, &[u8], OwnedHeaders); 4] = [
        // A huge key on an invalid message.
        (&huge_key, b"not json", OwnedHeaders::new()),
        // A huge header value among small ones, and a header with a huge name.
        (
            "u1",
            b"not json either",
            OwnedHeaders::new()
                .insert(Header {
                    key: "trace",
                    value: Some("t-1"),
                })
                .insert(Header {
                    key: "blob",
                    value: Some(&huge_value[..]),
                })
                .insert(Header {
                    key: &"n".repeat(1000),
                    value: Some("x"),
                }),
        ),
        // 200 headers of 1 KB: the first ones kept whole, the rest left out.
        ("u1", b"{}", many),
        // A valid event with a huge key and header: stored, neither is kept.
        (
            &huge_key,
            valid.as_bytes(),
            OwnedHeaders::new().insert(Header {
                key: "blob",
                value: Some(&huge_value[..]),
            }),
        ),
    ];
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &b.addr)
        .set("message.max.bytes", "16000000")
        .create()
        .unwrap();
    for (key, payload, headers) in sends {
        harness::block_on(
            producer.send(
                FutureRecord::<str, [u8]>::to(&topic)
                    .key(key)
                    .payload(payload)
                    .headers(headers),
                Duration::from_secs(30),
            ),
        )
        .unwrap_or_else(|(e, _)| panic!("producing: {e}"));
    }
    harness::produce(b, &topic, &after.lines);

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let ingest = IngestProc::start(b, &topic, "g-bigkey", &lake, IngestOpts::default());
    let mut valid_ids = before
        .valid
        .union(&after.valid)
        .cloned()
        .collect::<BTreeSet<_>>();
    valid_ids.insert("bigkey-valid".to_string());
    harness::wait_for_rows(&lake, valid_ids.len(), Duration::from_secs(60), &[&ingest]);
    assert!(
        harness::wait_until(Duration::from_secs(20), || ingest
            .metric_sum("creditguard_dead_letters_total")
            == 3.0),
        "{}",
        ingest.log_text()
    );
    assert!(ingest.terminate().success());
    let all = harness::Fixture {
        lines: vec![],
        valid: valid_ids,
        invalid: BTreeSet::new(),
    };
    harness::assert_exactly_once(&lake, &all);

    let dlq = b.read_all(&format!("{topic}.dlq"), 3, Duration::from_secs(20));
    assert_eq!(dlq.len(), 3, "{dlq:?}");
    let (k, h, n) = (&dlq[0], &dlq[1], &dlq[2]);
    assert_eq!(k.key.as_deref(), Some(&huge_key[..4096]));
    assert_eq!(k.header("key_truncated"), Some("true"));
    assert_eq!(k.header("key_bytes"), Some("3145728"));
    assert_eq!(k.payload, b"not json");
    assert_eq!(k.header("headers_truncated"), None);

    assert_eq!(h.key.as_deref(), Some("u1"));
    assert_eq!(h.header("key_truncated"), None);
    assert_eq!(h.header("trace"), Some("t-1"));
    let blob = h.header("blob").unwrap();
    assert_eq!(blob.len(), (64 << 10) - "trace".len() - 3 - "blob".len());
    assert!(blob.bytes().all(|c| c == b'h'));
    assert_eq!(h.header("headers_truncated"), Some("true"));
    let total = 5 + 3 + 4 + (3 << 20) + 1000 + 1;
    assert_eq!(h.header("headers_bytes"), Some(total.to_string().as_str()));
    assert_eq!(h.header("headers_count"), Some("3"));
    assert_eq!(h.header("error_kind"), Some("not_json"));

    // 200 headers of 4 + 1000 bytes: 65 fit in 64 KiB whole, the 66th is cut, the rest left out.
    let kept: Vec<&(String, String)> = n
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with('h') && k.len() == 4)
        .collect();
    assert_eq!(
        kept.len(),
        66,
        "{:?}",
        kept.iter().map(|(k, v)| (k, v.len())).collect::<Vec<_>>()
    );
    assert_eq!(kept[65].1.len(), (64 << 10) - 65 * 1004 - 4);
    assert_eq!(n.header("headers_count"), Some("200"));
    assert_eq!(n.header("headers_bytes"), Some("200800"));
    for r in &dlq {
        let size = r.payload.len()
            + r.key.as_ref().map_or(0, String::len)
            + r.headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        assert!(size < 1 << 20, "{size}");
    }
}
