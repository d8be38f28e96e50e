//! `ask = "<slot>"`: the slot's value, from what the customer said, or its prompt and a wait.
//! `prompt = "<message key>"` (+ `vars`) asks with the flow's own sentence instead of the
//! slot's ("You have 3 recent orders. Which one do you mean?"); `silent = true` waits without
//! asking (the question is still open: "and 2?" after one option was given). A second try
//! uses the slot's re-prompt either way. `options = ["<message key>", ...]`: the answers a
//! client may offer as buttons, each labelled with its message; pressing one answers with its
//! number (1, 2, 3…), so the question's text asks for those numbers too, for channels without
//! buttons.

use std::collections::BTreeMap;

use super::Fields;
use crate::flow::engine::{Effect, Next, Run, Waiting};
use crate::flow::template::Template;

#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub slot: String,
    /// `fresh = true`: asks again even when the slot has a value ("anything else?" loops).
    pub fresh: bool,
    /// The flow's own question, instead of the slot's prompt.
    pub prompt: Option<String>,
    pub vars: BTreeMap<String, Template>,
    pub silent: bool,
    /// Message keys of the answers offered as quick replies.
    pub options: Vec<String>,
}

impl Ask {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let slot = f.required("ask", "ask");
        let fresh = flag(f, "fresh");
        let silent = flag(f, "silent");
        let prompt = f.text("prompt");
        if silent && prompt.is_some() {
            f.error(
                "silent",
                "a silent question says no prompt: drop one of them",
            );
        }
        let vars = f.templates("vars");
        let options = options(f);
        Some(Ask {
            slot: slot?,
            fresh,
            prompt,
            vars,
            silent,
            options,
        })
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
        let key = match (&self.prompt, r.frame.attempts) {
            (_, 1..) => Some(def.reprompt.clone()),
            _ if self.silent => None,
            (Some(own), 0) => Some(own.clone()),
            (None, 0) => Some(def.prompt.clone()),
        };
        if let Some(key) = key {
            let vars = r.vars(&self.vars);
            r.effects.push(Effect::Ask {
                slot: self.slot.clone(),
                key,
                vars,
            });
        }
        Next::Wait(Waiting::Slot {
            slot: self.slot.clone(),
        })
    }
}

fn options(f: &mut Fields<'_>) -> Vec<String> {
    match f.table.remove("options") {
        None => Vec::new(),
        Some(toml::Value::Array(keys)) => {
            let keys: Option<Vec<String>> = keys
                .into_iter()
                .map(|k| k.as_str().map(str::to_string))
                .collect();
            keys.unwrap_or_else(|| {
                f.error("options", "must be a list of message keys");
                Vec::new()
            })
        }
        Some(_) => {
            f.error("options", "must be a list of message keys");
            Vec::new()
        }
    }
}

fn flag(f: &mut Fields<'_>, key: &str) -> bool {
    match f.table.remove(key) {
        None => false,
        Some(toml::Value::Boolean(b)) => b,
        Some(_) => {
            f.error(key, "must be true or false");
            false
        }
    }
}
