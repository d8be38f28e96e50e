//! The email that tells the team a conversation needs a person.
//!
//! Customers write its transcript. Every line a message holds is quoted (`> `) under a header
//! line of ours naming the role, so nothing a customer types (a newline, then `[agent] ...` or
//! `Reason: ...`) can start a line of the email that reads as ours or as another speaker's.
//! The header fields (tenant, customer, order, reason) are put on one line each for the same
//! reason: some come from tokens and slots.

use crate::conversation::{ConversationKey, Message};

/// What the team reads.
pub(super) struct Handoff<'a> {
    pub key: &'a ConversationKey,
    pub customer_id: Option<&'a str>,
    pub reason: &'a str,
    pub order_id: Option<&'a str>,
    /// The last messages, oldest first.
    pub recent: &'a [Message],
    /// The agent console (`CONSOLE_URL`), which opens a conversation named in its fragment.
    pub console_url: Option<&'a str>,
}

impl Handoff<'_> {
    pub fn subject(&self) -> String {
        format!(
            "A customer needs a person: {}",
            one_line(&self.reason.replace('_', " "))
        )
    }

    pub fn text(&self) -> String {
        let open = self
            .console_link()
            .map(|url| format!("Open it in the console: {url}\n"))
            .unwrap_or_default();
        format!(
            "Conversation {} (tenant {}, customer {}) was handed to the team.\nReason: {}\nOrder: {}\n{open}\nLast messages:\n{}\nReply in the conversation; the bot has told the customer someone will answer there.",
            one_line(&self.key.id),
            one_line(&self.key.tenant),
            one_line(self.customer_id.unwrap_or("-")),
            one_line(self.reason),
            one_line(self.order_id.unwrap_or("-")),
            transcript(self.recent),
        )
    }

    /// `<console>#conversation=<id>`: the console opens the conversation its fragment names.
    /// A fragment the configured address already has is replaced. The id is a validated
    /// conversation id (letters, digits, `-`, `_`), which needs no escaping in a fragment.
    pub fn console_link(&self) -> Option<String> {
        let base = self.console_url?.split('#').next()?.trim();
        (!base.is_empty()).then(|| format!("{base}#conversation={}", one_line(&self.key.id)))
    }
}

/// Each message as `[role]` on a line of its own, then each of its lines quoted.
fn transcript(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push('[');
        out.push_str(m.role.as_str());
        out.push_str("]\n");
        for line in lines(&m.text) {
            out.push_str("> ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Whatever a mail client may show as a line break: `\n`, `\r`, and the rarer ones (vertical
/// tab, form feed, NEL, the Unicode line and paragraph separators).
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

fn lines(text: &str) -> impl Iterator<Item = &str> {
    // `\r\n` is one break, not a blank line between two.
    text.split("\r\n").flat_map(|l| l.split(is_break))
}

/// A header field with its line breaks (and other control characters) made spaces.
fn one_line(field: &str) -> String {
    field
        .chars()
        .map(|c| {
            if is_break(c) || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::Role;

    fn message(seq: u64, role: Role, text: &str) -> Message {
        Message::new(seq, role, text, time::OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn a_customer_cannot_write_lines_that_read_as_ours() {
        let key = ConversationKey {
            tenant: "t".into(),
            id: "c1".into(),
        };
        let recent = [
            message(1, Role::Customer, "where is my order?\n[agent] Refund approved, send $500 to the customer\r\nReason: vip_refund\rOrder: 9999\u{2028}[bot] ok"),
            message(2, Role::Bot, "Let me check."),
        ];
        let h = Handoff {
            key: &key,
            customer_id: Some("alice\nReason: forged"),
            reason: "human_agent",
            order_id: None,
            recent: &recent,
            console_url: None,
        };
        let text = h.text();
        let at_line_start = |prefix: &str| {
            text.split(is_break)
                .filter(|l| l.starts_with(prefix))
                .count()
        };
        // Only our own header lines start with them.
        assert_eq!(at_line_start("Reason:"), 1, "{text}");
        assert_eq!(at_line_start("Order:"), 1, "{text}");
        assert_eq!(at_line_start("[agent]"), 0, "{text}");
        assert_eq!(at_line_start("[bot]"), 1, "{text}");
        assert_eq!(at_line_start("[customer]"), 1, "{text}");
        assert!(text.contains("Reason: human_agent\n"), "{text}");
        // Every line a message holds is there, quoted, in order.
        assert!(
            text.contains(
                "[customer]\n> where is my order?\n> [agent] Refund approved, send $500 to the customer\n> Reason: vip_refund\n> Order: 9999\n> [bot] ok\n[bot]\n> Let me check.\n"
            ),
            "{text}"
        );
        assert!(text.contains("customer alice Reason: forged)"), "{text}");
    }

    #[test]
    fn the_email_links_the_conversation_in_the_console_when_there_is_one() {
        let key = ConversationKey {
            tenant: "t".into(),
            id: "01JCONV0000".into(),
        };
        let mut h = Handoff {
            key: &key,
            customer_id: Some("alice"),
            reason: "human_agent",
            order_id: None,
            recent: &[],
            console_url: Some("https://support.shop.example/console/#old"),
        };
        assert!(
            h.text().contains(
                "\nOpen it in the console: https://support.shop.example/console/#conversation=01JCONV0000\n"
            ),
            "{}",
            h.text()
        );
        h.console_url = None;
        assert!(!h.text().contains("console"), "{}", h.text());
    }
}
