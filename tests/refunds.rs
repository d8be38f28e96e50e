//! Refunds through the real queue, table and demo payments API: paid once however a delivery
//! ends (killed between the payments call and its commit, dead-lettered, redriven after the
//! provider forgot its idempotency key), and not paid at all when the order no longer supports
//! the refund quoted.

use std::time::Duration;

use serde_json::json;
use switchboard::jobs::JobKind;
use switchboard::money::Money;
use switchboard::store::dynamo::DynamoStore;
use switchboard::store::{Begin, EffectLedger, EffectOutcome, StoreError};
use switchboard_it::{job_body, unique, Stack};
use time::OffsetDateTime;

/// A conversation of a fresh customer, started with a chat turn.
async fn conversation(stack: &Stack, prefix: &str) -> (String, String, String) {
    let customer = Stack::fresh_customer(prefix);
    let token = stack.token(&customer);
    let reply = stack.say(&token, None, "hi").await;
    let id = reply["conversation_id"].as_str().unwrap().to_string();
    (customer, token, id)
}

fn refund(customer: &str, conversation: &str, order_id: &str, cents: i64) -> String {
    job_body(
        customer,
        conversation,
        JobKind::RefundRequest {
            order_id: order_id.into(),
            amount: Money {
                amount_cents: cents,
                currency: "USD".into(),
            },
        },
    )
}

#[tokio::test]
async fn a_refund_killed_after_paying_and_redriven_after_its_key_expired_pays_once() {
    let stack = Stack::connect_alone().await;
    let (customer, token, conv) = conversation(&stack, "cust_paid_kill").await;
    let order = stack.create_order(&customer, 2500).await;
    let key = format!("refund:default:{order}");
    // The commit that confirms the refund (and completes its effect) is held: the invocation
    // is killed there, with the refund paid.
    let effect = format!("E#{key}");
    let held = stack
        .arm_aws_fault(json!({
            "target": "DynamoDB_20120810.TransactWriteItems",
            "match": effect, "delay_ms": 60000, "status": 503, "times": 1
        }))
        .await;
    // Every later commit fails too, until the job is out of attempts and dead-lettered.
    let down = stack
        .arm_aws_fault(json!({
            "target": "DynamoDB_20120810.TransactWriteItems", "match": effect, "status": 503
        }))
        .await;
    stack
        .send_jobs(&[(&conv, &refund(&customer, &conv, &order, 2500))])
        .await;
    let port = stack.wait_for_held(&effect, Duration::from_secs(60)).await;
    assert_eq!(
        stack.refunds_for(&order).await,
        (1, 1),
        "paid before the kill"
    );
    stack.kill_caller("fulfillment", port);
    stack.clear_aws_fault(&held).await;

    // After the queue's visibility timeout the job is delivered again, takes the effect over
    // and fails at its commit until it is out of attempts: on the dead-letter queue.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let id = loop {
        let listed = stack.dlq(&["list"]);
        if let Some(line) = listed.lines().find(|l| l.contains(&key)) {
            break line.split_whitespace().next().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not dead-lettered: {listed}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(
        stack.effect_state("default", &key).await.as_deref(),
        Some("in_progress"),
        "set aside, not recorded as failed"
    );

    // A day later: the payments API no longer knows the key; the team redrives the job.
    stack.forget_refund_keys(&order).await;
    stack.clear_aws_fault(&down).await;
    let redriven = stack.dlq(&["redrive", "--id", &id]);
    assert!(redriven.contains("1 message(s) sent back"), "{redriven}");
    let state = stack
        .wait_for_effect("default", &key, Duration::from_secs(90))
        .await;
    assert_eq!(state, "done");

    let (refunds, calls) = stack.refunds_for(&order).await;
    assert_eq!(refunds, 1, "one refund ({calls} calls)");
    assert_eq!(calls, 1, "only the killed delivery called the payments API");
    let confirmations: Vec<String> = stack
        .bot_texts(&token, &conv)
        .await
        .into_iter()
        .filter(|t| t.contains("has been issued"))
        .collect();
    assert_eq!(confirmations.len(), 1, "{confirmations:?}");
    assert!(
        !stack
            .bot_texts(&token, &conv)
            .await
            .iter()
            .any(|t| t.contains("couldn't complete")),
        "no apology for a refund that happened"
    );
}

#[tokio::test]
async fn a_refund_the_order_no_longer_supports_is_refused_and_nothing_is_paid() {
    let stack = Stack::connect().await;
    let (customer, token, conv) = conversation(&stack, "cust_refused").await;
    let someone_else = Stack::fresh_customer("cust_other");
    let cases = [
        // Quoted more than the order cost.
        (stack.create_order(&customer, 1000).await, 5000),
        // Delivered since the offer: no longer late.
        (
            stack.create_order_as(&customer, 1000, "delivered").await,
            1000,
        ),
        // Someone else's order.
        (stack.create_order(&someone_else, 1000).await, 1000),
    ];
    let bodies: Vec<String> = cases
        .iter()
        .map(|(order, cents)| refund(&customer, &conv, order, *cents))
        .collect();
    let entries: Vec<(&str, &str)> = bodies.iter().map(|b| (conv.as_str(), b.as_str())).collect();
    stack.send_jobs(&entries).await;

    for (order, _) in &cases {
        let state = stack
            .wait_for_effect(
                "default",
                &format!("refund:default:{order}"),
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(state, "failed", "{order}");
        assert_eq!(
            stack.refunds_for(order).await,
            (0, 0),
            "{order}: the payments API was not called"
        );
    }
    let said = stack.bot_texts(&token, &conv).await;
    let refusals: Vec<&String> = said
        .iter()
        .filter(|t| t.contains("I haven't refunded anything"))
        .collect();
    assert_eq!(refusals.len(), 3, "{said:?}");
    assert!(refusals[0].contains("doesn't match"), "{said:?}");
    assert!(refusals[1].contains("isn't running late"), "{said:?}");
    assert!(refusals[2].contains("on your account"), "{said:?}");
}

#[tokio::test]
async fn the_dynamo_ledger_keeps_a_receipt_for_its_holder_through_takeover_and_set_aside() {
    let stack = Stack::connect().await;
    let store = DynamoStore::new(
        stack.ddb.clone(),
        stack.table.clone(),
        Duration::from_secs(86_400),
    );
    let key = unique("refund:default:receipt");
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let begin = |at: OffsetDateTime| store.begin("default", &key, Duration::ZERO, at);
    let Begin::Started(first) = begin(past).await.unwrap() else {
        panic!("not started")
    };
    assert_eq!(first.receipt, None);
    // Its lease ran out and another delivery took over: the first keeps nothing.
    let Begin::Started(second) = begin(past + time::Duration::seconds(1)).await.unwrap() else {
        panic!("not taken over")
    };
    assert_eq!(
        store
            .record_receipt("default", &key, &first.token, "stale")
            .await,
        Err(StoreError::DuplicateEffect)
    );
    store
        .record_receipt("default", &key, &second.token, r#"{"id":"re_1"}"#)
        .await
        .unwrap();
    let Begin::Started(third) = begin(past + time::Duration::seconds(2)).await.unwrap() else {
        panic!("not taken over")
    };
    assert_eq!(third.receipt.as_deref(), Some(r#"{"id":"re_1"}"#));
    store
        .set_aside("default", &key, &third.token)
        .await
        .unwrap();
    let Begin::Started(redriven) = begin(OffsetDateTime::now_utc()).await.unwrap() else {
        panic!("not redriven")
    };
    assert_eq!(redriven.attempt, 1);
    assert_eq!(redriven.receipt.as_deref(), Some(r#"{"id":"re_1"}"#));
    store
        .complete("default", &key, &redriven.token, EffectOutcome::Done, &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .record_receipt("default", &key, &redriven.token, "late")
            .await,
        Err(StoreError::DuplicateEffect)
    );
}
