//! PLACEHOLDER: replaced by helper A's version at merge.
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    pub message_id: String,
    pub user: String,
    pub business: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub sent_at: Option<i64>,
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    Text { text: String },
    Button { value: String, label: String },
    Unsupported { what: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing<'a> {
    pub text: &'a str,
    pub quick_replies: &'a [crate::conversation::QuickReply],
}
