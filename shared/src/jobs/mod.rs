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
}

impl JobKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            JobKind::RefundRequest { .. } => "refund.request",
            JobKind::VendorEvent(_) => "vendor.event",
        }
    }

    /// The idempotency key: the same effect asked for twice has the same key, so a payments API
    /// that honours `Idempotency-Key` refunds once and fulfillment appends its message once.
    pub fn idempotency_key(&self, tenant: &str) -> String {
        match self {
            JobKind::RefundRequest { order_id, .. } => format!("refund:{tenant}:{order_id}"),
            JobKind::VendorEvent(e) => format!("event:{tenant}:{}:{}", e.vendor, e.event_id),
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
    #[serde(flatten)]
    pub kind: JobKind,
}

impl Job {
    pub fn new(conversation: &ConversationKey, customer_id: &str, kind: JobKind) -> Self {
        Self {
            key: kind.idempotency_key(&conversation.tenant),
            tenant: conversation.tenant.clone(),
            conversation_id: Some(conversation.id.clone()),
            customer_id: Some(customer_id.to_string()),
            kind,
        }
    }

    pub fn vendor_event(tenant: &str, event: VendorEvent) -> Self {
        let kind = JobKind::VendorEvent(Box::new(event));
        Self {
            key: kind.idempotency_key(tenant),
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
    /// vendor's events for one customer run in order too.
    pub fn group_id(&self) -> String {
        match (&self.conversation_id, &self.kind) {
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
