//! `payment_choice` (`with = { answer = "{choice}" }`): which of the payment-help options an
//! answer picks, by number or by what it says: `retry`, `update`, `person`, or `none`. The
//! words each option is known by are the bundle's, in the customer's language
//! (`payment.choice.person|update|retry`: alternatives separated by `|`).

use async_trait::async_trait;

use super::{text_input, Action, ActionCx, Done};
use crate::flow::engine::HostError;

pub struct PaymentChoice;

/// The options in the order their words are tried: a person first ("someone to change my
/// card" asks for a person), then an update, then a retry.
const OPTIONS: [(&str, &str); 3] = [
    ("person", "payment.choice.person"),
    ("update", "payment.choice.update"),
    ("retry", "payment.choice.retry"),
];

#[async_trait]
impl Action for PaymentChoice {
    fn name(&self) -> &'static str {
        "payment_choice"
    }
    /// Reads only the words of the answer.
    fn needs_account(&self) -> bool {
        false
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["answer"]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &["retry", "update", "person", "none"]
    }
    fn says(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[
            ("payment.choice.person", &[]),
            ("payment.choice.update", &[]),
            ("payment.choice.retry", &[]),
        ]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let lower = text_input(&cx, "answer")?.to_lowercase();
        let named = OPTIONS.iter().find(|(_, key)| {
            cx.host
                .phrase(key, &[])
                .split('|')
                .map(|w| w.trim().to_lowercase())
                .any(|w| !w.is_empty() && lower.contains(&w))
        });
        // "2", "and 2?", "option 3": the one number said.
        let mut numbers = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| matches!(*w, "1" | "2" | "3"));
        let number = match (numbers.next(), numbers.next()) {
            (Some(n), None) => n,
            _ => "",
        };
        let ordinal = cx.input.and_then(|u| u.ordinal);
        let outcome = match (named, number, ordinal) {
            (Some((outcome, _)), _, _) => outcome,
            (None, "1", _) | (None, _, Some(0)) => "retry",
            (None, "2", _) | (None, _, Some(1)) => "update",
            (None, "3", _) | (None, _, Some(2)) => "person",
            _ => "none",
        };
        Ok(Done {
            outcome,
            ..Done::default()
        })
    }
}
