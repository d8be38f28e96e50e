//! Who a channel conversation is with: the provider's address of the customer (a phone number,
//! a Telegram chat), where we reply from, and whether that address is linked to a CRM customer.
//! Kept on the conversation record, so every writer of the conversation knows where its
//! messages go (see `outbound`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::identity::PendingCode;
use super::message::{Inbound, Provider};

/// How long WhatsApp lets a business write freely after the customer's last message (Meta's
/// customer-service window); after it, only an approved template.
pub const WHATSAPP_WINDOW: time::Duration = time::Duration::hours(24);

/// Codes mailed per conversation per day, and wrong codes after which none is mailed any more.
pub const CODES_PER_DAY: usize = 5;
pub const MAX_CODE_FAILURES: u32 = 25;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelParty {
    /// The configured channel's name (`/channels/{name}`).
    pub channel: String,
    pub provider: Provider,
    /// The customer's address at the provider (WhatsApp wa_id, Twilio `From`, Telegram chat id).
    pub user: String,
    /// Our address there (WhatsApp phone number id, Twilio number), as the latest message named
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business: Option<String>,
    /// The number the provider vouches for, E.164.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Whether the conversation's `customer_id` is a CRM customer's, proven by phone or by an
    /// emailed code. Until then it is a pseudonym and the bot answers nothing account-bound.
    #[serde(default)]
    pub linked: bool,
    /// A code emailed to an account's address, waiting to be typed here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingCode>,
    /// When codes were mailed in the last day: at most `CODES_PER_DAY`, a minute apart. Kept
    /// when a code is used up, so exhausting one does not buy another at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes_issued: Vec<i64>,
    /// Wrong codes typed in this conversation, all codes together: past
    /// `MAX_CODE_FAILURES` no code is mailed any more (an agent can still help).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code_failures: u32,
    /// When the customer last wrote (WhatsApp's window counts from it).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_inbound_at: Option<OffsetDateTime>,
}

impl ChannelParty {
    pub fn new(channel: &str, provider: Provider, inbound: &Inbound) -> Self {
        Self {
            channel: channel.to_string(),
            provider,
            user: inbound.user.clone(),
            business: inbound.business.clone(),
            phone: inbound.phone.clone(),
            linked: false,
            pending: None,
            codes_issued: Vec::new(),
            code_failures: 0,
            last_inbound_at: None,
        }
    }

    /// Whether another code may be mailed now: a minute after the last, at most
    /// `CODES_PER_DAY` a day, and never after `MAX_CODE_FAILURES` wrong codes. Together with 5
    /// tries a code, that bounds guessing to 150 tries a day per conversation (one in 6,667).
    pub fn may_issue_code(&self, now: OffsetDateTime) -> bool {
        let now = now.unix_timestamp();
        let today: Vec<i64> = self
            .codes_issued
            .iter()
            .copied()
            .filter(|t| now - t < 86_400)
            .collect();
        self.code_failures < MAX_CODE_FAILURES
            && today.len() < CODES_PER_DAY
            && today.iter().all(|t| now - t >= 60)
    }

    /// Records a code mailed now (forgetting those over a day old).
    pub fn code_issued(&mut self, now: OffsetDateTime) {
        let now = now.unix_timestamp();
        self.codes_issued.retain(|t| now - t < 86_400);
        self.codes_issued.push(now);
    }

    /// What a new message from the customer tells us: where to answer from, and when they wrote
    /// (the provider's time when it says, so a message processed late does not reopen
    /// WhatsApp's window in our eyes only).
    pub fn heard(&mut self, inbound: &Inbound, now: OffsetDateTime) {
        if inbound.business.is_some() {
            self.business = inbound.business.clone();
        }
        if self.phone.is_none() {
            self.phone = inbound.phone.clone();
        }
        let sent = inbound
            .sent_at
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .map_or(now, |t| t.min(now));
        self.last_inbound_at = Some(self.last_inbound_at.map_or(sent, |l| l.max(sent)));
    }

    /// Whether a free-form message may still be sent (WhatsApp's 24-hour window; other
    /// providers have none).
    pub fn window_open(&self, now: OffsetDateTime) -> bool {
        match self.provider {
            Provider::Whatsapp => self
                .last_inbound_at
                .is_some_and(|at| now - at < WHATSAPP_WINDOW),
            _ => true,
        }
    }
}

/// The pseudonymous customer id of a channel user not linked to an account: stable per tenant,
/// channel and address, and no phone number in keys or logs.
pub fn guest_id(tenant: &str, channel: &str, user: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [tenant, channel, user] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut id = String::from("guest_");
    for b in &digest[..12] {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The one conversation a channel user has with a channel: derived, so every message of theirs
/// (and every retry) finds it, and the job queue groups their messages in order. Hashed under a
/// domain of its own, so no web conversation's derived id (tenant, token subject, message id)
/// can ever be a channel's.
pub fn conversation_id(tenant: &str, channel: &str, user: &str) -> String {
    crate::conversation::hashed_id(&["switchboard/channel-conversation", tenant, channel, user])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_rationed_and_exhausting_one_buys_no_other() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let inbound = Inbound {
            message_id: "m".into(),
            user: "1".into(),
            business: None,
            phone: None,
            language: None,
            sent_at: None,
            content: super::super::message::Content::Text { text: "x".into() },
        };
        let mut p = ChannelParty::new("tg", Provider::Telegram, &inbound);
        assert!(p.may_issue_code(t0));
        p.code_issued(t0);
        assert!(
            !p.may_issue_code(t0 + time::Duration::seconds(30)),
            "a minute apart"
        );
        let mut t = t0;
        for _ in 1..CODES_PER_DAY {
            t += time::Duration::minutes(2);
            assert!(p.may_issue_code(t));
            p.code_issued(t);
        }
        assert!(
            !p.may_issue_code(t + time::Duration::hours(1)),
            "five a day"
        );
        assert!(
            p.may_issue_code(t0 + time::Duration::hours(25)),
            "a day later"
        );
        p.code_failures = MAX_CODE_FAILURES;
        assert!(
            !p.may_issue_code(t0 + time::Duration::days(3)),
            "never after 25 wrong codes"
        );
    }

    #[test]
    fn ids_are_stable_distinct_and_hold_no_number() {
        let a = guest_id("default", "whatsapp", "15550001111");
        assert_eq!(a, guest_id("default", "whatsapp", "15550001111"));
        assert_ne!(a, guest_id("default", "twilio", "15550001111"));
        assert!(
            !a.contains("5550001111") && crate::auth::is_valid_id(&a),
            "{a}"
        );
        let c = conversation_id("default", "whatsapp", "15550001111");
        assert!(crate::conversation::is_valid_conversation_id(&c));
        assert_ne!(c, conversation_id("other", "whatsapp", "15550001111"));
    }
}
