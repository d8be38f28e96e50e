//! The reading of one customer message in its conversation, in process: classification and
//! context resolution, as the dialogue does them before it runs a flow or says anything.
//!
//!   cargo bench -p switchboard --bench understanding [-- --json PATH]
//!
//! Target (issue 20): classification + context resolution under 150 µs p99 per message.
//!
//! What one timed reading is, in the order `Dialogue::respond` and the flow engine do it:
//!
//! - **classification**: `Nlu::understand` (the model, the fixed yes/no/acknowledgement lists,
//!   entities for order numbers and ordinals, and for a message that opens with a greeting the
//!   request after it: `after_greeting`);
//! - **steering**: `Dialogue::steer` (an order number pulls the intent to the one about orders);
//! - with nothing waiting, **two requests** in one message: `Nlu::requests`, each part steered;
//! - **what the flow reads from the message**, for the message or each of its requests:
//!   `entities::extract` and `Understood::from_nlu` (as `start_flow` and `reply_to_flow` build the
//!   engine's input), then by the state the conversation is in:
//!   - a flow waiting for a slot: `Engine::interrupts` (is it another intent?) and `fill`
//!     (the slot's value: an order number, "the second one", an item of one of the orders
//!     listed; a product against the catalogue, which `entities::extract` matched);
//!   - a flow waiting for a yes or no: the answer the reading carries, and `Engine::interrupts`;
//!   - a flow the intent starts that asks about an order: which of the customer's recent orders
//!     the message names by its items (`matching::best_exact`, as `list_recent_orders` does), and
//!     for a follow-up ("and the headphones?") whether it is all about one (`matching::covers`,
//!     as `Dialogue::item_order` does);
//!   - a flow about a product: which of the catalogue's products it asks about
//!     (`product_words::asked`, as `match_product` does with the message).
//!
//! Not in it: the reads those decisions need from systems (the customer's recent orders and the
//! catalogue are given, as if already fetched: they are I/O, through the turn's budget), running
//! the flow's steps and rendering what the bot says, the conversation store, and logs. The
//! classification alone is timed too, separately, for its share.
//!
//! Each message is timed on its own with `Instant`, round after round over the whole mix (drift
//! hits every kind alike), after untimed rounds; a counting allocator (off while timing) gives the
//! heap allocations of one reading. Each reading is also checked, once and untimed, against what
//! the message is meant to resolve to: a reading that went another way (a split not made, a yes
//! read as something else) takes another path, and the table says how many did. Figures:
//! docs/benchmarks.md.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;
use switchboard::bot::{Action, Bot};
use switchboard::connectors::{ConnectorError, Order, OrdersPort};
use switchboard::conversation::{DialogueState, Slots};
use switchboard::dialogue::Dialogue;
use switchboard::flow::engine::{FlowState, Frame, Understood, Waiting};
use switchboard::flow::fill::fill;
use switchboard::flow::value::{Record, Value};
use switchboard::flow::SlotType;
use switchboard::nlu::{Intent, Move, Nlu, Understanding};
use time::{Date, Month};

#[path = "support/mod.rs"]
mod support;
use support::{allocations, machine, Samples};

const WARM_UP_ROUNDS: usize = 50;
const ROUNDS: usize = 2_000;
const TARGET_P99_US: f64 = 150.0;

/// The shop's catalogue as the inventory would list it: the demo shop's products and a few
/// more, so a name is found among a dozen.
const CATALOGUE: &[&str] = &[
    "Wireless Mouse",
    "Noise-Cancelling Headphones",
    "Desk Lamp",
    "USB-C Cable",
    "Phone Case",
    "Espresso Grinder",
    "Yoga Mat",
    "Water Bottle",
    "Running Shoes",
    "Mechanical Keyboard",
    "Laptop Stand",
    "Bluetooth Speaker",
];

/// The customer's recent orders, newest first, as "which order?" lists them: their numbers
/// and, in the same order, what each holds.
const RECENT: &[(&str, &str)] = &[
    ("1011", "Wireless Mouse"),
    ("1008", "Noise-Cancelling Headphones, USB-C Cable"),
    ("1005", "Desk Lamp, Laptop Stand"),
];

/// The dialogue's steering needs a `Dialogue`, which holds an orders port; the reading never
/// calls it (the orders it would read are `RECENT`, given).
struct NoOrders;

#[async_trait]
impl OrdersPort for NoOrders {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        unreachable!("the understanding bench reads no orders")
    }
    async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
        unreachable!("the understanding bench reads no orders")
    }
}

/// Where the conversation stands when the message arrives.
#[derive(Clone, Copy, Debug, PartialEq)]
enum At {
    /// Nothing waits.
    Idle,
    /// `order_status` asked "which order?" and listed `RECENT`.
    WhichOrder,
    /// `order_status` offered a refund for a late order and waits for a yes or no.
    OfferPending,
    /// `product_availability` asked "which product?".
    WhichProduct,
}

struct Reader {
    bot: Arc<Bot>,
    nlu: Nlu,
    dialogue: Dialogue,
    today: Date,
    recent_items: Vec<String>,
    states: BTreeMap<&'static str, DialogueState>,
}

/// What one message was read as: kept whole so nothing of the work is optimised away, and
/// for the checks.
#[derive(Debug)]
struct Reading {
    understanding: Understanding,
    /// The requests of a message that makes two or more, each read and steered.
    parts: Vec<Request>,
    /// The message as one request (empty `parts`), or what a waiting flow reads.
    whole: Option<Request>,
}

#[derive(Debug)]
struct Request {
    intent: String,
    input: Understood,
    /// A waiting flow: the asked slot's value from the message.
    filled: Option<Value>,
    /// A waiting flow: the message is another intent, which runs first.
    interrupts: bool,
    /// Which of the recent orders the message names by its items.
    named_order: Option<usize>,
    /// A follow-up all about that order's items.
    follow_up_order: bool,
    /// The catalogue's products it asks about.
    products: Vec<usize>,
}

impl Reader {
    fn new(bot: Arc<Bot>) -> Self {
        let nlu = bot.nlu();
        let dialogue = Dialogue::new(Arc::new(NoOrders)).with_bot(bot.clone());
        let today = Date::from_calendar_date(2026, Month::November, 25).expect("a date");
        let recent_items = RECENT.iter().map(|(_, items)| items.to_string()).collect();
        let waiting = |flow: &str, waiting: Waiting, slots: Record| {
            DialogueState::Flow(FlowState {
                frame: Frame {
                    flow: flow.to_string(),
                    step: 0,
                    slots,
                    bound: BTreeMap::new(),
                    attempts: 0,
                    waiting: Some(waiting),
                    candidates: RECENT.iter().map(|(id, _)| id.to_string()).collect(),
                    candidate_items: RECENT.iter().map(|(_, i)| i.to_string()).collect(),
                    // Placed a day apart, a week or more back: dates are not in the mix.
                    candidate_placed: (0..RECENT.len() as i64)
                        .map(|i| today - time::Duration::days(7 + i))
                        .collect(),
                },
                suspended: Vec::new(),
            })
        };
        let order = |id: &str| Record::from([("order".to_string(), Value::text(id))]);
        let states = BTreeMap::from([
            ("idle", DialogueState::Idle),
            (
                "which_order",
                waiting(
                    "order_status",
                    Waiting::Slot {
                        slot: "order".into(),
                    },
                    Record::new(),
                ),
            ),
            (
                "offer_pending",
                waiting("order_status", Waiting::Confirm, order("1008")),
            ),
            (
                "which_product",
                waiting(
                    "product_availability",
                    Waiting::Slot {
                        slot: "product".into(),
                    },
                    Record::new(),
                ),
            ),
        ]);
        for state in states.values() {
            if let DialogueState::Flow(f) = state {
                assert!(
                    bot.flows.contains_key(&f.frame.flow),
                    "the bundle has no {} flow",
                    f.frame.flow
                );
            }
        }
        Reader {
            bot,
            nlu,
            dialogue,
            today,
            recent_items,
            states,
        }
    }

    fn state(&self, at: At) -> &DialogueState {
        let name = match at {
            At::Idle => "idle",
            At::WhichOrder => "which_order",
            At::OfferPending => "offer_pending",
            At::WhichProduct => "which_product",
        };
        &self.states[name]
    }

    /// The flow an intent starts, if it starts one (an answer that needs an order runs the
    /// generated flow that asks for it).
    fn flow_of(&self, intent: &Intent) -> Option<String> {
        match self.bot.intent(intent)?.action.as_ref()? {
            Action::Flow(f) => Some(f.clone()),
            Action::Answer {
                needs_order: true, ..
            } => Some(switchboard::bot::order_answer::flow_name(intent.name())),
            Action::Answer { .. } => None,
        }
    }

    fn has_slot(&self, flow: &str, slot: &str) -> bool {
        self.bot
            .flows
            .get(flow)
            .is_some_and(|f| f.slots.iter().any(|s| s == slot))
    }

    /// The whole reading of `text` with the conversation at `at`.
    fn read(&self, at: At, text: &str) -> Reading {
        // `Dialogue::respond`'s first lines: the language (a conversation's first message: no
        // language yet, so every language is weighed), the order numbers as the order system
        // writes them (no format declared, the customer's orders as listed), then steering.
        let language = match switchboard::language::choose(&self.bot, None, None, text) {
            switchboard::language::Choice::Speak(l) => l,
            switchboard::language::Choice::Unsupported(_) => "en".to_string(),
        };
        let mut understood = self.nlu.understand(&language, text);
        let own: Vec<&str> = RECENT.iter().map(|(id, _)| *id).collect();
        understood.order_refs =
            switchboard::order_ids::resolve_all(None, &understood.order_refs, &own);
        let understanding = self.dialogue.steer(understood, &Slots::default());
        match self.state(at) {
            DialogueState::Flow(state) => {
                let whole = Some(self.for_waiting(state, text, &understanding));
                Reading {
                    understanding,
                    parts: Vec::new(),
                    whole,
                }
            }
            _ => {
                // Two requests are read apart only when nothing waits for an answer.
                let parts: Vec<Request> = self
                    .nlu
                    .requests(&language, text)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(part, u)| {
                        let u = self.dialogue.steer(u, &Slots::default());
                        self.for_new(&part, &u)
                    })
                    .collect();
                let whole = parts.is_empty().then(|| self.for_new(text, &understanding));
                Reading {
                    understanding,
                    parts,
                    whole,
                }
            }
        }
    }

    /// A request with nothing waiting: what the flow its intent starts reads from it.
    fn for_new(&self, text: &str, u: &Understanding) -> Request {
        // The unknown move (`moves.rs`): a bare order number ("1002") asks what the bundle says
        // one asks (`[understanding] order_number`; the conversation here is about no order).
        let resolved = match (&u.unsure_between, u.order_refs.first()) {
            (None, Some(_)) if u.intent.is(Move::Unknown) => self
                .bot
                .order_number_intent
                .clone()
                .unwrap_or(u.intent.clone()),
            _ => u.intent.clone(),
        };
        // `start_flow`'s input: the message's entities, no catalogue.
        let words = self.bot.default_words();
        let entities = switchboard::entities::extract(words, text, self.today, &[]);
        let input = Understood::from_nlu(u, text, &entities, words);
        let flow = self.flow_of(&resolved);
        let about_order = flow.as_deref().is_some_and(|f| self.has_slot(f, "order"));
        let about_product = flow.as_deref().is_some_and(|f| self.has_slot(f, "product"));
        // `list_recent_orders`: the order the message names by what it holds.
        let named_order = (about_order && u.order_refs.is_empty())
            .then(|| switchboard::matching::best_exact(words, text, &self.recent_items))
            .flatten();
        // `Dialogue::item_order`: a follow-up that is all about one order's items.
        let follow_up_order = u.follow_up
            && u.order_refs.is_empty()
            && !about_order
            && switchboard::matching::best_exact(words, text, &self.recent_items).is_some_and(
                |i| {
                    switchboard::matching::covers(
                        words,
                        text,
                        &self.recent_items[i],
                        &words.follow_up_words,
                    )
                },
            );
        // `match_product` with the message.
        let products = if about_product {
            switchboard::product_words::asked(words, text, CATALOGUE).products
        } else {
            Vec::new()
        };
        Request {
            intent: resolved.name().to_string(),
            input,
            filled: None,
            interrupts: false,
            named_order,
            follow_up_order,
            products,
        }
    }

    /// The reply to a waiting flow, as `reply_to_flow` and `Engine::reply` read it.
    fn for_waiting(&self, state: &FlowState, text: &str, u: &Understanding) -> Request {
        let engine = &self.bot.engine.0;
        let waiting_for = match &state.frame.waiting {
            Some(Waiting::Slot { slot }) => engine.slot(slot).map(|d| d.kind),
            _ => None,
        };
        // While a product is asked for, the catalogue's names are looked for in the message.
        let names: &[&str] = if waiting_for == Some(SlotType::Product) {
            CATALOGUE
        } else {
            &[]
        };
        let language_words = self.bot.default_words();
        let entities = switchboard::entities::extract(language_words, text, self.today, names);
        let input = Understood::from_nlu(u, text, &entities, language_words);
        let route = engine.interrupts(&input, &state.frame.flow).is_some();
        let filled = waiting_for.and_then(|kind| {
            fill(
                kind,
                &input,
                &state.frame.candidates,
                &state.frame.candidate_items,
                &state.frame.candidate_placed,
            )
        });
        // As `Engine::reply` decides: a slot's value wins over another intent unless the slot
        // takes any words (text, or a product the catalogue did not name); a yes or no wins
        // over another intent.
        let free = waiting_for == Some(SlotType::Text)
            || (waiting_for == Some(SlotType::Product) && input.products.is_empty());
        let interrupts = route
            && match waiting_for {
                Some(_) => filled.is_none() || free,
                None => input.answer.is_none(),
            };
        // The product slot's words go to `match_product` next.
        let products = match (&filled, waiting_for) {
            (Some(Value::Text(words)), Some(SlotType::Product)) => {
                switchboard::product_words::asked(language_words, words, CATALOGUE).products
            }
            _ => Vec::new(),
        };
        Request {
            intent: u.intent.name().to_string(),
            input,
            filled,
            interrupts,
            named_order: None,
            follow_up_order: false,
            products,
        }
    }
}

/// What a message is meant to resolve to.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// This intent, as one request.
    Intent(&'static str),
    /// This intent, with this order number.
    OrderRef(&'static str, &'static str),
    /// The waiting "which order?" filled with this order.
    Fills(&'static str),
    /// The waiting yes/no answered.
    Answer(bool),
    /// This many requests, with these intents.
    Requests(&'static [&'static str]),
    /// These catalogue products (by name), for a product intent or the waiting product slot.
    Products(&'static [&'static str]),
}

struct Message {
    kind: &'static str,
    at: At,
    text: &'static str,
    expect: Expect,
}

const fn m(kind: &'static str, at: At, text: &'static str, expect: Expect) -> Message {
    Message {
        kind,
        at,
        text,
        expect,
    }
}

const PLAIN: &str = "plain question";
const ORDER_NO: &str = "order number";
const ITEM: &str = "item name for \"which order?\"";
const YES_NO: &str = "yes/no in other words, offer pending";
const ACK: &str = "acknowledgement";
const GREETING: &str = "greeting, then a request";
const TWO: &str = "two requests in one message";
const PRODUCT: &str = "product question (typos, plurals)";

const KINDS: &[&str] = &[PLAIN, ORDER_NO, ITEM, YES_NO, ACK, GREETING, TWO, PRODUCT];

/// The mix: written for this bench, one message per line, in the kinds the issue names.
#[rustfmt::skip] // a table: one message a line reads better than six
fn mix() -> Vec<Message> {
    use At::*;
    use Expect::*;
    vec![
        m(PLAIN, Idle, "how long does delivery usually take?", Intent("delivery_period")),
        m(PLAIN, Idle, "can I pay for my order with paypal", Intent("check_payment_methods")),
        m(PLAIN, Idle, "what's your policy on refunds for opened items", Intent("check_refund_policy")),
        m(PLAIN, Idle, "I forgot my password, how do I reset it?", Intent("recover_password")),
        m(PLAIN, Idle, "is there a fee if I cancel an order", Intent("check_cancellation_fee")),
        m(PLAIN, Idle, "where can I download the invoice for my purchase", Intent("get_invoice")),
        m(ORDER_NO, Idle, "1002", OrderRef("order_status", "1002")),
        m(ORDER_NO, Idle, "#1004", OrderRef("order_status", "1004")),
        m(ORDER_NO, Idle, "where is order 1003 right now?", OrderRef("order_status", "1003")),
        m(ORDER_NO, Idle, "any news on 1005 please", OrderRef("order_status", "1005")),
        m(ORDER_NO, WhichOrder, "1008", Fills("1008")),
        m(ORDER_NO, WhichOrder, "it's #1011", Fills("1011")),
        m(ITEM, WhichOrder, "the headphones", Fills("1008")),
        m(ITEM, WhichOrder, "the one with the mouse", Fills("1011")),
        m(ITEM, WhichOrder, "the desk lamp order", Fills("1005")),
        m(ITEM, WhichOrder, "headphone one", Fills("1008")),
        m(ITEM, WhichOrder, "the usb cable", Fills("1008")),
        m(ITEM, WhichOrder, "the laptop stand", Fills("1005")),
        m(YES_NO, OfferPending, "yes please, go ahead", Answer(true)),
        m(YES_NO, OfferPending, "sure thing", Answer(true)),
        m(YES_NO, OfferPending, "that would be great thanks", Answer(true)),
        m(YES_NO, OfferPending, "go for it", Answer(true)),
        m(YES_NO, OfferPending, "no thanks, I'll wait", Answer(false)),
        m(YES_NO, OfferPending, "nah, not right now", Answer(false)),
        m(YES_NO, OfferPending, "I'd rather not", Answer(false)),
        m(ACK, Idle, "got it", Intent("acknowledge")),
        m(ACK, Idle, "ok cool", Intent("acknowledge")),
        m(ACK, Idle, "makes sense", Intent("acknowledge")),
        m(ACK, Idle, "fair enough", Intent("acknowledge")),
        m(ACK, Idle, "ok i see", Intent("acknowledge")),
        m(GREETING, Idle, "hi there, where is my package?", Intent("order_status")),
        m(GREETING, Idle, "hello, I want a refund for the shoes I ordered", Intent("request_refund")),
        m(GREETING, Idle, "good morning! has order 1002 shipped yet", OrderRef("order_status", "1002")),
        m(GREETING, Idle, "hey, how much is the desk lamp", Intent("product_price")),
        m(TWO, Idle, "has 1004 shipped? and can I pay with apple pay?", Requests(&["order_status", "check_payment_methods"])),
        m(TWO, Idle, "where is my order 1002 and how do I reset my password", Requests(&["order_status", "recover_password"])),
        m(TWO, Idle, "what's the refund policy? also how long does shipping take?", Requests(&["check_refund_policy", "delivery_period"])),
        m(PRODUCT, Idle, "do you have desk lamps in stock?", Products(&["Desk Lamp"])),
        m(PRODUCT, Idle, "is the wireles mouse available", Products(&["Wireless Mouse"])),
        m(PRODUCT, Idle, "how much are the headphone", Products(&["Noise-Cancelling Headphones"])),
        m(PRODUCT, Idle, "are yoga mats back in stock", Products(&["Yoga Mat"])),
        m(PRODUCT, Idle, "do you still sell usb-c cables", Products(&["USB-C Cable"])),
        m(PRODUCT, WhichProduct, "the lamp", Products(&["Desk Lamp"])),
        m(PRODUCT, WhichProduct, "wireless mice", Products(&["Wireless Mouse"])),
    ]
}

/// Does the reading resolve the message as meant? `None` if so, else what it read.
fn check(r: &Reading, expect: Expect) -> Option<String> {
    let one = r.whole.as_ref();
    let intent = r.understanding.intent.name();
    let ok = match expect {
        Expect::Intent(i) => one.is_some_and(|q| q.intent == i),
        Expect::OrderRef(i, n) => {
            one.is_some_and(|q| q.intent == i)
                && r.understanding.order_refs.first().map(String::as_str) == Some(n)
        }
        Expect::Fills(id) => one.is_some_and(|q| {
            !q.interrupts && q.filled.as_ref().and_then(Value::as_text) == Some(id)
        }),
        Expect::Answer(yes) => one.is_some_and(|q| !q.interrupts && q.input.answer == Some(yes)),
        Expect::Requests(intents) => {
            r.parts.len() == intents.len()
                && r.parts.iter().zip(intents).all(|(p, i)| p.intent == *i)
        }
        Expect::Products(names) => one
            .is_some_and(|q| q.products.iter().map(|&i| CATALOGUE[i]).collect::<Vec<_>>() == names),
    };
    (!ok).then(|| {
        let parts: Vec<&str> = r.parts.iter().map(|p| p.intent.as_str()).collect();
        format!(
            "intent {intent} ({:.2}) resolved {:?}, refs {:?}, answer {:?}, parts {parts:?}, filled {:?}, interrupts {}, named order {:?}, follow-up {}, products {:?}",
            r.understanding.confidence,
            one.map(|q| q.intent.as_str()),
            r.understanding.order_refs,
            r.understanding.answer,
            one.and_then(|q| q.filled.as_ref()),
            one.is_some_and(|q| q.interrupts),
            one.and_then(|q| q.named_order),
            one.is_some_and(|q| q.follow_up_order),
            one.map(|q| q.products.iter().map(|&i| CATALOGUE[i]).collect::<Vec<_>>()),
        )
    })
}

/// A sample set as the report's JSON reads it.
fn samples_json(s: &Samples) -> serde_json::Value {
    let us = |d: Duration| (d.as_secs_f64() * 1e8).round() / 100.0;
    json!({
        "n": s.0.len(),
        "p50_us": us(s.percentile(0.50)),
        "p99_us": us(s.percentile(0.99)),
        "max_us": us(s.max()),
    })
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// `--json PATH` among the arguments (`cargo bench` adds `--bench`, `cargo test --benches`
/// nothing).
fn json_path() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    // As the chat function loads it: SWITCHBOARD_BOT's bundle, else the compiled-in one.
    let bot = match Bot::from_env() {
        Ok(bot) => bot,
        Err(e) => {
            eprintln!("understanding bench: the bot bundle does not load:\n{e}");
            std::process::exit(1);
        }
    };
    let reader = Reader::new(bot.clone());
    // `cargo test --benches` runs this too: a few rounds there, to check it works.
    let test_run = !std::env::args().any(|a| a == "--bench");
    let (warm_up, rounds) = if test_run {
        (1, 3)
    } else {
        (WARM_UP_ROUNDS, ROUNDS)
    };
    let mix = mix();

    // Once, untimed: what each message resolves to, and what one reading allocates.
    let mut missed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut allocs: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for msg in &mix {
        let r = reader.read(msg.at, msg.text);
        if let Some(got) = check(&r, msg.expect) {
            *missed.entry(msg.kind).or_default() += 1;
            eprintln!(
                "understanding bench: {:?} ({}, {:?}) expected {:?}, read {got}",
                msg.text, msg.kind, msg.at, msg.expect
            );
        }
        allocs
            .entry(msg.kind)
            .or_default()
            .push(allocations(|| reader.read(msg.at, msg.text)));
    }
    // Run as a test (`./dev/test`), a message read otherwise than meant fails it; timed, the
    // misses are counted in the table.
    if test_run && !missed.is_empty() {
        eprintln!("understanding bench: {missed:?} read otherwise than meant");
        std::process::exit(1);
    }

    for _ in 0..warm_up {
        for msg in &mix {
            black_box(reader.nlu.understand("en", black_box(msg.text)));
            black_box(reader.read(msg.at, black_box(msg.text)));
        }
    }
    let mut classify: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); mix.len()];
    let mut read: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); mix.len()];
    for _ in 0..rounds {
        for (i, msg) in mix.iter().enumerate() {
            let start = Instant::now();
            let u = reader.nlu.understand("en", black_box(msg.text));
            classify[i].push(start.elapsed());
            drop(black_box(u));
            let start = Instant::now();
            let r = reader.read(msg.at, black_box(msg.text));
            read[i].push(start.elapsed());
            drop(black_box(r));
        }
    }

    let gather = |times: &[Vec<Duration>], kind: Option<&str>| {
        Samples::new(
            mix.iter()
                .zip(times)
                .filter(|(m, _)| kind.is_none_or(|k| m.kind == k))
                .flat_map(|(_, t)| t.iter().copied())
                .collect(),
        )
    };
    let mut rows = Vec::new();
    for kind in KINDS.iter().copied().map(Some).chain([None]) {
        let messages = mix
            .iter()
            .filter(|m| kind.is_none_or(|k| m.kind == k))
            .count();
        let a: Vec<u64> = match kind {
            Some(k) => allocs.get(k).cloned().unwrap_or_default(),
            None => allocs.values().flatten().copied().collect(),
        };
        let misses = match kind {
            Some(k) => missed.get(k).copied().unwrap_or(0),
            None => missed.values().sum(),
        };
        rows.push((
            kind.unwrap_or("all"),
            messages,
            misses,
            gather(&classify, kind),
            gather(&read, kind),
            a.iter().sum::<u64>() as f64 / a.len().max(1) as f64,
            a.iter().copied().max().unwrap_or(0),
        ));
    }

    println!(
        "understanding: the reading of a message in its conversation (classification + context resolution), in process; \
         {} messages, {rounds} timed rounds after {warm_up} untimed; bundle {} ({})",
        mix.len(),
        bot.name,
        bot.source
    );
    println!("machine: {}", machine());
    println!();
    println!("| kind | messages | read as meant | classification p50 | p99 | reading p50 | p99 | max | allocations (mean, max) | target (p99) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (kind, messages, misses, c, r, mean, max) in &rows {
        let p99 = r.percentile(0.99);
        let target = if *kind == "all" {
            let verdict = if p99.as_secs_f64() * 1e6 < TARGET_P99_US {
                "pass"
            } else {
                "**miss**"
            };
            format!("< {TARGET_P99_US} µs: {verdict}")
        } else {
            String::new()
        };
        let label = if *kind == "all" {
            "**all**".to_string()
        } else {
            kind.to_string()
        };
        println!(
            "| {label} | {messages} | {} of {messages} | {} | {} | {} | {} | {} | {mean:.0}, {max} | {target} |",
            messages - misses,
            us(c.percentile(0.50)),
            us(c.percentile(0.99)),
            us(r.percentile(0.50)),
            us(p99),
            us(r.max()),
        );
    }

    if let Some(path) = json_path() {
        let kinds: Vec<serde_json::Value> = rows
            .iter()
            .map(|(kind, messages, misses, c, r, mean, max)| {
                json!({
                    "kind": kind,
                    "messages": messages,
                    "read_as_meant": messages - misses,
                    "classification": samples_json(c),
                    "reading": samples_json(r),
                    "allocations_mean": (mean * 10.0).round() / 10.0,
                    "allocations_max": max,
                })
            })
            .collect();
        let doc = json!({
            "bundle": bot.name,
            "bundle_source": bot.source,
            "messages": mix.len(),
            "rounds": rounds,
            "warm_up_rounds": warm_up,
            "target_p99_us": TARGET_P99_US,
            "catalogue_products": CATALOGUE.len(),
            "recent_orders": RECENT.len(),
            "machine": machine(),
            "kinds": kinds,
        });
        let text = serde_json::to_string_pretty(&doc).expect("JSON");
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("understanding bench: cannot write {path}: {e}");
            std::process::exit(1);
        }
    }
}
