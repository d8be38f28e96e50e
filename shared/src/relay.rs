//! The outbox relay: every job a commit starts is written in that commit's transaction as an
//! outbox item (`store::dynamo`, `sk = JOB#<job key>`); the table's stream hands each new item
//! here, and the relay sends it to the FIFO jobs queue and deletes it.
//!
//! - The item carries the message exactly as it is queued (body, group and deduplication id),
//!   so nothing here reads a job, and a stream record is relayed the same way every time.
//! - Order: a conversation's items are in one partition, so the stream hands them over in
//!   commit order (one shard). Each SendMessageBatch call here holds at most one message per
//!   group and the calls go one after another, so every group reaches the queue in stream order;
//!   once a group's send fails, its later records are not sent in this invocation.
//! - Failures: the answer names the first failed record of each failed group
//!   (`batchItemFailures`); Lambda retries the batch from the lowest of them. What was already
//!   sent goes again: the FIFO queue drops the copy within its 5-minute deduplication window,
//!   and the effect ledger makes a later copy a no-op.
//! - A record that is not a well-formed outbox item cannot become one by retrying: it is
//!   logged and counted (`OutboxMalformed`), never holds up the others, and its item (if any)
//!   stays in the table, where `dev/outbox.py` lists it.
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
use crate::store::dynamo::OUTBOX_PREFIX;
use crate::store::StoreError;

/// SendMessageBatch takes at most ten messages.
const BATCH_MAX: usize = 10;

/// The FIFO jobs queue, as the relay uses it.
#[async_trait]
pub trait RelayQueue: Send + Sync {
    /// One SendMessageBatch call (at most ten envelopes): one result per envelope, in order.
    async fn send_batch(&self, envelopes: &[&Envelope]) -> Vec<Result<(), QueueError>>;
}

/// Where relayed outbox items are deleted from.
#[async_trait]
pub trait OutboxCleanup: Send + Sync {
    /// Deletes the items with these keys (`pk`, `sk`).
    async fn delete(&self, keys: &[OutboxKey]) -> Result<(), StoreError>;
}

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
    /// When the commit wrote it (the stream's approximate creation time), for the lag metric.
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
    if record.event_name != "INSERT" || !is_outbox {
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
            written_ms: change.approximate_creation_date_time.timestamp_millis(),
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

    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
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
            let results = self.queue.send_batch(&envelopes).await;
            for (p, result) in batch.iter().zip(results) {
                match result {
                    Ok(()) => relayed.push(p),
                    Err(e) => {
                        // Retried from here; the other groups go on.
                        let job_key = p.key.sk.strip_prefix(OUTBOX_PREFIX).unwrap_or(&p.key.sk);
                        tracing::warn!(sequence = %p.sequence, job_key, group = %p.envelope.group_id, error = %e, "outbox send failed");
                        refused += 1;
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
        self.report(&relayed, refused, failed_groups.len());

        let mut response = DynamoDbEventResponse::default();
        for sequence in failed_groups.into_values() {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence);
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// One log line and one metrics document per invocation: how many went out, how many SQS
    /// refused (their groups wait for a retry), and how long the oldest relayed item waited
    /// since its commit.
    fn report(&self, relayed: &[&Pending], refused: usize, failed_groups: usize) {
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let lag_ms = relayed
            .iter()
            .map(|p| (now_ms - p.written_ms).max(0))
            .max()
            .unwrap_or(0);
        tracing::info!(
            relayed = relayed.len(),
            refused,
            failed_groups,
            lag_ms,
            "outbox relayed"
        );
        if relayed.is_empty() && refused == 0 {
            return;
        }
        let mut values = vec![
            ("OutboxRelayed", Unit::Count, relayed.len() as f64),
            ("OutboxSendFailed", Unit::Count, refused as f64),
        ];
        if !relayed.is_empty() {
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
