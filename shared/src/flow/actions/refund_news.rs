//! `refund_news` (`with = { list = "refunds_requested" }` or `{ order = "{o.id}" }`): says
//! where each refund stands (`refund.state.<state>`, `{order}`), the newest three of a list;
//! a refund asked for (listed, or asked for in this conversation) whose state cannot be read
//! is `refund.state.unknown`. `none` when the list is empty or the one order has no refund
//! (or none asked for here and the ledger unreadable), else `told`.

use async_trait::async_trait;

use super::{Action, ActionCx, Done};
use crate::flow::engine::{Effect, HostError};
use crate::flow::value::Value;

const MAX_REFUNDS: usize = 3;

pub struct RefundNews;

const ORDER: &[&str] = &["order"];

#[async_trait]
impl Action for RefundNews {
    fn name(&self) -> &'static str {
        "refund_news"
    }
    fn inputs(&self) -> &'static [&'static str] {
        // One of `order` / `list`: checked when run.
        &[]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &["none", "told"]
    }
    fn says(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[
            ("refund.state.in_progress", ORDER),
            ("refund.state.done", ORDER),
            ("refund.state.failed", ORDER),
            ("refund.state.set_aside", ORDER),
            ("refund.state.unknown", ORDER),
        ]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let (orders, from_list) = match (cx.inputs.get("order"), cx.inputs.get("list")) {
            // One asked for in this conversation counts as listed: its job may not have begun.
            (Some(Value::Text(o)), None) => (vec![o.clone()], super::asked_here(cx.host, o)),
            (None, Some(Value::Text(list))) => {
                let mut all = cx.host.conversation_list(list);
                all.reverse();
                all.truncate(MAX_REFUNDS);
                (all, true)
            }
            _ => {
                return Err(HostError::Failed(
                    "refund_news takes `order` or `list`".into(),
                ))
            }
        };
        let mut says = Vec::new();
        for order in orders {
            let state = match cx.host.refund_state(&order).await {
                Ok(Some(s)) => s.name(),
                // Listed as asked for, not begun yet.
                Ok(None) if from_list => "in_progress",
                Ok(None) => continue,
                Err(_) if from_list => "unknown",
                // Unreadable, and nobody here asked for one: there may be none to tell of.
                Err(_) => continue,
            };
            says.push(Effect::Say {
                key: format!("refund.state.{state}"),
                vars: vec![("order".into(), Value::Text(order))],
            });
        }
        Ok(Done {
            outcome: if says.is_empty() { "none" } else { "told" },
            says,
            ..Done::default()
        })
    }
}
