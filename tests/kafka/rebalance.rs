use std::time::Duration;

use super::harness::{self, with_broker, IngestOpts, IngestProc};

#[test]
fn a_second_consumer_joining_mid_stream_loses_and_doubles_nothing() {
    let b = with_broker!();
    let topic = b.topic("rebalance", 4);
    let fx = harness::fixture("rebalance", 12_000, 101);
    let (head, tail) = fx.lines.split_at(6000);
    harness::produce(b, &topic, head);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");

    let start = || {
        IngestProc::start(
            b,
            &topic,
            "g-rebalance",
            &lake,
            IngestOpts {
                roll_rows: 300,
                fault: None,
                ..IngestOpts::default()
            },
        )
    };
    let a = start();
    assert!(
        harness::wait_until(Duration::from_secs(30), || a
            .metric("creditguard_files_committed_total")
            > 0.0),
        "{}",
        a.log_text()
    );
    let second = start();
    harness::produce(b, &topic, tail);
    // The newcomer gets partitions, the first member gives some up.
    assert!(
        harness::wait_until(Duration::from_secs(30), || second
            .metric("creditguard_assigned_partitions")
            > 0.0),
        "second member never got a partition:\n{}",
        second.log_text()
    );
    harness::wait_for_rows(
        &lake,
        fx.valid.len(),
        Duration::from_secs(60),
        &[&a, &second],
    );
    assert!(a.metric("creditguard_rebalances_total") >= 2.0);
    assert!(a.terminate().success());
    assert!(second.terminate().success());
    harness::assert_exactly_once(&lake, &fx);
    harness::assert_dead_letters(b, &topic, &fx, fx.invalid.len());
}

/// Two ingest members of one group writing one lake on S3 (each with its own local cache, as on
/// two machines): one is killed mid-stream, the other takes its partitions and replays from the
/// committed offsets. Every valid event is in the bucket exactly once: a replayed range is
/// rewritten under the same object name.
#[test]
fn two_members_on_one_s3_lake_one_killed_lose_and_double_nothing() {
    let Some(server) = creditguard_lake::testing::seaweedfs() else {
        return;
    };
    let b = with_broker!();
    let topic = b.topic("s3-failover", 4);
    let fx = harness::fixture("s3-failover", 8_000, 103);
    let (head, tail) = fx.lines.split_at(4000);
    harness::produce(b, &topic, head);
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let url = server.url("failover");
    let env = server.env();
    let (cache_a, cache_b) = (dir.path().join("cache-a"), dir.path().join("cache-b"));
    let start = |cache: &std::path::Path| {
        IngestProc::start(
            b,
            &topic,
            "g-s3-failover",
            &lake,
            IngestOpts {
                roll_rows: 300,
                s3: Some((&url, &env, cache)),
                ..IngestOpts::default()
            },
        )
    };
    let a = start(&cache_a);
    let second = start(&cache_b);
    assert!(
        harness::wait_until(Duration::from_secs(60), || a
            .metric("creditguard_files_committed_total")
            > 0.0
            && second.metric("creditguard_assigned_partitions") > 0.0),
        "both members should hold partitions and write:\n{}\n{}",
        a.log_text(),
        second.log_text()
    );
    a.kill();
    harness::produce(b, &topic, tail);
    // Read from the bucket alone, with a cache of its own.
    let rows = || {
        let cache = tempfile::tempdir().unwrap();
        let remote =
            creditguard_lake::Lake::open_with(&url, cache.path(), &server.options()).unwrap();
        harness::rows_of(&remote).0.len()
    };
    assert!(
        harness::wait_until(Duration::from_secs(90), || rows() >= fx.valid.len()),
        "the bucket did not reach {} rows (has {}):\n{}",
        fx.valid.len(),
        rows(),
        second.log_text()
    );
    assert!(second.terminate().success());
    let cache = tempfile::tempdir().unwrap();
    let remote = creditguard_lake::Lake::open_with(&url, cache.path(), &server.options()).unwrap();
    harness::assert_exactly_once_in(&remote, &fx);
}
