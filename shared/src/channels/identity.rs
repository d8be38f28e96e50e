//! PLACEHOLDER: replaced by helper C's version at merge.
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
pub const CODE_LIFETIME: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCode {
    pub customer_id: String,
    pub code_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub attempts_left: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Match,
    Wrong { left: u8 },
    Expired,
    Exhausted,
}

pub fn issue(
    _conversation_id: &str,
    customer_id: &str,
    now: OffsetDateTime,
) -> (String, PendingCode) {
    (
        "123456".into(),
        PendingCode {
            customer_id: customer_id.into(),
            code_hash: "x".into(),
            expires_at: now + time::Duration::minutes(10),
            attempts_left: 5,
        },
    )
}

pub fn check(
    _p: &PendingCode,
    _conversation_id: &str,
    typed: &str,
    _now: OffsetDateTime,
) -> CodeCheck {
    if typed == "123456" {
        CodeCheck::Match
    } else {
        CodeCheck::Wrong { left: 4 }
    }
}

pub fn read_email(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.contains('@'))
        .map(|w| w.to_lowercase())
}

pub fn read_code(text: &str) -> Option<String> {
    let d: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    (d.len() == 6).then_some(d)
}
