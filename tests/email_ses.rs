//! The SES email adapter (what `fulfillment` uses in AWS) against moto's SES v2 API: a send from
//! a verified identity goes out, an unverified sender is a permanent refusal (no retries), and
//! an unreachable endpoint is transient (retried later).

use switchboard::connectors::ses::SesEmail;
use switchboard::connectors::{ConnectorError, EmailPort};

async fn sesv2(endpoint: Option<&str>) -> aws_sdk_sesv2::Client {
    let mut loader = switchboard::setup::aws_loader();
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    let config = loader.load().await;
    let ses = aws_sdk_sesv2::config::Builder::from(&config)
        // One attempt: the unreachable case should answer at once.
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sesv2::Client::from_conf(ses)
}

#[tokio::test]
async fn a_verified_sender_sends_and_refusals_are_classified() {
    let client = sesv2(None).await;
    let from = format!("support-{}@switchboard.test", ulid::Ulid::new()).to_lowercase();
    client
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .expect("create the sender identity in moto");

    let email = SesEmail::new(client.clone(), from, None);
    email
        .send(
            "erin@example.com",
            "Your refund for order #1006",
            "We've refunded $15.99.",
            "email:default:refund:1006",
        )
        .await
        .expect("sent from a verified identity");

    let unverified = SesEmail::new(client, "nobody@unverified.test".into(), None);
    let err = unverified
        .send("erin@example.com", "s", "t", "email:default:refund:x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnectorError::Rejected { .. }),
        "an unverified sender is permanent: {err}"
    );
    assert!(!err.is_transient());

    // A closed loopback port: nothing answers.
    let down = SesEmail::new(
        sesv2(Some("http://127.0.0.1:9")).await,
        "support@switchboard.test".into(),
        None,
    );
    let err = down
        .send("erin@example.com", "s", "t", "email:default:refund:y")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "no answer is worth a retry: {err}");
}
