//! `creditguard report --lake DIR [--from D --to D] [--html out.html]`: the result tables of a
//! period for people (`creditguard_score::report`).

use crate::cli::ReportArgs;
use anyhow::Context as _;
use creditguard_lake::Lake;
use creditguard_score::tables;

/// Runs `creditguard report`.
pub fn execute(args: ReportArgs) -> anyhow::Result<()> {
    if !creditguard_lake::is_object_store(&args.lake)
        && !std::path::Path::new(args.lake.trim_start_matches("file://")).is_dir()
    {
        anyhow::bail!("no lake at {}", args.lake);
    }
    let lake =
        Lake::open(&args.lake).with_context(|| format!("opening the lake at {}", args.lake))?;
    let mut days = lake.days(tables::CREDITS)?;
    days.extend(lake.days(tables::CASES)?);
    let (Some(first), Some(last)) = (days.iter().min().copied(), days.iter().max().copied()) else {
        anyhow::bail!(
            "the lake at {} has no result tables yet: run the `score` stage first",
            args.lake
        );
    };
    let (from, to) = (args.from.unwrap_or(first), args.to.unwrap_or(last));
    if from > to {
        anyhow::bail!("--from is after --to");
    }
    let data = creditguard_score::report::load(&lake, from, to, args.timelines)
        .context("reading the result tables")?;
    print!(
        "{}",
        creditguard_score::report::render_text(&data, args.top)
    );
    // Reviewers' verdicts per rule, as of the last scored day up to `to`.
    if let Some(day) = lake
        .days(tables::RULE_FEEDBACK)?
        .into_iter()
        .filter(|d| *d <= to)
        .max()
    {
        let rows = tables::read_rule_feedback(&lake, day).context("reading rule feedback")?;
        if !rows.is_empty() {
            println!(
                "\nrule feedback as of {} (flags in decided and pending cases)",
                creditguard_contract::time::format_day(day)
            );
            print!("{}", crate::review::render_feedback(&rows));
        }
    }
    if let Some(path) = &args.html {
        let html = creditguard_score::report::render_html(&data);
        std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))?;
        println!("\nHTML report: {}", path.display());
    }
    Ok(())
}
