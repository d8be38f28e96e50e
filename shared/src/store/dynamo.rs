//! Conversation memory on DynamoDB (one table, see template.yaml `ConversationsTable`).
//!
//! Partition `pk = T#<tenant>#C#<conversation>` holds:
//! - `sk = STATE`: dialogue state, slots, version, last seq; also the per-customer index entry
//!   (`gsi1pk = T#<tenant>#U#<customer>`, `gsi1sk = <updated ms>#<conversation>`); and, only
//!   while a handoff is queued (waiting, or with an agent), the queue index entry
//!   (`gsi2pk = <tenant>#handoff#<state>`, `gsi2sk = <since ms>#<conversation>`: `ByHandoff`);
//! - `sk = MSG#<seq, 20 digits>`: one item per message;
//! - `sk = TURN#<client message id>`: a turn's answer, for retried POSTs;
//! - `sk = JOB#<job key>`: the outbox: a job the conversation's commit started, until the relay
//!   has sent it to the queue (`relay`). Sorts before `MSG#`, outside every read of messages.
//!
//! Outside conversations, each in its own partition:
//! - `pk = T#<tenant>#E#<job key>`, `sk = EFFECT`: an asynchronous effect was written. Global, so
//!   a job that may land in any of a customer's conversations still lands once;
//! - `pk = T#<tenant>#W#<vendor>#<event id>`, `sk = CLAIM`: a vendor event was received
//!   (`webhook::claims`).
//!
//! `STATE` sorts after every `MSG#`, so one descending Query between `MSG#` and `STATE` returns the
//! record and the newest messages together: a turn's single read.
//!
//! Every item carries `expires_at` (TTL). DynamoDB deletes expired items in no set order and they
//! stay readable until then, so reads skip expired items, a partition without a live `STATE` is
//! a conversation that does not exist, and writes may replace expired items.

use super::MAX_ERASED_PER_CALL;
use crate::io_clock::IoFutureExt;
use crate::relay::OUTBOX_PREFIX;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, Put, TransactWriteItem, Update, WriteRequest,
};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{
    Begin, Commit, ConversationStore, EffectLedger, EffectOutcome, EffectState, Erasure, Lease,
    Snapshot, StoreError, TurnRecord, MAX_COMMIT_ATTEMPTS,
};
use crate::conversation::{Conversation, ConversationKey, ConversationSummary, Message, Role};
use crate::handoff::{queue_partition, Handoff, HandoffState, QueueEntry};
use crate::jobs::Job;

pub const INDEX_BY_CUSTOMER: &str = "ByCustomer";
/// The handoff queue: sparse, only records whose handoff is waiting or with an agent.
pub const INDEX_BY_HANDOFF: &str = "ByHandoff";
const STATE_SK: &str = "STATE";
const MSG_PREFIX: &str = "MSG#";
/// A put that may create its item or replace an expired one, never a live one.
const ABSENT_OR_EXPIRED: &str = "attribute_not_exists(pk) OR expires_at < :now";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention: Duration,
}

/// The dead-letter queues keep a job 14 days (template.yaml, `MessageRetentionPeriod`), plus a
/// day for the redrive.
const EFFECT_MIN_RETENTION: Duration = Duration::from_secs(15 * 86_400);

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String, retention: Duration) -> Self {
        Self {
            client,
            table,
            retention,
        }
    }

    fn expires_at(&self, now: OffsetDateTime) -> AttributeValue {
        n(now.unix_timestamp() + self.retention.as_secs() as i64)
    }

    /// An effect's ledger entry outlives its job's stay on the dead-letter queue, whatever the
    /// conversations' retention: a refund redriven on its 14th day still finds its receipt
    /// (and its "done"), where the payments API's idempotency key is long gone.
    fn effect_expires_at(&self, now: OffsetDateTime) -> AttributeValue {
        let keep = self.retention.max(EFFECT_MIN_RETENTION);
        n(now.unix_timestamp() + keep.as_secs() as i64)
    }

    fn put(&self, item: Item, condition: Option<&str>, values: Option<Item>) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_values(values)
            .build()
            .expect("table and item are set");
        TransactWriteItem::builder().put(put).build()
    }

    /// A put of a new item (or over an expired one) at `now` (Unix seconds).
    fn put_new(&self, item: Item, now: i64) -> TransactWriteItem {
        self.put(
            item,
            Some(ABSENT_OR_EXPIRED),
            Some(HashMap::from([(":now".into(), n(now))])),
        )
    }

    /// A job waiting to be relayed: its envelope, in its conversation's partition (or, for a job
    /// of no conversation, its effect's). No condition: the same job asked for again while its
    /// item waits replaces it, and is relayed once (the stream's INSERT), as one effect should be.
    fn outbox_item(&self, job: &Job, now: OffsetDateTime) -> Result<Item, StoreError> {
        let envelope = job
            .envelope()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let pk = match job.conversation_key() {
            Some(key) => partition_key(&key),
            None => effect_partition_key(&job.tenant, &job.key),
        };
        Ok(HashMap::from([
            ("pk".into(), s(pk)),
            ("sk".into(), s(format!("{OUTBOX_PREFIX}{}", job.key))),
            ("job".into(), s(envelope.body)),
            ("group".into(), s(envelope.group_id)),
            ("dedup".into(), s(envelope.dedup_id)),
            ("created_at".into(), s(rfc3339(now))),
            ("expires_at".into(), self.expires_at(now)),
        ]))
    }

    /// Outbox puts for `jobs`, one per job key (a transaction may name an item once).
    fn outbox_puts(
        &self,
        jobs: &[Job],
        now: OffsetDateTime,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        super::distinct_jobs(jobs)
            .map(|j| Ok(self.put(self.outbox_item(j, now)?, None, None)))
            .collect()
    }
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The least `gsi1sk` of a live conversation record at `now` (Unix seconds): its
/// `expires_at` (update time in whole seconds plus the retention) is `>= now` exactly when its
/// update time is at or after `now - retention`, whole seconds, as milliseconds.
fn live_since(now: i64, retention: Duration) -> String {
    let since_secs = (now - retention.as_secs() as i64).max(0);
    format!("{:015}", since_secs * 1000)
}

/// Whether an item has outlived its `expires_at` (TTL has not got to it yet).
fn expired(item: &Item, now: i64) -> bool {
    matches!(item.get("expires_at"), Some(AttributeValue::N(v)) if v.parse::<i64>().is_ok_and(|at| at < now))
}

/// A Query that returns live items only (`expires_at >= now`), read page after page.
///
/// DynamoDB applies a Query's `Limit` before its filter: a page of `n` items read may hold fewer
/// live ones, or none, while live ones lie beyond it. So a read that wants `n` live items goes on
/// from where the last page stopped (`LastEvaluatedKey`) until it has them or the range ends.
/// A page asks for as many items as are still missing; after a page with nothing live in it, for
/// at least as many as all pages before it, so a long stretch of expired items (TTL has not got
/// to them yet) costs a few round trips, not one per page of the caller's size.
struct LivePages {
    query: QueryFluentBuilder,
    start: Option<Item>,
    read: usize,
    grow: bool,
    done: bool,
}

impl LivePages {
    fn new(query: QueryFluentBuilder, now: i64) -> Self {
        Self {
            query: query
                .filter_expression("expires_at >= :now")
                .expression_attribute_values(":now", n(now)),
            start: None,
            read: 0,
            grow: false,
            done: false,
        }
    }

    /// The live items of the next page, which reads room for `missing` of them.
    async fn next(&mut self, missing: usize) -> Result<Vec<Item>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let page = if self.grow {
            missing.max(self.read)
        } else {
            missing
        };
        let out = self
            .query
            .clone()
            .set_exclusive_start_key(self.start.take())
            .limit(i32::try_from(page.max(1)).unwrap_or(i32::MAX))
            .send()
            .io()
            .await
            .map_err(unavailable)?;
        self.read += usize::try_from(out.scanned_count()).unwrap_or(0);
        self.start = out.last_evaluated_key().cloned();
        self.done = self.start.is_none();
        let items = out.items.unwrap_or_default();
        self.grow = items.is_empty();
        Ok(items)
    }

    /// Reads on until `items` holds `want` live items or the range ends; keeps the first `want`.
    async fn fill(&mut self, items: &mut Vec<Item>, want: usize) -> Result<(), StoreError> {
        while items.len() < want && !self.done {
            let more = self.next(want - items.len()).await?;
            items.extend(more);
        }
        items.truncate(want);
        Ok(())
    }
}

const EFFECT_SK: &str = "EFFECT";
const IN_PROGRESS: &str = "in_progress";
/// Completing an effect: its outcome, by the holder of its lease only.
const COMPLETE: &str = "SET effect_state = :outcome, completed_at = :now REMOVE lease_until";
const HOLDER_ONLY: &str = "#token = :token AND effect_state = :in_progress";

pub fn effect_partition_key(tenant: &str, effect: &str) -> String {
    format!("T#{tenant}#E#{effect}")
}

pub fn partition_key(key: &ConversationKey) -> String {
    format!("T#{}#C#{}", key.tenant, key.id)
}

fn customer_index_key(tenant: &str, customer_id: &str) -> String {
    format!("T#{tenant}#U#{customer_id}")
}

pub fn message_sort_key(seq: u64) -> String {
    format!("{MSG_PREFIX}{seq:020}")
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .expect("every OffsetDateTime formats as RFC 3339")
}

pub(crate) fn unavailable<E: std::error::Error + 'static>(e: E) -> StoreError {
    StoreError::Unavailable(DisplayErrorContext(e).to_string())
}

pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    opt_s(item, name)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

/// A string attribute an item may lack (`None` too when it is not a string). Asked without
/// `get_s(..).ok()`, which formats an error only to drop it: a turn's load reads twenty
/// messages, most of them without two or three of these.
fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not a whole number"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} missing or not a number"
        ))),
    }
}

/// A whole-number attribute an item may lack: `None` too when it is not one (as `opt_s`).
fn opt_n(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn get_time(item: &Item, name: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(get_s(item, name)?, &Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
}

fn get_json<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    serde_json::from_str(get_s(item, name)?)
        .map_err(|e| StoreError::Corrupt(format!("attribute {name}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn conversation_from(item: &Item) -> Result<Conversation, StoreError> {
    let slots: crate::conversation::Slots = get_json(item, "slots")?;
    Ok(Conversation {
        key: ConversationKey {
            tenant: get_s(item, "tenant")?.to_string(),
            id: get_s(item, "conversation_id")?.to_string(),
        },
        customer_id: get_s(item, "customer_id")?.to_string(),
        state: get_json(item, "state")?,
        handoff: match optional_json(item, "handoff")? {
            Some(h) => h,
            // Stored before the handoff had an attribute of its own: the slots said it.
            None => Handoff::from_legacy(&slots, get_time(item, "updated_at")?),
        },
        slots,
        channel: optional_json(item, "channel")?,
        version: get_n(item, "version")?,
        last_seq: get_n(item, "last_seq")?,
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
    })
}

fn message_from(item: &Item) -> Result<Message, StoreError> {
    let role = get_s(item, "role")?;
    Ok(Message {
        seq: get_n(item, "seq")?,
        role: Role::parse(role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        text: get_s(item, "text")?.to_string(),
        created_at: get_time(item, "created_at")?,
        client_message_id: opt_s(item, "client_message_id").map(str::to_string),
        reply_to: opt_n(item, "reply_to"),
        quick_replies: optional_json(item, "quick_replies")?.unwrap_or_default(),
        links: optional_json(item, "links")?.unwrap_or_default(),
        agent_id: opt_s(item, "agent_id").map(str::to_string),
        internal: matches!(item.get("internal"), Some(AttributeValue::Bool(true))),
    })
}

/// A JSON attribute that older items (or messages without it) do not have.
fn optional_json<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => get_json(item, name).map(Some),
    }
}

fn summary_from(item: &Item) -> Result<ConversationSummary, StoreError> {
    Ok(ConversationSummary {
        id: get_s(item, "conversation_id")?.to_string(),
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
        last_seq: get_n(item, "last_seq")?,
        handoff: None,
    })
}

/// A queue entry as `ByHandoff` projects it.
fn queue_entry_from(item: &Item) -> Result<QueueEntry, StoreError> {
    Ok(QueueEntry {
        conversation_id: get_s(item, "conversation_id")?.to_string(),
        customer_id: get_s(item, "customer_id")?.to_string(),
        handoff: get_json(item, "handoff")?,
        language: opt_s(item, "language").map(str::to_string),
    })
}

impl DynamoStore {
    fn state_item(&self, c: &Conversation) -> Result<Item, StoreError> {
        let mut item = HashMap::from([
            ("pk".into(), s(partition_key(&c.key))),
            ("sk".into(), s(STATE_SK)),
            ("tenant".into(), s(&c.key.tenant)),
            ("conversation_id".into(), s(&c.key.id)),
            ("customer_id".into(), s(&c.customer_id)),
            ("state".into(), s(to_json(&c.state)?)),
            ("slots".into(), s(to_json(&c.slots)?)),
            ("version".into(), n(c.version)),
            ("last_seq".into(), n(c.last_seq)),
            ("created_at".into(), s(rfc3339(c.created_at))),
            ("updated_at".into(), s(rfc3339(c.updated_at))),
            (
                "gsi1pk".into(),
                s(customer_index_key(&c.key.tenant, &c.customer_id)),
            ),
            (
                "gsi1sk".into(),
                s(format!(
                    "{:015}#{}",
                    c.updated_at.unix_timestamp_nanos() / 1_000_000,
                    c.key.id
                )),
            ),
            ("expires_at".into(), self.expires_at(c.updated_at)),
            ("handoff".into(), s(to_json(&c.handoff)?)),
        ]);
        // The record is put whole, so a handoff that left the queue drops its index keys.
        if let Some((pk, sk)) = c.handoff.queue_key(&c.key.tenant, &c.key.id) {
            item.insert("gsi2pk".into(), s(pk));
            item.insert("gsi2sk".into(), s(sk));
        }
        if let Some(channel) = &c.channel {
            item.insert("channel".into(), s(to_json(channel)?));
        }
        // Its own attribute for the queue index to project (the slots are not projected).
        if let Some(language) = &c.slots.language {
            item.insert("language".into(), s(language));
        }
        Ok(item)
    }

    /// A consistent Query of one conversation's items with `lo <= sk <= hi`.
    fn sort_key_range(&self, key: &ConversationKey, lo: &str, hi: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(partition_key(key)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .consistent_read(true)
    }

    /// A message's item in the partition `pk` (the commit's, formatted once for its messages).
    fn message_item(&self, pk: &str, m: &Message) -> Item {
        // Room for every attribute a message may have: a map made for the seven every message
        // has grew (rehashed) for an eighth, which most have (a customer's client message id, a
        // reply's `reply_to`).
        let mut item = HashMap::with_capacity(13);
        item.extend([
            ("pk".into(), s(pk)),
            ("sk".into(), s(message_sort_key(m.seq))),
            ("seq".into(), n(m.seq)),
            ("role".into(), s(m.role.as_str())),
            ("text".into(), s(&m.text)),
            ("created_at".into(), s(rfc3339(m.created_at))),
            ("expires_at".into(), self.expires_at(m.created_at)),
        ]);
        if let Some(id) = &m.client_message_id {
            item.insert("client_message_id".into(), s(id));
        }
        if let Some(r) = m.reply_to {
            item.insert("reply_to".into(), n(r));
        }
        // Serialising these plain lists of strings cannot fail.
        if !m.quick_replies.is_empty() {
            if let Ok(json) = serde_json::to_string(&m.quick_replies) {
                item.insert("quick_replies".into(), s(json));
            }
        }
        if !m.links.is_empty() {
            if let Ok(json) = serde_json::to_string(&m.links) {
                item.insert("links".into(), s(json));
            }
        }
        if let Some(agent) = &m.agent_id {
            item.insert("agent_id".into(), s(agent));
        }
        if m.internal {
            item.insert("internal".into(), AttributeValue::Bool(true));
        }
        item
    }
}

impl DynamoStore {
    /// The update that completes an effect, for the holder of its lease only.
    fn completion(
        &self,
        tenant: &str,
        effect: &super::EffectCompletion,
        now: OffsetDateTime,
    ) -> TransactWriteItem {
        let update = self.completion_update(tenant, effect, now);
        TransactWriteItem::builder().update(update).build()
    }

    /// The write that completes an effect, for its holder only.
    fn completion_update(
        &self,
        tenant: &str,
        effect: &super::EffectCompletion,
        now: OffsetDateTime,
    ) -> Update {
        Update::builder()
            .table_name(&self.table)
            .key("pk", s(effect_partition_key(tenant, &effect.key)))
            .key("sk", s(EFFECT_SK))
            .update_expression(COMPLETE)
            .condition_expression(HOLDER_ONLY)
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":outcome", s(effect.outcome.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":token", s(&effect.token))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .build()
            .expect("table, key and expressions are set")
    }
}

#[async_trait]
impl ConversationStore for DynamoStore {
    async fn load(
        &self,
        key: &ConversationKey,
        window: usize,
    ) -> Result<Option<Snapshot>, StoreError> {
        let mut pages = LivePages::new(
            self.sort_key_range(key, MSG_PREFIX, STATE_SK)
                .scan_index_forward(false),
            unix_now(),
        );
        let want = window.saturating_add(1);
        let mut items = pages.next(want).await?;
        // The first item read is the record, if there is one: the first page says whether the
        // conversation exists, before any further page is read for its messages.
        let Some(first) = items.first() else {
            return Ok(None);
        };
        if get_s(first, "sk")? != STATE_SK {
            // TTL removed (or expired) the record before the messages it outlived: the
            // conversation is over. Its leftovers are expired too and go by themselves.
            tracing::warn!(conversation = %key.id, "messages without a live state record; treated as no conversation");
            return Ok(None);
        }
        pages.fill(&mut items, want).await?;
        let conversation = conversation_from(&items[0])?;
        // Sized up front: collected through a `Result` the vector grew by doubling, and each
        // growth of a kilobyte or more made glibc consolidate its free chunks (3% of a turn).
        let mut recent = Vec::with_capacity(items.len() - 1);
        for item in &items[1..] {
            recent.push(message_from(item)?);
        }
        recent.reverse();
        Ok(Some(Snapshot {
            conversation,
            recent,
        }))
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        let key = c.conversation.key.clone();
        let pk = partition_key(&key);
        let mut writes = Vec::with_capacity(c.messages.len() + c.jobs.len() + 3);
        let mut effect_index = None;
        let mut turn_index = None;
        let clock = unix_now();

        writes.push(if c.expected_version == 0 {
            self.put_new(self.state_item(&c.conversation)?, clock)
        } else {
            self.put(
                self.state_item(&c.conversation)?,
                Some("version = :expected"),
                Some(HashMap::from([(":expected".into(), n(c.expected_version))])),
            )
        });
        for m in &c.messages {
            writes.push(self.put_new(self.message_item(&pk, m), clock));
        }
        let now = c.conversation.updated_at;
        if let Some((id, record)) = &c.turn {
            let record = to_json(record)?;
            turn_index = Some(writes.len());
            writes.push(self.put_new(
                HashMap::from([
                    ("pk".into(), s(&pk)),
                    ("sk".into(), s(format!("TURN#{id}"))),
                    ("record".into(), s(record)),
                    ("expires_at".into(), self.expires_at(now)),
                ]),
                clock,
            ));
        }
        writes.extend(self.outbox_puts(&c.outbox(), now)?);
        if let Some(effect) = &c.effect {
            effect_index = Some(writes.len());
            writes.push(self.completion(&key.tenant, effect, now));
        }

        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .io()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
            err.as_service_error()
        {
            let failed = |i: Option<usize>| {
                i.and_then(|i| cancel.cancellation_reasons().get(i))
                    .and_then(|r| r.code())
                    .is_some_and(|code| code == "ConditionalCheckFailed")
            };
            // A duplicate turn or effect wins over a version conflict: retrying would not help.
            if failed(turn_index) {
                return Err(StoreError::DuplicateTurn);
            }
            if failed(effect_index) {
                return Err(StoreError::DuplicateEffect);
            }
            // A failed version check, a message seq already taken, or a concurrent transaction
            // (TransactionConflict) all mean: reload and decide again.
            return Err(StoreError::Conflict);
        }
        Err(unavailable(err))
    }

    async fn turn_record(
        &self,
        key: &ConversationKey,
        client_message_id: &str,
    ) -> Result<Option<TurnRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(partition_key(key)))
            .key("sk", s(format!("TURN#{client_message_id}")))
            .consistent_read(true)
            .send()
            .io()
            .await
            .map_err(unavailable)?;
        out.item()
            .filter(|item| !expired(item, unix_now()))
            .map(|item| get_json(item, "record"))
            .transpose()
    }

    async fn history_if(
        &self,
        key: &ConversationKey,
        after: u64,
        limit: usize,
        may_read: &(dyn for<'c> Fn(&'c Conversation) -> bool + Send + Sync),
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
        let state = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(partition_key(key)))
            .key("sk", s(STATE_SK))
            .consistent_read(true)
            .send()
            .io()
            .await
            .map_err(unavailable)?;
        let clock = unix_now();
        let Some(item) = state.item().filter(|item| !expired(item, clock)) else {
            return Ok(None);
        };
        let conversation = conversation_from(item)?;
        if !may_read(&conversation) {
            return Ok(None);
        }
        if after >= conversation.last_seq || limit == 0 {
            return Ok(Some((conversation, Vec::new())));
        }
        let mut pages = LivePages::new(
            self.sort_key_range(
                key,
                &message_sort_key(after.saturating_add(1)),
                // Not past the record's last message: expired ones of an earlier conversation
                // under this id, numbered higher, are never read (a message committed since the
                // record was read is on the next page).
                &message_sort_key(conversation.last_seq),
            ),
            clock,
        );
        let mut items = Vec::new();
        pages.fill(&mut items, limit).await?;
        // The page ends at the last message returned (the client's next `after`), never at the
        // last one read: a live message past it is on the next page.
        let messages = items
            .iter()
            .map(message_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some((conversation, messages)))
    }

    async fn conversations_of(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        self.customer_index(tenant, customer_id, limit, false).await
    }

    async fn handoffs(
        &self,
        tenant: &str,
        state: HandoffState,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        if limit == 0 || !state.is_queued() {
            return Ok(Vec::new());
        }
        // Ascending on `<since ms>#<id>`: oldest first. Expired records (TTL not there yet)
        // are filtered out, page after page, as everywhere else.
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_HANDOFF)
            .key_condition_expression("gsi2pk = :q")
            .expression_attribute_values(":q", s(queue_partition(tenant, state)))
            .scan_index_forward(true);
        let mut pages = LivePages::new(query, unix_now());
        let mut items = Vec::new();
        pages.fill(&mut items, limit).await?;
        items.iter().map(queue_entry_from).collect()
    }

    async fn erase_customer(&self, tenant: &str, customer_id: &str) -> Result<Erasure, StoreError> {
        // One page, one more than a call erases: the request stays well inside the function's
        // timeout however many conversations the customer has, and says when to call again.
        // Expired conversations too: TTL may take days to delete them, and their messages are
        // the customer's as much as a live conversation's (and nothing is filtered out of the
        // page, so a full page means there may be more). The index is eventually consistent:
        // a conversation written during the erasure may be missed, and a repeat erases it.
        let listed = self
            .customer_index(tenant, customer_id, MAX_ERASED_PER_CALL + 1, true)
            .await?;
        let mut erased = Erasure {
            complete: listed.len() <= MAX_ERASED_PER_CALL,
            ..Erasure::default()
        };
        for conversation in listed.into_iter().take(MAX_ERASED_PER_CALL) {
            let key = ConversationKey {
                tenant: tenant.to_string(),
                id: conversation.id,
            };
            erased.items_deleted += self.delete_partition(&key).await?;
            erased.conversations_deleted += 1;
        }
        Ok(erased)
    }
}

impl DynamoStore {
    /// A customer's conversations on the `ByCustomer` index, most recently updated first: the
    /// live ones, or with `include_expired` (erasure) every one whose record is still stored.
    ///
    /// The index holds no `expires_at`; a record's is its last update plus the retention
    /// (`state_item`), whole seconds. `gsi1sk` starts with the update's Unix milliseconds, so
    /// `gsi1sk >= <(now - retention) in whole seconds, as milliseconds>` holds exactly when
    /// `expires_at >= now` does, and being live is a key condition. Unlike a filter, a key
    /// condition comes before `Limit`: expired records take no room in the page. (Records
    /// written under another `RETENTION_DAYS` are judged by the current one, as before.)
    async fn customer_index(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
        include_expired: bool,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_BY_CUSTOMER)
            .expression_attribute_values(":u", s(customer_index_key(tenant, customer_id)))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        let query = if include_expired {
            query.key_condition_expression("gsi1pk = :u")
        } else {
            query
                .key_condition_expression("gsi1pk = :u AND gsi1sk >= :live_since")
                .expression_attribute_values(
                    ":live_since",
                    s(live_since(unix_now(), self.retention)),
                )
        };
        let out = query.send().io().await.map_err(unavailable)?;
        out.items().iter().map(summary_from).collect()
    }

    /// Deletes every item of one conversation's partition. The STATE record goes last, alone,
    /// and only at the version read with the rest: a turn that added messages meanwhile changed
    /// it, so the partition is read again and its new items go too. Until STATE is gone the
    /// conversation stays listed, so an interrupted erasure is finished by a repeat.
    async fn delete_partition(&self, key: &ConversationKey) -> Result<usize, StoreError> {
        let pk = partition_key(key);
        let mut deleted = 0;
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let items = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(&pk))
                .projection_expression("sk, #v")
                .expression_attribute_names("#v", "version")
                .consistent_read(true)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .io()
                .await
                .map_err(unavailable)?;
            let mut version = None;
            let mut others = Vec::with_capacity(items.len());
            for item in &items {
                match get_s(item, "sk")? {
                    STATE_SK => version = Some(get_n(item, "version")?),
                    sk => others.push(sk.to_string()),
                }
            }
            self.delete_items(others.iter().map(|sk| (pk.as_str(), sk.as_str())))
                .await?;
            deleted += others.len();
            let Some(version) = version else {
                return Ok(deleted);
            };
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(STATE_SK))
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(version))
                .send()
                .io()
                .await;
            match result {
                Ok(_) => return Ok(deleted + 1),
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                    super::backoff(attempt).await;
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "conversation {} kept changing while it was erased",
            key.id
        )))
    }

    /// Deletes the items with these keys (`pk`, `sk`), in batches.
    async fn delete_items<'k>(
        &self,
        keys: impl Iterator<Item = (&'k str, &'k str)>,
    ) -> Result<(), StoreError> {
        let mut deletes = Vec::with_capacity(BATCH_WRITE_MAX);
        for (pk, sk) in keys {
            let delete = DeleteRequest::builder()
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            deletes.push(WriteRequest::builder().delete_request(delete).build());
            if deletes.len() == BATCH_WRITE_MAX {
                self.batch_write(std::mem::take(&mut deletes)).await?;
            }
        }
        if !deletes.is_empty() {
            self.batch_write(deletes).await?;
        }
        Ok(())
    }

    /// One BatchWriteItem, with what DynamoDB left unprocessed (throttling) sent again after a
    /// growing pause; still unprocessed after that, the store counts as unavailable.
    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .io()
                .await
                .map_err(unavailable)?;
            requests = out
                .unprocessed_items()
                .and_then(|m| m.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            super::backoff(attempt).await;
        }
        Err(StoreError::Unavailable(format!(
            "{} deletions left unprocessed after {MAX_COMMIT_ATTEMPTS} attempts",
            requests.len()
        )))
    }
}

/// BatchWriteItem takes at most this many requests.
const BATCH_WRITE_MAX: usize = 25;

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl EffectLedger for DynamoStore {
    async fn begin(
        &self,
        tenant: &str,
        key: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Begin, StoreError> {
        let token = ulid::Ulid::new().to_string();
        let now_ms = crate::clock::unix_ms(now);
        let pk = effect_partition_key(tenant, key);
        // One write starts an effect, or takes over one whose holder's lease ran out; `attempts`
        // counts the starts (the job's own retry budget) and `first_started_ms` keeps the first.
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(EFFECT_SK))
            .update_expression(
                "SET effect_state = :in_progress, #token = :token, lease_until = :lease, \
                 started_at = :now, expires_at = :expires, \
                 first_started_ms = if_not_exists(first_started_ms, :now_ms) \
                 REMOVE set_aside_at ADD attempts :one",
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .condition_expression(
                "attribute_not_exists(pk) OR (effect_state = :in_progress AND lease_until < :now_ms)",
            )
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":lease", n(now_ms + lease.as_millis() as i64))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":expires", self.effect_expires_at(now))
            .expression_attribute_values(":one", n(1))
            .send()
            .io()
            .await;
        match result {
            Ok(out) => {
                let item = out.attributes().cloned().unwrap_or_default();
                let attempt = opt_n(&item, "attempts").unwrap_or(1);
                let first_ms = opt_n(&item, "first_started_ms").unwrap_or(now_ms as u64);
                let first_started =
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(first_ms) * 1_000_000)
                        .unwrap_or(now);
                // Kept by an earlier holder; nothing above removes it.
                let receipt = match item.get("receipt") {
                    None => None,
                    Some(_) => Some(get_s(&item, "receipt")?.to_string()),
                };
                Ok(Begin::Started(Lease {
                    token,
                    attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                    first_started,
                    receipt,
                }))
            }
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                let existing = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(&pk))
                    .key("sk", s(EFFECT_SK))
                    .consistent_read(true)
                    .send()
                    .io()
                    .await
                    .map_err(unavailable)?;
                Ok(match existing.item() {
                    Some(item) if get_s(item, "effect_state")? == IN_PROGRESS => Begin::Busy,
                    Some(_) => Begin::Finished,
                    None => Begin::Busy,
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn complete(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        outcome: EffectOutcome,
        jobs: &[Job],
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let completion = super::EffectCompletion {
            key: key.to_string(),
            token: token.to_string(),
            outcome,
        };
        if jobs.is_empty() {
            // Alone, a plain update: half the write units of a transaction.
            let u = self.completion_update(tenant, &completion, now);
            let result = self
                .client
                .update_item()
                .table_name(u.table_name())
                .set_key(Some(u.key().clone()))
                .update_expression(u.update_expression())
                .set_condition_expression(u.condition_expression().map(str::to_string))
                .set_expression_attribute_names(u.expression_attribute_names().cloned())
                .set_expression_attribute_values(u.expression_attribute_values().cloned())
                .send()
                .io()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                    Err(StoreError::DuplicateEffect)
                }
                Err(e) => Err(unavailable(e)),
            };
        }
        // With the jobs it starts: one transaction, so they exist exactly when it completed.
        let mut writes = vec![self.completion(tenant, &completion, now)];
        writes.extend(self.outbox_puts(jobs, now)?);
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .io()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel))
                    if cancel.cancellation_reasons().first().and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    Err(StoreError::DuplicateEffect)
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn record_receipt(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        receipt: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(effect_partition_key(tenant, key)))
            .key("sk", s(EFFECT_SK))
            .update_expression("SET receipt = :receipt")
            .condition_expression(HOLDER_ONLY)
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":receipt", s(receipt))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .io()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                Err(StoreError::DuplicateEffect)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn set_aside(&self, tenant: &str, key: &str, token: &str) -> Result<(), StoreError> {
        self.release(
            tenant,
            key,
            token,
            "SET lease_until = :zero, attempts = :zero, set_aside_at = :now \
             REMOVE first_started_ms",
            &[(":now", s(rfc3339(OffsetDateTime::now_utc())))],
        )
        .await
    }

    async fn state(&self, tenant: &str, key: &str) -> Result<Option<EffectState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(effect_partition_key(tenant, key)))
            .key("sk", s(EFFECT_SK))
            .consistent_read(true)
            .send()
            .io()
            .await
            .map_err(unavailable)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        Ok(Some(match get_s(item, "effect_state")? {
            IN_PROGRESS if item.contains_key("set_aside_at") => EffectState::SetAside,
            IN_PROGRESS => EffectState::InProgress,
            "done" => EffectState::Finished(EffectOutcome::Done),
            "failed" => EffectState::Finished(EffectOutcome::Failed),
            other => {
                return Err(StoreError::Corrupt(format!(
                    "effect {key} has state {other:?}"
                )))
            }
        }))
    }

    async fn abandon(&self, tenant: &str, key: &str, token: &str) -> Result<(), StoreError> {
        self.release(tenant, key, token, "SET lease_until = :zero", &[])
            .await
    }
}

impl DynamoStore {
    /// Ends an effect's lease (and whatever else `update` says) for its holder; a holder that
    /// lost its lease has nothing left to release.
    async fn release(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        update: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<(), StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(effect_partition_key(tenant, key)))
            .key("sk", s(EFFECT_SK))
            .update_expression(update)
            .condition_expression(HOLDER_ONLY)
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS));
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        match request.send().io().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[async_trait]
impl crate::relay::OutboxCleanup for DynamoStore {
    async fn delete(&self, keys: &[crate::relay::OutboxKey]) -> Result<(), StoreError> {
        self.delete_items(keys.iter().map(|k| (k.pk.as_str(), k.sk.as_str())))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_sorts_after_every_message() {
        assert!(STATE_SK > message_sort_key(u64::MAX).as_str());
        assert!(MSG_PREFIX < message_sort_key(0).as_str());
        // TURN# items stay outside the window a turn reads.
        assert!("TURN#x" > STATE_SK);
        assert!(message_sort_key(9) < message_sort_key(10));
    }

    #[test]
    fn a_listed_record_is_live_exactly_when_its_expires_at_is() {
        let retention = Duration::from_secs(86_400);
        let now: i64 = 1_800_000_000;
        let edge_ms = (now - 86_400) * 1000;
        for updated_ms in [
            edge_ms - 1001,
            edge_ms - 1000,
            edge_ms - 1,
            edge_ms,
            edge_ms + 1,
            edge_ms + 999,
            edge_ms + 1000,
            now * 1000,
        ] {
            // As `state_item` writes them.
            let expires_at = updated_ms.div_euclid(1000) + retention.as_secs() as i64;
            let gsi1sk = format!("{updated_ms:015}#01J00000000000000000000000");
            assert_eq!(
                gsi1sk.as_str() >= live_since(now, retention).as_str(),
                expires_at >= now,
                "updated at {updated_ms} ms"
            );
        }
    }

    fn offline_store() -> DynamoStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-1"))
            .build();
        DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            "t".into(),
            Duration::from_secs(86_400),
        )
    }

    fn conversation(handoff: Handoff) -> Conversation {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let mut c = Conversation::new(
            ConversationKey {
                tenant: "acme".into(),
                id: "01JCONVERSATION".into(),
            },
            "alice".into(),
            at,
        );
        c.handoff = handoff;
        c.handoff.sync_slots(&mut c.slots);
        c.slots.language = Some("es".into());
        c
    }

    #[test]
    fn the_handoff_is_its_own_attribute_and_only_a_queued_one_is_indexed() {
        let store = offline_store();
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let waiting = conversation(Handoff::Waiting {
            reason: "human_agent".into(),
            order_id: None,
            since: at,
        });
        let item = store.state_item(&waiting).unwrap();
        assert_eq!(get_s(&item, "gsi2pk").unwrap(), "acme#handoff#waiting");
        assert_eq!(
            get_s(&item, "gsi2sk").unwrap(),
            "001800000000000#01JCONVERSATION"
        );
        assert_eq!(get_s(&item, "language").unwrap(), "es");
        assert_eq!(conversation_from(&item).unwrap(), waiting);
        let entry = queue_entry_from(&item).unwrap();
        assert_eq!(entry.handoff, waiting.handoff);

        for off_queue in [
            Handoff::Bot,
            Handoff::Resolved {
                by: "ann".into(),
                at,
            },
        ] {
            let c = conversation(off_queue);
            let item = store.state_item(&c).unwrap();
            assert!(!item.contains_key("gsi2pk") && !item.contains_key("gsi2sk"));
            assert_eq!(conversation_from(&item).unwrap(), c);
        }
    }

    #[test]
    fn a_record_stored_before_the_handoff_attribute_reads_from_its_slots() {
        let store = offline_store();
        let mut legacy = store.state_item(&conversation(Handoff::Bot)).unwrap();
        legacy.remove("handoff");
        legacy.insert("slots".into(), s(r#"{"agent":"agent_ann"}"#));
        let c = conversation_from(&legacy).unwrap();
        assert_eq!(c.handoff.agent(), Some("agent_ann"));
        assert_eq!(c.handoff.state(), HandoffState::WithAgent);
        legacy.insert("slots".into(), s(r#"{"handoff_requested":true}"#));
        assert_eq!(
            conversation_from(&legacy).unwrap().handoff.state(),
            HandoffState::Waiting
        );
        legacy.insert("slots".into(), s("{}"));
        assert_eq!(conversation_from(&legacy).unwrap().handoff, Handoff::Bot);
    }
}
