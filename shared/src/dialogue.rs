//! The dialogue: given where a conversation stands and what the customer said, what the bot says,
//! where the conversation goes next, and which jobs to start. Deterministic: connectors are read
//! through ports, and side effects only ever leave as jobs.
//!
//! Built-in flows answer orders (status, late-order refunds), refunds already asked for, the
//! payment help a vendor event opens, small talk and handoffs; every other intent gets its
//! answer in the bot bundle (`bot`), asking "which order?" first where the answer names one.
//! Between the classifier's two thresholds the bot asks which of two intents was meant; below,
//! it lists what it can help with. Connector calls share the turn's latency budget: a lookup
//! that misses it is finished by an `answer.deferred` job.

pub mod host;
mod run_flow;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::auth::Principal;
use crate::bot::messages::{Messages, Value as MsgValue};
use crate::bot::{Action, Bot};
use crate::connectors::{ConnectorError, InventoryPort, Order, OrderStatus, OrdersPort};
use crate::conversation::{DialogueState, Slots};
use crate::jobs::{refund_key, JobKind};
use crate::nlu::{Intent, Move, Nlu, Thresholds, Understanding, LAST, NEWEST};
use crate::store::{EffectLedger, EffectOutcome, EffectState};
use host::OverBudget;

/// How many orders "which order?" lists.
const MAX_CHOICES: usize = 5;
/// Orders older than this are not "recent" for "where's my order?".
const RECENT_DAYS: i64 = 90;
/// A returning customer hears about at most this many refunds.
const MAX_WELCOME_REFUNDS: usize = 3;

// The intents whose flows are still built in here, by the names the shop bundle gives them
// (issue 19's flow engine takes them over).
const ORDER_STATUS: &str = "order_status";
const REQUEST_REFUND: &str = "request_refund";
const PRODUCT_AVAILABILITY: &str = "product_availability";
/// The handoff reason of the payment help's "get a person".
const PAYMENT_ISSUE: &str = "payment_issue";

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub replies: Vec<String>,
    pub state: DialogueState,
    pub slots: Slots,
    pub jobs: Vec<JobKind>,
    /// A lookup missed the latency budget: the replies say "let me check", state and slots are
    /// unchanged, and the caller starts an `answer.deferred` job for the message.
    pub deferred: bool,
    /// What was understood and how the turn ended, for logs and metrics (never shown).
    pub facts: TurnFacts,
}

/// What a turn understood and how it ended: the request log's `intent`, `confidence` and
/// `outcome`, and the `Fallback` / `Handoff` rates.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnFacts {
    pub intent: Intent,
    pub confidence: f32,
    pub ending: Ending,
}

impl Default for TurnFacts {
    fn default() -> Self {
        Self {
            intent: Intent::unknown(),
            confidence: 0.0,
            ending: Ending::Answered,
        }
    }
}

/// How a turn ended. `Fallback` and `Handoff` are the conversation's exits: the bot did not
/// understand, or passed the customer to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Answered,
    /// Asked which of two intents was meant.
    Clarified,
    Fallback,
    Handoff,
    /// "Let me check": a lookup missed the turn's budget; a job answers.
    Deferred,
    /// A person has the conversation: stored, the bot silent.
    WithAgent,
    /// A retried message (same client_message_id) answered as before.
    Replayed,
}

impl Ending {
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Answered => "answered",
            Ending::Clarified => "clarified",
            Ending::Fallback => "fallback",
            Ending::Handoff => "handoff",
            Ending::Deferred => "deferred",
            Ending::WithAgent => "with_agent",
            Ending::Replayed => "replayed",
        }
    }
}

pub struct Dialogue {
    orders: Arc<dyn OrdersPort>,
    /// Where customers update their payment method (the billing portal), if the company has one.
    payment_update_url: Option<String>,
    /// Intents' answers and descriptions, and what the bot says.
    bot: Arc<Bot>,
    /// The bot's sentences (its default language).
    messages: Arc<Messages>,
    nlu: Nlu,
    /// The time connector calls may take in one turn; `None` waits as long as they take (the
    /// deferred answer, in fulfillment).
    budget: Option<Duration>,
    /// Where refunds stand (the fulfillment effect ledger), for "where's my refund?" and return
    /// visits.
    ledger: Option<Arc<dyn EffectLedger>>,
    /// Stock, for "is the desk lamp in stock?"; without it the configured answer is given.
    inventory: Option<Arc<dyn InventoryPort>>,
    /// The company's own operations (`boxes.get_subscription`), for the flows that read them.
    operations: Option<Arc<dyn crate::connectors::OperationsPort>>,
}

pub const SYSTEM_DOWN: &str =
    "I can't reach the order system right now — please try again in a few minutes.";
pub const STOCK_DOWN: &str = "I can't check stock right now — please try again in a few minutes.";
pub const LET_ME_CHECK: &str = "Let me check — I'll message you here in a moment.";
/// A chat turn whose system is down (or whose circuit is open): the deferred job tries again.
pub const DOWN_WILL_MESSAGE: &str =
    "I can't reach our systems right now — I'll message you here as soon as I have your answer.";
/// The deferred job kept trying for as long as it may and the system stayed down.
pub const DEFERRED_GAVE_UP: &str = "Sorry — I still can't reach our systems, so I couldn't find that out. Would you like me to get a person from our team to help?";
/// The same, when the customer has moved on since asking: nothing is asked, so a later "yes"
/// cannot be read as an answer to it.
pub const DEFERRED_GAVE_UP_LATE: &str = "Sorry — I still can't reach our systems, so I couldn't answer your earlier question. If you'd like help from our team, say \"talk to a person\".";

fn date(t: OffsetDateTime) -> String {
    format!("{} {}", t.month(), t.day())
}

/// An intent's configured answer: a message key.
struct Answer {
    key: String,
    needs_order: bool,
    handoff: bool,
}

impl Answer {
    fn for_order(&self, messages: &Messages, order_id: Option<&str>) -> String {
        match order_id {
            Some(id) => messages.render(&self.key, &[("order", MsgValue::Text(id.into()))]),
            None => messages.render(&self.key, &[]),
        }
    }
}

impl Dialogue {
    /// With the compiled-in bundle (`with_bot` for another).
    pub fn new(orders: Arc<dyn OrdersPort>) -> Self {
        let bot = Bot::embedded();
        Self {
            messages: bot.default_messages(),
            orders,
            payment_update_url: None,
            nlu: bot.nlu(),
            bot,
            budget: None,
            ledger: None,
            inventory: None,
            operations: None,
        }
    }

    pub fn with_inventory(mut self, inventory: Option<Arc<dyn InventoryPort>>) -> Self {
        self.inventory = inventory;
        self
    }

    pub fn with_operations(
        mut self,
        operations: Option<Arc<dyn crate::connectors::OperationsPort>>,
    ) -> Self {
        self.operations = operations;
        self
    }

    pub fn with_payment_update_url(mut self, url: Option<String>) -> Self {
        self.payment_update_url = url;
        self
    }

    /// The bundle and its thresholds (`with_thresholds` after it to override them).
    pub fn with_bot(mut self, bot: Arc<Bot>) -> Self {
        self.nlu = bot.nlu();
        self.messages = bot.default_messages();
        self.bot = bot;
        self
    }

    pub fn with_thresholds(mut self, thresholds: Thresholds) -> Self {
        self.nlu = self.nlu.with_thresholds(thresholds);
        self
    }

    /// The bot's sentences in its default language: what the turn and fulfillment say too.
    pub fn messages(&self) -> Arc<Messages> {
        self.messages.clone()
    }

    fn help(&self) -> String {
        self.messages.render("move.help", &[])
    }

    /// What an intent is about, for "did you mean …?".
    fn description(&self, intent: &Intent) -> &str {
        self.bot
            .intent(intent)
            .map_or("something else", |d| d.description.as_str())
    }

    /// The intent's answer; for an intent with a flow, what to say when the flow has nothing
    /// to go on (no refund known, no stock to read): its `answer.<name>` message, if any.
    fn answer(&self, intent: &Intent) -> Option<Answer> {
        match self.bot.intent(intent).and_then(|d| d.action.as_ref()) {
            Some(Action::Answer {
                key,
                needs_order,
                handoff,
            }) => self.messages.vars_of(key).map(|_| Answer {
                key: key.clone(),
                needs_order: *needs_order,
                handoff: *handoff,
            }),
            _ => {
                let key = format!("answer.{}", intent.name());
                self.messages.vars_of(&key).map(|_| Answer {
                    key,
                    needs_order: false,
                    handoff: false,
                })
            }
        }
    }

    /// An intent a state or slot names, if the bundle still has it.
    fn known(&self, name: Option<&str>) -> Option<Intent> {
        name.map(Intent::new)
            .filter(|i| self.bot.intent(i).is_some())
    }

    pub fn with_budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    pub fn with_ledger(mut self, ledger: Arc<dyn EffectLedger>) -> Self {
        self.ledger = Some(ledger);
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
        let u = self.nlu.understand(text);
        let mut turn = Turn {
            who,
            now,
            deadline: self.budget.map(|b| Instant::now() + b),
            over_budget: false,
            system_down: false,
            refund_asked: false,
            fallback: false,
            out: Outcome {
                replies: Vec::new(),
                state: DialogueState::Idle,
                slots: slots.clone(),
                jobs: Vec::new(),
                deferred: false,
                facts: TurnFacts::default(),
            },
        };
        tracing::info!(
            intent = u.intent.name(),
            confidence = u.confidence,
            unsure = u.unsure_between.is_some(),
            "understood"
        );
        if !slots.welcome_back.is_empty() {
            self.welcome_back(&mut turn).await;
        }
        self.converse(&mut turn, state, slots, text, &u).await;
        let mut facts = TurnFacts {
            intent: u.intent.clone(),
            confidence: u.confidence,
            ending: if turn
                .out
                .jobs
                .iter()
                .any(|j| matches!(j, JobKind::AgentHandoff { .. }))
            {
                Ending::Handoff
            } else if matches!(turn.out.state, DialogueState::Clarifying { .. }) {
                Ending::Clarified
            } else if turn.fallback {
                Ending::Fallback
            } else {
                Ending::Answered
            },
        };
        if turn.over_budget {
            facts.ending = Ending::Deferred;
            // Nothing of this turn is kept but "let me check": the deferred job answers the same
            // message from the same state, with no budget.
            let reply = if turn.system_down {
                DOWN_WILL_MESSAGE
            } else {
                LET_ME_CHECK
            };
            return Outcome {
                replies: vec![reply.to_string()],
                state: state.clone(),
                slots: slots.clone(),
                jobs: Vec::new(),
                deferred: true,
                facts,
            };
        }
        turn.out.facts = facts;
        turn.out
    }

    async fn converse(
        &self,
        turn: &mut Turn<'_>,
        state: &DialogueState,
        slots: &Slots,
        text: &str,
        u: &Understanding,
    ) {
        match state {
            DialogueState::AwaitingOrderChoice {
                candidates,
                purpose,
            } => {
                if let Some(order_id) = pick(candidates, u) {
                    let intent = self
                        .known(purpose.as_deref())
                        .unwrap_or_else(|| Intent::new(ORDER_STATUS));
                    return self.about_order(turn, intent, &order_id).await;
                }
                if matches!(
                    u.intent.as_move(),
                    Some(Move::Unknown | Move::OutOfScope | Move::Affirm)
                ) && u.unsure_between.is_none()
                {
                    // Still waiting for an answer: ask again rather than forget the question.
                    turn.say(format!(
                        "Sorry, which order did you mean? Reply with its number, for example #{}.",
                        candidates.first().map(String::as_str).unwrap_or("1001")
                    ));
                    turn.out.state = state.clone();
                    return;
                }
            }
            DialogueState::RefundOffered { order_id, amount } => {
                match u.intent.as_move() {
                    Some(Move::Affirm) => {
                        // Asked for meanwhile (another conversation, another device): say where
                        // it stands rather than promise a second one.
                        if let Ok(Some(state)) = self.refund_state(turn, order_id).await {
                            let line = refund_line(turn, order_id, Some(state));
                            return turn.say(line);
                        }
                        turn.say(format!(
                        "Done — I've requested a refund of {amount} for order #{order_id}. I'll confirm here as soon as it goes through."
                    ));
                        turn.out.slots.refunds_requested.push(order_id.clone());
                        turn.out.jobs.push(JobKind::RefundRequest {
                            order_id: order_id.clone(),
                            amount: amount.clone(),
                        });
                        return;
                    }
                    Some(Move::Deny) => {
                        turn.say("No problem, I won't refund it. Is there anything else I can help with?".to_string());
                        return;
                    }
                    _ => {}
                }
            }
            DialogueState::PaymentHelpOffered { payment_url } => match u.intent.as_move() {
                Some(Move::Affirm) => return self.payment_options(turn, payment_url.clone()),
                Some(Move::Deny) => {
                    turn.say(
                        "No problem. If you'd like help with the payment later, just ask."
                            .to_string(),
                    );
                    return;
                }
                _ => {}
            },
            DialogueState::PaymentHelpOptions { payment_url } => match payment_choice(text, u) {
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
                    return;
                }
                Some(PaymentChoice::Update) => {
                    turn.say(match &self.payment_update_url {
                            Some(url) => format!("You can update your payment method here: {url}\nWe'll retry the payment with the new details."),
                            None => "You can update your payment method in your account settings; we'll retry the payment with the new details.".to_string(),
                        });
                    turn.out.state = state.clone();
                    return;
                }
                Some(PaymentChoice::Person) => {
                    return handoff(turn, PAYMENT_ISSUE, None);
                }
                None if matches!(
                    u.intent.as_move(),
                    Some(Move::Unknown | Move::OutOfScope | Move::Affirm)
                ) =>
                {
                    return self.payment_options(turn, payment_url.clone());
                }
                None => {}
            },
            DialogueState::Clarifying {
                options,
                order_refs,
            } => {
                let options: Vec<Intent> =
                    options.iter().filter_map(|o| self.known(Some(o))).collect();
                let chosen = match u.ordinal {
                    Some(LAST) => options.last().cloned(),
                    Some(i) => options.get(i).cloned(),
                    None => options.iter().find(|o| **o == u.intent).cloned(),
                };
                if let Some(intent) = chosen {
                    let mut u = u.clone();
                    if u.order_refs.is_empty() {
                        u.order_refs = order_refs.clone();
                    }
                    u.ordinal = None;
                    return self.act(turn, intent, slots, text, &u).await;
                }
                if u.intent.is(Move::Deny) {
                    turn.say(format!("Sorry about that. {}", self.help()));
                    return;
                }
            }
            // "Which product?": the answer is a product's name, whatever the classifier makes
            // of it, unless the customer has clearly moved on.
            DialogueState::AwaitingProduct
                if u.intent.is_rejection() || u.intent.name() == PRODUCT_AVAILABILITY =>
            {
                return self.availability(turn, text, true).await;
            }
            DialogueState::HandoffOffered { reason } => match u.intent.as_move() {
                Some(Move::Affirm) => return handoff(turn, reason, slots.order_id.clone()),
                Some(Move::Deny) => {
                    turn.say("No problem. You can ask me again any time.".to_string());
                    return;
                }
                _ => {}
            },
            // A person asked for mid-flow is the dialogue's move, not an answer.
            DialogueState::Flow(waiting) if !u.intent.is(Move::Human) => {
                match self.reply_to_flow(turn, waiting, u, text).await {
                    run_flow::Ran::Done => return,
                    run_flow::Ran::Passed => {}
                }
            }
            DialogueState::AwaitingProduct | DialogueState::Idle | DialogueState::Flow(_) => {}
        }
        // "and the other one?", "what about the first?": short follow-ups about the orders just
        // listed ask the same as before, whatever the classifier makes of five words.
        let same_question =
            u.intent.name() == ORDER_STATUS || slots.topic.as_deref() == Some(u.intent.name());
        if u.refers_to_listed && (same_question || u.only_points) {
            if let Some(id) = carried_order(u, slots) {
                let topic = self
                    .known(slots.topic.as_deref())
                    .unwrap_or_else(|| Intent::new(ORDER_STATUS));
                return self.about_order(turn, topic, &id).await;
            }
        }
        self.act(turn, u.intent.clone(), slots, text, u).await
    }

    /// Does what an intent asks, at no particular point in a flow.
    async fn act(
        &self,
        turn: &mut Turn<'_>,
        intent: Intent,
        slots: &Slots,
        text: &str,
        u: &Understanding,
    ) {
        let carried = carried_order(u, slots);
        let mv = intent.as_move();
        // A move the bundle gives an answer says it; the others are the engine's own.
        if mv.is_some() && self.answer(&intent).is_some() {
            return self.configured(turn, intent, carried, u.ordinal).await;
        }
        match (mv, intent.name()) {
            (_, ORDER_STATUS | REQUEST_REFUND) => {
                turn.refund_asked = intent.name() == REQUEST_REFUND;
                // "Can I get a refund?" right after discussing an order means that order.
                let order_id = carried.or_else(|| {
                    if turn.refund_asked {
                        slots.order_id.clone()
                    } else {
                        None
                    }
                });
                match order_id {
                    Some(id) => self.about_order(turn, intent, &id).await,
                    None => self.which_order(turn, u.ordinal, intent).await,
                }
            }
            (_, PRODUCT_AVAILABILITY) if self.inventory.is_some() => {
                self.availability(turn, text, false).await
            }
            (Some(Move::Greet), _) => turn.say(format!("Hi! {}", self.help())),
            (Some(Move::Thanks), _) => {
                turn.say("You're welcome! Anything else I can help with?".to_string())
            }
            (Some(Move::Goodbye), _) => {
                turn.say("Bye for now — I'm here if you need anything else.".to_string())
            }
            (Some(Move::Human), _) => handoff(turn, Move::Human.name(), slots.order_id.clone()),
            (Some(Move::Affirm | Move::Deny), _) => {
                turn.fallback = true;
                turn.say(format!("I'm not sure what that answers. {}", self.help()))
            }
            (Some(Move::OutOfScope), _) => turn.say(format!(
                "{}\n{}",
                self.messages.render("move.out_of_scope", &[]),
                self.help()
            )),
            (Some(Move::Unknown), _) => match (&u.unsure_between, carried) {
                (Some((a, b)), _) => {
                    turn.say(format!(
                        "Sorry, I want to get this right. Did you want to:\n1. {}\n2. {}\nReply 1 or 2.",
                        self.description(a),
                        self.description(b)
                    ));
                    turn.out.state = DialogueState::Clarifying {
                        options: vec![a.name().to_string(), b.name().to_string()],
                        order_refs: u.order_refs.clone(),
                    };
                }
                // "1002", "and the other one?": the order the conversation is about.
                (None, Some(id)) => {
                    let topic = self
                        .known(slots.topic.as_deref())
                        .unwrap_or_else(|| Intent::new(ORDER_STATUS));
                    self.about_order(turn, topic, &id).await
                }
                (None, None) => {
                    turn.fallback = true;
                    turn.say(format!("Sorry, I didn't catch that. {}", self.help()))
                }
            },
            _ => match self.bot.intent(&intent).and_then(|d| d.action.as_ref()) {
                Some(Action::Flow(flow)) if self.bot.flows.contains_key(flow) => {
                    self.start_flow(turn, &intent, flow, Default::default(), u, text)
                        .await
                }
                _ => self.configured(turn, intent, carried, u.ordinal).await,
            },
        }
    }

    /// An intent answered from config: its text, after "which order?" if it names one, and a
    /// handoff if it needs a person.
    async fn configured(
        &self,
        turn: &mut Turn<'_>,
        intent: Intent,
        order_id: Option<String>,
        ordinal: Option<usize>,
    ) {
        let Some(answer) = self.answer(&intent) else {
            // The bundle refuses intents without a flow or an answer; this guards a move with
            // neither (`acknowledge`) and a flow's intent without a fallback message.
            return turn.say(format!(
                "Sorry, I can't help with that here. {}",
                self.help()
            ));
        };
        if answer.needs_order {
            return match order_id {
                Some(id) => self.about_order(turn, intent, &id).await,
                None => self.which_order(turn, ordinal, intent).await,
            };
        }
        turn.say(answer.for_order(&self.messages, None));
        if answer.handoff {
            flag_for_agent(turn, intent.name(), None);
        }
    }

    fn payment_options(&self, turn: &mut Turn<'_>, payment_url: Option<String>) {
        turn.say("Happy to help. I can:\n1. give you a link to retry the payment\n2. help you update your payment method\n3. get a person from our team\nReply 1, 2 or 3.".to_string());
        turn.out.state = DialogueState::PaymentHelpOptions { payment_url };
    }

    /// Runs a connector call inside the turn's budget.
    async fn within<T>(
        &self,
        turn: &mut Turn<'_>,
        call: impl std::future::Future<Output = T>,
    ) -> Result<T, OverBudget> {
        host::within(turn.deadline, call).await.inspect_err(|_| {
            tracing::info!("a lookup missed the turn's latency budget; deferring");
            turn.over_budget = true;
        })
    }

    /// "Which order?" for an intent that needs one: answer for the only recent order, or list
    /// them and wait.
    async fn which_order(&self, turn: &mut Turn<'_>, ordinal: Option<usize>, intent: Intent) {
        let customer = turn.who.customer_id.clone();
        let Ok(found) = self
            .within(turn, self.orders.recent_orders(&customer))
            .await
        else {
            return;
        };
        let orders = match found {
            Ok(orders) => orders,
            Err(e) => return turn.unavailable(e),
        };
        let cutoff = turn.now - time::Duration::days(RECENT_DAYS);
        let recent: Vec<&Order> = orders
            .iter()
            .filter(|o| o.placed_at >= cutoff && may_see(turn.who, o))
            .take(MAX_CHOICES)
            .collect();
        match (recent.as_slice(), ordinal) {
            ([], _) => turn.say(
                "I can't find any recent orders on your account. If you have an order number, send it to me.".to_string(),
            ),
            ([only], _) => self.order_found(turn, intent, only).await,
            // Orders come newest first: "my last order" before any list means the newest.
            (many, Some(LAST | NEWEST)) => self.order_found(turn, intent, many[0]).await,
            (many, _) => {
                let list = many
                    .iter()
                    .enumerate()
                    .map(|(i, o)| format!("{}. {} placed {}", i + 1, o.summary(), date(o.placed_at)))
                    .collect::<Vec<_>>()
                    .join("\n");
                turn.say(format!("You have {} recent orders. Which one do you mean?\n{list}", many.len()));
                let candidates: Vec<String> = many.iter().map(|o| o.id.clone()).collect();
                turn.out.slots.candidates = candidates.clone();
                turn.out.state = DialogueState::AwaitingOrderChoice {
                    candidates,
                    purpose: (intent.name() != ORDER_STATUS).then(|| intent.name().to_string()),
                };
            }
        }
    }

    /// Looks an order up (only the customer's own count) and answers the intent about it.
    async fn about_order(&self, turn: &mut Turn<'_>, intent: Intent, order_id: &str) {
        if intent.name() == REQUEST_REFUND {
            turn.refund_asked = true;
        }
        let Ok(found) = self.within(turn, self.orders.order(order_id)).await else {
            return;
        };
        match found {
            // Another customer's order looks exactly like one that does not exist.
            Ok(Some(order)) if may_see(turn.who, &order) => {
                self.order_found(turn, intent, &order).await
            }
            Ok(_) => turn.say(format!(
                "I couldn't find order #{order_id} on your account. Could you check the number?"
            )),
            Err(e) => turn.unavailable(e),
        }
    }

    async fn order_found(&self, turn: &mut Turn<'_>, intent: Intent, o: &Order) {
        turn.out.slots.order_id = Some(o.id.clone());
        turn.out.slots.topic = Some(intent.name().to_string());
        match self.answer(&intent).filter(|a| a.needs_order) {
            Some(answer) => {
                turn.say(answer.for_order(&self.messages, Some(&o.id)));
                if answer.handoff {
                    flag_for_agent(turn, intent.name(), Some(o.id.clone()));
                }
            }
            None => {
                // The order's refund, as the ledger has it: never promised from memory, and
                // still told once the order is no longer late (delivered after all).
                let refund = self.refund_said(turn, &o.id).await;
                self.describe(turn, o, refund)
            }
        }
    }

    /// `refund`: what to say about the order's refund, if one was asked for.
    fn describe(&self, turn: &mut Turn<'_>, o: &Order, refund: Option<String>) {
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
        if crate::refunds::offered(o, turn.now) {
            let due = o.promised_by.map(date).unwrap_or_default();
            if let Some(refund) = refund {
                lines.push(format!("It was due by {due} and is running late."));
                lines.push(refund);
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
        } else {
            if let (Some(due), false) = (o.promised_by, finished) {
                lines.push(format!("It's expected by {}.", date(due)));
            }
            match refund {
                Some(refund) => lines.push(refund),
                None if turn.refund_asked => lines.push("I can refund orders that are running late; for anything else, our support team will help.".into()),
                None => {}
            }
        }
        let text = lines.join("\n");
        turn.say(text);
    }

    /// "Is the desk lamp in stock?": the product named (from the inventory's own catalogue),
    /// or "which product?" once.
    async fn availability(&self, turn: &mut Turn<'_>, text: &str, asked: bool) {
        let Some(inventory) = &self.inventory else {
            return self
                .configured(turn, Intent::new(PRODUCT_AVAILABILITY), None, None)
                .await;
        };
        let Ok(found) = self.within(turn, inventory.products()).await else {
            return;
        };
        let products = match found {
            Ok(products) => products,
            Err(e) if turn.defer_when_down(&e) => return,
            Err(e) => {
                tracing::warn!(error = %e, "inventory call failed during a turn");
                return turn.say(STOCK_DOWN.to_string());
            }
        };
        let names: Vec<&str> = products.iter().map(|p| p.name.as_str()).collect();
        let named = crate::entities::extract(text, turn.now.date(), &names).products;
        // "desk lamp shade" names the shade, not the lamp: the longest name found wins.
        let product = named
            .iter()
            .max_by_key(|n| n.len())
            .and_then(|n| products.iter().find(|p| &p.name == n));
        match product {
            Some(p) if p.available > 0 => turn.say(format!(
                "Yes — the {} is in stock ({} available).",
                p.name, p.available
            )),
            Some(p) => turn.say(format!(
                "Sorry — the {} is out of stock right now. Its page shows when it's due back.",
                p.name
            )),
            None if asked => {
                self.configured(turn, Intent::new(PRODUCT_AVAILABILITY), None, None)
                    .await
            }
            None => {
                let examples: Vec<&str> = names.iter().take(MAX_CHOICES).copied().collect();
                turn.say(format!(
                    "Which product do you mean? For example: {}.",
                    examples.join(", ")
                ));
                turn.out.state = DialogueState::AwaitingProduct;
            }
        }
    }

    /// Where an order's refund stands in the fulfillment ledger (`None`: never begun); `Err`
    /// when there is no ledger or it cannot be read.
    async fn refund_state(
        &self,
        turn: &Turn<'_>,
        order_id: &str,
    ) -> Result<Option<EffectState>, ()> {
        let ledger = self.ledger.as_ref().ok_or(())?;
        let key = refund_key(&turn.who.tenant, order_id);
        let read = ledger.state(&turn.who.tenant, &key);
        // Within the turn's budget, without deferring the answer: a refund whose state cannot
        // be read in time is said to be on record (if one was asked for), not guessed at.
        let state = match turn.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| tracing::warn!("refund state not read within the turn's budget"))?,
            None => read.await,
        };
        state.map_err(|e| tracing::warn!(error = %e, "refund state unreadable"))
    }

    /// What to say about an order's refund: where it stands if one was asked for (here or
    /// anywhere: the ledger is the customer's, not the conversation's), `None` if none was.
    async fn refund_said(&self, turn: &mut Turn<'_>, order_id: &str) -> Option<String> {
        let requested = turn
            .out
            .slots
            .refunds_requested
            .iter()
            .any(|r| r == order_id);
        match self.refund_state(turn, order_id).await {
            Ok(Some(state)) => Some(refund_line(turn, order_id, Some(state))),
            // Asked for in this conversation; its job has not started yet.
            Ok(None) if requested => Some(refund_line(turn, order_id, None)),
            Err(()) if requested => Some(refund_unknown(order_id)),
            Ok(None) | Err(()) => None,
        }
    }

    /// Where each refund stands, from the fulfillment ledger; `None` when it cannot be read.
    async fn refund_news(&self, turn: &mut Turn<'_>, order_id: &str) -> Option<String> {
        let state = self.refund_state(turn, order_id).await.ok()?;
        Some(refund_line(turn, order_id, state))
    }

    /// A returning customer hears first where the refunds they asked for before stand.
    async fn welcome_back(&self, turn: &mut Turn<'_>) {
        let pending = std::mem::take(&mut turn.out.slots.welcome_back);
        let mut lines = Vec::new();
        for order_id in pending.iter().take(MAX_WELCOME_REFUNDS) {
            if let Some(line) = self.refund_news(turn, order_id).await {
                lines.push(line);
            }
        }
        if !lines.is_empty() {
            turn.say(format!("Welcome back! {}", lines.join("\n")));
        }
    }
}

/// The order a message means without naming one: "the other one" or "the second one" among the
/// orders listed last, or a number it does name.
fn carried_order(u: &Understanding, slots: &Slots) -> Option<String> {
    if let Some(r) = u.order_refs.first() {
        return Some(r.clone());
    }
    if u.other {
        let mut rest = slots
            .candidates
            .iter()
            .filter(|c| Some(*c) != slots.order_id.as_ref());
        return match (rest.next(), rest.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        };
    }
    u.ordinal.and_then(|i| listed(&slots.candidates, i))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PaymentChoice {
    Retry,
    Update,
    Person,
}

/// An answer to the payment-help options, by number or by what it says.
fn payment_choice(text: &str, u: &Understanding) -> Option<PaymentChoice> {
    if u.intent.is(Move::Human) {
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

/// What the customer is told about a refund the ledger has in `state` (`None`: asked for, not
/// begun yet); one that ended is noted as told.
fn refund_line(turn: &mut Turn<'_>, order_id: &str, state: Option<EffectState>) -> String {
    let ended = matches!(state, Some(EffectState::Finished(_)));
    if ended
        && !turn
            .out
            .slots
            .refunds_reported
            .iter()
            .any(|r| r == order_id)
    {
        turn.out.slots.refunds_reported.push(order_id.to_string());
    }
    match state {
        Some(EffectState::Finished(EffectOutcome::Done)) => format!("The refund for order #{order_id} has been issued; it can take 5–10 business days to show on your statement."),
        Some(EffectState::Finished(EffectOutcome::Failed)) => format!(
            "The refund for order #{order_id} couldn't be completed automatically; our team has it and will reply to you."
        ),
        // Out of attempts: the dead-letter queue's alarm has told the team.
        Some(EffectState::SetAside) => format!(
            "Your refund for order #{order_id} is taking longer than it should — our team has been alerted and will make sure it goes through; you'll get an email as soon as it's issued."
        ),
        // The confirmation is posted where the refund was asked for, and emailed.
        Some(EffectState::InProgress) | None => format!(
            "Your refund for order #{order_id} is still being processed — you'll get an email as soon as it's issued."
        ),
    }
}

/// A refund asked for whose progress the ledger cannot show right now.
fn refund_unknown(order_id: &str) -> String {
    format!("Your refund request for order #{order_id} is on record; I can't see its progress right now — please ask again in a few minutes.")
}

/// "Can I talk to a person?": the conversation is flagged and the team notified.
fn handoff(turn: &mut Turn<'_>, reason: &str, order_id: Option<String>) {
    if turn.out.slots.handoff_requested {
        turn.say("I've already asked our team to take over — they'll reply right here.".into());
        return;
    }
    flag_for_agent(turn, reason, order_id);
    turn.say(HANDED_OFF.to_string());
}

const HANDED_OFF: &str = "I've asked a member of our team to take over — they'll reply right here, usually within a few hours.";

/// Marks the conversation for a person and starts the job that notifies the team.
fn flag_for_agent(turn: &mut Turn<'_>, reason: &str, order_id: Option<String>) {
    turn.out.slots.handoff_requested = true;
    turn.out.jobs.push(JobKind::AgentHandoff {
        reason: reason.to_string(),
        order_id,
    });
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
    listed(candidates, u.ordinal?)
}

/// The `ordinal`th of the orders listed (newest first).
fn listed(candidates: &[String], ordinal: usize) -> Option<String> {
    match ordinal {
        LAST => candidates.last().cloned(),
        NEWEST => candidates.first().cloned(),
        i => candidates.get(i).cloned(),
    }
}

struct Turn<'a> {
    who: &'a Principal,
    now: OffsetDateTime,
    deadline: Option<Instant>,
    over_budget: bool,
    /// The turn is deferred because a system is down, not slow.
    system_down: bool,
    refund_asked: bool,
    /// Nothing understood: "Sorry, I didn't catch that" and the like.
    fallback: bool,
    out: Outcome,
}

impl Turn<'_> {
    fn say(&mut self, text: String) {
        self.out.replies.push(text);
    }

    fn unavailable(&mut self, e: ConnectorError) {
        if self.defer_when_down(&e) {
            return;
        }
        tracing::warn!(error = %e, "connector call failed during a turn");
        self.say(SYSTEM_DOWN.to_string());
    }

    /// A system that is down (timeouts, 5xx, an open circuit) defers the answer like a slow
    /// one. In a chat turn the customer is told at once and the deferred job asks again
    /// without the turn's budget; in that job (no deadline) the outcome says it is still
    /// deferred, and the job comes back later while the system stays down.
    fn defer_when_down(&mut self, e: &ConnectorError) -> bool {
        if !e.is_transient() {
            return false;
        }
        tracing::warn!(error = %e, "a system is down during a turn; deferring the answer");
        self.over_budget = true;
        self.system_down = true;
        true
    }
}

/// The access rule for orders (`access`): a customer sees only their own.
fn may_see(who: &Principal, order: &Order) -> bool {
    let action = crate::access::Action::SeeOrder {
        owner: &order.customer_id,
    };
    crate::access::check(who, action).is_ok()
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
            // Newest first, as the port promises.
            let mut mine: Vec<Order> = self
                .0
                .iter()
                .filter(|o| o.customer_id == customer_id)
                .cloned()
                .collect();
            mine.sort_by_key(|o| std::cmp::Reverse(o.placed_at));
            Ok(mine)
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
            payment_ref: None,
        }
    }

    fn who(c: &str) -> Principal {
        Principal::customer("t", c)
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
        let first = fresh_as(&d, "alice", "where's my order?").await;
        assert!(
            first.replies[0].contains("Which one"),
            "{:?}",
            first.replies
        );
        assert_eq!(
            first.state,
            DialogueState::AwaitingOrderChoice {
                candidates: vec!["1001".into(), "1002".into()],
                purpose: None,
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
        let out = fresh_as(&d, "alice", "where is #1001").await;
        assert!(out.replies[0].contains("expected by"));
        assert_eq!(out.state, DialogueState::Idle);
        assert!(out.jobs.is_empty());
    }

    #[tokio::test]
    async fn another_customers_order_looks_missing() {
        let d = dialogue(catalogue());
        let theirs = fresh_as(&d, "alice", "where is 2001").await;
        let missing = fresh_as(&d, "alice", "where is 9999").await;
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
    async fn the_deferred_job_hears_that_the_system_is_still_down() {
        // No budget: the deferred job's own answer. It says nothing yet and is deferred again:
        // the job comes back later rather than tell the customer to try again themselves.
        let d = Dialogue::new(Arc::new(FakeOrders(vec![], true)));
        let out = fresh_as(&d, "alice", "where's my order").await;
        assert!(out.deferred);
        assert!(out.jobs.is_empty());
    }

    #[tokio::test]
    async fn a_chat_turn_defers_when_the_order_system_is_down() {
        let d = Dialogue::new(Arc::new(FakeOrders(vec![], true)))
            .with_budget(Some(std::time::Duration::from_millis(150)));
        let out = fresh_as(&d, "alice", "where's my order").await;
        assert_eq!(out.replies, vec![DOWN_WILL_MESSAGE.to_string()]);
        assert!(out.deferred, "the caller queues answer.deferred");
        assert_eq!(
            out.state,
            DialogueState::Idle,
            "nothing of the turn is kept"
        );
    }

    #[tokio::test]
    async fn a_single_order_is_reported_directly() {
        let d = dialogue(catalogue());
        let out = fresh_as(&d, "bob", "where's my stuff? track it").await;
        assert!(out.replies[0].contains("#2001"));
    }

    /// A message from `who_` at the start of a conversation.
    async fn fresh_as(d: &Dialogue, who_: &str, text: &str) -> Outcome {
        say(d, who_, &DialogueState::Idle, &Slots::default(), text).await
    }

    async fn fresh(d: &Dialogue, text: &str) -> Outcome {
        fresh_as(d, "alice", text).await
    }

    async fn say(
        d: &Dialogue,
        who_: &str,
        state: &DialogueState,
        slots: &Slots,
        text: &str,
    ) -> Outcome {
        d.respond(&who(who_), state, slots, text, NOW).await
    }

    #[tokio::test]
    async fn a_configured_answer_needing_an_order_asks_which_then_hands_off_with_it() {
        let d = dialogue(catalogue());
        let ask = fresh(&d, "I want to cancel my order").await;
        assert!(ask.replies[0].contains("Which one"), "{:?}", ask.replies);
        assert!(ask.jobs.is_empty());
        assert!(matches!(
            &ask.state,
            DialogueState::AwaitingOrderChoice { purpose: Some(p), .. } if p == "cancel_order"
        ));
        let done = say(&d, "alice", &ask.state, &ask.slots, "the first one").await;
        assert!(
            done.replies[0].contains("cancel order #1001"),
            "{:?}",
            done.replies
        );
        assert!(done.slots.handoff_requested);
        assert_eq!(
            done.jobs,
            vec![JobKind::AgentHandoff {
                reason: "cancel_order".into(),
                order_id: Some("1001".into())
            }]
        );
        // Someone else's order number is not confirmed, and nobody is bothered about it.
        let theirs = fresh(&d, "please cancel order 2001").await;
        assert!(
            theirs.replies[0].contains("couldn't find order #2001"),
            "{:?}",
            theirs.replies
        );
        assert!(theirs.jobs.is_empty());
    }

    #[tokio::test]
    async fn policy_questions_get_their_text_and_no_dead_end() {
        let d = dialogue(catalogue());
        let out = fresh(&d, "what payment methods do you accept?").await;
        assert!(out.replies[0].contains("PayPal"), "{:?}", out.replies);
        assert!(out.jobs.is_empty());
        assert_eq!(out.state, DialogueState::Idle);
    }

    #[tokio::test]
    async fn unsure_asks_which_of_two_then_acts_on_the_choice() {
        // Thresholds that make every message "unsure", so the flow is tested, not the model.
        let d = dialogue(catalogue()).with_thresholds(Thresholds {
            accept: 1.1,
            clarify: 0.0,
        });
        let ask = fresh(&d, "what payment methods do you accept?").await;
        assert!(
            ask.replies[0].contains("1. know how you can pay"),
            "{:?}",
            ask.replies
        );
        let DialogueState::Clarifying { options, .. } = &ask.state else {
            panic!("{:?}", ask.state)
        };
        assert_eq!(options[0], "check_payment_methods");
        assert_eq!(ask.facts.ending, Ending::Clarified);
        assert_eq!(ask.facts.intent, Intent::unknown());
        let chosen = say(&d, "alice", &ask.state, &ask.slots, "1").await;
        assert!(chosen.replies[0].contains("PayPal"), "{:?}", chosen.replies);
        assert_eq!(chosen.facts.ending, Ending::Answered);
        let refused = say(&d, "alice", &ask.state, &ask.slots, "no").await;
        assert!(
            refused.replies[0].contains("I can help with"),
            "{:?}",
            refused.replies
        );
    }

    #[tokio::test]
    async fn gibberish_gets_the_options_and_out_of_scope_says_so() {
        let d = dialogue(catalogue());
        // Thresholds nothing reaches: the fallback, whatever the model thinks.
        let unsure = dialogue(catalogue()).with_thresholds(Thresholds {
            accept: 1.1,
            clarify: 1.1,
        });
        let lost = fresh(&unsure, "qwxz vbnm plok").await;
        assert!(
            lost.replies[0].starts_with("Sorry, I didn't catch that"),
            "{:?}",
            lost.replies
        );
        assert!(lost.replies[0].contains("I can help with"));
        assert_eq!(lost.facts.ending, Ending::Fallback);
        let oos = fresh(&d, "what's the weather in Paris tomorrow?").await;
        assert!(
            oos.replies[0].contains("outside what I can help with"),
            "{:?}",
            oos.replies
        );
        // Recognised as out of scope: an answer, not a failure to understand.
        assert!(oos.facts.intent.is(Move::OutOfScope));
        assert_eq!(oos.facts.ending, Ending::Answered);
        assert!(oos.facts.confidence > 0.0);
    }

    #[tokio::test]
    async fn a_handoff_notifies_once() {
        let d = dialogue(catalogue());
        let first = fresh(&d, "I want to talk to a human").await;
        assert!(first.slots.handoff_requested);
        assert_eq!(first.jobs.len(), 1);
        assert!(first.facts.intent.is(Move::Human));
        assert_eq!(first.facts.ending, Ending::Handoff);
        let again = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &first.slots,
            "let me speak to a real person",
        )
        .await;
        assert!(
            again.replies[0].contains("already asked"),
            "{:?}",
            again.replies
        );
        assert!(again.jobs.is_empty());
    }

    #[tokio::test]
    async fn and_the_other_one_means_the_other_listed_order() {
        let d = dialogue(catalogue());
        let ask = fresh(&d, "where's my order?").await;
        let first = say(&d, "alice", &ask.state, &ask.slots, "the first one").await;
        assert!(first.replies[0].contains("#1001"));
        let other = say(
            &d,
            "alice",
            &first.state,
            &first.slots,
            "and the other one?",
        )
        .await;
        assert!(other.replies[0].contains("#1002"), "{:?}", other.replies);
        assert_eq!(other.slots.order_id.as_deref(), Some("1002"));
    }

    #[tokio::test]
    async fn a_returning_customer_hears_where_their_refund_stands() {
        let ledger = Arc::new(crate::store::memory::MemoryStore::new());
        let d = dialogue(catalogue()).with_ledger(ledger.clone());
        let slots = Slots {
            refunds_requested: vec!["1002".into()],
            welcome_back: vec!["1002".into()],
            ..Slots::default()
        };
        let key = refund_key("t", "1002");
        ledger
            .begin("t", &key, std::time::Duration::from_secs(30), NOW)
            .await
            .unwrap();
        let open = say(&d, "alice", &DialogueState::Idle, &slots, "hi").await;
        assert!(
            open.replies[0].starts_with("Welcome back!"),
            "{:?}",
            open.replies
        );
        assert!(open.replies[0].contains("#1002 is still being processed"));
        assert!(open.replies[1].starts_with("Hi!"));
        assert!(open.slots.welcome_back.is_empty(), "told once");

        let token = match ledger
            .begin(
                "t",
                &key,
                std::time::Duration::ZERO,
                NOW + time::Duration::minutes(1),
            )
            .await
            .unwrap()
        {
            crate::store::Begin::Started(lease) => lease.token,
            other => panic!("{other:?}"),
        };
        ledger
            .complete("t", &key, &token, EffectOutcome::Done, &[])
            .await
            .unwrap();
        let asked = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &open.slots,
            "where is my refund?",
        )
        .await;
        assert!(
            asked.replies[0].contains("#1002 has been issued"),
            "{:?}",
            asked.replies
        );
        assert_eq!(asked.slots.refunds_reported, vec!["1002".to_string()]);
    }

    /// Ends the refund of `order` in the ledger as `outcome`, as fulfillment would.
    async fn refund_ended(
        ledger: &crate::store::memory::MemoryStore,
        order: &str,
        outcome: EffectOutcome,
    ) {
        let key = refund_key("t", order);
        let lease = match ledger
            .begin("t", &key, std::time::Duration::from_secs(30), NOW)
            .await
            .unwrap()
        {
            crate::store::Begin::Started(lease) => lease,
            other => panic!("{other:?}"),
        };
        ledger
            .complete("t", &key, &lease.token, outcome, &[])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refund_that_failed_is_reported_as_failed_never_as_on_its_way() {
        let ledger = Arc::new(crate::store::memory::MemoryStore::new());
        let d = dialogue(catalogue()).with_ledger(ledger.clone());
        refund_ended(&ledger, "1002", EffectOutcome::Failed).await;
        // Asked for in this conversation, and in a new one that never heard of it.
        let here = Slots {
            refunds_requested: vec!["1002".into()],
            ..Slots::default()
        };
        for slots in [here, Slots::default()] {
            let out = say(
                &d,
                "alice",
                &DialogueState::Idle,
                &slots,
                "I want a refund for order 1002",
            )
            .await;
            let reply = out.replies.join("\n");
            assert!(reply.contains("couldn't be completed"), "{reply}");
            assert!(reply.contains("our team has it"), "{reply}");
            // ("on its way" is the parcel's: the order is in transit.)
            assert!(
                !reply.contains("refund you asked for is on its way"),
                "{reply}"
            );
            assert!(!reply.contains("Would you like a refund"), "{reply}");
            assert!(out.jobs.is_empty(), "no second refund");
            assert_eq!(out.state, DialogueState::Idle);
        }
    }

    #[tokio::test]
    async fn a_refund_asked_for_and_not_started_yet_is_being_processed() {
        let ledger = Arc::new(crate::store::memory::MemoryStore::new());
        let d = dialogue(catalogue()).with_ledger(ledger);
        let slots = Slots {
            refunds_requested: vec!["1002".into()],
            ..Slots::default()
        };
        let out = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &slots,
            "where is order 1002?",
        )
        .await;
        let reply = out.replies.join("\n");
        assert!(reply.contains("still being processed"), "{reply}");
        assert!(out.jobs.is_empty());
    }

    #[tokio::test]
    async fn a_refund_set_aside_after_its_attempts_is_with_the_team_not_still_processing() {
        let ledger = Arc::new(crate::store::memory::MemoryStore::new());
        let d = dialogue(catalogue()).with_ledger(ledger.clone());
        let key = refund_key("t", "1002");
        let lease = match ledger
            .begin("t", &key, std::time::Duration::from_secs(30), NOW)
            .await
            .unwrap()
        {
            crate::store::Begin::Started(lease) => lease,
            other => panic!("{other:?}"),
        };
        // Fulfillment put it on the dead-letter queue and set it aside.
        ledger.set_aside("t", &key, &lease.token).await.unwrap();
        let slots = Slots {
            refunds_requested: vec!["1002".into()],
            ..Slots::default()
        };
        let out = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &slots,
            "where is my refund?",
        )
        .await;
        let reply = out.replies.join("\n");
        assert!(reply.contains("taking longer than it should"), "{reply}");
        assert!(reply.contains("our team has been alerted"), "{reply}");
        assert!(!reply.contains("still being processed"), "{reply}");
        assert!(out.slots.refunds_reported.is_empty(), "not over yet");
    }

    #[tokio::test]
    async fn an_order_delivered_after_its_refund_still_says_where_the_refund_stands() {
        let mut delivered = order(
            "1003",
            "alice",
            OrderStatus::Delivered,
            NOW - time::Duration::days(3),
        );
        delivered.delivered_at = Some(NOW - time::Duration::days(1));
        let ledger = Arc::new(crate::store::memory::MemoryStore::new());
        let d = dialogue(vec![delivered]).with_ledger(ledger.clone());
        refund_ended(&ledger, "1003", EffectOutcome::Done).await;
        // Asked for here while it was late, and asked about from a new conversation.
        let here = Slots {
            refunds_requested: vec!["1003".into()],
            ..Slots::default()
        };
        for slots in [here, Slots::default()] {
            let out = say(
                &d,
                "alice",
                &DialogueState::Idle,
                &slots,
                "I want a refund for order 1003",
            )
            .await;
            let reply = out.replies.join("\n");
            assert!(reply.contains("was delivered"), "{reply}");
            assert!(reply.contains("#1003 has been issued"), "{reply}");
            assert!(
                !reply.contains("I can refund orders that are running late"),
                "{reply}"
            );
            assert!(out.jobs.is_empty());
        }
    }

    #[tokio::test]
    async fn yes_to_an_offer_already_fulfilled_elsewhere_says_so_and_refunds_nothing() {
        let ledger = Arc::new(crate::store::memory::MemoryStore::new());
        let d = dialogue(catalogue()).with_ledger(ledger.clone());
        let offered = DialogueState::RefundOffered {
            order_id: "1002".into(),
            amount: Money {
                amount_cents: 4599,
                currency: "USD".into(),
            },
        };
        refund_ended(&ledger, "1002", EffectOutcome::Done).await;
        let out = say(&d, "alice", &offered, &Slots::default(), "yes please").await;
        assert!(out.jobs.is_empty());
        assert!(
            out.replies[0].contains("has been issued"),
            "{:?}",
            out.replies
        );
    }

    #[tokio::test]
    async fn yes_to_a_person_after_a_deferred_answer_gave_up_hands_off() {
        let d = dialogue(catalogue());
        let offered = DialogueState::HandoffOffered {
            reason: "answer_deferred_failed".into(),
        };
        let yes = say(&d, "alice", &offered, &Slots::default(), "yes").await;
        assert_eq!(
            yes.jobs,
            vec![JobKind::AgentHandoff {
                reason: "answer_deferred_failed".into(),
                order_id: None
            }]
        );
        assert!(yes.slots.handoff_requested);
        let no = say(&d, "alice", &offered, &Slots::default(), "no thanks").await;
        assert!(no.jobs.is_empty());
        assert!(!no.slots.handoff_requested);
    }

    struct SlowOrders(Vec<Order>);

    #[async_trait]
    impl OrdersPort for SlowOrders {
        async fn recent_orders(&self, customer_id: &str) -> Result<Vec<Order>, ConnectorError> {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            FakeOrders(self.0.clone(), false)
                .recent_orders(customer_id)
                .await
        }
        async fn order(&self, id: &str) -> Result<Option<Order>, ConnectorError> {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            FakeOrders(self.0.clone(), false).order(id).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_over_budget_defers_the_answer_and_changes_nothing() {
        let d = Dialogue::new(Arc::new(SlowOrders(catalogue())))
            .with_budget(Some(std::time::Duration::from_millis(150)));
        let state = DialogueState::Idle;
        let slots = Slots {
            order_id: Some("1001".into()),
            ..Slots::default()
        };
        let out = d
            .respond(&who("alice"), &state, &slots, "where is #1002", NOW)
            .await;
        assert!(out.deferred);
        assert_eq!(out.facts.ending, Ending::Deferred);
        assert_eq!(out.replies, vec![LET_ME_CHECK.to_string()]);
        assert_eq!((out.state, out.slots), (state.clone(), slots.clone()));
        assert!(
            out.jobs.is_empty(),
            "the caller adds the answer.deferred job"
        );
        // Without a budget (the deferred job) the same message is answered.
        let later = Dialogue::new(Arc::new(SlowOrders(catalogue())))
            .respond(&who("alice"), &state, &slots, "where is #1002", NOW)
            .await;
        assert!(!later.deferred);
        assert!(later.replies[0].contains("#1002"));
    }

    struct Shelf;

    #[async_trait]
    impl InventoryPort for Shelf {
        async fn products(&self) -> Result<Vec<crate::connectors::Product>, ConnectorError> {
            Ok(vec![
                crate::connectors::Product {
                    sku: "LAMP-03".into(),
                    name: "Desk Lamp".into(),
                    available: 7,
                },
                crate::connectors::Product {
                    sku: "HEAD-02".into(),
                    name: "Noise-Cancelling Headphones".into(),
                    available: 0,
                },
            ])
        }
    }

    #[tokio::test]
    async fn stock_questions_name_the_product_or_ask_which() {
        let d = dialogue(catalogue()).with_inventory(Some(Arc::new(Shelf)));
        let lamp = fresh(&d, "is the desk lamp in stock?").await;
        assert_eq!(
            lamp.replies,
            vec!["Yes — the Desk Lamp is in stock (7 available).".to_string()]
        );
        let out = fresh(&d, "do you have the noise-cancelling headphones in stock").await;
        assert!(out.replies[0].contains("out of stock"), "{:?}", out.replies);

        let which = fresh(&d, "is this item available?").await;
        assert!(
            which.replies[0].starts_with("Which product"),
            "{:?}",
            which.replies
        );
        assert_eq!(which.state, DialogueState::AwaitingProduct);
        let named = say(&d, "alice", &which.state, &which.slots, "the desk lamp").await;
        assert!(
            named.replies[0].contains("Desk Lamp is in stock"),
            "{:?}",
            named.replies
        );
        let unknown = say(&d, "alice", &which.state, &which.slots, "the purple sofa").await;
        assert!(
            unknown.replies[0].contains("Each product's page"),
            "{:?}",
            unknown.replies
        );
        assert_eq!(unknown.state, DialogueState::Idle);

        // Without an inventory the configured answer, never a dead end.
        let plain = fresh(&dialogue(catalogue()), "is the desk lamp in stock?").await;
        assert!(
            plain.replies[0].contains("Each product's page"),
            "{:?}",
            plain.replies
        );
    }

    #[tokio::test]
    async fn follow_ups_that_say_more_are_not_carried_over() {
        let d = dialogue(catalogue());
        let ask = fresh(&d, "where's my order?").await;
        let first = say(&d, "alice", &ask.state, &ask.slots, "the first one").await;
        let pay = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &first.slots,
            "any other payment methods?",
        )
        .await;
        assert!(pay.replies[0].contains("PayPal"), "{:?}", pay.replies);
        let done = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &first.slots,
            "no other questions, thanks",
        )
        .await;
        assert!(!done.replies[0].contains("#1002"), "{:?}", done.replies);
        let bare = say(
            &d,
            "alice",
            &DialogueState::Idle,
            &first.slots,
            "what about the other one",
        )
        .await;
        assert!(bare.replies[0].contains("#1002"), "{:?}", bare.replies);
    }

    #[tokio::test]
    async fn newest_means_the_most_recent_order_wherever_it_is_listed() {
        let mut orders = catalogue();
        // 1002 placed later than 1001: the list (newest first) shows 1002 first.
        orders[1].placed_at = NOW - time::Duration::days(2);
        let d = dialogue(orders);
        let ask = fresh(&d, "I want to cancel my order").await;
        let DialogueState::AwaitingOrderChoice { candidates, .. } = &ask.state else {
            panic!("{:?}", ask.state)
        };
        assert_eq!(candidates[0], "1002", "{candidates:?}");
        let newest = say(&d, "alice", &ask.state, &ask.slots, "the newest one").await;
        assert!(newest.replies[0].contains("#1002"), "{:?}", newest.replies);
        let last = say(&d, "alice", &ask.state, &ask.slots, "the last one").await;
        assert!(
            last.replies[0].contains("#1001"),
            "the last listed: {:?}",
            last.replies
        );
    }
}
