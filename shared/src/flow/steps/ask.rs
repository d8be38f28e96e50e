//! `ask = "<slot>"`: the slot's value, from what the customer said, or its prompt and a wait.

use super::Fields;
use crate::flow::engine::{Effect, Next, Run, Waiting};

#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub slot: String,
    /// `fresh = true`: asks again even when the slot has a value ("anything else?" loops).
    pub fresh: bool,
}

impl Ask {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let slot = f.required("ask", "ask");
        let fresh = match f.table.remove("fresh") {
            None => false,
            Some(toml::Value::Boolean(b)) => b,
            Some(_) => {
                f.error("fresh", "must be true or false");
                false
            }
        };
        Some(Ask { slot: slot?, fresh })
    }

    pub(crate) fn run(&self, r: &mut Run<'_>) -> Next {
        if self.fresh {
            r.frame.slots.remove(&self.slot);
        }
        if r.frame.slots.contains_key(&self.slot) {
            return Next::Continue;
        }
        if r.fill_from_input(&self.slot) {
            return Next::Continue;
        }
        let Some(def) = r.engine.slot(&self.slot) else {
            return Next::Broken(format!("slot {} is not in the bundle", self.slot));
        };
        // A second try names what is wanted more plainly.
        let key = if r.frame.attempts > 0 {
            def.reprompt.clone()
        } else {
            def.prompt.clone()
        };
        let vars = r.vars(&Default::default());
        r.effects.push(Effect::Ask {
            slot: self.slot.clone(),
            key,
            vars,
        });
        Next::Wait(Waiting::Slot {
            slot: self.slot.clone(),
        })
    }
}
