//! The Kafka path of creditguard: the ingest service (telemetry topic → Parquet lake, exactly
//! once per offset), the dead-letter topic, the results topic, and the operations endpoint.
//!
//! - [`ingest::run`] is `creditguard ingest`: a consumer-group member that decodes on a dedicated
//!   thread, rolls files by rows, bytes and age, names them
//!   `part-<topic>-<partition>-<first offset>-<last offset>.parquet`, and stores and commits
//!   offsets only after the files are durable (see the module docs for the invariants).
//!   Invalid events go to `<topic>.dlq` with their original bytes, key and headers plus
//!   `error`, `error_kind`, `source_topic`, `source_partition`, `source_offset`.
//! - [`produce_results`] sends results-v1 records (key = `user_id`, header `schema_version: 1`)
//!   and returns once the broker acknowledged all of them.
//! - [`produce_ndjson_lines`] sends telemetry lines (for `creditguard generate --kafka`).
//! - [`http::serve`] answers `/metrics`, `/healthz`, `/readyz`.
//!
//! Transactions are not used (the test broker, tansu, has none): the guarantees live in the
//! sink, as in the Kafka Connect S3 sink.
//!
//! ```
//! use creditguard_kafka::{ClientSettings, KafkaSection};
//! let section: KafkaSection = serde_json::from_str(r#"{"topic": "learning.telemetry",
//!     "settings": {"security.protocol": "SASL_SSL", "sasl.password": "hunter2"}}"#).unwrap();
//! assert!(section.problems().is_empty());
//! assert_eq!(section.dlq_topic(), "learning.telemetry.dlq");
//! let client: ClientSettings = section.client();
//! assert!(!format!("{client:?}").contains("hunter2"));
//! ```

pub mod config;
pub mod fault;
pub mod http;
pub mod ingest;
pub mod metrics;
mod produce;
pub mod recover;

pub use config::{ClientSettings, KafkaSection, SettingValue};
pub use fault::{Fault, FaultPoint};
pub use ingest::{IngestConfig, IngestSummary, RollPolicy};
pub use metrics::Metrics;
pub use produce::{
    create_topics, produce_ndjson_lines, produce_results, telemetry_key, LineProducer,
    ProduceReport,
};

use rdkafka::error::KafkaError;

/// Errors of the Kafka path. Invalid events are not errors: they are dead letters.
///
/// The underlying client or IO error is the [`std::error::Error::source`], not repeated in the
/// message: print with `{:#}` (anyhow) or walk the chain to see both.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is wrong (names the key).
    #[error("{0}")]
    Config(String),
    /// A Kafka client operation failed.
    #[error("kafka: {what}")]
    Kafka { what: String, source: KafkaError },
    /// A topic the service needs does not exist (tansu and many clusters do not auto-create).
    #[error("topic `{0}` does not exist (create it first; topics are not created automatically)")]
    MissingTopic(String),
    /// A record could not be delivered.
    #[error("delivery to `{topic}` failed")]
    Delivery { topic: String, source: KafkaError },
    /// A dead letter could not be delivered within the retry time.
    #[error("dead letter not acknowledged by `{topic}` after retrying: {error}")]
    DeadLetter { topic: String, error: String },
    /// The lake could not be written.
    #[error(transparent)]
    Lake(#[from] creditguard_lake::Error),
    /// Local IO (threads, sockets).
    #[error("{what}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// The writer thread stopped (after an error it already reported).
    #[error("the file writer stopped")]
    WriterGone,
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
