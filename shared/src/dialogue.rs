//! The dialogue: given where a conversation stands and what the customer said, what the bot says,
//! where the conversation goes next, and which jobs to start. Deterministic: connectors are read
//! through ports, and side effects only ever leave as jobs.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::auth::Principal;
use crate::connectors::{ConnectorError, Order, OrderStatus, OrdersPort};
use crate::conversation::{DialogueState, Slots};
use crate::jobs::JobKind;
use crate::nlu::{self, Intent, Understanding, LAST};

/// How many orders "which order?" lists.
const MAX_CHOICES: usize = 5;
/// Orders older than this are not "recent" for "where's my order?".
const RECENT_DAYS: i64 = 90;

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub replies: Vec<String>,
    pub state: DialogueState,
    pub slots: Slots,
    pub jobs: Vec<JobKind>,
}

pub struct Dialogue {
    orders: Arc<dyn OrdersPort>,
    /// Where customers update their payment method (the billing portal), if the company has one.
    payment_update_url: Option<String>,
}

const HELP: &str = "I can check where your order is, tell you if it's running late, and refund late orders. Try \"where's my order?\"";
const SYSTEM_DOWN: &str =
    "I can't reach the order system right now — please try again in a few minutes.";

fn date(t: OffsetDateTime) -> String {
    format!("{} {}", t.month(), t.day())
}

impl Dialogue {
    pub fn new(orders: Arc<dyn OrdersPort>) -> Self {
        Self {
            orders,
            payment_update_url: None,
        }
    }

    pub fn with_payment_update_url(mut self, url: Option<String>) -> Self {
        self.payment_update_url = url;
        self
    }

    pub async fn respond(
        &self,
        who: &Principal,
        state: &DialogueState,
        slots: &Slots,
        text: &str,
        now: OffsetDateTime,
    ) -> Outcome {
        let u = nlu::understand(text);
        let mut turn = Turn {
            who,
            now,
            refund_asked: false,
            out: Outcome {
                replies: Vec::new(),
                state: DialogueState::Idle,
                slots: slots.clone(),
                jobs: Vec::new(),
            },
        };

        match state {
            DialogueState::AwaitingOrderChoice { candidates } => {
                if let Some(order_id) = pick(candidates, &u) {
                    self.report(&mut turn, &order_id).await;
                    return turn.out;
                }
                if matches!(u.intent, Intent::Unknown | Intent::Affirm) {
                    // Still waiting for an answer: ask again rather than forget the question.
                    turn.say(format!(
                        "Sorry, which order did you mean? Reply with its number, for example #{}.",
                        candidates.first().map(String::as_str).unwrap_or("1001")
                    ));
                    turn.out.state = state.clone();
                    return turn.out;
                }
            }
            DialogueState::RefundOffered { order_id, amount } => {
                match u.intent {
                    Intent::Affirm => {
                        turn.say(format!(
                        "Done — I've requested a refund of {amount} for order #{order_id}. I'll confirm here as soon as it goes through."
                    ));
                        turn.out.slots.refunds_requested.push(order_id.clone());
                        turn.out.jobs.push(JobKind::RefundRequest {
                            order_id: order_id.clone(),
                            amount: amount.clone(),
                        });
                        return turn.out;
                    }
                    Intent::Deny => {
                        turn.say("No problem, I won't refund it. Is there anything else I can help with?".to_string());
                        return turn.out;
                    }
                    _ => {}
                }
            }
            DialogueState::PaymentHelpOffered { payment_url } => match u.intent {
                Intent::Affirm => {
                    self.payment_options(&mut turn, payment_url.clone());
                    return turn.out;
                }
                Intent::Deny => {
                    turn.say(
                        "No problem. If you'd like help with the payment later, just ask."
                            .to_string(),
                    );
                    return turn.out;
                }
                _ => {}
            },
            DialogueState::PaymentHelpOptions { payment_url } => match payment_choice(text, &u) {
                Some(PaymentChoice::Retry) => {
                    let link = payment_url
                        .as_deref()
                        .or(self.payment_update_url.as_deref());
                    turn.say(match link {
                            Some(url) => format!("You can retry the payment here: {url}\nIt goes through straight away if the card is fine now."),
                            None => "Please retry the payment from the billing page of your account; it goes through straight away if the card is fine now.".to_string(),
                        });
                    // The other options stay open: "and 2?" still works.
                    turn.out.state = state.clone();
                    return turn.out;
                }
                Some(PaymentChoice::Update) => {
                    turn.say(match &self.payment_update_url {
                            Some(url) => format!("You can update your payment method here: {url}\nWe'll retry the payment with the new details."),
                            None => "You can update your payment method in your account settings; we'll retry the payment with the new details.".to_string(),
                        });
                    turn.out.state = state.clone();
                    return turn.out;
                }
                Some(PaymentChoice::Person) => {
                    handoff(&mut turn);
                    return turn.out;
                }
                None if matches!(u.intent, Intent::Unknown | Intent::Affirm) => {
                    self.payment_options(&mut turn, payment_url.clone());
                    return turn.out;
                }
                None => {}
            },
            DialogueState::Idle => {}
        }

        match u.intent {
            Intent::OrderStatus | Intent::RequestRefund => {
                turn.refund_asked = u.intent == Intent::RequestRefund;
                // "Can I get a refund?" right after discussing an order means that order.
                let order_id = u.order_refs.first().cloned().or_else(|| {
                    if turn.refund_asked {
                        slots.order_id.clone()
                    } else {
                        None
                    }
                });
                match order_id {
                    Some(id) => self.report(&mut turn, &id).await,
                    None => self.which_order(&mut turn, u.ordinal).await,
                }
            }
            Intent::Greet => turn.say(format!("Hi! {HELP}")),
            Intent::Thanks => {
                turn.say("You're welcome! Anything else I can help with?".to_string())
            }
            Intent::Goodbye => {
                turn.say("Bye for now — I'm here if you need anything else.".to_string())
            }
            Intent::HumanAgent => handoff(&mut turn),
            Intent::Affirm | Intent::Deny => {
                turn.say(format!("I'm not sure what that answers. {HELP}"))
            }
            // Intents without a flow yet (issue 5) fall back like an unclear message.
            _ => match u.order_refs.first() {
                Some(id) => self.report(&mut turn, &id.clone()).await,
                None => turn.say(format!("Sorry, I didn't catch that. {HELP}")),
            },
        }
        turn.out
    }

    fn payment_options(&self, turn: &mut Turn<'_>, payment_url: Option<String>) {
        turn.say("Happy to help. I can:\n1. give you a link to retry the payment\n2. help you update your payment method\n3. get a person from our team\nReply 1, 2 or 3.".to_string());
        turn.out.state = DialogueState::PaymentHelpOptions { payment_url };
    }

    /// "Where's my order?" with no number: answer for the only recent order, or ask which.
    async fn which_order(&self, turn: &mut Turn<'_>, ordinal: Option<usize>) {
        let orders = match self.orders.recent_orders(&turn.who.customer_id).await {
            Ok(orders) => orders,
            Err(e) => return turn.unavailable(e),
        };
        let cutoff = turn.now - time::Duration::days(RECENT_DAYS);
        let recent: Vec<&Order> = orders
            .iter()
            .filter(|o| o.placed_at >= cutoff && o.customer_id == turn.who.customer_id)
            .take(MAX_CHOICES)
            .collect();
        match (recent.as_slice(), ordinal) {
            ([], _) => turn.say(
                "I can't find any recent orders on your account. If you have an order number, send it to me.".to_string(),
            ),
            ([only], _) => self.describe(turn, only),
            (many, Some(LAST)) => self.describe(turn, many[0]),
            (many, _) => {
                let list = many
                    .iter()
                    .enumerate()
                    .map(|(i, o)| format!("{}. {} placed {}", i + 1, o.summary(), date(o.placed_at)))
                    .collect::<Vec<_>>()
                    .join("\n");
                turn.say(format!("You have {} recent orders. Which one do you mean?\n{list}", many.len()));
                turn.out.state = DialogueState::AwaitingOrderChoice {
                    candidates: many.iter().map(|o| o.id.clone()).collect(),
                };
            }
        }
    }

    async fn report(&self, turn: &mut Turn<'_>, order_id: &str) {
        match self.orders.order(order_id).await {
            // Another customer's order looks exactly like one that does not exist.
            Ok(Some(order)) if order.customer_id == turn.who.customer_id => {
                self.describe(turn, &order)
            }
            Ok(_) => turn.say(format!(
                "I couldn't find order #{order_id} on your account. Could you check the number?"
            )),
            Err(e) => turn.unavailable(e),
        }
    }

    fn describe(&self, turn: &mut Turn<'_>, o: &Order) {
        turn.out.slots.order_id = Some(o.id.clone());
        let carrier = o.carrier.as_deref().unwrap_or("the carrier");
        let status = match o.status {
            OrderStatus::Processing => format!(
                "Order {} is being prepared and hasn't shipped yet.",
                o.summary()
            ),
            OrderStatus::Shipped | OrderStatus::InTransit => {
                format!("Order {} is on its way with {carrier}.", o.summary())
            }
            OrderStatus::OutForDelivery => format!(
                "Order {} is out for delivery with {carrier} today.",
                o.summary()
            ),
            OrderStatus::Delivered => match o.delivered_at {
                Some(at) => format!("Order {} was delivered on {}.", o.summary(), date(at)),
                None => format!("Order {} has been delivered.", o.summary()),
            },
            OrderStatus::Cancelled => format!("Order {} was cancelled.", o.summary()),
            OrderStatus::Unknown => format!(
                "Order {} is being handled; I don't have more detail on its status.",
                o.summary()
            ),
        };
        // One line each, so a link never runs into the next sentence.
        let mut lines = vec![status];
        let finished = matches!(o.status, OrderStatus::Delivered | OrderStatus::Cancelled);
        if let (Some(url), false) = (&o.tracking_url, o.status == OrderStatus::Cancelled) {
            lines.push(format!("Tracking: {url}"));
        }
        if o.is_late(turn.now) {
            let due = o.promised_by.map(date).unwrap_or_default();
            if turn.out.slots.refunds_requested.contains(&o.id) {
                lines.push(format!("It was due by {due} and is running late; the refund you asked for is on its way."));
            } else {
                lines.push(format!(
                    "It was due by {due}, so it's running late — sorry about that. Would you like a refund of {}?",
                    o.total
                ));
                turn.out.state = DialogueState::RefundOffered {
                    order_id: o.id.clone(),
                    amount: o.total.clone(),
                };
            }
        } else if let (Some(due), false) = (o.promised_by, finished) {
            lines.push(format!("It's expected by {}.", date(due)));
        }
        if turn.refund_asked
            && !o.is_late(turn.now)
            && !turn.out.slots.refunds_requested.contains(&o.id)
        {
            lines.push("I can refund orders that are running late; for anything else, our support team will help.".into());
        }
        let text = lines.join("\n");
        turn.say(text);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PaymentChoice {
    Retry,
    Update,
    Person,
}

/// An answer to the payment-help options, by number or by what it says.
fn payment_choice(text: &str, u: &Understanding) -> Option<PaymentChoice> {
    if u.intent == Intent::HumanAgent {
        return Some(PaymentChoice::Person);
    }
    let lower = text.to_lowercase();
    if ["update", "change", "new card", "another card", "method"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Some(PaymentChoice::Update);
    }
    if ["retry", "try again", "pay again", "link"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Some(PaymentChoice::Retry);
    }
    match u.ordinal {
        Some(0) => Some(PaymentChoice::Retry),
        Some(1) => Some(PaymentChoice::Update),
        Some(2) => Some(PaymentChoice::Person),
        _ => None,
    }
}

/// Marks the conversation for a person; agent tooling picks up flagged conversations.
fn handoff(turn: &mut Turn<'_>) {
    turn.out.slots.handoff_requested = true;
    turn.say("I've asked a member of our team to take over — they'll reply right here, usually within a few hours.".to_string());
}

/// Resolves an answer to "which order?" against the listed candidates.
fn pick(candidates: &[String], u: &Understanding) -> Option<String> {
    if let Some(r) = u
        .order_refs
        .iter()
        .find(|r| candidates.iter().any(|c| c.eq_ignore_ascii_case(r)))
    {
        return Some(r.clone());
    }
    if let Some(r) = u.order_refs.first() {
        // A number that was not listed is still an answer; ownership is checked on lookup.
        return Some(r.clone());
    }
    match u.ordinal? {
        LAST => candidates.last().cloned(),
        i => candidates.get(i).cloned(),
    }
}

struct Turn<'a> {
    who: &'a Principal,
    now: OffsetDateTime,
    refund_asked: bool,
    out: Outcome,
}

impl Turn<'_> {
    fn say(&mut self, text: String) {
        self.out.replies.push(text);
    }

    fn unavailable(&mut self, e: ConnectorError) {
        tracing::warn!(error = %e, "connector call failed during a turn");
        self.say(SYSTEM_DOWN.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use async_trait::async_trait;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

    struct FakeOrders(Vec<Order>, bool);

    #[async_trait]
    impl OrdersPort for FakeOrders {
        async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
            if self.1 {
                return Err(ConnectorError::Unavailable {
                    system: "orders",
                    detail: "down".into(),
                });
            }
            Ok(self
                .0
                .iter()
                .filter(|o| o.customer_id == customer_id)
                .cloned()
                .collect())
        }
        async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
            if self.1 {
                return Err(ConnectorError::Unavailable {
                    system: "orders",
                    detail: "down".into(),
                });
            }
            Ok(self.0.iter().find(|o| o.id == id).cloned())
        }
    }

    fn order(id: &str, customer: &str, status: OrderStatus, promised: OffsetDateTime) -> Order {
        Order {
            id: id.into(),
            customer_id: customer.into(),
            status,
            placed_at: NOW - time::Duration::days(10),
            promised_by: Some(promised),
            delivered_at: None,
            carrier: Some("UPS".into()),
            tracking_url: Some(format!("https://track.example/{id}")),
            total: Money {
                amount_cents: 4599,
                currency: "USD".into(),
            },
            items: vec![],
        }
    }

    fn who(c: &str) -> Principal {
        Principal {
            tenant: "t".into(),
            customer_id: c.into(),
        }
    }

    fn dialogue(orders: Vec<Order>) -> Dialogue {
        Dialogue::new(Arc::new(FakeOrders(orders, false)))
    }

    fn catalogue() -> Vec<Order> {
        vec![
            order(
                "1001",
                "alice",
                OrderStatus::InTransit,
                NOW + time::Duration::days(2),
            ),
            order(
                "1002",
                "alice",
                OrderStatus::InTransit,
                NOW - time::Duration::days(3),
            ),
            order(
                "2001",
                "bob",
                OrderStatus::InTransit,
                NOW - time::Duration::days(3),
            ),
        ]
    }

    #[tokio::test]
    async fn yes_to_payment_help_lists_options_then_each_option_answers() {
        let d =
            dialogue(vec![]).with_payment_update_url(Some("https://shop.example/billing".into()));
        let offered = DialogueState::PaymentHelpOffered {
            payment_url: Some("https://pay.example/i/1".into()),
        };
        let say = |state: DialogueState, text: &'static str| {
            let d = &d;
            async move {
                d.respond(&who("alice"), &state, &Slots::default(), text, NOW)
                    .await
            }
        };
        let options = say(offered.clone(), "yes").await;
        assert!(
            options.replies[0].contains("Reply 1, 2 or 3"),
            "{:?}",
            options.replies
        );
        assert!(matches!(
            options.state,
            DialogueState::PaymentHelpOptions { .. }
        ));

        let retry = say(options.state.clone(), "1").await;
        assert!(
            retry.replies[0].contains("https://pay.example/i/1"),
            "{:?}",
            retry.replies
        );
        assert_eq!(retry.state, options.state, "the other options stay open");
        let update = say(options.state.clone(), "I'd like to change my card").await;
        assert!(update.replies[0].contains("https://shop.example/billing"));
        let person = say(options.state.clone(), "3").await;
        assert!(person.slots.handoff_requested);
        let unclear = say(options.state.clone(), "hmm").await;
        assert_eq!(
            unclear.state, options.state,
            "the options are offered again"
        );

        let no = say(offered, "no thanks").await;
        assert_eq!(no.state, DialogueState::Idle);
    }

    #[tokio::test]
    async fn several_orders_ask_which_then_report_and_offer_refund() {
        let d = dialogue(catalogue());
        let first = d
            .respond(
                &who("alice"),
                &DialogueState::Idle,
                &Slots::default(),
                "where's my order?",
                NOW,
            )
            .await;
        assert!(
            first.replies[0].contains("Which one"),
            "{:?}",
            first.replies
        );
        assert_eq!(
            first.state,
            DialogueState::AwaitingOrderChoice {
                candidates: vec!["1001".into(), "1002".into()]
            }
        );

        let second = d
            .respond(
                &who("alice"),
                &first.state,
                &first.slots,
                "the second one",
                NOW,
            )
            .await;
        let reply = &second.replies[0];
        assert!(
            reply.contains("#1002")
                && reply.contains("UPS")
                && reply.contains("track.example/1002"),
            "{reply}"
        );
        assert!(reply.contains("refund of $45.99"), "{reply}");
        assert!(
            matches!(second.state, DialogueState::RefundOffered { ref order_id, .. } if order_id == "1002")
        );

        let third = d
            .respond(
                &who("alice"),
                &second.state,
                &second.slots,
                "yes please",
                NOW,
            )
            .await;
        assert_eq!(third.jobs.len(), 1);
        assert_eq!(third.state, DialogueState::Idle);
        assert_eq!(third.slots.refunds_requested, vec!["1002".to_string()]);
    }

    #[tokio::test]
    async fn on_time_orders_are_not_offered_refunds() {
        let d = dialogue(catalogue());
        let out = d
            .respond(
                &who("alice"),
                &DialogueState::Idle,
                &Slots::default(),
                "where is #1001",
                NOW,
            )
            .await;
        assert!(out.replies[0].contains("expected by"));
        assert_eq!(out.state, DialogueState::Idle);
        assert!(out.jobs.is_empty());
    }

    #[tokio::test]
    async fn another_customers_order_looks_missing() {
        let d = dialogue(catalogue());
        let theirs = d
            .respond(
                &who("alice"),
                &DialogueState::Idle,
                &Slots::default(),
                "where is 2001",
                NOW,
            )
            .await;
        let missing = d
            .respond(
                &who("alice"),
                &DialogueState::Idle,
                &Slots::default(),
                "where is 9999",
                NOW,
            )
            .await;
        assert_eq!(
            theirs.replies[0].replace("2001", "X"),
            missing.replies[0].replace("9999", "X")
        );
    }

    #[tokio::test]
    async fn declining_a_refund_starts_no_job() {
        let d = dialogue(catalogue());
        let offered = DialogueState::RefundOffered {
            order_id: "1002".into(),
            amount: Money {
                amount_cents: 1,
                currency: "USD".into(),
            },
        };
        let out = d
            .respond(&who("alice"), &offered, &Slots::default(), "no thanks", NOW)
            .await;
        assert!(out.jobs.is_empty());
        assert_eq!(out.state, DialogueState::Idle);
    }

    #[tokio::test]
    async fn a_down_order_system_gets_a_graceful_reply() {
        let d = Dialogue::new(Arc::new(FakeOrders(vec![], true)));
        let out = d
            .respond(
                &who("alice"),
                &DialogueState::Idle,
                &Slots::default(),
                "where's my order",
                NOW,
            )
            .await;
        assert_eq!(out.replies, vec![SYSTEM_DOWN.to_string()]);
    }

    #[tokio::test]
    async fn a_single_order_is_reported_directly() {
        let d = dialogue(catalogue());
        let out = d
            .respond(
                &who("bob"),
                &DialogueState::Idle,
                &Slots::default(),
                "where's my stuff? track it",
                NOW,
            )
            .await;
        assert!(out.replies[0].contains("#2001"));
    }
}
