//! End-to-end tests of the `creditguard` binary, one module per area.

mod util;

mod cli;
mod kafka;
