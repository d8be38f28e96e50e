//! What a product question asks about: the words left once the question's own words ("do you
//! sell", "how much is", "in stock") are taken out, and which of the catalogue's names they
//! mean. "do you sell kayaks?" asks about "kayaks"; "how much are the mouse and the lamp?"
//! about "mouse" and "lamp", two things.
//!
//! Names are matched with [`crate::matching`] (partial names, plurals, one-edit typos) within
//! each run of product words. A name whose every word is there is meant; a name only partly
//! there is meant only when the run has no other words: "the mouse" is the Wireless Mouse, but
//! "a wireless keyboard" is not, and neither is "a desk lampshade" the Desk Lamp — those are
//! `near`, worth suggesting, not answering for.

use crate::bot::Words;
use crate::matching;

// The words of the question ("do you sell", "how much"), those that say a clause asks
// (`asking`), that describe rather than name (`attributes`: "the lamp in black" is still the Desk
// Lamp), and articles kept in front of what was asked for ("a purple sofa") are the language's
// `[products]` lists in `words/<lang>.toml`. The message's apostrophes split words here, so
// "what's" is "what" and "s".

/// The catalogue's names a question asks about, as indexes into `names`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Asked {
    /// Names meant, in the order the message names them, each once.
    pub products: Vec<usize>,
    /// Names partly there with other words beside them ("wireless keyboard": the Wireless
    /// Mouse): not what was asked for, but close.
    pub near: Vec<usize>,
    /// What was asked for, as written: "kayaks", "a purple sofa". `None` when the message has
    /// no words but the question's own ("is it in stock?").
    pub wanted: Option<String>,
}

struct Token {
    lower: String,
    start: usize,
    end: usize,
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(Token {
                    lower: text[s..i].to_lowercase(),
                    start: s,
                    end: i,
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn is_question(lists: &Words, w: &str) -> bool {
    lists.question.contains(w)
}

fn is_attribute(lists: &Words, w: &str) -> bool {
    lists.attributes.contains(w)
}

/// A clause ends at sentence punctuation between two words.
fn breaks_clause(gap: &str) -> bool {
    gap.contains([',', '.', ';', '?', '!', ':'])
}

/// The runs of product words, each run one thing asked about: "mouse", "desk lamp".
pub fn runs(lists: &Words, text: &str) -> Vec<String> {
    let toks = tokens(text);
    let mut out: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let cut = i > 0 && breaks_clause(&text[toks[i - 1].end..t.start]);
        if (cut || is_question(lists, &t.lower)) && !current.is_empty() {
            out.push(current.join(" "));
            current.clear();
        }
        if !is_question(lists, &t.lower) {
            current.push(&t.lower);
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out
}

/// What was asked for, as written: from the first product word to the last, in the clause
/// that asks ("hi, do you sell kayaks?" → "kayaks"), with its article ("a purple sofa").
pub fn wanted(lists: &Words, text: &str) -> Option<String> {
    let toks = tokens(text);
    // Clauses as ranges of tokens.
    let mut clauses: Vec<std::ops::Range<usize>> = Vec::new();
    let mut from = 0;
    for i in 1..=toks.len() {
        if i == toks.len() || breaks_clause(&text[toks[i - 1].end..toks[i].start]) {
            clauses.push(from..i);
            from = i;
        }
    }
    let has_product = |r: &std::ops::Range<usize>| {
        toks[r.clone()]
            .iter()
            .any(|t| !is_question(lists, &t.lower) && !is_attribute(lists, &t.lower))
    };
    let asking = |r: &std::ops::Range<usize>| {
        toks[r.clone()]
            .iter()
            .any(|t| lists.asking.contains(&t.lower))
    };
    let clause = clauses
        .iter()
        .find(|r| has_product(r) && asking(r))
        .or_else(|| clauses.iter().rev().find(|r| has_product(r)))?;
    let words = &toks[clause.clone()];
    let first = words.iter().position(|t| !is_question(lists, &t.lower))?;
    let last = words.iter().rposition(|t| !is_question(lists, &t.lower))?;
    let first = match first.checked_sub(1) {
        Some(p) if lists.articles.contains(&words[p].lower) => p,
        _ => first,
    };
    let said = text[words[first].start..words[last].end].trim();
    let said = said.strip_prefix(['"', '\'']).unwrap_or(said);
    (!said.is_empty()).then(|| said.to_lowercase())
}

/// Which of `names` the question asks about; see [`Asked`].
pub fn asked<S: AsRef<str>>(lists: &Words, text: &str, names: &[S]) -> Asked {
    let mut products: Vec<usize> = Vec::new();
    let mut near: Vec<usize> = Vec::new();
    for run in runs(lists, text) {
        // Each word as `matching` folds it and as written: folding a plural ending off a typo
        // ("wireles" → "wirele") takes it two edits from the name.
        let forms: Vec<[String; 2]> = run
            .split(' ')
            .map(|w| {
                let folded = matching::words(lists, w).pop().unwrap_or_default();
                [folded, w.to_string()]
            })
            .collect();
        let said: Vec<String> = forms.iter().flatten().cloned().collect();
        let mut meant = matching::all(lists, &run, names);
        if meant.is_empty() {
            // "lamps" with a desk lamp and a floor lamp on sale asks about both, not neither.
            meant = matching::tied(lists, &run, names);
        }
        for i in meant {
            let name = names[i].as_ref();
            let whole = matching::score(lists, &said, name).is_some_and(|s| s.whole());
            // Words of the run this name does not account for: "keyboard" beside "wireless".
            let other = forms
                .iter()
                .any(|f| !is_attribute(lists, &f[1]) && matching::score(lists, f, name).is_none());
            let list = if whole || !other {
                &mut products
            } else {
                &mut near
            };
            if !list.contains(&i) {
                list.push(i);
            }
        }
    }
    near.retain(|i| !products.contains(i));
    Asked {
        products,
        near,
        wanted: wanted(lists, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> &'static Words {
        Words::english()
    }

    const SHOP: &[&str] = &[
        "Wireless Mouse",
        "Noise-Cancelling Headphones",
        "Desk Lamp",
        "Reading Chair",
    ];

    fn names(text: &str) -> Vec<&'static str> {
        asked(en(), text, SHOP)
            .products
            .into_iter()
            .map(|i| SHOP[i])
            .collect()
    }

    #[test]
    fn the_product_words_of_a_question() {
        assert_eq!(
            wanted(en(), "do you sell kayaks?").as_deref(),
            Some("kayaks")
        );
        assert_eq!(
            wanted(en(), "Do you carry a purple sofa").as_deref(),
            Some("a purple sofa")
        );
        assert_eq!(
            wanted(en(), "how much is the garden hose?").as_deref(),
            Some("the garden hose")
        );
        assert_eq!(
            wanted(en(), "what's the price of snow boots").as_deref(),
            Some("snow boots")
        );
        assert_eq!(
            wanted(en(), "hi, do you have any kayaks in stock?").as_deref(),
            Some("kayaks")
        );
        assert_eq!(
            wanted(en(), "do you sell kayaks or canoes").as_deref(),
            Some("kayaks or canoes")
        );
        assert_eq!(wanted(en(), "is it in stock?"), None);
        assert_eq!(
            wanted(en(), "do you have it in blue?"),
            None,
            "a colour names no product"
        );
        assert_eq!(
            wanted(en(), "any purple sofas").as_deref(),
            Some("purple sofas")
        );
        assert_eq!(wanted(en(), "how much does this item cost"), None);
        assert_eq!(wanted(en(), ""), None);
        assert_eq!(wanted(en(), "?!"), None);
    }

    #[test]
    fn runs_split_at_question_words_and_punctuation() {
        assert_eq!(
            runs(en(), "do you have the mouse and the lamp?"),
            ["mouse", "lamp"]
        );
        assert_eq!(
            runs(en(), "desk lamp, reading chair"),
            ["desk lamp", "reading chair"]
        );
        assert_eq!(
            runs(en(), "the noise-cancelling ones"),
            ["noise cancelling"]
        );
    }

    #[test]
    fn plural_partial_and_misspelled_names() {
        assert_eq!(names("do you have desk lamps?"), ["Desk Lamp"]);
        assert_eq!(names("is the lamp in stock"), ["Desk Lamp"]);
        assert_eq!(names("any wireles mouse?"), ["Wireless Mouse"]);
        assert_eq!(
            names("how much are the noise cancelling ones"),
            ["Noise-Cancelling Headphones"]
        );
        assert_eq!(
            names("is the black desk lamp in stock"),
            ["Desk Lamp"],
            "every word of it is there"
        );
        assert_eq!(
            names("the lamp in black, large"),
            ["Desk Lamp"],
            "colours and sizes describe it"
        );
    }

    #[test]
    fn several_products_in_the_order_named() {
        assert_eq!(
            names("do you have the mouse and the lamp?"),
            ["Wireless Mouse", "Desk Lamp"]
        );
        assert_eq!(
            names("my NOISE-CANCELLING HEADPHONES and the wireless mouse"),
            ["Noise-Cancelling Headphones", "Wireless Mouse"]
        );
        assert_eq!(names("the lamp, the desk lamp"), ["Desk Lamp"], "each once");
    }

    #[test]
    fn a_name_partly_there_beside_other_words_is_near_not_meant() {
        let a = asked(en(), "do you have a wireless keyboard?", SHOP);
        assert!(a.products.is_empty());
        assert_eq!(a.near, [0]);
        assert_eq!(a.wanted.as_deref(), Some("a wireless keyboard"));
        let shade = asked(en(), "a desk lampshade", SHOP);
        assert!(shade.products.is_empty(), "whole words only");
        assert_eq!(shade.near, [2]);
    }

    #[test]
    fn a_word_two_names_share_means_both() {
        let lamps = ["Desk Lamp", "Floor Lamp", "Wireless Mouse"];
        assert_eq!(asked(en(), "do you have lamps?", &lamps).products, [0, 1]);
        assert_eq!(asked(en(), "how much is the lamp", &lamps).products, [0, 1]);
        // One of them named in full is that one.
        assert_eq!(
            asked(en(), "is the floor lamp in stock", &lamps).products,
            [1]
        );
        // Beside a word neither has, both are only near.
        let purple = asked(en(), "a purple lamp", &lamps);
        assert!(purple.products.is_empty());
    }

    #[test]
    fn what_the_shop_does_not_sell_is_nothing_meant() {
        let a = asked(en(), "do you sell kayaks?", SHOP);
        assert_eq!(
            a,
            Asked {
                products: vec![],
                near: vec![],
                wanted: Some("kayaks".into())
            }
        );
        assert_eq!(asked(en(), "is it in stock?", SHOP), Asked::default());
        assert_eq!(asked(en(), "", &[] as &[&str]), Asked::default());
    }
}
