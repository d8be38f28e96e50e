//! Fulfillment: jobs from the FIFO queue, each applied once, with failures reported per item so
//! SQS redelivers only those (and, after `maxReceiveCount`, moves them to the DLQ).

use std::collections::HashSet;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use time::OffsetDateTime;

use crate::connectors::{ConnectorError, PaymentsPort};
use crate::conversation::{Message, Role};
use crate::jobs::{Job, JobKind};
use crate::store::{backoff, Commit, ConversationStore, StoreError, MAX_COMMIT_ATTEMPTS};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("message body is not a job: {0}")]
    Malformed(String),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("conversation {0} does not exist")]
    MissingConversation(String),
    #[error("conversation kept changing; will retry")]
    Contended,
}

pub struct Fulfillment {
    store: Arc<dyn ConversationStore>,
    payments: Arc<dyn PaymentsPort>,
}

impl Fulfillment {
    pub fn new(store: Arc<dyn ConversationStore>, payments: Arc<dyn PaymentsPort>) -> Self {
        Self { store, payments }
    }

    /// Handles a batch in order. In a FIFO queue, once a message of a group fails, the later
    /// messages of that group in the batch are reported failed unprocessed, so order holds.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut failed_groups: HashSet<String> = HashSet::new();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let group = record.attributes.get("MessageGroupId").cloned();
            if group.as_ref().is_some_and(|g| failed_groups.contains(g)) {
                tracing::info!(message_id = %id, "skipped: an earlier job of its group failed");
                response.add_failure(id);
                continue;
            }
            if let Err(e) = self.process(record).await {
                tracing::error!(message_id = %id, error = %e, "job failed");
                response.add_failure(id);
                if let Some(g) = group {
                    failed_groups.insert(g);
                }
            }
        }
        response
    }

    async fn process(&self, record: &SqsMessage) -> Result<(), JobError> {
        let body = record
            .body
            .as_deref()
            .ok_or_else(|| JobError::Malformed("empty body".into()))?;
        let job: Job =
            serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))?;
        tracing::info!(job_type = job.kind.type_name(), job_key = %job.key, "processing job");
        match &job.kind {
            JobKind::RefundRequest { order_id, amount } => {
                let receipt = self.payments.refund(order_id, amount, &job.key).await?;
                let text = format!(
                    "Your refund of {} for order #{order_id} has been issued (reference {}). It can take 5–10 business days to show on your statement.",
                    receipt.amount, receipt.id
                );
                self.append_bot_message(&job, text).await
            }
        }
    }

    /// Appends a bot message once per job: the job key is written with the message in the same
    /// conditional transaction, so a redelivered job finds it and writes nothing.
    async fn append_bot_message(&self, job: &Job, text: String) -> Result<(), JobError> {
        let key = job.conversation_key();
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let snapshot = self
                .store
                .load(&key, 0)
                .await?
                .ok_or_else(|| JobError::MissingConversation(key.id.clone()))?;
            let c = snapshot.conversation;
            let now = OffsetDateTime::now_utc().max(c.updated_at);
            let message = Message {
                seq: c.last_seq + 1,
                role: Role::Bot,
                text: text.clone(),
                created_at: now,
                client_message_id: None,
                reply_to: None,
            };
            let expected_version = c.version;
            let commit = Commit {
                conversation: crate::conversation::Conversation {
                    version: expected_version + 1,
                    last_seq: message.seq,
                    updated_at: now,
                    ..c
                },
                expected_version,
                messages: vec![message],
                turn: None,
                effect: Some(job.key.clone()),
            };
            match self.store.commit(commit).await {
                Ok(()) => return Ok(()),
                Err(StoreError::DuplicateEffect) => {
                    tracing::info!(job_key = %job.key, "already applied; nothing to do");
                    return Ok(());
                }
                Err(StoreError::Conflict) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::RefundReceipt;
    use crate::conversation::{Conversation, ConversationKey};
    use crate::money::Money;
    use crate::store::memory::MemoryStore;
    use async_trait::async_trait;
    use std::collections::HashMap;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Payments {
        keys: Mutex<Vec<String>>,
        fail_order: Option<String>,
    }

    #[async_trait]
    impl PaymentsPort for Payments {
        async fn refund(
            &self,
            order_id: &str,
            amount: &Money,
            key: &str,
        ) -> Result<RefundReceipt, ConnectorError> {
            if self.fail_order.as_deref() == Some(order_id) {
                return Err(ConnectorError::Unavailable {
                    system: "payments",
                    detail: "down".into(),
                });
            }
            self.keys.lock().unwrap().push(key.to_string());
            Ok(RefundReceipt {
                id: format!("re_{order_id}"),
                status: "succeeded".into(),
                amount: amount.clone(),
            })
        }
    }

    fn record(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.attributes = HashMap::from([("MessageGroupId".to_string(), group.to_string())]);
        m
    }

    fn refund_job(conv: &str, order: &str) -> String {
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv.into(),
        };
        serde_json::to_string(&Job::new(
            &key,
            "alice",
            JobKind::RefundRequest {
                order_id: order.into(),
                amount: Money {
                    amount_cents: 100,
                    currency: "USD".into(),
                },
            },
        ))
        .unwrap()
    }

    async fn seeded_store(convs: &[&str]) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::new());
        for id in convs {
            let key = ConversationKey {
                tenant: "t".into(),
                id: id.to_string(),
            };
            let mut c = Conversation::new(key, "alice".into(), OffsetDateTime::now_utc());
            c.version = 1;
            store
                .commit(Commit {
                    conversation: c,
                    expected_version: 0,
                    messages: vec![],
                    turn: None,
                    effect: None,
                })
                .await
                .unwrap();
        }
        store
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut e = SqsEvent::default();
        e.records = records;
        e
    }

    #[tokio::test]
    async fn a_redelivered_job_appends_one_message() {
        let store = seeded_store(&["c1"]).await;
        let payments = Arc::new(Payments::default());
        let f = Fulfillment::new(store.clone(), payments.clone());
        for _ in 0..2 {
            let r = f
                .handle(event(vec![record("m1", "g1", &refund_job("c1", "1002"))]))
                .await;
            assert!(r.batch_item_failures.is_empty());
        }
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c1".into(),
        };
        assert_eq!(store.message_count(&key), 1);
        // The payments API saw the same key both times, so it refunds once.
        assert_eq!(
            *payments.keys.lock().unwrap(),
            vec!["refund:t:1002", "refund:t:1002"]
        );
    }

    #[tokio::test]
    async fn failures_are_reported_per_item_and_block_the_rest_of_their_group() {
        let store = seeded_store(&["c1", "c2"]).await;
        let payments = Arc::new(Payments {
            fail_order: Some("bad".into()),
            ..Default::default()
        });
        let f = Fulfillment::new(store, payments);
        let r = f
            .handle(event(vec![
                record("a", "g1", &refund_job("c1", "bad")),
                record("b", "g1", &refund_job("c1", "1003")),
                record("c", "g2", &refund_job("c2", "1004")),
                record("d", "g3", "{not json"),
            ]))
            .await;
        let failed: Vec<&str> = r
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, vec!["a", "b", "d"]);
    }
}
