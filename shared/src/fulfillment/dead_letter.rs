//! The dead-letter queue, written by fulfillment itself: a job goes there when it has failed
//! its own attempts (counted in the effect ledger), not when SQS has counted enough receives,
//! because a FIFO queue also counts the receives of healthy jobs held back behind a failing one
//! (they would be dead-lettered with it without ever running). The queue's own
//! `maxReceiveCount` stays, far above the budget, for a message that crashes the function.

use crate::io_clock::IoFutureExt;
use async_trait::async_trait;
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::jobs::QueueError;

#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Puts the message, as it came (body, FIFO group), on the dead-letter queue, saying why and
    /// after how many attempts. Once this succeeded the message may be deleted from the jobs
    /// queue.
    async fn put(&self, record: &SqsMessage, reason: &str, attempts: u32)
        -> Result<(), QueueError>;
}

pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

fn attribute(data_type: &str, value: String) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|e| QueueError(e.to_string()))
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn put(
        &self,
        record: &SqsMessage,
        reason: &str,
        attempts: u32,
    ) -> Result<(), QueueError> {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_else(|| "dead-letters".to_string());
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(record.body.clone().unwrap_or_default())
            .message_group_id(group)
            // The source message's id: a second try after a failed delete is queued once.
            .message_deduplication_id(&id)
            .message_attributes("reason", attribute("String", reason.to_string())?)
            .message_attributes("attempts", attribute("Number", attempts.to_string())?)
            .message_attributes("source_message_id", attribute("String", id)?)
            .send()
            .io()
            .await
            .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
