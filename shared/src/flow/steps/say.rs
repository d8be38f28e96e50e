//! `say = "<message key>"` (+ `vars = { name = "{path}" }` for what is not simply a slot or a
//! bound field).

use std::collections::BTreeMap;

use super::Fields;
use crate::flow::engine::{Effect, Next, Run};
use crate::flow::template::Template;

#[derive(Debug, Clone, PartialEq)]
pub struct Say {
    pub key: String,
    pub vars: BTreeMap<String, Template>,
}

impl Say {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let key = f.required("say", "say")?;
        Some(Say {
            key,
            vars: f.templates("vars"),
        })
    }

    pub(crate) fn run(&self, r: &mut Run<'_>) -> Next {
        let vars = r.vars(&self.vars);
        r.effects.push(Effect::Say {
            key: self.key.clone(),
            vars,
        });
        Next::Continue
    }
}
