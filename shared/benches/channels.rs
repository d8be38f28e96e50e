//! A messaging channel's intake in process: `WebhookService::handle` for `POST /channels/{name}`
//! (verify, normalise, claim the message id, enqueue the `channel.inbound` job), per provider.
//!
//!   cargo bench -p switchboard --bench channels [-- --json PATH]
//!
//! Target (issue 23): inbound verify + enqueue under 1 ms p99 per message, for each provider.
//!
//! The service is built as the webhook function builds it (`WebhookService::new(..)
//! .with_channels(..)` over the bundled config/channels.toml, then `read_secrets`), with
//! in-process stand-ins for
//! what is I/O in AWS: the secrets from a closure (the production resolver's `env:` path),
//! `MemoryClaims` for DynamoDB's conditional writes, and a queue that builds each job's SQS
//! envelope (the JSON body, group and deduplication ids, as `SqsJobQueue` does) and sends
//! nothing. So the figures are our own work per message, which is what carries over to AWS; the
//! two round trips (claim, send) are not in them. The function's log pipeline (JSON, redaction)
//! runs at info into a sink, and metric documents are built but not written, so both are paid.
//!
//! Each request is a provider's webhook for one short text message, as the provider sends it
//! (its JSON or form body and signature headers among the function URL's usual headers), with a
//! message id never seen before: every call claims and queues. Requests are built and signed
//! before their timer starts. The providers take turns, request by request, so drift in the
//! machine's speed hits each alike; each call is timed on its own with `Instant` after an
//! untimed warm-up, and percentiles are nearest-rank. Figures: docs/benchmarks.md.
//!
//! The max is not ours: `MemoryClaims` keeps its claims in a `HashMap`, which doubles when it
//! is 7/8 full (at 3,584, 7,168 ... 57,344 claims) and rehashes every claim it holds then; the
//! request that makes it grow pays milliseconds for it. DynamoDB does nothing of the kind in the
//! function's process. The percentiles are untouched: four of the 60,000 timed requests.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use switchboard::channels::config as channel_config;
use switchboard::channels::twilio::{self, AuthToken};
use switchboard::http_event::HttpEvent;
use switchboard::jobs::{Job, JobQueue, QueueError};
use switchboard::secrets::Secrets;
use switchboard::webhook::claims::MemoryClaims;
use switchboard::webhook::{WebhookService, WebhookSettings};

#[path = "support/mod.rs"]
mod support;
use support::{machine, start_counting, stop_counting, Samples};

const WARM_UP: usize = 2_000;
const MESSAGES: usize = 20_000;
const TARGET_P99_US: f64 = 1_000.0;

/// Shaped as the providers' are (not real credentials): a Meta app secret is 32 hex digits, a
/// Twilio auth token 32 hex digits, a Telegram secret_token up to 256 of `A-Za-z0-9_-`.
const WHATSAPP_APP_SECRET: &str = "3f9a1c7e52b04d8e9a6f1b2c3d4e5f60";
const TWILIO_AUTH_TOKEN: &str = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b";
const TELEGRAM_SECRET_TOKEN: &str = "bench-telegram-secret_Xk2pQ9vR7tL4mN8w";
/// What Twilio's console would hold: the function URL and the channel's path.
const TWILIO_PUBLIC_URL: &str = "https://abcdefghij.lambda-url.us-east-1.on.aws/channels/twilio";
const HOST: &str = "abcdefghij.lambda-url.us-east-1.on.aws";

/// The business's own addresses (fictional 555-01xx numbers).
const WA_PHONE_NUMBER_ID: &str = "109876543210987";
const WA_DISPLAY_NUMBER: &str = "14155550190";
const WA_BUSINESS_ACCOUNT: &str = "100200300400500";
const TWILIO_NUMBER: &str = "+14155550191";
const TWILIO_ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// Distinct customers writing: each message comes from one of them, in turn, so claims and
/// jobs are spread over conversations as real traffic is.
const CUSTOMERS: usize = 250;

/// What customers write: short, as chat messages are, a few with non-ASCII text.
const TEXTS: &[&str] = &[
    "hi, where is my order 1002?",
    "is the desk lamp back in stock",
    "can I return the headphones I got last week?",
    "I'd like to speak to a person please",
    "my parcel says delivered but it isn't here",
    "do you ship to Canada?",
    "what's your refund policy",
    "thanks, that's all 👍",
    "the yoga mat arrived torn, what can I do",
    "¿tienen la funda del teléfono en azul?",
    "ok",
    "can you change the address on my order? I moved last month",
];

/// Counts what it was given and builds each job's envelope, as the SQS queue does before its
/// `SendMessageBatch`; sends nothing.
#[derive(Default)]
struct Queue {
    jobs: AtomicUsize,
}

#[async_trait]
impl JobQueue for Queue {
    async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
        for job in jobs {
            std::hint::black_box(job.envelope()?);
        }
        self.jobs.fetch_add(jobs.len(), Ordering::Relaxed);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Provider {
    Whatsapp,
    Twilio,
    Telegram,
}

const PROVIDERS: [Provider; 3] = [Provider::Whatsapp, Provider::Twilio, Provider::Telegram];

impl Provider {
    fn channel(self) -> &'static str {
        match self {
            Provider::Whatsapp => "whatsapp",
            Provider::Twilio => "twilio",
            Provider::Telegram => "telegram",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Provider::Whatsapp => "WhatsApp Cloud API (JSON, X-Hub-Signature-256)",
            Provider::Twilio => "Twilio SMS (form, X-Twilio-Signature)",
            Provider::Telegram => "Telegram Bot API (JSON, secret token header)",
        }
    }
}

/// A function-URL request as the webhook function sees it: the provider's headers among the
/// ones AWS adds, names lower-cased.
fn request(
    provider: Provider,
    n: usize,
    provider_headers: Vec<(&'static str, String)>,
    body: String,
) -> HttpEvent {
    let mut headers: HashMap<String, String> = [
        ("accept", "*/*"),
        ("host", HOST),
        ("x-amzn-tls-version", "TLSv1.3"),
        ("x-amzn-tls-cipher-suite", "TLS_AES_128_GCM_SHA256"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-proto", "https"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    headers.insert(
        "x-amzn-trace-id".into(),
        format!("Root=1-6b06cc33-{n:024x}"),
    );
    headers.insert("x-forwarded-for".into(), "173.252.127.118".into());
    headers.insert("content-length".into(), body.len().to_string());
    headers.extend(
        provider_headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    let mut e = HttpEvent {
        raw_path: format!("/channels/{}", provider.channel()),
        body: Some(body),
        headers,
        ..HttpEvent::default()
    };
    e.request_context.http.method = "POST".into();
    e.request_context.http.path = e.raw_path.clone();
    e.request_context.request_id = format!("{n:08x}-7b1e-4c2a-9f0d-{n:012x}");
    e
}

/// Meta's webhook for one text message (Cloud API, `messages` field), as it posts it.
fn whatsapp(n: usize, text: &str) -> HttpEvent {
    let customer = 14155550000u64 + (n % CUSTOMERS) as u64;
    // A wamid is "wamid." and base64 of about 30 bytes; unique per message.
    let mut raw = [0u8; 30];
    raw[..8].copy_from_slice(&(n as u64).to_be_bytes());
    raw[8..16].copy_from_slice(&customer.to_be_bytes());
    raw[16..].copy_from_slice(b"\x15\x02\x00\x12\x18\x14\x33\xab\x7c\x41\x0e\x9d\x55\x20");
    let id = format!(
        "wamid.{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": WA_BUSINESS_ACCOUNT,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": WA_DISPLAY_NUMBER,
                        "phone_number_id": WA_PHONE_NUMBER_ID,
                    },
                    "contacts": [{"profile": {"name": "Sam Example"}, "wa_id": customer.to_string()}],
                    "messages": [{
                        "from": customer.to_string(),
                        "id": id,
                        "timestamp": (1_795_600_000 + n).to_string(),
                        "text": {"body": text},
                        "type": "text",
                    }],
                },
                "field": "messages",
            }],
        }],
    })
    .to_string();
    let mut mac =
        Hmac::<Sha256>::new_from_slice(WHATSAPP_APP_SECRET.as_bytes()).expect("any key length");
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    request(
        Provider::Whatsapp,
        n,
        vec![
            ("content-type", "application/json".into()),
            ("user-agent", "facebookexternalua".into()),
            ("x-hub-signature-256", signature),
        ],
        body,
    )
}

/// Twilio's incoming-SMS webhook, its fields in the order Twilio posts them.
fn twilio(n: usize, token: &AuthToken, text: &str) -> HttpEvent {
    let from = format!("+1415555{:04}", n % CUSTOMERS);
    let sid = format!("SM{:016x}{:016x}", n as u64, 0x5eed_0fc4_a77e_1d3bu64);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("ToCountry", "US"),
            ("ToState", "CA"),
            ("SmsMessageSid", &sid),
            ("NumMedia", "0"),
            ("ToCity", "SAN FRANCISCO"),
            ("FromZip", "94105"),
            ("SmsSid", &sid),
            ("FromState", "CA"),
            ("SmsStatus", "received"),
            ("FromCity", "SAN FRANCISCO"),
            ("Body", text),
            ("FromCountry", "US"),
            ("To", TWILIO_NUMBER),
            ("ToZip", "94107"),
            ("NumSegments", "1"),
            ("MessageSid", &sid),
            ("AccountSid", TWILIO_ACCOUNT_SID),
            ("From", &from),
            ("ApiVersion", "2010-04-01"),
        ])
        .finish();
    let signature = twilio::sign(token, TWILIO_PUBLIC_URL, body.as_bytes());
    request(
        Provider::Twilio,
        n,
        vec![
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=UTF-8".into(),
            ),
            ("user-agent", "TwilioProxy/1.1".into()),
            ("i-twilio-idempotency-token", format!("{n:08x}-tw-idem")),
            ("x-twilio-signature", signature),
        ],
        body,
    )
}

/// Telegram's update for a text message in a private chat with the bot.
fn telegram(n: usize, text: &str) -> HttpEvent {
    let chat = 700_100_000 + (n % CUSTOMERS) as i64;
    // Message ids count up per chat; with the chat they are the message's id.
    let message_id = 1 + n / CUSTOMERS;
    let body = json!({
        "update_id": 815_000_000 + n,
        "message": {
            "message_id": message_id,
            "from": {"id": chat, "is_bot": false, "first_name": "Sam", "language_code": "en"},
            "chat": {"id": chat, "first_name": "Sam", "type": "private"},
            "date": 1_795_600_000 + n,
            "text": text,
        },
    })
    .to_string();
    request(
        Provider::Telegram,
        n,
        vec![
            ("content-type", "application/json".into()),
            (
                "x-telegram-bot-api-secret-token",
                TELEGRAM_SECRET_TOKEN.into(),
            ),
        ],
        body,
    )
}

fn secret_env(name: &str) -> Option<String> {
    match name {
        "WHATSAPP_APP_SECRET" => Some(WHATSAPP_APP_SECRET.into()),
        "WHATSAPP_VERIFY_TOKEN" => Some("bench-whatsapp-verify-token".into()),
        "TWILIO_AUTH_TOKEN" => Some(TWILIO_AUTH_TOKEN.into()),
        "TELEGRAM_SECRET_TOKEN" => Some(TELEGRAM_SECRET_TOKEN.into()),
        _ => None,
    }
}

async fn service(queue: Arc<Queue>) -> WebhookService {
    let channels = channel_config::parse(
        channel_config::BUNDLED_NAME,
        channel_config::BUNDLED,
        &|name: &str| (name == "TWILIO_PUBLIC_URL").then(|| TWILIO_PUBLIC_URL.to_string()),
    )
    .expect("the bundled channel file parses");
    assert!(
        channels.disabled.is_empty(),
        "a bundled channel is disabled: {:?}",
        channels.disabled
    );
    // No vendors: a channel's request never looks at them (the path is routed first), and the
    // bundled ones would only log their missing secrets at start.
    let service = WebhookService::new(
        BTreeMap::new(),
        Arc::new(Secrets::new(secret_env, None)),
        Arc::new(MemoryClaims::default()),
        queue,
        WebhookSettings::default(),
    )
    .with_channels(channels);
    service.read_secrets().await;
    service
}

fn json_path() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned())
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e8).round() / 100.0
}

fn shown(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e6;
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.1} µs")
    }
}

struct Row {
    provider: Provider,
    samples: Samples,
    body_bytes: usize,
    allocations: u64,
}

fn main() {
    // `cargo test --benches` runs this too (no `--bench`): a few calls there, to check it works.
    let test_run = !std::env::args().any(|a| a == "--bench");
    let (warm_up, messages) = if test_run {
        (5, 20)
    } else {
        (WARM_UP, MESSAGES)
    };
    switchboard::metrics::discard_output();
    {
        use tracing_subscriber::util::SubscriberInitExt;
        switchboard::telemetry::subscriber(
            switchboard::telemetry::filter(None).expect("info is a level"),
            std::io::sink,
        )
        .try_init()
        .expect("no other subscriber");
    }
    let token = AuthToken::new(TWILIO_AUTH_TOKEN).expect("a usable token");
    let build = |p: Provider, n: usize| {
        let text = TEXTS[n % TEXTS.len()];
        match p {
            Provider::Whatsapp => whatsapp(n, text),
            Provider::Twilio => twilio(n, &token, text),
            Provider::Telegram => telegram(n, text),
        }
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let queue = Arc::new(Queue::default());
    let rows = rt.block_on(async {
        let service = service(queue.clone()).await;
        let mut times: BTreeMap<Provider, Vec<Duration>> = BTreeMap::new();
        let mut bytes: BTreeMap<Provider, usize> = BTreeMap::new();
        let mut allocations: BTreeMap<Provider, u64> = BTreeMap::new();
        for n in 0..warm_up + messages {
            for p in PROVIDERS {
                let event = build(p, n);
                let start = Instant::now();
                let response = service.handle(&event).await;
                let elapsed = start.elapsed();
                // Every message is new: anything but 200 means the bench measured a refusal.
                assert_eq!(
                    response.status_code,
                    200,
                    "{}: {}",
                    p.channel(),
                    response.body
                );
                if n >= warm_up {
                    times.entry(p).or_default().push(elapsed);
                    *bytes.entry(p).or_default() += event.body.as_ref().map_or(0, String::len);
                }
            }
        }
        // Untimed: what one more message allocates, end to end (its log line included).
        for p in PROVIDERS {
            let event = build(p, warm_up + messages);
            start_counting();
            let response = service.handle(&event).await;
            allocations.insert(p, stop_counting());
            assert_eq!(response.status_code, 200, "{}", response.body);
        }
        PROVIDERS
            .iter()
            .map(|&p| Row {
                provider: p,
                samples: Samples::new(times.remove(&p).unwrap_or_default()),
                body_bytes: bytes[&p] / messages,
                allocations: allocations[&p],
            })
            .collect::<Vec<_>>()
    });
    // Each call queued its one job: none was taken for a duplicate.
    let calls = (warm_up + messages + 1) * PROVIDERS.len();
    assert_eq!(queue.jobs.load(Ordering::Relaxed), calls, "jobs queued");

    let all = Samples::new(rows.iter().flat_map(|r| r.samples.0.clone()).collect());
    let worst_p99 = rows
        .iter()
        .map(|r| r.samples.percentile(0.99))
        .max()
        .expect("providers");
    let verdict = if us(worst_p99) < TARGET_P99_US {
        "pass"
    } else {
        "**miss**"
    };

    println!(
        "channels: POST /channels/{{name}} through WebhookService::handle (verify, normalise, claim, enqueue), in process; \
         {messages} messages per provider after {warm_up} untimed, each with a new message id"
    );
    println!("machine: {}", machine());
    println!();
    println!("| provider | body (mean) | p50 | p99 | max | allocations |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} B | {} | {} | {} | {} |",
            r.provider.label(),
            r.body_bytes,
            shown(r.samples.percentile(0.50)),
            shown(r.samples.percentile(0.99)),
            shown(r.samples.max()),
            r.allocations,
        );
    }
    println!(
        "| **all** | | {} | {} | {} | |",
        shown(all.percentile(0.50)),
        shown(all.percentile(0.99)),
        shown(all.max()),
    );
    println!();
    println!(
        "target: under {TARGET_P99_US} µs p99 for every provider: {verdict} (slowest p99 {})",
        shown(worst_p99)
    );

    if let Some(path) = json_path() {
        let samples = |s: &Samples| {
            json!({
                "n": s.0.len(),
                "p50_us": us(s.percentile(0.50)),
                "p99_us": us(s.percentile(0.99)),
                "max_us": us(s.max()),
            })
        };
        let providers: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "channel": r.provider.channel(),
                    "provider": r.provider.label(),
                    "body_bytes_mean": r.body_bytes,
                    "allocations": r.allocations,
                    "intake": samples(&r.samples),
                })
            })
            .collect();
        let doc = json!({
            "config": channel_config::BUNDLED_NAME,
            "messages": messages,
            "warm_up": warm_up,
            "customers": CUSTOMERS,
            "target_p99_us": TARGET_P99_US,
            "machine": machine(),
            "providers": providers,
            "all": samples(&all),
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON");
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("channels bench: cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
}
