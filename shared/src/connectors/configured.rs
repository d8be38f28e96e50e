//! The ports, answered by a connector file's operations: the flows keep calling
//! `OrdersPort::order` and never learn whether a REST API, Shopify's GraphQL or something else
//! is behind it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::catalog::Op;
use super::engine::{Connectors, Reply};
use super::{
    ConnectorError, Customer, CustomersPort, EmailPort, InventoryPort, Order, OrdersPort,
    PaymentsPort, Product, RefundReceipt,
};
use crate::money::Money;

/// Every port, over one set of connectors.
#[derive(Clone)]
pub struct Configured(pub Arc<Connectors>);

fn unexpected<T>(op: Op, reply: &Reply<T>) -> ConnectorError {
    ConnectorError::Malformed {
        system: op.system(),
        detail: format!("{op}: unexpected reply ({})", reply.kind()),
    }
}

impl Configured {
    async fn one<T: DeserializeOwned>(
        &self,
        op: Op,
        inputs: &[(&'static str, Value)],
    ) -> Result<Option<T>, ConnectorError> {
        match self.0.call_as(op, inputs).await? {
            Reply::Absent => Ok(None),
            Reply::One(v) => Ok(Some(v)),
            other => Err(unexpected(op, &other)),
        }
    }

    async fn many<T: DeserializeOwned>(
        &self,
        op: Op,
        inputs: &[(&'static str, Value)],
    ) -> Result<Vec<T>, ConnectorError> {
        match self.0.call_as(op, inputs).await? {
            Reply::Many(vs) => Ok(vs),
            other => Err(unexpected(op, &other)),
        }
    }

    /// The single customer a search finds; several are no match (we never guess who it is).
    async fn only(
        &self,
        op: Op,
        inputs: &[(&'static str, Value)],
    ) -> Result<Option<Customer>, ConnectorError> {
        let mut found: Vec<Customer> = self.many(op, inputs).await?;
        if found.len() > 1 {
            tracing::warn!(
                operation = op.name(),
                matches = found.len(),
                "CRM lookup is ambiguous; treated as no match"
            );
            return Ok(None);
        }
        Ok(found.pop())
    }
}

#[async_trait]
impl OrdersPort for Configured {
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
        let mut orders: Vec<Order> = self
            .many(
                Op::OrdersListByCustomer,
                &[("customer_id", json!(customer_id))],
            )
            .await?;
        // Systems list in their own order; the port promises newest first.
        orders.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
        Ok(orders)
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, ConnectorError> {
        self.one(Op::OrdersGetStatus, &[("order_id", json!(order_id))])
            .await
    }
}

#[async_trait]
impl CustomersPort for Configured {
    async fn by_vendor_id(
        &self,
        vendor: &str,
        vendor_customer_id: &str,
    ) -> Result<Option<Customer>, ConnectorError> {
        self.only(
            Op::CrmFindByVendorId,
            &[
                ("vendor", json!(vendor)),
                ("vendor_customer_id", json!(vendor_customer_id)),
            ],
        )
        .await
    }

    async fn by_email(&self, email: &str) -> Result<Option<Customer>, ConnectorError> {
        self.only(Op::CrmFindCustomer, &[("email", json!(email))])
            .await
    }

    async fn by_id(&self, customer_id: &str) -> Result<Option<Customer>, ConnectorError> {
        self.one(Op::CrmGetCustomer, &[("customer_id", json!(customer_id))])
            .await
    }

    async fn by_phone(&self, phone: &str) -> Result<Option<Customer>, ConnectorError> {
        if !self.0.has(Op::CrmFindByPhone) {
            return Ok(None);
        }
        self.only(Op::CrmFindByPhone, &[("phone", json!(phone))])
            .await
    }
}

#[async_trait]
impl super::ChannelSendPort for Configured {
    async fn send(
        &self,
        provider: crate::channels::message::Provider,
        inputs: &[(&'static str, Value)],
    ) -> Result<(), ConnectorError> {
        use crate::channels::message::Provider;
        let op = match provider {
            Provider::Whatsapp => Op::WhatsappSendMessage,
            Provider::Twilio => Op::TwilioSendMessage,
            Provider::Telegram => Op::TelegramSendMessage,
        };
        self.0.call(op, inputs).await.map(|_| ())
    }
}

#[async_trait]
impl InventoryPort for Configured {
    async fn products(&self) -> Result<Vec<Product>, ConnectorError> {
        self.many(Op::InventoryAvailability, &[]).await
    }
}

#[async_trait]
impl PaymentsPort for Configured {
    async fn refund(
        &self,
        order_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, ConnectorError> {
        let op = Op::PaymentsRefund;
        // A payments API that refunds a payment, not an order (Stripe's payment intents), is
        // told which payment through the order's `payment_ref`.
        let payment_ref = if self.0.uses(op, "payment_ref") {
            self.order(order_id)
                .await?
                .and_then(|o| o.payment_ref)
                .map(Value::String)
                .unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let inputs = [
            ("order_id", json!(order_id)),
            ("amount_cents", json!(amount.amount_cents)),
            ("amount", json!(amount.major_units())),
            ("currency", json!(amount.currency.to_ascii_uppercase())),
            (
                "currency_lower",
                json!(amount.currency.to_ascii_lowercase()),
            ),
            ("idempotency_key", json!(idempotency_key)),
            ("payment_ref", payment_ref),
        ];
        #[derive(serde::Deserialize)]
        struct Mapped {
            id: String,
            status: Option<String>,
            #[serde(default)]
            amount: PartialMoney,
        }
        #[derive(serde::Deserialize, Default)]
        struct PartialMoney {
            amount_cents: Option<i64>,
            currency: Option<String>,
        }
        let m: Mapped = match self.0.call_as(op, &inputs).await? {
            Reply::One(m) => m,
            Reply::Absent => {
                return Err(ConnectorError::Rejected {
                    system: op.system(),
                    status: 404,
                    detail: format!("{op}: no order {order_id} to refund"),
                })
            }
            other => return Err(unexpected(op, &other)),
        };
        Ok(RefundReceipt {
            id: m.id,
            status: m.status.unwrap_or_else(|| "submitted".into()),
            // What the system says it refunded, where it says; otherwise what was asked.
            amount: Money {
                amount_cents: m.amount.amount_cents.unwrap_or(amount.amount_cents),
                currency: m
                    .amount
                    .currency
                    .map(|c| c.to_ascii_uppercase())
                    .unwrap_or_else(|| amount.currency.clone()),
            },
        })
    }
}

#[async_trait]
impl EmailPort for Configured {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError> {
        let inputs = [
            ("to", json!(to)),
            ("subject", json!(subject)),
            ("text", json!(text)),
            ("idempotency_key", json!(idempotency_key)),
        ];
        match self.0.call(Op::EmailSend, &inputs).await? {
            Reply::Done => Ok(()),
            other => Err(unexpected(Op::EmailSend, &other)),
        }
    }
}
