//! `creditguard policy explain USER --pipeline P`: which credit rule applies to a learner, why,
//! and what it asks of them this year.

use std::fmt::Write as _;

use anyhow::Context as _;
use creditguard_contract::time::{civil_from_days, format_day, parse_day};
use creditguard_score::policy::{self, Person, Policy, Roster};

use crate::cli::{PolicyArgs, PolicyCommand};
use crate::config::{Overrides, Pipeline};

/// Runs `creditguard policy …`.
pub fn execute(args: PolicyArgs) -> anyhow::Result<()> {
    match args.command {
        PolicyCommand::Explain {
            user,
            pipeline,
            as_of,
        } => {
            let p = Pipeline::load(&pipeline, &Overrides::default())?;
            let cfg = p.score_config().map_err(|e| anyhow::anyhow!(e))?;
            let fallback = Policy::global(cfg.target_credits, cfg.mandatory_credits);
            let policy = cfg.expectations.policy.as_ref().unwrap_or(&fallback);
            let roster = cfg.expectations.roster.clone().unwrap_or_default();
            // The roster is keyed by the lake's pseudonyms when pseudonymisation is on.
            let stored = match p.privacy.resolve(false).map_err(|e| anyhow::anyhow!(e))? {
                Some(pseudonymiser) => pseudonymiser.user(&user),
                None => user.clone(),
            };
            let today = parse_day(
                &creditguard_contract::time::format_rfc3339_us(creditguard_review::now_us())[..10],
            )
            .ok()
            .context("reading the clock")?;
            print!(
                "{}",
                explain(
                    policy,
                    &fallback,
                    &roster,
                    &user,
                    &stored,
                    as_of.unwrap_or(today)
                )
            );
            Ok(())
        }
    }
}

/// The explanation `policy explain` prints.
pub fn explain(
    policy: &Policy,
    fallback: &Policy,
    roster: &Roster,
    user: &str,
    stored: &str,
    as_of: i64,
) -> String {
    let mut out = String::new();
    let person = roster.get(stored);
    let _ = writeln!(
        out,
        "policy `{}` (version {}), credit year in {}",
        policy.name, policy.version, policy.time_zone
    );
    let anonymous;
    let who: &Person = match person {
        Some(p) => {
            let _ = writeln!(
                out,
                "{user}: org {}, role {}, level {}{}{}",
                p.org_path,
                p.role.as_deref().unwrap_or("—"),
                p.level.as_deref().unwrap_or("—"),
                p.hired_on
                    .map(|d| format!(", hired {}", format_day(d)))
                    .unwrap_or_default(),
                p.left_on
                    .map(|d| format!(", leaves {}", format_day(d)))
                    .unwrap_or_default(),
            );
            for (a, b, kind) in &p.absences {
                let _ = writeln!(out, "  {kind} {} – {}", format_day(*a), format_day(*b));
            }
            p
        }
        None => {
            let _ = writeln!(
                out,
                "{user}: not in the roster{}: matched by the org unit of their telemetry only",
                if roster.people.is_empty() {
                    " (the pipeline names no roster)"
                } else {
                    ""
                }
            );
            anonymous = Person {
                user_id: user.to_string(),
                org_path: String::new(),
                role: None,
                level: None,
                hired_on: None,
                left_on: None,
                absences: Vec::new(),
            };
            &anonymous
        }
    };
    let _ = writeln!(out, "rules, most specific first:");
    for (rule, matches) in policy.explain(who) {
        let _ = writeln!(
            out,
            "  {} {:<24} org {:<20} role {:<10} level {:<6} target {}",
            if matches { "✓" } else { "✗" },
            rule.name,
            rule.org.as_deref().unwrap_or("(all)"),
            rule.role.as_deref().unwrap_or("(any)"),
            rule.level.as_deref().unwrap_or("(any)"),
            rule.target_credits
        );
    }
    let (used, rule) =
        match policy.rule_for(&who.org_path, who.role.as_deref(), who.level.as_deref()) {
            Some(r) => (policy, r),
            None => {
                let _ = writeln!(
                    out,
                    "no rule matches: the `[score]` defaults apply ({} credits, {} mandatory)",
                    fallback.rules[0].target_credits,
                    fallback.rules[0]
                        .minimum
                        .get("mandatory")
                        .map_or(0.0, |m| m.credits(fallback.rules[0].target_credits))
                );
                (fallback, &fallback.rules[0])
            }
        };
    let (year, _, _) = civil_from_days(as_of);
    let t = policy::target(rule, person, year, as_of);
    let _ = writeln!(
        out,
        "applies: `{}/{}`: {:.1} credits in {year} ({:.0}% of the year expected{}), {:.1} expected by {}",
        used.name,
        rule.name,
        t.credits,
        t.share_of_year * 100.0,
        if rule.prorate { ", prorated" } else { "" },
        t.credits * t.elapsed,
        format_day(as_of)
    );
    for (cat, min) in &t.minimum {
        let _ = writeln!(out, "  at least {min:.1} {cat}");
    }
    for (topic, min) in &t.topics {
        let _ = writeln!(out, "  at least {min:.1} in {topic} courses (topic)");
    }
    if let Some(hours) = rule.monthly_hours {
        let _ = writeln!(
            out,
            "  at least {hours:.1} engaged hours a month (prorated like the target; `monthly_hours_low` reminders)"
        );
    }
    out
}
