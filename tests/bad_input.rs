//! Bad input at every entry point: the right status, an RFC 9457 body, nothing written, no panic.

use serde_json::{json, Value};
use switchboard_it::Stack;

const PROBLEM: &str = "application/problem+json";

fn assert_problem(r: &switchboard_it::Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.content_type, PROBLEM);
    assert_eq!(r.body["status"], status);
    assert!(
        r.body["title"].is_string() && r.body["detail"].is_string() && r.body["type"].is_string()
    );
}

/// The conversation a POST without `conversation_id` would have created.
fn would_create(customer: &str, cmid: &str) -> String {
    switchboard::conversation::derived_conversation_id("default", customer, cmid)
}

#[tokio::test]
async fn bad_tokens_get_401_and_nothing_is_written() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_intruder");
    let forged =
        switchboard::auth::dev_token(b"not-the-stack-key-not-the-stack-key", &who, None, 600);
    let body =
        |cmid: &str| json!({ "text": "where is my order", "client_message_id": cmid }).to_string();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("expired", Some(stack.expired_token(&who))),
        ("forged", Some(forged)),
        ("garbage", Some("not.a.jwt".into())),
    ];
    for (name, token) in cases {
        let cmid = format!("bad-token-{name}");
        let r = stack
            .post_raw(token.as_deref(), "application/json", body(&cmid))
            .await;
        assert_problem(&r, 401);
        assert!(
            stack
                .partition("default", &would_create(&who, &cmid))
                .await
                .is_empty(),
            "{name}: nothing written"
        );
    }
    let r = stack.get(None, "/v1/conversations").await;
    assert_problem(&r, 401);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_rejected_and_nothing_is_written() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_sloppy");
    let token = stack.token(&who);

    let r = stack
        .post_raw(Some(&token), "application/json", "{\"text\": ")
        .await;
    assert_problem(&r, 400);
    let r = stack
        .post(&token, json!({ "txt": "typo in the field name" }))
        .await;
    assert_problem(&r, 400);
    let r = stack
        .post(
            &token,
            json!({ "text": "   ", "client_message_id": "empty" }),
        )
        .await;
    assert_problem(&r, 400);
    let r = stack
        .post(
            &token,
            json!({ "text": "x".repeat(2_001), "client_message_id": "long" }),
        )
        .await;
    assert_problem(&r, 413);
    let r = stack
        .post_raw(
            Some(&token),
            "application/json",
            format!("{{\"text\":\"{}\"}}", "y".repeat(20_000)),
        )
        .await;
    assert_problem(&r, 413);
    let r = stack.post_raw(Some(&token), "text/plain", "hello").await;
    assert_problem(&r, 415);
    let r = stack
        .post(
            &token,
            json!({ "text": "hi", "conversation_id": "../../etc" }),
        )
        .await;
    assert_problem(&r, 400);

    for cmid in ["empty", "long"] {
        assert!(stack
            .partition("default", &would_create(&who, cmid))
            .await
            .is_empty());
    }
    let list = stack.get(Some(&token), "/v1/conversations").await;
    assert_eq!(
        list.body["conversations"],
        json!([]),
        "no conversation was created"
    );
}

#[tokio::test]
async fn another_customers_conversation_is_404_and_untouched() {
    let stack = Stack::connect().await;
    let owner = stack.token(&Stack::fresh_customer("cust_owner"));
    let other = stack.token(&Stack::fresh_customer("cust_other"));
    let conv = stack.say(&owner, None, "hi").await["conversation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = stack.partition("default", &conv).await.len();

    let r = stack
        .post(&other, json!({ "text": "hello?", "conversation_id": conv }))
        .await;
    assert_problem(&r, 404);
    let r = stack
        .get(Some(&other), &format!("/v1/conversations/{conv}/messages"))
        .await;
    assert_problem(&r, 404);
    let missing = stack
        .get(
            Some(&other),
            "/v1/conversations/01HZZZZZZZZZZZZZZZZZZZZZZZ/messages",
        )
        .await;
    // Someone else's conversation and a missing one are indistinguishable.
    assert_eq!(r.body["detail"], missing.body["detail"]);
    assert_eq!(stack.partition("default", &conv).await.len(), before);
}

#[tokio::test]
async fn bad_routes_and_parameters() {
    let stack = Stack::connect().await;
    let token = stack.token(&Stack::fresh_customer("cust_lost"));
    assert_problem(&stack.get(Some(&token), "/v1/nowhere").await, 404);
    assert_problem(&stack.get(Some(&token), "/v1/messages").await, 405);
    assert_problem(
        &stack
            .get(
                Some(&token),
                "/v1/conversations/01HZZZZZZZZZZZZZZZZZZZZZZZ/messages?after=x",
            )
            .await,
        400,
    );
    assert_problem(
        &stack.get(Some(&token), "/v1/conversations?limit=0").await,
        400,
    );
}

#[tokio::test]
async fn invalid_base64_bodies_are_400_not_a_crash() {
    let stack = Stack::connect().await;
    let token = stack.token("cust_alice");
    let event = |path: &str| {
        json!({
            "version": "2.0", "rawPath": path, "rawQueryString": "",
            "headers": { "authorization": format!("Bearer {token}"), "content-type": "application/json" },
            "requestContext": { "requestId": "bad-b64", "http": { "method": "POST", "path": path } },
            "isBase64Encoded": true, "body": "%%% not base64 %%%"
        })
    };
    for (function, path) in [("chat", "/v1/messages"), ("webhook", "/webhooks/stripe")] {
        let out: Value = stack.invoke(function, &event(path)).await;
        assert_eq!(out["statusCode"], 400, "{function}: {out}");
        let problem: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
        assert_eq!(problem["status"], 400);
    }
    // The function survived: it still answers.
    assert_eq!(stack.get(None, "/v1/conversations").await.status, 401);
}
