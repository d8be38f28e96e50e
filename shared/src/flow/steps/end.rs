//! `end = true`: the flow is over (a suspended flow, if any, asks its question again).

use super::Fields;
use crate::flow::engine::Next;

#[derive(Debug, Clone, PartialEq)]
pub struct End;

impl End {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        match f.table.remove("end") {
            Some(toml::Value::Boolean(true)) => Some(End),
            _ => {
                f.error("end", "write `end = true`");
                None
            }
        }
    }

    pub(crate) fn run(&self) -> Next {
        Next::End
    }
}
