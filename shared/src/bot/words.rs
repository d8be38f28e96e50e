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
fn compile_or_nothing(pattern: &str) -> Pattern {
    Pattern::new(pattern).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a words file's pattern does not compile; it finds nothing");
        Pattern::new("[^\\s\\S]").expect("static regex")
    })
}

/// Relative dates: one regex of every pattern, and what each alternative means (built on
/// first use, as `LazyRegex`).
pub struct Relative {
    source: RelativeSource,
    weekdays: Arc<Vec<Vec<String>>>,
    compiled: OnceLock<(Pattern, Vec<Alternative>)>,
}

impl Relative {
    pub fn get(&self) -> (&Pattern, &[Alternative]) {
        let (regex, alternatives) = self.compiled.get_or_init(|| {
            let (pattern, metas) = self.source.pattern(&self.weekdays);
            let regex = compile_or_nothing(&pattern);
            let group = |name: String| regex.group_index(&name);
            let alternatives = metas
                .iter()
                .filter_map(|&(i, kind, slots)| {
                    Some(Alternative {
                        group: group(format!("a{i}"))?,
                        kind,
                        n: slots.n.and_then(|j| group(format!("n{j}"))),
                        days: slots.unit.and_then(|j| group(format!("d{j}"))),
                        weeks: slots.unit.and_then(|j| group(format!("w{j}"))),
                        weekday: slots.weekday.and_then(|j| group(format!("wd{j}"))),
                        weekdays: slots.weekday.map(|_| self.weekdays.clone()),
                    })
                })
                .collect();
            (regex, alternatives)
        });
        (regex, alternatives)
    }
}

/// What the relative-date pattern is built from: the templates in the order they are tried and
/// the placeholders' words. Its text is built on first use too, with compiling it: loading a
/// bundle parses every language's words on the cold start's path, and building the text (the
/// shared parts worked out, es ~50 µs) is work for the warm-up thread.
struct RelativeSource {
    templates: Vec<(String, DateKind)>,
    spelled: Vec<(String, String)>,
    numbers: Vec<List>,
    days: List,
    weeks: List,
}

impl RelativeSource {
    fn pattern(&self, weekdays: &[Vec<String>]) -> (String, Vec<(usize, DateKind, Slots)>) {
        let placeholders = Placeholders::new(
            &self.numbers,
            &self.days,
            &self.weeks,
            weekdays,
            &self.spelled,
        );
        let mut items: Vec<Item> = Vec::new();
        for (template, kind) in &self.templates {
            let more = template_items(template, *kind, &self.spelled, items.len());
            items.extend(more);
        }
        let (pattern, metas) = relative_pattern(&items, &placeholders);
        // No pattern at all: a regex that finds nothing (an empty one would match everywhere).
        if pattern.is_empty() {
            ("[^\\s\\S]".to_string(), metas)
        } else {
            (format!(r"(?i)(?:{pattern})"), metas)
        }
    }
}

pub struct Alternative {
    /// A capture group that takes part in a match only when this alternative is the one found
    /// (its words that it shares with no neighbour: the pattern writes the placeholders and
    /// words neighbouring alternatives have in common once).
    pub group: usize,
    pub kind: DateKind,
    /// The groups of its number, day unit, week unit and weekday, when it has them (perhaps
    /// shared with its neighbours).
    pub n: Option<usize>,
    pub days: Option<usize>,
    pub weeks: Option<usize>,
    pub weekday: Option<usize>,
    /// Each weekday's forms, to tell which one matched (Monday first).
    pub weekdays: Option<Arc<Vec<Vec<String>>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateKind {
    /// A day named by a word, this many days from today.
    Days(i64),
    Ago,
    Ahead,
    /// Seven days back (-1) or ahead (1).
    Week(i64),
    LastWeekday,
    NextWeekday,
    /// A weekday alone: the last one before today.
    Weekday,
    /// A phrase holding a day's word that names no day ("guten Morgen", "por la mañana"): it
    /// is matched so that the word in it is not read as a date.
    NoDay,
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

/// The default bundle's words file of `language`, parsed, if it ships one.
pub fn default_words(language: &str) -> Option<Result<Words, BundleErrors>> {
    let rel = format!("words/{language}.toml");
    let (_, bytes) = super::embedded::FILES.iter().find(|(p, _)| *p == rel)?;
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
    (
        "plurals",
        &Schema::Keys(&[
            ("endings", &LEAF),
            ("singular_endings", &LEAF),
            ("irregular", &LEAF),
        ]),
    ),
]);

type List = Vec<String>;

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
fn forms(phrase: &str, spelled: &[(String, String)]) -> Vec<String> {
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
        relative: Relative {
            source: relative,
            weekdays,
            compiled: OnceLock::new(),
        },
        filler,
        question,
        asking,
        attributes,
        articles,
        plural_endings,
        singular_endings: pl.singular_endings.clone(),
        irregular,
    }))
}

/// The phrases as one regex alternation, in all their forms, longest first (so "and also"
/// is tried before "and"), spaces matching any run of spaces.
fn alternation<'a>(
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
fn boundary(edges: impl IntoIterator<Item = Option<char>>) -> &'static str {
    if edges
        .into_iter()
        .all(|c| c.is_some_and(|c| c.is_ascii_alphanumeric()))
    {
        r"(?-u:\b)"
    } else {
        ""
    }
}

fn literal(text: &str) -> String {
    regex::escape(text).replace(' ', r"\s+")
}

/// Which numbered groups an alternative's placeholders are read from (`n{j}`, `d{j}`/`w{j}`,
/// `wd{j}`): its own, or those of the neighbours it shares them with.
#[derive(Clone, Copy, Default)]
struct Slots {
    n: Option<usize>,
    unit: Option<usize>,
    weekday: Option<usize>,
}

/// A relative-date template cut for the pattern: its words, each with the forms customers type
/// it in, the spaces between them and its placeholders.
#[derive(Clone, PartialEq)]
enum Token {
    Word(Vec<String>),
    Space,
    Var(String),
}

/// One alternative of the relative-date pattern: a template, or one form of a template whose
/// forms differ in more than one word (mixing those words' forms would find phrases the words
/// file does not list).
struct Item {
    id: usize,
    kind: DateKind,
    tokens: Vec<Token>,
}

impl Item {
    fn has_no_placeholder(&self) -> bool {
        !self.tokens.iter().any(|t| matches!(t, Token::Var(_)))
    }
}

/// What the placeholders stand for: their patterns, and the words they match (for their word
/// boundaries, and to tell whether they match one way).
struct Placeholders {
    numbers: String,
    days: String,
    weeks: String,
    weekdays: String,
    number_forms: Vec<String>,
    unit_forms: Vec<String>,
    weekday_forms: Vec<String>,
    /// Whether the number, the unit and the weekday match at most one way where they start,
    /// when a space must follow and when not (see `one_way`).
    one_way: [(bool, bool); 3],
}

impl Placeholders {
    fn new(
        numbers: &[List],
        days: &[String],
        weeks: &[String],
        weekdays: &[Vec<String>],
        spelled: &[(String, String)],
    ) -> Self {
        let all_forms = |list: &[String]| -> Vec<String> {
            list.iter().flat_map(|w| forms(w, spelled)).collect()
        };
        let number_forms = all_forms(&numbers.concat());
        let (day_forms, week_forms) = (all_forms(days), all_forms(weeks));
        let weekday_forms: Vec<String> = weekdays.iter().flatten().cloned().collect();
        let folded_days: HashSet<String> = day_forms.iter().map(|w| fold(w)).collect();
        let units_apart = !week_forms.iter().any(|w| folded_days.contains(&fold(w)));
        let unit_forms = [day_forms, week_forms].concat();
        let one_way = [
            (no_spaces(&number_forms), false),
            (
                units_apart && no_spaces(&unit_forms),
                units_apart && prefix_free(&unit_forms),
            ),
            (no_spaces(&weekday_forms), prefix_free(&weekday_forms)),
        ];
        Self {
            numbers: alternation(numbers.iter().flatten(), spelled),
            days: alternation(days, spelled),
            weeks: alternation(weeks, spelled),
            weekdays: alternation(weekdays.iter().flatten(), &[]),
            number_forms,
            unit_forms,
            weekday_forms,
            one_way,
        }
    }

    fn pattern(&self, name: &str, j: usize) -> String {
        let Placeholders {
            numbers,
            days,
            weeks,
            weekdays,
            ..
        } = self;
        match name {
            "n" => format!(r"(?P<n{j}>[0-9]{{1,3}}|{numbers})"),
            "unit" => format!(r"(?:(?P<d{j}>{days})|(?P<w{j}>{weeks}))"),
            "weekday" => format!(r"(?P<wd{j}>{weekdays})"),
            _ => String::new(),
        }
    }

    fn edge(&self, name: &str, first: bool) -> &'static str {
        let ends = |forms: &[String]| forms.iter().map(|w| end_char(w, first)).collect();
        let ends: Vec<Option<char>> = match name {
            "n" => [ends(&self.number_forms), vec![Some('0')]].concat(),
            "unit" => ends(&self.unit_forms),
            "weekday" => ends(&self.weekday_forms),
            _ => return "",
        };
        boundary(ends)
    }

    /// Whether the placeholder matches at most one way where it starts, so that alternatives
    /// beginning with it can share it without changing which one wins. A number's digits and a
    /// unit's "day" beside "days" match more than one way unless a space must follow; a word
    /// listed as both a day and a week unit always does (its two groups).
    fn one_way(&self, name: &str, space_follows: bool) -> bool {
        let (spaced, alone) = match name {
            "n" => self.one_way[0],
            "unit" => self.one_way[1],
            "weekday" => self.one_way[2],
            _ => return false,
        };
        alone || (space_follows && spaced)
    }
}

fn end_char(word: &str, first: bool) -> Option<char> {
    if first {
        word.chars().next()
    } else {
        word.chars().last()
    }
}

/// Letters as case-insensitive matching compares them ("ſ" as "s"); where it errs, it finds two
/// words alike that are not, which only keeps them apart in the pattern.
fn fold(word: &str) -> String {
    word.to_uppercase().to_lowercase()
}

/// Words without spaces, which all end where a space starts.
fn no_spaces(forms: &[String]) -> bool {
    !forms.iter().any(|w| w.contains(char::is_whitespace))
}

/// Whether none of the words begins another, so that at most one matches where it starts.
fn prefix_free(forms: &[String]) -> bool {
    let folded: Vec<String> = forms.iter().map(|w| fold(w)).collect();
    folded
        .iter()
        .all(|a| !a.is_empty() && !folded.iter().any(|b| b != a && b.starts_with(a.as_str())))
}

/// The template as tokens, each word with `word_forms` of it.
fn tokenize(template: &str, word_forms: impl Fn(&str) -> Vec<String>) -> Vec<Token> {
    let mut out = Vec::new();
    for piece in split_template(template) {
        match piece {
            Piece::Var(v) => out.push(Token::Var(v.to_string())),
            Piece::Text(t) => {
                for (k, word) in t.split(' ').enumerate() {
                    if k > 0 {
                        out.push(Token::Space);
                    }
                    if !word.is_empty() {
                        out.push(Token::Word(word_forms(word)));
                    }
                }
            }
        }
    }
    out
}

/// The phrases tokens stand for, in the order of their forms, when at most one of their words
/// has more than one form (the forms of two such words would be mixed).
fn spelled_out(tokens: &[Token]) -> Option<Vec<String>> {
    let counts: Vec<usize> = tokens
        .iter()
        .filter_map(|t| match t {
            Token::Word(f) if f.len() > 1 => Some(f.len()),
            _ => None,
        })
        .collect();
    if counts.len() > 1 {
        return None;
    }
    let phrase = |form: usize| -> String {
        tokens
            .iter()
            .map(|t| match t {
                Token::Word(f) => f[form.min(f.len() - 1)].clone(),
                Token::Space => " ".to_string(),
                Token::Var(v) => format!("{{{v}}}"),
            })
            .collect()
    };
    Some(
        (0..counts.first().copied().unwrap_or(1))
            .map(phrase)
            .collect(),
    )
}

/// A template's alternatives: one whose varying word is written in all its forms at once, or,
/// when that would not be the forms `forms` makes of it, one per form as written.
fn template_items(
    template: &str,
    kind: DateKind,
    spelled: &[(String, String)],
    first_id: usize,
) -> Vec<Item> {
    let all = forms(template, spelled);
    let tokens = tokenize(template, |w| forms(w, spelled));
    if spelled_out(&tokens).as_ref() == Some(&all) {
        return vec![Item {
            id: first_id,
            kind,
            tokens,
        }];
    }
    all.iter()
        .enumerate()
        .map(|(k, form)| Item {
            id: first_id + k,
            kind,
            tokens: tokenize(form, |w| vec![w.to_string()]),
        })
        .collect()
}

/// The relative-date alternatives as one pattern (in their order, so which one wins where
/// several match stays as listed) and where each one's groups are. Neighbours that have a
/// placeholder in common share it, with what surrounds it, and neighbours without one share
/// their common words: compiling costs about the pattern's length, and the copies of the
/// number, unit and weekday alternations in every alternative (and in every form of it) were
/// most of it (Spanish, first compile: 2,516 characters, 1.8 ms; shared, 1,294 and 1.0 ms).
fn relative_pattern(
    items: &[Item],
    placeholders: &Placeholders,
) -> (String, Vec<(usize, DateKind, Slots)>) {
    let mut branches = Vec::new();
    let mut metas = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        let mut ends = (0, 0);
        while end < items.len() {
            let (p, s) = shared(&items[start..=end], placeholders);
            let tokens = &items[start].tokens;
            let mut both = tokens[..p].iter().chain(&tokens[tokens.len() - s..]);
            // Alternatives with a placeholder share one (its copies are what costs, and sharing
            // only words could keep a run from sharing it); those without share their words.
            let worth = if items[start..=end].iter().all(Item::has_no_placeholder) {
                both.any(|t| t != &Token::Space)
            } else {
                both.any(|t| matches!(t, Token::Var(_)))
            };
            if !worth {
                break;
            }
            ends = (p, s);
            end += 1;
        }
        let run = &items[start..end];
        branches.push(render_run(run, ends, placeholders));
        metas.extend(run_slots(run, ends));
        start = end;
    }
    (branches.join("|"), metas)
}

/// How many tokens a run of alternatives can write once at its start and at its end. The
/// start only while it matches one way (`(a)(b|c)` tries b and c after a's first way, `ab|ac`
/// tries c after every way of a); the end always (`(a|b)c` is `ac|bc`).
fn shared(run: &[Item], placeholders: &Placeholders) -> (usize, usize) {
    let first = &run[0].tokens;
    let shortest = run.iter().map(|i| i.tokens.len()).min().unwrap_or(0);
    let same = |at: &dyn Fn(&[Token]) -> &Token| run.iter().all(|i| at(&i.tokens) == at(first));
    let mut p = 0;
    while p < shortest && same(&|t| &t[p]) {
        let space_follows = run
            .iter()
            .all(|i| i.tokens.get(p + 1) == Some(&Token::Space));
        if !one_way(&first[p], placeholders, space_follows) {
            break;
        }
        p += 1;
    }
    let mut s = 0;
    while p + s < shortest && same(&|t| &t[t.len() - 1 - s]) {
        s += 1;
    }
    // An alternative that is all shared takes its word boundary from a shared token, which must
    // then be the same in all its forms.
    let bare = run.iter().any(|i| i.tokens.len() == p + s);
    let edge_ok = match (p, s) {
        (0, 0) => true,
        (_, 0) => uniform_edge(&first[p - 1], false, placeholders).is_some(),
        (0, _) => uniform_edge(&first[first.len() - s], true, placeholders).is_some(),
        _ => true,
    };
    if bare && !edge_ok {
        return (0, 0);
    }
    (p, s)
}

fn one_way(token: &Token, placeholders: &Placeholders, space_follows: bool) -> bool {
    match token {
        Token::Space => true,
        Token::Word(forms) => {
            (space_follows && no_spaces(forms)) || forms.len() == 1 || prefix_free(forms)
        }
        Token::Var(name) => placeholders.one_way(name, space_follows),
    }
}

/// The word boundary at a token's start (`first`) or end, when all its forms have the same.
fn uniform_edge(token: &Token, first: bool, placeholders: &Placeholders) -> Option<&'static str> {
    match token {
        Token::Space => Some(""),
        Token::Var(name) => Some(placeholders.edge(name, first)),
        Token::Word(forms) => {
            let edges: Vec<&str> = forms
                .iter()
                .map(|w| boundary([end_char(w, first)]))
                .collect();
            edges.iter().all(|e| *e == edges[0]).then_some(edges[0])
        }
    }
}

/// A run of alternatives: what they share written once around an alternation of the rest of
/// each, in its own group.
fn render_run(run: &[Item], (p, s): (usize, usize), placeholders: &Placeholders) -> String {
    let first = &run[0].tokens;
    let j = run[0].id;
    let head = render_tokens(&first[..p], placeholders, j, true, false);
    let tail = render_tokens(&first[first.len() - s..], placeholders, j, false, true);
    let own: Vec<String> = run
        .iter()
        .map(|item| {
            let rest = &item.tokens[p..item.tokens.len() - s];
            let mut body = render_tokens(rest, placeholders, item.id, p == 0, s == 0);
            if rest.is_empty() {
                if p == 0 && s > 0 {
                    body.push_str(
                        uniform_edge(&first[first.len() - s], true, placeholders).unwrap_or(""),
                    );
                }
                if s == 0 && p > 0 {
                    body.push_str(uniform_edge(&first[p - 1], false, placeholders).unwrap_or(""));
                }
            }
            format!("(?P<a{}>{body})", item.id)
        })
        .collect();
    if own.len() == 1 {
        format!("{head}{}{tail}", own[0])
    } else {
        format!("{head}(?:{}){tail}", own.join("|"))
    }
}

/// Tokens as a pattern, placeholders in groups numbered `j`, with the word boundary at the
/// first token's start and at the last one's end when asked.
fn render_tokens(
    tokens: &[Token],
    placeholders: &Placeholders,
    j: usize,
    start: bool,
    end: bool,
) -> String {
    let last = tokens.len().saturating_sub(1);
    let mut out = String::new();
    for (k, token) in tokens.iter().enumerate() {
        let (start, end) = (start && k == 0, end && k == last);
        match token {
            Token::Space => out.push_str(r"\s+"),
            Token::Word(forms) => out.push_str(&word_forms(forms, start, end)),
            Token::Var(name) => {
                if start {
                    out.push_str(placeholders.edge(name, true));
                }
                out.push_str(&placeholders.pattern(name, j));
                if end {
                    out.push_str(placeholders.edge(name, false));
                }
            }
        }
    }
    out
}

/// A word in all its forms, the letters they share written once ("pr(?:ó|o)ximo"), each form
/// with its own word boundary where theirs differ ("übermorgen" has none, "ubermorgen" one).
fn word_forms(forms: &[String], start: bool, end: bool) -> String {
    let edge = |w: &str, first: bool, asked: bool| {
        if asked {
            boundary([end_char(w, first)])
        } else {
            ""
        }
    };
    // Most words have one form: nothing to share (bundle load builds every language's).
    if let [word] = forms {
        let (s, e) = (edge(word, true, start), edge(word, false, end));
        return format!("{s}{}{e}", literal(word));
    }
    let starts: Vec<&str> = forms.iter().map(|w| edge(w, true, start)).collect();
    let ends: Vec<&str> = forms.iter().map(|w| edge(w, false, end)).collect();
    let (same_start, same_end) = (
        starts.iter().all(|e| *e == starts[0]),
        ends.iter().all(|e| *e == ends[0]),
    );
    let chars: Vec<Vec<char>> = forms.iter().map(|w| w.chars().collect()).collect();
    let shortest = chars.iter().map(Vec::len).min().unwrap_or(0);
    let common = |at: &dyn Fn(&[char]) -> char| chars.iter().all(|c| at(c) == at(&chars[0]));
    let mut lead = 0;
    while lead < shortest && common(&|c| c[lead]) {
        lead += 1;
    }
    let mut trail = 0;
    while lead + trail < shortest && common(&|c| c[c.len() - 1 - trail]) {
        trail += 1;
    }
    let text = |c: &[char]| literal(&c.iter().collect::<String>());
    let first = &chars[0];
    let middles: Vec<String> = chars
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let (s, e) = (
                if same_start { "" } else { starts[k] },
                if same_end { "" } else { ends[k] },
            );
            format!("{s}{}{e}", text(&c[lead..c.len() - trail]))
        })
        .collect();
    let middle = if middles.len() == 1 {
        middles[0].clone()
    } else {
        format!("(?:{})", middles.join("|"))
    };
    format!(
        "{}{}{middle}{}{}",
        if same_start { starts[0] } else { "" },
        text(&first[..lead]),
        text(&first[first.len() - trail..]),
        if same_end { ends[0] } else { "" },
    )
}

/// Where each alternative of a run reads its placeholders: the run's groups for those it
/// shares, its own for the others.
fn run_slots(run: &[Item], (p, s): (usize, usize)) -> Vec<(usize, DateKind, Slots)> {
    run.iter()
        .map(|item| {
            let mut slots = Slots::default();
            let len = item.tokens.len();
            for (k, token) in item.tokens.iter().enumerate() {
                let j = if k < p || k >= len - s {
                    run[0].id
                } else {
                    item.id
                };
                match token {
                    Token::Var(v) if v == "n" => slots.n = Some(j),
                    Token::Var(v) if v == "unit" => slots.unit = Some(j),
                    Token::Var(v) if v == "weekday" => slots.weekday = Some(j),
                    _ => {}
                }
            }
            (item.id, item.kind, slots)
        })
        .collect()
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn split_template(t: &str) -> Vec<Piece<'_>> {
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

    /// A relative date as read: its text, kind, number, whether its unit is weeks, and weekday
    /// (Monday 0).
    type Read = (String, DateKind, Option<i64>, Option<bool>, Option<usize>);

    fn relative_dates(lang: &str, text: &str) -> Vec<Read> {
        let words = default_words(lang).unwrap().unwrap();
        let (pattern, alternatives) = words.relative.get();
        pattern
            .captures_iter(text)
            .map(|c| {
                let alt = alternatives
                    .iter()
                    .find(|a| c.group(a.group).is_some())
                    .unwrap();
                let group = |g: Option<usize>| g.and_then(|g| c.group(g));
                let weekday = group(alt.weekday).map(|w| {
                    let w = without_accents(&lower(w));
                    let all = alt.weekdays.as_ref().unwrap();
                    all.iter().position(|forms| forms.contains(&w)).unwrap()
                });
                (
                    text[c.range()].to_string(),
                    alt.kind,
                    group(alt.n).and_then(|n| words.number(n)),
                    group(alt.n).map(|_| group(alt.weeks).is_some()),
                    weekday,
                )
            })
            .collect()
    }

    /// Pins what each language's relative dates read as, with and without accents, in capitals,
    /// numbers as digits and words, weekdays alone and with a word, and where a phrase that
    /// names no day or a longer pattern wins.
    #[test]
    fn relative_dates_as_the_words_files_list_them() {
        use DateKind::*;
        let d = |t: &str, k, n, weeks, wd| (t.to_string(), k, n, weeks, wd);
        let cases = [
            (
                "en",
                "Ordered 3 days ago, due in TWO weeks; last Friday or Next monday? Yesterday",
                vec![
                    d("3 days ago", Ago, Some(3), Some(false), None),
                    d("in TWO weeks", Ahead, Some(2), Some(true), None),
                    d("last Friday", LastWeekday, None, None, Some(4)),
                    d("Next monday", NextWeekday, None, None, Some(0)),
                    d("Yesterday", Days(-1), None, None, None),
                ],
            ),
            (
                "es",
                "el martes pasado, EL PROXIMO SÁBADO, el sabado que viene, el Miércoles, \
                 hace dos semanas, dentro de 3 días, por la mañana, Pasado Manana, la última semana",
                vec![
                    d("el martes pasado", LastWeekday, None, None, Some(1)),
                    d("EL PROXIMO SÁBADO", NextWeekday, None, None, Some(5)),
                    d("el sabado que viene", NextWeekday, None, None, Some(5)),
                    d("el Miércoles", Weekday, None, None, Some(2)),
                    d("hace dos semanas", Ago, Some(2), Some(true), None),
                    d("dentro de 3 días", Ahead, Some(3), Some(false), None),
                    d("por la mañana", NoDay, None, None, None),
                    d("Pasado Manana", Days(2), None, None, None),
                    d("la última semana", Week(-1), None, None, None),
                ],
            ),
            (
                "fr",
                "Il y a deux jours, ca fait 3 semaines, ça fait une semaine, d'ici 2 jours, \
                 mardi dernier, Vendredi PROCHAIN, lundi, APRÈS-DEMAIN, apres demain",
                vec![
                    d("Il y a deux jours", Ago, Some(2), Some(false), None),
                    d("ca fait 3 semaines", Ago, Some(3), Some(true), None),
                    d("ça fait une semaine", Ago, Some(1), Some(true), None),
                    d("d'ici 2 jours", Ahead, Some(2), Some(false), None),
                    d("mardi dernier", LastWeekday, None, None, Some(1)),
                    d("Vendredi PROCHAIN", NextWeekday, None, None, Some(4)),
                    d("lundi", Weekday, None, None, Some(0)),
                    d("APRÈS-DEMAIN", Days(2), None, None, None),
                    d("apres demain", Days(2), None, None, None),
                ],
            ),
            (
                "de",
                "Guten Morgen! vor zwei Tagen, in 3 Wochen, am Dienstag, am nächsten Freitag, \
                 naechsten Montag, letzten SONNTAG, Übermorgen, uebermorgen, nächste Woche",
                vec![
                    d("Guten Morgen", NoDay, None, None, None),
                    d("vor zwei Tagen", Ago, Some(2), Some(false), None),
                    d("in 3 Wochen", Ahead, Some(3), Some(true), None),
                    d("am Dienstag", Weekday, None, None, Some(1)),
                    d("am nächsten Freitag", NextWeekday, None, None, Some(4)),
                    d("naechsten Montag", NextWeekday, None, None, Some(0)),
                    d("letzten SONNTAG", LastWeekday, None, None, Some(6)),
                    d("Übermorgen", Days(2), None, None, None),
                    d("uebermorgen", Days(2), None, None, None),
                    d("nächste Woche", Week(1), None, None, None),
                ],
            ),
        ];
        for (lang, text, want) in cases {
            assert_eq!(relative_dates(lang, text), want, "{lang}");
        }
        // A word glued to a date's word is no date ("mañanas", "xheute").
        assert!(relative_dates("es", "las mañanas").is_empty());
        assert!(relative_dates("de", "xheute").is_empty());
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
