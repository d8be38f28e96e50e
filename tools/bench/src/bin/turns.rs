//! Chat turn latency, in process, against the local stack's resources (`--no-functions`): the
//! chat function's object graph (`switchboard::setup::chat_api`, from the stack's environment)
//! serving API Gateway events one at a time, as a warm Lambda container does.
//!
//! Part 1, a mix of turns: each session is one customer's new conversation of six turns
//! (greeting, an order's status from the demo order system, a policy question, an utterance the
//! bot does not understand, thanks, and a request for a person, which starts a handoff job: an
//! outbox item in the turn's transaction). Reported: turn latency, and the project's own
//! overhead, the turn minus the time it spent awaiting I/O (DynamoDB, connector HTTP), as
//! `switchboard::io_clock` measures it: the same clock behind the `chat request` line's `io_us`
//! and the `TurnOverhead` metric in production.
//!
//! Part 2, turn cost against conversation length: the same question asked in conversations
//! that hold 10 messages and 10,000 messages, seeded straight into the table through the
//! store's own commit (its item shape), measured alternately so drift hits both alike.
//!
//!     turns [--warmup W] [--turns N] [--length-turns M] [--long-messages L] [--json PATH]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde_json::{json, Value};
use switchboard::api::ChatApi;
use switchboard::conversation::{Conversation, ConversationKey, Message, Role};
use switchboard::http_event::HttpEvent;
use switchboard::io_clock;
use switchboard::store::dynamo::{message_sort_key, partition_key, DynamoStore};
use switchboard::store::{Commit, ConversationStore};
use switchboard_bench::{env, machine, write_json, Args, Stats, Us};

const USAGE: &str = "usage: turns [--warmup W (50)] [--turns N (300)] [--length-turns M (30)] \
[--long-messages L (10000)] [--json PATH]";

/// The demo order system's customers and one order of each (dev/demo_systems.py).
const CUSTOMERS: [(&str, &str); 5] = [
    ("cust_alice", "1001"),
    ("cust_bob", "1003"),
    ("cust_carol", "1005"),
    ("cust_erin", "1006"),
    ("cust_frank", "1007"),
];

/// One session's turns: (kind, text); `{order}` is the customer's order. The last starts a job,
/// so the mix holds a turn that writes an outbox item with its commit.
const SESSION: [(&str, &str); 6] = [
    ("greeting", "hi there"),
    (
        "order status (demo order system)",
        "where is my order {order}?",
    ),
    (
        "policy question (answers file)",
        "what is your refund policy?",
    ),
    ("not understood (fallback)", "blorp the fizzle wug"),
    ("thanks", "thanks, that's all"),
    (
        "person asked for (starts a job: outbox item)",
        "I want to talk to a person",
    ),
];

const LENGTH_QUESTION: &str = "what is your refund policy?";

/// Messages a seeded conversation gets through the store's commit: more than the default read
/// window (20) plus what the measured turns add to the short conversations.
const COMMITTED_NEWEST: u64 = 30;

const BATCH_WRITE_MAX: usize = 25;

#[derive(Clone, Copy)]
struct Sample {
    total: Duration,
    io: Duration,
}

impl Sample {
    fn own(&self) -> Duration {
        self.total.saturating_sub(self.io)
    }
}

struct Turns {
    api: ChatApi,
    log: Log,
    errors: BTreeMap<String, usize>,
}

/// The function's log output, kept instead of written (and dropped after each turn): formatting
/// and redacting it is part of a turn's cost, as in Lambda.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Turns {
    /// One turn; returns its timing and the conversation it went to.
    async fn post(
        &mut self,
        token: &str,
        text: &str,
        conversation: Option<&str>,
    ) -> Result<(Sample, String), String> {
        let cmid = format!("bench-{}", ulid::Ulid::new());
        let event: HttpEvent = serde_json::from_value(switchboard_bench::post_message(
            token,
            text,
            conversation,
            &cmid,
        ))
        .map_err(|e| format!("building the event: {e}"))?;
        let started = Instant::now();
        let (response, io) = io_clock::measure(self.api.handle(event)).await;
        let total = started.elapsed();
        self.log.clear();
        if response.status_code != 200 {
            *self
                .errors
                .entry(format!("HTTP {}", response.status_code))
                .or_default() += 1;
            return Err(format!(
                "turn {text:?} answered {}: {}",
                response.status_code, response.body
            ));
        }
        let body: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        let id = body["conversation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok((Sample { total, io }, id))
    }
}

fn stats(samples: &[Sample]) -> Value {
    let total: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    let io: Vec<Duration> = samples.iter().map(|s| s.io).collect();
    let own: Vec<Duration> = samples.iter().map(Sample::own).collect();
    json!({ "total": Stats::of(&total), "io": Stats::of(&io), "own": Stats::of(&own) })
}

fn row(label: &str, samples: &[Sample]) {
    let total: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    let own: Vec<Duration> = samples.iter().map(Sample::own).collect();
    let (t, o) = (Stats::of(&total), Stats::of(&own));
    eprintln!(
        "{:<36} {:>5} {:>10} {:>10} {:>10}   {:>10} {:>10}",
        label,
        t.n,
        Us(t.p50_us).to_string(),
        Us(t.p99_us).to_string(),
        Us(t.max_us).to_string(),
        Us(o.p50_us).to_string(),
        Us(o.p99_us).to_string()
    );
}

fn header() {
    eprintln!(
        "{:<36} {:>5} {:>10} {:>10} {:>10}   {:>10} {:>10}",
        "", "turns", "p50", "p99", "max", "own p50", "own p99"
    );
}

/// The `n`th message of a seeded conversation: the customer's and the bot's alternately.
fn seeded_message(key: &ConversationKey, seq: u64, now: time::OffsetDateTime) -> Message {
    let customer_turn = seq % 2 == 1;
    let (role, text) = if customer_turn {
        (
            Role::Customer,
            format!("where is my order 1001? (message {seq})"),
        )
    } else {
        (
            Role::Bot,
            "Order 1001 is in transit with UPS and should arrive in 2 days.".to_string(),
        )
    };
    Message {
        client_message_id: customer_turn.then(|| format!("seed-{}-{seq}", key.id)),
        reply_to: (!customer_turn).then_some(seq - 1),
        ..Message::new(seq, role, text, now)
    }
}

/// A message item in `DynamoStore`'s shape (its `message_item`, which is private). Only
/// messages older than any turn's read window are written this way; a change of shape that
/// made them unreadable would not show here, but one in the newest messages would, as errors.
fn message_item(
    key: &ConversationKey,
    m: &Message,
    expires: i64,
) -> HashMap<String, AttributeValue> {
    let s = |v: String| AttributeValue::S(v);
    let mut item = HashMap::from([
        ("pk".to_string(), s(partition_key(key))),
        ("sk".to_string(), s(message_sort_key(m.seq))),
        ("seq".to_string(), AttributeValue::N(m.seq.to_string())),
        ("role".to_string(), s(m.role.as_str().to_string())),
        ("text".to_string(), s(m.text.clone())),
        (
            "created_at".to_string(),
            s(m.created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()),
        ),
        (
            "expires_at".to_string(),
            AttributeValue::N(expires.to_string()),
        ),
    ]);
    if let Some(id) = &m.client_message_id {
        item.insert("client_message_id".into(), s(id.clone()));
    }
    if let Some(r) = m.reply_to {
        item.insert("reply_to".into(), AttributeValue::N(r.to_string()));
    }
    item
}

/// A conversation of `customer` holding `messages` messages. The state record and the newest
/// messages (more than a turn reads) go through the store's own `commit`, so what a turn loads
/// is exactly what turns write; older messages go in with BatchWriteItem, because moto copies
/// the whole table once per item of a transaction, which makes 10,000 messages in
/// transactions take hours.
async fn seed(
    store: &DynamoStore,
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    customer: &str,
    messages: usize,
) -> Result<ConversationKey, String> {
    let key = ConversationKey {
        tenant: switchboard::auth::DEFAULT_TENANT.to_string(),
        id: switchboard::conversation::new_conversation_id(),
    };
    let now = time::OffsetDateTime::now_utc();
    let expires = now.unix_timestamp() + 24 * 3600;
    let total = messages as u64;
    let committed = total.min(COMMITTED_NEWEST);
    let older: Vec<u64> = (1..=total - committed).collect();
    for chunk in older.chunks(BATCH_WRITE_MAX) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|&seq| {
                let put = PutRequest::builder()
                    .set_item(Some(message_item(
                        &key,
                        &seeded_message(&key, seq, now),
                        expires,
                    )))
                    .build()
                    .map_err(|e| e.to_string())?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, String>>()?;
        while !requests.is_empty() {
            let out = ddb
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "seeding: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )
                })?;
            requests = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
        }
    }
    let mut conversation = Conversation::new(key.clone(), customer.to_string(), now);
    conversation.version = 1;
    conversation.last_seq = total;
    store
        .commit(Commit {
            conversation,
            expected_version: 0,
            messages: (total - committed + 1..=total)
                .map(|seq| seeded_message(&key, seq, now))
                .collect(),
            turn: None,
            effect: None,
            jobs: vec![],
        })
        .await
        .map_err(|e| format!("seeding {messages} messages: {e}"))?;
    Ok(key)
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("turns: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let args = Args::parse(USAGE, &[])?;
    let warmup = args.number("warmup", 50)?;
    let measured = args.number("turns", 300)?.max(1);
    let length_turns = args.number("length-turns", 30)?.max(1);
    let long_messages = args.number("long-messages", 10_000)?.max(10);
    env("TABLE_NAME")?;
    // The limiter stays in the path (its check is part of a turn's cost) but never refuses: a
    // handful of demo customers send hundreds of turns in seconds. Set before any thread starts.
    std::env::set_var("RATE_LIMIT_PER_MINUTE", "1000000");
    std::env::set_var("RATE_LIMIT_BURST", "1000000");

    // The function's logging pipeline (JSON, redaction) at info, into memory; its EMF metric
    // documents are built but not written.
    switchboard::metrics::discard_output();
    let log = Log::default();
    let writer = log.clone();
    use tracing_subscriber::util::SubscriberInitExt;
    switchboard::telemetry::subscriber(
        switchboard::telemetry::filter(None).expect("info is a level"),
        move || writer.clone(),
    )
    .try_init()
    .map_err(|e| format!("installing the log subscriber: {e}"))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let api = switchboard::setup::chat_api()
            .await
            .map_err(|e| format!("chat_api: {e}"))?;
        let mut turns = Turns {
            api,
            log,
            errors: BTreeMap::new(),
        };
        let tokens: Vec<String> = CUSTOMERS
            .iter()
            .map(|(c, _)| switchboard_bench::customer_token(c))
            .collect::<Result<_, _>>()?;

        // Part 1: the mix.
        let mut all = Vec::new();
        let mut by_kind: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
        let mut done = 0usize;
        let mut session = 0usize;
        while done < warmup + measured {
            let who = session % CUSTOMERS.len();
            session += 1;
            let mut conversation: Option<String> = None;
            for (kind, text) in SESSION {
                if done >= warmup + measured {
                    break;
                }
                let text = text.replace("{order}", CUSTOMERS[who].1);
                let (sample, id) = turns
                    .post(&tokens[who], &text, conversation.as_deref())
                    .await?;
                conversation.get_or_insert(id);
                if done >= warmup {
                    by_kind.entry(kind).or_default().push(sample);
                    all.push(sample);
                }
                done += 1;
            }
        }
        eprintln!("\nchat turns, in process against the local stack (moto, demo systems)");
        header();
        row("all turns", &all);
        for (kind, samples) in &by_kind {
            row(&format!("  {kind}"), samples);
        }

        // Part 2: 10 vs 10,000 messages.
        let aws = switchboard::setup::aws().await.map_err(|e| e.to_string())?;
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&aws),
            env("TABLE_NAME")?,
            Duration::from_secs(24 * 3600),
        );
        let customer = CUSTOMERS[0].0;
        let token = &tokens[0];
        let ddb = aws_sdk_dynamodb::Client::new(&aws);
        let table = env("TABLE_NAME")?;
        // The process's peak so far: the mix's turns, before seeding adds the benchmark's own.
        let peak_rss = switchboard_bench::peak_rss_bytes(None);
        let seeding = Instant::now();
        let mut short = Vec::new();
        for _ in 0..length_turns {
            short.push(seed(&store, &ddb, &table, customer, 10).await?);
        }
        let long = seed(&store, &ddb, &table, customer, long_messages).await?;
        let seeded_in = seeding.elapsed();
        let mut at_short = Vec::new();
        let mut at_long = Vec::new();
        // One untimed turn each first: the first read of a partition is not what is compared.
        turns.post(token, LENGTH_QUESTION, Some(&long.id)).await?;
        for key in &short {
            let (s, _) = turns.post(token, LENGTH_QUESTION, Some(&key.id)).await?;
            at_short.push(s);
            let (l, _) = turns.post(token, LENGTH_QUESTION, Some(&long.id)).await?;
            at_long.push(l);
        }
        eprintln!(
            "\nturn cost against conversation length ({} and {} messages seeded in {:.1} s)",
            10,
            long_messages,
            seeded_in.as_secs_f64()
        );
        header();
        row("10 messages", &at_short);
        row(&format!("{long_messages} messages"), &at_long);
        let ratio = |f: fn(&Stats) -> f64| {
            let total = |v: &[Sample]| Stats::of(&v.iter().map(|s| s.total).collect::<Vec<_>>());
            f(&total(&at_long)) / f(&total(&at_short))
        };
        let own_ratio = |f: fn(&Stats) -> f64| {
            let own = |v: &[Sample]| Stats::of(&v.iter().map(Sample::own).collect::<Vec<_>>());
            f(&own(&at_long)) / f(&own(&at_short))
        };
        let (r50, r99) = (ratio(|s| s.p50_us), ratio(|s| s.p99_us));
        eprintln!("ratio {long_messages}/10: p50 {r50:.2}, p99 {r99:.2}");

        write_json(
            args.get("json"),
            &json!({
                "benchmark": "turns",
                "io_clock": true,
                "io_source": "switchboard::io_clock::measure around ChatApi::handle (the clock behind io_us)",
                "warmup": warmup,
                "session": SESSION.iter().map(|(k, t)| json!({"kind": k, "text": t})).collect::<Vec<_>>(),
                "customers": CUSTOMERS.iter().map(|(c, o)| json!({"customer": c, "order": o})).collect::<Vec<_>>(),
                "mix": stats(&all),
                "by_kind": by_kind.iter().map(|(k, v)| (k.to_string(), stats(v))).collect::<serde_json::Map<_, _>>(),
                "errors": turns.errors,
                "peak_rss_bytes": peak_rss,
                "length": {
                    "question": LENGTH_QUESTION,
                    "short_messages": 10,
                    "long_messages": long_messages,
                    "turns_each": length_turns,
                    "seed_seconds": seeded_in.as_secs_f64(),
                    "short": stats(&at_short),
                    "long": stats(&at_long),
                    "ratio_p50": r50,
                    "ratio_p99": r99,
                    "own_ratio_p50": own_ratio(|s| s.p50_us),
                    "own_ratio_p99": own_ratio(|s| s.p99_us),
                },
                "machine": machine(),
            }),
        )
    })
}
