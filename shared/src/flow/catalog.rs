//! What validation needs to know about the bundle a flow belongs to: the bundle implements
//! [`FlowCatalog`] over its messages, slots and allowed connector operations.

use crate::connectors::catalog::{Op, Returns, Shape};
use crate::connectors::config::ConnectorsConfig;

use super::value::Type;
use super::SlotType;

/// A connector operation as a flow may use it.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// No such operation.
    Unknown,
    /// It exists, but the bundle's `[connectors] operations` does not allow flows to use it.
    NotAllowed,
    Allowed {
        /// The fields a read of one record binds (`call`); `None` for a read of a list or a
        /// write, which only actions and `job = "connector"` use.
        fields: Option<Vec<(String, Type)>>,
        /// Its inputs, and whether each is required.
        inputs: Vec<(String, bool)>,
    },
}

pub trait FlowCatalog {
    /// The variables a message may use; `None` when there is no such message.
    fn message_vars(&self, key: &str) -> Option<Vec<String>>;
    fn slot(&self, name: &str) -> Option<SlotType>;
    fn operation(&self, name: &str) -> Operation;
}

/// The fields a read of `op` binds, as the flows see them: the connector catalogue's shape,
/// with money as one value (`total`) and an order's `summary` ("#1001 (Desk lamp)").
pub fn operation_fields(op: Op) -> Operation {
    Operation::Allowed {
        fields: match op.returns() {
            Returns::One(shape) => Some(shape_fields(shape)),
            Returns::Many(_) | Returns::Nothing => None,
        },
        inputs: op
            .inputs()
            .iter()
            .map(|i| (i.name.to_string(), i.required))
            .collect(),
    }
}

pub fn shape_fields(shape: Shape) -> Vec<(String, Type)> {
    use crate::connectors::catalog::Kind;
    let mut out: Vec<(String, Type)> = Vec::new();
    for f in shape.fields() {
        let ty = match f.kind {
            Kind::Text | Kind::OrderStatus | Kind::Status(_) => Type::Text,
            Kind::Integer | Kind::Minor => Type::Number,
            Kind::Time => Type::Time,
            Kind::Flag => Type::Bool,
            Kind::Items => continue,
        };
        match f.name.split_once('.') {
            // `total.amount_cents` + `total.currency`: one money value.
            Some((money, _)) => {
                if !out.iter().any(|(n, _)| n == money) {
                    out.push((money.to_string(), Type::Money));
                }
            }
            None => out.push((f.name.to_string(), ty)),
        }
    }
    if shape == Shape::Order {
        out.push(("summary".into(), Type::Text));
    }
    out
}

/// What `operation(name)` answers for any operation a loaded connector configuration has, the
/// ones it declares for the company's own systems included: a bundle's catalog calls it for
/// the operations its `bot.toml` allows (`Unknown` when the files have no such operation).
pub fn config_operation(config: &ConnectorsConfig, name: &str) -> Operation {
    match config.find(name) {
        Some(op) => operation_fields(op),
        None => Operation::Unknown,
    }
}
