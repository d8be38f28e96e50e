//! Webhook intake: `POST /webhooks/{vendor}` from the function URL.
//!
//! In order, and stopping at the first failure: the vendor must be configured (404); the body
//! within its limit (413) and decodable (400); the signature valid over the raw bytes, within the
//! timestamp tolerance (401); the event's type readable (400); its signed body time, where it has
//! one, within the dedup window (401). Then `(vendor, event id)` is claimed, the body's SHA-256
//! standing for the id where the scheme signs only the body, with the type added for an
//! unhandled one (a duplicate is 200 and goes no further), the envelope is queued for
//! `fulfillment` and the answer is 202. If queueing fails the claim is released and the answer
//! is 503, so the vendor's retry gets through: nothing lost, nothing doubled.

pub mod channels;
pub mod claims;
pub mod config;
pub mod events;
pub mod keys;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use crate::http_event::{HttpEvent, HttpResponse};
use crate::jobs::{Job, JobQueue};
use crate::metrics;
use crate::problem::ApiError;
use crate::secrets::SecretSource;
use crate::signatures::{self, Scheme, SigningKey};
use claims::{Claim, ClaimKey, ClaimStore};
use config::VendorConfig;
use keys::VendorKeys;

/// How long a claim is held for the attempt that made it, before a retry may take it over; well
/// above the function's timeout.
const CLAIM_LEASE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Secrets are re-read this often, so a rotation or a revocation reaches warm containers;
    /// a read that found no usable secret is not repeated sooner (see `keys`).
    pub secrets_ttl: Duration,
    /// While the secret store is unavailable, keys read longer ago than this are no longer used.
    pub secrets_max_stale: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secrets_ttl: Duration::from_secs(300),
            secrets_max_stale: Duration::from_secs(900),
        }
    }
}

struct Vendor {
    config: VendorConfig,
    keys: VendorKeys,
}

pub struct WebhookService {
    vendors: BTreeMap<String, Vendor>,
    /// Messaging channels, at `/channels/{name}`.
    channels: BTreeMap<String, channels::Channel>,
    secrets: Arc<dyn SecretSource>,
    claims: Arc<dyn ClaimStore>,
    queue: Arc<dyn JobQueue>,
    settings: WebhookSettings,
}

fn channel_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/channels/")?;
    let name = rest.strip_suffix('/').unwrap_or(rest);
    crate::channels::config::is_valid_channel_name(name).then_some(name)
}

fn vendor_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/webhooks/")?;
    let name = rest.strip_suffix('/').unwrap_or(rest);
    config::is_valid_vendor_name(name).then_some(name)
}

impl WebhookService {
    /// The service for these vendors. Call `read_secrets` before serving: it reads every
    /// vendor's and channel's secrets and logs the ones that cannot verify (without it they are
    /// read at their first request, still refused when missing, but not named at init).
    pub fn new(
        vendors: BTreeMap<String, VendorConfig>,
        secrets: Arc<dyn SecretSource>,
        claims: Arc<dyn ClaimStore>,
        queue: Arc<dyn JobQueue>,
        settings: WebhookSettings,
    ) -> Self {
        Self {
            channels: BTreeMap::new(),
            vendors: vendors
                .into_iter()
                .map(|(name, config)| {
                    (
                        name,
                        Vendor {
                            config,
                            keys: VendorKeys::default(),
                        },
                    )
                })
                .collect(),
            secrets,
            claims,
            queue,
            settings,
        }
    }

    /// With these messaging channels (a channel its file disables is named in the log now and
    /// answers 404).
    pub fn with_channels(mut self, channels: crate::channels::config::Channels) -> Self {
        for (name, why) in &channels.disabled {
            tracing::error!(channel = %name, why = %why, "messaging channel disabled: its requests get 404");
        }
        self.channels = channels
            .channels
            .into_iter()
            .filter(|(name, _)| !channels.disabled.iter().any(|(n, _)| n == name))
            .map(|(name, config)| (name, channels::Channel::new(config)))
            .collect();
        self
    }

    /// Reads every vendor's and every channel's secrets once, all at once (each is a round
    /// trip to SSM or Secrets Manager, and one after another they were most of the function's
    /// cold start), so a misconfigured vendor or channel shows in the init log and is refused
    /// from the first request (401: never open) without another read until the TTL.
    pub async fn read_secrets(&self) {
        let vendors = futures_util::future::join_all(
            self.vendors
                .iter()
                .map(|(name, vendor)| async move { (name, self.keys(vendor).await) }),
        );
        let channels = futures_util::future::join_all(self.channels.iter().map(
            |(name, channel)| async move {
                let loaded = channel.secrets(self.secrets.as_ref(), &self.settings).await;
                (name, channel, loaded)
            },
        ));
        let (vendors, channels) = tokio::join!(vendors, channels);
        for (name, loaded) in vendors {
            match loaded {
                Ok(keys) if keys.is_empty() => {
                    tracing::error!(vendor = %name, "webhook vendor disabled: no usable secret, its requests are refused (401)")
                }
                Ok(keys) => {
                    tracing::info!(vendor = %name, keys = keys.len(), "webhook vendor ready")
                }
                Err(e) => {
                    tracing::error!(vendor = %name, error = %e, "webhook vendor has no usable secret")
                }
            }
        }
        for (name, channel, loaded) in channels {
            match loaded {
                Ok(keys) if keys.is_empty() => {
                    tracing::error!(channel = %name, "messaging channel disabled: no usable secret, its requests are refused (401)")
                }
                Ok(_) => {
                    tracing::info!(channel = %name, provider = channel.config.provider.as_str(), "messaging channel ready")
                }
                Err(e) => {
                    tracing::error!(channel = %name, error = %e, "messaging channel has no usable secret")
                }
            }
        }
    }

    async fn keys(&self, vendor: &Vendor) -> Result<Arc<Vec<SigningKey>>, ApiError> {
        vendor
            .keys
            .get(&vendor.config, self.secrets.as_ref(), &self.settings)
            .await
    }

    pub async fn handle(&self, event: &HttpEvent) -> HttpResponse {
        let now = OffsetDateTime::now_utc();
        if let Some(rest) = event.path().strip_prefix("/channels/") {
            return self.channel_message(event, rest, now).await;
        }
        let vendor_name = vendor_of(event.path()).unwrap_or("-");
        match self.intake(event, now).await {
            Ok(response) => response,
            Err(e) => {
                tracing::info!(vendor = vendor_name, status = e.status(), reason = %e, request_id = %event.request_context.request_id, "webhook rejected");
                if self.vendors.contains_key(vendor_name) {
                    metrics::count(
                        "WebhookRejected",
                        &[("Vendor", vendor_name), ("Status", &e.status().to_string())],
                    );
                }
                HttpResponse::error(&e, Some(event.path()))
            }
        }
    }

    async fn channel_message(
        &self,
        event: &HttpEvent,
        name: &str,
        now: OffsetDateTime,
    ) -> HttpResponse {
        let channel = channel_of(event.path()).and_then(|n| self.channels.get(n));
        let result = match channel {
            None => Err(ApiError::NotFound(format!(
                "no messaging channel at {}",
                event.path()
            ))),
            Some(channel) => {
                channels::intake(
                    channel,
                    event,
                    self.secrets.as_ref(),
                    &self.settings,
                    self.claims.as_ref(),
                    self.queue.as_ref(),
                    now,
                )
                .await
            }
        };
        result.unwrap_or_else(|e| {
            let name = if channel.is_some() { name } else { "-" };
            tracing::info!(channel = name, status = e.status(), reason = %e, request_id = %event.request_context.request_id, "channel message rejected");
            if channel.is_some() {
                metrics::count(
                    "ChannelRejected",
                    &[("Channel", name), ("Status", &e.status().to_string())],
                );
            }
            HttpResponse::error(&e, Some(event.path()))
        })
    }

    async fn intake(
        &self,
        event: &HttpEvent,
        now: OffsetDateTime,
    ) -> Result<HttpResponse, ApiError> {
        let name = vendor_of(event.path()).ok_or_else(|| {
            ApiError::NotFound(format!("no webhook endpoint at {}", event.path()))
        })?;
        let vendor = self
            .vendors
            .get(name)
            .ok_or_else(|| ApiError::NotFound(format!("no webhook endpoint for vendor {name}")))?;
        if event.method() != "POST" {
            return Err(ApiError::MethodNotAllowed {
                detail: "webhooks are POSTed".into(),
                allow: "POST",
            });
        }
        let c = &vendor.config;
        let body = event.body_bytes(c.max_body_bytes)?;
        if body.is_empty() {
            return Err(ApiError::BadRequest("the body is empty".into()));
        }
        let keys = self.keys(vendor).await?;
        let verified = signatures::verify(
            c.scheme,
            &keys,
            event,
            &body,
            now.unix_timestamp(),
            c.tolerance.as_secs() as i64,
        )
        .map_err(|r| ApiError::Unauthorized(format!("signature rejected: {r}")))?;

        if c.scheme == Scheme::Slack {
            if let Some(challenge) = slack_challenge(&body) {
                return Ok(HttpResponse::json(200, &json!({ "challenge": challenge })));
            }
        }

        let x =
            events::extract(c, event, &body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if x.older_than(c.dedup_for, now) {
            metrics::count("WebhookStale", &[("Vendor", name)]);
            return Err(ApiError::Unauthorized(format!(
                "the event's signed time is older than this endpoint remembers events ({} days): refused as a possible replay",
                c.dedup_for.as_secs() / 86_400
            )));
        }
        if x.id_from_body_hash {
            tracing::warn!(
                vendor = name,
                "no event id found; deduplicating on the body's hash"
            );
        }
        let key = ClaimKey {
            tenant: c.tenant.clone(),
            vendor: name.to_string(),
            event_id: x.event_id.clone(),
        };
        let unavailable = |e: crate::store::StoreError| ApiError::Unavailable {
            detail: format!("cannot record the event: {e}"),
            retry_after_secs: 5,
        };
        let token = match self
            .claims
            .claim(&key, &x.vendor_type, CLAIM_LEASE, c.dedup_for, now)
            .await
            .map_err(unavailable)?
        {
            Claim::Claimed { token } => token,
            Claim::Duplicate => {
                tracing::info!(vendor = name, event_id = %x.event_id, delivery_id = ?x.delivery_id, "duplicate delivery");
                metrics::count("WebhookDuplicate", &[("Vendor", name)]);
                return Ok(HttpResponse::json(
                    200,
                    &json!({ "accepted": true, "duplicate": true, "event_id": x.event_id }),
                ));
            }
            Claim::InProgress => {
                return Err(ApiError::Conflict(format!(
                    "event {} is being processed by another delivery; retry later",
                    x.event_id
                )))
            }
        };

        let Some(kind) = x.event else {
            // Recorded by the claim (with its type) and counted; never queued, never retried.
            self.claims
                .complete(&key, &token, "unhandled")
                .await
                .map_err(unavailable)?;
            tracing::info!(vendor = name, vendor_type = %x.vendor_type, event_id = %x.event_id, "event type not handled; recorded");
            metrics::count("WebhookUnhandled", &[("Vendor", name)]);
            return Ok(HttpResponse::json(
                200,
                &json!({ "accepted": true, "handled": false, "event_id": x.event_id }),
            ));
        };

        let envelope = x.envelope(c, kind, event, now);
        let job = Job::vendor_event(&c.tenant, envelope);
        if let Err(e) = self.queue.send(std::slice::from_ref(&job)).await {
            tracing::error!(vendor = name, event_id = %x.event_id, error = %e, "enqueue failed; releasing the claim");
            if let Err(re) = self.claims.release(&key, &token).await {
                // The lease runs out in CLAIM_LEASE and a retry takes over then.
                tracing::error!(error = %re, "could not release the claim");
            }
            return Err(ApiError::Unavailable {
                detail: "the event could not be queued; please retry".into(),
                retry_after_secs: 5,
            });
        }
        if let Err(e) = self.claims.complete(&key, &token, "queued").await {
            // Queued is what matters; a retry after the lease is deduplicated downstream.
            tracing::warn!(error = %e, "could not mark the claim done");
        }
        let delivery_id = x
            .delivery_id
            .clone()
            .or(verified.delivery_id.map(events::bounded_id));
        tracing::info!(vendor = name, event = kind.as_str(), event_id = %x.event_id, delivery_id = ?delivery_id, "webhook queued");
        metrics::count(
            "WebhookAccepted",
            &[("Vendor", name), ("Event", kind.as_str())],
        );
        Ok(HttpResponse::json(
            202,
            &json!({ "accepted": true, "event_id": x.event_id, "event": kind.as_str() }),
        ))
    }
}

/// Slack checks a new endpoint with a signed `url_verification` request and expects its
/// `challenge` back.
fn slack_challenge(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    if v.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    Some(v.get("challenge")?.as_str()?.to_string())
}

#[cfg(test)]
mod tests;
