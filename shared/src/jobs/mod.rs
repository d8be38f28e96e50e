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
        }
    }

    /// The idempotency key: the same effect asked for twice has the same key, so a payments API
    /// that honours `Idempotency-Key` refunds once and fulfillment appends its message once.
    pub fn idempotency_key(&self, tenant: &str, conversation_id: Option<&str>) -> String {
        let conv = conversation_id.unwrap_or("-");
        match self {
            JobKind::RefundRequest { order_id, .. } => refund_key(tenant, order_id),
            JobKind::VendorEvent(e) => format!("event:{tenant}:{}:{}", e.vendor, e.event_id),
            JobKind::EmailConfirmation {
                purpose, order_id, ..
            } => format!("email:{tenant}:{purpose}:{order_id}"),
            JobKind::ProactiveMessage { id, .. } => format!("message:{tenant}:{conv}:{id}"),
            JobKind::AnswerDeferred { reply_to, .. } => {
                format!("answer:{tenant}:{conv}:{reply_to}")
            }
            // Asking twice for the same thing in one conversation notifies the team once.
            JobKind::AgentHandoff { reason, order_id } => format!(
                "handoff:{tenant}:{conv}:{reason}:{}",
                order_id.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// A refund's idempotency key, which is also its effect's key in the ledger: one refund per
/// order, whoever asks and however often.
pub fn refund_key(tenant: &str, order_id: &str) -> String {
    format!("refund:{tenant}:{order_id}")
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
            kind,
        }
    }

    pub fn vendor_event(tenant: &str, event: VendorEvent) -> Self {
        let kind = JobKind::VendorEvent(Box::new(event));
        Self {
            key: kind.idempotency_key(tenant, None),
            tenant: tenant.to_string(),
            conversation_id: None,
            customer_id: None,
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
        match (&self.conversation_id, &self.kind) {
            (Some(c), JobKind::AnswerDeferred { .. }) => format!("{}:{c}:deferred", self.tenant),
            (Some(c), _) => format!("{}:{c}", self.tenant),
            (None, JobKind::VendorEvent(e)) => {
                let who = e
                    .vendor_customer_id
                    .as_deref()
                    .or(e.customer_email.as_deref())
                    .or(e.order_id.as_deref())
                    .unwrap_or(&e.event_id);
                format!("{}:{}:{who}", self.tenant, e.vendor)
            }
            (None, _) => format!("{}:{}", self.tenant, self.key),
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

/// SQS limits group and deduplication ids to 128 characters of a restricted set; a hash of
/// the raw id always fits.
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

    #[test]
    fn unknown_types_do_not_parse() {
        let err = serde_json::from_str::<Job>(
            r#"{"type":"nope","key":"k","tenant":"t","conversation_id":"c","customer_id":"x"}"#,
        );
        assert!(err.is_err());
    }
}
