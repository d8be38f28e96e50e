//! The bundle's flows: parsed and validated against the bundle itself (its messages in every
//! language, its slots, the connector operations bot.toml allows, the built-in actions), and
//! the engine that runs them with the intents' routes.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::bundle::{Files, Slot};
use super::error::BundleErrors;
use super::intents::{Action, IntentDef};
use super::messages::Messages;
use crate::connectors::config::{find_op, DeclaredOps};
use crate::flow::actions::Actions;
use crate::flow::catalog::{operation_fields, FlowCatalog, Operation};
use crate::flow::engine::{Engine, Route};
use crate::flow::{Flow, SlotType};
use crate::nlu::Intent;

/// What a flow may refer to in this bundle.
pub struct BundleCatalog<'a> {
    pub messages: &'a BTreeMap<String, Arc<Messages>>,
    pub slots: &'a BTreeMap<String, Slot>,
    /// What bot.toml's `[connectors] operations` allows.
    pub operations: &'a [String],
    /// The operations connector files declare for the company's own systems.
    pub declared: &'a DeclaredOps,
}

impl FlowCatalog for BundleCatalog<'_> {
    /// A message every language has; its variables are those of all of them, so a flow that
    /// offers what one language uses is checked for the others too.
    fn message_vars(&self, key: &str) -> Option<Vec<String>> {
        let mut vars: Vec<String> = Vec::new();
        for m in self.messages.values() {
            for v in m.vars_of(key)? {
                if !vars.contains(v) {
                    vars.push(v.clone());
                }
            }
        }
        (!self.messages.is_empty()).then_some(vars)
    }

    fn slot(&self, name: &str) -> Option<SlotType> {
        self.slots.get(name).map(|s| s.kind)
    }

    fn operation(&self, name: &str) -> Operation {
        let Some(op) = find_op(name, self.declared) else {
            return Operation::Unknown;
        };
        if !self.operations.iter().any(|o| o == name) {
            return Operation::NotAllowed;
        }
        operation_fields(op)
    }
}

/// Every `flows/<name>.toml` of `files` that is UTF-8 text, parsed (not validated: that needs
/// the bundle's messages), by name: what `load` takes instead of parsing a flow again.
pub(super) fn parse_all(root: &str, files: &Files) -> Parsed {
    files
        .range("flows/".to_string()..)
        .take_while(|(rel, _)| rel.starts_with("flows/"))
        .filter_map(|(rel, bytes)| {
            let name = rel.strip_prefix("flows/")?.strip_suffix(".toml")?;
            let text = std::str::from_utf8(bytes).ok()?;
            let file = format!("{root}/{rel}");
            Some((
                name.to_string(),
                crate::flow::parse::parse(name, &file, text),
            ))
        })
        .collect()
}

/// Flows parsed ahead (`parse_all`), by name.
pub type Parsed = BTreeMap<String, Result<Flow, BundleErrors>>;

/// Validates every parsed flow (`parse_all`'s, or a generated one's); the problems of all of
/// them, a flow's parse errors included, are collected in `errs`, flow by flow in name order.
pub fn load(
    parsed: Parsed,
    catalog: &BundleCatalog<'_>,
    actions: &Actions,
    errs: &mut BundleErrors,
) -> BTreeMap<String, Flow> {
    let mut flows = BTreeMap::new();
    for (name, flow) in parsed {
        let checked = flow.and_then(|flow| {
            crate::flow::validate::validate(&flow, catalog, actions)?;
            Ok(flow)
        });
        match checked {
            Ok(flow) => {
                flows.insert(name, flow);
            }
            Err(e) => errs.0.extend(e.0),
        }
    }
    flows
}

/// The bundle's flow engine: its flows, slots, the intents' routes (for interrupts) and the
/// built-in actions.
pub struct FlowEngine(pub Engine);

impl fmt::Debug for FlowEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowEngine")
    }
}

pub fn engine(
    flows: &BTreeMap<String, Flow>,
    slots: &BTreeMap<String, Slot>,
    intents: &BTreeMap<Intent, IntentDef>,
    actions: Actions,
) -> FlowEngine {
    let slots = slots.clone();
    let routes = intents
        .iter()
        .filter_map(|(intent, def)| {
            let route = match def.action.as_ref()? {
                Action::Flow(flow) => Route::Flow(flow.clone()),
                Action::Answer {
                    needs_order: true, ..
                } => Route::Flow(super::order_answer::flow_name(intent.name())),
                Action::Answer { key, handoff, .. } => Route::Answer {
                    key: key.clone(),
                    handoff: handoff.then(|| intent.name().to_string()),
                },
            };
            Some((intent.name().to_string(), route))
        })
        .collect();
    FlowEngine(Engine::new(flows.values().cloned(), slots, routes, actions))
}
