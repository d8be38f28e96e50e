//! `call = "<system.operation>"`, `with = { input = "{path}" }`, `into = "<name>"`: reads one
//! record and binds its fields as `<name>.<field>`. `on_missing` is where a read that finds
//! nothing goes; `on_error` where a read the system refused or answered with nonsense goes
//! (without it, the intent's own answer or an apology is said). A system that is slow or down
//! is never an `on_error`: the turn is deferred ("let me check") and answered when it is back.

use std::collections::BTreeMap;

use super::Fields;
use crate::flow::engine::{HostError, Next, Run};
use crate::flow::template::Template;
use crate::flow::Target;

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub operation: String,
    pub with: BTreeMap<String, Template>,
    pub into: Option<String>,
    pub on_missing: Option<Target>,
    pub on_error: Option<Target>,
}

impl Call {
    pub fn parse(f: &mut Fields<'_>) -> Option<Self> {
        let operation = f.required("call", "call");
        let with = f.templates("with");
        let into = f.text("into");
        let on_missing = f.target("on_missing");
        let on_error = f.target("on_error");
        if on_missing.is_none() {
            f.error(
                "call",
                "needs `on_missing`: where to go when the record is not found",
            );
        }
        Some(Call {
            operation: operation?,
            with,
            into,
            on_missing,
            on_error,
        })
    }

    pub(crate) async fn run(&self, r: &mut Run<'_>) -> Result<Next, HostError> {
        let inputs = r.inputs(&self.with)?;
        match r.host.call(&self.operation, &inputs).await {
            Ok(Some(record)) => {
                if let Some(into) = &self.into {
                    r.frame.bound.insert(into.clone(), record);
                }
                Ok(Next::Continue)
            }
            Ok(None) => Ok(self.on_missing.clone().map_or(Next::Continue, Next::Goto)),
            Err(e @ HostError::Failed(_)) if self.on_error.is_some() => {
                tracing::warn!(error = %e, operation = %self.operation, "flow read failed");
                Ok(self.on_error.clone().map_or(Next::Continue, Next::Goto))
            }
            Err(e) => Err(e),
        }
    }
}
