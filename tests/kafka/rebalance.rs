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
