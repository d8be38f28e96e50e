//! `list_recent_orders`: the customer's orders of the last 90 days (at most 5, newest first).
//! `none`; `one` fills the `order` slot; `many` binds `count` and `list` (one line per order)
//! and remembers them for "the second one" — unless the message said "my last order", or
//! named what one of them holds ("has my mouse shipped?": that order is `one`).

use async_trait::async_trait;

use super::{Action, ActionCx, Done};
use crate::flow::engine::HostError;
use crate::flow::value::{Record, Type, Value};
use crate::nlu::{LAST, NEWEST};

pub const RECENT_DAYS: i64 = 90;
pub const MAX_CHOICES: usize = 5;
/// One listed order: `{n}`, `{summary}`, `{placed}` (a date).
pub const LINE: &str = "order.list_line";

pub struct ListRecentOrders;

#[async_trait]
impl Action for ListRecentOrders {
    fn name(&self) -> &'static str {
        "list_recent_orders"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &[]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &["none", "one", "many"]
    }
    fn binds(&self) -> &'static [(&'static str, Type)] {
        &[("count", Type::Number), ("list", Type::Text)]
    }
    fn says(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[(LINE, &["n", "summary", "placed"])]
    }
    fn fills(&self) -> &'static [&'static str] {
        &["order"]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let customer = Record::from([(
            "customer_id".to_string(),
            Value::text(cx.host.customer_id()),
        )]);
        let orders = cx.host.list("orders.list_by_customer", &customer).await?;
        let cutoff = cx.now - time::Duration::days(RECENT_DAYS);
        let recent: Vec<&Record> = orders
            .iter()
            .filter(|o| match o.get("placed_at") {
                Some(Value::Time(t)) => *t >= cutoff,
                _ => false,
            })
            .take(MAX_CHOICES)
            .collect();
        let id = |o: &Record| o.get("id").map(Value::to_string).unwrap_or_default();
        let newest = cx
            .input
            .is_some_and(|u| matches!(u.ordinal, Some(LAST | NEWEST)));
        let items = |o: &Record| o.get("items").map(Value::to_string).unwrap_or_default();
        let holding: Vec<String> = recent.iter().map(|o| items(o)).collect();
        let named = cx
            .input
            .filter(|_| recent.len() > 1)
            // Exactly as written: unasked, "house" must not pick the order with the mouse.
            .and_then(|u| crate::matching::best_exact(&u.words, &u.text, &holding));
        let one = |o: &Record| Done {
            outcome: "one",
            fills: Record::from([("order".to_string(), Value::Text(id(o)))]),
            ..Done::default()
        };
        Ok(match recent.as_slice() {
            [] => Done {
                outcome: "none",
                ..Done::default()
            },
            [only] => one(only),
            // Orders come newest first: "my last order" means the first.
            [first, ..] if newest => one(first),
            many if named.is_some_and(|i| i < many.len()) => one(many[named.unwrap_or(0)]),
            many => {
                let list = many
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        let summary = o
                            .get("summary")
                            .cloned()
                            .unwrap_or_else(|| Value::Text(id(o)));
                        let mut vars = vec![
                            ("n".to_string(), Value::Number(i as i64 + 1)),
                            ("summary".to_string(), summary),
                        ];
                        if let Some(placed) = o.get("placed_at") {
                            vars.push(("placed".to_string(), placed.clone()));
                        }
                        cx.host.phrase(LINE, &vars)
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                Done {
                    outcome: "many",
                    record: Record::from([
                        ("count".to_string(), Value::Number(many.len() as i64)),
                        ("list".to_string(), Value::Text(list)),
                    ]),
                    candidates: Some(many.iter().map(|o| id(o)).collect()),
                    candidate_items: holding,
                    candidate_placed: many
                        .iter()
                        .filter_map(|o| match o.get("placed_at") {
                            Some(Value::Time(t)) => Some(t.date()),
                            _ => None,
                        })
                        .collect(),
                    ..Done::default()
                }
            }
        })
    }
}
