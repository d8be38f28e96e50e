//! Messaging channels in fulfillment: a customer's message is a turn of their channel
//! conversation (the chat API's turn: same flows, memory, languages, handoffs), after the steps
//! that prove who they are; a message of that conversation goes out through the provider.

use std::sync::Arc;

use serde_json::Value as Json;
use time::OffsetDateTime;

use super::handlers::conversation_of;
use super::{Append, Done, Fulfillment, JobError, Started};
use crate::auth::Principal;
use crate::bot::messages::{Messages, Value};
use crate::channels::adapter;
use crate::channels::config::ChannelConfig;
use crate::channels::identity::{self, CodeCheck, PendingCode};
use crate::channels::message::{Content, Inbound, Outgoing};
use crate::channels::party::{guest_id, ChannelParty};
use crate::connectors::ConnectorError;
use crate::conversation::Conversation;
use crate::jobs::{Delivery, Job, JobKind};
use crate::metrics;
use crate::store::EffectOutcome;
use crate::turn::{PostMessage, Prepared};

/// Who the customer is, as far as this message goes.
enum Proof {
    /// A CRM customer: linked before, or now by their phone number (`by_phone`).
    Known { customer_id: String, by_phone: bool },
    /// Not known: the dialogue runs for a guest, who is asked to prove an account first.
    Guest,
    /// An identity step answers the message instead of the dialogue.
    Step {
        say: String,
        /// Linked by the code just typed.
        link: Option<String>,
        jobs: Vec<Job>,
    },
}

impl Fulfillment {
    fn channel(&self, name: &str) -> Result<&ChannelConfig, JobError> {
        self.systems.channels.get(name).ok_or_else(|| {
            JobError::Malformed(format!(
                "channel {name} is not configured here (config/channels.toml)"
            ))
        })
    }

    pub(super) async fn channel_inbound(
        &self,
        s: &Started<'_>,
        channel: &str,
        inbound: &Inbound,
    ) -> Result<Done, JobError> {
        let job = s.job;
        let key = conversation_of(job)?;
        let config = self.channel(channel)?;
        let snapshot = self.store.load(&key, 0).await?;
        let (party, customer_id, language, with_agent) = match &snapshot {
            Some(snap) => (
                snap.conversation.channel.clone(),
                snap.conversation.customer_id.clone(),
                snap.conversation.slots.language.clone(),
                snap.conversation.handoff.is_with_agent(),
            ),
            None => (
                None,
                guest_id(&key.tenant, channel, &inbound.user),
                None,
                false,
            ),
        };
        let mut party =
            party.unwrap_or_else(|| ChannelParty::new(channel, config.provider, inbound));
        let messages = self
            .systems
            .dialogue
            .messages_in(language.as_deref().or(inbound.language.as_deref()));
        let now = OffsetDateTime::now_utc();

        let proof = if party.linked {
            Proof::Known {
                customer_id: customer_id.clone(),
                by_phone: false,
            }
        } else if with_agent {
            // A person has the conversation: the bot neither speaks nor mails codes (what the
            // customer writes, an address included, is for the agent).
            Proof::Guest
        } else {
            self.prove(&key.id, config, &mut party, inbound, &messages, job, now)
                .await?
        };

        let (text, quick_reply) = match &inbound.content {
            Content::Text { text } => (text.clone(), None),
            Content::Button { value, label } if label.trim().is_empty() => {
                (value.clone(), Some(value.clone()))
            }
            Content::Button { value, label } => (label.clone(), Some(value.clone())),
            // What the agents see in the transcript: the kind, never its content.
            Content::Unsupported { what } => (format!("[{what}]"), None),
        };
        let text: String = text
            .chars()
            .take(self.turns.settings().max_text_chars)
            .collect();
        let text = if text.trim().is_empty() {
            "[empty]".to_string()
        } else {
            text
        };

        let mut prepared = Prepared {
            numbered: true,
            ..Prepared::default()
        };
        let (who, link) = match proof {
            Proof::Known {
                customer_id,
                by_phone,
            } => {
                if by_phone {
                    prepared
                        .preface
                        .push(messages.render("verify.phone_linked", &[]));
                }
                (
                    Principal::customer(key.tenant.clone(), customer_id.clone()),
                    Some(customer_id),
                )
            }
            Proof::Guest => (Principal::unverified(key.tenant.clone(), customer_id), None),
            Proof::Step { say, link, jobs } => {
                prepared.scripted = Some(vec![say]);
                prepared.jobs = jobs;
                let who = match &link {
                    Some(id) => Principal::customer(key.tenant.clone(), id.clone()),
                    None => Principal::unverified(key.tenant.clone(), customer_id),
                };
                (who, link)
            }
        };
        if let (Content::Unsupported { what }, false) = (&inbound.content, with_agent) {
            tracing::info!(channel, what = %what, "a message the bot cannot read; asked for text");
            metrics::count("ChannelUnsupported", &[("Channel", channel)]);
            prepared.scripted = Some(vec![messages.render("channel.text_only", &[])]);
            prepared.jobs.clear();
        }

        let proven = party;
        let inbound_copy = inbound.clone();
        prepared.update = Some(Box::new(move |c: &mut Conversation| {
            let mut party = c.channel.clone().unwrap_or_else(|| proven.clone());
            party.heard(&inbound_copy, now);
            // What the identity steps changed (inbound messages of a conversation run one at a
            // time, so nothing else changed these meanwhile).
            party.pending = proven.pending.clone();
            party.codes_issued = proven.codes_issued.clone();
            party.code_failures = proven.code_failures;
            if let Some(id) = &link {
                party.linked = true;
                party.pending = None;
                c.customer_id = id.clone();
            }
            c.channel = Some(party);
        }));

        let req = PostMessage {
            conversation_id: Some(key.id.clone()),
            text,
            client_message_id: Some(inbound.message_id.clone()),
            language: inbound.language.clone(),
            quick_reply,
        };
        self.turns
            .post_channel(&who, key, req, &prepared)
            .await
            .map_err(|e| match e {
                crate::problem::ApiError::Unavailable { .. }
                | crate::problem::ApiError::Conflict(_) => JobError::Contended,
                other => JobError::Malformed(format!("the turn was refused: {other}")),
            })?;
        metrics::count("ChannelTurn", &[("Channel", channel)]);
        self.finish(s, EffectOutcome::Done).await
    }

    /// The identity steps for a channel user not yet linked to an account. What they change of
    /// the party (a pending code, the codes mailed, wrong tries) is written to `party`.
    #[allow(clippy::too_many_arguments)]
    async fn prove(
        &self,
        conversation_id: &str,
        config: &ChannelConfig,
        party: &mut ChannelParty,
        inbound: &Inbound,
        messages: &Messages,
        job: &Job,
        now: OffsetDateTime,
    ) -> Result<Proof, JobError> {
        let text = match &inbound.content {
            Content::Text { text } => text.as_str(),
            _ => "",
        };
        let step = |key: &str, vars: &[(&str, Value)], link: Option<String>| Proof::Step {
            say: messages.render(key, vars),
            link,
            jobs: Vec::new(),
        };
        if let (Some(pending), Some(code)) = (party.pending.clone(), identity::read_code(text)) {
            let checked = identity::check(&pending, conversation_id, &code, now);
            return Ok(match checked {
                // A decoy (no account had the address) matches nothing, whatever is typed.
                CodeCheck::Match if !pending.customer_id.is_empty() => {
                    metrics::count(
                        "ChannelLinked",
                        &[("Channel", &config.name), ("By", "code")],
                    );
                    party.pending = None;
                    step("verify.done", &[], Some(pending.customer_id))
                }
                CodeCheck::Match | CodeCheck::Wrong { .. } => {
                    party.code_failures += 1;
                    let left = match checked {
                        CodeCheck::Wrong { left } => left,
                        _ => pending.attempts_left.saturating_sub(1),
                    };
                    if left == 0 {
                        party.pending = None;
                        step("verify.expired", &[], None)
                    } else {
                        party.pending = Some(PendingCode {
                            attempts_left: left,
                            ..pending
                        });
                        step(
                            "verify.wrong_code",
                            &[("left", Value::Number(i64::from(left)))],
                            None,
                        )
                    }
                }
                CodeCheck::Expired | CodeCheck::Exhausted => {
                    if checked == CodeCheck::Exhausted {
                        party.code_failures += 1;
                    }
                    party.pending = None;
                    step("verify.expired", &[], None)
                }
            });
        }
        if let Some(email) = identity::read_email(text) {
            // The same answer whether or not the address has an account, and whether or not a
            // code may be mailed now: nobody learns here whose addresses are customers'.
            let say = messages.render("verify.code_sent", &[]);
            if !party.may_issue_code(now) {
                tracing::info!(channel = %config.name, "a code was asked for too soon or too often; none mailed");
                return Ok(Proof::Step {
                    say,
                    link: None,
                    jobs: Vec::new(),
                });
            }
            let account = match self.systems.customers.by_email(&email).await {
                Ok(found) => found.filter(|c| c.email_verified),
                Err(e) => lookup_failed(e)?,
            };
            party.code_issued(now);
            let Some(account) = account else {
                // A decoy: typing a code then behaves as for an account (tries counted, "wrong
                // code"), so the next message does not tell either.
                party.pending = Some(identity::issue(conversation_id, "", now).1);
                return Ok(Proof::Step {
                    say,
                    link: None,
                    jobs: Vec::new(),
                });
            };
            let (code, pending) = identity::issue(conversation_id, &account.id, now);
            let vars = [("code", Value::Text(code))];
            let key = crate::conversation::ConversationKey {
                tenant: job.tenant.clone(),
                id: conversation_id.to_string(),
            };
            // To the address the CRM has for the account (the job reads it there), never to
            // the one typed; one email per code (its key names the conversation and the code's
            // hash: two customers' codes of the same second are two emails).
            let email_job = Job::new(
                &key,
                &account.id,
                JobKind::EmailConfirmation {
                    purpose: "verify".into(),
                    order_id: format!(
                        "{conversation_id}:{}",
                        &pending.code_hash[..pending.code_hash.len().min(16)]
                    ),
                    subject: messages.render("verify.email.subject", &[]),
                    text: messages.render("verify.email.text", &vars),
                },
            );
            party.pending = Some(pending);
            metrics::count("ChannelCodeSent", &[("Channel", &config.name)]);
            return Ok(Proof::Step {
                say,
                link: None,
                jobs: vec![email_job],
            });
        }
        if config.link_by_phone {
            if let Some(phone) = &inbound.phone {
                let found = match self.systems.customers.by_phone(phone).await {
                    Ok(found) => found,
                    Err(e) => lookup_failed(e)?,
                };
                if let Some(c) = found {
                    metrics::count(
                        "ChannelLinked",
                        &[("Channel", &config.name), ("By", "phone")],
                    );
                    return Ok(Proof::Known {
                        customer_id: c.id,
                        by_phone: true,
                    });
                }
            }
        }
        Ok(Proof::Guest)
    }

    pub(super) async fn channel_deliver(
        &self,
        s: &Started<'_>,
        deliveries: &[Delivery],
    ) -> Result<Done, JobError> {
        let job = s.job;
        let key = conversation_of(job)?;
        let Some(snapshot) = self.store.load(&key, 0).await? else {
            tracing::info!(conversation = %key.id, "the conversation is gone; nothing sent");
            return self.finish(s, EffectOutcome::Done).await;
        };
        let Some(party) = snapshot.conversation.channel else {
            return Err(JobError::Malformed(
                "a channel.deliver job for a conversation held in no channel".into(),
            ));
        };
        let config = self.channel(&party.channel)?;
        let sender = self.systems.channel_sender.as_ref().ok_or_else(|| {
            JobError::Connector(ConnectorError::Misconfigured {
                system: config.provider.as_str(),
                detail: "no send operation is configured for this channel".into(),
            })
        })?;
        let messages = self.messages(job);
        let now = OffsetDateTime::now_utc();
        if !party.window_open(now) {
            return self
                .window_closed(s, config, &party, sender.as_ref(), &messages)
                .await;
        }
        let list_button = messages.render("channel.list_button", &[]);
        // In order; a retry after a part failed sends the parts before it again (no provider
        // takes an idempotency key on sends).
        let calls = deliveries.iter().flat_map(|d| {
            adapter::render(
                config.provider,
                &party.user,
                party.business.as_deref(),
                &Outgoing {
                    text: &d.text,
                    quick_replies: &d.quick_replies,
                },
                &list_button,
            )
        });
        for call in calls {
            send(sender.as_ref(), config, &call).await?;
        }
        metrics::count("ChannelDelivered", &[("Channel", &config.name)]);
        self.finish(s, EffectOutcome::Done).await
    }

    /// WhatsApp's window has closed: only an approved template may reach the customer. The
    /// agents are told either way, in the conversation.
    async fn window_closed(
        &self,
        s: &Started<'_>,
        config: &ChannelConfig,
        party: &ChannelParty,
        sender: &dyn crate::connectors::ChannelSendPort,
        messages: &Arc<Messages>,
    ) -> Result<Done, JobError> {
        let key = conversation_of(s.job)?;
        metrics::count("ChannelWindowClosed", &[("Channel", &config.name)]);
        let (note, outcome) = match &config.template {
            Some(t) => {
                let call = adapter::template(
                    config.provider,
                    &party.user,
                    party.business.as_deref(),
                    &t.name,
                    &t.language,
                );
                send(sender, config, &call).await?;
                (
                    messages.render(
                        "channel.window_closed",
                        &[("template", Value::Text(t.name.clone()))],
                    ),
                    EffectOutcome::Done,
                )
            }
            None => (
                messages.render("channel.window_closed.no_template", &[]),
                EffectOutcome::Failed,
            ),
        };
        tracing::warn!(channel = %config.name, conversation = %key.id, "the customer-service window has closed; the agents are told");
        let append = Append {
            internal: true,
            ..Append::text(key, note)
        };
        self.append(s, append, outcome).await
    }
}

/// A CRM lookup that failed: retried later when the CRM may answer then; otherwise (it refused
/// the request, its answer did not map) the customer is answered as a guest rather than left
/// without an answer.
fn lookup_failed<T: Default>(e: ConnectorError) -> Result<T, JobError> {
    let e = JobError::Connector(e);
    if e.is_transient() {
        return Err(e);
    }
    tracing::warn!(error = %e, "the CRM lookup failed for good; answering as a guest");
    Ok(T::default())
}

async fn send(
    sender: &dyn crate::connectors::ChannelSendPort,
    config: &ChannelConfig,
    call: &[(&'static str, Json)],
) -> Result<(), JobError> {
    sender.send(config.provider, call).await.map_err(|e| {
        metrics::count("ChannelSendFailed", &[("Channel", &config.name)]);
        JobError::Connector(e)
    })
}
