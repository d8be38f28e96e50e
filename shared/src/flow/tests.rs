//! The built-in flow files, parsed, validated and walked through with an in-memory host and
//! catalogue; and bad flows, which are refused with every problem named, never a panic.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::macros::datetime;
use time::OffsetDateTime;

use super::actions::Actions;
use super::catalog::{operation_fields, FlowCatalog, Operation};
use super::engine::{
    Effect, Engine, FlowHost, FlowJob, FlowState, HostError, RefundState, Route, Turn, Understood,
};
use super::value::{Record, Value};
use super::{parse, validate, Flow, SlotDef, SlotType};
use crate::connectors::catalog::Op;
use crate::money::Money;
use crate::nlu::NEWEST;

const NOW: OffsetDateTime = datetime!(2026-11-24 12:00 UTC);

/// Every message key the built-in flows use, with the variables each may use: what
/// docs/flows.md lists for the messages catalogue.
pub(crate) const KEYS: &[(&str, &[&str])] = &[
    ("order.which", &["count", "list"]),
    ("order.list_line", &["n", "summary", "placed"]),
    ("payment.choice.person", &[]),
    ("payment.choice.update", &[]),
    ("payment.choice.retry", &[]),
    ("system.stock_down", &[]),
    ("order.status.unknown", &["summary"]),
    ("order.status.processing", &["summary"]),
    ("order.status.in_transit", &["summary", "carrier"]),
    ("order.status.in_transit.no_carrier", &["summary"]),
    ("order.status.out_for_delivery", &["summary", "carrier"]),
    ("order.status.out_for_delivery.no_carrier", &["summary"]),
    ("order.status.delivered", &["summary", "date"]),
    ("order.status.delivered.undated", &["summary"]),
    ("order.status.cancelled", &["summary"]),
    ("order.tracking", &["tracking_url"]),
    ("order.expected", &["due"]),
    ("order.late", &["due"]),
    ("order.late.offer", &["due", "amount"]),
    ("order.late.declined", &[]),
    ("order.none_recent", &[]),
    ("order.not_found", &["order"]),
    ("refund.requested", &["amount", "order"]),
    ("refund.only_late", &[]),
    ("refund.state.in_progress", &["order"]),
    ("refund.state.done", &["order"]),
    ("refund.state.failed", &["order"]),
    ("refund.state.set_aside", &["order"]),
    ("refund.state.unknown", &["order"]),
    ("answer.track_refund", &[]),
    ("answer.product_availability", &[]),
    ("answer.check_refund_policy", &[]),
    ("welcome.back", &[]),
    ("stock.which", &["examples"]),
    ("stock.in_stock", &["name", "available"]),
    ("stock.out_of_stock", &["name"]),
    ("products.in_stock", &["name", "available", "price"]),
    ("products.out_of_stock", &["name", "price"]),
    ("products.several", &["list"]),
    ("products.not_sold", &["wanted", "examples"]),
    ("products.line.in_stock", &["name", "available"]),
    (
        "products.line.in_stock_priced",
        &["name", "available", "price"],
    ),
    ("products.line.out_of_stock", &["name"]),
    ("products.line.out_of_stock_priced", &["name", "price"]),
    ("products.price.which", &["examples"]),
    ("products.price.in_stock", &["name", "available", "price"]),
    ("products.price.out_of_stock", &["name", "price"]),
    ("products.price.unknown", &["name"]),
    ("products.price.unmatched", &[]),
    ("payment.help.offer", &[]),
    ("payment.help.declined", &[]),
    ("payment.help.options", &[]),
    ("payment.option.retry", &[]),
    ("payment.option.update", &[]),
    ("payment.option.person", &[]),
    ("payment.retry.link", &["url"]),
    ("payment.retry.billing_page", &[]),
    ("payment.update.link", &["url"]),
    ("payment.update.settings", &[]),
];

struct Catalog;

impl FlowCatalog for Catalog {
    fn message_vars(&self, key: &str) -> Option<Vec<String>> {
        KEYS.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.iter().map(|s| s.to_string()).collect())
    }
    fn slot(&self, name: &str) -> Option<SlotType> {
        slots().get(name).map(|d| d.kind)
    }
    fn operation(&self, name: &str) -> Operation {
        let allowed = [
            "orders.get_status",
            "orders.list_by_customer",
            "inventory.availability",
            "email.send",
        ];
        let Some(op) = name.split_once('.').and_then(|(s, o)| Op::find(s, o)) else {
            return Operation::Unknown;
        };
        if !allowed.contains(&name) {
            return Operation::NotAllowed;
        }
        operation_fields(op)
    }
}

fn slots() -> BTreeMap<String, SlotDef> {
    let def = |kind, name: &str| SlotDef {
        kind,
        prompt: format!("slot.{name}.prompt"),
        reprompt: format!("slot.{name}.reprompt"),
        attempts: 2,
    };
    BTreeMap::from([
        ("order".to_string(), def(SlotType::Order, "order")),
        ("product".to_string(), def(SlotType::Product, "product")),
        ("choice".to_string(), def(SlotType::Text, "choice")),
        ("email".to_string(), def(SlotType::Email, "email")),
    ])
}

const BUILT_IN: &[(&str, &str)] = &[
    (
        "order_status",
        include_str!("../../../config/bot/flows/order_status.toml"),
    ),
    (
        "request_refund",
        include_str!("../../../config/bot/flows/request_refund.toml"),
    ),
    (
        "track_refund",
        include_str!("../../../config/bot/flows/track_refund.toml"),
    ),
    (
        "product_availability",
        include_str!("../../../config/bot/flows/product_availability.toml"),
    ),
    (
        "product_price",
        include_str!("../../../config/bot/flows/product_price.toml"),
    ),
    (
        "payment_help",
        include_str!("../../../config/bot/flows/payment_help.toml"),
    ),
    (
        "handoff",
        include_str!("../../../config/bot/flows/handoff.toml"),
    ),
    (
        "welcome_back",
        include_str!("../../../config/bot/flows/welcome_back.toml"),
    ),
];

fn built_in() -> Vec<Flow> {
    BUILT_IN
        .iter()
        .map(|(name, text)| {
            let file = format!("config/bot/flows/{name}.toml");
            let flow = parse::parse(name, &file, text).unwrap_or_else(|e| panic!("{e}"));
            validate::validate(&flow, &Catalog, &Actions::builtin())
                .unwrap_or_else(|e| panic!("{e}"));
            flow
        })
        .collect()
}

fn engine() -> Engine {
    let routes = BTreeMap::from([
        (
            "order_status".to_string(),
            Route::Flow("order_status".into()),
        ),
        (
            "request_refund".to_string(),
            Route::Flow("request_refund".into()),
        ),
        (
            "track_refund".to_string(),
            Route::Flow("track_refund".into()),
        ),
        (
            "product_availability".to_string(),
            Route::Flow("product_availability".into()),
        ),
        (
            "check_refund_policy".to_string(),
            Route::Answer {
                key: "answer.check_refund_policy".into(),
                handoff: None,
            },
        ),
    ]);
    Engine::new(built_in(), slots(), routes, Actions::builtin())
}

fn usd(cents: i64) -> Money {
    Money {
        amount_cents: cents,
        currency: "USD".into(),
    }
}

fn order(id: &str, status: &str, promised: OffsetDateTime) -> Record {
    Record::from([
        ("id".into(), Value::text(id)),
        ("customer_id".into(), Value::text("c1")),
        ("status".into(), Value::text(status)),
        (
            "placed_at".into(),
            Value::Time(NOW - time::Duration::days(10)),
        ),
        ("promised_by".into(), Value::Time(promised)),
        ("carrier".into(), Value::text("UPS")),
        (
            "tracking_url".into(),
            Value::text(format!("https://track.example/{id}")),
        ),
        ("total".into(), Value::Money(usd(4599))),
        ("summary".into(), Value::text(format!("#{id} (Desk lamp)"))),
    ])
}

#[derive(Default)]
struct Host {
    orders: Vec<Record>,
    products: Vec<Record>,
    refunds: BTreeMap<String, RefundState>,
    lists: BTreeMap<String, Vec<String>>,
    /// English unless a test says otherwise.
    format: crate::bot::format::Format,
    down: bool,
    /// A channel user not linked to a customer yet (hosts are verified unless a test says).
    unverified: bool,
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl FlowHost for Host {
    async fn call(&self, operation: &str, inputs: &Record) -> Result<Option<Record>, HostError> {
        self.calls.lock().unwrap().push(operation.to_string());
        if self.down {
            return Err(HostError::Unavailable("orders down".into()));
        }
        let id = inputs.get("order_id").cloned();
        Ok(self
            .orders
            .iter()
            .find(|o| o.get("id") == id.as_ref())
            .cloned())
    }
    async fn list(&self, operation: &str, _inputs: &Record) -> Result<Vec<Record>, HostError> {
        self.calls.lock().unwrap().push(operation.to_string());
        Ok(match operation {
            "orders.list_by_customer" => self.orders.clone(),
            _ => self.products.clone(),
        })
    }
    async fn refund_state(&self, order_id: &str) -> Result<Option<RefundState>, HostError> {
        Ok(self.refunds.get(order_id).copied())
    }
    fn customer_id(&self) -> &str {
        "c1"
    }
    fn verified(&self) -> bool {
        !self.unverified
    }
    fn conversation_list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }
    /// In the shipped bot's words.
    fn phrase(&self, key: &str, vars: &[(String, Value)]) -> String {
        let vars: Vec<(&str, crate::bot::messages::Value)> = vars
            .iter()
            .map(|(k, v)| (k.as_str(), crate::dialogue::message_value(v)))
            .collect();
        crate::bot::Bot::embedded()
            .default_messages()
            .render(key, &vars)
    }
    fn format(&self) -> &crate::bot::format::Format {
        &self.format
    }

    fn words(&self) -> crate::bot::Words {
        crate::bot::Words::default()
    }
}

fn said(intent: &str, text: &str) -> Understood {
    let refs = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() == 4 && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    Understood {
        intent: intent.into(),
        clear: !intent.is_empty() && intent != "unknown",
        text: text.into(),
        order_refs: refs,
        ..Understood::default()
    }
}

fn yes() -> Understood {
    Understood {
        intent: "affirm".into(),
        clear: true,
        answer: Some(true),
        text: "yes".into(),
        ..Understood::default()
    }
}

fn no() -> Understood {
    Understood {
        answer: Some(false),
        intent: "deny".into(),
        clear: true,
        text: "no".into(),
        ..Understood::default()
    }
}

/// A turn's effects in short: `say:key`, `ask:slot`, `job:refund 1002 $45.99`, `handoff:why`.
fn shown(t: &Turn) -> Vec<String> {
    t.effects
        .iter()
        .filter(|e| !matches!(e, Effect::Ended { .. }))
        .map(|e| match e {
            Effect::Say { key, .. } => format!("say:{key}"),
            Effect::Ask { slot, key, .. } => format!("ask:{slot}:{key}"),
            Effect::StartJob(FlowJob::Refund { order_id, amount }) => {
                format!("job:refund {order_id} {amount}")
            }
            Effect::StartJob(j) => format!("job:{j:?}"),
            Effect::Handoff { reason, order_id } => format!("handoff:{reason}:{order_id:?}"),
            Effect::Ended { .. } => unreachable!("filtered out"),
        })
        .collect()
}

fn vars_of<'a>(t: &'a Turn, key: &str) -> &'a [(String, Value)] {
    t.effects
        .iter()
        .find_map(|e| match e {
            Effect::Say { key: k, vars } | Effect::Ask { key: k, vars, .. } if k == key => {
                Some(vars.as_slice())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {key} in {:?}", shown(t)))
}

fn var(vars: &[(String, Value)], name: &str) -> String {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no {name} in {vars:?}"))
}

fn late_host() -> Host {
    Host {
        orders: vec![order("1002", "in_transit", datetime!(2026-11-20 12:00 UTC))],
        ..Host::default()
    }
}

/// Persisted between turns as the conversation would.
fn stored(t: &Turn) -> FlowState {
    let json = serde_json::to_string(t.state.as_ref().expect("a flow waits")).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[tokio::test]
async fn a_late_order_is_offered_a_refund_and_yes_starts_the_refund_job() {
    let (e, host) = (engine(), late_host());
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "where is order 1002?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        [
            "say:order.status.in_transit",
            "say:order.tracking",
            "say:order.late.offer"
        ]
    );
    let offer = vars_of(&t, "order.late.offer");
    assert_eq!(var(offer, "amount"), "$45.99");
    assert_eq!(var(offer, "due"), "November 20");
    assert_eq!(
        var(vars_of(&t, "order.status.in_transit"), "carrier"),
        "UPS"
    );

    let t = e.reply(stored(&t), &yes(), &host, NOW).await.unwrap();
    assert_eq!(
        shown(&t),
        ["job:refund 1002 $45.99", "say:refund.requested"]
    );
    assert_eq!(t.state, None);
    let FlowJob::Refund { .. } = t
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::StartJob(j) => Some(j.clone()),
            _ => None,
        })
        .unwrap()
    else {
        unreachable!()
    };
}

#[tokio::test]
async fn no_to_the_offer_ends_politely_with_no_job() {
    let (e, host) = (engine(), late_host());
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 1002"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    let t = e.reply(stored(&t), &no(), &host, NOW).await.unwrap();
    assert_eq!(shown(&t), ["say:order.late.declined"]);
    assert_eq!(t.state, None);
}

#[tokio::test]
async fn a_question_during_the_offer_is_answered_then_the_offer_asked_again() {
    let (e, host) = (engine(), late_host());
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 1002"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    // An answer-routed intent.
    let t = e
        .reply(
            stored(&t),
            &said("check_refund_policy", "what is your refund policy?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        ["say:answer.check_refund_policy", "say:order.late.offer"]
    );
    // A flow-routed intent runs its flow, then the offer comes back; yes still refunds.
    let host = Host {
        lists: BTreeMap::from([("refunds_requested".into(), vec!["1001".into()])]),
        refunds: BTreeMap::from([("1001".into(), RefundState::Done)]),
        ..late_host()
    };
    let t = e
        .reply(
            stored(&t),
            &said("track_refund", "where is my refund?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:refund.state.done", "say:order.late.offer"]);
    assert_eq!(var(vars_of(&t, "refund.state.done"), "order"), "1001");
    let t = e.reply(stored(&t), &yes(), &host, NOW).await.unwrap();
    assert_eq!(
        shown(&t),
        ["job:refund 1002 $45.99", "say:refund.requested"]
    );
}

#[tokio::test]
async fn an_interrupting_flow_that_asks_keeps_the_first_on_the_stack() {
    let (e, host) = (engine(), late_host());
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 1002"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    let host = Host {
        products: vec![Record::from([
            ("name".into(), Value::text("desk lamp")),
            ("available".into(), Value::Number(3)),
        ])],
        ..late_host()
    };
    let t = e
        .reply(
            stored(&t),
            &said("product_availability", "do you have stuff in stock?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["ask:product:stock.which"]);
    assert_eq!(stored(&t).suspended.len(), 1);
    let t = e
        .reply(stored(&t), &said("", "the desk lamp"), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:stock.in_stock", "say:order.late.offer"]);
    assert_eq!(var(vars_of(&t, "stock.in_stock"), "available"), "3");
}

#[tokio::test]
async fn several_orders_ask_which_and_the_second_one_answers() {
    let e = engine();
    let host = Host {
        orders: vec![
            order("1003", "processing", datetime!(2026-12-01 12:00 UTC)),
            order("1002", "delivered", datetime!(2026-11-20 12:00 UTC)),
        ],
        ..Host::default()
    };
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "where is my order?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["ask:order:order.which"]);
    let which = vars_of(&t, "order.which");
    assert_eq!(var(which, "count"), "2");
    assert!(var(which, "list").starts_with("1. #1003 (Desk lamp) placed November 14\n2. #1002"));
    let second = Understood {
        ordinal: Some(1),
        ..said("unknown", "the second one")
    };
    let t = e.reply(stored(&t), &second, &host, NOW).await.unwrap();
    // Delivered without a delivery date, not late: no offer, nothing waits.
    assert_eq!(
        shown(&t),
        ["say:order.status.delivered.undated", "say:order.tracking"]
    );
    assert_eq!(t.state, None);

    // "my last order" picks the newest without asking.
    let newest = Understood {
        ordinal: Some(NEWEST),
        ..said("order_status", "where is my latest order")
    };
    let t = e
        .start("order_status", Record::new(), &newest, &host, NOW)
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        [
            "say:order.status.processing",
            "say:order.tracking",
            "say:order.expected"
        ]
    );
}

#[tokio::test]
async fn unanswered_questions_offer_a_person_after_the_slots_attempts() {
    let e = engine();
    let host = Host {
        orders: vec![
            order("1003", "processing", NOW),
            order("1002", "processing", NOW),
        ],
        ..Host::default()
    };
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "my order"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    let t = e
        .reply(stored(&t), &said("unknown", "hmm"), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["ask:order:slot.order.reprompt"]);
    let t = e
        .reply(stored(&t), &said("unknown", "dunno"), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:flow.handoff.offer"]);
    let t = e.reply(stored(&t), &yes(), &host, NOW).await.unwrap();
    assert_eq!(shown(&t), ["handoff:order_status.order:None"]);
    assert_eq!(t.state, None);
}

#[tokio::test]
async fn a_missing_order_and_a_system_down() {
    let e = engine();
    let host = late_host();
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 9999"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:order.not_found"]);
    assert_eq!(var(vars_of(&t, "order.not_found"), "order"), "9999");
    // Without `on_error` the turn fails: the caller defers, as for any lookup.
    let down = Host {
        down: true,
        ..late_host()
    };
    let err = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 1002"),
            &down,
            NOW,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HostError::Unavailable(_)));
}

#[tokio::test]
async fn refunds_already_asked_for_are_told_not_offered_again() {
    let e = engine();
    let host = Host {
        refunds: BTreeMap::from([("1002".into(), RefundState::SetAside)]),
        ..late_host()
    };
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 1002"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        [
            "say:order.status.in_transit",
            "say:order.tracking",
            "say:order.late",
            "say:refund.state.set_aside"
        ]
    );
    // Not late: a refund request is told what can be refunded.
    let host = Host {
        orders: vec![order("1002", "in_transit", datetime!(2026-11-30 12:00 UTC))],
        ..Host::default()
    };
    let t = e
        .start(
            "request_refund",
            Record::new(),
            &said("request_refund", "refund order 1002"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        [
            "say:order.status.in_transit",
            "say:order.tracking",
            "say:order.expected",
            "say:refund.only_late"
        ]
    );
    // Nothing asked for: the configured answer.
    let t = e
        .start(
            "track_refund",
            Record::new(),
            &said("track_refund", "my refund?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:answer.track_refund"]);
}

#[tokio::test]
async fn payment_help_lists_options_and_each_answers_with_the_rest_still_open() {
    let e = engine();
    let host = Host::default();
    let link = Record::from([(
        "payment_url".to_string(),
        Value::text("https://pay.example/retry"),
    )]);
    let t = e
        .start("payment_help", link, &Understood::default(), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:payment.help.offer"]);
    let t = e.reply(stored(&t), &yes(), &host, NOW).await.unwrap();
    assert_eq!(shown(&t), ["ask:choice:payment.help.options"]);
    let t = e
        .reply(stored(&t), &said("unknown", "1"), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:payment.retry.link"]);
    assert_eq!(
        var(vars_of(&t, "payment.retry.link"), "url"),
        "https://pay.example/retry"
    );
    let t = e
        .reply(
            stored(&t),
            &said("unknown", "I'd like to update my card"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:payment.update.settings"]);
    let t = e
        .reply(stored(&t), &said("unknown", "3"), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["handoff:payment_issue:None"]);
    assert_eq!(t.state, None);
}

#[tokio::test]
async fn stock_questions_name_the_product_or_ask_once_then_answer() {
    let e = engine();
    let host = Host {
        products: vec![
            Record::from([
                ("name".into(), Value::text("desk lamp")),
                ("available".into(), Value::Number(0)),
            ]),
            Record::from([
                ("name".into(), Value::text("desk lamp shade")),
                ("available".into(), Value::Number(2)),
            ]),
        ],
        ..Host::default()
    };
    let start = |text: &'static str| said("product_availability", text);
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &start("is the desk lamp in stock?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:stock.out_of_stock"]);
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &start("desk lamp shade available?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:stock.in_stock"]);
    assert_eq!(
        var(vars_of(&t, "stock.in_stock"), "name"),
        "desk lamp shade"
    );
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &start("in stock?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["ask:product:stock.which"]);
    assert_eq!(
        var(vars_of(&t, "stock.which"), "examples"),
        "desk lamp, desk lamp shade"
    );
    let t = e
        .reply(stored(&t), &said("unknown", "a sofa"), &host, NOW)
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.not_sold"]);
    assert_eq!(var(vars_of(&t, "products.not_sold"), "wanted"), "a sofa");
}

fn priced_shelf() -> Host {
    let product = |name: &str, available: i64, cents: Option<i64>| {
        let mut r = Record::from([
            ("name".into(), Value::text(name)),
            ("available".into(), Value::Number(available)),
        ]);
        if let Some(c) = cents {
            r.insert("price".into(), Value::Money(usd(c)));
        }
        r
    };
    Host {
        products: vec![
            product("Wireless Mouse", 42, Some(2499)),
            product("Noise-Cancelling Headphones", 0, Some(8900)),
            product("Desk Lamp", 7, None),
        ],
        ..Host::default()
    }
}

#[tokio::test]
async fn prices_are_said_when_the_inventory_has_them_and_never_guessed() {
    let (e, host) = (engine(), priced_shelf());
    let ask = |text: &'static str| said("product_price", text);
    let t = e
        .start(
            "product_price",
            Record::new(),
            &ask("how much are wireles mice?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.price.in_stock"]);
    assert_eq!(
        var(vars_of(&t, "products.price.in_stock"), "price"),
        "$24.99"
    );
    let t = e
        .start(
            "product_price",
            Record::new(),
            &ask("price of the headphones"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.price.out_of_stock"]);
    let t = e
        .start(
            "product_price",
            Record::new(),
            &ask("how much is the lamp"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.price.unknown"]);
    let t = e
        .start(
            "product_price",
            Record::new(),
            &ask("how much is it?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["ask:product:products.price.which"]);
    // The stock answer carries the price too, when there is one.
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &said("product_availability", "is the mouse in stock"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.in_stock"]);
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &said("product_availability", "desk lamps available?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:stock.in_stock"]);
}

#[tokio::test]
async fn several_products_get_a_line_each_and_unknown_ones_are_not_sold() {
    let (e, host) = (engine(), priced_shelf());
    let stock = |text: &'static str| said("product_availability", text);
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &stock("do you have the headphones and the desk lamp?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.several"]);
    assert_eq!(
        var(vars_of(&t, "products.several"), "list"),
        "- Noise-Cancelling Headphones: $89.00, out of stock right now\n- Desk Lamp: in stock (7 available)"
    );
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &stock("do you sell a wireless keyboard?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:products.not_sold"]);
    let vars = vars_of(&t, "products.not_sold");
    assert_eq!(var(vars, "wanted"), "a wireless keyboard");
    // The name closest to the words comes first among the examples.
    assert_eq!(
        var(vars, "examples"),
        "Wireless Mouse, Noise-Cancelling Headphones, Desk Lamp"
    );
}

#[tokio::test]
async fn welcome_back_and_handoff() {
    let e = engine();
    let host = Host {
        lists: BTreeMap::from([("welcome_back".into(), vec!["1001".into(), "1002".into()])]),
        refunds: BTreeMap::from([
            ("1001".into(), RefundState::Done),
            ("1002".into(), RefundState::Failed),
        ]),
        ..Host::default()
    };
    let t = e
        .start(
            "welcome_back",
            Record::new(),
            &said("greet", "hi"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        [
            "say:welcome.back",
            "say:refund.state.failed",
            "say:refund.state.done"
        ]
    );
    let t = e
        .start(
            "handoff",
            Record::new(),
            &said("human_agent", "a person please"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["handoff:human_agent:None"]);
}

/// A channel user not linked to a customer: the shop's catalogue, and a late order of some
/// customer's that they must not reach.
fn stranger() -> Host {
    Host {
        unverified: true,
        products: vec![Record::from([
            ("name".into(), Value::text("desk lamp")),
            ("available".into(), Value::Number(3)),
        ])],
        ..late_host()
    }
}

#[tokio::test]
async fn a_flow_that_needs_an_account_asks_an_unverified_customer_to_verify_instead() {
    let (e, host) = (engine(), stranger());
    for flow in [
        "order_status",
        "request_refund",
        "track_refund",
        "welcome_back",
    ] {
        let t = e
            .start(
                flow,
                Record::new(),
                &said(flow, "where is order 1002?"),
                &host,
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(shown(&t), ["say:verify.needed"], "{flow}");
        assert_eq!(t.state, None, "{flow}");
    }
    // Nothing was read for them: not even whether order 1002 exists.
    assert!(host.calls.lock().unwrap().is_empty());

    // What needs no account is answered as for anyone.
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &said("product_availability", "is the desk lamp in stock?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:stock.in_stock"]);
    let t = e
        .start(
            "handoff",
            Record::new(),
            &said("human_agent", "a person please"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["handoff:human_agent:None"]);
}

#[tokio::test]
async fn an_unverified_customer_cannot_reach_an_account_by_interrupting_a_flow() {
    let (e, host) = (engine(), stranger());
    let t = e
        .start(
            "product_availability",
            Record::new(),
            &said("product_availability", "is it in stock?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["ask:product:stock.which"]);
    let waiting = stored(&t);
    // Another flow-routed intent that needs an account: asked to verify, nothing left waiting
    // (the next message is their email address, not the product).
    let t = e
        .reply(
            waiting.clone(),
            &said("order_status", "where is order 1002?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shown(&t), ["say:verify.needed"]);
    assert_eq!(t.state, None);
    assert!(!host
        .calls
        .lock()
        .unwrap()
        .contains(&"orders.get_status".to_string()));
    // An answer-routed intent interrupts as for anyone, and the question comes back.
    let t = e
        .reply(
            waiting,
            &said("check_refund_policy", "what is your refund policy?"),
            &host,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(
        shown(&t),
        ["say:answer.check_refund_policy", "ask:product:stock.which"]
    );
}

#[tokio::test]
async fn a_flow_waiting_from_before_is_not_taken_further_once_unverified() {
    let e = engine();
    let t = e
        .start(
            "order_status",
            Record::new(),
            &said("order_status", "order 1002"),
            &late_host(),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(stored(&t).frame.flow, "order_status");
    let t = e.reply(stored(&t), &yes(), &stranger(), NOW).await.unwrap();
    assert_eq!(shown(&t), ["say:verify.needed"]);
    assert_eq!(t.state, None);
}

#[test]
fn needs_account_is_true_unless_a_flow_says_false() {
    let flows = built_in();
    let needs = |name: &str| flows.iter().find(|f| f.name == name).unwrap().needs_account;
    for name in ["product_availability", "product_price", "handoff"] {
        assert!(!needs(name), "{name}");
    }
    for name in [
        "order_status",
        "request_refund",
        "track_refund",
        "welcome_back",
        "payment_help",
    ] {
        assert!(needs(name), "{name}");
    }
    let flow = |key: &str| {
        check(&format!(
            "description = \"x\"\n{key}\n[[steps]]\nsay = \"order.none_recent\"\n"
        ))
    };
    assert!(flow("").unwrap().needs_account);
    assert!(flow("needs_account = true").unwrap().needs_account);
    assert!(!flow("needs_account = false").unwrap().needs_account);
    let err = flow("needs_account = \"no\"").unwrap_err();
    assert!(err.starts_with("flows/t.toml:2:"), "{err}");
}

#[test]
fn a_flow_without_an_account_reads_and_writes_no_customers_records() {
    let text = r#"description = "claims to need no account"
needs_account = false
inputs = ["customer_id"]
slots = ["order", "email"]

[[steps]]
action = "list_recent_orders"
into = "recent"
on = { none = "end", one = "read" }

[[steps]]
ask = "order"

[[steps]]
id = "read"
call = "orders.get_status"
with = { order_id = "{order}" }
into = "o"
on_missing = "end"

[[steps]]
action = "refund_state"
with = { order = "{o.id}" }

[[steps]]
job = "refund"
order = "{o.id}"
amount = "{o.total}"

[[steps]]
ask = "email"

[[steps]]
job = "connector"
operation = "email.send"
inputs = { to = "{email}", subject = "About {order}", text = "Hello" }
key = "x-{order}"

[[steps]]
job = "handoff"
reason = "asked"

[[steps]]
action = "match_product"
with = { product = "{order}" }
into = "p"
"#;
    let err = check(text).unwrap_err();
    let why =
        ", and a flow with `needs_account = false` runs for people not known to be a customer";
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!("flows/t.toml:1: customer_id: is a customer's id{why}"),
            format!("flows/t.toml:7: list_recent_orders: this action reads a customer's own records{why}"),
            format!("flows/t.toml:16: orders.get_status: `call` reads the company's records, which may be a customer's{why}"),
            format!("flows/t.toml:22: refund_state: this action reads a customer's own records{why}"),
            format!("flows/t.toml:26: job: a refund is a customer's{why}"),
            format!("flows/t.toml:34: job: a connector write changes the company's records{why}"),
        ]
    );
    // The same steps in a flow that needs an account are fine as far as accounts go.
    let needed = text.replace("needs_account = false\n", "");
    let err = check(&needed).err().unwrap_or_default();
    assert!(!err.contains("needs_account"), "{err}");
}

fn check(text: &str) -> Result<Flow, String> {
    super::load("t", "flows/t.toml", text, &Catalog, &Actions::builtin()).map_err(|e| e.to_string())
}

#[test]
fn parse_errors_are_all_collected_with_their_lines() {
    let text = r#"description = "broken"
slots = ["order"]

[[steps]]
sya = "order.late"

[[steps]]
say = "order.late"
ask = "order"

[[steps]]
branch = [{ if = "o.status == ", goto = "x" }]

[[steps]]
call = "orders.get_status"
on_mising = "x"

[[steps]]
end = true
id = 3
"#;
    let err = check(text).unwrap_err();
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            "flows/t.toml:5: sya: unknown step kind: a step is one of ask, call, branch, say, confirm, job, handoff, action, goto, end",
            "flows/t.toml:8: say: one kind per step: found `ask` and `say`",
            "flows/t.toml:12: branch: arm 1: `o.status == `: expected a value at column 13, found the end",
            "flows/t.toml:15: call: needs `on_missing`: where to go when the record is not found",
            "flows/t.toml:16: on_mising: unknown key for a `call` step",
            "flows/t.toml:20: id: must be text",
        ]
    );
    assert_eq!(
        check("description = \"x\"\n[[steps]]\ngoto = \"end\"\nnext = \"end\"\n").unwrap_err(),
        "flows/t.toml:4: next: a `goto` step never goes on to a next step"
    );
    // Not TOML at all; a step that is not a table: errors, not panics.
    assert!(check("description = \n")
        .unwrap_err()
        .starts_with("flows/t.toml:1:"));
    assert!(check("description = \"x\"\nsteps = [1]\n").is_err());
    assert!(check("description = \"x\"\nwhat = 1\n")
        .unwrap_err()
        .contains("what"));
}

#[test]
fn validation_names_every_problem() {
    let text = r#"description = "many mistakes"
slots = ["order", "colour"]

[[steps]]
say = "order.expected"

[[steps]]
say = "no.such.message"

[[steps]]
ask = "email"

[[steps]]
call = "payments.refund"
with = { order_id = "{order}" }
on_missing = "nowhere"

[[steps]]
call = "orders.list_by_customer"
on_missing = "end"

[[steps]]
action = "guess_order"

[[steps]]
action = "refund_state"
on = { maybe = "end" }

[[steps]]
id = "read"
call = "orders.get_status"
with = { order_id = "{order}" }
into = "o"
on_missing = "end"

[[steps]]
branch = [{ if = "o.status < now or o.colour == 'red'", goto = "spin" }]

[[steps]]
goto = "end"

[[steps]]
say = "order.late"

[[steps]]
id = "spin"
goto = "read"
"#;
    let err = check(text).unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    let expected = [
        "flows/t.toml:1: colour: no such slot in the bundle (bot.toml [slots])",
        "flows/t.toml:14: payments.refund: not allowed: add it to bot.toml [connectors] operations",
        "flows/t.toml:19: orders.list_by_customer: `call` reads one record; lists are read by actions, writes are jobs",
        "flows/t.toml:23: guess_order: no such action (known: list_recent_orders, match_product, payment_choice, refund_news, refund_state)",
        "flows/t.toml:16: nowhere: no step has this id",
        "flows/t.toml:43: say: unreachable: no step leads here",
        "flows/t.toml:31: read: a loop through here never asks the customer anything: it would run forever",
        "flows/t.toml:5: order.expected: uses {due}, which this step does not have (it has none)",
        "flows/t.toml:8: no.such.message: no such message",
        "flows/t.toml:11: email: declare the slots a flow asks for in its `slots`",
        "flows/t.toml:14: order: not available here: no step before this one fills or binds it on every path",
        "flows/t.toml:26: refund_state: needs `order` in `with`",
        "flows/t.toml:27: maybe: refund_state ends in one of: none, in_progress, done, failed, set_aside, unknown",
        "flows/t.toml:31: order: not available here: no step before this one fills or binds it on every path",
        "flows/t.toml:37: o.colour: no slot or bound field has this name",
        "flows/t.toml:37: spin: condition compares text with time",
    ];
    for e in &expected {
        assert!(lines.contains(e), "missing {e}\nin:\n{err}");
    }
    assert_eq!(lines.len(), expected.len(), "{err}");
}

/// What the system may leave empty reaches a customer only through a branch that checked it
/// (else they would read "{carrier}"), and a status is compared only with words it can be
/// (else the arm never holds).
#[test]
fn an_empty_field_needs_a_branch_and_a_status_only_its_words() {
    let text = r#"description = "t"
slots = ["order"]

[[steps]]
ask = "order"

[[steps]]
call = "orders.get_status"
with = { order_id = "{order}" }
into = "o"
on_missing = "gone"

[[steps]]
branch = [
  { if = "o.status == 'deliverd'", goto = "gone" },
  { if = "not (o.status in ['shipped', 'in_trasit'])", goto = "gone" },
]

[[steps]]
say = "order.status.in_transit"

[[steps]]
say = "order.tracking"
vars = { tracking_url = "{o.tracking_url}" }

[[steps]]
id = "gone"
say = "order.not_found"
"#;
    let err = check(text).unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    let words = "processing, shipped, in_transit, out_for_delivery, delivered, cancelled, unknown";
    let expected = [
        format!("flows/t.toml:14: o.status: is never 'deliverd': it is one of {words}"),
        format!("flows/t.toml:14: o.status: is never 'in_trasit': it is one of {words}"),
        "flows/t.toml:20: order.status.in_transit: uses {carrier}, which the system may leave empty: branch on it before this step (if = \"o.carrier\")".into(),
        "flows/t.toml:23: o.tracking_url: the system may leave it empty: branch on it first (if = \"o.tracking_url\")".into(),
    ];
    for e in &expected {
        assert!(lines.contains(&e.as_str()), "missing {e}\nin:\n{err}");
    }
    assert_eq!(lines.len(), expected.len(), "{err}");

    // Checked on the way: fine, in a message and in a template alike.
    let checked = text
        .replace("'deliverd'", "'delivered'")
        .replace("'in_trasit'])\"", "'in_transit'] and o.carrier and o.tracking_url)\"")
        .replace("not (o.status", "(o.status")
        .replace("goto = \"gone\" },\n]", "goto = \"moving\" },\n]")
        .replace(
            "[[steps]]\nsay = \"order.status.in_transit\"",
            "[[steps]]\nsay = \"order.not_found\"\nnext = \"end\"\n\n[[steps]]\nid = \"moving\"\nsay = \"order.status.in_transit\"",
        );
    check(&checked).unwrap_or_else(|e| panic!("{e}\n{checked}"));
}

/// A price the inventory may not have, like a system's optional field: said only after a
/// branch on it.
#[test]
fn an_actions_field_that_may_be_empty_needs_a_branch() {
    let text = r#"description = "t"
inputs = ["message"]

[[steps]]
action = "match_product"
with = { product = "{message}" }
into = "p"

[[steps]]
say = "products.price.in_stock"
"#;
    let err = check(text).unwrap_err();
    assert!(
        err.contains("uses {price}, which the system may leave empty: branch on it before this step (if = \"p.price\")"),
        "{err}"
    );
    let checked = text.replace(
        "[[steps]]\nsay = \"products.price.in_stock\"",
        "[[steps]]\nbranch = [{ if = \"p.price\", goto = \"priced\" }]\n\n[[steps]]\nsay = \"products.price.unknown\"\nnext = \"end\"\n\n[[steps]]\nid = \"priced\"\nsay = \"products.price.in_stock\"",
    );
    check(&checked).unwrap_or_else(|e| panic!("{e}\n{checked}"));
}

#[test]
fn job_steps_and_their_kinds() {
    let text = r#"description = "jobs"
slots = ["order", "email"]

[[steps]]
ask = "order"

[[steps]]
ask = "email"

[[steps]]
job = "connector"
operation = "email.send"
inputs = { to = "{email}", subject = "About {order}", text = "Hello" }
key = "update-{order}"

[[steps]]
job = "handoff"
reason = "asked"
order = "{order}"

[[steps]]
job = "email"
purpose = "refund"
order = "{order}"
subject = "order.late.declined"
text = "refund.requested"
vars = { amount = "12.50" }

[[steps]]
job = "fax"
"#;
    let err = check(text).unwrap_err();
    assert_eq!(
        err,
        "flows/t.toml:30: job: unknown job `fax`: one of refund, email, handoff, connector"
    );
    let text = text.replace("[[steps]]\njob = \"fax\"\n", "");
    let wrong = text.replace("text = \"Hello\"", "body = \"Hello\"");
    assert_eq!(
        check(&wrong).unwrap_err().lines().take(2).collect::<Vec<_>>(),
        [
            "flows/t.toml:11: body: email.send takes no such input (it takes: to, subject, text, idempotency_key)",
            "flows/t.toml:11: email.send: needs input `text`",
        ]
    );
    let flow = check(&text).unwrap();
    let e = Engine::new([flow], slots(), BTreeMap::new(), Actions::builtin());
    let u = Understood {
        emails: vec!["a@b.example".into()],
        ..said("x", "order 1002 a@b.example")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let t = rt
        .block_on(e.start("t", Record::new(), &u, &Host::default(), NOW))
        .unwrap();
    let jobs: Vec<&FlowJob> = t
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::StartJob(j) => Some(j),
            _ => None,
        })
        .collect();
    match jobs.as_slice() {
        [FlowJob::Connector {
            operation,
            inputs,
            idempotency_key,
        }, FlowJob::Handoff { reason, order_id }, FlowJob::Email {
            purpose,
            order_id: email_order,
            text_key,
            vars,
            ..
        }] => {
            assert_eq!(operation, "email.send");
            assert_eq!(inputs.get("to"), Some(&Value::text("a@b.example")));
            assert_eq!(idempotency_key, "update-1002");
            assert_eq!(
                (reason.as_str(), order_id.as_deref()),
                ("asked", Some("1002"))
            );
            assert_eq!((purpose.as_str(), email_order.as_str()), ("refund", "1002"));
            assert_eq!(text_key, "refund.requested");
            assert_eq!(var(vars, "amount"), "12.50");
            assert_eq!(var(vars, "order"), "1002");
        }
        other => panic!("{other:?}"),
    }
    assert!(jobs[1].job_kind().is_some());
}

#[test]
fn loops_that_wait_are_fine() {
    let text = r#"description = "asks until it has one"
slots = ["order"]

[[steps]]
id = "again"
ask = "order"
fresh = true

[[steps]]
goto = "again"
"#;
    check(text).unwrap();
}

/// Every prefix of every built-in file, and each with one line dropped: errors or flows,
/// never a panic.
#[test]
fn cut_and_broken_files_never_panic() {
    for (_, text) in BUILT_IN {
        let lines: Vec<&str> = text.lines().collect();
        for i in 0..lines.len() {
            let prefix = lines[..i].join("\n");
            let _ = check(&prefix);
            let mut dropped = lines.clone();
            dropped.remove(i);
            let _ = check(&dropped.join("\n"));
        }
    }
}

#[test]
fn the_classifier_fills_what_the_engine_reads() {
    let text = "refund $12.50 on order 1002 to a@b.example";
    let nlu = crate::bot::Bot::embedded().nlu();
    let words = crate::bot::Words::english();
    let u = nlu.understand("en", text);
    let e = crate::entities::extract(words, text, NOW.date(), &[]);
    let got = Understood::from_nlu(&u, text, &e, words);
    assert_eq!(got.order_refs, ["1002"]);
    assert_eq!(got.emails, ["a@b.example"]);
    assert_eq!(got.amounts[0].amount_cents, 1250);
    assert_eq!(got.answer, None);
    let yes = Understood::from_nlu(
        &nlu.understand("en", "yes"),
        "yes",
        &Default::default(),
        words,
    );
    assert_eq!((yes.answer, yes.clear), (Some(true), true));
}

/// A value inside a message variable's text is written in the customer's language; a whole
/// value stays typed, for the sentence to write.
#[tokio::test]
async fn values_inside_a_variables_text_are_written_in_the_customers_language() {
    let text = r#"description = "t"
slots = ["order"]

[[steps]]
ask = "order"

[[steps]]
call = "orders.get_status"
with = { order_id = "{order}" }
into = "o"
on_missing = "gone"

[[steps]]
say = "order.late.offer"
vars = { due = "{o.placed_at}", amount = "{o.total} (#{o.id}, {o.placed_at})" }

[[steps]]
id = "gone"
say = "order.not_found"
"#;
    let flow = check(text).unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::new(vec![flow], slots(), BTreeMap::new(), Actions::builtin());
    let (format, errors) = crate::bot::format::parse_for_test(crate::bot::format::tests::DE);
    assert!(errors.is_empty(), "{errors:?}");
    let host = Host {
        format,
        ..late_host()
    };
    let initial = Record::from([("order".to_string(), Value::text("1002"))]);
    let t = e
        .start("t", initial, &said("", "1002"), &host, NOW)
        .await
        .unwrap();
    let offer = vars_of(&t, "order.late.offer");
    let amount = offer.iter().find(|(k, _)| k == "amount").unwrap();
    // The order is in dollars: the sign is the currency's, the writing the language's.
    assert_eq!(amount.1, Value::text("45,99 $ (#1002, 14. November)"));
    let due = offer.iter().find(|(k, _)| k == "due").unwrap();
    assert!(matches!(due.1, Value::Time(_)), "{due:?}");
}
