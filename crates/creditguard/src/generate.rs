//! `creditguard generate`: synthetic telemetry with labelled cheating, its course catalog and
//! the labels (see the `creditguard-synth` crate), written to a file and/or produced to a Kafka
//! topic (`--kafka`, for load tests and end-to-end runs).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

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

/// Generate synthetic telemetry (NDJSON), a course catalog (CSV) and ground-truth labels (JSON).
#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    /// Number of learners.
    #[arg(long, env = "CREDITGUARD_GENERATE_USERS", default_value_t = 300)]
    pub users: u32,
    /// Number of org units (departments / branches, each at one site).
    #[arg(long, env = "CREDITGUARD_GENERATE_ORG_UNITS", default_value_t = 8)]
    pub org_units: u32,
    /// Length of the period in days; the last day is the credit deadline.
    #[arg(long, env = "CREDITGUARD_GENERATE_DAYS", default_value_t = 14)]
    pub days: u32,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long, env = "CREDITGUARD_GENERATE_START", default_value = "2026-03-02")]
    pub start: String,
    /// Random seed: the same arguments give byte-identical files.
    #[arg(long, env = "CREDITGUARD_GENERATE_SEED", default_value_t = 7)]
    pub seed: u64,
    /// Share of learners carrying each of the ten classic cheating patterns (one pattern per
    /// cheater); the patterns that fake the client are set with --pattern-share.
    #[arg(long, env = "CREDITGUARD_GENERATE_CHEAT_SHARE", default_value_t = 0.02)]
    pub cheat_share: f64,
    /// Per-pattern share overriding --cheat-share, as `pattern=share` (e.g. `speed=0.05`;
    /// patterns: background_playback, speed, low_coverage, concurrent_sessions,
    /// impossible_travel, rapid_switching, parallel_playback, credit_burst, quiz_too_fast,
    /// shared_device, and those that fake the client: scripted_playback, timer_cadence,
    /// missed_checks, machine_responses, no_input). Repeat the flag or separate with commas.
    #[arg(
        long = "pattern-share",
        env = "CREDITGUARD_GENERATE_PATTERN_SHARE",
        value_delimiter = ','
    )]
    pub pattern_share: Vec<String>,
    /// The platform shows attention checks and counts input on heartbeats (needed by the
    /// patterns missed_checks, machine_responses and no_input, which plant nothing without it).
    #[arg(long, env = "CREDITGUARD_GENERATE_CLIENT_SIGNALS")]
    pub client_signals: bool,
    /// How hard cheaters cheat: blatant, subtle or mixed (half each).
    #[arg(long, env = "CREDITGUARD_GENERATE_STRENGTH", default_value = "mixed")]
    pub strength: String,
    /// Probability per event of a delivery fault (duplicate, out of order, late, unknown extra
    /// fields, an extra invalid line); five times this per session is the clock-skew chance.
    #[arg(long, env = "CREDITGUARD_GENERATE_FAULT_RATE", default_value_t = 0.002)]
    pub fault_rate: f64,
    /// Telemetry output: a file (zstd-compressed when it ends in `.zst`) or `-` for stdout.
    /// Required unless `--kafka` is given (with `--kafka` it writes the same lines to the file too).
    #[arg(long, short, env = "CREDITGUARD_GENERATE_OUT")]
    pub out: Option<PathBuf>,
    /// Catalog CSV [default: `<out stem>.catalog.csv` beside --out; none for stdout;
    /// `<topic>.catalog.csv` in the current directory with `--kafka` and no --out].
    #[arg(long, env = "CREDITGUARD_GENERATE_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Labels JSON [default: `<out stem>.labels.json` beside --out; none for stdout;
    /// `<topic>.labels.json` in the current directory with `--kafka` and no --out].
    #[arg(long, env = "CREDITGUARD_GENERATE_LABELS")]
    pub labels: Option<PathBuf>,
    /// Also write the population's employee roster CSV here (`[roster] path`: every learner
    /// under `REGION/<org unit>`, roles, levels, hiring and leaving dates, and a few employees
    /// with no activity at all).
    #[arg(long, env = "CREDITGUARD_GENERATE_ROSTER")]
    pub roster: Option<PathBuf>,
    /// With --roster: the leave and travel periods CSV (`[roster] leave`) [default:
    /// `<roster stem>.leave.csv` beside it].
    #[arg(long, env = "CREDITGUARD_GENERATE_LEAVE")]
    pub leave: Option<PathBuf>,
    /// zstd level for `.zst` output (1 fast … 19 small).
    #[arg(long, env = "CREDITGUARD_GENERATE_ZSTD_LEVEL", default_value_t = 3)]
    pub zstd_level: i32,
    /// Produce the telemetry to the Kafka topic `--topic` at `--brokers`: one message per line,
    /// key = the line's `user_id`, idempotent with `acks=all`; the command succeeds only when
    /// every line is acknowledged. The topic is created when missing (`--partitions`), and so is
    /// its dead-letter topic `<topic>.dlq` (1 partition), which `creditguard ingest` needs.
    #[arg(long, env = "CREDITGUARD_GENERATE_KAFKA")]
    pub kafka: bool,
    /// Bootstrap brokers (`host:port,…`) for `--kafka`.
    #[arg(long, env = "CREDITGUARD_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// The telemetry topic for `--kafka`.
    #[arg(long, env = "CREDITGUARD_GENERATE_TOPIC")]
    pub topic: Option<String>,
    /// Partitions of the topic when `--kafka` creates it (an existing topic is left as it is).
    #[arg(long, env = "CREDITGUARD_GENERATE_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,
    /// Raw librdkafka producer setting `key=value` for `--kafka`, repeatable (SASL, TLS, …); in
    /// the environment, several separated by `;`. Secrets are never logged.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "CREDITGUARD_KAFKA_SETTINGS",
        value_delimiter = ';'
    )]
    pub settings: Vec<String>,
}

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
