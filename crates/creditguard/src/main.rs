//! The `creditguard` command line.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use creditguard::config::{ConfigError, Overrides, Pipeline};
use creditguard::run::{render_summary, run, RunOptions};

mod generate;
mod import;
mod kafka_cmd;

/// Catches cheating in corporate training from learning-platform telemetry.
#[derive(Debug, Parser)]
#[command(name = "creditguard", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty, env = "CREDITGUARD_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info,creditguard_ingest=debug`).
    #[arg(long, global = true, default_value = "warn", env = "RUST_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the stages of a pipeline file (ingest, jobs, score, …).
    Run(RunArgs),
    /// Consume the Kafka telemetry topic into the lake (long-running; SIGTERM drains and exits 0).
    Ingest(kafka_cmd::IngestArgs),
    /// Run one detection job (or `all`) for a day (`--day`) or a range (`--from`/`--to`): backfills.
    Job(creditguard::jobs::JobArgs),
    /// Score a day (`--day`) or a range (`--from`/`--to`): credit decisions, cases, progress.
    Score(creditguard::score::ScoreArgs),
    /// Work the review queue: list and show cases, assign, comment, ask for information,
    /// decide (releasing or cancelling withheld credits), appeal; rule feedback.
    Review(creditguard::review::ReviewArgs),
    /// The review audit trail: verify its hash chain, export it as NDJSON.
    Audit(creditguard::review::AuditArgs),
    /// The review web app for HR reviewers (queue, cases, decisions, overview, audit trail).
    Serve(creditguard::serve::ServeArgs),
    /// Accounts of the review web app: add, disable, set-password, list.
    Users(creditguard::serve::UsersArgs),
    /// Run candidate thresholds over history into a scratch lake and compare with the lake:
    /// flags added and removed per rule and org unit, cases, claims, reviewers' verdicts.
    Backtest(creditguard::backtest::BacktestArgs),
    /// The credit policy: which rule applies to a learner and why (`policy explain USER`).
    Policy(creditguard::policy::PolicyArgs),
    /// Summarise the result tables of a period in the terminal, and as HTML with `--html`.
    Report(creditguard::report::ReportArgs),
    /// Generate synthetic telemetry with labelled cheating, its course catalog and the labels.
    Generate(generate::GenerateArgs),
    /// Convert public logs (EdNet KT4/KT1, Open edX tracking logs, UCI EPM) to telemetry-v1 NDJSON.
    Import(import::ImportArgs),
    /// Delete the lake's day partitions older than `[retention]` allows (`--dry-run`: list them).
    Retain(creditguard::retention::RetainArgs),
    /// Erase a learner: their rows from every lake table and the review database, recorded in
    /// the audit trail.
    Erase(creditguard::retention::EraseArgs),
    /// Write a new random pseudonymisation key (hex) to a file readable by its owner only, for
    /// `[privacy] key_file`; prints its key id.
    Keygen {
        /// The key file to create (an existing file is never overwritten).
        #[arg(long, env = "CREDITGUARD_PSEUDONYM_KEY_FILE")]
        out: PathBuf,
    },
    /// Check a pipeline file without running it (exit 2 and every problem when it is wrong).
    Validate {
        /// The pipeline file.
        #[arg(env = "CREDITGUARD_PIPELINE")]
        pipeline: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The pipeline file.
    #[arg(env = "CREDITGUARD_PIPELINE")]
    pipeline: PathBuf,
    /// Read telemetry from here instead of `source.path` (a file, a directory, or `-` for stdin).
    #[arg(long, env = "CREDITGUARD_INPUT")]
    input: Option<PathBuf>,
    /// Course catalog instead of `catalog.path`.
    #[arg(long, env = "CREDITGUARD_CATALOG")]
    catalog: Option<PathBuf>,
    /// Lake (a directory or s3://bucket/prefix) instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    lake: Option<String>,
    /// First event day (YYYY-MM-DD) for the stages after ingest; default: the first in the lake.
    #[arg(long, env = "CREDITGUARD_FROM", value_parser = creditguard::config::parse_day_arg)]
    from: Option<i64>,
    /// Last event day (YYYY-MM-DD), inclusive; default: the last in the lake.
    #[arg(long, env = "CREDITGUARD_TO", value_parser = creditguard::config::parse_day_arg)]
    to: Option<i64>,
    /// Never show a progress bar (it is shown only on a terminal anyway).
    #[arg(long, env = "CREDITGUARD_NO_PROGRESS")]
    no_progress: bool,
}

fn init_logs(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("creditguard: ignoring log filter `{filter}`: {e}");
        tracing_subscriber::EnvFilter::new("warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

// jemalloc, keeping freed memory for reuse (see creditguard_alloc).
creditguard::alloc::use_jemalloc!();

/// Exit codes: 0 done, 1 failed (IO, broker, …), 2 configuration or usage error.
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format, &cli.log);
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<ConfigError>() {
            Some(config) => {
                eprint!("creditguard: {config}");
                ExitCode::from(2)
            }
            None if e
                .downcast_ref::<creditguard::review::ReviewUsageError>()
                .is_some() =>
            {
                eprintln!("creditguard: {e}");
                ExitCode::from(2)
            }
            None if e.downcast_ref::<creditguard::jobs::UsageError>().is_some() => {
                eprintln!("creditguard: {e}");
                ExitCode::from(2)
            }
            None if e.downcast_ref::<generate::UsageError>().is_some() => {
                eprint!("creditguard: {e}");
                ExitCode::from(2)
            }
            None => {
                eprintln!("creditguard: error: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Job(args) => creditguard::jobs::execute(args),
        Command::Score(args) => creditguard::score::execute(args),
        Command::Report(args) => creditguard::report::execute(args),
        Command::Policy(args) => creditguard::policy::execute(args),
        Command::Backtest(args) => creditguard::backtest::execute(args),
        Command::Review(args) => creditguard::review::execute(args),
        Command::Audit(args) => creditguard::review::execute_audit(args),
        Command::Serve(args) => creditguard::serve::execute_serve(args),
        Command::Users(args) => creditguard::serve::execute_users(args),
        Command::Generate(args) => generate::run(args),
        Command::Import(args) => import::execute(args),
        Command::Ingest(args) => kafka_cmd::execute(args),
        Command::Run(args) => {
            let overrides = Overrides {
                input: args.input,
                catalog: args.catalog,
                lake: args.lake,
            };
            let pipeline = Pipeline::load(&args.pipeline, &overrides)?;
            let opts = RunOptions {
                progress: !args.no_progress && std::io::stderr().is_terminal(),
                from_day: args.from,
                to_day: args.to,
            };
            let summary = run(&pipeline, &opts)?;
            print!("{}", render_summary(&pipeline, &summary));
            Ok(())
        }
        Command::Retain(args) => {
            print!("{}", creditguard::retention::retain(&args)?);
            Ok(())
        }
        Command::Erase(args) => {
            let erasure = creditguard::retention::erase(&args)?;
            print!("{}", creditguard::retention::render_erasure(&erasure));
            Ok(())
        }
        Command::Keygen { out } => {
            let key = creditguard::config::write_new_key(&out)
                .map_err(|e| anyhow::anyhow!("keygen: cannot create `{}`: {e}", out.display()))?;
            let id = creditguard_contract::privacy::Pseudonymiser::new(&key);
            println!("{}: new key {}", out.display(), id.key_id());
            Ok(())
        }
        Command::Validate { pipeline } => {
            let p = Pipeline::load(&pipeline, &Overrides::default())?;
            if p.ingests() {
                if let Err(problem) = p.privacy.resolve(false) {
                    return Err(ConfigError {
                        file: pipeline.clone(),
                        problems: vec![problem],
                    }
                    .into());
                }
            }
            let stages: Vec<&str> = p.stages.iter().map(|s| s.name()).collect();
            println!(
                "{}: ok (pipeline `{}`, stages: {})",
                pipeline.display(),
                p.name,
                stages.join(", ")
            );
            Ok(())
        }
    }
}
