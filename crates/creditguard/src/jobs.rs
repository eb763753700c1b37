//! The `jobs` stage of a pipeline and `creditguard job <name> --day D` (or `--from D --to D`):
//! the detection jobs of `creditguard-detect` over days of the lake.

use std::path::PathBuf;

use anyhow::Context as _;
use creditguard_contract::stable_id;
use creditguard_contract::time::format_day;
use creditguard_detect::{Catalog, JobsReport};
use creditguard_lake::Lake;

use crate::config::{parse_day_arg, Overrides, Pipeline};

/// The pipeline's course catalog; an empty one (with a warning) when the pipeline has none, in
/// which case coverage is judged from the lesson lengths the player reports and unsupported
/// credits are not judged.
pub fn catalog(pipeline: &Pipeline) -> anyhow::Result<Catalog> {
    match &pipeline.catalog {
        Some(path) => Ok(Catalog::load(path)?),
        None => {
            tracing::warn!(pipeline = %pipeline.file.display(), "No `[catalog]`: course lengths and credits are unknown to the jobs.");
            Ok(Catalog::default())
        }
    }
}

/// The first and last day of the lake's `events`, for runs without `--from`/`--to`.
pub fn event_days(lake: &Lake) -> anyhow::Result<Option<(i64, i64)>> {
    let days = lake.days("events")?;
    Ok(days.first().copied().zip(days.last().copied()))
}

/// The `jobs` stage: runs the pipeline's enabled jobs for `from..=to` (default: every day that has
/// events) and writes features and flags to the lake.
pub fn run_stage(
    pipeline: &Pipeline,
    lake: &Lake,
    from: Option<i64>,
    to: Option<i64>,
    run_id: &str,
) -> anyhow::Result<JobsReport> {
    let cfg =
        pipeline.jobs_config().map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
    let catalog = catalog(pipeline)?;
    let Some((first, last)) = event_days(lake)? else {
        tracing::warn!(lake = %pipeline.lake, "The lake has no events: no jobs to run.");
        return Ok(JobsReport::default());
    };
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    creditguard_detect::run_jobs(lake, &catalog, &cfg, from, to, run_id).with_context(|| {
        format!(
            "running the jobs for {} .. {}",
            format_day(from),
            format_day(to)
        )
    })
}

/// A run id for jobs over `from..=to` of this pipeline: derived from the pipeline text (a changed
/// setting is a different run), what runs and the days, so a re-run of the same thing carries
/// the same id.
pub fn run_id(pipeline: &Pipeline, what: &str, from: Option<i64>, to: Option<i64>) -> String {
    let day = |d: Option<i64>| d.map(format_day).unwrap_or_else(|| "all".to_string());
    let id = stable_id(&[&pipeline.text, what, &day(from), &day(to)]);
    format!("{}-{}", pipeline.name, &id[..16])
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

impl PeriodArgs {
    /// The pipeline (with the overrides), its lake, and the period: `--day`, or `--from`/`--to`
    /// defaulting to the lake's first and last event days.
    pub fn open(&self) -> anyhow::Result<(Pipeline, Lake, i64, i64)> {
        let overrides = Overrides {
            input: None,
            catalog: self.catalog.clone(),
            lake: self.lake.clone(),
        };
        let pipeline = Pipeline::load(&self.pipeline, &overrides)?;
        let lake = Lake::open(&pipeline.lake)
            .with_context(|| format!("opening the lake at {}", pipeline.lake))?;
        let (from, to) = match (self.day, self.from, self.to) {
            (Some(d), _, _) => (d, d),
            (None, f, t) => {
                let Some((first, last)) = event_days(&lake)? else {
                    anyhow::bail!("the lake at {} has no events", pipeline.lake);
                };
                (f.unwrap_or(first), t.unwrap_or(last))
            }
        };
        Ok((pipeline, lake, from, to))
    }

    /// `--run-id`, or the derived id of `what` over the period.
    pub fn run_id(&self, pipeline: &Pipeline, what: &str, from: i64, to: i64) -> String {
        self.run_id
            .clone()
            .unwrap_or_else(|| run_id(pipeline, what, Some(from), Some(to)))
    }
}

/// `creditguard job`: run one detection job (or `all`) for a day or a range of days.
#[derive(Debug, clap::Args)]
pub struct JobArgs {
    /// The job: watch_time, multi_login, course_switching, credit_burst, quiz_speed,
    /// shared_device, automation, proxy_learning, or `all`.
    pub name: String,
    #[command(flatten)]
    pub period: PeriodArgs,
}

/// Runs `creditguard job`, prints the report.
pub fn execute(args: JobArgs) -> anyhow::Result<()> {
    let (pipeline, lake, from, to) = args.period.open()?;
    let mut cfg =
        pipeline.jobs_config().map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
    if args.name != "all" {
        if !creditguard_contract::DETECTORS.contains(&args.name.as_str()) {
            return Err(crate::config::ConfigError {
                file: args.period.pipeline.clone(),
                problems: vec![format!(
                    "job `{}`: unknown, expected one of: all, {}",
                    args.name,
                    creditguard_contract::DETECTORS.join(", ")
                )],
            }
            .into());
        }
        cfg.enabled = vec![args.name.clone()];
    }
    let run_id = args.period.run_id(&pipeline, &args.name, from, to);
    let catalog = catalog(&pipeline)?;
    let report = creditguard_detect::run_jobs(&lake, &catalog, &cfg, from, to, &run_id)
        .with_context(|| {
            format!(
                "running {} for {} .. {}",
                args.name,
                format_day(from),
                format_day(to)
            )
        })?;
    println!("creditguard job {} (run {run_id})", args.name);
    println!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_shared_devices_are_matched_as_the_pseudonyms_the_lake_holds() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("k.key");
        let key = crate::config::write_new_key(&key_file).unwrap();
        let allow = dir.path().join("shared.txt");
        std::fs::write(&allow, "# training room\npc-1\n").unwrap();
        let p = creditguard_contract::privacy::Pseudonymiser::new(&key);
        let already = p.device("kiosk-9");
        let text = format!(
            "[pipeline]\nname = \"t\"\nstages = [\"jobs\"]\n[source]\nkind = \"ndjson\"\npath = \"-\"\n\
             [lake]\nroot = \"{}\"\n[privacy]\nkey_file = \"{}\"\n\
             [jobs.proxy_learning]\nshared_devices_file = \"{}\"\nshared_devices = [\"{already}\", \"pc-2\"]\n",
            dir.path().join("lake").display(),
            key_file.display(),
            allow.display()
        );
        let pipeline =
            Pipeline::parse(&dir.path().join("p.toml"), &text, &Overrides::default()).unwrap();
        let devices = pipeline.jobs_config()
            .unwrap()
            .proxy_learning
            .shared_devices()
            .unwrap();
        let mut want = vec![p.device("pc-1"), p.device("pc-2"), already];
        want.sort();
        let mut got: Vec<String> = devices.into_iter().collect();
        got.sort();
        assert_eq!(got, want);
        // Off: the ids are used as listed.
        let off = text.replace("[privacy]\n", "[privacy]\npseudonymise = \"off\"\n");
        let pipeline =
            Pipeline::parse(&dir.path().join("p.toml"), &off, &Overrides::default()).unwrap();
        let devices = pipeline.jobs_config()
            .unwrap()
            .proxy_learning
            .shared_devices()
            .unwrap();
        assert!(devices.contains("pc-1") && devices.contains("pc-2"));
    }
}
