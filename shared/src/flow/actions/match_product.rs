//! `match_product` (`with = { product = "{product}" }`): which of the catalogue's products the
//! words ask about (`product_words::asked`: partial names, plurals, one-edit typos).
//!
//! - one: `in_stock` or `out_of_stock`, binding `name`, `available` and `price` (money; only
//!   when the inventory has one: branch on `p.price` before saying it);
//! - several ("the mouse and the lamp"): `several`, binding `count` and `list`, one line per
//!   product (`products.line.*`, in the order named);
//! - words that name nothing the shop sells ("kayaks"): `not_sold`, binding `wanted` (the words
//!   as said) and `examples` (names close to them first, then others);
//! - no product words at all ("is it in stock?"): `none`, binding `examples`.

use async_trait::async_trait;

use super::{text_input, Action, ActionCx, Done};
use crate::flow::engine::HostError;
use crate::flow::value::{Record, Type, Value};

const EXAMPLES: usize = 5;

/// One product of several: in stock `{name}` `{available}`, with `{price}` when known.
pub const LINE_IN_STOCK: &str = "products.line.in_stock";
pub const LINE_IN_STOCK_PRICED: &str = "products.line.in_stock_priced";
/// Out of stock: `{name}`, with `{price}` when known.
pub const LINE_OUT_OF_STOCK: &str = "products.line.out_of_stock";
pub const LINE_OUT_OF_STOCK_PRICED: &str = "products.line.out_of_stock_priced";

pub struct MatchProduct;

#[async_trait]
impl Action for MatchProduct {
    fn name(&self) -> &'static str {
        "match_product"
    }
    /// The catalogue is the same for everyone: no account needed to read it.
    fn needs_account(&self) -> bool {
        false
    }
    fn inputs(&self) -> &'static [&'static str] {
        &["product"]
    }
    fn outcomes(&self) -> &'static [&'static str] {
        &["in_stock", "out_of_stock", "several", "not_sold", "none"]
    }
    fn binds(&self) -> &'static [(&'static str, Type)] {
        &[
            ("name", Type::Text),
            ("available", Type::Number),
            ("price", Type::Money),
            ("count", Type::Number),
            ("list", Type::Text),
            ("wanted", Type::Text),
            ("examples", Type::Text),
        ]
    }
    fn may_be_empty(&self) -> &'static [&'static str] {
        &["price"]
    }
    fn says(&self) -> &'static [(&'static str, &'static [&'static str])] {
        &[
            (LINE_IN_STOCK, &["name", "available"]),
            (LINE_IN_STOCK_PRICED, &["name", "available", "price"]),
            (LINE_OUT_OF_STOCK, &["name"]),
            (LINE_OUT_OF_STOCK_PRICED, &["name", "price"]),
        ]
    }

    async fn run(&self, cx: ActionCx<'_>) -> Result<Done, HostError> {
        let words = text_input(&cx, "product")?.to_string();
        let products = cx
            .host
            .list("inventory.availability", &Record::new())
            .await?;
        let name_of = |p: &Record| p.get("name").and_then(Value::as_text).map(str::to_string);
        // Records without a name cannot be asked about; keep the two lists aligned.
        let named: Vec<(&Record, String)> = products
            .iter()
            .filter_map(|p| name_of(p).map(|n| (p, n)))
            .collect();
        let names: Vec<&str> = named.iter().map(|(_, n)| n.as_str()).collect();
        let asked = crate::product_words::asked(&cx.host.words(), &words, &names);
        let fields = |(p, name): &(&Record, String)| {
            let available = match p.get("available") {
                Some(Value::Number(n)) => (*n).max(0),
                _ => 0,
            };
            let mut r = Record::from([
                ("name".to_string(), Value::Text(name.clone())),
                ("available".to_string(), Value::Number(available)),
            ]);
            if let Some(price @ Value::Money(_)) = p.get("price") {
                r.insert("price".to_string(), price.clone());
            }
            r
        };
        let examples = |first: &[usize]| {
            let mut picked: Vec<usize> = first.to_vec();
            picked.extend((0..names.len()).filter(|i| !first.contains(i)));
            let shown: Vec<&str> = picked
                .into_iter()
                .take(EXAMPLES)
                .map(|i| names[i])
                .collect();
            // A few of the catalogue, not all of it: "a, b, c", without the last "and".
            cx.host.format().sample(&shown)
        };
        Ok(match asked.products.as_slice() {
            [one] => {
                let record = fields(&named[*one]);
                let outcome = if matches!(record.get("available"), Some(Value::Number(n)) if *n > 0)
                {
                    "in_stock"
                } else {
                    "out_of_stock"
                };
                Done {
                    outcome,
                    record,
                    ..Done::default()
                }
            }
            [] => {
                let mut record =
                    Record::from([("examples".to_string(), Value::Text(examples(&asked.near)))]);
                let outcome = match asked.wanted {
                    Some(wanted) => {
                        record.insert("wanted".to_string(), Value::Text(wanted));
                        "not_sold"
                    }
                    None => "none",
                };
                Done {
                    outcome,
                    record,
                    ..Done::default()
                }
            }
            several => {
                let list = several
                    .iter()
                    .map(|i| {
                        let r = fields(&named[*i]);
                        let in_stock =
                            matches!(r.get("available"), Some(Value::Number(n)) if *n > 0);
                        let key = match (in_stock, r.contains_key("price")) {
                            (true, true) => LINE_IN_STOCK_PRICED,
                            (true, false) => LINE_IN_STOCK,
                            (false, true) => LINE_OUT_OF_STOCK_PRICED,
                            (false, false) => LINE_OUT_OF_STOCK,
                        };
                        let vars: Vec<(String, Value)> = r.into_iter().collect();
                        cx.host.phrase(key, &vars)
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                Done {
                    outcome: "several",
                    record: Record::from([
                        ("count".to_string(), Value::Number(several.len() as i64)),
                        ("list".to_string(), Value::Text(list)),
                    ]),
                    ..Done::default()
                }
            }
        })
    }
}
