//! Reading a bundle's TOML files so that one pass names every problem: keys a file may not have
//! are found on the parsed document (with their lines) before serde reads the values, because
//! `deny_unknown_fields` stops at the first one.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use super::error::{line_of, BundleError, BundleErrors};

/// The keys a table may have.
pub enum Schema {
    /// These keys, each with what its value may hold.
    Keys(&'static [(&'static str, &'static Schema)]),
    /// Any keys (names the file chooses, e.g. slots), each value as given.
    Map(&'static Schema),
    /// A value not checked further here (serde reads it).
    Leaf,
}

pub static LEAF: Schema = Schema::Leaf;

/// The file's value, or `None` with every problem found pushed to `errs`.
pub fn parse<T: DeserializeOwned>(
    file: &str,
    text: &str,
    schema: &Schema,
    errs: &mut BundleErrors,
) -> Option<T> {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            errs.push(syntax(file, text, &e));
            return None;
        }
    };
    let before = errs.0.len();
    unknown_keys(file, text, doc.get_ref(), schema, "", errs);
    // Tables iterate by key: the file's problems are told in its order.
    errs.0[before..].sort_by_key(|e| e.line);
    // Serde reads the document parsed above: `toml::from_str` would parse the text again
    // (a tenth of a bundle's load, most of it the words files).
    match T::deserialize(toml::de::Deserializer::from(doc)) {
        // Unknown keys are errors already; the values are still checked.
        Ok(v) => Some(v),
        Err(e) => {
            errs.push(syntax(file, text, &e));
            None
        }
    }
}

fn syntax(file: &str, text: &str, e: &toml::de::Error) -> BundleError {
    BundleError::new(
        file,
        e.span().map(|s| line_of(text, s.start)),
        "",
        e.message().trim(),
    )
}

fn unknown_keys(
    file: &str,
    text: &str,
    table: &DeTable<'_>,
    schema: &Schema,
    prefix: &str,
    errs: &mut BundleErrors,
) {
    for (key, value) in table.iter() {
        let name: &str = key.get_ref();
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        let inner = match schema {
            Schema::Leaf => return,
            Schema::Map(inner) => Some(*inner),
            Schema::Keys(keys) => keys.iter().find(|(k, _)| *k == name).map(|(_, s)| *s),
        };
        match (inner, value.get_ref()) {
            (Some(inner), DeValue::Table(t)) => unknown_keys(file, text, t, inner, &path, errs),
            (Some(_), _) => {}
            (None, _) => {
                let expected = match schema {
                    Schema::Keys(keys) => keys.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                    _ => Vec::new(),
                };
                errs.push(BundleError::new(
                    file,
                    Some(line_of(text, key.span().start)),
                    path,
                    format!("unknown key (expected one of: {})", expected.join(", ")),
                ));
            }
        }
    }
}
