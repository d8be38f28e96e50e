//! Promises kept: "I'll message you here as soon as I have your answer" is answered when the
//! company's system is back, once; a system that stays down past the bound gets one honest
//! message and the offer of a person. (Its own test binary: a system down for a minute opens
//! circuit breakers that other tests running beside it would trip over.)

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_it::{bot_text, is_deferral_text, texts, Stack};

fn is_deferral(m: &Value) -> bool {
    m["text"].as_str().is_some_and(is_deferral_text)
}

/// The history's `working`: whether clients show the bot typing.
async fn working(stack: &Stack, token: &str, conv: &str) -> bool {
    let page = stack
        .get(Some(token), &format!("/v1/conversations/{conv}/messages"))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.body["working"]
        .as_bool()
        .expect("working is always there")
}

async fn replies_to(stack: &Stack, token: &str, conv: &str, seq: u64) -> Vec<Value> {
    let page = stack
        .get(
            Some(token),
            &format!("/v1/conversations/{conv}/messages?limit=100"),
        )
        .await;
    page.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["reply_to"] == seq && m["role"] == "bot" && !is_deferral(m))
        .cloned()
        .collect()
}

/// How long the local stack lets a deferred answer try (DEFERRED_ANSWER_MAX_SECS).
fn bound() -> Duration {
    Duration::from_secs(
        std::env::var("DEFERRED_ANSWER_MAX_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3600),
    )
}

#[tokio::test]
async fn an_order_system_down_for_30_s_is_answered_when_it_is_back_and_once() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_down30");
    let token = stack.token(&who);
    let order = stack.create_order(&who, 2600).await;
    let down_for = Duration::from_secs(30);
    assert!(
        bound() > down_for,
        "the stack gives up before the system is back"
    );
    let since = Instant::now();
    stack
        .arm_fault(json!({
            "path": "/orders", "match": { "customer_id": who }, "status": 503,
            "for_ms": down_for.as_millis() as u64
        }))
        .await;
    let turn = stack.say(&token, None, "where's my order?").await;
    assert!(
        texts(&turn).len() == 1 && is_deferral(&turn["replies"][0]),
        "{turn}"
    );
    let conv = turn["conversation_id"].as_str().unwrap().to_string();
    let asked = turn["message"]["seq"].as_u64().unwrap();
    assert!(
        working(&stack, &token, &conv).await,
        "the answer is on its way: clients show typing"
    );

    let answer = stack
        .wait_for_message(&token, &conv, bound() + Duration::from_secs(30), |m| {
            m["reply_to"] == asked && m["role"] == "bot" && !is_deferral(m)
        })
        .await;
    assert!(
        since.elapsed() >= down_for,
        "answered while the system was down: {answer}"
    );
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.contains(&order) && text.contains("running late"),
        "{text}"
    );
    // Once, and never "try again yourself" in between.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replies = replies_to(&stack, &token, &conv, asked).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        !working(&stack, &token, &conv).await,
        "answered: nobody is typing"
    );
    let page = stack
        .get(Some(&token), &format!("/v1/conversations/{conv}/messages"))
        .await;
    assert!(
        !page.body.to_string().contains("try again in a few minutes"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_system_down_past_the_bound_gets_one_honest_message_and_a_person() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_downlong");
    let token = stack.token(&who);
    // The inventory (its own circuit, apart from the order system's) is down for longer than a
    // deferred answer may wait.
    let down = stack
        .arm_fault(json!({
            "path": "/graphql", "status": 503,
            "for_ms": (bound() + Duration::from_secs(30)).as_millis() as u64
        }))
        .await;
    let turn = stack.say(&token, None, "is the desk lamp in stock?").await;
    assert!(
        texts(&turn).len() == 1 && is_deferral(&turn["replies"][0]),
        "{turn}"
    );
    let conv = turn["conversation_id"].as_str().unwrap().to_string();
    let asked = turn["message"]["seq"].as_u64().unwrap();

    let gave_up = stack
        .wait_for_message(&token, &conv, bound() + Duration::from_secs(60), |m| {
            m["reply_to"] == asked && m["role"] == "bot" && !is_deferral(m)
        })
        .await;
    assert_eq!(gave_up["text"], bot_text("deferred.gave_up"), "{gave_up}");
    // Back up now: the binaries after this one find the inventory working.
    stack.clear_fault(&down).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(replies_to(&stack, &token, &conv, asked).await.len(), 1);
    let key = format!("answer:default:{conv}:{asked}");
    assert_eq!(
        stack.effect_state("default", &key).await.as_deref(),
        Some("failed")
    );

    // "yes" gets the person it was offered.
    let yes = stack.say(&token, Some(&conv), "yes please").await;
    assert!(
        texts(&yes)[0].contains("asked a member of our team"),
        "{yes}"
    );
    let handoff = format!("handoff:default:{conv}:answer_deferred_failed:-");
    let state = stack
        .wait_for_effect("default", &handoff, Duration::from_secs(60))
        .await;
    assert_eq!(state, "done");
}
