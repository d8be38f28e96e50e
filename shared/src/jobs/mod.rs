//! Asynchronous jobs: what `chat` and `webhook` hand to `fulfillment` through SQS.

pub mod sqs;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::conversation::ConversationKey;
use crate::money::Money;
use crate::webhook::events::VendorEvent;

/// What a job does. The tag is the job type on the wire (`"type": "refund.request"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum JobKind {
    #[serde(rename = "refund.request")]
    RefundRequest { order_id: String, amount: Money },
    /// A vendor's event, verified and deduplicated by `webhook`.
    #[serde(rename = "vendor.event")]
    VendorEvent(Box<VendorEvent>),
    /// An email to the customer (their address from the CRM), once per `purpose` and order.
    #[serde(rename = "email.confirmation")]
    EmailConfirmation {
        purpose: String,
        order_id: String,
        subject: String,
        text: String,
    },
    /// A message the bot posts into the conversation on its own; `id` makes it once-only.
    #[serde(rename = "message.proactive")]
    ProactiveMessage { id: String, text: String },
    /// A customer's message whose lookups missed the turn's latency budget: answered here, with
    /// no budget, and posted as a reply to it.
    #[serde(rename = "answer.deferred")]
    AnswerDeferred {
        reply_to: u64,
        text: String,
        /// When the customer asked: how long the answer keeps trying counts from here.
        #[serde(
            default,
            with = "time::serde::rfc3339::option",
            skip_serializing_if = "Option::is_none"
        )]
        asked_at: Option<time::OffsetDateTime>,
    },
    /// The conversation was handed to a person: the team is told why, and about which order.
    #[serde(rename = "agent.handoff")]
    AgentHandoff {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<String>,
    },
    /// A write to one of the company's systems a flow asked for (`job = "connector"`): sent
    /// once per idempotency key (see [`connector_write_key`]).
    #[serde(rename = "connector.write")]
    ConnectorWrite {
        /// `system.operation`, a write the connector files declare.
        operation: String,
        #[serde(default)]
        inputs: crate::flow::value::Record,
        /// The flow's key for this change ("skip:sub_1:2026-12-10"): the same change asked
        /// for twice has the same key.
        idempotency_key: String,
    },
    /// A customer's message from a messaging channel, verified and deduplicated by `webhook`:
    /// a turn of their channel conversation, as the chat API runs it.
    #[serde(rename = "channel.inbound")]
    ChannelInbound {
        channel: String,
        inbound: Box<crate::channels::message::Inbound>,
    },
    /// The messages one commit wrote to a channel conversation (the bot's or an agent's), sent
    /// out through the channel in order: one job, because the outbox items of a transaction
    /// reach the queue in no set order. Queued by that commit (see `channels::outbound`).
    #[serde(rename = "channel.deliver")]
    ChannelDeliver {
        /// When the conversation was created (Unix ms) and the first message's seq: the job's
        /// key. A channel user's conversation id is the same again after an erasure, and its
        /// seqs start over: the creation time keeps a new conversation's sends from reading
        /// as done by the erased one's ledger entries.
        #[serde(default)]
        epoch: i64,
        seq: u64,
        messages: Vec<Delivery>,
    },
}

/// One message of a `channel.deliver` job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<crate::conversation::QuickReply>,
}

impl JobKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            JobKind::RefundRequest { .. } => "refund.request",
            JobKind::VendorEvent(_) => "vendor.event",
            JobKind::EmailConfirmation { .. } => "email.confirmation",
            JobKind::ProactiveMessage { .. } => "message.proactive",
            JobKind::AnswerDeferred { .. } => "answer.deferred",
            JobKind::AgentHandoff { .. } => "agent.handoff",
            JobKind::ConnectorWrite { .. } => "connector.write",
            JobKind::ChannelInbound { .. } => "channel.inbound",
            JobKind::ChannelDeliver { .. } => "channel.deliver",
        }
    }

    /// The idempotency key: the same effect asked for twice has the same key, so a payments API
    /// that honours `Idempotency-Key` refunds once and fulfillment appends its message once.
    /// Different effects have different keys (see [`KeyParts`]).
    pub fn idempotency_key(&self, tenant: &str, conversation_id: Option<&str>) -> String {
        let key = |kind: &str| KeyParts::new(kind).part(tenant);
        match self {
            JobKind::RefundRequest { order_id, .. } => refund_key(tenant, order_id),
            JobKind::VendorEvent(e) => key("event").part(&e.vendor).part(&e.event_id).finish(),
            JobKind::EmailConfirmation {
                purpose, order_id, ..
            } => key("email").part(purpose).part(order_id).finish(),
            JobKind::ProactiveMessage { id, .. } => {
                key("message").optional(conversation_id).part(id).finish()
            }
            JobKind::AnswerDeferred { reply_to, .. } => key("answer")
                .optional(conversation_id)
                .part(&reply_to.to_string())
                .finish(),
            // Asking twice for the same thing in one conversation notifies the team once.
            JobKind::AgentHandoff { reason, order_id } => key("handoff")
                .optional(conversation_id)
                .part(reason)
                .optional(order_id.as_deref())
                .finish(),
            JobKind::ConnectorWrite {
                operation,
                idempotency_key,
                ..
            } => connector_write_key(tenant, operation, idempotency_key),
            // A provider's message id is unique per channel: its redeliveries are one turn.
            JobKind::ChannelInbound { channel, inbound } => key("inbound")
                .part(channel)
                .part(&inbound.message_id)
                .finish(),
            JobKind::ChannelDeliver { epoch, seq, .. } => key("deliver")
                .optional(conversation_id)
                .part(&epoch.to_string())
                .part(&seq.to_string())
                .finish(),
        }
    }
}

/// A connector write's key, in the ledger and sent to the system as its idempotency key: per
/// tenant and operation, whichever conversation asks, so one change is made once.
pub fn connector_write_key(tenant: &str, operation: &str, key: &str) -> String {
    KeyParts::new("write")
        .part(tenant)
        .part(operation)
        .part(key)
        .finish()
}

/// A refund's idempotency key, which is also its effect's key in the ledger: one refund per
/// order, whoever asks and however often.
pub fn refund_key(tenant: &str, order_id: &str) -> String {
    KeyParts::new("refund").part(tenant).part(order_id).finish()
}

/// Joins the parts of a key (effect keys, payments idempotency keys, FIFO group ids) with `:`
/// so that different parts never make the same key. Tenant ids, order ids, vendor names and
/// reasons may hold `:` themselves: tenant `a:b` with order `c` and tenant `a` with order `b:c`
/// were both `refund:a:b:c`, one ledger entry and one idempotency key for two refunds.
///
/// Each part's `%` is written `%25` and its `:` `%3A`, so a key splits back into its parts at
/// every `:`; an absent optional part is `-`, and a part that is `-` is written `%2D`. A part
/// with none of these is written as it is, so every key made of such parts (all of them until
/// now: ledger entries of refunds in flight or finished, idempotency keys the payments API
/// holds) is the same before and after. (Not the `percent-encoding` crate: it escapes every
/// non-ASCII byte too, which would change existing keys.)
#[derive(Debug, Clone)]
pub struct KeyParts(String);

impl KeyParts {
    pub fn new(first: &str) -> Self {
        let mut key = KeyParts(String::with_capacity(64));
        key.push(first);
        key
    }

    pub fn part(mut self, part: &str) -> Self {
        self.0.push(':');
        self.push(part);
        self
    }

    pub fn optional(mut self, part: Option<&str>) -> Self {
        self.0.push(':');
        match part {
            None => self.0.push('-'),
            Some("-") => self.0.push_str("%2D"),
            Some(p) => self.push(p),
        }
        self
    }

    pub fn finish(self) -> String {
        self.0
    }

    fn push(&mut self, part: &str) {
        for c in part.chars() {
            match c {
                '%' => self.0.push_str("%25"),
                ':' => self.0.push_str("%3A"),
                c => self.0.push(c),
            }
        }
    }
}

/// A job envelope as it travels through the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub key: String,
    pub tenant: String,
    /// Jobs started by a turn belong to its conversation; a vendor's event finds (or opens) its
    /// conversation when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// The conversation's language when the job was started: what it tells the customer is
    /// said in it (the bundle's default language when absent, as for jobs queued before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(flatten)]
    pub kind: JobKind,
}

impl Job {
    pub fn new(conversation: &ConversationKey, customer_id: &str, kind: JobKind) -> Self {
        Self {
            key: kind.idempotency_key(&conversation.tenant, Some(&conversation.id)),
            tenant: conversation.tenant.clone(),
            conversation_id: Some(conversation.id.clone()),
            customer_id: Some(customer_id.to_string()),
            language: None,
            kind,
        }
    }

    /// Said in `language` (the conversation's).
    pub fn in_language(mut self, language: Option<String>) -> Self {
        self.language = language;
        self
    }

    pub fn vendor_event(tenant: &str, event: VendorEvent) -> Self {
        let kind = JobKind::VendorEvent(Box::new(event));
        Self {
            key: kind.idempotency_key(tenant, None),
            tenant: tenant.to_string(),
            conversation_id: None,
            customer_id: None,
            language: None,
            kind,
        }
    }

    pub fn conversation_key(&self) -> Option<ConversationKey> {
        self.conversation_id.as_ref().map(|id| ConversationKey {
            tenant: self.tenant.clone(),
            id: id.clone(),
        })
    }

    /// FIFO group: one conversation's jobs run in order, different conversations in parallel; a
    /// vendor's events for one customer run in order too. A deferred answer waits for a system
    /// that is down, for up to an hour: in a group of its own (per conversation), so the
    /// conversation's other jobs (a refund, a handoff) do not wait behind it.
    pub fn group_id(&self) -> String {
        let group = KeyParts::new(&self.tenant);
        match (&self.conversation_id, &self.kind) {
            (Some(c), JobKind::AnswerDeferred { .. }) => group.part(c).part("deferred").finish(),
            // Sends in order, but in a group of their own: a provider that is down holds back
            // the conversation's replies, not the turns of the customer's next messages.
            (Some(c), JobKind::ChannelDeliver { .. }) => group.part(c).part("deliver").finish(),
            // A customer's messages in order, and not behind the conversation's other jobs (a
            // refund retrying while the payments API is down).
            (Some(c), JobKind::ChannelInbound { .. }) => group.part(c).part("inbound").finish(),
            (Some(c), _) => group.part(c).finish(),
            (None, JobKind::VendorEvent(e)) => {
                let who = e
                    .vendor_customer_id
                    .as_deref()
                    .or(e.customer_email.as_deref())
                    .or(e.order_id.as_deref())
                    .unwrap_or(&e.event_id);
                group.part(&e.vendor).part(who).finish()
            }
            (None, _) => group.part(&self.key).finish(),
        }
    }
}

/// A job as the FIFO queue takes it. The outbox stores exactly this, so the relay forwards an
/// item without reading the job inside, and a redrive tool needs nothing of the Rust types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The message body: the job as JSON.
    pub body: String,
    /// FIFO group: one conversation's (or customer's) jobs in order.
    pub group_id: String,
    /// FIFO deduplication id: the job's key, so the same effect sent twice within the queue's
    /// five-minute window is queued once.
    pub dedup_id: String,
}

impl Job {
    pub fn envelope(&self) -> Result<Envelope, QueueError> {
        let json = serde_json::to_string(self).map_err(|e| QueueError(e.to_string()))?;
        Ok(Envelope {
            body: sqs_safe_json(json),
            group_id: fifo_id(&self.group_id()),
            dedup_id: fifo_id(&self.key),
        })
    }
}

/// SQS refuses a message body holding any character outside #x9 #xA #xD #x20-#xD7FF
/// #xE000-#xFFFD #x10000-#x10FFFF, and refuses it every time (InvalidMessageContents). serde_json
/// already escapes every control below #x20 and a Rust string holds no surrogates, so U+FFFE and
/// U+FFFF are the ones left: written as `\uXXXX` escapes they are still the same JSON string
/// (they can only be inside strings), and the body decodes to the identical job.
fn sqs_safe_json(json: String) -> String {
    const REFUSED: [char; 2] = ['\u{FFFE}', '\u{FFFF}'];
    if !json.contains(REFUSED) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if REFUSED.contains(&c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// SQS limits group and deduplication ids to 128 characters, alphanumerics and punctuation; a
/// hash of the raw id (64 hex digits) always fits, and raw ids that differ (see [`KeyParts`])
/// hash apart.
fn fifo_id(raw: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(raw.as_bytes()))
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("could not enqueue job: {0}")]
pub struct QueueError(pub String);

#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn send(&self, jobs: &[Job]) -> Result<(), QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_flat_and_typed() {
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c1".into(),
        };
        let job = Job::new(
            &key,
            "cust",
            JobKind::RefundRequest {
                order_id: "1002".into(),
                amount: Money {
                    amount_cents: 500,
                    currency: "USD".into(),
                },
            },
        );
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["type"], "refund.request");
        assert_eq!(v["order_id"], "1002");
        assert_eq!(v["key"], "refund:t:1002");
        assert_eq!(serde_json::from_value::<Job>(v).unwrap(), job);
    }

    #[test]
    fn envelope_ids_fit_sqs_rules() {
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c".repeat(300),
        };
        let job = Job::new(
            &key,
            "cust",
            JobKind::ProactiveMessage {
                id: "x".into(),
                text: "hello".into(),
            },
        );
        let e = job.envelope().unwrap();
        for id in [&e.group_id, &e.dedup_id] {
            assert_eq!(id.len(), 64);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_eq!(serde_json::from_str::<Job>(&e.body).unwrap(), job);
    }

    #[test]
    fn a_deferred_answer_has_a_group_of_its_own_in_its_conversation() {
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c1".into(),
        };
        let deferred = Job::new(
            &key,
            "cust",
            JobKind::AnswerDeferred {
                reply_to: 3,
                text: "where is it?".into(),
                asked_at: Some(time::macros::datetime!(2026-12-02 10:00 UTC)),
            },
        );
        let handoff = Job::new(
            &key,
            "cust",
            JobKind::AgentHandoff {
                reason: "human_agent".into(),
                order_id: None,
            },
        );
        assert_eq!(handoff.group_id(), "t:c1");
        assert_eq!(deferred.group_id(), "t:c1:deferred");
        let v = serde_json::to_value(&deferred).unwrap();
        assert_eq!(v["asked_at"], "2026-12-02T10:00:00Z");
        // A job queued before `asked_at` existed still reads.
        let old = r#"{"type":"answer.deferred","key":"k","tenant":"t","conversation_id":"c1","reply_to":3,"text":"x"}"#;
        let old: Job = serde_json::from_str(old).unwrap();
        assert!(matches!(
            old.kind,
            JobKind::AnswerDeferred { asked_at: None, .. }
        ));
    }

    #[test]
    fn envelope_bodies_hold_only_characters_sqs_accepts() {
        // SQS's allowed set; anything else is refused as InvalidMessageContents on every try.
        let allowed = |c: char| matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..);
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c1".into(),
        };
        let job = Job::new(
            &key,
            "cust",
            JobKind::ProactiveMessage {
                id: "x\u{FFFE}".into(),
                text: "a\u{FFFF}b\u{FFFE}c \u{0} \t\n\r \u{1F} \u{7F} \u{FFFD} \u{E000} \u{10FFFF} \\uffff é".into(),
            },
        );
        let e = job.envelope().unwrap();
        let refused: Vec<char> = e.body.chars().filter(|&c| !allowed(c)).collect();
        assert!(
            refused.is_empty(),
            "SQS would refuse {refused:?} in {}",
            e.body
        );
        assert_eq!(serde_json::from_str::<Job>(&e.body).unwrap(), job);
        // Nothing else changes: a body without them is serde_json's own.
        let plain = Job::new(
            &key,
            "cust",
            JobKind::ProactiveMessage {
                id: "x".into(),
                text: "hello \u{FFFD}".into(),
            },
        );
        assert_eq!(
            plain.envelope().unwrap().body,
            serde_json::to_string(&plain).unwrap()
        );
    }

    fn refund_job(tenant: &str, order_id: &str) -> Job {
        let key = ConversationKey {
            tenant: tenant.into(),
            id: "c1".into(),
        };
        Job::new(
            &key,
            "cust",
            JobKind::RefundRequest {
                order_id: order_id.into(),
                amount: Money {
                    amount_cents: 500,
                    currency: "USD".into(),
                },
            },
        )
    }

    #[test]
    fn keys_of_different_tenants_and_orders_never_collide() {
        // Both were `refund:a:b:c`: one ledger entry and one payments idempotency key.
        let a = refund_job("a:b", "c");
        let b = refund_job("a", "b:c");
        assert_ne!(a.key, b.key);
        assert_ne!(
            a.envelope().unwrap().dedup_id,
            b.envelope().unwrap().dedup_id
        );
        assert_eq!(a.key, "refund:a%3Ab:c");
        assert_eq!(b.key, "refund:a:b%3Ac");
        // The escape character itself is escaped, so an escaped-looking part stays apart.
        assert_ne!(refund_key("a", "b%3Ac"), refund_key("a", "b:c"));
        // An absent optional part and one that is `-` differ; so do conversation groups.
        let handoff = |order_id: Option<&str>| JobKind::AgentHandoff {
            reason: "r".into(),
            order_id: order_id.map(str::to_string),
        };
        assert_ne!(
            handoff(None).idempotency_key("t", Some("c")),
            handoff(Some("-")).idempotency_key("t", Some("c"))
        );
        assert_ne!(
            handoff(None).idempotency_key("t", Some("c")),
            handoff(Some("%2D")).idempotency_key("t", Some("c"))
        );
        let event = |tenant: &str, vendor: &str, id: &str| {
            JobKind::VendorEvent(Box::new(VendorEvent {
                vendor: vendor.into(),
                event_id: id.into(),
                vendor_type: "x".into(),
                event: crate::webhook::config::EventKind::Unknown,
                status: None,
                vendor_customer_id: None,
                customer_email: None,
                order_id: None,
                amount: None,
                payment_url: None,
                tracking_url: None,
                carrier: None,
                received_at: time::OffsetDateTime::UNIX_EPOCH,
            }))
            .idempotency_key(tenant, None)
        };
        assert_ne!(event("t:stripe", "x", "1"), event("t", "stripe:x", "1"));
        // Tenant `a:b`'s conversation `c` and tenant `a`'s conversation `b:c` were one group.
        let in_conversation = |tenant: &str, conversation: &str| {
            let key = ConversationKey {
                tenant: tenant.into(),
                id: conversation.into(),
            };
            Job::new(
                &key,
                "cust",
                JobKind::ProactiveMessage {
                    id: "1".into(),
                    text: "hi".into(),
                },
            )
            .group_id()
        };
        assert_ne!(in_conversation("a:b", "c"), in_conversation("a", "b:c"));
    }

    #[test]
    fn keys_without_separators_are_what_they_always_were() {
        // Ledger entries and idempotency keys written before the escaping still match.
        assert_eq!(refund_job("t", "1002").key, "refund:t:1002");
        assert_eq!(refund_job("t", "1002").group_id(), "t:c1");
        let handoff = JobKind::AgentHandoff {
            reason: "human_agent".into(),
            order_id: None,
        };
        assert_eq!(
            handoff.idempotency_key("t", Some("c1")),
            "handoff:t:c1:human_agent:-"
        );
        let email = JobKind::EmailConfirmation {
            purpose: "refund".into(),
            order_id: "T01J-x_é".into(),
            subject: "s".into(),
            text: "t".into(),
        };
        assert_eq!(email.idempotency_key("t", None), "email:t:refund:T01J-x_é");
    }

    #[test]
    fn unknown_types_do_not_parse() {
        let err = serde_json::from_str::<Job>(
            r#"{"type":"nope","key":"k","tenant":"t","conversation_id":"c","customer_id":"x"}"#,
        );
        assert!(err.is_err());
    }
}
