//! The `jobs` stage of a pipeline and `creditguard job <name> --day D` (or `--from D --to D`):
//! the detection jobs of `creditguard-detect` over days of the lake; `job all --shard K/N` and
//! `job merge --shards N` split them over processes (see `creditguard_detect::shard`).

use anyhow::Context as _;
use creditguard_contract::stable_id;
use creditguard_contract::time::{format_day, DayRange};
use creditguard_detect::{Catalog, JobsReport, Shard};
use creditguard_lake::Lake;

use crate::cli::{JobArgs, PeriodArgs};
use crate::config::{Overrides, Pipeline};

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
    let cfg = pipeline
        .jobs_config()
        .map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
    let catalog = catalog(pipeline)?;
    let Some((first, last)) = event_days(lake)? else {
        tracing::warn!(lake = %pipeline.lake, "The lake has no events: no jobs to run.");
        return Ok(JobsReport::default());
    };
    let (from, to) = (from.unwrap_or(first), to.unwrap_or(last));
    creditguard_detect::run_jobs(lake, &catalog, &cfg, days(from, to)?, run_id).with_context(|| {
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

/// The days `from..=to` (days since 1970-01-01); a usage error (exit 2) naming both when the
/// first is after the last.
pub fn days(from: i64, to: i64) -> anyhow::Result<DayRange> {
    Ok(DayRange::of_indices(from, to).map_err(UsageError)?)
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

/// A `job` command line that cannot run (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job: {}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// What a `job` command runs.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Whole,
    Shard(Shard),
    Merge(u32),
}

/// The mode of a `job` command line; `completion_index` is `JOB_COMPLETION_INDEX`.
fn mode(args: &JobArgs, completion_index: Option<&str>) -> Result<Mode, UsageError> {
    let usage = |m: String| Err(UsageError(m));
    let merge = args.name == "merge";
    if merge && args.changed_since.is_some() {
        return usage(
            "--changed-since re-runs `job all` (or one job) in one process, not `job merge`".into(),
        );
    }
    match (args.shard, args.shards) {
        (Some(s), _) if merge => usage(format!(
            "--shard {s}: `job merge` merges every shard; give their number with --shards"
        )),
        (None, None) if merge => usage("`job merge` needs --shards N, the number of shards".into()),
        (None, Some(n)) if merge => match Shard::new(0, n) {
            Ok(_) => Ok(Mode::Merge(n)),
            Err(e) => usage(format!("--shards {n}: {e}")),
        },
        (Some(s), _) if args.name != "all" => usage(format!(
            "--shard {s}: a sharded run covers every enabled job: use `job all --shard {s}`, not `job {}`",
            args.name
        )),
        (Some(s), _) => Ok(Mode::Shard(s)),
        (None, Some(n)) if args.name != "all" => usage(format!(
            "--shards {n}: a sharded run covers every enabled job: use `job all`, not `job {}`",
            args.name
        )),
        (None, Some(n)) => {
            let Some(k) = completion_index else {
                return usage(format!(
                    "--shards {n} without --shard: the shard index comes from JOB_COMPLETION_INDEX (set by Kubernetes Indexed Jobs), which is not set; give --shard K/{n} instead"
                ));
            };
            match k.trim().parse::<u32>() {
                Ok(k) => Shard::new(k, n).map(Mode::Shard).map_err(|e| {
                    UsageError(format!("JOB_COMPLETION_INDEX={k} with --shards {n}: {e}"))
                }),
                Err(_) => usage(format!(
                    "JOB_COMPLETION_INDEX=`{k}`: not a shard index (a whole number from 0)"
                )),
            }
        }
        (None, None) => Ok(Mode::Whole),
    }
}

/// The name under which the shards of `all` over `from..=to` in `count` shards stage their
/// output (`_shards/<name>/` in the lake): derived like the run id, plus the shard count, so
/// the shards and the merge of one run agree on it without being told.
pub fn staging_name(pipeline: &Pipeline, from: i64, to: i64, count: u32) -> String {
    let id = stable_id(&[
        &pipeline.text,
        "all",
        &format_day(from),
        &format_day(to),
        &count.to_string(),
    ]);
    format!("{}-{}", pipeline.name, &id[..16])
}

/// Runs `creditguard job`, prints the report.
pub fn execute(args: JobArgs) -> anyhow::Result<()> {
    let mode = mode(&args, std::env::var("JOB_COMPLETION_INDEX").ok().as_deref())?;
    let (pipeline, lake, from, to) = args.period.open()?;
    if mode != Mode::Whole {
        let cfg = pipeline
            .jobs_config()
            .map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
        let catalog = catalog(&pipeline)?;
        let period = format!("{} .. {}", format_day(from), format_day(to));
        match mode {
            Mode::Shard(shard) => {
                let stage = staging_name(&pipeline, from, to, shard.count);
                let report = creditguard_detect::run_shard(
                    &lake,
                    &catalog,
                    &cfg,
                    days(from, to)?,
                    shard,
                    &stage,
                )
                .with_context(|| format!("running shard {shard} for {period}"))?;
                println!("creditguard job all, shard {shard} (staged as {stage})");
                println!("{report}");
            }
            Mode::Merge(count) => {
                let stage = staging_name(&pipeline, from, to, count);
                let run_id = args.period.run_id(&pipeline, "all", from, to);
                let report = creditguard_detect::merge_shards(
                    &lake,
                    &catalog,
                    &cfg,
                    days(from, to)?,
                    count,
                    &stage,
                    &run_id,
                )
                .with_context(|| format!("merging {count} shards for {period}"))?;
                creditguard_detect::write_markers(&lake, from, to, &run_id)?;
                println!("creditguard job merge of {count} shards (run {run_id})");
                println!("{report}");
            }
            Mode::Whole => unreachable!(),
        }
        return Ok(());
    }
    let mut cfg = pipeline
        .jobs_config()
        .map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.file.display()))?;
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
    let catalog = catalog(&pipeline)?;
    let ranges = match args.changed_since {
        None => vec![(from, to)],
        Some(since) => {
            let ranges = changed_ranges(&lake, since)?;
            if ranges.is_empty() {
                println!(
                    "creditguard job {}: no events written since {}, nothing to re-run",
                    args.name,
                    creditguard_contract::time::format_rfc3339_us(since)
                );
            }
            ranges
        }
    };
    for (from, to) in ranges {
        let run_id = args.period.run_id(&pipeline, &args.name, from, to);
        let report = creditguard_detect::run_jobs(&lake, &catalog, &cfg, days(from, to)?, &run_id)
            .with_context(|| {
                format!(
                    "running {} for {} .. {}",
                    args.name,
                    format_day(from),
                    format_day(to)
                )
            })?;
        if args.name == "all" {
            creditguard_detect::write_markers(&lake, from, to, &run_id)?;
        }
        println!("creditguard job {} (run {run_id})", args.name);
        println!("{report}");
    }
    Ok(())
}

/// The days to re-run after events written since `since`: each day that received events, and
/// the day before and after it (their jobs read it as context), within the lake's event days;
/// as ranges of consecutive days.
fn changed_ranges(lake: &Lake, since: i64) -> anyhow::Result<Vec<(i64, i64)>> {
    // Write times are read from the files' modification times, which a lake on object storage
    // does not keep in its local cache.
    if let Some(url) = lake.object_store_url() {
        return Err(UsageError(format!(
            "--changed-since: the lake `{url}` is on object storage, where write times are not \
             tracked yet; give the days with --from/--to"
        ))
        .into());
    }
    let Some((first, last)) = event_days(lake)? else {
        return Ok(Vec::new());
    };
    let mut days: Vec<i64> = creditguard_detect::days_changed_since(lake, since)?
        .into_iter()
        .flat_map(|d| [d - 1, d, d + 1])
        .filter(|d| (first..=last).contains(d))
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for d in days {
        match ranges.last_mut() {
            Some((_, to)) if *to + 1 == d => *to = d,
            _ => ranges.push((d, d)),
        }
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        job: JobArgs,
    }

    fn mode_of(args: &str, index: Option<&str>) -> Result<Mode, String> {
        let argv = format!("creditguard --pipeline p.toml {args}");
        let cli = Cli::try_parse_from(argv.split_whitespace()).map_err(|e| e.to_string())?;
        mode(&cli.job, index).map_err(|e| e.to_string())
    }

    #[test]
    fn shard_flags_and_the_completion_index_give_the_mode() {
        let shard = |k, n| Ok(Mode::Shard(Shard { index: k, count: n }));
        assert_eq!(mode_of("all", None), Ok(Mode::Whole));
        assert_eq!(mode_of("all --shard 2/7", None), shard(2, 7));
        assert_eq!(mode_of("all --shard 2/7", Some("5")), shard(2, 7));
        assert_eq!(mode_of("all --shards 7", Some("6")), shard(6, 7));
        assert_eq!(mode_of("merge --shards 3", None), Ok(Mode::Merge(3)));
        let err = |args: &str, index: Option<&str>, says: &str| {
            let e = mode_of(args, index).unwrap_err();
            assert!(e.contains(says), "{args}: {e}");
        };
        err(
            "all --shard 3/2",
            None,
            "`3/2`: shard 3 of 2 does not exist",
        );
        err("all --shard x", None, "`x`: expected K/N");
        err("all --shard 1/2 --shards 2", None, "cannot be used with");
        err(
            "all --shards 2",
            None,
            "JOB_COMPLETION_INDEX (set by Kubernetes Indexed Jobs), which is not set",
        );
        err(
            "all --shards 2",
            Some("2"),
            "JOB_COMPLETION_INDEX=2 with --shards 2: shard 2 of 2 does not exist",
        );
        err("all --shards 2", Some("one"), "JOB_COMPLETION_INDEX=`one`");
        err("watch_time --shard 0/2", None, "use `job all --shard 0/2`");
        err("merge", None, "`job merge` needs --shards N");
        err("merge --shard 0/2", None, "give their number with --shards");
        err(
            "merge --shards 0",
            None,
            "--shards 0: the number of shards must be at least 1",
        );
        err("merge --changed-since 2026-03-01", None, "not `job merge`");
        err(
            "all --changed-since 2026-03-01 --shard 0/2",
            None,
            "cannot be used with",
        );
        err("all --changed-since soon", None, "`soon`: expected a time");
        assert_eq!(
            mode_of("all --changed-since 2026-03-01T06:00:00Z", None),
            Ok(Mode::Whole)
        );
    }

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
        let devices = pipeline
            .jobs_config()
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
        let devices = pipeline
            .jobs_config()
            .unwrap()
            .proxy_learning
            .shared_devices()
            .unwrap();
        assert!(devices.contains("pc-1") && devices.contains("pc-2"));
    }
}
