//! When a failed job comes back: a growing delay, set on the message itself with
//! `ChangeMessageVisibility`, so a struggling system is not hammered and the DLQ is reached only
//! after `maxReceiveCount` real attempts.

use crate::io_clock::IoFutureExt;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failed receive; it doubles with each receive after that.
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(900),
        }
    }
}

impl RetryPolicy {
    /// `receives` is SQS's `ApproximateReceiveCount` (1 on the first delivery).
    pub fn delay(&self, receives: u32) -> Duration {
        let doublings = receives.saturating_sub(1).min(16);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VisibilityError(pub String);

#[async_trait]
pub trait VisibilityControl: Send + Sync {
    /// Makes a received message visible again after `delay`.
    async fn delay(
        &self,
        source_arn: Option<&str>,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), VisibilityError>;
}

/// SQS, with the queue URL looked up by the queue name at the end of the event's source ARN.
pub struct SqsVisibility {
    client: aws_sdk_sqs::Client,
    urls_by_name: HashMap<String, String>,
}

impl SqsVisibility {
    pub fn new(client: aws_sdk_sqs::Client, queue_urls: &[String]) -> Self {
        let urls_by_name = queue_urls
            .iter()
            .filter_map(|u| Some((u.rsplit('/').next()?.to_string(), u.clone())))
            .collect();
        Self {
            client,
            urls_by_name,
        }
    }
}

#[async_trait]
impl VisibilityControl for SqsVisibility {
    async fn delay(
        &self,
        source_arn: Option<&str>,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), VisibilityError> {
        let name = source_arn
            .and_then(|a| a.rsplit(':').next())
            .ok_or_else(|| VisibilityError("the record has no eventSourceARN".into()))?;
        let url = self
            .urls_by_name
            .get(name)
            .ok_or_else(|| VisibilityError(format!("no queue URL known for {name}")))?;
        self.client
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt_handle)
            // SQS's limit is 12 hours.
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .io()
            .await
            .map_err(|e| VisibilityError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}

/// Leaves retries to the queue's visibility timeout (unit tests, benchmarks).
pub struct QueueDefault;

#[async_trait]
impl VisibilityControl for QueueDefault {
    async fn delay(&self, _: Option<&str>, _: &str, _: Duration) -> Result<(), VisibilityError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=8).map(|n| p.delay(n).as_secs()).collect();
        assert_eq!(secs, vec![10, 20, 40, 80, 160, 320, 640, 900]);
        assert_eq!(p.delay(0).as_secs(), 10);
        assert_eq!(p.delay(u32::MAX).as_secs(), 900);
    }
}
