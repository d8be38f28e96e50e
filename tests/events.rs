//! The sample events in events/ work against the local stack, as `cargo lambda invoke
//! --data-file events/…` sends them.

use serde_json::Value;
use switchboard_it::{repo_root, Stack};

fn event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

#[tokio::test]
async fn sample_events_run_in_order() {
    let stack = Stack::connect().await;

    // The chat sample has a client_message_id and no conversation_id: its conversation id is
    // derived, and the history and SQS samples name that same conversation.
    let conv =
        switchboard::conversation::derived_conversation_id("default", "cust_alice", "sample-1");
    let post = stack.invoke("chat", &event("chat-post-message.json")).await;
    assert_eq!(post["statusCode"], 200, "{post}");
    let reply: Value = serde_json::from_str(post["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["conversation_id"], conv.as_str());

    let history = stack.invoke("chat", &event("chat-history.json")).await;
    assert_eq!(history["statusCode"], 200, "{history}");
    let page: Value = serde_json::from_str(history["body"].as_str().unwrap()).unwrap();
    assert!(page["messages"].as_array().unwrap().len() >= 2);

    let batch = event("fulfillment-sqs-batch.json");
    assert!(batch["Records"][0]["body"]
        .as_str()
        .unwrap()
        .contains(&conv));
    let out = stack.invoke("fulfillment", &batch).await;
    // The poison record is not a job: it goes to the dead-letter queue at once, so nothing is
    // reported failed.
    assert_eq!(out["batchItemFailures"], serde_json::json!([]), "{out}");

    // The relay sample carries an outbox item for the same conversation: it reaches the queue,
    // and fulfillment posts its message.
    let relayed = stack
        .invoke("relay", &event("relay-outbox-stream.json"))
        .await;
    assert_eq!(
        relayed["batchItemFailures"],
        serde_json::json!([]),
        "{relayed}"
    );
    let token = stack.token("cust_alice");
    stack
        .wait_for_message(&token, &conv, std::time::Duration::from_secs(60), |m| {
            m["text"]
                .as_str()
                .is_some_and(|t| t.contains("came through the outbox relay"))
        })
        .await;

    // The webhook sample was signed when it was written, so it now shows the replay guard: a
    // signature older than the tolerance is refused (dev/webhook.py sends fresh ones).
    let hook = stack.invoke("webhook", &event("webhook-stripe.json")).await;
    assert_eq!(hook["statusCode"], 401, "{hook}");
    let problem: Value = serde_json::from_str(hook["body"].as_str().unwrap()).unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("outside the accepted window"),
        "{problem}"
    );
}
