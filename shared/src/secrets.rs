//! Secrets by reference, so that config files and templates name secrets without holding them:
//!
//! - `env:NAME`: the variable's value (the local stack). If that value is itself an `ssm:` or
//!   `secretsmanager:` reference, it is followed once, so one config works locally and in AWS,
//!   where the template sets the variable to a reference rather than to the secret.
//! - `ssm:/path`: an SSM parameter, decrypted; a `StringList` holds several secrets.
//! - `secretsmanager:name` or `secretsmanager:name#key`: a Secrets Manager secret, whole or one
//!   key of its JSON object; a key may hold a string or an array of strings.
//!
//! A reference can yield several values: during a rotation both the old and the new secret are
//! active. Values are wrapped in [`SecretValue`], whose `Debug` never prints them.

use crate::io_clock::IoFutureExt;
use crate::single_flight::SingleFlight;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use futures_util::FutureExt;

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretRef {
    Env(String),
    Ssm(String),
    SecretsManager { id: String, key: Option<String> },
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(n) => write!(f, "env:{n}"),
            SecretRef::Ssm(p) => write!(f, "ssm:{p}"),
            SecretRef::SecretsManager { id, key: None } => write!(f, "secretsmanager:{id}"),
            SecretRef::SecretsManager { id, key: Some(k) } => {
                write!(f, "secretsmanager:{id}#{k}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The text is not repeated: it may be a secret pasted where its reference belongs.
    #[error("not a secret reference: expected env:NAME, ssm:/path or secretsmanager:name[#key] (a secret's value never goes in a file)")]
    BadReference(String),
    #[error("secret {0} is not set")]
    NotFound(String),
    #[error("secret {reference} is malformed: {reason}")]
    Malformed { reference: String, reason: String },
    #[error("could not read secret {reference}: {reason}")]
    Unavailable { reference: String, reason: String },
}

impl FromStr for SecretRef {
    type Err = SecretError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let bad = || SecretError::BadReference(raw.to_string());
        let (kind, rest) = raw.trim().split_once(':').ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        match kind {
            "env" if rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Ok(SecretRef::Env(rest.to_string()))
            }
            "ssm" if rest.starts_with('/') || !rest.contains('/') => {
                Ok(SecretRef::Ssm(rest.to_string()))
            }
            "secretsmanager" => match rest.split_once('#') {
                Some((id, key)) if !id.is_empty() && !key.is_empty() => {
                    Ok(SecretRef::SecretsManager {
                        id: id.to_string(),
                        key: Some(key.to_string()),
                    })
                }
                Some(_) => Err(bad()),
                None => Ok(SecretRef::SecretsManager {
                    id: rest.to_string(),
                    key: None,
                }),
            },
            _ => Err(bad()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

/// A secret's value. Deliberately not `Display`, and `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(v: impl Into<String>) -> Self {
        Self(v.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

#[async_trait]
pub trait SecretSource: Send + Sync {
    /// Every active value of the reference (at least one).
    async fn resolve(&self, reference: &SecretRef) -> Result<Vec<SecretValue>, SecretError>;
}

/// Splits a stored value into its active secrets: a JSON array of strings, or one string.
fn values_of(reference: &SecretRef, raw: &str) -> Result<Vec<SecretValue>, SecretError> {
    let trimmed = raw.trim();
    let values: Vec<SecretValue> = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<String>>(trimmed)
            .map_err(|e| SecretError::Malformed {
                reference: reference.to_string(),
                reason: format!("not an array of strings: {e}"),
            })?
            .into_iter()
            .filter(|s| !s.trim().is_empty())
            .map(SecretValue)
            .collect()
    } else if trimmed.is_empty() {
        Vec::new()
    } else {
        vec![SecretValue(raw.to_string())]
    };
    if values.is_empty() {
        return Err(SecretError::NotFound(reference.to_string()));
    }
    Ok(values)
}

/// An SSM parameter, decrypted (a SecureString's plain text).
pub async fn ssm_parameter(
    ssm: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<aws_sdk_ssm::types::Parameter, SecretError> {
    let reference = || SecretRef::Ssm(name.to_string()).to_string();
    let out = ssm
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .io()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found())
            {
                SecretError::NotFound(reference())
            } else {
                SecretError::Unavailable {
                    reference: reference(),
                    reason: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
                }
            }
        })?;
    out.parameter
        .ok_or_else(|| SecretError::NotFound(reference()))
}

/// Resolves references from the process environment and, when clients are given, from SSM and
/// Secrets Manager. Clients are built once at init.
pub struct Secrets<F: Fn(&str) -> Option<String> + Send + Sync> {
    env: F,
    ssm: Option<aws_sdk_ssm::Client>,
    secrets_manager: Option<aws_sdk_secretsmanager::Client>,
    /// References to keys of one secret, resolved at once, read it once.
    secret_reads: SingleFlight<String, Result<Arc<str>, SecretRead>>,
}

/// How a read of a whole Secrets Manager secret ended, before it is told as one reference's.
#[derive(Clone)]
enum SecretRead {
    NotFound,
    Binary,
    Unavailable(String),
}

impl Secrets<fn(&str) -> Option<String>> {
    pub fn from_process(aws: Option<&aws_config::SdkConfig>) -> Self {
        Self::new(|k| std::env::var(k).ok(), aws)
    }
}

impl<F: Fn(&str) -> Option<String> + Send + Sync> Secrets<F> {
    pub fn new(env: F, aws: Option<&aws_config::SdkConfig>) -> Self {
        Self {
            env,
            ssm: aws.map(aws_sdk_ssm::Client::new),
            secrets_manager: aws.map(aws_sdk_secretsmanager::Client::new),
            secret_reads: SingleFlight::default(),
        }
    }

    /// The secret's string, read once for every reference that asks for it meanwhile.
    async fn secret_string(
        &self,
        sm: &aws_sdk_secretsmanager::Client,
        id: &str,
    ) -> Result<Arc<str>, SecretRead> {
        let (sm, owned) = (sm.clone(), id.to_string());
        self.secret_reads
            .run(id.to_string(), move || {
                async move {
                    let out = sm
                        .get_secret_value()
                        .secret_id(owned)
                        .send()
                        .await
                        .map_err(|e| {
                            // A secret deleted with a recovery window (the default
                            // `delete-secret`) answers InvalidRequestException ("marked for
                            // deletion") until it is purged: revoked as surely as one that is
                            // gone, not an outage.
                            if e.as_service_error().is_some_and(|s| {
                                s.is_resource_not_found_exception()
                                    || s.is_invalid_request_exception()
                            }) {
                                SecretRead::NotFound
                            } else {
                                SecretRead::Unavailable(
                                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                                        .to_string(),
                                )
                            }
                        })?;
                    out.secret_string().map(Arc::from).ok_or(SecretRead::Binary)
                }
                .boxed()
            })
            // Each caller's wait is its own I/O, whichever of them drives the read.
            .io()
            .await
    }

    async fn remote(&self, reference: &SecretRef) -> Result<Vec<SecretValue>, SecretError> {
        let unavailable = |reason: String| SecretError::Unavailable {
            reference: reference.to_string(),
            reason,
        };
        match reference {
            SecretRef::Env(_) => unreachable!("env references are resolved locally"),
            SecretRef::Ssm(name) => {
                let ssm = self
                    .ssm
                    .as_ref()
                    .ok_or_else(|| unavailable("no SSM client configured".into()))?;
                let param = ssm_parameter(ssm, name).await?;
                let raw = param.value().unwrap_or_default();
                if param.r#type() == Some(&aws_sdk_ssm::types::ParameterType::StringList) {
                    let values: Vec<SecretValue> = raw
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(SecretValue::new)
                        .collect();
                    if values.is_empty() {
                        return Err(SecretError::NotFound(reference.to_string()));
                    }
                    return Ok(values);
                }
                values_of(reference, raw)
            }
            SecretRef::SecretsManager { id, key } => {
                let sm = self
                    .secrets_manager
                    .as_ref()
                    .ok_or_else(|| unavailable("no Secrets Manager client configured".into()))?;
                let raw = self
                    .secret_string(sm, id)
                    .await
                    .map_err(|read| match read {
                        SecretRead::NotFound => SecretError::NotFound(reference.to_string()),
                        SecretRead::Binary => SecretError::Malformed {
                            reference: reference.to_string(),
                            reason: "the secret holds binary data, not a string".into(),
                        },
                        SecretRead::Unavailable(reason) => unavailable(reason),
                    })?;
                let raw = &*raw;
                let Some(key) = key else {
                    return values_of(reference, raw);
                };
                let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(raw)
                    .map_err(|_| SecretError::Malformed {
                        reference: reference.to_string(),
                        reason: "a #key reference needs a JSON object".into(),
                    })?;
                match object.get(key) {
                    Some(serde_json::Value::String(s)) => values_of(reference, s),
                    Some(v @ serde_json::Value::Array(_)) => values_of(reference, &v.to_string()),
                    Some(_) => Err(SecretError::Malformed {
                        reference: reference.to_string(),
                        reason: format!("{key} is neither a string nor an array of strings"),
                    }),
                    None => Err(SecretError::NotFound(reference.to_string())),
                }
            }
        }
    }
}

#[async_trait]
impl<F: Fn(&str) -> Option<String> + Send + Sync> SecretSource for Secrets<F> {
    async fn resolve(&self, reference: &SecretRef) -> Result<Vec<SecretValue>, SecretError> {
        match reference {
            SecretRef::Env(name) => {
                let raw = (self.env)(name)
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| SecretError::NotFound(reference.to_string()))?;
                let trimmed = raw.trim();
                if trimmed.starts_with("ssm:") || trimmed.starts_with("secretsmanager:") {
                    let inner: SecretRef = trimmed.parse()?;
                    return self.remote(&inner).await;
                }
                values_of(reference, &raw)
            }
            remote => self.remote(remote).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        for raw in [
            "env:WEBHOOK_SECRET_STRIPE",
            "ssm:/switchboard/webhooks/stripe",
            "secretsmanager:switchboard/webhooks",
            "secretsmanager:switchboard/webhooks#stripe",
        ] {
            assert_eq!(raw.parse::<SecretRef>().unwrap().to_string(), raw);
        }
        for bad in [
            "",
            "env:",
            "plain-secret",
            "env:A-B",
            "vault:x",
            "secretsmanager:x#",
        ] {
            assert!(bad.parse::<SecretRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_redacted_in_debug() {
        let v = SecretValue::new("hunter2");
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn env_values_and_lists() {
        let s = Secrets::new(
            |k: &str| match k {
                "ONE" => Some("s3cret".into()),
                "TWO" => Some(r#"["new", "old"]"#.into()),
                "EMPTY" => Some("  ".into()),
                _ => None,
            },
            None,
        );
        let one = s.resolve(&"env:ONE".parse().unwrap()).await.unwrap();
        assert_eq!(one, vec![SecretValue::new("s3cret")]);
        let two = s.resolve(&"env:TWO".parse().unwrap()).await.unwrap();
        assert_eq!(two.len(), 2);
        for missing in ["env:EMPTY", "env:NOPE"] {
            assert_eq!(
                s.resolve(&missing.parse().unwrap()).await.unwrap_err(),
                SecretError::NotFound(missing.into())
            );
        }
    }

    #[tokio::test]
    async fn an_env_reference_to_a_remote_secret_needs_a_client() {
        let s = Secrets::new(|_: &str| Some("ssm:/x".into()), None);
        let err = s.resolve(&"env:X".parse().unwrap()).await.unwrap_err();
        assert!(matches!(err, SecretError::Unavailable { .. }), "{err}");
    }

    /// A stand-in for Secrets Manager on loopback: answers every request, a while later, with
    /// one secret whose keys are `a` and `b`, and counts the requests.
    fn secrets_manager(requests: Arc<std::sync::atomic::AtomicUsize>) -> aws_config::SdkConfig {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let requests = requests.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    // One request per connection is enough here: headers, then the body.
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&seen);
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if seen.len() < end + 4 + length {
                            continue;
                        }
                        requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        let body = serde_json::json!({
                            "Name": "switchboard/webhooks",
                            "SecretString": r#"{"a": "first", "b": ["second", "old"]}"#,
                        })
                        .to_string();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = stream.write_all(answer.as_bytes());
                        seen.clear();
                    }
                });
            }
        });
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .endpoint_url(url)
            .credentials_provider(
                aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
                    aws_sdk_secretsmanager::config::Credentials::new(
                        "AKIDLOCAL",
                        "local",
                        None,
                        None,
                        "test",
                    ),
                ),
            )
            .http_client(crate::aws_http::ReqwestHttpClient::shared())
            .build()
    }

    #[tokio::test]
    async fn keys_of_one_secret_asked_for_at_once_are_one_read_of_it() {
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let aws = secrets_manager(requests.clone());
        let s = Secrets::new(|_: &str| None, Some(&aws));
        let refs: Vec<SecretRef> = [
            "secretsmanager:switchboard/webhooks#a",
            "secretsmanager:switchboard/webhooks#b",
            "secretsmanager:switchboard/webhooks#c",
            "secretsmanager:switchboard/webhooks#a",
        ]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
        let all = futures_util::future::join_all(refs.iter().map(|r| s.resolve(r))).await;
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(all[0], Ok(vec![SecretValue::new("first")]));
        assert_eq!(
            all[1],
            Ok(vec![SecretValue::new("second"), SecretValue::new("old")])
        );
        // Each reference's own outcome: the key that is not there is named as that reference.
        assert_eq!(
            all[2],
            Err(SecretError::NotFound(
                "secretsmanager:switchboard/webhooks#c".into()
            ))
        );
        assert_eq!(all[3], all[0]);
        // Once it is over, the next read is a read: a rotation is seen.
        s.resolve(&refs[0]).await.unwrap();
        assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
