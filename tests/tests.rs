//! End-to-end tests of the `creditguard` binary, one module per area.

mod util;

mod build;
mod cli;
mod kafka;
mod privacy;
mod review;
mod shards;
