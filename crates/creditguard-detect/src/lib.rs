//! Detection jobs in polars: one module per detector.
//!
//! Each detector is a function over polars frames (the events of a period, the course catalog,
//! its settings) that returns a features table and the [`Flag`]s it raises. [`run_jobs`] runs the
//! enabled detectors day batch by day batch over the lake and writes, per day,
//! `features/<job>/dt=D/part-0.parquet` and `results/flags/dt=D/part-0.parquet` (the flags of every
//! job of that day, in the results-v1 columns) with [`Lake::replace_partition`], so a re-run
//! replaces a day's output instead of adding to it. [`run_shard`] and [`merge_shards`] split the
//! same work over processes by user and give the same rows ([`shard`]).
//!
//! | job | rules | unit of a flag |
//! |---|---|---|
//! | [`watch_time`] | `background_playback`, `speed`, `low_coverage` | user × course × day; one completion |
//! | [`multi_login`] | `concurrent_sessions`, `impossible_travel` | pair of sessions; user × day |
//! | [`course_switching`] | `rapid_switching`, `parallel_playback` | burst of switches; user × course pair × day |
//! | [`credit_burst`] | `poisson_tail` | user × day |
//! | [`quiz_speed`] | `too_fast` | one quiz submission |
//! | [`shared_device`] | `many_accounts` | account × device × day |
//! | [`automation`] | `unbroken_play`, `timer_cadence`, `no_input`, `missed_checks`, `machine_responses` | stretch of play; session |
//! | [`proxy_learning`] | `borrowed_device`, `alternating_accounts` | account × device × day; account × device |
//!
//! Each detector measures (frames of features), then applies its rules to the measured rows; the
//! rules are declared in [`rules`] and worded for reviewers in one catalog (`explain`).
//!
//! Time is event time (`ts`), in UTC microseconds. A job for days `D1..=D2` reads the events of
//! `D1-1..=D2+1` so that intervals and sessions crossing midnight are whole, and keeps the feature
//! rows of `D1..=D2` and the flags whose `window_start` falls in `D1..=D2`. Two detectors look
//! further back: `credit_burst` (the trailing baseline, from the events' `course_complete` rows;
//! the engaged time of its support window, from the `watch_time` features of those days, or from
//! their events when they have none) and `watch_time.low_coverage` (what was watched on earlier
//! days, from the `watch_time` features of those days: run a backfill in day order).
//!
//! ```no_run
//! use creditguard_detect::{run_jobs, Catalog, JobsConfig};
//! let lake = creditguard_lake::Lake::open("./lake").unwrap();
//! let catalog = Catalog::load("sample-data/catalog.csv".as_ref()).unwrap();
//! let day: creditguard_contract::time::Day = "2026-03-02".parse().unwrap();
//! let days = creditguard_contract::time::DayRange::day(day);
//! let report = run_jobs(&lake, &catalog, &JobsConfig::default(), days, "run-1").unwrap();
//! println!("{report}");
//! ```

pub mod automation;
pub mod catalog;
pub mod config;
pub mod course_switching;
pub mod credit_burst;
pub mod events;
mod explain;
mod flags;
pub mod multi_login;
pub mod proxy_learning;
pub mod quiz_speed;
pub mod rules;
mod run;
pub mod shard;
pub mod shared_device;
pub mod watch_time;

#[cfg(test)]
mod testkit;

pub use catalog::{Catalog, Course};
pub use config::JobsConfig;
pub use creditguard_contract::Flag;
pub use creditguard_lake::flags::flags_batch;
pub use events::{load_events, scan_events, DAY_US};
pub use flags::flags_frame;
pub use run::{
    days_changed_since, merge_shards, read_flags, run_jobs, run_shard, write_markers, JobReport,
    JobsReport, MARKERS,
};
pub use shard::Shard;

/// What a detector hands back: its features table and its flags (with an empty `run_id`, which
/// [`run_jobs`] fills in).
#[derive(Debug, Clone)]
pub struct JobOutput {
    /// One row per unit the job measures; a `day` column (days since 1970-01-01) says which
    /// partition of `features/<job>/` the row belongs to.
    pub features: polars::prelude::DataFrame,
    /// The flags raised, sorted by (rule, user, window start, flag id).
    pub flags: Vec<Flag>,
}

/// Errors of the detection jobs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Polars(#[from] polars::error::PolarsError),
    #[error(transparent)]
    Lake(#[from] creditguard_lake::Error),
    #[error("catalog {path}: {message}")]
    Catalog { path: String, message: String },
    #[error("jobs settings: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}: {message}")]
    Write { path: String, message: String },
}

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
