//! Understanding a customer's message: intent and entities.
//!
//! A small keyword model covering the first flow (order status, refunds, yes/no, small talk). The
//! embedded statistical classifier replaces `classify` later; `Understanding` stays the interface.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    OrderStatus,
    RequestRefund,
    Affirm,
    Deny,
    Greet,
    Thanks,
    Goodbye,
    /// "Can I talk to a person?"
    HumanAgent,
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    pub intent: Intent,
    /// Order numbers as written, without a leading `#`, upper-cased.
    pub order_refs: Vec<String>,
    /// "the first one", "2nd", "the last one": 0-based; `usize::MAX` means the last.
    pub ordinal: Option<usize>,
}

pub const LAST: usize = usize::MAX;

static ORDER_REF: LazyLock<Regex> = LazyLock::new(|| {
    // "#1002", "order 1002", "A-10021", "SB1002": letters are optional, digits are not.
    Regex::new(r"(?i)(?:#|\b)([a-z]{0,4}-?\d{4,12})\b").expect("static regex")
});

static WORD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[a-z0-9']+").expect("static regex"));

fn words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace('’', "'");
    WORD.find_iter(&lower)
        .map(|m| m.as_str().to_string())
        .collect()
}

fn has_any(words: &[String], set: &[&str]) -> bool {
    words.iter().any(|w| set.contains(&w.as_str()))
}

fn has_phrase(text: &str, phrases: &[&str]) -> bool {
    let lower = text.to_lowercase().replace('’', "'");
    phrases.iter().any(|p| lower.contains(p))
}

pub fn understand(text: &str) -> Understanding {
    let w = words(text);
    Understanding {
        intent: classify(text, &w),
        order_refs: ORDER_REF
            .captures_iter(text)
            .map(|c| c[1].to_uppercase())
            .collect(),
        ordinal: ordinal(&w),
    }
}

fn classify(text: &str, w: &[String]) -> Intent {
    const REFUND: &[&str] = &["refund", "refunded", "refunding", "reimburse", "money"];
    const STATUS: &[&str] = &[
        "where",
        "track",
        "tracking",
        "status",
        "shipped",
        "shipping",
        "delivery",
        "delivered",
        "arrive",
        "arrived",
        "arriving",
        "package",
        "parcel",
        "late",
        "delayed",
        "eta",
    ];
    const AFFIRM: &[&str] = &[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "ok",
        "okay",
        "please",
        "definitely",
        "absolutely",
        "y",
    ];
    const DENY: &[&str] = &["no", "nope", "nah", "n", "don't", "dont", "not"];
    const GREET: &[&str] = &["hi", "hello", "hey", "howdy", "hiya"];
    const THANKS: &[&str] = &["thanks", "thank", "thx", "cheers", "ty"];
    const BYE: &[&str] = &["bye", "goodbye", "cya"];

    const AGENT: &[&str] = &["agent", "human", "person", "representative", "operator"];

    let short = w.len() <= 4;
    if has_any(w, AGENT) || has_phrase(text, &["talk to someone", "speak to someone"]) {
        return Intent::HumanAgent;
    }
    if has_any(w, REFUND) || has_phrase(text, &["money back"]) {
        // "no, I don't want a refund" is a no to an offer, not a new request.
        if short && has_any(w, DENY) {
            return Intent::Deny;
        }
        return Intent::RequestRefund;
    }
    if has_any(w, STATUS)
        || has_phrase(text, &["my order", "an order", "the order", "order status"])
    {
        return Intent::OrderStatus;
    }
    if short && has_any(w, DENY) {
        return Intent::Deny;
    }
    if short && (has_any(w, AFFIRM) || has_phrase(text, &["go ahead", "do it", "sounds good"])) {
        return Intent::Affirm;
    }
    if has_any(w, THANKS) {
        return Intent::Thanks;
    }
    if has_any(w, BYE) || has_phrase(text, &["see you"]) {
        return Intent::Goodbye;
    }
    if has_any(w, GREET) || has_phrase(text, &["good morning", "good afternoon", "good evening"]) {
        return Intent::Greet;
    }
    if w.iter().any(|x| x == "order" || x == "orders") {
        return Intent::OrderStatus;
    }
    Intent::Unknown
}

fn ordinal(w: &[String]) -> Option<usize> {
    const ORDINALS: &[(&[&str], usize)] = &[
        (&["first", "1st", "one"], 0),
        (&["second", "2nd", "two"], 1),
        (&["third", "3rd", "three"], 2),
        (&["fourth", "4th", "four"], 3),
        (&["fifth", "5th", "five"], 4),
        (&["last", "latest", "newest", "recent"], LAST),
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

    #[test]
    fn asking_for_a_person() {
        for t in [
            "can I talk to a human?",
            "agent",
            "I want a real person about my refund",
        ] {
            assert_eq!(understand(t).intent, Intent::HumanAgent, "{t}");
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
            assert_eq!(understand(t).intent, Intent::OrderStatus, "{t}");
        }
    }

    #[test]
    fn yes_and_no() {
        for t in ["yes", "Yes please", "sure", "ok go ahead", "yep"] {
            assert_eq!(understand(t).intent, Intent::Affirm, "{t}");
        }
        for t in ["no", "no thanks", "nope", "no, don't refund it"] {
            assert_eq!(understand(t).intent, Intent::Deny, "{t}");
        }
    }

    #[test]
    fn refunds_and_small_talk() {
        assert_eq!(
            understand("I want my money back").intent,
            Intent::RequestRefund
        );
        assert_eq!(
            understand("can I get a refund for 1003").intent,
            Intent::RequestRefund
        );
        assert_eq!(understand("hello there").intent, Intent::Greet);
        assert_eq!(understand("thanks a lot!").intent, Intent::Thanks);
        assert_eq!(understand("bye").intent, Intent::Goodbye);
        assert_eq!(
            understand("what's the weather like").intent,
            Intent::Unknown
        );
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
        assert_eq!(understand("2").ordinal, Some(1));
        assert_eq!(understand("that one").ordinal, None);
    }
}
