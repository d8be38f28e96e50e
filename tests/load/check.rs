//! After the run: the outbox and the jobs queue drained, the DLQ unchanged, and the table read back (consistent
//! reads, every page) to show that each answered message is stored once with its replies and
//! each accepted webhook and refund was applied once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use switchboard_it::Stack;

use crate::chat::{CustomerLog, Turn};
use crate::hooks::{Expect, HookLog};
use crate::Shared;

type Item = HashMap<String, AttributeValue>;

/// The proactive message a payment-failed event posts, as the shipped bot words it.
fn payment_failed_text() -> String {
    switchboard::bot::messages::embedded().render("payment.help.offer", &[])
}

/// How many examples of one failure the report lists.
const EXAMPLES: usize = 8;

#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub examples: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Checks {
    pub list: Vec<Check>,
    pub drain_secs: f64,
    pub dlq_before: u64,
    pub dlq_after: u64,
    pub conversations: usize,
    pub messages: usize,
    pub deferred: usize,
    pub refunds: usize,
    pub stored_unanswered: usize,
    pub effects: usize,
}

impl Checks {
    fn add(&mut self, name: &str, ok: bool, detail: String, examples: Vec<String>) {
        self.list.push(Check {
            name: name.to_string(),
            ok,
            detail,
            examples: examples.into_iter().take(EXAMPLES).collect(),
        });
    }

    pub fn passed(&self) -> bool {
        self.list.iter().all(|c| c.ok)
    }
}

/// What the table and the DLQ held before the run.
pub struct Baseline {
    dlq: u64,
    /// Payment-failed messages per demo customer.
    payment_failed: HashMap<String, usize>,
}

impl Baseline {
    pub async fn read(stack: &Stack) -> Baseline {
        let mut payment_failed = HashMap::new();
        let text = payment_failed_text();
        for customer in ["cust_alice", "cust_bob", "cust_carol"] {
            let n = match customer_messages(stack, customer).await {
                Ok(msgs) => msgs
                    .iter()
                    .filter(|m| m.role == "bot" && m.text == text)
                    .count(),
                Err(_) => 0,
            };
            payment_failed.insert(customer.to_string(), n);
        }
        Baseline {
            dlq: stack.queue_depth(&stack.dlq_url).await,
            payment_failed,
        }
    }
}

#[derive(Debug, Clone)]
struct Msg {
    seq: u64,
    role: String,
    text: String,
    created_at: String,
    cmid: Option<String>,
    reply_to: Option<u64>,
}

fn s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn num(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn msg(item: &Item) -> Option<Msg> {
    Some(Msg {
        seq: num(item, "seq")?,
        role: s(item, "role")?.to_string(),
        text: s(item, "text")?.to_string(),
        created_at: s(item, "created_at").unwrap_or_default().to_string(),
        cmid: s(item, "client_message_id").map(str::to_string),
        reply_to: num(item, "reply_to"),
    })
}

async fn partition(stack: &Stack, conversation: &str) -> Result<Vec<Item>, String> {
    stack
        .ddb
        .query()
        .table_name(&stack.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S(format!("T#default#C#{conversation}")),
        )
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| format!("query {conversation}: {e}"))
}

async fn conversations_of(stack: &Stack, customer: &str) -> Result<Vec<String>, String> {
    let items: Vec<Item> = stack
        .ddb
        .query()
        .table_name(&stack.table)
        .index_name("ByCustomer")
        .key_condition_expression("gsi1pk = :u")
        .expression_attribute_values(":u", AttributeValue::S(format!("T#default#U#{customer}")))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| format!("conversations of {customer}: {e}"))?;
    Ok(items
        .iter()
        .filter_map(|i| s(i, "conversation_id").map(str::to_string))
        .collect())
}

/// Every message in every conversation of a customer.
async fn customer_messages(stack: &Stack, customer: &str) -> Result<Vec<Msg>, String> {
    let mut out = Vec::new();
    for c in conversations_of(stack, customer).await? {
        out.extend(partition(stack, &c).await?.iter().filter_map(msg));
    }
    Ok(out)
}

/// Outbox items not yet relayed (a Scan: the load test's table is its own and small).
async fn outbox_pending(stack: &Stack) -> u64 {
    let mut pending = 0;
    let mut pages = stack
        .ddb
        .scan()
        .table_name(&stack.table)
        .filter_expression("begins_with(sk, :job)")
        .expression_attribute_values(":job", AttributeValue::S("JOB#".into()))
        .select(aws_sdk_dynamodb::types::Select::Count)
        .into_paginator()
        .send();
    while let Some(Ok(page)) = pages.next().await {
        pending += page.count() as u64;
    }
    pending
}

/// Waits until the jobs queue (visible and in flight) and the outbox stay empty for a second:
/// a job that finishes may start another (a refund's email) through the outbox, so one empty
/// reading is not the end.
async fn drain(stack: &Stack, timeout: Duration) -> (bool, f64, u64) {
    let t0 = Instant::now();
    let mut empty_since: Option<Instant> = None;
    loop {
        let depth = stack.queue_depth(&stack.queue_url).await + outbox_pending(stack).await;
        if depth == 0 {
            let since = *empty_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(1) {
                return (true, t0.elapsed().as_secs_f64(), 0);
            }
        } else {
            empty_since = None;
        }
        if t0.elapsed() >= timeout {
            return (false, t0.elapsed().as_secs_f64(), depth);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn run(
    shared: &Shared,
    base: &Baseline,
    logs: &[CustomerLog],
    hooks: &HookLog,
) -> Checks {
    let stack = &shared.stack;
    let mut checks = Checks::default();

    let (drained, secs, left) = drain(stack, shared.opts.drain_timeout).await;
    checks.drain_secs = secs;
    checks.add(
        "outbox and jobs queue drained",
        drained,
        if drained {
            format!("empty {secs:.1} s after the run")
        } else {
            format!("{left} job(s) still in the outbox or queued after {secs:.0} s")
        },
        Vec::new(),
    );
    checks.dlq_before = base.dlq;
    checks.dlq_after = stack.queue_depth(&stack.dlq_url).await;
    checks.add(
        "no job in the DLQ",
        checks.dlq_after <= base.dlq,
        format!("{} before, {} after", base.dlq, checks.dlq_after),
        Vec::new(),
    );

    // Errors the clients saw.
    let problems: Vec<String> = logs
        .iter()
        .flat_map(|l| l.problems.iter().cloned())
        .chain(hooks.problems.iter().cloned())
        .collect();
    checks.add(
        "no 5xx or unexpected status",
        problems.is_empty(),
        format!("{} problem(s)", problems.len()),
        problems,
    );
    let setup: Vec<String> = logs
        .iter()
        .flat_map(|l| l.setup_errors.iter().cloned())
        .chain(hooks.setup_errors.iter().cloned())
        .collect();
    checks.add(
        "test set-up calls succeeded",
        setup.is_empty(),
        format!("{} error(s) creating orders or running tasks", setup.len()),
        setup,
    );

    let turns: Vec<&Turn> = logs.iter().flat_map(|l| l.turns.iter()).collect();
    check_turns(stack, &turns, &mut checks).await;
    check_refunds(stack, &turns, &mut checks).await;
    check_webhooks(stack, base, hooks, &mut checks).await;
    checks
}

async fn check_turns(stack: &Stack, turns: &[&Turn], checks: &mut Checks) {
    let unanswered: Vec<String> = turns
        .iter()
        .filter(|t| t.answer.is_none())
        .map(|t| format!("{} {}", t.customer, t.cmid))
        .collect();
    checks.add(
        "every message answered",
        unanswered.is_empty(),
        format!(
            "{} of {} without a 2xx after retries",
            unanswered.len(),
            turns.len()
        ),
        unanswered,
    );

    let conversations: BTreeSet<&str> = turns
        .iter()
        .map(|t| {
            t.answer
                .as_ref()
                .map_or(t.conversation_id.as_str(), |a| a.conversation_id.as_str())
        })
        .collect();
    let mut by_conversation: BTreeMap<&str, Vec<Msg>> = BTreeMap::new();
    let mut gaps = Vec::new();
    let mut read_errors = Vec::new();
    let mut turn_records = HashMap::new();
    for c in &conversations {
        let items = match partition(stack, c).await {
            Ok(i) => i,
            Err(e) => {
                read_errors.push(e);
                continue;
            }
        };
        let last_seq = items
            .iter()
            .find(|i| s(i, "sk") == Some("STATE"))
            .and_then(|i| num(i, "last_seq"));
        let msgs: Vec<Msg> = items
            .iter()
            .filter(|i| s(i, "sk").is_some_and(|k| k.starts_with("MSG#")))
            .filter_map(msg)
            .collect();
        for i in &items {
            if let Some(cmid) = s(i, "sk").and_then(|k| k.strip_prefix("TURN#")) {
                turn_records.insert((c.to_string(), cmid.to_string()), ());
            }
        }
        let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
        match last_seq {
            // A conversation only a failed first message pointed at: nothing stored is fine.
            None if msgs.is_empty() => {}
            None => gaps.push(format!("{c}: messages but no STATE record")),
            Some(n) if seqs != (1..=n).collect::<Vec<_>>() => gaps.push(format!(
                "{c}: last_seq {n} but {} message item(s), seqs {:?}",
                seqs.len(),
                seqs
            )),
            Some(_) => {}
        }
        checks.messages += msgs.len();
        by_conversation.insert(c, msgs);
    }
    checks.conversations = by_conversation.len();
    checks.add(
        "conversations read back",
        read_errors.is_empty(),
        format!("{} conversation(s)", by_conversation.len()),
        read_errors,
    );
    checks.add(
        "every conversation's messages are seq 1..last_seq, none missing or repeated",
        gaps.is_empty(),
        format!("{} conversation(s) with gaps or extras", gaps.len()),
        gaps,
    );

    let empty = Vec::new();
    let mut wrong = Vec::new();
    for t in turns {
        let conv = t
            .answer
            .as_ref()
            .map_or(t.conversation_id.as_str(), |a| a.conversation_id.as_str());
        let msgs = by_conversation.get(conv).unwrap_or(&empty);
        let stored: Vec<&Msg> = msgs
            .iter()
            .filter(|m| m.cmid.as_deref() == Some(t.cmid.as_str()))
            .collect();
        let Some(a) = &t.answer else {
            if stored.len() > 1 {
                wrong.push(format!(
                    "{} stored {} times (unanswered)",
                    t.cmid,
                    stored.len()
                ));
            }
            checks.stored_unanswered += stored.len();
            continue;
        };
        if stored.len() != 1 || stored[0].seq != a.seq || stored[0].role != "customer" {
            wrong.push(format!(
                "{} in {conv}: answered as seq {}, stored {} time(s) at {:?}",
                t.cmid,
                a.seq,
                stored.len(),
                stored.iter().map(|m| m.seq).collect::<Vec<_>>()
            ));
            continue;
        }
        if !turn_records.contains_key(&(conv.to_string(), t.cmid.clone())) {
            wrong.push(format!("{} in {conv}: no TURN record", t.cmid));
        }
        let replies: Vec<&Msg> = msgs
            .iter()
            .filter(|m| m.role == "bot" && m.reply_to == Some(a.seq))
            .collect();
        for (seq, text) in &a.replies {
            if !replies.iter().any(|m| m.seq == *seq && &m.text == text) {
                wrong.push(format!(
                    "{} in {conv}: reply seq {seq} {text:?} not stored as returned",
                    t.cmid
                ));
            }
        }
        let later: Vec<&&Msg> = replies
            .iter()
            .filter(|m| !a.replies.iter().any(|(seq, _)| *seq == m.seq))
            .collect();
        if a.deferred {
            checks.deferred += 1;
            // The deferred answer is one append: its messages share one commit's timestamp.
            let commits: BTreeSet<&str> = later.iter().map(|m| m.created_at.as_str()).collect();
            if commits.len() != 1 {
                wrong.push(format!(
                    "{} in {conv}: deferred, answered later {} time(s)",
                    t.cmid,
                    commits.len()
                ));
            }
        } else if !later.is_empty() {
            wrong.push(format!(
                "{} in {conv}: {} extra repl(ies) to seq {}",
                t.cmid,
                later.len(),
                a.seq
            ));
        }
    }
    let answered = turns.iter().filter(|t| t.answer.is_some()).count();
    checks.add(
        "every answered message stored once, with exactly its replies",
        wrong.is_empty(),
        format!(
            "{answered} answered; {} deferred; {} stored without a 2xx seen",
            checks.deferred, checks.stored_unanswered
        ),
        wrong,
    );
}

async fn check_refunds(stack: &Stack, turns: &[&Turn], checks: &mut Checks) {
    let refunds: Vec<(&Turn, &str)> = turns
        .iter()
        .filter_map(|t| t.refund_order.as_deref().map(|o| (*t, o)))
        .collect();
    checks.refunds = refunds.len();
    let payments = stack.demo_admin("refunds").await;
    let mut issued: HashMap<String, usize> = HashMap::new();
    for r in payments["refunds"].as_array().into_iter().flatten() {
        if let Some(o) = r["order_id"].as_str() {
            *issued.entry(o.to_string()).or_default() += 1;
        }
    }
    let mut wrong = Vec::new();
    for (t, order) in &refunds {
        let Some(a) = &t.answer else { continue };
        let msgs = match partition(stack, &a.conversation_id).await {
            Ok(items) => items.iter().filter_map(msg).collect::<Vec<_>>(),
            Err(e) => {
                wrong.push(e);
                continue;
            }
        };
        let needle = format!("order #{order} has been issued");
        let told = msgs
            .iter()
            .filter(|m| m.role == "bot" && m.text.contains(&needle))
            .count();
        let effect = stack
            .effect_state("default", &format!("refund:default:{order}"))
            .await;
        let paid = issued.get(*order).copied().unwrap_or(0);
        if told != 1 || effect.as_deref() != Some("done") || paid != 1 {
            wrong.push(format!(
                "order {order} ({}): {told} confirmation(s), effect {effect:?}, {paid} refund(s) at the payments API",
                t.customer
            ));
        }
        checks.effects += 1;
    }
    checks.add(
        "every requested refund issued once and confirmed once",
        wrong.is_empty(),
        format!(
            "{} refund(s) requested by synthetic customers",
            refunds.len()
        ),
        wrong,
    );
}

async fn check_webhooks(stack: &Stack, base: &Baseline, hooks: &HookLog, checks: &mut Checks) {
    let mut wrong = Vec::new();
    let mut payment_failed: HashMap<&str, usize> = HashMap::new();
    let mut customer_msgs: HashMap<String, Vec<Msg>> = HashMap::new();
    for e in &hooks.events {
        if e.queued() > 1 {
            wrong.push(format!(
                "{} {}: queued {} times",
                e.vendor,
                e.event_id,
                e.queued()
            ));
        }
        if !e.accepted() {
            wrong.push(format!(
                "{} {}: never accepted ({:?})",
                e.vendor,
                e.event_id,
                e.deliveries.iter().map(|d| d.status).collect::<Vec<_>>()
            ));
            continue;
        }
        let claim = stack
            .item(&format!("T#default#W#{}#{}", e.vendor, e.claim_id), "CLAIM")
            .await;
        let claim_state = claim
            .as_ref()
            .and_then(|c| s(c, "claim_state").map(str::to_string));
        let outcome = claim
            .as_ref()
            .and_then(|c| s(c, "outcome").map(str::to_string));
        let effect = stack
            .effect_state(
                "default",
                &switchboard_it::event_job_key(e.vendor, &e.claim_id),
            )
            .await;
        checks.effects += 1;
        if claim_state.as_deref() != Some("done")
            || outcome.as_deref() != Some("queued")
            || effect.as_deref() != Some("done")
        {
            wrong.push(format!(
                "{} {}: claim {claim_state:?}/{outcome:?}, effect {effect:?}",
                e.vendor, e.event_id
            ));
        }
        let customer = e.expect.customer().to_string();
        if !customer_msgs.contains_key(&customer) {
            match customer_messages(stack, &customer).await {
                Ok(m) => {
                    customer_msgs.insert(customer.clone(), m);
                }
                Err(err) => {
                    wrong.push(err);
                    continue;
                }
            }
        }
        match &e.expect {
            Expect::PaymentFailed { customer } => {
                *payment_failed.entry(customer.as_str()).or_default() += 1;
            }
            Expect::Shipped { customer, order } => {
                let needle = format!("order #{order} has shipped");
                let n = customer_msgs[customer]
                    .iter()
                    .filter(|m| m.role == "bot" && m.text.contains(&needle))
                    .count();
                if n != 1 {
                    wrong.push(format!(
                        "shopify {}: {n} \"{needle}\" message(s) for {customer}",
                        e.event_id
                    ));
                }
            }
        }
    }
    let text = payment_failed_text();
    for (customer, expected) in &payment_failed {
        let found = customer_msgs[*customer]
            .iter()
            .filter(|m| m.role == "bot" && m.text == text)
            .count();
        let before = base.payment_failed.get(*customer).copied().unwrap_or(0);
        if found.saturating_sub(before) != *expected || found < before {
            wrong.push(format!(
                "{customer}: {expected} payment-failed event(s) accepted, {} message(s) added",
                found as i64 - before as i64
            ));
        }
    }
    let accepted = hooks.events.iter().filter(|e| e.accepted()).count();
    checks.add(
        "every accepted webhook applied once (claim, effect, one message)",
        wrong.is_empty(),
        format!("{accepted} of {} event(s) accepted", hooks.events.len()),
        wrong,
    );

    let mut bad = Vec::new();
    for b in &hooks.bad {
        if b.status != Some(401) {
            bad.push(format!(
                "{} {}: {:?} instead of 401",
                b.vendor, b.event_id, b.status
            ));
        }
        if stack
            .item(&format!("T#default#W#{}#{}", b.vendor, b.claim_id), "CLAIM")
            .await
            .is_some()
        {
            bad.push(format!("{} {}: refused but recorded", b.vendor, b.event_id));
        }
    }
    checks.add(
        "every badly signed webhook refused (401) and not recorded",
        bad.is_empty(),
        format!("{} sent", hooks.bad.len()),
        bad,
    );
}
