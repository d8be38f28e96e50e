//! `webhook`: vendors' signed POSTs through a Lambda function URL. All logic is in
//! `switchboard::webhook`; this binary builds it once (config, secrets, clients) and serves events.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard::http_event::{HttpEvent, HttpResponse};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let process_started = std::time::Instant::now();
    switchboard::telemetry::init();
    let service = Arc::new(switchboard::setup::webhook().await?);
    tracing::info!(
        init_ms = process_started.elapsed().as_millis() as u64,
        "webhook function ready"
    );
    switchboard::metrics::cold_start("webhook", process_started);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HttpEvent>| {
        let service = service.clone();
        async move { Ok::<HttpResponse, Error>(service.handle(&event.payload).await) }
    }))
    .await
}
