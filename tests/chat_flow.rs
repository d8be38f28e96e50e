//! The first conversation end to end, against the running functions, moto and the demo systems.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_it::{texts, Stack};

#[tokio::test]
async fn late_order_refund_end_to_end() {
    let stack = Stack::connect().await;
    // A customer and orders of this run's own, as Alice's seeded 1001 and 1002 are: the refund,
    // its effect and its email are new on every run against the same stack.
    let customer = stack.create_customer("cust_late").await;
    let on_time = stack
        .create_order_with(
            &customer,
            json!({ "total_cents": 2999, "placed_days_ago": 3, "promised_in_days": 2 }),
        )
        .await;
    let late = stack
        .create_order_with(
            &customer,
            json!({ "total_cents": 4599, "placed_days_ago": 12, "promised_in_days": -4, "carrier": "FedEx" }),
        )
        .await;
    let token = stack.token(&customer);
    let refund_key = format!("refund:default:{late}");

    // Two recent orders: the bot asks which.
    let first = stack.say(&token, None, "where's my order?").await;
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    let ask = &texts(&first)[0];
    assert!(
        ask.contains("Which one")
            && ask.contains(&format!("#{on_time}"))
            && ask.contains(&format!("#{late}")),
        "{ask}"
    );

    // The second (the older): status, carrier, tracking link, lateness and a refund offer.
    let second = stack.say(&token, Some(&conv), "the second one").await;
    let status = &texts(&second)[0];
    for part in [
        format!("#{late}"),
        "FedEx".to_string(),
        format!("https://track.example.com/fedex/1Z{late}"),
        "running late".to_string(),
        "refund of $45.99".to_string(),
    ] {
        assert!(status.contains(&part), "missing {part:?} in {status}");
    }

    // "yes" enqueues the refund and says so.
    let third = stack.say(&token, Some(&conv), "yes").await;
    assert!(
        texts(&third)[0].contains("requested a refund of $45.99"),
        "{third}"
    );

    // Fulfillment refunds through the payments API and appends the confirmation.
    let confirmation = stack
        .wait_for_message(&token, &conv, Duration::from_secs(60), |m| {
            m["text"]
                .as_str()
                .unwrap_or_default()
                .contains("has been issued")
        })
        .await;
    assert_eq!(confirmation["role"], "bot");
    assert_eq!(confirmation["seq"], 7);
    let (refunds, _) = stack.refunds_for(&late).await;
    assert_eq!(refunds, 1);
    // And a confirmation email, once, to the address the CRM has for the customer.
    let key = format!("email:default:refund:{late}");
    let (one, _) = stack.wait_for_email(&key, Duration::from_secs(30)).await;
    assert_eq!(one["to"], format!("{customer}@example.com"));

    // Memory: a state record plus one item per message; the applied effect in its own partition.
    let keys = stack.sort_keys(&conv).await;
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("MSG#")).count(),
        7,
        "{keys:?}"
    );
    assert!(keys.contains(&"STATE".to_string()));
    assert!(
        stack
            .item(&format!("T#default#E#{refund_key}"), "EFFECT")
            .await
            .is_some(),
        "the refund's effect is recorded"
    );
    let state = stack
        .partition("default", &conv)
        .await
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap() == "STATE")
        .unwrap();
    assert_eq!(state["version"].as_n().unwrap(), "4"); // three turns and one async append
    assert!(state.contains_key("expires_at"), "TTL attribute is set");

    // The job's effect is recorded as done.
    let effect = stack
        .wait_for_effect("default", &refund_key, Duration::from_secs(30))
        .await;
    assert_eq!(effect, "done");

    // The same job delivered again (a new dedup id gets past FIFO dedup) changes nothing.
    let job = json!({
        "key": refund_key, "tenant": "default", "conversation_id": conv,
        "customer_id": customer, "type": "refund.request", "order_id": late,
        "amount": {"amount_cents": 4599, "currency": "USD"}
    });
    stack
        .sqs
        .send_message()
        .queue_url(&stack.queue_url)
        .message_body(job.to_string())
        .message_group_id("redelivery-test")
        .message_deduplication_id(ulid::Ulid::new().to_string())
        .send()
        .await
        .unwrap();
    // Other tests' jobs may share the queue: a generous wait for it to empty.
    stack
        .wait_until_drained(&stack.queue_url, Duration::from_secs(90))
        .await;
    let history = stack
        .get(Some(&token), &format!("/v1/conversations/{conv}/messages"))
        .await;
    let confirmations = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"].as_str().unwrap().contains("has been issued"))
        .count();
    assert_eq!(confirmations, 1, "{}", history.body);
    assert_eq!(stack.refunds_for(&late).await.0, 1);
}

#[tokio::test]
async fn a_retried_post_stores_one_turn_and_returns_the_same_reply() {
    let stack = Stack::connect().await;
    let bob = stack.token("cust_bob");
    let body =
        json!({ "text": "where is my order", "client_message_id": ulid::Ulid::new().to_string() });
    let first = stack.post(&bob, body.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    // Bob's only recent order is late: answered directly, with an offer.
    assert!(texts(&first.body)[0].contains("#1003") && texts(&first.body)[0].contains("refund"));
    let again = stack.post(&bob, body).await;
    assert_eq!(again.status, 200);
    assert_eq!(first.body, again.body);
    let conv = first.body["conversation_id"].as_str().unwrap();
    let keys = stack.sort_keys(conv).await;
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("MSG#")).count(),
        2,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("TURN#")).count(),
        1,
        "{keys:?}"
    );
}

#[tokio::test]
async fn concurrent_turns_on_one_conversation_are_all_kept() {
    let stack = std::sync::Arc::new(Stack::connect().await);
    let carol = stack.token("cust_carol");
    let first = stack.say(&carol, None, "hello").await;
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (stack, carol, conv) = (stack.clone(), carol.clone(), conv.clone());
            tokio::spawn(async move {
                stack
                    .post(&carol, json!({ "text": format!("thanks {i}"), "conversation_id": conv, "client_message_id": format!("c-{i}") }))
                    .await
            })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let history = stack
        .get(
            Some(&carol),
            &format!("/v1/conversations/{conv}/messages?limit=100"),
        )
        .await;
    let seqs: Vec<u64> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=14).collect::<Vec<_>>(),
        "no message lost or doubled"
    );
    let customer_texts: Vec<&str> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "customer")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    for i in 0..6 {
        assert!(customer_texts.contains(&format!("thanks {i}").as_str()));
    }
}

#[tokio::test]
async fn conversations_are_remembered_across_sessions() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_returning");
    let token = stack.token(&who);
    let older = stack.say(&token, None, "hi").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let newer = stack.say(&token, None, "hello again").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = stack.get(Some(&token), "/v1/conversations").await;
    assert_eq!(list.status, 200);
    let ids: Vec<&str> = list.body["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![newer.as_str(), older.as_str()]);

    // History pages with after=.
    let page = stack
        .get(
            Some(&token),
            &format!("/v1/conversations/{older}/messages?after=1"),
        )
        .await;
    let msgs: &Vec<Value> = page.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["seq"], 2);
    assert_eq!(page.body["next_after"], 2);
}
