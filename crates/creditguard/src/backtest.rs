//! `creditguard backtest --pipeline candidate.toml --from D --to D`: how changed thresholds
//! would have judged history, before anyone adopts them.
//!
//! The jobs and the scorer run with the candidate's settings over the lake's events into a
//! scratch lake (the real lake is only read: its `events` are linked, never written), then the
//! candidate's flags, cases and credit decisions are compared with what the real lake holds, per
//! rule and org unit, and with what reviewers decided: confirmed flags the candidate would miss,
//! dismissed flags it would drop. Nothing is written to the real lake or the review database.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::Context as _;
use creditguard_contract::time::{day_of_us, format_day};
use creditguard_contract::Flag;
use creditguard_lake::Lake;
use creditguard_review::{CaseFilter, CaseStatus};
use creditguard_score::tables;

use crate::cli::BacktestArgs;
use crate::config::{Overrides, Pipeline};

/// A flag's identity across threshold changes: its rule, learner and day (ids change with the
/// windows that thresholds move).
type FlagKey = (String, String, i64);

fn key(day: i64, f: &Flag) -> FlagKey {
    (f.rule.clone(), f.user_id.clone(), day)
}

/// Per rule and org unit: flags in the lake, in the candidate, added, removed, confirmed by
/// reviewers but missed by the candidate, dismissed by reviewers and dropped by it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RuleDiff {
    pub now: usize,
    pub candidate: usize,
    pub added: usize,
    pub removed: usize,
    pub confirmed_missed: usize,
    pub dismissed_dropped: usize,
}

/// What a backtest found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Backtest {
    pub from: i64,
    pub to: i64,
    pub rules: BTreeMap<(String, String), RuleDiff>,
    /// Learners with a case now / with the candidate.
    pub cases_now: usize,
    pub cases_candidate: usize,
    pub cases_opened: usize,
    pub cases_closed: usize,
    /// Claims held by a flag now (withheld, or decided by a reviewer) and with the candidate.
    pub withheld_now: usize,
    pub withheld_candidate: usize,
    /// Claims the candidate would grant that are held now, and the reverse.
    pub newly_granted: usize,
    pub newly_withheld: usize,
    /// The period's flags in the lake by the thresholds' version that raised them (`version
    /// (name)`, `unrecorded` for flags written before versions), and the candidate's version.
    pub versions_now: BTreeMap<String, usize>,
    pub version_candidate: String,
}

/// `version (name)` of a flag's thresholds.
fn version_of(version: Option<&str>, name: Option<&str>) -> String {
    let v = version.unwrap_or("unrecorded");
    name.map_or_else(|| v.to_string(), |n| format!("{v} ({n})"))
}

/// Runs `creditguard backtest`.
pub fn execute(args: BacktestArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.from <= args.to,
        "--from {} is after --to {}",
        format_day(args.from),
        format_day(args.to)
    );
    let pipeline = Pipeline::load(&args.pipeline, &Overrides::default())?;
    let result = backtest(&pipeline, args.from, args.to)?;
    print!("{}", render(&pipeline, &result));
    Ok(())
}

/// Runs the candidate into a scratch lake and compares it with the real one.
pub fn backtest(pipeline: &Pipeline, from: i64, to: i64) -> anyhow::Result<Backtest> {
    let real = Lake::open(&pipeline.lake)
        .with_context(|| format!("opening the lake at {}", pipeline.lake))?;
    let scratch_dir = tempfile::tempdir().context("creating a scratch lake")?;
    if real.object_store_url().is_some() {
        // On object storage: the committed event files, fetched into the lake's cache, linked
        // into the scratch lake's own day directories.
        let days = real.days("events")?;
        if days.is_empty() {
            anyhow::bail!("{}: the lake has no events to backtest on", pipeline.lake);
        }
        for day in days {
            let dir = scratch_dir
                .path()
                .join(format!("events/dt={}", format_day(day)));
            std::fs::create_dir_all(&dir).context("creating the scratch lake's events")?;
            for f in real.partition_files("events", day)? {
                let name = f.file_name().context("an event file has a name")?;
                std::os::unix::fs::symlink(&f, dir.join(name))
                    .context("linking the lake's events into the scratch lake")?;
            }
        }
    } else {
        let events =
            real.root().join("events").canonicalize().with_context(|| {
                format!("{}: the lake has no events to backtest on", pipeline.lake)
            })?;
        std::os::unix::fs::symlink(&events, scratch_dir.path().join("events"))
            .context("linking the lake's events into the scratch lake")?;
    }
    let scratch = Lake::open(
        scratch_dir
            .path()
            .to_str()
            .context("a UTF-8 scratch path")?,
    )?;

    let jobs_cfg = pipeline.jobs_config().map_err(|e| anyhow::anyhow!(e))?;
    let score_cfg = pipeline.score_config().map_err(|e| anyhow::anyhow!(e))?;
    // Flags of the scorer's lookback withhold the period's claims: run the jobs over it too.
    let jobs_from = from - score_cfg.lookback_days;
    let run_id = crate::jobs::run_id(pipeline, "backtest", Some(from), Some(to));
    creditguard_detect::run_jobs(
        &scratch,
        &crate::jobs::catalog(pipeline)?,
        &jobs_cfg,
        crate::jobs::days(jobs_from, to)?,
        &run_id,
    )
    .context("running the candidate's jobs")?;
    let candidate = creditguard_score::compute(
        &scratch,
        &crate::score::catalog(pipeline)?,
        &score_cfg,
        from,
        to,
        &run_id,
    )
    .context("scoring the candidate")?;

    let mut out = Backtest {
        from,
        to,
        ..Backtest::default()
    };
    let now_flags = tables::read_flags(&real, from, to)?;
    for (_, f) in &now_flags {
        let v = version_of(f.rules_version.as_deref(), f.rules_name.as_deref());
        *out.versions_now.entry(v).or_default() += 1;
    }
    out.version_candidate = version_of(
        Some(jobs_cfg.rules_version().as_str()),
        jobs_cfg.rules_name.as_deref(),
    );
    let org_of = |f: &Flag| f.org_unit.clone().unwrap_or_else(|| "—".into());
    let now: BTreeMap<FlagKey, String> = now_flags
        .iter()
        .map(|(d, f)| (key(*d, f), org_of(f)))
        .collect();
    let cand: BTreeMap<FlagKey, String> = candidate
        .flags
        .iter()
        .map(|(d, f)| (key(*d, f), org_of(f)))
        .collect();
    for (k, org) in &now {
        let e = out.rules.entry((k.0.clone(), org.clone())).or_default();
        e.now += 1;
        if !cand.contains_key(k) {
            e.removed += 1;
        }
    }
    for (k, org) in &cand {
        let e = out.rules.entry((k.0.clone(), org.clone())).or_default();
        e.candidate += 1;
        if !now.contains_key(k) {
            e.added += 1;
        }
    }

    // Reviewers' verdicts on the period's flags.
    let store = crate::review::Store::open(pipeline)?;
    let decided = store.run(store.review.list(&CaseFilter {
        statuses: vec![
            CaseStatus::Confirmed,
            CaseStatus::Dismissed,
            CaseStatus::PartiallyConfirmed,
        ],
        ..CaseFilter::default()
    }))?;
    for case in decided {
        let detail = store.run(store.review.show(&case.case_id))?;
        for f in &detail.flags {
            let day = day_of_us(f.window_start);
            if !(from..=to).contains(&day) {
                continue;
            }
            let k: FlagKey = (f.rule.clone(), case.user_id.clone(), day);
            if cand.contains_key(&k) {
                continue;
            }
            let org = f.org_unit.clone().unwrap_or_else(|| "—".into());
            let e = out.rules.entry((f.rule.clone(), org)).or_default();
            match case.status {
                CaseStatus::Confirmed => e.confirmed_missed += 1,
                CaseStatus::Dismissed => e.dismissed_dropped += 1,
                _ => {}
            }
        }
    }

    let now_cases: BTreeSet<String> = tables::read_cases(&real, from, to)?
        .into_iter()
        .filter(|c| c.status != "below_threshold")
        .map(|c| c.user_id)
        .collect();
    let cand_cases: BTreeSet<String> = candidate
        .cases
        .iter()
        .filter(|c| c.status != "below_threshold")
        .map(|c| c.user_id.clone())
        .collect();
    out.cases_now = now_cases.len();
    out.cases_candidate = cand_cases.len();
    out.cases_opened = cand_cases.difference(&now_cases).count();
    out.cases_closed = now_cases.difference(&cand_cases).count();

    let held = |status: &str| matches!(status, "withheld" | "released" | "cancelled");
    let now_held: BTreeSet<String> = tables::read_credits(&real, from, to)?
        .into_iter()
        .filter(|c| held(&c.status))
        .map(|c| c.credit_id)
        .collect();
    let cand_held: BTreeSet<String> = candidate
        .credits
        .iter()
        .filter(|c| held(&c.status))
        .map(|c| c.credit_id.clone())
        .collect();
    out.withheld_now = now_held.len();
    out.withheld_candidate = cand_held.len();
    out.newly_granted = now_held.difference(&cand_held).count();
    out.newly_withheld = cand_held.difference(&now_held).count();
    Ok(out)
}

/// The table `backtest` prints.
pub fn render(pipeline: &Pipeline, b: &Backtest) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backtest of {} over {} .. {} against the lake at {} (nothing written to it)",
        pipeline.file.display(),
        format_day(b.from),
        format_day(b.to),
        pipeline.lake
    );
    let _ = writeln!(
        out,
        "{:<36} {:<24} {:>5} {:>9} {:>6} {:>8} {:>17} {:>17}",
        "rule",
        "org unit",
        "now",
        "candidate",
        "added",
        "removed",
        "confirmed missed",
        "dismissed dropped"
    );
    let mut same = 0;
    for ((rule, org), d) in &b.rules {
        if d.added + d.removed + d.confirmed_missed + d.dismissed_dropped == 0 {
            same += 1;
            continue;
        }
        let _ = writeln!(
            out,
            "{rule:<36} {org:<24} {:>5} {:>9} {:>6} {:>8} {:>17} {:>17}",
            d.now, d.candidate, d.added, d.removed, d.confirmed_missed, d.dismissed_dropped
        );
    }
    let _ = writeln!(out, "({same} rule × org unit rows unchanged)");
    let now: Vec<String> = b
        .versions_now
        .iter()
        .map(|(v, n)| format!("{v} {n} flags"))
        .collect();
    let _ = writeln!(
        out,
        "thresholds in the lake: {}; candidate: {}",
        if now.is_empty() {
            "none".to_string()
        } else {
            now.join(", ")
        },
        b.version_candidate
    );
    let _ = writeln!(
        out,
        "cases (learners): {} now, {} with the candidate: {} opened, {} closed",
        b.cases_now, b.cases_candidate, b.cases_opened, b.cases_closed
    );
    let _ = writeln!(
        out,
        "claims held by a flag: {} now, {} with the candidate: {} would be granted, {} newly withheld",
        b.withheld_now, b.withheld_candidate, b.newly_granted, b.newly_withheld
    );
    out
}
