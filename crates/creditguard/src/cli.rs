//! The command line: every command's arguments and options, with the environment variable
//! each can also be set from. The commands themselves live in the modules named by each
//! struct's doc; `main` dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::parse_day_arg;
use creditguard_detect::Shard;

/// Catches cheating in corporate training from learning-platform telemetry.
#[derive(Debug, Parser)]
#[command(name = "creditguard", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "CREDITGUARD_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info,creditguard_ingest=debug`).
    #[arg(long, global = true, default_value = "warn", env = "RUST_LOG")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the stages of a pipeline file (ingest, jobs, score, …).
    Run(RunArgs),
    /// Consume the Kafka telemetry topic into the lake (long-running; SIGTERM drains and exits 0).
    Ingest(IngestArgs),
    /// Run one detection job (or `all`) for a day (`--day`) or a range (`--from`/`--to`): backfills.
    Job(JobArgs),
    /// Score a day (`--day`) or a range (`--from`/`--to`): credit decisions, cases, progress.
    Score(ScoreArgs),
    /// Work the review queue: list and show cases, assign, comment, ask for information,
    /// decide (releasing or cancelling withheld credits), appeal; rule feedback.
    Review(ReviewArgs),
    /// The review audit trail: verify its hash chain, export it as NDJSON.
    Audit(AuditArgs),
    /// The review web app for HR reviewers (queue, cases, decisions, overview, audit trail).
    Serve(ServeArgs),
    /// Accounts of the review web app: add, disable, set-password, list.
    Users(UsersArgs),
    /// Run candidate thresholds over history into a scratch lake and compare with the lake:
    /// flags added and removed per rule and org unit, cases, claims, reviewers' verdicts.
    Backtest(BacktestArgs),
    /// The credit policy: which rule applies to a learner and why (`policy explain USER`).
    Policy(PolicyArgs),
    /// Summarise the result tables of a period in the terminal, and as HTML with `--html`.
    Report(ReportArgs),
    /// Generate synthetic telemetry with labelled cheating, its course catalog and the labels.
    Generate(GenerateArgs),
    /// Convert public logs (EdNet KT4/KT1, Open edX tracking logs, UCI EPM) to telemetry-v1 NDJSON.
    Import(ImportArgs),
    /// Delete the lake's day partitions older than `[retention]` allows (`--dry-run`: list them).
    Retain(RetainArgs),
    /// Erase a learner: their rows from every lake table and the review database, recorded in
    /// the audit trail.
    Erase(EraseArgs),
    /// Write a new random pseudonymisation key (hex) to a file readable by its owner only, for
    /// `[privacy] key_file`; prints its key id.
    Keygen {
        /// The key file to create (an existing file is never overwritten).
        #[arg(long, env = "CREDITGUARD_PSEUDONYM_KEY_FILE")]
        out: PathBuf,
    },
    /// List every rule with the thresholds the pipeline sets for it (the defaults without a
    /// pipeline), how its severity grows and the evidence its flags carry.
    Rules(RulesArgs),
    /// Check a pipeline file without running it (exit 2 and every problem when it is wrong).
    Validate {
        /// The pipeline file.
        #[arg(env = "CREDITGUARD_PIPELINE")]
        pipeline: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The pipeline file.
    #[arg(env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// Read telemetry from here instead of `source.path` (a file, a directory, or `-` for stdin).
    #[arg(long, env = "CREDITGUARD_INPUT")]
    pub input: Option<PathBuf>,
    /// Course catalog instead of `catalog.path`.
    #[arg(long, env = "CREDITGUARD_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Lake (a directory or s3://bucket/prefix) instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// First event day (YYYY-MM-DD) for the stages after ingest; default: the first in the lake.
    #[arg(long, env = "CREDITGUARD_FROM", value_parser = parse_day_arg)]
    pub from: Option<i64>,
    /// Last event day (YYYY-MM-DD), inclusive; default: the last in the lake.
    #[arg(long, env = "CREDITGUARD_TO", value_parser = parse_day_arg)]
    pub to: Option<i64>,
    /// Never show a progress bar (it is shown only on a terminal anyway).
    #[arg(long, env = "CREDITGUARD_NO_PROGRESS")]
    pub no_progress: bool,
}

/// Consume the telemetry topic into the lake (a consumer-group member; run one per machine).
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Pipeline file whose `[kafka]` and `[lake]` sections give the defaults.
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: Option<PathBuf>,
    /// Bootstrap brokers (`host:port,…`).
    #[arg(long, env = "CREDITGUARD_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// The telemetry topic.
    #[arg(long, env = "CREDITGUARD_KAFKA_TOPIC")]
    pub topic: Option<String>,
    /// The consumer group.
    #[arg(long, env = "CREDITGUARD_KAFKA_GROUP")]
    pub group: Option<String>,
    /// The dead-letter topic (default `<topic>.dlq`).
    #[arg(long, env = "CREDITGUARD_KAFKA_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Lake directory (or `file://` URL) instead of the pipeline's `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// Raw librdkafka setting `key=value`, repeatable (SASL, TLS, …); in the environment,
    /// several separated by `;`. Secrets are never logged.
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "CREDITGUARD_KAFKA_SETTINGS",
        value_delimiter = ';'
    )]
    pub settings: Vec<String>,
    /// Roll a partition's file after this many valid events [default: `[kafka] roll_rows`, else
    /// 100000; lower it to bound memory: each range in flight is held in memory].
    #[arg(long, env = "CREDITGUARD_KAFKA_ROLL_ROWS")]
    pub roll_rows: Option<usize>,
    /// Roll a partition's file after this many payload bytes [default: `[kafka] roll_bytes`, else
    /// 33554432].
    #[arg(long, env = "CREDITGUARD_KAFKA_ROLL_BYTES")]
    pub roll_bytes: Option<u64>,
    /// Roll a partition's file this long after its first message (`5s`, `500ms`) [default:
    /// `[kafka] roll_age`, else 5s].
    #[arg(long, env = "CREDITGUARD_KAFKA_ROLL_AGE")]
    pub roll_age: Option<String>,
    /// Pseudonymise identifiers (`on`/`off`) [default: the pipeline's `privacy.pseudonymise`,
    /// else `on`].
    #[arg(long, env = "CREDITGUARD_PSEUDONYMISE", value_parser = ["on", "off"])]
    pub pseudonymise: Option<String>,
    /// The pseudonymisation key file [default: the pipeline's `privacy.key_file`, else the key
    /// in the environment variable `CREDITGUARD_PSEUDONYM_KEY`].
    #[arg(long, env = "CREDITGUARD_PSEUDONYM_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Address of `/metrics`, `/healthz`, `/readyz` (`none` to disable).
    #[arg(long, env = "CREDITGUARD_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Dead-letter messages larger than this many bytes unparsed, keeping their first 64 KiB
    /// [default: `[kafka] max_message_bytes`, else 4194304].
    #[arg(long, env = "CREDITGUARD_KAFKA_MAX_MESSAGE_BYTES")]
    pub max_message_bytes: Option<usize>,
}

/// The flags `job` and `score` share: the pipeline, the period, and overrides of where to read
/// and write.
#[derive(Debug, clap::Args)]
pub struct PeriodArgs {
    /// The pipeline file (lake, catalog and the stage's settings).
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// One day (YYYY-MM-DD).
    #[arg(long, env = "CREDITGUARD_DAY", value_parser = parse_day_arg, conflicts_with_all = ["from", "to"])]
    pub day: Option<i64>,
    /// First day of a range (YYYY-MM-DD); default: the first day with events.
    #[arg(long, env = "CREDITGUARD_FROM", value_parser = parse_day_arg)]
    pub from: Option<i64>,
    /// Last day of a range, inclusive; default: the last day with events.
    #[arg(long, env = "CREDITGUARD_TO", value_parser = parse_day_arg)]
    pub to: Option<i64>,
    /// Lake directory instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// Course catalog instead of `catalog.path`.
    #[arg(long, env = "CREDITGUARD_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Run id written into the output; default: derived from the pipeline text, what runs and
    /// the days, so a re-run of the same thing carries the same id.
    #[arg(long, env = "CREDITGUARD_RUN_ID")]
    pub run_id: Option<String>,
}

/// `creditguard job`: run one detection job (or `all`) for a day or a range of days.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job: watch_time, multi_login, course_switching, credit_burst, quiz_speed,
    /// shared_device, automation, proxy_learning, or `all`; `merge` publishes a sharded run of
    /// `all` (with --shards).
    pub name: String,
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Run `all` for the users of shard K of N only (K/N, 0 ≤ K < N; a user's shard is
    /// xxh3_64(user_id) mod N). The output waits in the lake's staging until `job merge --shards
    /// N` with the same pipeline and days publishes it.
    #[arg(long, env = "CREDITGUARD_SHARD", value_parser = parse_shard, conflicts_with = "shards")]
    pub shard: Option<Shard>,
    /// The number of shards: with `job all`, this process runs shard `JOB_COMPLETION_INDEX` (set
    /// by a Kubernetes Indexed Job); with `job merge`, how many shards to merge.
    #[arg(long, env = "CREDITGUARD_SHARDS")]
    pub shards: Option<u32>,
    /// Re-run the days that received events (late ones included) since this time (RFC 3339, or
    /// a day: its start, UTC), and the day either side of each; instead of --day/--from/--to.
    #[arg(long, env = "CREDITGUARD_CHANGED_SINCE", value_parser = parse_since,
          conflicts_with_all = ["day", "from", "to", "shard", "shards"])]
    pub changed_since: Option<i64>,
}

/// `creditguard score`: score a day or a range of days.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Also write the results stream to stdout.
    #[arg(long, value_enum, default_value_t = Emit::None, env = "CREDITGUARD_EMIT")]
    pub emit: Emit,
    /// Re-score claims of the period already decided under other thresholds or another credit
    /// policy (by a reviewer, or granted by the scorer). Without it, a run refuses when
    /// reviewers decided such claims, and keeps the records of those the scorer granted.
    #[arg(long)]
    pub rescore_decided: bool,
    /// Who re-scores decided claims (recorded in the audit trail with `--rescore-decided`).
    #[arg(long = "as", env = "CREDITGUARD_OPERATOR", default_value = "score")]
    pub actor: String,
}

/// Where `creditguard score` also sends the results stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Only the result tables (and `results/stream/` NDJSON files when `score.write_stream`).
    None,
    /// Also every flag, credit and case record as NDJSON on stdout (the summary goes to stderr;
    /// `employee_id` with `[results] identify = true`).
    Ndjson,
}

/// `creditguard review`: work the cases.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub command: ReviewCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReviewCommand {
    /// The review queue: cases by risk, filtered by status, org unit (and below), rule, user.
    List {
        #[command(flatten)]
        target: Target,
        /// Only these statuses (repeatable); default: the ones waiting for a reviewer
        /// (open, in_review, needs_info, appealed). `all` for every status.
        #[arg(long)]
        status: Vec<String>,
        /// Only cases of this org unit and the units under it (`east` matches `east/sales`).
        #[arg(long)]
        org_unit: Option<String>,
        /// Only cases with a flag of this rule (e.g. `credit_burst.poisson_tail`).
        #[arg(long)]
        rule: Option<String>,
        /// Only this learner's cases.
        #[arg(long)]
        user: Option<String>,
        /// Only cases assigned to this reviewer.
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One case: flags with their evidence, claims, history, the learner's other cases.
    Show {
        #[command(flatten)]
        target: Target,
        case_id: String,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Assign a case to a reviewer (→ in_review).
    Assign {
        #[command(flatten)]
        target: Target,
        case_id: String,
        #[command(flatten)]
        actor: Actor,
        /// The reviewer who takes the case.
        #[arg(long)]
        to: String,
    },
    /// Add a comment to a case's history.
    Comment {
        #[command(flatten)]
        target: Target,
        case_id: String,
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        text: String,
    },
    /// Ask for more information before deciding (→ needs_info).
    RequestInfo {
        #[command(flatten)]
        target: Target,
        case_id: String,
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        reason: String,
    },
    /// Decide a case: confirmed cancels its withheld claims, dismissed releases them,
    /// partially_confirmed cancels the claims given with --claims and releases the rest.
    Decide {
        #[command(flatten)]
        target: Target,
        case_id: String,
        #[command(flatten)]
        actor: Actor,
        /// confirmed, dismissed or partially_confirmed.
        #[arg(long, alias = "verdict", value_parser = ["confirmed", "dismissed", "partially_confirmed"])]
        decision: String,
        /// Why, in your words (required; the learner may read it on appeal).
        #[arg(long)]
        reason: String,
        /// For partially_confirmed: the claims (credit ids, comma-separated or repeated) you
        /// confirm as cheating, which are cancelled; the case's other claims are released.
        #[arg(long, value_delimiter = ',')]
        claims: Vec<String>,
    },
    /// Reopen a decided case on the learner's appeal (→ appealed).
    Appeal {
        #[command(flatten)]
        target: Target,
        case_id: String,
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        reason: String,
    },
    /// Reviewers' verdicts per rule and org unit: flags confirmed, dismissed, pending.
    Feedback {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// The pipeline whose review database and lake a command works on.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The pipeline file (its lake, `[review]` and `[kafka]`).
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// Lake directory instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
}

/// Who acts: recorded in the audit trail with every change. Required.
#[derive(Debug, Clone, clap::Args)]
pub struct Actor {
    /// Your reviewer id (recorded with the change).
    #[arg(long = "as", env = "CREDITGUARD_REVIEWER")]
    pub actor: String,
    /// The case version you looked at (`review show` prints it): the change is refused if the
    /// case changed since.
    #[arg(long)]
    pub expect_version: Option<i64>,
}

/// How `review list`/`show` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal.
    Text,
    /// One JSON document (for scripts).
    Json,
}

/// `creditguard audit`: the review audit trail.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the audit trail (exit 1 naming the first bad record).
    Verify {
        #[command(flatten)]
        target: Target,
    },
    /// The audit records of a period as NDJSON on stdout.
    Export {
        #[command(flatten)]
        target: Target,
        /// First day (YYYY-MM-DD, UTC); default: the beginning.
        #[arg(long, value_parser = parse_day_arg)]
        from: Option<i64>,
        /// Last day, inclusive; default: today.
        #[arg(long, value_parser = parse_day_arg)]
        to: Option<i64>,
    },
}

/// `creditguard serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The pipeline file (its lake, catalog and `[review]`).
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// Lake directory instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// Address to listen on instead of `[review] listen` (default 127.0.0.1:8080).
    #[arg(long, env = "CREDITGUARD_LISTEN")]
    pub listen: Option<String>,
}

/// `creditguard users`: accounts of the review web app.
#[derive(Debug, clap::Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Add an account; the password is read from standard input (one line).
    Add {
        #[command(flatten)]
        target: Target,
        /// The username (letters, digits, `.`, `_`, `-`, `@`).
        name: String,
        /// reviewer, lead, auditor or admin.
        #[arg(long, value_parser = ["reviewer", "lead", "auditor", "admin"])]
        role: String,
        /// An org-unit subtree the account sees (repeatable; `*` for every unit). Required for
        /// reviewers and leads.
        #[arg(long)]
        scope: Vec<String>,
        /// Who is making the change (recorded in the audit trail).
        #[arg(
            long = "as",
            env = "CREDITGUARD_REVIEWER",
            default_value = "creditguard users"
        )]
        actor: String,
    },
    /// Disable an account (its sessions end at once).
    Disable {
        #[command(flatten)]
        target: Target,
        name: String,
        #[arg(
            long = "as",
            env = "CREDITGUARD_REVIEWER",
            default_value = "creditguard users"
        )]
        actor: String,
    },
    /// Set an account's password from standard input (its sessions end).
    SetPassword {
        #[command(flatten)]
        target: Target,
        name: String,
        #[arg(
            long = "as",
            env = "CREDITGUARD_REVIEWER",
            default_value = "creditguard users"
        )]
        actor: String,
    },
    /// List the accounts.
    List {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The candidate pipeline: the real lake (`lake.root`) and review database, with the
    /// thresholds to try.
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// First and last event day to compare.
    #[arg(long, value_parser = parse_day_arg)]
    pub from: i64,
    #[arg(long, value_parser = parse_day_arg)]
    pub to: i64,
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Which rule of the pipeline's credit policy applies to a learner, and why.
    Explain {
        /// The learner's user id (as in the roster).
        user: String,
        /// The pipeline file naming `[roster]` and `[policy]`.
        #[arg(long, env = "CREDITGUARD_PIPELINE")]
        pipeline: PathBuf,
        /// The business-local day to measure the year's target at (default: today).
        #[arg(long, value_parser = parse_day_arg)]
        as_of: Option<i64>,
    },
}

/// `creditguard report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The lake directory.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: String,
    /// First day (YYYY-MM-DD); default: the first day with credits or cases.
    #[arg(long, env = "CREDITGUARD_FROM", value_parser = parse_day_arg)]
    pub from: Option<i64>,
    /// Last day, inclusive; default: the last day with credits or cases.
    #[arg(long, env = "CREDITGUARD_TO", value_parser = parse_day_arg)]
    pub to: Option<i64>,
    /// Also write a self-contained HTML report (inline CSS and SVG) with a timeline per case.
    #[arg(long, env = "CREDITGUARD_REPORT_HTML")]
    pub html: Option<PathBuf>,
    /// How many of the riskiest cases the terminal summary lists.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// How many of the riskiest cases get a timeline in the HTML report.
    #[arg(long, default_value_t = 50)]
    pub timelines: usize,
}

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

/// Convert a public log format to telemetry-v1 NDJSON (and a course catalog).
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Source format.
    #[arg(value_enum)]
    pub format: FormatArg,
    /// Input file or folder.
    #[arg(long = "in", env = "CREDITGUARD_IMPORT_IN")]
    pub input: PathBuf,
    /// Output NDJSON (zstd-compressed when it ends in `.zst`).
    #[arg(long, env = "CREDITGUARD_IMPORT_OUT")]
    pub out: PathBuf,
    /// Also write the synthesized course catalog CSV here.
    #[arg(long, env = "CREDITGUARD_IMPORT_CATALOG_OUT")]
    pub catalog_out: Option<PathBuf>,
    /// EdNet-Contents folder (questions.csv, lectures.csv); default: `contents/` in the input.
    #[arg(long, env = "CREDITGUARD_IMPORT_CONTENTS")]
    pub contents: Option<PathBuf>,
}

/// The source formats on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FormatArg {
    /// EdNet KT4 action logs (dataset folder with KT4/ and contents/, a folder of u*.csv, a file).
    EdnetKt4,
    /// EdNet KT1 answer logs (dataset folder with KT1_merged/ and KT1_raw/, a folder, a file).
    EdnetKt1,
    /// Open edX tracking logs (a tracking.log, a .json event, or a folder of them).
    Openedx,
    /// UCI EPM activity records (dataset folder with Processes/, a Session_<n> folder, a file).
    UciEpm,
}

/// `creditguard retain`.
#[derive(Debug, clap::Args)]
pub struct RetainArgs {
    /// The pipeline file (its `[retention]`, lake and review database).
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// Lake directory instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// Print what would be removed; remove nothing, record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The day ages are counted from (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, env = "CREDITGUARD_TODAY", value_parser = parse_day_arg)]
    pub today: Option<i64>,
    /// Who runs it (recorded in the audit trail).
    #[arg(long = "as", env = "CREDITGUARD_OPERATOR", default_value = "retention")]
    pub actor: String,
}

/// `creditguard erase`.
#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    /// The learner's id as the platform knows it (mapped with the pipeline's key when
    /// `[privacy]` pseudonymises); with `--pseudonym`, the id as stored in the lake.
    pub user: String,
    /// The pipeline file (its `[privacy]` key, lake and review database).
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// Lake directory instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// USER is the lake's id (a pseudonym, e.g. made under an earlier key), not the real id.
    #[arg(long)]
    pub pseudonym: bool,
    /// Who runs it (recorded in the audit trail).
    #[arg(long = "as", env = "CREDITGUARD_OPERATOR", default_value = "erasure")]
    pub actor: String,
}

/// `creditguard rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// The pipeline file whose `[jobs]` settings to show; the defaults without one.
    #[arg(env = "CREDITGUARD_PIPELINE")]
    pub pipeline: Option<PathBuf>,
    /// `text` for a terminal, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `--shard K/N`.
fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse()
}

/// `--changed-since`: an RFC 3339 time, or a day (its start, UTC).
fn parse_since(s: &str) -> Result<i64, String> {
    creditguard_contract::time::parse_rfc3339_us(s)
        .or_else(|_| {
            creditguard_contract::time::parse_day(s).map(|d| d * creditguard_detect::DAY_US)
        })
        .map_err(|_| format!("`{s}`: expected a time (2026-03-02T06:00:00Z) or a day (2026-03-02)"))
}
