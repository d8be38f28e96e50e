//! What each job type does. Every handler runs holding its job's lease and ends by completing
//! the effect, with the message it writes or on its own.

use time::OffsetDateTime;

use super::handoff::Handoff;
use super::{Append, Done, Fulfillment, JobError, Started};
use crate::auth::Principal;
use crate::bot::messages::{Messages, Value};
use crate::connectors::ConnectorError;
use crate::conversation::{derived_conversation_id, ConversationKey, DialogueState, Role, Slots};
use crate::flow::value::{Record, Value as FlowValue};
use crate::jobs::{Job, JobKind};
use crate::metrics;
use crate::store::EffectOutcome;
use crate::webhook::config::EventKind;
use crate::webhook::events::VendorEvent;

/// A proactive message joins the customer's latest conversation if it moved this recently;
/// otherwise it opens a new one.
const OPEN_CONVERSATION: time::Duration = time::Duration::days(7);

pub(super) fn conversation_of(job: &Job) -> Result<ConversationKey, JobError> {
    job.conversation_key().ok_or_else(|| {
        JobError::Malformed(format!(
            "a {} job needs a conversation_id",
            job.kind.type_name()
        ))
    })
}

/// How many recent messages a handoff announcement quotes.
const HANDOFF_TRANSCRIPT: usize = 10;

/// The jobs a job leads to (a confirmation email, a handoff), in its conversation, for its
/// customer.
pub(super) fn follow_ups(
    job: &Job,
    key: &ConversationKey,
    kinds: Vec<JobKind>,
) -> Result<Vec<Job>, JobError> {
    if kinds.is_empty() {
        return Ok(Vec::new());
    }
    let customer = customer_of(job)?;
    Ok(kinds
        .into_iter()
        .map(|k| Job::new(key, customer, k).in_language(job.language.clone()))
        .collect())
}

pub(super) fn customer_of(job: &Job) -> Result<&str, JobError> {
    job.customer_id.as_deref().ok_or_else(|| {
        JobError::Malformed(format!(
            "a {} job needs a customer_id",
            job.kind.type_name()
        ))
    })
}

impl Fulfillment {
    pub(super) async fn apply(&self, s: &Started<'_>) -> Result<Done, JobError> {
        let job = s.job;
        match &job.kind {
            JobKind::RefundRequest { order_id, amount } => self.refund(s, order_id, amount).await,
            JobKind::VendorEvent(event) => self.vendor_event(s, event).await,
            JobKind::AgentHandoff { reason, order_id } => {
                self.announce_handoff(s, reason, order_id.as_deref()).await
            }
            JobKind::ConnectorWrite {
                operation, inputs, ..
            } => self.connector_write(s, operation, inputs).await,
            JobKind::ChannelInbound { channel, inbound } => {
                self.channel_inbound(s, channel, inbound).await
            }
            JobKind::ChannelDeliver { messages, .. } => self.channel_deliver(s, messages).await,
            JobKind::EmailConfirmation { subject, text, .. } => {
                let customer = self
                    .systems
                    .customers
                    .by_id(customer_of(job)?)
                    .await?
                    .and_then(|c| c.email);
                let Some(to) = customer else {
                    tracing::warn!(job_key = %job.key, "the customer has no email address; nothing sent");
                    return self.finish(s, EffectOutcome::Failed).await;
                };
                self.systems
                    .email
                    .send(&to, subject, text, &job.key)
                    .await?;
                self.finish(s, EffectOutcome::Done).await
            }
            JobKind::ProactiveMessage { text, .. } => {
                let key = conversation_of(job)?;
                self.append(s, Append::text(key, text.clone()), EffectOutcome::Done)
                    .await
            }
            JobKind::AnswerDeferred { reply_to, text, .. } => {
                let key = conversation_of(job)?;
                let Some(snapshot) = self.store.load(&key, 0).await? else {
                    tracing::info!(conversation = %key.id, "the conversation is gone; nothing to answer");
                    return self.finish(s, EffectOutcome::Done).await;
                };
                let c = snapshot.conversation;
                // A channel user not linked to an account is answered as one, here as in the turn.
                let who = match &c.channel {
                    Some(party) if !party.linked => {
                        Principal::unverified(key.tenant.clone(), c.customer_id.clone())
                    }
                    _ => Principal::customer(key.tenant.clone(), c.customer_id.clone()),
                };
                // In the language the turn chose (asked for, or the token's): the message alone
                // could choose another.
                let outcome = self
                    .systems
                    .dialogue
                    .respond_in(
                        s.job.language.as_deref(),
                        &who,
                        &c.state,
                        &c.slots,
                        text,
                        OffsetDateTime::now_utc(),
                    )
                    .await;
                if outcome.deferred {
                    // A system it needs is still down: come back later (growing delays) until
                    // it answers or the policy's time is up.
                    return Err(JobError::SystemDown);
                }
                // A handoff decided by the deferred answer is announced like one from a turn.
                let jobs = follow_ups(job, &key, outcome.jobs)?;
                let (state, slots) = (outcome.state, outcome.slots);
                let (read_state, read_slots) = (c.state, c.slots);
                let mut a = Append::text(key, String::new());
                a.texts = outcome.replies;
                a.quick_replies = outcome.quick_replies;
                a.reply_to = Some(*reply_to);
                a.jobs = jobs;
                // The answer took as long as the slow lookup, and the conversation's other jobs
                // (a refund's confirmation, a vendor's event) run beside it. Its question becomes
                // the conversation's only if nobody set another since ("talk to a human"); its
                // slots merge with what others changed meanwhile.
                a.update = Some(Box::new(move |c| {
                    if c.state == read_state {
                        c.state = state.clone();
                    }
                    c.slots.merge_changes(&read_slots, &slots);
                }));
                self.append(s, a, EffectOutcome::Done).await
            }
        }
    }

    /// Tells the team a conversation needs a person: why, which order, and the last messages.
    async fn announce_handoff(
        &self,
        s: &Started<'_>,
        reason: &str,
        order_id: Option<&str>,
    ) -> Result<Done, JobError> {
        let job = s.job;
        let key = conversation_of(job)?;
        let Some(inbox) = &self.systems.agent_inbox else {
            tracing::info!(conversation = %key.id, reason, "handoff flagged; no agent inbox configured to announce it to");
            return self.finish(s, EffectOutcome::Done).await;
        };
        let recent = self
            .store
            .load(&key, HANDOFF_TRANSCRIPT)
            .await?
            .map(|snap| snap.recent)
            .unwrap_or_default();
        let handoff = Handoff {
            key: &key,
            customer_id: job.customer_id.as_deref(),
            reason,
            order_id,
            recent: &recent,
            console_url: self.systems.console_url.as_deref(),
        };
        let (subject, text) = (handoff.subject(), handoff.text());
        self.systems
            .email
            .send(inbox, &subject, &text, &job.key)
            .await?;
        self.finish(s, EffectOutcome::Done).await
    }

    /// A deferred answer whose system stayed down past the policy's time: the customer is told
    /// once that it could not be answered and offered a person; the effect ends as failed.
    pub(super) async fn give_up_deferred(&self, s: &Started<'_>) -> Result<Done, JobError> {
        let job = s.job;
        let JobKind::AnswerDeferred { reply_to, .. } = &job.kind else {
            return self.finish(s, EffectOutcome::Failed).await;
        };
        metrics::count("JobFailed", &[("JobType", job.kind.type_name())]);
        let key = conversation_of(job)?;
        // A person is offered only to a customer who has said nothing since the question; one
        // who moved on is told how to ask, and keeps the state their last turn left.
        let snapshot = self.store.load(&key, HANDOFF_TRANSCRIPT).await?;
        let waiting = snapshot.and_then(|snap| {
            let moved_on = snap
                .recent
                .iter()
                .any(|m| m.role == Role::Customer && m.seq > *reply_to);
            (!moved_on).then_some(snap.conversation.state)
        });
        let text = match waiting {
            Some(_) => "deferred.gave_up",
            None => "deferred.gave_up_late",
        };
        let mut a = Append::text(key, self.messages(s.job).render(text, &[]));
        a.reply_to = Some(*reply_to);
        if let Some(read_state) = waiting {
            a.update = Some(Box::new(move |c| {
                // Unless a job set another question in the milliseconds since the read.
                if c.state == read_state {
                    c.state = DialogueState::HandoffOffered {
                        reason: "answer_deferred_failed".into(),
                    };
                }
            }));
        }
        self.append(s, a, EffectOutcome::Failed).await
    }

    /// A permanent failure: recorded with the effect so it is never retried, and the customer
    /// is told where a conversation exists to tell them in.
    pub(super) async fn fail(&self, s: &Started<'_>, e: &JobError) -> Result<Done, JobError> {
        let job = s.job;
        if let (JobKind::RefundRequest { .. }, Some(_)) = (&job.kind, &s.lease.receipt) {
            // Paid by an earlier delivery (its receipt kept, though unreadable here): never a
            // failed refund, an apology or a handoff inviting a second one by hand.
            tracing::error!(job_key = %job.key, error = %e, "refund paid; completed as done without a confirmation");
            metrics::count("RefundUnconfirmed", &[]);
            return self.finish(s, EffectOutcome::Done).await;
        }
        let messages = self.messages(job);
        let say =
            |key: &str, order_id: &str| messages.render(key, &[("order", Value::from(order_id))]);
        let apology = match (&job.kind, e) {
            // Nothing was paid: the customer hears why, and the team is told.
            (JobKind::RefundRequest { order_id, .. }, JobError::RefundRefused(refusal)) => {
                Some(say(&format!("refund.refused.{}", refusal.code()), order_id))
            }
            (JobKind::RefundRequest { order_id, .. }, _) => Some(say("refund.failed", order_id)),
            (JobKind::AnswerDeferred { .. }, _) => Some(messages.render("deferred.failed", &[])),
            (JobKind::ConnectorWrite { .. }, _) => Some(messages.render("write.failed", &[])),
            _ => None,
        };
        match (apology, job.conversation_key()) {
            (Some(text), Some(key)) => {
                tracing::info!(job_key = %job.key, reason = %e, "telling the customer and flagging for an agent");
                // "an agent will follow up" must reach an agent, not only a flag.
                let order_id = match &job.kind {
                    JobKind::RefundRequest { order_id, .. } => Some(order_id.clone()),
                    _ => None,
                };
                let reason = match e {
                    JobError::RefundRefused(refusal) => {
                        format!("refund_refused_{}", refusal.code())
                    }
                    _ => format!("{}_failed", job.kind.type_name().replace('.', "_")),
                };
                let handoff = JobKind::AgentHandoff { reason, order_id };
                let mut a = Append::text(key.clone(), text);
                // `append` queues the conversation (waiting) with the handoff job it starts.
                a.jobs = follow_ups(job, &key, vec![handoff])?;
                self.append(s, a, EffectOutcome::Failed).await
            }
            _ => self.finish(s, EffectOutcome::Failed).await,
        }
    }

    /// Turns a vendor's event into a proactive message in the customer's conversation.
    async fn vendor_event(&self, s: &Started<'_>, e: &VendorEvent) -> Result<Done, JobError> {
        let dims = [("Vendor", e.vendor.as_str()), ("Event", e.event.as_str())];
        let default = self.messages(s.job);
        if proactive_message(&default, e).is_none() {
            // Recorded and counted; retrying would not make it known.
            tracing::warn!(vendor = %e.vendor, vendor_type = %e.vendor_type, "event kind not handled here; dropped");
            metrics::count("VendorEventUnhandled", &dims);
            return self.finish(s, EffectOutcome::Failed).await;
        }
        let Some(customer_id) = self.find_customer(e).await? else {
            tracing::warn!(vendor = %e.vendor, event_id = %e.event_id, "no customer matches the event; dropped");
            metrics::count("VendorEventUnmatched", &dims);
            return self.finish(s, EffectOutcome::Failed).await;
        };
        let key = self
            .conversation_for(&s.job.tenant, &customer_id, &s.job.key)
            .await?;
        // Said in the language the customer's conversation is held in.
        let slots = match self.store.load(&key, 0).await? {
            Some(snapshot) => snapshot.conversation.slots,
            None => Slots::default(),
        };
        let messages = self.systems.dialogue.messages_in(slots.language.as_deref());
        // The event's flow starts afresh, but in the conversation's language.
        let in_language = Slots {
            language: slots.language.clone(),
            ..Slots::default()
        };
        let Some(proactive) = proactive_message(&messages, e) else {
            return self.finish(s, EffectOutcome::Failed).await;
        };
        let (text, state, jobs, offered) = match proactive {
            Proactive::Say(text, state) => (text, state, Vec::new(), Vec::new()),
            Proactive::Flow { flow, inputs } => {
                let who = Principal::customer(&s.job.tenant, customer_id.clone());
                let now = OffsetDateTime::now_utc();
                let opened = self
                    .systems
                    .dialogue
                    .open_flow(&who, flow, inputs, &in_language, now)
                    .await;
                match opened {
                    // A system the flow reads is down: the event is delivered again later.
                    Some(o) if o.deferred => return Err(JobError::SystemDown),
                    Some(o) if !o.replies.is_empty() => {
                        (o.replies.join("\n"), Some(o.state), o.jobs, o.quick_replies)
                    }
                    opened => {
                        let why = match opened {
                            None => "the bundle has no flow for this event",
                            Some(_) => "the event's flow said nothing",
                        };
                        tracing::warn!(flow, why, "proactive message dropped");
                        metrics::count("VendorEventUnhandled", &dims);
                        return self.finish(s, EffectOutcome::Failed).await;
                    }
                }
            }
        };
        tracing::info!(vendor = %e.vendor, event = e.event.as_str(), conversation = %key.id, "proactive message");
        let order = e.order_id.clone();
        let mut a = Append::text(key.clone(), text);
        a.customer_if_new = Some(&customer_id);
        a.quick_replies = offered;
        a.state = state;
        // What the flow started (a handoff, a write) is committed with its message.
        a.jobs = follow_ups(s.job, &key, jobs)?
            .into_iter()
            .map(|j| j.in_language(slots.language.clone()))
            .collect();
        a.update = Some(Box::new(move |c| {
            if let Some(o) = &order {
                c.slots.order_id = Some(o.clone());
            }
        }));
        let done = self.append(s, a, EffectOutcome::Done).await?;
        metrics::count("ProactiveMessage", &dims);
        Ok(done)
    }

    /// Who the event is about: by the vendor's customer id, then an email the CRM has verified
    /// as the customer's, then the order's owner. The email is carried only from vendors
    /// configured as confirming the addresses they send (`route_by_email`): elsewhere it is
    /// whatever the payer typed, and our CRM having verified that address says nothing about
    /// who paid at the vendor. Even then it is used only when the event names no vendor
    /// customer, since an id we have not linked is an unknown payer, and only when the CRM has
    /// verified the address. The order reference is written by the shop's own integration (not
    /// the payer) and its owner comes from our orders system, so it is kept.
    /// A system that refuses the lookup (4xx, bad shape) means no match; one that is down
    /// means retry.
    async fn find_customer(&self, e: &VendorEvent) -> Result<Option<String>, JobError> {
        let permanent_as_none = |r: Result<Option<String>, ConnectorError>| match r {
            Err(err) if !err.is_transient() => {
                tracing::warn!(error = %err, "customer lookup refused");
                Ok(None)
            }
            other => other,
        };
        let c = &self.systems.customers;
        if let Some(id) = &e.vendor_customer_id {
            let found = c.by_vendor_id(&e.vendor, id).await.map(|o| o.map(|c| c.id));
            if let Some(found) = permanent_as_none(found)? {
                return Ok(Some(found));
            }
        }
        match (&e.customer_email, &e.vendor_customer_id) {
            (Some(_), Some(_)) => {
                tracing::info!(vendor = %e.vendor, event_id = %e.event_id, "the event names a vendor customer not linked to ours; not routed by its email");
            }
            (Some(email), None) => {
                let found = c.by_email(email).await.map(|o| {
                    o.and_then(|c| {
                        if !c.email_verified {
                            tracing::info!(vendor = %e.vendor, event_id = %e.event_id, "the event's email matches a customer whose address is not verified; not routed by it");
                        }
                        c.email_verified.then_some(c.id)
                    })
                });
                if let Some(found) = permanent_as_none(found)? {
                    return Ok(Some(found));
                }
            }
            (None, _) => {}
        }
        if let Some(order) = &e.order_id {
            let found = self
                .systems
                .orders
                .order(order)
                .await
                .map(|o| o.map(|o| o.customer_id));
            return Ok(permanent_as_none(found)?);
        }
        Ok(None)
    }

    /// The customer's open conversation, or a new one whose id the job determines, so that a
    /// redelivered job opens the same one.
    async fn conversation_for(
        &self,
        tenant: &str,
        customer_id: &str,
        job_key: &str,
    ) -> Result<ConversationKey, JobError> {
        let latest = self.store.conversations_of(tenant, customer_id, 1).await?;
        let cutoff = OffsetDateTime::now_utc() - OPEN_CONVERSATION;
        let id = match latest.first() {
            Some(c) if c.updated_at >= cutoff => c.id.clone(),
            _ => derived_conversation_id(tenant, customer_id, job_key),
        };
        Ok(ConversationKey {
            tenant: tenant.to_string(),
            id,
        })
    }
}

/// The flow a vendor's "payment failed" starts in the customer's conversation (a bundle
/// without it does not message the customer about failed payments).
pub const PAYMENT_HELP_FLOW: &str = "payment_help";

/// What an event makes the bot do in the customer's conversation.
enum Proactive {
    /// Say this, and the dialogue goes there.
    Say(String, Option<DialogueState>),
    /// Start the bundle's flow with these inputs: it says its first question and waits.
    Flow { flow: &'static str, inputs: Record },
}

/// What the bot says for an event, and where the dialogue goes; `None` for kinds not handled.
fn proactive_message(m: &Messages, e: &VendorEvent) -> Option<Proactive> {
    let order = match e.order_id.as_deref() {
        Some(o) => m.render("event.this_order", &[("order", o.into())]),
        None => m.render("event.your_order", &[]),
    };
    let with_tracking = |mut text: String| {
        if let Some(url) = &e.tracking_url {
            text.push('\n');
            text.push_str(&m.render("order.tracking", &[("tracking_url", url.as_str().into())]));
        }
        text
    };
    match e.event {
        EventKind::PaymentFailed => Some(Proactive::Flow {
            flow: PAYMENT_HELP_FLOW,
            inputs: e
                .payment_url
                .iter()
                .map(|u| ("payment_url".to_string(), FlowValue::text(u)))
                .collect(),
        }),
        EventKind::OrderShipped => {
            let text = match e.carrier.as_deref() {
                Some(carrier) => m.render(
                    "event.shipped_with",
                    &[("order", order.into()), ("carrier", carrier.into())],
                ),
                None => m.render("event.shipped", &[("order", order.into())]),
            };
            Some(Proactive::Say(
                with_tracking(text),
                Some(DialogueState::Idle),
            ))
        }
        EventKind::OrderDelayed => Some(Proactive::Say(
            with_tracking(m.render("event.delayed", &[("order", order.into())])),
            Some(DialogueState::Idle),
        )),
        EventKind::Unknown => None,
    }
}
