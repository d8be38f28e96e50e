//! `action = "<name>"`: a named piece of Rust (`flow/actions/`) for what a step cannot say,
//! with `with` inputs, `into` for the fields it binds, `on = { <outcome> = "<id>" }` and
//! `on_error`. An outcome without a target goes on to the next step.

use std::collections::BTreeMap;

use super::Fields;
use crate::flow::actions::ActionCx;
use crate::flow::engine::{HostError, Next, Run};
use crate::flow::template::Template;
use crate::flow::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct ActionStep {
    pub name: String,
    pub with: BTreeMap<String, Template>,
    pub into: Option<String>,
    pub on: BTreeMap<String, Target>,
    pub on_error: Option<Target>,
}

impl ActionStep {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let name = f.required("action", "action");
        let with = f.templates("with");
        let into = f.text("into");
        let line = f.line("on");
        let mut on = BTreeMap::new();
        match f.table.remove("on") {
            None => {}
            Some(toml::Value::Table(t)) => {
                for (outcome, to) in t {
                    match to {
                        toml::Value::String(to) => {
                            on.insert(outcome, Target { to, line });
                        }
                        _ => f.error("on", format!("`{outcome}` must name a step")),
                    }
                }
            }
            Some(_) => f.error("on", "must be a table: { outcome = \"step id\" }"),
        }
        let on_error = f.target("on_error");
        Some(ActionStep {
            name: name?,
            with,
            into,
            on,
            on_error,
        })
    }

    pub(crate) async fn run(&self, r: &mut Run<'_>) -> Result<Next, HostError> {
        let Some(action) = r.engine.actions().get(&self.name) else {
            return Ok(Next::Broken(format!("no action named {}", self.name)));
        };
        let inputs = r.inputs(&self.with)?;
        let cx = ActionCx {
            inputs,
            host: r.host,
            now: r.now,
            input: if r.consumed { None } else { r.input },
            candidates: &r.frame.candidates,
        };
        let done = match action.run(cx).await {
            Ok(done) => done,
            // A system that is slow or down defers the whole turn (the dialogue's "let me
            // check"); `on_error` is for one that refused or answered nonsense.
            Err(e @ HostError::Failed(_)) if self.on_error.is_some() => {
                tracing::warn!(error = %e, action = %self.name, "flow action failed");
                return Ok(self.on_error.clone().map_or(Next::Continue, Next::Goto));
            }
            Err(e) => return Err(e),
        };
        if let Some(into) = &self.into {
            r.frame.bound.insert(into.clone(), done.record);
        }
        r.frame.slots.extend(done.fills);
        if let Some(c) = done.candidates {
            r.frame.candidates = c;
            r.frame.candidate_items = done.candidate_items;
            r.frame.candidate_placed = done.candidate_placed;
        }
        r.effects.extend(done.says);
        Ok(self
            .on
            .get(done.outcome)
            .map_or(Next::Continue, |t| Next::Goto(t.clone())))
    }
}
