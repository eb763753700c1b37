//! Review in the pipeline: the `[review]` section, what the score stage does with the review
//! database (cases that persist, decisions applied to credits), and the `creditguard review` and
//! `creditguard audit` commands reviewers and auditors use (`creditguard-review` holds the state).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;

use anyhow::Context as _;
use creditguard_contract::time::{day_of_us, format_day, format_rfc3339_us};
use creditguard_contract::{Case, Flag, ResultRecord};
use creditguard_kafka::ProduceReport;
use creditguard_lake::Lake;
use creditguard_review::{
    apply_decisions, CaseFilter, CaseRow, CaseStatus, DecideRequest, Review, SyncCandidate,
    SyncFlag, SyncInput, Verdict, WithheldClaim,
};
use creditguard_score::{tables, Catalog, ScoreConfig, ScoreReport};

use crate::cli::{AuditArgs, AuditCommand, Format, ReviewArgs, ReviewCommand, Target};

use crate::config::{Overrides, Pipeline};

/// Environment variable that names the review database, winning over `[review] database` (so a
/// password need not be in a pipeline file).
pub const DATABASE_ENV: &str = "CREDITGUARD_REVIEW_DATABASE";

pub use crate::config::{axum_header_ok, ReviewSettings};

/// The review database URL of a pipeline: `CREDITGUARD_REVIEW_DATABASE`, else `[review]
/// database`, else `review.sqlite` in the lake directory.
pub fn database_url(pipeline: &Pipeline) -> anyhow::Result<String> {
    if let Ok(url) = std::env::var(DATABASE_ENV) {
        if !url.trim().is_empty() {
            return Ok(url);
        }
    }
    let s = pipeline.review.clone();
    Ok(match s.database {
        Some(url) => url,
        None => {
            let root = creditguard_lake::local_dir(&pipeline.lake)?;
            creditguard_review::default_sqlite_url(&root)
        }
    })
}

/// The review store of a pipeline, with the runtime its calls run on.
pub struct Store {
    pub rt: tokio::runtime::Runtime,
    pub review: Review,
}

impl Store {
    /// Opens (and migrates) the pipeline's review database.
    pub fn open(pipeline: &Pipeline) -> anyhow::Result<Store> {
        let url = database_url(pipeline)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting a runtime for the review database")?;
        let review = rt.block_on(Review::open(&url))?;
        Ok(Store { rt, review })
    }

    /// Runs one call of the review store.
    pub fn run<T>(
        &self,
        f: impl std::future::Future<Output = creditguard_review::Result<T>>,
    ) -> creditguard_review::Result<T> {
        self.rt.block_on(f)
    }
}

/// What the score stage did with the review database.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReviewSync {
    /// The database (password hidden).
    pub database: String,
    pub cases_opened: usize,
    pub flags_attached: usize,
    /// Credit records a standing decision changed (released, cancelled, or fewer flags).
    pub credits_changed: usize,
}

impl std::fmt::Display for ReviewSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "review     {} case(s) opened, {} flag(s) attached to cases, {} credit record(s) changed by decisions ({})",
            self.cases_opened, self.flags_attached, self.credits_changed, self.database
        )
    }
}

/// The score stage's review step: hands the run's flags and withheld claims to the review
/// database (cases persist across runs, see `creditguard_review::Review::sync`), applies the
/// decisions standing on the run's claims to its credit records, replaces the run's per-period
/// case records by the persistent cases (id, status, assignee, previous case), and recomputes
/// progress with the decisions applied.
pub fn sync_report(
    store: &Store,
    lake: &Lake,
    catalog: &Catalog,
    cfg: &ScoreConfig,
    settings: &ReviewSettings,
    report: &mut ScoreReport,
) -> anyhow::Result<ReviewSync> {
    let flags = case_flags(lake, cfg, report)?;
    let weighted = |f: &Flag| creditguard_score::decide::weighted(f, cfg);
    let mut lookback_of: HashMap<&str, Vec<&String>> = HashMap::new();
    let period: BTreeSet<&str> = report
        .flags
        .iter()
        .map(|(_, f)| f.flag_id.as_str())
        .collect();
    for (id, (_, f)) in &flags {
        if !period.contains(id.as_str()) {
            lookback_of.entry(f.user_id.as_str()).or_default().push(id);
        }
    }
    let candidates = report
        .cases
        .iter()
        .map(|case| SyncCandidate {
            user_id: case.user_id.clone(),
            org_unit: case.org_unit.clone(),
            flags: case
                .flag_ids
                .iter()
                .chain(
                    lookback_of
                        .get(case.user_id.as_str())
                        .into_iter()
                        .flatten()
                        .copied(),
                )
                .collect::<BTreeSet<&String>>()
                .into_iter()
                .filter_map(|id| flags.get(id))
                .map(|(day, f)| SyncFlag {
                    flag_id: f.flag_id.clone(),
                    detector: f.detector.clone(),
                    rule: f.rule.clone(),
                    org_unit: f.org_unit.clone(),
                    course_id: f.course_id.clone(),
                    window_start: f.window_start,
                    window_end: f.window_end,
                    weighted_severity: weighted(f),
                    day: *day,
                })
                .collect(),
        })
        .collect();
    let withheld = report
        .credits
        .iter()
        .filter(|c| c.status == "withheld")
        .map(|c| WithheldClaim {
            credit_id: c.credit_id.clone(),
            user_id: c.user_id.clone(),
            course_id: c.course_id.clone(),
            completed_at: c.completed_at,
            credits_value: creditguard_score::decide::claim_value(c, catalog),
            flag_ids: c.flag_ids.clone(),
        })
        .collect();
    let input = SyncInput {
        candidates,
        withheld,
        claim_ids: report.credits.iter().map(|c| c.credit_id.clone()).collect(),
        review_threshold: cfg.review_threshold,
        reopen_after_days: settings.reopen_after_days,
    };
    let outcome = store.run(store.review.sync(&input, creditguard_review::now_us()))?;
    let credits_changed = apply_decisions(&mut report.credits, &outcome.decisions);
    let rows: HashMap<&str, &CaseRow> = outcome
        .cases
        .iter()
        .map(|c| (c.case_id.as_str(), c))
        .collect();
    report.cases = persistent_cases(report, &flags, &outcome.flag_case, &rows, catalog, cfg);
    creditguard_score::year_standing(lake, catalog, cfg, report)?;
    Ok(ReviewSync {
        database: store.review.name().to_string(),
        cases_opened: outcome.opened,
        flags_attached: outcome.flags_attached,
        credits_changed,
    })
}

/// Every flag the sync may need, with its partition day: the period's, and those of the
/// lookback (`[score] lookback_days` before the period). Lookback flags that withheld a claim of
/// the period are in the report's cases; the others let a learner's weak earlier flags, which
/// opened no case on their own, join the episode a later flag opens, so scoring day by day
/// groups flags as scoring the whole period at once does.
fn case_flags(
    lake: &Lake,
    cfg: &ScoreConfig,
    report: &ScoreReport,
) -> anyhow::Result<HashMap<String, (i64, Flag)>> {
    let mut flags: HashMap<String, (i64, Flag)> = report
        .flags
        .iter()
        .map(|(d, f)| (f.flag_id.clone(), (*d, f.clone())))
        .collect();
    if !report.cases.is_empty() && cfg.lookback_days > 0 {
        let from = report.from_day - cfg.lookback_days;
        for (day, f) in tables::read_flags(lake, from, report.from_day - 1)? {
            flags.entry(f.flag_id.clone()).or_insert((day, f));
        }
    }
    Ok(flags)
}

/// The run's case records with the review database's cases: a learner's flags are grouped by
/// the persistent case that holds them (one record per case, with its id, status, assignee and
/// previous case); flags that belong to no case (too weak to open one) keep the run's record,
/// `below_threshold`.
fn persistent_cases(
    report: &ScoreReport,
    flags: &HashMap<String, (i64, Flag)>,
    flag_case: &HashMap<String, String>,
    rows: &HashMap<&str, &CaseRow>,
    catalog: &Catalog,
    cfg: &ScoreConfig,
) -> Vec<Case> {
    let mut out = Vec::with_capacity(report.cases.len());
    for case in &report.cases {
        let mut groups: BTreeMap<Option<&str>, Vec<String>> = BTreeMap::new();
        for id in &case.flag_ids {
            let key = flag_case.get(id).map(String::as_str);
            groups.entry(key).or_default().push(id.clone());
        }
        for (case_id, ids) in groups {
            let of: Vec<&Flag> = ids
                .iter()
                .filter_map(|i| flags.get(i))
                .map(|(_, f)| f)
                .collect();
            let detectors: BTreeSet<String> = of.iter().map(|f| f.detector.clone()).collect();
            let id_set: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
            let credits_withheld: f64 = report
                .credits
                .iter()
                .filter(|c| {
                    c.status == "withheld" && c.flag_ids.iter().any(|f| id_set.contains(f.as_str()))
                })
                .map(|c| creditguard_score::decide::claim_value(c, catalog))
                .sum();
            let mut record = Case {
                flag_ids: ids.clone(),
                detectors: detectors.into_iter().collect(),
                credits_withheld,
                ..case.clone()
            };
            match case_id.and_then(|id| rows.get(id)) {
                Some(row) => {
                    record.case_id = row.case_id.clone();
                    record.org_unit = row.org_unit.clone().or(record.org_unit);
                    record.risk = row.risk;
                    record.status = row.status.as_str().to_string();
                    record.previous_case_id = row.previous_case_id.clone();
                    record.assignee = row.assignee.clone();
                }
                None => {
                    record.risk = creditguard_score::decide::noisy_or(
                        of.iter()
                            .map(|f| creditguard_score::decide::weighted(f, cfg)),
                    );
                    record.status = "below_threshold".to_string();
                }
            }
            out.push(record);
        }
    }
    out.sort_by(|a, b| (&a.user_id, &a.case_id).cmp(&(&b.user_id, &b.case_id)));
    out
}

/// Hands the outbox (decision records not yet acknowledged) to `[kafka] results_topic`, and marks
/// them published once the broker acknowledged every one. `None` without a results topic (the
/// records stay in the outbox and in `results/decisions`).
pub fn publish_outbox(pipeline: &Pipeline, store: &Store) -> anyhow::Result<Option<ProduceReport>> {
    let section = &pipeline.kafka;
    let Some(topic) = section.results_topic.clone() else {
        return Ok(None);
    };
    let pending = store.run(store.review.unpublished())?;
    if pending.is_empty() {
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(pending.len());
    let mut records = Vec::with_capacity(pending.len());
    for (id, _key, json) in pending {
        let record: ResultRecord = serde_json::from_str(&json).with_context(|| {
            format!(
                "outbox record {id} of {} is not a result record",
                store.review.name()
            )
        })?;
        ids.push(id);
        records.push(record);
    }
    let identities = pipeline.stream_identities()?;
    let (records, _) = crate::identify::stream_records(records, identities.as_ref());
    let n = records.len() as u64;
    let client = section.client();
    let delivered = store
        .rt
        .block_on(creditguard_kafka::produce_results(&client, &topic, records))
        .with_context(|| {
            format!(
                "producing {n} decision records to Kafka topic `{topic}` at {} (they stay in the outbox and go with the next run)",
                client.brokers()
            )
        })?;
    anyhow::ensure!(
        delivered.records == n,
        "Kafka topic `{topic}`: {} of {n} decision records acknowledged (they stay in the outbox)",
        delivered.records
    );
    store.run(store.review.mark_published(&ids))?;
    Ok(Some(delivered))
}

/// [`publish_outbox`] for a pipeline with a results topic (opening its review database only
/// then): what the score stage runs, so decision records a broker outage held back go out with
/// the next run.
pub fn publish_pending(pipeline: &Pipeline) -> anyhow::Result<Option<ProduceReport>> {
    let section = &pipeline.kafka;
    if section.results_topic.is_none() {
        return Ok(None);
    }
    publish_outbox(pipeline, &Store::open(pipeline)?)
}

/// After a decision: rewrites the credit records of the case's claims (their completion days in
/// `results/credits`) with the decisions applied, and the day's `results/decisions` and
/// `results/review_stream` partitions. Progress follows at the next score run. The same code
/// runs after a decision in the web app (`creditguard_web::write_decision_tables`).
pub fn write_decision_tables(
    store: &Store,
    lake: &Lake,
    case_id: &str,
    decided_at: i64,
) -> anyhow::Result<usize> {
    Ok(creditguard_web::write_decision_tables(
        &store.rt,
        &store.review,
        lake,
        case_id,
        decided_at,
    )?)
}

/// The decision records as NDJSON files (`case_decision`, `credit_released`, `credit_cancelled`),
/// one partition per decision day.
pub use creditguard_web::REVIEW_STREAM;

/// Writes `results/rule_feedback` for `day` (reviewers' verdicts per rule and org unit, as of the
/// end of that day).
pub fn write_rule_feedback(store: &Store, lake: &Lake, day: i64) -> anyhow::Result<usize> {
    let as_of = (day + 1) * DAY_US - 1;
    let rows = store.run(store.review.rule_feedback(as_of))?;
    tables::replace_day(
        lake,
        tables::RULE_FEEDBACK,
        day,
        tables::rule_feedback_batch(&rows)?,
    )?;
    Ok(rows.len())
}

// ---------------------------------------------------------------------------------------------
// The command line.

/// A usage error of `creditguard review` (unknown case, refused transition, stale version,
/// missing reason): exit 2, with the message naming the case and its state.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReviewUsageError(pub String);

fn usage_or(e: creditguard_review::Error) -> anyhow::Error {
    if e.is_usage() {
        ReviewUsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

impl Target {
    fn open(&self) -> anyhow::Result<(Pipeline, Store)> {
        let overrides = Overrides {
            lake: self.lake.clone(),
            ..Overrides::default()
        };
        let pipeline = Pipeline::load(&self.pipeline, &overrides)?;
        let store = Store::open(&pipeline)?;
        Ok((pipeline, store))
    }
}

use creditguard_contract::time::DAY_US;

fn time(us: i64) -> String {
    format_rfc3339_us(us)
}

fn parse_statuses(raw: &[String]) -> anyhow::Result<Vec<CaseStatus>> {
    if raw.is_empty() {
        return Ok(vec![
            CaseStatus::Open,
            CaseStatus::InReview,
            CaseStatus::NeedsInfo,
            CaseStatus::Appealed,
        ]);
    }
    if raw.iter().any(|s| s == "all") {
        return Ok(Vec::new());
    }
    raw.iter()
        .map(|s| {
            CaseStatus::parse(s).ok_or_else(|| {
                ReviewUsageError(format!(
                    "--status `{s}`: expected one of {} or all",
                    CaseStatus::ALL.map(|c| c.as_str()).join(", ")
                ))
                .into()
            })
        })
        .collect()
}

/// Runs `creditguard review …`.
pub fn execute(args: ReviewArgs) -> anyhow::Result<()> {
    let now = creditguard_review::now_us();
    match args.command {
        ReviewCommand::List {
            target,
            status,
            org_unit,
            rule,
            user,
            assignee,
            limit,
            format,
        } => {
            let statuses = parse_statuses(&status)?;
            let (_, store) = target.open()?;
            let filter = CaseFilter {
                statuses,
                org_unit,
                rule,
                user_id: user,
                assignee,
                min_risk: None,
                limit: Some(limit),
            };
            let cases = store.run(store.review.list(&filter))?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&cases)?),
                Format::Text => print!("{}", render_list(&cases)),
            }
        }
        ReviewCommand::Show {
            target,
            case_id,
            format,
        } => {
            let (_, store) = target.open()?;
            let detail = store.run(store.review.show(&case_id)).map_err(usage_or)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&detail)?),
                Format::Text => print!("{}", render_detail(&detail)),
            }
        }
        ReviewCommand::Assign {
            target,
            case_id,
            actor,
            to,
        } => {
            let (_, store) = target.open()?;
            let row = store
                .run(
                    store
                        .review
                        .assign(&case_id, &to, &actor.actor, actor.expect_version, now),
                )
                .map_err(usage_or)?;
            println!("{}", changed_line(&row));
        }
        ReviewCommand::Comment {
            target,
            case_id,
            actor,
            text,
        } => {
            let (_, store) = target.open()?;
            let row = store
                .run(store.review.comment(&case_id, &text, &actor.actor, now))
                .map_err(usage_or)?;
            println!("{}", changed_line(&row));
        }
        ReviewCommand::RequestInfo {
            target,
            case_id,
            actor,
            reason,
        } => {
            let (_, store) = target.open()?;
            let row = store
                .run(store.review.request_info(
                    &case_id,
                    &reason,
                    &actor.actor,
                    actor.expect_version,
                    now,
                ))
                .map_err(usage_or)?;
            println!("{}", changed_line(&row));
        }
        ReviewCommand::Appeal {
            target,
            case_id,
            actor,
            reason,
        } => {
            let (_, store) = target.open()?;
            let row = store
                .run(store.review.appeal(
                    &case_id,
                    &reason,
                    &actor.actor,
                    actor.expect_version,
                    now,
                ))
                .map_err(usage_or)?;
            println!("{}", changed_line(&row));
        }
        ReviewCommand::Decide {
            target,
            case_id,
            actor,
            decision,
            reason,
            claims,
        } => {
            let (pipeline, store) = target.open()?;
            let verdict = Verdict::parse(&decision).ok_or_else(|| {
                ReviewUsageError(format!("--decision `{decision}` is not a decision"))
            })?;
            let req = DecideRequest {
                case_id: case_id.clone(),
                verdict,
                reason,
                reviewer: actor.actor,
                cancel_claims: claims,
                expect_version: actor.expect_version,
            };
            let decision = store
                .run(store.review.decide(&req, now))
                .map_err(usage_or)?;
            let lake = Lake::open(&pipeline.lake)
                .with_context(|| format!("opening the lake at {}", pipeline.lake))?;
            let changed = write_decision_tables(&store, &lake, &case_id, decision.decided_at)?;
            println!(
                "case {case_id}: {} by {} ({} claim(s) released, {:.1} credits; {} cancelled, {:.1} credits); {changed} credit record(s) rewritten in {}/results/credits",
                decision.decision,
                decision.reviewer,
                decision.released_credit_ids.len(),
                decision.credits_released,
                decision.cancelled_credit_ids.len(),
                decision.credits_cancelled,
                pipeline.lake.trim_end_matches('/'),
            );
            let published = publish_outbox(&pipeline, &store).with_context(|| {
                format!(
                    "case {case_id} is {} and its credit records are rewritten, but its records did not reach the results topic",
                    decision.decision
                )
            })?;
            if let Some(produced) = published {
                println!("{}", crate::results_topic::results_topic_line(&produced));
            }
        }
        ReviewCommand::Feedback { target, format } => {
            let (_, store) = target.open()?;
            let rows = store.run(store.review.rule_feedback(now))?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                Format::Text => print!("{}", render_feedback(&rows)),
            }
        }
    }
    Ok(())
}

/// Runs `creditguard audit …`.
pub fn execute_audit(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify { target } => {
            let (_, store) = target.open()?;
            let report = store.run(store.review.verify_audit())?;
            match &report.problem {
                None => {
                    println!(
                        "audit trail of {}: {} record(s), hash chain intact",
                        store.review.name(),
                        report.records
                    );
                    Ok(())
                }
                Some(p) => anyhow::bail!(
                    "audit trail of {} is broken ({} record(s)): {p}",
                    store.review.name(),
                    report.records
                ),
            }
        }
        AuditCommand::Export { target, from, to } => {
            let (_, store) = target.open()?;
            let from_us = from.map_or(i64::MIN, |d| d * DAY_US);
            let to_us = to.map_or(i64::MAX, |d| (d + 1) * DAY_US - 1);
            let records = store.run(store.review.audit_records(from_us, to_us))?;
            let stdout = std::io::stdout().lock();
            let mut out = std::io::BufWriter::new(stdout);
            for r in &records {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            out.flush().context("writing the audit records to stdout")?;
            Ok(())
        }
    }
}

fn changed_line(row: &CaseRow) -> String {
    format!(
        "case {}: {}{} (version {})",
        row.case_id,
        row.status.as_str(),
        row.assignee
            .as_ref()
            .map(|a| format!(", assigned to {a}"))
            .unwrap_or_default(),
        row.version
    )
}

/// The queue as aligned text.
pub fn render_list(cases: &[CaseRow]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:<14} {:<20} {:<16} {:>5}  {:<12} {:<10} last flag",
        "case", "user", "org unit", "status", "risk", "assignee", "version"
    );
    for c in cases {
        let _ = writeln!(
            out,
            "{:<18} {:<14} {:<20} {:<16} {:>5.2}  {:<12} {:<10} {}",
            c.case_id,
            c.user_id,
            c.org_unit.as_deref().unwrap_or("-"),
            c.status.as_str(),
            c.risk,
            c.assignee.as_deref().unwrap_or("-"),
            c.version,
            format_day(day_of_us(c.last_flag_at)),
        );
    }
    let _ = writeln!(out, "{} case(s)", cases.len());
    out
}

/// One case as text: what a reviewer reads before deciding.
pub fn render_detail(d: &creditguard_review::CaseDetail) -> String {
    use std::fmt::Write as _;
    let c = &d.case;
    let mut out = String::new();
    let _ = writeln!(out, "case {}  (version {})", c.case_id, c.version);
    let _ = writeln!(
        out,
        "  learner {} in {}, status {}{}, risk {:.2}",
        c.user_id,
        c.org_unit.as_deref().unwrap_or("(no org unit)"),
        c.status.as_str(),
        c.assignee
            .as_ref()
            .map(|a| format!(" (assigned to {a})"))
            .unwrap_or_default(),
        c.risk
    );
    let _ = writeln!(
        out,
        "  flags from {} to {}{}",
        time(c.first_flag_at),
        time(c.last_flag_at),
        c.previous_case_id
            .as_ref()
            .map(|p| format!("; previous case {p}"))
            .unwrap_or_default()
    );
    if let (Some(by), Some(at)) = (&c.decided_by, c.decided_at) {
        let _ = writeln!(
            out,
            "  decided by {by} at {}: {}",
            time(at),
            c.decision_reason.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(out, "flags ({}):", d.flags.len());
    for f in &d.flags {
        let _ = writeln!(
            out,
            "  {}  {}  {} .. {}  weighted severity {:.2}{}",
            f.flag_id,
            f.rule,
            time(f.window_start),
            time(f.window_end),
            f.weighted_severity,
            f.course_id
                .as_ref()
                .map(|c| format!("  course {c}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "claims ({}):", d.claims.len());
    for k in &d.claims {
        let _ = writeln!(
            out,
            "  {}  course {}  completed {}  {:.1} credits  {}",
            k.credit_id,
            k.course_id,
            time(k.completed_at),
            k.credits_value,
            k.decision.map(|x| x.as_str()).unwrap_or("withheld")
        );
    }
    let _ = writeln!(out, "history:");
    for h in &d.history {
        let _ = writeln!(
            out,
            "  {}  {}  {}{}{}",
            time(h.at),
            h.actor,
            h.action,
            match (&h.before_state, &h.after_state) {
                (Some(b), Some(a)) if a != b => format!(" {b} → {a}"),
                (None, Some(a)) => format!(" → {a}"),
                _ => String::new(),
            },
            h.reason
                .as_ref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if !d.related.is_empty() {
        let _ = writeln!(out, "the learner's other cases:");
        for r in &d.related {
            let _ = writeln!(
                out,
                "  {}  {}  {} .. {}",
                r.case_id,
                r.status.as_str(),
                format_day(day_of_us(r.first_flag_at)),
                format_day(day_of_us(r.last_flag_at))
            );
        }
    }
    out
}

/// Rule feedback as aligned text.
pub fn render_feedback(rows: &[creditguard_contract::RuleFeedback]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:<20} {:>9} {:>9} {:>8} {:>10}",
        "rule", "org unit", "confirmed", "dismissed", "pending", "confirmed%"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<36} {:<20} {:>9} {:>9} {:>8} {:>10}",
            r.rule,
            r.org_unit.as_deref().unwrap_or("-"),
            r.confirmed,
            r.dismissed,
            r.pending,
            r.confirmed_share
                .map(|s| format!("{:.0}%", s * 100.0))
                .unwrap_or_else(|| "-".into())
        );
    }
    out
}
