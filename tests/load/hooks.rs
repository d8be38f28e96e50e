//! The vendors: signed events at a steady rate (Stripe and a Standard Webhooks billing platform
//! saying a payment failed, Shopify saying an order shipped), some delivered twice, and now and
//! then one signed with the wrong secret. A vendor retries a delivery that timed out, failed
//! (5xx) or was told to come back (409), as the real ones do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::signatures::{sign, Scheme, SigningKey};
use switchboard_it::{unix_now, Stack};

use crate::chat::is_synthetic;
use crate::Shared;

/// Who the events are about: the demo customers the vendors know, and the synthetic customers
/// whose orders ship.
pub struct Targets {
    /// (customer, Stripe customer id)
    stripe: Vec<(String, String)>,
    /// (customer, billing platform account id)
    billing: Vec<(String, String)>,
    shipped_to: Vec<String>,
}

impl Targets {
    pub fn for_customers(chatting: &[String]) -> Targets {
        let known = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(c, v)| (c.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let mut shipped_to: Vec<String> = chatting
            .iter()
            .filter(|c| is_synthetic(c))
            .cloned()
            .collect();
        if shipped_to.is_empty() {
            shipped_to.push("cust_load_hooks".into());
        }
        Targets {
            stripe: known(&[
                ("cust_alice", "cus_alice01"),
                ("cust_bob", "cus_bob02"),
                ("cust_carol", "cus_carol03"),
            ]),
            billing: known(&[("cust_alice", "acct_alice")]),
            shipped_to,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// "Looks like your payment didn't go through" in one of the customer's conversations.
    PaymentFailed { customer: String },
    /// "order #N has shipped" in one of the customer's conversations.
    Shipped { customer: String, order: String },
}

impl Expect {
    pub fn customer(&self) -> &str {
        match self {
            Expect::PaymentFailed { customer } | Expect::Shipped { customer, .. } => customer,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Delivery {
    /// None: timed out or the connection failed.
    pub status: Option<u16>,
    pub latency: Duration,
    /// A 200 saying `"duplicate": true`.
    pub duplicate: bool,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub vendor: &'static str,
    pub event_id: String,
    /// What the webhook claims it under and its job's effect is keyed on: the body's hash for
    /// vendors that sign only the body (their id header is unsigned), the id otherwise.
    pub claim_id: String,
    pub expect: Expect,
    /// Delivered twice on purpose.
    pub doubled: bool,
    pub deliveries: Vec<Delivery>,
}

impl Event {
    pub fn queued(&self) -> usize {
        self.deliveries
            .iter()
            .filter(|d| d.status == Some(202))
            .count()
    }

    /// The webhook function took it (queued now, or earlier by a delivery whose answer was lost).
    pub fn accepted(&self) -> bool {
        self.deliveries
            .iter()
            .any(|d| d.status == Some(202) || (d.status == Some(200) && d.duplicate))
    }
}

#[derive(Debug, Clone)]
pub struct BadEvent {
    pub vendor: &'static str,
    pub event_id: String,
    /// As `Event::claim_id`.
    pub claim_id: String,
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
pub struct HookLog {
    pub events: Vec<Event>,
    pub bad: Vec<BadEvent>,
    pub problems: Vec<String>,
    pub setup_errors: Vec<String>,
}

struct Prepared {
    vendor: &'static str,
    event_id: String,
    expect: Expect,
    body: Vec<u8>,
    /// Headers other than the signature's.
    extra: Vec<(&'static str, String)>,
    scheme: Scheme,
}

impl Prepared {
    fn claim_id(&self) -> String {
        if self.scheme.signs_body_only() {
            switchboard::webhook::events::body_id(&self.body)
        } else {
            self.event_id.clone()
        }
    }

    fn headers(&self, secret: &str) -> Result<Vec<(&'static str, String)>, String> {
        let key = SigningKey::new(self.scheme, secret).map_err(|e| format!("signing key: {e}"))?;
        let mut h = sign(self.scheme, &key, &self.event_id, unix_now(), &self.body);
        h.extend(self.extra.iter().cloned());
        Ok(h)
    }
}

async fn prepare(shared: &Shared, targets: &Targets, i: u64) -> Result<Prepared, String> {
    let event_id = format!("evt_load_{}_{i:05}", shared.run);
    Ok(match i % 3 {
        0 => {
            let (customer, stripe_id) = &targets.stripe[(i / 3) as usize % targets.stripe.len()];
            let body = json!({
                "id": event_id, "object": "event", "type": "invoice.payment_failed",
                "data": { "object": {
                    "object": "invoice", "customer": stripe_id, "amount_due": 2999,
                    "currency": "usd", "hosted_invoice_url": "https://invoice.stripe.com/i/load"
                }}
            });
            Prepared {
                vendor: "stripe",
                event_id,
                expect: Expect::PaymentFailed {
                    customer: customer.clone(),
                },
                body: body.to_string().into_bytes(),
                extra: Vec::new(),
                scheme: Scheme::Stripe,
            }
        }
        1 => {
            let customer = &targets.shipped_to[(i / 3) as usize % targets.shipped_to.len()];
            let order = shared.create_order(customer, 2500).await?;
            let body = json!({
                "id": i, "order_id": i, "name": format!("#{order}.1"),
                "status": "success", "shipment_status": "confirmed", "tracking_company": "UPS",
                "tracking_url": format!("https://track.example.com/ups/1Z{order}")
            });
            Prepared {
                vendor: "shopify",
                event_id,
                expect: Expect::Shipped {
                    customer: customer.clone(),
                    order,
                },
                body: body.to_string().into_bytes(),
                extra: vec![("x-shopify-topic", "fulfillments/create".into())],
                scheme: Scheme::Shopify,
            }
        }
        _ => {
            let (customer, account) = &targets.billing[(i / 3) as usize % targets.billing.len()];
            let body = json!({
                "type": "payment.failed",
                "data": { "customer_id": account, "amount": 2999, "currency": "usd" }
            });
            Prepared {
                vendor: "billing",
                event_id,
                expect: Expect::PaymentFailed {
                    customer: customer.clone(),
                },
                body: body.to_string().into_bytes(),
                extra: Vec::new(),
                scheme: Scheme::StandardWebhooks,
            }
        }
    })
}

async fn deliver(
    shared: &Shared,
    vendor: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
) -> Delivery {
    let mut req = shared
        .http
        .post(format!("{}/webhooks/{vendor}", shared.stack.webhook_url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let t0 = Instant::now();
    let (status, duplicate) = match req.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            let duplicate = serde_json::from_str::<serde_json::Value>(&text)
                .map(|v| v["duplicate"] == true)
                .unwrap_or(false);
            (Some(status), duplicate)
        }
        Err(_) => (None, false),
    };
    Delivery {
        status,
        latency: t0.elapsed(),
        duplicate,
    }
}

/// Delivers until answered for good: a vendor comes back after a 409, a 5xx or no answer.
async fn deliver_until_answered(
    shared: &Shared,
    p: &Prepared,
    secret: &str,
    out: &mut Vec<Delivery>,
) {
    for attempt in 0..4u64 {
        let headers = match p.headers(secret) {
            Ok(h) => h,
            Err(_) => return,
        };
        let d = deliver(shared, p.vendor, &headers, &p.body).await;
        let again = matches!(d.status, None | Some(409)) || d.status.is_some_and(|s| s >= 500);
        out.push(d);
        if !again {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500 * (attempt + 1))).await;
    }
}

async fn one_event(
    shared: Arc<Shared>,
    targets: Arc<Targets>,
    i: u64,
) -> (Option<Event>, Option<BadEvent>, Vec<String>) {
    let mut problems = Vec::new();
    let p = match prepare(&shared, &targets, i).await {
        Ok(p) => p,
        Err(e) => return (None, None, vec![format!("event {i}: {e}")]),
    };
    let secret = Stack::webhook_secret(p.vendor);
    let every = shared.opts.duplicate_every;
    let doubled = every > 0 && i % every == every - 1;
    let mut deliveries = Vec::new();
    if doubled && i % 2 == 0 {
        // Both at once, as a vendor retrying over a slow answer does.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        tokio::join!(
            deliver_until_answered(&shared, &p, &secret, &mut a),
            deliver_until_answered(&shared, &p, &secret, &mut b)
        );
        deliveries.extend(a);
        deliveries.extend(b);
    } else {
        deliver_until_answered(&shared, &p, &secret, &mut deliveries).await;
        if doubled {
            tokio::time::sleep(Duration::from_millis(700)).await;
            deliver_until_answered(&shared, &p, &secret, &mut deliveries).await;
        }
    }
    for d in &deliveries {
        if d.status.is_some_and(|s| s >= 500) {
            problems.push(format!(
                "webhook {} {}: {}",
                p.vendor,
                p.event_id,
                d.status.unwrap_or_default()
            ));
        }
    }
    let bad_every = shared.opts.bad_every;
    let bad = if bad_every > 0 && i % bad_every == bad_every - 1 {
        // The same kind of event with a new id, signed with a secret that is not the vendor's.
        let mut forged = match prepare(&shared, &targets, i).await {
            Ok(f) => f,
            Err(e) => return (None, None, vec![format!("event {i}: {e}")]),
        };
        forged.event_id = format!("{}_forged", p.event_id);
        if forged.vendor == "stripe" {
            forged.body = String::from_utf8_lossy(&forged.body)
                .replace(&p.event_id, &forged.event_id)
                .into_bytes();
        }
        let wrong = match forged.scheme {
            Scheme::StandardWebhooks => "whsec_bm90IHRoZSB2ZW5kb3IncyBzZWNyZXQ=".to_string(),
            _ => "not-the-vendors-secret".to_string(),
        };
        match forged.headers(&wrong) {
            Ok(h) => {
                let d = deliver(&shared, forged.vendor, &h, &forged.body).await;
                Some(BadEvent {
                    vendor: forged.vendor,
                    claim_id: forged.claim_id(),
                    event_id: forged.event_id,
                    status: d.status,
                })
            }
            Err(e) => {
                problems.push(format!("forged event {i}: {e}"));
                None
            }
        }
    } else {
        None
    };
    let event = Event {
        vendor: p.vendor,
        claim_id: p.claim_id(),
        event_id: p.event_id,
        expect: p.expect,
        doubled,
        deliveries,
    };
    (Some(event), bad, problems)
}

pub async fn sender(shared: Arc<Shared>, targets: Targets) -> HookLog {
    let mut log = HookLog::default();
    if shared.opts.webhook_rate <= 0.0 {
        return log;
    }
    let targets = Arc::new(targets);
    let period = Duration::from_secs_f64(1.0 / shared.opts.webhook_rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut set = tokio::task::JoinSet::new();
    let mut i = 0u64;
    loop {
        tick.tick().await;
        if !shared.running() {
            break;
        }
        let (shared, targets) = (shared.clone(), targets.clone());
        set.spawn(async move { one_event(shared, targets, i).await });
        i += 1;
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((event, bad, problems)) => {
                log.events.extend(event);
                log.bad.extend(bad);
                log.problems.extend(problems);
            }
            Err(e) => log.setup_errors.push(format!("a webhook task failed: {e}")),
        }
    }
    log.events.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    log
}
