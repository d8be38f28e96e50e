//! `handoff = "<reason>"`: the conversation goes to a person (with the `order` slot, if the
//! flow has one) and the flow ends.

use super::Fields;
use crate::flow::engine::{Effect, Next, Run};

#[derive(Debug, Clone, PartialEq)]
pub struct Handoff {
    pub reason: String,
}

impl Handoff {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        Some(Handoff {
            reason: f.required("handoff", "handoff")?,
        })
    }

    pub(crate) fn run(&self, r: &mut Run<'_>) -> Next {
        let order_id = r
            .frame
            .slots
            .get("order")
            .and_then(|v| v.as_text())
            .map(str::to_string);
        r.effects.push(Effect::Handoff {
            reason: self.reason.clone(),
            order_id,
        });
        Next::End
    }
}
