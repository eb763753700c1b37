//! `creditguard generate`: synthetic telemetry with labelled cheating, its course catalog and
//! the labels (see the `creditguard-synth` crate), written to a file and/or produced to a Kafka
//! topic (`--kafka`, for load tests and end-to-end runs).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::GenerateArgs;
use anyhow::Context;
use creditguard_kafka::{ClientSettings, LineProducer};
use creditguard_synth::{Config, Generator, Output, Pattern, StrengthMix};

/// Wrong arguments to `creditguard generate`: every problem at once. `main` exits 2 on it
/// (a usage error), not 1 (a failure while running).
#[derive(Debug)]
pub struct UsageError(pub Vec<String>);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "generate: {n} problem{} with the arguments",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UsageError {}

/// Where `--kafka` sends the telemetry.
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    pub client: ClientSettings,
    pub topic: String,
    pub partitions: i32,
}

impl GenerateArgs {
    /// The `--kafka` target (`None` without `--kafka`), its problems added to `problems`.
    fn kafka_target(&self, problems: &mut Vec<String>) -> Option<KafkaTarget> {
        if !self.kafka {
            // Brokers and raw settings may come from the environment of an ingest service; an
            // explicit topic without --kafka is a mistake worth naming.
            if let Some(t) = &self.topic {
                problems.push(format!(
                    "--topic `{t}` needs --kafka (or leave out --topic)"
                ));
            }
            return None;
        }
        let brokers = self.brokers.as_deref().map(str::trim).unwrap_or("");
        if brokers.is_empty() {
            problems.push(
                "--kafka needs --brokers HOST:PORT[,HOST:PORT…] (or CREDITGUARD_KAFKA_BROKERS)"
                    .to_string(),
            );
        }
        let topic = self.topic.as_deref().map(str::trim).unwrap_or("");
        if topic.is_empty() {
            problems.push("--kafka needs --topic NAME".to_string());
        } else if !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || topic.len() > 249
        {
            problems.push(format!(
                "--topic `{topic}`: a Kafka topic name has at most 249 of a-z A-Z 0-9 . _ -"
            ));
        }
        if !(1..=10_000).contains(&self.partitions) {
            problems.push(format!(
                "--partitions {}: expected 1 to 10000",
                self.partitions
            ));
        }
        let mut client = ClientSettings::new(brokers);
        for pair in &self.settings {
            if let Err(e) = client.set_pair(pair) {
                problems.push(e.to_string());
            }
        }
        Some(KafkaTarget {
            client,
            topic: topic.to_string(),
            partitions: self.partitions,
        })
    }

    /// Raw arguments → generator settings, every problem added to `problems`.
    fn generator_config(&self, problems: &mut Vec<String>) -> Config {
        let start_day = creditguard_contract::time::parse_day(&self.start).unwrap_or_else(|e| {
            problems.push(format!("--start `{}`: {e}", self.start));
            0
        });
        let strength = StrengthMix::parse(&self.strength).unwrap_or_else(|| {
            problems.push(format!(
                "--strength `{}`: expected blatant, subtle or mixed",
                self.strength
            ));
            StrengthMix::Mixed
        });
        let mut cfg = Config {
            users: self.users,
            org_units: self.org_units,
            days: self.days,
            start_day,
            seed: self.seed,
            strength,
            fault_rate: self.fault_rate,
            client_signals: self.client_signals,
            ..Config::default()
        }
        .with_share_each(self.cheat_share);
        for item in &self.pattern_share {
            let parsed = item.split_once('=').and_then(|(p, s)| {
                Some((Pattern::parse(p.trim())?, s.trim().parse::<f64>().ok()?))
            });
            match parsed {
                Some((p, share)) => cfg.set_share(p, share),
                None => problems.push(format!(
                    "--pattern-share `{item}`: expected pattern=share, e.g. speed=0.05"
                )),
            }
        }
        if let Err(e) = cfg.validate() {
            problems.push(e.to_string());
        }
        cfg
    }
}

/// `<dir>/<stem>.<suffix>` where stem is the file name before its first dot.
fn beside(out: &Path, suffix: &str) -> PathBuf {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("telemetry");
    let stem = name.split('.').next().unwrap_or(name);
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// Writes each byte to the file output and/or the Kafka lines.
struct Tee<'a> {
    file: Option<&'a mut Output>,
    kafka: Option<&'a mut LineProducer>,
}

impl Write for Tee<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Some(f) = self.file.as_deref_mut() {
            f.write_all(data)?;
        }
        if let Some(k) = self.kafka.as_deref_mut() {
            k.write_all(data)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.file.as_deref_mut() {
            f.flush()?;
        }
        Ok(())
    }
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let cfg = args.generator_config(&mut problems);
    let kafka = args.kafka_target(&mut problems);
    if args.out.is_none() && kafka.is_none() {
        problems.push(
            "--out is required (a file, or - for stdout), unless --kafka is given".to_string(),
        );
    }
    if !problems.is_empty() {
        return Err(UsageError(problems).into());
    }
    let out_path = args.out.as_deref();
    let stdout = out_path.is_some_and(|p| p.as_os_str() == "-");
    let default_beside = |suffix: &str| -> Option<PathBuf> {
        match (out_path, &kafka) {
            (Some(_), _) if stdout => None,
            (Some(p), _) => Some(beside(p, suffix)),
            (None, Some(k)) => Some(PathBuf::from(format!("{}.{suffix}", k.topic))),
            (None, None) => None,
        }
    };
    let catalog_path = args
        .catalog
        .clone()
        .or_else(|| default_beside("catalog.csv"));
    let labels_path = args
        .labels
        .clone()
        .or_else(|| default_beside("labels.json"));
    let started = Instant::now();
    let gen = Generator::new(cfg).context("generator settings")?;

    if let Some(k) = &kafka {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime")?;
        let dlq = format!("{}.dlq", k.topic);
        rt.block_on(creditguard_kafka::create_topics(
            &k.client,
            &[(&k.topic, k.partitions), (&dlq, 1)],
        ))
        .with_context(|| {
            format!(
                "creating topic `{}` ({} partitions) and `{dlq}` at {}",
                k.topic,
                k.partitions,
                k.client.brokers()
            )
        })?;
    }
    let mut file = match out_path {
        Some(p) => Some(
            Output::create(p, args.zstd_level)
                .with_context(|| format!("creating {}", p.display()))?,
        ),
        None => None,
    };
    let mut lines = kafka
        .as_ref()
        .map(|k| LineProducer::start(&k.client, &k.topic));
    let written = gen.write(Tee {
        file: file.as_mut(),
        kafka: lines.as_mut(),
    });
    // A producer failure shows up in the generator as a closed channel: report the producer's
    // own error, which names the topic.
    let produced = match (lines, &kafka) {
        (Some(l), Some(k)) => Some(l.finish().with_context(|| {
            format!(
                "producing telemetry to topic `{}` at {}",
                k.topic,
                k.client.brokers()
            )
        })?),
        _ => None,
    };
    let what = out_path.map_or_else(|| "the telemetry".to_string(), |p| p.display().to_string());
    let labels = written.with_context(|| format!("writing {what}"))?;
    if let (Some(f), Some(p)) = (file, out_path) {
        f.finish()
            .with_context(|| format!("finishing {}", p.display()))?;
    }
    if let Some(path) = &catalog_path {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        gen.catalog()
            .write_csv(std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.roster {
        let leave = args
            .leave
            .clone()
            .unwrap_or_else(|| beside(path, "leave.csv"));
        let create = |p: &Path| {
            std::fs::File::create(p)
                .map(std::io::BufWriter::new)
                .with_context(|| format!("creating {}", p.display()))
        };
        gen.roster()
            .write_csv(create(path)?, create(&leave)?)
            .with_context(|| format!("writing {} and {}", path.display(), leave.display()))?;
    }
    if let Some(path) = &labels_path {
        labels
            .write(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let s = &labels.summary;
    if let Some(p) = &produced {
        anyhow::ensure!(
            p.records == s.lines,
            "topic `{}`: {} of {} lines acknowledged",
            p.topic,
            p.records,
            s.lines
        );
    }
    tracing::info!(
        out = ?out_path,
        topic = ?kafka.as_ref().map(|k| &k.topic),
        catalog = ?catalog_path,
        labels = ?labels_path,
        lines = s.lines,
        events = s.events,
        invalid_lines = s.invalid_lines,
        duplicates = s.duplicates,
        late = s.late,
        out_of_order = s.out_of_order,
        skewed_sessions = s.skewed_sessions,
        learners = labels.learners.len(),
        cheaters = s.cheaters,
        credit_claims = s.course_completions,
        seconds = secs,
        events_per_s = (s.lines as f64 / secs) as u64,
        "Generated telemetry."
    );
    // Logs default to warnings only; the figures are the point of this command, so say them.
    eprintln!(
        "generated {} lines ({} events, {} duplicate deliveries, {} invalid lines) for {} learners ({} labelled cheaters, {} credit claims) in {secs:.2} s ({:.0} lines/s)",
        s.lines,
        s.events,
        s.duplicates,
        s.invalid_lines,
        labels.learners.len(),
        s.cheaters,
        s.course_completions,
        s.lines as f64 / secs
    );
    if let Some(p) = &produced {
        let parts: Vec<String> = p
            .partitions
            .iter()
            .map(|(part, n)| format!("{part}: {n}"))
            .collect();
        eprintln!(
            "produced {} lines ({:.1} MB) to topic `{}` at {}, every one acknowledged, in {:.2} s (per partition {})",
            p.records,
            p.bytes as f64 / 1e6,
            p.topic,
            kafka.as_ref().map_or("", |k| k.client.brokers()),
            p.elapsed.as_secs_f64(),
            parts.join(", ")
        );
    }
    Ok(())
}
