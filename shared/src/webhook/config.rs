//! Vendor configuration (`config/webhooks.toml`): per vendor, its signature scheme, secret
//! references, limits, where the envelope's fields are read from, and how its event types map onto
//! ours. Validated when loaded; every problem of a file is reported at once, each naming the file,
//! its line and the field (`vendors.NAME.FIELD`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use std::ops::Range;

use serde::de::IntoDeserializer;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::auth::is_valid_id;
use crate::bot::error::{line_of, BundleError, BundleErrors};
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

    /// The sources of the field named `name` in a vendor's `[fields]`; `None` for a name that
    /// is not a field.
    fn named(&mut self, name: &str) -> Option<&mut Vec<Source>> {
        Some(match name {
            "event_id" => &mut self.event_id,
            "event_type" => &mut self.event_type,
            "status" => &mut self.status,
            "customer_id" => &mut self.customer_id,
            "customer_email" => &mut self.customer_email,
            "order_ref" => &mut self.order_ref,
            "amount_minor" => &mut self.amount_minor,
            "currency" => &mut self.currency,
            "payment_url" => &mut self.payment_url,
            "tracking_url" => &mut self.tracking_url,
            "carrier" => &mut self.carrier,
            "event_time" => &mut self.event_time,
            _ => return None,
        })
    }
}

const FIELD_NAMES: &str = "event_id, event_type, status, customer_id, customer_email, order_ref, amount_minor, currency, payment_url, tracking_url, carrier, event_time";
const VENDOR_KEYS: &str = "scheme, secrets, tenant, tolerance_secs, max_body_bytes, dedup_days, payment_link_hosts, route_by_email, fields, events";

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

/// Collects a file's problems, each at the line its value (or key) starts on.
struct Problems<'a> {
    file: &'a str,
    text: &'a str,
    errors: BundleErrors,
}

impl Problems<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn at(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors
            .push(BundleError::new(self.file, Some(line), key, message));
    }

    /// `value` as a `T` and its line, or a problem named `key` (and `None`).
    fn read<'de, T: Deserialize<'de>>(
        &mut self,
        key: &str,
        value: &Spanned<DeValue<'de>>,
    ) -> Option<(T, usize)> {
        let line = self.line(value.span());
        match T::deserialize(value.clone().into_deserializer()) {
            Ok(v) => Some((v, line)),
            Err(e) => {
                // Errors inside a list or table point at the element that is wrong.
                let line = e.span().map_or(line, |s| self.line(s));
                self.at(line, key, e.message().trim().to_string());
                None
            }
        }
    }
}

/// What one vendor's table says, each setting with its line; checked in `vendor`.
#[derive(Default)]
struct RawVendor {
    scheme: Option<(Scheme, usize)>,
    secrets: Option<(Vec<SecretRef>, usize)>,
    tenant: Option<(String, usize)>,
    tolerance_secs: Option<(u64, usize)>,
    max_body_bytes: Option<(usize, usize)>,
    dedup_days: Option<(u64, usize)>,
    payment_link_hosts: Option<(Vec<String>, usize)>,
    route_by_email: Option<(bool, usize)>,
    fields: Vec<(String, Vec<Source>, usize)>,
    events: BTreeMap<String, EventKind>,
    /// Every key the table has, valid or not: a wrong value is not also "missing".
    present: Vec<String>,
}

/// Reads a vendor's table, noting every key that is unknown or of the wrong type.
fn raw_vendor(p: &mut Problems<'_>, name: &str, table: &DeTable<'_>) -> RawVendor {
    let mut raw = RawVendor::default();
    for (k, v) in table.iter() {
        let key = format!("vendors.{name}.{}", k.get_ref());
        raw.present.push(k.get_ref().to_string());
        match k.get_ref().as_ref() {
            "scheme" => raw.scheme = p.read(&key, v),
            "secrets" => raw.secrets = p.read(&key, v),
            "tenant" => raw.tenant = p.read(&key, v),
            "tolerance_secs" => raw.tolerance_secs = p.read(&key, v),
            "max_body_bytes" => raw.max_body_bytes = p.read(&key, v),
            "dedup_days" => raw.dedup_days = p.read(&key, v),
            "payment_link_hosts" => raw.payment_link_hosts = p.read(&key, v),
            "route_by_email" => raw.route_by_email = p.read(&key, v),
            "fields" | "events" => {
                let Some(entries) = v.get_ref().as_table() else {
                    let line = p.line(v.span());
                    p.at(line, &key, "must be a table");
                    continue;
                };
                for (ek, ev) in entries.iter() {
                    let entry = ek.get_ref().to_string();
                    let line = p.line(ek.span());
                    if k.get_ref() == "fields" {
                        let key = format!("{key}.{entry}");
                        if Fields::default().named(&entry).is_none() {
                            p.at(
                                line,
                                &key,
                                format!("unknown field; expected one of {FIELD_NAMES}"),
                            );
                        } else if let Some((sources, line)) = p.read(&key, ev) {
                            raw.fields.push((entry, sources, line));
                        }
                    } else {
                        let key = format!("{key}.{entry:?}");
                        match p.read(&key, ev) {
                            Some((EventKind::Unknown, line)) => p.at(
                                line,
                                &key,
                                "unknown event kind: expected payment.failed, order.shipped or order.delayed",
                            ),
                            Some((kind, _)) => {
                                raw.events.insert(entry, kind);
                            }
                            None => {}
                        }
                    }
                }
            }
            _ => {
                let line = p.line(k.span());
                p.at(
                    line,
                    &key,
                    format!("unknown field; expected one of {VENDOR_KEYS}"),
                );
            }
        }
    }
    raw
}

/// Checks a vendor's settings against each other and the limits; `None` when any is wrong.
fn vendor(p: &mut Problems<'_>, name: &str, line: usize, raw: RawVendor) -> Option<VendorConfig> {
    let before = p.errors.0.len();
    let key = |f: &str| format!("vendors.{name}.{f}");
    if !is_valid_vendor_name(name) {
        p.at(
            line,
            &format!("vendors.{name}"),
            format!("vendor name {name:?} must be 1-32 characters of a-z, 0-9 and -: it is a URL path segment"),
        );
    }
    let absent = |k: &str| !raw.present.iter().any(|p| p == k);
    if absent("scheme") {
        p.at(
            line,
            &key("scheme"),
            "missing: standard-webhooks, stripe, github, shopify or slack",
        );
    }
    match &raw.secrets {
        None if absent("secrets") => p.at(
            line,
            &key("secrets"),
            "missing: at least one secret reference is required",
        ),
        Some((s, l)) if s.is_empty() => p.at(
            *l,
            &key("secrets"),
            "at least one secret reference is required",
        ),
        _ => {}
    }
    let tenant = raw
        .tenant
        .clone()
        .unwrap_or_else(|| (crate::auth::DEFAULT_TENANT.into(), line));
    if !is_valid_id(&tenant.0) {
        p.at(tenant.1, &key("tenant"), "must be a valid tenant id");
    }
    let tolerance = raw.tolerance_secs.unwrap_or((300, line));
    if !(1..=3600).contains(&tolerance.0) {
        p.at(
            tolerance.1,
            &key("tolerance_secs"),
            "must be between 1 and 3600",
        );
    }
    let max_body_bytes = raw.max_body_bytes.unwrap_or((256 * 1024, line));
    if !(1..=MAX_BODY_LIMIT).contains(&max_body_bytes.0) {
        p.at(
            max_body_bytes.1,
            &key("max_body_bytes"),
            format!("must be between 1 and {MAX_BODY_LIMIT} (the Lambda payload limit)"),
        );
    }
    let dedup_days = raw.dedup_days.unwrap_or((7, line));
    if !(1..=365).contains(&dedup_days.0) {
        p.at(
            dedup_days.1,
            &key("dedup_days"),
            "must be between 1 and 365",
        );
    }
    let scheme = raw.scheme.map(|(s, _)| s);
    if scheme == Some(Scheme::Shopify) && dedup_days.0 < 3 {
        p.at(
            dedup_days.1,
            &key("dedup_days"),
            "must be at least 3 for shopify: Shopify retries a delivery for up to 48 hours, and a retry past the window would be told twice or refused as stale",
        );
    }
    let mut fields = scheme.map(Fields::defaults).unwrap_or_default();
    let mut event_time_line = line;
    for (name, sources, l) in raw.fields {
        if name == "event_time" {
            event_time_line = l;
        }
        if let Some(slot) = fields.named(&name) {
            *slot = sources;
        }
    }
    if scheme.is_some() && fields.event_type.is_empty() {
        p.at(line, &key("fields.event_type"), "needs at least one source");
    }
    if fields
        .event_time
        .iter()
        .any(|s| matches!(s, Source::Header(_)))
    {
        p.at(
            event_time_line,
            &key("fields.event_time"),
            "body sources only: a header is unsigned under body-only schemes",
        );
    }
    let (payment_link_hosts, hosts_line) = match raw.payment_link_hosts {
        Some(hosts) => hosts,
        None => (
            scheme.map(default_payment_link_hosts).unwrap_or_default(),
            line,
        ),
    };
    for bad in payment_link_hosts
        .iter()
        .filter(|h| !is_valid_host_pattern(h))
    {
        p.at(
            hosts_line,
            &key("payment_link_hosts"),
            format!("{bad:?} is not a lowercase host name (or *.domain)"),
        );
    }
    if p.errors.0.len() > before {
        return None;
    }
    Some(VendorConfig {
        name: name.to_string(),
        scheme: scheme?,
        secrets: raw.secrets?.0,
        tenant: tenant.0,
        tolerance: Duration::from_secs(tolerance.0),
        max_body_bytes: max_body_bytes.0,
        dedup_for: Duration::from_secs(dedup_days.0 * 86_400),
        fields,
        events: raw.events,
        payment_link_hosts,
        route_by_email: raw.route_by_email.is_some_and(|(b, _)| b),
    })
}

/// Parses and validates a vendor file; `file` names it in errors. Every problem of the file is
/// reported, each with its line and field, so an operator fixes the file in one pass.
pub fn parse(file: &str, text: &str) -> Result<BTreeMap<String, VendorConfig>, BundleErrors> {
    let mut p = Problems {
        file,
        text,
        errors: BundleErrors::default(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // What follows a syntax error is guessed at: checking it would report phantoms.
        for e in syntax {
            let line = e.span().map_or(1, |s| p.line(s));
            p.at(line, "", e.message().trim().to_string());
        }
        return Err(p.errors);
    }
    let mut out = BTreeMap::new();
    for (k, v) in doc.get_ref().iter() {
        let line = p.line(k.span());
        if k.get_ref() != "vendors" {
            p.at(line, k.get_ref(), "unknown table; expected [vendors.NAME]");
            continue;
        }
        let Some(vendors) = v.get_ref().as_table() else {
            p.at(line, "vendors", "must be a table of [vendors.NAME]");
            continue;
        };
        for (name, table) in vendors.iter() {
            let line = p.line(name.span());
            let name = name.get_ref().to_string();
            let Some(table) = table.get_ref().as_table() else {
                p.at(line, &format!("vendors.{name}"), "must be a table");
                continue;
            };
            let raw = raw_vendor(&mut p, &name, table);
            if let Some(v) = vendor(&mut p, &name, line, raw) {
                out.insert(name, v);
            }
        }
    }
    // Tables are read in key order; the operator reads the file top to bottom.
    p.errors.0.sort_by_key(|e| e.line);
    p.errors.into_result(out)
}

/// The file named by `SWITCHBOARD_WEBHOOKS_FILE`, or the bundled one.
pub fn load(path: Option<&str>) -> Result<BTreeMap<String, VendorConfig>, BundleErrors> {
    match path {
        None => parse(BUNDLED_NAME, BUNDLED),
        Some(p) => {
            let text = crate::config::read_config_file(Path::new(p))
                .map_err(|e| BundleError::new(p, None, "", e))?;
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
        assert!(e.starts_with("w.toml:2: vendors.acme.scheme: "), "{e}");
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

    #[test]
    fn every_problem_of_a_file_is_reported_with_its_line_and_field() {
        let text = "\
[vendors.acme]
scheme = \"stripe\"
secrets = []
tolerance_secs = 0
colour = 1

[vendors.acme.fields]
event_id = [\"query:x\"]
shade = [\"body:/x\"]

[vendors.acme.events]
\"a\" = \"refund.done\"

[vendors.Other]
secrets = [\"env:X\"]
payment_link_hosts = [\"*.com\", \"ok.example.com\", \"Bad\"]
";
        let errors = parse("w.toml", text).unwrap_err();
        let got: Vec<(Option<usize>, &str)> =
            errors.0.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(3), "vendors.acme.secrets"),
                (Some(4), "vendors.acme.tolerance_secs"),
                (Some(5), "vendors.acme.colour"),
                (Some(8), "vendors.acme.fields.event_id"),
                (Some(9), "vendors.acme.fields.shade"),
                (Some(12), "vendors.acme.events.\"a\""),
                (Some(14), "vendors.Other"),
                (Some(14), "vendors.Other.scheme"),
                (Some(16), "vendors.Other.payment_link_hosts"),
                (Some(16), "vendors.Other.payment_link_hosts"),
            ],
            "{errors}"
        );
        assert!(errors.0.iter().all(|e| e.file == "w.toml"));
        assert!(errors
            .to_string()
            .contains("w.toml:8: vendors.acme.fields.event_id: "));
        assert!(
            errors.0[3].message.contains("not a field source"),
            "{errors}"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let errors =
            parse("w.toml", "[vendors.acme]\nscheme = \"stripe\nsecrets = 1\n").unwrap_err();
        assert_eq!(errors.0[0].line, Some(2), "{errors}");
        let errors = load(Some("/nonexistent/w.toml")).unwrap_err();
        assert!(
            errors
                .to_string()
                .starts_with("/nonexistent/w.toml: cannot read"),
            "{errors}"
        );
    }
}
