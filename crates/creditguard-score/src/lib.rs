//! The scorer: turns the detectors' flags into what people act on.
//!
//! For a period of days it reads the flags (`results/flags`, written by the detection jobs) and
//! the credit claims (`course_complete` events), and writes, each day replaced atomically:
//!
//! | table | one row per | partition day |
//! |---|---|---|
//! | `results/credits` (results-v1) | claim: `granted`, or `withheld` with the flags that caused it | day of `completed_at` |
//! | `results/cases` (results-v1) | learner with flags in the period: risk, status | last day of the period |
//! | `results/claim_issues` | claim that disagrees with the catalog | day of `completed_at` |
//! | `results/progress` | learner: credits this year against the target | last day of the period |
//! | `results/stream` (NDJSON) | flag, credit and case records with `kind` | as their tables |
//!
//! **Linking** (which flag withholds which claim) is [`decide::touches`]; **risk** is the noisy-OR
//! of severity × detector weight over the case's flags; a flag withholds the claims it touches
//! when its severity × weight reaches [`ScoreConfig::withhold_severity`].
//!
//! Ids are deterministic (`credit_id` = `stable_id(user_id, course_id, event_id)`, `case_id` =
//! `stable_id(user_id, "YYYY-MM-DD/YYYY-MM-DD")`), rows are sorted, and the run id is the
//! caller's: the same input and run id give byte-for-byte the same rows.
//!
//! ```no_run
//! use creditguard_score::{score, Catalog, ScoreConfig};
//! let lake = creditguard_lake::Lake::open("lake").unwrap();
//! let catalog = Catalog::load("sample-data/catalog.csv".as_ref()).unwrap();
//! let day = creditguard_contract::time::parse_day("2026-03-02").unwrap();
//! let report = score(&lake, &catalog, &ScoreConfig::default(), day, day, "run-1").unwrap();
//! println!("{report}");
//! for record in report.records() { /* produce to a topic */ let _ = record; }
//! ```

pub mod catalog;
pub mod config;
pub mod decide;
pub mod earning;
pub mod events;
pub mod policy;
pub mod report;
/// The result tables live in the lake crate, read and written there for every stage.
pub use creditguard_lake::tables;
pub mod warnings;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use creditguard_contract::time::{day_of_us, format_day};
use creditguard_contract::{Case, Credit, Flag, ResultRecord};
use creditguard_lake::Lake;

pub use catalog::{Catalog, Course};
pub use config::ScoreConfig;
pub use decide::{Decisions, ScoredFlag};
pub use events::Claim;
pub use tables::{ClaimIssue, Progress};

/// Errors of the scorer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lake(#[from] creditguard_lake::Error),
    #[error("{path}: {msg}")]
    Schema { path: PathBuf, msg: String },
    #[error("catalog {path}: {msg}")]
    Catalog { path: PathBuf, msg: String },
    #[error("score config: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error("period {from}..{to}: the first day is after the last")]
    Period { from: String, to: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What one scoring run decided, and the records it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReport {
    pub run_id: String,
    pub from_day: i64,
    pub to_day: i64,
    /// The flags of the period (their partition day in `from..=to`), sorted by day and id.
    pub flags: Vec<(i64, Flag)>,
    /// One per claim, sorted by (completed_at, credit_id).
    pub credits: Vec<Credit>,
    /// Sorted by user.
    pub cases: Vec<Case>,
    pub issues: Vec<ClaimIssue>,
    /// As of `to_day`, sorted by user.
    pub progress: Vec<Progress>,
    /// Learners of the period missing from the roster, or whose telemetry names another org
    /// unit than the roster (empty without a roster).
    pub roster_issues: Vec<policy::RosterIssue>,
    /// Reminders raised on `to_day` (`results/warnings`).
    pub warnings: Vec<creditguard_contract::Warning>,
}

impl ScoreReport {
    /// The results stream: every flag, credit and case record, in a fixed order (flags, then
    /// credits, then cases, each sorted as in the report). What `--emit ndjson` prints and what
    /// the Kafka sink produces (key = [`ResultRecord::user_id`]).
    pub fn records(&self) -> Vec<ResultRecord> {
        let mut out = Vec::with_capacity(self.flags.len() + self.credits.len() + self.cases.len());
        out.extend(
            self.flags
                .iter()
                .map(|(_, f)| ResultRecord::Flag(f.clone())),
        );
        out.extend(self.credits.iter().cloned().map(ResultRecord::Credit));
        out.extend(self.cases.iter().cloned().map(ResultRecord::Case));
        out.extend(self.warnings.iter().cloned().map(ResultRecord::Warning));
        out.extend(self.progress.iter().cloned().map(ResultRecord::Progress));
        out
    }

    /// The stream records of one day (flags by partition day, credits by completion day, cases
    /// on the last day of the period).
    pub fn records_of_day(&self, day: i64) -> Vec<ResultRecord> {
        let mut out = Vec::new();
        out.extend(
            self.flags
                .iter()
                .filter(|(d, _)| *d == day)
                .map(|(_, f)| ResultRecord::Flag(f.clone())),
        );
        out.extend(
            self.credits
                .iter()
                .filter(|c| day_of_us(c.completed_at) == day)
                .cloned()
                .map(ResultRecord::Credit),
        );
        if day == self.to_day {
            out.extend(self.cases.iter().cloned().map(ResultRecord::Case));
            out.extend(self.warnings.iter().cloned().map(ResultRecord::Warning));
            out.extend(self.progress.iter().cloned().map(ResultRecord::Progress));
        }
        out
    }

    /// Writes the records as NDJSON, one JSON object per line.
    pub fn write_ndjson<W: Write>(&self, mut out: W) -> std::io::Result<()> {
        for r in self.records() {
            serde_json::to_writer(&mut out, &r)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Counts for logs, metrics and the summary.
    pub fn totals(&self) -> Totals {
        let mut t = Totals {
            claims: self.credits.len(),
            flags: self.flags.len(),
            ..Totals::default()
        };
        for c in &self.credits {
            match c.status.as_str() {
                "withheld" => t.withheld += 1,
                "released" => t.released += 1,
                "cancelled" => t.cancelled += 1,
                _ => t.granted += 1,
            }
            t.credits_granted += c.credits_granted;
        }
        for c in &self.cases {
            t.credits_withheld += c.credits_withheld;
            match c.status.as_str() {
                "below_threshold" => t.cases_below += 1,
                "confirmed" | "dismissed" | "partially_confirmed" => t.cases_decided += 1,
                _ => t.cases_open += 1,
            }
        }
        for i in &self.issues {
            *t.issues.entry(i.issue.clone()).or_default() += 1;
        }
        for p in &self.progress {
            *t.progress.entry(p.status.clone()).or_default() += 1;
        }
        t
    }
}

/// Counts of a [`ScoreReport`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub flags: usize,
    pub claims: usize,
    /// Claims granted by the scorer (released ones are counted in `released`).
    pub granted: usize,
    pub withheld: usize,
    /// Claims a reviewer released (granted after review).
    pub released: usize,
    /// Claims a reviewer cancelled (never granted).
    pub cancelled: usize,
    /// Credits granted, released claims included.
    pub credits_granted: f64,
    pub credits_withheld: f64,
    /// Cases waiting for a reviewer: `open`, `in_review`, `needs_info`, `appealed`.
    pub cases_open: usize,
    /// Cases a reviewer decided.
    pub cases_decided: usize,
    pub cases_below: usize,
    /// Claim issues by kind.
    pub issues: BTreeMap<String, usize>,
    /// Learners by progress status.
    pub progress: BTreeMap<String, usize>,
}

impl fmt::Display for ScoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.totals();
        writeln!(
            f,
            "scored {} .. {} (run {})",
            format_day(self.from_day),
            format_day(self.to_day),
            self.run_id
        )?;
        writeln!(f, "  flags:   {}", t.flags)?;
        let reviewed = if t.released + t.cancelled > 0 {
            format!(", {} released, {} cancelled", t.released, t.cancelled)
        } else {
            String::new()
        };
        writeln!(
            f,
            "  claims:  {} ({} granted, {} withheld{reviewed}); credits granted {:.1}, withheld {:.1}",
            t.claims, t.granted, t.withheld, t.credits_granted, t.credits_withheld
        )?;
        let decided = if t.cases_decided > 0 {
            format!(", {} decided", t.cases_decided)
        } else {
            String::new()
        };
        writeln!(
            f,
            "  cases:   {} open, {} below threshold{decided}",
            t.cases_open, t.cases_below
        )?;
        let join = |m: &BTreeMap<String, usize>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        writeln!(f, "  claim issues: {}", join(&t.issues))?;
        write!(f, "  progress: {}", join(&t.progress))?;
        // Per branch (the first two units of an org path) when the roster gives paths.
        let mut branches: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for p in &self.progress {
            if let Some(org) = p.org_unit.as_deref().filter(|o| o.contains('/')) {
                let branch: Vec<&str> = org.split('/').take(2).collect();
                *branches
                    .entry(branch.join("/"))
                    .or_default()
                    .entry(p.status.clone())
                    .or_default() += 1;
            }
        }
        for (branch, by_status) in &branches {
            write!(f, "\n    {branch}: {}", join(by_status))?;
        }
        if !self.warnings.is_empty() {
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            for w in &self.warnings {
                *kinds.entry(w.reason.clone()).or_default() += 1;
            }
            write!(f, "\n  warnings: {}", join(&kinds))?;
        }
        if !self.roster_issues.is_empty() {
            let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
            for i in &self.roster_issues {
                *kinds.entry(i.issue.to_string()).or_default() += 1;
            }
            write!(f, "\n  roster: {}", join(&kinds))?;
        }
        Ok(())
    }
}

/// Reads, decides and returns, writing nothing. `score` = this + [`write_results`].
pub fn compute(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    from_day: i64,
    to_day: i64,
    run_id: &str,
) -> Result<ScoreReport> {
    cfg.validate().map_err(Error::Config)?;
    if from_day > to_day {
        return Err(Error::Period {
            from: format_day(from_day),
            to: format_day(to_day),
        });
    }
    let lookback_from = from_day - cfg.lookback_days;
    let mut flags: Vec<ScoredFlag> = Vec::new();
    let mut period_flags: Vec<(i64, Flag)> = Vec::new();
    let mut seen = HashSet::new();
    let mut all = tables::read_flags(lake, lookback_from, to_day)?;
    all.sort_by(|a, b| (a.0, &a.1.flag_id).cmp(&(b.0, &b.1.flag_id)));
    for (day, flag) in all {
        // A flag id is deterministic; the same flag in two partitions is one flag.
        if !seen.insert(flag.flag_id.clone()) {
            continue;
        }
        let in_period = day >= from_day;
        if in_period {
            period_flags.push((day, flag.clone()));
        }
        flags.push(ScoredFlag { flag, in_period });
    }
    // The events are read once: claims of the period, what the earning rules read, and the
    // activity that links course-less flags to claims.
    let gap_us = (cfg.activity_gap_s * 1e6) as i64;
    let activity_days = flags
        .iter()
        .any(|f| f.flag.course_id.is_none())
        .then_some((lookback_from, to_day));
    let scan = events::EventScan::read(
        lake,
        &scan_wants(cfg, catalog, (from_day, to_day), activity_days),
    )?;
    let claims = scan.claims(from_day, to_day)?;
    // The policy's earning rules: completions they refuse, and days of live sessions.
    let earned = earning::apply(&scan, claims, catalog, cfg, (from_day, to_day), run_id)?;
    let claims = earned.claims;
    // Activity is needed only for learners with a claim and a flag that names no course.
    let claimants: HashSet<&str> = claims.iter().map(|c| c.user_id.as_str()).collect();
    let users: HashSet<String> = flags
        .iter()
        .filter(|f| f.flag.course_id.is_none() && claimants.contains(f.flag.user_id.as_str()))
        .map(|f| f.flag.user_id.clone())
        .collect();
    let activity = scan.activity(lookback_from, to_day, &users, gap_us)?;
    drop(scan);
    let d = decide::decide(
        &claims, &flags, &activity, catalog, cfg, from_day, to_day, run_id,
    );
    let mut credits = d.credits;
    credits.extend(earned.unearned);
    credits.sort_by(|a, b| (a.completed_at, &a.credit_id).cmp(&(b.completed_at, &b.credit_id)));
    let mut issues = d.issues;
    issues.extend(earned.issues);
    issues.sort_by(|a, b| (a.completed_at, &a.issue_id).cmp(&(b.completed_at, &b.issue_id)));

    let mut report = ScoreReport {
        run_id: run_id.to_string(),
        from_day,
        to_day,
        flags: period_flags,
        credits,
        cases: d.cases,
        issues,
        progress: Vec::new(),
        roster_issues: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(roster) = &cfg.expectations.roster {
        place_by_roster(&mut report, roster);
    }
    year_standing(lake, catalog, cfg, &mut report)?;
    Ok(report)
}

/// Reports the learners the roster lacks or places elsewhere than telemetry does, and puts
/// credits and cases where the roster puts the learner.
fn place_by_roster(report: &mut ScoreReport, roster: &policy::Roster) {
    let seen = report
        .credits
        .iter()
        .map(|c| (&c.user_id, &c.org_unit))
        .chain(report.flags.iter().map(|(_, f)| (&f.user_id, &f.org_unit)));
    report.roster_issues = roster.issues(seen);
    // Credits and cases belong where the roster puts the learner (reviewer scopes and
    // results group by its org paths); flags keep the org unit telemetry named.
    for c in &mut report.credits {
        if let Some(p) = roster.get(&c.user_id) {
            c.org_unit = Some(p.org_path.clone());
        }
    }
    for c in &mut report.cases {
        if let Some(p) = roster.get(&c.user_id) {
            c.org_unit = Some(p.org_path.clone());
        }
    }
    for i in &report.roster_issues {
        tracing::warn!(user = %i.user_id, issue = %i.issue, telemetry_org_unit = ?i.telemetry_org_unit, roster_org_path = ?i.roster_org_path, "Roster and telemetry disagree.");
    }
}

/// What the one scan of the events for scoring `from..=to` reads: the claims' columns of the
/// period, the earning rules' days ([`earning::wanted_days`]) and, when a flag names no course,
/// the activity of `activity_days`.
fn scan_wants(
    cfg: &ScoreConfig,
    catalog: &Catalog,
    (from, to): (i64, i64),
    activity_days: Option<(i64, i64)>,
) -> Vec<events::Want<'static>> {
    let (quiz_days, live_days) = earning::wanted_days(cfg, catalog, (from, to));
    let mut wants = vec![events::Want {
        from,
        to,
        columns: &events::CLAIM_COLUMNS,
    }];
    wants.extend(events::earning_wants(quiz_days, live_days));
    wants.extend(activity_days.map(|(from, to)| events::Want {
        from,
        to,
        columns: &events::ACTIVITY_COLUMNS,
    }));
    wants
}

/// Sets the report's progress and reminders as of its last day, from this credit year's credit
/// records (read once): earlier days from the credits table as earlier runs left it, the scored
/// period from the report (so a caller that changes the report's credits, applying reviewers'
/// decisions, calls this again).
pub fn year_standing(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    report: &mut ScoreReport,
) -> Result<()> {
    let credits = year_credits(lake, report)?;
    report.progress = year_progress(&credits, catalog, cfg, report);
    report.warnings = year_warnings(lake, &credits, cfg, report)?;
    Ok(())
}

/// The learners' progress as of the report's last day, from the year's credit records.
fn year_progress(
    year_credits: &[Credit],
    catalog: &Catalog,
    cfg: &ScoreConfig,
    report: &ScoreReport,
) -> Vec<Progress> {
    let extra: BTreeMap<String, Option<String>> = report
        .cases
        .iter()
        .map(|c| (c.user_id.clone(), c.org_unit.clone()))
        .collect();
    decide::progress(
        year_credits,
        &extra,
        catalog,
        cfg,
        report.to_day,
        &report.run_id,
    )
}

/// This credit year's credit records up to the report's last day: earlier days from the
/// credits table, the scored period from the report.
fn year_credits(lake: &Lake, report: &ScoreReport) -> Result<Vec<Credit>> {
    let (year, _, _) = creditguard_contract::time::civil_from_days(report.to_day);
    // A business zone east of UTC starts the year on the UTC day before.
    let first = creditguard_contract::time::days_from_civil(year, 1, 1) - 1;
    let mut credits: Vec<Credit> = if report.from_day > first {
        tables::read_credits(lake, first, report.from_day - 1)?
    } else {
        Vec::new()
    };
    credits.extend(report.credits.iter().cloned());
    Ok(credits)
}

/// The reminders raised on the report's last day ([`warnings`]), from its progress: those
/// already written on earlier days of the year are not raised again. Reminders are part of a
/// credit policy: none without `[policy]`.
fn year_warnings(
    lake: &Lake,
    credits: &[Credit],
    cfg: &ScoreConfig,
    report: &ScoreReport,
) -> Result<Vec<creditguard_contract::Warning>> {
    let exp = &cfg.expectations;
    let Some(policy) = exp.policy.as_ref() else {
        return Ok(Vec::new());
    };
    let to = report.to_day;
    let (year, _, _) = creditguard_contract::time::civil_from_days(to);
    let first = creditguard_contract::time::days_from_civil(year, 1, 1) - 1;
    let earlier: Vec<i64> = lake
        .days(tables::PROGRESS)?
        .into_iter()
        .filter(|d| (first..to).contains(d))
        .collect();
    let previous: std::collections::HashMap<String, Progress> = match earlier.last() {
        Some(day) => tables::read_progress(lake, *day)?
            .into_iter()
            .map(|p| (p.user_id.clone(), p))
            .collect(),
        None => Default::default(),
    };
    let emitted = tables::read_warning_ids(lake, first, to - 1)?;
    let refused = if exp.assignments.is_empty() {
        Default::default()
    } else {
        refused_completions(lake, report, first)?
    };
    // Engaged hours of the business month so far (local midnights of the policy's zone), when a
    // rule sets a monthly minimum.
    let engaged = if policy.rules.iter().any(|r| r.monthly_hours.is_some()) {
        let midnight = |day: i64| day * creditguard_contract::time::DAY_US - policy.utc_offset_us;
        tables::engaged_hours(lake, midnight(warnings::month_of(to).0), midnight(to + 1))?
    } else {
        None
    };
    Ok(warnings::warnings(&warnings::WarningInput {
        policy,
        roster: exp.roster.as_ref(),
        assignments: &exp.assignments,
        settings: &exp.warnings,
        progress: &report.progress,
        previous: &previous,
        credits,
        refused: &refused,
        emitted: &emitted,
        engaged_hours: engaged.as_ref(),
        as_of_day: to,
        run_id: &report.run_id,
    }))
}

/// The credit ids of the year's completions refused for want of a passed quiz: earlier days from
/// the claim issues table, the scored period from the report.
fn refused_completions(lake: &Lake, report: &ScoreReport, first: i64) -> Result<HashSet<String>> {
    let earlier = if report.from_day > first {
        tables::read_claim_issues(lake, first, report.from_day - 1)?
    } else {
        Vec::new()
    };
    Ok(earlier
        .iter()
        .chain(&report.issues)
        .filter(|i| i.issue == earning::QUIZ_NOT_PASSED)
        .map(|i| i.credit_id.clone())
        .collect())
}

/// Writes a report's tables, every day of its period replaced atomically (days without rows get
/// an empty file, so a re-run that finds less leaves nothing stale). With `stream`, also writes
/// `results/stream/dt=D/part-0.ndjson`.
pub fn write_results(lake: &Lake, report: &ScoreReport, stream: bool) -> Result<()> {
    let (from, to) = (report.from_day, report.to_day);
    tables::write_days(
        lake,
        tables::CREDITS,
        from,
        to,
        &report.credits,
        |c| day_of_us(c.completed_at),
        tables::credits_batch,
    )?;
    tables::write_days(
        lake,
        tables::CLAIM_ISSUES,
        from,
        to,
        &report.issues,
        |c| day_of_us(c.completed_at),
        tables::claim_issues_batch,
    )?;
    tables::replace_day(lake, tables::CASES, to, tables::cases_batch(&report.cases)?)?;
    tables::replace_day(
        lake,
        tables::PROGRESS,
        to,
        tables::progress_batch(&report.progress)?,
    )?;
    tables::replace_day(
        lake,
        tables::WARNINGS,
        to,
        tables::warnings_batch(&report.warnings)?,
    )?;
    if stream {
        for day in from..=to {
            let records = report.records_of_day(day);
            lake.replace_partition(tables::STREAM, day, |staging| {
                let mut out =
                    std::io::BufWriter::new(std::fs::File::create(staging.join("part-0.ndjson"))?);
                for r in &records {
                    serde_json::to_writer(&mut out, r)?;
                    out.write_all(b"\n")?;
                }
                out.flush()?;
                Ok(())
            })?;
        }
    }
    let t = report.totals();
    tracing::info!(
        from = %format_day(from),
        to = %format_day(to),
        flags = t.flags,
        claims = t.claims,
        withheld = t.withheld,
        cases_open = t.cases_open,
        issues = report.issues.len(),
        "Wrote results."
    );
    Ok(())
}

/// Scores the days `from_day..=to_day` and writes the result tables and the NDJSON stream.
pub fn score(
    lake: &Lake,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    from_day: i64,
    to_day: i64,
    run_id: &str,
) -> Result<ScoreReport> {
    let report = compute(lake, catalog, cfg, from_day, to_day, run_id)?;
    write_results(lake, &report, cfg.write_stream)?;
    Ok(report)
}
