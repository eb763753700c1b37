//! The `creditguard` command line.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use creditguard::cli::{Cli, Command, LogFormat};
use creditguard::config::{ConfigError, Overrides, Pipeline};
use creditguard::run::{render_summary, run, RunOptions};

use creditguard::{generate, import, kafka_cmd};

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
        Command::Rules(args) => {
            let jobs = match &args.pipeline {
                Some(p) => Pipeline::load(p, &Overrides::default())?.jobs,
                None => creditguard_detect::JobsConfig::default(),
            };
            match args.format {
                creditguard::cli::Format::Text => print!("{}", creditguard::rules::render(&jobs)),
                creditguard::cli::Format::Json => {
                    println!("{:#}", creditguard::rules::to_json(&jobs))
                }
            }
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
