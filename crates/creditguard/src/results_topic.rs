//! The results topic: the score report's records produced to `[kafka] results_topic`, and the
//! summary line of a delivery. Used by `run`, `score` and `review`.

use anyhow::Context as _;
use creditguard_kafka::ProduceReport;

use crate::config::Pipeline;

/// The summary line of a results-topic delivery.
pub fn results_topic_line(r: &ProduceReport) -> String {
    format!(
        "results topic  {} records ({:.1} kB) → Kafka topic `{}` ({} partitions written), all acknowledged, {:.2} s",
        r.records,
        r.bytes as f64 / 1e3,
        r.topic,
        r.partitions.len(),
        r.elapsed.as_secs_f64()
    )
}

/// The results-topic sink: when the pipeline's `[kafka]` section names a `results_topic`,
/// produces the score report's records (the same records as the results stream: flags, credits,
/// cases; with `[results] identify = true` each with its `employee_id`) there, key = `user_id`,
/// header `schema_version: 1`, with an idempotent `acks=all`
/// producer, and returns only once the broker acknowledged every one of them. `None` when the
/// pipeline has no results topic. An error names the topic; the run then fails (exit 1).
pub fn produce_results(
    pipeline: &Pipeline,
    report: &creditguard_score::ScoreReport,
) -> anyhow::Result<Option<ProduceReport>> {
    let section = &pipeline.kafka;
    let Some(topic) = section.results_topic.clone() else {
        return Ok(None);
    };
    let identities = pipeline.stream_identities()?;
    let (records, _) = crate::identify::stream_records(report.records(), identities.as_ref());
    let n = records.len() as u64;
    let client = section.client();
    let _span = tracing::info_span!("results_topic", topic = %topic).entered();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the Kafka producer")?;
    let delivered = rt
        .block_on(creditguard_kafka::produce_results(&client, &topic, records))
        .with_context(|| {
            format!(
                "producing {n} result records to Kafka topic `{topic}` at {} (the run did not complete; a re-run sends the same record ids)",
                client.brokers()
            )
        })?;
    anyhow::ensure!(
        delivered.records == n,
        "Kafka topic `{topic}`: {} of {n} result records acknowledged",
        delivered.records
    );
    Ok(Some(delivered))
}
