//! How an answer fills a slot of each entity type.

use crate::money::Money;
use crate::nlu::{LAST, NEWEST};

use super::engine::Understood;
use super::value::Value;
use super::SlotType;

/// The value `u` gives a slot of type `kind`; `candidates` are the orders listed last, for
/// "the second one", and `items` what each of them holds, for "the mouse".
pub fn fill(
    kind: SlotType,
    u: &Understood,
    candidates: &[String],
    items: &[String],
) -> Option<Value> {
    let first_text = |v: &[String]| v.first().cloned().map(Value::Text);
    match kind {
        SlotType::Order => first_text(&u.order_refs)
            .or_else(|| {
                let i = u.ordinal?;
                let picked = match i {
                    LAST => candidates.last(),
                    NEWEST => candidates.first(),
                    i => candidates.get(i),
                };
                picked.cloned().map(Value::Text)
            })
            .or_else(|| {
                // Only when each listed order has its items: the indexes must line up.
                if items.len() != candidates.len() {
                    return None;
                }
                let i = crate::matching::best(&u.text, items)?;
                candidates.get(i).cloned().map(Value::Text)
            }),
        // A product the catalogue names, else the words themselves for `match_product`.
        SlotType::Product => first_text(&u.products).or_else(|| whole(u)),
        SlotType::Email => first_text(&u.emails),
        SlotType::Phone => first_text(&u.phones),
        SlotType::Amount => u.amounts.first().map(|m: &Money| Value::Money(m.clone())),
        SlotType::Date => u.dates.first().copied().map(Value::Date),
        SlotType::Text => whole(u),
    }
}

fn whole(u: &Understood) -> Option<Value> {
    let t = u.text.trim();
    (!t.is_empty()).then(|| Value::Text(t.to_string()))
}
