//! What the running functions tell an operator: the chat request line with its request id,
//! conversation, intent, confidence and outcome (and how much of it was awaited I/O), and the
//! CloudWatch Embedded Metric Format documents for turns, connector calls, webhooks and cold
//! starts, read from what the functions wrote to stdout (`functions_log`).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::signatures::{sign, Scheme, SigningKey};
use switchboard_it::{signed, unix_now, Stack};

/// The JSON documents in the functions' log (cargo-lambda's own lines are skipped).
fn documents(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The EMF documents carrying metric `name`.
fn emf<'a>(docs: &'a [Value], name: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| {
            d["_aws"]["CloudWatchMetrics"].as_array().is_some_and(|ds| {
                ds.iter().any(|d| {
                    d["Metrics"]
                        .as_array()
                        .is_some_and(|ms| ms.iter().any(|m| m["Name"] == name))
                })
            })
        })
        .collect()
}

/// The dimension sets a document declares for metric `name`.
fn sets_of(doc: &Value, name: &str) -> Vec<Value> {
    doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["Name"] == name)
        })
        .flat_map(|d| d["Dimensions"].as_array().unwrap().clone())
        .collect()
}

/// Polls the log until `found` holds for its documents (the functions write as they go).
async fn wait_for_log(stack: &Stack, what: &str, found: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let docs = documents(&stack.functions_log());
        if found(&docs) {
            return docs;
        }
        assert!(Instant::now() < deadline, "never logged: {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn chat_line<'a>(docs: &'a [Value], conversation: &str, outcome: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["fields"]["message"] == "chat request"
            && d["fields"]["conversation"] == conversation
            && d["fields"]["outcome"] == outcome
    })
}

#[tokio::test]
async fn a_turn_logs_its_facts_and_emits_its_metrics() {
    let stack = Stack::connect().await;
    let customer = Stack::fresh_customer("obs");
    let token = stack.token(&customer);
    let first = stack.say(&token, None, "where is my order 1002?").await;
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    stack
        .say(&token, Some(&conv), "I want to talk to a person")
        .await;

    let docs = wait_for_log(&stack, "the handoff turn's request line", |docs| {
        chat_line(docs, &conv, "handoff").is_some()
    })
    .await;
    let line = &chat_line(&docs, &conv, "handoff").unwrap()["fields"];
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/v1/messages");
    assert_eq!(line["status"], 200);
    assert_eq!(line["intent"], "human_agent");
    assert!(line["confidence"].as_f64().unwrap() > 0.0, "{line}");
    assert!(!line["request_id"].as_str().unwrap().is_empty(), "{line}");
    let (elapsed, io) = (
        line["elapsed_us"].as_u64().unwrap(),
        line["io_us"].as_u64().unwrap(),
    );
    // A turn reads and writes DynamoDB: some of it was awaited I/O, never more than all of it.
    assert!(io > 0 && io <= elapsed, "{line}");
    // The message's text is not in the line.
    assert!(!line.to_string().contains("talk to a person"), "{line}");

    // The order question called the orders system: a request line for it, and its latency.
    let order_line = docs
        .iter()
        .find(|d| {
            d["fields"]["message"] == "chat request"
                && d["fields"]["conversation"] == conv.as_str()
                && d["fields"]["intent"] == "order_status"
        })
        .unwrap_or_else(|| panic!("no order_status request line for {conv}"));
    assert_eq!(order_line["fields"]["status"], 200);

    // A turn's metrics: latency by intent and rolled up, the exits as 0/1 rates.
    let handoffs: Vec<&Value> = emf(&docs, "Handoff")
        .into_iter()
        .filter(|d| d["Intent"] == "human_agent" && d["Handoff"] == 1)
        .collect();
    let turn = handoffs
        .first()
        .expect("a Handoff = 1 document for human_agent");
    assert_eq!(turn["Fallback"], 0);
    assert!(turn["TurnLatency"].as_f64().unwrap() > 0.0);
    assert!(turn["TurnOverhead"].as_f64().unwrap() >= 0.0);
    assert!(turn["IntentConfidence"].as_f64().unwrap() > 0.0);
    assert!(turn["_aws"]["CloudWatchMetrics"][0]["Namespace"]
        .as_str()
        .unwrap()
        .starts_with("Switchboard"));
    assert_eq!(
        sets_of(turn, "TurnLatency"),
        vec![json!([]), json!(["Intent"])]
    );
    assert_eq!(sets_of(turn, "Handoff"), vec![json!([])]);

    let connector = emf(&docs, "ConnectorLatency");
    let orders = connector
        .iter()
        .find(|d| d["System"] == "orders")
        .expect("a ConnectorLatency document for the orders system");
    assert!(orders["ConnectorLatency"].as_f64().unwrap() > 0.0);
    assert_eq!(orders["ConnectorError"], 0);
    assert_eq!(sets_of(orders, "ConnectorLatency"), vec![json!(["System"])]);
}

#[tokio::test]
async fn webhooks_count_accepts_and_rejects_by_vendor_and_every_function_reports_its_cold_start() {
    let stack = Stack::connect().await;
    let msg_id = format!("msg_obs_{}", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({
        "type": "payment.failed",
        "data": { "customer_email": "nobody.obs@example.com", "amount": 100, "currency": "usd" }
    })
    .to_string();
    let now = unix_now();
    let before = documents(&stack.functions_log()).len();
    let headers = signed(
        Scheme::StandardWebhooks,
        "billing",
        &msg_id,
        now,
        body.as_bytes(),
    );
    let r = stack.webhook("billing", &headers, body.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let forged = sign(
        Scheme::StandardWebhooks,
        &SigningKey::new(Scheme::StandardWebhooks, "whsec_bm90IHRoZSBrZXk=").unwrap(),
        &msg_id,
        now,
        body.as_bytes(),
    );
    let r = stack.webhook("billing", &forged, body.as_bytes()).await;
    assert_eq!(r.status, 401, "{}", r.body);

    let docs = wait_for_log(&stack, "the webhook's accept and reject counts", |docs| {
        let new = &docs[before.min(docs.len())..];
        !emf(new, "WebhookAccepted").is_empty() && !emf(new, "WebhookRejected").is_empty()
    })
    .await;
    let new = &docs[before.min(docs.len())..];
    let accepted = emf(new, "WebhookAccepted");
    let accepted = accepted.iter().find(|d| d["Vendor"] == "billing").unwrap();
    assert_eq!(accepted["WebhookAccepted"], 1);
    // The rollup (no dimension) is what the template's alarm reads.
    assert_eq!(
        sets_of(accepted, "WebhookAccepted"),
        vec![json!([]), json!(["Vendor"])]
    );
    let rejected = emf(new, "WebhookRejected");
    let rejected = rejected.iter().find(|d| d["Vendor"] == "billing").unwrap();
    // The status is a value for Logs Insights, not a dimension.
    assert_eq!(rejected["Status"], "401");
    assert!(sets_of(rejected, "WebhookRejected").contains(&json!([])));

    // Each function started once in this stack (or more, after a test killed one).
    for function in ["chat", "webhook", "fulfillment"] {
        let starts = emf(&docs, "ColdStart");
        let start = starts
            .iter()
            .find(|d| d["Function"] == function)
            .unwrap_or_else(|| panic!("no ColdStart document for {function}"));
        assert_eq!(start["ColdStart"], 1);
        assert!(start["InitDuration"].as_f64().unwrap() > 0.0, "{start}");
    }
}
