//! From a verified vendor request to our envelope: the event's id, type and the facts fulfillment
//! needs (who the customer is, which order, tracking, amount), read from the places the vendor's
//! config names. The vendor's body itself never travels further.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::config::{EventKind, Source, VendorConfig};
use crate::money::Money;
use crate::signatures::Headers;

/// Longer ids (none of the documented vendors sends one) are hashed to keep keys bounded.
const MAX_EVENT_ID: usize = 200;
const MAX_FIELD: usize = 2_048;

/// A vendor's event in our terms: what `webhook` queues and `fulfillment` acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VendorEvent {
    pub vendor: String,
    pub event_id: String,
    /// The vendor's own type, e.g. `invoice.payment_failed`.
    pub vendor_type: String,
    pub event: EventKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The customer's id at the vendor (e.g. Stripe's `cus_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// What the intake reads before it knows whether the event is handled.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    pub event_id: String,
    pub vendor_type: String,
    pub status: Option<String>,
    pub event: Option<EventKind>,
    /// True when no source held an id and the body's hash stands in for it.
    pub id_from_body_hash: bool,
    body: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the event's type was not found (looked in {0})")]
    NoType(String),
}

fn as_text(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= MAX_FIELD && !s.chars().any(char::is_control)).then_some(s)
}

fn first<H: Headers + ?Sized>(sources: &[Source], headers: &H, body: &Value) -> Option<String> {
    sources.iter().find_map(|s| match s {
        Source::Header(h) => headers.header(h).and_then(|v| as_text(&Value::from(v))),
        Source::Body(p) => body.pointer(p).and_then(as_text),
    })
}

fn describe(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|s| match s {
            Source::Header(h) => format!("header {h}"),
            Source::Body(p) => format!("body {p}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads id, type and status. `raw` is the body as signed, for the id of last resort.
pub fn extract<H: Headers + ?Sized>(
    vendor: &VendorConfig,
    headers: &H,
    raw: &[u8],
) -> Result<Extracted, ExtractError> {
    // A body that is not JSON (a Slack slash command is a form) still has its headers.
    let body: Value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    let f = &vendor.fields;
    let vendor_type = first(&f.event_type, headers, &body)
        .ok_or_else(|| ExtractError::NoType(describe(&f.event_type)))?;
    let status = first(&f.status, headers, &body);
    let (event_id, id_from_body_hash) = match first(&f.event_id, headers, &body) {
        Some(id) if id.len() <= MAX_EVENT_ID && !id.contains('#') => (id, false),
        Some(long) => (format!("sha256:{}", sha256_hex(long.as_bytes())), false),
        // Identical bytes are the same delivery: the vendor retrying it.
        None => (format!("body-sha256:{}", sha256_hex(raw)), true),
    };
    let event = vendor.kind_of(&vendor_type, status.as_deref());
    Ok(Extracted {
        event_id,
        vendor_type,
        status,
        event,
        id_from_body_hash,
        body,
    })
}

fn email(raw: Option<String>) -> Option<String> {
    let e = raw?.to_lowercase();
    let (local, domain) = e.split_once('@')?;
    (!local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace)).then_some(e)
}

/// Order numbers as customers know them: Shopify's `#1001` and fulfillment `#1001.1` are 1001.
fn order_number(raw: Option<String>) -> Option<String> {
    let r = raw?;
    let r = r.trim_start_matches('#');
    let r = r.split('.').next().unwrap_or(r);
    crate::auth::is_valid_id(r).then(|| r.to_string())
}

fn https_url(raw: Option<String>) -> Option<String> {
    raw.filter(|u| url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "https" | "http")))
}

impl Extracted {
    /// The envelope for a handled event.
    pub fn envelope<H: Headers + ?Sized>(
        &self,
        vendor: &VendorConfig,
        kind: EventKind,
        headers: &H,
        received_at: OffsetDateTime,
    ) -> VendorEvent {
        let f = &vendor.fields;
        let get = |s: &[Source]| first(s, headers, &self.body);
        let amount = get(&f.amount_minor)
            .and_then(|a| a.parse::<i64>().ok())
            .zip(get(&f.currency))
            .map(|(amount_cents, c)| Money {
                amount_cents,
                currency: c.to_uppercase(),
            });
        VendorEvent {
            vendor: vendor.name.clone(),
            event_id: self.event_id.clone(),
            vendor_type: self.vendor_type.clone(),
            event: kind,
            status: self.status.clone(),
            vendor_customer_id: get(&f.customer_id),
            customer_email: email(get(&f.customer_email)),
            order_id: order_number(get(&f.order_ref)),
            amount,
            payment_url: https_url(get(&f.payment_url)),
            tracking_url: https_url(get(&f.tracking_url)),
            carrier: get(&f.carrier),
            received_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::config::{parse, BUNDLED, BUNDLED_NAME};
    use time::macros::datetime;

    fn vendor(name: &str) -> VendorConfig {
        parse(BUNDLED_NAME, BUNDLED).unwrap().remove(name).unwrap()
    }

    const NO_HEADERS: &[(&str, &str)] = &[];

    #[test]
    fn a_stripe_invoice_failure() {
        let v = vendor("stripe");
        let body = br#"{"id":"evt_1","type":"invoice.payment_failed","data":{"object":{"customer":"cus_9","customer_email":"Alice@Example.com","amount_due":2999,"currency":"usd","hosted_invoice_url":"https://pay.example/i/1"}}}"#;
        let x = extract(&v, NO_HEADERS, body).unwrap();
        assert_eq!(x.event, Some(EventKind::PaymentFailed));
        let e = x.envelope(
            &v,
            EventKind::PaymentFailed,
            NO_HEADERS,
            datetime!(2026-11-24 0:00 UTC),
        );
        assert_eq!(e.event_id, "evt_1");
        assert_eq!(e.vendor_customer_id.as_deref(), Some("cus_9"));
        assert_eq!(e.customer_email.as_deref(), Some("alice@example.com"));
        assert_eq!(e.amount.unwrap().to_string(), "$29.99");
        assert_eq!(e.payment_url.as_deref(), Some("https://pay.example/i/1"));
    }

    #[test]
    fn a_shopify_fulfillment_reads_headers_and_numbers() {
        let v = vendor("shopify");
        let headers: &[(&str, &str)] = &[
            ("X-Shopify-Topic", "fulfillments/create"),
            ("X-Shopify-Webhook-Id", "wh-1"),
        ];
        let body = br##"{"id":123,"order_id":450789469,"name":"#1001.1","email":"bob@example.com","tracking_company":"UPS","tracking_url":"https://ups.example/1Z","shipment_status":"confirmed"}"##;
        let x = extract(&v, headers, body).unwrap();
        assert_eq!(x.event_id, "wh-1");
        assert_eq!(x.event, Some(EventKind::OrderShipped));
        let e = x.envelope(
            &v,
            EventKind::OrderShipped,
            headers,
            datetime!(2026-11-24 0:00 UTC),
        );
        assert_eq!(e.order_id.as_deref(), Some("1001"));
        assert_eq!(e.carrier.as_deref(), Some("UPS"));
    }

    #[test]
    fn ids_fall_back_to_the_body_hash_and_types_are_required() {
        let v = vendor("stripe");
        let x = extract(&v, NO_HEADERS, br#"{"type":"charge.failed"}"#).unwrap();
        assert!(x.id_from_body_hash && x.event_id.starts_with("body-sha256:"));
        assert_eq!(
            extract(&v, NO_HEADERS, b"not json").unwrap_err(),
            ExtractError::NoType("body /type".into())
        );
        let long = format!(r#"{{"id":"{}","type":"x"}}"#, "a".repeat(500));
        let x = extract(&v, NO_HEADERS, long.as_bytes()).unwrap();
        assert!(x.event_id.starts_with("sha256:") && x.event.is_none());
    }

    #[test]
    fn junk_fields_are_dropped() {
        assert_eq!(email(Some("not an email".into())), None);
        assert_eq!(order_number(Some("#../../x".into())), None);
        assert_eq!(https_url(Some("javascript:alert(1)".into())), None);
    }
}
