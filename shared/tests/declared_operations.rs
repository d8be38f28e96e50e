//! Operations a connector file declares for a system of the company's own (the subscription
//! box example, examples/bots/subscriptions/connectors.toml), against a double of its API on
//! loopback: reads mapped by their declared kinds into the flows' values, writes sent with
//! their idempotency key and retried or refused like the built-in operations.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use switchboard::auth::Principal;
use switchboard::bot::Bot;
use switchboard::connectors::config;
use switchboard::connectors::configured::Configured;
use switchboard::connectors::engine::{http_client, Connectors};
use switchboard::connectors::{ConnectorError, OperationsPort};
use switchboard::conversation::{DialogueState, Slots};
use switchboard::dialogue::Dialogue;
use switchboard::flow::value::{Record, Value};
use switchboard::jobs::JobKind;
use switchboard::money::Money;
use switchboard::secrets::Secrets;
use time::macros::datetime;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const FILE: &str = include_str!("../../examples/bots/subscriptions/connectors.toml");

fn boxes(server: &MockServer) -> Configured {
    let base = format!("{}/boxes", server.uri());
    let config = config::parse("subscriptions.toml", FILE, &|k| {
        (k == "SUBSCRIPTIONS_API_URL").then(|| base.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Configured(Arc::new(Connectors::new(
        config,
        http_client(),
        Arc::new(Secrets::new(|_| None, None)),
        Duration::from_secs(300),
    )))
}

fn inputs(pairs: &[(&str, &str)]) -> Record {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::text(*v)))
        .collect()
}

fn subscription(state: &str) -> Json {
    json!({ "subscription": {
        "id": "sub_1",
        "state": state,
        "plan": { "name": "Veggie box for two", "price": "39.90", "currency": "USD" },
        "next_delivery": "2026-12-10T08:00:00Z",
        "gift": false
    }})
}

#[tokio::test]
async fn a_read_gives_the_flows_its_fields_by_their_declared_kinds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/boxes/customers/cust_a/subscription"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("ACTIVE")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/boxes/customers/cust_b/subscription"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("ON_HOLD")))
        .mount(&server)
        .await;
    let ops = boxes(&server);

    let r = ops
        .read(
            "boxes.get_subscription",
            &inputs(&[("customer_id", "cust_a")]),
        )
        .await
        .unwrap()
        .expect("a subscription");
    let expected = Record::from([
        ("id".to_string(), Value::text("sub_1")),
        ("plan".to_string(), Value::text("Veggie box for two")),
        ("status".to_string(), Value::text("active")),
        (
            "next_box".to_string(),
            Value::Time(datetime!(2026-12-10 08:00 UTC)),
        ),
        (
            "price".to_string(),
            Value::Money(Money {
                amount_cents: 3990,
                currency: "USD".into(),
            }),
        ),
        ("boxes_skipped".to_string(), Value::Number(0)),
        ("gift".to_string(), Value::Bool(false)),
    ]);
    assert_eq!(r, expected);

    // A state the file does not list is one no flow can mean: "unknown", not an error.
    let r = ops
        .read(
            "boxes.get_subscription",
            &inputs(&[("customer_id", "cust_b")]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r["status"], Value::text("unknown"));
}

#[tokio::test]
async fn a_read_of_nothing_is_none_and_a_wrong_input_is_refused_unsent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let ops = boxes(&server);
    let none = ops
        .read("boxes.get_subscription", &inputs(&[("customer_id", "x")]))
        .await
        .unwrap();
    assert_eq!(none, None);

    let e = ops
        .read("boxes.get_subscription", &inputs(&[("customer", "x")]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Misconfigured { .. })
            && e.to_string().contains("no input `customer`"),
        "{e}"
    );
    let e = ops
        .read("boxes.get_subscriptions", &Record::new())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not configured"), "{e}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_write_is_retried_with_its_key_after_a_5xx() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/boxes/subscriptions/sub_1/pauses"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/boxes/subscriptions/sub_1/pauses"))
        .and(header("idempotency-key", "k-1"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "p_1" })))
        .mount(&server)
        .await;
    let ops = boxes(&server);
    ops.write(
        "boxes.pause_box",
        &inputs(&[("subscription_id", "sub_1"), ("reason", "holiday")]),
        "k-1",
    )
    .await
    .expect("the retry succeeds");

    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2);
    for r in &sent {
        assert_eq!(
            r.headers.get("idempotency-key").unwrap().to_str().unwrap(),
            "k-1",
            "every attempt carries the same key"
        );
        assert_eq!(
            r.body_json::<Json>().unwrap(),
            json!({ "reason": "holiday" })
        );
    }
}

#[tokio::test]
async fn a_refused_write_is_not_retried_and_an_optional_input_may_be_left_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/boxes/subscriptions/sub_gone/pauses"))
        .respond_with(ResponseTemplate::new(409))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/boxes/subscriptions/sub_none/pauses"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let ops = boxes(&server);
    let e = ops
        .write(
            "boxes.pause_box",
            &inputs(&[("subscription_id", "sub_gone")]),
            "k-2",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ConnectorError::Rejected { status: 409, .. }),
        "{e}"
    );
    let e = ops
        .write(
            "boxes.pause_box",
            &inputs(&[("subscription_id", "sub_none")]),
            "k-3",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, ConnectorError::Rejected { status: 404, .. }),
        "a write whose target is missing is refused, not done: {e}"
    );
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2, "refusals are not retried");
    assert_eq!(sent[0].body_json::<Json>().unwrap(), json!({}));

    // A read is not a write: it has no key to make a repeat safe.
    let e = ops
        .write(
            "boxes.get_subscription",
            &inputs(&[("customer_id", "c")]),
            "k-4",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not a write"), "{e}");
}

const BUNDLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/bots/subscriptions"
);

/// The subscription bot as a function runs it: its flows read the company's own system
/// through the connectors, for the signed-in customer.
fn subscription_bot(server: &MockServer) -> Dialogue {
    let ops = boxes(server);
    let bot = Bot::load_with(Path::new(BUNDLE), ops.0.declared()).unwrap_or_else(|e| panic!("{e}"));
    Dialogue::new(Arc::new(ops.clone()))
        .with_bot(Arc::new(bot))
        .with_operations(Some(Arc::new(ops)))
}

#[tokio::test]
async fn the_subscription_bot_reads_the_customers_subscription_and_starts_the_skip() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/boxes/customers/ana/subscription"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("ACTIVE")))
        // "When…?" and "skip…": the yes goes on from the record the confirm was asked with.
        .expect(2)
        .mount(&server)
        .await;
    let d = subscription_bot(&server);
    let ana = Principal::customer("t", "ana");
    let now = datetime!(2026-12-03 12:00 UTC);
    let idle = DialogueState::Idle;
    let slots = Slots::default();

    let out = d
        .respond(&ana, &idle, &slots, "when is my next box?", now)
        .await;
    assert_eq!(
        out.replies,
        ["Your Veggie box for two subscription is active: the next box arrives on December 10, and it's $39.90."]
    );

    let out = d
        .respond(&ana, &idle, &slots, "can i skip my next box?", now)
        .await;
    assert_eq!(
        out.replies,
        ["Skip your Veggie box for two box of December 10? You won't be charged $39.90 for it."]
    );
    assert!(out.jobs.is_empty(), "{:?}", out.jobs);
    let out = d.respond(&ana, &out.state, &out.slots, "yes", now).await;
    assert!(
        out.replies[0].starts_with("Done: no box on December 10."),
        "{:?}",
        out.replies
    );
    let [JobKind::ConnectorWrite {
        operation,
        inputs,
        idempotency_key,
    }] = &out.jobs[..]
    else {
        panic!("{:?}", out.jobs)
    };
    assert_eq!(operation, "boxes.pause_box");
    assert_eq!(inputs.get("subscription_id"), Some(&Value::text("sub_1")));
    assert_eq!(idempotency_key, "pause:sub_1:2026-12-10T08:00:00Z");

    // Another customer's turn reads theirs: none here.
    let bob = Principal::customer("t", "bob");
    let out = d
        .respond(&bob, &idle, &slots, "when is my next box?", now)
        .await;
    assert!(
        out.replies[0].starts_with("I can't find a subscription on your account."),
        "{:?}",
        out.replies
    );
}

#[tokio::test]
async fn a_read_by_a_writes_name_is_refused_unsent() {
    let server = MockServer::start().await;
    let e = boxes(&server)
        .read("boxes.pause_box", &inputs(&[("subscription_id", "sub_1")]))
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectorError::Misconfigured { .. }), "{e}");
    assert!(e.to_string().contains("not a read of one record"), "{e}");
    assert!(server.received_requests().await.unwrap().is_empty());
}
