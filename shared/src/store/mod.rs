//! Conversation memory: the port, and its DynamoDB and in-memory adapters.
//!
//! A conversation is one DynamoDB partition: a state record (dialogue state, slots, version) and
//! one item per message, so no item grows with the conversation. Every write is one conditional
//! transaction that names the version it read; a writer that lost a race reloads and tries again.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::conversation::{Conversation, ConversationKey, ConversationSummary, Message};
use crate::jobs::Job;

/// What a turn reads: the conversation record and its most recent messages (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub conversation: Conversation,
    pub recent: Vec<Message>,
}

/// What a turn answered, kept under its `client_message_id` so a retry gets the same answer.
/// (Records written before the outbox also hold the turn's jobs; they are ignored: the jobs
/// went out with that turn.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    pub message: Message,
    pub replies: Vec<Message>,
    /// The language the turn answered in (absent in records written before there were several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// One atomic write: the new conversation record plus what it adds.
#[derive(Debug, Clone)]
pub struct Commit {
    /// The record to store; its `version` must be `expected_version + 1`.
    pub conversation: Conversation,
    /// The version read; 0 means the conversation must not exist yet.
    pub expected_version: u64,
    pub messages: Vec<Message>,
    /// Stored under this id with a must-not-exist condition.
    pub turn: Option<(String, TurnRecord)>,
    /// Completes an effect begun with [`EffectLedger::begin`], in the same transaction, so the
    /// message and the effect's completion are written together or not at all.
    pub effect: Option<EffectCompletion>,
    /// The jobs this commit starts, written as outbox items in the same transaction: the relay
    /// sends them to the queue from the table's stream, so a job exists exactly when the commit
    /// that promised it does (see `relay`).
    pub jobs: Vec<Job>,
}

/// How an effect ended.
impl Commit {
    /// The jobs the commit starts: its own, and the sending of each message it writes to a
    /// conversation held in a messaging channel (in the same transaction: see
    /// `channels::outbound`).
    pub fn outbox(&self) -> Vec<Job> {
        let mut jobs = self.jobs.clone();
        jobs.extend(crate::channels::outbound::deliveries(
            &self.conversation,
            &self.messages,
        ));
        jobs
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectOutcome {
    Done,
    /// Refused for good (a business rule, a 4xx): recorded so it is never retried.
    Failed,
}

impl EffectOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EffectOutcome::Done => "done",
            EffectOutcome::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectCompletion {
    /// The job's idempotency key.
    pub key: String,
    /// The token `begin` handed out: only the holder of the lease completes.
    pub token: String,
    pub outcome: EffectOutcome,
}

/// A delivery's hold on an effect, from [`EffectLedger::begin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Completes (or abandons) the effect; a holder whose lease was taken over has a stale one.
    pub token: String,
    /// Which start of the effect this is (1 for the first): the job's own attempts, whatever
    /// its queue messages went through.
    pub attempt: u32,
    /// When the effect was first started, so a job can keep trying for a bounded time.
    pub first_started: time::OffsetDateTime,
    /// What an earlier delivery's call to the outside world answered (a refund's receipt, as
    /// JSON), kept with [`EffectLedger::record_receipt`]: the call happened, and is not made
    /// again, whatever became of that delivery.
    pub receipt: Option<String>,
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// Ours until the lease ends: do the work, then complete with this lease's token.
    Started(Lease),
    /// Completed (done or failed) by an earlier delivery: nothing to do.
    Finished,
    /// Another delivery holds a live lease: try again later.
    Busy,
}

/// Where an effect stands, as the ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EffectState {
    InProgress,
    /// Out of attempts: on the dead-letter queue, where the team's alarm points, until a
    /// redrive starts it again.
    SetAside,
    Finished(EffectOutcome),
}

/// Records each effect's progress (in progress with a lease, then done or failed), so that a
/// redelivered job never repeats its effect and a crashed one is taken over when its lease ends.
#[async_trait]
pub trait EffectLedger: Send + Sync {
    async fn begin(
        &self,
        tenant: &str,
        key: &str,
        lease: std::time::Duration,
        now: time::OffsetDateTime,
    ) -> Result<Begin, StoreError>;

    /// Where the effect with this key stands; `None` when it was never begun.
    async fn state(&self, tenant: &str, key: &str) -> Result<Option<EffectState>, StoreError>;

    /// Ends the lease at once (after a transient failure), so the retry need not wait for it.
    async fn abandon(&self, tenant: &str, key: &str, token: &str) -> Result<(), StoreError>;

    /// Completes an effect that wrote no message (an email, a dropped event), with the jobs it
    /// starts as outbox items in the same transaction. A holder that lost its lease gets
    /// `DuplicateEffect`.
    async fn complete(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        outcome: EffectOutcome,
        jobs: &[Job],
    ) -> Result<(), StoreError>;

    /// Keeps what the effect's call to the outside world answered (a refund's receipt), for the
    /// holder of the lease only, right after the call: every later `begin` of the effect hands
    /// it back (after a retry, a takeover, a set-aside and redrive), so the call is not made
    /// again once the provider has forgotten its idempotency key. A holder that lost its lease
    /// gets `DuplicateEffect` and keeps nothing.
    async fn record_receipt(
        &self,
        tenant: &str,
        key: &str,
        token: &str,
        receipt: &str,
    ) -> Result<(), StoreError>;

    /// Sets a job that ran out of attempts aside for a redrive: its lease ends, its attempts
    /// count from zero again (a redriven job gets its whole budget), and its state reads
    /// `SetAside` until it is begun again.
    async fn set_aside(&self, tenant: &str, key: &str, token: &str) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StoreError {
    /// Someone else wrote the conversation since it was read.
    #[error("conversation changed since it was read")]
    Conflict,
    /// A turn with this client message id is already stored.
    #[error("client message id already used")]
    DuplicateTurn,
    /// This effect was already applied.
    #[error("effect already applied")]
    DuplicateEffect,
    #[error("conversation store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    /// The record and the `window` most recent messages, in one read.
    async fn load(
        &self,
        key: &ConversationKey,
        window: usize,
    ) -> Result<Option<Snapshot>, StoreError>;

    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;

    async fn turn_record(
        &self,
        key: &ConversationKey,
        client_message_id: &str,
    ) -> Result<Option<TurnRecord>, StoreError>;

    /// The record, and up to `limit` messages with `seq > after`, oldest first.
    async fn history(
        &self,
        key: &ConversationKey,
        after: u64,
        limit: usize,
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError> {
        self.history_if(key, after, limit, &|_| true).await
    }

    /// `history` for a caller who may read the conversation only if `may_read` accepts its
    /// record: `None` if there is none or it is refused. The record is read and checked before
    /// any message is, so a conversation the caller may not read costs the reads a missing one
    /// does (no existence oracle in the count of reads or their latency).
    async fn history_if(
        &self,
        key: &ConversationKey,
        after: u64,
        limit: usize,
        may_read: &(dyn for<'c> Fn(&'c Conversation) -> bool + Send + Sync),
    ) -> Result<Option<(Conversation, Vec<Message>)>, StoreError>;

    /// A customer's conversations, most recently updated first.
    async fn conversations_of(
        &self,
        tenant: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<ConversationSummary>, StoreError>;

    /// The tenant's conversations in a queued handoff `state` (waiting, with an agent), oldest
    /// first (by when they began waiting), at most `limit`: read off the sparse queue index,
    /// never a scan. The index is eventually consistent: an entry may lag its record by a moment.
    async fn handoffs(
        &self,
        tenant: &str,
        state: crate::handoff::HandoffState,
        limit: usize,
    ) -> Result<Vec<crate::handoff::QueueEntry>, StoreError>;

    /// Deletes the customer's conversations with all their items (messages, turn records): the
    /// right to erasure. A call may stop after a bounded number (`complete` false); repeating
    /// it finishes, and a repeat after that finds nothing left.
    async fn erase_customer(&self, tenant: &str, customer_id: &str) -> Result<Erasure, StoreError>;
}

/// How many conversations one erasure call deletes; the caller repeats until `complete`.
pub const MAX_ERASED_PER_CALL: usize = 25;

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub conversations_deleted: usize,
    pub items_deleted: usize,
    /// False when the customer had more conversations than one call erases: call again.
    pub complete: bool,
}

impl Default for Erasure {
    /// Nothing erased, nothing left.
    fn default() -> Self {
        Self {
            conversations_deleted: 0,
            items_deleted: 0,
            complete: true,
        }
    }
}

/// A commit's jobs, each key once: the same effect started twice by one commit is one outbox
/// item (in DynamoDB, two writes of one item in a transaction would fail it).
pub(crate) fn distinct_jobs(jobs: &[Job]) -> impl Iterator<Item = &Job> {
    let mut seen = std::collections::HashSet::new();
    jobs.iter().filter(move |j| seen.insert(j.key.as_str()))
}

/// Writes that lose a race are retried this many times before the caller is told to retry.
pub const MAX_COMMIT_ATTEMPTS: u32 = 6;

/// A short, growing, jittered pause between attempts, so racing writers spread out.
pub async fn backoff(attempt: u32) {
    let base_ms = 5u64 << attempt.min(5);
    let jitter = u64::from(ulid::Ulid::new().random() as u32 % 1000) * base_ms / 1000;
    // Waiting, not work: counted with the I/O it retries.
    crate::io_clock::io(tokio::time::sleep(std::time::Duration::from_millis(
        base_ms / 2 + jitter,
    )))
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobKind;

    #[test]
    fn a_commit_writes_each_job_key_once_in_order() {
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c".into(),
        };
        let handoff = |reason: &str| {
            Job::new(
                &key,
                "alice",
                JobKind::AgentHandoff {
                    reason: reason.into(),
                    order_id: None,
                },
            )
        };
        let jobs = [handoff("a"), handoff("b"), handoff("a")];
        let kept: Vec<&str> = distinct_jobs(&jobs).map(|j| j.key.as_str()).collect();
        assert_eq!(kept, ["handoff:t:c:a:-", "handoff:t:c:b:-"]);
    }
}
