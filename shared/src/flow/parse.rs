//! Reads a flow file (`flows/<name>.toml`) into a [`Flow`], collecting every problem of the
//! file with its line; conditions and templates are parsed here, once.
//!
//! ```toml
//! description = "where an order is"
//! needs_account = true              # the default: see `Flow::needs_account`
//! slots = ["order"]
//! [[steps]]
//! id = "read"                       # optional: what targets name
//! call = "orders.get_status"
//! ...
//! ```

use serde::Deserialize;
use toml::Spanned;

use crate::bot::error::{line_of, BundleError, BundleErrors};

use super::steps::{Fields, StepKind};
use super::{Flow, Step, END};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    description: Option<String>,
    /// Absent is true: a flow is for known customers unless its file says it is not.
    #[serde(default = "yes")]
    needs_account: bool,
    #[serde(default)]
    slots: Vec<String>,
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    context: Vec<String>,
    #[serde(default)]
    steps: Vec<Spanned<toml::Table>>,
}

fn yes() -> bool {
    true
}

/// Parses `text`, the flow `name` read from `file`.
pub fn parse(name: &str, file: &str, text: &str) -> Result<Flow, BundleErrors> {
    let mut errors = BundleErrors::default();
    let raw: RawFlow = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start));
            errors.push(BundleError::new(
                file,
                line,
                "",
                e.message().trim().to_string(),
            ));
            return Err(errors);
        }
    };
    let description = raw.description.unwrap_or_default();
    if description.trim().is_empty() {
        errors.push(BundleError::new(
            file,
            Some(1),
            "description",
            "a flow needs a description",
        ));
    }
    for c in raw.context.iter().filter(|c| !raw.slots.contains(c)) {
        errors.push(BundleError::new(
            file,
            Some(1),
            "context",
            format!("{c} is not one of the flow's `slots`"),
        ));
    }
    if raw.steps.is_empty() {
        errors.push(BundleError::new(
            file,
            None,
            "steps",
            "a flow needs at least one [[steps]]",
        ));
    }
    let mut steps = Vec::new();
    for spanned in raw.steps {
        // A `[[steps]]` table's span is its header: the step's text runs to the next header.
        let start = spanned.span().start.min(text.len());
        let after = (start + 1).min(text.len());
        let end = text[after..].find("\n[[").map_or(text.len(), |i| after + i);
        let first_line = line_of(text, start);
        let mut fields = Fields {
            table: spanned.into_inner(),
            file,
            text: &text[start..end],
            first_line,
            errors: &mut errors,
        };
        let id = match fields.table.remove("id") {
            None => None,
            Some(toml::Value::String(id)) if id == END => {
                fields.error(
                    "id",
                    "`end` is reserved: it is the target that ends the flow",
                );
                None
            }
            Some(toml::Value::String(id)) => Some(id),
            Some(_) => {
                fields.error("id", "must be text");
                None
            }
        };
        let id_line = fields.line("id");
        let next = fields.target("next");
        let kind = StepKind::parse(&mut fields);
        if let Some(kind) = kind {
            let line = fields.line(kind.name());
            if next.is_some() && !kind.falls_through() {
                let next_line = fields.line("next");
                fields_error(fields.errors, file, next_line, "next", kind.name());
            }
            steps.push(Step {
                id,
                line,
                kind,
                next,
            });
        } else if let Some(id) = id {
            // Kept so that targets naming it do not add errors of their own.
            steps.push(Step {
                id: Some(id),
                line: id_line,
                kind: StepKind::End(super::steps::end::End),
                next: None,
            });
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &steps {
        if let Some(id) = &s.id {
            if !seen.insert(id.as_str()) {
                errors.push(BundleError::new(
                    file,
                    Some(s.line),
                    id.clone(),
                    "two steps have this id",
                ));
            }
        }
    }
    errors.into_result(Flow {
        name: name.to_string(),
        file: file.to_string(),
        description,
        needs_account: raw.needs_account,
        slots: raw.slots,
        inputs: raw.inputs,
        context: raw.context,
        steps,
    })
}

fn fields_error(errors: &mut BundleErrors, file: &str, line: usize, key: &str, kind: &str) {
    errors.push(BundleError::new(
        file,
        Some(line),
        key,
        format!("a `{kind}` step never goes on to a next step"),
    ));
}
