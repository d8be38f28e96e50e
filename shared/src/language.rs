//! Which of the bundle's languages a conversation is held in, chosen per message.
//!
//! An explicit choice wins (the chat API's `language`, else the customer's `locale` claim). Else
//! the message is read for it, with two kinds of evidence:
//! - the bundle's own vocabulary: how many of the message's words each language's model saw in
//!   training ("pedido" only the Spanish one, "order" only the English one). It knows the
//!   company's words and their misspellings, which no general detector does;
//! - `whatlang`'s trigram detector among the bundle's languages, which tells languages apart on
//!   words the examples never used.
//!
//! The conversation's language so far holds unless a message says clearly otherwise: "ok",
//! "1005" and "sí" never flip it (too short to tell), nor does an English product name in a
//! Spanish sentence. A message clearly in a language the bundle does not speak is `Unsupported`.

use crate::bot::Bot;
use crate::features;

/// Fewer words than this never change a conversation's language: "ok", "merci", "sí gracias".
const MIN_WORDS: usize = 3;
/// How much better another language must read than the conversation's to switch to it (scores
/// are the share of words known, plus up to `DETECTOR_WEIGHT`).
const SWITCH_MARGIN: f32 = 0.2;
/// The trigram detector's say, at full confidence, against the vocabulary's share of words.
const DETECTOR_WEIGHT: f32 = 0.5;
/// Below this share of known words in every language, the message may be in another language
/// altogether: only then is the detector asked among all the languages it knows.
const FOREIGN_BELOW: f32 = 0.5;

/// The language to reply in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// One of the bundle's languages.
    Speak(String),
    /// Clearly written in a language the bundle does not speak (its ISO 639-1 code when known,
    /// else the detector's ISO 639-3 one): said so, in the default language.
    Unsupported(String),
}

/// The language `text` is answered in, given the one `asked` for (API or claim: "es", "es-MX")
/// and the conversation's so far.
pub fn choose(bot: &Bot, asked: Option<&str>, current: Option<&str>, text: &str) -> Choice {
    let speaks = |l: &str| bot.languages.iter().find(|b| *b == l).cloned();
    if let Some(l) = asked.and_then(|a| supported(bot, a)) {
        return Choice::Speak(l);
    }
    let current = current.and_then(speaks);
    let keep = || {
        Choice::Speak(
            current
                .clone()
                .unwrap_or_else(|| bot.language("").to_string()),
        )
    };
    let words: Vec<String> = features::words(text)
        .into_iter()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect();
    if words.is_empty() {
        return keep();
    }
    if let Some(script) = whatlang::detect_script(text) {
        if script != whatlang::Script::Latin && !bot.languages.iter().any(|l| writes(l, script)) {
            return Choice::Unsupported(script.name().to_lowercase());
        }
    }
    let ids: Vec<u32> = words.iter().map(|w| features::word_id(w)).collect();
    let known = |lang: &str| {
        let model = bot.model(lang);
        ids.iter().filter(|id| model.knows(**id)).count() as f32 / ids.len() as f32
    };
    let shares: Vec<(&str, f32)> = bot
        .languages
        .iter()
        .map(|l| (l.as_str(), known(l)))
        .collect();
    let best_share = shares.iter().map(|(_, s)| *s).fold(0.0, f32::max);
    if words.len() < MIN_WORDS {
        if current.is_some() {
            return keep();
        }
        // A first "hola" or "merci": the only language whose examples have its words.
        let best: Vec<&str> = shares
            .iter()
            .filter(|(_, s)| *s > 0.0 && *s == best_share)
            .map(|(l, _)| *l)
            .collect();
        return match best.as_slice() {
            [only] => Choice::Speak(only.to_string()),
            _ => keep(),
        };
    }
    if best_share < FOREIGN_BELOW {
        if let Some(info) = whatlang::detect(text) {
            let code = iso_639_1(info.lang());
            if info.is_reliable() && code.is_none_or(|c| speaks(c).is_none()) {
                return Choice::Unsupported(code.unwrap_or(info.lang().code()).to_string());
            }
        }
    }
    let allowed: Vec<whatlang::Lang> = bot.languages.iter().filter_map(|l| lang_of(l)).collect();
    let detected = (allowed.len() > 1)
        .then(|| whatlang::Detector::with_allowlist(allowed).detect(text))
        .flatten()
        .and_then(|i| Some((iso_639_1(i.lang())?, i.confidence() as f32)));
    let score = |lang: &str, share: f32| {
        share
            + detected
                .filter(|(l, _)| base(lang) == *l)
                .map_or(0.0, |(_, c)| DETECTOR_WEIGHT * c)
    };
    let scored: Vec<(&str, f32)> = shares.iter().map(|(l, s)| (*l, score(l, *s))).collect();
    let Some(&(best, top)) = scored.iter().reduce(|a, b| if b.1 > a.1 { b } else { a }) else {
        return keep();
    };
    match &current {
        Some(c) if c != best => {
            let held = scored.iter().find(|(l, _)| l == c).map_or(0.0, |(_, s)| *s);
            if top >= held + SWITCH_MARGIN {
                Choice::Speak(best.to_string())
            } else {
                keep()
            }
        }
        _ => Choice::Speak(best.to_string()),
    }
}

/// The bundle language a requested one is ("es-MX" is "es" when the bundle has no "es-MX").
pub fn supported(bot: &Bot, asked: &str) -> Option<String> {
    let asked = asked.trim().replace('_', "-");
    let exact = bot
        .languages
        .iter()
        .find(|l| l.eq_ignore_ascii_case(&asked));
    exact
        .or_else(|| {
            bot.languages
                .iter()
                .find(|l| l.eq_ignore_ascii_case(base(&asked)))
        })
        .cloned()
}

/// A BCP 47 tag as clients and identity providers write it ("es", "es-MX", "fr_FR"): a
/// language of letters, then letters and digits after `-` or `_`.
pub fn is_tag(tag: &str) -> bool {
    let mut parts = tag.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    tag.len() <= 35
        && (2..=8).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// "pt-BR" → "pt".
fn base(code: &str) -> &str {
    code.split('-').next().unwrap_or(code)
}

/// Two-letter codes and `whatlang`'s languages, for the languages a company is likely to add.
const CODES: &[(&str, whatlang::Lang)] = {
    use whatlang::Lang::*;
    &[
        ("en", Eng),
        ("es", Spa),
        ("fr", Fra),
        ("de", Deu),
        ("it", Ita),
        ("pt", Por),
        ("nl", Nld),
        ("pl", Pol),
        ("sv", Swe),
        ("da", Dan),
        ("nb", Nob),
        ("fi", Fin),
        ("cs", Ces),
        ("sk", Slk),
        ("sl", Slv),
        ("hr", Hrv),
        ("ro", Ron),
        ("hu", Hun),
        ("tr", Tur),
        ("lt", Lit),
        ("lv", Lav),
        ("et", Est),
        ("id", Ind),
        ("vi", Vie),
        ("ru", Rus),
        ("uk", Ukr),
        ("bg", Bul),
        ("el", Ell),
        ("ar", Ara),
        ("he", Heb),
        ("hi", Hin),
        ("ja", Jpn),
        ("zh", Cmn),
        ("ko", Kor),
        ("th", Tha),
    ]
};

fn lang_of(code: &str) -> Option<whatlang::Lang> {
    CODES
        .iter()
        .find(|(c, _)| *c == base(code))
        .map(|(_, l)| *l)
}

fn iso_639_1(lang: whatlang::Lang) -> Option<&'static str> {
    CODES.iter().find(|(_, l)| *l == lang).map(|(c, _)| *c)
}

/// Whether a bundle language is written in `script` (only asked for scripts other than Latin).
fn writes(code: &str, script: whatlang::Script) -> bool {
    lang_of(code).is_some_and(|l| script.langs().contains(&l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_languages_are_matched_to_the_bundle_by_their_base() {
        let bot = Bot::embedded();
        assert_eq!(supported(&bot, "en-GB").as_deref(), Some("en"));
        assert_eq!(supported(&bot, "EN").as_deref(), Some("en"));
        assert_eq!(supported(&bot, "en_US").as_deref(), Some("en"));
        assert_eq!(supported(&bot, "xx"), None);
        assert_eq!(supported(&bot, ""), None);
    }

    #[test]
    fn language_tags_are_checked() {
        for good in ["es", "es-MX", "fr_FR", "zh-Hant-TW", "de-CH-1996"] {
            assert!(is_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "es-",
            "1es",
            "es MX",
            "es-MX-",
            "<script>",
            &"a".repeat(40),
        ] {
            assert!(!is_tag(bad), "{bad}");
        }
    }

    #[test]
    fn english_stays_english_and_numbers_keep_the_language() {
        let bot = Bot::embedded();
        let speak = |s: &str| Choice::Speak(s.to_string());
        assert_eq!(choose(&bot, None, None, "where is my order"), speak("en"));
        assert_eq!(choose(&bot, None, None, "1005"), speak("en"));
        assert_eq!(choose(&bot, None, Some("en"), "ok"), speak("en"));
        assert_eq!(choose(&bot, None, None, "🙂"), speak("en"));
        // Asked for: honoured when spoken, else the message decides.
        assert_eq!(choose(&bot, Some("en-US"), None, "hi"), speak("en"));
        assert_eq!(choose(&bot, Some("xx"), None, "hi"), speak("en"));
    }

    #[test]
    fn another_script_is_unsupported_unless_the_bundle_writes_it() {
        let bot = Bot::embedded();
        assert!(matches!(
            choose(&bot, None, None, "где мой заказ, скажите пожалуйста"),
            Choice::Unsupported(_)
        ));
        assert!(matches!(
            choose(&bot, None, Some("en"), "我的订单在哪里"),
            Choice::Unsupported(_)
        ));
    }
}
