//! The `score` stage of a pipeline and `creditguard score --from D --to D [--emit ndjson]`: flags
//! and credit claims → `results/{credits,cases,claim_issues,progress,stream}` (`creditguard-score`).

use std::io::Write as _;

use anyhow::Context as _;
use creditguard_contract::time::format_day;
use creditguard_lake::Lake;
use creditguard_score::{Catalog, ScoreReport};

use crate::cli::{Emit, ScoreArgs};
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
    /// Claims of the period decided under other thresholds or another policy, and what the run
    /// did with them.
    pub earlier: Earlier,
}

/// Whether a score run may re-score claims already decided under other thresholds or another
/// credit policy (`--rescore-decided`), and who asks (recorded in the audit trail).
#[derive(Debug, Clone, Default)]
pub struct Rescore {
    pub decided: bool,
    pub actor: String,
}

/// What a run found of claims decided under other versions, and did with them.
#[derive(Debug, Clone, Default)]
pub struct Earlier {
    pub found: creditguard_score::decide::EarlierVersions,
    /// Records kept as decided (without `--rescore-decided`).
    pub kept: usize,
    /// Claims re-scored under this run's versions (with `--rescore-decided`), and the audit
    /// record that says so.
    pub rescored: usize,
    pub audit_seq: Option<i64>,
}

impl std::fmt::Display for Earlier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let versions = self.found.describe();
        if self.rescored > 0 {
            write!(
                f,
                "versions   {} claim(s) decided under other versions re-scored ({} decided by reviewers; {versions}); audit record {}",
                self.rescored,
                self.found.reviewed.len(),
                self.audit_seq.unwrap_or_default()
            )
        } else {
            write!(
                f,
                "versions   {} claim(s) granted under other versions kept as decided ({versions})",
                self.kept
            )
        }
    }
}

/// Refuses (exit 2) to re-score claims reviewers decided under other thresholds or another
/// policy unless `rescore.decided`; else keeps the records of claims the scorer granted under
/// another version (a rule change does not take back credits already granted), or with
/// `rescore.decided` re-scores everything. Withheld claims follow the current version.
fn guard_earlier(
    lake: &Lake,
    cfg: &creditguard_score::ScoreConfig,
    report: &mut ScoreReport,
    rescore: &Rescore,
) -> anyhow::Result<Earlier> {
    let stored = creditguard_score::tables::read_credits(lake, report.from_day, report.to_day)?;
    let found = creditguard_score::decide::earlier_versions(&stored, &report.credits);
    let mut earlier = Earlier::default();
    if found.is_empty() {
        return Ok(earlier);
    }
    if rescore.decided {
        earlier.rescored = found.reviewed.len() + found.granted.len();
    } else if !found.reviewed.is_empty() {
        return Err(crate::jobs::UsageError(format!(
            "scoring {} .. {}: {} claim(s) of the period were decided by reviewers under other \
             thresholds or another credit policy ({}); this pipeline's are thresholds {}, policy {}. \
             Re-scoring would rewrite those decisions: score only later days, or pass \
             --rescore-decided to re-score them (recorded in the audit trail)",
            format_day(report.from_day),
            format_day(report.to_day),
            found.reviewed.len(),
            found.describe(),
            cfg.rules_version(),
            cfg.policy_version()
        ))
        .into());
    } else {
        earlier.kept =
            creditguard_score::decide::keep_earlier(&mut report.credits, &stored, &found.granted);
        tracing::info!(kept = earlier.kept, versions = %found.describe(), "Kept claims granted under other versions as decided.");
    }
    earlier.found = found;
    Ok(earlier)
}

/// The audit record of a re-score of decided claims.
fn audit_rescore(
    store: &crate::review::Store,
    cfg: &creditguard_score::ScoreConfig,
    report: &ScoreReport,
    rescore: &Rescore,
    earlier: &mut Earlier,
) -> anyhow::Result<()> {
    let found = &earlier.found;
    let versions: Vec<serde_json::Value> = found
        .versions
        .iter()
        .map(|((rules, policy), n)| serde_json::json!({"rules_version": rules, "policy_version": policy, "claims": n}))
        .collect();
    let detail = serde_json::json!({
        "from": format_day(report.from_day),
        "to": format_day(report.to_day),
        "rules_version": cfg.rules_version(),
        "policy_version": cfg.policy_version(),
        "recorded_under": versions,
        "claims_decided_by_reviewers": found.reviewed,
        "claims_granted": found.granted.len(),
    });
    earlier.audit_seq = Some(store.run(store.review.record_operation(
        &rescore.actor,
        "rescore_decided",
        detail,
        creditguard_review::now_us(),
    ))?);
    Ok(())
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
    rescore: &Rescore,
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
    // Before anything is written: a refusal leaves the lake and the review database as they were.
    let mut earlier = guard_earlier(lake, &cfg, &mut report, rescore)?;
    let store = crate::review::Store::open(pipeline)?;
    let review =
        crate::review::sync_report(&store, lake, &catalog, &cfg, review_settings, &mut report)
            .with_context(|| {
                format!("{}: the review database {}", period(), store.review.name())
            })?;
    if earlier.rescored > 0 {
        audit_rescore(&store, &cfg, &report, rescore, &mut earlier).with_context(period)?;
    }
    creditguard_score::write_results(lake, &report, cfg.write_stream).with_context(period)?;
    crate::review::write_rule_feedback(&store, lake, to).with_context(period)?;
    Ok(Some(Scored {
        report,
        review,
        earlier,
    }))
}

/// Runs `creditguard score`: the summary on stdout, or with `--emit ndjson` the records on
/// stdout and the summary on stderr.
pub fn execute(args: ScoreArgs) -> anyhow::Result<()> {
    let (pipeline, lake, from, to) = args.period.open()?;
    let run_id = args.period.run_id(&pipeline, "score", from, to);
    let rescore = Rescore {
        decided: args.rescore_decided,
        actor: args.actor.clone(),
    };
    let Scored {
        report,
        review,
        earlier,
    } = run_stage(&pipeline, &lake, Some(from), Some(to), &run_id, &rescore)?
        .expect("the lake has events");
    // Like `creditguard run`: a pipeline with `[kafka] results_topic` also gets the records
    // there, acknowledged before this command reports success.
    let mut summary = format!("{report}\n{review}");
    if !earlier.found.is_empty() {
        summary = format!("{summary}\n{earlier}");
    }
    if let Some(produced) = crate::results_topic::produce_results(&pipeline, &report)? {
        summary = format!(
            "{summary}\n{}",
            crate::results_topic::results_topic_line(&produced)
        );
    }
    if let Some(produced) = crate::review::publish_pending(&pipeline)? {
        summary = format!(
            "{summary}\n{} (decision records held back earlier)",
            crate::results_topic::results_topic_line(&produced)
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
