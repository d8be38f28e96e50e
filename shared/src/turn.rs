//! A chat turn: load memory (one Query), understand and decide, persist (one conditional
//! transaction), then hand jobs to the queue. A lost race reloads and decides again; a retried
//! message (same `client_message_id`) gets the stored answer and stores nothing new.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::auth::Principal;
use crate::config::ChatSettings;
use crate::conversation::{
    derived_conversation_id, is_valid_conversation_id, new_conversation_id, Conversation,
    ConversationKey, Message, Role, Slots,
};
use crate::dialogue::Dialogue;
use crate::jobs::{Job, JobKind, JobQueue};
use crate::problem::ApiError;
use crate::store::{
    backoff, Commit, ConversationStore, StoreError, TurnRecord, MAX_COMMIT_ATTEMPTS,
};

/// A new conversation remembers the customer's previous one if it was this recent.
const MEMORY_SPAN: time::Duration = time::Duration::days(30);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    #[serde(default)]
    pub conversation_id: Option<String>,
    pub text: String,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TurnReply {
    pub conversation_id: String,
    pub message: Message,
    pub replies: Vec<Message>,
}

pub struct TurnService {
    store: Arc<dyn ConversationStore>,
    dialogue: Dialogue,
    jobs: Arc<dyn JobQueue>,
    settings: ChatSettings,
}

pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(detail) => {
            tracing::error!(%detail, "conversation store unavailable");
            ApiError::Unavailable {
                detail: "conversation memory is unavailable; retry shortly".into(),
                retry_after_secs: 2,
            }
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// Where a turn's conversation id came from, which decides whether it may start a conversation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Sent by the client: must exist and be the caller's.
    Named,
    /// Derived from the client message id: a retry of a first message maps to it again.
    Derived,
    /// Generated for this turn: cannot exist yet.
    Generated,
}

fn is_valid_client_message_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl TurnService {
    pub fn new(
        store: Arc<dyn ConversationStore>,
        dialogue: Dialogue,
        jobs: Arc<dyn JobQueue>,
        settings: ChatSettings,
    ) -> Self {
        Self {
            store,
            dialogue,
            jobs,
            settings,
        }
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    pub async fn post(&self, who: &Principal, req: PostMessage) -> Result<TurnReply, ApiError> {
        let text = req.text.trim();
        if text.is_empty() {
            return Err(ApiError::BadRequest("text must not be empty".into()));
        }
        let chars = text.chars().count();
        if chars > self.settings.max_text_chars {
            return Err(ApiError::PayloadTooLarge(format!(
                "text is {chars} characters; the limit is {}",
                self.settings.max_text_chars
            )));
        }
        if let Some(id) = &req.client_message_id {
            if !is_valid_client_message_id(id) {
                return Err(ApiError::BadRequest(
                    "client_message_id must be 1-128 visible ASCII characters".into(),
                ));
            }
        }
        let (conversation_id, origin) = match (&req.conversation_id, &req.client_message_id) {
            (Some(id), _) if is_valid_conversation_id(id) => (id.clone(), Origin::Named),
            (Some(_), _) => {
                return Err(ApiError::BadRequest("conversation_id is malformed".into()))
            }
            (None, Some(cmid)) => (
                derived_conversation_id(&who.tenant, &who.customer_id, cmid),
                Origin::Derived,
            ),
            (None, None) => (new_conversation_id(), Origin::Generated),
        };
        let key = ConversationKey {
            tenant: who.tenant.clone(),
            id: conversation_id,
        };

        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            // A freshly generated id cannot exist yet: its first attempt needs no read.
            let snapshot = if origin == Origin::Generated && attempt == 0 {
                None
            } else {
                self.store
                    .load(&key, self.settings.history_window)
                    .await
                    .map_err(store_error)?
            };
            let now = OffsetDateTime::now_utc();
            let (conversation, recent) = match snapshot {
                Some(s) if s.conversation.customer_id == who.customer_id => {
                    (s.conversation, s.recent)
                }
                // Someone else's conversation is indistinguishable from a missing one.
                Some(_) => return Err(not_found()),
                None if origin != Origin::Named => {
                    let mut c = Conversation::new(key.clone(), who.customer_id.clone(), now);
                    c.slots = self.remembered(who, &key, now).await;
                    (c, Vec::new())
                }
                None => return Err(not_found()),
            };

            if let Some(cmid) = &req.client_message_id {
                if recent
                    .iter()
                    .any(|m| m.client_message_id.as_deref() == Some(cmid))
                {
                    return self.replay(&key, cmid).await;
                }
            }

            let outcome = self
                .dialogue
                .respond(who, &conversation.state, &conversation.slots, text, now)
                .await;

            let now = OffsetDateTime::now_utc().max(conversation.updated_at);
            let mut seq = conversation.last_seq;
            let mut next = || {
                seq += 1;
                seq
            };
            let message = Message {
                seq: next(),
                role: Role::Customer,
                text: text.to_string(),
                created_at: now,
                client_message_id: req.client_message_id.clone(),
                reply_to: None,
            };
            let replies: Vec<Message> = outcome
                .replies
                .into_iter()
                .map(|text| Message {
                    seq: next(),
                    role: Role::Bot,
                    text,
                    created_at: now,
                    client_message_id: None,
                    reply_to: Some(message.seq),
                })
                .collect();
            let mut kinds = outcome.jobs;
            if outcome.deferred {
                kinds.push(JobKind::AnswerDeferred {
                    reply_to: message.seq,
                    text: text.to_string(),
                });
            }
            let jobs: Vec<Job> = kinds
                .into_iter()
                .map(|kind| Job::new(&key, &who.customer_id, kind))
                .collect();

            let expected_version = conversation.version;
            let updated = Conversation {
                state: outcome.state,
                slots: outcome.slots,
                version: expected_version + 1,
                last_seq: seq,
                updated_at: now,
                ..conversation
            };
            let mut messages = Vec::with_capacity(replies.len() + 1);
            messages.push(message.clone());
            messages.extend(replies.iter().cloned());
            let record = TurnRecord {
                message: message.clone(),
                replies: replies.clone(),
                jobs: jobs.clone(),
            };

            let commit = Commit {
                conversation: updated,
                expected_version,
                messages,
                turn: req.client_message_id.clone().map(|id| (id, record)),
                effect: None,
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    self.enqueue(&jobs).await?;
                    return Ok(TurnReply {
                        conversation_id: key.id.clone(),
                        message,
                        replies,
                    });
                }
                Err(StoreError::Conflict) => {
                    tracing::info!(attempt, conversation = %key.id, "lost a write race; reloading");
                    backoff(attempt).await;
                }
                Err(StoreError::DuplicateTurn) => {
                    let cmid = req.client_message_id.as_deref().unwrap_or_default();
                    return self.replay(&key, cmid).await;
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::Conflict(
            "the conversation is being updated by other requests; retry with the same client_message_id".into(),
        ))
    }

    /// What a new conversation starts knowing: the refunds the customer asked for in their
    /// latest conversation (if it was this month), and which of them to tell them about.
    /// Memory is a courtesy: a failed read starts the conversation blank rather than failing it.
    async fn remembered(
        &self,
        who: &Principal,
        key: &ConversationKey,
        now: OffsetDateTime,
    ) -> Slots {
        let previous = match self
            .store
            .conversations_of(&who.tenant, &who.customer_id, 2)
            .await
        {
            Ok(list) => list
                .into_iter()
                .find(|c| c.id != key.id && now - c.updated_at <= MEMORY_SPAN),
            Err(e) => {
                tracing::warn!(error = %e, "earlier conversations unreadable; starting blank");
                None
            }
        };
        let Some(previous) = previous else {
            return Slots::default();
        };
        let earlier = ConversationKey {
            tenant: who.tenant.clone(),
            id: previous.id,
        };
        match self.store.load(&earlier, 0).await {
            Ok(Some(snap)) if snap.conversation.customer_id == who.customer_id => {
                let old = snap.conversation.slots;
                let welcome_back = old
                    .refunds_requested
                    .iter()
                    .filter(|r| !old.refunds_reported.contains(r))
                    .cloned()
                    .collect();
                Slots {
                    refunds_requested: old.refunds_requested,
                    refunds_reported: old.refunds_reported,
                    welcome_back,
                    ..Slots::default()
                }
            }
            Ok(_) => Slots::default(),
            Err(e) => {
                tracing::warn!(error = %e, "earlier conversation unreadable; starting blank");
                Slots::default()
            }
        }
    }

    /// A retried message: answer as before and make sure its jobs reached the queue. Re-sending is
    /// safe: the FIFO queue deduplicates by job key, and effects are idempotent downstream.
    async fn replay(&self, key: &ConversationKey, cmid: &str) -> Result<TurnReply, ApiError> {
        let record = self
            .store
            .turn_record(key, cmid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::Internal(format!("turn record for {cmid} missing")))?;
        self.enqueue(&record.jobs).await?;
        Ok(TurnReply {
            conversation_id: key.id.clone(),
            message: record.message,
            replies: record.replies,
        })
    }

    async fn enqueue(&self, jobs: &[Job]) -> Result<(), ApiError> {
        if jobs.is_empty() {
            return Ok(());
        }
        self.jobs.send(jobs).await.map_err(|e| {
            tracing::error!(error = %e, "enqueue failed after the turn was stored");
            // The turn is stored; a retry with the same client_message_id re-sends the jobs.
            ApiError::Unavailable {
                detail: "your message was saved but a follow-up action could not be queued; retry with the same client_message_id".into(),
                retry_after_secs: 2,
            }
        })
    }

    pub async fn history(
        &self,
        who: &Principal,
        conversation_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ApiError> {
        if !is_valid_conversation_id(conversation_id) {
            return Err(not_found());
        }
        let key = ConversationKey {
            tenant: who.tenant.clone(),
            id: conversation_id.to_string(),
        };
        match self
            .store
            .history(&key, after, limit)
            .await
            .map_err(store_error)?
        {
            Some((c, messages)) if c.customer_id == who.customer_id => Ok(messages),
            _ => Err(not_found()),
        }
    }

    pub async fn conversations(
        &self,
        who: &Principal,
        limit: usize,
    ) -> Result<Vec<crate::conversation::ConversationSummary>, ApiError> {
        self.store
            .conversations_of(&who.tenant, &who.customer_id, limit)
            .await
            .map_err(store_error)
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound("no such conversation".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{ConnectorError, Order, OrdersPort};
    use crate::jobs::QueueError;
    use crate::store::memory::MemoryStore;
    use async_trait::async_trait;
    use std::sync::Mutex;

    struct LateOrder;
    #[async_trait]
    impl OrdersPort for LateOrder {
        async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
            Ok(vec![])
        }
        async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
            let now = OffsetDateTime::now_utc();
            Ok(Some(Order {
                id: id.into(),
                customer_id: "alice".into(),
                status: crate::connectors::OrderStatus::InTransit,
                placed_at: now - time::Duration::days(9),
                promised_by: Some(now - time::Duration::days(2)),
                delivered_at: None,
                carrier: None,
                tracking_url: None,
                total: crate::money::Money {
                    amount_cents: 500,
                    currency: "USD".into(),
                },
                items: vec![],
                payment_ref: None,
            }))
        }
    }

    /// Refuses its first `fail` sends, then records.
    #[derive(Default)]
    struct FlakyQueue {
        fail: Mutex<u32>,
        sent: Mutex<Vec<Job>>,
    }
    #[async_trait]
    impl JobQueue for FlakyQueue {
        async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(QueueError("SQS is down".into()));
            }
            self.sent.lock().unwrap().extend_from_slice(jobs);
            Ok(())
        }
    }

    struct DownStore;
    #[async_trait]
    impl ConversationStore for DownStore {
        async fn load(
            &self,
            _: &ConversationKey,
            _: usize,
        ) -> Result<Option<crate::store::Snapshot>, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn commit(&self, _: Commit) -> Result<(), StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn turn_record(
            &self,
            _: &ConversationKey,
            _: &str,
        ) -> Result<Option<TurnRecord>, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn history(
            &self,
            _: &ConversationKey,
            _: u64,
            _: usize,
        ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn conversations_of(
            &self,
            _: &str,
            _: &str,
            _: usize,
        ) -> Result<Vec<crate::conversation::ConversationSummary>, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn a_down_store_is_503_with_a_retry_hint() {
        let svc = TurnService::new(
            Arc::new(DownStore),
            Dialogue::new(Arc::new(NoOrders)),
            Arc::new(RecordingQueue::default()),
            ChatSettings::default(),
        );
        for err in [
            svc.post(&alice(), msg("hi", None, None)).await.unwrap_err(),
            svc.post(&alice(), msg("hi", None, Some("m")))
                .await
                .unwrap_err(),
            svc.history(&alice(), "01J00000000000000000000000", 0, 10)
                .await
                .unwrap_err(),
        ] {
            assert_eq!(err.status(), 503);
            assert!(err.retry_after().is_some());
        }
    }

    #[tokio::test]
    async fn a_failed_enqueue_is_503_and_the_retry_sends_the_job_without_a_second_turn() {
        let store = Arc::new(MemoryStore::new());
        let queue = Arc::new(FlakyQueue::default());
        let svc = TurnService::new(
            store.clone(),
            Dialogue::new(Arc::new(LateOrder)),
            queue.clone(),
            ChatSettings::default(),
        );
        let offer = svc
            .post(&alice(), msg("where is order 1002", None, None))
            .await
            .unwrap();
        let conv = offer.conversation_id.clone();
        *queue.fail.lock().unwrap() = 1;
        let err = svc
            .post(&alice(), msg("yes", Some(&conv), Some("yes-1")))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(queue.sent.lock().unwrap().is_empty());
        let retry = svc
            .post(&alice(), msg("yes", Some(&conv), Some("yes-1")))
            .await
            .unwrap();
        assert!(retry.replies[0].text.contains("requested a refund"));
        assert_eq!(queue.sent.lock().unwrap().len(), 1);
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv,
        };
        assert_eq!(
            store.message_count(&key),
            4,
            "the retry stored no second turn"
        );
    }

    struct NoOrders;
    #[async_trait]
    impl OrdersPort for NoOrders {
        async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
            Ok(vec![])
        }
        async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
            Ok(None)
        }
    }

    #[derive(Default)]
    struct RecordingQueue(Mutex<Vec<Job>>);
    #[async_trait]
    impl JobQueue for RecordingQueue {
        async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
            self.0.lock().unwrap().extend_from_slice(jobs);
            Ok(())
        }
    }

    fn service(store: Arc<MemoryStore>) -> TurnService {
        TurnService::new(
            store,
            Dialogue::new(Arc::new(NoOrders)),
            Arc::new(RecordingQueue::default()),
            ChatSettings::default(),
        )
    }

    fn alice() -> Principal {
        Principal::customer("t", "alice")
    }

    fn msg(text: &str, conv: Option<&str>, cmid: Option<&str>) -> PostMessage {
        PostMessage {
            conversation_id: conv.map(str::to_string),
            text: text.into(),
            client_message_id: cmid.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn a_retried_message_is_stored_once_with_the_same_reply() {
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let first = svc
            .post(&alice(), msg("hello", None, Some("m-1")))
            .await
            .unwrap();
        let again = svc
            .post(&alice(), msg("hello", None, Some("m-1")))
            .await
            .unwrap();
        assert_eq!(first, again);
        let key = ConversationKey {
            tenant: "t".into(),
            id: first.conversation_id.clone(),
        };
        assert_eq!(store.message_count(&key), 2);
    }

    #[tokio::test]
    async fn concurrent_turns_all_land_with_distinct_seqs() {
        let store = Arc::new(MemoryStore::new());
        let svc = Arc::new(service(store.clone()));
        let first = svc.post(&alice(), msg("hi", None, None)).await.unwrap();
        let conv = first.conversation_id.clone();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let svc = svc.clone();
                let conv = conv.clone();
                tokio::spawn(async move {
                    svc.post(&alice(), msg(&format!("hello {i}"), Some(&conv), None))
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let history = svc.history(&alice(), &conv, 0, 100).await.unwrap();
        assert_eq!(history.len(), 18);
        let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=18).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn other_customers_and_unknown_ids_get_404_and_nothing_is_written() {
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let first = svc.post(&alice(), msg("hi", None, None)).await.unwrap();
        let bob = Principal::customer("t", "bob");
        let err = svc
            .post(&bob, msg("hi", Some(&first.conversation_id), None))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
        assert_eq!(
            svc.history(&bob, &first.conversation_id, 0, 10)
                .await
                .unwrap_err()
                .status(),
            404
        );
        let key = ConversationKey {
            tenant: "t".into(),
            id: first.conversation_id.clone(),
        };
        assert_eq!(store.message_count(&key), 2);
        let err = svc
            .post(
                &alice(),
                msg("hi", Some("01J0000000000000000000NONE"), None),
            )
            .await
            .unwrap_err();
        assert_eq!(err.status(), 404);
    }

    #[tokio::test]
    async fn bad_text_is_rejected() {
        let svc = service(Arc::new(MemoryStore::new()));
        assert_eq!(
            svc.post(&alice(), msg("   ", None, None))
                .await
                .unwrap_err()
                .status(),
            400
        );
        let long = "x".repeat(2001);
        assert_eq!(
            svc.post(&alice(), msg(&long, None, None))
                .await
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(
            svc.post(&alice(), msg("hi", Some("a#b"), None))
                .await
                .unwrap_err()
                .status(),
            400
        );
    }
}
