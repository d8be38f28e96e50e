//! When a failed job comes back: a growing delay, set on the message itself with
//! `ChangeMessageVisibility`, so a struggling system is not hammered; and when it stops: after
//! `max_attempts` attempts of its own (counted in the effect ledger, not by SQS, which also counts
//! the receives of jobs held back behind a failing one), or for a deferred answer once
//! `deferred_for` has passed since its first attempt.

use crate::io_clock::IoFutureExt;
use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The delay after the first failed attempt; it doubles with each attempt after that.
    pub base: Duration,
    pub max: Duration,
    /// A job that failed this many attempts of its own goes to the dead-letter queue.
    pub max_attempts: u32,
    /// A deferred answer keeps trying while the company's system is down for this long after
    /// its first attempt, then tells the customer it could not and offers a person.
    pub deferred_for: Duration,
}

impl Default for RetryPolicy {
    /// 10 s doubling to 15 min; 8 attempts (about 21 minutes of trying); deferred answers for
    /// an hour.
    fn default() -> Self {
        Self {
            base: Duration::from_secs(10),
            max: Duration::from_secs(900),
            max_attempts: 8,
            deferred_for: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1 for the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
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
