//! What the channel adapters share: the provider, a customer message as every provider's
//! webhook is read into it, what we send back, and the rules all three adapters follow for both
//! (ids a turn accepts, bounded bodies, long text split rather than cut, numbered options for
//! channels without buttons).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::conversation::QuickReply;

/// Which provider's API a channel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Whatsapp,
    Twilio,
    Telegram,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Whatsapp => "whatsapp",
            Provider::Twilio => "twilio",
            Provider::Telegram => "telegram",
        }
    }
}

/// One customer message a provider delivered, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    /// The provider's id for the message (WhatsApp `wamid...`, Twilio `MessageSid`, Telegram
    /// "<chat id>:<message_id>" or "cb:<callback_query id>"): 1-128 visible ASCII; longer or
    /// odder ids are replaced by "h:" + hex SHA-256 prefix (so it is always a valid
    /// client_message_id).
    pub message_id: String,
    /// Who wrote, as the provider names them: WhatsApp `from` (wa_id digits), Twilio `From`
    /// ("+15551234567" or "whatsapp:+15551234567"), Telegram chat id (decimal text).
    pub user: String,
    /// Where we reply from: WhatsApp metadata.phone_number_id, Twilio `To`, Telegram None.
    pub business: Option<String>,
    /// The customer's phone in E.164 ("+15551234567") when the provider vouches for it
    /// (WhatsApp: "+" + wa_id; Twilio: From without "whatsapp:"); Telegram None.
    pub phone: Option<String>,
    /// The app's language, where the provider says (Telegram `from.language_code`).
    pub language: Option<String>,
    /// Provider timestamp (Unix seconds), where given.
    pub sent_at: Option<i64>,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    /// A button/list row/inline-keyboard press: `value` is what we put in the button (a quick
    /// reply's value), `label` what the customer saw (may be empty if the provider omits it).
    Button {
        value: String,
        label: String,
    },
    /// Anything else a customer can send (image, sticker, location, audio, video, document,
    /// contacts, reaction, ...): the provider's type name, lowercase.
    Unsupported {
        what: String,
    },
}

/// What we send: a message's text and what it offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing<'a> {
    pub text: &'a str,
    pub quick_replies: &'a [QuickReply],
}

/// The inputs of one call of a channel's send operation (`whatsapp.send_message`, ...), in the
/// order they are listed. A reply is one or more calls: text over the provider's limit is split.
pub type SendInputs = Vec<(&'static str, serde_json::Value)>;

/// Why a provider's webhook body could not be read. The messages name the field, never its
/// value: a body is a customer's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelParseError {
    #[error("the body is {size} bytes, over the {limit} bytes a provider sends")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "the body is not the provider's JSON ({category} error at line {line}, column {column})"
    )]
    Json {
        category: &'static str,
        line: usize,
        column: usize,
    },
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{0} is not valid")]
    Invalid(&'static str),
}

impl From<serde_json::Error> for ChannelParseError {
    /// serde's own message can quote the offending value (a customer's text): only its kind
    /// and position are kept.
    fn from(e: serde_json::Error) -> Self {
        let category = match e.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        };
        ChannelParseError::Json {
            category,
            line: e.line(),
            column: e.column(),
        }
    }
}

/// The largest webhook body an adapter reads. Providers send one message, or a few batched, in
/// a few KiB (a 4096-character text is at most ~25 KiB as JSON escapes); a MiB is far above
/// that and still bounds what parsing one request can cost.
pub const MAX_BODY: usize = 1 << 20;

pub(super) fn check_size(body: &[u8]) -> Result<(), ChannelParseError> {
    if body.len() > MAX_BODY {
        return Err(ChannelParseError::TooLarge {
            size: body.len(),
            limit: MAX_BODY,
        });
    }
    Ok(())
}

/// The longest message id a turn accepts as its `client_message_id`.
pub const MAX_MESSAGE_ID: usize = 128;

/// The provider's message id as a turn's idempotency key: kept as it is when the turn accepts
/// it, else a stable digest of it, so a redelivery still maps to the same key.
pub fn message_id(raw: &str) -> String {
    if is_visible_ascii(raw, MAX_MESSAGE_ID) {
        return raw.to_string();
    }
    let digest = Sha256::digest(raw.as_bytes());
    // 128 bits: no collision among a channel's messages, and short.
    format!("h:{}", hex::encode(&digest[..16]))
}

/// 1 to `max` bytes of printable ASCII, no space: ids, phone numbers, tokens.
pub(super) fn is_visible_ascii(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// "+" and 1 to 15 digits: an E.164 number (ITU-T E.164 allows at most 15 digits).
pub(super) fn e164(digits: &str) -> Option<String> {
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    ((1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("+{digits}"))
}

/// A length as the providers count it for their limits. WhatsApp and Twilio count characters
/// and Telegram UTF-16 code units; UTF-16 units are never fewer than characters, so counting
/// them keeps every provider's limit.
pub fn text_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `text` in parts of at most `limit` (in [`text_len`] units), in order, none empty: cut after
/// a paragraph where one ends in the second half of a part, else after a line, else at a
/// space, else mid-word. Only the whitespace at a cut is dropped, so the parts hold every
/// other character of `text`: nothing is silently lost. Empty or blank text gives no part.
pub fn split(text: &str, limit: usize) -> Vec<&str> {
    // A character is at most 2 UTF-16 units: any smaller limit could make no progress.
    let limit = limit.max(2);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if text_len(rest) <= limit {
            parts.push(rest);
            break;
        }
        // The longest prefix within the limit.
        let mut units = 0;
        let mut hard = 0;
        for (i, c) in rest.char_indices() {
            units += c.len_utf16();
            if units > limit {
                break;
            }
            hard = i + c.len_utf8();
        }
        let window = &rest[..hard];
        let half = hard / 2;
        let soft = window
            .rfind("\n\n")
            .filter(|&i| i > half)
            .or_else(|| window.rfind('\n').filter(|&i| i > half))
            .or_else(|| {
                window
                    .char_indices()
                    .rev()
                    .find(|&(i, c)| c.is_whitespace() && i > half)
                    .map(|(i, _)| i)
            });
        let cut = soft.unwrap_or(hard);
        parts.push(rest[..cut].trim_end());
        rest = rest[cut..].trim_start();
    }
    parts
}

/// The text and its quick replies as lines, for channels that show no buttons: "1. label" lines
/// after a blank line. The lead maps a typed "2" back to the second quick reply.
pub fn numbered(text: &str, quick_replies: &[QuickReply]) -> String {
    let mut out = text.trim_end().to_string();
    for (i, reply) in quick_replies.iter().enumerate() {
        out.push_str(if i == 0 {
            if out.is_empty() {
                ""
            } else {
                "\n\n"
            }
        } else {
            "\n"
        });
        let label = reply.label.trim();
        // A reply without a label still needs words the customer can read.
        let label = if label.is_empty() {
            reply.value.trim()
        } else {
            label
        };
        let _ = write!(out, "{}. {label}", i + 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(label: &str, value: &str) -> QuickReply {
        QuickReply {
            label: label.into(),
            value: value.into(),
        }
    }

    #[test]
    fn providers_have_lowercase_names() {
        for (p, name) in [
            (Provider::Whatsapp, "whatsapp"),
            (Provider::Twilio, "twilio"),
            (Provider::Telegram, "telegram"),
        ] {
            assert_eq!(p.as_str(), name);
            assert_eq!(serde_json::to_value(p).unwrap(), name);
        }
    }

    #[test]
    fn content_is_tagged_by_kind() {
        let c = Content::Button {
            value: "track".into(),
            label: "Track my parcel".into(),
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"kind": "button", "value": "track", "label": "Track my parcel"})
        );
        let u: Content =
            serde_json::from_str(r#"{"kind":"unsupported","what":"sticker"}"#).unwrap();
        assert_eq!(
            u,
            Content::Unsupported {
                what: "sticker".into()
            }
        );
    }

    #[test]
    fn message_ids_a_turn_accepts_are_kept() {
        let wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";
        assert_eq!(message_id(wamid), wamid);
        assert_eq!(message_id("12345:678"), "12345:678");
        assert_eq!(message_id(&"a".repeat(128)), "a".repeat(128));
    }

    #[test]
    fn other_message_ids_become_a_stable_digest() {
        for odd in ["", "has space", "é", &"a".repeat(129), "tab\there"] {
            let id = message_id(odd);
            assert!(id.starts_with("h:"), "{odd:?} -> {id}");
            assert_eq!(id.len(), 34);
            assert!(is_visible_ascii(&id, MAX_MESSAGE_ID));
            assert_eq!(id, message_id(odd), "the same id twice");
        }
        assert_ne!(message_id("a b"), message_id("a  b"));
    }

    #[test]
    fn e164_needs_one_to_fifteen_digits() {
        assert_eq!(e164("15551234567").as_deref(), Some("+15551234567"));
        assert_eq!(e164("+15551234567").as_deref(), Some("+15551234567"));
        assert_eq!(e164(""), None);
        assert_eq!(e164("+"), None);
        assert_eq!(e164("1234567890123456"), None);
        assert_eq!(e164("+1 555"), None);
        assert_eq!(e164("++1555"), None);
    }

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(
            split("  Your parcel left the depot.  ", 4096),
            ["Your parcel left the depot."]
        );
        assert!(split("", 10).is_empty());
        assert!(split(" \n ", 10).is_empty());
    }

    #[test]
    fn long_text_is_split_at_paragraphs_then_lines_then_spaces() {
        let text = "First paragraph here.\n\nSecond one, a bit longer than that.";
        assert_eq!(
            split(text, 40),
            [
                "First paragraph here.",
                "Second one, a bit longer than that."
            ]
        );
        let lines = "line one is here\nline two is here\nline three";
        assert_eq!(
            split(lines, 36),
            ["line one is here\nline two is here", "line three"]
        );
        assert_eq!(
            split("alpha beta gamma delta", 12),
            ["alpha beta", "gamma delta"]
        );
        // No space at all: cut mid-word, nothing lost.
        assert_eq!(split("abcdefghij", 4), ["abcd", "efgh", "ij"]);
    }

    #[test]
    fn split_keeps_every_character_within_the_limit() {
        let text = "Ünïcödé 🎉 text, with emoji 🎉🎉 and\nlines\n\nand paragraphs ".repeat(40);
        for limit in [2, 3, 7, 50, 160, 1600] {
            let parts = split(&text, limit);
            for p in &parts {
                assert!(text_len(p) <= limit, "{limit}: {p:?}");
                assert!(!p.is_empty());
            }
            let kept: String = parts
                .concat()
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let all: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            assert_eq!(kept, all, "limit {limit}");
        }
    }

    #[test]
    fn emoji_count_as_two_units() {
        assert_eq!(text_len("🎉"), 2);
        assert_eq!(split("🎉🎉🎉", 4), ["🎉🎉", "🎉"]);
    }

    #[test]
    fn numbered_options_follow_a_blank_line() {
        let replies = [reply("Yes, cancel it", "yes"), reply("No, keep it", "no")];
        assert_eq!(
            numbered("Cancel the order?\n", &replies),
            "Cancel the order?\n\n1. Yes, cancel it\n2. No, keep it"
        );
        assert_eq!(numbered("", &replies), "1. Yes, cancel it\n2. No, keep it");
        assert_eq!(numbered("Just text", &[]), "Just text");
        assert_eq!(
            numbered("Pick", &[reply(" ", "fallback")]),
            "Pick\n\n1. fallback"
        );
    }

    #[test]
    fn parse_errors_do_not_quote_the_body() {
        let err: ChannelParseError = serde_json::from_str::<u32>("\"my secret words\"")
            .unwrap_err()
            .into();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(matches!(
            err,
            ChannelParseError::Json {
                category: "data",
                ..
            }
        ));
        assert!(check_size(&vec![b' '; MAX_BODY]).is_ok());
        assert_eq!(
            check_size(&vec![b' '; MAX_BODY + 1]),
            Err(ChannelParseError::TooLarge {
                size: MAX_BODY + 1,
                limit: MAX_BODY
            })
        );
    }
}
