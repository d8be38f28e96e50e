//! Caller identity from a bearer JWT. Two modes, exactly one configured: HS256 with a shared key
//! (local development), or RS256/ES256 with the identity provider's public keys from its JWKS URL
//! (production, behind API Gateway's JWT authorizer). Either way the claims become a `Principal`.

use crate::io_clock::IoFutureExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::{ConfigError, Env};
use crate::problem::ApiError;

pub mod ring_provider;

/// Tenants and customers become parts of DynamoDB keys, so their ids are restricted to a charset
/// that cannot smuggle a key separator.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@' | b':'))
}

pub const DEFAULT_TENANT: &str = "default";

/// Clock skew tolerated on `exp` and `nbf`: the issue allows at most a minute.
pub const LEEWAY_SECS: u64 = 60;

/// Real tokens are a few hundred bytes to a few KiB; anything far larger is not worth parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What a caller may do, from the token's role claim; a token without one is a customer's.
/// Declared from least to most privileged: `Ord` picks the strongest of several.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    /// A role claim value we know; anything else (an IdP's other groups) is not a role.
    pub fn parse(value: &str) -> Option<Role> {
        match value {
            "customer" => Some(Role::Customer),
            "agent" => Some(Role::Agent),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// The role a claim grants: a string or an array of strings (Cognito's `cognito:groups`);
    /// the most privileged known value wins, unknown values are ignored, none means customer.
    pub fn from_claim(value: Option<&Value>) -> Role {
        let known = |v: &Value| v.as_str().and_then(Role::parse);
        match value {
            Some(Value::Array(items)) => items.iter().filter_map(known).max(),
            Some(v) => known(v),
            None => None,
        }
        .unwrap_or(Role::Customer)
    }
}

/// An authenticated caller. `customer_id` is the token's subject: a customer's own id, or the
/// id of the agent or admin acting (who then reaches customers' data only through `access`).
/// For a messaging channel's user (a phone number, a Telegram chat) not yet linked to a
/// customer of the company's CRM, it is the channel's id for them and `verified` is false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub customer_id: String,
    pub role: Role,
    /// The token's OpenID `locale` claim ("es-MX", "fr_FR"), when it has a well-formed one: the
    /// language the customer chose with their identity provider (`language::choose`).
    pub locale: Option<String>,
    /// Whether `customer_id` is known to be a customer of the company: always for a token's
    /// subject (the identity provider vouches for it); for a channel user only once linked (by
    /// the CRM's phone lookup or a code emailed to the CRM's address). Until then the bot
    /// answers only what needs no account (`Flow::needs_account`) and sees no orders.
    pub verified: bool,
}

impl Principal {
    pub fn customer(tenant: impl Into<String>, customer_id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            customer_id: customer_id.into(),
            role: Role::Customer,
            locale: None,
            verified: true,
        }
    }

    /// A messaging channel's user not linked to a CRM customer yet: `id` is the channel's
    /// name for them, never a customer id, so nothing of a customer's may be read for it.
    pub fn unverified(tenant: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            verified: false,
            ..Self::customer(tenant, id)
        }
    }
}

/// Which claims carry the tenant and the role: identity providers name them their own way
/// (Cognito: `custom:tenant`, `cognito:groups`). And the tenant of a customer's token that
/// names none, if any (`JWT_DEFAULT_TENANT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub tenant: String,
    pub role: String,
    /// Opt-in: with one identity provider for several tenants, a client misconfigured to leave
    /// the claim out would otherwise file its customers under a tenant silently.
    pub default_tenant: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            tenant: "tenant".into(),
            role: "role".into(),
            default_tenant: None,
        }
    }
}

const MALFORMED: &str = "token subject or tenant is malformed";

/// Reads the principal out of verified claims; a refusal is (what to log, what to answer).
fn principal(
    claims: &Map<String, Value>,
    names: &ClaimNames,
) -> Result<Principal, (String, String)> {
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if is_valid_id(s) => s,
        _ => return Err(("subject is missing or malformed".into(), MALFORMED.into())),
    };
    let role = Role::from_claim(claims.get(&names.role));
    let no_tenant = |why: String| {
        let detail = format!("the token names no tenant (claim {:?})", names.tenant);
        Err((why, detail))
    };
    let tenant = match claims.get(&names.tenant) {
        // A customer without a tenant is the single-tenant case, when configured so. Staff
        // reach every customer of their tenant, so theirs is never assumed: an agent account
        // set up without one would otherwise be handed the default tenant's customers.
        None | Some(Value::Null) if role == Role::Customer => match &names.default_tenant {
            Some(t) => t.as_str(),
            None => {
                return no_tenant(format!(
                    "customer tokens must name their tenant (claim {:?}): JWT_DEFAULT_TENANT is not set",
                    names.tenant
                ))
            }
        },
        None | Some(Value::Null) => {
            return no_tenant(format!(
                "{} tokens must name their tenant (claim {:?})",
                role.as_str(),
                names.tenant
            ))
        }
        Some(Value::String(t)) if is_valid_id(t) => t,
        Some(_) => {
            return Err((
                format!("tenant claim {:?} is malformed", names.tenant),
                MALFORMED.into(),
            ))
        }
    };
    Ok(Principal {
        tenant: tenant.to_string(),
        customer_id: sub.clone(),
        role,
        locale: claims
            .get("locale")
            .and_then(Value::as_str)
            .filter(|t| crate::language::is_tag(t))
            .map(str::to_string),
        verified: true,
    })
}

/// `aud` holds the expected audience (a string or one of an array). A token without `aud` may
/// name it in `client_id`: Cognito's access tokens do, and API Gateway's JWT authorizer accepts
/// them the same way, so both layers agree on which tokens pass.
fn audience_matches(claims: &Map<String, Value>, expected: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(aud)) => aud == expected,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected)),
        None => claims.get("client_id").and_then(Value::as_str) == Some(expected),
        Some(_) => false,
    }
}

/// The one algorithm a validation accepts, with exp (required), nbf (when present) and iss
/// (required when configured) checked by jsonwebtoken; the audience is `audience_matches`'s.
fn validation(alg: Algorithm, issuer: Option<&str>) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    let mut required = vec!["exp", "sub"];
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v
}

/// How the JWKS cache fetches and refreshes.
#[derive(Debug, Clone)]
pub struct JwksOptions {
    /// At most one refresh per this interval, however many unknown `kid`s arrive: random kids
    /// cannot make us hammer the identity provider.
    pub cooldown: Duration,
    /// Keys older than this are refetched on the next request (revoked keys go away).
    pub max_age: Duration,
    /// Per fetch, connection to last byte.
    pub timeout: Duration,
    /// A key set is a few KiB; a larger body is refused rather than buffered.
    pub max_bytes: usize,
}

impl Default for JwksOptions {
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(30),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(3),
            max_bytes: 64 * 1024,
        }
    }
}

/// A usable signing key from the set, with the one algorithm it verifies.
struct SigningKey {
    kid: Option<String>,
    alg: Algorithm,
    key: Arc<DecodingKey>,
}

#[derive(Default)]
struct CacheState {
    keys: Arc<Vec<SigningKey>>,
    fetched_at: Option<Instant>,
    attempted_at: Option<Instant>,
    /// Counts fetch attempts, so a request that waited for another's fetch does not repeat it.
    attempts: u64,
}

/// The identity provider's keys, per container.
struct JwksCache {
    url: url::Url,
    http: reqwest::Client,
    options: JwksOptions,
    state: Mutex<CacheState>,
    /// Held while fetching: concurrent requests that need a refresh share one fetch.
    fetching: tokio::sync::Mutex<()>,
}

/// Why no key was found for a token.
enum Miss {
    UnknownKid,
    NoKeys,
    Ambiguous,
    WrongAlgorithm,
}

fn select(
    keys: &[SigningKey],
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Arc<DecodingKey>, Miss> {
    if keys.is_empty() {
        return Err(Miss::NoKeys);
    }
    match kid {
        Some(kid) => match keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            None => Err(Miss::UnknownKid),
            Some(k) if k.alg != alg => Err(Miss::WrongAlgorithm),
            Some(k) => Ok(k.key.clone()),
        },
        // Without a kid only a set of one key says which key is meant.
        None => match keys {
            [only] if only.alg == alg => Ok(only.key.clone()),
            [_] => Err(Miss::WrongAlgorithm),
            _ => Err(Miss::Ambiguous),
        },
    }
}

/// A key of the set we can use: RSA for RS256 or P-256 for ES256, for signatures, whose `alg`
/// (when given) agrees with its type. Other keys (encryption keys, other algorithms) are skipped,
/// so a provider's mixed set still works.
fn signing_key(value: Value) -> Option<SigningKey> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(rsa), None | Some(KeyAlgorithm::RS256)) => {
            // Refused at every token otherwise, as a bad signature: said once, here.
            let bits = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_or(0, |n| ring_provider::modulus_bits(&n));
            if !ring_provider::RSA_BITS.contains(&bits) {
                tracing::warn!(
                    kid = jwk.common.key_id.as_deref().unwrap_or(""),
                    bits,
                    "JWKS: RSA key skipped, only keys of 2048 to 8192 bits are verified"
                );
                return None;
            }
            Algorithm::RS256
        }
        (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
            if p.curve == EllipticCurve::P256 =>
        {
            // A P-256 point's coordinates are 32 bytes each; with others the key would fail
            // every token as a bad signature: said once, here.
            let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(c).is_ok_and(|b| b.len() == 32);
            if !(coordinate(&p.x) && coordinate(&p.y)) {
                tracing::warn!(
                    kid = jwk.common.key_id.as_deref().unwrap_or(""),
                    "JWKS: EC key skipped, its x and y are not base64url of 32 bytes each (P-256)"
                );
                return None;
            }
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(SigningKey {
        kid: jwk.common.key_id,
        alg,
        key: Arc::new(key),
    })
}

fn parse_jwks(body: &[u8]) -> Result<Vec<SigningKey>, String> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut keys: Vec<SigningKey> = Vec::new();
    for key in set.keys.into_iter().filter_map(signing_key) {
        // The first of two keys with one kid wins, as a lookup by kid would pick it anyway.
        if key.kid.is_none() || !keys.iter().any(|k| k.kid == key.kid) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err("the set has no usable RS256 or ES256 signing key".into());
    }
    Ok(keys)
}

impl JwksCache {
    async fn download(&self) -> Result<Vec<u8>, String> {
        let mut resp = self
            .http
            .get(self.url.clone())
            .header("accept", "application/json")
            .timeout(self.options.timeout)
            .send()
            .io()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let max = self.options.max_bytes;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("response is larger than {max} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?
        {
            if body.len() + chunk.len() > max {
                return Err(format!("response is larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Fetches the set and installs it; on failure the keys we had stay.
    async fn fetch(&self) {
        let result = match tokio::time::timeout(self.options.timeout, self.download()).await {
            Ok(Ok(body)) => parse_jwks(&body),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("timed out after {:?}", self.options.timeout)),
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.attempts += 1;
        state.attempted_at = Some(Instant::now());
        match result {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched the JWKS");
                state.keys = Arc::new(keys);
                state.fetched_at = state.attempted_at;
            }
            Err(reason) => tracing::warn!(
                url = %self.url,
                reason = %reason,
                keys_kept = state.keys.len(),
                "fetching the JWKS failed"
            ),
        }
    }

    /// Refreshes unless another request did since `seen` attempts, or the cooldown forbids it.
    async fn refresh(&self, seen: u64) {
        let _fetching = self.fetching.lock().await;
        {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.attempts != seen || !self.cooled_down(&state) {
                return;
            }
        }
        self.fetch().await;
    }

    fn cooled_down(&self, state: &CacheState) -> bool {
        state
            .attempted_at
            .is_none_or(|t| t.elapsed() >= self.options.cooldown)
    }

    fn snapshot(&self) -> (Arc<Vec<SigningKey>>, bool, bool, u64) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let stale = state
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.options.max_age);
        (
            state.keys.clone(),
            stale,
            self.cooled_down(&state),
            state.attempts,
        )
    }

    /// The key for a token's `kid` and algorithm, refreshing the set when the kid is unknown or
    /// the set is old (at most once per cooldown).
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, ApiError> {
        let (keys, stale, may_refresh, attempts) = self.snapshot();
        let found = select(&keys, kid, alg);
        let wanted = stale || matches!(found, Err(Miss::UnknownKid | Miss::NoKeys));
        let found = if wanted && may_refresh {
            self.refresh(attempts).await;
            select(&self.snapshot().0, kid, alg)
        } else {
            found
        };
        found.map_err(|miss| match miss {
            Miss::NoKeys => {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let wait = state
                    .attempted_at
                    .map(|t| self.options.cooldown.saturating_sub(t.elapsed()))
                    .unwrap_or_default();
                tracing::warn!(
                    "no JWKS keys yet: the identity provider's key set could not be fetched"
                );
                ApiError::Unavailable {
                    detail: "the identity provider's signing keys are not available; retry later"
                        .into(),
                    retry_after_secs: (wait.as_secs_f64().ceil() as u32).max(1),
                }
            }
            Miss::UnknownKid => reject("the token's kid is not in the key set"),
            Miss::Ambiguous => reject("the token names no kid and the set has several keys"),
            Miss::WrongAlgorithm => reject("the key does not match the token's algorithm"),
        })
    }
}

enum Keys {
    Hs256(Arc<DecodingKey>),
    Jwks(Arc<JwksCache>),
}

pub struct JwtVerifier {
    keys: Keys,
    /// One per accepted algorithm: HS256 in HS mode; RS256 and ES256 in JWKS mode.
    validations: Vec<Validation>,
    audience: Option<String>,
    claims: ClaimNames,
}

/// Logs why a token was refused (never the token) and answers a generic 401.
fn reject(reason: &str) -> ApiError {
    reject_as(reason, "invalid token")
}

fn reject_as(reason: &str, detail: &str) -> ApiError {
    // The reason can quote attacker-chosen header text: keep log lines short.
    let reason: String = reason.chars().take(200).collect();
    tracing::info!(reason = %reason, "rejected token");
    ApiError::Unauthorized(detail.to_string())
}

/// Cargo-lambda, tests and the demo serve keys on loopback; anything else must be HTTPS.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl JwtVerifier {
    /// HS256 with a shared key: local development. `issuer` and `audience` are checked when given.
    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Self {
        ring_provider::install();
        Self {
            keys: Keys::Hs256(Arc::new(DecodingKey::from_secret(secret))),
            validations: vec![validation(Algorithm::HS256, issuer)],
            audience: audience.map(str::to_string),
            claims: ClaimNames::default(),
        }
    }

    /// RS256/ES256 with the keys at `url` (fetched by `warm_up` and on demand). Production tokens
    /// always name their issuer and audience.
    pub fn jwks(
        url: url::Url,
        issuer: &str,
        audience: &str,
        http: reqwest::Client,
        options: JwksOptions,
    ) -> Self {
        ring_provider::install();
        Self {
            keys: Keys::Jwks(Arc::new(JwksCache {
                url,
                http,
                options,
                state: Mutex::new(CacheState::default()),
                fetching: tokio::sync::Mutex::new(()),
            })),
            validations: vec![
                validation(Algorithm::RS256, Some(issuer)),
                validation(Algorithm::ES256, Some(issuer)),
            ],
            audience: Some(audience.to_string()),
            claims: ClaimNames::default(),
        }
    }

    pub fn with_claim_names(mut self, claims: ClaimNames) -> Self {
        self.claims = claims;
        self
    }

    /// `JWT_HS256_SECRET` (HS256, local development) or `JWT_JWKS_URL` (with `JWT_ISSUER` and
    /// `JWT_AUDIENCE`), never both; `JWT_TENANT_CLAIM` and `JWT_ROLE_CLAIM` rename the claims;
    /// `JWT_DEFAULT_TENANT` is the tenant of customer tokens without the claim (unset: they are
    /// refused).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let issuer = env.optional("JWT_ISSUER");
        let audience = env.optional("JWT_AUDIENCE");
        let defaults = ClaimNames::default();
        let default_tenant = env.optional("JWT_DEFAULT_TENANT");
        if let Some(t) = default_tenant.as_deref().filter(|t| !is_valid_id(t)) {
            return Err(ConfigError::Invalid {
                name: "JWT_DEFAULT_TENANT",
                reason: format!(
                    "{t:?} is not a tenant id (1-128 of letters, digits and _ - . @ :)"
                ),
            });
        }
        let claims = ClaimNames {
            tenant: env.optional("JWT_TENANT_CLAIM").unwrap_or(defaults.tenant),
            role: env.optional("JWT_ROLE_CLAIM").unwrap_or(defaults.role),
            default_tenant,
        };
        let verifier = match (
            env.optional("JWT_HS256_SECRET"),
            env.optional("JWT_JWKS_URL"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "JWT_JWKS_URL",
                    reason: "JWT_HS256_SECRET is set too: set exactly one of JWT_JWKS_URL \
                             (RS256/ES256, the identity provider's keys) and JWT_HS256_SECRET \
                             (HS256, local development)"
                        .into(),
                });
            }
            (None, None) => {
                return Err(ConfigError::Invalid {
                    name: "JWT_JWKS_URL",
                    reason: "set JWT_JWKS_URL (RS256/ES256, the identity provider's keys) or, \
                             for local development, JWT_HS256_SECRET (HS256)"
                        .into(),
                });
            }
            (Some(secret), None) => {
                if secret.len() < 32 {
                    return Err(ConfigError::Invalid {
                        name: "JWT_HS256_SECRET",
                        reason: "must be at least 32 bytes".into(),
                    });
                }
                Self::hs256(secret.as_bytes(), issuer.as_deref(), audience.as_deref())
            }
            (None, Some(_)) => {
                let url = env.url("JWT_JWKS_URL")?;
                if url.scheme() != "https" && !is_loopback(&url) {
                    return Err(ConfigError::Invalid {
                        name: "JWT_JWKS_URL",
                        reason: "must be https (plain http only on loopback)".into(),
                    });
                }
                let required = |value: Option<String>, name: &'static str| {
                    value.ok_or(ConfigError::Invalid {
                        name,
                        reason: "required with JWT_JWKS_URL (API Gateway's JWT authorizer \
                                 checks it too)"
                            .into(),
                    })
                };
                let issuer = required(issuer, "JWT_ISSUER")?;
                let audience = required(audience, "JWT_AUDIENCE")?;
                Self::jwks(
                    url,
                    &issuer,
                    &audience,
                    crate::connectors::engine::http_client(),
                    JwksOptions::default(),
                )
            }
        };
        Ok(verifier.with_claim_names(claims))
    }

    /// Fetches the key set during init (JWKS mode). A failure is logged, not fatal: requests
    /// answer 503 until a later fetch succeeds.
    pub async fn warm_up(&self) {
        if let Keys::Jwks(cache) = &self.keys {
            let _fetching = cache.fetching.lock().await;
            cache.fetch().await;
        }
    }

    /// Verifies an `Authorization` header value.
    pub async fn verify_header(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let header = header.ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthorized("authorization must be a bearer token".into()))?
            .trim();
        self.verify(token).await
    }

    /// Verifies a compact JWT.
    pub async fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(reject("the token is too large"));
        }
        // `alg: none` and unknown algorithms fail here: jsonwebtoken has no such algorithm.
        let head = jsonwebtoken::decode_header(token)
            .map_err(|e| reject(&format!("unreadable header: {e}")))?;
        // Only the mode's own algorithms: an HS256 token in JWKS mode (an HMAC keyed with the
        // public key) or an RS256 one in HS mode stops here, before any key is looked at.
        let validation = self
            .validations
            .iter()
            .find(|v| v.algorithms == [head.alg])
            .ok_or_else(|| reject(&format!("algorithm {:?} is not accepted", head.alg)))?;
        let key = match &self.keys {
            Keys::Hs256(key) => key.clone(),
            Keys::Jwks(cache) => cache.key_for(head.kid.as_deref(), head.alg).await?,
        };
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    reject_as("expired", "token expired")
                }
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    reject_as("not yet valid (nbf)", "token not yet valid")
                }
                _ => reject(&e.to_string()),
            },
        )?;
        if let Some(aud) = &self.audience {
            if !audience_matches(&data.claims, aud) {
                return Err(reject("wrong or missing audience"));
            }
        }
        principal(&data.claims, &self.claims)
            .map_err(|(reason, detail)| reject_as(&reason, &detail))
    }
}

/// Claims of a token minted for local development and tests (never by a deployed function).
#[derive(Debug, Clone)]
pub struct DevClaims {
    claims: Map<String, Value>,
    ttl_secs: i64,
    not_before_in: Option<i64>,
}

impl DevClaims {
    /// A token for `sub`, valid for ten minutes, without tenant, role, issuer or audience.
    pub fn new(sub: &str) -> Self {
        let mut claims = Map::new();
        claims.insert("sub".into(), sub.into());
        Self {
            claims,
            ttl_secs: 600,
            not_before_in: None,
        }
    }

    /// Any claim, e.g. a role array or a custom claim name (`cognito:groups`).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    pub fn tenant(self, tenant: &str) -> Self {
        self.claim("tenant", tenant)
    }

    pub fn role(self, role: Role) -> Self {
        self.claim("role", role.as_str())
    }

    pub fn issuer(self, iss: &str) -> Self {
        self.claim("iss", iss)
    }

    pub fn audience(self, aud: &str) -> Self {
        self.claim("aud", aud)
    }

    /// Sets `iss` and `aud` where given (a stack configured with them).
    pub fn issued_for(self, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let this = match issuer {
            Some(iss) => self.issuer(iss),
            None => self,
        };
        match audience {
            Some(aud) => this.audience(aud),
            None => this,
        }
    }

    /// `exp` this many seconds from now (negative: already expired).
    pub fn expires_in(mut self, secs: i64) -> Self {
        self.ttl_secs = secs;
        self
    }

    /// `nbf` this many seconds from now.
    pub fn not_before_in(mut self, secs: i64) -> Self {
        self.not_before_in = Some(secs);
        self
    }

    /// The claims as of now (`iat`, `exp` and `nbf` filled in).
    pub fn to_json(&self) -> Value {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut claims = self.claims.clone();
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.ttl_secs).into());
        if let Some(nbf) = self.not_before_in {
            claims.insert("nbf".into(), (now + nbf).into());
        }
        Value::Object(claims)
    }

    pub fn sign_hs256(&self, secret: &[u8]) -> String {
        self.sign(
            &Header::new(Algorithm::HS256),
            &EncodingKey::from_secret(secret),
        )
        .expect("HS256 signing of a JSON object cannot fail")
    }

    /// Signs with the algorithms `ring_provider` signs (RS256/ES256 for tests of the JWKS mode).
    pub fn sign(&self, header: &Header, key: &EncodingKey) -> jsonwebtoken::errors::Result<String> {
        ring_provider::install();
        jsonwebtoken::encode(header, &self.to_json(), key)
    }
}

/// Mints HS256 tokens for local development and tests (never used by a deployed function).
pub fn dev_token(secret: &[u8], sub: &str, tenant: Option<&str>, ttl_secs: i64) -> String {
    let claims = DevClaims::new(sub).expires_in(ttl_secs);
    match tenant {
        Some(t) => claims.tenant(t),
        None => claims,
    }
    .sign_hs256(secret)
}

#[cfg(test)]
mod tests;
