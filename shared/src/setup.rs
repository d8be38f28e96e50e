//! Builds each function's object graph once per container, from the environment. AWS clients and
//! the HTTP client are created here, never per request.

use std::sync::Arc;

use crate::api::ChatApi;
use crate::auth::JwtVerifier;
use crate::config::{ChatSettings, ConfigError, Env, StoreSettings};
use crate::connectors::rest::{http_client, RestOrders, RestPayments};
use crate::dialogue::Dialogue;
use crate::fulfillment::Fulfillment;
use crate::jobs::sqs::SqsJobQueue;
use crate::store::dynamo::DynamoStore;
use crate::turn::TurnService;

/// Shared AWS configuration. `AWS_ENDPOINT_URL` (set by the local stack) points every SDK client
/// at moto; in AWS it is unset and the regional endpoints are used.
pub async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

fn store(aws: &aws_config::SdkConfig, settings: StoreSettings) -> Arc<DynamoStore> {
    Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        settings.table_name,
        settings.retention,
    ))
}

pub async fn chat_api() -> Result<ChatApi, ConfigError> {
    let env = Env::process();
    let chat = ChatSettings::from_env(&env)?;
    let store_settings = StoreSettings::from_env(&env)?;
    let verifier = JwtVerifier::from_env(&env)?;
    let orders_url = env.url("ORDERS_API_URL")?;
    let queue_url = env.required("JOBS_QUEUE_URL")?;
    let aws = aws().await;
    let client = http_client(chat.connector_timeout);
    let turns = TurnService::new(
        store(&aws, store_settings),
        Dialogue::new(Arc::new(RestOrders::new(client, orders_url))),
        Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url)),
        chat,
    );
    Ok(ChatApi::new(verifier, turns))
}

pub async fn fulfillment() -> Result<Fulfillment, ConfigError> {
    let env = Env::process();
    let store_settings = StoreSettings::from_env(&env)?;
    let payments_url = env.url("PAYMENTS_API_URL")?;
    let timeout = std::time::Duration::from_millis(env.parsed("PAYMENTS_TIMEOUT_MS", 5_000)?);
    let aws = aws().await;
    Ok(Fulfillment::new(
        store(&aws, store_settings),
        Arc::new(RestPayments::new(http_client(timeout), payments_url)),
    ))
}
