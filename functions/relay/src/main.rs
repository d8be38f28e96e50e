//! `relay`: the outbox relay. The table's DynamoDB stream invokes it with new outbox items (the
//! event source mapping filters on them and takes `batchItemFailures`); it sends them to the
//! FIFO jobs queue and deletes them. All logic is in `switchboard::relay`.

use std::sync::Arc;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let process_started = std::time::Instant::now();
    switchboard::telemetry::init();
    let relay = Arc::new(switchboard::setup::relay().await?);
    tracing::info!(
        init_ms = process_started.elapsed().as_millis() as u64,
        "relay function ready"
    );
    switchboard::metrics::cold_start("relay", process_started);
    // Taken as JSON and read record by record (`Relay::handle_json`): one record of a shape
    // this build does not know must not fail the whole batch forever.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let relay = relay.clone();
        async move { Ok::<DynamoDbEventResponse, Error>(relay.handle_json(event.payload).await) }
    }))
    .await
}
