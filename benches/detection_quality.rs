//! Detection quality: generates populations with labelled cheating (`creditguard-synth`), runs
//! the whole file pipeline on each exactly as `creditguard run` does (ingest → jobs → score), and
//! compares the flags and credit decisions with the labels at the learner level.
//!
//! ```text
//! cargo bench --bench detection_quality
//! cargo bench --bench detection_quality -- --users 2000 --days 30 --seeds 11,23,47 \
//!     --strength blatant,subtle --cheat-share 0.02 --fault-rate 0.002 [--keep DIR]
//! ```
//!
//! Prints, per strength, one markdown table over all seeds (precision and recall per rule, the
//! share of honest learners flagged and of claims withheld), and checks them against the targets
//! of the detection and scoring issues: blatant and mixed populations precision ≥ 0.95 and
//! recall ≥ 0.90 per rule; honest learners flagged ≤ 0.5 %; honest claims withheld ≤ 0.5 %;
//! cheaters' tainted claims withheld, or refused by the policy's quiz rule, ≥ 95 %. The seeds
//! default to ones the detectors were not tuned on (the sample uses 7).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use creditguard::config::{Overrides, Pipeline};
use creditguard::run::{run, RunOptions};
use creditguard_contract::ResultRecord;
use creditguard_score::earning::QUIZ_NOT_PASSED;
use creditguard_synth::eval::{evaluate, Quality};
use creditguard_synth::{Config, Generator, Output, StrengthMix};

// As the `creditguard` binary does.
creditguard::alloc::use_jemalloc!();

struct Args {
    users: u32,
    days: u32,
    seeds: Vec<u64>,
    strengths: Vec<String>,
    cheat_share: f64,
    fault_rate: f64,
    keep: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        users: 2000,
        days: 30,
        seeds: vec![11, 23, 47],
        strengths: vec!["blatant".into(), "subtle".into()],
        cheat_share: 0.02,
        fault_rate: 0.002,
        keep: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // passed by `cargo bench`
        }
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--users" => a.users = value()?.parse().context("--users")?,
            "--days" => a.days = value()?.parse().context("--days")?,
            "--seeds" => {
                a.seeds = value()?
                    .split(',')
                    .map(|s| s.trim().parse().with_context(|| format!("--seeds: `{s}`")))
                    .collect::<anyhow::Result<_>>()?
            }
            "--strength" => a.strengths = value()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--cheat-share" => a.cheat_share = value()?.parse().context("--cheat-share")?,
            "--fault-rate" => a.fault_rate = value()?.parse().context("--fault-rate")?,
            "--keep" => a.keep = Some(value()?.into()),
            other => bail!(
                "unknown argument `{other}` (expected --users, --days, --seeds, --strength, --cheat-share, --fault-rate, --keep)"
            ),
        }
    }
    for s in &a.strengths {
        if StrengthMix::parse(s).is_none() {
            bail!("--strength `{s}`: expected blatant, subtle or mixed");
        }
    }
    Ok(a)
}

/// One population: generate, run the pipeline, evaluate.
fn one(args: &Args, strength: &str, seed: u64, dir: &Path) -> anyhow::Result<Quality> {
    std::fs::create_dir_all(dir)?;
    let cfg = Config {
        users: args.users,
        days: args.days,
        seed,
        strength: StrengthMix::parse(strength).expect("checked"),
        fault_rate: args.fault_rate,
        ..Config::default()
    }
    .with_share_each(args.cheat_share)
    // The cheats that fake the client too, on a platform that shows attention checks and
    // counts input, so the rules that need them are measured.
    .with_client_fakes(args.cheat_share);
    let started = Instant::now();
    let generator = Generator::new(cfg)?;
    let telemetry = dir.join("telemetry.ndjson");
    let mut out = Output::create(&telemetry, 1)?;
    let labels = generator.write(&mut out)?;
    out.finish()?;
    let catalog = dir.join("catalog.csv");
    generator
        .catalog()
        .write_csv(std::io::BufWriter::new(std::fs::File::create(&catalog)?))?;
    labels.write(dir.join("labels.json"))?;
    let shared_devices = dir.join("shared-devices.txt");
    std::fs::write(&shared_devices, generator.shared_devices().join("\n"))?;
    // The population's roster, scored against the shipped credit policy.
    let (roster, leave) = (dir.join("roster.csv"), dir.join("leave.csv"));
    let create = |p: &std::path::Path| std::fs::File::create(p).map(std::io::BufWriter::new);
    generator
        .roster()
        .write_csv(create(&roster)?, create(&leave)?)?;
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/credits.toml");
    let generated = started.elapsed();

    let file = dir.join("pipeline.toml");
    let text = format!(
        "[pipeline]\nname = \"quality\"\nstages = [\"ingest\", \"jobs\", \"score\"]\n\
         [source]\nkind = \"ndjson\"\npath = {:?}\n[lake]\nroot = {:?}\n[privacy]\npseudonymise = \"off\"\n[catalog]\npath = {:?}\n\
         [jobs.proxy_learning]\nshared_devices_file = {:?}\n\
         [roster]\npath = {:?}\nleave = {:?}\n[policy]\npath = {:?}\n",
        telemetry.display().to_string(),
        dir.join("lake").display().to_string(),
        catalog.display().to_string(),
        shared_devices.display().to_string(),
        roster.display().to_string(),
        leave.display().to_string(),
        policy.display().to_string(),
    );
    std::fs::write(&file, &text)?;
    let pipeline = Pipeline::parse(&file, &text, &Overrides::default())?;
    let summary = run(&pipeline, &RunOptions::default())?;
    let report = summary
        .score
        .context("the score stage produced no report")?;
    let records = report.records();
    // The policy's earning rules must not refuse an honest learner's completion.
    let honest: std::collections::HashSet<&str> = labels
        .learners
        .iter()
        .filter(|l| l.honest)
        .map(|l| l.user_id.as_str())
        .collect();
    let refused = report
        .issues
        .iter()
        .filter(|i| i.issue == QUIZ_NOT_PASSED && honest.contains(i.user_id.as_str()))
        .count();
    let statuses = report.totals().progress;
    let flags = records.iter().filter_map(|r| match r {
        ResultRecord::Flag(f) => Some((f.user_id.as_str(), f.rule.as_str())),
        _ => None,
    });
    // A completion the quiz rule refused earns nothing: `refused`, not `granted`.
    let quiz_refused: std::collections::HashSet<&str> = report
        .issues
        .iter()
        .filter(|i| i.issue == QUIZ_NOT_PASSED)
        .map(|i| i.credit_id.as_str())
        .collect();
    let credits = records.iter().filter_map(|r| match r {
        ResultRecord::Credit(c) => {
            let status = if quiz_refused.contains(c.credit_id.as_str()) && c.status == "granted" {
                "refused"
            } else {
                c.status.as_str()
            };
            Some((c.user_id.as_str(), c.course_id.as_str(), status))
        }
        _ => None,
    });
    let q = evaluate(&labels, flags, credits);
    let any = &q.overall;
    println!(
        "{strength:>7} seed {seed:>4}: {} lines, {} learners ({} labelled); generated in {:.1} s, pipeline {:.1} s; \
         any rule precision {:.3} recall {:.3}; honest flagged {}/{}; honest completions refused by the quiz rule {refused}; progress {statuses:?}",
        labels.summary.lines,
        labels.learners.len(),
        labels.summary.cheaters,
        generated.as_secs_f64(),
        summary.elapsed.as_secs_f64(),
        any.precision().unwrap_or(f64::NAN),
        any.recall().unwrap_or(f64::NAN),
        q.honest_flagged,
        q.honest_learners,
    );
    Ok(q)
}

fn check(label: &str, value: Option<f64>, ok: impl Fn(f64) -> bool, target: &str) -> bool {
    match value {
        Some(v) if ok(v) => {
            println!("  ok    {label}: {v:.3} ({target})");
            true
        }
        Some(v) => {
            println!("  MISS  {label}: {v:.3} ({target})");
            false
        }
        None => {
            println!("  –     {label}: nothing to measure");
            true
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let tmp = tempfile::tempdir()?;
    let root = args
        .keep
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "detection quality: {} users × {} days per population, cheat share {} per pattern, fault rate {}, seeds {:?}",
        args.users, args.days, args.cheat_share, args.fault_rate, args.seeds
    );
    let mut misses = 0;
    for strength in &args.strengths {
        let mut total = Quality::default();
        for &seed in &args.seeds {
            let dir = root.join(format!("{strength}-{seed}"));
            let q = one(&args, strength, seed, &dir)?;
            total.merge(&q);
            // A population is ≈ 2 GB of NDJSON and lake: keep only what --keep asks for.
            if args.keep.is_none() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        println!(
            "\n### {strength} cheating, seeds {:?} ({} users × {} days each)\n",
            args.seeds, args.users, args.days
        );
        println!("{total}");
        println!("targets:");
        // Per rule for blatant and mixed populations (subtle cases alone are the hardest and
        // are reported, not held to the target).
        if strength == "blatant" || strength == "mixed" {
            for r in total.rules.iter().filter(|r| r.labelled > 0) {
                misses += usize::from(!check(
                    &format!("{} precision", r.rule),
                    r.precision(),
                    |v| v >= 0.95,
                    "≥ 0.95",
                ));
                misses += usize::from(!check(
                    &format!("{} recall", r.rule),
                    r.recall(),
                    |v| v >= 0.90,
                    "≥ 0.90",
                ));
            }
            misses += usize::from(!check(
                "cheaters' tainted claims withheld or refused",
                total.tainted_claims_stopped_share(),
                |v| v >= 0.95,
                "≥ 0.95",
            ));
        }
        misses += usize::from(!check(
            "honest learners flagged",
            total.honest_flagged_share(),
            |v| v <= 0.005,
            "≤ 0.005",
        ));
        misses += usize::from(!check(
            "honest claims withheld",
            total.honest_claims_withheld_share(),
            |v| v <= 0.005,
            "≤ 0.005",
        ));
    }
    println!("\n{misses} target(s) missed");
    Ok(())
}
