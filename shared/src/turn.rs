//! A chat turn: load memory (one Query), understand and decide, persist (one conditional
//! transaction, with the jobs the turn starts as outbox items: see `relay`). A lost race reloads
//! and decides again; a retried message (same `client_message_id`) gets the stored answer and
//! stores nothing new. The answer never waits on the queue: a job exists exactly when the turn
//! that promised it does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::access::{self, Action};
use crate::auth::{is_valid_id, Principal};
use crate::config::ChatSettings;
use crate::conversation::{
    derived_conversation_id, is_valid_conversation_id, new_conversation_id, Answering,
    Conversation, ConversationKey, ConversationSummary, Message, QuickReply, Role, Slots,
};
use crate::dialogue::{Dialogue, Ending, Outcome, TurnFacts};
use crate::handoff::{self, HandoffState, QueuedHandoff};
use crate::jobs::{Job, JobKind};
use crate::problem::ApiError;
use crate::store::{
    backoff, Commit, ConversationStore, Erasure, Snapshot, StoreError, TurnRecord,
    MAX_COMMIT_ATTEMPTS,
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
    /// The language to answer in ("es", "fr-CA"), when the client knows it (a language picker):
    /// it wins over the message's and the token's when the bot speaks it, and is otherwise
    /// ignored (the message is read for its language).
    #[serde(default)]
    pub language: Option<String>,
    /// The `value` of the quick reply pressed (`text` is its label, what the customer is shown
    /// to have said). Read instead of the text only while the bot's latest message offers it;
    /// otherwise the text is read, as if typed.
    #[serde(default)]
    pub quick_reply: Option<String>,
}

/// The longest quick reply value a client may send back (a label or an order number).
const MAX_QUICK_REPLY_CHARS: usize = 200;

/// The quick reply pressed, when the bot's latest message offers its value: the turn reads the
/// value and stores the offered label as what the customer said (never a label the client
/// made up: "No" sent with "Yes"'s value would read as yes and be kept as no). A value is only
/// ever read as words the customer could have typed, so one from an old message, another
/// conversation or a forged request is ignored and the text is read as typed.
fn pressed<'m>(quick_reply: Option<&str>, recent: &'m [Message]) -> Option<&'m QuickReply> {
    let value = quick_reply?;
    recent
        .iter()
        .rev()
        .find(|m| m.role == Role::Bot && !m.internal)?
        .quick_replies
        .iter()
        .find(|q| q.value == value)
}

/// An agent's message into a conversation they took over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMessage {
    pub text: String,
    #[serde(default)]
    pub client_message_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgentReply {
    pub conversation_id: String,
    pub message: Message,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TurnReply {
    pub conversation_id: String,
    pub message: Message,
    pub replies: Vec<Message>,
    /// The language the conversation is held in after the turn ("es"): a client can set its
    /// own words (buttons, placeholders) to match. Absent until the bot has answered in one (a
    /// message in a language it does not speak, a conversation an agent held from its start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// For the request log and metrics; not part of the API's answer.
    #[serde(skip)]
    pub facts: TurnFacts,
}

/// A page of a conversation's history, as the caller may see it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    /// The seq to read on after: the last message read, shown or not.
    pub next_after: u64,
    /// The record the page was read with (where the handoff stands, what is pending).
    pub conversation: Conversation,
}

/// What "now" is for a turn: the wall clock, or a fixed moment in conversation tests, so that
/// "is this order late?" has the same answer on every run.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub struct TurnService {
    store: Arc<dyn ConversationStore>,
    dialogue: Arc<Dialogue>,
    settings: ChatSettings,
    clock: Clock,
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
    /// A messaging channel's: opened by the customer's first message, and theirs by the
    /// channel's address, not by a token's subject.
    Channel,
}

/// How a channel's turn differs from the chat API's (see `fulfillment::channel`).
#[derive(Default)]
pub struct Prepared {
    /// Applied to the conversation record before the turn decides, on every attempt (it may
    /// have changed since the caller read it).
    pub update: Option<crate::conversation::RecordUpdate<'static>>,
    /// What the bot says instead of running the dialogue (the steps of proving who one is).
    pub scripted: Option<Vec<String>>,
    /// Jobs the turn starts besides the dialogue's, as they are (an emailed code goes to the
    /// account being proven, not to the conversation's customer).
    pub jobs: Vec<Job>,
    /// Said before the dialogue's replies ("I found your account from your number").
    pub preface: Vec<String>,
    /// Offers are shown as numbered lines (no buttons): a typed number picks one.
    pub numbered: bool,
}

/// The offered quick reply a typed number ("2", "2.") picks, from the bot's latest message.
fn numbered<'m>(text: &str, recent: &'m [Message]) -> Option<&'m QuickReply> {
    let n: usize = text.trim().trim_end_matches(['.', ')']).parse().ok()?;
    recent
        .iter()
        .rev()
        .find(|m| m.role == Role::Bot && !m.internal)?
        .quick_replies
        .get(n.checked_sub(1)?)
}

fn is_valid_client_message_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl TurnService {
    /// The dialogue turns run (to open a flow outside a turn, as a vendor's event does).
    pub fn dialogue(&self) -> &Dialogue {
        &self.dialogue
    }

    pub fn new(
        store: Arc<dyn ConversationStore>,
        dialogue: Dialogue,
        settings: ChatSettings,
    ) -> Self {
        Self::with_shared(store, Arc::new(dialogue), settings)
    }

    /// With a dialogue another service runs too (fulfillment's jobs and channel turns).
    pub fn with_shared(
        store: Arc<dyn ConversationStore>,
        dialogue: Arc<Dialogue>,
        settings: ChatSettings,
    ) -> Self {
        Self {
            store,
            dialogue,
            settings,
            clock: Arc::new(OffsetDateTime::now_utc),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// The message's text, trimmed, within the limits; and a well-formed client message id.
    fn checked<'a>(
        &self,
        text: &'a str,
        client_message_id: Option<&str>,
    ) -> Result<&'a str, ApiError> {
        let text = text.trim();
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
        if let Some(id) = client_message_id {
            if !is_valid_client_message_id(id) {
                return Err(ApiError::BadRequest(
                    "client_message_id must be 1-128 visible ASCII characters".into(),
                ));
            }
        }
        Ok(text)
    }

    pub async fn post(&self, who: &Principal, req: PostMessage) -> Result<TurnReply, ApiError> {
        access::require(who, Action::SendAsCustomer, "")?;
        let text = self.checked(&req.text, req.client_message_id.as_deref())?;
        if let Some(value) = &req.quick_reply {
            let chars = value.chars().count();
            if value.trim().is_empty() || chars > MAX_QUICK_REPLY_CHARS {
                return Err(ApiError::BadRequest(format!(
                    "quick_reply must be the value of a button: 1 to {MAX_QUICK_REPLY_CHARS} characters, not blank"
                )));
            }
        }
        if let Some(tag) = &req.language {
            if !crate::language::is_tag(tag) {
                return Err(ApiError::BadRequest(
                    "language must be a language tag such as \"es\" or \"fr-CA\"".into(),
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
        self.run(who, key, origin, text, &req, &Prepared::default())
            .await
    }

    /// A turn of a messaging channel's conversation (see `fulfillment::channel`): opened by the
    /// customer's first message, held by the channel rather than by a token's subject (the
    /// caller has established who writes), and shaped by `prepared`.
    pub async fn post_channel(
        &self,
        who: &Principal,
        key: ConversationKey,
        req: PostMessage,
        prepared: &Prepared,
    ) -> Result<TurnReply, ApiError> {
        let text = self.checked(&req.text, req.client_message_id.as_deref())?;
        self.run(who, key, Origin::Channel, text, &req, prepared)
            .await
    }

    async fn run(
        &self,
        who: &Principal,
        key: ConversationKey,
        origin: Origin,
        text: &str,
        req: &PostMessage,
        prepared: &Prepared,
    ) -> Result<TurnReply, ApiError> {
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
            let now = (self.clock)();
            let (conversation, recent) = match snapshot {
                Some(s) => {
                    // Someone else's conversation is indistinguishable from a missing one. A
                    // channel's is the channel user's, whoever the CRM says they are.
                    if origin != Origin::Channel {
                        let owner = Action::ReadConversation {
                            owner: &s.conversation.customer_id,
                        };
                        access::require(who, owner, NO_SUCH_CONVERSATION)?;
                    }
                    (s.conversation, s.recent)
                }
                None if origin == Origin::Channel => (
                    Conversation::new(key.clone(), who.customer_id.clone(), now),
                    Vec::new(),
                ),
                None if origin != Origin::Named => {
                    let mut c = Conversation::new(key.clone(), who.customer_id.clone(), now);
                    c.slots = self.remembered(who, &key, now).await;
                    (c, Vec::new())
                }
                None => return Err(not_found()),
            };
            let mut conversation = conversation;
            if let Some(update) = &prepared.update {
                update(&mut conversation);
            }

            if let Some(cmid) = &req.client_message_id {
                // The customer's own messages only: agents' UIs number theirs too ("msg-0001"),
                // and an agent's id is no retry of the customer's.
                if recent.iter().any(|m| {
                    m.role == Role::Customer && m.client_message_id.as_deref() == Some(cmid)
                }) {
                    if let Some(reply) = self.replay(&key, cmid).await? {
                        return Ok(reply);
                    }
                }
            }

            // A resolved conversation is the bot's again from the customer's next message: the
            // dialogue reads it as the bot's (a new "a person please" hands off again).
            if let Some(back) = conversation.handoff.customer_wrote() {
                conversation.handoff = back;
                conversation.handoff.sync_slots(&mut conversation.slots);
            }
            let pressed = pressed(req.quick_reply.as_deref(), &recent)
                .or_else(|| prepared.numbered.then(|| numbered(text, &recent)).flatten());
            let (text, input) = match pressed {
                Some(q) => (q.label.as_str(), q.value.as_str()),
                None => (text, text),
            };
            let outcome: Outcome = if let Some(texts) = &prepared.scripted {
                // Said instead of the dialogue (a channel's identity steps): the state stands.
                Outcome {
                    replies: texts.clone(),
                    quick_replies: Vec::new(),
                    state: conversation.state.clone(),
                    slots: conversation.slots.clone(),
                    jobs: Vec::new(),
                    deferred: false,
                    facts: TurnFacts::default(),
                }
            } else if conversation.handoff.is_with_agent() {
                // A person has the conversation: the message waits for them, the bot is silent.
                Outcome {
                    replies: Vec::new(),
                    quick_replies: Vec::new(),
                    state: conversation.state.clone(),
                    slots: conversation.slots.clone(),
                    jobs: Vec::new(),
                    deferred: false,
                    facts: TurnFacts {
                        ending: Ending::WithAgent,
                        ..TurnFacts::default()
                    },
                }
            } else {
                self.dialogue
                    .respond_in(
                        req.language.as_deref(),
                        who,
                        &conversation.state,
                        &conversation.slots,
                        input,
                        now,
                    )
                    .await
            };

            let now = (self.clock)().max(conversation.updated_at);
            let message = Message {
                client_message_id: req.client_message_id.clone(),
                ..Message::new(conversation.last_seq + 1, Role::Customer, text, now)
            };
            let mut said = prepared.preface.clone();
            said.extend(outcome.replies);
            let replies = Message::from_bot(
                message.seq + 1,
                said,
                outcome.quick_replies,
                Some(message.seq),
                now,
            );
            let seq = message.seq + replies.len() as u64;
            let facts = outcome.facts;
            let mut kinds = outcome.jobs;
            if outcome.deferred {
                kinds.push(JobKind::AnswerDeferred {
                    reply_to: message.seq,
                    text: input.to_string(),
                    asked_at: Some(now),
                });
            }
            let mut jobs: Vec<Job> = kinds
                .into_iter()
                .map(|kind| {
                    Job::new(&key, &who.customer_id, kind)
                        .in_language(outcome.slots.language.clone())
                })
                .collect();
            jobs.extend(prepared.jobs.iter().cloned());

            // A turn that hands off queues the conversation in the same commit, so agents see
            // it at once, not when the notification job runs.
            let handoff = conversation
                .handoff
                .after_jobs(jobs.iter().map(|j| &j.kind), now)
                .unwrap_or_else(|| conversation.handoff.clone());
            let mut slots = outcome.slots;
            handoff.sync_slots(&mut slots);

            let expected_version = conversation.version;
            let language = slots.language.clone();
            if outcome.deferred {
                slots.answering.push(Answering {
                    reply_to: message.seq,
                    since: now,
                });
            }
            let updated = Conversation {
                state: outcome.state,
                slots,
                handoff,
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
                language: language.clone(),
            };

            let commit = Commit {
                conversation: updated,
                expected_version,
                messages,
                turn: req.client_message_id.clone().map(|id| (id, record)),
                effect: None,
                jobs,
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    return Ok(TurnReply {
                        conversation_id: key.id.clone(),
                        message,
                        replies,
                        language,
                        facts,
                    });
                }
                Err(StoreError::Conflict) => {
                    tracing::info!(attempt, conversation = %key.id, "lost a write race; reloading");
                    backoff(attempt).await;
                }
                Err(StoreError::DuplicateTurn) => {
                    let cmid = req.client_message_id.as_deref().unwrap_or_default();
                    if let Some(reply) = self.replay(&key, cmid).await? {
                        return Ok(reply);
                    }
                    // Gone between the commit and the read (an erasure): decide again.
                    backoff(attempt).await;
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
                    // Not the language: a new conversation's first message says which (the
                    // welcome back is said in it), as it would for a new customer.
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

    /// A retried message: answer as before. Its jobs went out with the turn's commit. Without
    /// a turn record under the id, it is not a retry (`None`): the message is new.
    async fn replay(
        &self,
        key: &ConversationKey,
        cmid: &str,
    ) -> Result<Option<TurnReply>, ApiError> {
        let Some(record) = self
            .store
            .turn_record(key, cmid)
            .await
            .map_err(store_error)?
        else {
            return Ok(None);
        };
        Ok(Some(TurnReply {
            conversation_id: key.id.clone(),
            message: record.message,
            replies: record.replies,
            language: record.language,
            facts: TurnFacts {
                ending: Ending::Replayed,
                ..TurnFacts::default()
            },
        }))
    }

    /// The messages of one history page (see [`TurnService::history_page`]).
    pub async fn history(
        &self,
        who: &Principal,
        conversation_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Message>, ApiError> {
        Ok(self
            .history_page(who, conversation_id, after, limit)
            .await?
            .messages)
    }

    /// Up to `limit` messages after `after`, with the record they were read with. A customer
    /// is never shown the agents' internal messages; the page's `next_after` still passes
    /// them, so a client reading on never reads them again (or waits on them).
    pub async fn history_page(
        &self,
        who: &Principal,
        conversation_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<HistoryPage, ApiError> {
        if !is_valid_conversation_id(conversation_id) {
            return Err(not_found());
        }
        let key = ConversationKey {
            tenant: who.tenant.clone(),
            id: conversation_id.to_string(),
        };
        // Checked on the record, before any message is read: someone else's conversation
        // costs what a missing one does, and answers the same.
        let refused = std::sync::Mutex::new(None);
        let may_read = |c: &Conversation| {
            let owner = Action::ReadConversation {
                owner: &c.customer_id,
            };
            match access::require(who, owner, NO_SUCH_CONVERSATION) {
                Ok(()) => true,
                Err(e) => {
                    *refused.lock().unwrap() = Some(e);
                    false
                }
            }
        };
        match self
            .store
            .history_if(&key, after, limit, &may_read)
            .await
            .map_err(store_error)?
        {
            Some((conversation, mut messages)) => {
                let next_after = messages.last().map_or(after, |m| m.seq);
                if who.role == crate::auth::Role::Customer {
                    messages.retain(|m| !m.internal);
                }
                Ok(HistoryPage {
                    messages,
                    next_after,
                    conversation,
                })
            }
            None => Err(refused.into_inner().unwrap().unwrap_or_else(not_found)),
        }
    }

    /// A customer's conversations: the caller's own, or (agents, admins) the one named.
    pub async fn conversations(
        &self,
        who: &Principal,
        customer_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, ApiError> {
        let owner = match customer_id {
            Some(id) if !is_valid_id(id) => {
                return Err(ApiError::BadRequest("customer_id is malformed".into()))
            }
            Some(id) => id,
            None if who.role == crate::auth::Role::Customer => &who.customer_id,
            None => {
                return Err(ApiError::BadRequest(
                    "customer_id is required: whose conversations?".into(),
                ))
            }
        };
        access::require(who, Action::ListConversations { owner }, "")?;
        self.store
            .conversations_of(&who.tenant, owner, limit)
            .await
            .map_err(store_error)
    }

    /// An agent takes the conversation over (`take`) or hands it back to the bot.
    pub async fn take_over(
        &self,
        who: &Principal,
        conversation_id: &str,
        take: bool,
    ) -> Result<ConversationSummary, ApiError> {
        let change = if take {
            HandoffChange::TakeOver
        } else {
            HandoffChange::Release
        };
        self.change_handoff(who, conversation_id, change).await
    }

    /// An agent moves the conversation through the handoff states (`handoff`): takes it
    /// over, hands it back to the bot, or resolves it. The customer is told in the
    /// conversation, in its language. A change that does not apply from where it stands is a
    /// 409 and writes nothing; one that already holds is answered as it stands.
    pub async fn change_handoff(
        &self,
        who: &Principal,
        conversation_id: &str,
        change: HandoffChange,
    ) -> Result<ConversationSummary, ApiError> {
        access::require(who, Action::TakeOver, "")?;
        let key = self.key_of(who, conversation_id)?;
        let (updated, written) = self
            .update(&key, 0, |snapshot, now| {
                let mut c = snapshot.conversation.clone();
                // Another agent's conversation is theirs to hand back or resolve (or an
                // admin's): a colleague's release would let them take it over behind their back.
                if let (Some(holder), HandoffChange::Release | HandoffChange::Resolve) =
                    (c.handoff.agent(), change)
                {
                    if holder != who.customer_id && who.role != crate::auth::Role::Admin {
                        return Err(ApiError::Conflict(format!(
                            "agent {holder} holds this conversation: only they or an admin may {} it",
                            change.as_str()
                        )));
                    }
                }
                let (next, note) = match change {
                    HandoffChange::TakeOver => (
                        c.handoff.take_over(&who.customer_id, now),
                        handoff::TAKEN_OVER,
                    ),
                    HandoffChange::Release => (c.handoff.release(), handoff::RELEASED),
                    HandoffChange::Resolve => {
                        (c.handoff.resolve(&who.customer_id, now), handoff::RESOLVED)
                    }
                };
                let next = next.map_err(|handoff::Refusal(why)| ApiError::Conflict(why))?;
                let Some(next) = next else {
                    return Ok(Change::Keep(None));
                };
                c.handoff = next;
                c.handoff.sync_slots(&mut c.slots);
                // Whoever answers now starts from nothing pending: a question the bot asked before
                // a takeover (or one only the agent saw) is not answered by a later "yes".
                c.state = crate::conversation::DialogueState::Idle;
                let text = self
                    .dialogue
                    .messages_in(c.slots.language.as_deref())
                    .render(note, &[]);
                let message = Message::new(c.last_seq + 1, Role::Bot, text, now);
                Ok(Change::Write(Box::new(c), message))
            })
            .await?;
        tracing::info!(
            conversation = %key.id,
            agent = %who.customer_id,
            change = change.as_str(),
            handoff = updated.handoff.state().as_str(),
            changed = written.is_some(),
            "handoff changed"
        );
        Ok(summary(&updated))
    }

    /// The tenant's handoff queue in `state`, oldest first (agents and admins).
    pub async fn handoffs(
        &self,
        who: &Principal,
        state: HandoffState,
        limit: usize,
    ) -> Result<Vec<QueuedHandoff>, ApiError> {
        access::require(who, Action::ListHandoffs, "")?;
        let now = (self.clock)();
        let entries = self
            .store
            .handoffs(&who.tenant, state, limit)
            .await
            .map_err(store_error)?;
        // The index lags its records by a moment: a line whose projected state is not the one
        // asked for (just released) is left out rather than shown in the wrong list.
        Ok(entries
            .into_iter()
            .filter(|e| e.handoff.state() == state)
            .filter_map(|e| e.line(now))
            .collect())
    }

    /// An agent's message into a conversation they (or a colleague) took over. A retry with the
    /// same `client_message_id` returns the message stored the first time.
    pub async fn agent_reply(
        &self,
        who: &Principal,
        conversation_id: &str,
        req: AgentMessage,
    ) -> Result<AgentReply, ApiError> {
        access::require(who, Action::ReplyAsAgent, "")?;
        let text = self.checked(&req.text, req.client_message_id.as_deref())?;
        let key = self.key_of(who, conversation_id)?;
        let cmid = req.client_message_id.clone();
        let (_, message) = self
            .update(&key, self.settings.history_window, |snapshot, now| {
                if !snapshot.conversation.handoff.is_with_agent() {
                    return Err(ApiError::Conflict(format!(
                        "the conversation is {}, not with an agent: take it over first",
                        snapshot.conversation.handoff.state().as_str()
                    )));
                }
                // The customer talks to one person: the agent holding the conversation (or an
                // admin stepping in).
                match snapshot.conversation.handoff.agent() {
                    Some(holder)
                        if holder != who.customer_id && who.role != crate::auth::Role::Admin =>
                    {
                        return Err(ApiError::Conflict(format!(
                            "agent {holder} holds this conversation: take it over once they release it"
                        )));
                    }
                    _ => {}
                }
                let retried = cmid.as_ref().and_then(|id| {
                    snapshot
                        .recent
                        .iter()
                        .find(|m| m.role == Role::Agent && m.client_message_id.as_ref() == Some(id))
                });
                if let Some(sent) = retried {
                    return Ok(Change::Keep(Some(sent.clone())));
                }
                let c = snapshot.conversation.clone();
                let message = Message {
                    client_message_id: cmid.clone(),
                    agent_id: Some(who.customer_id.clone()),
                    ..Message::new(c.last_seq + 1, Role::Agent, text, now)
                };
                Ok(Change::Write(Box::new(c), message))
            })
            .await?;
        let message = message
            .ok_or_else(|| ApiError::Internal("an agent reply decided to write nothing".into()))?;
        Ok(AgentReply {
            conversation_id: key.id,
            message,
        })
    }

    /// Deletes what the bot remembers of a customer: every conversation and its messages.
    pub async fn erase_customer(
        &self,
        who: &Principal,
        customer_id: &str,
    ) -> Result<Erasure, ApiError> {
        access::require(who, Action::EraseCustomer, "")?;
        if !is_valid_id(customer_id) {
            return Err(ApiError::NotFound("no such customer".into()));
        }
        let erased = self
            .store
            .erase_customer(&who.tenant, customer_id)
            .await
            .map_err(store_error)?;
        tracing::info!(
            customer = %customer_id,
            by = %who.customer_id,
            conversations = erased.conversations_deleted,
            items = erased.items_deleted,
            "customer erased"
        );
        Ok(erased)
    }

    /// Reads the conversation, lets `decide` change it (adding one message), and writes it back
    /// guarded by the version read; a lost race reads again and decides again.
    async fn update<F>(
        &self,
        key: &ConversationKey,
        window: usize,
        mut decide: F,
    ) -> Result<(Conversation, Option<Message>), ApiError>
    where
        F: FnMut(&Snapshot, OffsetDateTime) -> Result<Change, ApiError>,
    {
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let snapshot = self
                .store
                .load(key, window)
                .await
                .map_err(store_error)?
                .ok_or_else(not_found)?;
            let now = OffsetDateTime::now_utc().max(snapshot.conversation.updated_at);
            let (mut updated, message) = match decide(&snapshot, now)? {
                Change::Keep(message) => return Ok((snapshot.conversation, message)),
                Change::Write(c, m) => (*c, m),
            };
            let expected_version = snapshot.conversation.version;
            updated.version = expected_version + 1;
            updated.last_seq = message.seq;
            updated.updated_at = now;
            let commit = Commit {
                conversation: updated.clone(),
                expected_version,
                messages: vec![message.clone()],
                turn: None,
                effect: None,
                jobs: Vec::new(),
            };
            match self.store.commit(commit).await {
                Ok(()) => return Ok((updated, Some(message))),
                Err(StoreError::Conflict) => backoff(attempt).await,
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::Conflict(
            "the conversation is being updated by other requests; retry".into(),
        ))
    }

    fn key_of(&self, who: &Principal, conversation_id: &str) -> Result<ConversationKey, ApiError> {
        if !is_valid_conversation_id(conversation_id) {
            return Err(not_found());
        }
        Ok(ConversationKey {
            tenant: who.tenant.clone(),
            id: conversation_id.to_string(),
        })
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound(NO_SUCH_CONVERSATION.into())
}

/// An agent's move in the handoff state machine (`handoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffChange {
    TakeOver,
    Release,
    Resolve,
}

impl HandoffChange {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffChange::TakeOver => "take_over",
            HandoffChange::Release => "release",
            HandoffChange::Resolve => "resolve",
        }
    }
}

/// What an agent's change to a conversation comes to.
enum Change {
    /// Write this record with this one new message.
    Write(Box<Conversation>, Message),
    /// Nothing to write (already so); answer with this message, if any.
    Keep(Option<Message>),
}

const NO_SUCH_CONVERSATION: &str = "no such conversation";

fn summary(c: &Conversation) -> ConversationSummary {
    ConversationSummary {
        id: c.key.id.clone(),
        created_at: c.created_at,
        updated_at: c.updated_at,
        last_seq: c.last_seq,
        handoff: Some(c.handoff.state()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{ConnectorError, Order, OrdersPort};
    use crate::store::memory::MemoryStore;
    use async_trait::async_trait;

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
        async fn history_if(
            &self,
            _: &ConversationKey,
            _: u64,
            _: usize,
            _: &(dyn for<'c> Fn(&'c Conversation) -> bool + Send + Sync),
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
        async fn erase_customer(&self, _: &str, _: &str) -> Result<Erasure, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
        async fn handoffs(
            &self,
            _: &str,
            _: crate::handoff::HandoffState,
            _: usize,
        ) -> Result<Vec<crate::handoff::QueueEntry>, StoreError> {
            Err(StoreError::Unavailable("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn a_down_store_is_503_with_a_retry_hint() {
        let svc = TurnService::new(
            Arc::new(DownStore),
            Dialogue::new(Arc::new(NoOrders)),
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
    async fn a_turns_jobs_are_committed_with_it_and_a_retry_adds_none() {
        let store = Arc::new(MemoryStore::new());
        let svc = TurnService::new(
            store.clone(),
            Dialogue::new(Arc::new(LateOrder)),
            ChatSettings::default(),
        );
        let offer = svc
            .post(&alice(), msg("where is order 1002", None, None))
            .await
            .unwrap();
        let conv = offer.conversation_id.clone();
        assert!(store.take_outbox().is_empty(), "an offer starts nothing");
        let yes = svc
            .post(&alice(), msg("yes", Some(&conv), Some("yes-1")))
            .await
            .unwrap();
        assert!(yes.replies[0].text.contains("requested a refund"));
        let jobs = store.take_outbox();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].key, "refund:t:1002");
        assert_eq!(jobs[0].conversation_id.as_deref(), Some(conv.as_str()));

        let retry = svc
            .post(&alice(), msg("yes", Some(&conv), Some("yes-1")))
            .await
            .unwrap();
        assert_eq!(retry.replies, yes.replies);
        assert!(store.take_outbox().is_empty(), "the retry starts nothing");
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

    fn service(store: Arc<MemoryStore>) -> TurnService {
        TurnService::new(
            store,
            Dialogue::new(Arc::new(NoOrders)),
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
            language: None,
            quick_reply: None,
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
        // The same answer; only the log's facts say it was a replay.
        assert_eq!(first.facts.ending, Ending::Answered);
        assert_eq!(again.facts.ending, Ending::Replayed);
        assert_eq!(
            first,
            TurnReply {
                facts: first.facts.clone(),
                ..again
            }
        );
        let key = ConversationKey {
            tenant: "t".into(),
            id: first.conversation_id.clone(),
        };
        assert_eq!(store.message_count(&key), 2);
    }

    #[tokio::test]
    async fn the_language_is_the_conversations_and_asked_for_wins() {
        let store = Arc::new(MemoryStore::new());
        let svc = service(store);
        let first = svc
            .post(&alice(), msg("where is my order please", None, None))
            .await
            .unwrap();
        assert_eq!(first.language.as_deref(), Some("en"));
        // A new conversation the next day: its first message says which language.
        let hola = svc.post(&alice(), msg("hola", None, None)).await.unwrap();
        assert_eq!(hola.language.as_deref(), Some("es"));
        assert!(
            hola.replies[0].text.starts_with("¡Hola!"),
            "{:?}",
            hola.replies
        );
        // "ok" and a number keep it; the client asking for German switches it.
        let id = Some(hola.conversation_id.as_str());
        let ok = svc.post(&alice(), msg("ok", id, None)).await.unwrap();
        assert_eq!(ok.language.as_deref(), Some("es"));
        let mut asked = msg("hi", id, None);
        asked.language = Some("de-DE".into());
        let de = svc.post(&alice(), asked).await.unwrap();
        assert_eq!(de.language.as_deref(), Some("de"));
        // A malformed tag is refused; one the bot does not speak is only ignored.
        let mut bad = msg("hi", id, None);
        bad.language = Some("<es>".into());
        assert!(matches!(
            svc.post(&alice(), bad).await,
            Err(ApiError::BadRequest(_))
        ));
        let mut unknown = msg("wo ist meine Bestellung", id, None);
        unknown.language = Some("pt-BR".into());
        let kept = svc.post(&alice(), unknown).await.unwrap();
        assert_eq!(kept.language.as_deref(), Some("de"));
    }

    #[tokio::test]
    async fn a_language_the_bot_does_not_speak_gets_one_english_sentence_and_a_person() {
        let svc = service(Arc::new(MemoryStore::new()));
        let it = "buongiorno, vorrei sapere perché il mio pacco non è ancora arrivato a casa";
        let first = svc.post(&alice(), msg(it, None, None)).await.unwrap();
        assert_eq!(
            first.replies[0].text,
            "Sorry, I can only help in English, español, français and Deutsch. Would you like me to pass you to a member of our team?"
        );
        assert_eq!(first.language, None, "no language chosen yet");
        let id = Some(first.conversation_id.as_str());
        let yes = svc.post(&alice(), msg("yes", id, None)).await.unwrap();
        assert_eq!(yes.facts.ending, Ending::Handoff);
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

    fn as_role(id: &str, tenant: &str, role: crate::auth::Role) -> Principal {
        Principal {
            tenant: tenant.into(),
            customer_id: id.into(),
            role,
            locale: None,
            verified: true,
        }
    }

    fn agent_msg(text: &str, cmid: Option<&str>) -> AgentMessage {
        AgentMessage {
            text: text.into(),
            client_message_id: cmid.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn an_agent_takes_over_replies_and_hands_back() {
        use crate::auth::Role;
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let first = svc.post(&alice(), msg("hi", None, None)).await.unwrap();
        let conv = first.conversation_id.clone();
        let before = 1 + first.replies.len() as u64;
        let agent = as_role("agent_7", "t", Role::Agent);

        // Replying before taking over is refused; a customer may do neither.
        let err = svc
            .agent_reply(&agent, &conv, agent_msg("hello", None))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 409);
        assert_eq!(
            svc.take_over(&alice(), &conv, true)
                .await
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            svc.agent_reply(&alice(), &conv, agent_msg("x", None))
                .await
                .unwrap_err()
                .status(),
            403
        );

        let summary = svc.take_over(&agent, &conv, true).await.unwrap();
        assert_eq!(
            summary.last_seq,
            before + 1,
            "the takeover is announced in the conversation"
        );
        // Taking over twice changes nothing.
        assert_eq!(
            svc.take_over(&agent, &conv, true).await.unwrap().last_seq,
            before + 1
        );

        // The customer's message is kept, and the bot stays silent.
        let turn = svc
            .post(&alice(), msg("where is my order?", Some(&conv), None))
            .await
            .unwrap();
        assert!(turn.replies.is_empty());

        let sent = svc
            .agent_reply(&agent, &conv, agent_msg("Looking now.", Some("a-1")))
            .await
            .unwrap();
        assert_eq!(sent.message.role, crate::conversation::Role::Agent);
        let again = svc
            .agent_reply(&agent, &conv, agent_msg("Looking now.", Some("a-1")))
            .await
            .unwrap();
        assert_eq!(
            again.message.seq, sent.message.seq,
            "a retry is stored once"
        );

        // The agent reads the customer's history; the bot answers again after the release.
        let history = svc.history(&agent, &conv, 0, 100).await.unwrap();
        assert_eq!(history.len() as u64, before + 3);
        svc.take_over(&agent, &conv, false).await.unwrap();
        let turn = svc
            .post(&alice(), msg("thanks", Some(&conv), None))
            .await
            .unwrap();
        assert!(!turn.replies.is_empty());
    }

    #[tokio::test]
    async fn a_customer_id_equal_to_an_agents_is_a_new_message_not_a_retry() {
        use crate::auth::Role;
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let first = svc
            .post(&alice(), msg("hi", None, Some("msg-0001")))
            .await
            .unwrap();
        let conv = first.conversation_id.clone();
        let agent = as_role("agent_7", "t", Role::Agent);
        svc.take_over(&agent, &conv, true).await.unwrap();
        // Both UIs number their messages from msg-0001.
        svc.agent_reply(
            &agent,
            &conv,
            agent_msg("Hello, I'm Sam.", Some("msg-0002")),
        )
        .await
        .unwrap();
        svc.take_over(&agent, &conv, false).await.unwrap();

        let turn = svc
            .post(&alice(), msg("thanks Sam", Some(&conv), Some("msg-0002")))
            .await
            .unwrap();
        assert_ne!(turn.facts.ending, Ending::Replayed);
        assert_eq!(turn.message.text, "thanks Sam");
        let history = svc.history(&alice(), &conv, 0, 100).await.unwrap();
        assert!(
            history
                .iter()
                .any(|m| m.role == crate::conversation::Role::Customer && m.text == "thanks Sam"),
            "the customer's message is stored: {history:?}"
        );
        // And it is the customer's own retry id from now on.
        let again = svc
            .post(&alice(), msg("thanks Sam", Some(&conv), Some("msg-0002")))
            .await
            .unwrap();
        assert_eq!(again.facts.ending, Ending::Replayed);
        assert_eq!(again.message.seq, turn.message.seq);
    }

    #[tokio::test]
    async fn someone_elses_history_costs_and_answers_what_a_missing_one_does() {
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let conv = svc
            .post(&alice(), msg("hi", None, None))
            .await
            .unwrap()
            .conversation_id;
        let mallory = Principal::customer("t", "mallory");
        let missing = new_conversation_id();

        let before = store.history_reads();
        let theirs = svc.history(&mallory, &conv, 0, 50).await.unwrap_err();
        let after_theirs = store.history_reads();
        let none = svc.history(&mallory, &missing, 0, 50).await.unwrap_err();
        let after_none = store.history_reads();
        let cost = |from: (usize, usize), to: (usize, usize)| (to.0 - from.0, to.1 - from.1);
        assert_eq!(cost(before, after_theirs), (1, 0), "the record only");
        assert_eq!(cost(after_theirs, after_none), (1, 0));
        assert_eq!(
            (theirs.status(), theirs.to_string()),
            (none.status(), none.to_string())
        );
        assert_eq!(theirs.status(), 404);
        // The owner's read pages as before.
        assert!(!svc
            .history(&alice(), &conv, 0, 50)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(cost(after_none, store.history_reads()), (1, 1));
    }

    #[tokio::test]
    async fn agents_see_only_their_tenant_and_lists_name_a_customer() {
        use crate::auth::Role;
        let svc = service(Arc::new(MemoryStore::new()));
        let first = svc.post(&alice(), msg("hi", None, None)).await.unwrap();
        let conv = first.conversation_id;
        let outsider = as_role("agent_9", "other", Role::Agent);
        assert_eq!(
            svc.history(&outsider, &conv, 0, 10)
                .await
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(
            svc.take_over(&outsider, &conv, true)
                .await
                .unwrap_err()
                .status(),
            404
        );
        assert!(svc
            .conversations(&outsider, Some("alice"), 10)
            .await
            .unwrap()
            .is_empty());

        let agent = as_role("agent_7", "t", Role::Agent);
        assert_eq!(
            svc.conversations(&agent, None, 10)
                .await
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            svc.conversations(&agent, Some("alice"), 10)
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            svc.conversations(&alice(), Some("bob"), 10)
                .await
                .unwrap_err()
                .status(),
            403
        );
        // Agents do not chat as customers.
        assert_eq!(
            svc.post(&agent, msg("hi", None, None))
                .await
                .unwrap_err()
                .status(),
            403
        );
    }

    #[tokio::test]
    async fn only_admins_erase_and_erasure_removes_every_conversation() {
        use crate::auth::Role;
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let a = svc.post(&alice(), msg("hi", None, None)).await.unwrap();
        let b = svc
            .post(&alice(), msg("hello again", None, None))
            .await
            .unwrap();
        // Each conversation: its record, the customer's message and the bot's replies.
        let items = 2 * 2 + a.replies.len() + b.replies.len();
        let bob = Principal::customer("t", "bob");
        svc.post(&bob, msg("hi", None, None)).await.unwrap();

        let agent = as_role("agent_7", "t", Role::Agent);
        assert_eq!(
            svc.erase_customer(&agent, "alice")
                .await
                .unwrap_err()
                .status(),
            403
        );
        let admin = as_role("root", "t", Role::Admin);
        let erased = svc.erase_customer(&admin, "alice").await.unwrap();
        assert_eq!(erased.conversations_deleted, 2);
        assert_eq!(erased.items_deleted, items);
        assert!(svc
            .conversations(&alice(), None, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(svc.conversations(&bob, None, 10).await.unwrap().len(), 1);
        // Erasing again finds nothing; an id that cannot exist is a 404.
        assert_eq!(
            svc.erase_customer(&admin, "alice").await.unwrap(),
            Erasure::default()
        );
        assert_eq!(
            svc.erase_customer(&admin, "a#b")
                .await
                .unwrap_err()
                .status(),
            404
        );
    }

    async fn handoff_of(store: &MemoryStore, conv: &str) -> crate::handoff::Handoff {
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv.into(),
        };
        store
            .load(&key, 0)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .handoff
    }

    async fn slots_of(store: &MemoryStore, conv: &str) -> Slots {
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv.into(),
        };
        store
            .load(&key, 0)
            .await
            .unwrap()
            .unwrap()
            .conversation
            .slots
    }

    #[tokio::test]
    async fn a_handoff_goes_bot_waiting_with_agent_resolved_and_back_to_the_bot() {
        use crate::auth::Role as R;
        use crate::handoff::{Handoff, HandoffState as S};
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let agent = as_role("agent_7", "t", R::Agent);

        // bot → waiting in the turn that hands off: queued at once, the bot still answers.
        let asked = svc
            .post(&alice(), msg("I want to talk to a person", None, None))
            .await
            .unwrap();
        let conv = asked.conversation_id.clone();
        assert_eq!(asked.facts.ending, Ending::Handoff);
        let Handoff::Waiting { reason, since, .. } = handoff_of(&store, &conv).await else {
            panic!("not waiting: {:?}", handoff_of(&store, &conv).await);
        };
        assert_eq!(reason, "human_agent");
        assert!(slots_of(&store, &conv).await.handoff_requested);
        let queue = svc.handoffs(&agent, S::Waiting, 50).await.unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(
            (
                queue[0].conversation_id.as_str(),
                queue[0].customer_id.as_str()
            ),
            (conv.as_str(), "alice")
        );
        let thanks = svc
            .post(&alice(), msg("thanks", Some(&conv), None))
            .await
            .unwrap();
        assert!(!thanks.replies.is_empty(), "waiting: the bot answers");
        assert_eq!(handoff_of(&store, &conv).await.state(), S::Waiting);

        // waiting → with_agent keeps why and since when; the bot falls silent.
        let taken = svc.take_over(&agent, &conv, true).await.unwrap();
        assert_eq!(taken.handoff, Some(S::WithAgent));
        let Handoff::WithAgent {
            agent_id,
            since: held_since,
            reason,
            ..
        } = handoff_of(&store, &conv).await
        else {
            panic!("not with an agent");
        };
        assert_eq!(
            (agent_id.as_str(), held_since, reason.as_str()),
            ("agent_7", since, "human_agent")
        );
        assert!(svc
            .handoffs(&agent, S::Waiting, 50)
            .await
            .unwrap()
            .is_empty());
        let held = svc.handoffs(&agent, S::WithAgent, 50).await.unwrap();
        assert_eq!(held[0].agent_id.as_deref(), Some("agent_7"));
        let silent = svc
            .post(&alice(), msg("hello?", Some(&conv), None))
            .await
            .unwrap();
        assert!(silent.replies.is_empty());
        let sent = svc
            .agent_reply(&agent, &conv, agent_msg("Hi, I'm here.", None))
            .await
            .unwrap();
        assert_eq!(sent.message.agent_id.as_deref(), Some("agent_7"));
        let stored = svc.history(&alice(), &conv, 0, 100).await.unwrap();
        assert_eq!(
            stored.last().unwrap().agent_id.as_deref(),
            Some("agent_7"),
            "stored and returned with its agent"
        );

        // with_agent → resolved: the customer is told, the queue forgets it.
        let resolved = svc
            .change_handoff(&agent, &conv, HandoffChange::Resolve)
            .await
            .unwrap();
        assert_eq!(resolved.handoff, Some(S::Resolved));
        let told = svc.history(&alice(), &conv, 0, 100).await.unwrap();
        assert_eq!(
            told.last().unwrap().text,
            svc.dialogue.messages_in(None).render("agent.resolved", &[])
        );
        assert!(svc
            .handoffs(&agent, S::WithAgent, 50)
            .await
            .unwrap()
            .is_empty());
        assert!(slots_of(&store, &conv).await.agent.is_none());

        // resolved → bot with the customer's next message, which the bot answers; asking for
        // a person again hands off again.
        let next = svc
            .post(&alice(), msg("where is my order?", Some(&conv), None))
            .await
            .unwrap();
        assert!(!next.replies.is_empty());
        assert_eq!(handoff_of(&store, &conv).await, Handoff::Bot);
        let again = svc
            .post(
                &alice(),
                msg("I want to talk to a person", Some(&conv), None),
            )
            .await
            .unwrap();
        assert_eq!(again.facts.ending, Ending::Handoff, "a second handoff");
        assert_eq!(handoff_of(&store, &conv).await.state(), S::Waiting);

        // waiting → bot on release: out of the queue, the dialogue's flag cleared.
        let released = svc.take_over(&agent, &conv, false).await.unwrap();
        assert_eq!(released.handoff, Some(S::Bot));
        assert!(!slots_of(&store, &conv).await.handoff_requested);
        assert!(svc
            .handoffs(&agent, S::Waiting, 50)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_change_that_does_not_apply_is_409_and_writes_nothing() {
        use crate::auth::Role as R;
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let conv = svc
            .post(&alice(), msg("hi", None, None))
            .await
            .unwrap()
            .conversation_id;
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv.clone(),
        };
        let (ann, bob) = (
            as_role("agent_ann", "t", R::Agent),
            as_role("agent_bob", "t", R::Agent),
        );
        let unchanged = |before: usize| {
            let store = store.clone();
            let key = key.clone();
            async move { assert_eq!(store.message_count(&key), before, "nothing written") }
        };
        let n = store.message_count(&key);

        // The bot has it: nothing to resolve; releasing it is a repeat.
        let e = svc
            .change_handoff(&ann, &conv, HandoffChange::Resolve)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(e.to_string().contains("no handoff to resolve"), "{e}");
        svc.change_handoff(&ann, &conv, HandoffChange::Release)
            .await
            .unwrap();
        unchanged(n).await;

        // Ann holds it: Bob may not take it from her; Ann taking it again is a repeat.
        svc.take_over(&ann, &conv, true).await.unwrap();
        let n = store.message_count(&key);
        let e = svc.take_over(&bob, &conv, true).await.unwrap_err();
        assert_eq!(e.status(), 409);
        assert!(e.to_string().contains("agent_ann"), "{e}");
        svc.take_over(&ann, &conv, true).await.unwrap();
        unchanged(n).await;

        // Nor hand it back, resolve it or write in it behind her back; an admin may.
        for change in [HandoffChange::Release, HandoffChange::Resolve] {
            let e = svc.change_handoff(&bob, &conv, change).await.unwrap_err();
            assert_eq!(e.status(), 409);
            assert!(e.to_string().contains("agent_ann holds"), "{e}");
        }
        let e = svc
            .agent_reply(&bob, &conv, agent_msg("let me", None))
            .await
            .unwrap_err();
        assert_eq!(e.status(), 409);
        unchanged(n).await;
        let ada = as_role("admin_ada", "t", R::Admin);
        svc.agent_reply(&ada, &conv, agent_msg("stepping in", None))
            .await
            .unwrap();

        // Resolved: resolving again is a repeat, releasing does not apply.
        svc.change_handoff(&ann, &conv, HandoffChange::Resolve)
            .await
            .unwrap();
        let n = store.message_count(&key);
        svc.change_handoff(&ann, &conv, HandoffChange::Resolve)
            .await
            .unwrap();
        let e = svc.take_over(&ann, &conv, false).await.unwrap_err();
        assert_eq!(e.status(), 409);
        unchanged(n).await;
        // …and an agent may pick a resolved conversation up again.
        let again = svc.take_over(&bob, &conv, true).await.unwrap();
        assert_eq!(again.handoff, Some(crate::handoff::HandoffState::WithAgent));

        // Customers may not change or list handoffs.
        for change in [
            HandoffChange::TakeOver,
            HandoffChange::Release,
            HandoffChange::Resolve,
        ] {
            let e = svc
                .change_handoff(&alice(), &conv, change)
                .await
                .unwrap_err();
            assert_eq!(e.status(), 403);
        }
        let e = svc
            .handoffs(&alice(), crate::handoff::HandoffState::Waiting, 10)
            .await
            .unwrap_err();
        assert_eq!(e.status(), 403);
    }

    #[tokio::test]
    async fn the_queue_is_oldest_first_and_the_tenants_own() {
        use crate::auth::Role as R;
        use crate::handoff::HandoffState as S;
        let store = Arc::new(MemoryStore::new());
        let t0 = OffsetDateTime::now_utc() - time::Duration::minutes(10);
        let step = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let tick = step.clone();
        // Each turn a minute after the one before: waits that differ.
        let svc = service(store.clone()).with_clock(Arc::new(move || {
            t0 + time::Duration::minutes(tick.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        }));
        let mut asked = Vec::new();
        for who in ["carol", "alice", "bob"] {
            let r = svc
                .post(
                    &Principal::customer("t", who),
                    msg("I want to talk to a person", None, None),
                )
                .await
                .unwrap();
            asked.push(r.conversation_id);
        }
        let elsewhere = Principal::customer("other", "dave");
        svc.post(&elsewhere, msg("I want to talk to a person", None, None))
            .await
            .unwrap();

        let agent = as_role("agent_7", "t", R::Agent);
        let queue = svc.handoffs(&agent, S::Waiting, 50).await.unwrap();
        let ids: Vec<&str> = queue.iter().map(|h| h.conversation_id.as_str()).collect();
        assert_eq!(ids, asked.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(queue[0].waited_secs > queue[2].waited_secs);
        assert_eq!(queue[0].language.as_deref(), Some("en"));
        assert_eq!(svc.handoffs(&agent, S::Waiting, 2).await.unwrap().len(), 2);
        let theirs = as_role("agent_9", "other", R::Agent);
        assert_eq!(
            svc.handoffs(&theirs, S::Waiting, 50).await.unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_customer_never_reads_internal_messages_but_reads_past_them() {
        use crate::auth::Role as R;
        let store = Arc::new(MemoryStore::new());
        let svc = service(store.clone());
        let first = svc.post(&alice(), msg("hi", None, None)).await.unwrap();
        let conv = first.conversation_id.clone();
        let key = ConversationKey {
            tenant: "t".into(),
            id: conv.clone(),
        };
        // A note for the agents only, written last (as a job writes one while an agent holds
        // the conversation).
        let snap = store.load(&key, 0).await.unwrap().unwrap();
        let c = snap.conversation;
        let version = c.version;
        let note = Message {
            internal: true,
            ..Message::new(c.last_seq + 1, Role::Bot, "for the agent", c.updated_at)
        };
        store
            .commit(Commit {
                conversation: Conversation {
                    version: version + 1,
                    last_seq: note.seq,
                    ..c
                },
                expected_version: version,
                messages: vec![note.clone()],
                turn: None,
                effect: None,
                jobs: vec![],
            })
            .await
            .unwrap();
        let after = first.replies.last().unwrap().seq;
        let page = svc.history_page(&alice(), &conv, after, 50).await.unwrap();
        assert!(page.messages.is_empty(), "hidden from the customer");
        assert_eq!(page.next_after, note.seq, "and read past");
        let agent = as_role("agent_7", "t", R::Agent);
        let page = svc.history_page(&agent, &conv, after, 50).await.unwrap();
        assert_eq!(page.messages, vec![note]);
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

    /// Two orders: 1001 on its way and on time, 1002 late.
    struct TwoOrders;
    impl TwoOrders {
        fn one(id: &str) -> Option<Order> {
            let now = OffsetDateTime::now_utc();
            let (placed, due, item) = match id {
                "1001" => (3, 2, "Wireless Mouse"),
                "1002" => (12, -4, "Desk Lamp"),
                _ => return None,
            };
            Some(Order {
                id: id.into(),
                customer_id: "alice".into(),
                status: crate::connectors::OrderStatus::InTransit,
                placed_at: now - time::Duration::days(placed),
                promised_by: Some(now + time::Duration::days(due)),
                delivered_at: None,
                carrier: None,
                tracking_url: None,
                total: crate::money::Money {
                    amount_cents: 4599,
                    currency: "USD".into(),
                },
                items: vec![crate::connectors::OrderItem {
                    name: item.into(),
                    quantity: 1,
                }],
                payment_ref: None,
            })
        }
    }
    #[async_trait]
    impl OrdersPort for TwoOrders {
        async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
            Ok(["1001", "1002"].into_iter().filter_map(Self::one).collect())
        }
        async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
            Ok(Self::one(id))
        }
    }

    fn two_orders(store: &Arc<MemoryStore>) -> TurnService {
        TurnService::new(
            store.clone(),
            Dialogue::new(Arc::new(TwoOrders)),
            ChatSettings::default(),
        )
    }

    fn pressed(conv: &str, q: &crate::conversation::QuickReply) -> PostMessage {
        PostMessage {
            quick_reply: Some(q.value.clone()),
            ..msg(&q.label, Some(conv), None)
        }
    }

    #[tokio::test]
    async fn buttons_offer_each_order_then_yes_and_no_and_are_stored_with_the_message() {
        let store = Arc::new(MemoryStore::new());
        let svc = two_orders(&store);
        let which = svc
            .post(&alice(), msg("where is my order?", None, None))
            .await
            .unwrap();
        let conv = which.conversation_id.clone();
        let asked = which.replies.last().unwrap();
        let values: Vec<&str> = asked
            .quick_replies
            .iter()
            .map(|q| q.value.as_str())
            .collect();
        assert_eq!(values, ["1001", "1002"], "{asked:?}");
        let late = asked.quick_replies[1].clone();
        assert_eq!(late.label, "#1002 (Desk Lamp)");
        assert!(
            which.replies[..which.replies.len() - 1]
                .iter()
                .all(|m| m.quick_replies.is_empty()),
            "only the question offers"
        );

        let offer = svc.post(&alice(), pressed(&conv, &late)).await.unwrap();
        assert_eq!(
            offer.message.text, "#1002 (Desk Lamp)",
            "the label is what was said"
        );
        let offered = &offer.replies.last().unwrap().quick_replies;
        let labels: Vec<&str> = offered.iter().map(|q| q.label.as_str()).collect();
        assert_eq!(labels, ["Yes", "No"], "{offer:?}");

        let yes = svc
            .post(&alice(), pressed(&conv, &offered[0]))
            .await
            .unwrap();
        assert!(
            yes.replies
                .iter()
                .any(|m| m.text.contains("requested a refund")),
            "{yes:?}"
        );
        assert_eq!(store.take_outbox()[0].key, "refund:t:1002");
        assert!(yes.replies.iter().all(|m| m.quick_replies.is_empty()));

        // The history keeps each message's buttons.
        let history = svc.history(&alice(), &conv, 0, 50).await.unwrap();
        let kept: Vec<usize> = history.iter().map(|m| m.quick_replies.len()).collect();
        assert!(
            kept.contains(&2) && kept.iter().filter(|n| **n > 0).count() == 2,
            "{kept:?}"
        );
    }

    #[tokio::test]
    async fn a_value_is_read_only_while_the_latest_message_offers_it() {
        let store = Arc::new(MemoryStore::new());
        let svc = two_orders(&store);
        let which = svc
            .post(&alice(), msg("where is my order?", None, None))
            .await
            .unwrap();
        let conv = which.conversation_id.clone();
        // Offered: the value decides, whatever the label says.
        let chosen = svc
            .post(
                &alice(),
                PostMessage {
                    quick_reply: Some("1001".into()),
                    ..msg("the one with the blue box", Some(&conv), None)
                },
            )
            .await
            .unwrap();
        assert!(chosen.replies[0].text.contains("#1001"), "{chosen:?}");
        assert_eq!(
            chosen.message.text, "#1001 (Wireless Mouse)",
            "kept as the button the bot offered, not the client's words"
        );
        // No longer offered (nothing is): the text is read, as typed; the stale value is not.
        let stale = svc
            .post(
                &alice(),
                PostMessage {
                    quick_reply: Some("1002".into()),
                    ..msg("thanks, bye", Some(&conv), None)
                },
            )
            .await
            .unwrap();
        assert!(
            stale.replies.iter().all(|m| !m.text.contains("#1002")),
            "{stale:?}"
        );
        assert!(
            store.take_outbox().is_empty(),
            "no action from a stale button"
        );
        // A blank or oversized value is refused before anything is read or stored.
        for bad in ["  ".to_string(), "x".repeat(MAX_QUICK_REPLY_CHARS + 1)] {
            let err = svc
                .post(
                    &alice(),
                    PostMessage {
                        quick_reply: Some(bad),
                        ..msg("yes", Some(&conv), None)
                    },
                )
                .await
                .unwrap_err();
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn bot_messages_carry_their_links_and_the_last_one_the_buttons() {
        let yes = crate::conversation::QuickReply {
            label: "Yes".into(),
            value: "Yes".into(),
        };
        let said = Message::from_bot(
            5,
            [
                "Retry here: https://pay.example/r/1.".to_string(),
                "Need anything else?".to_string(),
            ],
            vec![yes.clone()],
            Some(4),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(said.iter().map(|m| m.seq).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(said[0].links[0].url, "https://pay.example/r/1");
        assert!(said[0].quick_replies.is_empty() && said[1].links.is_empty());
        assert_eq!(said[1].quick_replies, [yes]);
        assert!(said
            .iter()
            .all(|m| m.reply_to == Some(4) && m.role == Role::Bot));
    }

    #[tokio::test]
    async fn yes_buttons_read_as_yes_in_every_language_of_the_bundle() {
        for (language, asked, yes) in [
            ("en", "is order 1002 late?", "Yes"),
            ("es", "¿el pedido 1002 llega tarde?", "Sí"),
            ("fr", "la commande 1002 est-elle en retard ?", "Oui"),
            ("de", "ist die Bestellung 1002 verspätet?", "Ja"),
        ] {
            let store = Arc::new(MemoryStore::new());
            let svc = two_orders(&store);
            let offer = svc
                .post(
                    &alice(),
                    PostMessage {
                        language: Some(language.into()),
                        ..msg(asked, None, None)
                    },
                )
                .await
                .unwrap();
            let offered = &offer.replies.last().unwrap().quick_replies;
            assert_eq!(offered[0].label, yes, "{language}: {offer:?}");
            svc.post(&alice(), pressed(&offer.conversation_id, &offered[0]))
                .await
                .unwrap();
            let jobs = store.take_outbox();
            assert_eq!(jobs.len(), 1, "{language}: the refund starts");
            assert_eq!(jobs[0].key, "refund:t:1002");
        }
    }

    #[tokio::test]
    async fn an_offer_made_before_a_takeover_is_not_taken_by_a_yes_after_it() {
        let store = Arc::new(MemoryStore::new());
        let svc = two_orders(&store);
        let offer = svc
            .post(&alice(), msg("is order 1002 late?", None, None))
            .await
            .unwrap();
        let conv = offer.conversation_id.clone();
        assert!(!offer.replies.last().unwrap().quick_replies.is_empty());
        let ann = Principal {
            role: crate::auth::Role::Agent,
            ..Principal::customer("t", "agent_ann")
        };
        svc.take_over(&ann, &conv, true).await.unwrap();
        svc.take_over(&ann, &conv, false).await.unwrap();
        svc.post(&alice(), msg("yes", Some(&conv), None))
            .await
            .unwrap();
        assert!(
            store.take_outbox().is_empty(),
            "the yes answered no pending offer: the agent had the conversation in between"
        );
    }
}
