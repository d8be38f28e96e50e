//! An in-process store with the same conditional semantics as the DynamoDB adapter, for unit
//! tests of the domain. Never used by a deployed function.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{
    Begin, Commit, ConversationStore, EffectLedger, EffectOutcome, EffectState, Erasure, Lease,
    Snapshot, StoreError, TurnRecord,
};
use crate::conversation::{Conversation, ConversationKey, ConversationSummary, Message};
use crate::jobs::Job;

#[derive(Default)]
struct Partition {
    conversation: Option<Conversation>,
    messages: BTreeMap<u64, Message>,
    turns: HashMap<String, TurnRecord>,
}

#[derive(Default)]
pub struct MemoryStore {
    partitions: Mutex<HashMap<ConversationKey, Partition>>,
    /// Effects are global, like their own partitions in DynamoDB: (tenant, key).
    effects: Mutex<HashMap<(String, String), Effect>>,
    /// Jobs committed to the outbox, in commit order (the relay's stream).
    outbox: Mutex<Vec<Job>>,
}

#[derive(Debug, Clone)]
struct Effect {
    finished: Option<EffectOutcome>,
    token: String,
    lease_until_ms: i64,
    attempts: u32,
    first_started: Option<time::OffsetDateTime>,
    set_aside: bool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
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
        let mut c = Conversation::new(key, customer.into(), time::OffsetDateTime::now_utc());
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
        let parts = self.partitions.lock().unwrap();
        Ok(parts.get(key).and_then(|p| {
            let conversation = p.conversation.clone()?;
            let mut recent: Vec<Message> =
                p.messages.values().rev().take(window).cloned().collect();
            recent.reverse();
            Some(Snapshot {
                conversation,
                recent,
            })
        }))
    }

    async fn commit(&self, c: Commit) -> Result<(), StoreError> {
        let mut parts = self.partitions.lock().unwrap();
        let p = parts.entry(c.conversation.key.clone()).or_default();
        let current = p.conversation.as_ref().map_or(0, |c| c.version);
        if current != c.expected_version {
            return Err(StoreError::Conflict);
        }
        if let Some((id, _)) = &c.turn {
            if p.turns.contains_key(id) {
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
        if c.messages.iter().any(|m| p.messages.contains_key(&m.seq)) {
            return Err(StoreError::Conflict);
        }
        for m in c.messages {
            p.messages.insert(m.seq, m);
        }
        if let Some((id, record)) = c.turn {
            p.turns.insert(id, record);
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
            .extend(super::distinct_jobs(&c.jobs).cloned());
        Ok(())
    }

    async fn turn_record(
        &self,
        key: &ConversationKey,
        client_message_id: &str,
    ) -> Result<Option<TurnRecord>, StoreError> {
        let parts = self.partitions.lock().unwrap();
        Ok(parts
            .get(key)
            .and_then(|p| p.turns.get(client_message_id).cloned()))
    }

    async fn history(
        &self,
        key: &ConversationKey,
        after: u64,
        limit: usize,
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
        let parts = self.partitions.lock().unwrap();
        Ok(parts.get(key).and_then(|p| {
            let conversation = p.conversation.clone()?;
            let messages = p
                .messages
                .range(after.saturating_add(1)..)
                .take(limit)
                .map(|(_, m)| m.clone())
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
        let parts = self.partitions.lock().unwrap();
        let mut found: Vec<ConversationSummary> = parts
            .values()
            .filter_map(|p| p.conversation.as_ref())
            .filter(|c| c.key.tenant == tenant && c.customer_id == customer_id)
            .map(|c| ConversationSummary {
                id: c.key.id.clone(),
                created_at: c.created_at,
                updated_at: c.updated_at,
                last_seq: c.last_seq,
            })
            .collect();
        found.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
        found.truncate(limit);
        Ok(found)
    }

    async fn erase_customer(&self, tenant: &str, customer_id: &str) -> Result<Erasure, StoreError> {
        let mut parts = self.partitions.lock().unwrap();
        let mut erased = Erasure::default();
        parts.retain(|_, p| {
            let theirs = p
                .conversation
                .as_ref()
                .is_some_and(|c| c.key.tenant == tenant && c.customer_id == customer_id);
            if theirs {
                erased.conversations_deleted += 1;
                erased.items_deleted += 1 + p.messages.len() + p.turns.len();
            }
            !theirs
        });
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
        let (attempts, first_started) = match effects.get(&id) {
            Some(e) if e.finished.is_some() => return Ok(Begin::Finished),
            Some(e) if e.lease_until_ms >= now_ms => return Ok(Begin::Busy),
            Some(e) => (e.attempts, e.first_started),
            None => (0, None),
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
            },
        );
        Ok(Begin::Started(Lease {
            token,
            attempt: attempts + 1,
            first_started,
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
