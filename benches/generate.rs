//! Telemetry generator throughput on one core: simulate, format and order the NDJSON lines.
//!
//! `cargo bench --bench generate -- [USERS] [DAYS]` (default 2000 learners × 30 days, the
//! issue's `creditguard generate --users 2000 --days 30` population, ≈ 4.5 M lines). Writes to
//! a discarding sink so that only the generator is measured; prints lines/s and MB/s, best of
//! three runs. Target: ≥ 1 M events/s on one core.

use std::io::{self, Write};
use std::time::Instant;

use creditguard_synth::{Config, Generator};

/// Counts the bytes it swallows.
struct Counting(u64);

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() {
    // `cargo bench` passes `--bench`; positional numbers are ours.
    let nums: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let users = nums.first().copied().unwrap_or(2000);
    let days = nums.get(1).copied().unwrap_or(30);
    let cfg = Config {
        users,
        days,
        ..Config::default()
    };
    let gen = Generator::new(cfg).expect("valid settings");
    let mut best = f64::INFINITY;
    let (mut lines, mut bytes) = (0, 0);
    for _ in 0..3 {
        let mut sink = Counting(0);
        let started = Instant::now();
        let labels = gen.write(&mut sink).expect("writing to a sink cannot fail");
        best = best.min(started.elapsed().as_secs_f64());
        lines = labels.summary.lines;
        bytes = sink.0;
    }
    println!(
        "generate: {users} learners × {days} days: {lines} lines ({:.0} MB NDJSON) in {best:.2} s: {:.2} M lines/s, {:.0} MB/s (one core, best of 3)",
        bytes as f64 / 1e6,
        lines as f64 / best / 1e6,
        bytes as f64 / best / 1e6
    );
}
