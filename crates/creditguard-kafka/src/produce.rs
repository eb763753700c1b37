//! Producing: the results topic (results-v1 records), NDJSON lines (the generator's telemetry
//! for load tests), and topic creation.
//!
//! Every producer here is idempotent with `acks=all`, and a call returns only after every record
//! it was given is acknowledged by the broker: success means delivered.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use creditguard_contract::StreamRecord;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use serde::Deserialize;

use crate::config::ClientSettings;
use crate::{Error, Result};

/// Producer settings creditguard relies on; raw settings from the user come on top.
pub(crate) const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    // Metadata requests must not create topics: a missing results topic is an error.
    ("allow.auto.create.topics", "false"),
    ("acks", "all"),
    ("linger.ms", "20"),
    ("batch.num.messages", "10000"),
    ("compression.type", "lz4"),
    ("queue.buffering.max.messages", "500000"),
    ("queue.buffering.max.kbytes", "262144"),
    ("message.timeout.ms", "120000"),
];

/// Records awaiting acknowledgement at most, per call: bounds memory for huge inputs.
const MAX_IN_FLIGHT: usize = 200_000;

/// What a produce call delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceReport {
    /// The topic written.
    pub topic: String,
    /// Records acknowledged by the broker.
    pub records: u64,
    /// Payload bytes acknowledged.
    pub bytes: u64,
    /// Records per partition.
    pub partitions: BTreeMap<i32, u64>,
    /// Wall time from the first send to the last acknowledgement.
    pub elapsed: Duration,
}

pub(crate) fn producer(settings: &ClientSettings) -> Result<FutureProducer> {
    settings
        .config(PRODUCER_DEFAULTS)
        .create()
        .map_err(|e| Error::Kafka {
            what: "creating a producer".into(),
            source: e,
        })
}

/// Sends records one after another, keeping at most [`MAX_IN_FLIGHT`] unacknowledged, and
/// waits for every acknowledgement.
struct Sender {
    producer: FutureProducer,
    topic: String,
    pending: VecDeque<(DeliveryFuture, u64)>,
    report: ProduceReport,
    start: Instant,
}

impl Sender {
    /// A sender to `topic`, which must exist: producing to a missing topic would, on brokers
    /// that auto-create on produce (tansu does), make a one-partition topic nobody configured.
    fn new(settings: &ClientSettings, topic: &str) -> Result<Self> {
        let producer = producer(settings)?;
        if topic_partitions(producer.client(), topic, Duration::from_secs(15))?.is_none() {
            return Err(Error::MissingTopic(topic.to_string()));
        }
        Ok(Sender {
            producer,
            topic: topic.to_string(),
            pending: VecDeque::new(),
            report: ProduceReport {
                topic: topic.to_string(),
                ..Default::default()
            },
            start: Instant::now(),
        })
    }

    async fn send(
        &mut self,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        if self.pending.len() >= MAX_IN_FLIGHT {
            self.settle_one().await?;
        }
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send_result(record) {
                Ok(fut) => {
                    self.pending.push_back((fut, payload.len() as u64));
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    if self.pending.is_empty() {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        settle(&mut self.pending, &mut self.report, &self.topic).await?;
                    }
                }
                Err((e, _)) => {
                    return Err(Error::Delivery {
                        topic: self.topic.clone(),
                        source: e,
                    })
                }
            }
        }
    }

    async fn settle_one(&mut self) -> Result<()> {
        settle(&mut self.pending, &mut self.report, &self.topic).await
    }

    async fn finish(mut self) -> Result<ProduceReport> {
        while !self.pending.is_empty() {
            self.settle_one().await?;
        }
        self.report.elapsed = self.start.elapsed();
        Ok(self.report)
    }
}

/// Waits for the oldest unacknowledged record (fields passed apart so a record borrowing the
/// topic name can stay alive meanwhile).
async fn settle(
    pending: &mut VecDeque<(DeliveryFuture, u64)>,
    report: &mut ProduceReport,
    topic: &str,
) -> Result<()> {
    let Some((fut, bytes)) = pending.pop_front() else {
        return Ok(());
    };
    match fut.await {
        Ok(Ok(delivery)) => {
            report.records += 1;
            report.bytes += bytes;
            *report.partitions.entry(delivery.partition).or_default() += 1;
            Ok(())
        }
        Ok(Err((e, _))) => Err(Error::Delivery {
            topic: topic.to_string(),
            source: e,
        }),
        Err(_) => Err(Error::Delivery {
            topic: topic.to_string(),
            source: KafkaError::Canceled,
        }),
    }
}

/// Produces the scorer's records to the results topic (results-v1): one JSON object per message
/// (with `employee_id` when the caller identified it), key = `user_id` (the pseudonym), header `schema_version: 1`. Returns after every record is acknowledged
/// (idempotent producer, `acks=all`); an error means the run must not report success.
pub async fn produce_results(
    settings: &ClientSettings,
    topic: &str,
    records: impl IntoIterator<Item = impl Into<StreamRecord>>,
) -> Result<ProduceReport> {
    let mut sender = Sender::new(settings, topic)?;
    let mut json = Vec::with_capacity(1024);
    for record in records {
        let record: StreamRecord = record.into();
        json.clear();
        serde_json::to_writer(&mut json, &record)
            .map_err(|e| Error::Config(format!("result record as JSON: {e}")))?;
        let headers = OwnedHeaders::new().insert(Header {
            key: "schema_version",
            value: Some("1"),
        });
        sender
            .send(
                Some(record.record.user_id().as_bytes()),
                &json,
                Some(headers),
            )
            .await?;
    }
    let report = sender.finish().await?;
    tracing::info!(topic, records = report.records, "Produced results.");
    Ok(report)
}

/// The key of a telemetry line: its `user_id` (so one user's events stay in one partition and
/// in order). `None` when the line is not a JSON object with a string `user_id`; such lines are
/// still produced (the ingest service dead-letters them), without a key.
pub fn telemetry_key(line: &[u8]) -> Option<Cow<'_, str>> {
    #[derive(Deserialize)]
    struct Key<'a> {
        #[serde(borrow)]
        user_id: Option<Cow<'a, str>>,
    }
    serde_json::from_slice::<Key<'_>>(line)
        .ok()
        .and_then(|k| k.user_id)
}

/// Produces NDJSON lines (telemetry-v1 events, valid or not) to `topic`, one message per line,
/// key = the line's `user_id`. Blank lines are skipped; a trailing `\n` / `\r\n` is removed.
/// Blocking (it runs its own small runtime): for `creditguard generate --kafka` and load tests.
pub fn produce_ndjson_lines<L: AsRef<[u8]>>(
    settings: &ClientSettings,
    topic: &str,
    lines: impl IntoIterator<Item = L>,
) -> Result<ProduceReport> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            what: "starting a runtime".into(),
            source: e,
        })?;
    rt.block_on(async {
        let mut sender = Sender::new(settings, topic)?;
        for line in lines {
            let mut l = line.as_ref();
            if let Some(x) = l.strip_suffix(b"\n") {
                l = x.strip_suffix(b"\r").unwrap_or(x);
            }
            if l.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let key = telemetry_key(l);
            sender
                .send(key.as_deref().map(str::as_bytes), l, None)
                .await?;
        }
        let report = sender.finish().await?;
        tracing::info!(topic, records = report.records, "Produced telemetry.");
        Ok(report)
    })
}

/// Creates topics (`(name, partitions)`, replication 1 unless the broker says otherwise);
/// existing ones are left alone. tansu and many managed clusters do not create topics on
/// first use, so tests and first deployments call this.
pub async fn create_topics(settings: &ClientSettings, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        settings.config(&[]).create().map_err(|e| Error::Kafka {
            what: "creating an admin client".into(),
            source: e,
        })?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(name, p)| NewTopic::new(name, *p, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| Error::Kafka {
            what: "creating topics".into(),
            source: e,
        })?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(Error::Kafka {
                    what: format!("creating topic `{topic}`"),
                    source: KafkaError::AdminOp(code),
                })
            }
        }
    }
    Ok(())
}

/// Whether `topic` exists, and with how many partitions.
pub(crate) fn topic_partitions<
    C: rdkafka::client::ClientContext,
    T: Into<rdkafka::util::Timeout>,
>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: T,
) -> Result<Option<usize>> {
    let md = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| Error::Kafka {
            what: format!("metadata of `{topic}`"),
            source: e,
        })?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .and_then(|t| {
            if t.error().is_some() || t.partitions().is_empty() {
                None
            } else {
                Some(t.partitions().len())
            }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_the_user_even_for_invalid_events() {
        assert_eq!(
            telemetry_key(br#"{"user_id":"u7","type":"nope"}"#).as_deref(),
            Some("u7")
        );
        assert_eq!(
            telemetry_key(br#"{"user_id":"u\"8"}"#).as_deref(),
            Some("u\"8")
        );
        assert_eq!(telemetry_key(br#"{"user_id":3}"#), None);
        assert_eq!(telemetry_key(b"not json"), None);
    }
}

/// An [`std::io::Write`] of NDJSON lines that produces each line to a topic, as
/// [`produce_ndjson_lines`] does, on a thread of its own: complete lines go to it in blocks of
/// about 1 MiB over a bounded channel, so the writer waits when the broker is slower than it.
/// For `creditguard generate --kafka` and load tests.
pub struct LineProducer {
    tx: Option<SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    producer: JoinHandle<Result<ProduceReport>>,
}

const LINE_BLOCK: usize = 1 << 20;

impl LineProducer {
    /// Starts the producer thread for `topic`.
    pub fn start(settings: &ClientSettings, topic: &str) -> LineProducer {
        let (tx, rx) = sync_channel::<Vec<u8>>(8);
        let (client, topic) = (settings.clone(), topic.to_string());
        let producer = std::thread::Builder::new()
            .name("generate-produce".into())
            .spawn(move || {
                let lines = rx.into_iter().flat_map(|block: Vec<u8>| {
                    block
                        .split(|b| *b == b'\n')
                        .map(<[u8]>::to_vec)
                        .collect::<Vec<_>>()
                });
                produce_ndjson_lines(&client, &topic, lines)
            })
            .expect("spawning a thread");
        LineProducer {
            tx: Some(tx),
            buf: Vec::with_capacity(2 * LINE_BLOCK),
            producer,
        }
    }

    /// Hands every complete line buffered so far to the producer thread.
    fn ship(&mut self) -> std::io::Result<()> {
        let Some(end) = self.buf.iter().rposition(|b| *b == b'\n') else {
            return Ok(());
        };
        let rest = self.buf[end + 1..].to_vec();
        self.buf.truncate(end + 1);
        let block = std::mem::replace(&mut self.buf, rest);
        let tx = self.tx.as_ref().expect("open until finish");
        tx.send(block)
            .map_err(|_| std::io::Error::other("the Kafka producer stopped (its error follows)"))
    }

    /// Sends the rest and waits until the broker acknowledged every line.
    pub fn finish(mut self) -> Result<ProduceReport> {
        if !self.buf.is_empty() && !self.buf.ends_with(b"\n") {
            self.buf.push(b'\n');
        }
        let shipped = self.ship();
        drop(self.tx.take());
        let report = self
            .producer
            .join()
            .expect("the producer thread does not panic")?;
        shipped.map_err(|e| Error::Io {
            what: "handing lines to the producer".into(),
            source: e,
        })?;
        Ok(report)
    }
}

impl Write for LineProducer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= LINE_BLOCK {
            self.ship()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
