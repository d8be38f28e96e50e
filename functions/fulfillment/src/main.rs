//! `fulfillment`: the SQS consumer. Returns `batchItemFailures` so only failed jobs are retried
//! (the event source mapping has `ReportBatchItemFailures`). All logic is in
//! `switchboard::fulfillment`.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let process_started = std::time::Instant::now();
    switchboard::telemetry::init();
    let fulfillment = Arc::new(switchboard::setup::fulfillment().await?);
    tracing::info!(
        init_ms = process_started.elapsed().as_millis() as u64,
        "fulfillment function ready"
    );
    switchboard::metrics::cold_start("fulfillment", process_started);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let fulfillment = fulfillment.clone();
        // Each job's lease ends with the invocation (plus a margin), see switchboard::fulfillment.
        let deadline_ms = i64::try_from(event.context.deadline).ok();
        async move {
            Ok::<SqsBatchResponse, Error>(fulfillment.handle(event.payload, deadline_ms).await)
        }
    }))
    .await
}
