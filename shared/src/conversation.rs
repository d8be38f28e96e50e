//! Conversations, messages and dialogue state: what conversation memory holds.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Bot,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Bot => "bot",
            Role::Agent => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Role::Customer),
            "bot" => Some(Role::Bot),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// One message; `seq` orders a conversation and is the `after=` cursor of the history endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub seq: u64,
    pub role: Role,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The idempotency key the client sent with a customer message.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_message_id: Option<String>,
    /// For bot messages: the customer message they answer, if any (async ones answer none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reply_to: Option<u64>,
    /// Answers the bot offers with this message ("which order?", yes/no): kept with it, so a
    /// history shows them; only the latest message's are still answerable. The text says the
    /// same in words, for channels without buttons.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub quick_replies: Vec<QuickReply>,
    /// The web addresses the text holds, for clients that make them clickable without reading
    /// the text as markup.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub links: Vec<Link>,
    /// For agent messages: the agent who wrote it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent_id: Option<String>,
    /// For the agents only: never shown to the customer (an answer that finished while an
    /// agent held the conversation).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub internal: bool,
}

/// A button under a bot message: the customer sees `label`; pressing it sends `label` as the
/// message's text and `value` as its `quick_reply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickReply {
    pub label: String,
    pub value: String,
}

/// A web address in a message's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub url: String,
}

impl Message {
    /// A message with nothing but its text: no buttons, links, author or id.
    pub fn new(seq: u64, role: Role, text: impl Into<String>, created_at: OffsetDateTime) -> Self {
        Self {
            seq,
            role,
            text: text.into(),
            created_at,
            client_message_id: None,
            reply_to: None,
            quick_replies: Vec::new(),
            links: Vec::new(),
            agent_id: None,
            internal: false,
        }
    }

    /// The bot's messages saying `texts` from `first_seq` on, the last offering `offered`;
    /// each with the web addresses its text holds.
    pub fn from_bot(
        first_seq: u64,
        texts: impl IntoIterator<Item = String>,
        mut offered: Vec<QuickReply>,
        reply_to: Option<u64>,
        now: OffsetDateTime,
    ) -> Vec<Message> {
        let mut said: Vec<Message> = texts
            .into_iter()
            .zip(first_seq..)
            .map(|(text, seq)| Message {
                links: crate::links::links_in(&text),
                reply_to,
                ..Message::new(seq, Role::Bot, text, now)
            })
            .collect();
        if let Some(last) = said.last_mut() {
            last.quick_replies = std::mem::take(&mut offered);
        }
        said
    }
}

/// Identifies a conversation within a tenant; both parts are validated ids.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationKey {
    pub tenant: String,
    pub id: String,
}

/// Where the dialogue is: what the bot's last message asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DialogueState {
    #[default]
    Idle,
    /// The bot was unsure and asked which of these intents was meant; the message's order
    /// numbers wait with them.
    Clarifying {
        options: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        order_refs: Vec<String>,
    },
    /// The bot could not do what was asked (a system stayed down) and offered a person;
    /// `reason` goes to the team with the handoff.
    HandoffOffered { reason: String },
    /// A flow of the bundle waits for the customer (the flow engine's state).
    Flow(crate::flow::engine::FlowState),
    /// A question of an earlier version (`awaiting_order_choice`, `refund_offered`,
    /// `payment_help_offered`…, before the flows were the bundle's): read as nothing pending,
    /// so a conversation stored then still loads; the customer is asked again.
    #[serde(other)]
    Retired,
}

/// Facts the dialogue carries between turns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Slots {
    /// The order the conversation is about, for "and is it late?" follow-ups.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub order_id: Option<String>,
    /// Orders a refund was requested for in this conversation.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub refunds_requested: Vec<String>,
    /// The customer asked for a person; an agent should pick the conversation up.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub handoff_requested: bool,
    /// The agent who took the conversation over: while set, the bot stays silent and the
    /// customer's messages wait for the agent.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub agent: Option<String>,
    /// The orders listed last ("which one?"), for "and the other one?".
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub candidates: Vec<String>,
    /// What the customer last asked about an order (an intent name), so "and the other one?"
    /// asks the same about the next.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub topic: Option<String>,
    /// Refunds the customer has been told were issued.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub refunds_reported: Vec<String>,
    /// Refunds from earlier conversations to tell a returning customer about on their first turn.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub welcome_back: Vec<String>,
    /// The bundle language the conversation is held in (`language::choose`): what the bot, the
    /// jobs it starts and the agents' notes to the customer say things in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub language: Option<String>,
    /// Customer messages whose answer a job is still working out ("let me check"): while one
    /// is, clients show the bot as typing. The job that answers takes its own off.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub answering: Vec<Answering>,
}

/// A customer message a deferred answer is on its way for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answering {
    pub reply_to: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}

/// How long a deferred answer shows the bot as typing at most: the default policy's hour of
/// retries, and a margin. A job that ended without writing (set aside on the dead-letter queue)
/// must not leave it typing for ever.
const ANSWERING_AT_MOST: time::Duration = time::Duration::minutes(65);

impl Slots {
    /// Whether an answer is on its way at `now` (the chat API's `working`).
    pub fn is_answering(&self, now: OffsetDateTime) -> bool {
        self.answering
            .iter()
            .any(|a| now - a.since < ANSWERING_AT_MOST)
    }
}

impl Slots {
    /// A three-way merge for an answer computed from `base` while others wrote: each slot the
    /// answer (`theirs`) changed is taken, unless someone else changed it since `base` too, in
    /// which case theirs (newer) stays. Slots nobody else touched follow the answer.
    pub fn merge_changes(&mut self, base: &Slots, theirs: &Slots) {
        let as_map = |s: &Slots| match serde_json::to_value(s) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let (base, theirs) = (as_map(base), as_map(theirs));
        let mut mine = as_map(self);
        let keys: std::collections::BTreeSet<&String> = base.keys().chain(theirs.keys()).collect();
        for k in keys {
            let (b, t) = (base.get(k), theirs.get(k));
            if t != b && mine.get(k) == b {
                match t {
                    Some(v) => mine.insert(k.clone(), v.clone()),
                    None => mine.remove(k),
                };
            }
        }
        if let Ok(merged) = serde_json::from_value(serde_json::Value::Object(mine)) {
            *self = merged;
        }
    }
}

/// The conversation record: one item, updated by every write with a version check.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub key: ConversationKey,
    pub customer_id: String,
    pub state: DialogueState,
    pub slots: Slots,
    /// Who answers the customer: the bot, the team's queue, an agent (`handoff`). The slots'
    /// `agent` and `handoff_requested` follow it ([`crate::handoff::Handoff::sync_slots`]).
    pub handoff: crate::handoff::Handoff,
    /// The messaging channel the conversation is held in (WhatsApp, SMS, Telegram), if any:
    /// every message the customer may see is also sent there.
    pub channel: Option<crate::channels::party::ChannelParty>,
    /// Bumped by every write; a write names the version it read.
    pub version: u64,
    pub last_seq: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Conversation {
    pub fn new(key: ConversationKey, customer_id: String, now: OffsetDateTime) -> Self {
        Self {
            key,
            customer_id,
            state: DialogueState::Idle,
            slots: Slots::default(),
            handoff: crate::handoff::Handoff::Bot,
            channel: None,
            version: 0,
            last_seq: 0,
            created_at: now,
            updated_at: now,
        }
    }
}

/// A change to a conversation record, applied to the record as read at each attempt of a write.
pub type RecordUpdate<'a> = Box<dyn Fn(&mut Conversation) + Send + Sync + 'a>;

/// A conversation as a caller lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConversationSummary {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub last_seq: u64,
    /// Where the handoff stands: in the answers to an agent's takeover, release and resolve;
    /// absent from lists read off the `ByCustomer` index, which does not project it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<crate::handoff::HandoffState>,
}

/// Conversation ids are generated here (ULIDs) or derived; any id a client sends is checked against
/// this shape before it reaches a key.
pub fn is_valid_conversation_id(id: &str) -> bool {
    (8..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn new_conversation_id() -> String {
    ulid::Ulid::new().to_string()
}

/// A conversation id that a retried first message maps to again, so a POST without
/// `conversation_id` but with `client_message_id` is idempotent too.
pub fn derived_conversation_id(tenant: &str, customer_id: &str, client_message_id: &str) -> String {
    hashed_id(&[tenant, customer_id, client_message_id])
}

/// An id with the shape of generated ones, derived from `parts`: a SHA-256 over the parts,
/// each length-prefixed (so no two lists of parts collide), its first 16 bytes as a ULID's 26
/// characters.
pub fn hashed_id(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let bits = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    ulid::Ulid(bits).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_merges_the_slots_it_changed_and_keeps_everyone_elses() {
        let base = Slots {
            order_id: Some("1".into()),
            topic: Some("order_status".into()),
            ..Slots::default()
        };
        // The answer moved to order 2 and asked about a refund; meanwhile a refund job reported
        // order 9 and the customer asked about order 3.
        let theirs = Slots {
            order_id: Some("2".into()),
            candidates: vec!["2".into(), "4".into()],
            topic: None,
            ..base.clone()
        };
        let mut mine = Slots {
            refunds_reported: vec!["9".into()],
            order_id: Some("3".into()),
            ..base.clone()
        };
        mine.merge_changes(&base, &theirs);
        assert_eq!(
            mine.order_id.as_deref(),
            Some("3"),
            "changed by both: newer stays"
        );
        assert_eq!(mine.candidates, ["2", "4"], "changed by the answer only");
        assert_eq!(mine.topic, None, "cleared by the answer");
        assert_eq!(mine.refunds_reported, ["9"], "changed by the others only");
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = derived_conversation_id("t", "c", "m1");
        assert_eq!(a, derived_conversation_id("t", "c", "m1"));
        assert_ne!(a, derived_conversation_id("t", "c", "m2"));
        // Length-prefixing keeps ("ab","c") apart from ("a","bc").
        assert_ne!(
            derived_conversation_id("t", "ab", "c"),
            derived_conversation_id("t", "a", "bc")
        );
        assert!(is_valid_conversation_id(&a));
    }

    #[test]
    fn conversation_ids_reject_key_separators() {
        assert!(!is_valid_conversation_id("abc#defgh"));
        assert!(!is_valid_conversation_id("short"));
        assert!(is_valid_conversation_id(&new_conversation_id()));
    }

    #[test]
    fn state_round_trips_as_tagged_json() {
        let s = DialogueState::Clarifying {
            options: vec!["order_status".into(), "cancel_order".into()],
            order_refs: vec!["1002".into()],
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"kind\":\"clarifying\""), "{json}");
        assert_eq!(serde_json::from_str::<DialogueState>(&json).unwrap(), s);
    }

    #[test]
    fn a_question_stored_by_an_earlier_version_still_loads() {
        let old = r#"{"kind":"refund_offered","order_id":"1002","amount":{"amount_cents":100,"currency":"USD"}}"#;
        assert_eq!(
            serde_json::from_str::<DialogueState>(old).unwrap(),
            DialogueState::Retired
        );
    }
}
