//! Which of the bundle's languages a conversation is held in, chosen per message.
//!
//! An explicit choice wins (the chat API's `language`, else the customer's `locale` claim). Else
//! the message is read for it, with two kinds of evidence:
//! - the bundle's own vocabulary, as a unigram language model per language: how common each of
//!   the message's words is among that language's training examples ("pedido" is common in the
//!   Spanish ones and unseen in the English ones; "hallo" common in the German ones and rare in
//!   the English ones). It knows the company's words and their misspellings, which no general
//!   detector does;
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
/// A word a language's examples never had counts as rarer than any they had (a log share; the
/// rarest words seen have about -ln(examples), -10 to -11 for the shipped bundle).
const UNSEEN: f32 = -12.0;
/// How much more likely (mean log share per word) another language must read than the
/// conversation's to switch to it, or than the runner-up to open a conversation in it from a
/// message too short for the detector.
const SWITCH_MARGIN: f32 = 1.5;
/// A short first message whose words are at least this common in the default language's
/// examples (mean log share) is in the default language, whatever else it could be.
const RARE: f32 = -6.0;
/// The trigram detector's say, at full confidence, in mean log share per word.
const DETECTOR_WEIGHT: f32 = 2.0;
/// Below this share of known words in every language, the message may be in another language
/// altogether: only then is the detector asked among all the languages it knows.
const FOREIGN_BELOW: f32 = 0.5;
/// A message whose words are this rare (mean log share) in every language's examples reads
/// like none of them: the detector's top language, sure or not, is taken when it is another.
const FOREIGN_MEAN: f32 = -7.5;
/// `whatlang`'s confidence (its top language's lead over the next) taken for such a message.
const FAIRLY_SURE: f64 = 0.5;

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
    let words = letter_words(text);
    if words.is_empty() {
        return keep();
    }
    // ASCII is Latin script (or none): only other text is asked which script it is in.
    if let Some(script) = (!text.is_ascii())
        .then(|| whatlang::detect_script(text))
        .flatten()
    {
        if script != whatlang::Script::Latin && !bot.languages.iter().any(|l| writes(l, script)) {
            return Choice::Unsupported(script.name().to_lowercase());
        }
    }
    let read = vocabulary(bot, &words);
    let best_share = read.iter().map(|(_, k, _)| *k).fold(0.0, f32::max);
    let short = words.len() < MIN_WORDS;
    if short && current.is_some() {
        return keep();
    }
    let best_mean = read.iter().map(|(_, _, m)| *m).fold(UNSEEN, f32::max);
    let strange = best_mean < FOREIGN_MEAN;
    if !short && (best_share < FOREIGN_BELOW || strange) {
        if let Some(info) = whatlang::detect(text) {
            let code = iso_639_1(info.lang());
            // The detector is sure, or fairly sure of a language none of the bundle's
            // examples read like (gibberish reads like none and is no language either).
            let sure = info.is_reliable() || (strange && info.confidence() >= FAIRLY_SURE);
            if sure && code.is_none_or(|c| speaks(c).is_none()) {
                return Choice::Unsupported(code.unwrap_or(info.lang().code()).to_string());
            }
        }
    }
    // Few of the words are in any language's examples. For a conversation's first message the
    // detector among the bundle's languages decides when it is fairly sure and its language
    // knows at least as many of them as any other ("agradecería muchísimo vuestra
    // amabilidad"). A conversation under way keeps its language (a street or a name in another
    // language is no switch), and words none knows (gibberish, a name) are nothing to go on.
    if strange {
        let most = read.iter().map(|(_, k, _)| *k).fold(0.0, f32::max);
        let letters_say = (!short && current.is_none())
            .then(|| among_bundle(bot, text))
            .flatten()
            .filter(|(_, confidence)| *confidence >= FAIRLY_SURE as f32)
            .and_then(|(code, _)| {
                read.iter()
                    .find(|(l, known, _)| base(l) == code && *known > 0.0 && *known >= most)
            });
        return match letters_say {
            Some((l, _, _)) => Choice::Speak(l.to_string()),
            None => keep(),
        };
    }
    // Too short for trigrams to say much ("hola"): the vocabulary alone.
    // Asked only when it could change the outcome: most messages read far better in one
    // language than in any other, and the detector is most of this function's time.
    let (first, second) = read.iter().fold((f32::MIN, f32::MIN), |(a, b), (_, _, m)| {
        if *m > a {
            (*m, a)
        } else {
            (a, b.max(*m))
        }
    });
    let decided = read.len() < 2 || first - second > DETECTOR_WEIGHT;
    let detected = (!short && !decided && bot.languages.len() > 1)
        .then(|| among_bundle(bot, text))
        .flatten();
    let mut scored: Vec<(&str, f32)> = read
        .iter()
        .map(|(lang, _, mean)| {
            let said = detected
                .filter(|(l, _)| base(lang) == *l)
                .map_or(0.0, |(_, c)| DETECTOR_WEIGHT * c);
            (*lang, mean + said)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let Some(&(best, top)) = scored.first() else {
        return keep();
    };
    let beats = |other: f32| top >= other + SWITCH_MARGIN;
    let chosen = match &current {
        // The conversation's language holds unless another reads clearly better.
        Some(c) => {
            let held = scored.iter().find(|(l, _)| l == c).map_or(top, |(_, s)| *s);
            c == best || beats(held)
        }
        // A first message long enough for the detector goes with whichever reads best.
        None if !short => true,
        // A first "hola" or "merci": only when it reads clearly better than in any other and
        // is rare in the default language ("no" and "ok" are English too).
        None => {
            let default = bot.language("");
            let in_default = read
                .iter()
                .find(|(l, _, _)| *l == default)
                .map_or(UNSEEN, |(_, _, mean)| *mean);
            in_default < RARE && scored.get(1).is_none_or(|(_, second)| beats(*second))
        }
    };
    if chosen {
        Choice::Speak(best.to_string())
    } else {
        keep()
    }
}

/// The message's words that have a letter ("1005" and "🙂" say nothing of a language).
fn letter_words(text: &str) -> Vec<String> {
    features::words(text)
        .into_iter()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect()
}

/// Per bundle language: the share of `words` its examples had, and the mean log share of the
/// words among its examples (a unigram language model of the company's own examples).
fn vocabulary<'b>(bot: &'b Bot, words: &[String]) -> Vec<(&'b str, f32, f32)> {
    let ids: Vec<u32> = words.iter().map(|w| features::word_id(w)).collect();
    bot.languages
        .iter()
        .map(|lang| {
            let model = bot.model(lang);
            let (mut known, mut sum) = (0usize, 0.0f32);
            for share in model.log_shares(&ids) {
                match share {
                    Some(l) => {
                        known += 1;
                        sum += l;
                    }
                    None => sum += UNSEEN,
                }
            }
            let n = ids.len().max(1) as f32;
            (lang.as_str(), known as f32 / n, sum / n)
        })
        .collect()
}

/// The detector's language for `text` among the bundle's (its ISO 639-1 code) and its
/// confidence.
fn among_bundle(bot: &Bot, text: &str) -> Option<(&'static str, f32)> {
    let allowed = bot.languages.iter().filter_map(|l| lang_of(l)).collect();
    let info = whatlang::Detector::with_allowlist(allowed).detect(text)?;
    Some((iso_639_1(info.lang())?, info.confidence() as f32))
}

/// What `choose` weighs for `text`, without the text (for evaluation reports): its words, each
/// language's share of them and mean log share, and the detector's guesses (among every
/// language, and among the bundle's).
pub fn evidence(bot: &Bot, text: &str) -> String {
    let words = letter_words(text);
    let read: Vec<String> = vocabulary(bot, &words)
        .iter()
        .map(|(l, known, mean)| format!("{l} {:.0}% {mean:.1}", known * 100.0))
        .collect();
    let guess = |i: Option<whatlang::Info>| {
        i.map_or("none".to_string(), |i| {
            format!("{} {:.2}", i.lang().code(), i.confidence())
        })
    };
    let allowed = bot.languages.iter().filter_map(|l| lang_of(l)).collect();
    format!(
        "{} words; known, mean log share: {}; detector {}, among the bundle's {}",
        words.len(),
        read.join(", "),
        guess(whatlang::detect(text)),
        guess(whatlang::Detector::with_allowlist(allowed).detect(text)),
    )
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

/// A bundle's language as `bot.toml` lists it and its files are named: `en`, `es`, `pt-BR`
/// (two lower-case letters, optionally `-` and a region in capitals). Stricter than `is_tag`,
/// which is what clients and identity providers send.
pub fn is_bundle_code(s: &str) -> bool {
    let (lang, region) = s.split_once('-').unwrap_or((s, ""));
    lang.len() == 2
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && (region.is_empty()
            || (region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase())))
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
    fn each_language_is_told_and_short_messages_keep_the_conversations() {
        let bot = Bot::embedded();
        let speak = |s: &str| Choice::Speak(s.to_string());
        // First messages, long enough for the detector and too short for it.
        assert_eq!(
            choose(&bot, None, None, "quiero saber cuándo llega mi paquete"),
            speak("es")
        );
        assert_eq!(
            choose(&bot, None, None, "je n'ai toujours pas reçu ma commande"),
            speak("fr")
        );
        assert_eq!(
            choose(&bot, None, None, "mein Paket ist noch nicht angekommen"),
            speak("de")
        );
        assert_eq!(choose(&bot, None, None, "hola"), speak("es"));
        assert_eq!(choose(&bot, None, None, "bonjour"), speak("fr"));
        assert_eq!(choose(&bot, None, None, "guten Tag"), speak("de"));
        // Words English has too stay English.
        assert_eq!(choose(&bot, None, None, "no"), speak("en"));
        assert_eq!(choose(&bot, None, None, "ok"), speak("en"));
        // "ok", a number, "sí" never flip a conversation; a sentence in another language does.
        for short in ["ok", "1005", "sí", "merci", "ja"] {
            assert_eq!(
                choose(&bot, None, Some("fr"), short),
                speak("fr"),
                "{short}"
            );
            assert_eq!(
                choose(&bot, None, Some("en"), short),
                speak("en"),
                "{short}"
            );
        }
        assert_eq!(
            choose(
                &bot,
                None,
                Some("en"),
                "en realidad prefiero escribir en español"
            ),
            speak("es")
        );
        // A product's English name in a Spanish sentence keeps it Spanish.
        assert_eq!(
            choose(&bot, None, Some("es"), "tenéis la wireless mouse en stock?"),
            speak("es")
        );
        // Asked for wins over the message.
        assert_eq!(
            choose(&bot, Some("de-AT"), None, "where is my order"),
            speak("de")
        );
    }

    #[test]
    fn a_language_the_bundle_does_not_speak_is_said_so() {
        let bot = Bot::embedded();
        for text in [
            "buongiorno, vorrei sapere perché il mio pacco non è ancora arrivato a casa",
            "ciao, il mio ordine non è ancora arrivato",
            "dzień dobry, chciałbym wiedzieć, gdzie jest moje zamówienie",
            "ik wil graag weten waar mijn bestelling blijft",
        ] {
            assert!(
                matches!(choose(&bot, None, None, text), Choice::Unsupported(_)),
                "{text}"
            );
        }
    }

    #[test]
    fn ascii_is_latin_or_no_script() {
        // `choose` asks the script of non-ASCII text only.
        let every: String = (0u8..=127).map(char::from).collect();
        for text in [
            every.as_str(),
            "where is my order 1002?",
            "1002 !!",
            "\u{7f}",
        ] {
            let script = whatlang::detect_script(text);
            assert!(
                script.is_none_or(|s| s == whatlang::Script::Latin),
                "{text:?}"
            );
        }
    }

    #[test]
    fn gibberish_is_no_language() {
        let bot = Bot::embedded();
        assert_eq!(
            choose(&bot, None, None, "qwxz vbnm plok"),
            Choice::Speak("en".into())
        );
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

    #[test]
    fn words_few_examples_have_are_read_by_their_letters() {
        let bot = Bot::embedded();
        let speak = |s: &str| Choice::Speak(s.to_string());
        // Most of the words are in no language's examples; the detector among the bundle's
        // languages is sure, and its language knows the most of them.
        for (text, lang) in [
            ("agradecería muchísimo vuestra amabilidad", "es"),
            ("sigo esperando contestación", "es"),
            ("necesitaría urgentemente asesoramiento", "es"),
        ] {
            assert_eq!(choose(&bot, None, None, text), speak(lang), "{text}");
            // A conversation under way keeps its language.
            assert_eq!(choose(&bot, None, Some("fr"), text), speak("fr"), "{text}");
        }
        // Words no language knows keep the conversation's language.
        for current in ["en", "de"] {
            assert_eq!(
                choose(&bot, None, Some(current), "qwzx vbnmt plkjh"),
                speak(current)
            );
        }
        assert_eq!(choose(&bot, None, None, "qwzx vbnmt plkjh"), speak("en"));
    }
}
