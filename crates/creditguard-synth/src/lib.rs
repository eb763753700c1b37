//! Synthetic learning-platform telemetry with labelled cheating, for developing, testing and
//! measuring creditguard's detectors.
//!
//! [`Generator`] simulates a population of learners over a period: honest study that is varied
//! on purpose (one or two devices used one after the other, heartbeats every 15–30 s, pauses,
//! short tab switches, re-watching, 1.25–2× speed, quizzes at a reading pace, more study as the
//! deadline nears, several time zones, night owls, whole offices behind one IP), plus, on
//! labelled learners, one cheating [`Pattern`] each, blatant or subtle. It writes contract-valid
//! telemetry-v1 NDJSON in arrival order, with delivery faults (duplicates, out-of-order and late
//! events, client clock skew, unknown extra fields and deliberately invalid lines), the course
//! [`Catalog`] and the ground truth ([`Labels`]). The same [`Config`] gives byte-identical output.
//!
//! [`Generator::roster`] gives the population's employee roster and leave periods, for credit
//! policies. [`eval`] scores a detector run against the labels at the learner level.
//!
//! ```
//! use creditguard_synth::{Config, Generator};
//! let cfg = Config { users: 20, days: 6, ..Config::default() };
//! let gen = Generator::new(cfg).unwrap();
//! let mut ndjson = Vec::new();
//! let labels = gen.write(&mut ndjson).unwrap();
//! assert_eq!(labels.learners.len(), 20);
//! let lines = ndjson.split(|&b| b == b'\n').filter(|l| !l.is_empty());
//! let valid = lines.filter(|l| creditguard_contract::parse_event(l).is_ok()).count() as u64;
//! assert_eq!(valid, labels.summary.lines - labels.summary.invalid_lines);
//! ```
//!
//! # What honest learners never do (by construction)
//!
//! Sessions of one learner never overlap (different devices are ≥ 30 minutes apart, more than
//! twice the worst injected clock skew); position never advances faster than 2.0× wall clock
//! and only jumps backwards (re-watching); no page is hidden more than 45 s at a time or more
//! than a quarter of a lesson; at most two courses per session; quizzes take ≥ 4 s per question;
//! at most 6 credits in any 24 hours (except one catch-up day with `lookalikes`, every course
//! of it watched in full); location is the city's and changes only on trips slower
//! than 500 km/h; a device sees at most two accounts a day (pairs sharing a training-room PC, and
//! with `lookalikes` households handing a family tablet back and forth in the evening).

mod catalog;
mod config;
mod emit;
pub mod eval;
mod format;
mod labels;
mod output;
mod plan;
mod roster;
mod sim;

use std::io::Write;

pub use catalog::{Catalog, Course};
pub use config::{Config, Pattern, Strength, StrengthMix};
pub use labels::{Label, Labels, LearnerLabel, Summary};
pub use output::{read_ndjson, Output};
pub use roster::{Absence, Employee, Roster};

/// What can go wrong generating or reading generator files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid generator settings: {0}")]
    Config(String),
    #[error("writing the telemetry: {0}")]
    Write(#[from] std::io::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a labels file: {source}")]
    Labels {
        path: String,
        source: serde_json::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A planned population, ready to write its telemetry.
pub struct Generator {
    plan: plan::Plan,
}

impl Generator {
    /// Validates the settings and plans the population (cheap: no events yet).
    pub fn new(cfg: Config) -> Result<Generator> {
        cfg.validate()?;
        Ok(Generator {
            plan: plan::Plan::new(cfg),
        })
    }

    pub fn config(&self) -> &Config {
        &self.plan.cfg
    }

    /// The course catalog the telemetry refers to.
    pub fn catalog(&self) -> &Catalog {
        &self.plan.catalog
    }

    /// The employee roster of the population ([`Roster`]): consistent with the telemetry, plus a
    /// few employees without any activity.
    pub fn roster(&self) -> Roster {
        Roster::generate(&self.plan)
    }

    /// The `device_id`s of the training-room PCs honest pairs share: the platform's inventory
    /// of known shared devices, for `[jobs.proxy_learning] shared_devices_file`.
    pub fn shared_devices(&self) -> Vec<String> {
        let mut pairs: Vec<u32> = self.plan.users.iter().filter_map(|u| u.shared_pc).collect();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
            .into_iter()
            .map(|pair| {
                let device = plan::mix(
                    self.plan.cfg.seed,
                    plan::Stream::Device,
                    0xFFFF_0000 | u64::from(pair),
                );
                // As the emitter writes it: `d-` and the low 48 bits in hex.
                format!("d-{:012x}", device & 0xFFFF_FFFF_FFFF)
            })
            .collect()
    }

    /// Writes the telemetry as NDJSON in arrival (`received_at`) order and returns the labels.
    ///
    /// Memory is bounded by about one day of events: all learners are simulated a day at a time
    /// and the lines that can no longer be preceded by anything are written out.
    pub fn write<W: Write>(&self, mut out: W) -> Result<Labels> {
        let cfg = &self.plan.cfg;
        let mut sims: Vec<sim::UserSim<'_>> = self
            .plan
            .users
            .iter()
            .map(|u| sim::UserSim::new(&self.plan, u))
            .collect();
        let mut chunk = emit::Chunk::default();
        for d in 0..cfg.days {
            for s in &mut sims {
                s.simulate_day(&mut chunk, d);
            }
            // Day d+1 starts, in the earliest time zone (UTC+14), at this instant; nothing
            // simulated later can arrive before it.
            let safe = (cfg.start_day + i64::from(d) + 1) * sim::DAY - 14 * sim::HOUR;
            chunk.flush(&mut out, safe)?;
        }
        chunk.flush(&mut out, i64::MAX)?;
        out.flush()?;
        let mut summary = Summary::default();
        let mut learners = Vec::with_capacity(sims.len());
        for s in sims {
            let (label, stats) = s.finish();
            summary.lines += stats.lines;
            summary.events += stats.events;
            summary.duplicates += stats.duplicates;
            summary.out_of_order += stats.out_of_order;
            summary.late += stats.late;
            summary.skewed_sessions += stats.skewed_sessions;
            summary.extra_fields += stats.extra_fields;
            summary.invalid_lines += stats.invalid_lines;
            for (k, v) in stats.invalid_by_kind {
                *summary.invalid_by_kind.entry(k).or_default() += v;
            }
            summary.course_completions += stats.course_completions;
            if !label.honest {
                summary.cheaters += 1;
            }
            learners.push(label);
        }
        Ok(Labels {
            config: cfg.clone(),
            summary,
            learners,
        })
    }
}
