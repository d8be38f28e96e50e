//! Which of a few known names a customer's words mean: the catalogue's products, the items of
//! the customer's own orders. People write a name in part ("the mouse"), in the plural ("desk
//! lamps"), hyphenated or not ("noise cancelling"), and with a slip of the keyboard
//! ("wireles"): a name is meant when some of its words are there, each in any of those forms.
//!
//! Words are compared after folding case, accents and a plural ending (the language's, from
//! its `words/<lang>.toml`, as are the filler words); words of five letters or more
//! also match with one edit (a letter missing, extra, wrong or two swapped), shorter ones only
//! exactly ("mat" is not "map").

use crate::bot::words::{lower, without_accents};
use crate::bot::Words;

/// The shortest word a typo is forgiven in.
const TYPO_MIN_LEN: usize = 5;

/// The message's words, lower-cased, without accents and their plural endings, filler left
/// out.
pub fn words(lists: &Words, text: &str) -> Vec<String> {
    let plain = without_accents(&lower(text));
    plain
        .split(|c: char| !c.is_alphanumeric())
        // One letter ("USB-C"'s "c") or a number ("3 days") tells no name from another.
        .filter(|w| {
            w.chars().count() > 1
                && !w.chars().all(|c| c.is_ascii_digit())
                && !lists.filler.contains(*w)
        })
        .map(|w| lists.singular(w))
        .collect()
}

fn same_word(said: &str, name: &str) -> bool {
    let near = |a: &str| {
        a.chars().count() >= TYPO_MIN_LEN
            && name.chars().count() >= TYPO_MIN_LEN
            && strsim::osa_distance(a, name) <= 1
    };
    // A typo that ends in "s" lost it to the plural rule ("wireles" → "wirele"): with it
    // back, it is one edit from "wireless" again.
    said == name || near(said) || near(&format!("{said}s"))
}

/// How well words (from [`words`]) name `name`: how many of the name's words are there, and
/// how many words the name has. `None` when none is.
pub fn score(lists: &Words, said: &[String], name: &str) -> Option<Score> {
    score_with(lists, said, name, &same_word)
}

/// [`score`] with words compared by `same` (exact, or forgiving a typo).
fn score_with(
    lists: &Words,
    said: &[String],
    name: &str,
    same: &dyn Fn(&str, &str) -> bool,
) -> Option<Score> {
    let name_words = words(lists, name);
    let matched = name_words
        .iter()
        .filter(|n| said.iter().any(|s| same(s, n)))
        .count();
    (matched > 0).then_some(Score {
        matched,
        of: name_words.len(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub matched: usize,
    pub of: usize,
}

impl Score {
    /// More words matched first; then the name with fewer words left over ("desk lamp" over
    /// "desk lamp shade" for "desk lamp").
    fn rank(self) -> (usize, std::cmp::Reverse<usize>) {
        (self.matched, std::cmp::Reverse(self.of - self.matched))
    }

    /// Every word of the name is there.
    pub fn whole(self) -> bool {
        self.matched == self.of
    }
}

/// The one of `names` the text means: the best match, unless two are equally good.
pub fn best<S: AsRef<str>>(lists: &Words, text: &str, names: &[S]) -> Option<usize> {
    best_with(lists, text, names, same_word)
}

/// [`best`] with every word as written (plurals folded, no typos): for picking among names
/// the customer was not asked about, where "house" must not be taken for "mouse".
pub fn best_exact<S: AsRef<str>>(lists: &Words, text: &str, names: &[S]) -> Option<usize> {
    best_with(lists, text, names, |a, b| a == b)
}

/// Every word of the text, but `ignore`, is one of the name's: "and the headphones?" is all
/// about the headphones; "and are the headphones in stock?" is not.
pub fn covers<S: AsRef<str>>(lists: &Words, text: &str, name: &str, ignore: &[S]) -> bool {
    let name_words = words(lists, name);
    let said: Vec<String> = words(lists, text)
        .into_iter()
        .filter(|w| !ignore.iter().any(|i| i.as_ref() == w))
        .collect();
    !said.is_empty()
        && said
            .iter()
            .all(|s| name_words.iter().any(|n| same_word(s, n)))
}

/// The names the words match, each with its score, best first.
fn ranked<S: AsRef<str>>(
    lists: &Words,
    said: &[String],
    names: &[S],
    same: &dyn Fn(&str, &str) -> bool,
) -> Vec<(usize, Score)> {
    let mut scored: Vec<(usize, Score)> = names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| score_with(lists, said, n.as_ref(), same).map(|s| (i, s)))
        .collect();
    scored.sort_by_key(|(_, s)| std::cmp::Reverse(s.rank()));
    scored
}

fn best_with<S: AsRef<str>>(
    lists: &Words,
    text: &str,
    names: &[S],
    same: impl Fn(&str, &str) -> bool,
) -> Option<usize> {
    let scored = ranked(lists, &words(lists, text), names, &same);
    match scored.as_slice() {
        [(i, _)] => Some(*i),
        [(i, a), (_, b), ..] if a.rank() > b.rank() => Some(*i),
        _ => None,
    }
}

/// Every one of `names` the text names, best first: "the mouse and the desk lamp" names two.
/// A name is in when it has a word no better-matching name claimed too ("lamp" alone in a
/// catalogue of three lamps names none of them).
pub fn all<S: AsRef<str>>(lists: &Words, text: &str, names: &[S]) -> Vec<usize> {
    let said = words(lists, text);
    let scored = ranked(lists, &said, names, &same_word);
    let mut taken: Vec<usize> = Vec::new();
    for (i, s) in &scored {
        let tied = scored
            .iter()
            .filter(|(j, t)| j != i && t.rank() == s.rank())
            .any(|(j, _)| overlap(lists, &said, names[*i].as_ref(), names[*j].as_ref()));
        if !tied {
            taken.push(*i);
        }
    }
    // A name whose words were all claimed by a better match is that match's, not a second
    // product ("desk lamp" does not also name "lamp").
    let mut out: Vec<usize> = Vec::new();
    for i in taken {
        let mine = matched_words(lists, &said, names[i].as_ref());
        let claimed = out.iter().any(|j| {
            let theirs = matched_words(lists, &said, names[*j].as_ref());
            mine.iter().all(|w| theirs.contains(w))
        });
        if !claimed {
            out.push(i);
        }
    }
    out
}

/// The names that tie for the best match when more than one does ("lamps" in a shop with a
/// desk lamp and a floor lamp): what [`all`] leaves undecided, for an answer that can name
/// each. Empty when one name is best or none matches.
pub fn tied<S: AsRef<str>>(lists: &Words, text: &str, names: &[S]) -> Vec<usize> {
    let scored = ranked(lists, &words(lists, text), names, &same_word);
    let Some(best) = scored.first().map(|(_, s)| s.rank()) else {
        return Vec::new();
    };
    let out: Vec<usize> = scored
        .iter()
        .take_while(|(_, s)| s.rank() == best)
        .map(|(i, _)| *i)
        .collect();
    if out.len() > 1 {
        out
    } else {
        Vec::new()
    }
}

/// The message's words a name matched.
fn matched_words(lists: &Words, said: &[String], name: &str) -> Vec<String> {
    let name_words = words(lists, name);
    said.iter()
        .filter(|s| name_words.iter().any(|n| same_word(s, n)))
        .cloned()
        .collect()
}

/// Two names matched by the same words of the message.
fn overlap(lists: &Words, said: &[String], a: &str, b: &str) -> bool {
    let a = matched_words(lists, said, a);
    matched_words(lists, said, b).iter().any(|w| a.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn en() -> &'static Words {
        Words::english()
    }

    fn singular(w: &str) -> String {
        en().singular(w)
    }

    const SHOP: &[&str] = &[
        "Wireless Mouse",
        "Noise-Cancelling Headphones",
        "Desk Lamp",
        "Desk Lamp Shade",
    ];

    fn best_of(text: &str) -> Option<&'static str> {
        best(en(), text, SHOP).map(|i| SHOP[i])
    }

    #[test]
    fn a_name_in_part_in_the_plural_or_with_a_typo() {
        assert_eq!(best_of("the mouse"), Some("Wireless Mouse"));
        assert_eq!(best_of("do you have desk lamps?"), Some("Desk Lamp"));
        assert_eq!(best_of("any wireles mouse?"), Some("Wireless Mouse"));
        // A typo ending in "s" is not taken for a plural and lost.
        assert_eq!(best_of("the wireles one"), Some("Wireless Mouse"));
        assert_eq!(
            best_of("the noise cancelling ones"),
            Some("Noise-Cancelling Headphones")
        );
        assert_eq!(best_of("headphnoes"), Some("Noise-Cancelling Headphones"));
        assert_eq!(best_of("a shade for my desk lamp"), Some("Desk Lamp Shade"));
    }

    #[test]
    fn nothing_or_two_equally_good_is_no_answer() {
        assert_eq!(best_of("an umbrella"), None);
        assert_eq!(best_of("the one I ordered"), None);
        assert_eq!(best(en(), "lamp", &["Desk Lamp", "Floor Lamp"]), None);
        // Short words must be exact: a typo there is another word.
        assert_eq!(best(en(), "the map", &["Yoga Mat"]), None);
    }

    #[test]
    fn exact_picks_forgive_no_typo_and_ignore_numbers() {
        let orders = ["Wireless Mouse", "USB-C Cable, Desk Lamp"];
        assert_eq!(
            best_exact(en(), "is my order at my house yet", &orders),
            None
        );
        assert_eq!(best(en(), "at my house", &orders), Some(0));
        assert_eq!(best_exact(en(), "has the mouse shipped", &orders), Some(0));
        assert_eq!(best_exact(en(), "it's been 3 days, c", &orders), None);
    }

    #[test]
    fn a_message_all_about_a_name() {
        let ignore = ["and", "what", "about"];
        assert!(covers(
            en(),
            "and the headphones?",
            "Noise-Cancelling Headphones",
            &ignore
        ));
        assert!(!covers(
            en(),
            "and are the headphones in stock?",
            "Noise-Cancelling Headphones",
            &ignore
        ));
        assert!(!covers(
            en(),
            "and?",
            "Noise-Cancelling Headphones",
            &ignore
        ));
    }

    #[test]
    fn several_names_in_one_message() {
        let all_of = |t: &str| {
            all(en(), t, SHOP)
                .into_iter()
                .map(|i| SHOP[i])
                .collect::<Vec<_>>()
        };
        assert_eq!(
            all_of("the mouse and the headphones"),
            ["Wireless Mouse", "Noise-Cancelling Headphones"]
        );
        assert_eq!(all_of("is the desk lamp in stock"), ["Desk Lamp"]);
        assert!(all(en(), "lamp", &["Desk Lamp", "Floor Lamp"]).is_empty());
    }

    #[test]
    fn plurals_fold_but_words_ending_in_s_keep_their_s() {
        assert_eq!(singular("lamps"), "lamp");
        assert_eq!(singular("boxes"), "box");
        assert_eq!(singular("batteries"), "battery");
        assert_eq!(singular("glass"), "glass");
        assert_eq!(singular("status"), "status");
        assert_eq!(singular("bus"), "bus");
        assert_eq!(singular("mice"), "mouse");
        assert_eq!(singular("shelves"), "shelf");
    }
}
