//! `goto = "<id>"`: jumps (`"end"` ends the flow).

use super::Fields;
use crate::flow::engine::Next;
use crate::flow::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct Goto {
    pub to: Target,
}

impl Goto {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        Some(Goto {
            to: f.required_target("goto", "goto")?,
        })
    }

    pub(crate) fn run(&self) -> Next {
        Next::Goto(self.to.clone())
    }
}
