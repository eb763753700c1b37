//! `creditguard retain` (delete day partitions past `[retention]`) and `creditguard erase` (a
//! learner's erasure from every lake table and the review database). Both change the lake one
//! partition at a time, atomically, print what they removed and write an audit record to the
//! review database's audit trail.
//!
//! Run them while nothing else writes the days they touch (no ingest service, job or score run
//! on those days): a partition rewritten by `erase` replaces what was in it when it was read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use creditguard_contract::time::format_day;
use creditguard_lake::scrub::{Scrub, Scrubbed};
use creditguard_lake::Lake;
use serde_json::json;

use crate::cli::{EraseArgs, RetainArgs};
use crate::config::{Overrides, Pipeline, RetentionSection};
use crate::review::Store;

/// How many days a table keeps (`0`: for good), by its name.
pub fn keep_days(r: &RetentionSection, table: &str) -> (u32, &'static str) {
    if table == "events" {
        (r.events_days, "events_days")
    } else if table == "dead_letters" {
        (r.dead_letters_days, "dead_letters_days")
    } else if table.starts_with("features/") {
        (r.features_days, "features_days")
    } else if table.starts_with("results/") {
        (r.results_days, "results_days")
    } else {
        (0, "")
    }
}

/// One partition past its age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub table: String,
    pub day: i64,
    pub age_days: i64,
    pub setting: &'static str,
    pub keep: u32,
}

/// The partitions past their retention on `today`: a day partition is kept while it is at
/// most `keep` days old.
pub fn expired(lake: &Lake, r: &RetentionSection, today: i64) -> anyhow::Result<Vec<Expired>> {
    let mut out = Vec::new();
    for table in lake.tables()? {
        let (keep, setting) = keep_days(r, &table);
        if keep == 0 {
            continue;
        }
        for day in lake.days(&table)? {
            let age_days = today - day;
            if age_days > i64::from(keep) {
                out.push(Expired {
                    table: table.clone(),
                    day,
                    age_days,
                    setting,
                    keep,
                });
            }
        }
    }
    Ok(out)
}

fn open(pipeline: &PathBuf, lake: &Option<String>) -> anyhow::Result<(Pipeline, Lake)> {
    let overrides = Overrides {
        lake: lake.clone(),
        ..Overrides::default()
    };
    let pipeline = Pipeline::load(pipeline, &overrides)?;
    let lake = Lake::open(&pipeline.lake)
        .with_context(|| format!("opening the lake at {}", pipeline.lake))?;
    Ok((pipeline, lake))
}

/// Runs `creditguard retain`; returns what it printed.
pub fn retain(args: &RetainArgs) -> anyhow::Result<String> {
    let (pipeline, lake) = open(&args.pipeline, &args.lake)?;
    let today = args
        .today
        .unwrap_or_else(|| creditguard_contract::time::day_of_us(creditguard_review::now_us()));
    let expired = expired(&lake, &pipeline.retention, today)?;
    let mut out = String::new();
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut removed = Vec::new();
    let mut bytes_total = 0u64;
    for e in &expired {
        let bytes = if args.dry_run {
            lake.partition_files(&e.table, e.day)?
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum()
        } else {
            let Some(b) = lake.remove_partition(&e.table, e.day)? else {
                continue;
            };
            b
        };
        bytes_total += bytes;
        tracing::info!(table = %e.table, day = %format_day(e.day), bytes, dry_run = args.dry_run, "Retention: partition past its age.");
        let _ = writeln!(
            out,
            "{verb} {}/dt={} ({:.1} kB, {} days old; retention.{} = {})",
            e.table,
            format_day(e.day),
            bytes as f64 / 1e3,
            e.age_days,
            e.setting,
            e.keep
        );
        removed.push(json!({"table": e.table, "day": format_day(e.day), "bytes": bytes}));
    }
    let _ = writeln!(
        out,
        "retain {} on {}: {} partition(s), {:.1} kB {verb}",
        pipeline.lake,
        format_day(today),
        removed.len(),
        bytes_total as f64 / 1e3
    );
    if !args.dry_run {
        let store = Store::open(&pipeline)?;
        let r = &pipeline.retention;
        let seq = store.run(store.review.record_operation(
            &args.actor,
            "retention",
            json!({
                "lake": pipeline.lake, "today": format_day(today), "removed": removed,
                "settings": {"events_days": r.events_days, "dead_letters_days": r.dead_letters_days,
                             "features_days": r.features_days, "results_days": r.results_days},
            }),
            creditguard_review::now_us(),
        ))?;
        let _ = writeln!(
            out,
            "audit record {seq} (retention) in {}",
            store.review.name()
        );
    }
    Ok(out)
}

/// What an erasure removed.
#[derive(Debug, Clone, Default)]
pub struct Erasure {
    /// The learner's id in the lake.
    pub lake_id: String,
    /// Per table: what was removed.
    pub tables: BTreeMap<String, Scrubbed>,
    pub review: creditguard_review::Erased,
    pub audit_seq: i64,
}

/// Runs `creditguard erase`.
pub fn erase(args: &EraseArgs) -> anyhow::Result<Erasure> {
    let (pipeline, lake) = open(&args.pipeline, &args.lake)?;
    let lake_id = if args.pseudonym {
        args.user.clone()
    } else {
        match pipeline.pseudonymiser()? {
            Some(p) => p.user(&args.user),
            None => args.user.clone(),
        }
    };
    anyhow::ensure!(!args.user.trim().is_empty(), "erase: the user id is empty");
    let scrub = Scrub {
        ids: vec![lake_id.clone()],
        raw_ids: vec![lake_id.clone(), args.user.clone()],
    };
    let mut erasure = Erasure {
        lake_id: lake_id.clone(),
        ..Erasure::default()
    };
    for table in lake.tables()? {
        let mut t = Scrubbed::default();
        for day in lake.days(&table)? {
            let s = lake.scrub_partition(&table, day, &scrub)?;
            t.rows += s.rows;
            t.values += s.values;
            t.files += s.files;
        }
        if t.files > 0 {
            tracing::info!(table = %table, rows = t.rows, values = t.values, files = t.files, "Erasure: table rewritten.");
            erasure.tables.insert(table, t);
        }
    }
    let store = Store::open(&pipeline)?;
    let now = creditguard_review::now_us();
    erasure.review = store.run(store.review.erase_learner(&lake_id, &args.actor, now))?;
    let tables: serde_json::Map<String, serde_json::Value> = erasure
        .tables
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                json!({"rows": s.rows, "values": s.values, "files": s.files}),
            )
        })
        .collect();
    erasure.audit_seq = store.run(store.review.record_operation(
        &args.actor,
        "lake_erasure",
        json!({"user_sha256": creditguard_review::sha256_hex(&lake_id), "lake": pipeline.lake, "tables": tables}),
        now,
    ))?;
    Ok(erasure)
}

/// The summary `creditguard erase` prints.
pub fn render_erasure(e: &Erasure) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "erased learner {} from the lake:", e.lake_id);
    if e.tables.is_empty() {
        let _ = writeln!(out, "  no table mentions them");
    }
    for (t, s) in &e.tables {
        let _ = writeln!(
            out,
            "  {t:<28} {:>7} row(s) removed, {:>5} mention(s) replaced, {:>4} file(s) rewritten",
            s.rows, s.values, s.files
        );
    }
    let r = &e.review;
    let _ = writeln!(
        out,
        "review database: {} case(s), {} flag(s), {} claim(s), {} decision(s), {} outbox record(s) removed; audit record {}",
        r.cases, r.flags, r.claims, r.decisions, r.outbox, e.audit_seq
    );
    out
}
