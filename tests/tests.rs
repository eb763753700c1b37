//! End-to-end tests of the `creditguard` binary, one module per area.

mod util;

mod build;
mod cli;
mod kafka;
mod golden;
mod privacy;
mod review;
mod s3;
mod shards;
