//! Text features for the intent classifier: word unigrams and bigrams plus character 3–5-grams
//! of each word (robust to typos: "cancle" shares most of its n-grams with "cancel"), hashed
//! into a fixed space with FNV-1a so the trainer (`tools/nlu-train`) and the functions agree
//! on every feature id without shipping a vocabulary. Values are log-scaled counts; the model
//! applies its IDF weights and normalises.

/// Feature ids are below this (2^18).
pub const BUCKETS: u32 = 1 << 18;

/// Messages are bounded by the chat API; features are bounded here too, so a long message
/// costs at most this many words.
const MAX_WORDS: usize = 256;

fn fnv1a(kind: u8, parts: &[&str]) -> u32 {
    let joined = parts
        .iter()
        .enumerate()
        .flat_map(|(i, p)| (i > 0).then_some(0x1f).into_iter().chain(p.bytes()));
    fnv1a_bytes(kind, joined)
}

/// FNV-1a of `kind` and then `bytes`, folded into the feature space.
fn fnv1a_bytes(kind: u8, bytes: impl Iterator<Item = u8>) -> u32 {
    let eat = |h: u32, b: u8| (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    bytes.fold(eat(0x811c_9dc5, kind), eat) % BUCKETS
}

/// Lower-cased words of letters and digits; apostrophes kept inside words ("don't"), digits
/// collapsed to `0` so order numbers do not each become a feature of their own.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        let w = word.trim_matches('\'');
        if !w.is_empty() {
            out.push(w.to_string());
        }
        word.clear();
    };
    for c in text.chars() {
        if out.len() >= MAX_WORDS {
            break;
        }
        match c {
            '\'' | '’' => word.push('\''),
            c if c.is_ascii_digit() => {
                if !word.ends_with('0') {
                    word.push('0');
                }
            }
            c if c.is_alphanumeric() => word.extend(c.to_lowercase()),
            _ => flush(&mut word, &mut out),
        }
    }
    if out.len() < MAX_WORDS {
        flush(&mut word, &mut out);
    }
    out
}

/// The feature id of a word (as `words` gives it) on its own: a model that has it saw the word
/// in training, which is what tells a bundle's languages apart (`language`).
pub fn word_id(word: &str) -> u32 {
    fnv1a(b'w', &[word])
}

/// `fnv1a(kind, &[s])` of the string the characters make, without making it: a message's
/// character n-grams are hashed in place, not each collected into a `String` first.
fn fnv1a_chars(kind: u8, chars: &[char]) -> u32 {
    let utf8 = chars.iter().flat_map(|c| {
        let mut buf = [0u8; 4];
        let n = c.encode_utf8(&mut buf).len();
        buf.into_iter().take(n)
    });
    fnv1a_bytes(kind, utf8)
}

/// Sparse features: (id, value) sorted by id, ids unique.
pub fn extract(text: &str) -> Vec<(u32, f32)> {
    let w = words(text);
    let mut padded: Vec<char> = Vec::new();
    // Per word: itself, the bigram it starts, and the 3-, 4- and 5-grams of its characters
    // between the two marks (a padded length of `p` has `p + 1 - n` n-grams).
    let mut ids: Vec<u32> = Vec::with_capacity(
        w.iter()
            .map(|word| {
                let p = word.chars().count() + 2;
                2 + (3..=5).map(|n| (p + 1).saturating_sub(n)).sum::<usize>()
            })
            .sum(),
    );
    for (i, word) in w.iter().enumerate() {
        ids.push(word_id(word));
        if let Some(next) = w.get(i + 1) {
            ids.push(fnv1a(b'b', &[word, next]));
        }
        padded.clear();
        padded.push('<');
        padded.extend(word.chars());
        padded.push('>');
        for n in 3..=5 {
            for gram in padded.windows(n) {
                ids.push(fnv1a_chars(b'c', gram));
            }
        }
    }
    ids.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(ids.len());
    for id in ids {
        match out.last_mut() {
            Some((last, count)) if *last == id => *count += 1.0,
            _ => out.push((id, 1.0)),
        }
    }
    for (_, v) in &mut out {
        *v = 1.0 + v.ln();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<u32> {
        extract(text).into_iter().map(|(i, _)| i).collect()
    }

    fn overlap(a: &str, b: &str) -> f64 {
        let (a, b) = (ids(a), ids(b));
        let shared = a.iter().filter(|i| b.contains(i)).count();
        shared as f64 / a.len().max(b.len()) as f64
    }

    #[test]
    fn words_are_normalised() {
        assert_eq!(
            words("Where's my ORDER #1002?? I’m waiting!!"),
            ["where's", "my", "order", "0", "i'm", "waiting"]
        );
        assert_eq!(
            words("¿Dónde está mi pedido?"),
            ["dónde", "está", "mi", "pedido"]
        );
        assert!(words("🙂 ... !!").is_empty());
    }

    #[test]
    fn case_punctuation_and_numbers_do_not_change_features() {
        assert_eq!(ids("Cancel order 1002!"), ids("cancel ORDER 99817"));
        assert_eq!(extract(""), vec![]);
    }

    #[test]
    fn features_are_stable_sorted_and_in_range() {
        let f = extract("i want to cancel my order");
        assert!(f.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique");
        assert!(f.iter().all(|(i, v)| *i < BUCKETS && *v >= 1.0));
        // FNV-1a is fixed: the trainer and the functions must agree forever.
        assert_eq!(fnv1a(b'w', &["cancel"]), fnv1a(b'w', &["cancel"]));
        assert_ne!(fnv1a(b'w', &["cancel"]), fnv1a(b'c', &["cancel"]));
    }

    #[test]
    fn character_grams_hash_as_the_strings_they_make() {
        // The models were trained on ids of each n-gram collected into a string.
        for word in ["<cancel>", "<dónde>", "<l'été>", "<日本語>", "<🙂0>"] {
            let chars: Vec<char> = word.chars().collect();
            for n in 3..=5 {
                for gram in chars.windows(n) {
                    let s: String = gram.iter().collect();
                    assert_eq!(fnv1a_chars(b'c', gram), fnv1a(b'c', &[&s]), "{s}");
                }
            }
        }
    }

    #[test]
    fn a_typo_keeps_most_of_the_signal() {
        assert!(overlap("cancle my order", "cancel my order") > 0.4);
        assert!(overlap("cancel my order", "weather in paris") < 0.1);
    }

    #[test]
    fn long_text_is_bounded() {
        let long = "word ".repeat(2000);
        assert_eq!(words(&long).len(), MAX_WORDS);
        assert!(!extract(&long).is_empty());
    }
}
