//! Response mapping: JSON pointers (RFC 6901) into a system's answer, per target field, with
//! value maps, defaults and conversions (decimal amounts to minor units, Unix times to RFC 3339).
//! The result is the record in our own shape, which the ports then read as typed structs.
//!
//! In a connector file, a field's source is a pointer (`"/order/status"`), or a table:
//! `{ pointer = "/p", map = { FULFILLED = "shipped" }, default = "processing", as = "cents",
//! strip_prefix = "#" }` (`default` when nothing is there; a value `map` does not list is kept),
//! `{ value = "USD" }` (a constant), or for `items`: `{ each = "/lineItems/nodes", fields = {…} }`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json_borrow::Value as Json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::catalog::{Field, Kind, ITEM_FIELDS};
use super::record::Record;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    None,
    /// A decimal amount in major units ("45.99" or 45.99) to minor units (4599).
    Cents,
    /// Seconds since the Unix epoch to an RFC 3339 time.
    Unix,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Pointer {
        pointer: Pointer,
        /// Replacements, already in our form (checked against the field's kind at load).
        map: Option<BTreeMap<String, Record<'static>>>,
        default: Option<Record<'static>>,
        convert: Convert,
        /// Taken off the front of a text value: Shopify's order name "#1001" is our "1001".
        strip_prefix: Option<String>,
    },
    Const(Record<'static>),
    Each {
        pointer: Pointer,
        fields: Vec<FieldMap>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldMap {
    pub target: Field,
    pub source: Source,
}

/// How one record is read out of an answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapping {
    /// Where the record (or, for lists, the array of records) is in the answer.
    pub at: Pointer,
    pub fields: Vec<FieldMap>,
}

/// A JSON pointer (RFC 6901), split into its steps when the file is loaded: looking a field up
/// then walks the answer without allocating (serde_json's `Value::pointer` splits and unescapes
/// the text on every call, which was most of a mapping's time).
#[derive(Clone, PartialEq, Default)]
pub struct Pointer {
    raw: String,
    steps: Vec<Step>,
}

#[derive(Clone, PartialEq)]
struct Step {
    key: String,
    /// The step as an array index, where it is one.
    index: Option<usize>,
}

impl std::fmt::Debug for Pointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.raw)
    }
}

impl Pointer {
    pub fn parse(p: &str) -> Result<Self, String> {
        valid_pointer(p)?;
        Ok(Pointer {
            raw: p.to_string(),
            steps: p
                .split('/')
                .skip(1)
                .map(|s| {
                    let key = s.replace("~1", "/").replace("~0", "~");
                    // RFC 6901: an index is digits without a leading zero.
                    let index = (key == "0" || !key.starts_with('0'))
                        .then(|| key.parse().ok())
                        .flatten();
                    Step { key, index }
                })
                .collect(),
        })
    }

    pub fn find<'v, 'a>(&self, mut v: &'v Json<'a>) -> Option<&'v Json<'a>> {
        for step in &self.steps {
            v = match v {
                Json::Object(m) => m.get(&step.key)?,
                Json::Array(a) => a.get(step.index?)?,
                _ => return None,
            };
        }
        Some(v)
    }
}

fn valid_pointer(p: &str) -> Result<(), String> {
    if p.is_empty() || p.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "{p:?} is not a JSON pointer: it starts with `/` (\"\" is the whole answer)"
        ))
    }
}

impl Mapping {
    /// Parses `[response]`'s `fields` for the target `fields`. Every problem is returned, each
    /// as `(field path, message)`: an operator fixes a mapping in one go, not one field a run.
    pub fn parse(
        at: Option<&str>,
        raw: &BTreeMap<String, toml::Value>,
        targets: &'static [Field],
    ) -> Result<Self, Vec<(String, String)>> {
        let at = Pointer::parse(at.unwrap_or("")).map_err(|m| ("at".to_string(), m));
        match (at, parse_fields(raw, targets, "fields")) {
            (Ok(at), Ok(fields)) => Ok(Mapping { at, fields }),
            (at, fields) => Err(at
                .err()
                .into_iter()
                .chain(fields.err().into_iter().flatten())
                .collect()),
        }
    }

    /// Maps the record at `self.at`; `Ok(None)` when it is absent or `null`.
    pub fn one<'x>(&'x self, answer: &'x Json<'_>) -> Result<Option<Record<'x>>, String> {
        match self.at.find(answer) {
            None | Some(Json::Null) => Ok(None),
            Some(record) => map_record(&self.fields, record).map(Some),
        }
    }

    /// Maps every record of the array at `self.at` (absent or `null`: none; one object: a
    /// list of one, for APIs that look a record up by the very id a search would use).
    pub fn many<'x>(&'x self, answer: &'x Json<'_>) -> Result<Vec<Record<'x>>, String> {
        match self.at.find(answer) {
            None | Some(Json::Null) => Ok(Vec::new()),
            Some(record @ Json::Object(_)) => Ok(vec![map_record(&self.fields, record)?]),
            Some(Json::Array(records)) => records
                .iter()
                .enumerate()
                .map(|(i, r)| map_record(&self.fields, r).map_err(|e| format!("record {i}: {e}")))
                .collect(),
            Some(other) => Err(format!(
                "expected an array at {:?}, found {}",
                self.at,
                type_name(other)
            )),
        }
    }
}

/// Every field's problems, not the first one's only.
fn parse_fields(
    raw: &BTreeMap<String, toml::Value>,
    targets: &'static [Field],
    path: &str,
) -> Result<Vec<FieldMap>, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let known = || {
        targets
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in raw.keys() {
        if !targets.iter().any(|t| t.name == name) {
            problems.push((
                format!("{path}.{name}"),
                format!("not a field of this record (fields: {})", known()),
            ));
        }
    }
    let mut out = Vec::new();
    for target in targets {
        let here = format!("{path}.{}", target.name);
        let source = match raw.get(target.name) {
            None if target.required => Err(vec![(
                here,
                "is required: say where it is in the answer".to_string(),
            )]),
            None => continue,
            Some(v) if target.kind == Kind::Items => parse_each(v, &here),
            Some(v) => parse_source(v, target, &here).map_err(|e| vec![e]),
        };
        match source {
            Ok(source) => out.push(FieldMap {
                target: *target,
                source,
            }),
            Err(mut e) => problems.append(&mut e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Items: `{ each = "/pointer/to/array", fields = { name = "/name" } }`.
fn parse_each(v: &toml::Value, here: &str) -> Result<Source, Vec<(String, String)>> {
    let err = |m: String| vec![(here.to_string(), m)];
    let table = v.as_table().ok_or_else(|| {
        err(
            "items take a table: { each = \"/pointer/to/array\", fields = { name = \"/name\" } }"
                .into(),
        )
    })?;
    for k in table.keys() {
        if k != "each" && k != "fields" {
            return Err(err(format!("unknown key `{k}` (expected each, fields)")));
        }
    }
    let pointer = table
        .get("each")
        .and_then(|p| p.as_str())
        .ok_or_else(|| err("`each` (a JSON pointer to the array) is required".into()))?;
    let pointer = Pointer::parse(pointer).map_err(err)?;
    let fields: BTreeMap<String, toml::Value> = match table.get("fields") {
        Some(toml::Value::Table(t)) => t.clone().into_iter().collect(),
        _ => return Err(err("`fields` (a table) is required".into())),
    };
    Ok(Source::Each {
        pointer,
        fields: parse_fields(&fields, ITEM_FIELDS, &format!("{here}.fields"))?,
    })
}

fn parse_source(v: &toml::Value, target: &Field, here: &str) -> Result<Source, (String, String)> {
    let err = |m: String| (here.to_string(), m);
    match v {
        toml::Value::String(p) => {
            Ok(Source::Pointer {
                pointer: Pointer::parse(p).map_err(err)?,
                map: None,
                default: None,
                convert: Convert::None,
                strip_prefix: None,
            })
        }
        toml::Value::Table(t) => {
            for k in t.keys() {
                if !["pointer", "map", "default", "as", "value", "strip_prefix"].contains(&k.as_str()) {
                    return Err(err(format!(
                        "unknown key `{k}` (expected pointer, map, default, as, strip_prefix, or value)"
                    )));
                }
            }
            if let Some(value) = t.get("value") {
                if t.len() > 1 {
                    return Err(err("`value` is a constant: it takes no other keys".into()));
                }
                return Ok(Source::Const(
                    constant(value, target.kind, Convert::None, None)
                        .map_err(|e| err(format!("`value`: {e}")))?,
                ));
            }
            let pointer = t
                .get("pointer")
                .and_then(|p| p.as_str())
                .ok_or_else(|| err("`pointer` (or `value`) is required".into()))?;
            let pointer = Pointer::parse(pointer).map_err(err)?;
            let convert = match t.get("as").map(|a| a.as_str()) {
                None => Convert::None,
                Some(Some("cents")) if target.kind == Kind::Minor => Convert::Cents,
                Some(Some("unix")) if target.kind == Kind::Time => Convert::Unix,
                Some(Some(other)) => {
                    return Err(err(format!(
                        "`as = {other:?}` does not apply here (\"cents\" is for amounts, \"unix\" for times)"
                    )))
                }
                Some(None) => return Err(err("`as` takes a string".into())),
            };
            let strip_prefix = match t.get("strip_prefix") {
                None => None,
                Some(toml::Value::String(p)) if target.kind == Kind::Text && !p.is_empty() => {
                    Some(p.clone())
                }
                Some(_) => {
                    return Err(err(
                        "`strip_prefix` takes a non-empty string, for text fields".into()
                    ))
                }
            };
            let strip = strip_prefix.as_deref();
            let map = match t.get("map") {
                None => None,
                Some(toml::Value::Table(m)) => Some(
                    m.iter()
                        .map(|(k, v)| {
                            constant(v, target.kind, convert, strip)
                                .map(|r| (k.clone(), r))
                                .map_err(|e| err(format!("`map.{k}`: {e}")))
                        })
                        .collect::<Result<BTreeMap<_, _>, _>>()?,
                ),
                Some(_) => return Err(err("`map` takes a table of value = replacement".into())),
            };
            if let (Kind::Status(words), Some(toml::Value::String(d))) = (target.kind, t.get("default")) {
                // Read as it is, an unlisted default would be "unknown": say so at load instead.
                if d != "unknown" && !words.contains(&d.as_str()) {
                    return Err(err(format!(
                        "`default`: {d:?} is not one of this status's words ({}, or unknown)",
                        words.join(", ")
                    )));
                }
            }
            let default = match t.get("default") {
                None => None,
                Some(v) => Some(
                    constant(v, target.kind, convert, strip)
                        .map_err(|e| err(format!("`default`: {e}")))?,
                ),
            };
            if target.kind == Kind::OrderStatus {
                // A replacement is written by the operator, so it must be a status the flows
                // know: `in_trasit` would otherwise read as "unknown" for every order, silently.
                let written = map.iter().flatten().map(|(k, v)| (format!("map.{k}"), v));
                for (key, value) in written.chain(default.iter().map(|v| ("default".to_string(), v))) {
                    if let Record::Text(status) = value {
                        // `unknown` says it deliberately: a status with no word of ours.
                        if status != "unknown"
                            && !crate::connectors::OrderStatus::KNOWN.contains(&status.as_ref())
                        {
                            return Err(err(format!(
                                "`{key}`: {status:?} is not a status the flows know ({}, or unknown: shown as \"being handled\")",
                                crate::connectors::OrderStatus::KNOWN.join(", ")
                            )));
                        }
                    }
                }
            }
            Ok(Source::Pointer {
                pointer,
                map,
                default,
                convert,
                strip_prefix,
            })
        }
        _ => Err(err(
            "expected a JSON pointer string or a table { pointer = …, map = …, default = …, as = … }"
                .into(),
        )),
    }
}

/// A value written in the connector file, checked and put in our form once, at load: a
/// `default = "abc"` for a number fails the load, not a customer's turn.
fn constant(
    v: &toml::Value,
    kind: Kind,
    convert: Convert,
    strip_prefix: Option<&str>,
) -> Result<Record<'static>, String> {
    let json = serde_json::to_value(v).map_err(|e| e.to_string())?;
    let json = Json::from(&json);
    let scalar = Scalar::of(&json).strip(strip_prefix);
    // The connector file's own text, not a customer's: quoted, to point at the mistake.
    normalise(scalar, kind, convert)
        .map(Record::into_owned)
        .map_err(|e| format!("{e} ({scalar})"))
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::Str(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn map_record<'x>(fields: &'x [FieldMap], record: &'x Json<'_>) -> Result<Record<'x>, String> {
    let mut out = Record::Fields(Vec::with_capacity(fields.len()));
    for f in fields {
        let value = match &f.source {
            Source::Const(v) => Some(v.reborrow()),
            Source::Each { pointer, fields } => match pointer.find(record) {
                None | Some(Json::Null) => Some(Record::List(Vec::new())),
                Some(Json::Array(items)) => Some(Record::List(
                    items
                        .iter()
                        .map(|i| map_record(fields, i))
                        .collect::<Result<_, _>>()
                        .map_err(|e| format!("{}: {e}", f.target.name))?,
                )),
                Some(other) => {
                    return Err(format!(
                        "`{}`: expected an array at {pointer:?}, found {}",
                        f.target.name,
                        type_name(other)
                    ))
                }
            },
            Source::Pointer {
                pointer,
                map,
                default,
                convert,
                strip_prefix,
            } => match pointer.find(record).filter(|v| !v.is_null()) {
                Some(v) => match map.as_ref().and_then(|m| m.get(text_key(v).as_ref())) {
                    Some(replacement) => Some(replacement.reborrow()),
                    // Unlisted values pass as they are: a status a system adds later is shown
                    // as unknown rather than mistaken for the default.
                    None => Some(
                        normalise(
                            Scalar::of(v).strip(strip_prefix.as_deref()),
                            f.target.kind,
                            *convert,
                        )
                        .map_err(|e| format!("`{}` at {pointer:?}: {e}", f.target.name))?,
                    ),
                },
                None if f.target.required && default.is_none() => {
                    return Err(format!(
                        "`{}` is missing: nothing at {pointer:?}",
                        f.target.name
                    ))
                }
                None => default.as_ref().map(Record::reborrow),
            },
        };
        if let Some(v) = value {
            out.insert(f.target.name, v);
        }
    }
    Ok(out)
}

fn text_key<'v>(v: &'v Json<'_>) -> Cow<'v, str> {
    match v {
        Json::Str(s) => Cow::Borrowed(s.as_ref()),
        other => Cow::Owned(other.to_string()),
    }
}

/// One value of an answer (or of the connector file), as the conversions see it.
#[derive(Clone, Copy)]
enum Scalar<'v> {
    Text(&'v str),
    Number(serde_json_borrow::Number),
    Bool(bool),
    /// Null, an array or an object: named in errors.
    Other(&'static str),
}

impl<'v> Scalar<'v> {
    fn of(v: &'v Json<'_>) -> Self {
        match v {
            Json::Str(s) => Scalar::Text(s.as_ref()),
            Json::Number(n) => Scalar::Number(*n),
            Json::Bool(b) => Scalar::Bool(*b),
            other => Scalar::Other(type_name(other)),
        }
    }

    fn strip(self, prefix: Option<&str>) -> Self {
        match (self, prefix) {
            (Scalar::Text(t), Some(p)) => Scalar::Text(t.strip_prefix(p).unwrap_or(t)),
            (s, _) => s,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Scalar::Text(_) => "a string",
            Scalar::Number(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Other(t) => t,
        }
    }
}

impl std::fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Text(t) => write!(f, "{t:?}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Other(t) => f.write_str(t),
        }
    }
}

/// What a value that does not convert was, for an error: never the value itself, which is a
/// customer's (a name, an email, an order's contents) and would reach the logs with the error.
fn not_one(v: Scalar<'_>) -> &'static str {
    match v {
        Scalar::Text(_) => "a string that is not one",
        Scalar::Number(_) => "a number that is not one",
        other => other.type_name(),
    }
}

fn normalise(v: Scalar<'_>, kind: Kind, convert: Convert) -> Result<Record<'_>, String> {
    match (kind, convert) {
        (Kind::Minor | Kind::Integer, Convert::Cents) => cents(v).map(Record::Int),
        (Kind::Minor, _) if matches!(v, Scalar::Text(_)) => Err(
            "an amount sent as text: if it is in major units (\"45.99\"), map it with `as = \"cents\"`"
                .into(),
        ),
        (Kind::Minor | Kind::Integer, _) => match v {
            Scalar::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(Record::Int(i)),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    Ok(Record::Int(f as i64))
                }
                _ => Err(format!("expected a whole number, found {}", not_one(v))),
            },
            Scalar::Text(s) => s
                .trim()
                .parse::<i64>()
                .map(Record::Int)
                .map_err(|_| format!("expected a whole number, found {}", not_one(v))),
            other => Err(format!(
                "expected a whole number, found {}",
                other.type_name()
            )),
        },
        (Kind::Time, Convert::Unix) => {
            let secs = match v {
                Scalar::Number(n) => n.as_i64(),
                Scalar::Text(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| format!("expected seconds since the epoch, found {}", not_one(v)))?;
            let t = OffsetDateTime::from_unix_timestamp(secs).map_err(|e| e.to_string())?;
            Ok(Record::Text(Cow::Owned(
                t.format(&Rfc3339).map_err(|e| e.to_string())?,
            )))
        }
        (Kind::Time, _) => match v {
            Scalar::Text(s) if OffsetDateTime::parse(s, &Rfc3339).is_ok() => {
                Ok(Record::Text(Cow::Borrowed(s)))
            }
            other => Err(format!(
                "expected an RFC 3339 time (or `as = \"unix\"`), found {}",
                not_one(other)
            )),
        },
        (Kind::OrderStatus, _) => match v {
            // Our statuses are snake_case; a system's "IN_TRANSIT" or "In Transit" reads the same.
            Scalar::Text(s)
                if s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()) =>
            {
                Ok(Record::Text(Cow::Borrowed(s)))
            }
            Scalar::Text(s) => Ok(Record::Text(Cow::Owned(
                s.trim().to_ascii_lowercase().replace([' ', '-'], "_"),
            ))),
            other => Err(format!(
                "expected a status string, found {}",
                other.type_name()
            )),
        },
        (Kind::Status(words), _) => {
            let word = match v {
                Scalar::Text(s) => s.trim().to_ascii_lowercase().replace([' ', '-'], "_"),
                Scalar::Number(n) => n.to_string(),
                other => {
                    return Err(format!(
                        "expected a status string, found {}",
                        other.type_name()
                    ))
                }
            };
            // A value the file does not list is one the flows cannot mean: "unknown", as an
            // order status a system adds later is.
            Ok(Record::Text(Cow::Borrowed(
                words
                    .iter()
                    .find(|w| **w == word)
                    .copied()
                    .unwrap_or("unknown"),
            )))
        }
        (Kind::Text, _) => match v {
            Scalar::Text(s) => Ok(Record::Text(Cow::Borrowed(s))),
            Scalar::Number(n) => Ok(Record::Text(Cow::Owned(n.to_string()))),
            Scalar::Bool(b) => Ok(Record::Text(Cow::Owned(b.to_string()))),
            other => Err(format!("expected text, found {}", other.type_name())),
        },
        (Kind::Items, _) => Err("items are mapped with `each`".into()),
        (Kind::Flag, _) => match v {
            Scalar::Bool(b) => Ok(Record::Bool(b)),
            Scalar::Text(s) if s.trim().eq_ignore_ascii_case("true") => Ok(Record::Bool(true)),
            Scalar::Text(s) if s.trim().eq_ignore_ascii_case("false") => Ok(Record::Bool(false)),
            other => Err(format!(
                "expected true or false, found {}",
                other.type_name()
            )),
        },
    }
}

/// "45.99", "45.9", "45" or 45.99 → 4599, exactly (no float rounding of the text).
fn cents(v: Scalar<'_>) -> Result<i64, String> {
    let number;
    let text = match v {
        Scalar::Text(s) => s.trim(),
        Scalar::Number(n) => {
            number = n.to_string();
            number.as_str()
        }
        other => return Err(format!("expected an amount, found {}", other.type_name())),
    };
    let bad = || {
        format!(
            "expected a decimal amount like \"45.99\", found {}",
            not_one(v)
        )
    };
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.trim_end_matches('0').len() > 2
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac_cents: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
        _ => frac[..2].parse().map_err(|_| bad())?,
    };
    let c = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac_cents))
        .ok_or_else(bad)?;
    Ok(if neg { -c } else { c })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::catalog::Shape;
    use serde_json::{json, Value};

    fn one(m: &Mapping, answer: &Value) -> Result<Option<Value>, String> {
        m.one(&Json::from(answer))
            .map(|r| r.map(|r| r.read().expect("a mapped record reads as JSON")))
    }

    fn many(m: &Mapping, answer: &Value) -> Result<Vec<Value>, String> {
        m.many(&Json::from(answer)).map(|rs| {
            rs.iter()
                .map(|r| r.read().expect("a mapped record reads as JSON"))
                .collect()
        })
    }

    fn scalar(v: &Value) -> Scalar<'_> {
        match v {
            Value::String(s) => Scalar::Text(s),
            Value::Number(n) if n.is_i64() => Scalar::Number(n.as_i64().expect("checked").into()),
            Value::Number(n) => Scalar::Number(n.as_f64().expect("finite").into()),
            Value::Bool(b) => Scalar::Bool(*b),
            _ => Scalar::Other("other"),
        }
    }

    /// The mapping, or its first problem.
    fn mapping(at: &str, toml_fields: &str, shape: Shape) -> Result<Mapping, (String, String)> {
        every_problem(at, toml_fields, shape).map_err(|mut all| all.remove(0))
    }

    fn every_problem(
        at: &str,
        toml_fields: &str,
        shape: Shape,
    ) -> Result<Mapping, Vec<(String, String)>> {
        let raw: BTreeMap<String, toml::Value> = toml::from_str(toml_fields).unwrap();
        Mapping::parse(Some(at), &raw, shape.fields())
    }

    const SHOPIFY_ORDER: &str = r##"
        id = { pointer = "/name", strip_prefix = "#" }
        customer_id = "/customer/id"
        status = { pointer = "/displayFulfillmentStatus", map = { FULFILLED = "shipped", UNFULFILLED = "processing" }, default = "processing" }
        placed_at = "/createdAt"
        tracking_url = "/fulfillments/0/trackingInfo/0/url"
        "total.amount_cents" = { pointer = "/totalPriceSet/shopMoney/amount", as = "cents" }
        "total.currency" = "/totalPriceSet/shopMoney/currencyCode"
        items = { each = "/lineItems/nodes", fields = { name = "/name", quantity = "/quantity" } }
    "##;

    #[test]
    fn maps_a_differently_shaped_record_into_ours() {
        let m = mapping("/data/order", SHOPIFY_ORDER, Shape::Order).unwrap();
        let answer = json!({"data": {"order": {
            "name": "#1001", "customer": {"id": "gid://shopify/Customer/7"},
            "displayFulfillmentStatus": "FULFILLED", "createdAt": "2026-11-20T10:00:00Z",
            "fulfillments": [],
            "totalPriceSet": {"shopMoney": {"amount": "45.9", "currencyCode": "USD"}},
            "lineItems": {"nodes": [{"name": "Mouse", "quantity": 2}]}
        }}});
        let order: crate::connectors::Order =
            serde_json::from_value(one(&m, &answer).unwrap().unwrap()).unwrap();
        assert_eq!(order.id, "1001");
        assert_eq!(order.status, crate::connectors::OrderStatus::Shipped);
        assert_eq!(order.total.amount_cents, 4590);
        assert_eq!(order.items[0].quantity, 2);
        assert_eq!(order.tracking_url, None);
        assert_eq!(one(&m, &json!({"data": {"order": null}})).unwrap(), None);
        let mut later = answer.clone();
        later["data"]["order"]["displayFulfillmentStatus"] = json!("SOME_NEW_STATE");
        let later: crate::connectors::Order =
            serde_json::from_value(one(&m, &later).unwrap().unwrap()).unwrap();
        assert_eq!(
            later.status,
            crate::connectors::OrderStatus::Unknown,
            "unlisted is kept, not defaulted"
        );
    }

    #[test]
    fn a_verified_flag_reads_booleans_and_their_text_and_defaults_to_unverified() {
        let m = mapping(
            "",
            "id = \"/id\"\nemail = \"/email\"\nemail_verified = \"/verified\"",
            Shape::Customer,
        )
        .unwrap();
        let read = |v: Value| -> crate::connectors::Customer {
            serde_json::from_value(one(&m, &v).unwrap().unwrap()).unwrap()
        };
        assert!(read(json!({"id": "c", "verified": true})).email_verified);
        assert!(read(json!({"id": "c", "verified": " TRUE "})).email_verified);
        assert!(!read(json!({"id": "c", "verified": "false"})).email_verified);
        assert!(
            !read(json!({"id": "c"})).email_verified,
            "absent is not verified"
        );
        let e = one(&m, &json!({"id": "c", "verified": 1})).unwrap_err();
        assert!(e.contains("true or false"), "{e}");
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let m = mapping("", SHOPIFY_ORDER, Shape::Order).unwrap();
        let e = one(&m, &json!({"name": "#1"})).unwrap_err();
        assert!(
            e.contains("`customer_id` is missing") && e.contains("/customer/id"),
            "{e}"
        );
        let e = one(
            &m,
            &json!({"name": "#1", "customer": {"id": 1}, "createdAt": "yesterday"}),
        )
        .unwrap_err();
        assert!(e.contains("placed_at") && e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn an_answer_that_does_not_map_is_reported_by_field_and_type_only() {
        let m = mapping("", SHOPIFY_ORDER, Shape::Order).unwrap();
        let base = json!({"name": "#1", "customer": {"id": "c1"}, "createdAt": "2026-11-20T10:00:00Z",
            "totalPriceSet": {"shopMoney": {"amount": "45.9", "currencyCode": "USD"}},
            "lineItems": {"nodes": []}});
        let secret = "Alice Liddell, alice@example.com";
        for (pointer, value) in [
            ("/createdAt", json!(secret)),
            ("/totalPriceSet/shopMoney/amount", json!(secret)),
            ("/totalPriceSet/shopMoney/amount", json!(12.345)),
            (
                "/lineItems/nodes",
                json!([{"name": "x", "quantity": secret}]),
            ),
            ("/lineItems/nodes", json!([{"name": "x", "quantity": 2.5}])),
        ] {
            let mut answer = base.clone();
            *answer.pointer_mut(pointer).unwrap() = value.clone();
            let e = one(&m, &answer).unwrap_err();
            assert!(
                !e.contains("Alice")
                    && !e.contains("alice@")
                    && !e.contains("12.345")
                    && !e.contains("2.5"),
                "{pointer}: {e}"
            );
            assert!(
                e.contains("found a") || e.contains("found an"),
                "{pointer}: {e}"
            );
        }
        let secs = json!("Alice");
        let e = normalise(scalar(&secs), Kind::Time, Convert::Unix).unwrap_err();
        assert_eq!(
            e,
            "expected seconds since the epoch, found a string that is not one"
        );
    }

    #[test]
    fn config_errors_name_the_field() {
        let (f, e) = mapping("", "id = \"/id\"\ncolour = \"/c\"", Shape::Customer).unwrap_err();
        assert_eq!(f, "fields.colour");
        assert!(e.contains("fields: id, email, name"), "{e}");
        let (f, _) = mapping("", "email = \"/e\"", Shape::Customer).unwrap_err();
        assert_eq!(f, "fields.id");
        let (f, e) = mapping("", "id = \"id\"", Shape::Customer).unwrap_err();
        assert_eq!(f, "fields.id");
        assert!(e.contains("JSON pointer"), "{e}");
        let (_, e) = mapping(
            "",
            "id = { pointer = \"/id\", as = \"cents\" }",
            Shape::Customer,
        )
        .unwrap_err();
        assert!(e.contains("does not apply"), "{e}");
    }

    #[test]
    fn every_bad_field_is_reported_not_the_first_only() {
        // An unknown field, a missing required one, a bad pointer, a bad item field, a bad `at`.
        let all = every_problem(
            "data",
            "colour = \"/c\"\nid = \"id\"\nitems = { each = \"/lines\", fields = { size = \"/s\" } }",
            Shape::Order,
        )
        .map(|_| ())
        .unwrap_err();
        let fields: Vec<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "at",
                "fields.colour",
                "fields.id",
                "fields.customer_id",
                "fields.status",
                "fields.placed_at",
                "fields.total.amount_cents",
                "fields.total.currency",
                "fields.items.fields.size",
                "fields.items.fields.name",
            ],
            "{all:?}"
        );
    }

    #[test]
    fn amounts_convert_exactly() {
        for (v, c) in [
            (json!("45.99"), 4599),
            (json!("45.9"), 4590),
            (json!("45"), 4500),
            (json!(0.29), 29),
            (json!("-1.50"), -150),
            (json!("10.000"), 1000),
        ] {
            assert_eq!(cents(scalar(&v)).unwrap(), c, "{v}");
        }
        for v in [
            json!("4.999"),
            json!("abc"),
            json!(""),
            json!(true),
            json!("1e3"),
        ] {
            assert!(cents(scalar(&v)).is_err(), "{v}");
        }
    }

    #[test]
    fn lists_and_unix_times() {
        let m = mapping(
            "/data",
            "id = \"/id\"\nstatus = \"/status\"\n\"amount.amount_cents\" = \"/amount\"\n\"amount.currency\" = \"/currency\"",
            Shape::Refund,
        )
        .unwrap();
        let out = many(
            &m,
            &json!({"data": [{"id": "re_1", "status": "succeeded", "amount": 4599, "currency": "usd"}]}),
        )
        .unwrap();
        assert_eq!(
            out[0]["amount"],
            json!({"amount_cents": 4599, "currency": "usd"})
        );
        assert!(many(&m, &json!({"data": 7}))
            .unwrap_err()
            .contains("expected an array"));
        assert_eq!(many(&m, &json!({"data": {"id": "re_2"}})).unwrap().len(), 1);
        let secs = json!(1764547200);
        let t = normalise(scalar(&secs), Kind::Time, Convert::Unix).unwrap();
        assert_eq!(t, Record::Text("2025-12-01T00:00:00Z".into()));
    }

    #[test]
    fn a_status_map_names_only_statuses_the_flows_know() {
        for bad in [
            "status = { pointer = \"/s\", map = { IN_TRANSIT = \"in_trasit\" } }",
            "status = { pointer = \"/s\", default = \"lost\" }",
        ] {
            let text = format!("id = \"/id\"\ncustomer_id = \"/c\"\nplaced_at = \"/p\"\n\"total.amount_cents\" = \"/t\"\n\"total.currency\" = \"/cur\"\n{bad}");
            let (f, e) = mapping("", &text, Shape::Order).unwrap_err();
            assert_eq!(f, "fields.status");
            assert!(
                e.contains("not a status the flows know") && e.contains("in_transit"),
                "{e}"
            );
        }
        // Spelled the system's way, it is still ours: "In Transit" is `in_transit`.
        let ok = "id = \"/id\"\ncustomer_id = \"/c\"\nplaced_at = \"/p\"\n\"total.amount_cents\" = \"/t\"\n\"total.currency\" = \"/cur\"\nstatus = { pointer = \"/s\", map = { moving = \"In Transit\" }, default = \"processing\" }";
        assert!(mapping("", ok, Shape::Order).is_ok());
    }

    #[test]
    fn an_amount_sent_as_text_needs_as_cents() {
        let m = mapping(
            "",
            "id = \"/id\"\n\"amount.amount_cents\" = \"/a\"\n\"amount.currency\" = \"/c\"",
            Shape::Refund,
        )
        .unwrap();
        // "45" would otherwise be 45 cents: refused, naming the fix.
        for text in ["45.99", "45"] {
            let e = one(&m, &json!({"id": "r", "a": text, "c": "usd"})).unwrap_err();
            assert!(e.contains("as = \"cents\""), "{e}");
        }
        let v = one(&m, &json!({"id": "r", "a": 4599, "c": "usd"})).unwrap();
        assert_eq!(v.unwrap()["amount"]["amount_cents"], 4599);
    }

    #[test]
    fn constants_are_checked_and_normalised_at_load() {
        let (f, e) = mapping(
            "",
            "id = \"/id\"\n\"amount.amount_cents\" = { pointer = \"/a\", default = \"abc\" }",
            Shape::Refund,
        )
        .unwrap_err();
        assert_eq!(f, "fields.amount.amount_cents");
        assert!(
            e.contains("`default`") && e.contains("as = \"cents\""),
            "{e}"
        );
        let (f, e) = mapping("", "id = { value = [1, 2] }", Shape::Refund).unwrap_err();
        assert_eq!(f, "fields.id");
        assert!(e.contains("`value`") && e.contains("an array"), "{e}");
        let (_, e) = mapping(
            "",
            "id = \"/id\"\n\"amount.amount_cents\" = { pointer = \"/a\", as = \"cents\", map = { free = \"zero\" } }",
            Shape::Refund,
        )
        .unwrap_err();
        assert!(
            e.contains("`map.free`") && e.contains("decimal amount"),
            "{e}"
        );

        // Replacements and defaults are in our form already: a status map's "In Transit" is
        // `in_transit`, a cents default "1.50" is 150, a constant number is text for a text field.
        let m = mapping(
            "",
            r#"
            id = { value = 1001 }
            customer_id = { pointer = "/c", default = "guest" }
            status = { pointer = "/s", map = { moving = "In Transit" } }
            placed_at = "/p"
            "total.amount_cents" = { pointer = "/t", as = "cents", default = "1.50" }
            "total.currency" = { value = "USD" }
            "#,
            Shape::Order,
        )
        .unwrap();
        let out = one(&m, &json!({"s": "moving", "p": "2026-11-20T10:00:00Z"}))
            .unwrap()
            .unwrap();
        assert_eq!(out["id"], "1001");
        assert_eq!(out["customer_id"], "guest");
        assert_eq!(out["status"], "in_transit");
        assert_eq!(
            out["total"],
            json!({"amount_cents": 150, "currency": "USD"})
        );
    }

    #[test]
    fn escaped_text_and_numbers_read_as_sent() {
        let m = mapping(
            "/r",
            "id = \"/id\"\nstatus = \"/st\"\n\"amount.amount_cents\" = { pointer = \"/amt\", as = \"cents\" }",
            Shape::Refund,
        )
        .unwrap();
        let answer: Json =
            serde_json::from_str(r#"{"r": {"id": "re_\u00e9\"1\"", "st": 7, "amt": 12.5}}"#)
                .unwrap();
        let r = m.one(&answer).unwrap().unwrap();
        let v: Value = r.read().unwrap();
        assert_eq!(v["id"], "re_é\"1\"");
        assert_eq!(v["status"], "7");
        assert_eq!(v["amount"]["amount_cents"], 1250);
    }
}
