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
    /// The payer's email, only from a vendor whose config has `route_by_email` (it confirms
    /// the addresses it sends); `None` for every other vendor, whatever the body says.
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
    /// What the event is claimed (deduplicated) and queued under.
    pub event_id: String,
    /// The vendor's id from an unsigned header, where it is not `event_id`: for logs only.
    pub delivery_id: Option<String>,
    pub vendor_type: String,
    pub status: Option<String>,
    pub event: Option<EventKind>,
    /// True when no source held an id and the body's hash stands in for it.
    pub id_from_body_hash: bool,
    /// When the vendor says the event happened, from the signed body.
    pub event_time: Option<OffsetDateTime>,
    body: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the event's type was not found (looked in {0})")]
    NoType(String),
    #[error("the event's time at {0} is neither an RFC 3339 date-time nor Unix seconds")]
    BadTime(String),
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

/// The claim id of a body: identical signed bytes are one event, whatever headers came along.
pub fn body_id(raw: &[u8]) -> String {
    format!("body-sha256:{}", sha256_hex(raw))
}

/// The first `event_time` source present (null counts as absent), parsed.
fn event_time(sources: &[Source], body: &Value) -> Result<Option<OffsetDateTime>, ExtractError> {
    let Some((pointer, v)) = sources.iter().find_map(|s| match s {
        Source::Body(p) => body
            .pointer(p)
            .filter(|v| !v.is_null())
            .map(|v| (p.as_str(), v)),
        // Refused when the config is loaded.
        Source::Header(_) => None,
    }) else {
        return Ok(None);
    };
    let bad = || ExtractError::BadTime(format!("body {pointer}"));
    match v {
        Value::String(t) => {
            OffsetDateTime::parse(t.trim(), &time::format_description::well_known::Rfc3339)
                .map(Some)
                .map_err(|_| bad())
        }
        Value::Number(n) => n
            .as_i64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .map(Some)
            .ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// An id as logs may show it: as sent up to the event-id bound, hashed past it (an unsigned
/// header can be anything up to the request's size).
pub fn bounded_id(id: &str) -> String {
    if id.len() <= MAX_EVENT_ID && !id.chars().any(char::is_control) {
        id.to_string()
    } else {
        format!("sha256:{}", sha256_hex(id.as_bytes()))
    }
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
    let event_time = event_time(&f.event_time, &body)?;
    let vendor_id = first(&f.event_id, headers, &body);
    let (event_id, delivery_id, id_from_body_hash) = if vendor.scheme.signs_body_only() {
        // The id header is not signed: a captured body resent under a fresh id must still be
        // the same claim. The vendor's retries resend the same bytes, so they still match.
        (body_id(raw), vendor_id.as_deref().map(bounded_id), false)
    } else {
        match vendor_id {
            Some(id) if id.len() <= MAX_EVENT_ID && !id.contains('#') => (id, None, false),
            Some(long) => (
                format!("sha256:{}", sha256_hex(long.as_bytes())),
                None,
                false,
            ),
            // Identical bytes are the same delivery: the vendor retrying it.
            None => (body_id(raw), None, true),
        }
    };
    let event = vendor.kind_of(&vendor_type, status.as_deref());
    let event_id = if vendor.scheme.signs_body_only() && event.is_none() {
        // An unhandled type is claimed apart from the bare body hash, which stays for the
        // handled types: the same bytes under an unhandled topic (Shopify's `orders/updated`
        // alongside `orders/fulfilled`) must not use up the claim of the one we act on. A
        // relabelled replay can only move a body to a claim of its own that queues nothing.
        let t = if vendor_type.len() <= 64 {
            vendor_type.clone()
        } else {
            format!("sha256:{}", sha256_hex(vendor_type.as_bytes()))
        };
        format!("{event_id}:unhandled:{t}")
    } else {
        event_id
    };
    Ok(Extracted {
        event_id,
        delivery_id,
        vendor_type,
        status,
        event,
        id_from_body_hash,
        event_time,
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

/// A payment link we may show: https, no credentials or port, on the vendor's host list. The
/// customer is asked to pay there, so a link the payer could choose must not get through.
fn payment_link(raw: Option<String>, vendor: &VendorConfig) -> Option<String> {
    let raw = raw?;
    let url = url::Url::parse(&raw).ok()?;
    let host = url.host_str().unwrap_or_default();
    let ok = url.scheme() == "https"
        && url.username().is_empty()
        && url.password().is_none()
        && url.port().is_none()
        && vendor.payment_link_allowed(host);
    if !ok {
        tracing::warn!(vendor = %vendor.name, scheme = url.scheme(), host, "payment link not on the vendor's allow-list; dropped");
        return None;
    }
    Some(url.into())
}

impl Extracted {
    /// A body whose own time is older than the dedup window: any claim made when it was new
    /// may have expired, so accepting it could repeat an event that was already told.
    pub fn older_than(&self, window: std::time::Duration, now: OffsetDateTime) -> bool {
        self.event_time.is_some_and(|at| {
            now - at > time::Duration::try_from(window).unwrap_or(time::Duration::MAX)
        })
    }

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
            customer_email: vendor
                .route_by_email
                .then(|| email(get(&f.customer_email)))
                .flatten(),
            order_id: order_number(get(&f.order_ref)),
            amount,
            payment_url: payment_link(get(&f.payment_url), vendor),
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
        let body = br#"{"id":"evt_1","type":"invoice.payment_failed","data":{"object":{"customer":"cus_9","customer_email":"Alice@Example.com","amount_due":2999,"currency":"usd","hosted_invoice_url":"https://invoice.stripe.com/i/acct_1/test_1"}}}"#;
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
        assert_eq!(
            e.customer_email, None,
            "Stripe does not confirm the payer's email: it is not carried"
        );
        assert_eq!(e.amount.unwrap().to_string(), "$29.99");
        let mut confirms = v.clone();
        confirms.route_by_email = true;
        let e = x.envelope(
            &confirms,
            EventKind::PaymentFailed,
            NO_HEADERS,
            datetime!(2026-11-24 0:00 UTC),
        );
        assert_eq!(e.customer_email.as_deref(), Some("alice@example.com"));
        assert_eq!(
            e.payment_url.as_deref(),
            Some("https://invoice.stripe.com/i/acct_1/test_1")
        );
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
        // Shopify signs the body only: the claim is the body's, the header id is for logs.
        assert_eq!(x.event_id, body_id(body));
        assert_eq!(x.delivery_id.as_deref(), Some("wh-1"));
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
    fn payment_links_must_be_https_on_the_vendors_hosts() {
        let stripe = vendor("stripe");
        let link = |u: &str| payment_link(Some(u.to_string()), &stripe);
        assert_eq!(
            link("https://invoice.stripe.com/i/acct_1/x").as_deref(),
            Some("https://invoice.stripe.com/i/acct_1/x")
        );
        for refused in [
            "http://invoice.stripe.com/i/acct_1/x",
            "https://invoice.stripe.com.evil.example/i/x",
            "https://evilinvoice.stripe.com/i/x",
            "https://attacker.example/pay",
            "https://invoice.stripe.com:8443/i/x",
            "https://user@invoice.stripe.com/i/x",
            "javascript:alert(1)",
        ] {
            assert_eq!(link(refused), None, "{refused}");
        }
        // Vendors without configured hosts send no link at all.
        let billing = vendor("billing");
        assert_eq!(
            payment_link(Some("https://invoice.stripe.com/i/x".into()), &billing),
            None
        );
        let mut wild = vendor("billing");
        wild.payment_link_hosts = vec!["*.billing.example".into()];
        assert!(payment_link(Some("https://pay.billing.example/1".into()), &wild).is_some());
        assert!(payment_link(Some("https://billing.example/1".into()), &wild).is_none());
        assert!(payment_link(Some("https://xbilling.example/1".into()), &wild).is_none());
    }

    #[test]
    fn event_times_are_read_from_the_signed_body() {
        let v = vendor("shopify");
        let headers: &[(&str, &str)] = &[("X-Shopify-Topic", "orders/fulfilled")];
        let x = extract(
            &v,
            headers,
            br#"{"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-11-20T10:00:00-05:00"}"#,
        )
        .unwrap();
        assert_eq!(x.event_time, Some(datetime!(2026-11-20 15:00 UTC)));
        let week = std::time::Duration::from_secs(7 * 86_400);
        assert!(!x.older_than(week, datetime!(2026-11-27 14:00 UTC)));
        assert!(x.older_than(week, datetime!(2026-11-27 16:00 UTC)));
        // Unix seconds too; null and absent are "no time" (never refused for age).
        let x = extract(&v, headers, br#"{"updated_at":1700000000}"#).unwrap();
        assert_eq!(
            x.event_time.map(|t| t.unix_timestamp()),
            Some(1_700_000_000)
        );
        let x = extract(&v, headers, br#"{"updated_at":null,"id":1}"#).unwrap();
        assert_eq!(x.event_time, None);
        assert!(!x.older_than(week, datetime!(2099-01-01 0:00 UTC)));
        for junk in [
            &br#"{"updated_at":"yesterday"}"#[..],
            br#"{"updated_at":1.5}"#,
            br#"{"updated_at":99999999999999999}"#,
            br#"{"updated_at":{"at":1}}"#,
        ] {
            assert_eq!(
                extract(&v, headers, junk).unwrap_err(),
                ExtractError::BadTime("body /updated_at".into())
            );
        }
    }

    #[test]
    fn an_unsigned_delivery_id_is_bounded() {
        let v = vendor("shopify");
        let long = "w".repeat(1_000);
        let headers = [
            ("x-shopify-topic", "fulfillments/create"),
            ("x-shopify-webhook-id", long.as_str()),
        ];
        let x = extract(&v, &headers[..], br#"{"id":1}"#).unwrap();
        let d = x.delivery_id.unwrap();
        assert!(d.starts_with("sha256:") && d.len() < 100, "{d}");
        assert_eq!(bounded_id("wh-1"), "wh-1");
    }

    #[test]
    fn junk_fields_are_dropped() {
        assert_eq!(email(Some("not an email".into())), None);
        assert_eq!(order_number(Some("#../../x".into())), None);
        assert_eq!(https_url(Some("javascript:alert(1)".into())), None);
    }
}
