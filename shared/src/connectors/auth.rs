//! Credentials on outgoing requests: API keys, bearer tokens, basic auth and OAuth2 client
//! credentials. Secrets are read by reference once per container and re-read after a TTL; an
//! OAuth2 token is cached until shortly before it expires, or until the system rejects it.

use crate::io_clock::IoFutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::time::Instant;

use super::config::{Auth, ClientAuth, KeyPlace, OAuth2Config};
use super::ConnectorError;
use crate::secrets::{SecretError, SecretRef, SecretSource, SecretValue};

/// A token is renewed this long before its stated expiry, so no request carries one that
/// expires in flight.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// When a token endpoint states no lifetime.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// Secrets by reference with a TTL. If a re-read fails, the value in hand stays in use: a
/// secrets outage must not cut off a system that was reachable a moment ago.
pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    ttl: Duration,
    values: Mutex<HashMap<SecretRef, (Instant, SecretValue)>>,
}

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            values: Mutex::new(HashMap::new()),
        }
    }

    /// The reference's first active value (outgoing credentials use one; rotation is the
    /// order of the list).
    pub async fn get(&self, reference: &SecretRef) -> Result<SecretValue, SecretError> {
        let stale = {
            let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
            match values.get(reference) {
                Some((at, v)) if at.elapsed() < self.ttl => return Ok(v.clone()),
                Some((_, v)) => Some(v.clone()),
                None => None,
            }
        };
        match self.source.resolve(reference).await {
            Ok(mut vs) => {
                let v = vs.swap_remove(0);
                self.values
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(reference.clone(), (Instant::now(), v.clone()));
                Ok(v)
            }
            Err(e) => match stale {
                Some(v) => {
                    tracing::warn!(secret = %reference, error = %e, "secret re-read failed; the value in hand stays in use");
                    Ok(v)
                }
                None => Err(e),
            },
        }
    }
}

struct Token {
    value: SecretValue,
    renew_at: Instant,
}

/// A system's credentials, with its OAuth2 token if it has one.
pub struct Credentials {
    auth: Auth,
    token: tokio::sync::Mutex<Option<Token>>,
}

/// What a request carries: applied by [`Credentials::apply`].
pub enum Credential {
    None,
    Header(http::HeaderName, http::HeaderValue),
    Query(String, SecretValue),
    /// The path segment that goes before the operation's path (prefix and secret).
    PathSegment(SecretValue),
}

fn unavailable(system: &'static str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable {
        system,
        detail: format!("credentials: {e}"),
    }
}

/// A secret that cannot be read right now is worth retrying; one that is missing or malformed
/// needs fixing, and retrying a job for it only walks it to the DLQ.
fn secret_error(system: &'static str, e: SecretError) -> ConnectorError {
    match e {
        SecretError::Unavailable { .. } => unavailable(system, e),
        other => ConnectorError::Misconfigured {
            system,
            detail: format!("credentials: {other}"),
        },
    }
}

fn sensitive(value: String) -> Result<http::HeaderValue, String> {
    let mut v = http::HeaderValue::try_from(value)
        .map_err(|_| "the secret is not a valid header value".to_string())?;
    // Keeps it out of HTTP/2 header tables and reqwest's debug output.
    v.set_sensitive(true);
    Ok(v)
}

impl Credentials {
    pub fn new(auth: Auth) -> Self {
        Self {
            auth,
            token: tokio::sync::Mutex::new(None),
        }
    }

    pub fn is_oauth2(&self) -> bool {
        matches!(self.auth, Auth::OAuth2(_))
    }

    /// The credential for the next request. For OAuth2, a cached token or a new one.
    /// `timeout` bounds a token request (the calling operation's own timeout).
    pub async fn credential(
        &self,
        system: &'static str,
        secrets: &SecretCache,
        client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Credential, ConnectorError> {
        let secret = |r: &SecretRef| {
            let r = r.clone();
            async move { secrets.get(&r).await.map_err(|e| secret_error(system, e)) }
        };
        Ok(match &self.auth {
            Auth::None => Credential::None,
            Auth::ApiKey {
                place: KeyPlace::Header(name),
                secret: r,
                prefix,
            } => {
                let v = secret(r).await?;
                Credential::Header(
                    name.clone(),
                    sensitive(format!("{prefix}{}", v.expose()))
                        .map_err(|e| unavailable(system, e))?,
                )
            }
            Auth::ApiKey {
                place: KeyPlace::Query(name),
                secret: r,
                ..
            } => Credential::Query(name.clone(), secret(r).await?),
            Auth::Bearer { secret: r } => Credential::Header(
                http::header::AUTHORIZATION,
                sensitive(format!("Bearer {}", secret(r).await?.expose()))
                    .map_err(|e| unavailable(system, e))?,
            ),
            Auth::PathToken { secret: r, prefix } => {
                let v = secret(r).await?;
                // It becomes part of a URL: anything but a plain token would change the path.
                if !v.expose().bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'-' | b'.' | b'~')
                }) || v.expose().is_empty()
                {
                    return Err(ConnectorError::Misconfigured {
                        system,
                        detail: "credentials: the path token has characters a URL path cannot hold as they are".into(),
                    });
                }
                Credential::PathSegment(SecretValue::new(format!("{prefix}{}", v.expose())))
            }
            Auth::Basic { username, password } => {
                let pw = match password {
                    Some(r) => secret(r).await?.expose().to_string(),
                    None => String::new(),
                };
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{pw}"));
                Credential::Header(
                    http::header::AUTHORIZATION,
                    sensitive(format!("Basic {encoded}")).map_err(|e| unavailable(system, e))?,
                )
            }
            Auth::OAuth2(cfg) => {
                // Held across the fetch: concurrent calls wait for one token request.
                let mut token = self.token.lock().await;
                let fresh = token.as_ref().filter(|t| Instant::now() < t.renew_at);
                let value = match fresh {
                    Some(t) => t.value.clone(),
                    None => {
                        let t = fetch_token(system, cfg, secrets, client, timeout).await?;
                        let v = t.value.clone();
                        *token = Some(t);
                        v
                    }
                };
                Credential::Header(
                    http::header::AUTHORIZATION,
                    sensitive(format!("Bearer {}", value.expose()))
                        .map_err(|e| unavailable(system, e))?,
                )
            }
        })
    }

    /// The system rejected the token it was sent (401): drop it, unless another call has
    /// already replaced it.
    pub async fn reject(&self, sent: &Credential) {
        let mut token = self.token.lock().await;
        if let (Some(t), Credential::Header(_, v)) = (token.as_ref(), sent) {
            if v.as_bytes().strip_prefix(b"Bearer ") == Some(t.value.expose().as_bytes()) {
                *token = None;
            }
        }
    }
}

impl Credential {
    pub fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Credential::None => req,
            Credential::Header(n, v) => req.header(n.clone(), v.clone()),
            Credential::Query(n, v) => req.query(&[(n.as_str(), v.expose())]),
            // Put in the URL by the engine when it builds it.
            Credential::PathSegment(_) => req,
        }
    }
}

async fn fetch_token(
    system: &'static str,
    cfg: &OAuth2Config,
    secrets: &SecretCache,
    client: &reqwest::Client,
    timeout: Duration,
) -> Result<Token, ConnectorError> {
    let secret = secrets
        .get(&cfg.client_secret)
        .await
        .map_err(|e| secret_error(system, e))?;
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(s) = &cfg.scope {
        form.push(("scope", s));
    }
    if let Some(a) = &cfg.audience {
        form.push(("audience", a));
    }
    let mut req = client.post(cfg.token_url.clone()).timeout(timeout);
    match cfg.client_auth {
        ClientAuth::Basic => req = req.basic_auth(&cfg.client_id, Some(secret.expose())),
        ClientAuth::Body => {
            form.push(("client_id", &cfg.client_id));
            form.push(("client_secret", secret.expose()));
        }
    }
    let started = Instant::now();
    let resp = req.form(&form).send().io().await.map_err(|e| {
        unavailable(
            system,
            format!("token endpoint: {}", super::engine::describe(&e)),
        )
    })?;
    let status = resp.status();
    if !status.is_success() {
        // The endpoint's error body is not logged: some echo the credentials back.
        return Err(if status.as_u16() == 429 || status.is_server_error() {
            unavailable(system, format!("token endpoint answered {status}"))
        } else {
            ConnectorError::Rejected {
                system,
                status: status.as_u16(),
                detail: "the token endpoint refused the client credentials".into(),
            }
        });
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        expires_in: Option<u64>,
    }
    let answer: Answer = resp
        .json()
        .io()
        .await
        .map_err(|_| ConnectorError::Malformed {
            system,
            detail: "the token endpoint's answer has no access_token".into(),
        })?;
    let lifetime = answer
        .expires_in
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    tracing::info!(
        system,
        expires_in_secs = lifetime.as_secs(),
        "OAuth2 token obtained"
    );
    Ok(Token {
        value: SecretValue::new(answer.access_token),
        renew_at: started + lifetime.saturating_sub(EXPIRY_MARGIN.min(lifetime / 2)),
    })
}
