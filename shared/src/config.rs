//! Settings read once at init from the environment (template.yaml sets them in AWS; the local
//! stack sets them for `cargo lambda watch`). A missing or malformed value fails init with the
//! variable's name, rather than failing the first request.

use std::time::Duration;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Largest configuration file read (connectors, webhooks, a bundle's files): far above any real
/// one, and a mistaken path (`/dev/zero`, a log) fails at once instead of filling memory.
pub const MAX_CONFIG_FILE: u64 = 4 * 1024 * 1024;

/// A configuration file's text, refusing one over `MAX_CONFIG_FILE` or not UTF-8.
pub fn read_config_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE {
        return Err(format!(
            "larger than {} MB: not a configuration file",
            MAX_CONFIG_FILE / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())
}

/// Reads variables through a lookup function so tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|k| std::env::var(k).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
        }
    }

    pub fn url(&self, name: &'static str) -> Result<url::Url, ConfigError> {
        let raw = self.required(name)?;
        let parsed = url::Url::parse(&raw).map_err(|e| ConfigError::Invalid {
            name,
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("scheme must be http or https, got {}", parsed.scheme()),
            });
        }
        Ok(parsed)
    }
}

/// Where the conversation table lives and how long memory is kept.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub table_name: String,
    /// Messages and conversations expire (DynamoDB TTL) this long after their last write.
    pub retention: Duration,
}

impl StoreSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let days: u64 = env.parsed("RETENTION_DAYS", 365)?;
        if days == 0 {
            return Err(ConfigError::Invalid {
                name: "RETENTION_DAYS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            retention: Duration::from_secs(days * 86_400),
        })
    }
}

/// Limits and knobs of the chat API.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub max_body_bytes: usize,
    pub max_text_chars: usize,
    /// How many recent messages a turn reads: the turn's cost does not grow with the conversation.
    pub history_window: usize,
}

impl ChatSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            max_body_bytes: env.parsed("MAX_BODY_BYTES", 16 * 1024)?,
            max_text_chars: env.parsed("MAX_TEXT_CHARS", 2_000)?,
            history_window: env.parsed("HISTORY_WINDOW", 20)?,
        })
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024,
            max_text_chars: 2_000,
            history_window: 20,
        }
    }
}

/// An environment of exactly these variables, for tests of what reads one.
#[cfg(test)]
pub(crate) fn test_env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Env(move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_files_are_read_bounded() {
        let e = read_config_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(e.contains("not a configuration file"), "{e}");
        let e = read_config_file(std::path::Path::new("/nonexistent/x.toml")).unwrap_err();
        assert!(e.starts_with("cannot read"), "{e}");
    }

    use super::test_env as env;

    #[test]
    fn missing_table_is_named() {
        let err = StoreSettings::from_env(&env(&[])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("TABLE_NAME"));
    }

    #[test]
    fn malformed_numbers_are_named() {
        let err = ChatSettings::from_env(&env(&[("MAX_TEXT_CHARS", "lots")])).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "MAX_TEXT_CHARS",
                ..
            }
        ));
    }

    #[test]
    fn urls_must_be_http() {
        let err = env(&[("X", "ftp://example.com")]).url("ORDERS_API_URL");
        assert!(err.is_err());
        let e = env(&[("ORDERS_API_URL", "ftp://example.com")])
            .url("ORDERS_API_URL")
            .unwrap_err();
        assert!(matches!(e, ConfigError::Invalid { .. }));
    }
}
