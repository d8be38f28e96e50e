use super::*;
use crate::connectors::{ConnectorError, Order, OrderStatus};
use crate::jobs::refund_key;
use crate::money::Money;
use crate::store::EffectOutcome;
use async_trait::async_trait;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

struct FakeOrders(Vec<Order>, bool);

#[async_trait]
impl OrdersPort for FakeOrders {
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
        if self.1 {
            return Err(ConnectorError::Unavailable {
                system: "orders",
                detail: "down".into(),
            });
        }
        // Newest first, as the port promises.
        let mut mine: Vec<Order> = self
            .0
            .iter()
            .filter(|o| o.customer_id == customer_id)
            .cloned()
            .collect();
        mine.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
        Ok(mine)
    }
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        if self.1 {
            return Err(ConnectorError::Unavailable {
                system: "orders",
                detail: "down".into(),
            });
        }
        Ok(self.0.iter().find(|o| o.id == id).cloned())
    }
}

fn order(id: &str, customer: &str, status: OrderStatus, promised: OffsetDateTime) -> Order {
    Order {
        id: id.into(),
        customer_id: customer.into(),
        status,
        placed_at: NOW - time::Duration::days(10),
        promised_by: Some(promised),
        delivered_at: None,
        carrier: Some("UPS".into()),
        tracking_url: Some(format!("https://track.example/{id}")),
        total: Money {
            amount_cents: 4599,
            currency: "USD".into(),
        },
        items: vec![],
        payment_ref: None,
    }
}

fn who(c: &str) -> Principal {
    Principal::customer("t", c)
}

fn dialogue(orders: Vec<Order>) -> Dialogue {
    Dialogue::new(Arc::new(FakeOrders(orders, false)))
}

fn catalogue() -> Vec<Order> {
    vec![
        order(
            "1001",
            "alice",
            OrderStatus::InTransit,
            NOW + time::Duration::days(2),
        ),
        order(
            "1002",
            "alice",
            OrderStatus::InTransit,
            NOW - time::Duration::days(3),
        ),
        order(
            "2001",
            "bob",
            OrderStatus::InTransit,
            NOW - time::Duration::days(3),
        ),
    ]
}

/// Where the conversation waits, as the conversation tests name it (`order_status.offer`).
fn waiting(o: &Outcome) -> String {
    crate::bot::conversation_tests::state_name(&Bot::embedded(), &o.state)
}

/// Everything the turn said.
fn said(o: &Outcome) -> String {
    o.replies.join("\n")
}

#[tokio::test]
async fn yes_to_payment_help_lists_options_then_each_option_answers() {
    let d = dialogue(vec![]).with_payment_update_url(Some("https://shop.example/billing".into()));
    let inputs = Record::from([(
        "payment_url".to_string(),
        Value::text("https://pay.example/i/1"),
    )]);
    let offered = d
        .open_flow(
            &who("alice"),
            "payment_help",
            inputs,
            &Slots::default(),
            NOW,
        )
        .await
        .expect("the bundle has payment help");
    assert!(
        said(&offered).contains("need help?"),
        "{:?}",
        offered.replies
    );
    let say = |state: DialogueState, text: &'static str| {
        let d = &d;
        async move {
            d.respond(&who("alice"), &state, &Slots::default(), text, NOW)
                .await
        }
    };
    let options = say(offered.state.clone(), "yes").await;
    assert!(
        said(&options).contains("Reply 1, 2 or 3"),
        "{:?}",
        options.replies
    );
    assert_eq!(waiting(&options), "payment_help.options");
    let labels =
        |o: &Outcome| -> Vec<String> { o.quick_replies.iter().map(|q| q.label.clone()).collect() };
    assert_eq!(labels(&offered), ["Yes", "No"]);
    assert_eq!(
        labels(&options),
        [
            "Retry the payment",
            "Update my payment method",
            "Talk to a person"
        ]
    );
    let values: Vec<&str> = options
        .quick_replies
        .iter()
        .map(|q| q.value.as_str())
        .collect();
    assert_eq!(values, ["1", "2", "3"], "what the question asks to reply");

    let retry = say(options.state.clone(), "1").await;
    assert!(
        said(&retry).contains("https://pay.example/i/1"),
        "{:?}",
        retry.replies
    );
    assert_eq!(
        waiting(&retry),
        "payment_help.choose",
        "the other options stay open"
    );
    assert_eq!(labels(&retry), labels(&options), "and their buttons too");
    let update = say(options.state.clone(), "I'd like to change my card").await;
    assert!(said(&update).contains("https://shop.example/billing"));
    let person = say(options.state.clone(), "3").await;
    assert!(person.slots.handoff_requested);
    let unclear = say(retry.state.clone(), "hmm").await;
    assert!(
        said(&unclear).contains("Reply 1, 2 or 3"),
        "the options are offered again"
    );

    let no = say(offered.state, "no thanks").await;
    assert_eq!(no.state, DialogueState::Idle);
}

#[tokio::test]
async fn several_orders_ask_which_then_report_and_offer_refund() {
    let d = dialogue(catalogue());
    let first = fresh_as(&d, "alice", "where's my order?").await;
    assert!(said(&first).contains("Which one"), "{:?}", first.replies);
    assert_eq!(waiting(&first), "order_status.order");
    assert_eq!(first.slots.candidates, ["1001", "1002"]);

    let second = d
        .respond(
            &who("alice"),
            &first.state,
            &first.slots,
            "the second one",
            NOW,
        )
        .await;
    let reply = said(&second);
    assert!(
        reply.contains("#1002") && reply.contains("UPS") && reply.contains("track.example/1002"),
        "{reply}"
    );
    assert!(reply.contains("refund of $45.99"), "{reply}");
    assert_eq!(waiting(&second), "order_status.offer");

    let third = d
        .respond(
            &who("alice"),
            &second.state,
            &second.slots,
            "yes please",
            NOW,
        )
        .await;
    assert_eq!(third.jobs.len(), 1);
    assert_eq!(third.state, DialogueState::Idle);
    assert_eq!(third.slots.refunds_requested, vec!["1002".to_string()]);
}

#[tokio::test]
async fn on_time_orders_are_not_offered_refunds() {
    let d = dialogue(catalogue());
    let out = fresh_as(&d, "alice", "where is #1001").await;
    assert!(said(&out).contains("expected by"), "{:?}", out.replies);
    assert_eq!(out.state, DialogueState::Idle);
    assert!(out.jobs.is_empty());
}

#[tokio::test]
async fn another_customers_order_looks_missing() {
    let d = dialogue(catalogue());
    let theirs = fresh_as(&d, "alice", "where is 2001").await;
    let missing = fresh_as(&d, "alice", "where is 9999").await;
    assert_eq!(
        theirs.replies[0].replace("2001", "X"),
        missing.replies[0].replace("9999", "X")
    );
}

#[tokio::test]
async fn declining_a_refund_starts_no_job() {
    let d = dialogue(catalogue());
    let offered = fresh(&d, "where is order 1002").await;
    assert_eq!(waiting(&offered), "order_status.offer");
    let out = say(&d, "alice", &offered.state, &offered.slots, "no thanks").await;
    assert!(out.jobs.is_empty());
    assert_eq!(out.state, DialogueState::Idle);
}

#[tokio::test]
async fn the_deferred_job_hears_that_the_system_is_still_down() {
    // No budget: the deferred job's own answer. It says nothing yet and is deferred again:
    // the job comes back later rather than tell the customer to try again themselves.
    let d = Dialogue::new(Arc::new(FakeOrders(vec![], true)));
    let out = fresh_as(&d, "alice", "where's my order").await;
    assert!(out.deferred);
    assert!(out.jobs.is_empty());
}

#[tokio::test]
async fn a_chat_turn_defers_when_the_order_system_is_down() {
    let d = Dialogue::new(Arc::new(FakeOrders(vec![], true)))
        .with_budget(Some(std::time::Duration::from_millis(150)));
    let out = fresh_as(&d, "alice", "where's my order").await;
    assert_eq!(
        out.replies,
        vec![d.messages().render(DOWN_WILL_MESSAGE, &[])]
    );
    assert!(out.deferred, "the caller queues answer.deferred");
    assert_eq!(
        out.state,
        DialogueState::Idle,
        "nothing of the turn is kept"
    );
}

#[tokio::test]
async fn a_single_order_is_reported_directly() {
    let d = dialogue(catalogue());
    let out = fresh_as(&d, "bob", "where's my stuff? track it").await;
    assert!(said(&out).contains("#2001"), "{:?}", out.replies);
}

/// A message from `who_` at the start of a conversation.
async fn fresh_as(d: &Dialogue, who_: &str, text: &str) -> Outcome {
    say(d, who_, &DialogueState::Idle, &Slots::default(), text).await
}

async fn fresh(d: &Dialogue, text: &str) -> Outcome {
    fresh_as(d, "alice", text).await
}

async fn say(
    d: &Dialogue,
    who_: &str,
    state: &DialogueState,
    slots: &Slots,
    text: &str,
) -> Outcome {
    d.respond(&who(who_), state, slots, text, NOW).await
}

#[tokio::test]
async fn a_configured_answer_needing_an_order_asks_which_then_hands_off_with_it() {
    let d = dialogue(catalogue());
    let ask = fresh(&d, "I want to cancel my order").await;
    assert!(said(&ask).contains("Which one"), "{:?}", ask.replies);
    assert!(ask.jobs.is_empty());
    assert_eq!(waiting(&ask), "answer:cancel_order.order");
    let done = say(&d, "alice", &ask.state, &ask.slots, "the first one").await;
    assert!(
        said(&done).contains("cancel order #1001"),
        "{:?}",
        done.replies
    );
    assert!(done.slots.handoff_requested);
    assert_eq!(
        done.jobs,
        vec![JobKind::AgentHandoff {
            reason: "cancel_order".into(),
            order_id: Some("1001".into())
        }]
    );
    // Someone else's order number is not confirmed, and nobody is bothered about it.
    let theirs = fresh(&d, "please cancel order 2001").await;
    assert!(
        said(&theirs).contains("couldn't find order #2001"),
        "{:?}",
        theirs.replies
    );
    assert!(theirs.jobs.is_empty());
}

#[tokio::test]
async fn policy_questions_get_their_text_and_no_dead_end() {
    let d = dialogue(catalogue());
    let out = fresh(&d, "what payment methods do you accept?").await;
    assert!(out.replies[0].contains("PayPal"), "{:?}", out.replies);
    assert!(out.jobs.is_empty());
    assert_eq!(out.state, DialogueState::Idle);
}

#[tokio::test]
async fn unsure_asks_which_of_two_then_acts_on_the_choice() {
    // Thresholds that make every message "unsure", so the flow is tested, not the model.
    let d = dialogue(catalogue()).with_thresholds(Thresholds {
        accept: 1.1,
        clarify: 0.0,
        ..Thresholds::default()
    });
    let ask = fresh(&d, "what payment methods do you accept?").await;
    assert!(
        ask.replies[0].contains("1. know how you can pay"),
        "{:?}",
        ask.replies
    );
    let DialogueState::Clarifying { options, .. } = &ask.state else {
        panic!("{:?}", ask.state)
    };
    assert_eq!(options[0], "check_payment_methods");
    let values: Vec<&str> = ask.quick_replies.iter().map(|q| q.value.as_str()).collect();
    assert_eq!(values, ["1", "2"], "the numbers the question asks for");
    assert_eq!(ask.quick_replies[0].label, "know how you can pay");
    assert_eq!(ask.facts.ending, Ending::Clarified);
    assert_eq!(ask.facts.intent, Intent::unknown());
    let chosen = say(&d, "alice", &ask.state, &ask.slots, "1").await;
    assert!(chosen.replies[0].contains("PayPal"), "{:?}", chosen.replies);
    assert_eq!(chosen.facts.ending, Ending::Answered);
    let refused = say(&d, "alice", &ask.state, &ask.slots, "no").await;
    assert!(
        refused.replies[0].contains("I can help with"),
        "{:?}",
        refused.replies
    );
}

#[tokio::test]
async fn gibberish_gets_the_options_and_out_of_scope_says_so() {
    let d = dialogue(catalogue());
    // Thresholds nothing reaches: the fallback, whatever the model thinks.
    let unsure = dialogue(catalogue()).with_thresholds(Thresholds {
        accept: 1.1,
        clarify: 1.1,
        ..Thresholds::default()
    });
    let lost = fresh(&unsure, "qwxz vbnm plok").await;
    assert!(
        lost.replies[0].starts_with("Sorry, I didn't catch that"),
        "{:?}",
        lost.replies
    );
    assert!(lost.replies[0].contains("I can help with"));
    assert_eq!(lost.facts.ending, Ending::Fallback);
    let oos = fresh(&d, "what's the weather in Paris tomorrow?").await;
    assert!(
        oos.replies[0].contains("outside what I can help with"),
        "{:?}",
        oos.replies
    );
    // Recognised as out of scope: an answer, not a failure to understand.
    assert!(oos.facts.intent.is(Move::OutOfScope));
    assert_eq!(oos.facts.ending, Ending::Answered);
    assert!(oos.facts.confidence > 0.0);
}

#[tokio::test]
async fn a_handoff_notifies_once() {
    let d = dialogue(catalogue());
    let first = fresh(&d, "I want to talk to a human").await;
    assert!(first.slots.handoff_requested);
    assert_eq!(first.jobs.len(), 1);
    assert!(first.facts.intent.is(Move::Human));
    assert_eq!(first.facts.ending, Ending::Handoff);
    let again = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &first.slots,
        "let me speak to a real person",
    )
    .await;
    assert!(
        again.replies[0].contains("already asked"),
        "{:?}",
        again.replies
    );
    assert!(again.jobs.is_empty());
}

#[tokio::test]
async fn and_the_other_one_means_the_other_listed_order() {
    let d = dialogue(catalogue());
    let ask = fresh(&d, "where's my order?").await;
    let first = say(&d, "alice", &ask.state, &ask.slots, "the first one").await;
    assert!(said(&first).contains("#1001"), "{:?}", first.replies);
    let other = say(
        &d,
        "alice",
        &first.state,
        &first.slots,
        "and the other one?",
    )
    .await;
    assert!(said(&other).contains("#1002"), "{:?}", other.replies);
    assert_eq!(other.slots.order_id.as_deref(), Some("1002"));
    // And back, while 1002's refund offer waits unanswered.
    assert_eq!(waiting(&other), "order_status.offer");
    let back = say(
        &d,
        "alice",
        &other.state,
        &other.slots,
        "and the other one?",
    )
    .await;
    assert!(said(&back).contains("#1001"), "{:?}", back.replies);
    assert!(
        !said(&back).contains("switch accounts"),
        "{:?}",
        back.replies
    );
}

#[tokio::test]
async fn a_returning_customer_hears_where_their_refund_stands() {
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(catalogue()).with_ledger(ledger.clone());
    let slots = Slots {
        refunds_requested: vec!["1002".into()],
        welcome_back: vec!["1002".into()],
        ..Slots::default()
    };
    let key = refund_key("t", "1002");
    ledger
        .begin("t", &key, std::time::Duration::from_secs(30), NOW)
        .await
        .unwrap();
    let open = say(&d, "alice", &DialogueState::Idle, &slots, "hi").await;
    assert!(
        open.replies[0].starts_with("Welcome back!"),
        "{:?}",
        open.replies
    );
    assert!(open.replies[0].contains("#1002 is still being processed"));
    assert!(open.replies[1].starts_with("Hi!"));
    assert!(open.slots.welcome_back.is_empty(), "told once");

    let token = match ledger
        .begin(
            "t",
            &key,
            std::time::Duration::ZERO,
            NOW + time::Duration::minutes(1),
        )
        .await
        .unwrap()
    {
        crate::store::Begin::Started(lease) => lease.token,
        other => panic!("{other:?}"),
    };
    ledger
        .complete("t", &key, &token, EffectOutcome::Done, &[])
        .await
        .unwrap();
    let asked = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &open.slots,
        "where is my refund?",
    )
    .await;
    assert!(
        said(&asked).contains("#1002 has been issued"),
        "{:?}",
        asked.replies
    );
    assert_eq!(asked.slots.refunds_reported, vec!["1002".to_string()]);
}

/// Ends the refund of `order` in the ledger as `outcome`, as fulfillment would.
async fn refund_ended(
    ledger: &crate::store::memory::MemoryStore,
    order: &str,
    outcome: EffectOutcome,
) {
    let key = refund_key("t", order);
    let lease = match ledger
        .begin("t", &key, std::time::Duration::from_secs(30), NOW)
        .await
        .unwrap()
    {
        crate::store::Begin::Started(lease) => lease,
        other => panic!("{other:?}"),
    };
    ledger
        .complete("t", &key, &lease.token, outcome, &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refund_that_failed_is_reported_as_failed_never_as_on_its_way() {
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(catalogue()).with_ledger(ledger.clone());
    refund_ended(&ledger, "1002", EffectOutcome::Failed).await;
    // Asked for in this conversation, and in a new one that never heard of it.
    let here = Slots {
        refunds_requested: vec!["1002".into()],
        ..Slots::default()
    };
    for slots in [here, Slots::default()] {
        let out = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &slots,
            "I want a refund for order 1002",
        )
        .await;
        let reply = out.replies.join("\n");
        assert!(reply.contains("couldn't be completed"), "{reply}");
        assert!(reply.contains("our team has it"), "{reply}");
        // ("on its way" is the parcel's: the order is in transit.)
        assert!(
            !reply.contains("refund you asked for is on its way"),
            "{reply}"
        );
        assert!(!reply.contains("Would you like a refund"), "{reply}");
        assert!(out.jobs.is_empty(), "no second refund");
        assert_eq!(out.state, DialogueState::Idle);
    }
}

#[tokio::test]
async fn a_refund_asked_for_and_not_started_yet_is_being_processed() {
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(catalogue()).with_ledger(ledger);
    let slots = Slots {
        refunds_requested: vec!["1002".into()],
        ..Slots::default()
    };
    let out = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &slots,
        "where is order 1002?",
    )
    .await;
    let reply = out.replies.join("\n");
    assert!(reply.contains("still being processed"), "{reply}");
    assert!(out.jobs.is_empty());
}

#[tokio::test]
async fn a_refund_set_aside_after_its_attempts_is_with_the_team_not_still_processing() {
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(catalogue()).with_ledger(ledger.clone());
    let key = refund_key("t", "1002");
    let lease = match ledger
        .begin("t", &key, std::time::Duration::from_secs(30), NOW)
        .await
        .unwrap()
    {
        crate::store::Begin::Started(lease) => lease,
        other => panic!("{other:?}"),
    };
    // Fulfillment put it on the dead-letter queue and set it aside.
    ledger.set_aside("t", &key, &lease.token).await.unwrap();
    let slots = Slots {
        refunds_requested: vec!["1002".into()],
        ..Slots::default()
    };
    let out = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &slots,
        "where is my refund?",
    )
    .await;
    let reply = out.replies.join("\n");
    assert!(reply.contains("taking longer than it should"), "{reply}");
    assert!(reply.contains("our team has been alerted"), "{reply}");
    assert!(!reply.contains("still being processed"), "{reply}");
    assert!(out.slots.refunds_reported.is_empty(), "not over yet");
}

#[tokio::test]
async fn an_order_delivered_after_its_refund_still_says_where_the_refund_stands() {
    let mut delivered = order(
        "1003",
        "alice",
        OrderStatus::Delivered,
        NOW - time::Duration::days(3),
    );
    delivered.delivered_at = Some(NOW - time::Duration::days(1));
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(vec![delivered]).with_ledger(ledger.clone());
    refund_ended(&ledger, "1003", EffectOutcome::Done).await;
    // Asked for here while it was late, and asked about from a new conversation.
    let here = Slots {
        refunds_requested: vec!["1003".into()],
        ..Slots::default()
    };
    for slots in [here, Slots::default()] {
        let out = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &slots,
            "I want a refund for order 1003",
        )
        .await;
        let reply = out.replies.join("\n");
        assert!(reply.contains("was delivered"), "{reply}");
        assert!(reply.contains("#1003 has been issued"), "{reply}");
        assert!(
            !reply.contains("I can refund orders that are running late"),
            "{reply}"
        );
        assert!(out.jobs.is_empty());
    }
}

#[tokio::test]
async fn yes_to_an_offer_already_fulfilled_elsewhere_says_so_and_refunds_nothing() {
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(catalogue()).with_ledger(ledger.clone());
    let offered = fresh(&d, "where is order 1002").await;
    assert_eq!(waiting(&offered), "order_status.offer");
    // Another conversation, another device: refunded before this "yes".
    refund_ended(&ledger, "1002", EffectOutcome::Done).await;
    let out = say(&d, "alice", &offered.state, &offered.slots, "yes please").await;
    assert!(out.jobs.is_empty());
    assert!(said(&out).contains("has been issued"), "{:?}", out.replies);
}

#[tokio::test]
async fn yes_to_a_person_after_a_deferred_answer_gave_up_hands_off() {
    let d = dialogue(catalogue());
    let offered = DialogueState::HandoffOffered {
        reason: "answer_deferred_failed".into(),
    };
    let yes = say(&d, "alice", &offered, &Slots::default(), "yes").await;
    assert_eq!(
        yes.jobs,
        vec![JobKind::AgentHandoff {
            reason: "answer_deferred_failed".into(),
            order_id: None
        }]
    );
    assert!(yes.slots.handoff_requested);
    let no = say(&d, "alice", &offered, &Slots::default(), "no thanks").await;
    assert!(no.jobs.is_empty());
    assert!(!no.slots.handoff_requested);
}

struct SlowOrders(Vec<Order>);

#[async_trait]
impl OrdersPort for SlowOrders {
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        FakeOrders(self.0.clone(), false)
            .recent_orders(customer_id)
            .await
    }
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        FakeOrders(self.0.clone(), false).order(id).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_lookup_over_budget_defers_the_answer_and_changes_nothing() {
    let d = Dialogue::new(Arc::new(SlowOrders(catalogue())))
        .with_budget(Some(std::time::Duration::from_millis(150)));
    let state = DialogueState::Idle;
    let slots = Slots {
        order_id: Some("1001".into()),
        ..Slots::default()
    };
    let out = d
        .respond(&who("alice"), &state, &slots, "where is #1002", NOW)
        .await;
    assert!(out.deferred);
    assert_eq!(out.facts.ending, Ending::Deferred);
    assert_eq!(out.replies, vec![d.messages().render(LET_ME_CHECK, &[])]);
    // Only the language is kept: the deferred answer is given in it.
    let in_english = Slots {
        language: Some("en".into()),
        ..slots.clone()
    };
    assert_eq!((out.state, out.slots), (state.clone(), in_english));
    assert!(
        out.jobs.is_empty(),
        "the caller adds the answer.deferred job"
    );
    // Without a budget (the deferred job) the same message is answered.
    let later = Dialogue::new(Arc::new(SlowOrders(catalogue())))
        .respond(&who("alice"), &state, &slots, "where is #1002", NOW)
        .await;
    assert!(!later.deferred);
    assert!(said(&later).contains("#1002"), "{:?}", later.replies);
}

struct Shelf;

#[async_trait]
impl InventoryPort for Shelf {
    async fn products(&self) -> Result<Vec<crate::connectors::Product>, ConnectorError> {
        Ok(vec![
            crate::connectors::Product {
                sku: "LAMP-03".into(),
                name: "Desk Lamp".into(),
                available: 7,
                price: None,
            },
            crate::connectors::Product {
                sku: "HEAD-02".into(),
                name: "Noise-Cancelling Headphones".into(),
                available: 0,
                price: None,
            },
        ])
    }
}

#[tokio::test]
async fn stock_questions_name_the_product_or_ask_which() {
    let d = dialogue(catalogue()).with_inventory(Some(Arc::new(Shelf)));
    let lamp = fresh(&d, "is the desk lamp in stock?").await;
    assert_eq!(
        lamp.replies,
        vec!["Yes — the Desk Lamp is in stock (7 available).".to_string()]
    );
    let out = fresh(&d, "do you have the noise-cancelling headphones in stock").await;
    assert!(said(&out).contains("out of stock"), "{:?}", out.replies);

    let which = fresh(&d, "is this item available?").await;
    assert!(
        said(&which).starts_with("Which product"),
        "{:?}",
        which.replies
    );
    assert_eq!(waiting(&which), "product_availability.product");
    let named = say(&d, "alice", &which.state, &which.slots, "the desk lamp").await;
    assert!(
        said(&named).contains("Desk Lamp is in stock"),
        "{:?}",
        named.replies
    );
    let unknown = say(&d, "alice", &which.state, &which.slots, "the purple sofa").await;
    assert!(
        said(&unknown).contains("Each product's page"),
        "{:?}",
        unknown.replies
    );
    assert_eq!(unknown.state, DialogueState::Idle);

    // Without an inventory the configured answer, never a dead end.
    let plain = fresh(&dialogue(catalogue()), "is the desk lamp in stock?").await;
    assert!(
        said(&plain).contains("Each product's page"),
        "{:?}",
        plain.replies
    );
}

#[tokio::test]
async fn follow_ups_that_say_more_are_not_carried_over() {
    let d = dialogue(catalogue());
    let ask = fresh(&d, "where's my order?").await;
    let first = say(&d, "alice", &ask.state, &ask.slots, "the first one").await;
    let pay = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &first.slots,
        "any other payment methods?",
    )
    .await;
    assert!(said(&pay).contains("PayPal"), "{:?}", pay.replies);
    let done = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &first.slots,
        "no other questions, thanks",
    )
    .await;
    assert!(!said(&done).contains("#1002"), "{:?}", done.replies);
    let bare = say(
        &d,
        "alice",
        &DialogueState::Idle,
        &first.slots,
        "what about the other one",
    )
    .await;
    assert!(said(&bare).contains("#1002"), "{:?}", bare.replies);
}

#[tokio::test]
async fn newest_means_the_most_recent_order_wherever_it_is_listed() {
    let mut orders = catalogue();
    // 1002 placed later than 1001: the list (newest first) shows 1002 first.
    orders[1].placed_at = NOW - time::Duration::days(2);
    let d = dialogue(orders);
    let ask = fresh(&d, "I want to cancel my order").await;
    assert_eq!(ask.slots.candidates[0], "1002", "{:?}", ask.slots);
    let newest = say(&d, "alice", &ask.state, &ask.slots, "the newest one").await;
    assert!(said(&newest).contains("#1002"), "{:?}", newest.replies);
    let last = say(&d, "alice", &ask.state, &ask.slots, "the last one").await;
    assert!(
        said(&last).contains("#1001"),
        "the last listed: {:?}",
        last.replies
    );
}

/// Orders in a system of the company's own numbering, and how often the list is read.
struct Numbered(FakeOrders, std::sync::atomic::AtomicUsize);

#[async_trait]
impl OrdersPort for Numbered {
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.recent_orders(customer_id).await
    }
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        self.0.order(id).await
    }
}

fn numbered() -> Arc<Numbered> {
    let on_time = NOW + time::Duration::days(2);
    Arc::new(Numbered(
        FakeOrders(
            vec![
                order("SO-88140", "alice", OrderStatus::InTransit, on_time),
                order("SO-88130", "alice", OrderStatus::InTransit, on_time),
                order("RT-88130", "alice", OrderStatus::InTransit, on_time),
                order("SO-77001", "bob", OrderStatus::InTransit, on_time),
                Order {
                    placed_at: NOW - time::Duration::days(400),
                    ..order("66120", "alice", OrderStatus::Delivered, on_time)
                },
                order("SO-66120", "alice", OrderStatus::InTransit, on_time),
            ],
            false,
        ),
        Default::default(),
    ))
}

#[tokio::test]
async fn a_number_written_otherwise_is_the_one_own_order_that_has_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let orders = numbered();
    let d = Dialogue::new(orders.clone());
    // Nothing declared: "so88140" is alice's SO-88140 but for the hyphen and case.
    let found = fresh(&d, "where is order so88140").await;
    assert!(said(&found).contains("#SO-88140"), "{:?}", found.replies);
    assert_eq!(found.slots.order_id.as_deref(), Some("SO-88140"));
    // Other letters, and two of hers have 88130: what she wrote is looked up, and not found.
    let two = fresh(&d, "where is order X88130").await;
    assert!(
        said(&two).contains("couldn't find order #X88130"),
        "{:?}",
        two.replies
    );
    // Bob's order is never a candidate for alice, nor hers for bob.
    let bobs = fresh(&d, "where is order so77001").await;
    assert!(
        said(&bobs).contains("couldn't find order #SO77001"),
        "{:?}",
        bobs.replies
    );
    let alices = fresh_as(&d, "bob", "where is order so88140").await;
    assert!(
        said(&alices).contains("couldn't find order #SO88140"),
        "{:?}",
        alices.replies
    );
    // A bare number with nothing declared is looked up as written, without listing her
    // orders first: exactly her old 66120, and 88140 is no order of that number.
    let reads = orders.1.load(SeqCst);
    let old = fresh(&d, "where is order 66120").await;
    assert_eq!(
        old.slots.order_id.as_deref(),
        Some("66120"),
        "{:?}",
        old.replies
    );
    let bare = fresh(&d, "where is order 88140").await;
    assert!(
        said(&bare).contains("couldn't find order #88140"),
        "{:?}",
        bare.replies
    );
    assert_eq!(
        orders.1.load(SeqCst),
        reads,
        "no list read for a bare number"
    );
}

#[tokio::test]
async fn a_declared_format_rewrites_numbers_without_reading_the_orders() {
    use std::sync::atomic::Ordering::SeqCst;
    let orders = numbered();
    let format = crate::order_ids::OrderIdFormat::new("SO-", Some(5)).unwrap();
    let d = Dialogue::new(orders.clone()).with_order_ids(Some(format));
    let found = fresh(&d, "has so88130 shipped?").await;
    assert!(said(&found).contains("#SO-88130"), "{:?}", found.replies);
    assert_eq!(orders.1.load(SeqCst), 0, "the format settled it");
    // Someone else's order in the format: the ownership check answers, as written in full.
    let bobs = fresh(&d, "where is order 77001").await;
    assert!(
        said(&bobs).contains("couldn't find order #SO-77001"),
        "{:?}",
        bobs.replies
    );
    // A number outside the format is looked for among the customer's own orders.
    let other = fresh(&d, "where is order rt88130").await;
    assert!(said(&other).contains("#RT-88130"), "{:?}", other.replies);
    assert_eq!(orders.1.load(SeqCst), 1);
}

/// An order system whose customer listing also returns other customers' orders (a filter
/// forgotten in its API or its mapping).
struct Leaky(FakeOrders);

#[async_trait]
impl OrdersPort for Leaky {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        Ok(self.0 .0.clone())
    }
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        self.0.order(id).await
    }
}

#[tokio::test]
async fn another_customers_order_listed_by_mistake_is_never_a_candidate() {
    let on_time = NOW + time::Duration::days(2);
    let d = Dialogue::new(Arc::new(Leaky(FakeOrders(
        vec![
            order("SO-88140", "alice", OrderStatus::InTransit, on_time),
            order("SO-77001", "bob", OrderStatus::InTransit, on_time),
        ],
        false,
    ))));
    // Bob's SO-77001 came back in alice's list: "so77001" is not matched to it.
    let out = fresh(&d, "where is order so77001").await;
    assert!(
        said(&out).contains("couldn't find order #SO77001"),
        "{:?}",
        out.replies
    );
    let hers = fresh(&d, "where is order so88140").await;
    assert!(said(&hers).contains("#SO-88140"), "{:?}", hers.replies);
}

#[tokio::test]
async fn did_you_mean_names_the_intents_in_the_conversations_language() {
    // Thresholds that leave every message between the two: "did you want to…?" each time.
    let unsure = dialogue(catalogue()).with_thresholds(Thresholds {
        accept: 1.1,
        clarify: 0.0,
        ..Thresholds::default()
    });
    let es = fresh(&unsure, "quiero cancelar mi pedido, por favor").await;
    assert_eq!(es.slots.language.as_deref(), Some("es"));
    let said = es.replies.join("\n");
    assert!(said.starts_with("Perdona, quiero asegurarme"), "{said}");
    assert!(said.contains("1. cancelar un pedido"), "{said}");
    // English names them by their description.
    let en = fresh(&unsure, "I want to cancel my order please").await;
    assert!(
        en.replies.join("\n").contains("1. cancel an order"),
        "{:?}",
        en.replies
    );
}

/// A messaging channel's user not linked to a customer; their id is alice's, the worst case of
/// a channel id that happens to be a customer's.
fn stranger() -> Principal {
    Principal::unverified("t", "alice")
}

const VERIFY: &str = "To look at orders or refunds, I first need to check it's you.";

#[tokio::test]
async fn an_unverified_customer_is_asked_to_verify_however_an_order_question_comes() {
    // The order system is down: had anything been read for them, the turn would be deferred.
    let d = Dialogue::new(Arc::new(FakeOrders(catalogue(), true)));
    let clarifying = DialogueState::Clarifying {
        options: vec!["order_status".into(), "check_refund_policy".into()],
        order_refs: vec!["1002".into()],
    };
    let asks = [
        (DialogueState::Idle, "where is order 1002?"),
        (DialogueState::Idle, "where is my order"),
        (DialogueState::Idle, "1002"),
        (DialogueState::Idle, "can I get a refund for order 1002?"),
        (DialogueState::Idle, "where is my refund?"),
        (DialogueState::Idle, "please cancel order 1001"),
        (clarifying, "1"),
    ];
    for (state, text) in asks {
        let o = d
            .respond(&stranger(), &state, &Slots::default(), text, NOW)
            .await;
        assert!(said(&o).starts_with(VERIFY), "{text}: {:?}", o.replies);
        assert_eq!(o.replies.len(), 1, "{text}: {:?}", o.replies);
        assert_eq!(o.state, DialogueState::Idle, "{text}");
        assert!(!o.deferred, "{text}");
        assert!(o.jobs.is_empty(), "{text}: {:?}", o.jobs);
        // Nothing about an order is remembered for after they verify.
        assert_eq!(o.slots.topic, None, "{text}");
        assert_eq!(o.slots.order_id, None, "{text}");
        assert_eq!(o.facts.ending, Ending::Answered, "{text}");
    }
}

#[tokio::test]
async fn an_unverified_customer_gets_what_needs_no_account() {
    let d = dialogue(catalogue());
    let o = d
        .respond(
            &stranger(),
            &DialogueState::Idle,
            &Slots::default(),
            "what is your refund policy?",
            NOW,
        )
        .await;
    assert!(said(&o).contains("within 30 days"), "{:?}", o.replies);
    // Two requests: the one that needs an account is asked to verify, the other answered;
    // two that need one ask once.
    let o = d
        .respond(
            &stranger(),
            &DialogueState::Idle,
            &Slots::default(),
            "where is my order? also I want to cancel my order",
            NOW,
        )
        .await;
    assert_eq!(said(&o).matches(VERIFY).count(), 1, "{:?}", o.replies);
    assert_eq!(o.state, DialogueState::Idle);
}

#[tokio::test]
async fn an_unverified_customer_hears_no_welcome_back() {
    let ledger = Arc::new(crate::store::memory::MemoryStore::new());
    let d = dialogue(catalogue()).with_ledger(ledger);
    let slots = Slots {
        welcome_back: vec!["1002".into()],
        ..Slots::default()
    };
    let o = d
        .respond(&stranger(), &DialogueState::Idle, &slots, "hi", NOW)
        .await;
    // Not a question they asked: neither the refund's news nor a request to verify.
    assert_eq!(o.replies.len(), 1, "{:?}", o.replies);
    assert!(o.replies[0].starts_with("Hi!"), "{:?}", o.replies);
}
