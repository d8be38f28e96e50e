//! How the bot reads a language: `words/<lang>.toml` lists the words the engine looks for
//! besides what the intent model reads — yes and no, acknowledgements, ordinals, date words,
//! the words that join two requests, the words of a product question, plural endings. Parsed
//! and checked at load like the other bundle files, and compiled once (sets and regexes), so
//! reading a message builds nothing but its own words.
//!
//! Customers leave accents out ("si", "manana") and spell letters their keyboard lacks
//! otherwise ("fuer"): every word of a list is also looked for in those forms.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, LazyLock, OnceLock};

use serde::Deserialize;
use toml::Spanned;

use super::error::{line_of, line_of_key, BundleError, BundleErrors};
use super::pattern::Pattern;
use super::relative_dates::RelativeSource;
/// The relative dates' types, where the words' users have always found them.
pub use super::relative_dates::{Alternative, DateKind, Relative};
use super::toml_file::{self, Schema, LEAF};
use crate::nlu::{LAST, NEWEST};

/// One language's words, compiled. Cheap to clone (shared).
#[derive(Clone)]
pub struct Words(Arc<Lists>);

pub(crate) type Set = HashSet<String>;

/// What `words/<lang>.toml` says, as the engine looks things up.
pub struct Lists {
    pub language: String,
    pub yes: Set,
    pub no: Set,
    pub acknowledgements: Set,
    pub ok: Set,
    pub yes_openings: Vec<Vec<String>>,
    pub no_openings: Vec<Vec<String>>,
    pub after_one_word: Set,
    pub negations: Set,
    /// Where a second request may start: a sentence's end, a semicolon, a comma, or a clause
    /// joined by one of the joining words.
    pub joins: LazyRegex,
    pub goes_on: Set,
    pub follow_up_openings: Vec<Vec<String>>,
    /// The words of the openings, as `matching` folds them.
    pub follow_up_words: Vec<String>,
    pub other: Set,
    pub pointing: Set,
    /// Word → 0-based index (`LAST`, `NEWEST`).
    pub ordinals: HashMap<String, usize>,
    pub alone: Set,
    pub time: Set,
    /// Word → value.
    pub numbers: HashMap<String, i64>,
    pub day_first: bool,
    /// Each month's names (January first), in every form.
    pub months: Vec<Vec<String>>,
    pub named_date: LazyRegex,
    pub relative: Relative,
    pub filler: Set,
    pub question: Set,
    pub asking: Set,
    pub attributes: Set,
    pub articles: Set,
    /// `[retrieval] stop`: question words the help-document search leaves out.
    pub retrieval_stop: Set,
    pub plural_endings: Vec<(String, String, usize)>,
    pub singular_endings: Vec<String>,
    pub irregular: HashMap<String, String>,
}

/// A regex built on first use: loading a bundle reads every language's words, and a cold start
/// should not pay for compiling the patterns of languages no message is in yet (the dialogue's
/// warm-up builds the bundle's languages' in the background).
pub struct LazyRegex {
    pattern: String,
    regex: OnceLock<Pattern>,
}

impl LazyRegex {
    fn new(pattern: String) -> Self {
        Self {
            pattern,
            regex: OnceLock::new(),
        }
    }

    pub fn get(&self) -> &Pattern {
        self.regex.get_or_init(|| compile_or_nothing(&self.pattern))
    }
}

/// The patterns are built from escaped words: only a list too long for the regex engine's
/// limits fails, and that list then finds nothing (logged) rather than stopping the bot.
pub(super) fn compile_or_nothing(pattern: &str) -> Pattern {
    Pattern::new(pattern).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a words file's pattern does not compile; it finds nothing");
        Pattern::new("[^\\s\\S]").expect("static regex")
    })
}

impl std::ops::Deref for Words {
    type Target = Lists;
    fn deref(&self) -> &Lists {
        &self.0
    }
}

impl std::fmt::Debug for Words {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Words({})", self.0.language)
    }
}

/// Two handles are equal when they read the same language's file as loaded once.
impl PartialEq for Words {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.language == other.0.language
    }
}

/// The default bundle's English: what a value built without a bundle reads with (tests,
/// vendors' events).
impl Default for Words {
    fn default() -> Self {
        Words::english().clone()
    }
}

impl Words {
    /// The default bundle's `words/en.toml`.
    pub fn english() -> &'static Words {
        static EN: LazyLock<Words> = LazyLock::new(|| {
            default_words("en")
                .and_then(Result::ok)
                .expect("the compiled-in words/en.toml loads (a unit test checks it)")
        });
        &EN
    }
}

/// The default bundle's words file of `language`, as compiled in, if it ships one.
pub fn default_words_bytes(language: &str) -> Option<&'static [u8]> {
    let rel = format!("words/{language}.toml");
    let (_, bytes) = super::embedded::FILES.iter().find(|(p, _)| *p == rel)?;
    Some(bytes)
}

/// The default bundle's words file of `language`, parsed, if it ships one.
pub fn default_words(language: &str) -> Option<Result<Words, BundleErrors>> {
    let rel = format!("words/{language}.toml");
    let bytes = default_words_bytes(language)?;
    let file = format!("{}/{rel}", super::embedded::ROOT);
    Some(match std::str::from_utf8(bytes) {
        Ok(text) => Words::parse(&file, language, text),
        Err(_) => Err(BundleError::new(file, None, "", "not UTF-8 text").into()),
    })
}

static SCHEMA: Schema = Schema::Keys(&[
    ("letters", &Schema::Keys(&[("spelled", &LEAF)])),
    (
        "answers",
        &Schema::Keys(&[
            ("yes", &LEAF),
            ("no", &LEAF),
            ("acknowledgements", &LEAF),
            ("ok", &LEAF),
            ("yes_openings", &LEAF),
            ("no_openings", &LEAF),
            ("after_one_word", &LEAF),
            ("negations", &LEAF),
        ]),
    ),
    (
        "requests",
        &Schema::Keys(&[("joins", &LEAF), ("goes_on", &LEAF)]),
    ),
    (
        "follow_ups",
        &Schema::Keys(&[("openings", &LEAF), ("other", &LEAF), ("pointing", &LEAF)]),
    ),
    (
        "ordinals",
        &Schema::Keys(&[
            ("first", &LEAF),
            ("second", &LEAF),
            ("third", &LEAF),
            ("fourth", &LEAF),
            ("fifth", &LEAF),
            ("last", &LEAF),
            ("newest", &LEAF),
            ("alone", &LEAF),
            ("time", &LEAF),
        ]),
    ),
    ("numbers", &Schema::Keys(&[("words", &LEAF)])),
    (
        "dates",
        &Schema::Keys(&[
            ("numeric", &LEAF),
            ("months", &LEAF),
            ("weekdays", &LEAF),
            ("day_endings", &LEAF),
            ("day_of", &LEAF),
            ("days_from_today", &LEAF),
            ("not_dates", &LEAF),
            ("days", &LEAF),
            ("weeks", &LEAF),
            ("ago", &LEAF),
            ("ahead", &LEAF),
            ("last_week", &LEAF),
            ("next_week", &LEAF),
            ("last_weekday", &LEAF),
            ("next_weekday", &LEAF),
            ("weekday", &LEAF),
        ]),
    ),
    (
        "products",
        &Schema::Keys(&[
            ("filler", &LEAF),
            ("question", &LEAF),
            ("asking", &LEAF),
            ("attributes", &LEAF),
            ("articles", &LEAF),
        ]),
    ),
    ("retrieval", &Schema::Keys(&[("stop", &LEAF)])),
    (
        "plurals",
        &Schema::Keys(&[
            ("endings", &LEAF),
            ("singular_endings", &LEAF),
            ("irregular", &LEAF),
        ]),
    ),
]);

pub(super) type List = Vec<String>;

#[derive(Deserialize, Default)]
struct RawLetters {
    #[serde(default)]
    spelled: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct RawAnswers {
    yes: List,
    no: List,
    acknowledgements: List,
    ok: List,
    yes_openings: List,
    no_openings: List,
    after_one_word: List,
    negations: List,
}

#[derive(Deserialize)]
struct RawRequests {
    joins: List,
    goes_on: List,
}

#[derive(Deserialize)]
struct RawFollowUps {
    openings: List,
    other: List,
    pointing: List,
}

#[derive(Deserialize)]
struct RawOrdinals {
    first: List,
    second: List,
    third: List,
    fourth: List,
    fifth: List,
    last: List,
    newest: List,
    #[serde(default)]
    alone: List,
    time: List,
}

#[derive(Deserialize)]
struct RawNumbers {
    words: Vec<List>,
}

#[derive(Deserialize)]
struct RawDates {
    numeric: Spanned<String>,
    months: Spanned<Vec<List>>,
    weekdays: Spanned<Vec<List>>,
    #[serde(default)]
    day_endings: List,
    #[serde(default)]
    day_of: List,
    days_from_today: BTreeMap<String, i64>,
    #[serde(default)]
    not_dates: List,
    days: List,
    weeks: List,
    ago: List,
    ahead: List,
    last_week: List,
    next_week: List,
    last_weekday: List,
    next_weekday: List,
    #[serde(default)]
    weekday: List,
}

#[derive(Deserialize)]
struct RawProducts {
    filler: List,
    question: List,
    asking: List,
    attributes: List,
    articles: List,
}

/// Optional: what the help-document search leaves out of a question besides articles and
/// filler ("how", "do", "where"), so a question's own words do not count against a passage.
#[derive(Deserialize, Default)]
struct RawRetrieval {
    #[serde(default)]
    stop: List,
}

#[derive(Deserialize)]
struct RawEnding {
    plural: String,
    singular: String,
    min: usize,
}

#[derive(Deserialize)]
struct RawPlurals {
    endings: Vec<RawEnding>,
    #[serde(default)]
    singular_endings: List,
    #[serde(default)]
    irregular: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct RawWords {
    #[serde(default)]
    letters: RawLetters,
    answers: RawAnswers,
    requests: RawRequests,
    follow_ups: RawFollowUps,
    ordinals: RawOrdinals,
    numbers: RawNumbers,
    dates: RawDates,
    products: RawProducts,
    #[serde(default)]
    retrieval: RawRetrieval,
    plurals: RawPlurals,
}

/// A letter's plain form ("é" → "e", "ß" → "ss"), for the words customers type without
/// accents. Lower case only: messages are read lower-cased.
fn plain_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => "o",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        'œ' => "oe",
        'æ' => "ae",
        'ß' => "ss",
        _ => return None,
    })
}

/// `text` without its accents: "mañana" → "manana", "für" → "fur".
pub fn without_accents(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match plain_letter(c) {
            Some(p) => out.push_str(p),
            None => out.push(c),
        }
    }
    out
}

/// Messages are read lower-cased, with typographic apostrophes as plain ones.
pub fn lower(text: &str) -> String {
    text.to_lowercase().replace('\u{2019}', "'")
}

/// Whether `lower` leaves `text` as it is (without making the copy when it is ASCII).
fn is_lower(text: &str) -> bool {
    if text.is_ascii() {
        !text.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        lower(text) == text
    }
}

/// Words of a message as the lists are looked up with: lower-cased runs of letters, digits
/// and apostrophes ("don't", "aujourd'hui", "für").
pub fn message_words(text: &str) -> Vec<String> {
    let lower = lower(text);
    word_spans(&lower)
        .map(|(s, e)| lower[s..e].to_string())
        .collect()
}

/// The byte spans of the words of `text` (letters, digits and apostrophes, any script).
pub fn word_spans(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '\u{2019}';
    let mut start: Option<usize> = None;
    text.char_indices()
        .chain(std::iter::once((text.len(), ' ')))
        .filter_map(move |(i, c)| match (is_word(c), start) {
            (true, None) => {
                start = Some(i);
                None
            }
            (false, Some(s)) => {
                start = None;
                Some((s, i))
            }
            _ => None,
        })
}

impl Words {
    /// Parses and checks a words file; `file` names it in the errors.
    pub fn parse(file: &str, language: &str, text: &str) -> Result<Words, BundleErrors> {
        let mut errs = BundleErrors::default();
        let raw = toml_file::parse::<RawWords>(file, text, &SCHEMA, &mut errs);
        let Some(raw) = raw else {
            return Err(errs);
        };
        let words = compile(file, language, text, raw, &mut errs);
        errs.into_result(words)
    }

    /// The language these words are of.
    pub fn language(&self) -> &str {
        &self.0.language
    }

    /// "lamps" → "lamp", "mice" → "mouse", by the language's plural endings.
    pub fn singular(&self, w: &str) -> String {
        if let Some(one) = self.0.irregular.get(w) {
            return one.clone();
        }
        if self
            .0
            .singular_endings
            .iter()
            .any(|e| w.ends_with(e.as_str()))
        {
            return w.to_string();
        }
        let n = w.chars().count();
        for (plural, singular, min) in &self.0.plural_endings {
            if n >= *min && w.ends_with(plural.as_str()) {
                return format!("{}{singular}", &w[..w.len() - plural.len()]);
            }
        }
        w.to_string()
    }

    /// The number a word says ("two", "dos", "3"), for "3 days ago".
    pub fn number(&self, s: &str) -> Option<i64> {
        let s = lower(s);
        self.0.numbers.get(&s).copied().or_else(|| s.parse().ok())
    }

    /// The month (1-12) a matched name means: the first whose name begins it.
    pub fn month(&self, s: &str) -> Option<u8> {
        let s = without_accents(&lower(s));
        self.0
            .months
            .iter()
            .position(|forms| forms.iter().any(|f| s.starts_with(f.as_str())))
            .map(|i| i as u8 + 1)
    }
}

/// The letters that may finish a month's name after the form listed ("nov" → "november"):
/// Latin ones when the names are written in Latin letters, which compiles in half the time of
/// every letter (`\p{L}`, kept for names in other scripts).
fn month_rest(months: &[Vec<String>]) -> &'static str {
    let latin = |c: char| {
        c.is_ascii_alphabetic()
            || ('\u{C0}'..='\u{24F}').contains(&c)
            || ('\u{1E00}'..='\u{1EFF}').contains(&c)
    };
    if months
        .iter()
        .flatten()
        .flat_map(|m| m.chars())
        .all(|c| latin(c) || !c.is_alphabetic())
    {
        r"\p{Latin}"
    } else {
        r"\p{L}"
    }
}

/// Every form a listed phrase may be typed in: as written, without accents, and with the
/// language's other spellings (then without the accents left).
pub(super) fn forms(phrase: &str, spelled: &[(String, String)]) -> Vec<String> {
    // Most phrases are ASCII that no respelling touches: the phrase is its only form (no
    // typographic apostrophe, no accents, and a pair that matches nothing leaves it as it is).
    if phrase.is_ascii()
        && !spelled
            .iter()
            .any(|(from, _)| phrase.contains(from.as_str()))
    {
        return vec![phrase.to_string()];
    }
    let phrase = phrase.replace('\u{2019}', "'");
    let mut out = vec![phrase.clone()];
    let mut respelled = phrase.clone();
    for (from, to) in spelled {
        respelled = respelled.replace(from.as_str(), to);
    }
    for f in [without_accents(&phrase), without_accents(&respelled)] {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errs: &'a mut BundleErrors,
}

impl Checker<'_> {
    fn err(&mut self, key: &str, message: impl Into<String>) {
        self.errs.push(BundleError::new(
            self.file,
            line_of_key(self.text, key),
            key,
            message,
        ));
    }

    /// The list's phrases, each checked: written in lower case, words one space apart.
    fn check(&mut self, key: &str, list: &[String], required: bool) {
        if required && list.is_empty() {
            self.err(key, "empty: the bot needs at least one");
        }
        for p in list {
            if p.trim().is_empty() {
                self.err(key, "an empty phrase");
            } else if !is_lower(p) {
                self.err(
                    key,
                    format!("{p:?}: write it in lower case (messages are read so)"),
                );
            } else if p.trim() != p || p.contains("  ") {
                self.err(key, format!("{p:?}: words one space apart, none around"));
            }
        }
    }
}

fn compile(
    file: &str,
    language: &str,
    text: &str,
    raw: RawWords,
    errs: &mut BundleErrors,
) -> Words {
    let mut ck = Checker { file, text, errs };
    let spelled = raw.letters.spelled;
    for (from, to) in &spelled {
        if from.is_empty() || to.is_empty() {
            ck.err(
                "letters.spelled",
                "a pair of two letters (or letter groups)",
            );
        }
    }
    let set = |ck: &mut Checker, key: &str, list: &[String], required: bool| -> Set {
        ck.check(key, list, required);
        list.iter().flat_map(|p| forms(p, &spelled)).collect()
    };
    let phrases = |ck: &mut Checker, key: &str, list: &[String]| -> Vec<Vec<String>> {
        ck.check(key, list, true);
        list.iter()
            .flat_map(|p| forms(p, &spelled))
            .map(|f| f.split(' ').map(str::to_string).collect())
            .collect()
    };
    let a = &raw.answers;
    let yes = set(&mut ck, "answers.yes", &a.yes, true);
    let no = set(&mut ck, "answers.no", &a.no, true);
    let acknowledgements = set(
        &mut ck,
        "answers.acknowledgements",
        &a.acknowledgements,
        false,
    );
    let ok = set(&mut ck, "answers.ok", &a.ok, false);
    let yes_openings = phrases(&mut ck, "answers.yes_openings", &a.yes_openings);
    let no_openings = phrases(&mut ck, "answers.no_openings", &a.no_openings);
    let after_one_word = set(&mut ck, "answers.after_one_word", &a.after_one_word, false);
    let negations = set(&mut ck, "answers.negations", &a.negations, false);

    ck.check("requests.joins", &raw.requests.joins, false);
    let join_words = alternation(&raw.requests.joins, &spelled);
    let joins = if join_words.is_empty() {
        r"[.?!;]+\s+|,\s+".to_string()
    } else {
        format!(r"(?i)[.?!;]+\s+|,?\s+(?:{join_words})\s+|,\s+")
    };
    let goes_on = set(&mut ck, "requests.goes_on", &raw.requests.goes_on, false);

    let f = &raw.follow_ups;
    let follow_up_openings = phrases(&mut ck, "follow_ups.openings", &f.openings);
    let mut follow_up_words: Vec<String> = Vec::new();
    for w in follow_up_openings.iter().flatten() {
        if !follow_up_words.contains(w) {
            follow_up_words.push(w.clone());
        }
    }
    let other = set(&mut ck, "follow_ups.other", &f.other, true);
    let pointing = set(&mut ck, "follow_ups.pointing", &f.pointing, false);

    let o = &raw.ordinals;
    let mut ordinals = HashMap::new();
    for (key, list, idx) in [
        ("first", &o.first, 0),
        ("second", &o.second, 1),
        ("third", &o.third, 2),
        ("fourth", &o.fourth, 3),
        ("fifth", &o.fifth, 4),
        ("last", &o.last, LAST),
        ("newest", &o.newest, NEWEST),
    ] {
        let key = format!("ordinals.{key}");
        ck.check(&key, list, true);
        for w in list {
            if w.contains(' ') {
                ck.err(&key, format!("{w:?}: one word each"));
            }
            for form in forms(w, &spelled) {
                ordinals.entry(form).or_insert(idx);
            }
        }
    }
    let alone = set(&mut ck, "ordinals.alone", &o.alone, false);
    let time = set(&mut ck, "ordinals.time", &o.time, false);

    let mut numbers = HashMap::new();
    for (i, list) in raw.numbers.words.iter().enumerate() {
        ck.check("numbers.words", list, true);
        for form in list.iter().flat_map(|w| forms(w, &spelled)) {
            numbers.entry(form).or_insert(i as i64 + 1);
        }
    }

    let d = &raw.dates;
    let day_first = match d.numeric.get_ref().as_str() {
        "month/day" => false,
        "day/month" => true,
        other => {
            ck.errs.push(BundleError::new(
                file,
                Some(line_of(text, d.numeric.span().start)),
                "dates.numeric",
                format!("{other:?}: \"month/day\" or \"day/month\""),
            ));
            false
        }
    };
    let mut names_of = |key: &str, lists: &Spanned<Vec<List>>, count: usize| {
        if lists.get_ref().len() != count {
            ck.errs.push(BundleError::new(
                file,
                Some(line_of(text, lists.span().start)),
                key,
                format!("{count} lists of names, one for each in order"),
            ));
        }
        lists
            .get_ref()
            .iter()
            .map(|names| {
                ck.check(key, names, true);
                names
                    .iter()
                    .flat_map(|n| forms(n, &spelled))
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    let months = names_of("dates.months", &d.months, 12);
    let weekdays = Arc::new(names_of("dates.weekdays", &d.weekdays, 7));
    ck.check("dates.day_endings", &d.day_endings, false);
    ck.check("dates.day_of", &d.day_of, false);
    let month_names = alternation(months.iter().flatten(), &[]);
    let endings = alternation(&d.day_endings, &spelled);
    let endings = if endings.is_empty() {
        String::new()
    } else {
        format!("(?:{endings})?")
    };
    let of = alternation(&d.day_of, &spelled);
    let of = if of.is_empty() {
        String::new()
    } else {
        format!(r"(?:(?:{of})\s+)?")
    };
    // "Nov 20", "the 3rd of December, 2025", "20 de noviembre de 2025", "20. November".
    let month_start = boundary(months.iter().flatten().map(|m| m.chars().next()));
    let rest = month_rest(&months);
    let named_date = format!(
        r"(?i)(?:(?-u:\b)(?P<d1>[0-9]{{1,2}}){endings}\.?\s+{of}(?P<m1>(?:{month_names}){rest}*)\.?|{month_start}(?P<m2>(?:{month_names}){rest}*)\.?\s+(?P<d2>[0-9]{{1,2}}){endings})(?:,?\s+{of}(?P<y>[0-9]{{4}}))?(?-u:\b)"
    );

    for (key, list) in [("dates.days", &d.days), ("dates.weeks", &d.weeks)] {
        ck.check(key, list, true);
    }
    let mut alternatives: Vec<(String, DateKind)> = Vec::new();
    let mut day_words: Vec<(&String, &i64)> = d.days_from_today.iter().collect();
    day_words.sort_by_key(|(w, _)| std::cmp::Reverse(w.len()));
    for (w, n) in day_words {
        ck.check("dates.days_from_today", std::slice::from_ref(w), true);
        alternatives.push((w.clone(), DateKind::Days(*n)));
    }
    let templated: [(&str, &List, DateKind, &[&str]); 7] = [
        ("dates.ago", &d.ago, DateKind::Ago, &["n", "unit"]),
        ("dates.ahead", &d.ahead, DateKind::Ahead, &["n", "unit"]),
        ("dates.last_week", &d.last_week, DateKind::Week(-1), &[]),
        ("dates.next_week", &d.next_week, DateKind::Week(1), &[]),
        (
            "dates.last_weekday",
            &d.last_weekday,
            DateKind::LastWeekday,
            &["weekday"],
        ),
        (
            "dates.next_weekday",
            &d.next_weekday,
            DateKind::NextWeekday,
            &["weekday"],
        ),
        ("dates.weekday", &d.weekday, DateKind::Weekday, &["weekday"]),
    ];
    let mut ordered: Vec<(String, DateKind)> = Vec::new();
    for (key, list, kind, needs) in templated {
        ck.check(key, list, false);
        for t in list {
            let used = placeholders(t);
            for p in &used {
                if !["n", "unit", "weekday"].contains(&p.as_str()) {
                    ck.err(
                        key,
                        format!("{t:?}: no {{{p}}} (known: {{n}}, {{unit}}, {{weekday}})"),
                    );
                }
            }
            for need in needs {
                if !used.iter().any(|u| u == need) {
                    ck.err(key, format!("{t:?}: must have {{{need}}}"));
                }
            }
            ordered.push((t.clone(), kind));
        }
    }
    // Patterns with a placeholder first, a weekday alone last: "el martes pasado" is the
    // last Tuesday before "el martes" could be.
    ordered.sort_by_key(|(_, k)| matches!(k, DateKind::Weekday));
    alternatives.splice(0..0, ordered);
    ck.check("dates.not_dates", &d.not_dates, false);
    for p in d.not_dates.iter().filter(|p| p.contains(['{', '}'])) {
        ck.err(
            "dates.not_dates",
            format!("{p:?}: a phrase as written, no {{placeholders}}"),
        );
    }
    // First: at the word where one starts, it wins over any date starting there too.
    let no_day = d.not_dates.iter().map(|p| (p.clone(), DateKind::NoDay));
    alternatives.splice(0..0, no_day);
    let relative = RelativeSource {
        templates: alternatives,
        spelled: spelled.clone(),
        numbers: raw.numbers.words.clone(),
        days: d.days.clone(),
        weeks: d.weeks.clone(),
    };

    let p = &raw.products;
    let filler = set(&mut ck, "products.filler", &p.filler, false);
    let question = set(&mut ck, "products.question", &p.question, false);
    let asking = set(&mut ck, "products.asking", &p.asking, false);
    let attributes = set(&mut ck, "products.attributes", &p.attributes, false);
    let articles = set(&mut ck, "products.articles", &p.articles, false);
    let retrieval_stop = set(&mut ck, "retrieval.stop", &raw.retrieval.stop, false);

    let pl = &raw.plurals;
    let mut plural_endings = Vec::new();
    for e in &pl.endings {
        if e.plural.is_empty() || e.min == 0 {
            ck.err(
                "plurals.endings",
                "each with a `plural` ending and a `min` of 1 or more",
            );
        }
        plural_endings.push((e.plural.clone(), e.singular.clone(), e.min));
    }
    ck.check("plurals.singular_endings", &pl.singular_endings, false);
    let irregular: HashMap<String, String> = pl
        .irregular
        .iter()
        .flat_map(|(many, one)| {
            forms(many, &spelled)
                .into_iter()
                .map(move |m| (m, without_accents(one)))
        })
        .collect();

    Words(Arc::new(Lists {
        language: language.to_string(),
        yes,
        no,
        acknowledgements,
        ok,
        yes_openings,
        no_openings,
        after_one_word,
        negations,
        joins: LazyRegex::new(joins),
        goes_on,
        follow_up_openings,
        follow_up_words,
        other,
        pointing,
        ordinals,
        alone,
        time,
        numbers,
        day_first,
        months,
        named_date: LazyRegex::new(named_date),
        relative: Relative::new(relative, weekdays),
        filler,
        question,
        asking,
        attributes,
        articles,
        retrieval_stop,
        plural_endings,
        singular_endings: pl.singular_endings.clone(),
        irregular,
    }))
}

/// The phrases as one regex alternation, in all their forms, longest first (so "and also"
/// is tried before "and"), spaces matching any run of spaces.
pub(super) fn alternation<'a>(
    phrases: impl IntoIterator<Item = &'a String>,
    spelled: &[(String, String)],
) -> String {
    let mut all: Vec<String> = phrases
        .into_iter()
        .flat_map(|p| forms(p, spelled))
        .collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.len()));
    all.dedup();
    all.iter().map(|p| literal(p)).collect::<Vec<_>>().join("|")
}

/// A word boundary the regex's fast engines can check: ASCII `\b` where every edge is an
/// ASCII letter or digit, none where some is another letter ("übermorgen"), which an ASCII
/// `\b` never borders. A Unicode `\b` would check both, but sends every message with an accent
/// to the slow engine (debug build, a Spanish message's entities: 414 µs with it, English's
/// 72 µs).
pub(super) fn boundary(edges: impl IntoIterator<Item = Option<char>>) -> &'static str {
    if edges
        .into_iter()
        .all(|c| c.is_some_and(|c| c.is_ascii_alphanumeric()))
    {
        r"(?-u:\b)"
    } else {
        ""
    }
}

pub(super) fn literal(text: &str) -> String {
    regex::escape(text).replace(' ', r"\s+")
}

pub(super) enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

pub(super) fn split_template(t: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        if open > 0 {
            out.push(Piece::Text(&rest[..open]));
        }
        out.push(Piece::Var(&rest[open + 1..open + close]));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

fn placeholders(t: &str) -> Vec<String> {
    split_template(t)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var(v) => Some(v.to_string()),
            Piece::Text(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bundles_words_load() {
        for lang in ["en", "es", "fr", "de"] {
            let w = default_words(lang)
                .unwrap_or_else(|| panic!("words/{lang}.toml"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(w.language(), lang);
            // Their patterns compile (built on first use otherwise).
            for r in [&w.joins, &w.named_date] {
                assert_ne!(r.get().as_str(), "[^\\s\\S]", "{lang}");
            }
            let (relative, alternatives) = w.relative.get();
            assert_ne!(relative.as_str(), "[^\\s\\S]", "{lang}");
            assert!(alternatives.len() >= 9, "{lang}");
        }
        assert!(default_words("xx").is_none());
    }

    #[test]
    fn a_month_name_ends_in_the_letters_of_its_script() {
        let names = |list: &[&str]| vec![list.iter().map(|n| n.to_string()).collect()];
        assert_eq!(month_rest(&names(&["janv", "févr", "mär"])), r"\p{Latin}");
        assert_eq!(month_rest(&names(&["ιαν", "φεβ"])), r"\p{L}");
        let rest = regex::Regex::new(&format!("^févr{}*$", month_rest(&names(&["févr"])))).unwrap();
        assert!(rest.is_match("février") && rest.is_match("févrièrß"));
        assert!(!rest.is_match("févrιer"));
    }

    #[test]
    fn a_phrase_that_names_no_day_has_no_placeholder() {
        let text = include_str!("../../../config/bot/words/de.toml").replace(
            "not_dates = [\"guten morgen\"]",
            "not_dates = [\"guten {n}\"]",
        );
        let e = Words::parse("w/de.toml", "de", &text)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dates.not_dates: \"guten {n}\": a phrase as written"),
            "{e}"
        );
    }

    #[test]
    fn words_are_also_read_without_accents_and_as_spelled() {
        assert_eq!(forms("sí", &[]), ["sí", "si"]);
        let de = [("ü".to_string(), "ue".to_string())];
        assert_eq!(forms("für", &de), ["für", "fur", "fuer"]);
        assert_eq!(without_accents("aujourd'hui à noël"), "aujourd'hui a noel");
        assert_eq!(
            message_words("¿Dónde está? L’autre, für 2"),
            ["dónde", "está", "l'autre", "für", "2"]
        );
    }

    #[test]
    fn problems_are_named_with_line_and_key() {
        let text = include_str!("../../../config/bot/words/en.toml")
            .replace("numeric = \"month/day\"", "numeric = \"month-day\"")
            .replace("ago = [\"{n} {unit} ago\"]", "ago = [\"{n} {units} ago\"]")
            .replace("yes = [\n    \"yes\"", "yes = [\n    \"YES\"")
            .replace("\n[letters]\n", "\n[letters]\nextra = 1\n");
        let e = Words::parse("w/en.toml", "en", &text)
            .unwrap_err()
            .to_string();
        for x in [
            "w/en.toml:11: letters.extra: unknown key",
            ": dates.numeric: \"month-day\": \"month/day\" or \"day/month\"",
            ": dates.ago: \"{n} {units} ago\": no {units}",
            ": dates.ago: \"{n} {units} ago\": must have {unit}",
            ": answers.yes: \"YES\": write it in lower case",
        ] {
            assert!(e.contains(x), "{x:?} not in:\n{e}");
        }
        let missing = Words::parse("w/en.toml", "en", "[answers]\nyes = []\n")
            .unwrap_err()
            .to_string();
        assert!(missing.starts_with("w/en.toml"), "{missing}");
    }

    #[test]
    fn plural_endings_and_irregular_plurals() {
        let en = Words::default();
        for (many, one) in [
            ("lamps", "lamp"),
            ("boxes", "box"),
            ("batteries", "battery"),
            ("glass", "glass"),
            ("status", "status"),
            ("bus", "bus"),
            ("mice", "mouse"),
            ("shelves", "shelf"),
        ] {
            assert_eq!(en.singular(many), one, "{many}");
        }
    }
}
