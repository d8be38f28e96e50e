//! Runs the bundle's flows in the flow engine for the dialogue: starts one for an intent,
//! gives a waiting one the customer's reply, and turns the engine's effects into what the
//! turn says (through the messages catalogue), the jobs it starts and the state it keeps.
//!
//! The engine leaves to its caller: the refund list the conversation keeps, "already handed
//! off", and deferring the turn when a system is slow or down (the old state kept).

use crate::bot::messages::Value as MsgValue;
use crate::conversation::DialogueState;
use crate::flow::engine::{Effect, FlowJob, FlowState, HostError, Understood};
use crate::flow::value::{Record, Value};
use crate::nlu::{Intent, Understanding};

use super::host::{PortsHost, Trouble};
use super::{handoff, Dialogue, Turn, SYSTEM_DOWN};

/// The conversation list a flow's `refund_news` reads.
const REFUNDS_REQUESTED: &str = "refunds_requested";

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
        Value::Bool(b) => MsgValue::Text(if *b { "yes" } else { "no" }.into()),
    }
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
        PortsHost::new(turn.who, self.orders.as_ref(), turn.deadline)
            .with_inventory(self.inventory.as_deref())
            .with_ledger(self.ledger.as_deref())
            .with_operations(self.operations.as_deref())
            .with_list(REFUNDS_REQUESTED, turn.out.slots.refunds_requested.clone())
    }

    fn understood(&self, turn: &Turn<'_>, u: &Understanding, text: &str) -> Understood {
        let entities = crate::entities::extract(text, turn.now.date(), &[]);
        Understood::from_nlu(u, text, &entities)
    }

    /// Starts `flow` for the message, with `initial` slots (a proactive offer's link).
    pub(super) async fn start_flow(
        &self,
        turn: &mut Turn<'_>,
        intent: &Intent,
        flow: &str,
        initial: Record,
        u: &Understanding,
        text: &str,
    ) {
        let understood = self.understood(turn, u, text);
        let engine = &self.bot.engine.0;
        let (result, trouble) = {
            let host = self.host(turn);
            let r = engine
                .start(flow, initial, &understood, &host, turn.now)
                .await;
            (r, host.trouble())
        };
        self.apply(turn, result, trouble, Some(intent));
    }

    /// The customer's reply to the waiting flow.
    pub(super) async fn reply_to_flow(
        &self,
        turn: &mut Turn<'_>,
        state: &FlowState,
        u: &Understanding,
        text: &str,
    ) -> Ran {
        let understood = self.understood(turn, u, text);
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
            Err(HostError::Failed(detail)) => {
                tracing::warn!(%detail, "a flow's read failed during a turn");
                // The intent's own answer (`answer.<intent>`), when it has one, rather than a
                // dead end: a deployment without a stock system still says where to look.
                let fallback = intent
                    .and_then(|i| self.answer(i))
                    .map(|a| a.for_order(&self.messages, None));
                return turn.say(fallback.unwrap_or_else(|| SYSTEM_DOWN.to_string()));
            }
        };
        for effect in ran.effects {
            match effect {
                Effect::Say { key, vars } | Effect::Ask { key, vars, .. } => {
                    note_refund_told(turn, &key, &vars);
                    let vars: Vec<(&str, MsgValue)> = vars
                        .iter()
                        .map(|(k, v)| (k.as_str(), message_value(v)))
                        .collect();
                    turn.say(self.messages.render(&key, &vars));
                }
                Effect::Handoff { reason, order_id } => handoff(turn, &reason, order_id),
                Effect::StartJob(job) => self.start_job(turn, job),
            }
        }
        turn.out.state = match ran.state {
            Some(state) => DialogueState::Flow(state),
            None => DialogueState::Idle,
        };
    }

    fn start_job(&self, turn: &mut Turn<'_>, job: FlowJob) {
        if let FlowJob::Refund { order_id, .. } = &job {
            // Where it stands is said on the customer's next visits.
            turn.out.slots.refunds_requested.push(order_id.clone());
        }
        if let FlowJob::Handoff { reason, order_id } = &job {
            super::flag_for_agent(turn, reason, order_id.clone());
            return;
        }
        match job.job_kind() {
            Some(kind) => turn.out.jobs.push(kind),
            None => tracing::error!(?job, "a flow's job has no fulfillment job kind yet"),
        }
    }
}
