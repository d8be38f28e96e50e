//! Runs the bundle's flows in the flow engine for the dialogue: starts one for an intent,
//! gives a waiting one the customer's reply, and turns the engine's effects into what the
//! turn says (through the messages catalogue), the jobs it starts, the state it keeps and what
//! the conversation is about next (the order discussed, the orders listed).
//!
//! The engine leaves to its caller: the refund list the conversation keeps, "already handed
//! off", and deferring the turn when a system is slow or down (the old state kept).

use crate::bot::messages::Value as MsgValue;
use crate::conversation::DialogueState;
use crate::flow::engine::{
    Effect, FlowJob, FlowState, HostError, Understood, Waiting, VERIFY_NEEDED,
};
use crate::flow::value::{Record, Value};
use crate::flow::SlotType;
use crate::jobs::JobKind;
use crate::nlu::{Intent, Understanding};

use super::host::{PortsHost, Trouble};
use super::{Dialogue, Turn, ORDER_SLOT, SYSTEM_DOWN, WELCOME_BACK_FLOW};

/// The conversation list a flow's `refund_news` reads.
use crate::flow::actions::REFUNDS_REQUESTED;
/// The refunds a returning customer hears about (`welcome_back`).
const WELCOME_BACK: &str = "welcome_back";

/// How a flow turn went, for the dialogue.
pub(super) enum Ran {
    Done,
    /// The message was not for the waiting flow: handle it as a fresh one.
    Passed,
}

/// A flow's value as a message variable: times are said as their date, flags as words.
pub fn message_value(v: &Value) -> MsgValue {
    match v {
        Value::Text(t) => MsgValue::Text(t.clone()),
        Value::Number(n) => MsgValue::Number(*n),
        Value::Money(m) => MsgValue::Money(m.clone()),
        Value::Date(d) => MsgValue::Date(*d),
        Value::Time(t) => MsgValue::Date(t.date()),
        Value::Bool(b) => MsgValue::Bool(*b),
    }
}

fn message_vars(vars: &[(String, Value)]) -> Vec<(&str, MsgValue)> {
    vars.iter()
        .map(|(k, v)| (k.as_str(), message_value(v)))
        .collect()
}

/// A refund that ended, once told (`refund_news`'s `refund.state.done|failed`), is not told
/// again on the customer's next visit (`Slots::refunds_reported`).
fn note_refund_told(turn: &mut Turn<'_>, key: &str, vars: &[(String, Value)]) {
    if !matches!(key, "refund.state.done" | "refund.state.failed") {
        return;
    }
    let Some(order) = vars
        .iter()
        .find(|(k, _)| k == "order")
        .and_then(|(_, v)| v.as_text())
    else {
        return;
    };
    let reported = &mut turn.out.slots.refunds_reported;
    if !reported.iter().any(|r| r == order) {
        reported.push(order.to_string());
    }
}

impl Dialogue {
    fn host<'a>(&'a self, turn: &'a Turn<'a>) -> PortsHost<'a> {
        PortsHost::new(
            turn.who,
            &turn.messages,
            self.orders.as_ref(),
            turn.deadline,
        )
        .with_inventory(self.inventory.as_deref())
        .with_ledger(self.ledger.as_deref())
        .with_operations(self.operations.as_deref())
        .with_list(REFUNDS_REQUESTED, turn.out.slots.refunds_requested.clone())
        .with_list(WELCOME_BACK, turn.out.slots.welcome_back.clone())
        .with_words(turn.words.clone())
    }

    /// The message as the engine reads it. While a flow waits for a product, the catalogue's
    /// names are looked for in it ("the desk lamp" answers "which product?" whatever the
    /// classifier makes of it).
    async fn understood(
        &self,
        turn: &mut Turn<'_>,
        u: &Understanding,
        text: &str,
        waiting_for: Option<SlotType>,
    ) -> Understood {
        let mut names = Vec::new();
        if let (Some(SlotType::Product), Some(inventory)) = (waiting_for, &self.inventory) {
            match super::host::within(turn.deadline, inventory.products()).await {
                Ok(Ok(products)) => names = products.into_iter().map(|p| p.name).collect(),
                Ok(Err(e)) => tracing::warn!(error = %e, "no catalogue to read a product from"),
                Err(_) => tracing::info!("the catalogue missed the turn's budget"),
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let words = &turn.words;
        let entities = crate::entities::extract(words, text, turn.now.date(), &names);
        Understood::from_nlu(u, text, &entities, words)
    }

    /// Starts `flow` for the message (for `intent`; none for a vendor's event), with
    /// `initial` slots; the flow's `context` slots come from the order the conversation is
    /// about when the message names none.
    pub(super) async fn start_flow(
        &self,
        turn: &mut Turn<'_>,
        intent: Option<&Intent>,
        flow: &str,
        initial: Record,
        u: &Understanding,
        text: &str,
    ) {
        let understood = self.understood(turn, u, text, None).await;
        let remembered: Record = turn
            .out
            .slots
            .order_id
            .iter()
            .map(|o| (ORDER_SLOT.to_string(), Value::text(o)))
            .collect();
        let engine = &self.bot.engine.0;
        let (result, trouble, refused) = {
            let host = self.host(turn);
            let r = engine
                .start_in_context(flow, initial, &remembered, &understood, &host, turn.now)
                .await;
            (r, host.trouble(), engine.refuses(flow, &host))
        };
        // "and the other one?" next asks the same; not a question the customer was refused
        // (asked to verify instead): after verifying, a bare "1002" must not ask it unasked.
        if let (Some(intent), true, false) = (intent, self.flow_has_order(flow), refused) {
            turn.out.slots.topic = Some(intent.name().to_string());
        }
        self.apply(turn, result, trouble, intent);
    }

    /// A returning customer's refunds, through the bundle's `welcome_back` flow.
    pub(super) async fn run_welcome(&self, turn: &mut Turn<'_>, pending: Vec<String>) {
        let engine = &self.bot.engine.0;
        let (result, trouble) = {
            let host = self.host(turn).with_list(WELCOME_BACK, pending);
            let r = engine
                .start(
                    WELCOME_BACK_FLOW,
                    Record::new(),
                    &Understood::default(),
                    &host,
                    turn.now,
                )
                .await;
            (r, host.trouble())
        };
        // Never a reason to defer the customer's own question: the flow reads only the ledger.
        // A greeting with no news after it is not said.
        match result {
            Ok(ran) if trouble.is_none() && says(&ran) > 1 => {
                self.apply(turn, Ok(ran), None, None);
            }
            _ => {}
        }
    }

    /// The customer's reply to the waiting flow.
    pub(super) async fn reply_to_flow(
        &self,
        turn: &mut Turn<'_>,
        state: &FlowState,
        u: &Understanding,
        text: &str,
    ) -> Ran {
        let waiting_for = match &state.frame.waiting {
            Some(Waiting::Slot { slot }) => self.bot.engine.0.slot(slot).map(|d| d.kind),
            _ => None,
        };
        let understood = self.understood(turn, u, text, waiting_for).await;
        let engine = &self.bot.engine.0;
        let (result, trouble) = {
            let host = self.host(turn);
            let r = engine
                .reply(state.clone(), &understood, &host, turn.now)
                .await;
            (r, host.trouble())
        };
        if matches!(&result, Ok(t) if t.passed) {
            return Ran::Passed;
        }
        self.apply(turn, result, trouble, None);
        Ran::Done
    }

    /// Applies a flow turn: what it says is one message (its lines in order), like any answer.
    fn apply(
        &self,
        turn: &mut Turn<'_>,
        result: Result<crate::flow::engine::Turn, HostError>,
        trouble: Option<Trouble>,
        intent: Option<&Intent>,
    ) {
        let ran = match result {
            Ok(ran) => ran,
            Err(HostError::Unavailable(detail)) => {
                // The turn is deferred: "let me check" now, the deferred job answers later
                // from the state the conversation was in.
                tracing::info!(%detail, "a flow's read could not be made in time; deferring");
                turn.over_budget = true;
                turn.system_down = trouble == Some(Trouble::Down);
                return;
            }
            Err(HostError::Failed(detail) | HostError::Missing(detail)) => {
                tracing::warn!(%detail, "a flow's read failed during a turn");
                // The intent's own answer (`answer.<intent>`), when it has one, rather than a
                // dead end: a deployment without a stock system still says where to look.
                let key = intent
                    .map(|i| format!("answer.{}", i.name()))
                    .filter(|k| turn.messages.vars_of(k).is_some_and(|v| v.is_empty()));
                let key = key.as_deref().unwrap_or(SYSTEM_DOWN);
                return self.say(turn, key, &[]);
            }
        };
        let mut lines = Vec::new();
        for effect in ran.effects {
            match effect {
                // Two requests of one message refused alike ("where's my order, and my
                // refund?") are one request to verify.
                Effect::Say { key, .. } if key == VERIFY_NEEDED && turn.asked_to_verify => {}
                Effect::Say { key, vars } | Effect::Ask { key, vars, .. } => {
                    turn.asked_to_verify |= key == VERIFY_NEEDED;
                    note_refund_told(turn, &key, &vars);
                    lines.push(turn.messages.render(&key, &message_vars(&vars)));
                }
                Effect::Handoff { reason, order_id } => {
                    if !lines.is_empty() {
                        turn.say(std::mem::take(&mut lines).join("\n"));
                    }
                    self.handoff(turn, &reason, order_id)
                }
                Effect::StartJob(job) => self.start_job(turn, job),
                Effect::Ended {
                    slots,
                    bound,
                    candidates,
                    ..
                } => {
                    // What the conversation is about now.
                    if let Some(order) = read_order(&slots, &bound) {
                        turn.out.slots.order_id = Some(order);
                    }
                    if !candidates.is_empty() {
                        turn.out.slots.candidates = candidates;
                    }
                }
            }
        }
        if !lines.is_empty() {
            turn.say(lines.join("\n"));
        }
        turn.out.state = match ran.state {
            Some(state) => {
                let frame = &state.frame;
                if !frame.candidates.is_empty() {
                    turn.out.slots.candidates = frame.candidates.clone();
                }
                if let Some(order) = read_order(&frame.slots, &frame.bound) {
                    turn.out.slots.order_id = Some(order);
                }
                DialogueState::Flow(state)
            }
            None => DialogueState::Idle,
        };
    }

    fn start_job(&self, turn: &mut Turn<'_>, job: FlowJob) {
        let kind = match job {
            FlowJob::Refund { order_id, amount } => {
                // Where it stands is said on the customer's next visits.
                turn.out.slots.refunds_requested.push(order_id.clone());
                JobKind::RefundRequest { order_id, amount }
            }
            FlowJob::Handoff { reason, order_id } => {
                return super::flag_for_agent(turn, &reason, order_id);
            }
            FlowJob::Email {
                purpose,
                order_id,
                subject_key,
                text_key,
                vars,
            } => {
                // Written now, in the customer's language: the job only sends it.
                let vars = message_vars(&vars);
                JobKind::EmailConfirmation {
                    purpose,
                    order_id,
                    subject: turn.messages.render(&subject_key, &vars),
                    text: turn.messages.render(&text_key, &vars),
                }
            }
            FlowJob::Connector {
                operation,
                inputs,
                idempotency_key,
            } => JobKind::ConnectorWrite {
                operation,
                inputs,
                idempotency_key,
            },
        };
        turn.out.jobs.push(kind);
    }
}

/// How many sentences a flow turn says.
fn says(ran: &crate::flow::engine::Turn) -> usize {
    ran.effects
        .iter()
        .filter(|e| matches!(e, Effect::Say { .. } | Effect::Ask { .. }))
        .count()
}

/// The flow's `order`, once a record read for it came back (not a mistyped number, nor
/// another customer's): the order the conversation is about.
fn read_order(
    slots: &Record,
    bound: &std::collections::BTreeMap<String, Record>,
) -> Option<String> {
    let order = slots.get(ORDER_SLOT)?;
    bound
        .values()
        .any(|r| r.get("id") == Some(order))
        .then(|| order.to_string())
}
