//! A company's own operations (the subscription box system of examples/bots/subscriptions,
//! served by the demo systems under /boxes): read by name through the connector engine, and
//! written by `connector.write` jobs through the real jobs queue and fulfillment, exactly once
//! per key however often a job is delivered or a request is retried.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};
use switchboard::connectors::config;
use switchboard::connectors::engine::{http_client, Connectors};
use switchboard::flow::value::{Record, Value};
use switchboard::jobs::{connector_write_key, JobKind};
use switchboard::money::Money;
use switchboard::secrets::Secrets;
use switchboard_it::{job_body, unique, Stack};

const PAUSE: &str = "boxes.pause_box";

/// The connectors the functions load (SWITCHBOARD_CONNECTORS_FILE, set by dev/stack.py), in
/// this process.
async fn connectors() -> Connectors {
    let spec =
        std::env::var("SWITCHBOARD_CONNECTORS_FILE").expect("the stack names the connector files");
    let config = config::load(Some(&spec), &|k| std::env::var(k).ok(), None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    Connectors::new(
        config,
        http_client(),
        std::sync::Arc::new(Secrets::new(|_| None, None)),
        Duration::from_secs(300),
    )
}

fn pause(sub: &str, key: &str) -> JobKind {
    JobKind::ConnectorWrite {
        operation: PAUSE.into(),
        inputs: Record::from([
            ("subscription_id".to_string(), Value::text(sub)),
            ("reason".to_string(), Value::text("travelling")),
        ]),
        idempotency_key: key.into(),
    }
}

/// A conversation of `customer`, started with a chat turn; returns (token, conversation id).
async fn conversation(stack: &Stack, customer: &str) -> (String, String) {
    let token = stack.token(customer);
    let reply = stack.say(&token, None, "hi").await;
    (
        token,
        reply["conversation_id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_declared_read_gives_the_subscription_as_the_flows_see_it() {
    let stack = Stack::connect().await;
    let (customer, id) = stack.create_subscription("ACTIVE").await;
    let c = connectors().await;
    let inputs = |who: &str| Record::from([("customer_id".to_string(), Value::text(who))]);

    let r = c
        .call_record("boxes.get_subscription", &inputs(&customer))
        .await
        .unwrap()
        .expect("the customer's subscription");
    assert_eq!(r["id"], Value::text(&id));
    assert_eq!(r["status"], Value::text("active"));
    assert_eq!(r["plan"], Value::text("Veggie box for two"));
    assert_eq!(
        r["price"],
        Value::Money(Money {
            amount_cents: 3990,
            currency: "USD".into()
        })
    );
    assert!(matches!(r["next_box"], Value::Time(_)), "{r:?}");
    assert_eq!(r["boxes_skipped"], Value::Number(0));
    assert_eq!(r["gift"], Value::Bool(false));

    let none = c
        .call_record("boxes.get_subscription", &inputs("cust_nobody_here"))
        .await
        .unwrap();
    assert_eq!(none, None);
    let cancelled = c
        .call_record("boxes.get_subscription", &inputs("cust_carol"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelled["status"], Value::text("cancelled"));
    assert!(!cancelled.contains_key("next_box"), "{cancelled:?}");
}

#[tokio::test]
async fn a_write_job_delivered_twice_changes_the_subscription_once() {
    let stack = Stack::connect().await;
    let (customer, sub) = stack.create_subscription("ACTIVE").await;
    let (_, conv) = conversation(&stack, &customer).await;
    let key = format!("pause:{sub}");
    let body = job_body(&customer, &conv, pause(&sub, &key));
    let group = unique("g");
    // Twice through the queue, as after FIFO's deduplication window.
    stack.send_jobs(&[(&group, &body), (&group, &body)]).await;

    let job_key = connector_write_key("default", PAUSE, &key);
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(60))
        .await;
    assert_eq!(state, "done");
    stack
        .wait_until_drained(&stack.queue_url, Duration::from_secs(60))
        .await;
    let (calls, changes, s) = stack.boxes_seen(&job_key, &sub).await;
    assert_eq!(
        calls, 1,
        "the ledger stops the second delivery before the system"
    );
    assert_eq!(changes, 1);
    assert_eq!(s["skipped"], 1, "{s}");
    let v = stack.demo_admin("boxes").await;
    let call = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["idempotency_key"] == job_key.as_str())
        .cloned()
        .unwrap();
    assert_eq!(call["body"], json!({ "reason": "travelling" }));
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_is_sent_again_with_its_key_and_made_once() {
    let stack = Stack::connect().await;
    let (customer, sub) = stack.create_subscription("ACTIVE").await;
    let (_, conv) = conversation(&stack, &customer).await;
    // The first request is held past the operation's timeout (1.5 s), then made: its answer
    // never reaches fulfillment, which sends it again.
    let fault = stack
        .arm_fault(json!({
            "path": format!("/boxes/subscriptions/{sub}/pauses"),
            "delay_ms": 3000,
            "times": 1
        }))
        .await;
    let key = format!("pause:{sub}");
    stack
        .send_jobs(&[(&unique("g"), &job_body(&customer, &conv, pause(&sub, &key)))])
        .await;
    let job_key = connector_write_key("default", PAUSE, &key);
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(60))
        .await;
    assert_eq!(state, "done");
    // The held request lands after the retry; it must find the change made.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (calls, changes, s) = loop {
        let (calls, changes, s) = stack.boxes_seen(&job_key, &sub).await;
        let held = stack.inflight().await;
        if !held
            .iter()
            .any(|r| r["path"].as_str().is_some_and(|p| p.contains(&sub)))
        {
            break (calls, changes, s);
        }
        assert!(Instant::now() < deadline, "the held request never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stack.clear_fault(&fault).await;
    assert!(calls >= 2, "sent again after the timeout ({calls} calls)");
    assert_eq!(changes, 1, "one change for the key");
    assert_eq!(s["skipped"], 1, "{s}");
}

#[tokio::test]
async fn a_refused_write_fails_tells_the_customer_and_hands_off() {
    let stack = Stack::connect().await;
    let (customer, sub) = stack.create_subscription("CANCELLED").await;
    let (token, conv) = conversation(&stack, &customer).await;
    let key = format!("pause:{sub}");
    stack
        .send_jobs(&[(&unique("g"), &job_body(&customer, &conv, pause(&sub, &key)))])
        .await;
    let job_key = connector_write_key("default", PAUSE, &key);
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(60))
        .await;
    assert_eq!(state, "failed");
    let texts = stack.bot_texts(&token, &conv).await;
    assert!(
        texts.last().unwrap().contains("an agent will follow up"),
        "{texts:?}"
    );
    let (calls, changes, s) = stack.boxes_seen(&job_key, &sub).await;
    assert_eq!((calls, changes), (1, 0), "a refusal is not retried");
    assert_eq!(s["state"], "CANCELLED");
    // The person promised is told: the handoff email reaches the team's inbox.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let emails = stack.demo_admin("emails").await;
        let told: BTreeMap<String, Json> = emails["sent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["text"].as_str().is_some_and(|t| t.contains(&conv)))
            .map(|e| (e["id"].as_str().unwrap().to_string(), e.clone()))
            .collect();
        if let Some(e) = told.values().next() {
            assert!(
                e["text"]
                    .as_str()
                    .unwrap()
                    .contains("connector_write_failed"),
                "{e}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no handoff email for {conv}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_write_whose_caller_crashed_mid_call_is_sent_again_with_the_same_key_and_made_once() {
    let stack = Stack::connect_alone().await;
    let (customer, sub) = stack.create_subscription("ACTIVE").await;
    let (_, conv) = conversation(&stack, &customer).await;
    // Held within the operation's timeout, so the fulfillment instance is still waiting on it
    // when it is killed; the system then makes the change with nobody to hear of it.
    let path = format!("/boxes/subscriptions/{sub}/pauses");
    let fault = stack
        .arm_fault(json!({ "path": path, "delay_ms": 1200, "times": 1 }))
        .await;
    let key = format!("pause:{sub}");
    stack
        .send_jobs(&[(&unique("g"), &job_body(&customer, &conv, pause(&sub, &key)))])
        .await;
    let port = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let held = stack.inflight().await;
            if let Some(r) = held.iter().find(|r| r["path"] == path.as_str()) {
                break r["peer_port"].as_u64().unwrap() as u16;
            }
            assert!(Instant::now() < deadline, "the write was never sent");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    stack.kill_caller("fulfillment", port);
    stack.clear_fault(&fault).await;

    // After the queue's visibility timeout the job comes back, takes the effect over (its lease
    // ended with the dead instance) and sends the same request: the system answers it as the
    // change already made.
    let job_key = connector_write_key("default", PAUSE, &key);
    let state = stack
        .wait_for_effect("default", &job_key, Duration::from_secs(120))
        .await;
    assert_eq!(state, "done");
    let (calls, changes, s) = stack.boxes_seen(&job_key, &sub).await;
    assert_eq!(calls, 2, "sent again after the crash, with the same key");
    assert_eq!(changes, 1);
    assert_eq!(s["skipped"], 1, "{s}");
}
