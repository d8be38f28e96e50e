//! The job queue on SQS FIFO: each job's envelope (group = conversation, deduplication id = the
//! job's key), sent in batches of up to ten.

use crate::io_clock::IoFutureExt;
use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use super::{Envelope, Job, JobQueue, QueueError};
use crate::relay::RelayQueue;

pub struct SqsJobQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

/// SendMessageBatch takes at most this many entries.
pub const BATCH_MAX: usize = 10;

impl SqsJobQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }
}

fn queue_error<E: std::error::Error + 'static>(e: aws_sdk_sqs::error::SdkError<E>) -> QueueError {
    QueueError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

#[async_trait]
impl RelayQueue for SqsJobQueue {
    async fn send_batch(&self, envelopes: &[&Envelope]) -> Vec<Result<(), QueueError>> {
        debug_assert!(envelopes.len() <= BATCH_MAX);
        let mut entries = Vec::with_capacity(envelopes.len());
        for (i, e) in envelopes.iter().enumerate() {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(&e.body)
                .message_group_id(&e.group_id)
                .message_deduplication_id(&e.dedup_id)
                .build();
            match entry {
                Ok(entry) => entries.push(entry),
                Err(err) => {
                    let err = QueueError(err.to_string());
                    return envelopes.iter().map(|_| Err(err.clone())).collect();
                }
            }
        }
        let out = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .io()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let err = queue_error(e);
                return envelopes.iter().map(|_| Err(err.clone())).collect();
            }
        };
        let mut results: Vec<Result<(), QueueError>> = envelopes.iter().map(|_| Ok(())).collect();
        for failed in out.failed() {
            if let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *slot = Err(QueueError(format!(
                    "SQS refused the message: {} {}",
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
        }
        results
    }
}

#[async_trait]
impl JobQueue for SqsJobQueue {
    async fn send(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let envelopes = jobs
            .iter()
            .map(Job::envelope)
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in envelopes.chunks(BATCH_MAX) {
            let refs: Vec<&Envelope> = chunk.iter().collect();
            if let Some(Err(e)) = self
                .send_batch(&refs)
                .await
                .into_iter()
                .find(Result::is_err)
            {
                return Err(e);
            }
        }
        Ok(())
    }
}
