//! Fulfillment throughput: batches of 10 jobs against a payments connector with a fixed 20 ms
//! latency, the groups of a batch running concurrently vs the same jobs one by one (one group),
//! and how many conversation-store calls (DynamoDB requests in AWS) each job costs.
//!
//!   cargo bench -p switchboard --bench fulfillment
//!
//! The store is the in-process adapter behind a counter: the figures are the project's own
//! overhead and call counts, with the connector's latency as the only wait.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use switchboard::connectors::{
    ConnectorError, Customer, CustomersPort, EmailPort, Order, OrderStatus, OrdersPort,
    PaymentsPort, RefundReceipt,
};
use switchboard::conversation::{Conversation, ConversationKey, ConversationSummary, Message};
use switchboard::dialogue::Dialogue;
use switchboard::fulfillment::dead_letter::DeadLetters;
use switchboard::fulfillment::retry::{QueueDefault, RetryPolicy};
use switchboard::fulfillment::{Fulfillment, Systems};
use switchboard::jobs::{Job, JobKind, QueueError};
use switchboard::money::Money;
use switchboard::store::memory::MemoryStore;
use switchboard::store::{
    Begin, Commit, ConversationStore, EffectLedger, EffectOutcome, EffectState, Snapshot,
    StoreError, TurnRecord,
};
use time::OffsetDateTime;

const LATENCY: Duration = Duration::from_millis(20);
const BATCH: usize = 10;
const BATCHES: usize = 20;

struct SlowPayments;

#[async_trait]
impl PaymentsPort for SlowPayments {
    async fn refund(
        &self,
        order: &str,
        amount: &Money,
        _: &str,
    ) -> Result<RefundReceipt, ConnectorError> {
        tokio::time::sleep(LATENCY).await;
        Ok(RefundReceipt {
            id: format!("re_{order}"),
            status: "succeeded".into(),
            amount: amount.clone(),
        })
    }
}

struct Nobody;

#[async_trait]
impl CustomersPort for Nobody {
    async fn by_vendor_id(&self, _: &str, _: &str) -> Result<Option<Customer>, ConnectorError> {
        Ok(None)
    }
    async fn by_email(&self, _: &str) -> Result<Option<Customer>, ConnectorError> {
        Ok(None)
    }
    async fn by_id(&self, _: &str) -> Result<Option<Customer>, ConnectorError> {
        Ok(None)
    }
}

#[async_trait]
impl OrdersPort for Nobody {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        Ok(vec![])
    }
    /// Every order is the bench customer's, late, and covers the refund: the job pays.
    async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
        let now = OffsetDateTime::now_utc();
        Ok(Some(Order {
            id: id.into(),
            customer_id: "customer".into(),
            status: OrderStatus::InTransit,
            placed_at: now - time::Duration::days(9),
            promised_by: Some(now - time::Duration::days(2)),
            delivered_at: None,
            carrier: None,
            tracking_url: None,
            total: Money {
                amount_cents: 100,
                currency: "USD".into(),
            },
            items: vec![],
            payment_ref: None,
        }))
    }
}

#[async_trait]
impl EmailPort for Nobody {
    async fn send(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[async_trait]
impl switchboard::connectors::OperationsPort for Nobody {
    async fn read(
        &self,
        _: &str,
        _: &switchboard::flow::value::Record,
    ) -> Result<Option<switchboard::flow::value::Record>, ConnectorError> {
        Ok(None)
    }
    async fn write(
        &self,
        _: &str,
        _: &switchboard::flow::value::Record,
        _: &str,
    ) -> Result<(), ConnectorError> {
        Ok(())
    }
}

#[async_trait]
impl DeadLetters for Nobody {
    async fn put(&self, _: &SqsMessage, _: &str, _: u32) -> Result<(), QueueError> {
        Ok(())
    }
}

/// Counts calls: each is one DynamoDB request in the DynamoDB adapter.
struct Counted {
    inner: MemoryStore,
    calls: AtomicU64,
}

impl Counted {
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl ConversationStore for Counted {
    async fn load(&self, k: &ConversationKey, w: usize) -> Result<Option<Snapshot>, StoreError> {
        self.tick();
        self.inner.load(k, w).await
    }
    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        self.tick();
        self.inner.commit(c).await
    }
    async fn turn_record(
        &self,
        k: &ConversationKey,
        id: &str,
    ) -> Result<Option<TurnRecord>, StoreError> {
        self.tick();
        self.inner.turn_record(k, id).await
    }
    async fn history_if(
        &self,
        k: &ConversationKey,
        after: u64,
        limit: usize,
        may_read: &(dyn for<'c> Fn(&'c Conversation) -> bool + Send + Sync),
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
        self.tick();
        self.inner.history_if(k, after, limit, may_read).await
    }
    async fn conversations_of(
        &self,
        t: &str,
        c: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        self.tick();
        self.inner.conversations_of(t, c, limit).await
    }
    async fn erase_customer(
        &self,
        t: &str,
        c: &str,
    ) -> Result<switchboard::store::Erasure, StoreError> {
        self.tick();
        self.inner.erase_customer(t, c).await
    }
    async fn handoffs(
        &self,
        tenant: &str,
        state: switchboard::handoff::HandoffState,
        limit: usize,
    ) -> Result<Vec<switchboard::handoff::QueueEntry>, StoreError> {
        self.tick();
        self.inner.handoffs(tenant, state, limit).await
    }
}

#[async_trait]
impl EffectLedger for Counted {
    async fn begin(
        &self,
        t: &str,
        k: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Begin, StoreError> {
        self.tick();
        self.inner.begin(t, k, lease, now).await
    }
    async fn state(&self, t: &str, k: &str) -> Result<Option<EffectState>, StoreError> {
        self.tick();
        self.inner.state(t, k).await
    }
    async fn abandon(&self, t: &str, k: &str, token: &str) -> Result<(), StoreError> {
        self.tick();
        self.inner.abandon(t, k, token).await
    }
    async fn complete(
        &self,
        t: &str,
        k: &str,
        token: &str,
        o: EffectOutcome,
        jobs: &[Job],
    ) -> Result<(), StoreError> {
        self.tick();
        self.inner.complete(t, k, token, o, jobs).await
    }
    async fn set_aside(&self, t: &str, k: &str, token: &str) -> Result<(), StoreError> {
        self.tick();
        self.inner.set_aside(t, k, token).await
    }
    async fn record_receipt(
        &self,
        t: &str,
        k: &str,
        token: &str,
        receipt: &str,
    ) -> Result<(), StoreError> {
        self.tick();
        self.inner.record_receipt(t, k, token, receipt).await
    }
}

fn key(i: usize) -> ConversationKey {
    ConversationKey {
        tenant: "bench".into(),
        id: format!("conversation{i:04}"),
    }
}

async fn setup() -> (Fulfillment, Arc<Counted>) {
    let store = Arc::new(Counted {
        inner: MemoryStore::new(),
        calls: AtomicU64::new(0),
    });
    for i in 0..BATCH {
        store.inner.seed_conversation(key(i), "customer").await;
    }
    let f = Fulfillment::new(
        store.clone(),
        store.clone(),
        Systems {
            payments: Arc::new(SlowPayments),
            customers: Arc::new(Nobody),
            orders: Arc::new(Nobody),
            email: Arc::new(Nobody),
            operations: Arc::new(Nobody),
            dialogue: Arc::new(Dialogue::new(Arc::new(Nobody))),
            channels: Default::default(),
            channel_sender: None,
            agent_inbox: None,
            console_url: None,
        },
        Arc::new(QueueDefault),
        Arc::new(Nobody),
        RetryPolicy::default(),
    );
    (f, store)
}

/// One batch: job `i` refunds order `<round>-<i>` in conversation `i`; `grouped` gives each
/// conversation its own FIFO group, otherwise all ten share one group and run one by one.
fn batch(round: usize, grouped: bool) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = (0..BATCH)
        .map(|i| {
            let job = Job::new(
                &key(i),
                "customer",
                JobKind::RefundRequest {
                    order_id: format!("{round}-{i}"),
                    amount: Money {
                        amount_cents: 100,
                        currency: "USD".into(),
                    },
                },
            );
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("{round}-{i}"));
            m.body = Some(serde_json::to_string(&job).unwrap());
            let group = if grouped {
                format!("g{i}")
            } else {
                "one".into()
            };
            m.attributes.insert("MessageGroupId".into(), group);
            m
        })
        .collect();
    e
}

async fn run(grouped: bool) -> (f64, f64) {
    let (f, store) = setup().await;
    // A warm-up batch, not counted.
    assert!(f
        .handle(batch(usize::MAX, grouped), None)
        .await
        .batch_item_failures
        .is_empty());
    let calls_before = store.calls.load(Ordering::Relaxed);
    let start = Instant::now();
    for round in 0..BATCHES {
        let r = f.handle(batch(round, grouped), None).await;
        assert!(r.batch_item_failures.is_empty());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let jobs = (BATCHES * BATCH) as f64;
    let calls = (store.calls.load(Ordering::Relaxed) - calls_before) as f64;
    (jobs / elapsed, calls / jobs)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: both just run.
    switchboard::metrics::discard_output();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (concurrent, calls) = rt.block_on(run(true));
    let (sequential, calls_seq) = rt.block_on(run(false));
    println!(
        "fulfillment: {BATCHES} batches of {BATCH} refund jobs, payments latency {} ms",
        LATENCY.as_millis()
    );
    println!("  10 groups per batch (concurrent): {concurrent:8.1} jobs/s");
    println!("  1 group per batch (one by one):   {sequential:8.1} jobs/s");
    println!(
        "  speed-up:                         {:8.1}x",
        concurrent / sequential
    );
    println!("  store calls per job:              {calls:8.2} (one by one: {calls_seq:.2})");
    println!(
        "    = begin + keep the receipt (UpdateItem each) + load (Query) + append & complete (TransactWriteItems)"
    );
}
