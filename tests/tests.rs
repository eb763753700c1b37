//! End-to-end tests of the `creditguard` binary, one module per area.

mod util;

mod build;
mod cli;
mod golden;
mod kafka;
mod privacy;
mod review;
mod s3;
mod shards;
