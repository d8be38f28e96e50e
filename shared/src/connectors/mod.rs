//! Ports to the company's systems, and the types the flows read from them. Flows call these
//! traits, never URLs. `configured` answers them from a connector file (`config`): REST and
//! GraphQL operations by name (`catalog`), with templates, response mappings, auth and
//! resilience (`engine`); `ses` is the AWS email adapter.

pub mod auth;
pub mod catalog;
pub mod config;
pub mod configured;
pub mod engine;
pub mod mapping;
pub mod operations;
pub mod record;
pub mod resilience;
pub mod ses;
pub mod template;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Processing,
    Shipped,
    InTransit,
    OutForDelivery,
    Delivered,
    Cancelled,
    /// A status this version does not know yet is shown, never fatal.
    #[serde(other)]
    Unknown,
}

impl OrderStatus {
    /// The statuses the flows know, as connector files and messages spell them.
    pub const KNOWN: [&'static str; 6] = [
        "processing",
        "shipped",
        "in_transit",
        "out_for_delivery",
        "delivered",
        "cancelled",
    ];
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub name: String,
    #[serde(default = "one")]
    pub quantity: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub placed_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub promised_by: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub carrier: Option<String>,
    #[serde(default)]
    pub tracking_url: Option<String>,
    pub total: Money,
    #[serde(default)]
    pub items: Vec<OrderItem>,
    /// The payment behind the order, for payments APIs that refund a payment (Stripe's
    /// `payment_intent`) rather than an order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_ref: Option<String>,
}

impl Order {
    /// Late: promised for a moment that has passed, and neither delivered nor cancelled.
    pub fn is_late(&self, now: OffsetDateTime) -> bool {
        !matches!(self.status, OrderStatus::Delivered | OrderStatus::Cancelled)
            && self.promised_by.is_some_and(|p| p < now)
    }

    /// What the customer calls the order by: its items' names ("Desk Lamp, USB-C Cable").
    pub fn item_names(&self) -> String {
        let names: Vec<&str> = self.items.iter().map(|i| i.name.as_str()).collect();
        names.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub id: String,
    pub status: String,
    pub amount: Money,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The system did not answer in time or answered 5xx/429: worth retrying later.
    #[error("{system} is unavailable: {detail}")]
    Unavailable {
        system: &'static str,
        detail: String,
    },
    /// The system refused the request (4xx other than 429): retrying will not help.
    #[error("{system} rejected the request ({status}): {detail}")]
    Rejected {
        system: &'static str,
        status: u16,
        detail: String,
    },
    /// The answer did not have the shape the mapping expects.
    #[error("{system} answered with an unexpected shape: {detail}")]
    Malformed {
        system: &'static str,
        detail: String,
    },
    /// The request could not be made as configured (an operation missing, a header value
    /// an input made invalid): fixing the config, not retrying, helps.
    #[error("{system} is misconfigured: {detail}")]
    Misconfigured {
        system: &'static str,
        detail: String,
    },
}

impl ConnectorError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ConnectorError::Unavailable { .. })
    }
}

#[async_trait]
pub trait OrdersPort: Send + Sync {
    /// The customer's recent orders, newest first.
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError>;
    /// One order by its number, whoever owns it; the caller checks ownership.
    async fn order(&self, order_id: &str) -> Result<Option<Order>, ConnectorError>;
}

/// A product as the inventory system lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    /// Units that can be sold now.
    pub available: u32,
    /// What one costs, when the inventory says: a company's catalogue may have no prices, and
    /// an amount without its currency is no price either (the bot never guesses a currency).
    #[serde(default, deserialize_with = "price")]
    pub price: Option<Money>,
}

/// `price.amount_cents` and `price.currency` as mapped: a price only when both are there.
fn price<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
    #[derive(Deserialize)]
    struct Partial {
        amount_cents: Option<i64>,
        currency: Option<String>,
    }
    Ok(match Option::<Partial>::deserialize(d)? {
        Some(Partial {
            amount_cents: Some(amount_cents),
            currency: Some(currency),
        }) => Some(Money {
            amount_cents,
            currency: currency.to_ascii_uppercase(),
        }),
        _ => None,
    })
}

#[async_trait]
pub trait InventoryPort: Send + Sync {
    /// The catalogue with what is in stock.
    async fn products(&self) -> Result<Vec<Product>, ConnectorError>;
}

/// A customer as the CRM knows them; `id` is the id our JWTs carry in `sub`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The CRM has confirmed the customer owns `email`. Unknown or absent is false: a vendor's
    /// event is routed by email only to a customer who proved the address is theirs.
    #[serde(default)]
    pub email_verified: bool,
}

#[async_trait]
pub trait CustomersPort: Send + Sync {
    /// The customer a vendor knows by `vendor_customer_id` (e.g. Stripe's `cus_…`).
    async fn by_vendor_id(
        &self,
        vendor: &str,
        vendor_customer_id: &str,
    ) -> Result<Option<Customer>, ConnectorError>;
    /// The one customer with this email; several matches are no match.
    async fn by_email(&self, email: &str) -> Result<Option<Customer>, ConnectorError>;
    /// A customer by our id (the JWT `sub`).
    async fn by_id(&self, customer_id: &str) -> Result<Option<Customer>, ConnectorError>;

    /// The one customer with this phone number (E.164); `None` when none or several have it, or
    /// the CRM has no phone lookup.
    async fn by_phone(&self, _phone: &str) -> Result<Option<Customer>, ConnectorError> {
        Ok(None)
    }
}

/// Sends through a messaging channel's provider: the inputs its `*.send_message` operation takes
/// (see `channels::*::render`).
#[async_trait]
pub trait ChannelSendPort: Send + Sync {
    async fn send(
        &self,
        provider: crate::channels::message::Provider,
        inputs: &[(&'static str, serde_json::Value)],
    ) -> Result<(), ConnectorError>;
}

#[async_trait]
pub trait EmailPort: Send + Sync {
    /// Sends one email; the same `idempotency_key` never sends twice where the provider
    /// honours it (the job ledger guards the rest).
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError>;
}

/// The company's operations by name, as flows and their jobs use them: the declared operations
/// of its own systems (and the built-in ones), with inputs and records in the flows' values.
#[async_trait]
pub trait OperationsPort: Send + Sync {
    /// A read of one record; `None` when the system has none.
    async fn read(
        &self,
        operation: &str,
        inputs: &crate::flow::value::Record,
    ) -> Result<Option<crate::flow::value::Record>, ConnectorError>;
    /// A write, sent with `idempotency_key`: the same key never acts twice where the system
    /// honours it, and a retry after a timeout or a crash sends the same one.
    async fn write(
        &self,
        operation: &str,
        inputs: &crate::flow::value::Record,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError>;
}

#[async_trait]
pub trait PaymentsPort: Send + Sync {
    /// Refunds an order; the same `idempotency_key` never refunds twice.
    async fn refund(
        &self,
        order_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, ConnectorError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn order(status: OrderStatus, promised: Option<OffsetDateTime>) -> Order {
        Order {
            id: "1001".into(),
            customer_id: "c".into(),
            status,
            placed_at: datetime!(2026-11-01 10:00 UTC),
            promised_by: promised,
            delivered_at: None,
            carrier: None,
            tracking_url: None,
            total: Money {
                amount_cents: 100,
                currency: "USD".into(),
            },
            items: vec![],
            payment_ref: None,
        }
    }

    #[test]
    fn lateness() {
        let now = datetime!(2026-11-20 00:00 UTC);
        assert!(order(
            OrderStatus::InTransit,
            Some(datetime!(2026-11-10 00:00 UTC))
        )
        .is_late(now));
        assert!(!order(
            OrderStatus::InTransit,
            Some(datetime!(2026-11-25 00:00 UTC))
        )
        .is_late(now));
        assert!(!order(
            OrderStatus::Delivered,
            Some(datetime!(2026-11-10 00:00 UTC))
        )
        .is_late(now));
        assert!(!order(OrderStatus::InTransit, None).is_late(now));
    }

    #[test]
    fn unknown_statuses_parse() {
        let s: OrderStatus = serde_json::from_str("\"awaiting_pickup\"").unwrap();
        assert_eq!(s, OrderStatus::Unknown);
    }
}
