//! Messaging channels' intake: `/channels/{name}` on the webhook function's URL.
//!
//! In order, stopping at the first failure: the channel must be configured (404); a GET is
//! WhatsApp's subscription handshake (the challenge back for the right verify token, else 403);
//! the body within its limit (413); the signature valid over the raw bytes (401); the body
//! readable (400). Then each message in it has its provider id claimed (a redelivery is
//! acknowledged and goes no further) and is queued as a `channel.inbound` job, grouped by the
//! customer's conversation, so their messages are answered in order. If queueing fails the
//! claims are released and the answer is 503, so the provider's retry gets through.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::claims::{Claim, ClaimKey, ClaimStore};
use super::keys::KeyCache;
use super::WebhookSettings;
use crate::channels::adapter;
use crate::channels::config::ChannelConfig;
use crate::channels::message::{Inbound, Provider};
use crate::channels::party;
use crate::conversation::ConversationKey;
use crate::http_event::{HttpEvent, HttpResponse};
use crate::jobs::{Job, JobKind, JobQueue};
use crate::metrics;
use crate::problem::ApiError;
use crate::secrets::{SecretSource, SecretValue};

/// How long a claim is held for the attempt that made it (as for vendors' events).
const CLAIM_LEASE: Duration = Duration::from_secs(30);

/// One channel and its secrets, cached like a vendor's keys.
pub struct Channel {
    pub config: ChannelConfig,
    secrets: KeyCache<SecretValue>,
    verify_tokens: KeyCache<SecretValue>,
}

impl Channel {
    pub fn new(config: ChannelConfig) -> Self {
        Self {
            config,
            secrets: KeyCache::default(),
            verify_tokens: KeyCache::default(),
        }
    }

    pub async fn secrets(
        &self,
        source: &dyn SecretSource,
        settings: &WebhookSettings,
    ) -> Result<Arc<Vec<SecretValue>>, ApiError> {
        self.secrets
            .keys(
                &self.config.name,
                &self.config.secrets,
                source,
                settings,
                usable,
            )
            .await
    }

    async fn verify_tokens(
        &self,
        source: &dyn SecretSource,
        settings: &WebhookSettings,
    ) -> Result<Arc<Vec<SecretValue>>, ApiError> {
        self.verify_tokens
            .keys(
                &self.config.name,
                &self.config.verify_tokens,
                source,
                settings,
                usable,
            )
            .await
    }
}

/// A secret must have something in it: an empty one would verify an empty signature.
fn usable(v: &str) -> Result<SecretValue, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("the secret is empty".into());
    }
    Ok(SecretValue::new(v))
}

/// What a provider expects back for a message it delivered: Twilio reads the body as TwiML
/// (an empty `<Response/>` sends nothing back by itself: the answer goes through the API).
fn acknowledged(provider: Provider, queued: usize, duplicates: usize) -> HttpResponse {
    match provider {
        Provider::Twilio => HttpResponse::text(
            200,
            "text/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".into(),
        ),
        _ => HttpResponse::json(
            200,
            &json!({ "accepted": true, "queued": queued, "duplicates": duplicates }),
        ),
    }
}

pub(super) async fn intake(
    channel: &Channel,
    event: &HttpEvent,
    source: &dyn SecretSource,
    settings: &WebhookSettings,
    claims: &dyn ClaimStore,
    queue: &dyn JobQueue,
    now: OffsetDateTime,
) -> Result<HttpResponse, ApiError> {
    let c = &channel.config;
    if event.method() == "GET" && c.provider == Provider::Whatsapp {
        let tokens = channel.verify_tokens(source, settings).await?;
        let tokens: Vec<&str> = tokens.iter().map(SecretValue::expose).collect();
        return match adapter::handshake(c.provider, &event.raw_query_string, &tokens) {
            Ok(challenge) => {
                tracing::info!(channel = %c.name, "subscription handshake answered");
                Ok(HttpResponse::text(200, "text/plain", challenge))
            }
            Err(r) => Err(ApiError::Forbidden(format!("handshake refused: {r}"))),
        };
    }
    if event.method() != "POST" {
        return Err(ApiError::MethodNotAllowed {
            detail: "channel messages are POSTed".into(),
            allow: if c.provider == Provider::Whatsapp {
                "GET, POST"
            } else {
                "POST"
            },
        });
    }
    let body = event.body_bytes(c.max_body_bytes)?;
    if body.is_empty() {
        return Err(ApiError::BadRequest("the body is empty".into()));
    }
    let secrets = channel.secrets(source, settings).await?;
    let secrets: Vec<&str> = secrets.iter().map(SecretValue::expose).collect();
    adapter::verify(c.provider, &secrets, event, c.public_url.as_deref(), &body)
        .map_err(|r| ApiError::Unauthorized(format!("signature rejected: {r}")))?;
    let messages = adapter::normalise(c.provider, &body).map_err(ApiError::BadRequest)?;

    let mut claimed = Vec::new();
    let mut duplicates = 0;
    let unavailable = |e: crate::store::StoreError| ApiError::Unavailable {
        detail: format!("cannot record the message: {e}"),
        retry_after_secs: 5,
    };
    for inbound in messages {
        let key = ClaimKey {
            tenant: c.tenant.clone(),
            // `:` is in no vendor's name: a channel's ids never meet a vendor's.
            vendor: format!("channel:{}", c.name),
            event_id: inbound.message_id.clone(),
        };
        match claims
            .claim(&key, "message", CLAIM_LEASE, c.dedup_for, now)
            .await
            .map_err(unavailable)?
        {
            Claim::Claimed { token } => claimed.push((key, token, inbound)),
            Claim::Duplicate => {
                tracing::info!(channel = %c.name, message_id = %inbound.message_id, "redelivered message; already taken");
                metrics::count("ChannelDuplicate", &[("Channel", &c.name)]);
                duplicates += 1;
            }
            Claim::InProgress => {
                release(claims, &claimed).await;
                return Err(ApiError::Conflict(format!(
                    "message {} is being taken by another delivery; retry later",
                    inbound.message_id
                )));
            }
        }
    }
    if claimed.is_empty() {
        return Ok(acknowledged(c.provider, 0, duplicates));
    }
    let jobs: Vec<Job> = claimed
        .iter()
        .map(|(_, _, inbound)| job(c, inbound))
        .collect();
    if let Err(e) = queue.send(&jobs).await {
        tracing::error!(channel = %c.name, error = %e, "enqueue failed; releasing the claims");
        release(claims, &claimed).await;
        return Err(ApiError::Unavailable {
            detail: "the message could not be queued; please retry".into(),
            retry_after_secs: 5,
        });
    }
    for (key, token, _) in &claimed {
        if let Err(e) = claims.complete(key, token, "queued").await {
            // Queued is what matters; a redelivery after the lease is one turn anyway (the
            // turn is keyed by the message id).
            tracing::warn!(error = %e, "could not mark the claim done");
        }
    }
    tracing::info!(channel = %c.name, queued = claimed.len(), duplicates, "channel messages queued");
    for _ in &claimed {
        metrics::count("ChannelAccepted", &[("Channel", &c.name)]);
    }
    Ok(acknowledged(c.provider, claimed.len(), duplicates))
}

/// The job of one message: in its customer's conversation (derived from the channel and their
/// address), so the FIFO queue keeps one customer's messages in order.
fn job(c: &ChannelConfig, inbound: &Inbound) -> Job {
    let key = ConversationKey {
        tenant: c.tenant.clone(),
        id: party::conversation_id(&c.tenant, &c.name, &inbound.user),
    };
    let mut job = Job::new(
        &key,
        "",
        JobKind::ChannelInbound {
            channel: c.name.clone(),
            inbound: Box::new(inbound.clone()),
        },
    );
    // Who the customer is is decided when the turn runs (their CRM link may change).
    job.customer_id = None;
    job
}

async fn release(claims: &dyn ClaimStore, claimed: &[(ClaimKey, String, Inbound)]) {
    for (key, token, _) in claimed {
        if let Err(e) = claims.release(key, token).await {
            // The lease runs out in CLAIM_LEASE and a retry takes over then.
            tracing::error!(error = %e, "could not release the claim");
        }
    }
}
