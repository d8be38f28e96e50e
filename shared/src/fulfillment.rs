//! Fulfillment: jobs from the FIFO queue, each applied once, with failures reported per item so
//! SQS redelivers only those (and, after `maxReceiveCount`, moves them to the DLQ).

use std::collections::HashSet;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use time::OffsetDateTime;

use crate::connectors::{ConnectorError, CustomersPort, OrdersPort, PaymentsPort};
use crate::conversation::{
    derived_conversation_id, Conversation, ConversationKey, DialogueState, Message, Role,
};
use crate::jobs::{Job, JobKind};
use crate::metrics;
use crate::store::{backoff, Commit, ConversationStore, StoreError, MAX_COMMIT_ATTEMPTS};
use crate::webhook::config::EventKind;
use crate::webhook::events::VendorEvent;

/// A proactive message joins the customer's latest conversation if it moved this recently;
/// otherwise it opens a new one.
const OPEN_CONVERSATION: time::Duration = time::Duration::days(7);

pub const PAYMENT_FAILED_TEXT: &str = "Looks like your payment didn't go through — need help?";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("message body is not a job: {0}")]
    Malformed(String),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("conversation {0} does not exist")]
    MissingConversation(String),
    #[error("conversation kept changing; will retry")]
    Contended,
}

/// The systems fulfillment reaches.
pub struct Systems {
    pub payments: Arc<dyn PaymentsPort>,
    pub customers: Arc<dyn CustomersPort>,
    pub orders: Arc<dyn OrdersPort>,
}

pub struct Fulfillment {
    store: Arc<dyn ConversationStore>,
    systems: Systems,
}

/// How a message changes the conversation it is appended to.
struct Append<'a> {
    key: ConversationKey,
    /// Set when the conversation may be opened by this message.
    customer_if_new: Option<&'a str>,
    effect: &'a str,
    text: String,
    state: Option<DialogueState>,
    order_id: Option<String>,
}

impl Fulfillment {
    pub fn new(store: Arc<dyn ConversationStore>, systems: Systems) -> Self {
        Self { store, systems }
    }

    /// Handles a batch in order. In a FIFO queue, once a message of a group fails, the later
    /// messages of that group in the batch are reported failed unprocessed, so order holds.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut failed_groups: HashSet<String> = HashSet::new();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let group = record.attributes.get("MessageGroupId").cloned();
            if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
                tracing::info!(message_id = %id, "skipped: an earlier job of its group failed");
                response.add_failure(id);
                continue;
            }
            if let Err(e) = self.process(record).await {
                tracing::error!(message_id = %id, error = %e, "job failed");
                response.add_failure(id);
                if let Some(g) = group {
                    failed_groups.insert(g);
                }
            }
        }
        response
    }

    async fn process(&self, record: &SqsMessage) -> Result<(), JobError> {
        let body = record
            .body
            .as_deref()
            .ok_or_else(|| JobError::Malformed("empty body".into()))?;
        let job: Job =
            serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))?;
        tracing::info!(job_type = job.kind.type_name(), job_key = %job.key, "processing job");
        match &job.kind {
            JobKind::RefundRequest { order_id, amount } => {
                let key = job.conversation_key().ok_or_else(|| {
                    JobError::Malformed("a refund job needs a conversation_id".into())
                })?;
                let receipt = self
                    .systems
                    .payments
                    .refund(order_id, amount, &job.key)
                    .await?;
                let text = format!(
                    "Your refund of {} for order #{order_id} has been issued (reference {}). It can take 5–10 business days to show on your statement.",
                    receipt.amount, receipt.id
                );
                self.append(Append {
                    key,
                    customer_if_new: None,
                    effect: &job.key,
                    text,
                    state: None,
                    order_id: None,
                })
                .await
            }
            JobKind::VendorEvent(event) => self.vendor_event(&job, event).await,
        }
    }

    /// Turns a vendor's event into a proactive message in the customer's conversation.
    async fn vendor_event(&self, job: &Job, e: &VendorEvent) -> Result<(), JobError> {
        let dims = [("Vendor", e.vendor.as_str()), ("Event", e.event.as_str())];
        let (text, state) = match proactive_message(e) {
            Some(m) => m,
            None => {
                // Recorded and counted; retrying would not make it known.
                tracing::warn!(vendor = %e.vendor, vendor_type = %e.vendor_type, "event kind not handled here; dropped");
                metrics::count("VendorEventUnhandled", &dims);
                return Ok(());
            }
        };
        let Some(customer_id) = self.find_customer(e).await? else {
            tracing::warn!(vendor = %e.vendor, event_id = %e.event_id, "no customer matches the event; dropped");
            metrics::count("VendorEventUnmatched", &dims);
            return Ok(());
        };
        let key = self
            .conversation_for(&job.tenant, &customer_id, &job.key)
            .await?;
        tracing::info!(vendor = %e.vendor, event = e.event.as_str(), conversation_id = %key.id, "proactive message");
        self.append(Append {
            key,
            customer_if_new: Some(&customer_id),
            effect: &job.key,
            text,
            state,
            order_id: e.order_id.clone(),
        })
        .await?;
        metrics::count("ProactiveMessage", &dims);
        Ok(())
    }

    /// Who the event is about: by the vendor's customer id, then email, then the order's owner.
    /// A system that refuses the lookup (4xx, bad shape) means no match; one that is down
    /// means retry.
    async fn find_customer(&self, e: &VendorEvent) -> Result<Option<String>, JobError> {
        let permanent_as_none = |r: Result<Option<String>, ConnectorError>| match r {
            Err(err) if !err.is_transient() => {
                tracing::warn!(error = %err, "customer lookup refused");
                Ok(None)
            }
            other => other,
        };
        let c = &self.systems.customers;
        if let Some(id) = &e.vendor_customer_id {
            let found = c.by_vendor_id(&e.vendor, id).await.map(|o| o.map(|c| c.id));
            if let Some(found) = permanent_as_none(found)? {
                return Ok(Some(found));
            }
        }
        if let Some(email) = &e.customer_email {
            let found = c.by_email(email).await.map(|o| o.map(|c| c.id));
            if let Some(found) = permanent_as_none(found)? {
                return Ok(Some(found));
            }
        }
        if let Some(order) = &e.order_id {
            let found = self
                .systems
                .orders
                .order(order)
                .await
                .map(|o| o.map(|o| o.customer_id));
            return Ok(permanent_as_none(found)?);
        }
        Ok(None)
    }

    /// The customer's open conversation, or a new one whose id the job determines, so that a
    /// redelivered job opens the same one.
    async fn conversation_for(
        &self,
        tenant: &str,
        customer_id: &str,
        job_key: &str,
    ) -> Result<ConversationKey, JobError> {
        let latest = self.store.conversations_of(tenant, customer_id, 1).await?;
        let cutoff = OffsetDateTime::now_utc() - OPEN_CONVERSATION;
        let id = match latest.first() {
            Some(c) if c.updated_at >= cutoff => c.id.clone(),
            _ => derived_conversation_id(tenant, customer_id, job_key),
        };
        Ok(ConversationKey {
            tenant: tenant.to_string(),
            id,
        })
    }

    /// Appends a bot message once per effect: the effect's key is written with the message in
    /// the same conditional transaction, so a redelivered job finds it and writes nothing.
    async fn append(&self, a: Append<'_>) -> Result<(), JobError> {
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            let c = match (self.store.load(&a.key, 0).await?, a.customer_if_new) {
                (Some(snapshot), _) => snapshot.conversation,
                (None, Some(customer)) => Conversation::new(a.key.clone(), customer.into(), now),
                (None, None) => return Err(JobError::MissingConversation(a.key.id.clone())),
            };
            let now = now.max(c.updated_at);
            let message = Message {
                seq: c.last_seq + 1,
                role: Role::Bot,
                text: a.text.clone(),
                created_at: now,
                client_message_id: None,
                reply_to: None,
            };
            let expected_version = c.version;
            let mut next = Conversation {
                version: expected_version + 1,
                last_seq: message.seq,
                updated_at: now,
                ..c
            };
            if let Some(state) = &a.state {
                next.state = state.clone();
            }
            if let Some(order) = &a.order_id {
                next.slots.order_id = Some(order.clone());
            }
            let commit = Commit {
                conversation: next,
                expected_version,
                messages: vec![message],
                turn: None,
                effect: Some(a.effect.to_string()),
            };
            match self.store.commit(commit).await {
                Ok(()) => return Ok(()),
                Err(StoreError::DuplicateEffect) => {
                    tracing::info!(effect = %a.effect, "already applied; nothing to do");
                    return Ok(());
                }
                Err(StoreError::Conflict) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Contended)
    }
}

/// What the bot says for an event, and where the dialogue goes; `None` for kinds not handled.
fn proactive_message(e: &VendorEvent) -> Option<(String, Option<DialogueState>)> {
    let order = e
        .order_id
        .as_deref()
        .map(|o| format!("order #{o}"))
        .unwrap_or_else(|| "your order".into());
    let with_tracking = |mut text: String| {
        if let Some(url) = &e.tracking_url {
            text.push_str(&format!("\nTracking: {url}"));
        }
        text
    };
    match e.event {
        EventKind::PaymentFailed => Some((
            PAYMENT_FAILED_TEXT.to_string(),
            Some(DialogueState::PaymentHelpOffered {
                payment_url: e.payment_url.clone(),
            }),
        )),
        EventKind::OrderShipped => {
            let carrier = e
                .carrier
                .as_deref()
                .map(|c| format!(" with {c}"))
                .unwrap_or_default();
            Some((
                with_tracking(format!("Good news — {order} has shipped{carrier}.")),
                Some(DialogueState::Idle),
            ))
        }
        EventKind::OrderDelayed => Some((
            with_tracking(format!(
                "Heads up — {order} is delayed in transit. Sorry about that; ask me for a refund if it no longer works for you."
            )),
            Some(DialogueState::Idle),
        )),
        EventKind::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{Customer, Order, RefundReceipt};
    use crate::money::Money;
    use crate::store::memory::MemoryStore;
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Payments {
        keys: Mutex<Vec<String>>,
        fail_order: Option<String>,
    }

    #[async_trait]
    impl PaymentsPort for Payments {
        async fn refund(
            &self,
            order_id: &str,
            amount: &Money,
            key: &str,
        ) -> Result<RefundReceipt, ConnectorError> {
            if self.fail_order.as_deref() == Some(order_id) {
                return Err(ConnectorError::Unavailable {
                    system: "payments",
                    detail: "down".into(),
                });
            }
            self.keys.lock().unwrap().push(key.to_string());
            Ok(RefundReceipt {
                id: format!("re_{order_id}"),
                status: "succeeded".into(),
                amount: amount.clone(),
            })
        }
    }

    /// A CRM that knows alice as Stripe's cus_alice and by email; no orders.
    struct Crm;

    #[async_trait]
    impl CustomersPort for Crm {
        async fn by_vendor_id(
            &self,
            vendor: &str,
            id: &str,
        ) -> Result<Option<Customer>, ConnectorError> {
            Ok((vendor == "stripe" && id == "cus_alice").then(|| Customer {
                id: "alice".into(),
                email: None,
                name: None,
            }))
        }
        async fn by_email(&self, email: &str) -> Result<Option<Customer>, ConnectorError> {
            if email == "down@example.com" {
                return Err(ConnectorError::Unavailable {
                    system: "crm",
                    detail: "down".into(),
                });
            }
            Ok((email == "alice@example.com").then(|| Customer {
                id: "alice".into(),
                email: Some(email.into()),
                name: None,
            }))
        }
    }

    #[async_trait]
    impl OrdersPort for Crm {
        async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
            Ok(vec![])
        }
        async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
            Ok(None)
        }
    }

    fn fulfillment(store: Arc<MemoryStore>, payments: Arc<Payments>) -> Fulfillment {
        Fulfillment::new(
            store,
            Systems {
                payments,
                customers: Arc::new(Crm),
                orders: Arc::new(Crm),
            },
        )
    }

    fn record(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.attributes = HashMap::from([("MessageGroupId".to_string(), group.to_string())]);
        m
    }

    fn refund_job(conv: &str, order: &str) -> String {
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv.into(),
        };
        serde_json::to_string(&Job::new(
            &key,
            "alice",
            JobKind::RefundRequest {
                order_id: order.into(),
                amount: Money {
                    amount_cents: 100,
                    currency: "USD".into(),
                },
            },
        ))
        .unwrap()
    }

    async fn seeded_store(convs: &[&str]) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::new());
        for id in convs {
            let key = ConversationKey {
                tenant: "t".into(),
                id: id.to_string(),
            };
            let mut c = Conversation::new(key, "alice".into(), OffsetDateTime::now_utc());
            c.version = 1;
            store
                .commit(Commit {
                    conversation: c,
                    expected_version: 0,
                    messages: vec![],
                    turn: None,
                    effect: None,
                })
                .await
                .unwrap();
        }
        store
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    #[tokio::test]
    async fn a_redelivered_job_appends_one_message() {
        let store = seeded_store(&["c1"]).await;
        let payments = Arc::new(Payments::default());
        let f = fulfillment(store.clone(), payments.clone());
        for _ in 0..2 {
            let r = f
                .handle(event(vec![record("m1", "g1", &refund_job("c1", "1002"))]))
                .await;
            assert!(r.batch_item_failures.is_empty());
        }
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c1".into(),
        };
        assert_eq!(store.message_count(&key), 1);
        // The payments API saw the same key both times, so it refunds once.
        assert_eq!(
            *payments.keys.lock().unwrap(),
            vec!["refund:t:1002", "refund:t:1002"]
        );
    }

    #[tokio::test]
    async fn failures_are_reported_per_item_and_block_the_rest_of_their_group() {
        let store = seeded_store(&["c1", "c2"]).await;
        let payments = Arc::new(Payments {
            fail_order: Some("bad".into()),
            ..Default::default()
        });
        let f = fulfillment(store, payments);
        let r = f
            .handle(event(vec![
                record("a", "g1", &refund_job("c1", "bad")),
                record("b", "g1", &refund_job("c1", "1003")),
                record("c", "g2", &refund_job("c2", "1004")),
                record("d", "g3", "{not json"),
            ]))
            .await;
        let failed: Vec<&str> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["a", "b", "d"]);
    }

    fn payment_failed(
        event_id: &str,
        vendor_customer: Option<&str>,
        email: Option<&str>,
    ) -> String {
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
        let store = Arc::new(MemoryStore::new());
        let f = fulfillment(store.clone(), Arc::new(Payments::default()));
        let job = payment_failed("evt_1", Some("cus_alice"), None);
        for _ in 0..2 {
            let r = f.handle(event(vec![record("m", "g", &job)])).await;
            assert!(r.batch_item_failures.is_empty());
        }
        let convs = store.conversations_of("t", "alice", 10).await.unwrap();
        assert_eq!(convs.len(), 1);
        let key = ConversationKey {
            tenant: "t".into(),
            id: convs[0].id.clone(),
        };
        let (c, messages) = store.history(&key, 0, 10).await.unwrap().unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].text, PAYMENT_FAILED_TEXT);
        assert_eq!(messages[0].role, Role::Bot);
        assert_eq!(
            c.state,
            DialogueState::PaymentHelpOffered {
                payment_url: Some("https://pay.example/i/1".into())
            }
        );
    }

    #[tokio::test]
    async fn a_proactive_message_joins_the_open_conversation() {
        let store = seeded_store(&["open1"]).await;
        let f = fulfillment(store.clone(), Arc::new(Payments::default()));
        let job = payment_failed("evt_2", None, Some("alice@example.com"));
        let r = f.handle(event(vec![record("m", "g", &job)])).await;
        assert!(r.batch_item_failures.is_empty());
        let key = ConversationKey {
            tenant: "t".into(),
            id: "open1".into(),
        };
        assert_eq!(store.message_count(&key), 1);
        assert_eq!(
            store
                .conversations_of("t", "alice", 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn unmatched_customers_are_dropped_and_a_down_crm_is_retried() {
        let store = Arc::new(MemoryStore::new());
        let f = fulfillment(store.clone(), Arc::new(Payments::default()));
        let nobody = payment_failed("evt_3", Some("cus_nobody"), Some("nobody@example.com"));
        let down = payment_failed("evt_4", None, Some("down@example.com"));
        let mut unknown: serde_json::Value =
            serde_json::from_str(&payment_failed("evt_5", Some("cus_alice"), None)).unwrap();
        unknown["event"] = "refund.settled".into();
        let r = f
            .handle(event(vec![
                record("a", "g1", &nobody),
                record("b", "g2", &down),
                record("c", "g3", &unknown.to_string()),
            ]))
            .await;
        let failed: Vec<&str> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["b"]);
        assert!(store
            .conversations_of("t", "alice", 10)
            .await
            .unwrap()
            .is_empty());
    }
}
