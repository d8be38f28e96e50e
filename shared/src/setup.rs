//! Builds each function's object graph once per container, from the environment. AWS clients and
//! the HTTP client are created here, never per request.

use std::sync::Arc;

use crate::api::ChatApi;
use crate::auth::JwtVerifier;
use crate::bot::bundle_load::BundleLoad;
use crate::config::{ChatSettings, ConfigError, Env, StoreSettings};
use crate::connectors::catalog::Op;
use crate::connectors::configured::Configured;
use crate::connectors::engine::{http_client, Connectors};
use crate::connectors::ses::SesEmail;
use crate::connectors::{EmailPort, InventoryPort};
use crate::dialogue::Dialogue;
use crate::fulfillment::dead_letter::SqsDeadLetters;
use crate::fulfillment::retry::{RetryPolicy, SqsVisibility};
use crate::fulfillment::{Fulfillment, Systems};
use crate::jobs::sqs::SqsJobQueue;
use crate::secrets::Secrets;
use crate::store::dynamo::DynamoStore;
use crate::turn::TurnService;
use crate::webhook::claims::DynamoClaims;
use crate::webhook::{config as webhook_config, WebhookService, WebhookSettings};

/// Shared AWS configuration. `AWS_ENDPOINT_URL` (set by the local stack) points every SDK client
/// at moto; in AWS it is unset and the regional endpoints are used.
///
/// The Lambda binaries (built without `aws-default-chain`) read it from the environment Lambda
/// gives them (`lambda_aws`), as do the benchmark tools dev/bench builds the same way;
/// development builds, the tests and the CLI keep aws-config's default chains (profiles,
/// IMDS, ...), which work anywhere.
pub async fn aws() -> Result<aws_config::SdkConfig, ConfigError> {
    #[cfg(feature = "aws-default-chain")]
    {
        Ok(aws_loader().load().await)
    }
    #[cfg(not(feature = "aws-default-chain"))]
    {
        lambda_aws(&Env::process())
    }
}

/// The SDK's configuration loader with its HTTP client: the connectors' reqwest stack
/// (`aws_http`), so the binaries hold one HTTP and TLS stack and no cold start parses the
/// platform's certificate store.
#[cfg(feature = "aws-default-chain")]
pub fn aws_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::aws_http::ReqwestHttpClient::shared())
}

/// The SDK's connect timeout when nothing configures one: what `aws_config`'s loader sets
/// (its `timeout_config` default provider).
const SDK_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(3100);

/// The AWS configuration of a function in Lambda, from the variables Lambda sets: the region
/// (`AWS_REGION`, else `AWS_DEFAULT_REGION`) and the execution role's credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), plus `AWS_ENDPOINT_URL`
/// where set (the local stack). Everything else is what `aws_config`'s loader gives when
/// nothing configures it: standard retries, its connect timeout, a lazy identity cache, the
/// latest behavior version, tokio's sleep and the system clock; with the SDK's HTTP client
/// (`aws_http`).
///
/// Why not the loader: its default chains (profile files, IMDS, ECS, web identity with an STS
/// client, `credential_process`) are ~0.5 MB of each binary that Lambda never needs, and
/// the loader links them whatever it is given. Not read here, unlike the loader:
/// `AWS_PROFILE` and the files it names, `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`,
/// `AWS_USE_FIPS_ENDPOINT` / `AWS_USE_DUALSTACK_ENDPOINT`, service-specific
/// `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_SDK_UA_APP_ID`, the checksum and account-id endpoint
/// settings, and every other `AWS_*` setting the loader knows; template.yaml sets none of them.
pub fn lambda_aws<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<aws_config::SdkConfig, ConfigError> {
    let region = env
        .optional("AWS_REGION")
        .or_else(|| env.optional("AWS_DEFAULT_REGION"))
        .ok_or(ConfigError::Missing("AWS_REGION"))?;
    // One client (one pool of connections) for the services and, where used, the container
    // credentials endpoint.
    let http = crate::aws_http::ReqwestHttpClient::shared();
    let mut builder = aws_config::SdkConfig::builder()
        .region(aws_config::Region::new(region))
        .credentials_provider(lambda_credentials(env, http.clone())?)
        .identity_cache(aws_config::identity::IdentityCache::lazy().build())
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .retry_config(aws_config::retry::RetryConfig::standard())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(SDK_CONNECT_TIMEOUT)
                .build(),
        )
        .time_source(aws_smithy_async::time::SharedTimeSource::default());
    builder.set_sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep());
    // Checked to be a URL, set as written (as the loader does: no trailing slash added).
    if let Some(endpoint) = env.optional("AWS_ENDPOINT_URL") {
        env.url("AWS_ENDPOINT_URL")?;
        builder.set_endpoint_url(Some(endpoint));
    }
    Ok(builder.build())
}

/// The execution role's credentials as Lambda gives them: in the environment, for the life of
/// the execution environment. Read once (a blank value is absent): they do not change while the
/// process runs. The SDK's own environment provider gives the same keys, under another provider
/// name and with a user-agent note of where they came from, which these requests do not carry.
///
/// Without them, a container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or
/// `_RELATIVE_URI`), as aws-config's default chain would try next: where Lambda serves the
/// role's credentials from an endpoint instead (SnapStart does; its runtimes are not this one,
/// but a variant that does so would otherwise lose its credentials). ~76 KB.
fn lambda_credentials<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    http: aws_smithy_runtime_api::client::http::SharedHttpClient,
) -> Result<aws_credential_types::provider::SharedCredentialsProvider, ConfigError> {
    use aws_credential_types::provider::SharedCredentialsProvider;
    let Some(access_key) = env.optional("AWS_ACCESS_KEY_ID") else {
        if env.optional("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
            || env
                .optional("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
                .is_some()
        {
            // The provider reads the process environment itself (the URI, its token or token
            // file), as the default chain's does.
            let provider = aws_config::provider_config::ProviderConfig::empty()
                .with_http_client(http)
                .with_sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new());
            return Ok(SharedCredentialsProvider::new(
                aws_config::ecs::EcsCredentialsProvider::builder()
                    .configure(&provider)
                    .build(),
            ));
        }
        return Err(ConfigError::Missing("AWS_ACCESS_KEY_ID"));
    };
    let secret_key = env
        .optional("AWS_SECRET_ACCESS_KEY")
        .ok_or(ConfigError::Missing("AWS_SECRET_ACCESS_KEY"))?;
    let mut credentials = aws_credential_types::Credentials::builder()
        .access_key_id(access_key)
        .secret_access_key(secret_key)
        .provider_name("Environment");
    credentials.set_session_token(env.optional("AWS_SESSION_TOKEN"));
    credentials.set_account_id(env.optional("AWS_ACCOUNT_ID").map(Into::into));
    Ok(SharedCredentialsProvider::new(credentials.build()))
}

fn store(aws: &aws_config::SdkConfig, settings: StoreSettings) -> Arc<DynamoStore> {
    Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        settings.table_name,
        settings.retention,
    ))
}

/// The connectors of `SWITCHBOARD_CONNECTORS_FILE` (or the bundled file), checked to have what
/// `who` needs, with secrets from the environment, SSM or Secrets Manager, cached for
/// `SECRETS_TTL_SECS`. One HTTP client for every system.
async fn connectors<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    aws: &aws_config::SdkConfig,
    who: &str,
    needs: &[Op],
) -> Result<Configured, ConfigError> {
    let invalid = |e: crate::connectors::config::ConnectorConfigError| ConfigError::Invalid {
        name: "SWITCHBOARD_CONNECTORS_FILE",
        reason: e.to_string(),
    };
    let ssm = aws_sdk_ssm::Client::new(aws);
    let config = crate::connectors::config::load(
        env.optional("SWITCHBOARD_CONNECTORS_FILE").as_deref(),
        &|k| (env.0)(k),
        Some(&ssm),
    )
    .await
    .map_err(invalid)?;
    config.require(needs, who).map_err(invalid)?;
    let ttl = std::time::Duration::from_secs(env.parsed("SECRETS_TTL_SECS", 300)?);
    let systems: Vec<&str> = config.systems.keys().copied().collect();
    tracing::info!(source = %config.source, systems = ?systems, "connectors configured");
    let connectors = Connectors::new(
        config,
        http_client(),
        Arc::new(Secrets::from_process(Some(aws))),
        ttl,
    );
    connectors.warm_up().await;
    Ok(Configured(Arc::new(connectors)))
}

const ORDERS: [Op; 2] = [Op::OrdersGetStatus, Op::OrdersListByCustomer];

/// The bot bundle is parsed (~5.5 ms of CPU for four languages, release) on a thread of its own
/// while the JWT verifier, the AWS SDK and the connectors are set up, and `dialogue` then finds
/// it ready or waits for the rest of it: `SWITCHBOARD_BOT`'s directory (as deployed: the
/// BotLayer) read, parsed and (when it allows built-in operations only) checked by a
/// `BundleLoad`, otherwise its flows checked against the connectors once they are known; else the compiled-in bundle (`Bot::try_embedded` is built once, whichever
/// thread gets there first).
fn prepare_bundle<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Option<BundleLoad> {
    let dir = env.optional(crate::bot::bundle::BOT_ENV);
    #[cfg(feature = "bundled-bot")]
    if dir.is_none() {
        std::thread::spawn(|| {
            let _ = crate::bot::Bot::try_embedded();
        });
    }
    dir.map(|dir| BundleLoad::start(dir.trim()))
}

pub async fn chat_api() -> Result<ChatApi, ConfigError> {
    let env = Env::process();
    let bundle = prepare_bundle(&env);
    let chat = ChatSettings::from_env(&env)?;
    let store_settings = StoreSettings::from_env(&env)?;
    let verifier = JwtVerifier::from_env(&env)?;
    let payment_update_url = optional_url(&env, "PAYMENT_UPDATE_URL")?;
    let budget = std::time::Duration::from_millis(env.parsed("TURN_BUDGET_MS", 150)?);
    let aws = aws().await?;
    // The key set's fetch (JWKS mode) and the connectors' secrets: independent round trips.
    let (systems, ()) = tokio::join!(
        connectors(&env, &aws, "the chat function", &ORDERS),
        verifier.warm_up()
    );
    let systems = systems?;
    let table = store(&aws, store_settings);
    let turns = TurnService::new(
        table.clone(),
        dialogue(&env, &systems, table, bundle)?
            .with_payment_update_url(payment_update_url)
            .with_budget(Some(budget)),
        chat,
    );
    let limiter =
        crate::rate_limit::RateLimiter::new(crate::rate_limit::RateSettings::from_env(&env)?);
    let cors = crate::cors::Cors::from_env(&env)?;
    Ok(ChatApi::new(verifier, turns, limiter).with_cors(cors))
}

pub async fn fulfillment() -> Result<Fulfillment, ConfigError> {
    let env = Env::process();
    let bundle = prepare_bundle(&env);
    let store_settings = StoreSettings::from_env(&env)?;
    let queue_url = env.required("JOBS_QUEUE_URL")?;
    let dlq_url = env.required("JOBS_DLQ_URL")?;
    let defaults = RetryPolicy::default();
    let secs = |name, default: std::time::Duration| {
        env.parsed(name, default.as_secs())
            .map(std::time::Duration::from_secs)
    };
    let policy = RetryPolicy {
        base: secs("RETRY_BASE_SECS", defaults.base)?,
        max: secs("RETRY_MAX_SECS", defaults.max)?,
        max_attempts: env.parsed("JOB_MAX_ATTEMPTS", defaults.max_attempts)?,
        deferred_for: secs("DEFERRED_ANSWER_MAX_SECS", defaults.deferred_for)?,
    };
    if policy.max_attempts == 0 {
        return Err(ConfigError::Invalid {
            name: "JOB_MAX_ATTEMPTS",
            reason: "a job needs at least one attempt".into(),
        });
    }
    let payment_update_url = optional_url(&env, "PAYMENT_UPDATE_URL")?;
    let default_lease = std::time::Duration::from_secs(env.parsed("JOB_LEASE_SECS", 60)?);
    let aws = aws().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let systems = connectors(
        &env,
        &aws,
        "the fulfillment function",
        &[
            Op::OrdersGetStatus,
            Op::OrdersListByCustomer,
            Op::PaymentsRefund,
            Op::CrmGetCustomer,
            Op::CrmFindCustomer,
            Op::CrmFindByVendorId,
        ],
    )
    .await?;
    let email = email(&env, &aws, &systems)?;
    let dynamo = store(&aws, store_settings);
    Ok(Fulfillment::new(
        dynamo.clone(),
        dynamo.clone(),
        Systems {
            payments: Arc::new(systems.clone()),
            customers: Arc::new(systems.clone()),
            orders: Arc::new(systems.clone()),
            email,
            operations: Arc::new(systems.clone()),
            dialogue: Arc::new(
                dialogue(&env, &systems, dynamo.clone(), bundle)?
                    .with_payment_update_url(payment_update_url),
            ),
            channels: channels(&env)?,
            channel_sender: [
                Op::WhatsappSendMessage,
                Op::TwilioSendMessage,
                Op::TelegramSendMessage,
            ]
            .iter()
            .any(|op| systems.0.has(*op))
            .then(|| Arc::new(systems.clone()) as Arc<dyn crate::connectors::ChannelSendPort>),
            agent_inbox: env.optional("AGENT_EMAIL"),
            console_url: optional_url(&env, "CONSOLE_URL")?,
        },
        Arc::new(SqsVisibility::new(sqs.clone(), &[queue_url])),
        Arc::new(SqsDeadLetters::new(sqs, dlq_url)),
        policy,
    )
    .with_default_lease(default_lease)
    .with_chat_settings(ChatSettings::from_env(&env)?))
}

/// The dialogue as configured: the bot bundle in `SWITCHBOARD_BOT` (`bundle`, started by
/// `prepare_bundle`; without it the compiled-in one), its thresholds unless `NLU_ACCEPT` /
/// `NLU_CLARIFY` override them, refund states from the ledger, stock from
/// `inventory.availability` if the connectors have it.
fn dialogue<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    systems: &Configured,
    ledger: Arc<DynamoStore>,
    bundle: Option<BundleLoad>,
) -> Result<Dialogue, ConfigError> {
    let inventory: Option<Arc<dyn InventoryPort>> = systems
        .0
        .has(Op::InventoryAvailability)
        .then(|| Arc::new(systems.clone()) as Arc<dyn InventoryPort>);
    // A bundle that does not load stops init with every problem's file, line and key; its
    // flows may call the operations these connectors declare (SWITCHBOARD_CONNECTORS_FILE
    // names the bundle's own connectors.toml for that), not what the bundle's file says.
    let bot = match bundle {
        Some(load) => load.finish(systems.0.declared()),
        // The shipped bundle calls built-in operations only.
        None => crate::bot::Bot::try_embedded(),
    }
    .map_err(|e| ConfigError::Invalid {
        name: crate::bot::bundle::BOT_ENV,
        reason: format!("the bot bundle does not load:\n{e}"),
    })?;
    tracing::info!(bot = %bot.name, source = %bot.source, intents = bot.intents.len(), "bot bundle loaded");
    let defaults = bot.thresholds;
    let thresholds = crate::nlu::Thresholds {
        accept: env.parsed("NLU_ACCEPT", defaults.accept)?,
        clarify: env.parsed("NLU_CLARIFY", defaults.clarify)?,
        out_of_scope: defaults.out_of_scope,
    };
    if !(0.0..=1.0).contains(&thresholds.accept)
        || !(0.0..=thresholds.accept).contains(&thresholds.clarify)
    {
        return Err(ConfigError::Invalid {
            name: "NLU_CLARIFY",
            reason: "need 0 <= NLU_CLARIFY <= NLU_ACCEPT <= 1".into(),
        });
    }
    // Compiles the entity and words patterns, builds the models' row indexes and reads a
    // message in every language (~10 ms of CPU, release), then compiles the log redaction's
    // patterns (~2.4 ms), some of which a turn's first log lines would: during init, not in a
    // turn — on a thread of its own, beside the rest of init: the function polls for its first
    // event without waiting for it, and a turn that arrives first waits only for the patterns
    // it uses (each built once, by whichever thread gets there first). Measured in
    // docs/performance-history.md (issue 24, fifth session).
    let nlu = bot.nlu();
    std::thread::spawn(move || {
        nlu.warm_up();
        crate::redact::warm_up();
    });
    Ok(Dialogue::of(bot, Arc::new(systems.clone()))
        .with_operations(Some(Arc::new(systems.clone())))
        .with_order_ids(systems.0.order_ids().cloned())
        .with_thresholds(thresholds)
        .with_ledger(ledger)
        .with_inventory(inventory))
}

/// Email goes to the connectors' `email.send` when configured (the demo email API locally),
/// otherwise through SES from `EMAIL_FROM` (a verified identity), with an optional
/// `SES_CONFIGURATION_SET` for bounce and complaint events.
fn email<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    aws: &aws_config::SdkConfig,
    systems: &Configured,
) -> Result<Arc<dyn EmailPort>, ConfigError> {
    if systems.0.has(Op::EmailSend) {
        return Ok(Arc::new(systems.clone()));
    }
    let from = env
        .required("EMAIL_FROM")
        .map_err(|_| ConfigError::Invalid {
            name: "EMAIL_FROM",
            reason: "set EMAIL_FROM (an SES-verified sender), or configure email.send (EMAIL_API_URL for the bundled connectors)".into(),
        })?;
    Ok(Arc::new(SesEmail::new(
        aws_sdk_sesv2::Client::new(aws),
        from,
        env.optional("SES_CONFIGURATION_SET"),
    )))
}

fn optional_url<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
) -> Result<Option<String>, ConfigError> {
    match env.optional(name) {
        Some(_) => Ok(Some(env.url(name)?.to_string())),
        None => Ok(None),
    }
}

/// The outbox relay: outbox items from the table's stream to `JOBS_QUEUE_URL`, deleted from
/// `TABLE_NAME` once sent.
pub async fn relay() -> Result<crate::relay::Relay, ConfigError> {
    let env = Env::process();
    let store_settings = StoreSettings::from_env(&env)?;
    let queue_url = env.required("JOBS_QUEUE_URL")?;
    let aws = aws().await?;
    Ok(crate::relay::Relay::new(
        Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url)),
        store(&aws, store_settings),
    ))
}

/// The messaging channels (bundled, or `SWITCHBOARD_CHANNELS_FILE`).
fn channels<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<crate::channels::config::Channels, ConfigError> {
    let channels = crate::channels::config::load(
        env.optional("SWITCHBOARD_CHANNELS_FILE").as_deref(),
        &|name: &str| std::env::var(name).ok(),
    )
    .map_err(|e| ConfigError::Invalid {
        name: "SWITCHBOARD_CHANNELS_FILE",
        reason: e.to_string(),
    })?;
    Ok(channels)
}

/// The webhook intake: vendor config (bundled, or `SWITCHBOARD_WEBHOOKS_FILE`), secrets from the
/// environment, SSM or Secrets Manager, claims in the table, jobs to the queue.
pub async fn webhook() -> Result<WebhookService, ConfigError> {
    let env = Env::process();
    let vendors = webhook_config::load(env.optional("SWITCHBOARD_WEBHOOKS_FILE").as_deref())
        .map_err(|e| ConfigError::Invalid {
            name: "SWITCHBOARD_WEBHOOKS_FILE",
            reason: e.to_string(),
        })?;
    let table = env.required("TABLE_NAME")?;
    let queue_url = env.required("JOBS_QUEUE_URL")?;
    let defaults = WebhookSettings::default();
    let secs = |name, default: std::time::Duration| {
        env.parsed(name, default.as_secs())
            .map(std::time::Duration::from_secs)
    };
    let settings = WebhookSettings {
        secrets_ttl: secs("SECRETS_TTL_SECS", defaults.secrets_ttl)?,
        secrets_max_stale: secs("WEBHOOK_SECRETS_MAX_STALE_SECS", defaults.secrets_max_stale)?,
    };
    let aws = aws().await?;
    let service = WebhookService::new(
        vendors,
        Arc::new(Secrets::from_process(Some(&aws))),
        Arc::new(DynamoClaims::new(
            aws_sdk_dynamodb::Client::new(&aws),
            table,
        )),
        Arc::new(SqsJobQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url)),
        settings,
    )
    .with_channels(channels(&env)?);
    service.read_secrets().await;
    Ok(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::ProvideCredentials;

    use crate::config::test_env as env;

    const LAMBDA: &[(&str, &str)] = &[
        ("AWS_REGION", "eu-central-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_SESSION_TOKEN", "token"),
    ];

    #[tokio::test]
    async fn lambda_config_is_read_from_the_environment() {
        let config = lambda_aws(&env(LAMBDA)).unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("eu-central-1"));
        assert_eq!(config.endpoint_url(), None);
        let credentials = config
            .credentials_provider()
            .unwrap()
            .provide_credentials()
            .await
            .unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(credentials.secret_access_key(), "secret");
        assert_eq!(credentials.session_token(), Some("token"));
        assert_eq!(credentials.expiry(), None);
        // What the loader gives when nothing configures them.
        assert_eq!(
            config.retry_config(),
            Some(&aws_config::retry::RetryConfig::standard())
        );
        assert_eq!(
            config.timeout_config().and_then(|t| t.connect_timeout()),
            Some(SDK_CONNECT_TIMEOUT)
        );
        assert!(config.identity_cache().is_some());
        assert!(config.sleep_impl().is_some());
        assert!(config.time_source().is_some());
        assert!(config.http_client().is_some());
        assert!(config.behavior_version().is_some());
    }

    #[test]
    fn the_default_region_and_an_endpoint_are_honoured() {
        let config = lambda_aws(&env(&[
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
        ]))
        .unwrap();
        assert_eq!(config.region().map(|r| r.as_ref()), Some("us-west-2"));
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn what_is_missing_or_malformed_is_named() {
        let err = |pairs| lambda_aws(&env(pairs)).unwrap_err();
        assert_eq!(
            err(&[("AWS_ACCESS_KEY_ID", "a"), ("AWS_SECRET_ACCESS_KEY", "s")]),
            ConfigError::Missing("AWS_REGION")
        );
        assert_eq!(
            err(&[("AWS_REGION", " "), ("AWS_ACCESS_KEY_ID", "a")]),
            ConfigError::Missing("AWS_REGION")
        );
        assert_eq!(
            err(&[("AWS_REGION", "eu-west-1"), ("AWS_SECRET_ACCESS_KEY", "s")]),
            ConfigError::Missing("AWS_ACCESS_KEY_ID")
        );
        assert_eq!(
            err(&[("AWS_REGION", "eu-west-1"), ("AWS_ACCESS_KEY_ID", "a")]),
            ConfigError::Missing("AWS_SECRET_ACCESS_KEY")
        );
        // A container credentials endpoint stands in for the keys.
        assert!(lambda_aws(&env(&[
            ("AWS_REGION", "eu-west-1"),
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:9001/creds"
            ),
        ]))
        .is_ok());
        assert!(matches!(
            err(&[
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ACCESS_KEY_ID", "a"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_ENDPOINT_URL", "localhost:5000"),
            ]),
            ConfigError::Invalid {
                name: "AWS_ENDPOINT_URL",
                ..
            }
        ));
    }
}
