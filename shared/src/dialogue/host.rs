//! The flow engine's way out ([`FlowHost`]) over the dialogue's ports, for one customer's
//! turn: orders, stock, the refund ledger and the operations the company declares for its own
//! systems (`boxes.get_subscription`), read within the turn's latency budget.
//!
//! A customer sees only their own orders: another customer's reads as missing, so a flow
//! cannot tell a stranger's order number from a wrong one. A read that is slow or whose system
//! is down fails with `HostError::Unavailable` and is remembered ([`PortsHost::trouble`]): the
//! dialogue then defers the whole turn exactly as for its own lookups ("Let me check" / "I
//! can't reach our systems"), keeping the conversation where it was. A declared operation
//! that takes a `customer_id` is always given the turn's customer, whatever the flow passed:
//! a flow cannot read another customer's records either.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::auth::Principal;
use crate::bot::format::Format;
use crate::bot::messages::{Messages, Value as MsgValue};
use crate::bot::Words;
use crate::connectors::catalog::Op;
use crate::connectors::{ConnectorError, InventoryPort, OperationsPort, Order, OrdersPort};
use crate::flow::engine::{FlowHost, HostError, RefundState};
use crate::flow::records;
use crate::flow::value::{Record, Value};
use crate::jobs::refund_key;
use crate::store::{EffectLedger, EffectOutcome, EffectState};

/// A lookup that missed the turn's deadline.
pub struct OverBudget;

/// Runs `call` until `deadline` (none: as long as it takes, as in the deferred job). The
/// connectors see the deadline too: no retry starts that would end past it.
pub async fn within<T>(
    deadline: Option<Instant>,
    call: impl std::future::Future<Output = T>,
) -> Result<T, OverBudget> {
    match deadline {
        None => Ok(call.await),
        Some(deadline) => tokio::time::timeout_at(
            deadline,
            crate::connectors::resilience::with_deadline(deadline, call),
        )
        .await
        .map_err(|_| OverBudget),
    }
}

/// Why a turn's reads could not all be made; the worse one is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trouble {
    /// A read missed the turn's budget: "Let me check".
    Slow,
    /// A system is down (timeouts, 5xx, an open circuit): "I can't reach our systems".
    Down,
}

pub struct PortsHost<'a> {
    who: &'a Principal,
    messages: &'a Messages,
    orders: &'a dyn OrdersPort,
    inventory: Option<&'a dyn InventoryPort>,
    ledger: Option<&'a dyn EffectLedger>,
    operations: Option<&'a dyn OperationsPort>,
    deadline: Option<Instant>,
    lists: BTreeMap<String, Vec<String>>,
    trouble: Mutex<Option<Trouble>>,
    /// The conversation's; the default bundle's English only when none is given (parsed on
    /// demand: a turn that gives its words must not pay for a second copy of English's).
    words: Option<Words>,
}

impl<'a> PortsHost<'a> {
    pub fn new(
        who: &'a Principal,
        messages: &'a Messages,
        orders: &'a dyn OrdersPort,
        deadline: Option<Instant>,
    ) -> Self {
        Self {
            who,
            messages,
            orders,
            inventory: None,
            ledger: None,
            operations: None,
            deadline,
            lists: BTreeMap::new(),
            trouble: Mutex::new(None),
            words: None,
        }
    }

    /// How the conversation's language is read (the default bundle's English without it).
    pub fn with_words(mut self, words: Words) -> Self {
        self.words = Some(words);
        self
    }

    pub fn with_inventory(mut self, inventory: Option<&'a dyn InventoryPort>) -> Self {
        self.inventory = inventory;
        self
    }

    pub fn with_ledger(mut self, ledger: Option<&'a dyn EffectLedger>) -> Self {
        self.ledger = ledger;
        self
    }

    /// The company's operations by name, for the reads its flows declare (`call`).
    pub fn with_operations(mut self, operations: Option<&'a dyn OperationsPort>) -> Self {
        self.operations = operations;
        self
    }

    /// A list the conversation keeps (`refunds_requested`), for the flows' actions.
    pub fn with_list(mut self, name: &str, items: Vec<String>) -> Self {
        self.lists.insert(name.to_string(), items);
        self
    }

    /// Whether a read was slow or found its system down during the turn.
    pub fn trouble(&self) -> Option<Trouble> {
        *self.trouble.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, t: Trouble) {
        let mut slot = self.trouble.lock().unwrap_or_else(|e| e.into_inner());
        *slot = (*slot).max(Some(t));
    }

    /// A connector read within the budget; slow or down is noted for the deferral.
    async fn read<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, HostError> {
        match within(self.deadline, call).await {
            Err(OverBudget) => {
                tracing::info!("a lookup missed the turn's latency budget; deferring");
                self.note(Trouble::Slow);
                Err(HostError::Unavailable("over the turn's budget".into()))
            }
            Ok(Err(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "a system is down during a turn; deferring the answer");
                self.note(Trouble::Down);
                Err(HostError::Unavailable(e.to_string()))
            }
            Ok(Err(e)) => Err(HostError::Failed(e.to_string())),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// An order as the flows see it, its summary phrased by the bundle.
    fn record(&self, o: &Order) -> Record {
        records::order(o, summary(self.messages, o))
    }

    fn may_see(&self, order: &Order) -> bool {
        crate::access::check(
            self.who,
            crate::access::Action::SeeOrder {
                owner: &order.customer_id,
            },
        )
        .is_ok()
    }
}

fn not_for_flows(operation: &str) -> HostError {
    HostError::Failed(format!("{operation}: not a read this host makes"))
}

#[async_trait]
impl FlowHost for PortsHost<'_> {
    async fn call(&self, operation: &str, inputs: &Record) -> Result<Option<Record>, HostError> {
        if operation != Op::OrdersGetStatus.name() {
            let Some(operations) = self.operations else {
                return Err(not_for_flows(operation));
            };
            let mut inputs = inputs.clone();
            if let Some(id) = inputs.get_mut(crate::flow::CUSTOMER_ID) {
                *id = Value::text(&self.who.customer_id);
            }
            return self.read(operations.read(operation, &inputs)).await;
        }
        let Some(id) = inputs.get("order_id").and_then(Value::as_text) else {
            return Err(HostError::Failed(format!("{operation}: no order_id")));
        };
        let found = self.read(self.orders.order(id)).await?;
        Ok(found.filter(|o| self.may_see(o)).map(|o| self.record(&o)))
    }

    async fn list(&self, operation: &str, _inputs: &Record) -> Result<Vec<Record>, HostError> {
        if operation == Op::OrdersListByCustomer.name() {
            // Always the turn's customer, whatever the inputs say.
            let orders = self
                .read(self.orders.recent_orders(&self.who.customer_id))
                .await?;
            return Ok(orders
                .iter()
                .filter(|o| self.may_see(o))
                .map(|o| self.record(o))
                .collect());
        }
        if operation == Op::InventoryAvailability.name() {
            let Some(inventory) = self.inventory else {
                return Err(HostError::Missing("no inventory system configured".into()));
            };
            let products = self.read(inventory.products()).await?;
            return Ok(products.iter().map(records::product).collect());
        }
        Err(not_for_flows(operation))
    }

    /// Within the budget but never deferring: a refund whose state cannot be read in time is
    /// said to be unknown, not guessed at.
    async fn refund_state(&self, order_id: &str) -> Result<Option<RefundState>, HostError> {
        let Some(ledger) = self.ledger else {
            return Err(HostError::Failed("no effect ledger".into()));
        };
        let key = refund_key(&self.who.tenant, order_id);
        let read = ledger.state(&self.who.tenant, &key);
        let state = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| HostError::Failed("not read within the turn's budget".into()))?,
            None => read.await,
        };
        let state = state.map_err(|e| HostError::Failed(e.to_string()))?;
        Ok(state.map(|s| match s {
            EffectState::InProgress => RefundState::InProgress,
            EffectState::SetAside => RefundState::SetAside,
            EffectState::Finished(EffectOutcome::Done) => RefundState::Done,
            EffectState::Finished(EffectOutcome::Failed) => RefundState::Failed,
        }))
    }

    fn customer_id(&self) -> &str {
        &self.who.customer_id
    }

    fn verified(&self) -> bool {
        self.who.verified
    }

    fn conversation_list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }

    fn phrase(&self, key: &str, vars: &[(String, Value)]) -> String {
        let vars: Vec<(&str, MsgValue)> = vars
            .iter()
            .map(|(k, v)| (k.as_str(), super::run_flow::message_value(v)))
            .collect();
        self.messages.render(key, &vars)
    }

    fn format(&self) -> &Format {
        self.messages.format()
    }

    fn words(&self) -> Words {
        self.words.clone().unwrap_or_default()
    }
}

/// "#1001", "#1001 (Desk lamp)", "#1001 (Desk lamp and 2 more)", in the bundle's words.
pub fn summary(messages: &Messages, o: &Order) -> String {
    let order = ("order", MsgValue::Text(o.id.clone()));
    match o.items.as_slice() {
        [] => messages.render(SUMMARY, &[order]),
        [one] => messages.render(SUMMARY_ITEM, &[order, ("item", one.name.as_str().into())]),
        [first, rest @ ..] => messages.render(
            SUMMARY_ITEMS,
            &[
                order,
                ("item", first.name.as_str().into()),
                ("more", MsgValue::Number(rest.len() as i64)),
            ],
        ),
    }
}

pub const SUMMARY: &str = "order.summary.plain";
pub const SUMMARY_ITEM: &str = "order.summary.one_item";
pub const SUMMARY_ITEMS: &str = "order.summary.items";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;
    use crate::connectors::{OrderStatus, Product};
    use crate::money::Money;
    use crate::store::memory::MemoryStore;
    use crate::store::Begin;

    fn order(id: &str, customer: &str) -> Order {
        Order {
            id: id.into(),
            customer_id: customer.into(),
            status: OrderStatus::InTransit,
            placed_at: datetime!(2026-11-14 10:00 UTC),
            promised_by: None,
            delivered_at: None,
            carrier: None,
            tracking_url: None,
            payment_ref: None,
            total: Money {
                amount_cents: 4599,
                currency: "USD".into(),
            },
            items: Vec::new(),
        }
    }

    /// The orders system: `down` answers 503s; `slow` never answers.
    struct Orders {
        all: Vec<Order>,
        down: bool,
        slow: bool,
    }

    impl Orders {
        async fn trouble(&self) -> Result<(), ConnectorError> {
            if self.slow {
                std::future::pending::<()>().await;
            }
            if self.down {
                return Err(ConnectorError::Unavailable {
                    system: "orders",
                    detail: "503".into(),
                });
            }
            Ok(())
        }
    }

    #[async_trait]
    impl OrdersPort for Orders {
        async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
            self.trouble().await?;
            // A careless system that returns everyone's: the host still shows only theirs.
            let _ = customer_id;
            Ok(self.all.clone())
        }
        async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
            self.trouble().await?;
            Ok(self.all.iter().find(|o| o.id == id).cloned())
        }
    }

    struct Stock;

    #[async_trait]
    impl InventoryPort for Stock {
        async fn products(&self) -> Result<Vec<Product>, ConnectorError> {
            Ok(vec![Product {
                sku: "L1".into(),
                name: "Desk lamp".into(),
                available: 3,
                price: None,
            }])
        }
    }

    fn orders() -> Orders {
        Orders {
            all: vec![order("1002", "alice"), order("2001", "bob")],
            down: false,
            slow: false,
        }
    }

    fn id(order_id: &str) -> Record {
        Record::from([("order_id".to_string(), Value::text(order_id))])
    }

    #[tokio::test]
    async fn another_customers_order_reads_as_missing() {
        let alice = Principal::customer("t", "alice");
        let m = crate::bot::Bot::embedded().default_messages();
        let o = orders();
        let host = PortsHost::new(&alice, &m, &o, None);
        let mine = host.call("orders.get_status", &id("1002")).await.unwrap();
        assert_eq!(
            mine.unwrap().get("status"),
            Some(&Value::text("in_transit"))
        );
        assert_eq!(host.call("orders.get_status", &id("2001")).await, Ok(None));
        assert_eq!(host.call("orders.get_status", &id("9999")).await, Ok(None));
        let listed = host
            .list("orders.list_by_customer", &Record::new())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(host.trouble(), None);
    }

    #[tokio::test]
    async fn a_system_down_fails_the_read_as_unavailable_and_is_noted() {
        let alice = Principal::customer("t", "alice");
        let m = crate::bot::Bot::embedded().default_messages();
        let o = Orders {
            down: true,
            ..orders()
        };
        let host = PortsHost::new(&alice, &m, &o, None);
        let e = host.call("orders.get_status", &id("1002")).await;
        assert!(matches!(e, Err(HostError::Unavailable(_))), "{e:?}");
        assert_eq!(host.trouble(), Some(Trouble::Down));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_past_the_turns_budget_is_noted_as_slow() {
        let alice = Principal::customer("t", "alice");
        let m = crate::bot::Bot::embedded().default_messages();
        let o = Orders {
            slow: true,
            ..orders()
        };
        let deadline = Instant::now() + Duration::from_millis(150);
        let host = PortsHost::new(&alice, &m, &o, Some(deadline));
        let e = host.list("orders.list_by_customer", &Record::new()).await;
        assert!(matches!(e, Err(HostError::Unavailable(_))), "{e:?}");
        assert_eq!(host.trouble(), Some(Trouble::Slow));
    }

    #[tokio::test]
    async fn stock_refunds_and_the_conversations_lists() {
        let alice = Principal::customer("t", "alice");
        let m = crate::bot::Bot::embedded().default_messages();
        let o = orders();
        let store = MemoryStore::new();
        let key = refund_key("t", "1002");
        let now = datetime!(2026-11-24 12:00 UTC);
        let Ok(Begin::Started(_)) = store.begin("t", &key, Duration::from_secs(60), now).await
        else {
            panic!("begins");
        };
        let host = PortsHost::new(&alice, &m, &o, None)
            .with_inventory(Some(&Stock))
            .with_ledger(Some(&store))
            .with_list("refunds_requested", vec!["1002".into()]);
        let products = host
            .list("inventory.availability", &Record::new())
            .await
            .unwrap();
        assert_eq!(products[0].get("available"), Some(&Value::Number(3)));
        assert_eq!(
            host.refund_state("1002").await,
            Ok(Some(RefundState::InProgress))
        );
        assert_eq!(host.refund_state("1001").await, Ok(None));
        assert_eq!(host.conversation_list("refunds_requested"), vec!["1002"]);
        assert!(host.conversation_list("welcome_back").is_empty());
        // Writes leave as jobs, never through the host.
        assert!(matches!(
            host.call("payments.refund", &id("1002")).await,
            Err(HostError::Failed(_))
        ));
        let no_ledger = PortsHost::new(&alice, &m, &o, None);
        assert!(no_ledger.refund_state("1002").await.is_err());
    }

    /// The company's own system: what each call was given; `down` answers as a 503.
    #[derive(Default)]
    struct Boxes {
        asked: Mutex<Vec<Record>>,
        down: bool,
    }

    #[async_trait]
    impl OperationsPort for Boxes {
        async fn read(
            &self,
            operation: &str,
            inputs: &Record,
        ) -> Result<Option<Record>, ConnectorError> {
            assert_eq!(operation, "boxes.get_subscription");
            self.asked.lock().unwrap().push(inputs.clone());
            if self.down {
                return Err(ConnectorError::Unavailable {
                    system: "boxes",
                    detail: "503".into(),
                });
            }
            let customer = inputs.get("customer_id").and_then(Value::as_text);
            Ok((customer == Some("alice"))
                .then(|| Record::from([("plan".to_string(), Value::text("Veggie box"))])))
        }
        async fn write(&self, _: &str, _: &Record, _: &str) -> Result<(), ConnectorError> {
            unreachable!("writes leave as jobs")
        }
    }

    fn customer(id: &str) -> Record {
        Record::from([("customer_id".to_string(), Value::text(id))])
    }

    #[tokio::test]
    async fn a_declared_read_is_made_for_the_signed_in_customer_only() {
        let alice = Principal::customer("t", "alice");
        let m = crate::bot::Bot::embedded().default_messages();
        let o = orders();
        let boxes = Boxes::default();
        let host = PortsHost::new(&alice, &m, &o, None).with_operations(Some(&boxes));
        let mine = host
            .call("boxes.get_subscription", &customer("alice"))
            .await
            .unwrap();
        assert_eq!(mine.unwrap().get("plan"), Some(&Value::text("Veggie box")));
        // A flow passing another id (a slot the customer typed, say) still reads alice's.
        let theirs = host
            .call("boxes.get_subscription", &customer("bob"))
            .await
            .unwrap();
        assert!(theirs.is_some());
        let asked = boxes.asked.lock().unwrap().clone();
        assert_eq!(asked, [customer("alice"), customer("alice")]);
        assert_eq!(host.trouble(), None);

        // Without the company's operations a declared read is not made.
        let bare = PortsHost::new(&alice, &m, &o, None);
        assert!(matches!(
            bare.call("boxes.get_subscription", &customer("alice"))
                .await,
            Err(HostError::Failed(_))
        ));
    }

    #[tokio::test]
    async fn a_declared_system_down_fails_the_read_as_unavailable_and_is_noted() {
        let alice = Principal::customer("t", "alice");
        let m = crate::bot::Bot::embedded().default_messages();
        let o = orders();
        let boxes = Boxes {
            down: true,
            ..Boxes::default()
        };
        let host = PortsHost::new(&alice, &m, &o, None).with_operations(Some(&boxes));
        let e = host
            .call("boxes.get_subscription", &customer("alice"))
            .await;
        assert!(matches!(e, Err(HostError::Unavailable(_))), "{e:?}");
        assert_eq!(host.trouble(), Some(Trouble::Down));
    }
}
