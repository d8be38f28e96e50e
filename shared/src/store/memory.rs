//! An in-process store with the same conditional semantics as the DynamoDB adapter, for unit
//! tests of the domain. Never used by a deployed function.
//!
//! With a retention ([`MemoryStore::with_retention`]) its items expire as the table's do (the
//! record at its last update plus the retention, a message at its creation plus it, whole
//! seconds) and, like DynamoDB's, stay stored until something deletes them: here nothing does.
//! Reads skip them, writes may replace them, erasure deletes them. Without one nothing expires.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::MAX_ERASED_PER_CALL;
use super::{
    Begin, Commit, ConversationStore, EffectLedger, EffectOutcome, EffectState, Erasure, Lease,
    Snapshot, StoreError, TurnRecord,
};
use crate::conversation::{Conversation, ConversationKey, ConversationSummary, Message};
use crate::handoff::{HandoffState, QueueEntry};
use crate::jobs::Job;
use time::OffsetDateTime;

#[derive(Default)]
struct Partition {
    conversation: Option<Conversation>,
    messages: BTreeMap<u64, Message>,
    /// Each with the time its commit was written at, which its expiry counts from.
    turns: HashMap<String, (TurnRecord, OffsetDateTime)>,
}

#[derive(Default)]
pub struct MemoryStore {
    partitions: Mutex<HashMap<ConversationKey, Partition>>,
    /// Effects are global, like their own partitions in DynamoDB: (tenant, key).
    effects: Mutex<HashMap<(String, String), Effect>>,
    /// Jobs committed to the outbox, in commit order (the relay's stream).
    outbox: Mutex<Vec<Job>>,
    retention: Option<Duration>,
    /// History reads of a conversation record, and of its messages (DynamoDB's GetItem and
    /// Query), for tests of what a read costs.
    record_reads: AtomicUsize,
    message_reads: AtomicUsize,
}

#[derive(Debug, Clone)]
struct Effect {
    finished: Option<EffectOutcome>,
    token: String,
    lease_until_ms: i64,
    attempts: u32,
    first_started: Option<time::OffsetDateTime>,
    set_aside: bool,
    receipt: Option<String>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose items expire `retention` after they were written, as `DynamoStore`'s do.
    pub fn with_retention(retention: Duration) -> Self {
        Self {
            retention: Some(retention),
            ..Self::default()
        }
    }

    /// Whether an item written at `at` has expired by `now`: the table's TTL rule
    /// (`expires_at < now`, with `expires_at` the write's whole seconds plus the retention).
    fn expired(&self, at: OffsetDateTime, now: OffsetDateTime) -> bool {
        self.retention
            .is_some_and(|r| at.unix_timestamp() + (r.as_secs() as i64) < now.unix_timestamp())
    }

    /// The partition's record, unless it expired.
    fn live<'p>(&self, p: &'p Partition, now: OffsetDateTime) -> Option<&'p Conversation> {
        p.conversation
            .as_ref()
            .filter(|c| !self.expired(c.updated_at, now))
    }

    /// How an effect ended, if it did.
    pub fn effect_outcome(&self, tenant: &str, key: &str) -> Option<EffectOutcome> {
        self.effects
            .lock()
            .unwrap()
            .get(&(tenant.to_string(), key.to_string()))
            .and_then(|e| e.finished)
    }

    /// Creates an empty conversation for `customer` (version 1), as a first turn would: for
    /// tests and benchmarks that start from an existing conversation.
    pub async fn seed_conversation(&self, key: ConversationKey, customer: &str) {
        self.seed_conversation_at(
            key,
            customer,
            crate::conversation::DialogueState::Idle,
            time::OffsetDateTime::now_utc(),
        )
        .await
    }

    /// The same, started at `at` and standing at `state` (as a vendor's event leaves one).
    pub async fn seed_conversation_at(
        &self,
        key: ConversationKey,
        customer: &str,
        state: crate::conversation::DialogueState,
        at: time::OffsetDateTime,
    ) {
        let mut c = Conversation::new(key, customer.into(), at);
        c.state = state;
        c.version = 1;
        self.commit(super::Commit {
            conversation: c,
            expected_version: 0,
            messages: vec![],
            turn: None,
            effect: None,
            jobs: vec![],
        })
        .await
        .expect("an empty store accepts a new conversation");
    }

    /// Takes the jobs committed since the last call, as the relay would send them.
    pub fn take_outbox(&self) -> Vec<Job> {
        std::mem::take(&mut *self.outbox.lock().unwrap())
    }

    /// (record reads, message reads) of history so far.
    pub fn history_reads(&self) -> (usize, usize) {
        (
            self.record_reads.load(Ordering::SeqCst),
            self.message_reads.load(Ordering::SeqCst),
        )
    }

    pub fn message_count(&self, key: &ConversationKey) -> usize {
        self.partitions
            .lock()
            .unwrap()
            .get(key)
            .map_or(0, |p| p.messages.len())
    }
}

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn load(
        &self,
        key: &ConversationKey,
        window: usize,
    ) -> Result<Option<Snapshot>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let parts = self.partitions.lock().unwrap();
        Ok(parts.get(key).and_then(|p| {
            let conversation = self.live(p, now)?.clone();
            let mut recent: Vec<Message> = p
                .messages
                .values()
                .rev()
                .filter(|m| !self.expired(m.created_at, now))
                .take(window)
                .cloned()
                .collect();
            recent.reverse();
            Some(Snapshot {
                conversation,
                recent,
            })
        }))
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut parts = self.partitions.lock().unwrap();
        let p = parts.entry(c.conversation.key.clone()).or_default();
        // As the table's conditions: a new record may replace an expired one, an update needs
        // the version it read; a message or turn record may replace an expired one.
        let expected = match (&p.conversation, c.expected_version) {
            (None, 0) => true,
            (Some(old), 0) => self.expired(old.updated_at, now),
            (Some(old), v) => old.version == v,
            (None, _) => false,
        };
        if !expected {
            return Err(StoreError::Conflict);
        }
        if let Some((id, _)) = &c.turn {
            if p.turns
                .get(id)
                .is_some_and(|(_, at)| !self.expired(*at, now))
            {
                return Err(StoreError::DuplicateTurn);
            }
        }
        let mut effects = self.effects.lock().unwrap();
        if let Some(done) = &c.effect {
            let id = (c.conversation.key.tenant.clone(), done.key.clone());
            let ours = effects
                .get(&id)
                .is_some_and(|e| e.finished.is_none() && e.token == done.token);
            if !ours {
                return Err(StoreError::DuplicateEffect);
            }
        }
        let taken = |m: &Message| {
            p.messages
                .get(&m.seq)
                .is_some_and(|old| !self.expired(old.created_at, now))
        };
        if c.messages.iter().any(taken) {
            return Err(StoreError::Conflict);
        }
        let outbox = c.outbox();
        for m in c.messages {
            p.messages.insert(m.seq, m);
        }
        if let Some((id, record)) = c.turn {
            p.turns.insert(id, (record, c.conversation.updated_at));
        }
        if let Some(done) = &c.effect {
            let id = (c.conversation.key.tenant.clone(), done.key.clone());
            if let Some(e) = effects.get_mut(&id) {
                e.finished = Some(done.outcome);
            }
        }
        p.conversation = Some(c.conversation);
        self.outbox
            .lock()
            .unwrap()
            .extend(super::distinct_jobs(&outbox).cloned());
        Ok(())
    }

    async fn turn_record(
        &self,
        key: &ConversationKey,
        client_message_id: &str,
    ) -> Result<Option<TurnRecord>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let parts = self.partitions.lock().unwrap();
        Ok(parts
            .get(key)
            .and_then(|p| p.turns.get(client_message_id))
            .filter(|(_, at)| !self.expired(*at, now))
            .map(|(record, _)| record.clone()))
    }

    async fn history_if(
        &self,
        key: &ConversationKey,
        after: u64,
        limit: usize,
        may_read: &(dyn for<'c> Fn(&'c Conversation) -> bool + Send + Sync),
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let parts = self.partitions.lock().unwrap();
        self.record_reads.fetch_add(1, Ordering::SeqCst);
        Ok(parts.get(key).and_then(|p| {
            let conversation = self.live(p, now)?.clone();
            if !may_read(&conversation) {
                return None;
            }
            self.message_reads.fetch_add(1, Ordering::SeqCst);
            let messages = p
                .messages
                .range(after.saturating_add(1)..)
                .map(|(_, m)| m)
                .filter(|m| !self.expired(m.created_at, now))
                .take(limit)
                .cloned()
                .collect();
            Some((conversation, messages))
        }))
    }

    async fn conversations_of(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let parts = self.partitions.lock().unwrap();
        let mut found: Vec<ConversationSummary> = parts
            .values()
            .filter_map(|p| self.live(p, now))
            .filter(|c| c.key.tenant == tenant && c.customer_id == customer_id)
            .map(|c| ConversationSummary {
                id: c.key.id.clone(),
                created_at: c.created_at,
                updated_at: c.updated_at,
                last_seq: c.last_seq,
                // As the DynamoDB adapter: the customer index does not project it.
                handoff: None,
            })
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
        found.truncate(limit);
        Ok(found)
    }

    async fn handoffs(
        &self,
        tenant: &str,
        state: HandoffState,
        limit: usize,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        // As the index: live records in the state, by (since, id), the index's sort key.
        let now = OffsetDateTime::now_utc();
        let parts = self.partitions.lock().unwrap();
        let mut found: Vec<(String, QueueEntry)> = parts
            .values()
            .filter_map(|p| self.live(p, now))
            .filter(|c| c.key.tenant == tenant && c.handoff.state() == state)
            .filter_map(|c| {
                let (_, sort) = c.handoff.queue_key(&c.key.tenant, &c.key.id)?;
                Some((
                    sort,
                    QueueEntry {
                        conversation_id: c.key.id.clone(),
                        customer_id: c.customer_id.clone(),
                        handoff: c.handoff.clone(),
                        language: c.slots.language.clone(),
                    },
                ))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().take(limit).map(|(_, e)| e).collect())
    }

    async fn erase_customer(&self, tenant: &str, customer_id: &str) -> Result<Erasure, StoreError> {
        // As the DynamoDB adapter: every conversation whose record is stored, expired or not,
        // most recently updated first, at most `MAX_ERASED_PER_CALL` a call.
        let mut parts = self.partitions.lock().unwrap();
        let mut theirs: Vec<(OffsetDateTime, ConversationKey)> = parts
            .iter()
            .filter_map(|(key, p)| p.conversation.as_ref().map(|c| (key, c)))
            .filter(|(_, c)| c.key.tenant == tenant && c.customer_id == customer_id)
            .map(|(key, c)| (c.updated_at, key.clone()))
            .collect();
        theirs.sort_by_key(|(updated_at, _)| std::cmp::Reverse(*updated_at));
        let mut erased = Erasure {
            complete: theirs.len() <= MAX_ERASED_PER_CALL,
            ..Erasure::default()
        };
        for (_, key) in theirs.into_iter().take(MAX_ERASED_PER_CALL) {
            if let Some(p) = parts.remove(&key) {
                erased.conversations_deleted += 1;
                erased.items_deleted += 1 + p.messages.len() + p.turns.len();
            }
        }
        Ok(erased)
    }
}

#[async_trait]
impl EffectLedger for MemoryStore {
    async fn begin(
        &self,
        tenant: &str,
        key: &str,
        lease: std::time::Duration,
        now: time::OffsetDateTime,
    ) -> Result<Begin, StoreError> {
        let now_ms = crate::clock::unix_ms(now);
        let mut effects = self.effects.lock().unwrap();
        let id = (tenant.to_string(), key.to_string());
        let (attempts, first_started, receipt) = match effects.get(&id) {
            Some(e) if e.finished.is_some() => return Ok(Begin::Finished),
            Some(e) if e.lease_until_ms >= now_ms => return Ok(Begin::Busy),
            Some(e) => (e.attempts, e.first_started, e.receipt.clone()),
            None => (0, None, None),
        };
        let token = ulid::Ulid::new().to_string();
        let first_started = first_started.unwrap_or(now);
        effects.insert(
            id,
            Effect {
                finished: None,
                token: token.clone(),
                lease_until_ms: now_ms + lease.as_millis() as i64,
                attempts: attempts + 1,
                first_started: Some(first_started),
                set_aside: false,
                receipt: receipt.clone(),
            },
        );
        Ok(Begin::Started(Lease {
            token,
            attempt: attempts + 1,
            first_started,
            receipt,
        }))
    }

    async fn complete(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        outcome: EffectOutcome,
        jobs: &[Job],
    ) -> Result<(), StoreError> {
        let mut effects = self.effects.lock().unwrap();
        match effects.get_mut(&(tenant.to_string(), key.to_string())) {
            Some(e) if e.token == token && e.finished.is_none() => {
                e.finished = Some(outcome);
                self.outbox
                    .lock()
                    .unwrap()
                    .extend(super::distinct_jobs(jobs).cloned());
                Ok(())
            }
            _ => Err(StoreError::DuplicateEffect),
        }
    }

    async fn record_receipt(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        receipt: &str,
    ) -> Result<(), StoreError> {
        let mut effects = self.effects.lock().unwrap();
        match effects.get_mut(&(tenant.to_string(), key.to_string())) {
            Some(e) if e.token == token && e.finished.is_none() => {
                e.receipt = Some(receipt.to_string());
                Ok(())
            }
            _ => Err(StoreError::DuplicateEffect),
        }
    }

    async fn set_aside(&self, tenant: &str, key: &str, token: &str) -> Result<(), StoreError> {
        let mut effects = self.effects.lock().unwrap();
        if let Some(e) = effects.get_mut(&(tenant.to_string(), key.to_string())) {
            if e.token == token && e.finished.is_none() {
                e.lease_until_ms = 0;
                e.attempts = 0;
                e.first_started = None;
                e.set_aside = true;
            }
        }
        Ok(())
    }

    async fn state(&self, tenant: &str, key: &str) -> Result<Option<EffectState>, StoreError> {
        let effects = self.effects.lock().unwrap();
        Ok(effects
            .get(&(tenant.to_string(), key.to_string()))
            .map(|e| match e.finished {
                Some(outcome) => EffectState::Finished(outcome),
                None if e.set_aside => EffectState::SetAside,
                None => EffectState::InProgress,
            }))
    }

    async fn abandon(&self, tenant: &str, key: &str, token: &str) -> Result<(), StoreError> {
        let mut effects = self.effects.lock().unwrap();
        if let Some(e) = effects.get_mut(&(tenant.to_string(), key.to_string())) {
            if e.token == token && e.finished.is_none() {
                e.lease_until_ms = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Role;

    const DAY: Duration = Duration::from_secs(86_400);

    fn key(id: &str) -> ConversationKey {
        ConversationKey {
            tenant: "t".into(),
            id: id.into(),
        }
    }

    fn message(seq: u64, at: OffsetDateTime) -> Message {
        Message::new(seq, Role::Customer, format!("message {seq}"), at)
    }

    /// Writes messages `seqs` at `at` to conversation `id` of `customer`, as one commit that
    /// updates the record at `at`.
    async fn write(
        store: &MemoryStore,
        id: &str,
        customer: &str,
        seqs: std::ops::RangeInclusive<u64>,
        at: OffsetDateTime,
    ) {
        let previous = store
            .partitions
            .lock()
            .unwrap()
            .get(&key(id))
            .and_then(|p| {
                p.conversation
                    .clone()
                    .filter(|c| !store.expired(c.updated_at, OffsetDateTime::now_utc()))
            });
        let expected_version = previous.as_ref().map_or(0, |c| c.version);
        let mut c = previous.unwrap_or_else(|| Conversation::new(key(id), customer.into(), at));
        c.version = expected_version + 1;
        c.last_seq = *seqs.end();
        c.updated_at = at;
        store
            .commit(Commit {
                conversation: c,
                expected_version,
                messages: seqs.map(|s| message(s, at)).collect(),
                turn: None,
                effect: None,
                jobs: vec![],
            })
            .await
            .unwrap();
    }

    fn seqs(messages: &[Message]) -> Vec<u64> {
        messages.iter().map(|m| m.seq).collect()
    }

    #[tokio::test]
    async fn history_pages_hold_live_messages_past_expired_ones() {
        let store = MemoryStore::with_retention(DAY);
        let now = OffsetDateTime::now_utc();
        // Messages 1-30 expired (TTL has not deleted them); 31-35 live, as is the record.
        write(&store, "c", "alice", 1..=30, now - 2 * DAY).await;
        write(&store, "c", "alice", 31..=35, now).await;

        let (_, page) = store.history(&key("c"), 0, 3).await.unwrap().unwrap();
        assert_eq!(seqs(&page), [31, 32, 33]);
        let (_, page) = store.history(&key("c"), 33, 3).await.unwrap().unwrap();
        assert_eq!(seqs(&page), [34, 35]);
        let (_, page) = store.history(&key("c"), 35, 3).await.unwrap().unwrap();
        assert!(page.is_empty());

        let snapshot = store.load(&key("c"), 10).await.unwrap().unwrap();
        assert_eq!(seqs(&snapshot.recent), [31, 32, 33, 34, 35]);
    }

    #[tokio::test]
    async fn an_expired_record_is_no_conversation_and_a_new_one_may_replace_it() {
        let store = MemoryStore::with_retention(DAY);
        let now = OffsetDateTime::now_utc();
        write(&store, "c", "alice", 1..=2, now - 2 * DAY).await;
        assert!(store.load(&key("c"), 10).await.unwrap().is_none());
        assert!(store.history(&key("c"), 0, 10).await.unwrap().is_none());
        assert!(store
            .conversations_of("t", "alice", 10)
            .await
            .unwrap()
            .is_empty());
        // A first turn again: version 0 over the expired record and messages.
        write(&store, "c", "alice", 1..=1, now).await;
        let (c, page) = store.history(&key("c"), 0, 10).await.unwrap().unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(seqs(&page), [1]);
        assert_eq!(page[0].created_at, now);
    }

    #[tokio::test]
    async fn erasure_finds_expired_conversations_too_and_is_bounded_per_call() {
        let store = MemoryStore::with_retention(DAY);
        let now = OffsetDateTime::now_utc();
        // More than one call erases, the older ones expired; and someone else's.
        let total = MAX_ERASED_PER_CALL + 3;
        for i in 0..total {
            let at = if i < 5 { now - 2 * DAY } else { now };
            write(&store, &format!("a{i:02}"), "alice", 1..=2, at).await;
        }
        write(&store, "b", "bob", 1..=1, now - 2 * DAY).await;
        assert_eq!(
            store
                .conversations_of("t", "alice", 100)
                .await
                .unwrap()
                .len(),
            total - 5
        );

        let first = store.erase_customer("t", "alice").await.unwrap();
        assert_eq!(first.conversations_deleted, MAX_ERASED_PER_CALL);
        assert_eq!(first.items_deleted, 3 * MAX_ERASED_PER_CALL);
        assert!(!first.complete);
        let second = store.erase_customer("t", "alice").await.unwrap();
        assert_eq!(second.conversations_deleted, 3);
        assert!(second.complete);
        assert_eq!(
            store.erase_customer("t", "alice").await.unwrap(),
            Erasure::default()
        );
        for i in 0..total {
            assert_eq!(store.message_count(&key(&format!("a{i:02}"))), 0);
        }
        assert_eq!(store.message_count(&key("b")), 1, "bob's stays");
    }

    #[tokio::test]
    async fn without_a_retention_nothing_expires() {
        let store = MemoryStore::new();
        let long_ago = OffsetDateTime::now_utc() - 3650 * DAY;
        write(&store, "c", "alice", 1..=2, long_ago).await;
        let (_, page) = store.history(&key("c"), 0, 10).await.unwrap().unwrap();
        assert_eq!(seqs(&page), [1, 2]);
    }
}
