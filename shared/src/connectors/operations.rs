//! Operations by name, with the flows' values: how a flow's `call` reads a record of a system
//! of the company's own, and how fulfillment sends its writes. The engine underneath is the
//! same as for the built-in operations (timeouts, retries of what is safe, circuit breaker,
//! secrets, auth); only the inputs and the record are translated here, by the operation's
//! declared inputs and fields.

use async_trait::async_trait;
use serde_json::Value as Json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::catalog::{Field, Kind, Op, Returns, IDEMPOTENCY_KEY};
use super::configured::Configured;
use super::engine::{Connectors, Reply};
use super::{ConnectorError, OperationsPort};
use crate::flow::value::{Record, Value};
use crate::money::Money;

impl Connectors {
    /// Reads one record with `name` (`boxes.get_subscription`): its fields as the flows see
    /// them (money as one value, times as times); `None` when the system has none.
    pub async fn call_record(
        &self,
        name: &str,
        inputs: &Record,
    ) -> Result<Option<Record>, ConnectorError> {
        let op = self.named(name)?;
        // Checked before anything is sent: a read by a write's name would make the write.
        if !matches!(op.returns(), Returns::One(_)) {
            return Err(not_a(op, "read of one record"));
        }
        let args = arguments(op, inputs)?;
        match self.call(op, &args).await? {
            Reply::Absent => Ok(None),
            Reply::One(v) => record(op, &v).map(Some),
            other => Err(unexpected(op, &other)),
        }
    }

    /// Reads a list of records with `name`.
    pub async fn call_records(
        &self,
        name: &str,
        inputs: &Record,
    ) -> Result<Vec<Record>, ConnectorError> {
        let op = self.named(name)?;
        if !matches!(op.returns(), Returns::Many(_)) {
            return Err(not_a(op, "read of a list"));
        }
        let args = arguments(op, inputs)?;
        match self.call(op, &args).await? {
            Reply::Many(vs) => vs.iter().map(|v| record(op, v)).collect(),
            other => Err(unexpected(op, &other)),
        }
    }

    /// Sends the write `name` with `idempotency_key` (in place of any such input a caller
    /// gave). A 404 is a refusal here, never "done": the thing to change was not found.
    pub async fn write(
        &self,
        name: &str,
        inputs: &Record,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError> {
        let op = self.named(name)?;
        if !op.inputs().iter().any(|i| i.name == IDEMPOTENCY_KEY) {
            return Err(ConnectorError::Misconfigured {
                system: op.system(),
                detail: format!("{op} is not a write (it sends no `{{{IDEMPOTENCY_KEY}}}`)"),
            });
        }
        let mut args = arguments(op, inputs)?;
        args.retain(|(n, _)| *n != IDEMPOTENCY_KEY);
        args.push((IDEMPOTENCY_KEY, Json::String(idempotency_key.to_string())));
        match self.call(op, &args).await? {
            Reply::Absent => Err(ConnectorError::Rejected {
                system: op.system(),
                status: 404,
                detail: format!("{op}: not found"),
            }),
            Reply::Done | Reply::One(_) | Reply::Many(_) => Ok(()),
        }
    }

    fn named(&self, name: &str) -> Result<Op, ConnectorError> {
        self.find(name)
            .ok_or_else(|| ConnectorError::Misconfigured {
                system: "connectors",
                detail: format!("{name} is not configured"),
            })
    }
}

fn not_a(op: Op, what: &str) -> ConnectorError {
    ConnectorError::Misconfigured {
        system: op.system(),
        detail: format!("{op} is not a {what}"),
    }
}

fn unexpected<T>(op: Op, reply: &Reply<T>) -> ConnectorError {
    ConnectorError::Malformed {
        system: op.system(),
        detail: format!("{op}: unexpected reply ({})", reply.kind()),
    }
}

/// The inputs of one call, named as the operation declares them. An input it does not take is
/// refused rather than dropped: the flow meant something by it.
fn arguments(op: Op, inputs: &Record) -> Result<Vec<(&'static str, Json)>, ConnectorError> {
    inputs
        .iter()
        .map(|(name, value)| {
            let input = op.inputs().iter().find(|i| i.name == name).ok_or_else(|| {
                ConnectorError::Misconfigured {
                    system: op.system(),
                    detail: format!("{op} takes no input `{name}`"),
                }
            })?;
            Ok((input.name, json(value)))
        })
        .collect()
}

/// A flow value as a request template fills it in: money as its amount in major units
/// ("45.99", what most APIs take; an API that wants cents gets a number input instead).
fn json(v: &Value) -> Json {
    match v {
        Value::Text(s) => Json::String(s.clone()),
        Value::Number(n) => Json::from(*n),
        Value::Bool(b) => Json::Bool(*b),
        Value::Money(m) => Json::String(m.major_units()),
        Value::Date(d) => Json::String(d.to_string()),
        Value::Time(t) => Json::String(t.format(&Rfc3339).unwrap_or_default()),
    }
}

/// A mapped record (our shape, as JSON) as the flows' fields: `price.amount_cents` and
/// `price.currency` are one money value `price`; a list of items is left out (flows do not
/// read lists). Conversation-test fixtures are written in this shape too.
pub fn record(op: Op, v: &Json) -> Result<Record, ConnectorError> {
    let fields: &[Field] = match op.returns() {
        Returns::One(shape) | Returns::Many(shape) => shape.fields(),
        Returns::Nothing => &[],
    };
    let malformed = |name: &str, what: &str| ConnectorError::Malformed {
        system: op.system(),
        detail: format!("{op}: `{name}` is not {what}"),
    };
    let mut out = Record::new();
    for f in fields {
        if let Some((money, part)) = f.name.split_once('.') {
            if part != "amount_cents" {
                continue; // the currency goes with its amount
            }
            let (Some(cents), Some(currency)) = (
                v.pointer(&format!("/{money}/amount_cents")),
                v.pointer(&format!("/{money}/currency")),
            ) else {
                continue;
            };
            let amount_cents = cents
                .as_i64()
                .ok_or_else(|| malformed(f.name, "an amount"))?;
            let currency = currency
                .as_str()
                .ok_or_else(|| malformed(f.name, "a currency"))?;
            out.insert(
                money.to_string(),
                Value::Money(Money {
                    amount_cents,
                    currency: currency.to_string(),
                }),
            );
            continue;
        }
        let Some(x) = v.get(f.name).filter(|x| !x.is_null()) else {
            continue;
        };
        let value = match f.kind {
            Kind::Text | Kind::OrderStatus | Kind::Status(_) => Value::Text(
                x.as_str()
                    .ok_or_else(|| malformed(f.name, "text"))?
                    .to_string(),
            ),
            Kind::Integer | Kind::Minor => {
                Value::Number(x.as_i64().ok_or_else(|| malformed(f.name, "a number"))?)
            }
            Kind::Time => Value::Time(
                x.as_str()
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
                    .ok_or_else(|| malformed(f.name, "a time"))?,
            ),
            Kind::Flag => Value::Bool(x.as_bool().ok_or_else(|| malformed(f.name, "a flag"))?),
            Kind::Items => continue,
        };
        out.insert(f.name.to_string(), value);
    }
    Ok(out)
}

#[async_trait]
impl OperationsPort for Configured {
    async fn read(
        &self,
        operation: &str,
        inputs: &Record,
    ) -> Result<Option<Record>, ConnectorError> {
        self.0.call_record(operation, inputs).await
    }

    async fn write(
        &self,
        operation: &str,
        inputs: &Record,
        idempotency_key: &str,
    ) -> Result<(), ConnectorError> {
        self.0.write(operation, inputs, idempotency_key).await
    }
}
