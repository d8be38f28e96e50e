//! Runs flows: from a persisted [`FlowState`] and what the customer said ([`Understood`]), the
//! steps up to the next question (or the end), as [`Effect`]s, and the state to persist.
//!
//! Interrupt and resume: while a flow waits on a slot or a confirm, a message that is clearly
//! another intent (see [`Engine::interrupts`]) runs that intent (its flow, or its answer) and
//! then the waiting question is asked again; the waiting flow is kept on a stack meanwhile.
//!
//! Accounts: a flow that needs one (`Flow::needs_account`) never runs for a host whose customer
//! is not verified (a messaging channel's user not linked to a CRM customer yet), however it
//! would start — by an intent, an interrupt, a caller. The engine says `verify.needed` instead
//! and keeps no flow waiting. Checked here, where every flow starts, so no way of starting one
//! can forget it.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bot::format::Format;
use crate::jobs::JobKind;
use crate::money::Money;

use super::actions::Actions;
use super::condition::Scope;
use super::fill::fill;
use super::steps::StepKind;
use super::template::Template;
use super::value::{Record, Value};
use super::{Flow, SlotDef, SlotType, Target};

/// No turn runs more steps than this: validation refuses loops that never wait, and this
/// stops one that slipped through instead of spinning.
const MAX_STEPS: usize = 200;
/// Unanswered confirms (neither yes, no nor another intent) before a person is offered.
const CONFIRM_ATTEMPTS: u32 = 2;

/// Engine keys the bundle's messages must have (besides the steps' own).
pub const HANDOFF_OFFER: &str = "flow.handoff.offer";
pub const HANDOFF_DECLINED: &str = "flow.handoff.declined";
/// Said instead of a flow that needs an account, to a customer not verified: how to verify.
pub const VERIFY_NEEDED: &str = "verify.needed";
/// The engine's own keys with the variables they get, for the messages catalogue's check.
pub const ENGINE_KEYS: &[(&str, &[&str])] = &[
    (HANDOFF_OFFER, &[]),
    (HANDOFF_DECLINED, &[]),
    (VERIFY_NEEDED, &[]),
];

/// What the customer said, as understood; `nlu::Understanding` and the entity extractor fill
/// it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Understood {
    pub intent: String,
    /// Above the accept threshold and not torn between two intents.
    pub clear: bool,
    /// yes (affirm) / no (deny), for confirms.
    pub answer: Option<bool>,
    pub text: String,
    pub order_refs: Vec<String>,
    pub ordinal: Option<usize>,
    pub emails: Vec<String>,
    pub phones: Vec<String>,
    pub amounts: Vec<Money>,
    pub dates: Vec<time::Date>,
    pub products: Vec<String>,
    /// How the message's language is read: its items and ordinals are looked for with them.
    pub words: crate::bot::Words,
}

impl Understood {
    /// From the classifier's reading and the message's entities. Uses intent names only, so
    /// it holds whether intents are an enum or the bundle's open names.
    pub fn from_nlu(
        u: &crate::nlu::Understanding,
        text: &str,
        e: &crate::entities::Entities,
        words: &crate::bot::Words,
    ) -> Self {
        let intent = u.intent.name().to_string();
        Understood {
            clear: u.unsure_between.is_none() && intent != "unknown",
            answer: u.answer,
            intent,
            text: text.to_string(),
            order_refs: u.order_refs.clone(),
            ordinal: u.ordinal,
            emails: e.emails.clone(),
            phones: e.phones.clone(),
            amounts: e
                .amounts
                .iter()
                .map(|a| Money {
                    amount_cents: a.amount_cents,
                    currency: a.currency.unwrap_or_default().to_string(),
                })
                .collect(),
            dates: e.dates.clone(),
            products: e.products.clone(),
            words: words.clone(),
        }
    }
}

/// What a turn of a flow does; the caller renders the keys and starts the jobs.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Say {
        key: String,
        vars: Vec<(String, Value)>,
    },
    /// A slot's prompt (or re-prompt): `key` is the message to say.
    Ask {
        slot: String,
        key: String,
        vars: Vec<(String, Value)>,
    },
    StartJob(FlowJob),
    /// The conversation goes to a person: flag it and start the handoff job.
    Handoff {
        reason: String,
        order_id: Option<String>,
    },
    /// A flow ended with these slots, having listed these orders: what the conversation is
    /// about now ("can I get a refund?", "and the other one?" next). Says nothing.
    Ended {
        flow: String,
        slots: Record,
        /// The records it read, by their `into`.
        bound: BTreeMap<String, Record>,
        candidates: Vec<String>,
    },
}

/// A write a flow asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowJob {
    Refund {
        order_id: String,
        amount: Money,
    },
    /// Message keys: the caller renders them in the customer's language.
    Email {
        purpose: String,
        order_id: String,
        subject_key: String,
        text_key: String,
        vars: Vec<(String, Value)>,
    },
    Handoff {
        reason: String,
        order_id: Option<String>,
    },
    /// A connector write operation, made safe to retry by its key.
    Connector {
        operation: String,
        inputs: Record,
        idempotency_key: String,
    },
}

impl FlowJob {
    /// The fulfillment job for the kinds that have one today; emails need their keys rendered
    /// first (next session's wiring).
    pub fn job_kind(&self) -> Option<JobKind> {
        match self {
            FlowJob::Refund { order_id, amount } => Some(JobKind::RefundRequest {
                order_id: order_id.clone(),
                amount: amount.clone(),
            }),
            FlowJob::Handoff { reason, order_id } => Some(JobKind::AgentHandoff {
                reason: reason.clone(),
                order_id: order_id.clone(),
            }),
            FlowJob::Connector {
                operation,
                inputs,
                idempotency_key,
            } => Some(JobKind::ConnectorWrite {
                operation: operation.clone(),
                inputs: inputs.clone(),
                idempotency_key: idempotency_key.clone(),
            }),
            FlowJob::Email { .. } => None,
        }
    }
}

/// Where a refund stands in the fulfillment ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    InProgress,
    Done,
    Failed,
    SetAside,
}

impl RefundState {
    pub fn name(self) -> &'static str {
        match self {
            RefundState::InProgress => "in_progress",
            RefundState::Done => "done",
            RefundState::Failed => "failed",
            RefundState::SetAside => "set_aside",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// Slow or down: worth asking again (the caller defers the answer).
    Unavailable(String),
    /// Refused, malformed or misconfigured: asking again will not help.
    Failed(String),
    /// The deployment has no such system (no inventory configured): the intent's own answer
    /// is said; a flow's `on_error` is not for this.
    Missing(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Unavailable(d) => write!(f, "unavailable: {d}"),
            HostError::Failed(d) => write!(f, "failed: {d}"),
            HostError::Missing(d) => write!(f, "not configured: {d}"),
        }
    }
}

/// The engine's way out to the company's systems and the conversation's records, for one
/// customer's turn. Records a customer may not see (another customer's order) are `None`.
#[async_trait]
pub trait FlowHost: Send + Sync {
    /// A read of one record (`orders.get_status`).
    async fn call(&self, operation: &str, inputs: &Record) -> Result<Option<Record>, HostError>;
    /// A read of a list (`orders.list_by_customer`, `inventory.availability`).
    async fn list(&self, operation: &str, inputs: &Record) -> Result<Vec<Record>, HostError>;
    /// Where the refund of an order stands; `None`: never begun.
    async fn refund_state(&self, order_id: &str) -> Result<Option<RefundState>, HostError>;
    /// The customer the turn is for.
    fn customer_id(&self) -> &str;
    /// Whether that customer is known to the company (`auth::Principal::verified`); flows that
    /// need an account run only when so. No default: every host must say.
    fn verified(&self) -> bool;
    /// Lists the conversation keeps (`refunds_requested`, `welcome_back`).
    fn conversation_list(&self, name: &str) -> Vec<String>;
    /// A message of the bundle in the customer's language, for an action that composes a
    /// value out of several (one line per listed order).
    fn phrase(&self, key: &str, vars: &[(String, Value)]) -> String;
    /// How the customer's language writes values, for text a flow composes itself (a
    /// message variable `"{o.total} on {o.placed_at}"`, a few product names).
    fn format(&self) -> &Format;

    /// How the customer's language is read, for an action that reads words (a product's name).
    fn words(&self) -> crate::bot::Words;
}

/// What a flow waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Waiting {
    Slot {
        slot: String,
    },
    Confirm,
    /// After too many failed answers: "Would you like a person?"
    HandoffOffer {
        reason: String,
    },
}

/// One running (or suspended) flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub flow: String,
    pub step: usize,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slots: Record,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bound: BTreeMap<String, Record>,
    /// Failed answers to the question waited on.
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// Orders listed last, for "the second one".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
    /// Their items, in the same order, for "the one with the mouse".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_items: Vec<String>,
    /// The days they were placed, in the same order, for "the one from last week".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_placed: Vec<time::Date>,
}

impl Frame {
    fn new(flow: &str, slots: Record) -> Self {
        Frame {
            flow: flow.to_string(),
            step: 0,
            slots,
            bound: BTreeMap::new(),
            attempts: 0,
            waiting: None,
            candidates: Vec::new(),
            candidate_items: Vec::new(),
            candidate_placed: Vec::new(),
        }
    }
}

/// What the conversation persists while a flow waits: the flow asking, and the flows it
/// interrupted (innermost last), each to be asked again when the one above ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowState {
    pub frame: Frame,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspended: Vec<Frame>,
}

/// What an intent does, for interrupts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Flow(String),
    /// A message key, said as is; `handoff`: the reason the team is told, when the intent
    /// passes the conversation to a person.
    Answer {
        key: String,
        handoff: Option<String>,
    },
}

/// A turn's result: effects in order, and the state to keep (`None`: no flow waits).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    pub effects: Vec<Effect>,
    pub state: Option<FlowState>,
    /// The message was not for the flow (the handoff offer got neither yes nor no): the flow
    /// is dropped and the caller handles the message as if none ran.
    pub passed: bool,
}

pub(crate) enum Next {
    Continue,
    Goto(Target),
    Wait(Waiting),
    End,
    /// A flow that cannot go on (validation keeps these out): the flow ends, logged.
    Broken(String),
}

pub struct Engine {
    flows: BTreeMap<String, Flow>,
    slots: BTreeMap<String, SlotDef>,
    routes: BTreeMap<String, Route>,
    actions: Actions,
}

/// One step's view of the turn.
pub(crate) struct Run<'a> {
    pub engine: &'a Engine,
    pub host: &'a dyn FlowHost,
    pub now: OffsetDateTime,
    pub frame: &'a mut Frame,
    pub effects: &'a mut Vec<Effect>,
    /// The message, until a slot takes it (`consumed`).
    pub input: Option<&'a Understood>,
    pub consumed: bool,
}

impl Scope for Run<'_> {
    fn lookup(&self, path: &str) -> Option<Value> {
        lookup(self.frame, path)
    }
    fn now(&self) -> Value {
        Value::Time(self.now)
    }
}

fn lookup(frame: &Frame, path: &str) -> Option<Value> {
    match path.split_once('.') {
        Some((name, field)) => frame.bound.get(name)?.get(field).cloned(),
        None => frame.slots.get(path).cloned(),
    }
}

impl Run<'_> {
    /// Fills `slot` from the message if it answers it; the message is then used up.
    pub fn fill_from_input(&mut self, slot: &str) -> bool {
        let (Some(u), Some(def), false) = (self.input, self.engine.slot(slot), self.consumed)
        else {
            return false;
        };
        // Free words answer only their own question (handled in `reply`): "is it in stock?"
        // is not a product.
        if def.kind == SlotType::Text || (def.kind == SlotType::Product && u.products.is_empty()) {
            return false;
        }
        match fill(
            def.kind,
            u,
            &self.frame.candidates,
            &self.frame.candidate_items,
            &self.frame.candidate_placed,
        ) {
            Some(v) => {
                self.frame.slots.insert(slot.to_string(), v);
                self.consumed = true;
                true
            }
            None => false,
        }
    }

    pub fn render(&self, t: &Template) -> Result<Value, HostError> {
        t.render(self).ok_or_else(|| {
            HostError::Failed(format!(
                "{:?} names a value this flow does not have",
                t.paths()
            ))
        })
    }

    /// What a connector or a job is given: values inside text in their exact form.
    pub fn render_exact(&self, t: &Template) -> Result<Value, HostError> {
        t.render_exact(self).ok_or_else(|| {
            HostError::Failed(format!(
                "{:?} names a value this flow does not have",
                t.paths()
            ))
        })
    }

    pub fn inputs(&self, with: &BTreeMap<String, Template>) -> Result<Record, HostError> {
        with.iter()
            .map(|(k, t)| Ok((k.clone(), self.render_exact(t)?)))
            .collect()
    }

    /// A message's variables: the slots, every bound field by its own name (the latest
    /// binding wins), and `extra`; values a template cannot fill are left out.
    pub fn vars(&self, extra: &BTreeMap<String, Template>) -> Vec<(String, Value)> {
        let mut vars: BTreeMap<String, Value> = self.frame.slots.clone();
        for record in self.frame.bound.values() {
            vars.extend(record.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (k, t) in extra {
            // A value inside text is written as the customer's language writes it; a whole
            // value stays typed and the sentence writes it.
            match t.render_with(self, |v| v.written(self.host.format())) {
                Some(v) => {
                    vars.insert(k.clone(), v);
                }
                None => {
                    vars.remove(k);
                }
            }
        }
        vars.into_iter().collect()
    }
}

impl Engine {
    pub fn new(
        flows: impl IntoIterator<Item = Flow>,
        slots: BTreeMap<String, SlotDef>,
        routes: BTreeMap<String, Route>,
        actions: Actions,
    ) -> Self {
        Engine {
            flows: flows.into_iter().map(|f| (f.name.clone(), f)).collect(),
            slots,
            routes,
            actions,
        }
    }

    pub fn slot(&self, name: &str) -> Option<&SlotDef> {
        self.slots.get(name)
    }

    pub fn actions(&self) -> &Actions {
        &self.actions
    }

    pub fn flow(&self, name: &str) -> Option<&Flow> {
        self.flows.get(name)
    }

    /// Whether `flow` may not run for `host`'s customer: it needs an account and they are not
    /// verified. A flow the bundle does not have runs nothing either way.
    pub fn refuses(&self, flow: &str, host: &dyn FlowHost) -> bool {
        !host.verified() && self.flows.get(flow).is_some_and(|f| f.needs_account)
    }

    /// What a refused flow's turn is: how to verify, and no flow waiting (whatever waited is
    /// dropped: the customer's next message is their email address, not its answer).
    fn ask_to_verify() -> Turn {
        Turn {
            effects: vec![Effect::Say {
                key: VERIFY_NEEDED.into(),
                vars: Vec::new(),
            }],
            state: None,
            passed: false,
        }
    }

    /// Starts `flow` for message `u`, with `initial` slots (a proactive offer's link). The
    /// flow's declared slots are filled from the message first: "where is order 1002?" has
    /// its order.
    pub async fn start(
        &self,
        flow: &str,
        initial: Record,
        u: &Understood,
        host: &dyn FlowHost,
        now: OffsetDateTime,
    ) -> Result<Turn, HostError> {
        self.start_in_context(flow, initial, &Record::new(), u, host, now)
            .await
    }

    /// [`Engine::start`], with what the conversation was last about (`remembered`): the flow's
    /// `context` slots the message does not fill are taken from it.
    pub async fn start_in_context(
        &self,
        flow: &str,
        initial: Record,
        remembered: &Record,
        u: &Understood,
        host: &dyn FlowHost,
        now: OffsetDateTime,
    ) -> Result<Turn, HostError> {
        if self.refuses(flow, host) {
            return Ok(Self::ask_to_verify());
        }
        let mut effects = Vec::new();
        let mut frame = self.frame_for(flow, initial, u, host);
        if let Some(f) = self.flows.get(flow) {
            for name in &f.context {
                if let (false, Some(v)) = (frame.slots.contains_key(name), remembered.get(name)) {
                    frame.slots.insert(name.clone(), v.clone());
                }
            }
        }
        let state = self
            .drive(frame, Vec::new(), Some(u), host, now, &mut effects)
            .await?;
        Ok(Turn {
            effects,
            state,
            passed: false,
        })
    }

    fn frame_for(
        &self,
        flow: &str,
        mut slots: Record,
        u: &Understood,
        host: &dyn FlowHost,
    ) -> Frame {
        if let Some(f) = self.flows.get(flow) {
            if f.inputs.iter().any(|i| i == super::MESSAGE) {
                slots.insert(super::MESSAGE.into(), Value::text(u.text.clone()));
            }
            if f.inputs.iter().any(|i| i == super::CUSTOMER_ID) {
                slots.insert(super::CUSTOMER_ID.into(), Value::text(host.customer_id()));
            }
            for name in &f.slots {
                let Some(def) = self.slots.get(name) else {
                    continue;
                };
                // Only entities fill ahead: the words of "where's my order" are not an order.
                if matches!(def.kind, SlotType::Text | SlotType::Product) && u.products.is_empty() {
                    continue;
                }
                if !slots.contains_key(name) {
                    if let Some(v) = fill(def.kind, u, &[], &[], &[]) {
                        slots.insert(name.clone(), v);
                    }
                }
            }
        }
        Frame::new(flow, slots)
    }

    /// A message that is clearly another intent while a flow waits: classified above the
    /// accept threshold, not torn between two, not a yes/no, and routed to a flow (other
    /// than the waiting one) or an answer. Moves (greetings, thanks, "a person") are the
    /// caller's.
    pub fn interrupts(&self, u: &Understood, waiting_flow: &str) -> Option<&Route> {
        self.interrupts_while(u, waiting_flow, true)
    }

    /// [`Engine::interrupts`]; a message that opens like a yes or no ("no, I want to track my
    /// refund") is an answer only where one is asked (`yes_no`).
    fn interrupts_while(&self, u: &Understood, waiting_flow: &str, yes_no: bool) -> Option<&Route> {
        if !u.clear || (yes_no && u.answer.is_some()) {
            return None;
        }
        match self.routes.get(&u.intent)? {
            Route::Flow(f) if f == waiting_flow => None,
            r => Some(r),
        }
    }

    /// The waiting flow's own intent again with another value for one of its slots ("where is
    /// order 1001?" while 1002's refund offer waits): the flow starts over for it.
    fn asked_again(&self, u: &Understood, flow: &Flow, frame: &Frame) -> Option<Route> {
        if !u.clear || u.answer.is_some() {
            return None;
        }
        match self.routes.get(&u.intent)? {
            Route::Flow(f) if *f == flow.name => {}
            _ => return None,
        }
        let differs = flow.slots.iter().any(|name| {
            let Some(def) = self.slots.get(name) else {
                return false;
            };
            // Only entities say "another one": free words fill any slot.
            if matches!(def.kind, SlotType::Text | SlotType::Product) {
                return false;
            }
            fill(def.kind, u, &[], &[], &[]).is_some_and(|v| frame.slots.get(name) != Some(&v))
        });
        differs.then(|| Route::Flow(flow.name.clone()))
    }

    /// The customer's next message for the waiting flow.
    pub async fn reply(
        &self,
        state: FlowState,
        u: &Understood,
        host: &dyn FlowHost,
        now: OffsetDateTime,
    ) -> Result<Turn, HostError> {
        let FlowState {
            mut frame,
            suspended,
        } = state;
        // A conversation that waits in such a flow for a customer no longer verified (or one
        // the bundle has since marked as needing an account) is not taken further.
        if std::iter::once(&frame)
            .chain(&suspended)
            .any(|f| self.refuses(&f.flow, host))
        {
            return Ok(Self::ask_to_verify());
        }
        let mut effects = Vec::new();
        let Some(flow) = self.flows.get(&frame.flow) else {
            // The bundle changed under a waiting conversation: the flow is gone.
            tracing::warn!(flow = %frame.flow, "a waiting flow is no longer in the bundle");
            return Ok(Turn {
                passed: true,
                ..Turn::default()
            });
        };
        let waiting = frame.waiting.take();
        let route = self
            .interrupts_while(
                u,
                &frame.flow,
                !matches!(waiting, Some(Waiting::Slot { .. })),
            )
            .cloned()
            .or_else(|| self.asked_again(u, flow, &frame));
        let mut input = Some(u);
        match waiting {
            Some(Waiting::Slot { slot }) => {
                let kind = self.slots.get(&slot).map(|d| d.kind);
                let free = matches!(kind, Some(SlotType::Text))
                    || (kind == Some(SlotType::Product) && u.products.is_empty());
                let filled = kind.and_then(|k| {
                    fill(
                        k,
                        u,
                        &frame.candidates,
                        &frame.candidate_items,
                        &frame.candidate_placed,
                    )
                });
                match (filled, route) {
                    (Some(v), r) if !(free && r.is_some()) => {
                        frame.slots.insert(slot, v);
                        frame.attempts = 0;
                        input = None;
                        // Past the ask (a `fresh` ask would clear the answer just given).
                        match flow.steps.get(frame.step).and_then(|s| s.next.as_ref()) {
                            None => frame.step += 1,
                            Some(t) => match flow.index_of(t) {
                                Some(i) => frame.step = i,
                                None => return self.ended(suspended, host, now, effects).await,
                            },
                        }
                    }
                    (_, Some(route)) => {
                        frame.waiting = Some(Waiting::Slot { slot });
                        return self.interrupt(frame, suspended, route, u, host, now).await;
                    }
                    _ => {
                        frame.attempts += 1;
                        let limit = self.slots.get(&slot).map_or(1, |d| d.attempts.max(1));
                        if frame.attempts >= limit {
                            return Ok(self.offer_handoff(frame, suspended, &slot, effects));
                        }
                        input = None;
                    }
                }
            }
            Some(Waiting::Confirm) => match (u.answer, route) {
                (Some(yes), _) => {
                    let target = match flow.steps.get(frame.step).map(|s| &s.kind) {
                        Some(StepKind::Confirm(c)) => c.answer(yes).clone(),
                        _ => return Ok(Turn::default()),
                    };
                    frame.attempts = 0;
                    input = None;
                    match flow.index_of(&target) {
                        Some(i) => frame.step = i,
                        None => return self.ended(suspended, host, now, effects).await,
                    }
                }
                (None, Some(route)) => {
                    frame.waiting = Some(Waiting::Confirm);
                    return self.interrupt(frame, suspended, route, u, host, now).await;
                }
                (None, None) => {
                    frame.attempts += 1;
                    if frame.attempts >= CONFIRM_ATTEMPTS {
                        return Ok(self.offer_handoff(frame, suspended, "confirm", effects));
                    }
                    input = None;
                }
            },
            Some(Waiting::HandoffOffer { reason }) => {
                return Ok(match u.answer {
                    Some(true) => Turn {
                        effects: vec![Effect::Handoff {
                            reason,
                            order_id: frame
                                .slots
                                .get("order")
                                .and_then(Value::as_text)
                                .map(str::to_string),
                        }],
                        ..Turn::default()
                    },
                    Some(false) => Turn {
                        effects: vec![Effect::Say {
                            key: HANDOFF_DECLINED.into(),
                            vars: Vec::new(),
                        }],
                        ..Turn::default()
                    },
                    None => Turn {
                        passed: true,
                        ..Turn::default()
                    },
                });
            }
            None => {}
        }
        let state = self
            .drive(frame, suspended, input, host, now, &mut effects)
            .await?;
        Ok(Turn {
            effects,
            state,
            passed: false,
        })
    }

    fn offer_handoff(
        &self,
        mut frame: Frame,
        suspended: Vec<Frame>,
        what: &str,
        mut effects: Vec<Effect>,
    ) -> Turn {
        effects.push(Effect::Say {
            key: HANDOFF_OFFER.into(),
            vars: Vec::new(),
        });
        frame.waiting = Some(Waiting::HandoffOffer {
            reason: format!("{}.{what}", frame.flow),
        });
        Turn {
            effects,
            state: Some(FlowState { frame, suspended }),
            passed: false,
        }
    }

    /// Runs the other intent, then asks the waiting question again.
    async fn interrupt(
        &self,
        waiting: Frame,
        mut suspended: Vec<Frame>,
        route: Route,
        u: &Understood,
        host: &dyn FlowHost,
        now: OffsetDateTime,
    ) -> Result<Turn, HostError> {
        if let Route::Flow(name) = &route {
            if self.refuses(name, host) {
                return Ok(Self::ask_to_verify());
            }
        }
        let mut effects = Vec::new();
        // A flow about the same thing (the same order, or the slot the waiting one asks for)
        // replaces the waiting one: the customer has moved on, and asking the old question
        // again would offer the same refund twice or list the orders twice.
        let replaces = match &route {
            Route::Flow(name) => self.flows.get(name).is_some_and(|f| {
                f.slots.iter().any(|s| {
                    waiting.slots.contains_key(s)
                        || matches!(&waiting.waiting, Some(Waiting::Slot { slot }) if slot == s)
                })
            }),
            Route::Answer { .. } => false,
        };
        if !replaces {
            suspended.push(waiting);
        }
        let state = match route {
            Route::Answer { key, handoff } => {
                effects.push(Effect::Say {
                    key,
                    vars: Vec::new(),
                });
                if let Some(reason) = handoff {
                    effects.push(Effect::StartJob(FlowJob::Handoff {
                        reason,
                        order_id: None,
                    }));
                }
                self.ended_into(suspended, host, now, &mut effects).await?
            }
            Route::Flow(name) => {
                let frame = self.frame_for(&name, Record::new(), u, host);
                self.drive(frame, suspended, Some(u), host, now, &mut effects)
                    .await?
            }
        };
        Ok(Turn {
            effects,
            state,
            passed: false,
        })
    }

    async fn ended(
        &self,
        suspended: Vec<Frame>,
        host: &dyn FlowHost,
        now: OffsetDateTime,
        mut effects: Vec<Effect>,
    ) -> Result<Turn, HostError> {
        let state = self.ended_into(suspended, host, now, &mut effects).await?;
        Ok(Turn {
            effects,
            state,
            passed: false,
        })
    }

    /// A flow ended: the one it interrupted (if any) asks its question again.
    async fn ended_into(
        &self,
        mut suspended: Vec<Frame>,
        host: &dyn FlowHost,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
    ) -> Result<Option<FlowState>, HostError> {
        match suspended.pop() {
            None => Ok(None),
            Some(mut frame) => {
                frame.waiting = None;
                self.drive(frame, suspended, None, host, now, effects).await
            }
        }
    }

    /// Runs `frame` until it waits or it and every flow it interrupted have ended.
    async fn drive(
        &self,
        mut frame: Frame,
        mut suspended: Vec<Frame>,
        mut input: Option<&Understood>,
        host: &dyn FlowHost,
        now: OffsetDateTime,
        effects: &mut Vec<Effect>,
    ) -> Result<Option<FlowState>, HostError> {
        for _ in 0..MAX_STEPS {
            let next = match self
                .flows
                .get(&frame.flow)
                .and_then(|f| f.steps.get(frame.step))
            {
                None => Next::End,
                Some(step) => {
                    let mut run = Run {
                        engine: self,
                        host,
                        now,
                        frame: &mut frame,
                        effects,
                        input,
                        consumed: false,
                    };
                    let next = match &step.kind {
                        StepKind::Ask(s) => s.run(&mut run),
                        StepKind::Call(s) => s.run(&mut run).await?,
                        StepKind::Branch(s) => s.run(&mut run),
                        StepKind::Say(s) => s.run(&mut run),
                        StepKind::Confirm(s) => s.run(&mut run),
                        StepKind::Job(s) => s.run(&mut run)?,
                        StepKind::Handoff(s) => s.run(&mut run),
                        StepKind::Action(s) => s.run(&mut run).await?,
                        StepKind::Goto(s) => s.run(),
                        StepKind::End(s) => s.run(),
                    };
                    if run.consumed {
                        input = None;
                    }
                    next
                }
            };
            let next = match next {
                Next::Continue => match self
                    .flows
                    .get(&frame.flow)
                    .and_then(|f| f.steps.get(frame.step))
                    .and_then(|s| s.next.clone())
                {
                    Some(t) => Next::Goto(t),
                    None => Next::Continue,
                },
                other => other,
            };
            match next {
                Next::Continue => frame.step += 1,
                Next::Goto(t) => match self.flows.get(&frame.flow).and_then(|f| f.index_of(&t)) {
                    Some(i) => frame.step = i,
                    None => frame.step = usize::MAX,
                },
                Next::Wait(w) => {
                    frame.waiting = Some(w);
                    return Ok(Some(FlowState { frame, suspended }));
                }
                Next::End | Next::Broken(_) => {
                    if let Next::Broken(why) = next {
                        tracing::error!(flow = %frame.flow, step = frame.step, why, "flow broken");
                    }
                    effects.push(Effect::Ended {
                        flow: frame.flow.clone(),
                        slots: frame.slots.clone(),
                        bound: frame.bound.clone(),
                        candidates: frame.candidates.clone(),
                    });
                    match suspended.pop() {
                        None => return Ok(None),
                        Some(f) => {
                            frame = f;
                            frame.waiting = None;
                            input = None;
                        }
                    }
                }
            }
        }
        tracing::error!(flow = %frame.flow, "flow ran {MAX_STEPS} steps without waiting; ended");
        Ok(None)
    }
}
