//! Pipeline files (`pipelines/*.toml`): parsed, checked, every problem reported at once with the
//! file and the key.
//!
//! Relative paths in a pipeline file are relative to the directory the command runs in (the
//! repository root for the shipped pipelines), like the paths given on the command line.
//! A relative path must stay inside that directory, also once `..` and symbolic links are
//! followed: a file that leads elsewhere says so explicitly, with an absolute path (or the
//! command line's `--input`, `--catalog`, `--lake`).
//!
//! The file is parsed once, here, into typed sections; each stage crate owns the type and the
//! checks of its own section (`[jobs]`: `JobsConfig`, `[score]`: `ScoreConfig`, `[kafka]`:
//! `KafkaSection`), and the commands read the parsed [`Pipeline`]. A wrong key is reported naming
//! the file, the section and the key.

use std::fmt;
use std::path::{Path, PathBuf};

use creditguard_detect::JobsConfig;
use creditguard_kafka::KafkaSection;
use creditguard_score::ScoreConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Stages a pipeline can run, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Read the source (NDJSON files) into the lake's `events` table.
    Ingest,
    /// The detection jobs (`[jobs]`): `features/<job>/` and `results/flags/` per day.
    Jobs,
    /// The scorer (`[score]`): `results/{credits,cases,claim_issues,progress,stream}/` per day.
    Score,
}

impl Stage {
    /// Every stage this build knows, by name.
    pub const ALL: &'static [(&'static str, Stage)] = &[
        ("ingest", Stage::Ingest),
        ("jobs", Stage::Jobs),
        ("score", Stage::Score),
    ];

    /// The stage's name in `[pipeline] stages`.
    pub fn name(self) -> &'static str {
        Stage::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Configuration problems, all of them, for one file.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {n} problem{} in the pipeline file",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            // Multi-line TOML diagnostics stay readable when indented under their file.
            for (i, line) in p.lines().enumerate() {
                writeln!(f, "{}{line}", if i == 0 { "  - " } else { "    " })?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PipelineSection {
    /// Name of the pipeline (goes into run ids and logs).
    name: String,
    /// What the pipeline does, for people.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    /// Stages to run, in order: `ingest`, then the later stages this build has.
    stages: Vec<String>,
}

/// Kinds of telemetry source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// NDJSON files (`.ndjson`, `.jsonl`, `.gz`, `.zst`), a directory of them, or `-` for stdin.
    Ndjson,
    /// The Kafka topic of `[kafka]` (run with `creditguard ingest`).
    Kafka,
}

/// `[source]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    /// `ndjson` (the embedded default) or `kafka`.
    kind: SourceKind,
    /// For `ndjson`: the file or directory to read; `-` is standard input.
    #[serde(default)]
    path: Option<PathBuf>,
}

/// `[lake]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LakeSection {
    /// Where the lake lives: a directory (created if missing), a `file://` URL, or
    /// `s3://bucket/prefix` on S3-compatible storage (endpoint, region and credentials from the
    /// AWS environment: `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …).
    root: String,
}

/// `[catalog]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogSection {
    /// The course catalog: CSV `course_id,title,category,credits,duration_s,min_watch_ratio`.
    path: PathBuf,
}

/// `[roster]`: who is expected to learn (`creditguard_score::policy::Roster`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterSection {
    /// CSV `user_id,org_path,role,level,hired_on,left_on`.
    pub path: PathBuf,
    /// CSV `user_id,kind,from,to` of leave and business travel.
    #[serde(default)]
    pub leave: Option<PathBuf>,
}

/// `[policy]`: the credit policy file (`policies/*.toml`), assignments with due dates, and when
/// reminders are raised.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    pub path: PathBuf,
    /// CSV `course_id,org,role,due_on,recurring`.
    #[serde(default)]
    pub assignments: Option<PathBuf>,
    /// Days before a due date at which `due_soon` is raised (default 30, 14, 1).
    #[serde(default)]
    pub due_soon_days: Option<Vec<i64>>,
    /// `behind_pace` beyond this share of the pace (default 0.1).
    #[serde(default)]
    pub behind_margin: Option<f64>,
    /// `department_lagging` from this share of a department behind (default 0.5).
    #[serde(default)]
    pub lagging_share: Option<f64>,
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Input lines per output chunk (each chunk is one Parquet file per event day). Bounds the
    /// memory of an ingest: about 250 bytes per buffered event.
    pub chunk_lines: usize,
    /// A chunk also ends once its lines reach this many bytes (default 256 MiB): bounds the
    /// memory of a chunk of long lines, invalid ones included.
    pub chunk_bytes: u64,
    /// Longest line accepted, in bytes without the line ending (default 4 MiB). A longer line
    /// is read past without being held and dead-lettered as `too_large` with its first 64 KiB.
    pub max_line_bytes: usize,
    /// A `.gz` or `.zst` file that decompresses to more than this many times its size stops the
    /// ingest with an error naming the file (a decompression bomb); the lines before it are
    /// kept. Default 100; 0 turns the check off.
    pub max_decompression_ratio: u64,
}

impl Default for IngestSection {
    fn default() -> Self {
        let d = creditguard_ingest::IngestOptions::default();
        IngestSection {
            chunk_lines: d.chunk_lines,
            chunk_bytes: d.chunk_bytes,
            max_line_bytes: d.max_line_bytes,
            max_decompression_ratio: d.max_decompression_ratio,
        }
    }
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    #[default]
    On,
    Off,
}

/// `[privacy]`: what ingest stores of the identifying fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySection {
    /// `on` (the default): `user_id` and `device_id` are stored as keyed pseudonyms, `ip` as a
    /// pseudonym of its network, `geo_lat`/`geo_lon` rounded to 0.1°. `off`: stored as received.
    pub pseudonymise: Switch,
    /// A file holding the key (hex, `creditguard keygen` writes one). Never the key itself here.
    pub key_file: Option<PathBuf>,
    /// Otherwise, the environment variable holding the key (hex).
    pub key_env: String,
    /// Create `key_file` with a new random key when it does not exist (the shipped sample).
    pub create_key: bool,
}

/// `[results]`: what the results stream carries beyond the tables' records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResultsSection {
    /// Records on the results topic and `--emit ndjson` carry the learner's real id
    /// (`employee_id`, from `[roster]` through the `[privacy]` key) for the platform that books
    /// credits. Off by default; the tables never hold it.
    pub identify: bool,
}

/// Where the key is read from when `key_file` is not set.
pub const DEFAULT_KEY_ENV: &str = "CREDITGUARD_PSEUDONYM_KEY";

impl Default for PrivacySection {
    fn default() -> Self {
        PrivacySection {
            pseudonymise: Switch::On,
            key_file: None,
            key_env: DEFAULT_KEY_ENV.to_string(),
            create_key: false,
        }
    }
}

impl PrivacySection {
    /// The pseudonymiser these settings ask for: `None` when `pseudonymise = "off"`. A missing or
    /// malformed key is a problem naming the setting (never showing the key). With `create`,
    /// a missing `key_file` is created when `create_key` allows it (and the creation reported on
    /// stderr).
    pub fn resolve(
        &self,
        create: bool,
    ) -> Result<Option<creditguard_contract::privacy::Pseudonymiser>, String> {
        use creditguard_contract::privacy::{parse_key, Pseudonymiser};
        if self.pseudonymise == Switch::Off {
            return Ok(None);
        }
        let text = match &self.key_file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.create_key => {
                    if !create {
                        // Checked only: the run creates it.
                        return Ok(Some(Pseudonymiser::new(&[0u8; 32])));
                    }
                    let key = match write_new_key(path) {
                        Ok(key) => key,
                        // Another run created it meanwhile: use that one.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            return self.resolve(false);
                        }
                        Err(e) => {
                            return Err(format!(
                                "key `privacy.key_file`: cannot create `{}`: {e}",
                                path.display()
                            ))
                        }
                    };
                    eprintln!(
                        "creditguard: created a new pseudonymisation key in {} (privacy.create_key); keep it to map pseudonyms back to people",
                        path.display()
                    );
                    return Ok(Some(Pseudonymiser::new(&key)));
                }
                Err(e) => {
                    return Err(format!(
                        "key `privacy.key_file`: cannot read `{}`: {e} (create one with `creditguard keygen --out {}`, or set `privacy.pseudonymise = \"off\"`)",
                        path.display(),
                        path.display()
                    ))
                }
            },
            None => match std::env::var(&self.key_env) {
                Ok(t) => t,
                Err(_) => {
                    return Err(format!(
                        "key `privacy.key_file`: pseudonymisation is on but there is no key: set `privacy.key_file`, or the environment variable `{}` (`privacy.key_env`), or `privacy.pseudonymise = \"off\"`",
                        self.key_env
                    ))
                }
            },
        };
        let key = parse_key(&text).map_err(|e| match &self.key_file {
            Some(p) => format!("key `privacy.key_file`: `{}`: {e}", p.display()),
            None => format!(
                "key `privacy.key_env`: environment variable `{}`: {e}",
                self.key_env
            ),
        })?;
        Ok(Some(Pseudonymiser::new(&key)))
    }
}

/// A new random 32-byte key, written to `path` (which must not exist) readable by its owner only.
/// The file appears whole or not at all (written aside, then hard-linked to its name, which
/// fails if the name exists), so two runs creating it at once cannot read half a key.
pub fn write_new_key(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| std::io::Error::other(format!("no random source: {e}")))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce)
        .map_err(|e| std::io::Error::other(format!("no random source: {e}")))?;
    let tmp = dir.join(format!(".key.tmp-{:016x}", u64::from_le_bytes(nonce)));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(creditguard_contract::privacy::format_key(&key).as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written.map(|()| key)
}

/// `[retention]`: how many days each lake table keeps its day partitions (`0`: kept for good).
/// `creditguard retain` deletes the older ones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// `events/`, by event day: 400.
    pub events_days: u32,
    /// `dead_letters/` (rejected input as received, identifiers included), by ingest day: 30.
    pub dead_letters_days: u32,
    /// `features/<job>/`: 0 (kept).
    pub features_days: u32,
    /// `results/<table>/`: 0 (kept).
    pub results_days: u32,
}

impl Default for RetentionSection {
    fn default() -> Self {
        RetentionSection {
            events_days: 400,
            dead_letters_days: 30,
            features_days: 0,
            results_days: 0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    pipeline: PipelineSection,
    source: SourceSection,
    lake: LakeSection,
    #[serde(default)]
    catalog: Option<CatalogSection>,
    #[serde(default)]
    ingest: Option<IngestSection>,
    #[serde(default)]
    roster: Option<RosterSection>,
    #[serde(default)]
    policy: Option<PolicySection>,
    #[serde(default)]
    jobs: Option<toml::Table>,
    #[serde(default)]
    score: Option<toml::Table>,
    #[serde(default)]
    kafka: Option<toml::Table>,
    #[serde(default)]
    review: Option<toml::Table>,
    #[serde(default)]
    privacy: Option<PrivacySection>,
    #[serde(default)]
    retention: Option<RetentionSection>,
    #[serde(default)]
    results: Option<ResultsSection>,
}

/// Where telemetry comes from, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// NDJSON: a file, a directory, or stdin.
    Ndjson(creditguard_ingest::Input),
    /// The Kafka topic of `[kafka]`.
    Kafka,
}

/// A checked pipeline file, with command-line overrides applied.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// The file it was read from.
    pub file: PathBuf,
    /// Its text, for run ids (a changed setting is a different run).
    pub text: String,
    pub name: String,
    pub stages: Vec<Stage>,
    pub source: Source,
    pub lake: String,
    pub catalog: Option<PathBuf>,
    pub ingest: IngestSection,
    pub roster: Option<RosterSection>,
    /// The credit policy, assignments and reminder settings.
    pub policy: Option<PolicySection>,
    /// `[privacy]` (absent: pseudonymisation on, key from `CREDITGUARD_PSEUDONYM_KEY`).
    pub privacy: PrivacySection,
    /// `[retention]`.
    pub retention: RetentionSection,
    /// `[results]`.
    pub results: ResultsSection,
    /// `[jobs]` as written (see [`Pipeline::jobs_config`] for the settings the jobs run with).
    pub jobs: JobsConfig,
    /// `[score]` as written (see [`Pipeline::score_config`]).
    pub score: ScoreConfig,
    /// `[kafka]` (defaults when absent).
    pub kafka: KafkaSection,
    /// `[review]` (defaults when absent).
    pub review: ReviewSettings,
}

/// Values given on the command line that win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub input: Option<PathBuf>,
    pub catalog: Option<PathBuf>,
    pub lake: Option<String>,
}

impl Pipeline {
    /// Reads and checks a pipeline file. Every problem found is in the error, each naming its key.
    pub fn load(file: &Path, overrides: &Overrides) -> Result<Pipeline, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            file: file.to_path_buf(),
            problems,
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| fail(vec![format!("cannot read the file: {e}")]))?;
        Pipeline::parse(file, &text, overrides)
    }

    /// Checks pipeline text as if read from `file`, run in the current directory.
    pub fn parse(file: &Path, text: &str, overrides: &Overrides) -> Result<Pipeline, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Pipeline::parse_in(file, text, overrides, &cwd)
    }

    /// Checks pipeline text as if read from `file` and run in the directory `cwd`.
    pub fn parse_in(
        file: &Path,
        text: &str,
        overrides: &Overrides,
        cwd: &Path,
    ) -> Result<Pipeline, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            file: file.to_path_buf(),
            problems,
        };
        let raw: RawFile =
            toml::from_str(text).map_err(|e| fail(vec![e.to_string().trim_end().to_string()]))?;
        let mut problems = Vec::new();

        // Paths written in the file (not the command line's) that would leave `cwd`.
        let mut written: Vec<(&str, PathBuf)> = Vec::new();
        if let (None, Some(p)) = (&overrides.input, &raw.source.path) {
            if p.as_os_str() != "-" {
                written.push(("source.path", p.clone()));
            }
        }
        if overrides.lake.is_none() && !raw.lake.root.contains("://") {
            written.push(("lake.root", PathBuf::from(&raw.lake.root)));
        }
        if let Some(root) = raw.lake.root.strip_prefix("file://") {
            if overrides.lake.is_none() {
                written.push(("lake.root", PathBuf::from(root)));
            }
        }
        if let (None, Some(c)) = (&overrides.catalog, &raw.catalog) {
            written.push(("catalog.path", c.path.clone()));
        }
        if let Some(r) = &raw.roster {
            written.push(("roster.path", r.path.clone()));
            written.extend(r.leave.clone().map(|l| ("roster.leave", l)));
        }
        if let Some(p) = &raw.policy {
            written.push(("policy.path", p.path.clone()));
            written.extend(p.assignments.clone().map(|a| ("policy.assignments", a)));
        }
        if let Some(k) = raw.privacy.as_ref().and_then(|p| p.key_file.clone()) {
            written.push(("privacy.key_file", k));
        }
        for (key, path) in written {
            if let Some(to) = leads_outside(cwd, &path) {
                problems.push(format!(
                    "key `{key}`: `{}` leads outside the working directory `{}` (to `{}`): refused for a relative path; write it as an absolute path if that is meant",
                    path.display(),
                    cwd.display(),
                    to.display()
                ));
            }
        }

        let mut stages = Vec::new();
        for (i, name) in raw.pipeline.stages.iter().enumerate() {
            match Stage::ALL.iter().find(|(n, _)| n == name) {
                Some((_, s)) if stages.contains(s) => problems.push(format!(
                    "key `pipeline.stages[{i}]`: stage `{name}` is listed twice"
                )),
                Some((_, s)) => stages.push(*s),
                None => problems.push(format!(
                    "key `pipeline.stages[{i}]`: unknown stage `{name}`, expected one of: {}",
                    Stage::ALL
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        if stages.windows(2).any(|w| w[0] > w[1]) {
            problems.push(
                "key `pipeline.stages`: stages must be listed in the order they run".to_string(),
            );
        }
        if raw.pipeline.name.trim().is_empty() {
            problems.push("key `pipeline.name`: must not be empty".to_string());
        }

        let source = match raw.source.kind {
            SourceKind::Kafka => {
                if raw.kafka.is_none() {
                    problems
                        .push("key `source.kind`: `kafka` needs a `[kafka]` section".to_string());
                }
                Source::Kafka
            }
            SourceKind::Ndjson => match overrides.input.clone().or(raw.source.path.clone()) {
                Some(p) if p.as_os_str() == "-" => Source::Ndjson(creditguard_ingest::Input::Stdin),
                Some(p) => {
                    if !p.exists() {
                        let key = if overrides.input.is_some() {
                            "--input"
                        } else {
                            "key `source.path`"
                        };
                        problems.push(format!("{key}: `{}` does not exist", p.display()));
                    }
                    Source::Ndjson(creditguard_ingest::Input::Path(p))
                }
                None => {
                    problems.push("key `source.path`: required when `source.kind` is `ndjson` (or pass --input)".to_string());
                    Source::Ndjson(creditguard_ingest::Input::Stdin)
                }
            },
        };

        let lake = overrides.lake.clone().unwrap_or(raw.lake.root);
        if lake.trim().is_empty() {
            problems.push("key `lake.root`: must not be empty".to_string());
        } else if creditguard_lake::is_object_store(&lake) {
            if let Err(e) = creditguard_lake::remote::parse_s3_url(&lake) {
                let key = if overrides.lake.is_some() {
                    "--lake"
                } else {
                    "key `lake.root`"
                };
                problems.push(format!("{key}: {e}"));
            }
        } else if let Some((scheme, _)) = lake
            .split_once("://")
            .filter(|_| !lake.starts_with("file://"))
        {
            problems.push(format!(
                "key `lake.root`: `{lake}`: unsupported scheme `{scheme}://` (expected a directory, a file:// URL or s3://bucket/prefix)"
            ));
        } else {
            // The lake is where `retain` and `erase` delete: never the file system's root, be it
            // named or reached through a symlink.
            let local = lake.strip_prefix("file://").unwrap_or(&lake);
            if std::fs::canonicalize(local).is_ok_and(|c| c.parent().is_none()) {
                let key = if overrides.lake.is_some() {
                    "--lake"
                } else {
                    "key `lake.root`"
                };
                problems.push(format!(
                    "{key}: `{lake}` is the file system's root `/` (or a link to it): refused"
                ));
            }
        }

        let catalog = overrides.catalog.clone().or(raw.catalog.map(|c| c.path));
        if let Some(c) = &catalog {
            if !c.is_file() {
                let key = if overrides.catalog.is_some() {
                    "--catalog"
                } else {
                    "key `catalog.path`"
                };
                problems.push(format!("{key}: `{}` is not a file", c.display()));
            }
        }

        let ingest = raw.ingest.unwrap_or_default();
        if ingest.chunk_lines == 0 {
            problems.push("key `ingest.chunk_lines`: must be at least 1".to_string());
        }
        if ingest.chunk_bytes == 0 {
            problems.push("key `ingest.chunk_bytes`: must be at least 1".to_string());
        }
        if ingest.max_line_bytes < 1024 {
            problems.push(
                "key `ingest.max_line_bytes`: must be at least 1024 (an event is about 300 bytes)"
                    .to_string(),
            );
        }

        let privacy = raw.privacy.unwrap_or_default();
        if privacy.key_env.trim().is_empty() {
            problems.push("key `privacy.key_env`: must not be empty".to_string());
        }
        if privacy.create_key && privacy.key_file.is_none() {
            problems.push("key `privacy.create_key`: needs `privacy.key_file`".to_string());
        }
        let retention = raw.retention.unwrap_or_default();
        let results = raw.results.unwrap_or_default();
        if results.identify && raw.roster.is_none() {
            problems.push(
                "key `results.identify`: needs `[roster]` (the real ids come from it)".to_string(),
            );
        }

        let jobs: JobsConfig = typed("jobs", raw.jobs, &mut problems);
        problems.extend(jobs.problems());
        let score: ScoreConfig = typed("score", raw.score, &mut problems);
        problems.extend(score.validate().err().unwrap_or_default());
        let kafka: KafkaSection = typed("kafka", raw.kafka, &mut problems);
        problems.extend(kafka.problems());
        let review: ReviewSettings = typed("review", raw.review, &mut problems);
        problems.extend(review.problems());

        let pipeline = Pipeline {
            file: file.to_path_buf(),
            text: text.to_string(),
            name: raw.pipeline.name,
            stages,
            source,
            lake,
            catalog,
            ingest,
            roster: raw.roster,
            policy: raw.policy,
            privacy,
            retention,
            results,
            jobs,
            score,
            kafka,
            review,
        };
        if let Err(e) = pipeline.jobs_config() {
            problems.push(e);
        }
        problems.extend(pipeline.expectations().err().unwrap_or_default());
        if problems.is_empty() {
            Ok(pipeline)
        } else {
            Err(fail(problems))
        }
    }

    /// The roster and credit policy the pipeline names, loaded and checked; a problem names its
    /// key and the file's own problems.
    pub fn expectations(&self) -> Result<creditguard_score::config::Expectations, Vec<String>> {
        use creditguard_score::policy::{Policy, Roster};
        let mut problems = Vec::new();
        let roster = match &self.roster {
            None => None,
            Some(r) => match Roster::load(&r.path, r.leave.as_deref()) {
                // The lake holds pseudonyms: the roster's real ids are mapped to them.
                Ok(roster) => match self.privacy.resolve(false) {
                    Ok(Some(p)) => Some(roster.pseudonymised(|id| p.user(id))),
                    Ok(None) => Some(roster),
                    Err(e) => {
                        problems.push(format!(
                            "{e} (the roster's user ids are matched to the lake's pseudonyms with it)"
                        ));
                        None
                    }
                },
                Err(e) => {
                    problems.push(format!("key `roster`: {e}"));
                    None
                }
            },
        };
        let mut exp = creditguard_score::config::Expectations::default();
        if let Some(section) = &self.policy {
            match Policy::load(&section.path) {
                Ok(policy) => {
                    problems.extend(self.unknown_policy_topics(&section.path, &policy));
                    exp.policy = Some(policy)
                }
                Err(e) => problems.push(format!("key `policy.path`: {e}")),
            }
            if let Some(a) = &section.assignments {
                match creditguard_score::warnings::load_assignments(a) {
                    Ok(list) => exp.assignments = list,
                    Err(e) => problems.push(format!("key `policy.assignments`: {e}")),
                }
            }
            let w = &mut exp.warnings;
            if let Some(d) = &section.due_soon_days {
                w.due_soon_days = d.clone();
            }
            if let Some(m) = section.behind_margin {
                w.behind_margin = m;
            }
            if let Some(s) = section.lagging_share {
                w.lagging_share = s;
            }
            problems.extend(w.validate().err().unwrap_or_default());
        }
        exp.roster = roster;
        if problems.is_empty() {
            Ok(exp)
        } else {
            Err(problems)
        }
    }

    /// Topic minimums of the policy that no course of the pipeline's catalog has (a catalog that
    /// does not load is reported where it is checked).
    fn unknown_policy_topics(
        &self,
        file: &Path,
        policy: &creditguard_score::policy::Policy,
    ) -> Vec<String> {
        if policy.rules.iter().all(|r| r.topics.is_empty()) {
            return Vec::new();
        }
        let Some(path) = &self.catalog else {
            return vec!["key `policy.path`: the policy sets minimums per topic, which need a `[catalog]` with a `topic` column".into()];
        };
        match creditguard_score::Catalog::load(path) {
            Ok(catalog) => policy
                .unknown_topics(&catalog)
                .into_iter()
                .map(|p| format!("key `policy.path`: {}: {p}", file.display()))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether the pipeline runs `stage`.
    pub fn has(&self, stage: Stage) -> bool {
        self.stages.contains(&stage)
    }

    /// Whether the pipeline writes events: an `ingest` stage, or a Kafka source (the
    /// `creditguard ingest` service).
    pub fn ingests(&self) -> bool {
        self.has(Stage::Ingest) || self.source == Source::Kafka
    }

    /// The pseudonymiser of `[privacy]` (`None` when off), creating the key file when the
    /// pipeline allows it. A missing or bad key is a configuration error naming the setting.
    pub fn pseudonymiser(
        &self,
    ) -> Result<Option<creditguard_contract::privacy::Pseudonymiser>, ConfigError> {
        self.privacy.resolve(true).map_err(|p| ConfigError {
            file: self.file.clone(),
            problems: vec![p],
        })
    }

    /// The settings the jobs run with: `[jobs]`, with the known shared devices
    /// (`[jobs.proxy_learning]`, listed by their real ids) mapped to the pseudonyms the lake
    /// holds when pseudonymisation is on.
    pub fn jobs_config(&self) -> Result<JobsConfig, String> {
        let mut cfg = self.jobs.clone();
        cfg.rules_name = Some(self.name.clone());
        let pl = &mut cfg.proxy_learning;
        if pl.shared_devices_file.is_none() && pl.shared_devices.is_empty() {
            return Ok(cfg);
        }
        if let Some(p) = self.privacy.resolve(false)? {
            let devices = pl.shared_devices().map_err(|e| e.to_string())?;
            let prefix = format!("{}:", p.key_id());
            pl.shared_devices = devices
                .into_iter()
                .map(|d| {
                    if d.starts_with(&prefix) {
                        d
                    } else {
                        p.device(&d)
                    }
                })
                .collect();
            pl.shared_devices.sort();
            pl.shared_devices_file = None;
        }
        Ok(cfg)
    }

    /// The settings the scorer runs with: `[score]`, with the roster and credit policy of
    /// `[roster]` and `[policy]`.
    pub fn score_config(&self) -> Result<ScoreConfig, String> {
        let mut cfg = self.score.clone();
        cfg.expectations = self.expectations().map_err(|e| e.join("; "))?;
        // The detectors' version as the jobs stage computes it (their shared devices mapped to
        // pseudonyms); the section as written when that mapping needs a key this run lacks.
        let jobs = self.jobs_config().unwrap_or_else(|_| self.jobs.clone());
        cfg.rules = creditguard_score::config::RulesOrigin {
            detectors_version: Some(jobs.rules_version()),
            name: Some(self.name.clone()),
        };
        Ok(cfg)
    }
}

/// A stage section as its typed settings (defaults when absent); a wrong key becomes a problem
/// naming the section.
fn typed<T: DeserializeOwned + Default>(
    name: &str,
    table: Option<toml::Table>,
    problems: &mut Vec<String>,
) -> T {
    match table.map(|t| toml::Value::Table(t).try_into::<T>()) {
        None => T::default(),
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            problems.push(format!("section `[{name}]`: {}", e.to_string().trim_end()));
            T::default()
        }
    }
}

/// `[review]`: where review state lives and how cases group flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReviewSettings {
    /// The review database: `sqlite://PATH` or `postgres://user@host/db`. Default: the embedded
    /// SQLite file `review.sqlite` in the lake directory. `CREDITGUARD_REVIEW_DATABASE` wins.
    pub database: Option<String>,
    /// A learner's new flag joins their active case while the case's last flag is less than this
    /// many days older; later flags start a new case linked to the earlier one. 30.
    pub reopen_after_days: i64,
    /// Where `creditguard serve` listens (`--listen` wins). `127.0.0.1:8080`.
    pub listen: String,
    /// How reviewers log in to the web app: `password` (accounts managed with `creditguard
    /// users`) or `proxy` (a reverse proxy with single sign-on sets `proxy_header` to the
    /// username; only safe when nothing but the proxy reaches `listen`). `password`.
    pub auth: String,
    /// The header a trusted proxy sets with `auth = "proxy"`. `X-Remote-User`.
    pub proxy_header: String,
    /// How long a web session lasts after login, in hours. 8.
    pub session_hours: i64,
    /// Mark cookies `Secure` (set when browsers reach the app over HTTPS, through a proxy or
    /// directly). false.
    pub secure_cookies: bool,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            database: None,
            reopen_after_days: 30,
            listen: "127.0.0.1:8080".into(),
            auth: "password".into(),
            proxy_header: "X-Remote-User".into(),
            session_hours: 8,
            secure_cookies: false,
        }
    }
}

impl ReviewSettings {
    /// Problems of the `[review]` section, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let s = self;
        let mut problems = Vec::new();
        if s.reopen_after_days < 1 {
            problems.push(format!(
                "key `review.reopen_after_days`: {} must be at least 1",
                s.reopen_after_days
            ));
        }
        if s.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "key `review.listen`: `{}` is not an address such as `127.0.0.1:8080`",
                s.listen
            ));
        }
        if !matches!(s.auth.as_str(), "password" | "proxy") {
            problems.push(format!(
                "key `review.auth`: `{}` is neither `password` nor `proxy`",
                s.auth
            ));
        }
        if axum_header_ok(&s.proxy_header).is_none() {
            problems.push(format!(
                "key `review.proxy_header`: `{}` is not a valid HTTP header name",
                s.proxy_header
            ));
        }
        if !(1..=24 * 30).contains(&s.session_hours) {
            problems.push(format!(
                "key `review.session_hours`: {} must be from 1 to 720",
                s.session_hours
            ));
        }
        if let Some(url) = &s.database {
            if !(url.starts_with("sqlite://")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                problems.push(format!(
                    "key `review.database`: `{url}` is neither `sqlite://PATH` nor `postgres://…`"
                ));
            }
        }
        problems
    }
}

/// A header name as HTTP allows it (letters, digits, `-`), lower-cased.
pub fn axum_header_ok(name: &str) -> Option<String> {
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| name.to_ascii_lowercase())
}

/// Where a relative `path` leads when it leaves `cwd`, following `..` and the symbolic links
/// of the part of it that exists; `None` when it stays inside, or is absolute (explicit).
pub fn leads_outside(cwd: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if path.is_absolute() {
        return None;
    }
    let cwd = std::fs::canonicalize(cwd).ok()?;
    // The longest existing prefix is resolved by the file system, the rest by its components.
    let comps: Vec<Component<'_>> = path.components().collect();
    let mut split = comps.len();
    let mut at = loop {
        let prefix: PathBuf = comps[..split].iter().collect();
        if let Ok(real) = std::fs::canonicalize(cwd.join(&prefix)) {
            break real;
        }
        if split == 0 {
            return None;
        }
        split -= 1;
    };
    for c in &comps[split..] {
        match c {
            Component::ParentDir => {
                at.pop();
            }
            Component::Normal(n) => at.push(n),
            _ => {}
        }
    }
    (!at.starts_with(&cwd)).then_some(at)
}

/// A `YYYY-MM-DD` command-line value as days since 1970-01-01 (clap `value_parser`).
pub fn parse_day_arg(s: &str) -> Result<i64, String> {
    creditguard_contract::time::parse_day(s)
        .map_err(|e| format!("`{s}`: {e} (expected YYYY-MM-DD)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pipeline, ConfigError> {
        Pipeline::parse(
            Path::new("pipelines/test.toml"),
            text,
            &Overrides::default(),
        )
    }

    const OK: &str = r#"
[pipeline]
name = "t"
stages = ["ingest"]
[source]
kind = "ndjson"
path = "-"
[lake]
root = "./lake"
"#;

    #[test]
    fn a_minimal_file_parses_with_defaults() {
        let p = parse(OK).unwrap();
        assert_eq!(p.stages, vec![Stage::Ingest]);
        assert_eq!(p.source, Source::Ndjson(creditguard_ingest::Input::Stdin));
        assert_eq!(p.ingest.chunk_lines, 500_000);
    }

    #[test]
    fn an_unknown_key_is_named_with_the_file() {
        let err = parse(&OK.replace("[lake]", "[ingest]\nchunk_linez = 3\n[lake]")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("pipelines/test.toml: 1 problem"), "{msg}");
        assert!(msg.contains("chunk_linez"), "{msg}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let text = OK
            .replace(r#"stages = ["ingest"]"#, r#"stages = ["ingest", "scor"]"#)
            .replace(r#"path = "-""#, r#"path = "/nonexistent/telemetry.ndjson""#)
            .replace(
                "[lake]",
                "[catalog]\npath = \"/nonexistent/catalog.csv\"\n[ingest]\nchunk_lines = 0\n[lake]",
            );
        let err = parse(&text).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.problems.len(), 4, "{msg}");
        for needle in [
            "pipeline.stages[1]",
            "source.path",
            "catalog.path",
            "ingest.chunk_lines",
        ] {
            assert!(msg.contains(needle), "{needle} missing in {msg}");
        }
    }

    #[test]
    fn privacy_is_on_by_default_and_needs_a_key() {
        let p = parse(OK).unwrap();
        assert_eq!(p.privacy, PrivacySection::default());
        assert!(p.ingests());
        let p = parse(&format!(
            "{OK}[privacy]\nkey_env = \"CG_TEST_NO_SUCH_VARIABLE\"\n"
        ))
        .unwrap();
        let err = p.pseudonymiser().unwrap_err().to_string();
        assert!(err.contains("key `privacy.key_file`"), "{err}");
        assert!(err.contains("CG_TEST_NO_SUCH_VARIABLE"), "{err}");
        let off = parse(&format!("{OK}[privacy]\npseudonymise = \"off\"\n")).unwrap();
        assert!(off.pseudonymiser().unwrap().is_none());
        let err = parse(&format!("{OK}[privacy]\npseudonymise = \"maybe\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("maybe"), "{err}");
        let err = parse(&format!("{OK}[privacy]\ncreate_key = true\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("privacy.create_key"), "{err}");
    }

    #[test]
    fn a_key_file_is_read_and_a_bad_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.key");
        std::fs::write(&good, creditguard_contract::privacy::format_key(&[7u8; 32])).unwrap();
        let with = |path: &Path| {
            parse(&format!(
                "{OK}[privacy]\nkey_file = {:?}\n",
                path.display().to_string()
            ))
            .unwrap()
            .pseudonymiser()
        };
        let p = with(&good).unwrap().unwrap();
        assert_eq!(
            p.key_id(),
            creditguard_contract::privacy::Pseudonymiser::new(&[7u8; 32]).key_id()
        );
        let short = dir.path().join("short.key");
        std::fs::write(&short, "00ff").unwrap();
        let err = with(&short).unwrap_err().to_string();
        assert!(
            err.contains("privacy.key_file") && err.contains("short.key"),
            "{err}"
        );
        let err = with(&dir.path().join("absent.key"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("creditguard keygen"), "{err}");
        // create_key makes the file once; the next resolution reads the same key.
        let made = dir.path().join("sub/made.key");
        let text = format!(
            "{OK}[privacy]\nkey_file = {:?}\ncreate_key = true\n",
            made.display().to_string()
        );
        let first = parse(&text).unwrap().pseudonymiser().unwrap().unwrap();
        let second = parse(&text).unwrap().pseudonymiser().unwrap().unwrap();
        assert_eq!(first.key_id(), second.key_id());
    }

    #[test]
    fn a_lake_at_the_file_system_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("lake");
        std::os::unix::fs::symlink("/", &link).unwrap();
        for root in [
            link.display().to_string(),
            "/".to_string(),
            format!("file://{}", link.display()),
        ] {
            let err = parse(&OK.replace("./lake", &root)).unwrap_err().to_string();
            assert!(
                err.contains("key `lake.root`") && err.contains("file system's root"),
                "{err}"
            );
        }
        assert!(parse(&OK.replace("./lake", &dir.path().display().to_string())).is_ok());
    }

    #[test]
    fn relative_paths_that_leave_the_working_directory_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("roster.csv"), "x").unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let cwd = cwd.path();
        std::fs::create_dir(cwd.join("data")).unwrap();
        std::fs::write(cwd.join("data/roster.csv"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), cwd.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(cwd.join("data"), cwd.join("inside")).unwrap();
        let up = format!(
            "../{}/roster.csv",
            outside.path().file_name().unwrap().to_string_lossy()
        );
        // Other checks (the roster file is read from the process's directory) may fail here.
        let refused = |r: Result<Pipeline, ConfigError>| {
            r.err()
                .is_some_and(|e| e.to_string().contains("leads outside"))
        };
        let with = |key_path: &str, lake: &str| {
            let text = OK.replace("./lake", lake).replace(
                "[lake]",
                &format!("[roster]\npath = \"{key_path}\"\n[lake]"),
            );
            Pipeline::parse_in(Path::new("p.toml"), &text, &Overrides::default(), cwd)
        };
        // Inside, also through `..` that comes back, a link that stays inside, or not yet existing.
        for ok in [
            "data/roster.csv",
            "data/../data/roster.csv",
            "inside/roster.csv",
        ] {
            assert!(!refused(with(ok, "./lake")), "{ok}");
        }
        assert!(!refused(with("data/roster.csv", "new/sub/../lake")));
        // Outside: by `..`, through a link, for a file that exists or one that does not yet.
        for (path, lake) in [
            (up.as_str(), "./lake"),
            ("elsewhere/roster.csv", "./lake"),
            ("data/roster.csv", "../lake"),
            ("data/roster.csv", "elsewhere/new-lake"),
            ("data/roster.csv", "file://../lake"),
        ] {
            let err = with(path, lake).unwrap_err().to_string();
            assert!(
                err.contains("leads outside the working directory"),
                "{path} {lake}: {err}"
            );
            assert_eq!(err.matches("leads outside").count(), 1, "{err}");
            assert!(
                err.contains(if lake == "./lake" {
                    "key `roster.path`"
                } else {
                    "key `lake.root`"
                }),
                "{err}"
            );
        }
        // Explicit: an absolute path, or the command line (whose `--catalog` is relative to the
        // process's directory, so only the path rule is checked here).
        let absolute = outside.path().join("roster.csv");
        assert!(!refused(with(&absolute.display().to_string(), "./lake")));
        let o = Overrides {
            catalog: Some(PathBuf::from(&up)),
            lake: Some("../lake".into()),
            input: None,
        };
        let text = OK.replace("[lake]", &format!("[catalog]\npath = \"{up}\"\n[lake]"));
        assert!(!refused(Pipeline::parse_in(
            Path::new("p.toml"),
            &text,
            &o,
            cwd
        )));
        // Every kind of path in the file is checked, all reported at once.
        let text = format!(
            "{}[roster]\npath = \"../r.csv\"\nleave = \"../l.csv\"\n[policy]\npath = \"../p.toml\"\nassignments = \"../a.csv\"\n[privacy]\nkey_file = \"../k\"\n",
            OK.replace(r#"path = "-""#, r#"path = "../t.ndjson""#)
        );
        let err = Pipeline::parse_in(Path::new("p.toml"), &text, &Overrides::default(), cwd)
            .unwrap_err()
            .to_string();
        for key in [
            "source.path",
            "roster.path",
            "roster.leave",
            "policy.path",
            "policy.assignments",
            "privacy.key_file",
        ] {
            assert!(
                err.contains(&format!("key `{key}`: `../")),
                "{key} in {err}"
            );
        }
    }

    #[test]
    fn the_shipped_pipelines_stay_inside_the_repository() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(repo.join("pipelines")).unwrap() {
            let file = entry.unwrap().path();
            let text = std::fs::read_to_string(&file).unwrap();
            let err = Pipeline::parse_in(&file, &text, &Overrides::default(), repo)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!err.contains("leads outside"), "{}: {err}", file.display());
        }
    }

    #[test]
    fn retention_defaults_and_overrides() {
        assert_eq!(parse(OK).unwrap().retention, RetentionSection::default());
        let p = parse(&format!("{OK}[retention]\nevents_days = 90\n")).unwrap();
        assert_eq!(p.retention.events_days, 90);
        assert_eq!(p.retention.dead_letters_days, 30);
        let err = parse(&format!("{OK}[retention]\nevent_days = 90\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("event_days"), "{err}");
    }

    #[test]
    fn overrides_win_and_are_named_when_wrong() {
        let o = Overrides {
            input: Some("/nonexistent/x.ndjson".into()),
            lake: Some("/tmp/l".into()),
            catalog: None,
        };
        let err = Pipeline::parse(Path::new("p.toml"), OK, &o).unwrap_err();
        assert!(
            err.to_string()
                .contains("--input: `/nonexistent/x.ndjson` does not exist"),
            "{err}"
        );
    }
}
