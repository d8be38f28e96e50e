//! The job queue on SQS FIFO: group = conversation, deduplication id = the job's key.

use crate::io_clock::IoFutureExt;
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use sha2::{Digest, Sha256};

use super::{Job, JobQueue, QueueError};

pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

/// SQS limits ids to 128 characters of a restricted set; a hash of the key always fits.
fn sqs_safe_id(raw: &str) -> String {
    let digest = Sha256::digest(raw.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
        // A batch holds at most 10 entries.
        for chunk in jobs.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, job) in chunk.iter().enumerate() {
                let body = serde_json::to_string(job).map_err(|e| QueueError(e.to_string()))?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .message_group_id(sqs_safe_id(&job.group_id()))
                    .message_deduplication_id(sqs_safe_id(&job.key))
                    .build()
                    .map_err(|e| QueueError(e.to_string()))?;
                entries.push(entry);
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .io()
                .await
                .map_err(|e| QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
            if let Some(failed) = out.failed().first() {
                return Err(QueueError(format!(
                    "SQS refused entry {}: {} {}",
                    failed.id(),
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_sqs_rules() {
        let id = sqs_safe_id(&"x".repeat(500));
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
