//! `webhook`: vendors' signed POSTs through a Lambda function URL. All logic is in
//! `switchboard::webhook`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use switchboard::http_event::{HttpEvent, HttpResponse};

#[tokio::main]
async fn main() -> Result<(), Error> {
    switchboard::telemetry::init();
    tracing::info!("webhook function ready");
    lambda_runtime::run(service_fn(|event: LambdaEvent<HttpEvent>| async move {
        Ok::<HttpResponse, Error>(switchboard::webhook::handle(&event.payload))
    }))
    .await
}
