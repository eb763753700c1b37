//! creditguard: catches cheating in corporate training from learning-platform telemetry.
//!
//! This is the facade of the `creditguard` binary: pipeline files ([`config`]) and the stage
//! runner ([`run`]). The stages live in their own crates: `creditguard-contract` (telemetry and
//! results contracts), `creditguard-lake` (atomic Parquet lake), `creditguard-ingest` (NDJSON →
//! lake).

pub mod backtest;
pub mod cli;
pub mod config;
pub mod generate;
pub mod identify;
pub mod import;
pub mod jobs;
pub mod kafka_cmd;
pub mod policy;
pub mod report;
pub mod results_topic;
pub mod retention;
pub mod review;
pub mod rules;
pub mod run;
pub mod score;
pub mod serve;

pub use creditguard_alloc as alloc;
pub use creditguard_contract as contract;
pub use creditguard_ingest as ingest;
pub use creditguard_lake as lake;
