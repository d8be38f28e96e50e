//! The dialogue: given where a conversation stands and what the customer said, what the bot says,
//! where the conversation goes next, and which jobs to start. Deterministic: connectors are read
//! through ports, and side effects only ever leave as jobs.
//!
//! Everything an intent does is the bot bundle's: a flow (run by the flow engine, `run_flow`)
//! or an answer (a message, with "which order?" first where it names one). The dialogue itself
//! interprets only the conversational moves (`moves`): small talk, yes and no that answer
//! nothing, asking for a person, things the bot is not for, "did you mean…?" between the
//! classifier's two thresholds. Connector calls share the turn's latency budget: a lookup that
//! misses it is finished by an `answer.deferred` job.

pub mod host;
mod moves;
mod offers;
mod run_flow;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::auth::Principal;
use crate::bot::messages::{Messages, Value as MsgValue};
use crate::bot::{Action, Bot};
use crate::connectors::{InventoryPort, Order, OrdersPort};
use crate::conversation::{DialogueState, QuickReply, Slots};
use crate::flow::engine::{FlowState, Waiting};
use crate::flow::value::{Record, Value};
use crate::jobs::JobKind;
use crate::nlu::{Intent, Move, Nlu, Thresholds, Understanding, LAST, NEWEST};
use crate::store::EffectLedger;

pub use moves::INTENT_NAME;
pub use run_flow::message_value;

/// The flow a returning customer's first turn runs when the bundle has it: where the refunds
/// they asked for before stand.
pub const WELCOME_BACK_FLOW: &str = "welcome_back";
/// A returning customer hears about at most this many refunds.
const MAX_WELCOME_REFUNDS: usize = 3;
/// The slot flows name the order they are about with (carried between turns).
const ORDER_SLOT: &str = "order";

#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub replies: Vec<String>,
    /// What the last reply offers as buttons (quick replies): see `offers`.
    pub quick_replies: Vec<QuickReply>,
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

/// The messages the dialogue says outside flows and moves.
pub const LET_ME_CHECK: &str = "deferred.let_me_check";
/// A chat turn whose system is down (or whose circuit is open): the deferred job tries again.
pub const DOWN_WILL_MESSAGE: &str = "deferred.down_will_message";
/// A message in a language the bundle does not speak is answered in English (the bundle's
/// default language when it has no English): the one a customer is likeliest to read.
const UNSUPPORTED_IN: &str = "en";
/// A flow's read failed for good and the intent has no answer of its own.
pub const SYSTEM_DOWN: &str = "system.orders_down";

pub struct Dialogue {
    orders: Arc<dyn OrdersPort>,
    /// Where customers update their payment method (the billing portal), if the company has one:
    /// the payment help flow's `update_url`.
    payment_update_url: Option<String>,
    /// Intents, flows and what the bot says.
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
    /// What the order system's ids look like, when its connector file says (`order_ids`).
    order_ids: Option<crate::order_ids::OrderIdFormat>,
}

impl Dialogue {
    /// With the compiled-in bundle (`with_bot` for another): development and tests.
    #[cfg(feature = "bundled-bot")]
    pub fn new(orders: Arc<dyn OrdersPort>) -> Self {
        Self::of(Bot::embedded(), orders)
    }

    /// `bot`'s dialogue (`with_bot` replaces it, with its thresholds).
    pub fn of(bot: Arc<Bot>, orders: Arc<dyn OrdersPort>) -> Self {
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
            order_ids: None,
        }
    }

    /// The order system's id format: "88140" and "so88140" are then `SO-88140`.
    pub fn with_order_ids(mut self, format: Option<crate::order_ids::OrderIdFormat>) -> Self {
        self.order_ids = format;
        self
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

    pub fn with_budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    pub fn with_ledger(mut self, ledger: Arc<dyn EffectLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The bot's sentences in its default language: what the turn and fulfillment say too.
    pub fn messages(&self) -> Arc<Messages> {
        self.messages.clone()
    }

    /// The bundle's sentence `key`.
    fn say(&self, turn: &mut Turn<'_>, key: &str, vars: &[(&str, MsgValue)]) {
        let line = turn.messages.render(key, vars);
        turn.say(line);
    }

    /// The sentences of `language` (the default language's for one the bundle does not speak).
    pub fn messages_in(&self, language: Option<&str>) -> Arc<Messages> {
        language
            .and_then(|l| self.bot.messages(l))
            .cloned()
            .unwrap_or_else(|| self.messages.clone())
    }

    /// A turn said and read in `language` (one of the bundle's).
    fn turn<'a>(
        &self,
        who: &'a Principal,
        now: OffsetDateTime,
        slots: Slots,
        language: &str,
    ) -> Turn<'a> {
        let messages = self.messages_in(Some(language));
        let words = self.bot.words(language).clone();
        Turn::new(who, now, self.budget, slots, messages, words)
    }

    /// An intent a state or slot names, if the bundle still has it.
    fn known(&self, name: Option<&str>) -> Option<Intent> {
        name.map(Intent::new)
            .filter(|i| self.bot.intent(i).is_some())
    }

    pub async fn respond(
        &self,
        who: &Principal,
        state: &DialogueState,
        slots: &Slots,
        text: &str,
        now: OffsetDateTime,
    ) -> Outcome {
        self.respond_in(None, who, state, slots, text, now).await
    }

    /// `respond`, in the language `asked` for when the bundle speaks it (the chat API's
    /// `language`); otherwise the customer's `locale` claim, else the message's and the
    /// conversation's (`language::choose`).
    pub async fn respond_in(
        &self,
        asked: Option<&str>,
        who: &Principal,
        state: &DialogueState,
        slots: &Slots,
        text: &str,
        now: OffsetDateTime,
    ) -> Outcome {
        let asked = asked
            .filter(|a| crate::language::supported(&self.bot, a).is_some())
            .or(who.locale.as_deref());
        let (language, unsupported) =
            match crate::language::choose(&self.bot, asked, slots.language.as_deref(), text) {
                crate::language::Choice::Speak(l) => (l, None),
                // While a flow waits for an answer, a name or an address in another language
                // is the answer: read in the conversation's language.
                crate::language::Choice::Unsupported(_)
                    if matches!(state, DialogueState::Flow(_)) =>
                {
                    (
                        self.bot
                            .language(slots.language.as_deref().unwrap_or(""))
                            .to_string(),
                        None,
                    )
                }
                crate::language::Choice::Unsupported(code) => {
                    (self.bot.language(UNSUPPORTED_IN).to_string(), Some(code))
                }
            };
        let mut slots = slots.clone();
        if let Some(code) = unsupported {
            tracing::info!(language = code, "a language the bundle does not speak");
            let mut turn = self.turn(who, now, slots, &language);
            self.unsupported_language(&mut turn);
            return self.offering(turn);
        }
        slots.language = Some(language.clone());
        let mut turn = self.turn(who, now, slots.clone(), &language);
        let slots = &slots;
        let u = self.nlu.understand(&language, text);
        let u = self.steer(self.order_numbers(&mut turn, u).await, slots);
        tracing::info!(
            intent = u.intent.name(),
            confidence = u.confidence,
            unsure = u.unsure_between.is_some(),
            "understood"
        );
        if !slots.welcome_back.is_empty() {
            self.welcome_back(&mut turn).await;
        }
        // Two requests in one message are answered in turn when nothing is waiting for an
        // answer (a waiting question reads the message as its answer first).
        let several = match state {
            DialogueState::Idle | DialogueState::Retired => self.nlu.requests(&language, text),
            _ => None,
        };
        match several {
            Some(parts) => self.several(&mut turn, parts).await,
            None => self.converse(&mut turn, state, slots, text, &u).await,
        }
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
            let key = if turn.system_down {
                DOWN_WILL_MESSAGE
            } else {
                LET_ME_CHECK
            };
            return Outcome {
                replies: vec![turn.messages.render(key, &[])],
                quick_replies: Vec::new(),
                state: state.clone(),
                // The language chosen stays: the deferred answer is in it too.
                slots: slots.clone(),
                jobs: Vec::new(),
                deferred: true,
                facts,
            };
        }
        turn.out.facts = facts;
        self.offering(turn)
    }

    /// The turn's outcome, with what its last reply offers as buttons.
    fn offering(&self, mut turn: Turn<'_>) -> Outcome {
        if !turn.out.replies.is_empty() {
            turn.out.quick_replies = self.offers(&turn.messages, &turn.out.state);
        }
        turn.out
    }

    /// Starts the bundle's `flow` without a message from the customer (a vendor's event: the
    /// payment help offer), with `inputs`: what the bot says and where the conversation then
    /// stands. `None` when the bundle has no such flow.
    pub async fn open_flow(
        &self,
        who: &Principal,
        flow: &str,
        mut inputs: Record,
        slots: &Slots,
        now: OffsetDateTime,
    ) -> Option<Outcome> {
        self.bot.flows.get(flow)?;
        if let Some(url) = &self.payment_update_url {
            inputs
                .entry("update_url".into())
                .or_insert_with(|| Value::text(url));
        }
        let language = self.bot.language(slots.language.as_deref().unwrap_or(""));
        let mut turn = self.turn(who, now, slots.clone(), language);
        self.start_flow(&mut turn, None, flow, inputs, &Understanding::nothing(), "")
            .await;
        Some(self.offering(turn))
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
                    return self.fallback(turn, "fallback.clarify_denied");
                }
            }
            DialogueState::HandoffOffered { reason } => match u.answer {
                Some(true) => return self.handoff(turn, reason, slots.order_id.clone()),
                Some(false) => {
                    return self.say(turn, crate::flow::engine::HANDOFF_DECLINED, &[]);
                }
                None => {}
            },
            // A person asked for mid-flow is the dialogue's move, not an answer; so is "and the
            // other one?" while a yes/no about this one waits (the offer is left unanswered).
            DialogueState::Flow(waiting)
                if !u.intent.is(Move::Human) && !points_elsewhere(waiting, u, slots) =>
            {
                match self.reply_to_flow(turn, waiting, u, text).await {
                    run_flow::Ran::Done => return,
                    run_flow::Ran::Passed => {}
                }
            }
            DialogueState::Flow(_) | DialogueState::Idle | DialogueState::Retired => {}
        }
        // "and the other one?", "what about the first?": short follow-ups about the orders just
        // listed ask the same as before, whatever the classifier makes of five words.
        let same_question = slots.topic.as_deref() == Some(u.intent.name())
            || (u.only_points && slots.topic.is_some());
        // "and the other order, 1003?": a number and nothing but pointing words.
        let points_at_number = u.only_points && !u.order_refs.is_empty();
        if (u.refers_to_listed && (same_question || u.only_points)) || points_at_number {
            if let (Some(id), Some(topic)) =
                (carried_order(u, slots), self.known(slots.topic.as_deref()))
            {
                return self.about_order(turn, topic, &id, u, text).await;
            }
        }
        // "and the headphones?" right after an order's status: the same question about the
        // customer's order that holds them (the topic's flow picks it by its items).
        if u.follow_up && u.order_refs.is_empty() && !self.about_orders(&u.intent) {
            if let Some(topic) = self.known(slots.topic.as_deref()) {
                if let Some(id) = self.item_order(turn, text).await {
                    return self.about_order(turn, topic, &id, u, text).await;
                }
            }
        }
        self.act(turn, u.intent.clone(), slots, text, u).await
    }

    /// Each request of a message, in the order written. A question one of them leaves open
    /// ("which order?") stays open after the others are answered.
    async fn several(&self, turn: &mut Turn<'_>, parts: Vec<(String, Understanding)>) {
        let mut open: Option<DialogueState> = None;
        for (text, u) in parts {
            let u = self.order_numbers(turn, u).await;
            let u = self.steer(u, &turn.out.slots);
            // A second question ("which order?" twice) would leave the customer two lists and
            // one answer: once a question is open, only plain answers follow it.
            let plain_answer = matches!(
                self.bot.intent(&u.intent).and_then(|d| d.action.as_ref()),
                Some(Action::Answer {
                    needs_order: false,
                    ..
                })
            );
            if open.is_some() && !plain_answer {
                break;
            }
            let slots = turn.out.slots.clone();
            self.converse(turn, &DialogueState::Idle, &slots, &text, &u)
                .await;
            if turn.over_budget {
                return;
            }
            match (&turn.out.state, &open) {
                (DialogueState::Idle, Some(waiting)) => turn.out.state = waiting.clone(),
                (DialogueState::Idle, None) => {}
                (waiting, _) => open = Some(waiting.clone()),
            }
        }
    }

    /// An order number in the message decides between an order's intent and another: "when
    /// will 1004 get here?" is that order's status, not the delivery times policy (the
    /// intent's `with_order`); a greeting or small talk that names one asks about it (the
    /// bundle's `order_number` intent); torn between two intents, the one about orders wins.
    /// A number and nothing but pointing words ("and the other order, SO-88130?") asks the
    /// last question about an order again (`slots.topic`), or with none before it about that
    /// order, whatever the classifier reads into "the other order" (changing one).
    /// Public for the understanding bench (shared/benches/understanding.rs), which times it.
    pub fn steer(&self, mut u: Understanding, slots: &Slots) -> Understanding {
        if u.order_refs.is_empty() {
            return u;
        }
        // A bare number ("1003") is left as it is: the question waiting for it reads it.
        if u.only_points && (u.unsure_between.is_some() || !u.intent.is(Move::Unknown)) {
            let again = self
                .known(slots.topic.as_deref())
                .or_else(|| self.bot.order_number_intent.clone());
            if let Some(intent) = again {
                u.intent = intent;
                u.unsure_between = None;
                return u;
            }
        }
        if let Some((a, b)) = &u.unsure_between {
            let pick = match (self.about_orders(a), self.about_orders(b)) {
                (true, false) => Some(a.clone()),
                (false, true) => Some(b.clone()),
                _ => None,
            };
            if let Some(intent) = pick {
                u.intent = intent;
                u.unsure_between = None;
            }
            return u;
        }
        if self.about_orders(&u.intent) {
            return u;
        }
        let own = self
            .bot
            .intent(&u.intent)
            .and_then(|d| d.with_order.clone());
        let target = own.or_else(|| match u.intent.as_move() {
            Some(
                Move::Greet | Move::Thanks | Move::Goodbye | Move::Acknowledge | Move::OutOfScope,
            ) => self.bot.order_number_intent.clone(),
            _ => None,
        });
        if let Some(t) = target {
            u.intent = t;
        }
        u
    }

    /// The recent order (as "which order?" would list them) a follow-up is all about: every
    /// word of it names that order's items ("and the headphones?"; not "and are the
    /// headphones in stock?"). A read that fails or misses the turn's budget names none: the
    /// message is then read as it is.
    async fn item_order(&self, turn: &mut Turn<'_>, text: &str) -> Option<String> {
        use crate::flow::actions::{MAX_CHOICES, RECENT_DAYS};
        let cutoff = turn.now - time::Duration::days(RECENT_DAYS);
        let orders = self.listed_orders(turn).await?;
        let recent: Vec<&Order> = orders
            .iter()
            .filter(|o| o.placed_at >= cutoff)
            .take(MAX_CHOICES)
            .collect();
        let items: Vec<String> = recent.iter().map(|o| o.item_names()).collect();
        let words = &turn.words;
        let i = crate::matching::best_exact(words, text, &items)?;
        // What a follow-up may say besides an order's items ("and what about the lamp?").
        crate::matching::covers(words, text, &items[i], &words.follow_up_words)
            .then(|| recent[i].id.clone())
    }

    /// The customer's orders as the order system lists them (newest first), their own only;
    /// read once a turn, within its budget. `None` when the read fails or misses the budget:
    /// what needs them then does without.
    async fn listed_orders(&self, turn: &mut Turn<'_>) -> Option<Vec<Order>> {
        if let Some(listed) = &turn.listed {
            return listed.clone();
        }
        // A channel user not linked to a customer yet has no orders of their own, and their
        // id is the channel's (a phone number): the order system is not asked about it.
        if !turn.who.verified {
            return Some(Vec::new());
        }
        let read = host::within(
            turn.deadline,
            self.orders.recent_orders(&turn.who.customer_id),
        );
        let who = turn.who;
        let theirs = |o: &Order| {
            crate::access::check(
                who,
                crate::access::Action::SeeOrder {
                    owner: &o.customer_id,
                },
            )
            .is_ok()
        };
        let listed = match read.await {
            Ok(Ok(orders)) => Some(orders.into_iter().filter(theirs).collect()),
            _ => None,
        };
        turn.listed = Some(listed.clone());
        listed
    }

    /// The order numbers of a message as the company's system writes them (`order_ids`):
    /// "88140" is `SO-88140` by the declared format; "so88140", or a number outside the
    /// format, is the only one of the customer's own orders it fits (`order_ids::among`); a
    /// bare number with nothing declared is taken as written. All the orders the system lists
    /// for them are candidates, not only the last few "which order?" shows, so a number that
    /// is exactly an older order is never taken for a newer one with the same digits.
    /// Ambiguous or unknown numbers stay as written, so the lookup says "not found" as before;
    /// no other customer's order is a candidate. The orders are read only for a number the
    /// declared format does not settle, or with nothing declared one that has letters
    /// (`order_ids::needs_orders`).
    async fn order_numbers(&self, turn: &mut Turn<'_>, mut u: Understanding) -> Understanding {
        use crate::order_ids::{needs_orders, resolve_all};
        let format = self.order_ids.as_ref();
        let listed = if u.order_refs.iter().any(|r| needs_orders(format, r)) {
            self.listed_orders(turn).await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let own: Vec<&str> = listed.iter().map(|o| o.id.as_str()).collect();
        u.order_refs = resolve_all(format, &u.order_refs, &own);
        u
    }

    /// The flow has the `order` slot: it is about one order.
    fn flow_has_order(&self, flow: &str) -> bool {
        self.bot
            .flows
            .get(flow)
            .is_some_and(|f| f.slots.iter().any(|s| s == ORDER_SLOT))
    }

    /// The intent asks about one order: its flow has the `order` slot, or its answer needs one.
    fn about_orders(&self, intent: &Intent) -> bool {
        match self.bot.intent(intent).and_then(|d| d.action.as_ref()) {
            Some(Action::Flow(flow)) => self.flow_has_order(flow),
            Some(Action::Answer { needs_order, .. }) => *needs_order,
            None => false,
        }
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
        let def = self.bot.intent(&intent);
        let action = def.and_then(|d| d.action.as_ref());
        if let Some(mv) = intent.as_move() {
            // A move the bundle gives an answer or a flow is the bundle's; the others are the
            // engine's own.
            if action.is_none() {
                return self.move_(turn, mv, slots, u).await;
            }
        }
        match action {
            Some(Action::Flow(flow)) => {
                let initial = self.carried_slots(flow, u, slots);
                self.start_flow(turn, Some(&intent), flow, initial, u, text)
                    .await
            }
            Some(Action::Answer {
                needs_order: true, ..
            }) => {
                let flow = crate::bot::order_answer::flow_name(intent.name());
                let initial = self.carried_slots(&flow, u, slots);
                self.start_flow(turn, Some(&intent), &flow, initial, u, text)
                    .await
            }
            Some(Action::Answer { key, handoff, .. }) => self.answer(turn, &intent, key, *handoff),
            // The bundle refuses intents without a flow or an answer; this guards a move with
            // neither that no branch above took.
            None => self.fallback(turn, "fallback.cant_help"),
        }
    }

    /// An intent's answer, and a person when the intent needs one.
    fn answer(&self, turn: &mut Turn<'_>, intent: &Intent, key: &str, handoff: bool) {
        self.say(turn, key, &[]);
        if handoff {
            flag_for_agent(turn, intent.name(), None);
        }
    }

    /// "1002", "the other one": an intent about an order the message points at, asked again.
    async fn about_order(
        &self,
        turn: &mut Turn<'_>,
        intent: Intent,
        order_id: &str,
        u: &Understanding,
        text: &str,
    ) {
        let flow = match self.bot.intent(&intent).and_then(|d| d.action.as_ref()) {
            Some(Action::Flow(flow)) => flow.clone(),
            Some(Action::Answer {
                needs_order: true, ..
            }) => crate::bot::order_answer::flow_name(intent.name()),
            // An answer that names no order is said as it is.
            Some(Action::Answer { key, handoff, .. }) => {
                return self.answer(turn, &intent, key, *handoff);
            }
            None => return self.fallback(turn, "fallback.cant_help"),
        };
        let initial = Record::from([(ORDER_SLOT.to_string(), Value::text(order_id))]);
        self.start_flow(turn, Some(&intent), &flow, initial, u, text)
            .await
    }

    /// The order a message points at among those listed last ("the second one", "the other
    /// one"), for a flow that has an `order` slot: the engine fills the rest from the message.
    fn carried_slots(&self, flow: &str, u: &Understanding, slots: &Slots) -> Record {
        let wants_order = self.flow_has_order(flow);
        match carried_order(u, slots) {
            Some(id) if wants_order && u.order_refs.is_empty() => {
                Record::from([(ORDER_SLOT.to_string(), Value::text(id))])
            }
            _ => Record::new(),
        }
    }

    /// A returning customer hears first where the refunds they asked for before stand (the
    /// bundle's `welcome_back` flow); a greeting with no news after it is not said.
    async fn welcome_back(&self, turn: &mut Turn<'_>) {
        let mut pending = std::mem::take(&mut turn.out.slots.welcome_back);
        pending.truncate(MAX_WELCOME_REFUNDS);
        if !self.bot.flows.contains_key(WELCOME_BACK_FLOW) {
            return;
        }
        self.run_welcome(turn, pending).await;
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
    let i = u.ordinal?;
    match i {
        LAST => slots.candidates.last().cloned(),
        NEWEST => slots.candidates.first().cloned(),
        i => slots.candidates.get(i).cloned(),
    }
}

/// A message that only points at another of the orders listed ("and the other one?") while
/// the flow waits for a yes or no about the current one.
fn points_elsewhere(waiting: &FlowState, u: &Understanding, slots: &Slots) -> bool {
    u.refers_to_listed
        && u.only_points
        && matches!(waiting.frame.waiting, Some(Waiting::Confirm))
        && carried_order(u, slots).is_some_and(|id| Some(&id) != slots.order_id.as_ref())
}

/// Marks the conversation for a person and starts the job that notifies the team.
fn flag_for_agent(turn: &mut Turn<'_>, reason: &str, order_id: Option<String>) {
    turn.out.slots.handoff_requested = true;
    turn.out.jobs.push(JobKind::AgentHandoff {
        reason: reason.to_string(),
        order_id,
    });
}

struct Turn<'a> {
    who: &'a Principal,
    now: OffsetDateTime,
    deadline: Option<Instant>,
    over_budget: bool,
    /// The turn is deferred because a system is down, not slow.
    system_down: bool,
    /// The customer's orders once listed this turn (`None` inside: the read failed).
    listed: Option<Option<Vec<Order>>>,
    /// Nothing understood: "Sorry, I didn't catch that" and the like.
    fallback: bool,
    /// `verify.needed` was said this turn (said once however many requests needed it).
    asked_to_verify: bool,
    /// The sentences of the conversation's language, and how it is read.
    messages: Arc<Messages>,
    words: crate::bot::Words,
    out: Outcome,
}

impl<'a> Turn<'a> {
    fn new(
        who: &'a Principal,
        now: OffsetDateTime,
        budget: Option<Duration>,
        slots: Slots,
        messages: Arc<Messages>,
        words: crate::bot::Words,
    ) -> Self {
        Turn {
            who,
            now,
            deadline: budget.map(|b| Instant::now() + b),
            over_budget: false,
            system_down: false,
            listed: None,
            fallback: false,
            asked_to_verify: false,
            messages,
            words,
            out: Outcome {
                replies: Vec::new(),
                quick_replies: Vec::new(),
                state: DialogueState::Idle,
                slots,
                jobs: Vec::new(),
                deferred: false,
                facts: TurnFacts::default(),
            },
        }
    }

    fn say(&mut self, text: String) {
        self.out.replies.push(text);
    }
}

#[cfg(test)]
mod tests;
