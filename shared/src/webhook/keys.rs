//! A vendor's signing keys: read from the secret store through its references, cached per
//! container and re-read after the TTL, so a rotation reaches warm containers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::problem::ApiError;
use crate::secrets::{SecretError, SecretSource};
use crate::signatures::SigningKey;

use super::config::VendorConfig;

#[derive(Default)]
struct KeyRing {
    keys: Option<Arc<Vec<SigningKey>>>,
    fetched: Option<Instant>,
}

/// One vendor's keys.
#[derive(Default)]
pub struct VendorKeys {
    ring: Mutex<KeyRing>,
}

impl VendorKeys {
    /// The vendor's signing keys, re-read after `ttl`. If a refresh fails, the keys in hand
    /// stay in use: a secrets outage must not stop webhooks that were verifying a moment ago.
    pub async fn get(
        &self,
        c: &VendorConfig,
        secrets: &dyn SecretSource,
        ttl: Duration,
    ) -> Result<Arc<Vec<SigningKey>>, ApiError> {
        let stale = {
            let ring = self.ring.lock().unwrap();
            match (&ring.keys, ring.fetched) {
                (Some(k), Some(at)) if at.elapsed() < ttl => return Ok(k.clone()),
                (k, _) => k.clone(),
            }
        };
        let mut keys = Vec::new();
        let mut last_error = None;
        for reference in &c.secrets {
            match secrets.resolve(reference).await {
                Ok(values) => {
                    for v in values {
                        match SigningKey::new(c.scheme, v.expose()) {
                            Ok(k) => keys.push(k),
                            Err(e) => {
                                tracing::error!(vendor = %c.name, secret = %reference, error = %e, "unusable secret value")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(vendor = %c.name, error = %e, "secret not read");
                    last_error = Some(e);
                }
            }
        }
        if !keys.is_empty() {
            let keys = Arc::new(keys);
            let mut ring = self.ring.lock().unwrap();
            ring.keys = Some(keys.clone());
            ring.fetched = Some(Instant::now());
            return Ok(keys);
        }
        if let Some(stale) = stale {
            return Ok(stale);
        }
        Err(match last_error {
            Some(SecretError::Unavailable { .. }) => ApiError::Unavailable {
                detail: "the vendor's signing secret cannot be read right now".into(),
                retry_after_secs: 30,
            },
            // Not configured: from outside, the same as a vendor that does not exist.
            _ => ApiError::NotFound(format!("no webhook endpoint for vendor {}", c.name)),
        })
    }
}
