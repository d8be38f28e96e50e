use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use super::retry::VisibilityError;
use super::*;
use crate::connectors::{Customer, Order, RefundReceipt};
use crate::conversation::Role;
use crate::jobs::{JobKind, QueueError};
use crate::money::Money;
use crate::store::memory::MemoryStore;
use crate::store::EffectState;
use crate::webhook::config::EventKind;
use crate::webhook::events::VendorEvent;

/// Payments that refund, refuse (4xx) or are down, by order number, and count calls.
#[derive(Default)]
struct Payments {
    keys: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[async_trait]
impl PaymentsPort for Payments {
    async fn refund(
        &self,
        order_id: &str,
        amount: &Money,
        key: &str,
    ) -> Result<RefundReceipt, ConnectorError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.keys.lock().unwrap().push(key.to_string());
        match order_id {
            "down" => Err(ConnectorError::Unavailable {
                system: "payments",
                detail: "down".into(),
            }),
            "refused" => Err(ConnectorError::Rejected {
                system: "payments",
                status: 422,
                detail: "already refunded".into(),
            }),
            _ => Ok(RefundReceipt {
                id: format!("re_{order_id}"),
                status: "succeeded".into(),
                amount: amount.clone(),
            }),
        }
    }
}

/// A subscription system whose writes succeed, are refused (subscription `refused`) or find
/// it down (`down`), keeping every key it was sent.
#[derive(Default)]
struct Boxes {
    keys: Mutex<Vec<String>>,
}

#[async_trait]
impl crate::connectors::OperationsPort for Boxes {
    async fn read(
        &self,
        _: &str,
        _: &crate::flow::value::Record,
    ) -> Result<Option<crate::flow::value::Record>, ConnectorError> {
        Ok(None)
    }

    async fn write(
        &self,
        operation: &str,
        inputs: &crate::flow::value::Record,
        key: &str,
    ) -> Result<(), ConnectorError> {
        assert_eq!(operation, "boxes.pause_box");
        self.keys.lock().unwrap().push(key.to_string());
        match inputs.get("subscription_id").and_then(|v| v.as_text()) {
            Some("down") => Err(ConnectorError::Unavailable {
                system: "boxes",
                detail: "HTTP 503".into(),
            }),
            Some("refused") => Err(ConnectorError::Rejected {
                system: "boxes",
                status: 409,
                detail: "cancelled".into(),
            }),
            _ => Ok(()),
        }
    }
}

/// A CRM that knows alice as Stripe's cus_alice and by her verified email, and gina by an
/// email she never confirmed. Its orders system knows every order number as alice's, late,
/// $100.00, except `gone` (none), `bobs` (bob's) and `delivered` (delivered): no recent orders.
struct Crm;

fn crm_order(id: &str) -> Option<Order> {
    let now = OffsetDateTime::now_utc();
    let delivered = id == "delivered";
    (id != "gone").then(|| Order {
        id: id.into(),
        customer_id: if id == "bobs" { "bob" } else { "alice" }.into(),
        status: if delivered {
            crate::connectors::OrderStatus::Delivered
        } else {
            crate::connectors::OrderStatus::InTransit
        },
        placed_at: now - time::Duration::days(9),
        promised_by: Some(now - time::Duration::days(2)),
        delivered_at: delivered.then_some(now),
        carrier: None,
        tracking_url: None,
        total: Money {
            amount_cents: 10_000,
            currency: "USD".into(),
        },
        items: vec![],
        payment_ref: None,
    })
}

fn alice() -> Customer {
    Customer {
        id: "alice".into(),
        email: Some("alice@example.com".into()),
        name: None,
        email_verified: true,
    }
}

fn gina() -> Customer {
    Customer {
        id: "gina".into(),
        email: Some("gina@example.com".into()),
        name: None,
        email_verified: false,
    }
}

#[async_trait]
impl CustomersPort for Crm {
    async fn by_vendor_id(
        &self,
        vendor: &str,
        id: &str,
    ) -> Result<Option<Customer>, ConnectorError> {
        Ok(match (vendor, id) {
            ("stripe", "cus_alice") => Some(alice()),
            ("stripe", "cus_gina") => Some(gina()),
            _ => None,
        })
    }
    async fn by_email(&self, email: &str) -> Result<Option<Customer>, ConnectorError> {
        if email == "down@example.com" {
            return Err(ConnectorError::Unavailable {
                system: "crm",
                detail: "down".into(),
            });
        }
        Ok(match email {
            "alice@example.com" => Some(alice()),
            "gina@example.com" => Some(gina()),
            _ => None,
        })
    }
    async fn by_id(&self, id: &str) -> Result<Option<Customer>, ConnectorError> {
        Ok((id == "alice").then(alice))
    }
}

#[async_trait]
impl OrdersPort for Crm {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        Ok(vec![])
    }
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        Ok(crm_order(id))
    }
}

/// The world outside: emails sent, retry delays set, messages dead-lettered.
#[derive(Default)]
struct Outbox {
    emails: Mutex<Vec<(String, String)>>,
    bodies: Mutex<Vec<String>>,
    delays: Mutex<Vec<(String, u64)>>,
    /// (message id, reason, attempts)
    dead: Mutex<Vec<(String, String, u32)>>,
    /// The dead-letter queue refuses puts while set.
    dead_letters_down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl EmailPort for Outbox {
    async fn send(&self, to: &str, _: &str, text: &str, key: &str) -> Result<(), ConnectorError> {
        self.emails.lock().unwrap().push((to.into(), key.into()));
        self.bodies.lock().unwrap().push(text.into());
        Ok(())
    }
}

#[async_trait]
impl DeadLetters for Outbox {
    async fn put(
        &self,
        record: &SqsMessage,
        reason: &str,
        attempts: u32,
    ) -> Result<(), QueueError> {
        if self.dead_letters_down.load(Ordering::SeqCst) {
            return Err(QueueError("the dead-letter queue is down".into()));
        }
        self.dead.lock().unwrap().push((
            record.message_id.clone().unwrap_or_default(),
            reason.to_string(),
            attempts,
        ));
        Ok(())
    }
}

#[async_trait]
impl VisibilityControl for Outbox {
    async fn delay(
        &self,
        _: Option<&str>,
        receipt: &str,
        delay: Duration,
    ) -> Result<(), VisibilityError> {
        self.delays
            .lock()
            .unwrap()
            .push((receipt.into(), delay.as_secs()));
        Ok(())
    }
}

struct Fixture {
    f: Fulfillment,
    store: Arc<MemoryStore>,
    payments: Arc<Payments>,
    outbox: Arc<Outbox>,
    boxes: Arc<Boxes>,
}

async fn fixture(conversations: &[&str]) -> Fixture {
    fixture_with(conversations, Dialogue::new(Arc::new(Crm))).await
}

async fn fixture_with(conversations: &[&str], dialogue: Dialogue) -> Fixture {
    fixture_policy(conversations, dialogue, RetryPolicy::default()).await
}

async fn fixture_policy(
    conversations: &[&str],
    dialogue: Dialogue,
    policy: RetryPolicy,
) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    for id in conversations {
        store.seed_conversation(key(id), "alice").await;
    }
    let payments = Arc::new(Payments::default());
    let outbox = Arc::new(Outbox::default());
    let boxes = Arc::new(Boxes::default());
    let f = Fulfillment::new(
        store.clone(),
        store.clone(),
        Systems {
            payments: payments.clone(),
            customers: Arc::new(Crm),
            orders: Arc::new(Crm),
            email: outbox.clone(),
            operations: boxes.clone(),
            dialogue: Arc::new(dialogue),
            channels: Default::default(),
            channel_sender: None,
            agent_inbox: Some("team@shop.example".into()),
            console_url: Some("https://console.shop.example/console/".into()),
        },
        outbox.clone(),
        outbox.clone(),
        policy,
    );
    Fixture {
        f,
        store,
        payments,
        outbox,
        boxes,
    }
}

fn key(id: &str) -> ConversationKey {
    ConversationKey {
        tenant: "t".into(),
        id: id.into(),
    }
}

fn record(id: &str, group: &str, body: &str) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.into());
    m.receipt_handle = Some(format!("rh-{id}"));
    m.body = Some(body.into());
    m.attributes = HashMap::from([
        ("MessageGroupId".to_string(), group.to_string()),
        ("ApproximateReceiveCount".to_string(), "2".to_string()),
    ]);
    m
}

fn job(conv: &str, kind: JobKind) -> String {
    serde_json::to_string(&Job::new(&key(conv), "alice", kind)).unwrap()
}

fn refund(conv: &str, order: &str) -> String {
    job(
        conv,
        JobKind::RefundRequest {
            order_id: order.into(),
            amount: Money {
                amount_cents: 100,
                currency: "USD".into(),
            },
        },
    )
}

fn event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = records;
    e
}

fn failed(r: &SqsBatchResponse) -> Vec<&str> {
    r.batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

async fn texts(store: &MemoryStore, conv: &str) -> Vec<String> {
    let (_, messages) = store.history(&key(conv), 0, 100).await.unwrap().unwrap();
    messages.into_iter().map(|m| m.text).collect()
}

#[tokio::test]
async fn a_redelivered_refund_refunds_once_and_confirms_once() {
    let x = fixture(&["c1"]).await;
    for _ in 0..2 {
        let r =
            x.f.handle(event(vec![record("m1", "g1", &refund("c1", "1002"))]), None)
                .await;
        assert!(r.batch_item_failures.is_empty());
    }
    assert_eq!(x.store.message_count(&key("c1")), 1);
    // The ledger stops the second delivery before the payments API.
    assert_eq!(*x.payments.keys.lock().unwrap(), vec!["refund:t:1002"]);
    // Started with the refund's completion, once.
    let emails = x.store.take_outbox();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].kind.type_name(), "email.confirmation");
}

#[tokio::test]
async fn concurrent_deliveries_of_one_job_apply_it_once() {
    let x = fixture(&["c1"]).await;
    let body = refund("c1", "1002");
    let (a, b) = tokio::join!(
        x.f.handle(event(vec![record("a", "g1", &body)]), None),
        x.f.handle(event(vec![record("b", "g1", &body)]), None),
    );
    // One applies it; the other finds it busy and comes back later to find it done.
    assert_eq!(failed(&a).len() + failed(&b).len(), 1);
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1);
    let retry =
        x.f.handle(event(vec![record("c", "g1", &body)]), None)
            .await;
    assert!(retry.batch_item_failures.is_empty());
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1);
    assert_eq!(x.store.message_count(&key("c1")), 1);
}

#[tokio::test]
async fn groups_run_concurrently_and_in_order_with_failures_holding_back_their_group() {
    let x = fixture(&["c1", "c2", "c3"]).await;
    let r =
        x.f.handle(
            event(vec![
                record("a", "g1", &refund("c1", "down")),
                record("b", "g1", &refund("c1", "1003")),
                record("c", "g2", &refund("c2", "1004")),
                record("d", "g3", "{not json"),
                record("e", "g2", &refund("c2", "1005")),
                record("f", "g4", &refund("c3", "1006")),
            ]),
            None,
        )
        .await;
    assert_eq!(failed(&r), vec!["a", "b"]);
    // Not a job: to the dead-letter queue at once, not around the queue until SQS gives up.
    let dead = x.outbox.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "d");
    assert!(dead[0].1.contains("not a job"), "{dead:?}");
    // g1, g2 and g4 called payments at the same time; g2's two jobs one after the other.
    assert_eq!(x.payments.max_in_flight.load(Ordering::SeqCst), 3);
    assert_eq!(texts(&x.store, "c2").await.len(), 2);
    assert!(texts(&x.store, "c2").await[0].contains("#1004"));
    // A failed job comes back after the policy's delay for its own first attempt (10 s,
    // though SQS counts 2 receives); the one held back is released at once, behind the failed
    // job that still locks its group.
    let delays = x.outbox.delays.lock().unwrap().clone();
    assert_eq!(
        delays,
        vec![("rh-a".to_string(), 10), ("rh-b".to_string(), 0)]
    );
    // The transient failure released its lease: the retry runs at once, in order.
    let r =
        x.f.handle(event(vec![record("b", "g1", &refund("c1", "1003"))]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
}

#[tokio::test]
async fn a_refused_refund_is_recorded_told_and_not_retried() {
    let x = fixture(&["c1"]).await;
    for _ in 0..2 {
        let r =
            x.f.handle(
                event(vec![record("m", "g", &refund("c1", "refused"))]),
                None,
            )
            .await;
        assert!(r.batch_item_failures.is_empty(), "no retry loop");
    }
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1);
    let said = texts(&x.store, "c1").await;
    assert_eq!(said.len(), 1);
    assert!(said[0].contains("an agent will follow up"), "{said:?}");
    let c = x.store.load(&key("c1"), 0).await.unwrap().unwrap();
    assert!(c.conversation.slots.handoff_requested);
    assert_eq!(
        x.store.effect_outcome("t", "refund:t:refused"),
        Some(EffectOutcome::Failed)
    );
    // The agent the customer was promised is told, not only a flag set.
    let queued = x.store.take_outbox();
    let handoffs: Vec<&JobKind> = queued
        .iter()
        .map(|j| &j.kind)
        .filter(|k| k.type_name() == "agent.handoff")
        .collect();
    assert_eq!(
        handoffs,
        vec![&JobKind::AgentHandoff {
            reason: "refund_request_failed".into(),
            order_id: Some("refused".into())
        }]
    );
}

fn pause(conv: &str, subscription: &str) -> String {
    job(
        conv,
        JobKind::ConnectorWrite {
            operation: "boxes.pause_box".into(),
            inputs: crate::flow::value::Record::from([(
                "subscription_id".to_string(),
                crate::flow::value::Value::text(subscription),
            )]),
            idempotency_key: format!("pause:{subscription}"),
        },
    )
}

#[tokio::test]
async fn a_connector_write_is_sent_once_with_its_key_however_often_it_is_delivered() {
    let x = fixture(&["c1", "c2"]).await;
    for (id, conv) in [("m1", "c1"), ("m2", "c1"), ("m3", "c2")] {
        let r =
            x.f.handle(event(vec![record(id, "g", &pause(conv, "sub_1"))]), None)
                .await;
        assert!(r.batch_item_failures.is_empty());
    }
    // One change, whichever conversation asked: the key is the tenant's and the operation's.
    let sent = x.boxes.keys.lock().unwrap().clone();
    assert_eq!(sent, vec!["write:t:boxes.pause_box:pause%3Asub_1"]);
    assert_eq!(
        x.store.effect_outcome("t", &sent[0]),
        Some(EffectOutcome::Done)
    );
    // The flow said what happens; the write adds nothing to the conversation.
    assert!(texts(&x.store, "c1").await.is_empty());
}

#[tokio::test]
async fn a_connector_write_to_a_system_that_is_down_is_retried_with_the_same_key() {
    let x = fixture(&["c1"]).await;
    for _ in 0..2 {
        let r =
            x.f.handle(event(vec![record("m", "g", &pause("c1", "down"))]), None)
                .await;
        assert_eq!(failed(&r), vec!["m"], "back on the queue");
    }
    let sent = x.boxes.keys.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1]);
    assert!(texts(&x.store, "c1").await.is_empty());
}

#[tokio::test]
async fn a_refused_connector_write_fails_tells_the_customer_and_hands_off() {
    let x = fixture(&["c1"]).await;
    for _ in 0..2 {
        let r =
            x.f.handle(event(vec![record("m", "g", &pause("c1", "refused"))]), None)
                .await;
        assert!(r.batch_item_failures.is_empty(), "no retry loop");
    }
    assert_eq!(x.boxes.keys.lock().unwrap().len(), 1);
    assert_eq!(
        texts(&x.store, "c1").await,
        vec![crate::bot::messages::embedded().render("write.failed", &[])]
    );
    let c = x.store.load(&key("c1"), 0).await.unwrap().unwrap();
    assert!(c.conversation.slots.handoff_requested);
    let handoffs: Vec<JobKind> = x
        .store
        .take_outbox()
        .into_iter()
        .map(|j| j.kind)
        .filter(|k| k.type_name() == "agent.handoff")
        .collect();
    assert_eq!(
        handoffs,
        vec![JobKind::AgentHandoff {
            reason: "connector_write_failed".into(),
            order_id: None
        }]
    );
}

#[tokio::test]
async fn an_email_is_sent_once_to_the_customers_address() {
    let x = fixture(&["c1"]).await;
    let body = job(
        "c1",
        JobKind::EmailConfirmation {
            purpose: "refund".into(),
            order_id: "1002".into(),
            subject: "s".into(),
            text: "t".into(),
        },
    );
    for _ in 0..2 {
        let r = x.f.handle(event(vec![record("m", "g", &body)]), None).await;
        assert!(r.batch_item_failures.is_empty());
    }
    assert_eq!(
        *x.outbox.emails.lock().unwrap(),
        vec![(
            "alice@example.com".to_string(),
            "email:t:refund:1002".to_string()
        )]
    );
}

#[tokio::test]
async fn proactive_and_deferred_answers_are_posted_once() {
    let x = fixture(&["c1"]).await;
    let proactive = job(
        "c1",
        JobKind::ProactiveMessage {
            id: "p1".into(),
            text: "An agent has joined.".into(),
        },
    );
    let deferred = job(
        "c1",
        JobKind::AnswerDeferred {
            reply_to: 7,
            text: "hello".into(),
            asked_at: None,
        },
    );
    for _ in 0..2 {
        let r =
            x.f.handle(
                event(vec![
                    record("p", "g", &proactive),
                    record("d", "g", &deferred),
                ]),
                None,
            )
            .await;
        assert!(r.batch_item_failures.is_empty());
    }
    let (_, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].text, "An agent has joined.");
    assert_eq!(messages[1].reply_to, Some(7));
    assert!(messages[1].text.starts_with("Hi!"), "{}", messages[1].text);
}

#[tokio::test]
async fn a_handoff_is_announced_to_the_team_once_with_the_transcript() {
    let x = fixture(&["c1"]).await;
    let deferred = job(
        "c1",
        JobKind::AnswerDeferred {
            reply_to: 1,
            text: "I want to talk to a human".into(),
            asked_at: None,
        },
    );
    let r =
        x.f.handle(event(vec![record("d", "g", &deferred)]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    // The deferred answer handed off: its job was committed like a turn's would be.
    let queued: Vec<Job> = x.store.take_outbox();
    let handoff = queued
        .iter()
        .find(|j| j.kind.type_name() == "agent.handoff")
        .expect("a handoff job")
        .clone();
    let body = serde_json::to_string(&handoff).unwrap();
    for _ in 0..2 {
        let r = x.f.handle(event(vec![record("h", "g", &body)]), None).await;
        assert!(r.batch_item_failures.is_empty());
    }
    let emails = x.outbox.emails.lock().unwrap().clone();
    assert_eq!(
        emails,
        vec![(
            "team@shop.example".to_string(),
            "handoff:t:c1:human_agent:-".to_string()
        )]
    );
    let text = x.outbox.bodies.lock().unwrap()[0].clone();
    assert!(text.contains("Reason: human_agent"), "{text}");
    assert!(
        text.contains("[bot]\n> I've asked a member of our team"),
        "{text}"
    );
    assert!(
        text.contains("https://console.shop.example/console/#conversation=c1"),
        "{text}"
    );
    // The deferred answer's commit queued the conversation with the job it started.
    let c = x.store.load(&key("c1"), 0).await.unwrap().unwrap();
    assert_eq!(
        c.conversation.handoff.state(),
        crate::handoff::HandoffState::Waiting
    );
}

/// Puts conversation `id` in an agent's hands, as a takeover leaves it.
async fn held_by_agent(store: &MemoryStore, id: &str) {
    let snap = store.load(&key(id), 0).await.unwrap().unwrap();
    let mut c = snap.conversation;
    let now = OffsetDateTime::now_utc();
    c.handoff = c.handoff.take_over("agent_ann", now).unwrap().unwrap();
    c.handoff.sync_slots(&mut c.slots);
    let version = c.version;
    c.version += 1;
    store
        .commit(crate::store::Commit {
            conversation: c,
            expected_version: version,
            messages: vec![],
            turn: None,
            effect: None,
            jobs: vec![],
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn what_a_job_says_while_an_agent_holds_the_conversation_is_for_the_agent() {
    let x = fixture(&["c1"]).await;
    held_by_agent(&x.store, "c1").await;
    let deferred = job(
        "c1",
        JobKind::AnswerDeferred {
            reply_to: 1,
            text: "hello".into(),
            asked_at: None,
        },
    );
    let r =
        x.f.handle(
            event(vec![
                record("d", "g", &deferred),
                record("r", "g", &refund("c1", "1002")),
            ]),
            None,
        )
        .await;
    assert!(r.batch_item_failures.is_empty());
    let (c, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages.iter().all(|m| m.internal),
        "the deferred answer and the refund's confirmation go to the agent: {messages:?}"
    );
    assert_eq!(c.handoff.agent(), Some("agent_ann"), "still the agent's");
    assert_eq!(c.slots.agent.as_deref(), Some("agent_ann"));
}

#[tokio::test]
async fn a_question_only_the_agent_saw_leaves_nothing_pending() {
    let x = fixture(&["c1"]).await;
    held_by_agent(&x.store, "c1").await;
    let deferred = job(
        "c1",
        JobKind::AnswerDeferred {
            reply_to: 1,
            text: "where is order 1002?".into(),
            asked_at: None,
        },
    );
    let r =
        x.f.handle(event(vec![record("d", "g", &deferred)]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    let (c, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    assert!(
        messages[0].internal && messages[0].text.contains("refund"),
        "the answer, with its offer, went to the agent: {messages:?}"
    );
    assert!(messages[0].quick_replies.is_empty(), "no buttons in a note");
    assert_eq!(
        c.state,
        DialogueState::Idle,
        "the customer never saw the offer: their next yes must not take it"
    );
}

#[tokio::test]
async fn a_job_that_hands_off_queues_the_conversation() {
    let x = fixture(&["c1"]).await;
    let r =
        x.f.handle(
            event(vec![record("m", "g", &refund("c1", "refused"))]),
            None,
        )
        .await;
    assert!(r.batch_item_failures.is_empty());
    let c = x
        .store
        .load(&key("c1"), 0)
        .await
        .unwrap()
        .unwrap()
        .conversation;
    let crate::handoff::Handoff::Waiting {
        reason, order_id, ..
    } = &c.handoff
    else {
        panic!("not queued: {:?}", c.handoff);
    };
    assert_eq!(reason, "refund_request_failed");
    assert_eq!(order_id.as_deref(), Some("refused"));
    let queue = x
        .store
        .handoffs("t", crate::handoff::HandoffState::Waiting, 10)
        .await
        .unwrap();
    assert_eq!(queue.len(), 1);
    let (_, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    assert!(!messages[0].internal, "the bot still speaks while it waits");
}

/// An order system that answers only when the test lets it.
struct Gate(Arc<tokio::sync::Notify>);

#[async_trait]
impl OrdersPort for Gate {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        self.0.notified().await;
        Ok(vec![])
    }
    async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
        self.0.notified().await;
        Ok(None)
    }
}

#[tokio::test]
async fn a_deferred_answer_does_not_undo_what_the_customer_did_meanwhile() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let x = fixture_with(&["c1"], Dialogue::new(Arc::new(Gate(gate.clone())))).await;
    let deferred = job(
        "c1",
        JobKind::AnswerDeferred {
            reply_to: 1,
            text: "where's my order?".into(),
            asked_at: None,
        },
    );
    let f = &x.f;
    let answering = f.handle(event(vec![record("d", "g", &deferred)]), None);
    let meanwhile = async {
        // The lookup is held; a turn asks for a person and commits.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let snap = x.store.load(&key("c1"), 0).await.unwrap().unwrap();
        let mut c = snap.conversation;
        let read = c.version;
        c.version += 1;
        // As a turn that hands off leaves it: queued, and the dialogue's flag set.
        c.handoff = c
            .handoff
            .requested("human_agent", None, OffsetDateTime::now_utc())
            .unwrap();
        c.handoff.sync_slots(&mut c.slots);
        x.store
            .commit(Commit {
                conversation: c,
                expected_version: read,
                messages: vec![],
                turn: None,
                effect: None,
                jobs: vec![],
            })
            .await
            .unwrap();
        gate.notify_one();
    };
    let (r, ()) = tokio::join!(answering, meanwhile);
    assert!(r.batch_item_failures.is_empty());
    let after = x.store.load(&key("c1"), 10).await.unwrap().unwrap();
    assert!(
        after.conversation.slots.handoff_requested,
        "the newer slots are kept"
    );
    assert_eq!(
        after.conversation.handoff.state(),
        crate::handoff::HandoffState::Waiting
    );
    let answer = after.recent.last().expect("the deferred reply is posted");
    assert_eq!(answer.reply_to, Some(1));
    assert!(answer.text.contains("recent orders"), "{}", answer.text);
}

fn payment_failed(event_id: &str, vendor_customer: Option<&str>, email: Option<&str>) -> String {
    let e = VendorEvent {
        vendor: "stripe".into(),
        event_id: event_id.into(),
        vendor_type: "invoice.payment_failed".into(),
        event: EventKind::PaymentFailed,
        status: None,
        vendor_customer_id: vendor_customer.map(Into::into),
        customer_email: email.map(Into::into),
        order_id: None,
        amount: None,
        payment_url: Some("https://pay.example/i/1".into()),
        tracking_url: None,
        carrier: None,
        received_at: OffsetDateTime::now_utc(),
    };
    serde_json::to_string(&Job::vendor_event("t", e)).unwrap()
}

#[tokio::test]
async fn a_payment_failure_opens_a_conversation_once_and_offers_help() {
    let x = fixture(&[]).await;
    let body = payment_failed("evt_1", Some("cus_alice"), None);
    for _ in 0..2 {
        let r = x.f.handle(event(vec![record("m", "g", &body)]), None).await;
        assert!(r.batch_item_failures.is_empty());
    }
    let convs = x.store.conversations_of("t", "alice", 10).await.unwrap();
    assert_eq!(convs.len(), 1);
    let (c, messages) = x
        .store
        .history(&key(&convs[0].id), 0, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].text,
        "Looks like your payment didn't go through — need help?"
    );
    assert_eq!(messages[0].role, Role::Bot);
    // The bundle's payment help flow waits on its "need help?", with the vendor's link.
    let DialogueState::Flow(flow) = &c.state else {
        panic!("{:?}", c.state)
    };
    assert_eq!(flow.frame.flow, "payment_help");
    assert_eq!(
        flow.frame.slots.get("payment_url"),
        Some(&crate::flow::value::Value::text("https://pay.example/i/1"))
    );
}

#[tokio::test]
async fn a_proactive_message_joins_the_open_conversation() {
    let x = fixture(&["open1"]).await;
    let body = payment_failed("evt_2", None, Some("alice@example.com"));
    let r = x.f.handle(event(vec![record("m", "g", &body)]), None).await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(x.store.message_count(&key("open1")), 1);
    assert_eq!(
        x.store
            .conversations_of("t", "alice", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn unmatched_customers_are_recorded_and_a_down_crm_is_retried() {
    let x = fixture(&[]).await;
    let nobody = payment_failed("evt_3", Some("cus_nobody"), Some("nobody@example.com"));
    let down = payment_failed("evt_4", None, Some("down@example.com"));
    let mut unknown: serde_json::Value =
        serde_json::from_str(&payment_failed("evt_5", Some("cus_alice"), None)).unwrap();
    unknown["event"] = "refund.settled".into();
    let r =
        x.f.handle(
            event(vec![
                record("a", "g1", &nobody),
                record("b", "g2", &down),
                record("c", "g3", &unknown.to_string()),
            ]),
            None,
        )
        .await;
    assert_eq!(failed(&r), vec!["b"]);
    assert!(x
        .store
        .conversations_of("t", "alice", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        x.store.effect_outcome("t", "event:t:stripe:evt_3"),
        Some(EffectOutcome::Failed)
    );
}

#[tokio::test]
async fn events_are_routed_by_a_vendor_link_or_a_verified_email_only() {
    let x = fixture(&[]).await;
    // Someone made a Stripe customer with gina's address: the link is unknown and her address
    // is not verified, so the event is nobody's.
    let spoofed = payment_failed("evt_6", Some("cus_mallory"), Some("gina@example.com"));
    // Without any vendor id, the same.
    let email_only = payment_failed("evt_7", None, Some("gina@example.com"));
    // Gina's own Stripe link does reach her, verified address or not.
    let linked = payment_failed("evt_8", Some("cus_gina"), Some("elsewhere@example.com"));
    // An unknown vendor id is an unknown payer: alice's address being verified in our CRM
    // does not make her the payer, so the event is nobody's.
    let unknown_payer = payment_failed("evt_9", Some("cus_mallory"), Some("alice@example.com"));
    // An envelope carries an email only from a vendor that confirms the addresses it sends
    // (`route_by_email`); with no vendor id, a verified one reaches its customer.
    let confirmed = payment_failed("evt_10", None, Some("alice@example.com"));
    let r =
        x.f.handle(
            event(vec![
                record("a", "g1", &spoofed),
                record("b", "g2", &email_only),
                record("c", "g3", &linked),
                record("d", "g4", &unknown_payer),
            ]),
            None,
        )
        .await;
    assert!(r.batch_item_failures.is_empty());
    for unmatched in ["evt_6", "evt_7", "evt_9"] {
        assert_eq!(
            x.store
                .effect_outcome("t", &format!("event:t:stripe:{unmatched}")),
            Some(EffectOutcome::Failed),
            "{unmatched}"
        );
    }
    let gina = x.store.conversations_of("t", "gina", 10).await.unwrap();
    assert_eq!(gina.len(), 1, "only the linked event reaches gina");
    assert_eq!(x.store.message_count(&key(&gina[0].id)), 1);
    assert!(
        x.store
            .conversations_of("t", "alice", 10)
            .await
            .unwrap()
            .is_empty(),
        "an unknown payer's event does not reach alice by her verified address"
    );
    let r =
        x.f.handle(event(vec![record("e", "g5", &confirmed)]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    let alice = x.store.conversations_of("t", "alice", 10).await.unwrap();
    assert_eq!(alice.len(), 1);
}

fn proactive_job(conv: &str, id: &str) -> String {
    job(
        conv,
        JobKind::ProactiveMessage {
            id: id.into(),
            text: format!("note {id}"),
        },
    )
}

fn short_policy(max_attempts: u32, deferred_for: Duration) -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(1),
        max: Duration::from_secs(4),
        max_attempts,
        deferred_for,
    }
}

#[tokio::test]
async fn a_job_out_of_its_own_attempts_is_dead_lettered_and_its_group_goes_on() {
    let x = fixture_policy(
        &["c1"],
        Dialogue::new(Arc::new(Crm)),
        short_policy(3, Duration::from_secs(3600)),
    )
    .await;
    // A refund whose payments system is down, then three healthy jobs of its conversation.
    let records = vec![
        record("bad", "g", &refund("c1", "down")),
        record("ok1", "g", &proactive_job("c1", "1")),
        record("ok2", "g", &proactive_job("c1", "2")),
        record("ok3", "g", &proactive_job("c1", "3")),
    ];
    // SQS delivers the group again after each failure: the healthy ones were held back.
    for attempt in 1..=2 {
        let r = x.f.handle(event(records.clone()), None).await;
        assert_eq!(
            failed(&r),
            vec!["bad", "ok1", "ok2", "ok3"],
            "attempt {attempt}"
        );
        assert!(x.outbox.dead.lock().unwrap().is_empty());
    }
    let r = x.f.handle(event(records.clone()), None).await;
    assert!(r.batch_item_failures.is_empty(), "{:?}", failed(&r));
    assert_eq!(
        *x.outbox.dead.lock().unwrap(),
        vec![(
            "bad".to_string(),
            "payments is unavailable: down".to_string(),
            3
        )]
    );
    assert_eq!(texts(&x.store, "c1").await, ["note 1", "note 2", "note 3"]);
    assert_eq!(x.payments.keys.lock().unwrap().len(), 3);
    // Set aside, not finished: a redrive starts over with the whole budget.
    assert_eq!(x.store.effect_outcome("t", "refund:t:down"), None);
    assert_eq!(
        x.store.state("t", "refund:t:down").await.unwrap(),
        Some(EffectState::SetAside)
    );
    let redriven = x
        .store
        .begin(
            "t",
            "refund:t:down",
            Duration::from_secs(1),
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    assert!(
        matches!(redriven, Begin::Started(Lease { attempt: 1, .. })),
        "{redriven:?}"
    );
    assert_eq!(
        x.store.state("t", "refund:t:down").await.unwrap(),
        Some(EffectState::InProgress)
    );
}

#[tokio::test]
async fn a_job_the_dead_letter_queue_refused_keeps_its_spent_attempts_and_is_put_again() {
    let x = fixture_policy(
        &["c1"],
        Dialogue::new(Arc::new(Crm)),
        short_policy(1, Duration::from_secs(3600)),
    )
    .await;
    x.outbox.dead_letters_down.store(true, Ordering::SeqCst);
    let records = vec![record("bad", "g", &refund("c1", "down"))];
    let r = x.f.handle(event(records.clone()), None).await;
    assert_eq!(failed(&r), vec!["bad"], "not off the jobs queue");
    assert_eq!(
        x.store.state("t", "refund:t:down").await.unwrap(),
        Some(EffectState::InProgress),
        "not set aside: its attempts still count"
    );
    x.outbox.dead_letters_down.store(false, Ordering::SeqCst);
    let r = x.f.handle(event(records), None).await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1, "not tried afresh");
    assert_eq!(x.outbox.dead.lock().unwrap().len(), 1);
    assert_eq!(
        x.store.state("t", "refund:t:down").await.unwrap(),
        Some(EffectState::SetAside)
    );
}

#[tokio::test]
async fn a_job_whose_starts_never_finished_is_dead_lettered_without_running() {
    let x = fixture_policy(
        &["c1"],
        Dialogue::new(Arc::new(Crm)),
        short_policy(2, Duration::from_secs(3600)),
    )
    .await;
    // Two starts whose holders died (their leases ran out without an outcome).
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    for i in 0..2 {
        let started = x
            .store
            .begin(
                "t",
                "refund:t:1002",
                Duration::ZERO,
                past + time::Duration::seconds(i),
            )
            .await
            .unwrap();
        assert!(matches!(started, Begin::Started(_)));
    }
    let r =
        x.f.handle(event(vec![record("m", "g", &refund("c1", "1002"))]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    assert!(x.payments.keys.lock().unwrap().is_empty(), "not run again");
    let dead = x.outbox.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].1.contains("never finished"), "{dead:?}");
}

/// An order system that is down for its first `down` calls.
struct Recovering {
    down: AtomicUsize,
}

#[async_trait]
impl OrdersPort for Recovering {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        if self
            .down
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(ConnectorError::Unavailable {
                system: "orders",
                detail: "connection refused".into(),
            });
        }
        Ok(vec![])
    }
    async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
        Ok(None)
    }
}

fn where_is_my_order(conv: &str) -> String {
    asked_at(conv, None)
}

fn asked_at(conv: &str, at: Option<OffsetDateTime>) -> String {
    job(
        conv,
        JobKind::AnswerDeferred {
            reply_to: 1,
            text: "where's my order?".into(),
            asked_at: at,
        },
    )
}

#[tokio::test]
async fn a_deferred_answer_waits_for_the_system_with_growing_delays_and_answers_once() {
    let orders = Arc::new(Recovering {
        down: AtomicUsize::new(3),
    });
    let x = fixture_policy(
        &["c1"],
        Dialogue::new(orders),
        // Fewer attempts than the answer needs: deferred answers go by time, not attempts.
        short_policy(2, Duration::from_secs(3600)),
    )
    .await;
    let body = where_is_my_order("c1");
    for _ in 0..3 {
        let r = x.f.handle(event(vec![record("d", "g", &body)]), None).await;
        assert_eq!(failed(&r), vec!["d"]);
    }
    assert!(
        texts(&x.store, "c1").await.is_empty(),
        "nothing said while down"
    );
    let delays: Vec<u64> = x
        .outbox
        .delays
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.1)
        .collect();
    assert_eq!(delays, vec![1, 2, 4], "doubling per attempt of its own");
    let r = x.f.handle(event(vec![record("d", "g", &body)]), None).await;
    assert!(r.batch_item_failures.is_empty());
    let said = texts(&x.store, "c1").await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("recent orders"), "{said:?}");
    assert!(x.outbox.dead.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_deferred_answer_past_its_time_says_so_once_and_offers_a_person() {
    let orders = Arc::new(Recovering {
        down: AtomicUsize::new(usize::MAX),
    });
    let x = fixture_policy(
        &["c1"],
        Dialogue::new(orders),
        short_policy(8, Duration::ZERO),
    )
    .await;
    let body = where_is_my_order("c1");
    for _ in 0..2 {
        let r = x.f.handle(event(vec![record("d", "g", &body)]), None).await;
        assert!(r.batch_item_failures.is_empty());
    }
    let (c, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    assert_eq!(messages.len(), 1, "once");
    assert_eq!(messages[0].text, bundle_text("deferred.gave_up"));
    assert_eq!(messages[0].reply_to, Some(1));
    assert_eq!(
        c.state,
        DialogueState::HandoffOffered {
            reason: "answer_deferred_failed".into()
        }
    );
    assert_eq!(
        x.store.effect_outcome("t", "answer:t:c1:1"),
        Some(EffectOutcome::Failed)
    );
    assert!(x.outbox.dead.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_job_for_a_conversation_that_is_gone_completes_quietly_and_still_emails() {
    let x = fixture(&[]).await;
    let r =
        x.f.handle(event(vec![record("m", "g", &refund("gone", "1002"))]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(
        x.store.effect_outcome("t", "refund:t:1002"),
        Some(EffectOutcome::Done),
        "the refund happened; it is not recorded as failed"
    );
    assert!(
        x.store.load(&key("gone"), 0).await.unwrap().is_none(),
        "not brought back"
    );
    let started: Vec<&str> = x
        .store
        .take_outbox()
        .iter()
        .map(|j| j.kind.type_name())
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(started, ["email.confirmation"]);
}

#[tokio::test]
async fn a_deferred_answer_counts_its_time_from_the_question_and_returns_for_its_last_chance() {
    let orders = Arc::new(Recovering {
        down: AtomicUsize::new(usize::MAX),
    });
    let policy = RetryPolicy {
        base: Duration::from_secs(600),
        ..short_policy(8, Duration::from_secs(3600))
    };
    let x = fixture_policy(&["c1", "c2"], Dialogue::new(orders), policy).await;
    // Asked 59 min 57 s ago: the next try is when its hour ends, not ten minutes later.
    let now = OffsetDateTime::now_utc();
    let nearly = asked_at("c1", Some(now - time::Duration::seconds(3597)));
    let r =
        x.f.handle(event(vec![record("d1", "g1", &nearly)]), None)
            .await;
    assert_eq!(failed(&r), vec!["d1"]);
    let delay = x.outbox.delays.lock().unwrap()[0].1;
    assert!((1..=3).contains(&delay), "{delay}");
    // Asked two hours ago (it waited in the queue): its first attempt is its last.
    let late = asked_at("c2", Some(now - time::Duration::hours(2)));
    let r =
        x.f.handle(event(vec![record("d2", "g2", &late)]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(
        texts(&x.store, "c2").await,
        [bundle_text("deferred.gave_up")]
    );
}

#[tokio::test]
async fn a_deferred_answer_that_gives_up_after_the_customer_moved_on_keeps_their_state() {
    let orders = Arc::new(Recovering {
        down: AtomicUsize::new(usize::MAX),
    });
    let x = fixture_policy(
        &["c1"],
        Dialogue::new(orders),
        short_policy(8, Duration::ZERO),
    )
    .await;
    // After the question (message 1), the customer said something else, which was answered
    // with a question of its own.
    let snap = x.store.load(&key("c1"), 0).await.unwrap().unwrap();
    let c = snap.conversation;
    let now = OffsetDateTime::now_utc();
    let said = |seq, role, text: &str| Message::new(seq, role, text, now);
    let asked = DialogueState::Clarifying {
        options: vec!["order_status".into(), "cancel_order".into()],
        order_refs: Vec::new(),
    };
    x.store
        .commit(Commit {
            conversation: Conversation {
                version: c.version + 1,
                last_seq: 3,
                state: asked.clone(),
                ..c.clone()
            },
            expected_version: c.version,
            messages: vec![
                said(1, Role::Customer, "where's my order?"),
                said(2, Role::Customer, "is the lamp in stock?"),
                said(3, Role::Bot, "Which product do you mean?"),
            ],
            turn: None,
            effect: None,
            jobs: vec![],
        })
        .await
        .unwrap();
    let r =
        x.f.handle(
            event(vec![record("d", "g", &where_is_my_order("c1"))]),
            None,
        )
        .await;
    assert!(r.batch_item_failures.is_empty());
    let (c, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    assert_eq!(
        messages.last().unwrap().text,
        bundle_text("deferred.gave_up_late"),
        "nothing asked that a later 'yes' could answer"
    );
    assert_eq!(c.state, asked, "the customer's question stays the open one");
}

/// One late order of alice's; listing her orders waits until the test lets it.
struct GatedLateOrder(Arc<tokio::sync::Notify>);

impl GatedLateOrder {
    fn order() -> Order {
        let now = OffsetDateTime::now_utc();
        Order {
            id: "1002".into(),
            customer_id: "alice".into(),
            status: crate::connectors::OrderStatus::InTransit,
            placed_at: now - time::Duration::days(10),
            promised_by: Some(now - time::Duration::days(3)),
            delivered_at: None,
            carrier: None,
            tracking_url: None,
            total: Money {
                amount_cents: 4599,
                currency: "USD".into(),
            },
            items: vec![],
            payment_ref: None,
        }
    }
}

#[async_trait]
impl OrdersPort for GatedLateOrder {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        self.0.notified().await;
        Ok(vec![Self::order()])
    }
    /// Held only at the first lookup (the list): the flow then reads the order it found.
    async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
        Ok(Some(Self::order()))
    }
}

#[tokio::test]
async fn a_deferred_answers_question_survives_a_job_that_posted_meanwhile() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let x = fixture_with(
        &["c1"],
        Dialogue::new(Arc::new(GatedLateOrder(gate.clone()))),
    )
    .await;
    let f = &x.f;
    let answering = f.handle(
        event(vec![record("d", "gd", &where_is_my_order("c1"))]),
        None,
    );
    let meanwhile = async {
        // While the lookup is held, a job of the conversation's own group posts a message.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let r = f
            .handle(
                event(vec![record("p", "g", &proactive_job("c1", "1"))]),
                None,
            )
            .await;
        assert!(r.batch_item_failures.is_empty());
        gate.notify_one();
    };
    let (r, ()) = tokio::join!(answering, meanwhile);
    assert!(r.batch_item_failures.is_empty());
    let (c, messages) = x.store.history(&key("c1"), 0, 10).await.unwrap().unwrap();
    let answer = messages.last().unwrap();
    assert!(
        answer.text.contains("Would you like a refund"),
        "{}",
        answer.text
    );
    assert!(
        matches!(&c.state, DialogueState::Flow(f) if f.frame.flow == "order_status"),
        "the answer's question is the conversation's: {:?}",
        c.state
    );
}

/// The in-memory store, whose commits fail while `failing` says how (the conversation store
/// down, or its record unreadable).
struct FailingCommits {
    inner: Arc<MemoryStore>,
    failing: Mutex<Option<fn() -> StoreError>>,
}

#[async_trait]
impl ConversationStore for FailingCommits {
    async fn load(
        &self,
        key: &ConversationKey,
        window: usize,
    ) -> Result<Option<crate::store::Snapshot>, StoreError> {
        self.inner.load(key, window).await
    }
    async fn commit(&self, commit: crate::store::Commit) -> Result<(), StoreError> {
        if let Some(e) = *self.failing.lock().unwrap() {
            return Err(e());
        }
        self.inner.commit(commit).await
    }
    async fn turn_record(
        &self,
        key: &ConversationKey,
        id: &str,
    ) -> Result<Option<crate::store::TurnRecord>, StoreError> {
        self.inner.turn_record(key, id).await
    }
    async fn history_if(
        &self,
        key: &ConversationKey,
        after: u64,
        limit: usize,
        may_read: &(dyn for<'c> Fn(&'c Conversation) -> bool + Send + Sync),
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
        self.inner.history_if(key, after, limit, may_read).await
    }
    async fn conversations_of(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<crate::conversation::ConversationSummary>, StoreError> {
        self.inner
            .conversations_of(tenant, customer_id, limit)
            .await
    }
    async fn erase_customer(
        &self,
        tenant: &str,
        customer_id: &str,
    ) -> Result<crate::store::Erasure, StoreError> {
        self.inner.erase_customer(tenant, customer_id).await
    }
    async fn handoffs(
        &self,
        tenant: &str,
        state: crate::handoff::HandoffState,
        limit: usize,
    ) -> Result<Vec<crate::handoff::QueueEntry>, StoreError> {
        self.inner.handoffs(tenant, state, limit).await
    }
}

/// A fixture whose conversation commits fail while `failing` is set.
async fn fixture_failing_commits(policy: RetryPolicy) -> (Fixture, Arc<FailingCommits>) {
    let x = fixture_policy(&["c1"], Dialogue::new(Arc::new(Crm)), policy).await;
    let store = Arc::new(FailingCommits {
        inner: x.store.clone(),
        failing: Mutex::new(None),
    });
    let f = Fulfillment::new(
        store.clone(),
        x.store.clone(),
        Systems {
            payments: x.payments.clone(),
            customers: Arc::new(Crm),
            orders: Arc::new(Crm),
            email: x.outbox.clone(),
            operations: x.boxes.clone(),
            dialogue: Arc::new(Dialogue::new(Arc::new(Crm))),
            channels: Default::default(),
            channel_sender: None,
            agent_inbox: Some("team@shop.example".into()),
            console_url: Some("https://console.shop.example/console/".into()),
        },
        x.outbox.clone(),
        x.outbox.clone(),
        policy,
    );
    (Fixture { f, ..x }, store)
}

fn receipt_json(id: &str) -> String {
    serde_json::to_string(&RefundReceipt {
        id: id.into(),
        status: "succeeded".into(),
        amount: Money {
            amount_cents: 100,
            currency: "USD".into(),
        },
    })
    .unwrap()
}

#[tokio::test]
async fn a_receipt_is_kept_for_the_lease_holder_only_and_survives_takeover_and_set_aside() {
    let store = MemoryStore::new();
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let begin = |at: OffsetDateTime| store.begin("t", "refund:t:1", Duration::ZERO, at);
    let Begin::Started(first) = begin(past).await.unwrap() else {
        panic!("not started")
    };
    assert_eq!(first.receipt, None);
    // Its lease ran out and another delivery took over: the first keeps nothing.
    let Begin::Started(second) = begin(past + time::Duration::seconds(1)).await.unwrap() else {
        panic!("not taken over")
    };
    assert_eq!(
        store
            .record_receipt("t", "refund:t:1", &first.token, "stale")
            .await,
        Err(StoreError::DuplicateEffect)
    );
    store
        .record_receipt("t", "refund:t:1", &second.token, "kept")
        .await
        .unwrap();
    // Handed back to every later start: after a takeover, and after a set-aside and redrive.
    let Begin::Started(third) = begin(past + time::Duration::seconds(2)).await.unwrap() else {
        panic!("not taken over")
    };
    assert_eq!(third.receipt.as_deref(), Some("kept"));
    store
        .set_aside("t", "refund:t:1", &third.token)
        .await
        .unwrap();
    let Begin::Started(redriven) = begin(OffsetDateTime::now_utc()).await.unwrap() else {
        panic!("not redriven")
    };
    assert_eq!(redriven.attempt, 1);
    assert_eq!(redriven.receipt.as_deref(), Some("kept"));
    // A finished effect keeps no more.
    store
        .complete("t", "refund:t:1", &redriven.token, EffectOutcome::Done, &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .record_receipt("t", "refund:t:1", &redriven.token, "late")
            .await,
        Err(StoreError::DuplicateEffect)
    );
}

#[tokio::test]
async fn a_refund_paid_before_its_delivery_died_is_confirmed_from_its_receipt_not_paid_again() {
    let x = fixture(&["c1"]).await;
    // A delivery paid and kept the receipt, then died before its commit; its lease ran out.
    let past = OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let Begin::Started(dead) = x
        .store
        .begin("t", "refund:t:1002", Duration::ZERO, past)
        .await
        .unwrap()
    else {
        panic!("not started")
    };
    x.store
        .record_receipt("t", "refund:t:1002", &dead.token, &receipt_json("re_first"))
        .await
        .unwrap();
    let r =
        x.f.handle(event(vec![record("m", "g", &refund("c1", "1002"))]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    assert!(
        x.payments.keys.lock().unwrap().is_empty(),
        "the payments API is not asked again (its idempotency record may be gone)"
    );
    let said = texts(&x.store, "c1").await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("has been issued (reference re_first)"),
        "{said:?}"
    );
    assert_eq!(
        x.store.effect_outcome("t", "refund:t:1002"),
        Some(EffectOutcome::Done)
    );
    let started: Vec<&str> = x
        .store
        .take_outbox()
        .iter()
        .map(|j| j.kind.type_name())
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(started, ["email.confirmation"]);
}

#[tokio::test]
async fn a_paid_refund_whose_commit_keeps_failing_is_set_aside_and_a_redrive_pays_nothing() {
    let (x, store) = fixture_failing_commits(short_policy(2, Duration::from_secs(3600))).await;
    *store.failing.lock().unwrap() = Some(|| StoreError::Unavailable("down".into()));
    let body = refund("c1", "1002");
    // Paid on the first delivery; the commit fails on both: out of attempts, dead-lettered.
    for _ in 0..2 {
        x.f.handle(event(vec![record("m", "g", &body)]), None).await;
    }
    assert_eq!(x.outbox.dead.lock().unwrap().len(), 1);
    assert_eq!(
        x.store.state("t", "refund:t:1002").await.unwrap(),
        Some(EffectState::SetAside)
    );
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1);
    // Redriven a day later, the payments API's idempotency record gone: confirmed, not paid.
    *store.failing.lock().unwrap() = None;
    let r =
        x.f.handle(event(vec![record("m2", "g", &body)]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1, "paid once");
    let said = texts(&x.store, "c1").await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("has been issued"), "{said:?}");
    assert_eq!(
        x.store.effect_outcome("t", "refund:t:1002"),
        Some(EffectOutcome::Done)
    );
}

#[tokio::test]
async fn a_paid_refund_that_cannot_be_confirmed_is_done_not_failed_or_apologised_for() {
    let (x, store) = fixture_failing_commits(RetryPolicy::default()).await;
    // The conversation's record cannot be written: a permanent failure, after the payment.
    *store.failing.lock().unwrap() = Some(|| StoreError::Corrupt("bad record".into()));
    let r =
        x.f.handle(event(vec![record("m", "g", &refund("c1", "1002"))]), None)
            .await;
    assert!(r.batch_item_failures.is_empty());
    assert_eq!(x.payments.keys.lock().unwrap().len(), 1);
    assert_eq!(
        x.store.effect_outcome("t", "refund:t:1002"),
        Some(EffectOutcome::Done),
        "the refund happened"
    );
    assert!(texts(&x.store, "c1").await.is_empty(), "no apology");
    // The customer's confirmation email goes; no handoff invites a second refund by hand.
    let started: Vec<&str> = x
        .store
        .take_outbox()
        .iter()
        .map(|j| j.kind.type_name())
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(started, ["email.confirmation"]);
}

#[tokio::test]
async fn a_refund_the_order_no_longer_supports_is_refused_without_paying() {
    let x = fixture(&["c1", "c2", "c3", "c4"]).await;
    let too_much = job(
        "c4",
        JobKind::RefundRequest {
            order_id: "1002".into(),
            amount: Money {
                amount_cents: 10_001,
                currency: "USD".into(),
            },
        },
    );
    let cases = [
        ("c1", refund("c1", "bobs"), "not_theirs", "on your account"),
        ("c2", refund("c2", "gone"), "not_theirs", "on your account"),
        (
            "c3",
            refund("c3", "delivered"),
            "no_longer_offered",
            "isn't running late any more",
        ),
        ("c4", too_much, "amount_not_covered", "doesn't match"),
    ];
    for (conv, body, code, why) in &cases {
        for _ in 0..2 {
            let r = x.f.handle(event(vec![record("m", conv, body)]), None).await;
            assert!(r.batch_item_failures.is_empty(), "{conv}: no retry loop");
        }
        let said = texts(&x.store, conv).await;
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains(why), "{said:?}");
        assert!(said[0].contains("I haven't refunded anything"), "{said:?}");
        let handoffs: Vec<JobKind> = x
            .store
            .take_outbox()
            .into_iter()
            .map(|j| j.kind)
            .filter(|k| k.type_name() == "agent.handoff")
            .collect();
        assert!(
            matches!(&handoffs[..], [JobKind::AgentHandoff { reason, .. }] if *reason == format!("refund_refused_{code}")),
            "{handoffs:?}"
        );
    }
    assert!(x.payments.keys.lock().unwrap().is_empty(), "nothing paid");
    for order in ["bobs", "gone", "delivered", "1002"] {
        assert_eq!(
            x.store.effect_outcome("t", &format!("refund:t:{order}")),
            Some(EffectOutcome::Failed)
        );
    }
}

/// The bundle's sentence `key` (no variables).
fn bundle_text(key: &str) -> String {
    crate::bot::Bot::embedded()
        .default_messages()
        .render(key, &[])
}
