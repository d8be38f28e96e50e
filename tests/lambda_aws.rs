//! The Lambda binaries' AWS configuration (`setup::lambda_aws`: the environment only, without
//! aws-config's default chains) against moto: it is what the loader makes of the same
//! environment, `AWS_ENDPOINT_URL` reaches moto, and each service the functions call answers
//! (moto does not check signatures: the credentials are compared with the loader's instead).
//! Development builds (the functions under `cargo lambda watch`) use the default chains, so
//! this is where the production configuration meets the local stack.

use aws_credential_types::provider::ProvideCredentials;
use switchboard::config::Env;
use switchboard::secrets::SecretError;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: these tests need the local stack; run them with ./dev/test")
    })
}

fn lambda_aws() -> aws_config::SdkConfig {
    switchboard::setup::lambda_aws(&Env::process())
        .expect("AWS configuration from the local stack's environment")
}

#[tokio::test]
async fn the_functions_services_answer_through_the_lambda_configuration() {
    let aws = lambda_aws();
    assert!(
        aws.endpoint_url().is_some(),
        "the local stack sets AWS_ENDPOINT_URL"
    );

    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let table = ddb
        .describe_table()
        .table_name(var("TABLE_NAME"))
        .send()
        .await
        .expect("DynamoDB answers");
    assert!(table.table().is_some());

    let sqs = aws_sdk_sqs::Client::new(&aws);
    sqs.get_queue_attributes()
        .queue_url(var("JOBS_QUEUE_URL"))
        .send()
        .await
        .expect("SQS answers");

    // SSM through the function's own read (decrypted, a missing parameter is NotFound).
    let ssm = aws_sdk_ssm::Client::new(&aws);
    let name = format!("/switchboard/it/lambda-aws/{}", ulid::Ulid::new());
    ssm.put_parameter()
        .name(&name)
        .value("s3cret")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("SSM answers");
    let read = switchboard::secrets::ssm_parameter(&ssm, &name)
        .await
        .expect("the parameter just written");
    assert_eq!(read.value(), Some("s3cret"));
    ssm.delete_parameter().name(&name).send().await.unwrap();
    assert!(matches!(
        switchboard::secrets::ssm_parameter(&ssm, &name).await,
        Err(SecretError::NotFound(_))
    ));

    let sm = aws_sdk_secretsmanager::Client::new(&aws);
    sm.list_secrets()
        .max_results(1)
        .send()
        .await
        .expect("Secrets Manager answers");
}

/// What the functions build by hand is what aws-config's loader (the tests' `setup::aws`, with
/// its default chains) makes of the same environment: a loader upgrade that changes a default
/// shows here.
#[tokio::test]
async fn the_lambda_configuration_is_the_loaders_for_the_same_environment() {
    let lambda = lambda_aws();
    let loader = switchboard::setup::aws().await.unwrap();
    assert_eq!(lambda.region(), loader.region());
    assert_eq!(lambda.endpoint_url(), loader.endpoint_url());
    let debug = |v: &dyn std::fmt::Debug| format!("{v:?}");
    assert_eq!(debug(&lambda.retry_config()), debug(&loader.retry_config()));
    assert_eq!(
        debug(&lambda.timeout_config()),
        debug(&loader.timeout_config())
    );
    assert_eq!(lambda.use_fips(), loader.use_fips());
    assert_eq!(lambda.use_dual_stack(), loader.use_dual_stack());
    assert_eq!(lambda.app_name(), loader.app_name());
    assert_eq!(
        debug(&lambda.stalled_stream_protection()),
        debug(&loader.stalled_stream_protection())
    );
    assert_eq!(lambda.behavior_version(), loader.behavior_version());
    let credentials = |c: &aws_config::SdkConfig| {
        let provider = c.credentials_provider().expect("credentials");
        async move { provider.provide_credentials().await.expect("resolved") }
    };
    let (mine, theirs) = (credentials(&lambda).await, credentials(&loader).await);
    assert_eq!(mine.access_key_id(), theirs.access_key_id());
    assert_eq!(mine.secret_access_key(), theirs.secret_access_key());
    assert_eq!(mine.session_token(), theirs.session_token());
}
