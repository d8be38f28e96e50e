//! Flows as data: what the bot does for an intent, written as steps in
//! `config/bot/flows/<name>.toml` (docs/flows.md) instead of Rust.
//!
//! - `parse` reads a file into a [`Flow`]: steps (one file per kind under `steps/`), their
//!   targets, and conditions (`condition`) and templates (`template`) parsed at load; every
//!   problem of a file is collected with its line.
//! - `validate` checks a flow against the bundle through [`catalog::FlowCatalog`] (messages and
//!   their variables, slots, operations) and the action registry (`actions/`, one file per
//!   action): targets, reachability, loops that never wait for the customer, condition types.
//! - `engine` runs a flow from a persisted [`engine::FlowState`] until it needs the customer
//!   or ends, producing [`engine::Effect`]s. It reads the company's systems only through the
//!   [`engine::FlowHost`] port and writes nothing: writes leave as jobs. No AWS, no HTTP, no
//!   message texts here: the caller renders keys and runs jobs.

pub mod actions;
pub mod catalog;
pub mod condition;
pub mod engine;
pub mod fill;
pub mod parse;
pub mod records;
pub mod steps;
pub mod template;
pub mod validate;
pub mod value;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use steps::StepKind;

/// One flow file, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// The file's stem: what intents name in `flow = "..."`.
    pub name: String,
    /// The file as errors name it.
    pub file: String,
    pub description: String,
    /// Only a customer known to the company may run it (`needs_account`, true unless the file
    /// says false): a messaging channel's user not yet linked to a CRM customer is asked to
    /// verify instead (the engine's `verify.needed`). True by default so that a new flow that
    /// reads a customer's data is never offered to a stranger by an oversight; `validate`
    /// refuses a flow that says false and still reads or writes a customer's records.
    pub needs_account: bool,
    /// The bundle slots the flow declares it uses (filled from the first message when it
    /// names them).
    pub slots: Vec<String>,
    /// Values the caller gives when it starts the flow (a proactive offer's link).
    pub inputs: Vec<String>,
    /// Slots taken from what the conversation was last about when the message names none
    /// ("can I get a refund?" right after an order was discussed).
    pub context: Vec<String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub id: Option<String>,
    pub line: usize,
    pub kind: StepKind,
    /// `next = "<id>"`: where the step goes on to, instead of the step below it.
    pub next: Option<Target>,
}

/// Where a step goes: another step's `id`, or `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub to: String,
    pub line: usize,
}

/// The reserved target that ends the flow.
pub const END: &str = "end";

/// The reserved input: the text of the message that started the flow.
pub const MESSAGE: &str = "message";

/// The reserved input: the signed-in customer's id (the token's subject), from the host —
/// never from what the customer typed.
pub const CUSTOMER_ID: &str = "customer_id";

/// Parses and validates one flow file: what the bundle loader calls for `flows/<name>.toml`.
/// Validation runs once the file parses (its problems would otherwise be noise about steps
/// that failed to parse).
pub fn load(
    name: &str,
    file: &str,
    text: &str,
    catalog: &dyn catalog::FlowCatalog,
    actions: &actions::Actions,
) -> Result<Flow, crate::bot::error::BundleErrors> {
    let flow = parse::parse(name, file, text)?;
    validate::validate(&flow, catalog, actions)?;
    Ok(flow)
}

impl Flow {
    /// The index of the step a target names; `None` for `end` (and, in a validated flow, only
    /// for `end`).
    pub fn index_of(&self, target: &Target) -> Option<usize> {
        self.steps
            .iter()
            .position(|s| s.id.as_deref() == Some(target.to.as_str()))
    }
}

/// The entity type of a bundle slot: how an answer fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotType {
    Order,
    Product,
    Email,
    Phone,
    Amount,
    Date,
    Text,
}

impl SlotType {
    pub const ALL: [SlotType; 7] = [
        SlotType::Order,
        SlotType::Product,
        SlotType::Email,
        SlotType::Phone,
        SlotType::Amount,
        SlotType::Date,
        SlotType::Text,
    ];

    /// As bot.toml writes it (`type = "order"`).
    pub fn name(self) -> &'static str {
        match self {
            SlotType::Order => "order",
            SlotType::Product => "product",
            SlotType::Email => "email",
            SlotType::Phone => "phone",
            SlotType::Amount => "amount",
            SlotType::Date => "date",
            SlotType::Text => "text",
        }
    }

    pub fn value_type(self) -> value::Type {
        match self {
            SlotType::Amount => value::Type::Money,
            SlotType::Date => value::Type::Date,
            _ => value::Type::Text,
        }
    }
}

/// A bundle slot as the engine needs it (`[slots.NAME]` of bot.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct SlotDef {
    pub kind: SlotType,
    pub prompt: String,
    pub reprompt: String,
    /// Failed answers before the bot offers a person.
    pub attempts: u32,
}
