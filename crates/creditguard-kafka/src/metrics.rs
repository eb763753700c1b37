//! Prometheus metrics of the ingest service, in the text exposition format. Names follow
//! `creditguard_<what>_<unit>[_total]`; labels stay low-cardinality (topic, partition, kind).
//!
//! Lag is computed from what this process read and committed, never from broker high
//! watermarks (tansu reports wrong ones, and a watermark says nothing about what is durable).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds (seconds) of the latency histograms' buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A cumulative histogram of durations.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if s <= *le {
                self.counts[i].fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.counts[i].load(Relaxed)
            );
        }
        let n = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {n}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {n}");
    }
}

/// One assigned partition's positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionPositions {
    /// The offset after the last message read.
    pub read: i64,
    /// The committed offset (the next message to read after a restart).
    pub committed: i64,
}

/// Every metric of the ingest service. Counters are atomics updated per batch or per message.
pub struct Metrics {
    topic: String,
    started: Instant,
    /// Messages read from the topic.
    pub messages_in: AtomicU64,
    /// Payload bytes read.
    pub bytes_in: AtomicU64,
    /// Valid events read.
    pub events_in: AtomicU64,
    /// Valid events in committed files.
    pub events_committed: AtomicU64,
    /// Event files committed (one per event day of a range).
    pub files_committed: AtomicU64,
    /// Offset ranges committed.
    pub ranges_committed: AtomicU64,
    /// Dead letters confirmed on the dead-letter topic, by rejection kind.
    dead_letters: Mutex<BTreeMap<String, u64>>,
    /// Rebalances seen (assignments and revocations).
    pub rebalances: AtomicU64,
    /// Time from "offsets stored" to "commit acknowledged by the group coordinator".
    pub commit_latency: Histogram,
    /// Time to write and fsync a range's files.
    pub file_write: Histogram,
    partitions: Mutex<BTreeMap<i32, PartitionPositions>>,
    ready: AtomicBool,
    last_tick_ms: AtomicU64,
}

impl Metrics {
    /// Fresh metrics for `topic`.
    pub fn new(topic: &str) -> Self {
        Metrics {
            topic: topic.to_string(),
            started: Instant::now(),
            messages_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            events_in: AtomicU64::new(0),
            events_committed: AtomicU64::new(0),
            files_committed: AtomicU64::new(0),
            ranges_committed: AtomicU64::new(0),
            dead_letters: Mutex::new(BTreeMap::new()),
            rebalances: AtomicU64::new(0),
            commit_latency: Histogram::default(),
            file_write: Histogram::default(),
            partitions: Mutex::new(BTreeMap::new()),
            ready: AtomicBool::new(false),
            last_tick_ms: AtomicU64::new(0),
        }
    }

    /// Counts one dead letter of `kind`.
    pub fn dead_letter(&self, kind: &str, n: u64) {
        *self
            .dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind.to_string())
            .or_default() += n;
    }

    /// Dead letters confirmed so far, all kinds.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// Sets (or with `None` removes) a partition's positions.
    pub fn set_partition(&self, partition: i32, pos: Option<PartitionPositions>) {
        let mut parts = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        match pos {
            Some(p) => {
                parts.insert(partition, p);
            }
            None => {
                parts.remove(&partition);
            }
        }
    }

    /// The partitions this member owns, with their positions.
    pub fn partitions(&self) -> BTreeMap<i32, PartitionPositions> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Marks the service ready (joined its group) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Relaxed);
    }

    /// Whether `/readyz` says ready.
    pub fn ready(&self) -> bool {
        self.ready.load(Relaxed)
    }

    /// Called by the consumer loop on every turn: `/healthz` fails when the loop stops turning.
    pub fn tick(&self) {
        self.last_tick_ms
            .store(self.started.elapsed().as_millis() as u64, Relaxed);
    }

    /// Whether the consumer loop turned within `max_silence`.
    pub fn healthy(&self, max_silence: Duration) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_tick_ms.load(Relaxed)) <= max_silence.as_millis() as u64
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let t = escape(&self.topic);
        let tl = format!("topic=\"{t}\"");
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                o,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{{tl}}} {v}"
            );
        };
        counter(
            &mut o,
            "creditguard_kafka_messages_total",
            "Messages read from the topic.",
            self.messages_in.load(Relaxed),
        );
        counter(
            &mut o,
            "creditguard_kafka_bytes_total",
            "Payload bytes read from the topic.",
            self.bytes_in.load(Relaxed),
        );
        counter(
            &mut o,
            "creditguard_events_in_total",
            "Valid events read.",
            self.events_in.load(Relaxed),
        );
        counter(
            &mut o,
            "creditguard_events_committed_total",
            "Valid events in files whose offsets are committed.",
            self.events_committed.load(Relaxed),
        );
        counter(
            &mut o,
            "creditguard_files_committed_total",
            "Event files committed to the lake.",
            self.files_committed.load(Relaxed),
        );
        counter(
            &mut o,
            "creditguard_ranges_committed_total",
            "Offset ranges committed.",
            self.ranges_committed.load(Relaxed),
        );
        counter(
            &mut o,
            "creditguard_rebalances_total",
            "Partition assignments and revocations.",
            self.rebalances.load(Relaxed),
        );
        let _ = writeln!(
            o,
            "# HELP creditguard_dead_letters_total Invalid events confirmed on the dead-letter topic.\n# TYPE creditguard_dead_letters_total counter"
        );
        for (kind, n) in self
            .dead_letters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                o,
                "creditguard_dead_letters_total{{{tl},kind=\"{}\"}} {n}",
                escape(kind)
            );
        }
        self.commit_latency.render(
            &mut o,
            "creditguard_commit_latency_seconds",
            "Offset commit round trip to the group coordinator.",
            &tl,
        );
        self.file_write.render(
            &mut o,
            "creditguard_file_write_seconds",
            "Writing and fsyncing one offset range's files.",
            &tl,
        );
        let parts = self.partitions();
        let _ = writeln!(
            o,
            "# HELP creditguard_consumer_lag_messages Messages read but not yet committed (read offset - committed offset).\n# TYPE creditguard_consumer_lag_messages gauge"
        );
        for (p, pos) in &parts {
            let _ = writeln!(
                o,
                "creditguard_consumer_lag_messages{{{tl},partition=\"{p}\"}} {}",
                (pos.read - pos.committed).max(0)
            );
        }
        let _ = writeln!(o, "# HELP creditguard_committed_offset Committed offset per partition.\n# TYPE creditguard_committed_offset gauge");
        for (p, pos) in &parts {
            let _ = writeln!(
                o,
                "creditguard_committed_offset{{{tl},partition=\"{p}\"}} {}",
                pos.committed
            );
        }
        let _ = writeln!(
            o,
            "# HELP creditguard_assigned_partitions Partitions owned by this member.\n# TYPE creditguard_assigned_partitions gauge\ncreditguard_assigned_partitions{{{tl}}} {}",
            parts.len()
        );
        let _ = writeln!(
            o,
            "# HELP creditguard_up_seconds Seconds since start.\n# TYPE creditguard_up_seconds gauge\ncreditguard_up_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        o
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Reads one sample (`name{labels} value`) from an exposition; `labels` must match exactly the
/// text between the braces, or be empty for the first sample of `name`. For tests and benches.
pub fn sample(exposition: &str, name: &str, labels: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let (n, rest) = key.split_once('{').unwrap_or((key, "}"));
            let l = rest.strip_suffix('}')?;
            (n == name && (labels.is_empty() || l == labels))
                .then(|| value.parse().ok())
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_counters_histograms_and_lag() {
        let m = Metrics::new("learning.telemetry");
        m.events_in.fetch_add(7, Relaxed);
        m.dead_letter("not_json", 2);
        m.commit_latency.observe(Duration::from_millis(3));
        m.set_partition(
            2,
            Some(PartitionPositions {
                read: 120,
                committed: 100,
            }),
        );
        let text = m.render();
        let t = "topic=\"learning.telemetry\"";
        assert_eq!(sample(&text, "creditguard_events_in_total", t), Some(7.0));
        assert_eq!(
            sample(
                &text,
                "creditguard_dead_letters_total",
                &format!("{t},kind=\"not_json\"")
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "creditguard_consumer_lag_messages",
                &format!("{t},partition=\"2\"")
            ),
            Some(20.0)
        );
        assert_eq!(
            sample(
                &text,
                "creditguard_commit_latency_seconds_bucket",
                &format!("{t},le=\"0.0025\"")
            ),
            Some(0.0)
        );
        assert_eq!(
            sample(
                &text,
                "creditguard_commit_latency_seconds_bucket",
                &format!("{t},le=\"0.005\"")
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "creditguard_commit_latency_seconds_count", t),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "creditguard_assigned_partitions", t),
            Some(1.0)
        );
        m.set_partition(2, None);
        assert_eq!(
            sample(&m.render(), "creditguard_assigned_partitions", t),
            Some(0.0)
        );
    }
}
