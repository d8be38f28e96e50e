//! `payment_choice` (`with = { answer = "{choice}" }`): which of the payment-help options an
//! answer picks, by number or by what it says: `retry`, `update`, `person`, or `none`.

use async_trait::async_trait;

use super::{text_input, Action, ActionCx, Done};
use crate::flow::engine::HostError;

pub struct PaymentChoice;

#[async_trait]
impl Action for PaymentChoice {
    fn name(&self) -> &'static str {
        "payment_choice"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["answer"]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &["retry", "update", "person", "none"]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let lower = text_input(&cx, "answer")?.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        let ordinal = cx.input.and_then(|u| u.ordinal);
        let outcome = if has(&["person", "human", "agent", "someone"]) {
            "person"
        } else if has(&["update", "change", "new card", "another card", "method"]) {
            "update"
        } else if has(&["retry", "try again", "pay again", "link"]) {
            "retry"
        } else {
            match (lower.trim(), ordinal) {
                ("1", _) | (_, Some(0)) => "retry",
                ("2", _) | (_, Some(1)) => "update",
                ("3", _) | (_, Some(2)) => "person",
                _ => "none",
            }
        };
        Ok(Done {
            outcome,
            ..Done::default()
        })
    }
}
