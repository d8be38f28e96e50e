//! Understanding a customer's message: intent and entities.
//!
//! Intents come from an embedded linear classifier (`intent_model`, trained by `tools/nlu-train`
//! on the project's own examples) with probabilities and two thresholds; entities from
//! `entities`. Bare yes/no answers and bare numbers are read without the model.

use std::sync::{Arc, LazyLock};

use regex::Regex;

use crate::bot::Bot;

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
/// `clarify` it says what it can help with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub accept: f32,
    pub clarify: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            accept: 0.5,
            clarify: 0.25,
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
        self.understand("warm up #1002 on 2026-11-25, $1");
    }

    /// The classifier's probabilities for every intent, most likely first (for evaluation).
    pub fn rank(&self, text: &str) -> Vec<(Intent, f32)> {
        self.bot.model.predict(text)
    }

    pub fn understand(&self, text: &str) -> Understanding {
        understand_with(&self.bot.model, text, self.thresholds)
    }
}

/// Longest message read as a follow-up about the orders just listed.
const FOLLOW_UP_WORDS: usize = 6;

/// Words that only point at a listed order.
const POINTING: &[&str] = &[
    "and", "what", "whats", "what's", "about", "how", "the", "other", "one", "ones", "order",
    "that", "this", "is", "it", "then", "also", "too", "please", "first", "second", "third",
    "fourth", "fifth", "1st", "2nd", "3rd", "4th", "5th", "last", "latest", "newest", "recent",
    "my",
];

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[a-z0-9']+").expect("static regex"));

fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace('\u{2019}', "'");
    WORD.find_iter(&lower)
        .map(|m| m.as_str().to_string())
        .collect()
}

/// Answers to a yes/no question short enough to need no model: a fixed list is exact where a
/// classifier on two words would only be likely.
fn fixed_answer(w: &[String]) -> Option<Intent> {
    const YES: &[&str] = &[
        "yes",
        "y",
        "yeah",
        "yea",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "k",
        "yes please",
        "yes pls",
        "please do",
        "go ahead",
        "do it",
        "sounds good",
        "absolutely",
        "definitely",
        "of course",
        "correct",
        "that's right",
        "ok go ahead",
        "yes go ahead",
        "sure thing",
    ];
    const NO: &[&str] = &[
        "no",
        "n",
        "nope",
        "nah",
        "no thanks",
        "no thank you",
        "no thx",
        "not now",
        "don't",
        "dont",
        "no way",
        "not really",
        "no need",
    ];
    let joined = w.join(" ");
    if YES.contains(&joined.as_str()) {
        Some(Move::Affirm.into())
    } else if NO.contains(&joined.as_str()) {
        Some(Move::Deny.into())
    } else {
        None
    }
}

fn understand_with(
    model: &crate::intent_model::IntentModel,
    text: &str,
    thresholds: Thresholds,
) -> Understanding {
    let w = words(text);
    // Phone numbers, amounts and dates are taken out first, so their digits are never
    // mistaken for an order number.
    let entities = crate::entities::extract(text, time::OffsetDateTime::now_utc().date(), &[]);
    let mut u = Understanding {
        intent: Intent::unknown(),
        confidence: 0.0,
        unsure_between: None,
        order_refs: entities.order_refs,
        ordinal: ordinal(&w),
        other: w.iter().any(|x| x == "other"),
        refers_to_listed: false,
        only_points: w.iter().all(|x| POINTING.contains(&x.as_str())),
    };
    u.refers_to_listed =
        (u.other || u.ordinal.is_some()) && u.order_refs.is_empty() && w.len() <= FOLLOW_UP_WORDS;
    if let Some(intent) = fixed_answer(&w) {
        u.intent = intent;
        u.confidence = 1.0;
        return u;
    }
    // Nothing but numbers ("1002", "#1002", "2"): an answer to "which order?", not a request
    // the model could read.
    if !w.iter().any(|x| x.chars().any(|c| c.is_alphabetic())) {
        return u;
    }
    let mut ranked = model.predict(text).into_iter();
    let (top, p) = ranked.next().unwrap_or((Intent::unknown(), 0.0));
    u.confidence = p;
    if p >= thresholds.accept {
        u.intent = top;
    } else if p >= thresholds.clarify && !top.is_rejection() {
        u.unsure_between = ranked
            .next()
            .filter(|(second, _)| !second.is_rejection())
            .map(|(second, _)| (top, second));
    }
    u
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

fn ordinal(w: &[String]) -> Option<usize> {
    const ORDINALS: &[(&[&str], usize)] = &[
        (&["first", "1st", "one"], 0),
        (&["second", "2nd", "two"], 1),
        (&["third", "3rd", "three"], 2),
        (&["fourth", "4th", "four"], 3),
        (&["fifth", "5th", "five"], 4),
        (&["last"], LAST),
        (&["latest", "newest", "recent"], NEWEST),
    ];
    // "one" alone often means "that one"; only count it as an ordinal in "the first one" shapes.
    for word in w {
        for (names, idx) in ORDINALS {
            if names.contains(&word.as_str()) && !(word == "one" && w.len() > 1) {
                return Some(*idx);
            }
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
        Nlu::new(Bot::embedded()).understand(text)
    }

    fn understand_with(text: &str, t: Thresholds) -> Understanding {
        Nlu::new(Bot::embedded())
            .with_thresholds(t)
            .understand(text)
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
    fn unsure_between_two_intents_names_both_and_acts_on_neither() {
        let t = Thresholds {
            accept: 1.1,
            clarify: 0.0,
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
    fn ordinals() {
        assert_eq!(understand("the second one").ordinal, Some(1));
        assert_eq!(understand("the last one").ordinal, Some(LAST));
        assert_eq!(understand("my latest order").ordinal, Some(NEWEST));
        assert_eq!(understand("2").ordinal, Some(1));
        assert_eq!(understand("that one").ordinal, None);
    }
}
