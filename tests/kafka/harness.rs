//! The Kafka test harness: one tansu broker per test binary (random port, memory storage),
//! unique topics per test, the real `creditguard ingest` as a child process, and readers for
//! what ended up in the lake and on the topics.
//!
//! When tansu is not installed (`.ci/install-tansu` installs it) the Kafka tests print SKIP and
//! pass, unless `CREDITGUARD_REQUIRE_BROKER=1` (CI), where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow_array::{Array, Int64Array, StringArray};
use creditguard_kafka::ClientSettings;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Message, Offset, TopicPartitionList};

/// The test broker.
pub struct Broker {
    pub addr: String,
    /// `sh` supervising tansu: when this process exits, the pipe to its stdin closes and the
    /// supervisor kills tansu, so no broker outlives the tests.
    _supervisor: Mutex<Child>,
}

static BROKER: OnceLock<Option<Broker>> = OnceLock::new();
static SEQ: AtomicUsize = AtomicUsize::new(0);

fn tansu_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CREDITGUARD_TANSU") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".local/bin/tansu"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The broker of this test binary, started on first use; `None` (after printing SKIP) when
/// tansu is not installed and the broker is not required.
pub fn broker() -> Option<&'static Broker> {
    BROKER
        .get_or_init(|| {
            let Some(tansu) = tansu_path() else {
                if std::env::var("CREDITGUARD_REQUIRE_BROKER").as_deref() == Ok("1") {
                    panic!("CREDITGUARD_REQUIRE_BROKER=1 but tansu is not installed (run .ci/install-tansu or set CREDITGUARD_TANSU)");
                }
                eprintln!("SKIP: tansu is not installed (run .ci/install-tansu or set CREDITGUARD_TANSU); Kafka tests skipped");
                return None;
            };
            let port = free_port();
            let log = std::env::temp_dir().join(format!("creditguard-tansu-{}-{port}.log", std::process::id()));
            let script = r#""$0" broker --storage-engine memory://tansu/ --listener-url "tcp://127.0.0.1:$1" --advertised-listener-url "tcp://127.0.0.1:$1" >"$2" 2>&1 & pid=$!; cat >/dev/null; kill $pid; wait $pid"#;
            let child = Command::new("sh")
                .arg("-c")
                .arg(script)
                .arg(&tansu)
                .arg(port.to_string())
                .arg(&log)
                .stdin(Stdio::piped())
                .spawn()
                .expect("start tansu");
            let addr = format!("127.0.0.1:{port}");
            assert!(
                wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(&addr).is_ok()),
                "tansu did not listen on {addr}; log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            Some(Broker { addr, _supervisor: Mutex::new(child) })
        })
        .as_ref()
}

/// Runs the test body with the broker, or skips it.
macro_rules! with_broker {
    () => {
        match crate::kafka::harness::broker() {
            Some(b) => b,
            None => return,
        }
    };
}
pub(crate) use with_broker;

impl Broker {
    pub fn client(&self) -> ClientSettings {
        ClientSettings::new(&self.addr)
    }

    /// A topic name no other test uses, created with `partitions` partitions, and its DLQ.
    pub fn topic(&self, tag: &str, partitions: i32) -> String {
        let name = format!(
            "t-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dlq = format!("{name}.dlq");
        block_on(creditguard_kafka::create_topics(
            &self.client(),
            &[(&name, partitions), (&dlq, 1)],
        ))
        .expect("create topics");
        name
    }

    /// Every message of `topic` (all partitions from the beginning) until `expected` were read
    /// or `timeout` passed. Counts what it reads: tansu's watermarks are not reliable.
    pub fn read_all(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<Record> {
        self.read_until(topic, timeout, |out| out.len() >= expected)
    }

    /// Every message of `topic` from the beginning until `done` holds for what was read, or
    /// `timeout` passed.
    pub fn read_until(
        &self,
        topic: &str,
        timeout: Duration,
        done: impl Fn(&[Record]) -> bool,
    ) -> Vec<Record> {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.addr)
            .set(
                "group.id",
                format!("reader-{}", SEQ.fetch_add(1, Ordering::Relaxed)),
            )
            .set("enable.auto.commit", "false")
            .set("fetch.queue.backoff.ms", "10")
            .create()
            .unwrap();
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in md.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + timeout;
        while !done(&out) && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    h.value
                                        .map(|v| String::from_utf8_lossy(v).into_owned())
                                        .unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Record {
                    partition: m.partition(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: m.payload().unwrap_or(&[]).to_vec(),
                    headers,
                });
            }
        }
        out
    }
}

/// One message read back.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Test telemetry: valid events over three event days (so ranges span several days) and,
/// every `invalid_every`-th line, an invalid one of a rotating kind.
pub struct Fixture {
    pub lines: Vec<String>,
    pub valid: BTreeSet<String>,
    pub invalid: BTreeSet<String>,
}

pub fn fixture(tag: &str, n: usize, invalid_every: usize) -> Fixture {
    let mut f = Fixture {
        lines: Vec::new(),
        valid: BTreeSet::new(),
        invalid: BTreeSet::new(),
    };
    for i in 0..n {
        let id = format!("{tag}-{i}");
        if invalid_every > 0 && i % invalid_every == invalid_every - 1 {
            let line = match (i / invalid_every) % 3 {
                0 => format!("not json {id}"),
                1 => format!(
                    r#"{{"event_id":"{id}","type":"login","user_id":"u{}","session_id":"s"}}"#,
                    i % 37
                ),
                _ => format!(
                    r#"{{"event_id":"{id}","type":"heartbeat","ts":"2026-03-02T10:00:00Z","user_id":"u{}","session_id":"s","course_id":"c","lesson_id":"l","position_s":"12","playing":true,"visible":true}}"#,
                    i % 37
                ),
            };
            f.invalid.insert(line.clone());
            f.lines.push(line);
        } else {
            let line = format!(
                r#"{{"event_id":"{id}","type":"heartbeat","ts":"2026-03-0{}T09:{:02}:{:02}Z","user_id":"u{}","session_id":"s{}","course_id":"c1","lesson_id":"l1","position_s":{}.5,"playing":true,"visible":{}}}"#,
                1 + i % 3,
                (i / 60) % 60,
                i % 60,
                i % 37,
                i % 5,
                i % 900,
                i % 2 == 0
            );
            f.valid.insert(id);
            f.lines.push(line);
        }
    }
    f
}

/// One row of the lake's `events` table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub event_id: String,
    pub src: String,
    pub src_pos: i64,
}

/// Every row of every committed event file, and the files' names.
pub fn lake_rows(lake: &Path) -> (Vec<Row>, Vec<String>) {
    rows_of(&creditguard_lake::Lake::open(lake.to_str().unwrap()).unwrap())
}

/// The events rows of a lake opened by the caller (on the file system or on S3).
pub fn rows_of(lake: &creditguard_lake::Lake) -> (Vec<Row>, Vec<String>) {
    let (mut rows, mut names) = (Vec::new(), Vec::new());
    for day in lake.days("events").unwrap() {
        for path in lake.partition_files("events", day).unwrap() {
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
            let reader =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                    .unwrap_or_else(|e| {
                        panic!("{} is not a complete Parquet file: {e}", path.display())
                    })
                    .build()
                    .unwrap();
            for batch in reader {
                let batch = batch.unwrap();
                let ids = batch
                    .column_by_name("event_id")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                let src = batch
                    .column_by_name("src")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone();
                let pos = batch
                    .column_by_name("src_pos")
                    .unwrap()
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone();
                for i in 0..batch.num_rows() {
                    rows.push(Row {
                        event_id: ids.value(i).to_string(),
                        src: src.value(i).to_string(),
                        src_pos: pos.value(i),
                    });
                }
                assert_eq!(ids.null_count(), 0);
            }
        }
    }
    (rows, names)
}

/// Asserts every valid event is in the lake exactly once, and nothing else is.
pub fn assert_exactly_once(lake: &Path, fx: &Fixture) {
    assert_exactly_once_in(
        &creditguard_lake::Lake::open(lake.to_str().unwrap()).unwrap(),
        fx,
    );
}

/// [`assert_exactly_once`] on a lake opened by the caller.
pub fn assert_exactly_once_in(lake: &creditguard_lake::Lake, fx: &Fixture) {
    let (rows, names) = rows_of(lake);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.event_id.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        doubled.is_empty(),
        "events in the lake more than once: {doubled:?} (files: {names:?})"
    );
    let missing: Vec<_> = fx
        .valid
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "valid events missing from the lake: {missing:?}"
    );
    assert_eq!(
        rows.len(),
        fx.valid.len(),
        "rows that are not fixture events"
    );
}

/// The dead letters of `topic` are exactly the fixture's invalid lines (each at least once:
/// a replay after a crash may send one again).
pub fn assert_dead_letters(b: &Broker, topic: &str, fx: &Fixture, at_least: usize) -> Vec<Record> {
    // A replay after a crash may deliver a dead letter twice: read until every distinct
    // payload (and at least `at_least` records) arrived.
    let dlq = b.read_until(&format!("{topic}.dlq"), Duration::from_secs(30), |out| {
        out.len() >= at_least
            && out
                .iter()
                .map(|r| &r.payload)
                .collect::<BTreeSet<_>>()
                .len()
                >= fx.invalid.len()
    });
    let got: BTreeSet<String> = dlq
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    assert_eq!(got, fx.invalid, "dead-letter topic payloads");
    for r in &dlq {
        assert_eq!(r.header("source_topic"), Some(topic), "{r:?}");
        assert!(r.header("error").is_some_and(|e| !e.is_empty()), "{r:?}");
        assert!(
            r.header("source_partition")
                .is_some_and(|p| p.parse::<i32>().is_ok()),
            "{r:?}"
        );
        assert!(
            r.header("source_offset")
                .is_some_and(|p| p.parse::<i64>().is_ok()),
            "{r:?}"
        );
    }
    dlq
}

/// A `creditguard ingest` child process.
pub struct IngestProc {
    child: Option<Child>,
    pub metrics_addr: String,
    pub log: PathBuf,
}

pub struct IngestOpts<'a> {
    pub roll_rows: usize,
    pub fault: Option<(&'a str, u32)>,
    /// jemalloc prints its options and their values in force to the log at exit.
    pub malloc_stats: bool,
    /// Pseudonymise with the key in this file (`None`: `--pseudonymise off`).
    pub key_file: Option<&'a Path>,
    /// Write to this lake on S3 (its URL and the AWS environment that reaches it), keeping the
    /// process's local cache in `.1`, instead of the `lake` directory given to `start`.
    pub s3: Option<(&'a str, &'a [(&'static str, String)], &'a Path)>,
}

impl Default for IngestOpts<'_> {
    fn default() -> Self {
        IngestOpts {
            roll_rows: 1000,
            fault: None,
            malloc_stats: false,
            key_file: None,
            s3: None,
        }
    }
}

impl IngestProc {
    pub fn start(
        b: &Broker,
        topic: &str,
        group: &str,
        lake: &Path,
        opts: IngestOpts<'_>,
    ) -> IngestProc {
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let log = lake.with_file_name(format!(
            "ingest-{}.log",
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_creditguard"));
        cmd.args([
            "--log-format",
            "json",
            "--log",
            "info,librdkafka=warn",
            "ingest",
        ])
        .args(["--brokers", &b.addr, "--topic", topic, "--group", group])
        .arg("--lake")
        .arg(match opts.s3 {
            Some((url, _, _)) => std::ffi::OsStr::new(url),
            None => lake.as_os_str(),
        })
        .args(match opts.key_file {
            Some(_) => ["--pseudonymise", "on"],
            None => ["--pseudonymise", "off"],
        })
        .args([
            "--metrics-addr",
            &metrics_addr,
            "--roll-rows",
            &opts.roll_rows.to_string(),
            "--roll-age",
            "500ms",
        ])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .env_remove("CREDITGUARD_FAULT")
        .env_remove("CREDITGUARD_FAULT_AFTER")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
        if let Some(key) = opts.key_file {
            cmd.arg("--key-file").arg(key);
        }
        if let Some((_, env, cache)) = opts.s3 {
            cmd.envs(env.iter().map(|(k, v)| (*k, v)))
                .env("CREDITGUARD_LAKE_CACHE", cache);
        }
        if let Some((point, after)) = opts.fault {
            cmd.env("CREDITGUARD_FAULT", point)
                .env("CREDITGUARD_FAULT_AFTER", after.to_string());
        }
        if opts.malloc_stats {
            cmd.env("_RJEM_MALLOC_CONF", "stats_print:true");
        }
        let child = cmd.spawn().expect("start creditguard ingest");
        IngestProc {
            child: Some(child),
            metrics_addr,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The `/metrics` text, if the endpoint answers.
    pub fn metrics(&self) -> Option<String> {
        creditguard_kafka::http::get(&self.metrics_addr, "/metrics")
            .ok()
            .filter(|(c, _)| *c == 200)
            .map(|(_, b)| b)
    }

    pub fn metric(&self, name: &str) -> f64 {
        self.metrics()
            .and_then(|m| creditguard_kafka::metrics::sample(&m, name, ""))
            .unwrap_or(0.0)
    }

    /// The sum of every sample of `name` (all label sets).
    pub fn metric_sum(&self, name: &str) -> f64 {
        let Some(text) = self.metrics() else {
            return 0.0;
        };
        text.lines()
            .filter(|l| {
                !l.starts_with('#')
                    && (l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
            })
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                self.child = None;
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait: the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        let status = self
            .wait(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no exit 30 s after SIGTERM; log:\n{}", self.log_text()));
        status
    }

    /// SIGKILL and wait.
    pub fn kill(mut self) {
        self.signal("-KILL");
        self.wait(Duration::from_secs(10))
            .expect("exit after SIGKILL");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for IngestProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Produces the fixture's lines (key = user).
pub fn produce(b: &Broker, topic: &str, lines: &[String]) {
    let report =
        creditguard_kafka::produce_ndjson_lines(&b.client(), topic, lines).expect("produce");
    assert_eq!(report.records as usize, lines.len());
}

/// Waits until the lake holds `n` rows (or `timeout`), printing the ingest logs on failure.
pub fn wait_for_rows(lake: &Path, n: usize, timeout: Duration, procs: &[&IngestProc]) {
    let ok = wait_until(timeout, || lake_rows(lake).0.len() >= n);
    if !ok {
        for p in procs {
            eprintln!("--- ingest log {}\n{}", p.log.display(), p.log_text());
        }
        panic!(
            "the lake did not reach {n} rows in {timeout:?} (has {})",
            lake_rows(lake).0.len()
        );
    }
}
