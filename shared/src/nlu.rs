//! Understanding a customer's message: intent and entities.
//!
//! A small keyword model covering the first flow (order status, refunds, yes/no, small talk). The
//! embedded statistical classifier replaces `classify` later; `Understanding` stays the interface.

use std::sync::LazyLock;

use regex::Regex;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Understanding {
    pub intent: Intent,
    /// Order numbers as written, without a leading `#`, upper-cased.
    pub order_refs: Vec<String>,
    /// "the first one", "2nd", "the last one": 0-based; `usize::MAX` means the last.
    pub ordinal: Option<usize>,
}

pub const LAST: usize = usize::MAX;

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
        // Phone numbers, amounts and dates are taken out first, so their digits are never
        // mistaken for an order number.
        order_refs: crate::entities::extract(text, time::OffsetDateTime::now_utc().date(), &[])
            .order_refs,
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
