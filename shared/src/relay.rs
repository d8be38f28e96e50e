//! The outbox relay: every job a commit starts is written in that commit's transaction as an
//! outbox item (`store::dynamo`, `sk = JOB#<job key>`); the table's stream hands each new item
//! here, and the relay sends it to the FIFO jobs queue and deletes it.
//!
//! - The item carries the message exactly as it is queued (body, group and deduplication id),
//!   so nothing here reads a job, and a stream record is relayed the same way every time.
//! - Order is per group: each group reaches the queue in the order the stream hands over its
//!   records. Each SendMessageBatch call holds at most one message per group and the calls go
//!   one after another; once a group's send fails, its later records are not sent in this
//!   invocation. The relay reorders nothing; across a conversation's items the order is the
//!   stream's, which DynamoDB Streams promises per item.
//! - Failures: the answer names the first failed record of each failed group
//!   (`batchItemFailures`); Lambda retries the batch from the lowest of them. What was already
//!   sent goes again: the FIFO queue drops the copy within its 5-minute deduplication window,
//!   and the effect ledger makes a later copy a no-op.
//! - A record that cannot succeed by retrying never holds up the others, since Lambda would
//!   retry it for as long as the stream keeps it: a record that is not a well-formed outbox
//!   item (`malformed outbox item`, counted as `OutboxMalformed`), and a message the queue
//!   refuses for good (`outbox item refused`, `OutboxRefused`: SQS blames the message itself,
//!   e.g. characters it does not allow). Both are logged at error and not reported; their
//!   group's later records go on, and the item stays in the table, where `dev/outbox.py` lists
//!   it for a redrive once it is mended.
//! - Relayed items are deleted; a failed delete leaves an item `dev/outbox.py` would send
//!   again, which the queue and the ledger absorb.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_dynamo::AttributeValue;

use crate::jobs::{Envelope, QueueError};
use crate::metrics::{self, Directive, Unit};
use crate::store::StoreError;

/// The most envelopes one `RelayQueue::send_batch` call takes (SendMessageBatch's limit).
pub const BATCH_MAX: usize = 10;

/// What became of one envelope of a `send_batch` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The queue has it.
    Sent,
    /// The queue does not have it. `permanent`: the queue blamed the message itself (SQS's
    /// SenderFault, e.g. InvalidMessageContents), so sending the same message again can only be
    /// refused again; otherwise a later try may succeed. `code` is the queue's error code.
    Refused {
        permanent: bool,
        code: String,
        message: String,
    },
}

/// The FIFO jobs queue, as the relay uses it.
#[async_trait]
pub trait RelayQueue: Send + Sync {
    /// One SendMessageBatch call (at most `BATCH_MAX` envelopes): one outcome per envelope, in
    /// order; `Err` when the call as a whole failed, which the relay treats as nothing sent.
    async fn send_batch(&self, envelopes: &[&Envelope]) -> Result<Vec<SendOutcome>, QueueError>;
}

/// Where relayed outbox items are deleted from.
#[async_trait]
pub trait OutboxCleanup: Send + Sync {
    /// Deletes the items with these keys (`pk`, `sk`).
    async fn delete(&self, keys: &[OutboxKey]) -> Result<(), StoreError>;
}

/// Outbox items' sort keys start with this (`JOB#<job key>`, in the conversation's partition):
/// the store writes them so, and the relay's event filter in template.yaml names it.
pub const OUTBOX_PREFIX: &str = "JOB#";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutboxKey {
    pub pk: String,
    pub sk: String,
}

/// An outbox item read from a stream record.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    sequence: String,
    key: OutboxKey,
    envelope: Envelope,
    /// When the commit wrote it (its `created_at`, else the stream's approximate creation
    /// time), for the lag metric.
    written_ms: i64,
}

/// What one stream record is to the relay.
#[derive(Debug, PartialEq)]
enum Record {
    Outbox(Pending),
    /// Not an outbox insert (the event filter should have kept it away): nothing to do.
    Other,
    Malformed {
        sequence: String,
        reason: String,
    },
}

fn text<'a>(image: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, String> {
    match image.get(name) {
        Some(AttributeValue::S(v)) if !v.is_empty() => Ok(v),
        _ => Err(format!("{name} is missing or not a string")),
    }
}

fn read(record: &EventRecord) -> Record {
    let change = &record.change;
    let image: &HashMap<String, AttributeValue> = &change.new_image;
    let is_outbox =
        matches!(image.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with(OUTBOX_PREFIX));
    // MODIFY: a commit wrote the same job again over an item still in the table (one the
    // relay left, refused or not yet deleted); sent again, the queue or the ledger absorbs it.
    let written = matches!(record.event_name.as_str(), "INSERT" | "MODIFY");
    if !written || !is_outbox {
        return Record::Other;
    }
    let sequence = change.sequence_number.clone().unwrap_or_default();
    let parsed = (|| {
        Ok::<_, String>(Pending {
            sequence: sequence.clone(),
            key: OutboxKey {
                pk: text(image, "pk")?.to_string(),
                sk: text(image, "sk")?.to_string(),
            },
            envelope: Envelope {
                body: text(image, "job")?.to_string(),
                group_id: text(image, "group")?.to_string(),
                dedup_id: text(image, "dedup")?.to_string(),
            },
            // The commit's own time, to the millisecond; the stream's is whole seconds.
            written_ms: match image.get("created_at") {
                Some(AttributeValue::S(at)) => {
                    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                        .ok()
                        .map(crate::clock::unix_ms)
                }
                _ => None,
            }
            .unwrap_or_else(|| change.approximate_creation_date_time.timestamp_millis()),
        })
    })();
    match parsed {
        Ok(_) if sequence.is_empty() => Record::Malformed {
            sequence,
            reason: "the record has no sequence number".into(),
        },
        Ok(p) => Record::Outbox(p),
        Err(reason) => Record::Malformed { sequence, reason },
    }
}

/// The records of a stream event that parse; the others are logged and counted as malformed.
fn readable(mut event: serde_json::Value) -> Event {
    let records = match event.get_mut("Records").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(records)) => records,
        _ => {
            tracing::error!("the stream event has no Records array");
            metrics::count("OutboxMalformed", &[]);
            Vec::new()
        }
    };
    let mut readable = Event::default();
    for record in records {
        let sequence = record["dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match serde_json::from_value::<EventRecord>(record) {
            Ok(r) => readable.records.push(r),
            Err(e) => {
                tracing::error!(sequence = %sequence, reason = %e, "malformed outbox item");
                metrics::count("OutboxMalformed", &[]);
            }
        }
    }
    readable
}

/// SendMessageBatch calls in the order they go out: each holds at most one message per group
/// and ten in all, and a group's messages are in later calls than its earlier ones.
fn plan(pending: &[Pending]) -> Vec<Vec<usize>> {
    let mut calls: Vec<Vec<usize>> = Vec::new();
    // A group's next message goes to a later call than its last: never two in one call.
    let mut last_call_of: HashMap<&str, usize> = HashMap::new();
    for (i, p) in pending.iter().enumerate() {
        let group = p.envelope.group_id.as_str();
        let earliest = last_call_of.get(group).map_or(0, |c| c + 1);
        let call = (earliest..)
            .find(|&c| calls.get(c).is_none_or(|call| call.len() < BATCH_MAX))
            .expect("an unbounded range has a free call");
        if call == calls.len() {
            calls.push(Vec::new());
        }
        calls[call].push(i);
        last_call_of.insert(group, call);
    }
    calls
}

pub struct Relay {
    queue: Arc<dyn RelayQueue>,
    cleanup: Arc<dyn OutboxCleanup>,
}

impl Relay {
    pub fn new(queue: Arc<dyn RelayQueue>, cleanup: Arc<dyn OutboxCleanup>) -> Self {
        Self { queue, cleanup }
    }

    /// Handles the event as Lambda hands it over, read record by record: a record that does
    /// not parse is a malformed item, not a failed invocation. (Parsed whole, one such record
    /// would fail every invocation; Lambda would bisect down to it and retry it forever, the
    /// shard stalled behind it.)
    pub async fn handle_json(&self, event: serde_json::Value) -> DynamoDbEventResponse {
        self.handle(readable(event)).await
    }

    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let (response, tally) = self.relay(event).await;
        tally.report();
        response
    }

    /// Relays the event's outbox items: the answer for Lambda, and what was done.
    async fn relay(&self, event: Event) -> (DynamoDbEventResponse, Tally) {
        let mut pending = Vec::new();
        for record in &event.records {
            match read(record) {
                Record::Outbox(p) => pending.push(p),
                Record::Other => {}
                Record::Malformed { sequence, reason } => {
                    // Left in the table (dev/outbox.py lists it); retrying would not mend it.
                    tracing::error!(sequence = %sequence, %reason, "malformed outbox item");
                    metrics::count("OutboxMalformed", &[]);
                }
            }
        }

        let mut failed_groups: HashMap<String, String> = HashMap::new();
        let mut send_failed = 0;
        let mut refused = 0;
        let mut relayed: Vec<&Pending> = Vec::with_capacity(pending.len());
        for call in plan(&pending) {
            let batch: Vec<&Pending> = call
                .iter()
                .map(|&i| &pending[i])
                .filter(|p| !failed_groups.contains_key(&p.envelope.group_id))
                .collect();
            if batch.is_empty() {
                continue;
            }
            let envelopes: Vec<&Envelope> = batch.iter().map(|p| &p.envelope).collect();
            let mut outcomes = match self.queue.send_batch(&envelopes).await {
                Ok(outcomes) => outcomes.into_iter(),
                // The call as a whole failed: none of it counts as sent, all of it is retried.
                Err(e) => {
                    let outcome = SendOutcome::Refused {
                        permanent: false,
                        code: "CallFailed".into(),
                        message: e.to_string(),
                    };
                    vec![outcome; batch.len()].into_iter()
                }
            };
            for p in batch {
                let job_key = p.key.sk.strip_prefix(OUTBOX_PREFIX).unwrap_or(&p.key.sk);
                // An envelope the queue said nothing about was not sent, as far as we know.
                let outcome = outcomes.next().unwrap_or_else(|| SendOutcome::Refused {
                    permanent: false,
                    code: "NoOutcome".into(),
                    message: "the queue gave no outcome for this message".into(),
                });
                match outcome {
                    SendOutcome::Sent => relayed.push(p),
                    SendOutcome::Refused {
                        permanent: true,
                        code,
                        message,
                    } => {
                        // Sending it again would be refused again, and holding its group for it
                        // would hold the shard for good: like a malformed item, it is logged,
                        // counted and left in the table; the group's later records go on.
                        tracing::error!(sequence = %p.sequence, job_key, group = %p.envelope.group_id, %code, error = %message, "outbox item refused");
                        refused += 1;
                    }
                    SendOutcome::Refused {
                        permanent: false,
                        code,
                        message,
                    } => {
                        // Retried from here; the other groups go on.
                        tracing::warn!(sequence = %p.sequence, job_key, group = %p.envelope.group_id, %code, error = %message, "outbox send failed");
                        send_failed += 1;
                        failed_groups.insert(p.envelope.group_id.clone(), p.sequence.clone());
                    }
                }
            }
        }

        if !relayed.is_empty() {
            let keys: Vec<OutboxKey> = relayed.iter().map(|p| p.key.clone()).collect();
            if let Err(e) = self.cleanup.delete(&keys).await {
                // Sent is what counts; a leftover item is only sent again by a redrive.
                tracing::warn!(error = %e, items = keys.len(), "relayed outbox items not deleted");
            }
        }
        let now_ms = crate::clock::now_ms();
        let tally = Tally {
            relayed: relayed.len(),
            send_failed,
            refused,
            failed_groups: failed_groups.len(),
            lag_ms: relayed.iter().map(|p| (now_ms - p.written_ms).max(0)).max(),
        };

        let mut response = DynamoDbEventResponse::default();
        for sequence in failed_groups.into_values() {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
        }
        (response, tally)
    }
}

/// What one invocation did with the outbox items it was handed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Sent and (unless the delete failed) deleted.
    relayed: usize,
    /// Not sent this time; their groups wait for Lambda's retry.
    send_failed: usize,
    /// Refused for good by the queue: not sent, left in the table, not retried.
    refused: usize,
    failed_groups: usize,
    /// How long the oldest relayed item waited since its commit; `None` when none was relayed.
    lag_ms: Option<i64>,
}

impl Tally {
    /// One log line and one metrics document per invocation: how many went out, how many sends
    /// failed (their groups wait for a retry), how many the queue refused for good (left in the
    /// table), and how long the oldest relayed item waited since its commit.
    fn report(&self) {
        tracing::info!(
            relayed = self.relayed,
            send_failed = self.send_failed,
            refused = self.refused,
            failed_groups = self.failed_groups,
            lag_ms = self.lag_ms.unwrap_or(0),
            "outbox relayed"
        );
        if self.relayed == 0 && self.send_failed == 0 && self.refused == 0 {
            return;
        }
        let mut values = vec![
            ("OutboxRelayed", Unit::Count, self.relayed as f64),
            ("OutboxSendFailed", Unit::Count, self.send_failed as f64),
            ("OutboxRefused", Unit::Count, self.refused as f64),
        ];
        if let Some(lag_ms) = self.lag_ms {
            values.push(("OutboxLag", Unit::Milliseconds, lag_ms as f64));
        }
        metrics::emit(
            &[],
            &[Directive {
                sets: &[&[]],
                metrics: &values,
            }],
        );
    }
}

#[cfg(test)]
mod tests;
