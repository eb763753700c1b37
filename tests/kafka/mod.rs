//! The Kafka path against a real broker (tansu): ingest end to end, dead letters, crashes at
//! random and named points, rebalances, the results topic.

pub mod harness;

mod crash;
mod decisions;
mod e2e;
mod ingest;
mod rebalance;
mod results;
