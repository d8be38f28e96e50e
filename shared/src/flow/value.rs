//! The values a flow holds (slots, the fields a call binds, literals in conditions) and their
//! types, which validation checks conditions and messages against before any customer talks.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bot::format::Format;
use crate::money::Money;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "v", rename_all = "snake_case")]
pub enum Value {
    Text(String),
    Number(i64),
    /// A literal like `45.99` has no currency (empty): it compares with any money by amount.
    Money(Money),
    Date(time::Date),
    Time(#[serde(with = "time::serde::rfc3339")] OffsetDateTime),
    Bool(bool),
}

/// What a value is, as far as validation can know it before running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Text,
    Number,
    Money,
    Date,
    Time,
    Bool,
}

/// What a connector read or an action gives back: field name -> value; absent fields are
/// optional fields the system did not fill.
pub type Record = BTreeMap<String, Value>;

impl Value {
    pub fn type_of(&self) -> Type {
        match self {
            Value::Text(_) => Type::Text,
            Value::Number(_) => Type::Number,
            Value::Money(_) => Type::Money,
            Value::Date(_) => Type::Date,
            Value::Time(_) => Type::Time,
            Value::Bool(_) => Type::Bool,
        }
    }

    pub fn text(s: impl Into<String>) -> Self {
        Value::Text(s.into())
    }

    /// The value as a system reads it: dates ISO 8601, times RFC 3339, money in major units
    /// with its currency code.
    pub fn exact(&self) -> String {
        match self {
            Value::Date(d) => d.to_string(),
            Value::Time(t) => t
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string()),
            Value::Money(m) if m.currency.is_empty() => m.major_units(),
            Value::Money(m) => format!("{} {}", m.major_units(), m.currency),
            other => other.to_string(),
        }
    }

    /// The value as a customer reads it in a language: money, dates and times (by their day)
    /// as its `[format]` writes them; the rest as `Display` does.
    pub fn written(&self, format: &Format) -> String {
        match self {
            Value::Money(m) => format.money(m),
            Value::Date(d) => format.date(*d),
            Value::Time(t) => format.date(t.date()),
            Value::Bool(b) => format.truth(*b).to_string(),
            other => other.to_string(),
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl Type {
    /// Dates and times order against each other (a time by its day), money against money.
    pub fn comparable(self, other: Type) -> bool {
        self == other
            || matches!(
                (self, other),
                (Type::Date, Type::Time) | (Type::Time, Type::Date)
            )
    }

    pub fn ordered(self) -> bool {
        matches!(self, Type::Number | Type::Money | Type::Date | Type::Time)
    }

    pub fn name(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Number => "number",
            Type::Money => "money",
            Type::Date => "date",
            Type::Time => "time",
            Type::Bool => "true/false",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Number(n) => write!(f, "{n}"),
            Value::Money(m) if m.currency.is_empty() => f.write_str(&m.major_units()),
            Value::Money(m) => write!(f, "{m}"),
            Value::Date(d) => write!(f, "{} {}", d.month(), d.day()),
            Value::Time(t) => write!(f, "{} {}", t.month(), t.day()),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Orders two values, `None` when they do not compare (other types, other currencies).
pub fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
        (Value::Number(a), Value::Number(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Money(a), Value::Money(b)) => {
            let same = a.currency.is_empty()
                || b.currency.is_empty()
                || a.currency.eq_ignore_ascii_case(&b.currency);
            same.then(|| a.amount_cents.cmp(&b.amount_cents))
        }
        (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
        (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
        (Value::Time(a), Value::Date(b)) => Some(a.date().cmp(b)),
        (Value::Date(a), Value::Time(b)) => Some(a.cmp(&b.date())),
        _ => None,
    }
}
