//! Vendor configuration (`config/webhooks.toml`): per vendor, its signature scheme, secret
//! references, limits, where the envelope's fields are read from, and how its event types map onto
//! ours. Validated when loaded; every error names the file, the vendor and the field.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::is_valid_id;
use crate::secrets::SecretRef;
use crate::signatures::Scheme;

/// The configuration compiled into the functions.
pub const BUNDLED: &str = include_str!("../../../config/webhooks.toml");
pub const BUNDLED_NAME: &str = "config/webhooks.toml (bundled)";

/// The Lambda payload limit; a larger body cannot arrive anyway.
const MAX_BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Our own event types: what fulfillment knows how to turn into a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum EventKind {
    #[serde(rename = "payment.failed")]
    PaymentFailed,
    #[serde(rename = "order.shipped")]
    OrderShipped,
    #[serde(rename = "order.delayed")]
    OrderDelayed,
    /// A kind this version does not know (a newer webhook function ahead of fulfillment).
    #[serde(other, rename = "unknown")]
    Unknown,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PaymentFailed => "payment.failed",
            EventKind::OrderShipped => "order.shipped",
            EventKind::OrderDelayed => "order.delayed",
            EventKind::Unknown => "unknown",
        }
    }
}

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A JSON pointer (RFC 6901) into the body.
    Body(String),
    /// A request header (case-insensitive).
    Header(String),
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        parse_source(&raw).map_err(serde::de::Error::custom)
    }
}

fn parse_source(raw: &str) -> Result<Source, String> {
    match raw.split_once(':') {
        Some(("body", p)) if p.is_empty() || p.starts_with('/') => Ok(Source::Body(p.into())),
        Some(("header", h)) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()) => {
            Ok(Source::Header(h.to_ascii_lowercase()))
        }
        _ => Err(format!(
            "{raw:?} is not a field source: expected \"body:/json/pointer\" or \"header:name\""
        )),
    }
}

/// Where each envelope field is read from; the first source present wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    pub event_id: Vec<Source>,
    pub event_type: Vec<Source>,
    pub status: Vec<Source>,
    pub customer_id: Vec<Source>,
    pub customer_email: Vec<Source>,
    pub order_ref: Vec<Source>,
    pub amount_minor: Vec<Source>,
    pub currency: Vec<Source>,
    pub payment_url: Vec<Source>,
    pub tracking_url: Vec<Source>,
    pub carrier: Vec<Source>,
    /// When the vendor says the event happened, inside the signed body (RFC 3339 text or Unix
    /// seconds). A body older than the dedup window is refused: its claim may be gone, so it
    /// could only be a replay.
    pub event_time: Vec<Source>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldOverrides {
    event_id: Option<Vec<Source>>,
    event_type: Option<Vec<Source>>,
    status: Option<Vec<Source>>,
    customer_id: Option<Vec<Source>>,
    customer_email: Option<Vec<Source>>,
    order_ref: Option<Vec<Source>>,
    amount_minor: Option<Vec<Source>>,
    currency: Option<Vec<Source>>,
    payment_url: Option<Vec<Source>>,
    tracking_url: Option<Vec<Source>>,
    carrier: Option<Vec<Source>>,
    event_time: Option<Vec<Source>>,
}

fn sources(list: &[&str]) -> Vec<Source> {
    list.iter()
        .map(|s| parse_source(s).expect("built-in sources are valid"))
        .collect()
}

impl Fields {
    /// Where each scheme's vendors put things, from their documented payloads.
    pub fn defaults(scheme: Scheme) -> Self {
        match scheme {
            Scheme::Stripe => Fields {
                event_id: sources(&["body:/id"]),
                event_type: sources(&["body:/type"]),
                status: sources(&["body:/data/object/status"]),
                customer_id: sources(&["body:/data/object/customer"]),
                customer_email: sources(&[
                    "body:/data/object/receipt_email",
                    "body:/data/object/customer_email",
                    "body:/data/object/billing_details/email",
                ]),
                order_ref: sources(&["body:/data/object/metadata/order_id"]),
                amount_minor: sources(&[
                    "body:/data/object/amount_due",
                    "body:/data/object/amount",
                ]),
                currency: sources(&["body:/data/object/currency"]),
                payment_url: sources(&["body:/data/object/hosted_invoice_url"]),
                ..Default::default()
            },
            Scheme::Shopify => Fields {
                // The event id is shared by every delivery of one event; the webhook id by the
                // retries of one delivery.
                event_id: sources(&["header:x-shopify-event-id", "header:x-shopify-webhook-id"]),
                event_type: sources(&["header:x-shopify-topic"]),
                status: sources(&["body:/shipment_status", "body:/status"]),
                // Orders, fulfillments and fulfillment events all carry both; `updated_at` moves
                // with every change, `created_at` can be weeks old when an order ships.
                event_time: sources(&["body:/updated_at", "body:/created_at"]),
                customer_id: sources(&["body:/customer/id"]),
                customer_email: sources(&[
                    "body:/email",
                    "body:/customer/email",
                    "body:/contact_email",
                ]),
                order_ref: sources(&["body:/order_number", "body:/name", "body:/order_id"]),
                tracking_url: sources(&[
                    "body:/tracking_url",
                    "body:/tracking_urls/0",
                    "body:/fulfillments/0/tracking_url",
                ]),
                carrier: sources(&[
                    "body:/tracking_company",
                    "body:/fulfillments/0/tracking_company",
                ]),
                ..Default::default()
            },
            Scheme::Github => Fields {
                event_id: sources(&["header:x-github-delivery"]),
                event_type: sources(&["header:x-github-event"]),
                status: sources(&["body:/action"]),
                // GitHub has no event-wide timestamp; the objects most events are about carry
                // an `updated_at` that moves with the event. Events without one (push, star...)
                // are deduplicated on their body but not aged.
                event_time: sources(&[
                    "body:/comment/updated_at",
                    "body:/issue/updated_at",
                    "body:/pull_request/updated_at",
                ]),
                ..Default::default()
            },
            Scheme::Slack => Fields {
                event_id: sources(&["body:/event_id"]),
                event_type: sources(&["body:/event/type", "body:/type"]),
                ..Default::default()
            },
            Scheme::StandardWebhooks => Fields {
                event_id: sources(&["header:webhook-id", "header:svix-id"]),
                event_type: sources(&["body:/type"]),
                status: sources(&["body:/data/status"]),
                customer_id: sources(&["body:/data/customer_id"]),
                customer_email: sources(&["body:/data/customer_email"]),
                order_ref: sources(&["body:/data/order_id"]),
                amount_minor: sources(&["body:/data/amount"]),
                currency: sources(&["body:/data/currency"]),
                payment_url: sources(&["body:/data/payment_url"]),
                tracking_url: sources(&["body:/data/tracking_url"]),
                carrier: sources(&["body:/data/carrier"]),
                event_time: Vec::new(),
            },
        }
    }

    fn overridden(mut self, o: FieldOverrides) -> Self {
        let set = |slot: &mut Vec<Source>, v: Option<Vec<Source>>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut self.event_id, o.event_id);
        set(&mut self.event_type, o.event_type);
        set(&mut self.status, o.status);
        set(&mut self.customer_id, o.customer_id);
        set(&mut self.customer_email, o.customer_email);
        set(&mut self.order_ref, o.order_ref);
        set(&mut self.amount_minor, o.amount_minor);
        set(&mut self.currency, o.currency);
        set(&mut self.payment_url, o.payment_url);
        set(&mut self.tracking_url, o.tracking_url);
        set(&mut self.carrier, o.carrier);
        set(&mut self.event_time, o.event_time);
        self
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    vendors: BTreeMap<String, RawVendor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVendor {
    scheme: Scheme,
    secrets: Vec<SecretRef>,
    tenant: Option<String>,
    tolerance_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    dedup_days: Option<u64>,
    payment_link_hosts: Option<Vec<String>>,
    #[serde(default)]
    route_by_email: bool,
    #[serde(default)]
    fields: FieldOverrides,
    #[serde(default)]
    events: BTreeMap<String, EventKind>,
}

/// One vendor, validated.
#[derive(Debug, Clone)]
pub struct VendorConfig {
    pub name: String,
    pub scheme: Scheme,
    pub secrets: Vec<SecretRef>,
    pub tenant: String,
    pub tolerance: Duration,
    pub max_body_bytes: usize,
    pub dedup_for: Duration,
    pub fields: Fields,
    pub events: BTreeMap<String, EventKind>,
    /// Hosts a payment link may point at (`*.example.com` for any subdomain); links elsewhere
    /// are dropped, so a payer-controlled field cannot put a stranger's page in our message.
    pub payment_link_hosts: Vec<String>,
    /// Whether the vendor itself confirms the addresses it sends, so that an event may be
    /// routed by its email (still only to a CRM-verified one, and never when it names a vendor
    /// customer we have not linked). Off by default: at most vendors, Stripe included, the
    /// email is whatever the payer typed, and a verified address in our CRM says nothing about
    /// who paid there. When off, the email is not read into the envelope at all.
    pub route_by_email: bool,
}

impl VendorConfig {
    /// Whether `host` (as `url` parses it: lowercase, no port) is on the payment-link list.
    pub fn payment_link_allowed(&self, host: &str) -> bool {
        self.payment_link_hosts
            .iter()
            .any(|allowed| match allowed.strip_prefix("*.") {
                Some(domain) => host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                None => host == allowed,
            })
    }

    /// Our kind for a vendor type (and status, if the vendor has one); `None` is unhandled.
    pub fn kind_of(&self, vendor_type: &str, status: Option<&str>) -> Option<EventKind> {
        status
            .and_then(|s| self.events.get(&format!("{vendor_type}:{s}")))
            .or_else(|| self.events.get(vendor_type))
            .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct WebhookConfigError {
    pub file: String,
    pub message: String,
}

pub fn is_valid_vendor_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Where each scheme's vendor hosts its own payment pages. Only Stripe's are known; other
/// vendors send no payment link unless their hosts are configured.
fn default_payment_link_hosts(scheme: Scheme) -> Vec<String> {
    match scheme {
        // hosted_invoice_url, payment links, Checkout.
        Scheme::Stripe => [
            "invoice.stripe.com",
            "pay.stripe.com",
            "checkout.stripe.com",
        ]
        .map(String::from)
        .to_vec(),
        _ => Vec::new(),
    }
}

/// Second-level labels under which a country's registry sells names (`co.uk`, `com.au`): a
/// wildcard directly under one of these would admit hosts anyone can register.
const SHARED_SECOND_LEVEL: &[&str] = &[
    "ac", "co", "com", "edu", "gov", "govt", "go", "ne", "net", "or", "org", "ltd", "plc",
];

/// A lowercase host name, or `*.` and a domain of at least two labels that is not a registry's
/// own suffix: `*.com` and `*.co.uk` are refused, `*.example.com` and `*.example.co.uk` are
/// not. A floor, not a public-suffix list.
fn is_valid_host_pattern(h: &str) -> bool {
    if let Some(domain) = h.strip_prefix("*.") {
        let labels: Vec<&str> = domain.split('.').collect();
        let registry_suffix =
            labels.len() == 2 && labels[1].len() == 2 && SHARED_SECOND_LEVEL.contains(&labels[0]);
        if labels.len() < 2 || registry_suffix {
            return false;
        }
    }
    let name = h.strip_prefix("*.").unwrap_or(h);
    name.contains('.')
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Parses and validates a vendor file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<BTreeMap<String, VendorConfig>, WebhookConfigError> {
    let err = |message: String| WebhookConfigError {
        file: file.to_string(),
        message,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string().trim().to_string()))?;
    let mut out = BTreeMap::new();
    for (name, v) in raw.vendors {
        let field = |f: &str, why: &str| err(format!("vendors.{name}.{f}: {why}"));
        if !is_valid_vendor_name(&name) {
            return Err(err(format!(
                "vendor name {name:?} must be 1-32 characters of a-z, 0-9 and -: it is a URL path segment"
            )));
        }
        if v.secrets.is_empty() {
            return Err(field(
                "secrets",
                "at least one secret reference is required",
            ));
        }
        let tenant = v
            .tenant
            .unwrap_or_else(|| crate::auth::DEFAULT_TENANT.into());
        if !is_valid_id(&tenant) {
            return Err(field("tenant", "must be a valid tenant id"));
        }
        let tolerance = v.tolerance_secs.unwrap_or(300);
        if !(1..=3600).contains(&tolerance) {
            return Err(field("tolerance_secs", "must be between 1 and 3600"));
        }
        let max_body_bytes = v.max_body_bytes.unwrap_or(256 * 1024);
        if !(1..=MAX_BODY_LIMIT).contains(&max_body_bytes) {
            return Err(field(
                "max_body_bytes",
                &format!("must be between 1 and {MAX_BODY_LIMIT} (the Lambda payload limit)"),
            ));
        }
        let dedup_days = v.dedup_days.unwrap_or(7);
        if !(1..=365).contains(&dedup_days) {
            return Err(field("dedup_days", "must be between 1 and 365"));
        }
        if v.scheme == Scheme::Shopify && dedup_days < 3 {
            return Err(field(
                "dedup_days",
                "must be at least 3 for shopify: Shopify retries a delivery for up to 48 hours, and a retry past the window would be told twice or refused as stale",
            ));
        }
        if let Some((t, _)) = v.events.iter().find(|(_, k)| **k == EventKind::Unknown) {
            return Err(field(
                &format!("events.{t:?}"),
                "unknown event kind: expected payment.failed, order.shipped or order.delayed",
            ));
        }
        let fields = Fields::defaults(v.scheme).overridden(v.fields);
        if fields.event_type.is_empty() {
            return Err(field("fields.event_type", "needs at least one source"));
        }
        if fields
            .event_time
            .iter()
            .any(|s| matches!(s, Source::Header(_)))
        {
            return Err(field(
                "fields.event_time",
                "body sources only: a header is unsigned under body-only schemes",
            ));
        }
        let payment_link_hosts = v
            .payment_link_hosts
            .unwrap_or_else(|| default_payment_link_hosts(v.scheme));
        if let Some(bad) = payment_link_hosts
            .iter()
            .find(|h| !is_valid_host_pattern(h))
        {
            return Err(field(
                "payment_link_hosts",
                &format!("{bad:?} is not a lowercase host name (or *.domain)"),
            ));
        }
        out.insert(
            name.clone(),
            VendorConfig {
                name,
                scheme: v.scheme,
                secrets: v.secrets,
                tenant,
                tolerance: Duration::from_secs(tolerance),
                max_body_bytes,
                dedup_for: Duration::from_secs(dedup_days * 86_400),
                fields,
                events: v.events,
                payment_link_hosts,
                route_by_email: v.route_by_email,
            },
        );
    }
    Ok(out)
}

/// The file named by `SWITCHBOARD_WEBHOOKS_FILE`, or the bundled one.
pub fn load(path: Option<&str>) -> Result<BTreeMap<String, VendorConfig>, WebhookConfigError> {
    match path {
        None => parse(BUNDLED_NAME, BUNDLED),
        Some(p) => {
            let text = std::fs::read_to_string(Path::new(p)).map_err(|e| WebhookConfigError {
                file: p.to_string(),
                message: format!("cannot read: {e}"),
            })?;
            parse(p, &text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_file_is_valid() {
        let vendors = parse(BUNDLED_NAME, BUNDLED).unwrap();
        let stripe = &vendors["stripe"];
        assert_eq!(stripe.scheme, Scheme::Stripe);
        assert_eq!(stripe.tolerance, Duration::from_secs(300));
        assert_eq!(stripe.dedup_for, Duration::from_secs(7 * 86_400));
        assert_eq!(
            stripe.kind_of("invoice.payment_failed", None),
            Some(EventKind::PaymentFailed)
        );
        assert_eq!(stripe.kind_of("customer.created", None), None);
        assert!(stripe.payment_link_allowed("invoice.stripe.com"));
        assert!(!stripe.payment_link_allowed("stripe.com.evil.example"));
        assert!(vendors["billing"].payment_link_hosts.is_empty());
        assert!(
            vendors.values().all(|v| !v.route_by_email),
            "no bundled vendor is trusted for the payer's email"
        );
        let opted = parse(
            "w.toml",
            "[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\nroute_by_email = true\n",
        )
        .unwrap();
        assert!(opted["acme"].route_by_email);
        assert_eq!(vendors["shopify"].fields.event_time.len(), 2);
        let shopify = &vendors["shopify"];
        assert_eq!(
            shopify.kind_of("fulfillments/update", Some("delayed")),
            Some(EventKind::OrderDelayed)
        );
        assert_eq!(
            shopify.kind_of("fulfillments/update", Some("in_transit")),
            None
        );
        assert_eq!(
            shopify.kind_of("fulfillments/create", Some("confirmed")),
            Some(EventKind::OrderShipped)
        );
        assert_eq!(
            vendors["billing"].fields.customer_email.len(),
            2,
            "overrides replace the scheme's defaults"
        );
    }

    fn error_of(text: &str) -> String {
        parse("w.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_file_vendor_and_field() {
        let e = error_of("[vendors.acme]\nscheme = \"md5\"\nsecrets = [\"env:X\"]\n");
        assert!(e.starts_with("w.toml: ") && e.contains("scheme"), "{e}");
        let e = error_of("[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"hunter2\"]\n");
        assert!(e.contains("not a secret reference"), "{e}");
        let e = error_of("[vendors.acme]\nscheme = \"stripe\"\nsecrets = []\n");
        assert!(e.contains("vendors.acme.secrets"), "{e}");
        let e = error_of(
            "[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\ntolerance_secs = 0\n",
        );
        assert!(e.contains("vendors.acme.tolerance_secs"), "{e}");
        let e = error_of("[vendors.Acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\n");
        assert!(e.contains("\"Acme\""), "{e}");
        let e = error_of(
            "[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\n[vendors.acme.events]\n\"a\" = \"refund.done\"\n",
        );
        assert!(e.contains("unknown event kind"), "{e}");
        let e = error_of(
            "[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\n[vendors.acme.fields]\nevent_id = [\"query:x\"]\n",
        );
        assert!(e.contains("not a field source"), "{e}");
        let e =
            error_of("[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\ncolour = 1\n");
        assert!(e.contains("colour"), "{e}");
        let e = error_of(
            "[vendors.acme]\nscheme = \"shopify\"\nsecrets = [\"env:X\"]\n[vendors.acme.fields]\nevent_time = [\"header:x-shopify-triggered-at\"]\n",
        );
        assert!(e.contains("vendors.acme.fields.event_time"), "{e}");
        let e = error_of(
            "[vendors.acme]\nscheme = \"shopify\"\nsecrets = [\"env:X\"]\ndedup_days = 2\n",
        );
        assert!(
            e.contains("vendors.acme.dedup_days") && e.contains("48 hours"),
            "{e}"
        );
        for good in ["pay.example.com", "*.example.com", "*.example.co.uk"] {
            parse(
                "w.toml",
                &format!(
                    "[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\npayment_link_hosts = [{good:?}]\n"
                ),
            )
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "https://pay.example",
            "Pay.Example.com",
            "example",
            "*.com",
            "*.co.uk",
            "a..b",
        ] {
            let e = error_of(&format!(
                "[vendors.acme]\nscheme = \"stripe\"\nsecrets = [\"env:X\"]\npayment_link_hosts = [{bad:?}]\n"
            ));
            assert!(e.contains("vendors.acme.payment_link_hosts"), "{bad}: {e}");
        }
    }
}
