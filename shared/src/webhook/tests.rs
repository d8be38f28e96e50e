use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::claims::MemoryClaims;
use super::*;
use crate::jobs::{JobKind, QueueError};
use crate::secrets::Secrets;

const STRIPE_SECRET: &str = "whsec_test_stripe_0123456789";
const OLD_STRIPE_SECRET: &str = "whsec_test_stripe_previous";
const SHOPIFY_SECRET: &str = "shpss_test_shopify_0123456789";

#[derive(Default)]
struct Queue {
    sent: Mutex<Vec<Job>>,
    down: AtomicBool,
}

#[async_trait]
impl JobQueue for Queue {
    async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(QueueError("queue is down".into()));
        }
        self.sent.lock().unwrap().extend_from_slice(jobs);
        Ok(())
    }
}

struct Fixture {
    service: WebhookService,
    queue: Arc<Queue>,
}

async fn fixture() -> Fixture {
    let vendors = config::parse(config::BUNDLED_NAME, config::BUNDLED).unwrap();
    let env = |k: &str| match k {
        "WEBHOOK_SECRET_STRIPE" => Some(format!(r#"["{STRIPE_SECRET}", "{OLD_STRIPE_SECRET}"]"#)),
        "WEBHOOK_SECRET_SLACK" => Some("slack-signing-secret".to_string()),
        "WEBHOOK_SECRET_SHOPIFY" => Some(SHOPIFY_SECRET.to_string()),
        _ => None,
    };
    let queue = Arc::new(Queue::default());
    let service = WebhookService::new(
        vendors,
        Arc::new(Secrets::new(env, None)),
        Arc::new(MemoryClaims::default()),
        queue.clone(),
        WebhookSettings::default(),
    );
    service.read_secrets().await;
    Fixture { service, queue }
}

fn request(path: &str, headers: &[(&str, String)], body: &str) -> HttpEvent {
    let mut e = HttpEvent {
        raw_path: path.into(),
        body: Some(body.into()),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        ..Default::default()
    };
    e.request_context.http.method = "POST".into();
    e
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn stripe_signed(secret: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    let key = SigningKey::new(Scheme::Stripe, secret).unwrap();
    signatures::sign(Scheme::Stripe, &key, "", ts, body.as_bytes())
}

const PAYMENT_FAILED: &str = r#"{"id":"evt_unit_1","type":"invoice.payment_failed","data":{"object":{"customer":"cus_alice","amount_due":2999,"currency":"usd"}}}"#;

#[tokio::test]
async fn a_signed_event_is_queued_once() {
    let f = fixture().await;
    let headers = stripe_signed(STRIPE_SECRET, now(), PAYMENT_FAILED);
    let first = f
        .service
        .handle(&request("/webhooks/stripe", &headers, PAYMENT_FAILED))
        .await;
    assert_eq!(first.status_code, 202, "{}", first.body);
    let again = f
        .service
        .handle(&request("/webhooks/stripe", &headers, PAYMENT_FAILED))
        .await;
    assert_eq!(again.status_code, 200, "{}", again.body);
    assert!(again.body.contains("\"duplicate\":true"));
    let sent = f.queue.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    let JobKind::VendorEvent(e) = &sent[0].kind else {
        panic!("a vendor event")
    };
    assert_eq!(e.event, config::EventKind::PaymentFailed);
    assert_eq!(e.vendor_customer_id.as_deref(), Some("cus_alice"));
    assert_eq!(sent[0].key, "event:default:stripe:evt_unit_1");
}

#[tokio::test]
async fn the_previous_secret_still_verifies_during_rotation() {
    let f = fixture().await;
    let headers = stripe_signed(OLD_STRIPE_SECRET, now(), PAYMENT_FAILED);
    let r = f
        .service
        .handle(&request("/webhooks/stripe", &headers, PAYMENT_FAILED))
        .await;
    assert_eq!(r.status_code, 202, "{}", r.body);
}

#[tokio::test]
async fn a_failed_enqueue_releases_the_claim_so_the_retry_gets_through() {
    let f = fixture().await;
    let headers = stripe_signed(STRIPE_SECRET, now(), PAYMENT_FAILED);
    f.queue.down.store(true, Ordering::SeqCst);
    let r = f
        .service
        .handle(&request("/webhooks/stripe", &headers, PAYMENT_FAILED))
        .await;
    assert_eq!(r.status_code, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    f.queue.down.store(false, Ordering::SeqCst);
    let r = f
        .service
        .handle(&request("/webhooks/stripe", &headers, PAYMENT_FAILED))
        .await;
    assert_eq!(r.status_code, 202, "{}", r.body);
    assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn unhandled_types_are_recorded_not_queued() {
    let f = fixture().await;
    let body = r#"{"id":"evt_unit_2","type":"customer.created","data":{"object":{}}}"#;
    let headers = stripe_signed(STRIPE_SECRET, now(), body);
    let r = f
        .service
        .handle(&request("/webhooks/stripe", &headers, body))
        .await;
    assert_eq!(r.status_code, 200, "{}", r.body);
    assert!(r.body.contains("\"handled\":false"));
    assert!(f.queue.sent.lock().unwrap().is_empty());
    // And remembered: the retry is a duplicate.
    let r = f
        .service
        .handle(&request("/webhooks/stripe", &headers, body))
        .await;
    assert!(r.body.contains("\"duplicate\":true"), "{}", r.body);
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_queues_nothing() {
    let f = fixture().await;
    let t = now();
    let good = stripe_signed(STRIPE_SECRET, t, PAYMENT_FAILED);
    let tampered = PAYMENT_FAILED.replace("2999", "2998");
    let github_style = vec![(
        "x-hub-signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_string(),
    )];
    let timestamp_changed = vec![(
        "stripe-signature",
        good[0]
            .1
            .replacen(&format!("t={t}"), &format!("t={}", t - 1), 1),
    )];
    let big = "x".repeat(256 * 1024 + 1);
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, String)>, &'a str, u16);
    let cases: Vec<Case> = vec![
        (
            "missing headers",
            "/webhooks/stripe",
            vec![],
            PAYMENT_FAILED,
            401,
        ),
        (
            "wrong secret",
            "/webhooks/stripe",
            stripe_signed("whsec_wrong", t, PAYMENT_FAILED),
            PAYMENT_FAILED,
            401,
        ),
        (
            "one byte changed",
            "/webhooks/stripe",
            good.clone(),
            &tampered,
            401,
        ),
        (
            "timestamp changed",
            "/webhooks/stripe",
            timestamp_changed,
            PAYMENT_FAILED,
            401,
        ),
        (
            "too old",
            "/webhooks/stripe",
            stripe_signed(STRIPE_SECRET, t - 330, PAYMENT_FAILED),
            PAYMENT_FAILED,
            401,
        ),
        (
            "from the future",
            "/webhooks/stripe",
            stripe_signed(STRIPE_SECRET, t + 330, PAYMENT_FAILED),
            PAYMENT_FAILED,
            401,
        ),
        (
            "another scheme's signature",
            "/webhooks/stripe",
            github_style,
            PAYMENT_FAILED,
            401,
        ),
        ("empty body", "/webhooks/stripe", good.clone(), "", 400),
        (
            "body over the limit",
            "/webhooks/stripe",
            good.clone(),
            &big,
            413,
        ),
        (
            "unknown vendor",
            "/webhooks/acme",
            good.clone(),
            PAYMENT_FAILED,
            404,
        ),
        (
            // Refused as a wrong signature is: a prober cannot tell a disabled vendor from a
            // live one, and a cold container answers as a warm one that saw the secret go.
            "vendor without a secret",
            "/webhooks/github",
            good.clone(),
            PAYMENT_FAILED,
            401,
        ),
        (
            "not a webhook path",
            "/admin",
            good.clone(),
            PAYMENT_FAILED,
            404,
        ),
        (
            "traversal",
            "/webhooks/../stripe",
            good.clone(),
            PAYMENT_FAILED,
            404,
        ),
    ];
    for (name, path, headers, body, status) in cases {
        let r = f.service.handle(&request(path, &headers, body)).await;
        assert_eq!(r.status_code, status, "{name}: {}", r.body);
        assert!(
            r.headers["content-type"].starts_with("application/problem+json"),
            "{name}"
        );
    }
    let mut get = request("/webhooks/stripe", &good, PAYMENT_FAILED);
    get.request_context.http.method = "GET".into();
    assert_eq!(f.service.handle(&get).await.status_code, 405);
    let mut b64 = request("/webhooks/stripe", &good, "!!not base64!!");
    b64.is_base64_encoded = true;
    assert_eq!(f.service.handle(&b64).await.status_code, 400);
    assert!(f.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_base64_body_is_verified_after_decoding() {
    use base64::Engine;
    let f = fixture().await;
    let headers = stripe_signed(STRIPE_SECRET, now(), PAYMENT_FAILED);
    let mut e = request(
        "/webhooks/stripe",
        &headers,
        &base64::engine::general_purpose::STANDARD.encode(PAYMENT_FAILED),
    );
    e.is_base64_encoded = true;
    assert_eq!(f.service.handle(&e).await.status_code, 202);
}

#[tokio::test]
async fn slack_url_verification_echoes_the_challenge() {
    let f = fixture().await;
    let body = r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let key = SigningKey::new(Scheme::Slack, "slack-signing-secret").unwrap();
    let headers = signatures::sign(Scheme::Slack, &key, "", now(), body.as_bytes());
    let r = f
        .service
        .handle(&request("/webhooks/slack", &headers, body))
        .await;
    assert_eq!(r.status_code, 200, "{}", r.body);
    assert!(r
        .body
        .contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"));
    assert!(f.queue.sent.lock().unwrap().is_empty());
}

fn shopify_signed(id: &str, topic: &str, body: &str) -> Vec<(&'static str, String)> {
    let key = SigningKey::new(Scheme::Shopify, SHOPIFY_SECRET).unwrap();
    let mut h = signatures::sign(Scheme::Shopify, &key, id, now(), body.as_bytes());
    h.push(("x-shopify-topic", topic.to_string()));
    h
}

fn shopify_fulfillment(updated_at: OffsetDateTime) -> String {
    let at = updated_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r##"{{"id":4242,"order_id":450789469,"name":"#1001.1","email":"bob@example.com","shipment_status":"confirmed","created_at":"2026-01-02T10:00:00-05:00","updated_at":"{at}"}}"##
    )
}

#[tokio::test]
async fn a_shopify_body_resent_under_a_fresh_id_or_topic_is_a_duplicate() {
    let f = fixture().await;
    let body = shopify_fulfillment(OffsetDateTime::now_utc());
    let r = f
        .service
        .handle(&request(
            "/webhooks/shopify",
            &shopify_signed("wh-1", "fulfillments/create", &body),
            &body,
        ))
        .await;
    assert_eq!(r.status_code, 202, "{}", r.body);
    // The vendor's own retry: same id, same body.
    let retry = shopify_signed("wh-1", "fulfillments/create", &body);
    // A replay: the id and topic headers are not signed, so anyone holding the body can set them.
    let fresh_id = shopify_signed("wh-2", "fulfillments/create", &body);
    let relabelled = shopify_signed("wh-3", "orders/fulfilled", &body);
    for (name, headers) in [
        ("retry", retry),
        ("fresh id", fresh_id),
        ("relabelled", relabelled),
    ] {
        let r = f
            .service
            .handle(&request("/webhooks/shopify", &headers, &body))
            .await;
        assert_eq!(r.status_code, 200, "{name}: {}", r.body);
        assert!(r.body.contains("\"duplicate\":true"), "{name}: {}", r.body);
    }
    assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unhandled_topic_does_not_use_up_the_claim_of_a_handled_one_with_the_same_body() {
    let f = fixture().await;
    let body = shopify_fulfillment(OffsetDateTime::now_utc());
    // Shopify sends orders/updated (not mapped) and orders/fulfilled with the same body.
    let send = |id: &'static str, topic: &'static str| {
        let f = &f;
        let body = body.clone();
        async move {
            f.service
                .handle(&request(
                    "/webhooks/shopify",
                    &shopify_signed(id, topic, &body),
                    &body,
                ))
                .await
        }
    };
    let r = send("wh-u", "orders/updated").await;
    assert_eq!(r.status_code, 200, "{}", r.body);
    assert!(r.body.contains("\"handled\":false"), "{}", r.body);
    let r = send("wh-u2", "orders/updated").await;
    assert!(r.body.contains("\"duplicate\":true"), "{}", r.body);
    let r = send("wh-f", "orders/fulfilled").await;
    assert_eq!(
        r.status_code, 202,
        "the shipped event is not a duplicate: {}",
        r.body
    );
    assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
    let r = send("wh-f2", "fulfillments/create").await;
    assert!(r.body.contains("\"duplicate\":true"), "{}", r.body);
    assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_signed_body_older_than_the_dedup_window_is_refused() {
    let f = fixture().await;
    let old = shopify_fulfillment(OffsetDateTime::now_utc() - time::Duration::days(8));
    let r = f
        .service
        .handle(&request(
            "/webhooks/shopify",
            &shopify_signed("wh-old", "fulfillments/create", &old),
            &old,
        ))
        .await;
    assert_eq!(r.status_code, 401, "{}", r.body);
    assert!(r.body.contains("older than"), "{}", r.body);
    // Within the window (a vendor retrying for days) still goes through.
    let recent = shopify_fulfillment(OffsetDateTime::now_utc() - time::Duration::days(6));
    let r = f
        .service
        .handle(&request(
            "/webhooks/shopify",
            &shopify_signed("wh-recent", "fulfillments/create", &recent),
            &recent,
        ))
        .await;
    assert_eq!(r.status_code, 202, "{}", r.body);
    // A time that is not one is a clear 400, not a pass.
    let junk = r#"{"id":1,"order_id":2,"updated_at":"last tuesday"}"#;
    let r = f
        .service
        .handle(&request(
            "/webhooks/shopify",
            &shopify_signed("wh-junk", "fulfillments/create", junk),
            junk,
        ))
        .await;
    assert_eq!(r.status_code, 400, "{}", r.body);
    assert_eq!(f.queue.sent.lock().unwrap().len(), 1);
}

/// A secret source that answers from `Secrets` and counts: the references read, and how many
/// reads were under way at once.
struct Counting<S> {
    inner: S,
    reads: Mutex<Vec<String>>,
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl<S: SecretSource> SecretSource for Counting<S> {
    async fn resolve(
        &self,
        reference: &crate::secrets::SecretRef,
    ) -> Result<Vec<crate::secrets::SecretValue>, crate::secrets::SecretError> {
        self.reads.lock().unwrap().push(reference.to_string());
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        // A round trip: every read started together is under way before any ends.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.inner.resolve(reference).await
    }
}

#[tokio::test]
async fn init_reads_every_vendors_and_channels_secret_once_all_in_one_round() {
    let vendors = config::parse(config::BUNDLED_NAME, config::BUNDLED).unwrap();
    let channels = crate::channels::config::parse(
        crate::channels::config::BUNDLED_NAME,
        crate::channels::config::BUNDLED,
        &|name: &str| {
            (name == "TWILIO_PUBLIC_URL").then(|| "https://hooks.example/channels/twilio".into())
        },
    )
    .unwrap();
    let env = |k: &str| match k {
        "WEBHOOK_SECRET_STRIPE" => Some(STRIPE_SECRET.to_string()),
        "WEBHOOK_SECRET_SHOPIFY" => Some(SHOPIFY_SECRET.to_string()),
        "TELEGRAM_SECRET_TOKEN" => Some("telegram-secret-token".to_string()),
        _ => None,
    };
    let secrets = Arc::new(Counting {
        inner: Secrets::new(env, None),
        reads: Mutex::new(Vec::new()),
        now: Default::default(),
        most: Default::default(),
    });
    let service = WebhookService::new(
        vendors,
        secrets.clone(),
        Arc::new(MemoryClaims::default()),
        Arc::new(Queue::default()),
        WebhookSettings::default(),
    )
    .with_channels(channels);
    service.read_secrets().await;
    let read = secrets.reads.lock().unwrap().clone();
    let vendor_reads = read.iter().filter(|r| r.contains("WEBHOOK_SECRET")).count();
    assert!(vendor_reads >= 5, "{read:?}");
    assert!(read.len() > vendor_reads, "the channels' too: {read:?}");
    let mut once = read.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), read.len(), "each reference once: {read:?}");
    assert_eq!(
        secrets.most.load(Ordering::SeqCst),
        read.len(),
        "vendors' and channels' reads all under way at once"
    );
    // Read again within the TTL: nothing is asked for.
    service.read_secrets().await;
    assert_eq!(secrets.reads.lock().unwrap().len(), read.len());
}
