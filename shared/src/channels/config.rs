//! Messaging channels (`config/channels.toml`): which providers' messages become conversations,
//! with the references of the secrets that verify them. Compiled into the functions;
//! `SWITCHBOARD_CHANNELS_FILE` reads another file at start-up instead.
//!
//! A channel whose secret cannot be read, or whose public URL (Twilio) is unset, is disabled:
//! its requests are refused and the init log names it. Never open.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::message::Provider;
use crate::secrets::SecretRef;

pub const BUNDLED: &str = include_str!("../../../config/channels.toml");
pub const BUNDLED_NAME: &str = "config/channels.toml (bundled)";

/// The Lambda payload limit is far above any text message; providers' own bodies are a few KB.
const DEFAULT_MAX_BODY: usize = 64 * 1024;
const MAX_BODY_LIMIT: usize = 1024 * 1024;

/// A WhatsApp template message: what may be sent once the 24-hour customer-service window is
/// closed (Meta approves templates beforehand; the name and language are the deployment's).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub name: String,
    pub language: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    provider: Provider,
    secrets: Vec<SecretRef>,
    #[serde(default)]
    verify_tokens: Vec<SecretRef>,
    tenant: Option<String>,
    public_url: Option<String>,
    #[serde(default)]
    link_by_phone: bool,
    template: Option<Template>,
    max_body_bytes: Option<usize>,
    dedup_days: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    channels: BTreeMap<String, RawChannel>,
}

/// One channel, validated.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Its name in `/channels/{name}` and in conversations ("whatsapp", "sms").
    pub name: String,
    pub provider: Provider,
    /// What verifies a request: WhatsApp's app secret, Twilio's auth token, Telegram's secret
    /// token. Several during a rotation.
    pub secrets: Vec<SecretRef>,
    /// WhatsApp's verify token, for the GET handshake that subscribes the URL.
    pub verify_tokens: Vec<SecretRef>,
    pub tenant: String,
    /// The URL Twilio signs: the one configured in its console, which the function URL or API
    /// Gateway in front of us rewrites, so it cannot be read from the request.
    pub public_url: Option<String>,
    /// Whether the sender's phone number may link them to the CRM customer with that number.
    /// Only where the provider vouches for the number (WhatsApp registers it); off by default:
    /// an SMS sender id can be spoofed.
    pub link_by_phone: bool,
    pub template: Option<Template>,
    pub max_body_bytes: usize,
    /// How long a provider's message id is remembered: longer than it retries.
    pub dedup_for: Duration,
}

/// Why a channel file was refused; every problem named, with the channel it is in.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {problems}")]
pub struct ChannelConfigError {
    pub file: String,
    pub problems: String,
}

pub fn is_valid_channel_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Parses a channel file. `${NAME}` in `public_url` is read through `env`; a channel whose
/// variable is unset is left out and reported in `disabled` (the deployment has not set it up).
pub fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Channels, ChannelConfigError> {
    let fail = |problems: String| ChannelConfigError {
        file: file.to_string(),
        problems,
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
    let mut problems = Vec::new();
    let mut channels = BTreeMap::new();
    let mut disabled = Vec::new();
    for (name, c) in raw.channels {
        let mut bad = |m: String| problems.push(format!("channels.{name}: {m}"));
        if !is_valid_channel_name(&name) {
            bad("a channel's name is 1-32 lowercase letters, digits or `-`".into());
            continue;
        }
        if c.secrets.is_empty() {
            bad("`secrets` must name at least one secret: a channel is never open".into());
        }
        match (c.provider, c.verify_tokens.is_empty()) {
            (Provider::Whatsapp, true) => {
                bad("`verify_tokens` is required for whatsapp (the subscription handshake)".into())
            }
            (Provider::Whatsapp, false) => {}
            (_, false) => bad("`verify_tokens` is only for whatsapp".into()),
            (_, true) => {}
        }
        // Only WhatsApp vouches for the sender's number: an SMS sender id can be spoofed and
        // Telegram gives none.
        if c.link_by_phone && c.provider != Provider::Whatsapp {
            bad("`link_by_phone` is only for whatsapp (an SMS sender id can be spoofed)".into());
        }
        if c.template.is_some() && c.provider != Provider::Whatsapp {
            bad("`template` is only for whatsapp (its 24-hour window)".into());
        }
        let public_url = match (c.provider, &c.public_url) {
            (Provider::Twilio, None) => {
                bad("`public_url` is required for twilio: it is what Twilio signs".into());
                None
            }
            (Provider::Twilio, Some(raw)) => {
                match crate::connectors::config::interpolate(raw, env) {
                    Ok(url) if url.starts_with("https://") || url.starts_with("http://") => {
                        Some(url)
                    }
                    Ok(url) => {
                        bad(format!("public_url {url:?} is not an http(s) URL"));
                        None
                    }
                    // Fulfillment still sends through the channel (it needs no public URL); the
                    // intake refuses its messages until the URL is set.
                    Err(Ok(var)) => {
                        disabled.push((name.clone(), format!("{var} is not set")));
                        None
                    }
                    Err(Err(m)) => {
                        bad(m);
                        None
                    }
                }
            }
            (_, Some(_)) => {
                bad("`public_url` is only for twilio".into());
                None
            }
            (_, None) => None,
        };
        let max_body_bytes = c.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        if !(1024..=MAX_BODY_LIMIT).contains(&max_body_bytes) {
            bad(format!("max_body_bytes must be 1024 to {MAX_BODY_LIMIT}"));
        }
        let dedup_days = c.dedup_days.unwrap_or(7);
        if !(1..=30).contains(&dedup_days) {
            bad("dedup_days must be 1 to 30".into());
        }
        let tenant = c.tenant.unwrap_or_else(|| "default".into());
        if !crate::auth::is_valid_id(&tenant) {
            bad(format!("tenant {tenant:?} is not a valid id"));
        }
        channels.insert(
            name.clone(),
            ChannelConfig {
                name,
                provider: c.provider,
                secrets: c.secrets,
                verify_tokens: c.verify_tokens,
                tenant,
                public_url,
                link_by_phone: c.link_by_phone,
                template: c.template,
                max_body_bytes,
                dedup_for: Duration::from_secs(dedup_days * 86_400),
            },
        );
    }
    if !problems.is_empty() {
        return Err(fail(problems.join("; ")));
    }
    Ok(Channels { channels, disabled })
}

/// The channels a deployment has.
#[derive(Debug, Clone, Default)]
pub struct Channels {
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Channels whose messages cannot be taken because a variable they need is unset, with why
    /// (they are still in `channels`: replies can go out).
    pub disabled: Vec<(String, String)>,
}

impl Channels {
    pub fn get(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.get(name)
    }
}

/// The bundled file, or the one `path` names.
pub fn load(
    path: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Channels, ChannelConfigError> {
    match path {
        None => parse(BUNDLED_NAME, BUNDLED, env),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| ChannelConfigError {
                file: p.to_string(),
                problems: format!("cannot read: {e}"),
            })?;
            parse(p, &text, env)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PUBLIC").then(|| "https://hooks.example.com/channels/sms".to_string())
    }

    #[test]
    fn the_bundled_file_parses() {
        let all = |_: &str| Some("https://example.com/x".to_string());
        let c = parse(BUNDLED_NAME, BUNDLED, &all).unwrap();
        assert!(c.get("whatsapp").is_some() && c.get("telegram").is_some());
    }

    #[test]
    fn a_channel_without_a_secret_or_with_a_stray_key_is_refused() {
        let e = parse(
            "f",
            "[channels.tg]\nprovider = \"telegram\"\nsecrets = []\n",
            &env,
        )
        .unwrap_err();
        assert!(e.problems.contains("never open"), "{e}");
        let e = parse(
            "f",
            "[channels.tg]\nprovider = \"telegram\"\nsecrets = [\"env:X\"]\nopen = true\n",
            &env,
        )
        .unwrap_err();
        assert!(e.problems.contains("open"), "{e}");
        let e = parse(
            "f",
            "[channels.wa]\nprovider = \"whatsapp\"\nsecrets = [\"env:X\"]\n",
            &env,
        )
        .unwrap_err();
        assert!(e.problems.contains("verify_tokens"), "{e}");
    }

    #[test]
    fn twilio_needs_its_public_url_and_is_disabled_while_the_variable_is_unset() {
        let text = "[channels.sms]\nprovider = \"twilio\"\nsecrets = [\"env:T\"]\npublic_url = \"${PUBLIC}\"\n";
        let c = parse("f", text, &env).unwrap();
        assert_eq!(
            c.get("sms").unwrap().public_url.as_deref(),
            Some("https://hooks.example.com/channels/sms")
        );
        let c = parse("f", text, &|_| None).unwrap();
        assert!(c.get("sms").unwrap().public_url.is_none());
        assert_eq!(c.disabled, vec![("sms".into(), "PUBLIC is not set".into())]);
        let e = parse(
            "f",
            "[channels.sms]\nprovider = \"twilio\"\nsecrets = [\"env:T\"]\n",
            &env,
        )
        .unwrap_err();
        assert!(e.problems.contains("public_url"), "{e}");
    }
}
