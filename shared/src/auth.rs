//! Caller identity from a bearer JWT. HS256 with a shared key here; JWKS-backed RS256/ES256 comes
//! with the security work, behind the same `Principal`.

use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::config::{ConfigError, Env};
use crate::problem::ApiError;

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

/// What a caller may do, from the token's role claim; a token without one is a customer's.
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
}

/// A verified caller. `customer_id` is the token's subject: a customer's own id, or the id of
/// the agent or admin acting (who then reaches customers' data only through `access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub customer_id: String,
    pub role: Role,
}

impl Principal {
    pub fn customer(tenant: impl Into<String>, customer_id: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            customer_id: customer_id.into(),
            role: Role::Customer,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    tenant: Option<String>,
}

pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 60;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let secret = env.required("JWT_HS256_SECRET")?;
        if secret.len() < 32 {
            return Err(ConfigError::Invalid {
                name: "JWT_HS256_SECRET",
                reason: "must be at least 32 bytes".into(),
            });
        }
        Ok(Self::hs256(
            secret.as_bytes(),
            env.optional("JWT_ISSUER").as_deref(),
            env.optional("JWT_AUDIENCE").as_deref(),
        ))
    }

    /// Verifies an `Authorization` header value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let header = header.ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthorized("authorization must be a bearer token".into()))?
            .trim();
        let data = decode::<Claims>(token, &self.key, &self.validation).map_err(|e| {
            tracing::info!(reason = %e, "rejected token");
            ApiError::Unauthorized(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired".into(),
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => "token not yet valid".into(),
                _ => "invalid token".into(),
            })
        })?;
        let claims = data.claims;
        let tenant = claims.tenant.unwrap_or_else(|| DEFAULT_TENANT.to_string());
        if !is_valid_id(&claims.sub) || !is_valid_id(&tenant) {
            return Err(ApiError::Unauthorized(
                "token subject or tenant is malformed".into(),
            ));
        }
        Ok(Principal::customer(tenant, claims.sub))
    }
}

/// Mints HS256 tokens for local development and tests (never used by a deployed function).
pub fn dev_token(secret: &[u8], sub: &str, tenant: Option<&str>, ttl_secs: i64) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = serde_json::json!({ "sub": sub, "iat": now, "exp": now + ttl_secs });
    if let Some(t) = tenant {
        claims["tenant"] = t.into();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("HS256 encoding of a JSON object cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_a_valid_token() {
        let v = JwtVerifier::hs256(KEY, None, None);
        let t = dev_token(KEY, "cust_1", Some("acme"), 60);
        let p = v.verify_header(Some(&format!("Bearer {t}"))).unwrap();
        assert_eq!(p.customer_id, "cust_1");
        assert_eq!(p.tenant, "acme");
    }

    #[test]
    fn rejects_expired_forged_and_missing() {
        let v = JwtVerifier::hs256(KEY, None, None);
        let expired = dev_token(KEY, "cust_1", None, -3600);
        assert!(matches!(
            v.verify_header(Some(&format!("Bearer {expired}"))),
            Err(ApiError::Unauthorized(m)) if m == "token expired"
        ));
        let forged = dev_token(b"another-key-another-key-another-k", "cust_1", None, 60);
        assert!(v.verify_header(Some(&format!("Bearer {forged}"))).is_err());
        assert!(v.verify_header(None).is_err());
        assert!(v.verify_header(Some("Basic abc")).is_err());
    }

    #[test]
    fn rejects_ids_that_could_break_keys() {
        let v = JwtVerifier::hs256(KEY, None, None);
        let t = dev_token(KEY, "a#b", None, 60);
        assert!(v.verify_header(Some(&format!("Bearer {t}"))).is_err());
    }
}
