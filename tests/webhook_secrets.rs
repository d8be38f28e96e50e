//! Webhook signing secrets as the secret store holds them: a deleted secret stops verifying
//! within the TTL, and a vendor without a secret is refused without asking the store each time.
//! The vendors "revocable", "revocable-sm" and "off" exist in the local stack only (dev/webhook.py).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::signatures::{sign, Scheme, SigningKey};
use switchboard_it::{unique, unix_now as now, Stack};

/// dev/webhook.py: where the stack looks for each test vendor's secret.
const SSM_REVOCABLE: &str = "/switchboard/local/webhooks/revocable";
const SECRETS_MANAGER_OFF: &str = "switchboard/local/webhooks-off";
const SECRETS_MANAGER_REVOCABLE: &str = "switchboard/local/webhooks-revocable";

/// `cargo lambda watch` runs up to this many instances of a function (dev/stack.py
/// `--concurrency`), each a container with its own cache.
const INSTANCES: u64 = 4;

fn secrets_ttl() -> Duration {
    let secs = std::env::var("SECRETS_TTL_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

async fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&switchboard::setup::aws().await.expect("AWS configuration"))
}

async fn secrets_manager() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(
        &switchboard::setup::aws().await.expect("AWS configuration"),
    )
}

/// A Stripe event the stack records and does not queue (its type is not one it handles), signed
/// with `secret` for `vendor`: nothing reaches fulfillment whatever the answer.
async fn post_signed(stack: &Stack, vendor: &str, secret: &str) -> u16 {
    let body =
        json!({ "id": unique("evt_rev"), "type": "customer.created", "data": { "object": {} } })
            .to_string();
    let key = SigningKey::new(Scheme::Stripe, secret).unwrap();
    let headers = sign(Scheme::Stripe, &key, "", now(), body.as_bytes());
    stack
        .webhook(vendor, &headers, body.as_bytes())
        .await
        .status
}

/// Posts until `n` answers in a row are `status`; panics after `within`.
async fn until_consistently(
    stack: &Stack,
    vendor: &str,
    secret: &str,
    status: u16,
    n: usize,
    within: Duration,
    what: &str,
) {
    let deadline = Instant::now() + within;
    let mut in_a_row = 0;
    let mut seen = Vec::new();
    while in_a_row < n {
        let s = post_signed(stack, vendor, secret).await;
        in_a_row = if s == status { in_a_row + 1 } else { 0 };
        seen.push(s);
        assert!(
            Instant::now() < deadline,
            "{what}: not {status} within {within:?}; the last answers: {:?}",
            &seen[seen.len().saturating_sub(20)..]
        );
        if in_a_row == 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn a_secret_deleted_from_the_store_is_refused_within_the_ttl() {
    let stack = Stack::connect().await;
    let ssm = ssm().await;
    let ttl = secrets_ttl();
    // Generous beyond the TTL: every instance's next read, plus a slow local request or two.
    let bound = ttl + Duration::from_secs(30);
    // A secret of this run's own, so an earlier run's keys cannot pass for it.
    let secret = format!("whsec_{}", unique("revocable"));
    ssm.put_parameter()
        .name(SSM_REVOCABLE)
        .value(&secret)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    until_consistently(
        &stack,
        "revocable",
        &secret,
        200,
        2 * INSTANCES as usize,
        bound,
        "the new secret",
    )
    .await;

    ssm.delete_parameter()
        .name(SSM_REVOCABLE)
        .send()
        .await
        .unwrap();
    // Warm containers held the keys and the test keeps them warm, as an attacker's traffic would.
    until_consistently(
        &stack,
        "revocable",
        &secret,
        401,
        2 * INSTANCES as usize,
        bound,
        "the deleted secret",
    )
    .await;
}

#[tokio::test]
async fn a_secret_deleted_from_secrets_manager_with_a_recovery_window_is_refused_within_the_ttl() {
    let stack = Stack::connect().await;
    let sm = secrets_manager().await;
    let bound = secrets_ttl() + Duration::from_secs(30);
    let secret = format!("whsec_{}", unique("revocable_sm"));
    let value = json!({ "revocable-sm": secret }).to_string();
    // An earlier run left it marked for deletion: restore it, then give it this run's value.
    let _ = sm
        .restore_secret()
        .secret_id(SECRETS_MANAGER_REVOCABLE)
        .send()
        .await;
    let created = sm
        .create_secret()
        .name(SECRETS_MANAGER_REVOCABLE)
        .secret_string(&value)
        .send()
        .await;
    if created.is_err() {
        sm.put_secret_value()
            .secret_id(SECRETS_MANAGER_REVOCABLE)
            .secret_string(&value)
            .send()
            .await
            .unwrap();
    }
    let n = 2 * INSTANCES as usize;
    until_consistently(
        &stack,
        "revocable-sm",
        &secret,
        200,
        n,
        bound,
        "the new secret",
    )
    .await;

    // `aws secretsmanager delete-secret` without --force-delete-without-recovery: the secret
    // answers "marked for deletion" for its recovery window, which is a revocation.
    sm.delete_secret()
        .secret_id(SECRETS_MANAGER_REVOCABLE)
        .send()
        .await
        .unwrap();
    until_consistently(
        &stack,
        "revocable-sm",
        &secret,
        401,
        n,
        bound,
        "the deleted secret",
    )
    .await;
}

#[tokio::test]
async fn a_thousand_anonymous_posts_to_a_disabled_vendor_cost_at_most_one_read_per_ttl() {
    let stack = Arc::new(Stack::connect().await);
    // Passes every read of the vendor's secret through to moto, counting it.
    let counter = stack
        .arm_aws_fault(json!({
            "target": "secretsmanager.GetSecretValue",
            "match": SECRETS_MANAGER_OFF,
            "delay_ms": 1,
        }))
        .await;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..1000 {
        let (stack, permits) = (stack.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let body =
                json!({ "id": format!("evt_anon_{i}"), "type": "charge.failed" }).to_string();
            // Half unsigned, half signed with a guess.
            let headers = if i % 2 == 0 {
                Vec::new()
            } else {
                let key = SigningKey::new(Scheme::Stripe, "whsec_a_guess").unwrap();
                sign(Scheme::Stripe, &key, "", now(), body.as_bytes())
            };
            stack.webhook("off", &headers, body.as_bytes()).await
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = set.join_next().await {
        answers.push(r.unwrap());
    }
    let elapsed = started.elapsed();
    let reads = stack.aws_fault_hits(&counter).await;
    stack.clear_aws_fault(&counter).await;
    // Per instance: at most one read per TTL begun while the requests ran.
    let allowed = INSTANCES * (elapsed.as_secs() / secrets_ttl().as_secs().max(1) + 1);
    assert!(
        reads <= allowed,
        "{reads} reads of the disabled vendor's secret for 1,000 requests in {elapsed:?} (at most {allowed})"
    );
    // Refused as a wrong signature is, whether signed or not.
    for r in answers {
        assert_eq!(r.status, 401, "{}", r.body);
    }
}
