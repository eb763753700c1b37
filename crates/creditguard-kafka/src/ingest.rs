//! The ingest service: a consumer-group member that turns the telemetry topic into Parquet files
//! in the lake, exactly once per offset.
//!
//! ## Threads
//!
//! - The **consumer thread** (the caller of [`run`]) polls librdkafka, decodes each message on the
//!   spot (no per-message `await`), appends valid events to its partition's open range and sends
//!   invalid ones to the dead-letter topic. Rebalance callbacks run on this thread, inside `poll`.
//! - The **writer thread** encodes a closed range to Parquet, writes one file per event day
//!   atomically (temporary name, fsync, rename, fsync directory), waits until the range's dead
//!   letters are acknowledged, and reports back.
//!
//! ## Offset invariants
//!
//! 1. A range is a run of consecutive offsets of one partition; it becomes
//!    `events/dt=<day>/part-<topic>-<partition>-<first>-<last>.parquet` for each event day in it.
//! 2. The offset `last + 1` is stored and committed only after every file of the range is durable
//!    and every dead letter of the range is acknowledged by the broker (`acks=all`).
//! 3. Ranges of one partition are committed in order (one writer thread, FIFO).
//! 4. After a crash, the next owner replays from the committed offset and reproduces the
//!    boundaries of the files already written ([`crate::recover`]), so the rewrite replaces them.
//! 5. On revocation, open ranges of the revoked partitions are dropped (the next owner reads them
//!    again), ranges already handed to the writer are finished and committed before the
//!    partitions are given up. On SIGTERM every open range is written and committed.
//!
//! Events are not de-duplicated by `event_id` here: a de-duplicator's memory would depend on
//! where the process started, and file contents must be a function of the offsets alone.
//! Jobs de-duplicate.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use creditguard_contract::time::format_day;
use creditguard_contract::{events_schema, parse_event};
use creditguard_ingest::{too_large, DeadLetter, EventBuffer, KEPT_PREFIX_BYTES};
use creditguard_lake::Lake;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{Message, Offset};

use crate::config::ClientSettings;
use crate::fault::{Fault, FaultPoint, FaultWriter};
use crate::metrics::{Metrics, PartitionPositions};
use crate::recover::{existing_ranges, file_name, Plan};
use crate::{Error, Result};

/// When a partition's open range is closed and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollPolicy {
    /// Valid events in the range.
    pub rows: usize,
    /// Payload bytes in the range.
    pub bytes: u64,
    /// Time since the range's first message (bounds how stale the lake is at steady load).
    pub age: Duration,
}

impl Default for RollPolicy {
    /// 100 000 rows or 32 MiB of payload or 5 s: with 3 partitions (a range open on each and
    /// three more at the writer) this bounds the service's memory on a large backlog at the same
    /// CPU per event as larger ranges; figures in `docs/benchmarks.md`.
    fn default() -> Self {
        RollPolicy {
            rows: 100_000,
            bytes: 32 << 20,
            age: Duration::from_secs(5),
        }
    }
}

/// Everything the ingest service needs.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Brokers and raw librdkafka settings (applied to the consumer and the DLQ producer).
    pub client: ClientSettings,
    /// The telemetry topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// When files roll.
    pub roll: RollPolicy,
    /// Pseudonymise identifiers before they are written (`[privacy]`); `None` keeps them raw.
    pub privacy: Option<creditguard_contract::privacy::Pseudonymiser>,
    /// Messages larger than this are dead-lettered as `too_large` without being parsed.
    pub max_message_bytes: usize,
}

/// A dead letter's payload is sent whole up to this size; a longer one is cut to its first
/// [`KEPT_PREFIX_BYTES`] (headers `payload_truncated`, `payload_bytes`), because producers and
/// brokers refuse messages over 1 MB by default (`message.max.bytes`).
pub const DLQ_MAX_PAYLOAD_BYTES: usize = 512 << 10;

/// A dead letter keeps this much of the message's key (headers `key_truncated`, `key_bytes`
/// when it is longer): telemetry keys are user ids, a longer key is not one.
pub const DLQ_MAX_KEY_BYTES: usize = 4 << 10;

/// A dead letter keeps the message's own headers up to this many bytes of names and values in
/// all, a header name to [`DLQ_MAX_HEADER_NAME_BYTES`] (headers `headers_truncated`,
/// `headers_bytes`, `headers_count` when anything was cut or left out). With the payload's and
/// the key's bounds a dead letter stays under the 1 MB brokers and producers accept by default.
pub const DLQ_MAX_HEADER_BYTES: usize = 64 << 10;

/// Longest header name a dead letter keeps.
pub const DLQ_MAX_HEADER_NAME_BYTES: usize = 256;

/// What a run of the service did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub messages: u64,
    pub events_committed: u64,
    pub dead_letters: u64,
    pub files_committed: u64,
}

/// Consumer settings creditguard chooses; the user's raw settings come on top of the first
/// group, never of [`ENFORCED`].
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("auto.offset.reset", "earliest"),
    // librdkafka's default (1000 ms) leaves the consumer idle after each fetch queue refill.
    ("fetch.queue.backoff.ms", "20"),
    ("queued.max.messages.kbytes", "32768"),
    ("fetch.max.bytes", "33554432"),
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
];

/// What "offsets only after the file is durable" rests on.
const ENFORCED: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("enable.partition.eof", "false"),
];

/// A DLQ delivery is retried this long before the service gives up (and exits non-zero, its
/// offsets uncommitted).
const DLQ_RETRY_FOR: Duration = Duration::from_secs(300);

/// A dead letter sent to the DLQ topic, kept until acknowledged (to resend it if needed).
struct PendingDead {
    letter: DeadLetter,
    key: Option<Vec<u8>>,
    headers: OwnedHeaders,
    delivery: DeliveryFuture,
}

/// A closed range, on its way to the writer.
struct Job {
    partition: i32,
    generation: u64,
    first: i64,
    last: i64,
    batches: EventBuffer,
    dead: Vec<PendingDead>,
}

/// The writer's answer.
struct Done {
    partition: i32,
    generation: u64,
    first: i64,
    last: i64,
    result: Result<(u64, u64)>,
}

/// State of one assigned partition.
struct Part {
    generation: u64,
    src: String,
    batches: EventBuffer,
    dead: Vec<PendingDead>,
    first: i64,
    last: i64,
    opened: Instant,
    bytes: u64,
    /// `None` until the first message after the assignment tells where we resumed.
    plan: Option<Plan>,
    pos: PartitionPositions,
}

impl Part {
    fn is_open(&self) -> bool {
        self.first >= 0
    }
}

/// Everything the consumer thread and the rebalance callbacks share.
struct Core {
    topic: String,
    dlq_topic: String,
    lake: Lake,
    roll: RollPolicy,
    privacy: Option<creditguard_contract::privacy::Protector>,
    max_message_bytes: usize,
    parts: HashMap<i32, Part>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    in_flight: HashMap<i32, usize>,
    next_generation: u64,
    metrics: Arc<Metrics>,
    dlq: FutureProducer,
    commit_sent: Arc<Mutex<VecDeque<Instant>>>,
    /// Offsets stored since the last commit request.
    dirty: bool,
    /// An error raised inside a callback, surfaced by the loop.
    fatal: Option<Error>,
}

struct Ctx {
    core: Mutex<Core>,
    commit_sent: Arc<Mutex<VecDeque<Instant>>>,
    metrics: Arc<Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", error = %error, "{reason}");
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut core = lock(&self.core);
            if let Err(e) = core.revoke(consumer, tpl) {
                core.fatal.get_or_insert(e);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => lock(&self.core).assign(tpl),
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "Rebalance error."),
        }
        self.metrics.set_ready(true);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Some(sent) = lock(&self.commit_sent).pop_front() {
            self.metrics.commit_latency.observe(sent.elapsed());
        }
        match result {
            Ok(()) => tracing::debug!(offsets = ?offsets.to_topic_map(), "Offsets committed."),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Offset commit failed; it is retried with the next one.")
            }
        }
    }
}

impl Core {
    fn assign(&mut self, tpl: &TopicPartitionList) {
        self.metrics.rebalances.fetch_add(1, Relaxed);
        for e in tpl.elements_for_topic(&self.topic) {
            let p = e.partition();
            if self.parts.contains_key(&p) {
                continue;
            }
            self.next_generation += 1;
            self.parts.insert(
                p,
                Part {
                    generation: self.next_generation,
                    src: format!("{}/{p}", self.topic),
                    batches: EventBuffer::new(),
                    dead: Vec::new(),
                    first: -1,
                    last: -1,
                    opened: Instant::now(),
                    bytes: 0,
                    plan: None,
                    pos: PartitionPositions::default(),
                },
            );
            self.metrics
                .set_partition(p, Some(PartitionPositions::default()));
            tracing::info!(topic = %self.topic, partition = p, "Partition assigned; resuming from its committed offset.");
        }
    }

    fn revoke(&mut self, consumer: &BaseConsumer<Ctx>, tpl: &TopicPartitionList) -> Result<()> {
        self.metrics.rebalances.fetch_add(1, Relaxed);
        let revoked: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        for p in &revoked {
            if let Some(part) = self.parts.get_mut(p) {
                if part.is_open() {
                    tracing::info!(topic = %self.topic, partition = p, first_offset = part.first, last_offset = part.last,
                        "Partition revoked: dropping its open range (the next owner reads it again).");
                }
                part.batches = EventBuffer::new();
                part.dead.clear();
                part.first = -1;
                part.bytes = 0;
            }
        }
        // Ranges already with the writer are finished and committed while we still own them.
        while revoked
            .iter()
            .any(|p| self.in_flight.get(p).copied().unwrap_or(0) > 0)
        {
            let done = self.done.recv().map_err(|_| Error::WriterGone)?;
            self.finish(consumer, done)?;
        }
        self.commit(consumer, CommitMode::Sync);
        for p in &revoked {
            self.parts.remove(p);
            self.metrics.set_partition(*p, None);
            tracing::info!(topic = %self.topic, partition = p, "Partition revoked.");
        }
        Ok(())
    }

    fn on_message(&mut self, m: &BorrowedMessage<'_>) -> Result<()> {
        let p = m.partition();
        let o = m.offset();
        let payload = m.payload().unwrap_or(&[]);
        self.metrics.messages_in.fetch_add(1, Relaxed);
        self.metrics
            .bytes_in
            .fetch_add(payload.len() as u64, Relaxed);
        let Some(part) = self.parts.get_mut(&p) else {
            tracing::debug!(topic = %self.topic, partition = p, offset = o, "Message of a partition not assigned; ignored.");
            return Ok(());
        };
        if part.plan.is_none() {
            let ranges = existing_ranges(&self.lake, &self.topic, p)?;
            let plan = Plan::new(&ranges, o);
            if !plan.is_empty() {
                tracing::info!(topic = %self.topic, partition = p, offset = o, "Files past the committed offset exist: replaying their boundaries.");
            }
            part.plan = Some(plan);
            part.pos = PartitionPositions {
                read: o,
                committed: o,
            };
        }
        if o < part.pos.read {
            tracing::debug!(topic = %self.topic, partition = p, offset = o, "Offset read twice; ignored.");
            return Ok(());
        }
        let plan = part.plan.as_ref().expect("plan set above");
        if part.is_open() && plan.boundary_in(part.last, o) {
            self.close(p)?;
        }
        let part = self.parts.get_mut(&p).expect("partition present");
        if !part.is_open() {
            part.first = o;
            part.opened = Instant::now();
        }
        part.last = o;
        part.pos.read = o + 1;
        part.bytes += payload.len() as u64;
        let len = payload.len();
        let parsed = if len > self.max_message_bytes {
            let kept = len.min(KEPT_PREFIX_BYTES);
            Err(too_large(
                len as u64,
                kept,
                self.max_message_bytes,
                "kafka.max_message_bytes",
            ))
        } else {
            parse_event(payload)
        };
        match parsed {
            Ok(mut event) => {
                if let Some(protector) = &mut self.privacy {
                    protector.apply(&mut event);
                }
                part.batches.push(&event, &part.src, o);
                self.metrics.events_in.fetch_add(1, Relaxed);
            }
            Err(rejection) => {
                let kept = if len > self.max_message_bytes || len > DLQ_MAX_PAYLOAD_BYTES {
                    len.min(KEPT_PREFIX_BYTES)
                } else {
                    len
                };
                let letter = DeadLetter::new(&payload[..kept], &part.src, o, &rejection);
                tracing::debug!(topic = %self.topic, partition = p, offset = o, reason = %letter.reason, "Dead-lettering event.");
                let (key, mut headers) = bounded_envelope(m);
                let (po, oo, lo) = (p.to_string(), o.to_string(), len.to_string());
                let mut added = vec![
                    ("error", letter.reason.as_str()),
                    ("error_kind", letter.kind.as_str()),
                    ("source_topic", self.topic.as_str()),
                    ("source_partition", po.as_str()),
                    ("source_offset", oo.as_str()),
                ];
                if kept < len {
                    added.extend([
                        ("payload_truncated", "true"),
                        ("payload_bytes", lo.as_str()),
                    ]);
                }
                for (k, v) in added {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
                let delivery = send_dead(
                    &self.dlq,
                    &self.dlq_topic,
                    &letter.raw,
                    key.as_deref(),
                    &headers,
                )?;
                part.dead.push(PendingDead {
                    letter,
                    key,
                    headers,
                    delivery,
                });
            }
        }
        let plan = part.plan.as_ref().expect("plan set above");
        let roll = if plan.active(o) {
            plan.boundary_in(o, o + 1)
        } else {
            part.batches.len() >= self.roll.rows || part.bytes >= self.roll.bytes
        };
        if roll {
            self.close(p)?;
        }
        Ok(())
    }

    /// Closes the open range of `p` and hands it to the writer (blocking while the writer is
    /// two ranges behind: back-pressure instead of unbounded memory).
    fn close(&mut self, p: i32) -> Result<()> {
        let Some(part) = self.parts.get_mut(&p) else {
            return Ok(());
        };
        if !part.is_open() {
            return Ok(());
        }
        let job = Job {
            partition: p,
            generation: part.generation,
            first: part.first,
            last: part.last,
            batches: part.batches.take(),
            dead: std::mem::take(&mut part.dead),
        };
        part.first = -1;
        part.bytes = 0;
        self.metrics.set_partition(p, Some(part.pos));
        *self.in_flight.entry(p).or_default() += 1;
        self.jobs
            .as_ref()
            .ok_or(Error::WriterGone)?
            .send(job)
            .map_err(|_| Error::WriterGone)
    }

    /// Closes ranges older than the roll age (never inside a replayed region).
    fn close_aged(&mut self) -> Result<()> {
        let aged: Vec<i32> = self
            .parts
            .iter()
            .filter(|(_, part)| {
                part.is_open()
                    && part.opened.elapsed() >= self.roll.age
                    && !part
                        .plan
                        .as_ref()
                        .is_some_and(|plan| plan.active(part.last))
            })
            .map(|(p, _)| *p)
            .collect();
        for p in aged {
            self.close(p)?;
        }
        Ok(())
    }

    /// Stores the offsets of a written range.
    fn finish(&mut self, consumer: &BaseConsumer<Ctx>, done: Done) -> Result<()> {
        if let Some(n) = self.in_flight.get_mut(&done.partition) {
            *n = n.saturating_sub(1);
        }
        let (files, rows) = done.result?;
        let Some(part) = self
            .parts
            .get_mut(&done.partition)
            .filter(|part| part.generation == done.generation)
        else {
            tracing::warn!(topic = %self.topic, partition = done.partition, "A range finished after its partition was given up; not committing it.");
            return Ok(());
        };
        // `store_offsets` stores exactly the offset given (the next one to read);
        // `store_offset` (librdkafka's `rd_kafka_offset_store`) would add one more and skip a
        // message after a restart.
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, done.partition, Offset::Offset(done.last + 1))
            .map_err(|e| Error::Kafka {
                what: format!("offset {} of partition {}", done.last + 1, done.partition),
                source: e,
            })?;
        consumer.store_offsets(&tpl).map_err(|e| Error::Kafka {
            what: format!(
                "storing offset {} of partition {}",
                done.last + 1,
                done.partition
            ),
            source: e,
        })?;
        part.pos.committed = done.last + 1;
        self.metrics.set_partition(done.partition, Some(part.pos));
        self.metrics.events_committed.fetch_add(rows, Relaxed);
        self.metrics.files_committed.fetch_add(files, Relaxed);
        self.metrics.ranges_committed.fetch_add(1, Relaxed);
        self.dirty = true;
        tracing::info!(topic = %self.topic, partition = done.partition, first_offset = done.first, last_offset = done.last,
            rows, files, "Range durable; offset stored.");
        Ok(())
    }

    /// Handles every range the writer finished so far, then commits what was stored.
    fn drain_done(&mut self, consumer: &BaseConsumer<Ctx>) -> Result<()> {
        while let Ok(done) = self.done.try_recv() {
            self.finish(consumer, done)?;
        }
        if self.dirty {
            self.commit(consumer, CommitMode::Async);
        }
        Ok(())
    }

    fn commit(&mut self, consumer: &BaseConsumer<Ctx>, mode: CommitMode) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let sent = Instant::now();
        let sync = matches!(mode, CommitMode::Sync);
        if !sync {
            lock(&self.commit_sent).push_back(sent);
        }
        match consumer.commit_consumer_state(mode) {
            Ok(()) if sync => self.metrics.commit_latency.observe(sent.elapsed()),
            Ok(()) => {}
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                // The stored offsets stay stored: the next commit carries them.
                self.dirty = true;
                tracing::warn!(error = %e, "Offset commit failed; retrying with the next one.");
            }
        }
    }
}

/// The key and headers a dead letter of `m` carries: the key cut to [`DLQ_MAX_KEY_BYTES`], the
/// message's headers within [`DLQ_MAX_HEADER_BYTES`], and headers saying what was cut and how
/// long it was.
fn bounded_envelope(m: &BorrowedMessage<'_>) -> (Option<Vec<u8>>, OwnedHeaders) {
    let mut headers = OwnedHeaders::new();
    let mut notes: Vec<(&str, String)> = Vec::new();
    let key = m.key().map(|k| {
        if k.len() > DLQ_MAX_KEY_BYTES {
            notes.push(("key_truncated", "true".into()));
            notes.push(("key_bytes", k.len().to_string()));
        }
        k[..k.len().min(DLQ_MAX_KEY_BYTES)].to_vec()
    });
    if let Some(h) = m.headers() {
        // rdkafka's header accessors panic on a name that is not UTF-8 (a producer may send
        // one): such headers are left out and noted instead of stopping the service.
        let copied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            copy_bounded_headers(h, OwnedHeaders::new())
        }));
        match copied {
            Ok((kept, total, count, cut)) => {
                headers = kept;
                if cut {
                    notes.push(("headers_truncated", "true".into()));
                    notes.push(("headers_bytes", total.to_string()));
                    notes.push(("headers_count", count.to_string()));
                }
            }
            Err(_) => notes.push(("headers_unreadable", "true".into())),
        }
    }
    for (k, v) in &notes {
        headers = headers.insert(Header {
            key: k,
            value: Some(v.as_str()),
        });
    }
    (key, headers)
}

/// Copies `from` into `into` within [`DLQ_MAX_HEADER_BYTES`]: (the copy, the original's bytes of
/// names and values, its number of headers, whether anything was cut or left out).
fn copy_bounded_headers(
    from: &rdkafka::message::BorrowedHeaders,
    mut into: OwnedHeaders,
) -> (OwnedHeaders, usize, usize, bool) {
    let (mut total, mut count, mut budget, mut cut) = (0, 0, DLQ_MAX_HEADER_BYTES, false);
    for h in from.iter() {
        let value = h.value.unwrap_or_default();
        total += h.key.len() + value.len();
        count += 1;
        let name = prefix_str(h.key, DLQ_MAX_HEADER_NAME_BYTES.min(budget));
        if name.is_empty() {
            cut = true;
            continue;
        }
        budget -= name.len();
        let kept = value.len().min(budget);
        budget -= kept;
        cut |= name.len() < h.key.len() || kept < value.len();
        into = into.insert(Header {
            key: name,
            value: h.value.map(|v| &v[..kept]),
        });
    }
    (into, total, count, cut)
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix_str(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn send_dead(
    producer: &FutureProducer,
    topic: &str,
    payload: &[u8],
    key: Option<&[u8]>,
    headers: &OwnedHeaders,
) -> Result<DeliveryFuture> {
    let mut record = FutureRecord::<[u8], [u8]>::to(topic)
        .payload(payload)
        .headers(headers.clone());
    if let Some(k) = key {
        record = record.key(k);
    }
    let deadline = Instant::now() + DLQ_RETRY_FOR;
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                if Instant::now() < deadline =>
            {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => {
                return Err(Error::Delivery {
                    topic: topic.to_string(),
                    source: e,
                })
            }
        }
    }
}

/// The writer thread's work on one range.
struct Writer {
    lake: Lake,
    topic: String,
    dlq_topic: String,
    dlq: FutureProducer,
    metrics: Arc<Metrics>,
    fault: Arc<Fault>,
    rt: tokio::runtime::Runtime,
    props: parquet::file::properties::WriterProperties,
}

impl Writer {
    fn write(&self, job: Job) -> Result<(u64, u64)> {
        let start = Instant::now();
        let name = file_name(&self.topic, job.partition, job.first, job.last);
        let schema = events_schema();
        let (mut files, mut rows) = (0u64, 0u64);
        let ndays = job.batches.days();
        for (day, batch) in job.batches.finish() {
            rows += batch.num_rows() as u64;
            let dir = self.lake.partition_dir("events", day);
            self.lake.write_file_atomic(&dir, &name, |file| {
                let out = FaultWriter {
                    inner: file,
                    fault: &self.fault,
                    written: 0,
                };
                creditguard_lake::write_parquet_to_with(
                    out,
                    schema.clone(),
                    &[batch],
                    self.props.clone(),
                )
                .map_err(|e| std::io::Error::other(format!("parquet: {e}")))
            })?;
            files += 1;
            tracing::debug!(topic = %self.topic, partition = job.partition, first_offset = job.first, last_offset = job.last,
                day = %format_day(day), "Event file committed.");
            if files < ndays as u64 {
                self.fault.hit(FaultPoint::BetweenFiles);
            }
        }
        for mut dead in job.dead {
            let deadline = Instant::now() + DLQ_RETRY_FOR;
            loop {
                match self.rt.block_on(dead.delivery) {
                    Ok(Ok(_)) => break,
                    outcome => {
                        let error = match outcome {
                            Ok(Err((e, _))) => e.to_string(),
                            _ => "delivery canceled".to_string(),
                        };
                        if Instant::now() >= deadline {
                            return Err(Error::DeadLetter {
                                topic: self.dlq_topic.clone(),
                                error,
                            });
                        }
                        tracing::warn!(topic = %self.topic, partition = job.partition, offset = dead.letter.position, error,
                            "Dead letter not acknowledged; sending it again.");
                        std::thread::sleep(Duration::from_secs(1));
                        dead.delivery = send_dead(
                            &self.dlq,
                            &self.dlq_topic,
                            &dead.letter.raw,
                            dead.key.as_deref(),
                            &dead.headers,
                        )?;
                    }
                }
            }
            self.metrics.dead_letter(&dead.letter.kind, 1);
        }
        self.metrics.file_write.observe(start.elapsed());
        self.fault.hit(FaultPoint::AfterFileBeforeCommit);
        Ok((files, rows))
    }
}

/// Runs the ingest service until `stop` is set, then drains: every open range is written and
/// committed before it returns. Blocking: run it on its own thread.
pub fn run(
    cfg: &IngestConfig,
    lake: &Lake,
    metrics: Arc<Metrics>,
    fault: Arc<Fault>,
    stop: &AtomicBool,
) -> Result<IngestSummary> {
    tracing::info!(topic = %cfg.topic, group = %cfg.group, dlq_topic = %cfg.dlq_topic, settings = %cfg.client.redacted(), "Starting ingest.");
    let dlq = crate::produce::producer(&cfg.client)?;
    let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(2);
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let commit_sent = Arc::new(Mutex::new(VecDeque::new()));
    let core = Core {
        topic: cfg.topic.clone(),
        dlq_topic: cfg.dlq_topic.clone(),
        lake: lake.clone(),
        roll: cfg.roll,
        privacy: cfg
            .privacy
            .clone()
            .map(creditguard_contract::privacy::Protector::new),
        max_message_bytes: cfg.max_message_bytes,
        parts: HashMap::new(),
        jobs: Some(jobs_tx),
        done: done_rx,
        in_flight: HashMap::new(),
        next_generation: 0,
        metrics: metrics.clone(),
        dlq: dlq.clone(),
        commit_sent: commit_sent.clone(),
        dirty: false,
        fatal: None,
    };
    let ctx = Ctx {
        core: Mutex::new(core),
        commit_sent,
        metrics: metrics.clone(),
    };
    let mut config = cfg.client.config(CONSUMER_DEFAULTS);
    config.set("group.id", &cfg.group);
    for (k, v) in ENFORCED {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer<Ctx> =
        config.create_with_context(ctx).map_err(|e| Error::Kafka {
            what: "creating the consumer".into(),
            source: e,
        })?;
    for topic in [&cfg.topic, &cfg.dlq_topic] {
        if crate::produce::topic_partitions(consumer.client(), topic, Duration::from_secs(15))?
            .is_none()
        {
            return Err(Error::MissingTopic(topic.clone()));
        }
    }
    let writer = Writer {
        lake: lake.clone(),
        topic: cfg.topic.clone(),
        dlq_topic: cfg.dlq_topic.clone(),
        dlq,
        metrics: metrics.clone(),
        fault,
        rt: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                what: "starting the writer's runtime".into(),
                source: e,
            })?,
        props: creditguard_ingest::event_writer_properties(),
    };
    let writer_thread = std::thread::Builder::new()
        .name("creditguard-writer".into())
        .spawn(move || {
            for job in jobs_rx {
                let (partition, generation, first, last) =
                    (job.partition, job.generation, job.first, job.last);
                let result = writer.write(job);
                if done_tx
                    .send(Done {
                        partition,
                        generation,
                        first,
                        last,
                        result,
                    })
                    .is_err()
                {
                    break;
                }
            }
        })
        .map_err(|e| Error::Io {
            what: "starting the writer thread".into(),
            source: e,
        })?;
    consumer
        .subscribe(&[&cfg.topic])
        .map_err(|e| Error::Kafka {
            what: format!("subscribing to `{}`", cfg.topic),
            source: e,
        })?;

    let result = consume(&consumer, &metrics, stop);
    // Drain: write and commit every open range, whatever stopped the loop (unless the writer
    // itself failed: then nothing more can be made durable).
    let drained = {
        let mut core = lock(&consumer.context().core);
        let parts: Vec<i32> = core.parts.keys().copied().collect();
        let mut r = Ok(());
        if result.is_ok() {
            for p in parts {
                if let Err(e) = core.close(p) {
                    r = Err(e);
                    break;
                }
            }
        }
        while r.is_ok() && core.in_flight.values().any(|n| *n > 0) {
            match core.done.recv() {
                Ok(done) => r = core.finish(&consumer, done),
                Err(_) => r = Err(Error::WriterGone),
            }
        }
        core.commit(&consumer, CommitMode::Sync);
        core.jobs = None;
        r
    };
    let _ = writer_thread.join();
    result?;
    drained?;
    metrics.set_ready(false);
    let summary = IngestSummary {
        messages: metrics.messages_in.load(Relaxed),
        events_committed: metrics.events_committed.load(Relaxed),
        dead_letters: metrics.dead_letters_total(),
        files_committed: metrics.files_committed.load(Relaxed),
    };
    tracing::info!(topic = %cfg.topic, messages = summary.messages, events = summary.events_committed,
        dead_letters = summary.dead_letters, files = summary.files_committed, "Ingest stopped; everything read is committed.");
    // Dropping the consumer leaves the group now, so the partitions move to the other members
    // without waiting for the session timeout.
    drop(consumer);
    Ok(summary)
}

fn consume(consumer: &BaseConsumer<Ctx>, metrics: &Metrics, stop: &AtomicBool) -> Result<()> {
    let ctx = consumer.context();
    let mut since_check = 0u32;
    while !stop.load(Relaxed) {
        let polled = consumer.poll(Duration::from_millis(100));
        let mut core = lock(&ctx.core);
        if let Some(e) = core.fatal.take() {
            return Err(e);
        }
        let idle = match polled {
            None => true,
            Some(Ok(m)) => {
                core.on_message(&m)?;
                false
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "Consumer error.");
                true
            }
        };
        since_check += 1;
        // Time checks every few thousand messages or when idle: `Instant::now` per message
        // would be a measurable share of the per-event budget.
        if idle || since_check >= 4096 {
            since_check = 0;
            core.drain_done(consumer)?;
            core.close_aged()?;
            metrics.tick();
        }
    }
    Ok(())
}
