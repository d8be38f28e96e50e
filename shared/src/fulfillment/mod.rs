//! Fulfillment: jobs from the FIFO queue, each effect applied once.
//!
//! - A batch's FIFO groups (one per conversation or customer) run concurrently; within a group,
//!   in order. Once a job of a group fails, the later jobs of that group in the batch are
//!   reported failed unprocessed, so order holds through retries.
//! - Each job's effect is begun in the ledger (in progress, with a lease that ends with the
//!   invocation) and completed in the same transaction as the message it writes, so a
//!   redelivered job never repeats its effect and a crashed one is taken over later.
//! - The jobs a job starts (a confirmation email, a handoff) are outbox items in the same
//!   transaction that completes it: they exist exactly when it is done (see `relay`).
//! - Transient failures (timeouts, 5xx, 429, a contended conversation) are reported as item
//!   failures and come back after a delay that grows with the job's own attempts
//!   (`ChangeMessageVisibility`); after `max_attempts` of them the job is put on the
//!   dead-letter queue here, and the jobs behind it go on. A deferred answer keeps trying while
//!   the company's system is down, for `deferred_for`, then says so and offers a person.
//!   Permanent failures (4xx, business rules) are recorded, the customer is told, and the job
//!   is not retried; a message that is not a job goes to the dead-letter queue at once.

mod channel;
mod connector_write;
pub mod dead_letter;
mod handlers;
mod handoff;
mod refund;
pub mod retry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use time::OffsetDateTime;

use crate::bot::messages::Messages;
use crate::connectors::{
    ConnectorError, CustomersPort, EmailPort, OperationsPort, OrdersPort, PaymentsPort,
};
use crate::conversation::{Conversation, ConversationKey, DialogueState, Message, QuickReply};
use crate::dialogue::Dialogue;
use crate::jobs::{Job, JobKind};
use crate::metrics;
use crate::store::{
    backoff, Begin, Commit, ConversationStore, EffectCompletion, EffectLedger, EffectOutcome,
    Lease, StoreError, MAX_COMMIT_ATTEMPTS,
};
use dead_letter::DeadLetters;
use retry::{RetryPolicy, VisibilityControl};

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("message body is not a job: {0}")]
    Malformed(String),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("conversation kept changing; will retry")]
    Contended,
    #[error("another delivery of this job is running")]
    Busy,
    /// A deferred answer's lookups failed for a reason that may pass (a system down).
    #[error("a company system could not answer yet")]
    SystemDown,
    /// Its earlier attempts ended without an outcome (crashes, timeouts) this many times.
    #[error("out of attempts after {0} starts that never finished")]
    OutOfAttempts(u32),
    /// The checks before paying refused the refund: nothing was paid.
    #[error("refund refused: {0}")]
    RefundRefused(#[from] crate::refunds::Refusal),
}

impl JobError {
    /// Worth retrying later: the same job may well succeed then.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Connector(e) => e.is_transient(),
            JobError::Store(StoreError::Corrupt(_)) => false,
            JobError::Store(_) | JobError::Contended | JobError::Busy | JobError::SystemDown => {
                true
            }
            // Nothing here can make them right: they go to the dead-letter queue.
            JobError::Malformed(_) | JobError::OutOfAttempts(_) => false,
            JobError::RefundRefused(_) => false,
        }
    }
}

/// What becomes of a job's message after it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Back on the queue after this delay.
    Retry(Duration),
    /// Onto the dead-letter queue, after this many attempts (receives, for a message that is
    /// not a job).
    DeadLetter { attempts: u32 },
}

/// A job that did not finish, and what becomes of it.
#[derive(Debug)]
pub struct Failure {
    pub error: JobError,
    pub next: Next,
}

/// The systems fulfillment reaches.
pub struct Systems {
    pub payments: Arc<dyn PaymentsPort>,
    pub customers: Arc<dyn CustomersPort>,
    pub orders: Arc<dyn OrdersPort>,
    pub email: Arc<dyn EmailPort>,
    /// The company's own operations, for the writes flows start.
    pub operations: Arc<dyn OperationsPort>,
    /// Answers deferred questions with the same flows as a chat turn.
    pub dialogue: Arc<Dialogue>,
    /// The messaging channels (config/channels.toml) whose messages are turns here.
    pub channels: crate::channels::config::Channels,
    /// Sends through the channels' providers (the connectors' `*.send_message`).
    pub channel_sender: Option<Arc<dyn crate::connectors::ChannelSendPort>>,
    /// Where handoffs are announced (the support team's inbox); without one, flagged
    /// conversations wait for agent tooling to list them.
    pub agent_inbox: Option<String>,
    /// The agent console's address (`CONSOLE_URL`): the handoff email links the conversation
    /// there, so an agent opens it with one click.
    pub console_url: Option<String>,
}

/// SQS's count of this message's receives (1 on the first delivery).
fn receives(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// What a batch leaves itself at the end of an invocation to report its outcome.
const INVOCATION_MARGIN_MS: i64 = 2_000;

pub struct Fulfillment {
    store: Arc<dyn ConversationStore>,
    /// Runs a channel message's turn exactly as the chat API runs one.
    turns: crate::turn::TurnService,
    ledger: Arc<dyn EffectLedger>,
    systems: Systems,
    visibility: Arc<dyn VisibilityControl>,
    dead_letters: Arc<dyn DeadLetters>,
    policy: RetryPolicy,
    default_lease: Duration,
}

/// A change to the conversation record made with the append (slots, flags).
pub(crate) use crate::conversation::RecordUpdate;

/// How a message changes the conversation it is appended to.
pub(crate) struct Append<'a> {
    pub key: ConversationKey,
    /// Set when the conversation may be opened by this message.
    pub customer_if_new: Option<&'a str>,
    pub texts: Vec<String>,
    /// What the last text offers as buttons.
    pub quick_replies: Vec<QuickReply>,
    pub reply_to: Option<u64>,
    pub state: Option<DialogueState>,
    pub update: Option<RecordUpdate<'a>>,
    /// Jobs the append starts, as outbox items in its transaction.
    pub jobs: Vec<Job>,
    /// A note for the agents only (what a channel could not deliver): never sent to the
    /// customer, and it changes nothing the dialogue reads.
    pub internal: bool,
}

impl<'a> Append<'a> {
    pub fn text(key: ConversationKey, text: String) -> Self {
        Self {
            key,
            customer_if_new: None,
            texts: vec![text],
            quick_replies: Vec::new(),
            reply_to: None,
            state: None,
            update: None,
            jobs: Vec::new(),
            internal: false,
        }
    }
}

/// A job whose effect this delivery holds.
pub(crate) struct Started<'a> {
    pub job: &'a Job,
    pub lease: Lease,
}

impl Started<'_> {
    fn token(&self) -> &str {
        &self.lease.token
    }
}

/// What a delivery did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Applied,
    AlreadyApplied,
    FailedPermanently,
    /// Out of attempts: on the dead-letter queue (and off the jobs queue).
    DeadLettered,
}

impl Fulfillment {
    pub fn new(
        store: Arc<dyn ConversationStore>,
        ledger: Arc<dyn EffectLedger>,
        systems: Systems,
        visibility: Arc<dyn VisibilityControl>,
        dead_letters: Arc<dyn DeadLetters>,
        policy: RetryPolicy,
    ) -> Self {
        let turns = crate::turn::TurnService::with_shared(
            store.clone(),
            systems.dialogue.clone(),
            crate::config::ChatSettings::default(),
        );
        Self {
            store,
            turns,
            ledger,
            systems,
            visibility,
            dead_letters,
            policy,
            default_lease: Duration::from_secs(60),
        }
    }

    /// What a job tells the customer is said in their conversation's language (the job's).
    fn messages(&self, job: &Job) -> Arc<Messages> {
        self.systems.dialogue.messages_in(job.language.as_deref())
    }

    /// The chat API's limits (MAX_TEXT_CHARS, HISTORY_WINDOW) for the channel turns run here.
    pub fn with_chat_settings(mut self, settings: crate::config::ChatSettings) -> Self {
        self.turns = crate::turn::TurnService::with_shared(
            self.store.clone(),
            self.systems.dialogue.clone(),
            settings,
        );
        self
    }

    /// The lease a job gets when the runtime gives no usable deadline (Lambda always does; a
    /// local emulator may not): the function's timeout is the honest value.
    pub fn with_default_lease(mut self, lease: Duration) -> Self {
        self.default_lease = lease;
        self
    }

    /// Handles a batch; `deadline` is when the invocation ends (Unix ms), which bounds how long
    /// this delivery holds each job's lease.
    pub async fn handle(&self, event: SqsEvent, deadline_ms: Option<i64>) -> SqsBatchResponse {
        // Groups in order of first appearance; each group's records in batch order.
        let mut order: Vec<String> = Vec::new();
        let mut groups: HashMap<String, Vec<&SqsMessage>> = HashMap::new();
        for (i, record) in event.records.iter().enumerate() {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                // A standard queue has no groups: every message is its own.
                .unwrap_or_else(|| format!("#{i}"));
            if !groups.contains_key(&group) {
                order.push(group.clone());
            }
            groups.entry(group).or_default().push(record);
        }
        let runs = order
            .iter()
            .map(|g| self.run_group(&groups[g], deadline_ms));
        let all = futures_util::future::join_all(runs);
        // Connector retries that would outlast the invocation are not started: the batch
        // reports its failures instead of being killed with nothing reported.
        let now_ms = crate::clock::now_ms();
        let failed: Vec<Vec<(&SqsMessage, Duration)>> = match deadline_ms {
            Some(d) if d - now_ms > INVOCATION_MARGIN_MS => {
                let until = tokio::time::Instant::now()
                    + std::time::Duration::from_millis((d - now_ms - INVOCATION_MARGIN_MS) as u64);
                crate::connectors::resilience::with_deadline(until, all).await
            }
            // cargo-lambda's deadline has already passed: no bound.
            _ => all.await,
        };

        let mut response = SqsBatchResponse::default();
        let mut delays = Vec::new();
        for (record, delay) in failed.into_iter().flatten() {
            let id = record.message_id.clone().unwrap_or_default();
            response.add_failure(id);
            if let Some(receipt) = record.receipt_handle.as_deref() {
                delays.push(self.visibility.delay(
                    record.event_source_arn.as_deref(),
                    receipt,
                    delay,
                ));
            }
        }
        for result in futures_util::future::join_all(delays).await {
            if let Err(e) = result {
                // The queue's own visibility timeout applies instead: later, never lost.
                tracing::warn!(error = %e, "could not set the retry delay");
            }
        }
        response
    }

    /// Runs one group's records in order; returns the ones to hand back to the queue, with
    /// when each may come back. Only the failed job waits out its retry delay. The ones held
    /// back behind it are released at once: the failed one, still in flight, keeps the FIFO
    /// group locked, and when it returns the group resumes in order. (Giving them a delay of
    /// their own can let one become receivable before the failed job: moto then delivers the
    /// group out of order.) A job out of attempts goes to the dead-letter queue and the group
    /// goes on.
    async fn run_group<'r>(
        &self,
        records: &[&'r SqsMessage],
        deadline_ms: Option<i64>,
    ) -> Vec<(&'r SqsMessage, Duration)> {
        let mut failed = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let id = record.message_id.as_deref().unwrap_or_default();
            let delay = match self.process(record, deadline_ms).await {
                Ok(done) => {
                    tracing::info!(message_id = id, outcome = ?done, "job finished");
                    continue;
                }
                Err(Failure {
                    error,
                    next: Next::DeadLetter { attempts },
                }) => match self.dead_letter(record, &error, attempts).await {
                    Ok(()) => continue,
                    // Not on the dead-letter queue, so not off the jobs queue: it comes back.
                    Err(delay) => delay,
                },
                Err(Failure {
                    error,
                    next: Next::Retry(delay),
                }) => {
                    tracing::warn!(message_id = id, error = %error, delay_secs = delay.as_secs(), "job failed");
                    delay
                }
            };
            failed.push((*record, delay));
            for later in &records[i + 1..] {
                tracing::info!(message_id = ?later.message_id, "held back: an earlier job of its group failed");
                failed.push((*later, Duration::ZERO));
            }
            break;
        }
        failed
    }

    /// Puts a message that is out of attempts on the dead-letter queue; if that fails, the
    /// delay after which it comes back to be tried there again.
    async fn dead_letter(
        &self,
        record: &SqsMessage,
        error: &JobError,
        attempts: u32,
    ) -> Result<(), Duration> {
        let id = record.message_id.as_deref().unwrap_or_default();
        let reason = error.to_string();
        match self.dead_letters.put(record, &reason, attempts).await {
            Ok(()) => {
                tracing::error!(message_id = id, attempts, %reason, "job dead-lettered");
                metrics::count("JobDeadLettered", &[]);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(message_id = id, error = %e, "could not dead-letter the job; it comes back");
                Err(self.policy.delay(receives(record)))
            }
        }
    }

    fn lease(&self, deadline_ms: Option<i64>) -> Duration {
        let now_ms = crate::clock::now_ms();
        match deadline_ms {
            // Until the invocation ends, plus a margin for clocks: a takeover never overlaps a
            // live holder.
            Some(d) if d > now_ms => Duration::from_millis((d - now_ms) as u64 + 2_000),
            // cargo-lambda hands out a deadline that has already passed.
            _ => self.default_lease,
        }
    }

    /// Runs one delivery of a job. What did not finish says what becomes of its message.
    pub async fn process(
        &self,
        record: &SqsMessage,
        deadline_ms: Option<i64>,
    ) -> Result<Done, Failure> {
        let receives = receives(record);
        let job: Job = match record.body.as_deref().map(serde_json::from_str::<Job>) {
            Some(Ok(job)) => job,
            other => {
                metrics::count("JobMalformed", &[]);
                let why = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "empty body".to_string(),
                };
                return Err(Failure {
                    error: JobError::Malformed(why),
                    next: Next::DeadLetter { attempts: receives },
                });
            }
        };
        // Failures before the job started are not its own attempts: the receive count paces them.
        let retry_later = |error: JobError| Failure {
            error,
            next: Next::Retry(self.policy.delay(receives)),
        };
        let job_type = job.kind.type_name();
        tracing::info!(job_type, job_key = %job.key, conversation = job.conversation_id.as_deref(), "processing job");
        let now = OffsetDateTime::now_utc();
        let lease = match self
            .ledger
            .begin(&job.tenant, &job.key, self.lease(deadline_ms), now)
            .await
        {
            Ok(Begin::Started(lease)) => lease,
            Ok(Begin::Finished) => {
                tracing::info!(job_key = %job.key, "already applied; nothing to do");
                return Ok(Done::AlreadyApplied);
            }
            Ok(Begin::Busy) => return Err(retry_later(JobError::Busy)),
            Err(e) => return Err(retry_later(e.into())),
        };
        let s = Started { job: &job, lease };
        let deferred = matches!(job.kind, JobKind::AnswerDeferred { .. });
        // Starts that never finished (crashes, timeouts) count too: such a job stops here
        // rather than crash again. A deferred answer keeps its time instead.
        if s.lease.attempt > self.policy.max_attempts && (!deferred || self.deferred_is_over(&s)) {
            let e = JobError::OutOfAttempts(s.lease.attempt - 1);
            return if deferred {
                self.give_up_deferred(&s).await.map_err(retry_later)
            } else {
                self.out_of_attempts(&s, record, e).await
            };
        }
        match self.apply(&s).await {
            Ok(done) => Ok(done),
            Err(e) if e.is_transient() => {
                metrics::count("JobRetried", &[("JobType", job_type)]);
                if deferred && self.deferred_is_over(&s) {
                    tracing::warn!(job_key = %job.key, error = %e, "deferred answer gave up");
                    return self.give_up_deferred(&s).await.map_err(retry_later);
                }
                if !deferred && s.lease.attempt >= self.policy.max_attempts {
                    return self.out_of_attempts(&s, record, e).await;
                }
                if let Err(ae) = self.ledger.abandon(&job.tenant, &job.key, s.token()).await {
                    tracing::warn!(error = %ae, "could not end the lease early");
                }
                let mut delay = self.policy.delay(s.lease.attempt);
                if deferred {
                    // Back in time for its last chance, not after it.
                    delay = delay
                        .min(self.deferred_left(&s))
                        .max(Duration::from_secs(1));
                }
                Err(Failure {
                    error: e,
                    next: Next::Retry(delay),
                })
            }
            Err(e) => {
                tracing::error!(job_type, job_key = %job.key, error = %e, "job failed permanently; recorded, not retried");
                metrics::count("JobFailed", &[("JobType", job_type)]);
                self.fail(&s, &e).await.map_err(retry_later)?;
                Ok(Done::FailedPermanently)
            }
        }
    }

    /// How much longer a deferred answer may keep trying: its time counts from the customer's
    /// question (from its first attempt for a job that does not say when that was).
    fn deferred_left(&self, s: &Started<'_>) -> Duration {
        let since = match &s.job.kind {
            JobKind::AnswerDeferred {
                asked_at: Some(at), ..
            } => *at,
            _ => s.lease.first_started,
        };
        // A question from the future (clock skew) has spent nothing yet.
        let spent = Duration::try_from(OffsetDateTime::now_utc() - since).unwrap_or_default();
        self.policy.deferred_for.saturating_sub(spent)
    }

    /// Whether a deferred answer has tried for as long as it may.
    fn deferred_is_over(&self, s: &Started<'_>) -> bool {
        self.deferred_left(s).is_zero()
    }

    /// A job out of attempts: its message goes to the dead-letter queue, then its effect is set
    /// aside (a redrive gets the whole budget again, and the customer is told it is with the
    /// team). In that order: a job whose put failed comes back still out of attempts and tries
    /// the put again, rather than starting over with a fresh budget; one whose set-aside failed
    /// comes back and is put again, a copy the ledger makes harmless.
    async fn out_of_attempts(
        &self,
        s: &Started<'_>,
        record: &SqsMessage,
        error: JobError,
    ) -> Result<Done, Failure> {
        let attempts = s.lease.attempt;
        if let Err(delay) = self.dead_letter(record, &error, attempts).await {
            // Its attempts stay spent; only the lease ends, so the next delivery may put it.
            if let Err(e) = self
                .ledger
                .abandon(&s.job.tenant, &s.job.key, s.token())
                .await
            {
                tracing::warn!(error = %e, "could not end the lease early");
            }
            return Err(Failure {
                error,
                next: Next::Retry(delay),
            });
        }
        match self
            .ledger
            .set_aside(&s.job.tenant, &s.job.key, s.token())
            .await
        {
            Ok(()) => Ok(Done::DeadLettered),
            Err(e) => Err(Failure {
                error: e.into(),
                next: Next::Retry(self.policy.delay(attempts)),
            }),
        }
    }

    /// Completes an effect that wrote no message.
    pub(crate) async fn finish(
        &self,
        s: &Started<'_>,
        outcome: EffectOutcome,
    ) -> Result<Done, JobError> {
        self.finish_with(s, outcome, Vec::new()).await
    }

    /// Completes an effect that wrote no message, with the jobs it starts.
    pub(crate) async fn finish_with(
        &self,
        s: &Started<'_>,
        outcome: EffectOutcome,
        jobs: Vec<Job>,
    ) -> Result<Done, JobError> {
        match self
            .ledger
            .complete(&s.job.tenant, &s.job.key, s.token(), outcome, &jobs)
            .await
        {
            Err(StoreError::DuplicateEffect) => return Ok(Done::AlreadyApplied),
            other => other?,
        }
        Ok(match outcome {
            EffectOutcome::Done => Done::Applied,
            EffectOutcome::Failed => Done::FailedPermanently,
        })
    }

    /// Appends bot messages and completes the effect in one transaction. The effect completes
    /// only for the holder of its lease, so a delivery that lost its lease writes nothing.
    pub(crate) async fn append(
        &self,
        s: &Started<'_>,
        a: Append<'_>,
        outcome: EffectOutcome,
    ) -> Result<Done, JobError> {
        for attempt in 0..MAX_COMMIT_ATTEMPTS {
            let now = OffsetDateTime::now_utc();
            let c = match (self.store.load(&a.key, 0).await?, a.customer_if_new) {
                (Some(snapshot), _) => snapshot.conversation,
                (None, Some(customer)) => Conversation::new(a.key.clone(), customer.into(), now),
                (None, None) => {
                    // Erased, or expired: nobody to tell here, and a conversation erased on the
                    // customer's request is not brought back. The effect is recorded as it
                    // ended, and what it starts (a confirmation email) still goes.
                    tracing::info!(conversation = %a.key.id, job_key = %s.job.key, "the conversation is gone; nothing posted");
                    return self.finish_with(s, outcome, a.jobs).await;
                }
            };
            let now = now.max(c.updated_at);
            // While an agent holds the conversation the bot does not speak to the customer:
            // what a job says meanwhile (a deferred answer, a refund's confirmation) goes to
            // the agent, who decides what to tell them.
            let internal = a.internal || c.handoff.is_with_agent();
            if internal && !a.internal && !a.texts.is_empty() {
                tracing::info!(
                    conversation = %a.key.id,
                    job_key = %s.job.key,
                    agent = c.handoff.agent().unwrap_or_default(),
                    "an agent holds the conversation; the job's message is for the agent only (internal)"
                );
            }
            let mut messages = Message::from_bot(
                c.last_seq + 1,
                a.texts.iter().cloned(),
                a.quick_replies.clone(),
                a.reply_to,
                now,
            );
            for m in messages.iter_mut().filter(|_| internal) {
                m.internal = true;
                // An agent's note offers the customer nothing to press.
                m.quick_replies.clear();
            }
            let expected_version = c.version;
            let mut next = Conversation {
                version: expected_version + 1,
                last_seq: c.last_seq + messages.len() as u64,
                updated_at: now,
                ..c
            };
            // What the customer was not told leaves nothing pending: a question (a refund offer)
            // only the agent saw must not be answered by the customer's next "yes".
            if !internal {
                if let Some(state) = &a.state {
                    next.state = state.clone();
                }
                if let Some(update) = &a.update {
                    update(&mut next);
                }
            }
            // A deferred answer (or its apology) is written: the bot no longer shows as typing.
            if let crate::jobs::JobKind::AnswerDeferred { reply_to, .. } = &s.job.kind {
                next.slots.answering.retain(|p| p.reply_to != *reply_to);
            }
            // A job that hands off (a failed refund, a deferred answer asking for a person)
            // queues the conversation in the commit that starts the handoff job.
            if let Some(queued) = next.handoff.after_jobs(a.jobs.iter().map(|j| &j.kind), now) {
                next.handoff = queued;
            }
            // The state decides the dialogue's slots, whatever the update set.
            next.handoff.sync_slots(&mut next.slots);
            let commit = Commit {
                conversation: next,
                expected_version,
                messages,
                turn: None,
                effect: Some(EffectCompletion {
                    key: s.job.key.clone(),
                    token: s.token().to_string(),
                    outcome,
                }),
                jobs: a.jobs.clone(),
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    return Ok(match outcome {
                        EffectOutcome::Done => Done::Applied,
                        EffectOutcome::Failed => Done::FailedPermanently,
                    })
                }
                Err(StoreError::DuplicateEffect) => {
                    tracing::info!(job_key = %s.job.key, "completed by another delivery; nothing written");
                    return Ok(Done::AlreadyApplied);
                }
                Err(StoreError::Conflict) => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Contended)
    }
}

#[cfg(test)]
mod tests;
