//! A mapped record in our shape, before it is a typed struct: the fields a response mapping
//! picked out, borrowing their text from the answer where they can. The ports read it straight
//! into `Order`, `Customer` and the rest through serde, so a mapped call allocates for the
//! strings the typed record keeps and little else (no `serde_json::Value` tree of the whole
//! answer, no second one for our shape).

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;

/// Why a record did not read as the type asked for. It reaches warn lines (a connector's answer
/// "malformed"), and the values are the company's customers' names, emails and orders: unlike
/// serde's own error (`invalid type: string "alice@example.com"`), it names the kind of value
/// found, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The kind of a value serde reports as unexpected, without the value.
fn kind_of(found: de::Unexpected<'_>) -> &'static str {
    use de::Unexpected as U;
    match found {
        U::Bool(_) => "a boolean",
        U::Unsigned(_) | U::Signed(_) => "an integer",
        U::Float(_) => "a number",
        U::Char(_) => "a character",
        U::Str(_) => "a string",
        U::Bytes(_) => "bytes",
        U::Unit => "null",
        U::Option => "an optional value",
        U::NewtypeStruct => "a newtype struct",
        U::Seq => "a list",
        U::Map => "a map",
        U::Enum => "an enum",
        U::UnitVariant | U::NewtypeVariant | U::TupleVariant | U::StructVariant => "a variant",
        U::Other(_) => "another kind of value",
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }

    fn invalid_type(found: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Error(format!(
            "invalid type: {}, expected {expected}",
            kind_of(found)
        ))
    }

    fn invalid_value(found: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Error(format!(
            "invalid value: {}, expected {expected}",
            kind_of(found)
        ))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Error(format!("unknown variant, expected one of {expected:?}"))
    }
}

#[derive(Clone, PartialEq)]
pub enum Record<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Text(Cow<'a, str>),
    List(Vec<Record<'a>>),
    /// Our field names, in mapping order; a dotted target (`total.amount_cents`) nests.
    Fields(Vec<(&'static str, Record<'a>)>),
}

impl fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::Null => f.write_str("null"),
            Record::Bool(b) => write!(f, "{b}"),
            Record::Int(i) => write!(f, "{i}"),
            Record::Text(t) => write!(f, "{t:?}"),
            Record::List(items) => f.debug_list().entries(items).finish(),
            Record::Fields(fields) => f
                .debug_map()
                .entries(fields.iter().map(|(k, v)| (k, v)))
                .finish(),
        }
    }
}

impl<'a> Record<'a> {
    /// The same value borrowing this one's text: how a constant from the connector file (kept
    /// as `Record<'static>`) goes into a record without copying it.
    pub fn reborrow(&self) -> Record<'_> {
        match self {
            Record::Null => Record::Null,
            Record::Bool(b) => Record::Bool(*b),
            Record::Int(i) => Record::Int(*i),
            Record::Text(t) => Record::Text(Cow::Borrowed(t.as_ref())),
            Record::List(items) => Record::List(items.iter().map(Record::reborrow).collect()),
            Record::Fields(fields) => {
                Record::Fields(fields.iter().map(|(k, v)| (*k, v.reborrow())).collect())
            }
        }
    }

    pub fn into_owned(self) -> Record<'static> {
        match self {
            Record::Null => Record::Null,
            Record::Bool(b) => Record::Bool(b),
            Record::Int(i) => Record::Int(i),
            Record::Text(t) => Record::Text(Cow::Owned(t.into_owned())),
            Record::List(items) => {
                Record::List(items.into_iter().map(Record::into_owned).collect())
            }
            Record::Fields(fields) => Record::Fields(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, v.into_owned()))
                    .collect(),
            ),
        }
    }

    /// Sets `name` (dotted for a nested field) in a `Fields` record.
    pub fn insert(&mut self, name: &'static str, value: Record<'a>) {
        let Record::Fields(fields) = self else {
            return;
        };
        match name.split_once('.') {
            None => match fields.iter_mut().find(|(k, _)| *k == name) {
                Some((_, v)) => *v = value,
                None => fields.push((name, value)),
            },
            Some((head, rest)) => {
                let inner = match fields.iter().position(|(k, _)| *k == head) {
                    Some(i) => &mut fields[i].1,
                    None => {
                        fields.push((head, Record::Fields(Vec::new())));
                        &mut fields.last_mut().expect("just pushed").1
                    }
                };
                inner.insert(rest, value);
            }
        }
    }

    /// Reads the record as `T` (the ports' typed records, or a `serde_json::Value`).
    pub fn read<T: de::DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(self)
    }
}

impl<'de> IntoDeserializer<'de, Error> for &'de Record<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for &'de Record<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Record::Null => visitor.visit_unit(),
            Record::Bool(b) => visitor.visit_bool(*b),
            Record::Int(i) => visitor.visit_i64(*i),
            Record::Text(t) => visitor.visit_borrowed_str(t.as_ref()),
            Record::List(items) => {
                let mut seq = SeqDeserializer::new(items.iter());
                let v = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(v)
            }
            Record::Fields(fields) => {
                let mut map = MapDeserializer::new(fields.iter().map(|(k, v)| (*k, v)));
                let v = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(v)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self {
            Record::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self {
            // Our enums (order statuses) are unit variants written as their names.
            Record::Text(t) => {
                visitor.visit_enum(de::value::BorrowedStrDeserializer::<Error>::new(t.as_ref()))
            }
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a variant name",
            )),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl Record<'_> {
    fn unexpected(&self) -> de::Unexpected<'_> {
        match self {
            Record::Null => de::Unexpected::Unit,
            Record::Bool(b) => de::Unexpected::Bool(*b),
            Record::Int(i) => de::Unexpected::Signed(*i),
            Record::Text(t) => de::Unexpected::Str(t),
            Record::List(_) => de::Unexpected::Seq,
            Record::Fields(_) => de::Unexpected::Map,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::{Order, OrderStatus};
    use serde_json::json;

    fn text(s: &str) -> Record<'_> {
        Record::Text(Cow::Borrowed(s))
    }

    #[test]
    fn a_record_that_does_not_read_names_no_value() {
        // A customer's email where an integer belongs, and a name where a time does.
        let mut r = Record::Fields(Vec::new());
        r.insert("id", text("1001"));
        r.insert("customer_id", text("cust_alice"));
        r.insert("status", text("shipped"));
        r.insert("placed_at", text("Alice Liddell"));
        r.insert("total.amount_cents", text("alice@example.com"));
        r.insert("total.currency", text("USD"));
        let e = r.read::<Order>().unwrap_err().to_string();
        assert!(!e.contains("Alice") && !e.contains("alice@"), "{e}");
        let mut r = Record::Fields(Vec::new());
        r.insert("quantity", text("alice@example.com"));
        r.insert("name", text("Alice's secret gift"));
        let e = r
            .read::<crate::connectors::OrderItem>()
            .unwrap_err()
            .to_string();
        assert_eq!(e, "invalid type: a string, expected u32");
    }

    #[test]
    fn reads_as_the_typed_record_and_as_json() {
        let mut r = Record::Fields(Vec::new());
        r.insert("id", text("1001"));
        r.insert("customer_id", text("cust_alice"));
        r.insert("status", text("out_for_delivery"));
        r.insert("placed_at", text("2026-11-20T10:00:00Z"));
        r.insert("delivered_at", Record::Null);
        r.insert("total.amount_cents", Record::Int(4599));
        r.insert("total.currency", text("USD"));
        r.insert(
            "items",
            Record::List(vec![Record::Fields(vec![
                ("name", text("Mouse")),
                ("quantity", Record::Int(2)),
            ])]),
        );
        let order: Order = r.read().unwrap();
        assert_eq!(order.id, "1001");
        assert_eq!(order.status, OrderStatus::OutForDelivery);
        assert_eq!(order.total.amount_cents, 4599);
        assert_eq!(order.delivered_at, None);
        assert_eq!(order.items[0].quantity, 2);
        let v: serde_json::Value = r.read().unwrap();
        assert_eq!(v["total"], json!({"amount_cents": 4599, "currency": "USD"}));
        assert_eq!(v["delivered_at"], serde_json::Value::Null);
        // A status we do not know is `Unknown`, as from JSON.
        r.insert("status", text("lost_at_sea"));
        assert_eq!(r.read::<Order>().unwrap().status, OrderStatus::Unknown);
    }

    #[test]
    fn a_wrong_type_is_an_error_not_a_panic() {
        let mut r = Record::Fields(Vec::new());
        r.insert("id", Record::Int(7));
        r.insert("status", Record::Int(3));
        let e = r.read::<Order>().unwrap_err().to_string();
        assert!(e.contains("invalid type"), "{e}");
    }
}
