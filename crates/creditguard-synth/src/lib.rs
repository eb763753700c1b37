//! Synthetic learning telemetry with labelled cheating patterns.
