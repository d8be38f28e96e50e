//! The handoff state machine against the local stack: the agents' queue (`GET /v1/handoffs`,
//! a sparse index, oldest first, per tenant), take over / release / resolve and what each does
//! to the conversation, and what a customer never reads (internal messages).
//!
//! The queue tests use a tenant of their own, so conversations other tests hand off meanwhile
//! are not in their lists.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use switchboard::auth::Role;
use switchboard_it::{bot_text, job_body, unique, Reply, Stack};

const PROBLEM: &str = "application/problem+json";
const ASK_FOR_A_PERSON: &str = "I want to talk to a person";

fn assert_problem(r: &Reply, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.content_type, PROBLEM, "{what}");
    assert_eq!(r.body["status"], status, "{what}");
    assert!(r.body["detail"].is_string(), "{what}: {}", r.body);
}

/// A tenant no other test (or earlier run) uses.
fn fresh_tenant() -> String {
    unique("handoffs")
}

/// An agent's move: `takeover`, `release` or `resolve`.
async fn act(stack: &Stack, token: &str, conversation: &str, action: &str) -> Reply {
    let path = format!("/v1/conversations/{conversation}/{action}");
    stack.call("POST", Some(token), &path, None).await
}

/// The history page as `token` reads it.
async fn page(stack: &Stack, token: &str, conversation: &str) -> Value {
    let r = stack
        .get(
            Some(token),
            &format!("/v1/conversations/{conversation}/messages?limit=100"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn conversation_id(reply: &Value) -> String {
    reply["conversation_id"].as_str().unwrap().to_string()
}

/// The queue's conversation ids once they are `want` (the index may lag its records by a
/// moment in AWS; locally it does not), and the whole answer.
async fn queue_until(stack: &Stack, token: &str, query: &str, want: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = stack
            .get(Some(token), &format!("/v1/handoffs{query}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let ids: Vec<&str> = r.body["handoffs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["conversation_id"].as_str().unwrap())
            .collect();
        if ids == want {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "queue {query} is {ids:?}, not {want:?}: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_queue_lists_a_tenants_waiting_conversations_oldest_first() {
    let stack = Stack::connect().await;
    let tenant = fresh_tenant();
    let mut asked = Vec::new();
    for who in ["cust_first", "cust_second", "cust_third"] {
        let token = stack.token_as(who, Some(&tenant), Role::Customer);
        let reply = stack.say(&token, None, ASK_FOR_A_PERSON).await;
        asked.push((who, conversation_id(&reply)));
        // Distinct milliseconds: the queue's order is when each began waiting.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One the bot still has, and one of another tenant: neither is listed.
    let chatty = stack.token_as("cust_chatty", Some(&tenant), Role::Customer);
    stack.say(&chatty, None, "hi").await;
    let other_tenant = fresh_tenant();
    let elsewhere = stack.token_as("cust_elsewhere", Some(&other_tenant), Role::Customer);
    let theirs = conversation_id(&stack.say(&elsewhere, None, ASK_FOR_A_PERSON).await);

    let agent = stack.token_as("agent_ann", Some(&tenant), Role::Agent);
    let ids: Vec<&str> = asked.iter().map(|(_, c)| c.as_str()).collect();
    let queue = queue_until(&stack, &agent, "", &ids).await;
    for (line, (who, conv)) in queue["handoffs"].as_array().unwrap().iter().zip(&asked) {
        assert_eq!(line["conversation_id"], conv.as_str());
        assert_eq!(line["customer_id"], *who);
        assert_eq!(line["state"], "waiting");
        assert_eq!(line["reason"], "human_agent");
        assert_eq!(line["language"], "en");
        assert!(line["waited_secs"].as_u64().is_some(), "{line}");
        assert!(line["since"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(line.get("agent_id").is_none(), "{line}");
    }
    queue_until(&stack, &agent, "?state=waiting&limit=2", &ids[..2]).await;
    let outsider = stack.token_as("agent_out", Some(&other_tenant), Role::Agent);
    queue_until(&stack, &outsider, "", &[theirs.as_str()]).await;

    // Taken over: in the with_agent list with its agent and its first wait, out of waiting.
    let r = act(&stack, &agent, ids[1], "takeover").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handoff"], "with_agent");
    let held = queue_until(&stack, &agent, "?state=with_agent", &[ids[1]]).await;
    assert_eq!(held["handoffs"][0]["agent_id"], "agent_ann");
    assert_eq!(held["handoffs"][0]["since"], queue["handoffs"][1]["since"]);
    // Resolved and released ones are in neither list.
    assert_eq!(act(&stack, &agent, ids[0], "resolve").await.status, 200);
    assert_eq!(act(&stack, &agent, ids[1], "release").await.status, 200);
    queue_until(&stack, &agent, "", &[ids[2]]).await;
    queue_until(&stack, &agent, "?state=with_agent", &[]).await;
}

#[tokio::test]
async fn an_agent_takes_over_replies_and_hands_back_and_the_bot_answers_again() {
    let stack = Stack::connect().await;
    let tenant = fresh_tenant();
    let customer = stack.token_as("cust_help", Some(&tenant), Role::Customer);
    let conv = conversation_id(&stack.say(&customer, None, ASK_FOR_A_PERSON).await);
    assert_eq!(page(&stack, &customer, &conv).await["handoff"], "waiting");
    // Waiting, the bot still answers.
    let meanwhile = stack.say(&customer, Some(&conv), "thanks").await;
    assert!(!meanwhile["replies"].as_array().unwrap().is_empty());

    let agent = stack.token_as("agent_bea", Some(&tenant), Role::Agent);
    let r = act(&stack, &agent, &conv, "takeover").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handoff"], "with_agent");
    let seen = page(&stack, &customer, &conv).await;
    assert_eq!(seen["handoff"], "with_agent");
    let last = seen["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], bot_text("agent.taken_over"));

    // The customer's message waits for the agent: the bot says nothing.
    let silent = stack
        .say(&customer, Some(&conv), "where is my order?")
        .await;
    assert_eq!(silent["replies"], json!([]));

    let path = format!("/v1/conversations/{conv}/agent-messages");
    let body = json!({ "text": "Hi, Bea here.", "client_message_id": "bea-1" });
    let sent = stack.call("POST", Some(&agent), &path, Some(body)).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["message"]["agent_id"], "agent_bea");
    let read = page(&stack, &customer, &conv).await;
    let reply = read["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&reply["role"], &reply["agent_id"], &reply["text"]),
        (
            &json!("agent"),
            &json!("agent_bea"),
            &json!("Hi, Bea here.")
        ),
        "stored with its agent"
    );

    // Handed back: the customer is told, and the bot answers again.
    let r = act(&stack, &agent, &conv, "release").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handoff"], "bot");
    let back = stack.say(&customer, Some(&conv), "hi again").await;
    assert!(!back["replies"].as_array().unwrap().is_empty(), "{back}");

    // A repeat changes nothing; a change that does not apply is a 409 and writes nothing.
    let before = page(&stack, &agent, &conv).await["next_after"].clone();
    let again = act(&stack, &agent, &conv, "release").await;
    assert_eq!((again.status, &again.body["handoff"]), (200, &json!("bot")));
    let refused = act(&stack, &agent, &conv, "resolve").await;
    assert_problem(&refused, 409, "resolving what the bot has");
    assert_eq!(page(&stack, &agent, &conv).await["next_after"], before);
}

#[tokio::test]
async fn after_a_resolve_the_customers_next_message_goes_to_the_bot() {
    let stack = Stack::connect().await;
    let tenant = fresh_tenant();
    let customer = stack.token_as("cust_done", Some(&tenant), Role::Customer);
    let conv = conversation_id(&stack.say(&customer, None, ASK_FOR_A_PERSON).await);
    let (ann, bob) = (
        stack.token_as("agent_ann", Some(&tenant), Role::Agent),
        stack.token_as("agent_bob", Some(&tenant), Role::Agent),
    );
    assert_eq!(act(&stack, &ann, &conv, "takeover").await.status, 200);
    let r = act(&stack, &bob, &conv, "takeover").await;
    assert_problem(&r, 409, "taking over what another agent holds");
    assert!(
        r.body["detail"].as_str().unwrap().contains("agent_ann"),
        "{}",
        r.body
    );

    let r = act(&stack, &ann, &conv, "resolve").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handoff"], "resolved");
    let seen = page(&stack, &customer, &conv).await;
    assert_eq!(seen["handoff"], "resolved");
    let last = seen["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], bot_text("agent.resolved"));
    let r = act(&stack, &ann, &conv, "release").await;
    assert_problem(&r, 409, "releasing a resolved conversation");

    let next = stack.say(&customer, Some(&conv), "hi").await;
    assert!(!next["replies"].as_array().unwrap().is_empty(), "{next}");
    assert_eq!(page(&stack, &customer, &conv).await["handoff"], "bot");
    // And a person can be asked for again.
    stack.say(&customer, Some(&conv), ASK_FOR_A_PERSON).await;
    assert_eq!(page(&stack, &customer, &conv).await["handoff"], "waiting");
}

#[tokio::test]
async fn customers_may_not_read_the_queue_and_bad_queries_are_400() {
    let stack = Stack::connect().await;
    let customer = stack.token(&Stack::fresh_customer("cust_curious"));
    let conv = conversation_id(&stack.say(&customer, None, ASK_FOR_A_PERSON).await);
    assert_problem(
        &stack.get(Some(&customer), "/v1/handoffs").await,
        403,
        "a customer reads the queue",
    );
    for action in ["takeover", "release", "resolve"] {
        let r = act(&stack, &customer, &conv, action).await;
        assert_problem(&r, 403, &format!("a customer's {action}"));
    }
    let agent = stack.token_as("agent_ann", Some("default"), Role::Agent);
    for query in [
        "?state=bot",
        "?state=resolved",
        "?state=",
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?state=waiting&limit=-1",
    ] {
        let r = stack
            .get(Some(&agent), &format!("/v1/handoffs{query}"))
            .await;
        assert_problem(&r, 400, query);
    }
    let r = stack.call("POST", Some(&agent), "/v1/handoffs", None).await;
    assert_problem(&r, 405, "POST /v1/handoffs");
    assert_eq!(page(&stack, &agent, &conv).await["handoff"], "waiting");
}

#[tokio::test]
async fn what_a_job_says_while_an_agent_holds_the_conversation_is_for_the_agent_only() {
    let stack = Stack::connect().await;
    // The default tenant: the jobs helper builds jobs for it.
    let who = Stack::fresh_customer("cust_held");
    let customer = stack.token(&who);
    let conv = conversation_id(&stack.say(&customer, None, ASK_FOR_A_PERSON).await);
    let agent = stack.token_as("agent_ann", Some("default"), Role::Agent);
    assert_eq!(act(&stack, &agent, &conv, "takeover").await.status, 200);
    let before = page(&stack, &customer, &conv).await;
    let seen_before = before["messages"].as_array().unwrap().len();

    let note = unique("a proactive note");
    let body = job_body(
        &who,
        &conv,
        switchboard::jobs::JobKind::ProactiveMessage {
            id: unique("p"),
            text: note.clone(),
        },
    );
    stack.send_jobs(&[(&unique("g"), &body)]).await;
    let internal = stack
        .wait_for_message(&agent, &conv, Duration::from_secs(60), |m| {
            m["text"] == note
        })
        .await;
    assert_eq!(internal["internal"], true, "{internal}");
    assert_eq!(internal["role"], "bot");

    let after = page(&stack, &customer, &conv).await;
    let shown = after["messages"].as_array().unwrap();
    assert_eq!(shown.len(), seen_before, "the customer never reads it");
    assert!(shown.iter().all(|m| m.get("internal").is_none()));
    assert!(
        after["next_after"].as_u64().unwrap() >= internal["seq"].as_u64().unwrap(),
        "but reads past it: {after}"
    );
    let tail = stack
        .get(
            Some(&customer),
            &format!(
                "/v1/conversations/{conv}/messages?after={}",
                before["next_after"]
            ),
        )
        .await;
    assert_eq!(tail.body["messages"], json!([]), "{}", tail.body);
    assert_eq!(tail.body["next_after"], internal["seq"]);
}

#[tokio::test]
async fn a_conversation_stored_before_the_handoff_state_reads_as_with_its_agent() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_legacy");
    let customer = stack.token(&who);
    let conv = conversation_id(&stack.say(&customer, None, "hi").await);
    // As an earlier version stored a takeover: the agent in the slots, no handoff attribute.
    stack
        .ddb
        .update_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S(format!("T#default#C#{conv}")))
        .key("sk", AttributeValue::S("STATE".into()))
        .update_expression("SET slots = :slots REMOVE handoff, gsi2pk, gsi2sk")
        .expression_attribute_values(
            ":slots",
            AttributeValue::S(r#"{"agent":"agent_old","language":"en"}"#.into()),
        )
        .send()
        .await
        .expect("rewrite the record as an earlier version stored it");

    let silent = stack.say(&customer, Some(&conv), "hello?").await;
    assert_eq!(silent["replies"], json!([]), "still the agent's");
    let agent = stack.token_as("agent_new", Some("default"), Role::Agent);
    assert_eq!(page(&stack, &agent, &conv).await["handoff"], "with_agent");
    // Held by agent_old: another agent may not hand it back, an admin may.
    let r = act(&stack, &agent, &conv, "release").await;
    assert_problem(&r, 409, "releasing what another agent holds");
    let admin = stack.token_as("admin_new", Some("default"), Role::Admin);
    let r = act(&stack, &admin, &conv, "release").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["handoff"], "bot");
    let back = stack.say(&customer, Some(&conv), "hi again").await;
    assert!(!back["replies"].as_array().unwrap().is_empty(), "{back}");
}
