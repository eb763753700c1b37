//! Sustained Kafka ingest: produce N telemetry events to a local tansu broker, then run the real
//! `creditguard ingest` binary and measure, from its first message to its last commit:
//! events/s, CPU µs per event of the creditguard process (utime + stime from /proc), and its
//! peak RSS (VmHWM). Linux only.
//!
//! ```text
//! cargo bench --workspace --bench kafka_ingest                       # 10 M events (the README figure)
//! cargo bench --workspace --bench kafka_ingest -- --events 1000000   # a quicker look
//! ```
//! Options: `--events N` (default 10 M), `--partitions P` (default 3), `--pseudonymise` (with
//! `[privacy]` pseudonymisation on; off by default, for the comparison). Needs tansu
//! (`.ci/install-tansu`, or `CREDITGUARD_TANSU`); prints SKIP without it. The machine's load
//! average and the broker's own CPU over the measured window are printed too: on a shared
//! 2-core box the figures are only as good as the quiet they were taken in.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tansu() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CREDITGUARD_TANSU") {
        return Some(PathBuf::from(p));
    }
    let mut c: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect())
        .unwrap_or_default();
    if let Some(h) = std::env::var_os("HOME") {
        c.push(Path::new(&h).join(".local/bin/tansu"));
    }
    c.into_iter().find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// CPU seconds (user + system) of a live process.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// One realistic telemetry line (~300 bytes): mostly heartbeats, some other types, 1 in 10 000
/// invalid.
fn line(i: u64) -> String {
    let user = i.wrapping_mul(2654435761) % 20_000;
    let day = 1 + (i / 400_000) % 28;
    let secs = i % 86_400;
    let ts = format!(
        "2026-03-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        i % 1000
    );
    if i % 10_000 == 9_999 {
        return format!(
            r#"{{"event_id":"e{i}","type":"heartbeat","ts":"{ts}","user_id":"u{user}"}}"#
        );
    }
    match i % 20 {
        0 => format!(
            r#"{{"event_id":"e{i}","type":"login","ts":"{ts}","user_id":"u{user}","org_unit":"ou-{}","session_id":"s{user}-{day}","device_id":"d{user}","ip":"10.{}.{}.{}","platform":"web","geo_lat":31.23,"geo_lon":121.47}}"#,
            user % 97,
            user % 250,
            i % 250,
            user % 200
        ),
        1 => format!(
            r#"{{"event_id":"e{i}","type":"quiz_submit","ts":"{ts}","user_id":"u{user}","org_unit":"ou-{}","session_id":"s{user}-{day}","course_id":"c{}","quiz_id":"q{}","score":8,"max_score":10,"questions":10,"elapsed_s":{}.5}}"#,
            user % 97,
            i % 300,
            i % 40,
            30 + i % 300
        ),
        _ => format!(
            r#"{{"event_id":"e{i}","type":"heartbeat","ts":"{ts}","received_at":"{ts}","user_id":"u{user}","org_unit":"ou-{}","session_id":"s{user}-{day}","device_id":"d{user}","platform":"web","course_id":"c{}","lesson_id":"l{}","position_s":{}.25,"duration_s":1800,"playing":true,"visible":{},"muted":false,"rate":1.0}}"#,
            user % 97,
            i % 300,
            i % 12,
            i % 1800,
            i % 3 != 0
        ),
    }
}

fn main() {
    let mut events: u64 = 10_000_000;
    let mut partitions: i32 = 3;
    let args: Vec<String> = std::env::args().collect();
    let pseudonymise = args.iter().any(|a| a == "--pseudonymise");
    for (i, a) in args.iter().enumerate() {
        match a.as_str() {
            "--events" => events = args[i + 1].parse().expect("--events N"),
            "--partitions" => partitions = args[i + 1].parse().expect("--partitions P"),
            _ => {}
        }
    }
    let Some(tansu) = tansu() else {
        println!("SKIP kafka_ingest: tansu is not installed (.ci/install-tansu)");
        return;
    };
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let broker = Killed(
        Command::new(&tansu)
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
            .expect("start tansu"),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "tansu did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let client = creditguard_kafka::ClientSettings::new(&addr);
    let topic = "bench.telemetry";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(creditguard_kafka::create_topics(
        &client,
        &[(topic, partitions), ("bench.telemetry.dlq", 1)],
    ))
    .unwrap();

    let invalid = (0..events).filter(|i| i % 10_000 == 9_999).count() as u64;
    let valid = events - invalid;
    println!(
        "kafka_ingest: producing {events} events ({invalid} invalid) to {partitions} partitions …"
    );
    let report =
        creditguard_kafka::produce_ndjson_lines(&client, topic, (0..events).map(line)).unwrap();
    println!(
        "produce: {} records, {:.0} MB, {:.1} s, {:.0} records/s",
        report.records,
        report.bytes as f64 / 1e6,
        report.elapsed.as_secs_f64(),
        report.records as f64 / report.elapsed.as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let ingest = Killed(
        Command::new(env!("CARGO_BIN_EXE_creditguard"))
            .args([
                "--log",
                "warn",
                "ingest",
                "--brokers",
                &addr,
                "--topic",
                topic,
                "--group",
                "bench",
            ])
            .arg("--lake")
            .arg(&lake)
            .args(["--metrics-addr", &metrics_addr])
            .args(["--pseudonymise", if pseudonymise { "on" } else { "off" }])
            .env("CREDITGUARD_PSEUDONYM_KEY", "ab".repeat(32))
            .env_remove("CREDITGUARD_FAULT")
            .spawn()
            .expect("start creditguard ingest"),
    );
    let pid = ingest.0.id();
    let sample = |name: &str| -> f64 {
        creditguard_kafka::http::get(&metrics_addr, "/metrics")
            .ok()
            .and_then(|(_, body)| creditguard_kafka::metrics::sample(&body, name, ""))
            .unwrap_or(0.0)
    };
    // Start the clock at the first message read: group join time is not ingest throughput.
    let wait_start = Instant::now();
    while sample("creditguard_kafka_messages_total") == 0.0 {
        assert!(
            wait_start.elapsed() < Duration::from_secs(120),
            "ingest read nothing in 120 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let (start, cpu0, broker_cpu0) = (Instant::now(), cpu_seconds(pid), cpu_seconds(broker.0.id()));
    let load0 = loadavg();
    let mut last_print = Instant::now();
    loop {
        let committed = sample("creditguard_events_committed_total") as u64;
        if committed >= valid {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            println!(
                "  … {committed} events committed after {:.1} s, RSS peak {:.0} MiB",
                start.elapsed().as_secs_f64(),
                peak_rss_mib(pid)
            );
            last_print = Instant::now();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1800),
            "ingest did not finish in 30 min"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu0;
    let broker_cpu = cpu_seconds(broker.0.id()) - broker_cpu0;
    let load1 = loadavg();
    let rss = peak_rss_mib(pid);
    let files = sample("creditguard_files_committed_total");
    let fresh = freshness(&client, topic, events, FRESH_RATE, FRESH_SECS, &|| {
        sample("creditguard_events_committed_total")
    });
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    drop(ingest);
    drop(broker);
    let parquet_bytes: u64 = walk(&lake.join("events"));
    println!(
        "kafka_ingest: {events} events ({valid} valid), {partitions} partitions, tansu on the same machine"
    );
    println!(
        "  sustained ingest   {:>10.0} events/s   (target >= 300000)",
        valid as f64 / elapsed
    );
    println!(
        "  creditguard CPU    {:>10.2} µs/event   (target <= 2)",
        cpu * 1e6 / events as f64
    );
    println!(
        "  peak RSS           {:>10.0} MiB        (target <= 512)",
        rss
    );
    println!(
        "  wall               {:>10.2} s, {} files, {:.1} bytes/event on disk",
        elapsed,
        files,
        parquet_bytes as f64 / valid as f64
    );
    println!(
        "  tansu CPU          {:>10.2} µs/event   (the broker, same machine)",
        broker_cpu * 1e6 / events as f64
    );
    println!(
        "  load average       {load0} at the start, {load1} at the end ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  freshness at {FRESH_RATE} events/s for {FRESH_SECS} s, produce → committed: p50 {:.1} s, p99 {:.1} s, max {:.1} s (target: queryable <= 10 s)",
        fresh.0, fresh.1, fresh.2
    );
}

/// Steady load of the freshness phase: events/s and seconds.
const FRESH_RATE: u64 = 20_000;
const FRESH_SECS: u64 = 20;

/// Freshness at steady load, after the backlog is drained: produces `rate` valid events a second
/// for `secs` seconds (ids after the backlog's), and measures for every 100th how long after it
/// was handed to the producer the ingest had committed that many of them. Offsets are committed
/// only once their file is in the lake, so this bounds the time until an event is queryable from
/// above. Matching the n-th sent with the n-th committed is exact per partition (both in offset
/// order) and a close estimate across partitions. Returns p50, p99 and max in seconds.
fn freshness(
    client: &creditguard_kafka::ClientSettings,
    topic: &str,
    first: u64,
    rate: u64,
    secs: u64,
    committed: &dyn Fn() -> f64,
) -> (f64, f64, f64) {
    use std::sync::{Arc, Mutex};
    let total = rate * secs;
    let base = committed() as u64;
    let sent: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let start = Instant::now();
    let producer = {
        let (client, topic, sent) = (client.clone(), topic.to_string(), sent.clone());
        std::thread::spawn(move || {
            let lines = (first..)
                .filter(|i| i % 10_000 != 9_999)
                .take(total as usize)
                .enumerate()
                .map(move |(k, i)| {
                    if k % 100 == 0 {
                        let due = Duration::from_secs_f64(k as f64 / rate as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                        sent.lock().unwrap().push((start.elapsed(), k as u64));
                    }
                    line(i)
                });
            creditguard_kafka::produce_ndjson_lines(&client, &topic, lines).expect("produce")
        })
    };
    let mut done: Vec<(Duration, u64)> = Vec::new();
    loop {
        let n = (committed() as u64).saturating_sub(base);
        done.push((start.elapsed(), n));
        if n >= total || start.elapsed() > Duration::from_secs(secs + 120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    producer.join().expect("producer thread");
    let sent = sent.lock().unwrap().clone();
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|&(t_sent, k)| {
            let t_done = done.iter().find(|&&(_, n)| n > k)?.0;
            Some(t_done.saturating_sub(t_sent).as_secs_f64())
        })
        .collect();
    if lat.len() < sent.len() {
        println!(
            "  freshness: {} of {} sampled events not committed within {} s",
            sent.len() - lat.len(),
            sent.len(),
            secs + 120
        );
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    lat.sort_by(f64::total_cmp);
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

/// The 1-minute load average of the machine.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

fn walk(dir: &Path) -> u64 {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            n += if p.is_dir() {
                walk(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    n
}
