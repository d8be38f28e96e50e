//! A write to one of the company's systems that a flow started (`job = "connector"`: pause a
//! subscription box, change a booking).
//!
//! Exactly once per key: the effect is begun in the ledger before the call and completed after
//! it, so a redelivery of a finished write does nothing; the system is sent the job's key as its
//! idempotency key, so a retry after a timeout or a crash between the call and the ledger's
//! completion is the same request, which the system answers without acting twice. A refusal
//! (4xx) fails the effect, and the customer is told a person will follow up (and one is told);
//! a system that is down (5xx, timeouts) comes back through the queue with growing delays.

use super::{Done, Fulfillment, JobError, Started};
use crate::flow::value::Record;
use crate::store::EffectOutcome;

impl Fulfillment {
    pub(super) async fn connector_write(
        &self,
        s: &Started<'_>,
        operation: &str,
        inputs: &Record,
    ) -> Result<Done, JobError> {
        self.systems
            .operations
            .write(operation, inputs, &s.job.key)
            .await?;
        tracing::info!(job_key = %s.job.key, operation, "connector write done");
        self.finish(s, EffectOutcome::Done).await
    }
}
