//! `refund_state` (`with = { order = "{o.id}" }`): where the order's refund stands in the
//! fulfillment ledger, as the outcome: `none` (never asked for), `in_progress`, `done`,
//! `failed`, `set_aside`, or `unknown` when the ledger cannot be read (never guessed at). A
//! refund asked for in this conversation whose job has not begun (or whose state cannot be
//! read) is `in_progress`: never offered twice.

use async_trait::async_trait;

use super::{text_input, Action, ActionCx, Done};
use crate::flow::engine::HostError;

pub struct RefundStateAction;

#[async_trait]
impl Action for RefundStateAction {
    fn name(&self) -> &'static str {
        "refund_state"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["order"]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &[
            "none",
            "in_progress",
            "done",
            "failed",
            "set_aside",
            "unknown",
        ]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let order = text_input(&cx, "order")?;
        let asked_here = super::asked_here(cx.host, order);
        let outcome = match cx.host.refund_state(order).await {
            Ok(None) if asked_here => "in_progress",
            Ok(None) => "none",
            Ok(Some(s)) => s.name(),
            Err(e) => {
                tracing::warn!(error = %e, "refund state unreadable");
                if asked_here {
                    "in_progress"
                } else {
                    "unknown"
                }
            }
        };
        Ok(Done {
            outcome,
            ..Done::default()
        })
    }
}
