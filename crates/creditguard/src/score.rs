//! The `score` stage of a pipeline and `creditguard score --from D --to D [--emit ndjson]`: flags
//! and credit claims → `results/{credits,cases,claim_issues,progress,stream}` (`creditguard-score`).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use creditguard_contract::time::format_day;
use creditguard_lake::Lake;
use creditguard_score::{Catalog, ScoreConfig, ScoreReport};

use crate::config::{Overrides, Pipeline};

/// The `[score]` settings of a pipeline (defaults when the section is absent).
pub fn settings(pipeline: &Pipeline) -> Result<ScoreConfig, String> {
    pipeline.section::<ScoreConfig>("score")
}

/// Problems of the `[score]` section, each naming its key (for `Pipeline::parse`).
pub fn check(pipeline: &Pipeline) -> Vec<String> {
    match settings(pipeline) {
        Ok(cfg) => cfg.validate().err().unwrap_or_default(),
        Err(e) => vec![e],
    }
}

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

/// The `score` stage: scores `from..=to` (default: every day that has events) and writes the
/// result tables. `None` when the lake has no events.
pub fn run_stage(
    pipeline: &Pipeline,
    lake: &Lake,
    from: Option<i64>,
    to: Option<i64>,
    run_id: &str,
) -> anyhow::Result<Option<ScoreReport>> {
    let cfg = settings(pipeline).map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
    let catalog = catalog(pipeline)?;
    let Some((first, last)) = crate::jobs::event_days(lake)? else {
        tracing::warn!(lake = %pipeline.lake, "The lake has no events: nothing to score.");
        return Ok(None);
    };
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    let report = creditguard_score::score(lake, &catalog, &cfg, from, to, run_id)
        .with_context(|| format!("scoring {} .. {}", format_day(from), format_day(to)))?;
    Ok(Some(report))
}

/// Where `creditguard score` also sends the results stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    /// Only the result tables (and `results/stream/` NDJSON files when `score.write_stream`).
    None,
    /// Also every flag, credit and case record as NDJSON on stdout (the summary goes to stderr).
    Ndjson,
}

/// `creditguard score`: score a day or a range of days.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The pipeline file (lake, catalog and `[score]` settings).
    #[arg(long, env = "CREDITGUARD_PIPELINE")]
    pub pipeline: PathBuf,
    /// One day (YYYY-MM-DD).
    #[arg(long, env = "CREDITGUARD_DAY", value_parser = parse_day, conflicts_with_all = ["from", "to"])]
    pub day: Option<i64>,
    /// First day of the period (YYYY-MM-DD); default: the first day with events.
    #[arg(long, env = "CREDITGUARD_FROM", value_parser = parse_day)]
    pub from: Option<i64>,
    /// Last day of the period, inclusive; default: the last day with events.
    #[arg(long, env = "CREDITGUARD_TO", value_parser = parse_day)]
    pub to: Option<i64>,
    /// Lake directory instead of `lake.root`.
    #[arg(long, env = "CREDITGUARD_LAKE")]
    pub lake: Option<String>,
    /// Course catalog instead of `catalog.path`.
    #[arg(long, env = "CREDITGUARD_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Run id written into the records; default: derived from the pipeline text and the days.
    #[arg(long, env = "CREDITGUARD_RUN_ID")]
    pub run_id: Option<String>,
    /// Also write the results stream to stdout.
    #[arg(long, value_enum, default_value_t = Emit::None, env = "CREDITGUARD_EMIT")]
    pub emit: Emit,
}

fn parse_day(s: &str) -> Result<i64, String> {
    creditguard_contract::time::parse_day(s).map_err(|e| format!("`{s}`: {e} (expected YYYY-MM-DD)"))
}

/// Runs `creditguard score`: the summary on stdout, or with `--emit ndjson` the records on
/// stdout and the summary on stderr.
pub fn execute(args: ScoreArgs) -> anyhow::Result<()> {
    let overrides = Overrides { input: None, catalog: args.catalog.clone(), lake: args.lake.clone() };
    let pipeline = Pipeline::load(&args.pipeline, &overrides)?;
    let lake = Lake::open(&pipeline.lake).with_context(|| format!("opening the lake at {}", pipeline.lake))?;
    let (from, to) = match (args.day, args.from, args.to) {
        (Some(d), _, _) => (d, d),
        (None, f, t) => {
            let Some((first, last)) = crate::jobs::event_days(&lake)? else {
                anyhow::bail!("the lake at {} has no events", pipeline.lake);
            };
            (f.unwrap_or(first), t.unwrap_or(last))
        }
    };
    let run_id = args.run_id.clone().unwrap_or_else(|| crate::jobs::run_id(&pipeline, "score", Some(from), Some(to)));
    let report = run_stage(&pipeline, &lake, Some(from), Some(to), &run_id)?.expect("the lake has events");
    match args.emit {
        Emit::Ndjson => {
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::new(stdout);
            report.write_ndjson(&mut out).context("writing the results stream to stdout")?;
            out.flush().context("writing the results stream to stdout")?;
            eprintln!("{report}");
        }
        Emit::None => println!("{report}"),
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
        let p = parse(&format!("{BASE}[score]\nreview_threshold = 0.6\nwithhold_severity = 0.7\n")).unwrap();
        assert_eq!(p.stages, vec![Stage::Ingest, Stage::Score]);
        let cfg = super::settings(&p).unwrap();
        assert_eq!((cfg.review_threshold, cfg.withhold_severity, cfg.target_credits), (0.6, 0.7, 150.0));

        let err = parse(&format!("{BASE}[score]\nreview_threshold = 0.9\n")).unwrap_err().to_string();
        assert!(err.contains("key `score.withhold_severity`: 0.5 is below `score.review_threshold` (0.9)"), "{err}");
        let err = parse(&format!("{BASE}[score]\nreview_treshold = 0.9\n")).unwrap_err().to_string();
        assert!(err.contains("section `[score]`") && err.contains("review_treshold"), "{err}");
    }
}
