//! `confirm = "<message key>"` with `yes` and `no` targets: says the question and waits; the
//! engine sends the answer to one of the targets.

use std::collections::BTreeMap;

use super::Fields;
use crate::flow::engine::{Effect, Next, Run, Waiting};
use crate::flow::template::Template;
use crate::flow::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub key: String,
    pub vars: BTreeMap<String, Template>,
    pub yes: Target,
    pub no: Target,
}

impl Confirm {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let key = f.required("confirm", "confirm");
        let vars = f.templates("vars");
        let yes = f.required_target("yes", "confirm");
        let no = f.required_target("no", "confirm");
        Some(Confirm {
            key: key?,
            vars,
            yes: yes?,
            no: no?,
        })
    }

    pub(crate) fn run(&self, r: &mut Run<'_>) -> Next {
        let vars = r.vars(&self.vars);
        r.effects.push(Effect::Say {
            key: self.key.clone(),
            vars,
        });
        Next::Wait(Waiting::Confirm)
    }

    pub fn answer(&self, yes: bool) -> &Target {
        if yes {
            &self.yes
        } else {
            &self.no
        }
    }
}
