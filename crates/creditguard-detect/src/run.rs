//! [`run_jobs`]: the enabled detectors over a range of days, batch by batch, written to the lake.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use creditguard_contract::time::{format_day, DayRange};
use creditguard_contract::{Flag, DETECTORS};
use creditguard_lake::Lake;
use polars::prelude::*;

use crate::catalog::Catalog;
use crate::config::{CreditBurstConfig, JobsConfig};
use crate::events::{prepare, scan_days, scan_events, scan_events_of, DAY_US};
use crate::shard::{remove_staging, staging_table, Shard, CROSS_USER};
use crate::{
    automation, course_switching, credit_burst, multi_login, proxy_learning, quiz_speed,
    shared_device, watch_time,
};
use crate::{Error, JobOutput, Result};
use creditguard_lake::flags::{flags_batch, read_flags_file};

/// What one job did over the whole range.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    pub job: String,
    /// Feature rows written (days of the range only).
    pub feature_rows: usize,
    /// Flags written, per rule.
    pub flags: BTreeMap<String, usize>,
    /// Time spent computing (not reading events, not writing).
    pub elapsed: Duration,
}

/// What [`run_jobs`] did.
#[derive(Debug, Clone, Default)]
pub struct JobsReport {
    pub from_day: i64,
    pub to_day: i64,
    /// Event rows read (after de-duplication, context days included).
    pub events: usize,
    /// Time reading and de-duplicating events.
    pub load: Duration,
    /// Time computing the lesson-stream intervals shared by `watch_time`, `course_switching` and
    /// `credit_burst`.
    pub intervals: Duration,
    /// Time writing features and flags.
    pub write: Duration,
    pub elapsed: Duration,
    pub jobs: Vec<JobReport>,
    /// Batches after which the allocator's free pages were returned to the kernel (the
    /// resident size was above `release_memory_above_mib`).
    pub memory_releases: usize,
}

impl JobsReport {
    /// Flags written, all jobs.
    pub fn total_flags(&self) -> usize {
        self.jobs.iter().flat_map(|j| j.flags.values()).sum()
    }
}

impl fmt::Display for JobsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "jobs       {} .. {}: {} events read in {:.2} s, intervals {:.2} s, writing {:.2} s",
            format_day(self.from_day),
            format_day(self.to_day),
            self.events,
            self.load.as_secs_f64(),
            self.intervals.as_secs_f64(),
            self.write.as_secs_f64()
        )?;
        for j in &self.jobs {
            let flags: Vec<String> = j.flags.iter().map(|(r, n)| format!("{r} {n}")).collect();
            writeln!(
                f,
                "  {:<17} {:>9} feature rows {:>7.2} s  flags: {}",
                j.job,
                j.feature_rows,
                j.elapsed.as_secs_f64(),
                if flags.is_empty() {
                    "none".to_string()
                } else {
                    flags.join(", ")
                }
            )?;
        }
        write!(
            f,
            "  total flags {}, {:.2} s",
            self.total_flags(),
            self.elapsed.as_secs_f64()
        )?;
        if self.memory_releases > 0 {
            write!(
                f,
                "; allocator's free pages returned after {} batches",
                self.memory_releases
            )?;
        }
        Ok(())
    }
}

fn boxed(
    e: impl std::error::Error + Send + Sync + 'static,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

/// Runs the enabled jobs for the `days` and writes, for each day and job,
/// `features/<job>/dt=D/part-0.parquet` and `results/flags/dt=D/part-0.parquet`, each replacing
/// the day's previous partition in one step. When only some jobs run, the day's flags of the
/// other detectors are kept as they were.
pub fn run_jobs(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &JobsConfig,
    days: DayRange,
    run_id: &str,
) -> Result<JobsReport> {
    run_mode(lake, catalog, cfg, days, run_id, Mode::Whole)
}

/// Shard `shard` of a sharded run over the `days` (see [`crate::shard`]): the enabled
/// detectors that judge each user alone, over this shard's users, and the inputs of the
/// cross-user ones, all staged under `_shards/<run>/` (one partition per batch of days). The
/// live tables are untouched; [`merge_shards`] with the same `run`, days and settings publishes.
pub fn run_shard(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &JobsConfig,
    days: DayRange,
    shard: Shard,
    run: &str,
) -> Result<JobsReport> {
    run_mode(lake, catalog, cfg, days, "", Mode::Shard { shard, run })
}

/// The merge of a sharded run: reads what the `count` shards staged for `run`, runs the
/// cross-user detectors over all users, and writes every day's features and flags as
/// [`run_jobs`] would (the same rows; `run_id` in the flags). Fails, naming the shard, when a
/// shard has not staged every batch. Removes the staging when done.
pub fn merge_shards(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &JobsConfig,
    days: DayRange,
    count: u32,
    run: &str,
    run_id: &str,
) -> Result<JobsReport> {
    Shard::new(0, count).map_err(|e| Error::Config(vec![e]))?;
    let report = run_mode(lake, catalog, cfg, days, run_id, Mode::Merge { count, run })?;
    remove_staging(lake, run, count)?;
    Ok(report)
}

/// Which users a run covers and where its output goes.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// Every user, straight to the live tables.
    Whole,
    /// One shard's users, to its staging table.
    Shard { shard: Shard, run: &'a str },
    /// The staging of `count` shards and the cross-user detectors, to the live tables.
    Merge { count: u32, run: &'a str },
}

fn run_mode(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &JobsConfig,
    days: DayRange,
    run_id: &str,
    mode: Mode<'_>,
) -> Result<JobsReport> {
    let (from_day, to_day) = (days.first().index(), days.last().index());
    cfg.validate()?;
    let start = Instant::now();
    // A shard computes the detectors that judge users alone; it stages the inputs of the others.
    let enabled: Vec<&str> = DETECTORS
        .iter()
        .copied()
        .filter(|d| cfg.is_enabled(d))
        .filter(|d| !matches!(mode, Mode::Shard { .. }) || !CROSS_USER.contains(d))
        .collect();
    let mut report = JobsReport {
        from_day,
        to_day,
        ..Default::default()
    };
    report.jobs = enabled
        .iter()
        .map(|j| JobReport {
            job: j.to_string(),
            ..Default::default()
        })
        .collect();
    let mut carry = Carry::default();
    let mut pending: Option<PendingWrite> = None;
    // Known shared devices: not evidence for proxy_learning, never flagged by shared_device.
    if cfg.is_enabled("proxy_learning") || cfg.is_enabled("shared_device") {
        carry.shared_devices = cfg.proxy_learning.shared_devices()?;
    }
    let mut a = from_day;
    while a <= to_day {
        let b = (a + cfg.batch_days as i64 - 1).min(to_day);
        let batch = Batch {
            a,
            b,
            run_from: from_day,
            run_id,
            mode,
        };
        let batch_done = run_batch(
            lake,
            catalog,
            cfg,
            &enabled,
            &batch,
            &mut carry,
            &mut pending,
            &mut report,
        );
        if let Err(e) = batch_done {
            // Whatever the previous batch still had to write lands before the run stops.
            if let Err(w) = finish_write(&mut pending, &mut report) {
                tracing::error!(error = %w, "Writing the previous batch failed too.");
            }
            return Err(e);
        }
        // Little is live between batches: past the limit, hand back the pages the allocator
        // kept, so the resident size does not creep up with fragmentation over a long range
        // (creditguard_alloc).
        let limit = u64::from(cfg.release_memory_above_mib) << 20;
        if let Some(resident) = creditguard_alloc::resident_bytes() {
            if resident > limit && creditguard_alloc::release_retained() {
                report.memory_releases += 1;
                tracing::debug!(
                    resident_mib = resident >> 20,
                    after_mib = creditguard_alloc::resident_bytes().unwrap_or(0) >> 20,
                    "Returned the allocator's free pages."
                );
            }
        }
        a = b + 1;
    }
    finish_write(&mut pending, &mut report)?;
    report.elapsed = start.elapsed();
    tracing::info!(from = %format_day(from_day), to = %format_day(to_day), flags = report.total_flags(), "Jobs finished.");
    Ok(report)
}

/// What the batches of one run hand on to the next: the days a batch computed or read that later
/// batches look back on.
#[derive(Default)]
struct Carry {
    claims: ClaimDays,
    watch: WatchDays,
    engaged: EngagedDays,
    /// `proxy_learning`'s known shared devices, read once per run.
    shared_devices: std::collections::HashSet<String>,
    /// A shard's `quiz_speed` features of the days it staged, for the retries of later batches
    /// (a whole run reads them back from the lake).
    quiz: DayFrames,
}

/// The claims of each day as [`credit_burst::daily`] sums them per user, kept across the
/// batches of a run: every batch of `credit_burst` needs its `baseline_days` before it too, and
/// consecutive batches share most of them. The days a batch loads are taken from its events
/// (already read and prepared); only days before the run's first batch are read from the lake,
/// once.
#[derive(Default)]
struct ClaimDays {
    days: DayFrames,
}

impl ClaimDays {
    /// Keeps the days `from..=to` of a batch's `completions` (replacing what an earlier batch
    /// kept of those days: a later batch reads them whole).
    fn record(
        &mut self,
        completions: LazyFrame,
        catalog: &Catalog,
        cfg: &CreditBurstConfig,
        from: i64,
        to: i64,
    ) -> Result<()> {
        let claims = completions.filter(
            col("t")
                .gt_eq(lit(from * DAY_US))
                .and(col("t").lt(lit((to + 1) * DAY_US))),
        );
        let daily = credit_burst::daily(claims, catalog, cfg).collect()?;
        self.days.keep(&daily, from..=to)
    }

    /// The daily rows of the days `from..=to`; days no batch recorded (those before the run's
    /// first batch) are read from the lake.
    fn range(
        &mut self,
        lake: &Lake,
        catalog: &Catalog,
        cfg: &CreditBurstConfig,
        from: i64,
        to: i64,
    ) -> Result<DataFrame> {
        // Days before the range are not needed again (batches move forward).
        self.days.forget_before(from);
        let days: Vec<i64> = (from..=to).collect();
        let parts = self.days.get(&days, |first, last| {
            let raw =
                scan_days(lake, first, last)?.filter(col("event_type").eq(lit("course_complete")));
            let claims = watch_time::completions(prepare(raw)?);
            Ok(credit_burst::daily(claims, catalog, cfg).collect()?)
        })?;
        Ok(concat(parts, UnionArgs::default())?.collect()?)
    }
}

/// Frames of rows with a `day` column, kept per day across the batches of a run.
#[derive(Default)]
struct DayFrames(BTreeMap<i64, DataFrame>);

impl DayFrames {
    /// Keeps the rows of each day of `days` (replacing what was kept of that day).
    fn keep(&mut self, rows: &DataFrame, days: impl IntoIterator<Item = i64>) -> Result<()> {
        for day in days {
            let df = rows
                .clone()
                .lazy()
                .filter(col("day").eq(lit(day)))
                .collect()?;
            self.0.insert(day, df);
        }
        Ok(())
    }

    /// The frames of `days`, in order. The days not kept are loaded with one call of `load` over
    /// the span from the first to the last of them, and kept.
    fn get(
        &mut self,
        days: &[i64],
        load: impl FnOnce(i64, i64) -> Result<DataFrame>,
    ) -> Result<Vec<LazyFrame>> {
        let missing: Vec<i64> = days
            .iter()
            .copied()
            .filter(|d| !self.0.contains_key(d))
            .collect();
        if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
            let rows = load(first, last)?;
            self.keep(&rows, missing)?;
        }
        Ok(days.iter().map(|d| self.0[d].clone().lazy()).collect())
    }

    /// Forgets the days before `day`.
    fn forget_before(&mut self, day: i64) {
        self.0.retain(|d, _| *d >= day);
    }
}

/// The columns of `features/watch_time` that later batches read (coverage at completion for
/// `watch_time`, engaged time for `credit_burst`).
const PRIOR_WATCH_COLUMNS: [&str; 8] = [
    "user_id",
    "course_id",
    "lesson_id",
    "day",
    "duration_s",
    "engaged_s",
    "seg_from",
    "seg_to",
];

/// Earlier days' `features/watch_time` ([`PRIOR_WATCH_COLUMNS`]), kept across the batches of a
/// run: each batch reads the `coverage_lookback_days` (90) before it, so re-reading them from the
/// lake per batch read every day up to 90 / `batch_days` times. Days are read from the lake once,
/// and the days this run writes are kept as written.
#[derive(Default)]
struct WatchDays {
    /// `None`: the day has no feature files.
    days: BTreeMap<i64, Option<DataFrame>>,
}

impl WatchDays {
    fn project(lf: LazyFrame) -> LazyFrame {
        lf.select(
            PRIOR_WATCH_COLUMNS
                .iter()
                .map(|c| col(*c))
                .collect::<Vec<_>>(),
        )
    }

    /// What [`prior_features`] gives for `features/watch_time` and the days `from..=to`.
    fn range(&mut self, lake: &Lake, from: i64, to: i64) -> Result<Option<LazyFrame>> {
        if to < from {
            return Ok(None);
        }
        let mut parts = Vec::new();
        for day in from..=to {
            if !self.days.contains_key(&day) {
                let df = match prior_features(lake, "watch_time", day, day)? {
                    Some(lf) => Some(Self::project(lf).collect()?),
                    None => None,
                };
                self.days.insert(day, df);
            }
            if let Some(Some(df)) = self.days.get(&day) {
                parts.push(df.clone().lazy());
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(concat(parts, UnionArgs::default())?))
    }

    /// The features just written for `day`.
    fn written(&mut self, day: i64, part: &DataFrame) -> Result<()> {
        let mut df = Self::project(part.clone().lazy()).collect()?;
        // One chunk, as a frame read back from the lake: how a frame is chunked can change the
        // order in which polars adds up its floats.
        df.rechunk_mut_par();
        self.days.insert(day, Some(df));
        Ok(())
    }

    /// Forgets the days before `day`.
    fn forget_before(&mut self, day: i64) {
        self.days.retain(|d, _| *d >= day);
    }

    /// The days of `from..=to` that [`range`](Self::range) found without feature files.
    fn without_features(&self, from: i64, to: i64) -> Vec<i64> {
        if to < from {
            return Vec::new();
        }
        self.days
            .range(from..=to)
            .filter(|(_, df)| df.is_none())
            .map(|(d, _)| *d)
            .collect()
    }
}

/// Engaged seconds per user and day (`user_id`, `day`, `engaged_s`) for `credit_burst`'s support
/// windows on days without `features/watch_time` (`watch_time` not enabled, or never run on those
/// days): taken from the intervals of the batches of this run, and for earlier days computed from
/// the lake's events. Without them a claim backed by watching a few days before would look
/// unsupported whenever `credit_burst` runs alone.
#[derive(Default)]
struct EngagedDays {
    days: DayFrames,
}

impl EngagedDays {
    /// Keeps rows already summed per user and day (as [`keep`](Self::keep) sums them) for
    /// `days`, and returns them.
    fn keep_daily(
        &mut self,
        per_day: DataFrame,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<LazyFrame> {
        self.days.keep(&per_day, days)?;
        Ok(per_day.lazy())
    }

    /// Keeps the engaged time per user and day of a batch's `intervals` (already cut to the
    /// days wanted) for `days`, and returns those rows.
    fn keep(
        &mut self,
        intervals: LazyFrame,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<LazyFrame> {
        let per_day = watch_time::engaged_daily(intervals).collect()?;
        self.days.keep(&per_day, days)?;
        Ok(per_day.lazy())
    }

    /// The rows of `days`; days not kept are computed from the lake's events (with a day of
    /// context each side, as a batch reads them), in one pass.
    fn rows(
        &mut self,
        lake: &Lake,
        days: &[i64],
        cfg: &crate::config::WatchTimeConfig,
    ) -> Result<Option<LazyFrame>> {
        let parts = self.days.get(days, |first, last| {
            let events = scan_events(lake, first, last)?.collect()?;
            Ok(watch_time::engaged_daily(watch_time::intervals(events.lazy(), cfg)).collect()?)
        })?;
        if parts.is_empty() {
            return Ok(None);
        }
        Ok(Some(concat(parts, UnionArgs::default())?))
    }

    /// Forgets the days before `day`.
    fn forget_before(&mut self, day: i64) {
        self.days.forget_before(day);
    }
}

/// One batch of days of a run.
struct Batch<'a> {
    a: i64,
    b: i64,
    /// The run's first day: a shard's own staging holds the days from here on.
    run_from: i64,
    run_id: &'a str,
    mode: Mode<'a>,
}

/// The columns of the device rows a shard stages for `shared_device` and `proxy_learning`.
const DEVICE_COLUMNS: [&str; 9] = [
    "event_type",
    "device_id",
    "user_id",
    "org_unit",
    "session_id",
    "ip",
    "course_id",
    "playing",
    "t",
];

/// What the shards staged for one batch, read back and put together by the merge. Frames are
/// concatenated in shard order; each shard keeps its rows in the order of a whole run, so every
/// user's rows keep theirs.
struct Staged {
    /// Per detector that judges users alone: its features and flags (days of the batch and the
    /// context days around them, as the detector returned them).
    outputs: BTreeMap<String, JobOutput>,
    /// Sign-ins and device uses (events of the batch with its context days).
    devices: Option<DataFrame>,
    /// Course completions of the batch's events.
    completions: Option<DataFrame>,
    /// Engaged seconds per user and day for `credit_burst` when `watch_time` did not run.
    engaged: Option<DataFrame>,
}

impl Staged {
    fn read(lake: &Lake, run: &str, count: u32, a: i64, b: i64, jobs: &[&str]) -> Result<Staged> {
        let mut files: Vec<Vec<std::path::PathBuf>> = Vec::new();
        for index in 0..count {
            let shard = Shard { index, count };
            let got = lake.partition_files(&staging_table(run, shard), a)?;
            if got.is_empty() {
                return Err(Error::Config(vec![format!(
                    "shard {shard} has not staged the days {} .. {} of this run (run `creditguard job all --shard {shard}` with the same pipeline and days first)",
                    format_day(a),
                    format_day(b)
                )]));
            }
            files.push(got);
        }
        let read = |name: &str| -> Result<Option<DataFrame>> {
            let mut parts = Vec::new();
            for shard_files in &files {
                if let Some(path) = shard_files
                    .iter()
                    .find(|p| p.file_name().is_some_and(|n| n == name))
                {
                    parts.push(read_frame(path)?);
                }
            }
            if parts.is_empty() {
                return Ok(None);
            }
            if parts.len() != files.len() {
                return Err(Error::Config(vec![format!(
                    "only {} of {count} shards staged {name} for the days {} .. {}: were they run with different settings?",
                    parts.len(),
                    format_day(a),
                    format_day(b)
                )]));
            }
            Ok(Some(concat_frames(parts)?))
        };
        let mut outputs = BTreeMap::new();
        for job in jobs.iter().filter(|j| !CROSS_USER.contains(j)) {
            let missing = || {
                Error::Config(vec![format!(
                    "the shards did not run {job} for the days {} .. {}: were they run with the same `[jobs] enabled`?",
                    format_day(a),
                    format_day(b)
                )])
            };
            let features = read(&format!("features-{job}.parquet"))?.ok_or_else(missing)?;
            let mut flags = Vec::new();
            for shard_files in &files {
                let name = format!("flags-{job}.parquet");
                if let Some(path) = shard_files
                    .iter()
                    .find(|p| p.file_name().is_some_and(|n| *n == *name))
                {
                    flags.extend(read_flags_file(path)?);
                }
            }
            crate::flags::sort(&mut flags);
            outputs.insert(job.to_string(), JobOutput { features, flags });
        }
        Ok(Staged {
            outputs,
            devices: read("devices.parquet")?,
            completions: read("completions.parquet")?,
            engaged: read("engaged.parquet")?,
        })
    }
}

/// Frames with the same columns, one after the other (empty ones skipped: their column types
/// may be less precise).
fn concat_frames(frames: Vec<DataFrame>) -> Result<DataFrame> {
    let mut non_empty: Vec<LazyFrame> = frames
        .iter()
        .filter(|f| f.height() > 0)
        .map(|f| f.clone().lazy())
        .collect();
    let mut df = match non_empty.len() {
        0 => frames.into_iter().next().unwrap_or_default(),
        1 => non_empty.remove(0).collect()?,
        _ => concat(
            non_empty,
            UnionArgs {
                to_supertypes: true,
                maintain_order: true,
                ..Default::default()
            },
        )?
        .collect()?,
    };
    df.rechunk_mut_par();
    Ok(df)
}

fn read_frame(path: &std::path::Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    Ok(ParquetReader::new(file).finish()?)
}

fn write_frame(dir: &std::path::Path, name: &str, df: &mut DataFrame) -> Result<()> {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_batch(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &JobsConfig,
    enabled: &[&str],
    batch: &Batch<'_>,
    carry: &mut Carry,
    pending: &mut Option<PendingWrite>,
    report: &mut JobsReport,
) -> Result<()> {
    let Carry {
        claims: claim_days,
        watch: watch_days,
        engaged: engaged_days,
        shared_devices,
        quiz: quiz_days,
    } = carry;
    let (a, b) = (batch.a, batch.b);
    let t = Instant::now();
    let (events, mut staged, completions) = load_batch(lake, cfg, enabled, batch)?;
    let is_shard = matches!(batch.mode, Mode::Shard { .. });
    let stages_credit = is_shard && cfg.is_enabled("credit_burst");
    report.events += events.height();
    report.load += t.elapsed();
    tracing::debug!(from = %format_day(a), to = %format_day(b), events = events.height(), "Events loaded.");
    // The previous batch's days are in the lake before any job reads earlier days from it.
    finish_write(pending, report)?;

    watch_days.forget_before(
        a - 1 - (cfg.watch_time.coverage_lookback_days).max(cfg.credit_burst.support_days) as i64,
    );

    let needs_intervals =
        staged.is_none() && (stages_credit || enabled.iter().any(|j| INTERVAL_JOBS.contains(j)));
    // The lesson-stream intervals, and the time they took.
    let intervals = || -> Result<(Option<DataFrame>, Duration)> {
        let t = Instant::now();
        let iv = if needs_intervals {
            Some(watch_time::intervals(events.clone().lazy(), &cfg.watch_time).collect()?)
        } else {
            None
        };
        Ok((iv, t.elapsed()))
    };
    let support_first = a + 1 - cfg.credit_burst.support_days as i64;
    // What `watch_time` and the other detectors that judge users alone found, as the shards
    // staged it (in the merge): those jobs are not computed again.
    let mut staged_outputs = staged
        .as_mut()
        .map(|s| std::mem::take(&mut s.outputs))
        .unwrap_or_default();
    let inputs = BatchInputs {
        lake,
        catalog,
        cfg,
        batch,
        is_shard,
        events: &events,
        iv: None,
        completions: completions.as_ref(),
        staged: staged.as_ref(),
        staged_watch: staged_outputs.get("watch_time").map(|w| &w.features),
        shared_devices,
    };
    let to_compute: Vec<(usize, &str)> = enabled
        .iter()
        .enumerate()
        .filter(|(_, job)| !staged_outputs.contains_key(**job))
        .map(|(k, job)| (k, *job))
        .collect();
    // Two groups: the intervals and the jobs that read them and the carried watch, claim and
    // engaged days; and the others. Each group runs its jobs in the enabled order, so
    // `credit_burst` finds `watch_time`'s features as it would with every job in one line.
    let (with_iv, rest): (Vec<_>, Vec<_>) = to_compute
        .iter()
        .partition(|(_, job)| INTERVAL_JOBS.contains(job));
    let mut carry_x = CarryParts {
        claims: Some(&mut *claim_days),
        watch: Some(&mut *watch_days),
        engaged: Some(&mut *engaged_days),
        quiz: None,
    };
    let mut carry_y = CarryParts {
        quiz: Some(&mut *quiz_days),
        ..Default::default()
    };
    let inputs = &inputs;
    let first_group = |carry: &mut CarryParts<'_>| {
        let (iv, took) = intervals()?;
        let with = BatchInputs {
            iv: iv.as_ref(),
            ..*inputs
        };
        let done = compute_group(&with, &with_iv, carry)?;
        Ok::<_, Error>((iv, took, done))
    };
    // Side by side ([`JobsConfig::parallel_jobs`]), or the second group after the first.
    let (x, y) = if cfg.parallel_jobs {
        std::thread::scope(|s| {
            let other = s.spawn(move || compute_group(inputs, &rest, &mut carry_y));
            let x = first_group(&mut carry_x);
            (x, other.join().expect("a job thread panicked"))
        })
    } else {
        let x = first_group(&mut carry_x)?;
        (Ok(x), compute_group(inputs, &rest, &mut carry_y))
    };
    let (iv, took, mut computed) = x?;
    report.intervals += took;
    computed.extend(y?);
    // Every job's output, in the enabled order.
    let mut by_index: BTreeMap<usize, JobOutput> = BTreeMap::new();
    for (k, out, elapsed) in computed {
        report.jobs[k].elapsed += elapsed;
        by_index.insert(k, out);
    }
    let outputs: Vec<(&str, JobOutput)> = enabled
        .iter()
        .enumerate()
        .map(|(k, job)| {
            let out = match staged_outputs.remove(*job) {
                Some(out) => out,
                None => by_index
                    .remove(&k)
                    .expect("every enabled job computed or staged"),
            };
            (*job, out)
        })
        .collect();

    let t = Instant::now();
    if let Mode::Shard { shard, run } = batch.mode {
        stage_shard(
            lake,
            cfg,
            batch,
            shard,
            run,
            &outputs,
            &events,
            completions.as_ref(),
            iv.as_ref()
                .map(|iv| engaged_in(iv.clone().lazy(), support_first, b)),
            watch_days,
            quiz_days,
            report,
        )?;
        report.write += t.elapsed();
        return Ok(());
    }
    let days = day_outputs(lake, cfg, enabled, batch, &outputs, watch_days, report)?;
    drop(outputs);
    report.write += t.elapsed();
    if cfg.parallel_jobs {
        // Written while the next batch loads; that batch waits for it before its jobs read the
        // lake's earlier days.
        let lake = lake.clone();
        *pending = Some(std::thread::spawn(move || {
            let t = Instant::now();
            #[cfg(test)]
            std::thread::sleep(Duration::from_millis(
                WRITE_DELAY_MS.load(std::sync::atomic::Ordering::Relaxed),
            ));
            write_days(&lake, days)?;
            Ok(t.elapsed())
        }));
    } else {
        let t = Instant::now();
        write_days(lake, days)?;
        report.write += t.elapsed();
    }
    Ok(())
}

/// The jobs that read the batch's intervals and the carried watch, claim and engaged days: one
/// group when the jobs run side by side ([`JobsConfig::parallel_jobs`]).
const INTERVAL_JOBS: [&str; 3] = ["watch_time", "course_switching", "credit_burst"];

/// What the jobs of one batch read, shared by the threads that compute them.
#[derive(Clone, Copy)]
struct BatchInputs<'a> {
    lake: &'a Lake,
    catalog: &'a Catalog,
    cfg: &'a JobsConfig,
    batch: &'a Batch<'a>,
    is_shard: bool,
    events: &'a DataFrame,
    iv: Option<&'a DataFrame>,
    completions: Option<&'a DataFrame>,
    staged: Option<&'a Staged>,
    /// `watch_time`'s features as the shards staged them (in a merge).
    staged_watch: Option<&'a DataFrame>,
    shared_devices: &'a std::collections::HashSet<String>,
}

impl BatchInputs<'_> {
    fn events(&self) -> LazyFrame {
        self.events.clone().lazy()
    }

    fn intervals(&self) -> LazyFrame {
        self.iv
            .expect("intervals computed for the jobs that need them")
            .clone()
            .lazy()
    }

    fn completions(&self) -> LazyFrame {
        self.completions
            .expect("completions taken for the jobs that need them")
            .clone()
            .lazy()
    }

    /// The rows `shared_device` and `proxy_learning` read: the events, or the staged device
    /// rows in a merge.
    fn device_rows(&self) -> Result<LazyFrame> {
        match self.staged {
            Some(s) => {
                s.devices.clone().map(DataFrame::lazy).ok_or_else(|| {
                    Error::Config(vec!["the shards staged no device rows".to_string()])
                })
            }
            None => Ok(self.events()),
        }
    }
}

/// The carried days a group of jobs may change: each belongs to one group, so two groups never
/// hold the same one.
#[derive(Default)]
struct CarryParts<'a> {
    claims: Option<&'a mut ClaimDays>,
    watch: Option<&'a mut WatchDays>,
    engaged: Option<&'a mut EngagedDays>,
    quiz: Option<&'a mut DayFrames>,
}

/// Computes `jobs` (index in the enabled list, name) one after another: each one's output and
/// compute time.
fn compute_group(
    inp: &BatchInputs<'_>,
    jobs: &[(usize, &str)],
    carry: &mut CarryParts<'_>,
) -> Result<Vec<(usize, JobOutput, Duration)>> {
    let (lake, cfg, batch) = (inp.lake, inp.cfg, inp.batch);
    let a = batch.a;
    let mut done: Vec<(usize, JobOutput, Duration)> = Vec::with_capacity(jobs.len());
    for &(k, job) in jobs {
        let t = Instant::now();
        let out = match job {
            "watch_time" => {
                let lookback = cfg.watch_time.coverage_lookback_days as i64;
                let watch_days = carry
                    .watch
                    .as_deref_mut()
                    .expect("watch days in this group");
                let prior = watch_days.range(lake, a - 1 - lookback, a - 2)?;
                watch_time::detect(
                    inp.intervals(),
                    inp.completions(),
                    prior,
                    inp.catalog,
                    &cfg.watch_time,
                )?
            }
            "multi_login" => multi_login::detect(inp.events(), &cfg.multi_login)?,
            "course_switching" => {
                course_switching::detect(inp.events(), inp.intervals(), &cfg.course_switching)?
            }
            "credit_burst" => {
                // Engaged time this batch measured: `watch_time`'s features when it ran (or the
                // shards staged them), the shards' staged rows in a merge, else the intervals.
                let computed_watch = jobs
                    .iter()
                    .zip(&done)
                    .find(|((_, j), _)| *j == "watch_time")
                    .map(|(_, (_, w, _))| &w.features);
                let measured = match computed_watch.or(inp.staged_watch) {
                    Some(w) => Engaged::Features(w.clone().lazy()),
                    None => match inp.staged.and_then(|s| s.engaged.clone()) {
                        Some(rows) => Engaged::Staged(rows),
                        None => Engaged::Intervals(inp.intervals()),
                    },
                };
                let days = (
                    carry
                        .claims
                        .as_deref_mut()
                        .expect("claim days in this group"),
                    carry
                        .engaged
                        .as_deref_mut()
                        .expect("engaged days in this group"),
                    carry
                        .watch
                        .as_deref_mut()
                        .expect("watch days in this group"),
                );
                credit_burst_job(
                    lake,
                    inp.catalog,
                    cfg,
                    batch,
                    inp.completions(),
                    measured,
                    days,
                )?
            }
            "quiz_speed" => {
                let q = &cfg.quiz_speed;
                // Earlier days' submissions, so a retry of a quiz first handed in before this
                // batch is recognised as one.
                let quiz_days = carry.quiz.as_deref_mut().expect("quiz days in this group");
                let prior = quiz_prior(lake, q, batch, inp.is_shard, quiz_days)?;
                quiz_speed::detect_with_prior(inp.events(), prior, q)?
            }
            "shared_device" => shared_device::detect_known(
                inp.device_rows()?,
                &cfg.shared_device,
                inp.shared_devices,
            )?,
            "automation" => automation::detect(inp.events(), &cfg.automation)?,
            "proxy_learning" => {
                proxy_learning::detect(inp.device_rows()?, &cfg.proxy_learning, inp.shared_devices)?
            }
            other => unreachable!("validated job name {other}"),
        };
        tracing::debug!(
            job,
            feature_rows = out.features.height(),
            flags = out.flags.len(),
            "Job computed."
        );
        done.push((k, out, t.elapsed()));
    }
    Ok(done)
}

/// A batch's input: its events (a shard's users only; none in a merge), what the shards staged
/// (in a merge), and its course completions when a job that reads them runs.
fn load_batch(
    lake: &Lake,
    cfg: &JobsConfig,
    enabled: &[&str],
    batch: &Batch<'_>,
) -> Result<(DataFrame, Option<Staged>, Option<DataFrame>)> {
    let (a, b) = (batch.a, batch.b);
    // A whole run and a shard read events (a shard only its users'); the merge reads what the
    // shards staged instead.
    let (events, staged) = match batch.mode {
        Mode::Whole => (scan_events(lake, a, b)?.collect()?, None),
        Mode::Shard { shard, .. } => (scan_events_of(lake, a, b, Some(shard))?.collect()?, None),
        Mode::Merge { count, run } => (
            DataFrame::empty_with_schema(&crate::events::schema()),
            Some(Staged::read(lake, run, count, a, b, enabled)?),
        ),
    };
    // One chunk, whatever the scan and filter left: how a frame is chunked can change the order
    // in which polars adds up floats, and a shard's rows must add up as the whole run's do.
    let mut events = events;
    events.rechunk_mut_par();
    let is_shard = matches!(batch.mode, Mode::Shard { .. });
    let stages_credit = is_shard && cfg.is_enabled("credit_burst");
    // The batch's course completions, read by `watch_time` and `credit_burst` both.
    let completions = match &staged {
        Some(s) => s.completions.clone(),
        None if stages_credit
            || enabled
                .iter()
                .any(|j| matches!(*j, "watch_time" | "credit_burst")) =>
        {
            Some(watch_time::completions_in(&events)?)
        }
        None => None,
    };
    Ok((events, staged, completions))
}

/// The `user_id`, `day`, `engaged_s` rows of `f` for the days `first..=last`.
fn engaged_in(f: LazyFrame, first: i64, last: i64) -> LazyFrame {
    f.select([col("user_id"), col("day"), col("engaged_s")])
        .filter(
            col("day")
                .gt_eq(lit(first))
                .and(col("day").lt_eq(lit(last))),
        )
}

/// Where a batch's engaged time comes from, for `credit_burst`'s support windows.
enum Engaged {
    /// `watch_time`'s lesson-day features of this batch (a few rows per learner-day).
    Features(LazyFrame),
    /// What the shards staged (in a merge).
    Staged(DataFrame),
    /// The batch's intervals (one row per pair of events).
    Intervals(LazyFrame),
}

/// `credit_burst` over the batch: the claims of its days and of the baseline days before them
/// (day b + 1, context for the other jobs, is the next batch's to judge), and the engaged seconds
/// of the days its support windows cover (`support_days` up to each claim day): this batch's,
/// earlier days' from their features, or from their events when they have none.
fn credit_burst_job(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &JobsConfig,
    batch: &Batch<'_>,
    completions: LazyFrame,
    measured: Engaged,
    (claim_days, engaged_days, watch_days): (&mut ClaimDays, &mut EngagedDays, &mut WatchDays),
) -> Result<JobOutput> {
    let (a, b, c) = (batch.a, batch.b, &cfg.credit_burst);
    claim_days.record(completions, catalog, c, a, b)?;
    let daily = claim_days.range(lake, catalog, c, a - c.baseline_days as i64, b)?;
    let first = a + 1 - c.support_days as i64;
    let days = first.max(a - 1)..=b;
    let mut parts = vec![match measured {
        Engaged::Features(f) => engaged_in(f, first, b),
        Engaged::Staged(rows) => engaged_days.keep_daily(rows, days)?,
        Engaged::Intervals(iv) => engaged_days.keep(engaged_in(iv, first, b), days)?,
    }];
    engaged_days.forget_before(first);
    if let Some(prior) = watch_days.range(lake, first, a - 2)? {
        parts.push(engaged_in(prior, first, b));
    }
    let without = watch_days.without_features(first, a - 2);
    if let Some(rows) = engaged_days.rows(lake, &without, &cfg.watch_time)? {
        parts.push(rows);
    }
    let engaged = concat(parts, UnionArgs::default())?;
    // Features and flags for the batch's days only (its first day on).
    credit_burst::detect_daily(daily, engaged, c, a)
}

/// Earlier days' `quiz_speed` submissions, so a retry of a quiz first handed in before this batch
/// is recognised as one: from the lake, and in a shard also from the days it staged.
fn quiz_prior(
    lake: &Lake,
    q: &crate::config::QuizSpeedConfig,
    batch: &Batch<'_>,
    is_shard: bool,
    quiz_days: &mut DayFrames,
) -> Result<Option<LazyFrame>> {
    let a = batch.a;
    Ok(if q.exempt_resubmissions {
        let (lo, hi) = (a - 1 - q.resubmission_lookback_days as i64, a - 2);
        if is_shard {
            // The days this shard staged are not in the lake: from the carry.
            let staged_from = lo.max(batch.run_from);
            let mut parts: Vec<LazyFrame> =
                prior_features(lake, "quiz_speed", lo, hi.min(batch.run_from - 1))?
                    .into_iter()
                    .collect();
            quiz_days.forget_before(lo);
            if staged_from <= hi {
                parts.extend(
                    quiz_days
                        .0
                        .range(staged_from..=hi)
                        .map(|(_, df)| df.clone().lazy()),
                );
            }
            if parts.is_empty() {
                None
            } else {
                Some(concat(
                    parts,
                    UnionArgs {
                        to_supertypes: true,
                        ..Default::default()
                    },
                )?)
            }
        } else {
            prior_features(lake, "quiz_speed", lo, hi)?
        }
    } else {
        None
    })
}

/// One day of a batch's output, ready to write: each job's feature partition (table, rows), and
/// the day's flags.
struct DayOut {
    day: i64,
    parts: Vec<(String, DataFrame)>,
    flags: Vec<Flag>,
}

/// The batch's days to write: each job's features of the day, and the day's flags (with those
/// of detectors that did not run kept as they were). Counts the rows and flags in `report` and
/// hands `watch_time`'s days to `watch_days`.
fn day_outputs(
    lake: &Lake,
    cfg: &JobsConfig,
    enabled: &[&str],
    batch: &Batch<'_>,
    outputs: &[(&str, JobOutput)],
    watch_days: &mut WatchDays,
    report: &mut JobsReport,
) -> Result<Vec<DayOut>> {
    let (a, b) = (batch.a, batch.b);
    let all_jobs = enabled.len() == DETECTORS.len();
    // The version the flags of this run record (those kept from detectors that did not run keep
    // the version they were raised with).
    let rules_version = cfg.rules_version();
    let mut days = Vec::with_capacity((b - a + 1) as usize);
    for day in a..=b {
        let mut parts = Vec::with_capacity(outputs.len());
        for (k, (job, out)) in outputs.iter().enumerate() {
            let part = out
                .features
                .clone()
                .lazy()
                .filter(col("day").eq(lit(day)))
                .collect()?;
            report.jobs[k].feature_rows += part.height();
            if *job == "watch_time" {
                watch_days.written(day, &part)?;
            }
            parts.push((format!("features/{job}"), part));
        }
        let in_day = |f: &Flag| f.window_start.div_euclid(DAY_US) == day;
        let mut flags: Vec<Flag> = if all_jobs {
            Vec::new()
        } else {
            read_flags(lake, day)?
                .into_iter()
                .filter(|f| !enabled.contains(&f.detector.as_str()))
                .collect()
        };
        for (k, (_, out)) in outputs.iter().enumerate() {
            for f in out.flags.iter().filter(|f| in_day(f)) {
                *report.jobs[k].flags.entry(f.rule.clone()).or_default() += 1;
                flags.push(Flag {
                    run_id: batch.run_id.to_string(),
                    rules_version: Some(rules_version.clone()),
                    rules_name: cfg.rules_name.clone(),
                    ..f.clone()
                });
            }
        }
        crate::flags::sort(&mut flags);
        days.push(DayOut { day, parts, flags });
    }
    Ok(days)
}

/// Writes [`day_outputs`], each day replaced in one step: the jobs' partitions of the day side by
/// side (each is its own file, written and synced to disk, so one job's encoding overlaps
/// another's wait for the disk), then the day's flags once all of them are in place.
fn write_days(lake: &Lake, days: Vec<DayOut>) -> Result<()> {
    for DayOut { day, parts, flags } in days {
        std::thread::scope(|s| {
            let writers: Vec<_> = parts
                .into_iter()
                .map(|(table, mut part)| {
                    s.spawn(move || -> Result<()> {
                        lake.replace_partition(&table, day, |dir| {
                            let path = dir.join("part-0.parquet");
                            let file = std::fs::File::create(&path).map_err(boxed)?;
                            ParquetWriter::new(file)
                                .with_compression(ParquetCompression::Zstd(None))
                                .finish(&mut part)
                                .map_err(boxed)?;
                            Ok(())
                        })?;
                        Ok(())
                    })
                })
                .collect();
            writers
                .into_iter()
                .try_for_each(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })?;
        let flags_rb = flags_batch(&flags);
        lake.replace_partition("results/flags", day, |dir| {
            let file = std::fs::File::create(dir.join("part-0.parquet")).map_err(boxed)?;
            creditguard_lake::write_parquet_to(file, flags_rb.schema(), &[flags_rb])
                .map_err(boxed)?;
            Ok(())
        })?;
        tracing::info!(day = %format_day(day), flags = flags.len(), "Day written.");
    }
    Ok(())
}

/// Test only: how long a background write waits before it starts, so a test can check that a
/// batch does not read the lake before the previous batch's days are in it.
#[cfg(test)]
static WRITE_DELAY_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A batch's days being written in the background while the next batch loads
/// ([`JobsConfig::parallel_jobs`]): the writing thread returns the time it took.
type PendingWrite = std::thread::JoinHandle<Result<Duration>>;

/// Waits for the pending write, if any, and counts its time as writing.
fn finish_write(pending: &mut Option<PendingWrite>, report: &mut JobsReport) -> Result<()> {
    if let Some(w) = pending.take() {
        let took = w.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        report.write += took;
    }
    Ok(())
}

/// The table of per-day success markers of the jobs: `_markers/jobs/dt=D/_SUCCESS.json`.
pub const MARKERS: &str = "_markers/jobs";

/// Writes the success markers of the days `from..=to` (each atomically): every enabled
/// detector's output of those days is published, by `run_id`, at this time. A scheduler skips a
/// day that has one (unless its events changed later: [`days_changed_since`]).
pub fn write_markers(lake: &Lake, from: i64, to: i64, run_id: &str) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    for day in from..=to {
        let body = serde_json::json!({
            "day": format_day(day),
            "run_id": run_id,
            "finished_at": creditguard_contract::time::format_rfc3339_us(now),
        });
        lake.write_file_atomic(&lake.partition_dir(MARKERS, day), "_SUCCESS.json", |f| {
            std::io::Write::write_all(f, body.to_string().as_bytes())
        })?;
    }
    Ok(())
}

/// The days whose `events` partition holds a file written at or after `since_us` (UTC
/// microseconds): days that received events since then, late ones included (every ingest write
/// is a new file, or a rewrite, in the partition of the events' day).
pub fn days_changed_since(lake: &Lake, since_us: i64) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for day in lake.days("events")? {
        for path in lake.partition_files("events", day)? {
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| Error::Io {
                    path: path.display().to_string(),
                    source: e,
                })?;
            let us = modified
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            if us >= since_us {
                out.push(day);
                break;
            }
        }
    }
    Ok(out)
}

/// A shard's output for one batch, as one partition of its staging table (replaced whole, so
/// a re-run of the shard replaces it and the merge never reads half of it): per detector its
/// features of the batch's days and its flags; the device rows, completions and (without
/// `watch_time`) engaged seconds the cross-user detectors need.
#[allow(clippy::too_many_arguments)]
fn stage_shard(
    lake: &Lake,
    cfg: &JobsConfig,
    batch: &Batch<'_>,
    shard: Shard,
    run: &str,
    outputs: &[(&str, JobOutput)],
    events: &DataFrame,
    completions: Option<&DataFrame>,
    engaged_iv: Option<LazyFrame>,
    watch_days: &mut WatchDays,
    quiz_days: &mut DayFrames,
    report: &mut JobsReport,
) -> Result<()> {
    let (a, b) = (batch.a, batch.b);
    let mut files: Vec<(String, DataFrame)> = Vec::new();
    for (k, (job, out)) in outputs.iter().enumerate() {
        // Staged whole: the merge writes the batch's days, and `credit_burst` also reads the
        // `watch_time` features of the context day before the batch.
        let in_batch = |day: i64| (a..=b).contains(&day);
        let features = out.features.clone();
        report.jobs[k].feature_rows += features
            .clone()
            .lazy()
            .filter(col("day").gt_eq(lit(a)).and(col("day").lt_eq(lit(b))))
            .collect()?
            .height();
        // What later batches read back, cut from the job's output as a whole run cuts it.
        if *job == "watch_time" {
            for day in a..=b {
                let part = out
                    .features
                    .clone()
                    .lazy()
                    .filter(col("day").eq(lit(day)))
                    .collect()?;
                watch_days.written(day, &part)?;
            }
        }
        if *job == "quiz_speed" {
            quiz_days.keep(&out.features, a..=b)?;
        }
        let flags = &out.flags;
        for f in flags
            .iter()
            .filter(|f| in_batch(f.window_start.div_euclid(DAY_US)))
        {
            *report.jobs[k].flags.entry(f.rule.clone()).or_default() += 1;
        }
        files.push((format!("features-{job}.parquet"), features));
        files.push((format!("flags-{job}.parquet"), crate::flags_frame(flags)?));
    }
    if cfg.is_enabled("shared_device") || cfg.is_enabled("proxy_learning") {
        let mut types: Vec<&str> = proxy_learning::USE_TYPES.to_vec();
        types.extend(cfg.shared_device.event_types.iter().map(String::as_str));
        types.sort_unstable();
        types.dedup();
        let devices = events
            .clone()
            .lazy()
            .filter(crate::events::type_in(&types).and(col("device_id").is_not_null()))
            .select(DEVICE_COLUMNS.map(col))
            .collect()?;
        files.push(("devices.parquet".to_string(), devices));
    }
    if cfg.is_enabled("credit_burst") {
        let completions = completions.expect("completions taken for credit_burst");
        files.push(("completions.parquet".to_string(), completions.clone()));
        if !cfg.is_enabled("watch_time") {
            let iv = engaged_iv.expect("intervals computed for credit_burst");
            let engaged = watch_time::engaged_daily(iv).collect()?;
            files.push(("engaged.parquet".to_string(), engaged));
        }
    }
    lake.replace_partition(&staging_table(run, shard), a, |dir| {
        for (name, df) in &mut files {
            write_frame(dir, name, df).map_err(boxed)?;
        }
        Ok(())
    })?;
    tracing::info!(shard = %shard, from = %format_day(a), to = %format_day(b), "Batch staged.");
    Ok(())
}

/// Earlier days' features of a job, `None` when there are none.
fn prior_features(lake: &Lake, job: &str, from: i64, to: i64) -> Result<Option<LazyFrame>> {
    if to < from {
        return Ok(None);
    }
    let files = lake.files(&format!("features/{job}"), from, to)?;
    if files.is_empty() {
        return Ok(None);
    }
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|p| PlRefPath::new(p.to_string_lossy().as_ref()))
        .collect();
    Ok(Some(LazyFrame::scan_parquet_files(
        paths.into_iter().collect(),
        ScanArgsParquet::default(),
    )?))
}

/// The flags of one day as written in `results/flags/dt=D/`.
pub fn read_flags(lake: &Lake, day: i64) -> Result<Vec<Flag>> {
    Ok(creditguard_lake::flags::read_flags(lake, day, day)?
        .into_iter()
        .map(|(_, f)| f)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::sort_opts;
    use crate::testkit::*;
    use creditguard_contract::{parse_event, EventBatchBuilder};

    fn period(first: i64, last: i64) -> DayRange {
        DayRange::of_indices(first, last).unwrap()
    }

    /// Writes lines into the lake's `events`, one file per event day (as ingest does).
    fn ingest(lake: &Lake, lines: &[String], name: &str) {
        let mut by_day: BTreeMap<i64, EventBatchBuilder> = BTreeMap::new();
        for (i, l) in lines.iter().enumerate() {
            let ev = parse_event(l.as_bytes()).unwrap();
            by_day
                .entry(ev.ts_us.div_euclid(DAY_US))
                .or_default()
                .push(&ev, "t", i as i64);
        }
        for (day, mut b) in by_day {
            let batch = b.finish();
            lake.write_parquet("events", day, name, batch.schema(), &[batch])
                .unwrap();
        }
    }

    /// A new lake holding `lines`, and the day the test helpers' times count from.
    fn lake_of(lines: &[String]) -> (tempfile::TempDir, Lake, i64) {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
        ingest(&lake, lines, "part-a.parquet");
        (dir, lake, T0_US.div_euclid(DAY_US))
    }

    fn cheats() -> Vec<String> {
        let mut ev = vec![
            quiz("u1", "c1", "q1", 100.0, 20, 20.0, 20.0, 20.0),
            checkin("u2", "c1", "phone", 200.0),
            checkin("u3", "c1", "phone", 210.0),
            checkin("u4", "c1", "phone", 220.0),
        ];
        // Background playback from 23:52 to 00:02 UTC of the next day (T0 is 08:00): 480 s
        // before midnight (a flag, placed on the first day), 120 s after (too short for one).
        for k in 0..31 {
            let t = 15.0 * 3600.0 + 52.0 * 60.0 + k as f64 * 20.0;
            ev.push(hb("u5", "s5", "c1", "l1", t, k as f64 * 20.0, true, false));
        }
        ev
    }

    /// A slow first attempt at a quiz on day 0, a fast, perfect retry three days later.
    fn quiz_retry() -> Vec<String> {
        vec![
            quiz("u9", "c1", "q7", 100.0, 20, 400.0, 14.0, 20.0),
            quiz(
                "u9",
                "c1",
                "q7",
                3.0 * 86_400.0 + 100.0,
                20,
                20.0,
                20.0,
                20.0,
            ),
        ]
    }

    #[test]
    fn a_retry_of_a_quiz_first_handed_in_an_earlier_batch_is_not_judged() {
        let (_dir, lake, day) = lake_of(&quiz_retry());
        let one_day = JobsConfig {
            enabled: vec!["quiz_speed".into()],
            batch_days: 1,
            ..JobsConfig::default()
        };
        let r = run_jobs(&lake, &catalog(), &one_day, period(day, day + 3), "run-q").unwrap();
        assert_eq!(r.total_flags(), 0, "{r}");
        // Without the lookback the batch of day 3 cannot see day 0: the retry looks like a
        // first attempt and is flagged.
        let mut blind = one_day.clone();
        blind.quiz_speed.resubmission_lookback_days = 0;
        let r = run_jobs(&lake, &catalog(), &blind, period(day, day + 3), "run-q").unwrap();
        assert_eq!(r.total_flags(), 1, "{r}");
    }

    #[test]
    fn jobs_side_by_side_write_what_they_write_one_after_another() {
        // Two batches of two days: the first batch's days are written while the second loads,
        // and the retry on day 3 is recognised only if day 0's quiz features are in the lake
        // when the second batch's jobs run.
        let mut events = cheats();
        events.extend(quiz_retry());
        let run = |parallel_jobs: bool| {
            let (dir, lake, day) = lake_of(&events);
            let cfg = JobsConfig {
                batch_days: 2,
                parallel_jobs,
                ..JobsConfig::default()
            };
            let r = run_jobs(&lake, &catalog(), &cfg, period(day, day + 3), "run-p").unwrap();
            (dir, lake, day, r)
        };
        // The first batch's write starts late, as a slow disk would make it.
        WRITE_DELAY_MS.store(300, std::sync::atomic::Ordering::Relaxed);
        let (_d1, side, day, r_side) = run(true);
        WRITE_DELAY_MS.store(0, std::sync::atomic::Ordering::Relaxed);
        let (_d2, one, _, r_one) = run(false);
        assert_eq!(r_side.total_flags(), 5, "{r_side}");
        assert_eq!(r_side.total_flags(), r_one.total_flags());
        for (a, b) in r_side.jobs.iter().zip(&r_one.jobs) {
            assert_eq!(
                (&a.job, a.feature_rows, &a.flags),
                (&b.job, b.feature_rows, &b.flags)
            );
        }
        for d in day..=day + 3 {
            assert_eq!(read_flags(&side, d).unwrap(), read_flags(&one, d).unwrap());
            for job in DETECTORS {
                let table = format!("features/{job}");
                let files = |l: &Lake| l.partition_files(&table, d).unwrap();
                let (fa, fb) = (files(&side), files(&one));
                assert_eq!(fa.len(), 1, "{job} day {d}");
                let (x, y) = (read_frame(&fa[0]).unwrap(), read_frame(&fb[0]).unwrap());
                assert!(x.equals_missing(&y), "{job} day {d}: {x} against {y}");
            }
        }
    }

    #[test]
    fn days_without_events_inside_and_around_a_range_are_fine() {
        // Events on the first day only; the range runs on for ten more days, so batches (and
        // the credit baseline) scan days with no files at all.
        let (_dir, lake, day) = lake_of(&cheats());
        let cfg = JobsConfig {
            batch_days: 3,
            ..JobsConfig::default()
        };
        let r = run_jobs(&lake, &catalog(), &cfg, period(day, day + 10), "run-gap").unwrap();
        assert_eq!(r.total_flags(), 5, "{r}");
        let later = run_jobs(
            &lake,
            &catalog(),
            &cfg,
            period(day + 5, day + 10),
            "run-empty",
        )
        .unwrap();
        assert_eq!(later.total_flags(), 0, "{later}");
    }

    #[test]
    fn free_pages_are_returned_only_past_the_limit() {
        let (_dir, lake, day) = lake_of(&cheats());
        let run = |above: u32| {
            let cfg = JobsConfig {
                batch_days: 1,
                release_memory_above_mib: above,
                ..JobsConfig::default()
            };
            run_jobs(&lake, &catalog(), &cfg, period(day, day + 2), "run-mem").unwrap()
        };
        // 0: after every one of the three batches; a limit far above the process: never.
        let every = run(0);
        assert_eq!(every.memory_releases, 3, "{every}");
        assert!(
            every.to_string().contains("returned after 3 batches"),
            "{every}"
        );
        let never = run(u32::MAX);
        assert_eq!(never.memory_releases, 0, "{never}");
        assert_eq!(every.total_flags(), never.total_flags());
    }

    #[test]
    fn reruns_replace_and_flags_land_in_the_day_of_their_start() {
        let events = cheats();
        let (_dir, lake, day) = lake_of(&events);
        let cfg = JobsConfig::default();
        let r1 = run_jobs(&lake, &catalog(), &cfg, period(day, day + 1), "run-1").unwrap();
        assert_eq!(r1.total_flags(), 5, "{r1}");
        let d0 = read_flags(&lake, day).unwrap();
        let d1 = read_flags(&lake, day + 1).unwrap();
        assert_eq!(
            rules(&d0),
            [
                "quiz_speed.too_fast",
                "shared_device.many_accounts",
                "shared_device.many_accounts",
                "shared_device.many_accounts",
                "watch_time.background_playback"
            ]
        );
        assert!(d1.is_empty(), "{d1:?}");
        assert!(d0.iter().all(|f| f.run_id == "run-1"));
        // Features of every job, every day.
        for job in DETECTORS {
            assert_eq!(
                lake.partition_files(&format!("features/{job}"), day)
                    .unwrap()
                    .len(),
                1,
                "{job}"
            );
        }
        // A re-run (and a re-delivery of every event) gives the same ids and nothing twice.
        ingest(
            &lake,
            &events.iter().rev().cloned().collect::<Vec<_>>(),
            "part-b.parquet",
        );
        let days = |l: &Lake| (read_flags(l, day).unwrap(), read_flags(l, day + 1).unwrap());
        let (a0, _) = days(&lake);
        ingest(&lake, &events, "part-c.parquet");
        run_jobs(&lake, &catalog(), &cfg, period(day, day + 1), "run-2").unwrap();
        let (b0, b1) = days(&lake);
        let ids = |v: &[Flag]| v.iter().map(|f| f.flag_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&a0), ids(&b0));
        assert!(b1.is_empty());
        assert!(b0.iter().all(|f| f.run_id == "run-2"));
        // Running one job replaces only that detector's flags of the day.
        // Each flag records the version of the thresholds that raised it.
        let v1 = cfg.rules_version();
        assert!(b0
            .iter()
            .all(|f| f.rules_version.as_deref() == Some(v1.as_str())));
        let mut only_quiz = JobsConfig {
            enabled: vec!["quiz_speed".into()],
            rules_name: Some("stricter quiz".into()),
            ..JobsConfig::default()
        };
        only_quiz.quiz_speed.min_seconds_per_question += 0.5;
        let v2 = only_quiz.rules_version();
        assert_ne!(v1, v2);
        run_jobs(&lake, &catalog(), &only_quiz, period(day, day), "run-3").unwrap();
        let c0 = read_flags(&lake, day).unwrap();
        assert_eq!(ids(&c0), ids(&b0));
        let runs: Vec<&str> = c0.iter().map(|f| f.run_id.as_str()).collect();
        assert_eq!(runs, ["run-3", "run-2", "run-2", "run-2", "run-2"]);
        // The flags of the detectors that did not run keep the version they were raised with.
        let versions: Vec<(Option<&str>, Option<&str>)> = c0
            .iter()
            .map(|f| (f.rules_version.as_deref(), f.rules_name.as_deref()))
            .collect();
        assert_eq!(versions[0], (Some(v2.as_str()), Some("stricter quiz")));
        assert!(versions[1..]
            .iter()
            .all(|v| *v == (Some(v1.as_str()), None)));
    }

    /// Claims over three weeks in one unit: a steady learner, a burst on day 20 with nothing
    /// watched, and two claims of 12 credits on day 19 whose watching lies 6 and 7 days before
    /// (inside and just outside the 7 support days).
    fn claims() -> Vec<String> {
        const D: f64 = 86_400.0;
        let watching = |u: &str, d: f64, courses: usize| -> Vec<String> {
            (0..courses * 90 + 1)
                .map(|k| {
                    let t = k as f64 * 20.0;
                    hb(
                        u,
                        &format!("s-{u}-{d}"),
                        "c2",
                        "l1",
                        d * D + t,
                        t,
                        true,
                        true,
                    )
                })
                .collect()
        };
        let courses = |u: &str, d: f64, n: usize| -> Vec<String> {
            (0..n)
                .map(|i| {
                    complete_in(
                        u,
                        "ou1",
                        &format!("c{}", 2 + i),
                        d * D + 36_000.0 + i as f64,
                        2.0,
                    )
                })
                .collect()
        };
        let mut ev = Vec::new();
        for d in (0..21).step_by(3) {
            ev.extend(courses("steady", d as f64, 1));
            ev.extend(watching("steady", d as f64, 1));
            ev.extend(courses("burst", d as f64, 1));
        }
        ev.extend(courses("burst", 20.0, 8));
        ev.extend(watching("inside", 13.0, 6));
        ev.extend(courses("inside", 19.0, 6));
        ev.extend(watching("outside", 12.0, 6));
        ev.extend(courses("outside", 19.0, 6));
        ev
    }

    #[test]
    fn credit_burst_in_batches_matches_the_job_over_the_whole_period() {
        let ev = claims();
        let day = T0_US.div_euclid(DAY_US);
        let (from, to) = (day, day + 21);
        let f = frame(&ev);
        let iv = watch_time::intervals(f.clone().lazy(), &Default::default());
        let features = |lake: &Lake| {
            prior_features(lake, "credit_burst", from, to)
                .unwrap()
                .unwrap()
                .sort(["user_id", "day"], sort_opts())
                .collect()
                .unwrap()
        };
        let cols = [
            "user_id",
            "day",
            "x",
            "lambda",
            "p_tail",
            "required_s",
            "engaged_s",
        ];
        // The default 7 support days, and 2 (the window then reaches no day before a batch's
        // context day).
        for support_days in [7, 2] {
            let c = CreditBurstConfig {
                support_days,
                ..Default::default()
            };
            // The job over every event at once.
            let whole = credit_burst::detect(
                watch_time::completions(f.clone().lazy()),
                watch_time::engaged_daily(iv.clone()),
                &catalog(),
                &c,
            )
            .unwrap();
            let burst: Vec<(&str, i64, &str)> = whole
                .flags
                .iter()
                .map(|f| {
                    let cond = if f.evidence.contains("poisson_tail\",") {
                        "both"
                    } else if f.evidence.contains("unsupported") {
                        "unsupported"
                    } else {
                        "tail"
                    };
                    (
                        f.user_id.as_str(),
                        f.window_start.div_euclid(DAY_US) - day,
                        cond,
                    )
                })
                .collect();
            let mut want = vec![("burst", 20, "both"), ("outside", 19, "unsupported")];
            if support_days == 2 {
                // Watching 6 days before no longer counts.
                want.insert(1, ("inside", 19, "unsupported"));
            }
            assert_eq!(burst, want, "support_days {support_days}");
            // In batches of 1, 3 and 7 days, with and without `watch_time` (engaged time from
            // its features, or from the intervals), the same features and flags; and from day
            // 14 on, when the days before the run (in support windows) come from the lake.
            let runs = [(0, 1), (0, 3), (0, 7), (14, 7)];
            for (start, batch_days) in runs {
                for enabled in [DETECTORS.to_vec(), vec!["credit_burst"]] {
                    let (_dir, lake, _) = lake_of(&ev);
                    let cfg = JobsConfig {
                        batch_days,
                        enabled: enabled.iter().map(|s| s.to_string()).collect(),
                        credit_burst: c.clone(),
                        ..JobsConfig::default()
                    };
                    let case = format!("support {support_days}, start {start}, batches of {batch_days}, {enabled:?}");
                    run_jobs(&lake, &catalog(), &cfg, period(from + start, to), "r").unwrap();
                    let got = features(&lake).select(cols).unwrap();
                    let expected = whole
                        .features
                        .clone()
                        .lazy()
                        .filter(col("day").gt_eq(lit(from + start)))
                        .select(cols.map(col))
                        .collect()
                        .unwrap();
                    assert!(got.equals_missing(&expected), "{case}\n{got}\n{expected}");
                    let mut flags: Vec<Flag> = (from..=to)
                        .flat_map(|d| read_flags(&lake, d).unwrap())
                        .filter(|f| f.detector == "credit_burst")
                        .map(|f| Flag {
                            run_id: String::new(),
                            rules_version: None,
                            ..f
                        })
                        .collect();
                    crate::flags::sort(&mut flags);
                    let expected: Vec<Flag> = whole
                        .flags
                        .iter()
                        .filter(|f| f.window_start.div_euclid(DAY_US) >= from + start)
                        .cloned()
                        .collect();
                    assert_eq!(flags, expected, "{case}");
                }
            }
        }
    }

    #[test]
    fn batches_of_one_day_and_of_seven_give_the_same_flags() {
        let (_dir, lake, day) = lake_of(&cheats());
        let one = JobsConfig {
            batch_days: 1,
            ..JobsConfig::default()
        };
        run_jobs(&lake, &catalog(), &one, period(day - 1, day + 2), "r").unwrap();
        let a: Vec<Vec<Flag>> = (day - 1..=day + 2)
            .map(|d| read_flags(&lake, d).unwrap())
            .collect();
        run_jobs(
            &lake,
            &catalog(),
            &JobsConfig::default(),
            period(day - 1, day + 2),
            "r",
        )
        .unwrap();
        let b: Vec<Vec<Flag>> = (day - 1..=day + 2)
            .map(|d| read_flags(&lake, d).unwrap())
            .collect();
        assert_eq!(a, b);
        assert_eq!(a.iter().map(Vec::len).sum::<usize>(), 5);
    }
}
