//! `chat`: the chat API behind API Gateway (HTTP API, payload 2.0). All logic is in
//! `switchboard::api`; this binary builds it once and serves events.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard::http_event::{HttpEvent, HttpResponse};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let process_started = std::time::Instant::now();
    switchboard::telemetry::init();
    let api = Arc::new(switchboard::setup::chat_api().await?);
    tracing::info!(
        init_ms = process_started.elapsed().as_millis() as u64,
        "chat function ready"
    );
    switchboard::metrics::cold_start("chat", process_started);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HttpEvent>| {
        let api = api.clone();
        async move { Ok::<HttpResponse, Error>(api.handle(event.payload).await) }
    }))
    .await
}
