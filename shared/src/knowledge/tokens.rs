//! The one tokenizer of retrieval: a passage is indexed and a question is searched with the
//! same tokens, or they would not meet.
//!
//! It reads words as the rest of the bot does (`message_words`: lower-cased letters, digits
//! and apostrophes), leaves accents out (customers do: "devolucion"), reads a plural as its
//! singular by the language's own endings (a light stemmer the bundle already keeps), and
//! drops the words that tell one passage from no other: the language's articles, filler and
//! question words (`[retrieval] stop`), and single letters. Digits are kept as written: "30 days" must not match "14 days"
//! (`features::words`, which folds every digit to 0, is for the intent model, not this).

use crate::bot::words::{message_words, without_accents, Words};

/// Bumped whenever `tokenize` reads text differently: an index built by another version
/// holds tokens a query would no longer produce, so it is refused rather than searched.
pub const TOKENIZER_VERSION: u32 = 2;

/// The tokens of `text` in the language of `words`, in order, repeats kept (term frequency).
pub fn tokenize(words: &Words, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for word in message_words(text) {
        // "l'article", "customer's": the parts either side of an apostrophe are words (the
        // one-letter rule then drops "l" and "s").
        for part in word.split(['\'', '\u{2019}']) {
            if part.is_empty() {
                continue;
            }
            let plain = without_accents(part);
            if is_stop(words, &plain) {
                continue;
            }
            let one = words.singular(&plain);
            // "does" would be "doe": a stop word is dropped whichever form names it.
            if is_stop(words, &one) {
                continue;
            }
            if one.chars().count() == 1 && !one.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if one.is_empty() {
                continue;
            }
            out.push(one);
        }
    }
    out
}

/// Articles, filler words and the question words of `[retrieval] stop` ("how", "do",
/// "where": kept, they would count against every passage a question is about). The lists hold
/// each word with and without its accents.
fn is_stop(words: &Words, w: &str) -> bool {
    words.articles.contains(w) || words.filler.contains(w) || words.retrieval_stop.contains(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::words::default_words;

    fn words(language: &str) -> Words {
        default_words(language).unwrap().unwrap()
    }

    #[test]
    fn english_drops_articles_filler_and_plurals() {
        let en = words("en");
        assert_eq!(
            tokenize(&en, "Can I return the lamps within 30 days?"),
            ["return", "lamp", "within", "30", "day"]
        );
        // Apostrophes split; the single letters go.
        assert_eq!(tokenize(&en, "The shop's policies"), ["shop", "policy"]);
        // A stop word is dropped in either form ("does" would be read as "doe").
        assert_eq!(tokenize(&en, "does it"), Vec::<String>::new());
    }

    #[test]
    fn question_words_are_dropped() {
        let en = words("en");
        assert_eq!(tokenize(&en, "How do I return a lamp?"), ["return", "lamp"]);
        assert_eq!(tokenize(&en, "Where do you ship?"), ["ship"]);
        assert_eq!(
            tokenize(&en, "How long does shipping take?"),
            ["shipping", "take"]
        );
        assert_eq!(
            tokenize(&words("es"), "¿Cómo puedo devolver una lámpara?"),
            ["devolver", "lampara"]
        );
        assert_eq!(
            tokenize(&words("fr"), "Comment puis-je retourner une lampe ?"),
            ["retourner", "lampe"]
        );
        assert_eq!(
            tokenize(&words("de"), "Wie kann ich eine Lampe zurückgeben?"),
            ["lamp", "zuruckgeb"]
        );
    }

    #[test]
    fn digits_are_kept_as_written() {
        let en = words("en");
        assert_eq!(tokenize(&en, "14 or 45 days, 7"), ["14", "45", "day", "7"]);
        assert_ne!(tokenize(&en, "30 days"), tokenize(&en, "14 days"));
    }

    #[test]
    fn spanish_reads_without_accents() {
        let es = words("es");
        assert_eq!(
            tokenize(&es, "¿Cuál es el plazo de devolución de las lámparas?"),
            ["plazo", "devolucion", "lampara"]
        );
        assert_eq!(
            tokenize(&es, "devolucion lamparas"),
            tokenize(&es, "Devolución LÁMPARAS")
        );
    }

    #[test]
    fn index_and_query_read_alike() {
        for language in ["en", "es", "fr", "de"] {
            let w = words(language);
            assert_eq!(tokenize(&w, ""), Vec::<String>::new());
            let t = tokenize(&w, "Kayak KAYAK kayak");
            assert_eq!(t.len(), 3, "{language}");
            assert!(t.iter().all(|x| x == &t[0]), "{language}: {t:?}");
        }
    }
}
