//! The Lambda binaries' AWS configuration (`setup::lambda_aws`: the environment only, without
//! aws-config's default chains) against moto: `AWS_ENDPOINT_URL` reaches it, requests are
//! signed with the environment's credentials, and each service the functions call answers.
//! Development builds (the functions under `cargo lambda watch`) use the default chains, so
//! this is where the production configuration meets the local stack.

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
