//! HTTP adapters for the orders and payments ports, against REST APIs shaped like the demo
//! service's (`dev/demo_systems.py`). Declarative, config-driven connectors replace these later;
//! the ports stay.

use std::time::Duration;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use url::Url;

use super::{
    ConnectorError, Customer, CustomersPort, EmailPort, InventoryPort, Order, OrdersPort,
    PaymentsPort, Product, RefundReceipt,
};
use crate::money::Money;

/// One client per process: connection pools are reused across invocations of a warm container.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(1)))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with only timeouts and a user agent always builds")
}

fn join(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    {
        // path_segments_mut percent-encodes each segment, so an order id cannot add a path.
        let mut path = url.path_segments_mut().expect("http(s) URLs have paths");
        path.pop_if_empty();
        for s in segments {
            path.push(s);
        }
    }
    url
}

async fn read_json<T: DeserializeOwned>(
    system: &'static str,
    resp: Result<reqwest::Response, reqwest::Error>,
) -> Result<Option<T>, ConnectorError> {
    let resp = resp.map_err(|e| ConnectorError::Unavailable {
        system,
        detail: if e.is_timeout() {
            "timed out".into()
        } else {
            e.to_string()
        },
    })?;
    let status = resp.status().as_u16();
    if status == 404 {
        return Ok(None);
    }
    if status == 429 || status >= 500 {
        return Err(ConnectorError::Unavailable {
            system,
            detail: format!("HTTP {status}"),
        });
    }
    if !(200..300).contains(&status) {
        let detail = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        return Err(ConnectorError::Rejected {
            system,
            status,
            detail,
        });
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ConnectorError::Unavailable {
            system,
            detail: e.to_string(),
        })?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ConnectorError::Malformed {
            system,
            detail: e.to_string(),
        })
}

pub struct RestOrders {
    client: reqwest::Client,
    base: Url,
}

impl RestOrders {
    pub fn new(client: reqwest::Client, base: Url) -> Self {
        Self { client, base }
    }
}

#[derive(serde::Deserialize)]
struct OrderList {
    orders: Vec<Order>,
}

#[async_trait]
impl OrdersPort for RestOrders {
    async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
        let mut url = join(&self.base, &["orders"]);
        url.query_pairs_mut()
            .append_pair("customer_id", customer_id);
        let list: Option<OrderList> =
            read_json("orders", self.client.get(url).send().await).await?;
        let mut orders = list.map(|l| l.orders).unwrap_or_default();
        orders.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
        Ok(orders)
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, ConnectorError> {
        let url = join(&self.base, &["orders", order_id]);
        read_json("orders", self.client.get(url).send().await).await
    }
}

/// An inventory behind a GraphQL endpoint answering `{ products { sku name available } }`.
pub struct GraphqlInventory {
    client: reqwest::Client,
    url: Url,
}

impl GraphqlInventory {
    pub fn new(client: reqwest::Client, url: Url) -> Self {
        Self { client, url }
    }
}

#[async_trait]
impl InventoryPort for GraphqlInventory {
    async fn products(&self) -> Result<Vec<Product>, ConnectorError> {
        #[derive(serde::Deserialize)]
        struct Data {
            products: Vec<Product>,
        }
        #[derive(serde::Deserialize)]
        struct Answer {
            data: Option<Data>,
            #[serde(default)]
            errors: Vec<serde_json::Value>,
        }
        let body = serde_json::json!({ "query": "{ products { sku name available } }" });
        let answer: Option<Answer> = read_json(
            "inventory",
            self.client.post(self.url.clone()).json(&body).send().await,
        )
        .await?;
        match answer {
            // GraphQL reports failures in `errors`, on HTTP 200.
            Some(Answer { errors, .. }) if !errors.is_empty() => Err(ConnectorError::Malformed {
                system: "inventory",
                detail: format!("GraphQL errors: {}", errors.len()),
            }),
            Some(Answer {
                data: Some(data), ..
            }) => Ok(data.products),
            _ => Err(ConnectorError::Malformed {
                system: "inventory",
                detail: "no data in the answer".into(),
            }),
        }
    }
}

/// A CRM with `GET /customers?email=` and `GET /customers?vendor=&vendor_customer_id=`, each
/// answering `{"customers": [...]}`.
pub struct RestCustomers {
    client: reqwest::Client,
    base: Url,
}

impl RestCustomers {
    pub fn new(client: reqwest::Client, base: Url) -> Self {
        Self { client, base }
    }

    async fn only(&self, query: &[(&str, &str)]) -> Result<Option<Customer>, ConnectorError> {
        #[derive(serde::Deserialize)]
        struct CustomerList {
            customers: Vec<Customer>,
        }
        let mut url = join(&self.base, &["customers"]);
        url.query_pairs_mut().extend_pairs(query);
        let list: Option<CustomerList> =
            read_json("crm", self.client.get(url).send().await).await?;
        let mut found = list.map(|l| l.customers).unwrap_or_default();
        if found.len() > 1 {
            tracing::warn!(
                matches = found.len(),
                "CRM lookup is ambiguous; treated as no match"
            );
            return Ok(None);
        }
        Ok(found.pop())
    }
}

#[async_trait]
impl CustomersPort for RestCustomers {
    async fn by_vendor_id(
        &self,
        vendor: &str,
        vendor_customer_id: &str,
    ) -> Result<Option<Customer>, ConnectorError> {
        self.only(&[
            ("vendor", vendor),
            ("vendor_customer_id", vendor_customer_id),
        ])
        .await
    }

    async fn by_email(&self, email: &str) -> Result<Option<Customer>, ConnectorError> {
        self.only(&[("email", email)]).await
    }

    async fn by_id(&self, customer_id: &str) -> Result<Option<Customer>, ConnectorError> {
        let url = join(&self.base, &["customers", customer_id]);
        read_json("crm", self.client.get(url).send().await).await
    }
}

/// An email API taking `POST {base}/emails` with `{to, subject, text}` and an
/// `Idempotency-Key` (the demo service's shape; SES is the AWS adapter).
pub struct RestEmail {
    client: reqwest::Client,
    base: Url,
}

impl RestEmail {
    pub fn new(client: reqwest::Client, base: Url) -> Self {
        Self { client, base }
    }
}

#[async_trait]
impl EmailPort for RestEmail {
    async fn send(
        &self,
        to: &str,
        subject: &str,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError> {
        let url = join(&self.base, &["emails"]);
        let body = serde_json::json!({ "to": to, "subject": subject, "text": text });
        let resp = self
            .client
            .post(url)
            .header("Idempotency-Key", idempotency_key)
            .json(&body)
            .send()
            .await;
        read_json::<serde_json::Value>("email", resp)
            .await?
            .map(|_| ())
            .ok_or_else(|| ConnectorError::Rejected {
                system: "email",
                status: 404,
                detail: "the email API has no /emails".into(),
            })
    }
}

pub struct RestPayments {
    client: reqwest::Client,
    base: Url,
}

impl RestPayments {
    pub fn new(client: reqwest::Client, base: Url) -> Self {
        Self { client, base }
    }
}

#[async_trait]
impl PaymentsPort for RestPayments {
    async fn refund(
        &self,
        order_id: &str,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<RefundReceipt, ConnectorError> {
        let url = join(&self.base, &["refunds"]);
        let body = serde_json::json!({ "order_id": order_id, "amount": amount });
        let resp = self
            .client
            .post(url)
            .header("Idempotency-Key", idempotency_key)
            .json(&body)
            .send()
            .await;
        read_json::<RefundReceipt>("payments", resp)
            .await?
            .ok_or_else(|| ConnectorError::Rejected {
                system: "payments",
                status: 404,
                detail: format!("no order {order_id} to refund"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_path() {
        let base = Url::parse("http://127.0.0.1:1/api/").unwrap();
        let url = join(&base, &["orders", "../admin?x=1"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/api/orders/..%2Fadmin%3Fx=1"
        );
    }
}
