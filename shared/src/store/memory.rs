//! An in-process store with the same conditional semantics as the DynamoDB adapter, for unit
//! tests of the domain. Never used by a deployed function.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Commit, ConversationStore, Snapshot, StoreError, TurnRecord};
use crate::conversation::{Conversation, ConversationKey, ConversationSummary, Message};

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
    effects: Mutex<HashSet<(String, String)>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
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
        let effect = c
            .effect
            .as_ref()
            .map(|e| (c.conversation.key.tenant.clone(), e.clone()));
        if effect.as_ref().is_some_and(|e| effects.contains(e)) {
            return Err(StoreError::DuplicateEffect);
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
        if let Some(effect) = effect {
            effects.insert(effect);
        }
        p.conversation = Some(c.conversation);
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
}
