//! Multi-turn conversations through the chat endpoint with the embedded classifier: slot filling,
//! clarification, fallback, out-of-scope, handoff, carry-over, return visits and the latency
//! budget and systems that are down, against the running functions, moto and the demo systems.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::nlu::CLARIFY_PROBES;
use switchboard_it::{is_deferral_text, texts, Stack};

const TEAM_INBOX: &str = "support-team@shop.example";

/// The reply a deferred turn gets at once (it, too, answers the customer's message).
fn is_deferral(message: &Value) -> bool {
    message["text"].as_str().is_some_and(is_deferral_text)
}

fn conversation_id(reply: &Value) -> String {
    reply["conversation_id"].as_str().unwrap().to_string()
}

/// The email announcing a handoff of this conversation to the team, once it is sent.
async fn handoff_email(stack: &Stack, conversation: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let emails = stack.demo_admin("emails").await;
        let found: Vec<Value> = emails["sent"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["to"] == TEAM_INBOX && e["text"].as_str().unwrap_or("").contains(conversation)
            })
            .cloned()
            .collect();
        assert!(found.len() < 2, "announced twice: {found:?}");
        if let [one] = found.as_slice() {
            return one.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no handoff email for {conversation}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn state_of(stack: &Stack, conversation: &str) -> Value {
    let item = stack
        .partition("default", conversation)
        .await
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap() == "STATE")
        .expect("a state record");
    serde_json::from_str(item["slots"].as_s().unwrap()).unwrap()
}

#[tokio::test]
async fn a_request_about_an_order_asks_which_then_hands_it_to_the_team() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_cancel");
    let token = stack.token(&who);
    let first = stack.create_order(&who, 1500).await;
    let second = stack.create_order(&who, 2500).await;

    let ask = stack.say(&token, None, "I want to cancel my order").await;
    let conv = conversation_id(&ask);
    let question = &texts(&ask)[0];
    assert!(
        question.contains("Which one")
            && question.contains(&format!("#{first}"))
            && question.contains(&format!("#{second}")),
        "{question}"
    );

    let which = if question.find(&first) < question.find(&second) {
        &second
    } else {
        &first
    };
    let pos = if which == &second { "second" } else { "first" };
    let done = stack
        .say(&token, Some(&conv), &format!("the {pos} one"))
        .await;
    let reply = &texts(&done)[0];
    assert!(reply.contains(&format!("cancel order #{which}")), "{reply}");

    let slots = state_of(&stack, &conv).await;
    assert_eq!(slots["handoff_requested"], true, "{slots}");
    let email = handoff_email(&stack, &conv).await;
    let text = email["text"].as_str().unwrap();
    assert!(text.contains("Reason: cancel_order"), "{text}");
    assert!(text.contains(&format!("Order: {which}")), "{text}");
    assert!(
        text.contains("[customer]\n> I want to cancel my order"),
        "{text}"
    );
}

#[tokio::test]
async fn asking_for_a_person_flags_the_conversation_and_notifies_once() {
    let stack = Stack::connect().await;
    let token = stack.token(&Stack::fresh_customer("cust_person"));
    let first = stack
        .say(&token, None, "can I talk to a human please")
        .await;
    let conv = conversation_id(&first);
    assert!(
        texts(&first)[0].contains("asked a member of our team"),
        "{first}"
    );
    let again = stack
        .say(&token, Some(&conv), "I want to speak to a real person")
        .await;
    assert!(texts(&again)[0].contains("already asked"), "{again}");
    let email = handoff_email(&stack, &conv).await;
    assert!(email["subject"]
        .as_str()
        .unwrap()
        .contains("needs a person"));
    // handoff_email insists on exactly one; give a second announcement time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    handoff_email(&stack, &conv).await;
}

#[tokio::test]
async fn out_of_scope_and_unclear_messages_get_the_options() {
    let stack = Stack::connect().await;
    let token = stack.token(&Stack::fresh_customer("cust_lost"));
    let oos = stack
        .say(&token, None, "what's the weather in Paris tomorrow?")
        .await;
    let conv = conversation_id(&oos);
    let reply = &texts(&oos)[0];
    assert!(reply.contains("outside what I can help with"), "{reply}");
    assert!(reply.contains("I can help with"), "{reply}");

    // A policy question without a connector behind it: its configured answer.
    let policy = stack
        .say(&token, Some(&conv), "what payment methods do you accept?")
        .await;
    assert!(texts(&policy)[0].contains("PayPal"), "{policy}");
}

#[tokio::test]
async fn an_unsure_reading_asks_which_and_the_choice_is_acted_on() {
    let stack = Stack::connect().await;
    let token = stack.token(&Stack::fresh_customer("cust_unsure"));
    // Two requests in one message: the classifier splits its confidence between them.
    let probe = CLARIFY_PROBES
        .iter()
        .find(|p| {
            switchboard::bot::Bot::embedded()
                .nlu()
                .understand("en", p)
                .unsure_between
                .is_some()
        })
        .expect("nlu's unit tests insist on one");
    let ask = stack.say(&token, None, probe).await;
    let conv = conversation_id(&ask);
    let question = &texts(&ask)[0];
    assert!(
        question.contains("Did you want to") && question.contains("Reply 1 or 2"),
        "{question}"
    );
    let options: Vec<&str> = question
        .lines()
        .filter_map(|l| l.strip_prefix("1. ").or_else(|| l.strip_prefix("2. ")))
        .collect();
    assert_eq!(options.len(), 2, "{question}");
    let chosen = stack.say(&token, Some(&conv), "2").await;
    let reply = &texts(&chosen)[0];
    assert!(!reply.contains("Did you want to"), "{reply}");
    assert!(!reply.starts_with("Sorry, I didn't catch that"), "{reply}");
}

#[tokio::test]
async fn and_the_other_one_carries_the_question_over() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_other");
    let token = stack.token(&who);
    let a = stack.create_order(&who, 1000).await;
    let b = stack.create_order(&who, 2000).await;
    let ask = stack.say(&token, None, "where's my order?").await;
    let conv = conversation_id(&ask);
    assert!(texts(&ask)[0].contains("Which one"), "{ask}");
    let first = stack.say(&token, Some(&conv), "the first one").await;
    let first_text = &texts(&first)[0];
    let (told, other) = if first_text.contains(&format!("#{a}")) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert!(first_text.contains(&format!("#{told}")), "{first_text}");
    // The late order's refund offer is left unanswered: the customer moves on.
    let next = stack.say(&token, Some(&conv), "and the other one?").await;
    assert!(texts(&next)[0].contains(&format!("#{other}")), "{next}");
}

#[tokio::test]
async fn a_returning_customer_is_told_where_their_refund_stands() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_back");
    let token = stack.token(&who);
    let order = stack.create_order(&who, 3300).await;
    // The payments API holds this refund for a while: it is still open on the return visit.
    stack
        .arm_fault(
            json!({"path": "/payments/refunds", "match": {"order_id": order}, "delay_ms": 8000}),
        )
        .await;

    let status = stack.say(&token, None, "where's my order?").await;
    let conv = conversation_id(&status);
    assert!(
        texts(&status)[0].contains("Would you like a refund"),
        "{status}"
    );
    let yes = stack.say(&token, Some(&conv), "yes").await;
    assert!(texts(&yes)[0].contains("requested a refund"), "{yes}");

    // Wait until fulfillment has begun the refund (the payments call is being held).
    let key = format!("refund:default:{order}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while stack.effect_state("default", &key).await.as_deref() != Some("in_progress") {
        assert!(Instant::now() < deadline, "the refund never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = stack.say(&token, None, "hi").await;
    let second_conv = conversation_id(&back);
    assert_ne!(second_conv, conv);
    let welcome = &texts(&back)[0];
    assert!(
        welcome.starts_with("Welcome back!")
            && welcome.contains(&format!(
                "refund for order #{order} is still being processed"
            )),
        "{welcome}"
    );
    assert!(texts(&back)[1].starts_with("Hi!"), "{back}");

    // Once issued, the first conversation is told; a later visit does not repeat old news, and
    // "where's my refund?" gets the current state from memory and the ledger.
    stack
        .wait_for_effect("default", &key, Duration::from_secs(60))
        .await;
    stack
        .wait_for_message(&token, &conv, Duration::from_secs(30), |m| {
            m["text"].as_str().unwrap_or("").contains("has been issued")
        })
        .await;
    let later = stack.say(&token, None, "where is my refund?").await;
    let news = &texts(&later)[0];
    assert!(!news.contains("Welcome back"), "{news}");
    assert!(
        news.contains(&format!("refund for order #{order} has been issued")),
        "{news}"
    );
}

#[tokio::test]
async fn a_slow_order_system_gets_let_me_check_then_the_answer() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_slow");
    let token = stack.token(&who);
    let order = stack.create_order(&who, 1200).await;
    // The order system answers this customer's order list slowly, once.
    stack
        .arm_fault(json!({"path": "/orders", "match": {"customer_id": who}, "delay_ms": 1500}))
        .await;
    let quick = stack.say(&token, None, "where is my order?").await;
    let conv = conversation_id(&quick);
    assert_eq!(
        texts(&quick),
        vec!["Let me check — I'll message you here in a moment.".to_string()]
    );
    let asked = quick["message"]["seq"].as_u64().unwrap();
    let answer = stack
        .wait_for_message(&token, &conv, Duration::from_secs(60), |m| {
            m["reply_to"] == asked && m["text"].as_str().unwrap_or("").contains(&order)
        })
        .await;
    assert_eq!(answer["role"], "bot");
    assert!(
        answer["text"].as_str().unwrap().contains("running late"),
        "{answer}"
    );
}

#[tokio::test]
async fn stock_questions_read_the_inventory_and_survive_its_failure() {
    let stack = Stack::connect().await;
    let token = stack.token(&Stack::fresh_customer("cust_stock"));
    let lamp = stack.say(&token, None, "is the desk lamp in stock?").await;
    assert_eq!(
        texts(&lamp),
        vec!["Yes — the Desk Lamp is in stock (7 available), at $34.50.".to_string()]
    );
    let conv = conversation_id(&lamp);
    // Prices come from the inventory's own answer (a decimal string there).
    let price = stack
        .say(&token, Some(&conv), "how much is the wireless mouse?")
        .await;
    assert!(texts(&price)[0].contains("$24.99"), "{price}");
    let which = stack
        .say(&token, Some(&conv), "is this item available?")
        .await;
    assert!(texts(&which)[0].starts_with("Which product"), "{which}");
    let headphones = stack
        .say(&token, Some(&conv), "the Noise-Cancelling Headphones")
        .await;
    assert!(
        texts(&headphones)[0].contains("out of stock"),
        "{headphones}"
    );

    // The inventory failing once is retried inside the turn: the customer never notices.
    stack
        .arm_fault(json!({"path": "/graphql", "status": 500}))
        .await;
    let retried = stack
        .say(&token, Some(&conv), "is the wireless mouse in stock?")
        .await;
    assert!(
        texts(&retried)[0].contains("Wireless Mouse is in stock"),
        "{retried}"
    );

    // Down for longer than the turn: told at once, answered here once it is back. Three
    // failures outlast the turn (it makes at most three attempts, fewer when its budget runs
    // out), and however many it used, the deferred job's own retries get past the rest.
    stack
        .arm_fault(json!({"path": "/graphql", "status": 503, "times": 3}))
        .await;
    let down = stack
        .say(&token, Some(&conv), "is the desk lamp in stock?")
        .await;
    let told = texts(&down);
    assert!(told.len() == 1 && is_deferral_text(&told[0]), "{down}");
    let asked = down["message"]["seq"].as_u64().unwrap();
    let answer = stack
        .wait_for_message(&token, &conv, Duration::from_secs(60), |m| {
            m["reply_to"] == asked && m["role"] == "bot" && !is_deferral(m)
        })
        .await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("Desk Lamp is in stock"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_down_order_system_is_answered_later_and_nothing_is_lost() {
    let stack = Stack::connect().await;
    let who = Stack::fresh_customer("cust_down");
    let token = stack.token(&who);
    let order = stack.create_order(&who, 2500).await;
    // Every attempt of the turn fails (two or three fit in its budget), and one or two of the
    // deferred job's: its own retries get past them.
    stack
        .arm_fault(
            json!({"path": "/orders", "match": {"customer_id": who}, "status": 500, "times": 4}),
        )
        .await;
    let quick = stack.say(&token, None, "where is my order?").await;
    let told = texts(&quick);
    assert!(told.len() == 1 && is_deferral_text(&told[0]), "{quick}");
    let conv = conversation_id(&quick);
    let asked = quick["message"]["seq"].as_u64().unwrap();
    let answer = stack
        .wait_for_message(&token, &conv, Duration::from_secs(60), |m| {
            m["reply_to"] == asked && m["role"] == "bot" && !is_deferral(m)
        })
        .await;
    assert!(
        answer["text"].as_str().unwrap().contains(&order),
        "{answer}"
    );
    // The customer's message is in the history once, and so is the answer.
    let history = stack
        .get(
            Some(&token),
            &format!("/v1/conversations/{conv}/messages?limit=100"),
        )
        .await
        .body;
    let mine: Vec<_> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "customer" && m["text"] == "where is my order?")
        .collect();
    assert_eq!(mine.len(), 1, "{history}");
}
