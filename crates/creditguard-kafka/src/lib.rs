//! Kafka ingest service, dead-letter topic and results topic.
