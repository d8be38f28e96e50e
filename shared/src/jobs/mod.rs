//! Asynchronous jobs: what `chat` (and later `webhook`) hands to `fulfillment` through SQS.

pub mod sqs;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::conversation::ConversationKey;
use crate::money::Money;

/// What a job does. The tag is the job type on the wire (`"type": "refund.request"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum JobKind {
    #[serde(rename = "refund.request")]
    RefundRequest { order_id: String, amount: Money },
}

impl JobKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            JobKind::RefundRequest { .. } => "refund.request",
        }
    }

    /// The idempotency key: the same effect asked for twice has the same key, so a payments API
    /// that honours `Idempotency-Key` refunds once and fulfillment appends its message once.
    pub fn idempotency_key(&self, tenant: &str) -> String {
        match self {
            JobKind::RefundRequest { order_id, .. } => format!("refund:{tenant}:{order_id}"),
        }
    }
}

/// A job envelope as it travels through the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub key: String,
    pub tenant: String,
    pub conversation_id: String,
    pub customer_id: String,
    #[serde(flatten)]
    pub kind: JobKind,
}

impl Job {
    pub fn new(conversation: &ConversationKey, customer_id: &str, kind: JobKind) -> Self {
        Self {
            key: kind.idempotency_key(&conversation.tenant),
            tenant: conversation.tenant.clone(),
            conversation_id: conversation.id.clone(),
            customer_id: customer_id.to_string(),
            kind,
        }
    }

    pub fn conversation_key(&self) -> ConversationKey {
        ConversationKey {
            tenant: self.tenant.clone(),
            id: self.conversation_id.clone(),
        }
    }

    /// FIFO group: one conversation's jobs run in order, different conversations in parallel.
    pub fn group_id(&self) -> String {
        format!("{}:{}", self.tenant, self.conversation_id)
    }
}

#[derive(Debug, thiserror::Error)]
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
    fn unknown_types_do_not_parse() {
        let err = serde_json::from_str::<Job>(
            r#"{"type":"nope","key":"k","tenant":"t","conversation_id":"c","customer_id":"x"}"#,
        );
        assert!(err.is_err());
    }
}
