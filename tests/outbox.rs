//! Nothing the bot promises is lost: a turn's jobs are written with it (the outbox) and reach
//! fulfillment through the table's stream and the relay, whatever fails in between (SQS, the
//! chat function, the relay), once each; a job that keeps failing goes to the DLQ alone; a
//! conversation whose record TTL removed first is no conversation, never a 5xx.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use switchboard::jobs::JobKind;
use switchboard::money::Money;
use switchboard_it::{job_body, proactive_body, texts, unique, Stack};

/// A fresh customer with one late order of their own, offered its refund.
struct Offered {
    customer: String,
    token: String,
    conv: String,
    order: String,
}

async fn offered(stack: &Stack, prefix: &str) -> Offered {
    let customer = Stack::fresh_customer(prefix);
    let token = stack.token(&customer);
    let order = stack.create_order(&customer, 2100).await;
    let status = stack.say(&token, None, "where's my order?").await;
    assert!(
        texts(&status)[0].contains("Would you like a refund"),
        "{status}"
    );
    let conv = status["conversation_id"].as_str().unwrap().to_string();
    Offered {
        customer,
        token,
        conv,
        order,
    }
}

fn refund_key(order: &str) -> String {
    format!("refund:default:{order}")
}

fn outbox_sk(order: &str) -> String {
    format!("JOB#{}", refund_key(order))
}

/// The refund was issued exactly once, confirmed exactly once, and its outbox item is gone.
async fn refunded_once(stack: &Stack, o: &Offered) {
    let state = stack
        .wait_for_effect("default", &refund_key(&o.order), Duration::from_secs(90))
        .await;
    assert_eq!(state, "done");
    stack
        .wait_for_message(&o.token, &o.conv, Duration::from_secs(30), |m| {
            m["text"].as_str().unwrap_or("").contains("has been issued")
        })
        .await;
    // Called once too: nothing here fails the payments call, so a copy of the job (a relay's
    // resend, a redelivery) is stopped by the queue or the ledger, not by the provider's key.
    let (refunds, calls) = stack.refunds_for(&o.order).await;
    assert_eq!((refunds, calls), (1, 1), "one refund for {}", o.order);
    let confirmations = stack
        .bot_texts(&o.token, &o.conv)
        .await
        .iter()
        .filter(|t| t.contains("has been issued"))
        .count();
    assert_eq!(confirmations, 1);
    let pk = format!("T#default#C#{}", o.conv);
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.item(&pk, &outbox_sk(&o.order)).await.is_some() {
        assert!(
            Instant::now() < deadline,
            "the relayed outbox item was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// "yes" while SQS refuses the job: the customer is answered at once; the relay keeps trying,
/// and once SQS is back the refund happens once.
async fn refund_through_an_sqs_outage(client_message_id: Option<&str>) {
    let stack = Stack::connect().await;
    let o = offered(&stack, "cust_sqsdown").await;
    let outage = stack
        .arm_aws_fault(json!({
            "target": ["AmazonSQS.SendMessageBatch", "AmazonSQS.SendMessage"],
            "match": o.order,
            "status": 503
        }))
        .await;
    let mut body = json!({ "text": "yes", "conversation_id": o.conv });
    if let Some(id) = client_message_id {
        body["client_message_id"] = id.into();
    }
    let yes = stack.post(&o.token, body).await;
    assert_eq!(yes.status, 200, "{}", yes.body);
    assert!(
        texts(&yes.body)[0].contains("requested a refund"),
        "{}",
        yes.body
    );

    // The relay meets the outage and keeps the job: it is not skipped, nor sent anywhere else.
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.aws_fault_hits(&outage).await < 3 {
        assert!(
            Instant::now() < deadline,
            "the relay never tried to send the job"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stack.refunds_for(&o.order).await, (0, 0));
    let pk = format!("T#default#C#{}", o.conv);
    assert!(
        stack.item(&pk, &outbox_sk(&o.order)).await.is_some(),
        "the job waits in the outbox"
    );

    stack.clear_aws_fault(&outage).await;
    refunded_once(&stack, &o).await;
}

#[tokio::test]
async fn a_refund_promised_while_sqs_is_down_is_issued_once_when_it_is_back() {
    refund_through_an_sqs_outage(Some(&unique("yes"))).await;
}

#[tokio::test]
async fn without_a_client_message_id_the_job_still_runs_once_after_an_sqs_outage() {
    refund_through_an_sqs_outage(None).await;
}

#[tokio::test]
async fn the_chat_function_killed_right_after_its_commit_still_refunds_once() {
    let stack = Stack::connect().await;
    let o = offered(&stack, "cust_chatkill").await;
    // moto applies the turn's transaction, then holds its answer: the function is killed with
    // its commit made and its reply never sent.
    let hold = stack
        .arm_aws_fault(json!({
            "target": "DynamoDB_20120810.TransactWriteItems",
            "match": outbox_sk(&o.order),
            "delay_ms": 60000,
            "when": "after",
            "times": 1
        }))
        .await;
    let cmid = unique("yes");
    let post = {
        let (http, url, token) = (
            stack.http.clone(),
            format!("{}/v1/messages", stack.chat_url),
            o.token.clone(),
        );
        let body = json!({ "text": "yes", "conversation_id": o.conv, "client_message_id": cmid });
        tokio::spawn(async move { http.post(url).bearer_auth(token).json(&body).send().await })
    };
    let port = stack
        .wait_for_held(&outbox_sk(&o.order), Duration::from_secs(60))
        .await;
    stack.kill_caller("chat", port);
    stack.clear_aws_fault(&hold).await;

    refunded_once(&stack, &o).await;
    // Whatever the client got (an error, or nothing yet: cargo-lambda never answers for a
    // killed function), it was not the answer.
    if post.is_finished() {
        if let Ok(Ok(resp)) = post.await {
            assert_ne!(resp.status(), 200, "the killed function answered");
        }
    } else {
        post.abort();
    }

    // The client retries as it should: the stored answer, and nothing started again.
    let again = stack
        .post(
            &o.token,
            json!({ "text": "yes", "conversation_id": o.conv, "client_message_id": cmid }),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(texts(&again.body)[0].contains("requested a refund"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.refunds_for(&o.order).await.0, 1);
    let customer_yes = stack
        .partition("default", &o.conv)
        .await
        .iter()
        .filter(|i| i.get("client_message_id").and_then(|v| v.as_s().ok()) == Some(&cmid))
        .count();
    assert_eq!(customer_yes, 1, "the retried message is stored once");
}

#[tokio::test]
async fn the_relay_killed_mid_batch_loses_nothing_and_doubles_nothing() {
    let stack = Stack::connect().await;
    let mut cases = Vec::new();
    for i in 0..3 {
        cases.push(offered(&stack, &format!("cust_relaykill{i}")).await);
    }
    // The relay's batch is sent; deleting the relayed items is held, and the relay is killed
    // there: Lambda (the stand-in) hands the same records to a new instance, which sends them
    // again. The queue's deduplication and the ledger keep each refund single.
    let hold = stack
        .arm_aws_fault(json!({
            "target": "DynamoDB_20120810.BatchWriteItem",
            "match": outbox_sk(&cases[0].order),
            "delay_ms": 60000,
            "times": 1
        }))
        .await;
    let yeses = cases.iter().map(|o| {
        stack.post(
            &o.token,
            json!({ "text": "yes", "conversation_id": o.conv, "client_message_id": unique("yes") }),
        )
    });
    for yes in futures_util::future::join_all(yeses).await {
        assert_eq!(yes.status, 200, "{}", yes.body);
    }
    let port = stack
        .wait_for_held(&outbox_sk(&cases[0].order), Duration::from_secs(60))
        .await;
    stack.kill_caller("relay", port);
    stack.clear_aws_fault(&hold).await;
    for o in &cases {
        refunded_once(&stack, o).await;
    }
}

#[tokio::test]
async fn the_relay_killed_before_its_send_reached_the_queue_loses_nothing() {
    let stack = Stack::connect().await;
    let o = offered(&stack, "cust_relaykill_send").await;
    // The relay's SendMessageBatch with this refund is held before SQS applies it, the relay
    // is killed there, and the held request then fails: nothing reached the queue, and the
    // stand-in hands the records to a new instance.
    let hold = stack
        .arm_aws_fault(json!({
            "target": "AmazonSQS.SendMessageBatch",
            "match": o.order,
            "when": "before",
            "delay_ms": 60000,
            "status": 503,
            "times": 1
        }))
        .await;
    let yes = stack
        .post(
            &o.token,
            json!({ "text": "yes", "conversation_id": o.conv, "client_message_id": unique("yes") }),
        )
        .await;
    assert_eq!(yes.status, 200, "{}", yes.body);
    let port = stack.wait_for_held(&o.order, Duration::from_secs(60)).await;
    stack.kill_caller("relay", port);
    stack.clear_aws_fault(&hold).await;
    refunded_once(&stack, &o).await;
}

fn attribute(m: &aws_sdk_sqs::types::Message, name: &str) -> String {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_job_that_keeps_failing_is_dead_lettered_alone_and_its_group_runs() {
    let stack = Stack::connect().await;
    let customer = Stack::fresh_customer("cust_dlq");
    let token = stack.token(&customer);
    let hi = stack.say(&token, None, "hi").await;
    let conv = hi["conversation_id"].as_str().unwrap().to_string();
    let order = stack.create_order(&customer, 1700).await;
    // The payments API refuses this refund as a system that is down does, every time.
    stack
        .arm_fault(json!({
            "path": "/payments/refunds", "match": { "order_id": order }, "status": 503, "for_ms": 300000
        }))
        .await;
    let notes: Vec<String> = (1..=3).map(|i| unique(&format!("healthy {i}"))).collect();
    let mut bodies = vec![job_body(
        &customer,
        &conv,
        JobKind::RefundRequest {
            order_id: order.clone(),
            amount: Money {
                amount_cents: 1700,
                currency: "USD".into(),
            },
        },
    )];
    bodies.extend(
        notes
            .iter()
            .enumerate()
            .map(|(i, n)| proactive_body(&customer, &conv, &format!("n{i}"), n)),
    );
    let group = format!("default:{conv}");
    let entries: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| (group.as_str(), b.as_str()))
        .collect();
    stack.send_jobs(&entries).await;

    // The three behind it run, in order, once the failing one is out of the way.
    for i in 0..3 {
        let state = stack
            .wait_for_effect(
                "default",
                &format!("message:default:{conv}:n{i}"),
                Duration::from_secs(120),
            )
            .await;
        assert_eq!(state, "done");
    }
    let said = stack.bot_texts(&token, &conv).await;
    assert_eq!(said[1..], notes[..], "{said:?}");

    // Only the failing job is on the DLQ, after its own attempts, saying why.
    let max_attempts: String = std::env::var("JOB_MAX_ATTEMPTS").unwrap_or_else(|_| "8".into());
    let dead = stack.peek(&stack.dlq_url, &order).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(attribute(&dead[0], "attempts"), max_attempts);
    assert!(
        attribute(&dead[0], "reason").contains("payments"),
        "{dead:?}"
    );
    // (The three are done, above: a job is dead-lettered only unfinished.)
    let (refunds, calls) = stack.refunds_for(&order).await;
    assert_eq!(refunds, 0);
    assert!(calls >= max_attempts.parse::<usize>().unwrap(), "{calls}");
    // Set aside for a redrive, not recorded as failed.
    assert_eq!(
        stack
            .effect_state("default", &refund_key(&order))
            .await
            .as_deref(),
        Some("in_progress")
    );
}

#[tokio::test]
async fn a_conversation_whose_record_expired_first_is_no_conversation_and_never_a_5xx() {
    let stack = Stack::connect().await;
    let customer = Stack::fresh_customer("cust_ttl");
    let token = stack.token(&customer);
    let first_id = unique("first");
    let first = stack
        .post(
            &token,
            json!({ "text": "hi", "client_message_id": first_id }),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let conv = first.body["conversation_id"].as_str().unwrap().to_string();
    stack.say(&token, Some(&conv), "thanks").await;

    // TTL's order: everything in the partition has expired (DynamoDB keeps expired items
    // readable until it gets to them), and the record went first.
    let pk = format!("T#default#C#{conv}");
    let past = (switchboard_it::unix_now() - 60).to_string();
    for item in stack.partition("default", &conv).await {
        stack
            .ddb
            .update_item()
            .table_name(&stack.table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("SET expires_at = :past")
            .expression_attribute_values(":past", AttributeValue::N(past.clone()))
            .send()
            .await
            .unwrap();
    }
    stack
        .ddb
        .delete_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(pk.clone()))
        .key("sk", AttributeValue::S("STATE".into()))
        .send()
        .await
        .unwrap();

    let history = stack
        .get(Some(&token), &format!("/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(history.status, 404, "{}", history.body);
    let named = stack
        .post(&token, json!({ "text": "hello?", "conversation_id": conv }))
        .await;
    assert_eq!(named.status, 404, "{}", named.body);
    let listed = stack.get(Some(&token), "/v1/conversations").await;
    assert_eq!(listed.status, 200);

    // A job for it completes: it does not fail for good, and does not bring the record back.
    let note = unique("late note");
    let body = proactive_body(&customer, &conv, "late", &note);
    stack
        .send_jobs(&[(&format!("default:{conv}"), &body)])
        .await;
    let state = stack
        .wait_for_effect(
            "default",
            &format!("message:default:{conv}:late"),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(state, "done");
    assert!(stack.item(&pk, "STATE").await.is_none());

    // The customer's first message again (its id derives the same conversation): a fresh
    // conversation over the expired leftovers.
    let again = stack
        .post(
            &token,
            json!({ "text": "hi", "client_message_id": first_id }),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["conversation_id"], conv.as_str());
    assert_eq!(again.body["message"]["seq"], 1);
    let history = stack
        .get(Some(&token), &format!("/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(history.status, 200);
    let seqs: Vec<u64> = history.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "only the new conversation's messages"
    );
    assert!(!history.body.to_string().contains(&note));
}

#[tokio::test]
async fn a_refund_that_failed_for_good_is_reported_as_failed_when_asked_again() {
    let stack = Stack::connect().await;
    let o = offered(&stack, "cust_refused").await;
    // The payments API refuses it (a 4xx): a permanent failure, told and handed to the team.
    stack
        .arm_fault(json!({
            "path": "/payments/refunds", "match": { "order_id": o.order }, "status": 422, "times": 3
        }))
        .await;
    let yes = stack.say(&o.token, Some(&o.conv), "yes").await;
    assert!(texts(&yes)[0].contains("requested a refund"), "{yes}");
    let state = stack
        .wait_for_effect("default", &refund_key(&o.order), Duration::from_secs(60))
        .await;
    assert_eq!(state, "failed");
    stack
        .wait_for_message(&o.token, &o.conv, Duration::from_secs(30), |m| {
            m["text"]
                .as_str()
                .unwrap_or("")
                .contains("couldn't complete your refund")
        })
        .await;

    for (conv, text) in [
        (Some(o.conv.as_str()), "I want a refund for that order"),
        (None, "where's my order?"),
    ] {
        // The ledger read is bounded by the turn's budget: on a loaded local stack it can miss
        // it, and the bot says it cannot see the refund and to ask again, as a customer would.
        let mut reply = String::new();
        for _ in 0..5 {
            let asked = stack.say(&o.token, conv, text).await;
            reply = texts(&asked).join("\n");
            if !reply.contains("ask again in a few minutes") {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(reply.contains("couldn't be completed"), "{reply}");
        assert!(reply.contains("our team has it"), "{reply}");
        assert!(
            !reply.contains("refund you asked for is on its way"),
            "{reply}"
        );
        assert!(!reply.contains("Would you like a refund"), "{reply}");
    }
    assert_eq!(stack.refunds_for(&o.order).await.0, 0);
    let _ = &o.customer;
}

/// Posts until answered, retrying with the same client message id as a client should on a
/// contended conversation (409), a rate limit (429) or an unavailable dependency (503).
async fn post_until_answered(stack: &Stack, token: &str, body: Value) -> Value {
    for _ in 0..20 {
        let r = stack.post(token, body.clone()).await;
        match r.status {
            200 => return r.body,
            409 | 429 | 503 => tokio::time::sleep(Duration::from_millis(300)).await,
            other => panic!("{other}: {}", r.body),
        }
    }
    panic!("never answered: {body}");
}

#[tokio::test]
async fn fifty_concurrent_turns_on_ten_conversations_run_every_job_once_in_order() {
    let stack = Stack::connect().await;
    let mut people = Vec::new();
    for i in 0..10 {
        let token = stack.token(&Stack::fresh_customer(&format!("cust_many{i}")));
        let hi = stack.say(&token, None, "hi").await;
        let conv = hi["conversation_id"].as_str().unwrap().to_string();
        people.push((token, conv));
    }
    // The inventory answers slowly for a while: every stock question misses the turn's budget
    // and becomes an answer.deferred job of its conversation. (The inventory, not the order
    // system: lookups cut by a turn's budget count against its circuit breaker, and the other
    // tests here ask about orders.)
    let slow_for = Duration::from_secs(20);
    stack
        .arm_fault(
            json!({ "path": "/graphql", "delay_ms": 400, "for_ms": slow_for.as_millis() as u64 }),
        )
        .await;
    let slow_since = Instant::now();
    let stack_ref = &stack;
    let turns = people.iter().flat_map(|(token, conv)| {
        (0..5).map(move |_| {
            post_until_answered(
                stack_ref,
                token,
                json!({ "text": "is the desk lamp in stock?", "conversation_id": conv, "client_message_id": unique("m") }),
            )
        })
    });
    let answered = futures_util::future::join_all(turns).await;
    assert_eq!(answered.len(), 50);

    for (token, conv) in &people {
        // Every customer message gets exactly one answer, and the answers come in the order of
        // the messages they answer.
        let deadline = Instant::now() + Duration::from_secs(120);
        let (asked, answers) = loop {
            let page = stack
                .get(
                    Some(token),
                    &format!("/v1/conversations/{conv}/messages?limit=100"),
                )
                .await;
            let messages = page.body["messages"].as_array().unwrap().clone();
            let asked: Vec<u64> = messages
                .iter()
                .filter(|m| m["role"] == "customer" && m["seq"].as_u64() != Some(1))
                .map(|m| m["seq"].as_u64().unwrap())
                .collect();
            let answers: Vec<u64> = messages
                .iter()
                .filter(|m| {
                    m["role"] == "bot"
                        && m["reply_to"].is_u64()
                        && m["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("Desk Lamp is in stock"))
                })
                .map(|m| m["reply_to"].as_u64().unwrap())
                .collect();
            if answers.len() >= asked.len() && asked.len() == 5 {
                break (asked, answers);
            }
            assert!(
                Instant::now() < deadline,
                "{conv}: {} of {} answered",
                answers.len(),
                asked.len()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(answers, asked, "{conv}: once each, in order");
    }
    // Leave the chat function's inventory circuits closed for the tests after these (a circuit
    // a slow system opened lets a call through 30 s later, and that call closes it).
    let settled = slow_since + slow_for + Duration::from_secs(31);
    tokio::time::sleep(settled.saturating_duration_since(Instant::now())).await;
}
