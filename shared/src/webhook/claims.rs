//! Deduplication of vendor events: `(vendor, event id)` is claimed with a conditional write before
//! the event is queued, and kept for longer than the vendor retries.
//!
//! A claim is first *pending* with a short lease, and becomes *done* once the event is queued.
//! A retry that finds it done is a duplicate; one that finds it pending within the lease is told
//! to come back (409), and one that finds the lease expired (the first attempt died between claim
//! and queue) takes it over, so a crash never turns into a lost event. If queueing fails, the
//! claim is released at once so the vendor's retry goes through.

use crate::io_clock::IoFutureExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use time::OffsetDateTime;

use crate::store::dynamo::{get_s, n, rfc3339, s, unavailable};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey {
    pub tenant: String,
    pub vendor: String,
    pub event_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours: queue the event, then `complete` or `release` with this token.
    Claimed { token: String },
    /// Already queued (or recorded) by an earlier delivery.
    Duplicate,
    /// Another delivery holds a live lease on it.
    InProgress,
}

#[async_trait]
pub trait ClaimStore: Send + Sync {
    async fn claim(
        &self,
        key: &ClaimKey,
        vendor_type: &str,
        lease: Duration,
        keep_for: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError>;

    /// Marks the claim done with an outcome (`queued`, `unhandled`); a claim someone else took
    /// over in the meantime is left alone.
    async fn complete(&self, key: &ClaimKey, token: &str, outcome: &str) -> Result<(), StoreError>;

    /// Deletes the claim if it is still ours.
    async fn release(&self, key: &ClaimKey, token: &str) -> Result<(), StoreError>;
}

fn new_token() -> String {
    ulid::Ulid::new().to_string()
}

/// Claims in the conversations table, each in its own partition.
pub struct DynamoClaims {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoClaims {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }
}

pub fn claim_partition_key(key: &ClaimKey) -> String {
    format!("T#{}#W#{}#{}", key.tenant, key.vendor, key.event_id)
}

const CLAIM_SK: &str = "CLAIM";

#[async_trait]
impl ClaimStore for DynamoClaims {
    async fn claim(
        &self,
        key: &ClaimKey,
        vendor_type: &str,
        lease: Duration,
        keep_for: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let token = new_token();
        let now_s = now.unix_timestamp();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(claim_partition_key(key)))
            .item("sk", s(CLAIM_SK))
            .item("vendor", s(&key.vendor))
            .item("event_id", s(&key.event_id))
            .item("vendor_type", s(vendor_type))
            .item("claim_state", s("pending"))
            .item("token", s(&token))
            .item("lease_until", n(now_s + lease.as_secs() as i64))
            .item("received_at", s(rfc3339(now)))
            .item("expires_at", n(now_s + keep_for.as_secs() as i64))
            // TTL deletes lazily (and moto never does), so an expired claim counts as absent.
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now OR (claim_state = :pending AND lease_until < :now)",
            )
            .expression_attribute_values(":now", n(now_s))
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .io()
            .await;
        match result {
            Ok(_) => Ok(Claim::Claimed { token }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                let existing = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(claim_partition_key(key)))
                    .key("sk", s(CLAIM_SK))
                    .consistent_read(true)
                    .send()
                    .io()
                    .await
                    .map_err(unavailable)?;
                Ok(match existing.item() {
                    Some(item) if get_s(item, "claim_state")? == "pending" => Claim::InProgress,
                    Some(_) => Claim::Duplicate,
                    // Released between our write and our read: the vendor's retry will get it.
                    None => Claim::InProgress,
                })
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn complete(&self, key: &ClaimKey, token: &str, outcome: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(claim_partition_key(key)))
            .key("sk", s(CLAIM_SK))
            .update_expression("SET claim_state = :done, outcome = :outcome REMOVE lease_until")
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":token", s(token))
            .return_values(ReturnValue::None)
            .send()
            .io()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                tracing::warn!(vendor = %key.vendor, event_id = %key.event_id, "claim was taken over before it completed");
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release(&self, key: &ClaimKey, token: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(claim_partition_key(key)))
            .key("sk", s(CLAIM_SK))
            .condition_expression("#token = :token")
            .expression_attribute_names("#token", "token")
            .expression_attribute_values(":token", AttributeValue::S(token.into()))
            .send()
            .io()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

#[derive(Debug, Clone)]
struct Held {
    token: String,
    done: bool,
    lease_until: i64,
    expires_at: i64,
}

/// The same rules in process, for unit tests of the intake.
#[derive(Default)]
pub struct MemoryClaims {
    claims: Mutex<HashMap<ClaimKey, Held>>,
}

impl MemoryClaims {
    pub fn outcome_count(&self) -> usize {
        self.claims
            .lock()
            .unwrap()
            .values()
            .filter(|h| h.done)
            .count()
    }
}

#[async_trait]
impl ClaimStore for MemoryClaims {
    async fn claim(
        &self,
        key: &ClaimKey,
        _vendor_type: &str,
        lease: Duration,
        keep_for: Duration,
        now: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let now = now.unix_timestamp();
        let mut claims = self.claims.lock().unwrap();
        if let Some(h) = claims.get(key) {
            let free = h.expires_at < now || (!h.done && h.lease_until < now);
            if !free {
                return Ok(if h.done {
                    Claim::Duplicate
                } else {
                    Claim::InProgress
                });
            }
        }
        let token = new_token();
        claims.insert(
            key.clone(),
            Held {
                token: token.clone(),
                done: false,
                lease_until: now + lease.as_secs() as i64,
                expires_at: now + keep_for.as_secs() as i64,
            },
        );
        Ok(Claim::Claimed { token })
    }

    async fn complete(&self, key: &ClaimKey, token: &str, _: &str) -> Result<(), StoreError> {
        if let Some(h) = self.claims.lock().unwrap().get_mut(key) {
            if h.token == token {
                h.done = true;
            }
        }
        Ok(())
    }

    async fn release(&self, key: &ClaimKey, token: &str) -> Result<(), StoreError> {
        let mut claims = self.claims.lock().unwrap();
        if claims.get(key).is_some_and(|h| h.token == token) {
            claims.remove(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);
    const LEASE: Duration = Duration::from_secs(30);
    const WEEK: Duration = Duration::from_secs(7 * 86_400);

    fn key() -> ClaimKey {
        ClaimKey {
            tenant: "t".into(),
            vendor: "stripe".into(),
            event_id: "evt_1".into(),
        }
    }

    #[tokio::test]
    async fn lifecycle() {
        let c = MemoryClaims::default();
        let Claim::Claimed { token } = c.claim(&key(), "x", LEASE, WEEK, T0).await.unwrap() else {
            panic!("first claim must succeed")
        };
        assert_eq!(
            c.claim(&key(), "x", LEASE, WEEK, T0).await.unwrap(),
            Claim::InProgress
        );
        // A crashed first attempt: its lease runs out and a retry takes over.
        let later = T0 + time::Duration::seconds(31);
        let Claim::Claimed { token: t2 } = c.claim(&key(), "x", LEASE, WEEK, later).await.unwrap()
        else {
            panic!("an expired lease is taken over")
        };
        // The first attempt's late completion does not touch the new claim.
        c.complete(&key(), &token, "queued").await.unwrap();
        assert_eq!(c.outcome_count(), 0);
        c.complete(&key(), &t2, "queued").await.unwrap();
        assert_eq!(
            c.claim(&key(), "x", LEASE, WEEK, later).await.unwrap(),
            Claim::Duplicate
        );
        // Remembered for the dedup window, then free again.
        let after = T0 + time::Duration::days(8);
        assert!(matches!(
            c.claim(&key(), "x", LEASE, WEEK, after).await.unwrap(),
            Claim::Claimed { .. }
        ));
    }

    #[tokio::test]
    async fn a_released_claim_is_free() {
        let c = MemoryClaims::default();
        let Claim::Claimed { token } = c.claim(&key(), "x", LEASE, WEEK, T0).await.unwrap() else {
            panic!()
        };
        c.release(&key(), "someone-else").await.unwrap();
        assert_eq!(
            c.claim(&key(), "x", LEASE, WEEK, T0).await.unwrap(),
            Claim::InProgress
        );
        c.release(&key(), &token).await.unwrap();
        assert!(matches!(
            c.claim(&key(), "x", LEASE, WEEK, T0).await.unwrap(),
            Claim::Claimed { .. }
        ));
    }
}
