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
        /// The fields the system may leave empty: a flow uses one only where a branch has
        /// checked it (`if = "o.carrier"`), else a customer would read "{carrier}".
        optional: Vec<String>,
        /// The fields whose value is one of a few words (a status), with those words: a
        /// condition comparing one with any other word could never hold.
        words: Vec<(String, Vec<String>)>,
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
    let one = match op.returns() {
        Returns::One(shape) => Some(shape),
        Returns::Many(_) | Returns::Nothing => None,
    };
    let (optional, words) = one.map(shape_facts).unwrap_or_default();
    Operation::Allowed {
        fields: one.map(shape_fields),
        optional,
        words,
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
        out.push(("items".into(), Type::Text));
    }
    out
}

/// What [`shape_fields`] cannot say by type: which fields may be absent (money by its amount),
/// and the words a status field can be (`unknown` too: what any other value reads as).
pub fn shape_facts(shape: Shape) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    use crate::connectors::catalog::Kind;
    use crate::connectors::OrderStatus;
    let mut optional = Vec::new();
    let mut words = Vec::new();
    for f in shape.fields() {
        let name = match f.name.split_once('.') {
            Some((money, "amount_cents")) => money,
            Some(_) => continue,
            None => f.name,
        };
        if matches!(f.kind, Kind::Items) {
            continue;
        }
        if !f.required {
            optional.push(name.to_string());
        }
        let known: &[&str] = match f.kind {
            Kind::OrderStatus => &OrderStatus::KNOWN,
            Kind::Status(known) => known,
            _ => continue,
        };
        let known = known.iter().chain(&["unknown"]).map(|w| w.to_string());
        words.push((name.to_string(), known.collect()));
    }
    (optional, words)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::config;
    use crate::flow::actions::Actions;

    const CONNECTORS: &str = include_str!("../../../examples/bots/subscriptions/connectors.toml");
    const PAUSE_BOX: &str =
        include_str!("../../../examples/bots/subscriptions/flows/pause_box.toml");

    /// The subscription bot as far as its flow needs it: its messages, and every operation of
    /// its connector file (the system off: no URL is needed to check a flow).
    struct Subscriptions(ConnectorsConfig);

    impl FlowCatalog for Subscriptions {
        fn message_vars(&self, key: &str) -> Option<Vec<String>> {
            let vars: &[&str] = match key {
                "pause.offer" => &["plan", "date", "price"],
                "pause.done" => &["date"],
                "pause.already_paused" => &["plan"],
                "pause.declined"
                | "pause.cancelled"
                | "pause.no_subscription"
                | "pause.unreachable" => &[],
                _ => return None,
            };
            Some(vars.iter().map(|v| v.to_string()).collect())
        }
        fn slot(&self, _: &str) -> Option<super::SlotType> {
            None
        }
        fn operation(&self, name: &str) -> Operation {
            config_operation(&self.0, name)
        }
    }

    fn catalog() -> Subscriptions {
        Subscriptions(config::parse("connectors.toml", CONNECTORS, &|_| None).unwrap())
    }

    #[test]
    fn a_declared_read_binds_its_fields_by_kind_and_a_write_binds_none() {
        let c = catalog();
        let Operation::Allowed {
            fields,
            optional,
            words,
            inputs,
        } = c.operation("boxes.get_subscription")
        else {
            panic!()
        };
        let mut fields = fields.unwrap();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            fields,
            [
                ("boxes_skipped", Type::Number),
                ("gift", Type::Bool),
                ("id", Type::Text),
                ("next_box", Type::Time),
                ("plan", Type::Text),
                ("price", Type::Money),
                ("status", Type::Text),
            ]
            .map(|(n, t)| (n.to_string(), t))
        );
        assert_eq!(inputs, [("customer_id".to_string(), true)]);
        // What the file does not mark `required` may be absent; a status is one of its
        // map's words, or unknown.
        let mut optional = optional;
        optional.sort();
        assert_eq!(optional, ["boxes_skipped", "gift", "next_box"]);
        assert_eq!(
            words,
            [(
                "status".to_string(),
                ["active", "cancelled", "paused", "unknown"]
                    .map(String::from)
                    .to_vec()
            )]
        );
        let Operation::Allowed { fields, inputs, .. } = c.operation("boxes.pause_box") else {
            panic!()
        };
        assert_eq!(fields, None, "a write is a job's, not a call's");
        assert!(inputs.contains(&("idempotency_key".to_string(), true)));
        assert_eq!(c.operation("boxes.skip"), Operation::Unknown);
        assert!(matches!(
            c.operation("orders.get_status"),
            Operation::Allowed { .. }
        ));
    }

    #[test]
    fn the_sample_flow_reads_branches_confirms_and_starts_the_write() {
        let flow = crate::flow::load(
            "pause_box",
            "flows/pause_box.toml",
            PAUSE_BOX,
            &catalog(),
            &Actions::builtin(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flow.name, "pause_box");
    }

    #[test]
    fn a_flow_that_misuses_a_declared_operation_is_refused() {
        let text = PAUSE_BOX
            .replace(
                "{ customer_id = \"{customer_id}\" }",
                "{ customer = \"{customer_id}\" }",
            )
            .replace("sub.status == 'paused'", "sub.status > 3")
            .replace(
                "operation = \"boxes.pause_box\"",
                "operation = \"boxes.pause\"",
            );
        let e = crate::flow::load(
            "pause_box",
            "flows/pause_box.toml",
            &text,
            &catalog(),
            &Actions::builtin(),
        )
        .unwrap_err()
        .to_string();
        for needle in [
            "customer",
            "needs input `customer_id`",
            "boxes.pause",
            "no such operation",
        ] {
            assert!(e.contains(needle), "{e}\nshould say {needle}");
        }
        assert!(e.lines().count() >= 4, "{e}");
    }

    #[test]
    fn an_unknown_call_is_one_error_not_one_per_field_it_would_have_bound() {
        let text = PAUSE_BOX.replace(
            "call = \"boxes.get_subscription\"",
            "call = \"boxes.get_subscriptoin\"",
        );
        let e = crate::flow::load(
            "pause_box",
            "flows/pause_box.toml",
            &text,
            &catalog(),
            &Actions::builtin(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "flows/pause_box.toml:9: boxes.get_subscriptoin: no such operation (not built in, and no connector file declares it)"
        );
    }
}
