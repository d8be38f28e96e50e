//! Understanding a customer's message: intent and entities.
//!
//! Intents come from an embedded linear classifier (`intent_model`, trained by `tools/nlu-train`
//! on the project's own examples) with probabilities and two thresholds; entities from
//! `entities`. Bare yes/no answers and bare numbers are read without the model.

use std::sync::{Arc, LazyLock};

use crate::bot::words::{message_words, word_spans};
use crate::bot::{Bot, Words};

/// What a customer wants: an intent of the bot bundle (`config/bot/intents/<name>.toml`), named
/// as there. Open: a company adds one with files, not code. The few the engine itself
/// interprets are `Move`s.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Intent(Arc<str>);

impl Intent {
    pub fn new(name: &str) -> Self {
        Self(Arc::from(name))
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// Not understood well enough to act on (never a class of the model).
    pub fn unknown() -> Self {
        static UNKNOWN: LazyLock<Intent> = LazyLock::new(|| Intent::new(Move::Unknown.name()));
        UNKNOWN.clone()
    }

    pub fn as_move(&self) -> Option<Move> {
        Move::ALL.into_iter().find(|m| self.is(*m))
    }

    pub fn is(&self, m: Move) -> bool {
        self.name() == m.name()
    }

    /// The bot will not act on it: out of scope, or not understood.
    pub fn is_rejection(&self) -> bool {
        self.is(Move::OutOfScope) || self.is(Move::Unknown)
    }
}

impl From<Move> for Intent {
    fn from(m: Move) -> Self {
        Intent::new(m.name())
    }
}

/// The conversational moves the engine interprets itself (yes and no to its questions, small
/// talk, asking for a person, things the bot is not for), with fixed names a bundle's intents
/// use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Move {
    Affirm,
    Deny,
    Greet,
    Thanks,
    Goodbye,
    Acknowledge,
    /// "Can I talk to a person?"
    Human,
    /// Something the bot is not for (weather, flights, recipes...).
    OutOfScope,
    Unknown,
}

impl Move {
    pub const ALL: [Move; 9] = [
        Move::Affirm,
        Move::Deny,
        Move::Greet,
        Move::Thanks,
        Move::Goodbye,
        Move::Acknowledge,
        Move::Human,
        Move::OutOfScope,
        Move::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Move::Affirm => "affirm",
            Move::Deny => "deny",
            Move::Greet => "greet",
            Move::Thanks => "thanks",
            Move::Goodbye => "goodbye",
            Move::Acknowledge => "acknowledge",
            Move::Human => "human_agent",
            Move::OutOfScope => "out_of_scope",
            Move::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<Move> {
        Move::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// How sure the classifier must be. At or above `accept` the top intent is acted on; between
/// `clarify` and `accept` the bot asks which of the two likeliest intents was meant; below
/// `clarify` it says what it can help with. A request read with confidence is still turned
/// down as out of scope when the model gives out of scope at least `out_of_scope` times the top
/// intent's probability: "what date is it in five days?" looks like a delivery question to a
/// bag of words, but not only like one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub accept: f32,
    pub clarify: f32,
    pub out_of_scope: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            accept: 0.5,
            clarify: 0.25,
            out_of_scope: 0.45,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    /// The intent acted on: the classifier's top intent when it is sure enough, otherwise
    /// `Unknown`.
    pub intent: Intent,
    /// The top intent's probability (1.0 for the fixed yes/no answers).
    pub confidence: f32,
    /// Set when the top probability falls between the thresholds: the two likeliest intents,
    /// for "did you mean X or Y?".
    pub unsure_between: Option<(Intent, Intent)>,
    /// Order numbers as written, without a leading `#`, upper-cased.
    pub order_refs: Vec<String>,
    /// "the first one", "2nd", "the last one": 0-based; `LAST` is the last listed, `NEWEST`
    /// the most recent.
    pub ordinal: Option<usize>,
    /// "and the other one?": an order other than the one just discussed.
    pub other: bool,
    /// A short message that points at one of the orders listed last ("the other one", "what
    /// about the first?") without naming a number.
    pub refers_to_listed: bool,
    /// It does nothing but point ("and the other one?"), so whatever the classifier reads into
    /// it ("the other one" sounds like switching accounts) it asks the last question again;
    /// "any other payment methods?" says more, and does not.
    pub only_points: bool,
    /// The message as an answer to a yes/no question: "yes", "no", and the longer ways of
    /// saying them ("yes do it", "no thanks, I'll wait"). Read whatever the intent, so a
    /// pending question takes it; `None` when it says neither.
    pub answer: Option<bool>,
    /// A short message that carries on from the last answer: "and the headphones?", "what
    /// about the lamp?".
    pub follow_up: bool,
}

impl Understanding {
    /// No message at all: a flow a vendor's event starts.
    pub fn nothing() -> Self {
        Understanding {
            intent: Intent::unknown(),
            confidence: 0.0,
            unsure_between: None,
            order_refs: Vec::new(),
            ordinal: None,
            other: false,
            refers_to_listed: false,
            only_points: false,
            answer: None,
            follow_up: false,
        }
    }
}

pub const LAST: usize = usize::MAX;
/// "the latest", "my newest": the most recent of the orders, wherever a list put it.
pub const NEWEST: usize = usize::MAX - 1;

/// Understanding as a bundle configures it: its model and thresholds. Built once at init and
/// held by the dialogue.
#[derive(Clone)]
pub struct Nlu {
    bot: Arc<Bot>,
    thresholds: Thresholds,
}

impl Nlu {
    /// With the bundle's thresholds.
    pub fn new(bot: Arc<Bot>) -> Self {
        let thresholds = bot.thresholds;
        Self { bot, thresholds }
    }

    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Compiles the entity patterns and runs the model once, so the first turn does not pay.
    pub fn warm_up(&self) {
        for language in &self.bot.languages {
            self.understand(language, "warm up #1002 on 2026-11-25, $1");
            let _ = self.requests(language, "warm up, and up");
        }
    }

    /// The bundle's default language (its first): what a message is read in when its own
    /// language is not known.
    pub fn default_language(&self) -> &str {
        self.bot.languages.first().map_or("", String::as_str)
    }

    /// How `language` is read (the bundle's default language's words when it has none).
    pub fn words(&self, language: &str) -> &Words {
        self.bot.words(language)
    }

    /// The classifier's probabilities for every intent, most likely first (for evaluation).
    pub fn rank(&self, language: &str, text: &str) -> Vec<(Intent, f32)> {
        self.bot.model(language).predict(text)
    }

    /// `text` read in `language` (a language the bundle has no words for reads with its
    /// default language's).
    pub fn understand(&self, language: &str, text: &str) -> Understanding {
        let words = self.words(language);
        let u = understand_with(self.bot.model(language), words, text, self.thresholds);
        if u.intent.is(Move::Greet) {
            // "hello, is my parcel on its way?": the greeting is manners, the rest is the request.
            if let Some(rest) = self.after_greeting(language, words, text) {
                return rest;
            }
        }
        u
    }

    /// What a message asks after a greeting that opens it, when that is a request of its own.
    fn after_greeting(
        &self,
        language: &str,
        words_of: &Words,
        text: &str,
    ) -> Option<Understanding> {
        let starts: Vec<usize> = word_spans(text)
            .map(|(start, _)| start)
            .take(MAX_GREETING_WORDS + 1)
            .collect();
        for &start in starts.iter().skip(1) {
            let (opening, rest) = text.split_at(start);
            let greeting = Likeliest::of(self.bot.model(language), opening)
                .top
                .is_some_and(|(i, p)| i.is(Move::Greet) && p >= self.thresholds.accept);
            if !greeting {
                continue;
            }
            // "hi there" is all greeting: what follows must be long enough to be a request.
            if words(rest).len() < MIN_REQUEST_WORDS {
                return None;
            }
            let u = understand_with(self.bot.model(language), words_of, rest, self.thresholds);
            // Only a request read with confidence: "hello, how are you today?" stays a greeting.
            if u.intent.as_move().is_none() || u.intent.is(Move::Human) {
                return Some(u);
            }
        }
        None
    }

    /// "has 1004 shipped? and can I pay with Apple Pay?": the requests of a message that makes more
    /// than one, each read on its own, in the order written. `None` when it makes one (or its
    /// parts are not each clearly a request of their own).
    pub fn requests(&self, language: &str, text: &str) -> Option<Vec<(String, Understanding)>> {
        let lists = self.words(language);
        // Each part, and whether a word ("and", "plus") joined it to the one before.
        let mut spans: Vec<(usize, usize, bool)> = Vec::new();
        let (mut start, mut by_word) = (0, false);
        for m in lists.joins.get().find_iter(text) {
            spans.push((start, m.start, by_word));
            start = m.end;
            by_word = text[m].chars().any(char::is_alphabetic);
        }
        spans.push((start, text.len(), by_word));
        // "I forgot my password and can't sign in": a clause joined by "and" that goes on
        // without a subject of its own goes on with the one before it — one request, told in
        // two halves. After a full stop or a comma, "Still waiting on my refund" is a request.
        let mut joined: Vec<(usize, usize)> = Vec::new();
        for (from, to, by_word) in spans {
            let goes_on = by_word
                && words(&text[from..to])
                    .first()
                    .is_some_and(|w| lists.goes_on.contains(w));
            match joined.last_mut() {
                Some(last) if goes_on => last.1 = to,
                _ => joined.push((from, to)),
            }
        }
        let parts: Vec<&str> = joined.iter().map(|&(from, to)| &text[from..to]).collect();
        // Joins inside one request ("the mouse and the lamp") leave a part too short to be one.
        let parts: Vec<&str> = parts
            .into_iter()
            .map(str::trim)
            .filter(|p| words(p).len() >= MIN_REQUEST_WORDS)
            .collect();
        if parts.len() < 2 {
            return None;
        }
        let read: Vec<(String, Understanding)> = parts
            .iter()
            .map(|p| {
                (
                    p.to_string(),
                    understand_with(self.bot.model(language), lists, p, self.thresholds),
                )
            })
            .collect();
        // Every part a clear request of its own: "I ordered a lamp and it never came" is one
        // story, and one of its halves is no request.
        let requests = read
            .iter()
            .all(|(_, u)| u.intent.as_move().is_none() && u.confidence >= SPLIT_CONFIDENCE);
        let distinct = read
            .windows(2)
            .all(|w| w[0].1.intent != w[1].1.intent || w[0].1.order_refs != w[1].1.order_refs);
        (requests && distinct).then_some(read)
    }
}

/// Greetings are short: "hi", "hello there", "good morning all".
const MAX_GREETING_WORDS: usize = 3;
/// How sure the classifier must be of each part of a message to answer them apart.
const SPLIT_CONFIDENCE: f32 = 0.75;
/// A part of a message shorter than this is not a request of its own.
const MIN_REQUEST_WORDS: usize = 3;

/// Longest message read as a follow-up about the orders just listed.
const FOLLOW_UP_WORDS: usize = 6;

/// The message's words, lower-cased: letters (any script), digits and apostrophes.
fn words(text: &str) -> Vec<String> {
    message_words(text)
}

/// Answers to a yes/no question short enough to need no model: a fixed list is exact where a
/// classifier on two words would only be likely.
fn fixed_answer(lists: &Words, w: &[String]) -> Option<Intent> {
    let joined = w.join(" ");
    if lists.yes.contains(&joined) {
        Some(Move::Affirm.into())
    } else if lists.no.contains(&joined) {
        Some(Move::Deny.into())
    } else if lists.acknowledgements.contains(&joined) {
        // "got it", "i see": taking in what was said. Never an answer to a yes/no question.
        Some(Move::Acknowledge.into())
    } else {
        None
    }
}

/// The words a message only points with, and the numbers it points at.
fn points_only(lists: &Words, w: &[String], order_ref_words: &[String]) -> bool {
    w.iter()
        .all(|x| lists.pointing.contains(x) || order_ref_words.contains(x))
}

/// "yes do it", "no thanks, I'll wait": an answer by its opening words.
fn leading_answer(lists: &Words, w: &[String]) -> Option<bool> {
    // The length of the opening phrase the message starts with. Matched on whole words, so
    // "no thanks, I'll give it a few days" is a no and "nothing arrived" is not; after a
    // one-word opening only what may follow it ("no thanks", "yes do it"): anything else is
    // another sentence ("no idea where it is", "sure it was sent?").
    let opening = |phrases: &[Vec<String>]| {
        phrases.iter().find_map(|p| {
            let next = w.get(p.len());
            (w.len() >= p.len()
                && w.iter().zip(p).all(|(a, b)| a == b)
                && (p.len() > 1 || next.is_none_or(|n| lists.after_one_word.contains(n))))
            .then_some(p.len())
        })
    };
    if opening(&lists.no_openings).is_some() {
        return Some(false);
    }
    let n = opening(&lists.yes_openings)?;
    // "absolutely not", "yeah no, I'll wait", "please do not": a no.
    let negated = w
        .iter()
        .skip(n)
        .take(2)
        .any(|x| lists.negations.contains(x));
    Some(!negated)
}

/// The message starts with one of `phrases` (each a list of words).
fn opens_with(w: &[String], phrases: &[Vec<String>]) -> bool {
    phrases
        .iter()
        .any(|p| w.len() >= p.len() && w.iter().zip(p).all(|(a, b)| a == b))
}

fn understand_with(
    model: &crate::intent_model::IntentModel,
    lists: &Words,
    text: &str,
    thresholds: Thresholds,
) -> Understanding {
    let w = words(text);
    // Phone numbers, amounts and dates are taken out first, so their digits are never
    // mistaken for an order number.
    let entities =
        crate::entities::extract(lists, text, time::OffsetDateTime::now_utc().date(), &[]);
    // "and the other order, SO-88130?" only points too: the number is where it points.
    let order_ref_words: Vec<String> = entities.order_refs.iter().flat_map(|r| words(r)).collect();
    let mut u = Understanding {
        intent: Intent::unknown(),
        confidence: 0.0,
        unsure_between: None,
        order_refs: entities.order_refs,
        ordinal: ordinal(lists, &w),
        other: w.iter().any(|x| lists.other.contains(x)),
        refers_to_listed: false,
        only_points: points_only(lists, &w, &order_ref_words),
        answer: leading_answer(lists, &w),
        follow_up: w.len() <= FOLLOW_UP_WORDS && opens_with(&w, &lists.follow_up_openings),
    };
    u.refers_to_listed =
        (u.other || u.ordinal.is_some()) && u.order_refs.is_empty() && w.len() <= FOLLOW_UP_WORDS;
    // A message that names an order is about that order, not an answer to the question.
    if !u.order_refs.is_empty() {
        u.answer = None;
    }
    if let Some(intent) = fixed_answer(lists, &w) {
        if intent.is(Move::Affirm) || intent.is(Move::Deny) {
            u.answer = Some(intent.is(Move::Affirm));
        } else if u.answer.is_none() && w.first().is_some_and(|f| lists.ok.contains(f)) {
            // "ok then", "ok great": taken in when nothing was asked, a yes when something was.
            u.answer = Some(true);
        }
        u.intent = intent;
        u.confidence = 1.0;
        return u;
    }
    // Nothing but numbers ("1002", "#1002", "2"): an answer to "which order?", not a request
    // the model could read.
    if !w.iter().any(|x| x.chars().any(|c| c.is_alphabetic())) {
        return u;
    }
    let read = Likeliest::of(model, text);
    let doubt = read.doubt;
    let (top, p) = read.top.unwrap_or((Intent::unknown(), 0.0));
    u.confidence = p;
    // Moves (greetings, thanks, yes, a person please) are the engine's own and never doubted,
    // nor is a request that names an order: "cancel 1003" is the shop's, whatever else it
    // looks like.
    let doubted =
        top.as_move().is_none() && u.order_refs.is_empty() && doubt >= thresholds.out_of_scope * p;
    if p >= thresholds.accept && doubted {
        u.intent = Intent::from(Move::OutOfScope);
        u.confidence = doubt;
    } else if p >= thresholds.accept {
        if u.answer.is_none()
            && u.order_refs.is_empty()
            && (top.is(Move::Affirm) || top.is(Move::Deny))
        {
            u.answer = Some(top.is(Move::Affirm));
        }
        u.intent = top;
    } else if p >= thresholds.clarify && !top.is_rejection() {
        u.unsure_between = read
            .second
            .filter(|second| !second.is_rejection())
            .map(|second| (top, second));
    }
    u
}

/// What understanding reads of the classifier's probabilities: the likeliest intent with its
/// probability, the runner-up, and the probability of out of scope. The figures and the order
/// of `IntentModel::predict` (probability descending, ties in class order), taken from its
/// scores without ranking every intent: that list (a clone of each name, a sort, an allocation
/// big enough to make the allocator consolidate) was a fifth of the classifier's time in a turn.
struct Likeliest {
    top: Option<(Intent, f32)>,
    second: Option<Intent>,
    doubt: f32,
}

impl Likeliest {
    fn of(model: &crate::intent_model::IntentModel, text: &str) -> Self {
        // (class, probability) of the likeliest, the runner-up and out of scope so far.
        let (mut top, mut second, mut doubt) = (None, None, None::<(usize, f32)>);
        for (c, (p, class)) in model
            .probabilities(text)
            .into_iter()
            .zip(&model.classes)
            .enumerate()
        {
            // Strictly more likely than what is held: a tie keeps the earlier class first.
            let beats = |held: Option<(usize, f32)>| {
                held.is_none_or(|(_, q)| p.total_cmp(&q) == std::cmp::Ordering::Greater)
            };
            if class.is(Move::OutOfScope) && beats(doubt) {
                doubt = Some((c, p));
            }
            if beats(top) {
                second = top;
                top = Some((c, p));
            } else if beats(second) {
                second = Some((c, p));
            }
        }
        Self {
            top: top.map(|(c, p)| (model.classes[c].clone(), p)),
            second: second.map(|(c, _)| model.classes[c].clone()),
            doubt: doubt.map_or(0.0, |(_, p)| p),
        }
    }
}

/// Messages that mix two requests, so a model is likely to be unsure about some of them: the
/// integration tests use the first the shipped model reads between the thresholds to exercise
/// "did you mean X or Y?" end to end, and a unit test fails first if none of them does.
#[doc(hidden)]
pub const CLARIFY_PROBES: &[&str] = &[
    "help with order and account",
    "cancel or refund",
    "I want a real person about my refund",
    "my refund my invoice",
    "invoice or refund",
    "my invoice or my refund",
];

fn ordinal(lists: &Words, w: &[String]) -> Option<usize> {
    for (i, word) in w.iter().enumerate() {
        // "last week", "two days ago", "la semaine dernière": a word next to a span of time
        // dates, it does not count.
        let near_time = |j: Option<usize>| {
            j.and_then(|j| w.get(j))
                .is_some_and(|x| lists.time.contains(x))
        };
        if near_time(Some(i + 1)) || near_time(i.checked_sub(1)) {
            continue;
        }
        // "one" alone often means "that one"; only count it as an ordinal in "the first one"
        // shapes.
        if lists.alone.contains(word) && w.len() > 1 {
            continue;
        }
        if let Some(idx) = lists.ordinals.get(word) {
            return Some(*idx);
        }
    }
    // A bare digit answering "which one?".
    match w {
        [only] if only.len() == 1 => only
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n - 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn understand(text: &str) -> Understanding {
        Nlu::new(Bot::embedded()).understand("en", text)
    }

    fn understand_with(text: &str, t: Thresholds) -> Understanding {
        Nlu::new(Bot::embedded())
            .with_thresholds(t)
            .understand("en", text)
    }

    fn leading_answer(w: &[String]) -> Option<bool> {
        super::leading_answer(Words::english(), w)
    }

    fn i(name: &str) -> Intent {
        Intent::new(name)
    }

    #[test]
    fn moves_are_intents_with_fixed_names() {
        for m in Move::ALL {
            let i = Intent::from(m);
            assert_eq!(i.as_move(), Some(m));
            assert!(i.is(m));
            assert_eq!(Move::from_name(m.name()), Some(m));
        }
        assert_eq!(Intent::from(Move::Human).name(), "human_agent");
        assert_eq!(i("cancel_order").as_move(), None);
        assert!(Intent::unknown().is_rejection() && i("out_of_scope").is_rejection());
        assert!(!i("greet").is_rejection());
    }

    #[test]
    fn asking_for_a_person() {
        for t in [
            "can I talk to a human?",
            "agent",
            "I want to speak to a real person",
        ] {
            assert_eq!(understand(t).intent, i("human_agent"), "{t}");
        }
    }

    #[test]
    fn order_status_questions() {
        for t in [
            "where's my order?",
            "Where is my package",
            "track order #1002",
            "has it shipped yet",
        ] {
            assert_eq!(understand(t).intent, i("order_status"), "{t}");
        }
    }

    #[test]
    fn yes_and_no() {
        for t in ["yes", "Yes please", "sure", "ok go ahead", "yep"] {
            assert_eq!(understand(t).intent, i("affirm"), "{t}");
        }
        for t in ["no", "no thanks", "nope", "no, don't refund it"] {
            assert_eq!(understand(t).intent, i("deny"), "{t}");
        }
    }

    #[test]
    fn refunds_and_small_talk() {
        assert_eq!(
            understand("I want my money back").intent,
            i("request_refund")
        );
        assert_eq!(
            understand("can I get a refund for 1003").intent,
            i("request_refund")
        );
        assert_eq!(understand("hello there").intent, i("greet"));
        assert_eq!(understand("thanks a lot!").intent, i("thanks"));
        assert_eq!(understand("bye").intent, i("goodbye"));
        assert_eq!(
            understand("what's the weather like").intent,
            i("out_of_scope")
        );
    }

    #[test]
    fn each_area_of_the_shop_is_understood() {
        for (t, expected) in [
            ("I want to cancel my order", i("cancel_order")),
            ("how do I reset my password", i("recover_password")),
            (
                "what payment methods do you accept",
                i("check_payment_methods"),
            ),
            ("I'd like to file a complaint", i("complaint")),
            (
                "please unsubscribe me from the newsletter",
                i("newsletter_subscription"),
            ),
            ("how long does shipping take", i("delivery_period")),
            ("I need a copy of my invoice", i("get_invoice")),
            ("set an alarm for 7am", i("out_of_scope")),
        ] {
            assert_eq!(understand(t).intent, expected, "{t}");
        }
    }

    #[test]
    fn a_request_out_of_scope_could_also_be_is_turned_down_but_moves_never_are() {
        // The share out of scope has of the top intent's probability decides: just under it
        // the request is turned down, just over it the request stands.
        let text = "I want to cancel my order";
        let ranked = Bot::embedded().model("en").predict(text);
        let top = ranked[0].1;
        let oos = ranked
            .iter()
            .find(|(c, _)| c.is(Move::OutOfScope))
            .map(|(_, p)| *p)
            .expect("the model has out of scope");
        let share = oos / top;
        assert!(share > 0.0 && share < 0.45, "{share}");
        let at = |share| Thresholds {
            out_of_scope: share,
            ..Thresholds::default()
        };
        assert_eq!(
            understand_with(text, at(share * 0.9)).intent,
            i("out_of_scope")
        );
        assert_eq!(
            understand_with(text, at(share * 1.1)).intent,
            i("cancel_order")
        );
        let doubting = at(0.0);
        assert_eq!(understand_with("hello there", doubting).intent, i("greet"));
        // An order number makes a request the shop's.
        assert_eq!(
            understand_with("please cancel order 1003", doubting).intent,
            i("cancel_order")
        );
        assert_eq!(
            understand_with("I want to cancel my order", Thresholds::default()).intent,
            i("cancel_order")
        );
    }

    #[test]
    fn unsure_between_two_intents_names_both_and_acts_on_neither() {
        let t = Thresholds {
            accept: 1.1,
            clarify: 0.0,
            ..Thresholds::default()
        };
        let u = understand_with("I want to cancel my order", t);
        assert_eq!(u.intent, Intent::unknown());
        let (first, second) = u.unsure_between.clone().expect("between the thresholds");
        assert_eq!(first, i("cancel_order"));
        assert_ne!(second, first);
        assert!(u.confidence > 0.0 && u.confidence < 1.0);
    }

    #[test]
    fn some_clarification_probe_is_unsure_between_two_shop_intents() {
        let unsure: Vec<(Intent, Intent)> = CLARIFY_PROBES
            .iter()
            .filter_map(|p| understand(p).unsure_between)
            .collect();
        let (a, b) = unsure.first().expect("a probe between the thresholds");
        let shop = |i: &Intent| i.as_move().is_none();
        assert!(shop(a) && shop(b), "{a:?} {b:?}");
    }

    #[test]
    fn the_likeliest_intents_are_the_top_of_the_ranking() {
        let bot = Bot::embedded();
        let texts = CLARIFY_PROBES.iter().copied().chain([
            "where is my order?",
            "hi there",
            "what is the weather like in paris",
            "blorp the fizzle wug",
            "",
            "¿dónde está mi pedido?",
            "ich möchte mit einem menschen sprechen",
        ]);
        for text in texts {
            for language in &bot.languages {
                let model = bot.model(language);
                let ranked = model.predict(text);
                let read = Likeliest::of(model, text);
                assert_eq!(read.top, ranked.first().cloned(), "{language} {text:?}");
                assert_eq!(
                    read.second,
                    ranked.get(1).map(|(i, _)| i.clone()),
                    "{language} {text:?}"
                );
                let doubt = ranked.iter().find(|(i, _)| i.is(Move::OutOfScope));
                assert_eq!(read.doubt, doubt.map_or(0.0, |(_, p)| *p), "{text:?}");
            }
        }
    }

    #[test]
    fn tied_intents_are_taken_in_class_order_as_the_ranking_takes_them() {
        let mut model = Bot::embedded().model("en").clone();
        model.bias.iter_mut().for_each(|b| *b = 0.0);
        model.set_weights(&vec![0; model.ids.len() * model.classes.len()]);
        let read = Likeliest::of(&model, "where is my order?");
        let ranked = model.predict("where is my order?");
        assert_eq!(read.top, ranked.first().cloned());
        assert_eq!(read.top.map(|(i, _)| i), Some(model.classes[0].clone()));
        assert_eq!(read.second, Some(model.classes[1].clone()));
    }

    #[test]
    fn bare_numbers_and_odd_input_are_not_guessed_at() {
        for t in ["1002", "#1002", "2", "", "   ", "🙂🙂", "!!!"] {
            let u = understand(t);
            assert_eq!(u.intent, Intent::unknown(), "{t:?}");
            assert!(u.unsure_between.is_none());
        }
        let long = "where is my order ".repeat(250);
        assert_eq!(understand(&long).intent, i("order_status"));
        assert!(understand("and the other one?").other);
    }

    #[test]
    fn order_numbers_in_usual_shapes() {
        assert_eq!(understand("where is #1002?").order_refs, vec!["1002"]);
        assert_eq!(
            understand("order sb-10021 please").order_refs,
            vec!["SB-10021"]
        );
        assert_eq!(understand("1001 and 1003").order_refs, vec!["1001", "1003"]);
        assert!(understand("I ordered 3 things").order_refs.is_empty());
    }

    #[test]
    fn longer_yes_and_no_are_answers() {
        for t in [
            "yes do it",
            "yeah go for it, thanks",
            "sure, please do",
            "ok go ahead then",
        ] {
            assert_eq!(understand(t).answer, Some(true), "{t}");
        }
        for t in [
            "no thanks, I'll give it a few days",
            "nah I'll wait",
            "not right now",
            "never mind, leave it",
            "absolutely not",
            "of course not",
            "yeah no, I'll wait",
            "please do not",
        ] {
            assert_eq!(understand(t).answer, Some(false), "{t}");
        }
        assert_eq!(understand("ok then").answer, Some(true));
        assert_eq!(leading_answer(&words("i'm good with that")), None);
        // Openings that start another sentence are no answer by their first word (the
        // classifier may still read one), and a message about an order answers nothing.
        for t in ["no idea where it is", "sure it was sent?", "nothing came"] {
            assert_eq!(leading_answer(&words(t)), None, "{t}");
        }
        assert_eq!(understand("no, where is 1003").answer, None);
    }

    #[test]
    fn acknowledgements_are_taken_in_and_answer_no_question() {
        for t in ["got it", "i see", "makes sense"] {
            let u = understand(t);
            assert_eq!(u.intent, i("acknowledge"), "{t}");
            assert_eq!(u.answer, None, "{t}");
        }
        // One that opens with "ok" is a yes to a question, if one waits.
        let ok = understand("Ok, got it.");
        assert_eq!((ok.intent, ok.answer), (i("acknowledge"), Some(true)));
        // Waiting is a no to an offer, and taken in otherwise.
        let wait = understand("ok I'll wait");
        assert_eq!((wait.intent, wait.answer), (i("acknowledge"), Some(false)));
    }

    #[test]
    fn a_greeting_in_front_of_a_request_does_not_swallow_it() {
        let u = understand("hi there, where is my order");
        assert_eq!(u.intent, i("order_status"));
        assert_eq!(understand("hello there").intent, i("greet"));
    }

    #[test]
    fn two_requests_in_one_message_are_read_apart() {
        let nlu = Nlu::new(Bot::embedded());
        let parts = nlu
            .requests(
                "en",
                "where is order 1001, and what payment methods do you accept?",
            )
            .expect("two requests");
        let intents: Vec<&str> = parts.iter().map(|(_, u)| u.intent.name()).collect();
        assert_eq!(intents, ["order_status", "check_payment_methods"]);
        assert_eq!(parts[0].1.order_refs, ["1001"]);
        // One request with "and" in it, and a short tail, are one request.
        assert!(nlu
            .requests("en", "is the desk lamp and the mouse in stock")
            .is_none());
        assert!(nlu.requests("en", "where is my order and why").is_none());
        assert!(nlu.requests("en", "where is my order").is_none());
        // A half without a subject of its own goes on with the first: one request.
        assert!(nlu
            .requests("en", "I forgot my password and cannot sign in")
            .is_none());
        assert!(nlu
            .requests(
                "en",
                "I reset my password and still can't get into my account"
            )
            .is_none());
    }

    #[test]
    fn a_number_pointed_at_only_points() {
        let u = understand("and the other order, SO-88130?");
        assert!(u.only_points);
        assert_eq!(u.order_refs, ["SO-88130"]);
    }

    /// Spanish, French and German read with their own words: answers, acknowledgements,
    /// ordinals, "the other one", accents left out.
    #[test]
    fn yes_no_acknowledgements_and_ordinals_in_each_language() {
        let nlu = Nlu::new(Bot::embedded());
        let read = |lang: &str, t: &str| nlu.understand(lang, t);
        for (lang, yes, no, ack) in [
            (
                "es",
                &["sí", "Si", "vale", "claro", "por supuesto", "sí, por favor"][..],
                &["no", "no, gracias", "ahora no", "de ninguna manera"][..],
                &["entendido", "ya veo", "vale, entendido"][..],
            ),
            (
                "fr",
                &[
                    "oui",
                    "ouais",
                    "d'accord",
                    "bien sûr",
                    "bien sur",
                    "oui s’il vous plaît",
                ][..],
                &["non", "non merci", "pas maintenant"][..],
                &["compris", "je vois", "c'est noté"][..],
            ),
            (
                "de",
                &["ja", "Jawohl", "gerne", "klar", "natürlich", "natuerlich"][..],
                &["nein", "nein danke", "auf keinen Fall", "noch nicht"][..],
                &["verstanden", "alles klar", "gut zu wissen"][..],
            ),
        ] {
            for t in yes {
                let u = read(lang, t);
                assert_eq!(
                    (u.intent, u.answer),
                    (i("affirm"), Some(true)),
                    "{lang} {t}"
                );
            }
            for t in no {
                let u = read(lang, t);
                assert_eq!((u.intent, u.answer), (i("deny"), Some(false)), "{lang} {t}");
            }
            for t in ack {
                assert_eq!(read(lang, t).intent, i("acknowledge"), "{lang} {t}");
            }
        }
        // Longer answers by their openings, and a yes turned around.
        assert_eq!(read("es", "sí, hazlo por favor").answer, Some(true));
        assert_eq!(read("es", "no, prefiero esperar").answer, Some(false));
        assert_eq!(read("fr", "oui merci, allez-y").answer, Some(true));
        assert_eq!(read("fr", "bien sûr que non").answer, Some(false));
        assert_eq!(read("de", "ja, bitte machen Sie das").answer, Some(true));
        assert_eq!(read("de", "nein, ich warte lieber").answer, Some(false));
        // Waiting, or taking a thing in, is never a yes to an offer.
        for (lang, t) in [
            ("es", "vale, espero"),
            ("es", "vale, prefiero esperar"),
            ("es", "ok esperaré"),
            ("es", "bueno saberlo"),
            ("fr", "ok je vais attendre"),
            ("fr", "d'accord, je vais attendre"),
            ("fr", "d'accord, je préfère attendre"),
            ("fr", "bon à savoir"),
            ("de", "ok dann warte ich"),
            ("de", "alles klar, ich warte"),
            ("de", "gut zu wissen"),
            ("de", "alles klar danke"),
        ] {
            assert_ne!(read(lang, t).answer, Some(true), "{lang} {t}");
        }
        // Each language's own list: "vale" is no fixed English answer.
        assert_eq!(read("en", "vale").answer, None);
        // A language the bundle has no words for reads as its default language.
        assert_eq!(read("xx", "yes").intent, i("affirm"));

        for (lang, t, expected) in [
            ("es", "el segundo", Some(1)),
            ("es", "la primera", Some(0)),
            ("es", "el último", Some(LAST)),
            ("es", "el ultimo", Some(LAST)),
            ("es", "el que pedí la semana pasada", None),
            ("fr", "la première", Some(0)),
            ("fr", "la deuxième", Some(1)),
            ("fr", "la dernière", Some(LAST)),
            ("fr", "celle de la semaine dernière", None),
            ("de", "die zweite", Some(1)),
            ("de", "die erste", Some(0)),
            ("de", "den letzten", Some(LAST)),
            ("de", "die von letzte Woche", None),
            ("de", "2", Some(1)),
        ] {
            assert_eq!(read(lang, t).ordinal, expected, "{lang} {t}");
        }
        assert!(read("es", "¿y el otro?").other);
        assert!(read("fr", "et l'autre ?").other);
        assert!(read("de", "und die andere?").other);
        assert!(read("es", "¿y qué tal el otro?").follow_up);
        assert!(read("de", "und was ist mit der anderen?").follow_up);
    }

    #[test]
    fn two_requests_are_read_apart_by_the_languages_joins() {
        let nlu = Nlu::new(Bot::embedded());
        let w = nlu.words("es");
        let parts: Vec<&str> = w
            .joins
            .get()
            .split("dónde está mi pedido y además quiero cambiar la dirección")
            .collect();
        assert_eq!(
            parts,
            ["dónde está mi pedido", "quiero cambiar la dirección"]
        );
        let de: Vec<&str> = nlu
            .words("de")
            .joins
            .get()
            .split("wo ist meine Bestellung und außerdem möchte ich zahlen")
            .collect();
        assert_eq!(de, ["wo ist meine Bestellung", "möchte ich zahlen"]);
        assert_eq!(
            nlu.words("fr")
                .joins
                .get()
                .split("où est ma commande et aussi le colis")
                .count(),
            2
        );
    }

    #[test]
    fn ordinals() {
        assert_eq!(understand("the second one").ordinal, Some(1));
        // Spans of time date an order; they do not count it.
        assert_eq!(understand("the one I ordered last week").ordinal, None);
        assert_eq!(understand("the one from two weeks ago").ordinal, None);
        assert_eq!(understand("the last one").ordinal, Some(LAST));
        assert_eq!(understand("the last one").ordinal, Some(LAST));
        assert_eq!(understand("my latest order").ordinal, Some(NEWEST));
        assert_eq!(understand("2").ordinal, Some(1));
        assert_eq!(understand("that one").ordinal, None);
    }
}
