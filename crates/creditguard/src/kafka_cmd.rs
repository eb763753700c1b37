//! `creditguard ingest`: the long-running Kafka ingest service (see `creditguard_kafka::ingest`).
//!
//! Settings come from the pipeline file's `[kafka]` and `[lake]` sections when `--pipeline` is
//! given, and from flags (each with an environment fallback) on top. SIGTERM / SIGINT: stop
//! reading, write and commit what was read, exit 0; a second signal exits at once (nothing
//! uncommitted is lost, it is read again on restart).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cli::IngestArgs;
use crate::config::{ConfigError, Overrides, Pipeline, PrivacySection, Switch};
use anyhow::Context as _;
use creditguard_kafka::config::parse_duration;
use creditguard_kafka::{Fault, IngestConfig, KafkaSection, Metrics, RollPolicy};
use creditguard_lake::Lake;

/// Runs `creditguard ingest` until SIGTERM / SIGINT.
pub fn execute(args: IngestArgs) -> anyhow::Result<()> {
    let (mut section, lake_root, file, mut privacy) = match &args.pipeline {
        Some(path) => {
            let overrides = Overrides {
                lake: args.lake.clone(),
                ..Overrides::default()
            };
            let pipeline = Pipeline::load(path, &overrides)?;
            let section = pipeline.kafka.clone();
            (
                section,
                Some(pipeline.lake.clone()),
                path.clone(),
                pipeline.privacy.clone(),
            )
        }
        None => (
            KafkaSection::default(),
            args.lake.clone(),
            PathBuf::from("creditguard ingest"),
            PrivacySection::default(),
        ),
    };
    if let Some(on) = &args.pseudonymise {
        privacy.pseudonymise = if on == "off" { Switch::Off } else { Switch::On };
    }
    if args.key_file.is_some() {
        privacy.key_file.clone_from(&args.key_file);
    }
    let set = |target: &mut String, value: &Option<String>| {
        if let Some(v) = value {
            target.clone_from(v);
        }
    };
    set(&mut section.brokers, &args.brokers);
    set(&mut section.topic, &args.topic);
    set(&mut section.group, &args.group);
    set(&mut section.roll_age, &args.roll_age);
    set(&mut section.metrics_addr, &args.metrics_addr);
    if args.dlq_topic.is_some() {
        section.dlq_topic.clone_from(&args.dlq_topic);
    }
    section.roll_rows = args.roll_rows.unwrap_or(section.roll_rows);
    section.roll_bytes = args.roll_bytes.unwrap_or(section.roll_bytes);
    section.max_message_bytes = args.max_message_bytes.unwrap_or(section.max_message_bytes);
    if section.metrics_addr == "none" {
        section.metrics_addr.clear();
    }
    let mut problems = section.problems();
    let mut client = section.client();
    for pair in &args.settings {
        if let Err(e) = client.set_pair(pair) {
            problems.push(e.to_string());
        }
    }
    if lake_root.is_none() {
        problems.push("--lake (or CREDITGUARD_LAKE, or --pipeline) is required".to_string());
    }
    let pseudonymiser = match privacy.resolve(true) {
        Ok(p) => p,
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let fault = match Fault::from_env() {
        Ok(f) => f,
        Err(e) => {
            problems.push(e.to_string());
            Fault::none()
        }
    };
    if !problems.is_empty() {
        return Err(ConfigError { file, problems }.into());
    }
    let lake_root = lake_root.expect("checked above");
    let lake =
        Lake::open(&lake_root).with_context(|| format!("opening the lake at {lake_root}"))?;
    let cfg = IngestConfig {
        client,
        topic: section.topic.clone(),
        group: section.group.clone(),
        dlq_topic: section.dlq_topic(),
        roll: RollPolicy {
            rows: section.roll_rows,
            bytes: section.roll_bytes,
            age: parse_duration(&section.roll_age).map_err(anyhow::Error::msg)?,
        },
        privacy: pseudonymiser,
        max_message_bytes: section.max_message_bytes,
    };

    // A service, not a batch job: freed pages go back to the kernel after a second unused
    // instead of being kept (see creditguard_alloc).
    let decay = creditguard_alloc::SERVICE_DIRTY_DECAY_MS;
    if creditguard_alloc::hand_back_freed_pages(decay) {
        tracing::debug!(
            dirty_decay_ms = decay,
            "Freed memory is handed back after the decay."
        );
    }
    let metrics = Arc::new(Metrics::new(&cfg.topic));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (quit_tx, quit_rx) = tokio::sync::oneshot::channel::<()>();
    if !section.metrics_addr.is_empty() {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(&section.metrics_addr))
            .with_context(|| format!("listening on {} for /metrics", section.metrics_addr))?;
        tracing::info!(addr = %section.metrics_addr, "Serving /metrics, /healthz, /readyz.");
        rt.spawn(creditguard_kafka::http::serve(
            listener,
            metrics.clone(),
            async {
                let _ = quit_rx.await;
            },
        ));
    }
    let stop_signal = stop.clone();
    rt.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            tracing::error!("Cannot install signal handlers.");
            return;
        };
        for round in 0.. {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if round == 0 {
                tracing::info!("Signal received: draining (write, commit, exit).");
                stop_signal.store(true, Ordering::Relaxed);
            } else {
                tracing::warn!("Second signal: exiting without draining; uncommitted messages are read again on restart.");
                std::process::exit(130);
            }
        }
    });
    let summary = creditguard_kafka::ingest::run(&cfg, &lake, metrics, Arc::new(fault), &stop)?;
    let _ = quit_tx.send(());
    eprintln!(
        "creditguard ingest: {} messages, {} events committed in {} files, {} dead letters",
        summary.messages, summary.events_committed, summary.files_committed, summary.dead_letters
    );
    Ok(())
}
