//! Understanding a customer's message: intent and entities.
//!
//! Intents come from an embedded linear classifier (`intent_model`, trained by `tools/nlu-train`
//! on the project's own examples) with probabilities and two thresholds; entities from
//! `entities`. Bare yes/no answers and bare numbers are read without the model.

use std::sync::LazyLock;

use regex::Regex;

use crate::intent_model::IntentModel;

/// What a customer wants. The set covers every intent of the Bitext customer-service taxonomy
/// (orders, cancellations, refunds, payments, delivery, shipping address, invoices, account,
/// newsletter, complaints, reviews, contact) plus conversation moves, product availability and
/// out-of-scope. `name()` is the stable snake_case name used in config, logs and evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Intent {
    // Orders
    /// "Where's my order?" (Bitext `track_order`).
    OrderStatus,
    PlaceOrder,
    ChangeOrder,
    CancelOrder,
    CheckCancellationFee,
    // Refunds
    /// "I want my money back" (Bitext `get_refund`).
    RequestRefund,
    TrackRefund,
    CheckRefundPolicy,
    // Payments and invoices
    CheckPaymentMethods,
    PaymentIssue,
    CheckInvoice,
    GetInvoice,
    // Delivery and addresses
    DeliveryOptions,
    DeliveryPeriod,
    ChangeShippingAddress,
    SetUpShippingAddress,
    // Account
    CreateAccount,
    EditAccount,
    DeleteAccount,
    SwitchAccount,
    RecoverPassword,
    RegistrationProblems,
    NewsletterSubscription,
    // Feedback and contact
    Complaint,
    Review,
    ContactCustomerService,
    /// "Can I talk to a person?" (Bitext `contact_human_agent`).
    HumanAgent,
    // Beyond Bitext
    ProductAvailability,
    Affirm,
    Deny,
    Greet,
    Thanks,
    Goodbye,
    /// Something a shop's support bot does not do (weather, flights, recipes...).
    OutOfScope,
    /// Not understood well enough to act on.
    Unknown,
}

impl Intent {
    pub const ALL: [Intent; 35] = [
        Intent::OrderStatus,
        Intent::PlaceOrder,
        Intent::ChangeOrder,
        Intent::CancelOrder,
        Intent::CheckCancellationFee,
        Intent::RequestRefund,
        Intent::TrackRefund,
        Intent::CheckRefundPolicy,
        Intent::CheckPaymentMethods,
        Intent::PaymentIssue,
        Intent::CheckInvoice,
        Intent::GetInvoice,
        Intent::DeliveryOptions,
        Intent::DeliveryPeriod,
        Intent::ChangeShippingAddress,
        Intent::SetUpShippingAddress,
        Intent::CreateAccount,
        Intent::EditAccount,
        Intent::DeleteAccount,
        Intent::SwitchAccount,
        Intent::RecoverPassword,
        Intent::RegistrationProblems,
        Intent::NewsletterSubscription,
        Intent::Complaint,
        Intent::Review,
        Intent::ContactCustomerService,
        Intent::HumanAgent,
        Intent::ProductAvailability,
        Intent::Affirm,
        Intent::Deny,
        Intent::Greet,
        Intent::Thanks,
        Intent::Goodbye,
        Intent::OutOfScope,
        Intent::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Intent::OrderStatus => "order_status",
            Intent::PlaceOrder => "place_order",
            Intent::ChangeOrder => "change_order",
            Intent::CancelOrder => "cancel_order",
            Intent::CheckCancellationFee => "check_cancellation_fee",
            Intent::RequestRefund => "request_refund",
            Intent::TrackRefund => "track_refund",
            Intent::CheckRefundPolicy => "check_refund_policy",
            Intent::CheckPaymentMethods => "check_payment_methods",
            Intent::PaymentIssue => "payment_issue",
            Intent::CheckInvoice => "check_invoice",
            Intent::GetInvoice => "get_invoice",
            Intent::DeliveryOptions => "delivery_options",
            Intent::DeliveryPeriod => "delivery_period",
            Intent::ChangeShippingAddress => "change_shipping_address",
            Intent::SetUpShippingAddress => "set_up_shipping_address",
            Intent::CreateAccount => "create_account",
            Intent::EditAccount => "edit_account",
            Intent::DeleteAccount => "delete_account",
            Intent::SwitchAccount => "switch_account",
            Intent::RecoverPassword => "recover_password",
            Intent::RegistrationProblems => "registration_problems",
            Intent::NewsletterSubscription => "newsletter_subscription",
            Intent::Complaint => "complaint",
            Intent::Review => "review",
            Intent::ContactCustomerService => "contact_customer_service",
            Intent::HumanAgent => "human_agent",
            Intent::ProductAvailability => "product_availability",
            Intent::Affirm => "affirm",
            Intent::Deny => "deny",
            Intent::Greet => "greet",
            Intent::Thanks => "thanks",
            Intent::Goodbye => "goodbye",
            Intent::OutOfScope => "out_of_scope",
            Intent::Unknown => "unknown",
        }
    }

    pub fn from_name(name: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.name() == name)
    }

    /// The intent a Bitext customer-service label stands for (for evaluation): the same name,
    /// but for the three the project names differently.
    pub fn from_bitext(label: &str) -> Option<Intent> {
        match label {
            "track_order" => Some(Intent::OrderStatus),
            "get_refund" => Some(Intent::RequestRefund),
            "contact_human_agent" => Some(Intent::HumanAgent),
            other => Intent::from_name(other).filter(|i| i.is_bitext()),
        }
    }

    /// One of the 27 Bitext intents (the shop's in-scope taxonomy).
    pub fn is_bitext(self) -> bool {
        !matches!(
            self,
            Intent::ProductAvailability
                | Intent::Affirm
                | Intent::Deny
                | Intent::Greet
                | Intent::Thanks
                | Intent::Goodbye
                | Intent::OutOfScope
                | Intent::Unknown
        )
    }

    /// The bot will not act on it: out of scope, or not understood.
    pub fn is_rejection(self) -> bool {
        matches!(self, Intent::OutOfScope | Intent::Unknown)
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

pub const LAST: usize = usize::MAX;
/// "the latest", "my newest": the most recent of the orders, wherever a list put it.
pub const NEWEST: usize = usize::MAX - 1;

/// The model `tools/nlu-train` trained from `config/bot/examples/en/`; `nlu-train --check` (run by
/// `./dev/test`) proves it is what those templates train to.
pub static MODEL_BYTES: &[u8] = include_bytes!("../../config/bot/model.bin");

static MODEL: LazyLock<IntentModel> = LazyLock::new(|| {
    // A build-time constant, parsed by a unit test on every build: failing here means the
    // binary was built from a broken checkout.
    IntentModel::from_bytes(MODEL_BYTES).expect("the embedded intent model parses")
});

/// Parses the embedded model and compiles the entity patterns, so the first turn does not pay.
pub fn warm_up() {
    LazyLock::force(&MODEL);
    understand("warm up #1002 on 2026-11-25, $1");
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
        Some(Intent::Affirm)
    } else if NO.contains(&joined.as_str()) {
        Some(Intent::Deny)
    } else {
        None
    }
}

pub fn understand(text: &str) -> Understanding {
    understand_with(text, Thresholds::default())
}

pub fn understand_with(text: &str, thresholds: Thresholds) -> Understanding {
    let w = words(text);
    // Phone numbers, amounts and dates are taken out first, so their digits are never
    // mistaken for an order number.
    let entities = crate::entities::extract(text, time::OffsetDateTime::now_utc().date(), &[]);
    let mut u = Understanding {
        intent: Intent::Unknown,
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
    let ranked = MODEL.predict(text);
    let (top, p) = ranked.first().copied().unwrap_or((Intent::Unknown, 0.0));
    u.confidence = p;
    if p >= thresholds.accept {
        u.intent = top;
    } else if p >= thresholds.clarify && !top.is_rejection() {
        u.unsure_between = ranked
            .get(1)
            .filter(|(second, _)| !second.is_rejection())
            .map(|(second, _)| (top, *second));
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

/// The classifier's probabilities for every intent, most likely first (for evaluation).
pub fn rank(text: &str) -> Vec<(Intent, f32)> {
    MODEL.predict(text)
}

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

    #[test]
    fn intent_names_round_trip_and_bitext_labels_map() {
        for i in Intent::ALL {
            assert_eq!(Intent::from_name(i.name()), Some(i));
        }
        let bitext: Vec<Intent> = Intent::ALL.into_iter().filter(|i| i.is_bitext()).collect();
        assert_eq!(bitext.len(), 27);
        assert_eq!(
            Intent::from_bitext("track_order"),
            Some(Intent::OrderStatus)
        );
        assert_eq!(
            Intent::from_bitext("cancel_order"),
            Some(Intent::CancelOrder)
        );
        assert_eq!(Intent::from_bitext("greet"), None, "not a Bitext label");
        assert_eq!(Intent::from_bitext("weather"), None);
    }

    #[test]
    fn asking_for_a_person() {
        for t in [
            "can I talk to a human?",
            "agent",
            "I want to speak to a real person",
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
            Intent::OutOfScope
        );
    }

    #[test]
    fn the_embedded_model_parses_and_covers_every_intent_it_can_predict() {
        let m = IntentModel::from_bytes(MODEL_BYTES).unwrap();
        for i in Intent::ALL {
            // `unknown` is what a low probability means, never a class of its own.
            assert_eq!(m.classes.contains(&i), i != Intent::Unknown, "{}", i.name());
        }
    }

    #[test]
    fn each_area_of_the_shop_is_understood() {
        for (t, expected) in [
            ("I want to cancel my order", Intent::CancelOrder),
            ("how do I reset my password", Intent::RecoverPassword),
            (
                "what payment methods do you accept",
                Intent::CheckPaymentMethods,
            ),
            ("I'd like to file a complaint", Intent::Complaint),
            (
                "please unsubscribe me from the newsletter",
                Intent::NewsletterSubscription,
            ),
            ("how long does shipping take", Intent::DeliveryPeriod),
            ("I need a copy of my invoice", Intent::GetInvoice),
            ("set an alarm for 7am", Intent::OutOfScope),
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
        assert_eq!(u.intent, Intent::Unknown);
        let (first, second) = u.unsure_between.expect("between the thresholds");
        assert_eq!(first, Intent::CancelOrder);
        assert_ne!(second, first);
        assert!(u.confidence > 0.0 && u.confidence < 1.0);
    }

    #[test]
    fn some_clarification_probe_is_unsure_between_two_shop_intents() {
        let unsure: Vec<(Intent, Intent)> = CLARIFY_PROBES
            .iter()
            .filter_map(|p| understand(p).unsure_between)
            .collect();
        let (a, b) = unsure
            .first()
            .copied()
            .expect("a probe between the thresholds");
        assert!(a.is_bitext() && b.is_bitext(), "{a:?} {b:?}");
    }

    #[test]
    fn bare_numbers_and_odd_input_are_not_guessed_at() {
        for t in ["1002", "#1002", "2", "", "   ", "🙂🙂", "!!!"] {
            let u = understand(t);
            assert_eq!(u.intent, Intent::Unknown, "{t:?}");
            assert!(u.unsure_between.is_none());
        }
        let long = "where is my order ".repeat(250);
        assert_eq!(understand(&long).intent, Intent::OrderStatus);
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
