//! `match_product` (`with = { product = "{product}" }`): the catalogue's product the words
//! name (the longest name found wins: "desk lamp shade" is the shade), bound as `name` and
//! `available`; `in_stock`, `out_of_stock`, or `none` with `examples` (a few names) bound.

use async_trait::async_trait;

use super::{text_input, Action, ActionCx, Done};
use crate::flow::engine::HostError;
use crate::flow::value::{Record, Type, Value};

const EXAMPLES: usize = 5;

pub struct MatchProduct;

#[async_trait]
impl Action for MatchProduct {
    fn name(&self) -> &'static str {
        "match_product"
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["product"]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &["in_stock", "out_of_stock", "none"]
    }
    fn binds(&self) -> &'static [(&'static str, Type)] {
        &[
            ("name", Type::Text),
            ("available", Type::Number),
            ("examples", Type::Text),
        ]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let words = text_input(&cx, "product")?.to_string();
        let products = cx
            .host
            .list("inventory.availability", &Record::new())
            .await?;
        let name_of = |p: &Record| p.get("name").and_then(Value::as_text).map(str::to_string);
        let names: Vec<String> = products.iter().filter_map(name_of).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let named = crate::entities::extract(&words, cx.now.date(), &refs).products;
        let found = named
            .iter()
            .max_by_key(|n| n.len())
            .and_then(|n| products.iter().find(|p| name_of(p).as_deref() == Some(n)));
        Ok(match found {
            Some(p) => {
                let available = match p.get("available") {
                    Some(Value::Number(n)) => *n,
                    _ => 0,
                };
                Done {
                    outcome: if available > 0 {
                        "in_stock"
                    } else {
                        "out_of_stock"
                    },
                    record: Record::from([
                        (
                            "name".to_string(),
                            Value::Text(name_of(p).unwrap_or_default()),
                        ),
                        ("available".to_string(), Value::Number(available)),
                    ]),
                    ..Done::default()
                }
            }
            None => Done {
                outcome: "none",
                record: Record::from([(
                    "examples".to_string(),
                    Value::Text(
                        refs.iter()
                            .take(EXAMPLES)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                )]),
                ..Done::default()
            },
        })
    }
}
