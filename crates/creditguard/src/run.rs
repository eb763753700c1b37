//! `creditguard run`: the stages of a pipeline file, in order, with one summary at the end.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use creditguard_ingest::{IngestOptions, IngestStats};
use creditguard_kafka::ProduceReport;
use creditguard_lake::Lake;

use crate::config::{Pipeline, Source, Stage};
use crate::results_topic::{produce_results, results_topic_line};

/// What a run did, stage by stage.
#[derive(Debug, Default)]
pub struct RunSummary {
    pub ingest: Option<IngestStats>,
    /// The key id identifiers were pseudonymised with at ingest (`None`: stored as received).
    pub pseudonym_key: Option<String>,
    pub jobs: Option<creditguard_detect::JobsReport>,
    pub score: Option<creditguard_score::ScoreReport>,
    /// What the score stage did with the review database.
    pub review: Option<crate::review::ReviewSync>,
    /// What went to `[kafka] results_topic` after the score stage (acknowledged by the broker).
    pub results_topic: Option<ProduceReport>,
    /// Decision records of earlier `review decide` runs that had not reached the results topic.
    pub decisions_topic: Option<ProduceReport>,
    pub elapsed: Duration,
}

/// Options of one run beyond the pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// First and last event day to run the later stages for (default: all days in the lake).
    pub from_day: Option<i64>,
    pub to_day: Option<i64>,
}

/// Runs every stage of `pipeline`.
pub fn run(pipeline: &Pipeline, opts: &RunOptions) -> anyhow::Result<RunSummary> {
    let start = Instant::now();
    // Before anything is written: a missing key stops the run (exit 2), not the ingest half-way.
    let privacy = if pipeline.has(Stage::Ingest) {
        pipeline.pseudonymiser()?
    } else {
        None
    };
    let lake = Lake::open(&pipeline.lake)
        .with_context(|| format!("opening the lake at {}", pipeline.lake))?;
    let mut summary = RunSummary {
        pseudonym_key: privacy.as_ref().map(|p| p.key_id().to_string()),
        ..RunSummary::default()
    };
    for stage in &pipeline.stages {
        let _span = tracing::info_span!("stage", stage = stage.name()).entered();
        match stage {
            Stage::Ingest => {
                summary.ingest = Some(ingest_stage(pipeline, &lake, opts, privacy.clone())?)
            }
            Stage::Jobs => {
                let run_id = crate::jobs::run_id(pipeline, "jobs", opts.from_day, opts.to_day);
                summary.jobs = Some(crate::jobs::run_stage(
                    pipeline,
                    &lake,
                    opts.from_day,
                    opts.to_day,
                    &run_id,
                )?)
            }
            Stage::Score => {
                let run_id = crate::jobs::run_id(pipeline, "score", opts.from_day, opts.to_day);
                if let Some(scored) = crate::score::run_stage(
                    pipeline,
                    &lake,
                    opts.from_day,
                    opts.to_day,
                    &run_id,
                    &crate::score::Rescore::default(),
                )? {
                    summary.results_topic = produce_results(pipeline, &scored.report)?;
                    summary.decisions_topic = crate::review::publish_pending(pipeline)?;
                    summary.score = Some(scored.report);
                    summary.review = Some(scored.review);
                }
            }
        }
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

fn ingest_stage(
    pipeline: &Pipeline,
    lake: &Lake,
    opts: &RunOptions,
    privacy: Option<creditguard_contract::privacy::Pseudonymiser>,
) -> anyhow::Result<IngestStats> {
    let input = match &pipeline.source {
        Source::Ndjson(input) => input.clone(),
        Source::Kafka => anyhow::bail!(
            "{}: the `ingest` stage of a Kafka pipeline is the long-running `creditguard ingest` service; \
             remove `ingest` from `pipeline.stages` to run the batch stages",
            pipeline.file.display()
        ),
    };
    let total: u64 = match &input {
        creditguard_ingest::Input::Path(p) => creditguard_ingest::expand_input(p)?
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum(),
        creditguard_ingest::Input::Stdin => 0,
    };
    let bar = (opts.progress && total > 0).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "ingest {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("progress template is valid"),
        );
        bar
    });
    let options = IngestOptions {
        chunk_lines: pipeline.ingest.chunk_lines,
        chunk_bytes: pipeline.ingest.chunk_bytes,
        privacy,
        max_line_bytes: pipeline.ingest.max_line_bytes,
        max_decompression_ratio: pipeline.ingest.max_decompression_ratio,
    };
    let stats =
        creditguard_ingest::ingest(lake, std::slice::from_ref(&input), &options, &mut |bytes| {
            if let Some(bar) = &bar {
                bar.set_position(bytes);
            }
        })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    tracing::info!(
        valid = stats.valid,
        duplicates = stats.duplicates,
        dead_lettered = stats.dead_lettered,
        files = stats.files_written,
        "Ingest finished."
    );
    Ok(stats)
}

/// The human summary printed at the end of a run.
pub fn render_summary(pipeline: &Pipeline, summary: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "creditguard run {} ({})",
        pipeline.name,
        pipeline.file.display()
    );
    if let Some(s) = &summary.ingest {
        let secs = s.elapsed.as_secs_f64().max(1e-9);
        let _ = writeln!(
            out,
            "ingest     {} source(s), {} lines, {:.1} MB read",
            s.sources,
            s.lines,
            s.bytes as f64 / 1e6
        );
        let _ = writeln!(out, "  valid          {:>10}", s.valid);
        let _ = writeln!(
            out,
            "  duplicates     {:>10}  (second deliveries of an event_id, dropped)",
            s.duplicates
        );
        let kinds: Vec<String> = s
            .dead_letter_kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  dead-lettered  {:>10}  {}→ {}/dead_letters/",
            s.dead_lettered,
            if kinds.is_empty() {
                String::new()
            } else {
                format!("({}) ", kinds.join(", "))
            },
            pipeline.lake.trim_end_matches('/')
        );
        if s.blank > 0 {
            let _ = writeln!(out, "  blank lines    {:>10}  (skipped)", s.blank);
        }
        let _ = match &summary.pseudonym_key {
            Some(k) => writeln!(
                out,
                "  identifiers    pseudonymised (key {k}); addresses as networks, places to 0.1°"
            ),
            None => writeln!(
                out,
                "  identifiers    stored as received (privacy.pseudonymise = \"off\")"
            ),
        };
        let _ = writeln!(
            out,
            "  files written  {:>10}  → {}/events/",
            s.files_written,
            pipeline.lake.trim_end_matches('/')
        );
        let _ = writeln!(
            out,
            "  time           {:>10.2} s  ({:.0} lines/s)",
            secs,
            s.lines as f64 / secs
        );
    }
    if let Some(j) = &summary.jobs {
        let _ = writeln!(out, "{j}");
    }
    if let Some(s) = &summary.score {
        let _ = writeln!(out, "{s}");
    }
    if let Some(r) = &summary.review {
        let _ = writeln!(out, "{r}");
    }
    if let Some(r) = &summary.results_topic {
        let _ = writeln!(out, "{}", results_topic_line(r));
    }
    if let Some(r) = &summary.decisions_topic {
        let _ = writeln!(
            out,
            "{} (decision records held back earlier)",
            results_topic_line(r)
        );
    }
    let _ = writeln!(out, "total time {:.2} s", summary.elapsed.as_secs_f64());
    out
}
