//! Operations a connector file declares for a system of the company's own (the subscription
//! box example, examples/bots/subscriptions/connectors.toml), against a double of its API on
//! loopback: reads mapped by their declared kinds into the flows' values, writes sent with
//! their idempotency key and retried or refused like the built-in operations.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use switchboard::connectors::config;
use switchboard::connectors::configured::Configured;
use switchboard::connectors::engine::{http_client, Connectors};
use switchboard::connectors::{ConnectorError, OperationsPort};
use switchboard::flow::value::{Record, Value};
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
