//! Fuzzes what the webhook reads from a verified request (`switchboard::webhook::events`): the
//! claim id (the body's hash for vendors that sign only the body), type, status, the signed
//! body time and the replay-age check, and the envelope with its payment link. Every bundled
//! vendor, arbitrary headers (real names and others) and bodies, raw or built from the fields
//! vendors send, with values of any JSON type. Each input must end in `Ok` or an
//! `ExtractError`, never a panic, and:
//!
//! - for GitHub and Shopify the claim id is the body's hash, whatever the headers say;
//! - a payment link that survives is https, on one of the vendor's allowed hosts;
//! - a body is never "older than the window" at its own time, and always is just past it.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use switchboard::webhook::config::{self, VendorConfig};
use switchboard::webhook::events::{body_id, extract};
use time::OffsetDateTime;

fn vendors() -> &'static Vec<VendorConfig> {
    static V: OnceLock<Vec<VendorConfig>> = OnceLock::new();
    V.get_or_init(|| {
        let all: BTreeMap<_, _> = config::parse(config::BUNDLED_NAME, config::BUNDLED).unwrap();
        all.into_values().collect()
    })
}

const HEADERS: [&str; 8] = [
    "x-shopify-topic",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-github-event",
    "x-github-delivery",
    "webhook-id",
    "svix-id",
    "content-type",
];

/// Where vendors put the fields the bundled config reads (and a few neighbours).
const POINTERS: [&str; 22] = [
    "/id",
    "/type",
    "/event_id",
    "/event/type",
    "/action",
    "/status",
    "/shipment_status",
    "/updated_at",
    "/created_at",
    "/comment/updated_at",
    "/issue/updated_at",
    "/pull_request/updated_at",
    "/email",
    "/name",
    "/order_id",
    "/tracking_url",
    "/data/object/customer",
    "/data/object/customer_email",
    "/data/object/hosted_invoice_url",
    "/data/object/amount_due",
    "/data/object/currency",
    "/data/payment_url",
];

#[derive(Arbitrary, Debug)]
enum Val {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// A time as vendors write it, `ts` seconds from the epoch, in RFC 3339 or as a number.
    Time {
        ts: i64,
        as_number: bool,
    },
    /// A URL on a host that may or may not be allowed.
    Link {
        https: bool,
        host: u8,
        path: String,
    },
}

const HOSTS: [&str; 5] = [
    "invoice.stripe.com",
    "pay.stripe.com",
    "invoice.stripe.com.evil.example",
    "attacker.example",
    "127.0.0.1",
];

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Text(s) => Value::from(s.as_str()),
            Val::Int(i) => Value::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Bool(b) => Value::from(*b),
            Val::Null => Value::Null,
            Val::Time { ts, as_number } => match OffsetDateTime::from_unix_timestamp(*ts) {
                Ok(t) if !as_number => t
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_or(Value::Null, Value::from),
                _ => Value::from(*ts),
            },
            Val::Link { https, host, path } => Value::from(format!(
                "{}://{}/{path}",
                if *https { "https" } else { "http" },
                HOSTS[*host as usize % HOSTS.len()]
            )),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    Fields(Vec<(u8, Val)>),
}

#[derive(Arbitrary, Debug)]
struct Input {
    vendor: u8,
    headers: Vec<(Result<u8, String>, String)>,
    /// Other values for the unsigned id and type headers, for the "same claim" property.
    other_id: String,
    other_type: String,
    body: Body,
    now: i64,
    window_days: u16,
}

fn set(root: &mut Value, pointer: &str, v: Value) {
    let mut at = root;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let obj = at.as_object_mut().expect("made an object");
        if i + 1 == parts.len() {
            obj.insert((*part).to_string(), v);
            return;
        }
        at = obj.entry(*part).or_insert(Value::Object(Map::new()));
    }
}

fuzz_target!(|input: Input| {
    let all = vendors();
    let vendor = &all[input.vendor as usize % all.len()];
    let raw = match &input.body {
        Body::Raw(bytes) => bytes.clone(),
        Body::Fields(fields) => {
            let mut root = Value::Object(Map::new());
            for (p, v) in fields {
                set(&mut root, POINTERS[*p as usize % POINTERS.len()], v.json());
            }
            serde_json::to_vec(&root).unwrap()
        }
    };
    let headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| {
            let name = match n {
                Ok(i) => HEADERS[*i as usize % HEADERS.len()].to_string(),
                Err(s) => s.clone(),
            };
            (name, v.clone())
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    let Ok(x) = extract(vendor, borrowed.as_slice(), &raw) else {
        return;
    };

    if vendor.scheme.signs_body_only() {
        assert_eq!(
            x.event_id,
            body_id(&raw),
            "{}: the claim is the body's",
            vendor.name
        );
        // The same body under other unsigned id and type headers is the same claim.
        let mut swapped: Vec<(&str, &str)> = borrowed
            .iter()
            .copied()
            .filter(|(k, _)| !HEADERS[..5].contains(&k.to_ascii_lowercase().as_str()))
            .collect();
        for h in [
            "x-shopify-webhook-id",
            "x-shopify-event-id",
            "x-github-delivery",
        ] {
            swapped.push((h, input.other_id.as_str()));
        }
        for h in ["x-shopify-topic", "x-github-event"] {
            swapped.push((h, input.other_type.as_str()));
        }
        if let Ok(y) = extract(vendor, swapped.as_slice(), &raw) {
            assert_eq!(
                x.event_id, y.event_id,
                "{}: headers moved the claim",
                vendor.name
            );
        }
    }

    let window = Duration::from_secs(86_400 * u64::from(input.window_days.max(1)));
    if let Ok(now) = OffsetDateTime::from_unix_timestamp(input.now) {
        let _ = x.older_than(window, now);
        if let Some(kind) = x.event {
            let e = x.envelope(vendor, kind, borrowed.as_slice(), now);
            if let Some(link) = &e.payment_url {
                let u = url::Url::parse(link).expect("a kept link parses");
                assert_eq!(u.scheme(), "https", "{link}");
                assert!(
                    vendor.payment_link_allowed(u.host_str().unwrap_or_default()),
                    "{}: {link} is off the list",
                    vendor.name
                );
            }
        }
    }
    if let Some(at) = x.event_time {
        assert!(
            !x.older_than(window, at),
            "a body is not old at its own time"
        );
        let past = time::Duration::try_from(window).unwrap() + time::Duration::SECOND;
        if let Some(later) = at.checked_add(past) {
            assert!(x.older_than(window, later), "a body past the window is old");
        }
    }
});
