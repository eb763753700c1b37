//! Settings: the pipeline file's `[kafka]` section and the librdkafka client settings built from
//! it, with secrets kept out of logs.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A raw librdkafka setting value as written in TOML: strings, numbers and booleans all become
/// the string librdkafka expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingValue::Str(s) => f.write_str(s),
            SettingValue::Int(i) => write!(f, "{i}"),
            SettingValue::Float(x) => write!(f, "{x}"),
            SettingValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The pipeline file's `[kafka]` section. Every field can be overridden on the command line
/// (`creditguard ingest --help`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The telemetry topic ingest reads.
    pub topic: String,
    /// The consumer group of the ingest service.
    pub group: String,
    /// Where invalid events go; default `<topic>.dlq`.
    pub dlq_topic: Option<String>,
    /// Where `creditguard run` produces the scorer's records (results-v1); none: not produced.
    pub results_topic: Option<String>,
    /// Raw librdkafka settings passed through unchanged (`"security.protocol" = "SASL_SSL"`, …).
    pub settings: BTreeMap<String, SettingValue>,
    /// Roll a partition's Parquet file after this many valid events.
    pub roll_rows: usize,
    /// Roll a partition's Parquet file after this many bytes of message payload.
    pub roll_bytes: u64,
    /// Roll a partition's Parquet file this long after its first message (freshness bound),
    /// e.g. `"5s"`, `"500ms"`, `"1m"`.
    pub roll_age: String,
    /// Address of `/metrics`, `/healthz` and `/readyz`; empty: no HTTP endpoint.
    pub metrics_addr: String,
    /// Messages larger than this are not parsed: they are dead-lettered as `too_large` with
    /// their first 64 KiB.
    pub max_message_bytes: usize,
}

impl Default for KafkaSection {
    fn default() -> Self {
        KafkaSection {
            brokers: "127.0.0.1:9092".into(),
            topic: "learning.telemetry".into(),
            group: "creditguard-ingest".into(),
            dlq_topic: None,
            results_topic: None,
            settings: BTreeMap::new(),
            roll_rows: crate::ingest::RollPolicy::default().rows,
            roll_bytes: crate::ingest::RollPolicy::default().bytes,
            roll_age: "5s".into(),
            metrics_addr: "127.0.0.1:9464".into(),
            max_message_bytes: creditguard_ingest::DEFAULT_MAX_LINE_BYTES,
        }
    }
}

impl KafkaSection {
    /// Every problem of the section at once, each naming its key (`kafka.roll_age: …`).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.brokers.trim().is_empty() {
            p.push("kafka.brokers: must not be empty".to_string());
        }
        if self.topic.trim().is_empty() {
            p.push("kafka.topic: must not be empty".to_string());
        }
        if self.group.trim().is_empty() {
            p.push("kafka.group: must not be empty".to_string());
        }
        if let Some(t) = &self.results_topic {
            if t.trim().is_empty() {
                p.push(
                    "kafka.results_topic: must not be empty (leave it out to produce no results)"
                        .to_string(),
                );
            }
        }
        if self.roll_rows == 0 {
            p.push("kafka.roll_rows: must be at least 1".to_string());
        }
        if self.max_message_bytes < 1024 {
            p.push("kafka.max_message_bytes: must be at least 1024".to_string());
        }
        if self.roll_bytes == 0 {
            p.push("kafka.roll_bytes: must be at least 1".to_string());
        }
        if let Err(e) = parse_duration(&self.roll_age) {
            p.push(format!("kafka.roll_age: {e}"));
        }
        if !self.metrics_addr.is_empty()
            && self.metrics_addr.parse::<std::net::SocketAddr>().is_err()
        {
            p.push(format!(
                "kafka.metrics_addr: `{}` is not an address like 127.0.0.1:9464",
                self.metrics_addr
            ));
        }
        for key in self.settings.keys() {
            if MANAGED.contains(&key.as_str()) {
                p.push(format!("kafka.settings.{key}: set by creditguard itself (its delivery guarantees depend on it)"));
            }
        }
        p
    }

    /// The dead-letter topic: `dlq_topic` or `<topic>.dlq`.
    pub fn dlq_topic(&self) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| format!("{}.dlq", self.topic))
    }

    /// The client settings of this section.
    pub fn client(&self) -> ClientSettings {
        let mut c = ClientSettings::new(&self.brokers);
        for (k, v) in &self.settings {
            c.set(k, v.to_string());
        }
        c
    }
}

/// Consumer settings the ingest service owns: overriding them would break "offsets only after
/// the file is durable".
const MANAGED: &[&str] = &[
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "enable.partition.eof",
];

/// Parses a human duration: `250ms`, `5s`, `2m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 5s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Whether a librdkafka setting holds a secret that must never be logged.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("token")
        || k == "sasl.oauthbearer.config"
        || k == "ssl.key.pem"
        || k == "ssl.keystore.location"
        || k == "sasl.kerberos.keytab"
}

/// Brokers plus raw librdkafka settings. `Debug` and [`ClientSettings::redacted`] show secrets
/// as `***`.
#[derive(Clone, Default, PartialEq)]
pub struct ClientSettings {
    settings: BTreeMap<String, String>,
}

impl ClientSettings {
    /// Settings for `brokers` (`bootstrap.servers`).
    pub fn new(brokers: &str) -> Self {
        let mut c = ClientSettings::default();
        c.set("bootstrap.servers", brokers);
        c
    }

    /// Sets one raw librdkafka setting.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.settings.insert(key.to_string(), value.into());
        self
    }

    /// Parses and sets `key=value` (the `-X` flag).
    pub fn set_pair(&mut self, pair: &str) -> Result<&mut Self> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("-X `{pair}`: expected key=value")))?;
        let k = k.trim();
        if MANAGED.contains(&k) {
            return Err(Error::Config(format!(
                "-X {k}: set by creditguard itself (its delivery guarantees depend on it)"
            )));
        }
        Ok(self.set(k, v.trim()))
    }

    /// A setting's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// The brokers.
    pub fn brokers(&self) -> &str {
        self.get("bootstrap.servers").unwrap_or("")
    }

    /// `key=value` pairs with secrets replaced by `***`, for logs.
    pub fn redacted(&self) -> String {
        self.settings
            .iter()
            .map(|(k, v)| {
                if is_secret(k) {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The librdkafka configuration: `defaults` first, then these settings on top.
    pub(crate) fn config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        for (k, v) in &self.settings {
            c.set(k, v);
        }
        c
    }
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientSettings({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("5 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn secrets_are_never_shown() {
        let mut c = ClientSettings::new("b:9092");
        c.set_pair("sasl.password=hunter2").unwrap();
        c.set_pair("ssl.key.password = s3cret").unwrap();
        c.set_pair("sasl.username=alice").unwrap();
        let shown = format!("{c:?} {}", c.redacted());
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(
            shown.contains("sasl.username=alice") && shown.contains("sasl.password=***"),
            "{shown}"
        );
        assert_eq!(c.get("sasl.password"), Some("hunter2"));
        assert!(c.set_pair("enable.auto.commit=true").is_err());
        assert!(c.set_pair("novalue").is_err());
    }

    #[test]
    fn section_from_toml_with_every_problem() {
        let s: KafkaSection = serde_json::from_value(serde_json::json!({
            "brokers": "", "topic": "t", "roll_age": "soon", "roll_rows": 0,
            "settings": {"fetch.min.bytes": 1, "enable.auto.commit": true, "client.id": "x"}
        }))
        .unwrap();
        let p = s.problems();
        assert_eq!(p.len(), 4, "{p:?}");
        assert!(p.iter().any(|x| x.starts_with("kafka.roll_age")));
        assert!(p
            .iter()
            .any(|x| x.starts_with("kafka.settings.enable.auto.commit")));
        assert_eq!(s.client().get("fetch.min.bytes"), Some("1"));
        assert_eq!(s.dlq_topic(), "t.dlq");
        assert!(KafkaSection::default().problems().is_empty());
        assert!(serde_json::from_value::<KafkaSection>(serde_json::json!({"topik": "t"})).is_err());
    }
}
