//! How an answer fills a slot of each entity type.

use crate::money::Money;
use crate::nlu::{LAST, NEWEST};

use super::engine::Understood;
use super::value::Value;
use super::SlotType;

/// How far, in days, the day a customer names may be from the day a listed order was placed
/// ("the one from last week" is seven days back; the order may be from any day of that week).
const PLACED_WITHIN_DAYS: i64 = 3;

/// The value `u` gives a slot of type `kind`; `candidates` are the orders listed last, for
/// "the second one", `items` what each of them holds, for "the mouse", and `placed` the day
/// each was placed, for "the one from last week".
pub fn fill(
    kind: SlotType,
    u: &Understood,
    candidates: &[String],
    items: &[String],
    placed: &[time::Date],
) -> Option<Value> {
    let first_text = |v: &[String]| v.first().cloned().map(Value::Text);
    match kind {
        // A listed order's id, exactly and alone ("#T01M8…", what its button sends), is that
        // order whatever shape ids have. A number written otherwise than the listed order's id
        // ("88130" for SO-88130) is that order when only one listed fits it.
        SlotType::Order => listed_exactly(u, candidates)
            .or_else(|| {
                u.order_refs.first().map(|r| {
                    let listed: Vec<&str> = candidates.iter().map(String::as_str).collect();
                    Value::Text(crate::order_ids::among(r, &listed).unwrap_or(r).to_string())
                })
            })
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
                let i = crate::matching::best(&u.words, &u.text, items)?;
                candidates.get(i).cloned().map(Value::Text)
            })
            .or_else(|| {
                // As with items: only when the days line up with the listed orders.
                if placed.len() != candidates.len() {
                    return None;
                }
                let i = placed_near(u.dates.first()?, placed)?;
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

/// The one listed order placed nearest `day`, within [`PLACED_WITHIN_DAYS`]; `None` when none
/// is that near or two are equally near.
fn placed_near(day: &time::Date, placed: &[time::Date]) -> Option<usize> {
    let away: Vec<i64> = placed
        .iter()
        .map(|p| (*p - *day).whole_days().abs())
        .collect();
    let best = *away.iter().min()?;
    let mut nearest = away.iter().enumerate().filter(|(_, d)| **d == best);
    match (nearest.next(), nearest.next()) {
        (Some((i, _)), None) if best <= PLACED_WITHIN_DAYS => Some(i),
        _ => None,
    }
}

/// The listed order whose id is the whole message (a `#` before it allowed, case aside).
fn listed_exactly(u: &Understood, candidates: &[String]) -> Option<Value> {
    let said = u.text.trim();
    let said = said.strip_prefix('#').unwrap_or(said);
    candidates
        .iter()
        .find(|c| !c.is_empty() && c.eq_ignore_ascii_case(said))
        .cloned()
        .map(Value::Text)
}

fn whole(u: &Understood) -> Option<Value> {
    let t = u.text.trim();
    (!t.is_empty()).then(|| Value::Text(t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(refs: &[&str]) -> Understood {
        Understood {
            order_refs: refs.iter().map(|r| r.to_string()).collect(),
            ..Understood::default()
        }
    }

    #[test]
    fn a_number_answering_which_order_is_the_listed_order_with_it() {
        let listed = ["SO-88130".to_string(), "SO-88140".to_string()];
        let order = |refs: &[&str]| fill(SlotType::Order, &said(refs), &listed, &[], &[]);
        assert_eq!(order(&["88130"]), Some(Value::text("SO-88130")));
        assert_eq!(order(&["so88140"]), Some(Value::text("SO-88140")));
        // Not listed, or other letters: as written, for the lookup to say "not found".
        assert_eq!(order(&["77001"]), Some(Value::text("77001")));
        assert_eq!(order(&["RT88130"]), Some(Value::text("RT88130")));
    }

    #[test]
    fn a_listed_id_alone_is_that_order_whatever_its_shape() {
        let listed = ["T01M8ZTDJB".to_string(), "T01M8ZTDJC".to_string()];
        let typed = |text: &str| {
            let u = Understood {
                text: text.into(),
                ..Understood::default()
            };
            fill(SlotType::Order, &u, &listed, &[], &[])
        };
        assert_eq!(typed("T01M8ZTDJC"), Some(Value::text("T01M8ZTDJC")));
        assert_eq!(typed(" #t01m8ztdjb "), Some(Value::text("T01M8ZTDJB")));
        assert_eq!(typed("T01M8ZTDJC please"), None, "only the id, alone");
    }

    #[test]
    fn a_day_answering_which_order_is_the_listed_order_placed_nearest_it() {
        use time::macros::date;
        let listed = ["1001".to_string(), "1002".to_string(), "1003".to_string()];
        let placed = [
            date!(2026 - 11 - 20),
            date!(2026 - 11 - 12),
            date!(2026 - 11 - 02),
        ];
        let on = |day| {
            let u = Understood {
                dates: vec![day],
                ..Understood::default()
            };
            fill(SlotType::Order, &u, &listed, &[], &placed)
        };
        // "the one from last week", a week before the 24th.
        assert_eq!(on(date!(2026 - 11 - 17)), Some(Value::text("1001")));
        assert_eq!(on(date!(2026 - 11 - 12)), Some(Value::text("1002")));
        // Far from every order, or as near to two: no guess.
        assert_eq!(on(date!(2026 - 10 - 01)), None);
        let twins = [
            date!(2026 - 11 - 10),
            date!(2026 - 11 - 14),
            date!(2026 - 11 - 02),
        ];
        let u = Understood {
            dates: vec![date!(2026 - 11 - 12)],
            ..Understood::default()
        };
        assert_eq!(fill(SlotType::Order, &u, &listed, &[], &twins), None);
    }
}
