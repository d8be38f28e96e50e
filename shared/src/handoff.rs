//! Who answers the customer: the handoff state machine, without storage or HTTP.
//!
//! ```text
//!   bot ──(a turn or job hands off)──▶ waiting ──(take over)──▶ with_agent ──(resolve)──▶ resolved
//!    ▲                                  │  │                      │                        │
//!    ├───────────(release)──────────────┘  └──────(resolve)───────┼───────────▶ resolved    │
//!    ├───────────(release)────────────────────────────────────────┘                        │
//!    └───────────(the customer writes again)──────────────────────────────────────────────┘
//! ```
//! Take over also applies to `bot` (an agent steps in unasked) and `resolved` (picked up
//! again). While `with_agent` the bot never speaks to the customer; while `waiting` it still
//! answers. The conversation record keeps the state as its own field; the slots the dialogue
//! reads (`agent`, `handoff_requested`) are derived from it ([`Handoff::sync_slots`]), so the
//! two never disagree.
//!
//! A transition that does not apply is refused ([`Refusal`], a 409 at the API) and changes
//! nothing; repeating one that already holds (taking over what you hold, releasing what the bot
//! has, resolving what is resolved) is `Ok(None)`: nothing to write, nothing to tell.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::conversation::Slots;
use crate::jobs::JobKind;

/// The reason recorded when an agent steps into a conversation nobody handed off.
pub const TAKEN_UNASKED: &str = "agent_initiated";
/// The reason a record stored before the handoff state existed is read with.
const LEGACY_REASON: &str = "human_agent";

/// Where a conversation stands between the bot and the team.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Handoff {
    /// The bot answers.
    #[default]
    Bot,
    /// Handed to the team, in its queue; the bot still answers meanwhile.
    Waiting {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<String>,
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
    /// An agent holds it: the bot is silent, the customer's messages wait for the agent.
    WithAgent {
        agent_id: String,
        /// When it started waiting (or, taken unasked, the takeover): the queue's order.
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        taken_at: OffsetDateTime,
        /// Why it was handed off, kept for the queue and the console.
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<String>,
    },
    /// An agent closed it; the customer's next message goes to the bot.
    Resolved {
        by: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

/// The state's name alone: what the API shows and the queue is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffState {
    Bot,
    Waiting,
    WithAgent,
    Resolved,
}

impl HandoffState {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffState::Bot => "bot",
            HandoffState::Waiting => "waiting",
            HandoffState::WithAgent => "with_agent",
            HandoffState::Resolved => "resolved",
        }
    }

    /// The states a queue lists (the others are not in the index).
    pub fn parse_queue(s: &str) -> Option<Self> {
        match s {
            "waiting" => Some(HandoffState::Waiting),
            "with_agent" => Some(HandoffState::WithAgent),
            _ => None,
        }
    }

    /// Whether conversations in this state are in the queue index.
    pub fn is_queued(self) -> bool {
        matches!(self, HandoffState::Waiting | HandoffState::WithAgent)
    }
}

/// A transition that does not apply from where the conversation stands; `0` says why, for
/// the agent (a 409's detail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What a state change tells the customer (a key of the bundle's messages).
pub const TAKEN_OVER: &str = "agent.taken_over";
pub const RELEASED: &str = "agent.released";
pub const RESOLVED: &str = "agent.resolved";

impl Handoff {
    pub fn state(&self) -> HandoffState {
        match self {
            Handoff::Bot => HandoffState::Bot,
            Handoff::Waiting { .. } => HandoffState::Waiting,
            Handoff::WithAgent { .. } => HandoffState::WithAgent,
            Handoff::Resolved { .. } => HandoffState::Resolved,
        }
    }

    /// The agent holding the conversation, if one does.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Handoff::WithAgent { agent_id, .. } => Some(agent_id),
            _ => None,
        }
    }

    /// Whether the bot stays silent to the customer.
    pub fn is_with_agent(&self) -> bool {
        matches!(self, Handoff::WithAgent { .. })
    }

    /// A record stored before the state had a field of its own: the slots said it.
    pub fn from_legacy(slots: &Slots, updated_at: OffsetDateTime) -> Self {
        match (&slots.agent, slots.handoff_requested) {
            (Some(agent), _) => Handoff::WithAgent {
                agent_id: agent.clone(),
                since: updated_at,
                taken_at: updated_at,
                reason: LEGACY_REASON.into(),
                order_id: None,
            },
            (None, true) => Handoff::Waiting {
                reason: LEGACY_REASON.into(),
                order_id: slots.order_id.clone(),
                since: updated_at,
            },
            (None, false) => Handoff::Bot,
        }
    }

    /// Sets the slots the dialogue reads from the state: `agent` while an agent holds the
    /// conversation, `handoff_requested` while it waits ("thanks" is then about the wait, and a
    /// second "a person please" starts no second handoff). Back with the bot both are clear, so
    /// the customer can ask for a person again.
    pub fn sync_slots(&self, slots: &mut Slots) {
        slots.agent = self.agent().map(str::to_string);
        slots.handoff_requested = matches!(self, Handoff::Waiting { .. });
    }

    /// A turn or job that hands the conversation off (`reason`, `order_id`): into the queue
    /// from `bot` or `resolved`. Already queued or held, it stays as it is (`None`).
    pub fn requested(
        &self,
        reason: &str,
        order_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Option<Handoff> {
        match self {
            Handoff::Bot | Handoff::Resolved { .. } => Some(Handoff::Waiting {
                reason: reason.to_string(),
                order_id: order_id.map(str::to_string),
                since: now,
            }),
            Handoff::Waiting { .. } | Handoff::WithAgent { .. } => None,
        }
    }

    /// The first handoff among a commit's jobs, applied ([`Handoff::requested`]).
    pub fn after_jobs<'j>(
        &self,
        jobs: impl IntoIterator<Item = &'j JobKind>,
        now: OffsetDateTime,
    ) -> Option<Handoff> {
        jobs.into_iter().find_map(|k| match k {
            JobKind::AgentHandoff { reason, order_id } => {
                self.requested(reason, order_id.as_deref(), now)
            }
            _ => None,
        })
    }

    /// The customer wrote: a resolved conversation is the bot's again.
    pub fn customer_wrote(&self) -> Option<Handoff> {
        match self {
            Handoff::Resolved { .. } => Some(Handoff::Bot),
            _ => None,
        }
    }

    /// `agent` takes the conversation over.
    pub fn take_over(&self, agent: &str, now: OffsetDateTime) -> Result<Option<Handoff>, Refusal> {
        let held = |reason: &str, order_id: Option<&String>, since| Handoff::WithAgent {
            agent_id: agent.to_string(),
            since,
            taken_at: now,
            reason: reason.to_string(),
            order_id: order_id.cloned(),
        };
        match self {
            Handoff::Bot | Handoff::Resolved { .. } => Ok(Some(held(TAKEN_UNASKED, None, now))),
            Handoff::Waiting {
                reason,
                order_id,
                since,
            } => Ok(Some(held(reason, order_id.as_ref(), *since))),
            Handoff::WithAgent { agent_id, .. } if agent_id == agent => Ok(None),
            Handoff::WithAgent { agent_id, .. } => Err(Refusal(format!(
                "agent {agent_id} holds this conversation; it must be released before another agent takes it over"
            ))),
        }
    }

    /// Hands the conversation back to the bot.
    pub fn release(&self) -> Result<Option<Handoff>, Refusal> {
        match self {
            Handoff::Waiting { .. } | Handoff::WithAgent { .. } => Ok(Some(Handoff::Bot)),
            Handoff::Bot => Ok(None),
            Handoff::Resolved { .. } => Err(Refusal(
                "the conversation is resolved: the bot already answers the customer's next message"
                    .into(),
            )),
        }
    }

    /// `by` marks the conversation resolved.
    pub fn resolve(&self, by: &str, now: OffsetDateTime) -> Result<Option<Handoff>, Refusal> {
        match self {
            Handoff::Waiting { .. } | Handoff::WithAgent { .. } => Ok(Some(Handoff::Resolved {
                by: by.to_string(),
                at: now,
            })),
            Handoff::Resolved { .. } => Ok(None),
            Handoff::Bot => Err(Refusal(
                "the bot has this conversation: there is no handoff to resolve".into(),
            )),
        }
    }

    /// The conversation's entry in its tenant's queue index, while it is queued: the partition
    /// names the tenant and state, the sort key starts with when it began waiting (Unix ms, 15
    /// digits, so text order is time order) and ends with the conversation (ties, uniqueness).
    pub fn queue_key(&self, tenant: &str, conversation_id: &str) -> Option<(String, String)> {
        let since = match self {
            Handoff::Waiting { since, .. } | Handoff::WithAgent { since, .. } => *since,
            _ => return None,
        };
        let ms = (since.unix_timestamp_nanos() / 1_000_000).max(0);
        Some((
            queue_partition(tenant, self.state()),
            format!("{ms:015}#{conversation_id}"),
        ))
    }
}

/// The queue index partition of a tenant's conversations in `state`.
pub fn queue_partition(tenant: &str, state: HandoffState) -> String {
    format!("{tenant}#handoff#{}", state.as_str())
}

/// A conversation as the queue lists it (what the index projects).
#[derive(Debug, Clone, PartialEq)]
pub struct QueueEntry {
    pub conversation_id: String,
    pub customer_id: String,
    pub handoff: Handoff,
    pub language: Option<String>,
}

/// One line of `GET /v1/handoffs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueuedHandoff {
    pub conversation_id: String,
    pub customer_id: String,
    pub state: HandoffState,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub waited_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl QueueEntry {
    /// The line the queue shows at `now`; `None` for an entry no longer queued (the index is
    /// eventually consistent: a conversation just released may still be listed).
    pub fn line(self, now: OffsetDateTime) -> Option<QueuedHandoff> {
        let (reason, order_id, since, agent_id) = match self.handoff {
            Handoff::Waiting {
                reason,
                order_id,
                since,
            } => (reason, order_id, since, None),
            Handoff::WithAgent {
                agent_id,
                since,
                reason,
                order_id,
                ..
            } => (reason, order_id, since, Some(agent_id)),
            _ => return None,
        };
        let state = if agent_id.is_some() {
            HandoffState::WithAgent
        } else {
            HandoffState::Waiting
        };
        Some(QueuedHandoff {
            conversation_id: self.conversation_id,
            customer_id: self.customer_id,
            state,
            reason,
            order_id,
            since,
            waited_secs: u64::try_from((now - since).whole_seconds()).unwrap_or(0),
            agent_id,
            language: self.language,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-04 10:00 UTC);
    const T1: OffsetDateTime = datetime!(2026-12-04 10:05 UTC);

    fn waiting() -> Handoff {
        Handoff::Waiting {
            reason: "human_agent".into(),
            order_id: Some("1002".into()),
            since: T0,
        }
    }

    fn held_by(agent: &str) -> Handoff {
        Handoff::WithAgent {
            agent_id: agent.into(),
            since: T0,
            taken_at: T1,
            reason: "human_agent".into(),
            order_id: Some("1002".into()),
        }
    }

    fn resolved() -> Handoff {
        Handoff::Resolved {
            by: "ann".into(),
            at: T1,
        }
    }

    #[test]
    fn a_handoff_queues_from_bot_or_resolved_and_keeps_its_first_wait() {
        let queued = Handoff::Bot.requested("human_agent", Some("1002"), T0);
        assert_eq!(queued, Some(waiting()));
        assert_eq!(
            resolved().requested("human_agent", Some("1002"), T0),
            Some(waiting())
        );
        assert_eq!(waiting().requested("other", None, T1), None, "still T0");
        assert_eq!(held_by("ann").requested("other", None, T1), None);
        let jobs = [
            JobKind::ProactiveMessage {
                id: "p".into(),
                text: "x".into(),
            },
            JobKind::AgentHandoff {
                reason: "human_agent".into(),
                order_id: Some("1002".into()),
            },
        ];
        assert_eq!(Handoff::Bot.after_jobs(&jobs, T0), Some(waiting()));
        assert_eq!(Handoff::Bot.after_jobs(&jobs[..1], T0), None);
    }

    #[test]
    fn taking_over_keeps_why_and_since_when_it_waited() {
        assert_eq!(waiting().take_over("ann", T1), Ok(Some(held_by("ann"))));
        let unasked = Handoff::Bot.take_over("ann", T1).unwrap().unwrap();
        assert_eq!(
            unasked,
            Handoff::WithAgent {
                agent_id: "ann".into(),
                since: T1,
                taken_at: T1,
                reason: TAKEN_UNASKED.into(),
                order_id: None,
            }
        );
        assert!(resolved().take_over("bob", T1).unwrap().is_some());
        assert_eq!(held_by("ann").take_over("ann", T1), Ok(None), "a repeat");
        let refused = held_by("ann").take_over("bob", T1).unwrap_err();
        assert!(refused.0.contains("ann"), "{refused:?}");
    }

    #[test]
    fn release_and_resolve_apply_to_queued_conversations_only() {
        for from in [waiting(), held_by("ann")] {
            assert_eq!(from.release(), Ok(Some(Handoff::Bot)));
            assert_eq!(from.resolve("ann", T1), Ok(Some(resolved())));
        }
        assert_eq!(Handoff::Bot.release(), Ok(None), "the bot has it already");
        assert!(resolved().release().is_err());
        assert_eq!(resolved().resolve("bob", T1), Ok(None), "a repeat");
        assert!(Handoff::Bot.resolve("ann", T1).is_err());
    }

    #[test]
    fn the_customers_next_message_takes_a_resolved_conversation_back_to_the_bot() {
        assert_eq!(resolved().customer_wrote(), Some(Handoff::Bot));
        for other in [Handoff::Bot, waiting(), held_by("ann")] {
            assert_eq!(other.customer_wrote(), None);
        }
    }

    #[test]
    fn the_dialogues_slots_follow_the_state() {
        let mut slots = Slots::default();
        waiting().sync_slots(&mut slots);
        assert!(slots.handoff_requested && slots.agent.is_none());
        held_by("ann").sync_slots(&mut slots);
        assert!(!slots.handoff_requested);
        assert_eq!(slots.agent.as_deref(), Some("ann"));
        for back in [Handoff::Bot, resolved()] {
            back.sync_slots(&mut slots);
            assert!(!slots.handoff_requested && slots.agent.is_none());
        }
    }

    #[test]
    fn records_stored_before_the_state_read_from_their_slots() {
        let held = Slots {
            agent: Some("ann".into()),
            ..Slots::default()
        };
        let h = Handoff::from_legacy(&held, T0);
        assert_eq!(h.agent(), Some("ann"));
        assert_eq!(h.state(), HandoffState::WithAgent);
        let asked = Slots {
            handoff_requested: true,
            ..Slots::default()
        };
        assert_eq!(
            Handoff::from_legacy(&asked, T0).state(),
            HandoffState::Waiting
        );
        assert_eq!(Handoff::from_legacy(&Slots::default(), T0), Handoff::Bot);
    }

    #[test]
    fn only_queued_conversations_have_a_queue_key_and_it_sorts_by_time() {
        assert_eq!(Handoff::Bot.queue_key("t", "c"), None);
        assert_eq!(resolved().queue_key("t", "c"), None);
        let (pk, sk) = waiting().queue_key("acme", "01JC").unwrap();
        assert_eq!(pk, "acme#handoff#waiting");
        assert_eq!(sk, format!("{:015}#01JC", T0.unix_timestamp() * 1000));
        let (pk, later) = held_by("ann").queue_key("acme", "01JA").unwrap();
        assert_eq!(pk, "acme#handoff#with_agent");
        assert!(sk.as_str() < later.as_str() || sk[..15] == later[..15]);
        let (_, newer) = Handoff::Bot
            .requested("x", None, T1)
            .unwrap()
            .queue_key("acme", "01JA")
            .unwrap();
        assert!(sk < newer, "older first whatever the ids");
    }

    #[test]
    fn the_state_is_stored_as_tagged_json_and_listed_with_its_wait() {
        let json = serde_json::to_value(held_by("ann")).unwrap();
        assert_eq!(json["state"], "with_agent");
        assert_eq!(json["since"], "2026-12-04T10:00:00Z");
        assert_eq!(
            serde_json::from_value::<Handoff>(json).unwrap(),
            held_by("ann")
        );
        let entry = QueueEntry {
            conversation_id: "c".into(),
            customer_id: "alice".into(),
            handoff: held_by("ann"),
            language: Some("es".into()),
        };
        let line = serde_json::to_value(entry.line(T1).unwrap()).unwrap();
        assert_eq!(line["state"], "with_agent");
        assert_eq!(line["waited_secs"], 300);
        assert_eq!(line["agent_id"], "ann");
        let gone = QueueEntry {
            handoff: Handoff::Bot,
            conversation_id: "c".into(),
            customer_id: "alice".into(),
            language: None,
        };
        assert_eq!(gone.line(T1), None);
    }
}
