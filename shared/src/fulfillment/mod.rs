//! Fulfillment: jobs from the FIFO queue, each effect applied once.
//!
//! - A batch's FIFO groups (one per conversation or customer) run concurrently; within a group,
//!   in order. Once a job of a group fails, the later jobs of that group in the batch are
//!   reported failed unprocessed, so order holds through retries.
//! - Each job's effect is begun in the ledger (in progress, with a lease that ends with the
//!   invocation) and completed in the same transaction as the message it writes, so a
//!   redelivered job never repeats its effect and a crashed one is taken over later.
//! - Transient failures (timeouts, 5xx, 429, a contended conversation) are reported as item
//!   failures and come back after a growing delay (`ChangeMessageVisibility`); permanent ones
//!   (4xx, business rules) are recorded, the customer is told, and the job is not retried; a
//!   message that is not a job fails until SQS moves it to the DLQ.

mod handlers;
pub mod retry;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use time::OffsetDateTime;

use crate::connectors::{ConnectorError, CustomersPort, EmailPort, OrdersPort, PaymentsPort};
use crate::conversation::{Conversation, ConversationKey, DialogueState, Message, Role};
use crate::dialogue::Dialogue;
use crate::jobs::{Job, JobQueue};
use crate::metrics;
use crate::store::{
    backoff, Begin, Commit, ConversationStore, EffectCompletion, EffectLedger, EffectOutcome,
    StoreError, MAX_COMMIT_ATTEMPTS,
};
use retry::{RetryPolicy, VisibilityControl};

pub use handlers::PAYMENT_FAILED_TEXT;

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
    #[error("another delivery of this job is running")]
    Busy,
    #[error("follow-up jobs could not be queued: {0}")]
    Queue(String),
}

impl JobError {
    /// Worth retrying later: the same job may well succeed then.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Connector(e) => e.is_transient(),
            JobError::Store(StoreError::Corrupt(_)) => false,
            JobError::Store(_) | JobError::Contended | JobError::Busy | JobError::Queue(_) => true,
            // Retried until the DLQ takes it: nothing here can make it right.
            JobError::Malformed(_) => true,
            JobError::MissingConversation(_) => false,
        }
    }
}

/// The systems fulfillment reaches.
pub struct Systems {
    pub payments: Arc<dyn PaymentsPort>,
    pub customers: Arc<dyn CustomersPort>,
    pub orders: Arc<dyn OrdersPort>,
    pub email: Arc<dyn EmailPort>,
    /// Follow-up jobs (a refund's confirmation email).
    pub jobs: Arc<dyn JobQueue>,
    /// Answers deferred questions with the same flows as a chat turn.
    pub dialogue: Dialogue,
    /// Where handoffs are announced (the support team's inbox); without one, flagged
    /// conversations wait for agent tooling to list them.
    pub agent_inbox: Option<String>,
}

/// What a batch leaves itself at the end of an invocation to report its outcome.
const INVOCATION_MARGIN_MS: i64 = 2_000;

pub struct Fulfillment {
    store: Arc<dyn ConversationStore>,
    ledger: Arc<dyn EffectLedger>,
    systems: Systems,
    visibility: Arc<dyn VisibilityControl>,
    policy: RetryPolicy,
    default_lease: Duration,
}

/// A change to the conversation record made with the append (slots, flags).
pub(crate) type RecordUpdate<'a> = Box<dyn Fn(&mut Conversation) + Send + Sync + 'a>;

/// How a message changes the conversation it is appended to.
pub(crate) struct Append<'a> {
    pub key: ConversationKey,
    /// Set when the conversation may be opened by this message.
    pub customer_if_new: Option<&'a str>,
    pub texts: Vec<String>,
    pub reply_to: Option<u64>,
    pub state: Option<DialogueState>,
    pub update: Option<RecordUpdate<'a>>,
}

impl<'a> Append<'a> {
    pub fn text(key: ConversationKey, text: String) -> Self {
        Self {
            key,
            customer_if_new: None,
            texts: vec![text],
            reply_to: None,
            state: None,
            update: None,
        }
    }
}

/// A job whose effect this delivery holds.
pub(crate) struct Started<'a> {
    pub job: &'a Job,
    pub token: String,
}

/// What a delivery did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Applied,
    AlreadyApplied,
    FailedPermanently,
}

impl Fulfillment {
    pub fn new(
        store: Arc<dyn ConversationStore>,
        ledger: Arc<dyn EffectLedger>,
        systems: Systems,
        visibility: Arc<dyn VisibilityControl>,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            ledger,
            systems,
            visibility,
            policy,
            default_lease: Duration::from_secs(60),
        }
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
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let failed: Vec<Vec<(&SqsMessage, bool)>> = match deadline_ms {
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
        for (record, first_failure) in failed.into_iter().flatten() {
            let id = record.message_id.clone().unwrap_or_default();
            response.add_failure(id);
            if let Some(receipt) = record.receipt_handle.as_deref() {
                let receives = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(1);
                // Only the failed job waits out the retry delay. The ones held back behind it
                // are released at once: the failed one, still in flight, keeps the FIFO group
                // locked, and when it returns the group resumes in order. (Giving them a delay
                // of their own can let one become receivable before the failed job: moto then
                // delivers the group out of order.)
                let delay = if first_failure {
                    self.policy.delay(receives)
                } else {
                    Duration::ZERO
                };
                if first_failure {
                    tracing::info!(
                        receives,
                        delay_secs = delay.as_secs(),
                        "job will be retried"
                    );
                }
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

    /// Runs one group's records in order; returns the failed ones (true for the one that
    /// failed, false for those skipped behind it).
    async fn run_group<'r>(
        &self,
        records: &[&'r SqsMessage],
        deadline_ms: Option<i64>,
    ) -> Vec<(&'r SqsMessage, bool)> {
        let mut failed = Vec::new();
        for (i, record) in records.iter().enumerate() {
            let id = record.message_id.as_deref().unwrap_or_default();
            match self.process(record, deadline_ms).await {
                Ok(done) => tracing::info!(message_id = id, outcome = ?done, "job finished"),
                Err(e) => {
                    tracing::error!(message_id = id, error = %e, transient = e.is_transient(), "job failed");
                    failed.push((*record, true));
                    for later in &records[i + 1..] {
                        tracing::info!(message_id = ?later.message_id, "held back: an earlier job of its group failed");
                        failed.push((*later, false));
                    }
                    break;
                }
            }
        }
        failed
    }

    fn lease(&self, deadline_ms: Option<i64>) -> Duration {
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        match deadline_ms {
            // Until the invocation ends, plus a margin for clocks: a takeover never overlaps a
            // live holder.
            Some(d) if d > now_ms => Duration::from_millis((d - now_ms) as u64 + 2_000),
            // cargo-lambda hands out a deadline that has already passed.
            _ => self.default_lease,
        }
    }

    pub async fn process(
        &self,
        record: &SqsMessage,
        deadline_ms: Option<i64>,
    ) -> Result<Done, JobError> {
        let body = record
            .body
            .as_deref()
            .ok_or_else(|| JobError::Malformed("empty body".into()))?;
        let job: Job = serde_json::from_str(body).map_err(|e| {
            metrics::count("JobMalformed", &[]);
            JobError::Malformed(e.to_string())
        })?;
        let job_type = job.kind.type_name();
        tracing::info!(job_type, job_key = %job.key, conversation = job.conversation_id.as_deref(), "processing job");
        let now = OffsetDateTime::now_utc();
        let token = match self
            .ledger
            .begin(&job.tenant, &job.key, self.lease(deadline_ms), now)
            .await?
        {
            Begin::Started { token } => token,
            Begin::Finished => {
                tracing::info!(job_key = %job.key, "already applied; nothing to do");
                return Ok(Done::AlreadyApplied);
            }
            Begin::Busy => return Err(JobError::Busy),
        };
        let started = Started { job: &job, token };
        match self.apply(&started).await {
            Ok(done) => Ok(done),
            Err(e) if e.is_transient() => {
                metrics::count("JobRetried", &[("JobType", job_type)]);
                if let Err(ae) = self
                    .ledger
                    .abandon(&job.tenant, &job.key, &started.token)
                    .await
                {
                    tracing::warn!(error = %ae, "could not end the lease early");
                }
                Err(e)
            }
            Err(e) => {
                tracing::error!(job_type, job_key = %job.key, error = %e, "job failed permanently; recorded, not retried");
                metrics::count("JobFailed", &[("JobType", job_type)]);
                self.fail(&started, &e).await?;
                Ok(Done::FailedPermanently)
            }
        }
    }

    /// Completes an effect that wrote no message.
    pub(crate) async fn finish(
        &self,
        s: &Started<'_>,
        outcome: EffectOutcome,
    ) -> Result<Done, JobError> {
        match self
            .ledger
            .complete(&s.job.tenant, &s.job.key, &s.token, outcome)
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
                (None, None) => return Err(JobError::MissingConversation(a.key.id.clone())),
            };
            let now = now.max(c.updated_at);
            let messages: Vec<Message> = a
                .texts
                .iter()
                .enumerate()
                .map(|(i, text)| Message {
                    seq: c.last_seq + 1 + i as u64,
                    role: Role::Bot,
                    text: text.clone(),
                    created_at: now,
                    client_message_id: None,
                    reply_to: a.reply_to,
                })
                .collect();
            let expected_version = c.version;
            let mut next = Conversation {
                version: expected_version + 1,
                last_seq: c.last_seq + messages.len() as u64,
                updated_at: now,
                ..c
            };
            if let Some(state) = &a.state {
                next.state = state.clone();
            }
            if let Some(update) = &a.update {
                update(&mut next);
            }
            let commit = Commit {
                conversation: next,
                expected_version,
                messages,
                turn: None,
                effect: Some(EffectCompletion {
                    key: s.job.key.clone(),
                    token: s.token.clone(),
                    outcome,
                }),
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
