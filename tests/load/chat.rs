//! One customer: a loop of turns (order status, a refund that starts a job, a question, small
//! talk), each with its own client_message_id and retried with it on a timeout, 409, 429 or
//! 5xx, as a client of an idempotent API should.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::conversation::derived_conversation_id;
use switchboard::dialogue::{DOWN_WILL_MESSAGE, LET_ME_CHECK};

/// What the shipped bot says while a deferred turn is answered.
fn deferral_texts() -> [String; 2] {
    let m = switchboard::bot::Bot::embedded().default_messages();
    [
        m.render(LET_ME_CHECK, &[]),
        m.render(DOWN_WILL_MESSAGE, &[]),
    ]
}

use crate::Shared;

/// The demo systems' customers whose orders make the order flows real (see dev/demo_systems.py);
/// Erin and Frank are left to the integration tests.
const DEMO: &[(&str, &str)] = &[
    ("cust_alice", "where is order #1002?"),
    ("cust_bob", "where is my order"),
    ("cust_carol", "where is order #1005?"),
    ("cust_dave", "where's my order?"),
];

const QUESTIONS: &[&str] = &[
    "what is your refund policy?",
    "which payment methods do you accept?",
    "how long does delivery take?",
    "how do I reset my password?",
    "is the desk lamp in stock?",
    "what delivery options do you have?",
];

const SMALL_TALK: &[&str] = &["hi", "hello there", "thanks!", "ok, thank you", "great"];

pub fn customer_ids(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match DEMO.get(i) {
            Some((id, _)) => id.to_string(),
            None => format!("cust_load_{:03}", i + 1 - DEMO.len()),
        })
        .collect()
}

pub fn is_synthetic(customer: &str) -> bool {
    customer.starts_with("cust_load_")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u16),
    Timeout,
    /// The connection failed before an answer (refused, reset).
    Transport,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub latency: Duration,
    pub outcome: Outcome,
    /// Not the turn's first attempt.
    pub retry: bool,
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub conversation_id: String,
    pub seq: u64,
    pub replies: Vec<(u64, String)>,
    /// "Let me check": an `answer.deferred` job posts the real answer later.
    pub deferred: bool,
}

#[derive(Debug, Clone)]
pub struct Turn {
    pub customer: String,
    pub cmid: String,
    /// Where the message went (named, or derived from the client message id for a first one).
    pub conversation_id: String,
    pub answer: Option<Answer>,
    /// A synthetic customer's fresh order the reply says a refund was requested for.
    pub refund_order: Option<String>,
}

#[derive(Debug, Default)]
pub struct CustomerLog {
    pub attempts: Vec<Attempt>,
    pub turns: Vec<Turn>,
    /// 5xx answers, unexpected statuses and unreadable bodies, with the request.
    pub problems: Vec<String>,
    pub setup_errors: Vec<String>,
}

enum Action {
    OrderStatus,
    ConfirmRefund,
    Question,
    SmallTalk,
}

pub async fn customer(shared: Arc<Shared>, customer: String, seed: u64) -> CustomerLog {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut log = CustomerLog::default();
    let mut conversation: Option<String> = None;
    let mut offered: Option<String> = None; // the order a refund was just offered for
    let mut asked_order: Option<String> = None;
    let mut n = 0u32;
    // Customers do not all arrive in the same millisecond.
    shared.pause(Duration::from_millis(rng.u64(0..=500))).await;
    while shared.start_turn() {
        n += 1;
        let action = if offered.is_some() {
            Action::ConfirmRefund
        } else {
            match rng.u32(0..100) {
                0..=34 => Action::OrderStatus,
                35..=64 => Action::Question,
                _ => Action::SmallTalk,
            }
        };
        // Now and then a customer starts over in a new conversation.
        if offered.is_none() && n > 4 && rng.u32(0..100) < 8 {
            conversation = None;
        }
        let text = match action {
            Action::OrderStatus if is_synthetic(&customer) => {
                match shared.create_order(&customer, rng.i64(1_000..9_000)).await {
                    Ok(order) => {
                        asked_order = Some(order.clone());
                        format!("where is order #{order}?")
                    }
                    Err(e) => {
                        log.setup_errors.push(e);
                        QUESTIONS[0].to_string()
                    }
                }
            }
            Action::OrderStatus => {
                asked_order = None;
                DEMO.iter()
                    .find(|(id, _)| *id == customer)
                    .map_or("where is my order?", |(_, q)| q)
                    .to_string()
            }
            Action::ConfirmRefund => "yes please".to_string(),
            Action::Question => QUESTIONS[rng.usize(..QUESTIONS.len())].to_string(),
            Action::SmallTalk => SMALL_TALK[rng.usize(..SMALL_TALK.len())].to_string(),
        };
        let cmid = format!("load-{}-{customer}-{n}", shared.run);
        let turn = post_turn(
            &shared,
            &mut log,
            &customer,
            conversation.as_deref(),
            &text,
            &cmid,
        )
        .await;
        let confirming = matches!(action, Action::ConfirmRefund);
        let refund_for = offered.take();
        let mut turn = turn;
        if let Some(a) = &turn.answer {
            conversation = Some(a.conversation_id.clone());
            let said = a
                .replies
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            if confirming && said.contains("requested a refund") {
                turn.refund_order = refund_for.filter(|o| is_synthetic(&customer) && !o.is_empty());
            }
            if matches!(action, Action::OrderStatus) && said.contains("refund of") {
                offered = Some(asked_order.clone().unwrap_or_default());
            }
        }
        log.turns.push(turn);
        let mean = shared.opts.think.as_millis() as u64;
        shared
            .pause(Duration::from_millis(rng.u64(mean / 2..=mean * 3 / 2)))
            .await;
    }
    log
}

/// Posts one message until it is answered (2xx), refused for good (another 4xx), or out of
/// retries; every attempt is recorded.
async fn post_turn(
    shared: &Shared,
    log: &mut CustomerLog,
    customer: &str,
    conversation: Option<&str>,
    text: &str,
    cmid: &str,
) -> Turn {
    let mut body = json!({ "text": text, "client_message_id": cmid });
    if let Some(c) = conversation {
        body["conversation_id"] = c.into();
    }
    let mut turn = Turn {
        customer: customer.to_string(),
        cmid: cmid.to_string(),
        conversation_id: conversation.map_or_else(
            || derived_conversation_id("default", customer, cmid),
            str::to_string,
        ),
        answer: None,
        refund_order: None,
    };
    let url = format!("{}/v1/messages", shared.stack.chat_url);
    for attempt in 0..=shared.opts.retries {
        // Minted per request: cheap, and never expires however long the run.
        let token = shared.stack.token(customer);
        let t0 = Instant::now();
        let sent = shared
            .http
            .post(&url)
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await;
        let (outcome, retry_after, text) = match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                match resp.text().await {
                    Ok(t) => (Outcome::Status(status), retry_after, t),
                    Err(e) if e.is_timeout() => (Outcome::Timeout, None, String::new()),
                    Err(_) => (Outcome::Transport, None, String::new()),
                }
            }
            Err(e) if e.is_timeout() => (Outcome::Timeout, None, String::new()),
            Err(_) => (Outcome::Transport, None, String::new()),
        };
        let at = shared.started.elapsed().as_secs_f64();
        log.attempts.push(Attempt {
            latency: t0.elapsed(),
            outcome,
            retry: attempt > 0,
        });
        let wait = match outcome {
            Outcome::Status(s) if (200..300).contains(&s) => {
                match parse_answer(&text) {
                    Ok(a) => turn.answer = Some(a),
                    Err(e) => log.problems.push(format!(
                        "t={at:.1}s {customer} {cmid}: 2xx but {e}: {text:.300}"
                    )),
                }
                return turn;
            }
            Outcome::Status(429) => Duration::from_secs(retry_after.unwrap_or(1).min(5)),
            Outcome::Status(409) => Duration::from_millis(200 * (u64::from(attempt) + 1)),
            Outcome::Status(s) if s >= 500 => {
                log.problems.push(format!(
                    "t={at:.1}s {customer} {cmid} (attempt {}): {s} {text:.300}",
                    attempt + 1
                ));
                Duration::from_millis(500 * (u64::from(attempt) + 1))
            }
            Outcome::Status(s) => {
                log.problems.push(format!(
                    "t={at:.1}s {customer} {cmid}: unexpected {s} {text:.300}"
                ));
                return turn;
            }
            Outcome::Timeout | Outcome::Transport => {
                Duration::from_millis(500 * (u64::from(attempt) + 1))
            }
        };
        tokio::time::sleep(wait).await;
    }
    turn
}

fn parse_answer(text: &str) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let conversation_id = v["conversation_id"]
        .as_str()
        .ok_or("no conversation_id")?
        .to_string();
    let seq = v["message"]["seq"].as_u64().ok_or("no message.seq")?;
    let replies = v["replies"]
        .as_array()
        .ok_or("no replies")?
        .iter()
        .map(|r| match (r["seq"].as_u64(), r["text"].as_str()) {
            (Some(s), Some(t)) => Ok((s, t.to_string())),
            _ => Err("a reply without seq or text".to_string()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let deferral = deferral_texts();
    let deferred = replies.iter().any(|(_, t)| deferral.contains(t));
    Ok(Answer {
        conversation_id,
        seq,
        replies,
        deferred,
    })
}
