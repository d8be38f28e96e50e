use std::collections::HashSet;
use std::sync::Mutex;

use super::*;

/// Records what it is asked to send; fails every message of the groups in `down` (transiently),
/// refuses for good the messages whose deduplication ids are in `poison`, and fails whole calls
/// while `unreachable`.
#[derive(Default)]
struct Queue {
    calls: Mutex<Vec<Vec<Envelope>>>,
    down: Mutex<HashSet<String>>,
    poison: Mutex<HashSet<String>>,
    unreachable: Mutex<bool>,
}

#[async_trait]
impl RelayQueue for Queue {
    async fn send_batch(&self, envelopes: &[&Envelope]) -> Result<Vec<SendOutcome>, QueueError> {
        self.calls
            .lock()
            .unwrap()
            .push(envelopes.iter().map(|e| (*e).clone()).collect());
        if *self.unreachable.lock().unwrap() {
            return Err(QueueError("SQS is unreachable".into()));
        }
        let down = self.down.lock().unwrap();
        let poison = self.poison.lock().unwrap();
        Ok(envelopes
            .iter()
            .map(|e| {
                if poison.contains(&e.dedup_id) {
                    SendOutcome::Refused {
                        permanent: true,
                        code: "InvalidMessageContents".into(),
                        message: "Invalid characters found".into(),
                    }
                } else if down.contains(&e.group_id) {
                    SendOutcome::Refused {
                        permanent: false,
                        code: "InternalError".into(),
                        message: "SQS is unavailable".into(),
                    }
                } else {
                    SendOutcome::Sent
                }
            })
            .collect())
    }
}

#[derive(Default)]
struct Table {
    deleted: Mutex<Vec<OutboxKey>>,
}

#[async_trait]
impl OutboxCleanup for Table {
    async fn delete(&self, keys: &[OutboxKey]) -> Result<(), StoreError> {
        self.deleted.lock().unwrap().extend_from_slice(keys);
        Ok(())
    }
}

fn record(seq: u64, group: &str, job: &str) -> serde_json::Value {
    serde_json::json!({
        "eventID": format!("e{seq}"),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_790_000_000.0,
            "Keys": { "pk": { "S": format!("T#t#C#{group}") }, "sk": { "S": format!("JOB#{job}") } },
            "NewImage": {
                "pk": { "S": format!("T#t#C#{group}") },
                "sk": { "S": format!("JOB#{job}") },
                "job": { "S": format!("{{\"key\":\"{job}\"}}") },
                "group": { "S": group },
                "dedup": { "S": format!("d-{job}") },
                "created_at": { "S": "2026-12-02T00:00:00Z" },
                "expires_at": { "N": "1800000000" }
            },
            "SequenceNumber": seq.to_string(),
            "SizeBytes": 200,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}

fn event(records: Vec<serde_json::Value>) -> Event {
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

fn relay() -> (Relay, Arc<Queue>, Arc<Table>) {
    let queue = Arc::new(Queue::default());
    let table = Arc::new(Table::default());
    (Relay::new(queue.clone(), table.clone()), queue, table)
}

fn failures(r: &DynamoDbEventResponse) -> Vec<String> {
    let mut ids: Vec<String> = r
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn every_group_reaches_the_queue_in_stream_order_and_is_deleted() {
    let (relay, queue, table) = relay();
    // Group a has three jobs, b one, and there are twelve single-job groups besides.
    let mut records = vec![
        record(1, "a", "a1"),
        record(2, "b", "b1"),
        record(3, "a", "a2"),
        record(4, "a", "a3"),
    ];
    records.extend((0..12).map(|i| record(10 + i, &format!("g{i}"), &format!("g{i}-1"))));
    let response = relay.handle(event(records)).await;
    assert!(failures(&response).is_empty());

    let calls = queue.calls.lock().unwrap();
    let mut seen_a = Vec::new();
    for call in calls.iter() {
        assert!(call.len() <= BATCH_MAX);
        let groups: HashSet<&str> = call.iter().map(|e| e.group_id.as_str()).collect();
        assert_eq!(groups.len(), call.len(), "one message per group in a call");
        seen_a.extend(
            call.iter()
                .filter(|e| e.group_id == "a")
                .map(|e| e.dedup_id.clone()),
        );
    }
    assert_eq!(seen_a, ["d-a1", "d-a2", "d-a3"]);
    assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 16);
    assert_eq!(
        calls.len(),
        3,
        "a3 needs a third call; the rest fill the first two"
    );
    assert_eq!(table.deleted.lock().unwrap().len(), 16);
    assert_eq!(
        calls[0][0].body, "{\"key\":\"a1\"}",
        "the body is the item's job, as written"
    );
}

#[tokio::test]
async fn a_failed_group_is_retried_from_its_first_unsent_record_and_the_rest_go_out() {
    let (relay, queue, table) = relay();
    queue.down.lock().unwrap().insert("a".into());
    let records = vec![
        record(1, "a", "a1"),
        record(2, "b", "b1"),
        record(3, "a", "a2"),
        record(4, "b", "b2"),
    ];
    let response = relay.handle(event(records)).await;
    assert_eq!(failures(&response), ["1"]);
    let sent: Vec<String> = queue
        .calls
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|e| e.dedup_id.clone())
        .collect();
    assert_eq!(sent, ["d-a1", "d-b1", "d-b2"], "a2 waits behind a1");
    let deleted: Vec<String> = table
        .deleted
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.sk.clone())
        .collect();
    assert_eq!(deleted, ["JOB#b1", "JOB#b2"], "only what was sent");
}

#[tokio::test]
async fn other_records_are_skipped_and_malformed_ones_never_hold_up_the_rest() {
    let (relay, queue, table) = relay();
    let mut message = record(1, "a", "x");
    message["dynamodb"]["NewImage"]["sk"] = serde_json::json!({ "S": "MSG#00000000000000000001" });
    let mut removed = record(2, "a", "a0");
    removed["eventName"] = "REMOVE".into();
    let mut broken = record(3, "a", "a1");
    broken["dynamodb"]["NewImage"]
        .as_object_mut()
        .unwrap()
        .remove("group");
    let response = relay
        .handle(event(vec![message, removed, broken, record(4, "a", "a2")]))
        .await;
    assert!(failures(&response).is_empty());
    let sent: Vec<String> = queue
        .calls
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|e| e.dedup_id.clone())
        .collect();
    assert_eq!(sent, ["d-a2"]);
    assert_eq!(
        table.deleted.lock().unwrap().len(),
        1,
        "the broken item stays"
    );
}

#[tokio::test]
async fn a_record_that_does_not_parse_is_skipped_and_the_batch_goes_on() {
    let (relay, queue, table) = relay();
    let mut unreadable = record(1, "a", "a0");
    // A shape aws_lambda_events cannot read: the whole event would fail to parse.
    unreadable["dynamodb"]["NewImage"]["group"] = serde_json::json!({ "S": 42 });
    let event = serde_json::json!({ "Records": [unreadable, record(2, "a", "a1")] });
    assert!(serde_json::from_value::<Event>(event.clone()).is_err());
    let response = relay.handle_json(event).await;
    assert!(failures(&response).is_empty());
    assert_eq!(sent(&queue), ["d-a1"]);
    assert_eq!(table.deleted.lock().unwrap().len(), 1);
    // Not a stream event at all: nothing to relay, nothing to retry.
    let response = relay.handle_json(serde_json::json!({ "nope": 1 })).await;
    assert!(failures(&response).is_empty());
}

#[tokio::test]
async fn an_empty_batch_answers_no_failures() {
    let (relay, queue, _) = relay();
    let response = relay.handle(event(vec![])).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(queue.calls.lock().unwrap().is_empty());
}

#[test]
fn the_templates_event_filter_lets_exactly_written_outbox_items_through() {
    // The relay and its event source mapping must agree on what an outbox item is.
    let template = include_str!("../../../template.yaml");
    let filter = format!(
        r#"'{{"eventName": ["INSERT", "MODIFY"], "dynamodb": {{"NewImage": {{"sk": {{"S": [{{"prefix": "{OUTBOX_PREFIX}"}}]}}}}}}}}'"#
    );
    assert!(
        template.contains(&filter),
        "template.yaml's relay filter should be {filter}"
    );
}

#[tokio::test]
async fn the_sample_event_is_an_outbox_item_as_the_store_writes_it() {
    let sample: Event =
        serde_json::from_str(include_str!("../../../events/relay-outbox-stream.json")).unwrap();
    let (relay, queue, table) = relay();
    assert!(failures(&relay.handle(sample).await).is_empty());
    let sent = queue.calls.lock().unwrap()[0][0].clone();
    // The ids are the ones the job itself gives: the relay and a direct send agree.
    let job: crate::jobs::Job = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(job.envelope().unwrap(), sent);
    assert_eq!(table.deleted.lock().unwrap().len(), 1);
}

fn sent(queue: &Queue) -> Vec<String> {
    queue
        .calls
        .lock()
        .unwrap()
        .iter()
        .flatten()
        .map(|e| e.dedup_id.clone())
        .collect()
}

fn deleted(table: &Table) -> Vec<String> {
    table
        .deleted
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.sk.clone())
        .collect()
}

#[tokio::test]
async fn a_message_refused_for_good_is_counted_and_left_and_its_group_goes_on() {
    let (relay, queue, table) = relay();
    queue.poison.lock().unwrap().insert("d-a1".into());
    let records = vec![
        record(1, "a", "a1"),
        record(2, "b", "b1"),
        record(3, "a", "a2"),
    ];
    let (response, tally) = relay.relay(event(records)).await;
    // Reporting it would have Lambda retry it, refused every time, for as long as the stream
    // keeps it, with the rest of its shard waiting behind it.
    assert!(failures(&response).is_empty());
    assert_eq!(sent(&queue), ["d-a1", "d-b1", "d-a2"], "a2 goes after a1");
    assert_eq!(
        deleted(&table),
        ["JOB#b1", "JOB#a2"],
        "a1 stays for a redrive"
    );
    assert_eq!(
        (
            tally.relayed,
            tally.send_failed,
            tally.refused,
            tally.failed_groups
        ),
        (2, 0, 1, 0)
    );
}

#[tokio::test]
async fn a_transient_refusal_holds_its_group_for_a_retry() {
    let (relay, queue, table) = relay();
    queue.down.lock().unwrap().insert("a".into());
    let records = vec![record(1, "a", "a1"), record(2, "a", "a2")];
    let (response, tally) = relay.relay(event(records)).await;
    assert_eq!(failures(&response), ["1"]);
    assert_eq!(sent(&queue), ["d-a1"]);
    assert!(deleted(&table).is_empty());
    assert_eq!(
        (
            tally.relayed,
            tally.send_failed,
            tally.refused,
            tally.failed_groups
        ),
        (0, 1, 0, 1)
    );
}

#[tokio::test]
async fn a_failed_call_holds_every_group_in_it_for_a_retry() {
    let (relay, queue, table) = relay();
    *queue.unreachable.lock().unwrap() = true;
    queue.poison.lock().unwrap().insert("d-b1".into());
    let records = vec![
        record(1, "a", "a1"),
        record(2, "b", "b1"),
        record(3, "a", "a2"),
    ];
    let (response, tally) = relay.relay(event(records)).await;
    assert_eq!(failures(&response), ["1", "2"]);
    assert_eq!(sent(&queue), ["d-a1", "d-b1"], "a2 waits behind a1");
    assert!(deleted(&table).is_empty());
    assert_eq!(
        (
            tally.relayed,
            tally.send_failed,
            tally.refused,
            tally.lag_ms
        ),
        (0, 2, 0, None)
    );
}

/// Answers fewer outcomes than it was given envelopes (a broken adapter).
struct Forgetful;

#[async_trait]
impl RelayQueue for Forgetful {
    async fn send_batch(&self, envelopes: &[&Envelope]) -> Result<Vec<SendOutcome>, QueueError> {
        Ok(vec![SendOutcome::Sent; envelopes.len() - 1])
    }
}

#[tokio::test]
async fn a_message_without_an_outcome_is_retried_not_dropped() {
    let table = Arc::new(Table::default());
    let relay = Relay::new(Arc::new(Forgetful), table.clone());
    let (response, tally) = relay
        .relay(event(vec![record(1, "a", "a1"), record(2, "b", "b1")]))
        .await;
    assert_eq!(failures(&response), ["2"]);
    assert_eq!(deleted(&table), ["JOB#a1"]);
    assert_eq!((tally.relayed, tally.send_failed), (1, 1));
}

#[tokio::test]
async fn lag_counts_from_the_commits_own_millisecond_clock() {
    let (relay, _, _) = relay();
    let now = time::OffsetDateTime::now_utc();
    let mut r = record(1, "a", "a1");
    let written = now - time::Duration::milliseconds(1500);
    r["dynamodb"]["NewImage"]["created_at"] =
        serde_json::json!({ "S": crate::store::dynamo::rfc3339(written) });
    // The stream's own time, whole seconds and here well off, is only the fallback.
    r["dynamodb"]["ApproximateCreationDateTime"] = ((now.unix_timestamp() - 10) as f64).into();
    let (_, tally) = relay.relay(event(vec![r])).await;
    let lag = tally.lag_ms.expect("one relayed");
    assert!((1500..5000).contains(&lag), "{lag}");
}

#[tokio::test]
async fn a_job_written_again_over_its_waiting_item_is_sent_again() {
    let (relay, queue, table) = relay();
    let mut again = record(2, "a", "a1");
    again["eventName"] = "MODIFY".into();
    let response = relay.handle(event(vec![again])).await;
    assert!(failures(&response).is_empty());
    assert_eq!(sent(&queue), ["d-a1"]);
    assert_eq!(deleted(&table).len(), 1);
}
