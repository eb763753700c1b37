//! The `score` stage of a pipeline and `creditguard score --from D --to D [--emit ndjson]`: flags
//! and credit claims → `results/{credits,cases,claim_issues,progress,stream}` (`creditguard-score`).

use std::io::Write as _;

use anyhow::Context as _;
use creditguard_contract::time::format_day;
use creditguard_lake::Lake;
use creditguard_score::{Catalog, ScoreReport};

use crate::config::Pipeline;

/// The pipeline's course catalog; an empty one (with a warning) when the pipeline has none, in
/// which case every claim is reported as an unknown course and granted as claimed.
pub fn catalog(pipeline: &Pipeline) -> anyhow::Result<Catalog> {
    match &pipeline.catalog {
        Some(path) => Ok(Catalog::load(path)?),
        None => {
            tracing::warn!(pipeline = %pipeline.file.display(), "No `[catalog]`: every claim is an unknown course to the scorer.");
            Ok(Catalog::default())
        }
    }
}

/// What the score stage produced: the report as written, and what it did with the review
/// database.
#[derive(Debug, Clone)]
pub struct Scored {
    pub report: ScoreReport,
    pub review: crate::review::ReviewSync,
}

/// The `score` stage: scores `from..=to` (default: every day that has events), brings the review
/// database's cases up to date and applies reviewers' decisions (`crate::review::sync_report`),
/// then writes the result tables and `results/rule_feedback`. `None` when the lake has no events.
pub fn run_stage(
    pipeline: &Pipeline,
    lake: &Lake,
    from: Option<i64>,
    to: Option<i64>,
    run_id: &str,
) -> anyhow::Result<Option<Scored>> {
    let cfg = pipeline
        .score_config()
        .map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
    let review_settings = &pipeline.review;
    let catalog = catalog(pipeline)?;
    let Some((first, last)) = crate::jobs::event_days(lake)? else {
        tracing::warn!(lake = %pipeline.lake, "The lake has no events: nothing to score.");
        return Ok(None);
    };
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    let period = || format!("scoring {} .. {}", format_day(from), format_day(to));
    let mut report =
        creditguard_score::compute(lake, &catalog, &cfg, from, to, run_id).with_context(period)?;
    let store = crate::review::Store::open(pipeline)?;
    let review =
        crate::review::sync_report(&store, lake, &catalog, &cfg, review_settings, &mut report)
            .with_context(|| {
                format!("{}: the review database {}", period(), store.review.name())
            })?;
    creditguard_score::write_results(lake, &report, cfg.write_stream).with_context(period)?;
    crate::review::write_rule_feedback(&store, lake, to).with_context(period)?;
    Ok(Some(Scored { report, review }))
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

/// `creditguard score`: score a day or a range of days.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub period: crate::jobs::PeriodArgs,
    /// Also write the results stream to stdout.
    #[arg(long, value_enum, default_value_t = Emit::None, env = "CREDITGUARD_EMIT")]
    pub emit: Emit,
}

/// Runs `creditguard score`: the summary on stdout, or with `--emit ndjson` the records on
/// stdout and the summary on stderr.
pub fn execute(args: ScoreArgs) -> anyhow::Result<()> {
    let (pipeline, lake, from, to) = args.period.open()?;
    let run_id = args.period.run_id(&pipeline, "score", from, to);
    let Scored { report, review } =
        run_stage(&pipeline, &lake, Some(from), Some(to), &run_id)?.expect("the lake has events");
    // Like `creditguard run`: a pipeline with `[kafka] results_topic` also gets the records
    // there, acknowledged before this command reports success.
    let mut summary = format!("{report}\n{review}");
    if let Some(produced) = crate::run::produce_results(&pipeline, &report)? {
        summary = format!("{summary}\n{}", crate::run::results_topic_line(&produced));
    }
    if let Some(produced) = crate::review::publish_pending(&pipeline)? {
        summary = format!(
            "{summary}\n{} (decision records held back earlier)",
            crate::run::results_topic_line(&produced)
        );
    }
    match args.emit {
        Emit::Ndjson => {
            let identities = pipeline.stream_identities()?;
            let (records, _) =
                crate::identify::stream_records(report.records(), identities.as_ref());
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::new(stdout);
            for r in &records {
                serde_json::to_writer(&mut out, r)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"))
                    .context("writing the results stream to stdout")?;
            }
            out.flush()
                .context("writing the results stream to stdout")?;
            eprintln!("{summary}");
        }
        Emit::None => println!("{summary}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Overrides, Pipeline, Stage};

    const BASE: &str = r#"
[pipeline]
name = "t"
stages = ["ingest", "score"]
[source]
kind = "ndjson"
path = "-"
[lake]
root = "./lake"
"#;

    fn parse(text: &str) -> Result<Pipeline, crate::config::ConfigError> {
        Pipeline::parse(Path::new("pipelines/t.toml"), text, &Overrides::default())
    }

    #[test]
    fn the_score_section_is_checked_with_the_pipeline() {
        let p = parse(&format!(
            "{BASE}[score]\nreview_threshold = 0.6\nwithhold_severity = 0.7\n"
        ))
        .unwrap();
        assert_eq!(p.stages, vec![Stage::Ingest, Stage::Score]);
        let cfg = p.score_config().unwrap();
        assert_eq!(
            (
                cfg.review_threshold,
                cfg.withhold_severity,
                cfg.target_credits
            ),
            (0.6, 0.7, 150.0)
        );

        let err = parse(&format!("{BASE}[score]\nreview_threshold = 0.9\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "key `score.withhold_severity`: 0.5 is below `score.review_threshold` (0.9)"
            ),
            "{err}"
        );
        let err = parse(&format!("{BASE}[score]\nreview_treshold = 0.9\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("section `[score]`") && err.contains("review_treshold"),
            "{err}"
        );
    }
}
