//! Fulfillment through the real queue: partial batches, the DLQ, and effects applied once however
//! often (and however concurrently) a job is delivered.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::jobs::JobKind;
use switchboard::money::Money;
use switchboard_it::{job_body, proactive_body, unique, Stack};

/// A conversation of a fresh customer, started with a chat turn.
async fn conversation(stack: &Stack, prefix: &str) -> (String, String, String) {
    let customer = Stack::fresh_customer(prefix);
    let token = stack.token(&customer);
    let reply = stack.say(&token, None, "hi").await;
    let id = reply["conversation_id"].as_str().unwrap().to_string();
    (customer, token, id)
}

#[tokio::test]
async fn a_poison_message_reaches_the_dlq_and_the_rest_of_the_batch_completes() {
    let stack = Stack::connect().await;
    let (customer, token, conv) = conversation(&stack, "cust_batch").await;
    let marker = unique("poison");
    let poison = format!("{{\"not\": \"a job\", \"marker\": \"{marker}\"}}");
    let first = job_body(
        &customer,
        &conv,
        JobKind::ProactiveMessage {
            id: "p1".into(),
            text: "first".into(),
        },
    );
    let second = job_body(
        &customer,
        &conv,
        JobKind::ProactiveMessage {
            id: "p2".into(),
            text: "second".into(),
        },
    );
    let poison_group = unique("g-poison");
    let group = unique("g-conv");
    stack
        .send_jobs(&[
            (&poison_group, &poison),
            (&group, &first),
            (&group, &second),
        ])
        .await;

    // The good jobs land, in their group's order, once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let texts = stack.bot_texts(&token, &conv).await;
        if texts.len() >= 3 {
            assert_eq!(texts[1..], ["first", "second"], "{texts:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "jobs did not complete: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The poison one is not a job: fulfillment puts it on the DLQ at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = stack
            .sqs
            .receive_message()
            .queue_url(&stack.dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = got
            .messages()
            .iter()
            .find(|m| m.body().unwrap_or_default().contains(&marker))
        {
            // Visible again at once, for the DLQ command below.
            stack
                .sqs
                .change_message_visibility()
                .queue_url(&stack.dlq_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poison message did not reach the DLQ"
        );
    }
    assert_eq!(stack.bot_texts(&token, &conv).await.len(), 3);

    // The project's DLQ command lists it (without its body) and sends it back.
    let listed = stack.dlq(&["list"]);
    let line = listed
        .lines()
        .find(|l| l.contains("poison message"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("poison message") && !line.contains(&marker),
        "{line}"
    );
    let id = line.split_whitespace().next().unwrap();
    // It says why, and which message it was on the jobs queue; so does the function's log.
    assert!(line.contains("message body is not a job"), "{line}");
    let source = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("source_message_id="))
        .unwrap_or_else(|| panic!("{line}"));
    let log = stack.functions_log();
    assert!(
        log.lines().any(|l| l.contains("job dead-lettered")
            && l.contains(source)
            && l.contains("message body is not a job")),
        "no log line gives the reason for {source}"
    );
    let redriven = stack.dlq(&["redrive", "--id", id]);
    assert!(redriven.contains("1 message(s) sent back"), "{redriven}");
}

#[tokio::test]
async fn a_job_delivered_twice_and_concurrently_refunds_once() {
    let stack = Stack::connect().await;
    let (customer, token, conv) = conversation(&stack, "cust_twice").await;
    // An order of its own: the refund's key is per order, so a stack that ran this before
    // would find it done.
    let order = stack.create_order(&customer, 1999).await;
    let body = job_body(
        &customer,
        &conv,
        JobKind::RefundRequest {
            order_id: order.clone(),
            amount: Money {
                amount_cents: 1999,
                currency: "USD".into(),
            },
        },
    );
    // Twice through the queue (distinct deduplication ids, as after FIFO's 5-minute window) ...
    let group = unique("g");
    stack.send_jobs(&[(&group, &body), (&group, &body)]).await;
    // ... and twice at once straight into the function.
    let event = |id: &str| {
        json!({ "Records": [{
            "messageId": id, "receiptHandle": "direct", "body": body,
            "attributes": { "MessageGroupId": "direct", "ApproximateReceiveCount": "1" },
            "messageAttributes": {}, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:direct", "awsRegion": "us-east-1"
        }]})
    };
    let (e1, e2) = (event("direct-1"), event("direct-2"));
    let (a, b) = tokio::join!(
        stack.invoke("fulfillment", &e1),
        stack.invoke("fulfillment", &e2)
    );
    for out in [&a, &b] {
        assert!(out["batchItemFailures"].is_array(), "{out}");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let texts = stack.bot_texts(&token, &conv).await;
        if texts.iter().any(|t| t.contains("has been issued")) {
            break;
        }
        assert!(Instant::now() < deadline, "no confirmation: {texts:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The last thing the refund starts is its email job: once that has run, everything has.
    let email_key = format!("email:default:refund:{order}");
    let state = stack
        .wait_for_effect("default", &email_key, Duration::from_secs(60))
        .await;
    // A customer the CRM does not know: recorded as failed, nothing sent.
    assert_eq!(state, "failed");
    let (refunds, calls) = stack.refunds_for(&order).await;
    assert_eq!(
        (refunds, calls),
        (1, 1),
        "the payments API saw one refund call"
    );
    let confirmations = stack
        .bot_texts(&token, &conv)
        .await
        .iter()
        .filter(|t| t.contains("has been issued"))
        .count();
    assert_eq!(confirmations, 1);

    let emails = stack.demo_admin("emails").await;
    let sent = emails["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["idempotency_key"] == email_key)
        .count();
    assert_eq!(sent, 0, "{emails}");
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
async fn a_conversations_jobs_keep_their_order_through_retries() {
    let stack = Stack::connect().await;
    let (customer, token, conv) = conversation(&stack, "cust_order").await;
    let order = stack.create_order(&customer, 1500).await;
    // The payments API is down for the refund's first two deliveries: three attempts each,
    // since the connector itself retries a call that carries an idempotency key.
    stack
        .arm_fault(json!({
            "path": "/payments/refunds", "match": { "order_id": order }, "status": 503, "times": 6
        }))
        .await;
    let after = unique("after the refund");
    stack
        .send_jobs(&[
            (&conv, &refund(&customer, &conv, &order, 1500)),
            (&conv, &proactive_body(&customer, &conv, "after", &after)),
        ])
        .await;

    let state = stack
        .wait_for_effect(
            "default",
            &format!("message:default:{conv}:after"),
            Duration::from_secs(90),
        )
        .await;
    assert_eq!(state, "done");
    let texts = stack.bot_texts(&token, &conv).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[1].contains(&format!("order #{order} has been issued")),
        "{texts:?}"
    );
    assert_eq!(texts[2], after, "the later job waited for the retried one");
    assert_eq!(
        stack.refunds_for(&order).await,
        (1, 7),
        "six refused calls over two deliveries, then one refund"
    );
}

#[tokio::test]
async fn killing_fulfillment_mid_batch_loses_nothing_and_repeats_nothing() {
    let stack = Stack::connect_alone().await;
    let mut cases = Vec::new();
    for i in 0..3 {
        let (customer, token, conv) = conversation(&stack, &format!("cust_kill{i}")).await;
        let order = stack.create_order(&customer, 1000 + i).await;
        // Slow enough to be caught mid-call: the call still completes at the payments API
        // after the function is gone, so the retry must not refund again.
        stack
            .arm_fault(json!({
                "path": "/payments/refunds", "match": { "order_id": order }, "delay_ms": 4000
            }))
            .await;
        cases.push((customer, token, conv, order, unique("after the kill")));
    }
    let bodies: Vec<(String, String)> = cases
        .iter()
        .flat_map(|(customer, _, conv, order, after)| {
            [
                (conv.clone(), refund(customer, conv, order, 1000)),
                (
                    conv.clone(),
                    proactive_body(customer, conv, "after-kill", after),
                ),
            ]
        })
        .collect();
    let entries: Vec<(&str, &str)> = bodies
        .iter()
        .map(|(g, b)| (g.as_str(), b.as_str()))
        .collect();
    stack.send_jobs(&entries).await;

    // Every refund is in the middle of its payments call: kill the instance making them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (port, killed_order) = loop {
        let held = stack.inflight().await;
        let ours: Vec<&Value> = held
            .iter()
            .filter(|r| cases.iter().any(|c| r["body"]["order_id"] == c.3.as_str()))
            .collect();
        if ours.len() == cases.len() {
            break (
                ours[0]["peer_port"].as_u64().unwrap() as u16,
                ours[0]["body"]["order_id"].as_str().unwrap().to_string(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "the refunds did not start: {held:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for (_, _, _, order, _) in &cases {
        let key = format!("refund:default:{order}");
        assert_eq!(
            stack.effect_state("default", &key).await.as_deref(),
            Some("in_progress"),
            "{key}"
        );
    }
    stack.kill_caller("fulfillment", port);

    // The batch's invocation never answers; after the queue's visibility timeout its jobs go
    // to another instance (cargo-lambda keeps a pool of them, as Lambda starts a new one).
    for (_, token, conv, order, after) in &cases {
        let state = stack
            .wait_for_effect(
                "default",
                &format!("message:default:{conv}:after-kill"),
                Duration::from_secs(120),
            )
            .await;
        assert_eq!(state, "done");
        assert_eq!(
            stack
                .effect_state("default", &format!("refund:default:{order}"))
                .await
                .as_deref(),
            Some("done")
        );
        let texts = stack.bot_texts(token, conv).await;
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts[1].contains("has been issued"), "{texts:?}");
        assert_eq!(&texts[2], after);
        let (refunds, calls) = stack.refunds_for(order).await;
        assert_eq!(refunds, 1, "one refund for {order} ({calls} calls)");
        if *order == killed_order {
            assert_eq!(calls, 2, "the retry called again, with the same key");
        }
    }
}
