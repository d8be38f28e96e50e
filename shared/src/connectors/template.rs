//! Request templates: `{name}` placeholders in paths, query values, headers and bodies, checked
//! against the operation's inputs when the file is loaded and filled in at each call.
//!
//! A value that is exactly one placeholder keeps the input's type (a number stays a number in a
//! JSON body) and is left out when an optional input is absent. `{{` and `}}` are literal braces.

use serde_json::Value;

use super::catalog::Input;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// The values of one call: few enough that a scan beats a map.
pub type Inputs<'a> = &'a [(&'static str, Value)];

pub fn lookup<'a>(inputs: Inputs<'a>, name: &str) -> Option<&'a Value> {
    inputs
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// Text of a scalar input: strings as they are, numbers in JSON notation.
fn text_of(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

impl Template {
    /// Parses `raw`, allowing only the operation's inputs. Errors say what is wrong, not where:
    /// the caller knows the field.
    pub fn parse(raw: &str, inputs: &[Input]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = raw.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let rest = &raw[i + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        format!("unclosed `{{` in {raw:?} (write `{{{{` for a brace)")
                    })?;
                    let name = &rest[..end];
                    let input = inputs.iter().find(|x| x.name == name).ok_or_else(|| {
                        let known: Vec<&str> = inputs.iter().map(|x| x.name).collect();
                        if known.is_empty() {
                            format!("`{{{name}}}`: this operation takes no inputs")
                        } else {
                            format!(
                                "`{{{name}}}` is not an input of this operation (inputs: {})",
                                known.join(", ")
                            )
                        }
                    })?;
                    for _ in 0..=end {
                        chars.next();
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(input.name));
                }
                '}' => return Err(format!("stray `}}` in {raw:?} (write `}}}}` for a brace)")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        let t = Template { parts };
        if t.sole_var().is_none() {
            if let Some(optional) = t
                .vars()
                .find(|v| inputs.iter().any(|x| x.name == *v && !x.required))
            {
                return Err(format!(
                    "`{{{optional}}}` may be absent, so it can only be a whole value, not part of {raw:?}"
                ));
            }
        }
        Ok(t)
    }

    pub fn vars(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(*v),
            Part::Lit(_) => None,
        })
    }

    pub fn uses(&self, name: &str) -> bool {
        self.vars().any(|v| v == name)
    }

    /// The input this template is made of alone, if it is exactly one placeholder.
    pub fn sole_var(&self) -> Option<&'static str> {
        match self.parts.as_slice() {
            [Part::Var(v)] => Some(v),
            _ => None,
        }
    }

    /// The text, with each input appended through `escape`; `None` when a whole-value
    /// placeholder's input is absent (the caller leaves the value out).
    pub fn render_with(
        &self,
        inputs: Inputs<'_>,
        out: &mut String,
        escape: impl Fn(&str, &mut String),
    ) -> Result<Option<()>, String> {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(name) => match lookup(inputs, name) {
                    Some(v) => escape(&text_of(v), out),
                    None if self.sole_var().is_some() => return Ok(None),
                    None => return Err(format!("input `{name}` has no value")),
                },
            }
        }
        Ok(Some(()))
    }

    pub fn render(&self, inputs: Inputs<'_>) -> Result<Option<String>, String> {
        let mut out = String::new();
        Ok(self
            .render_with(inputs, &mut out, |v, o| o.push_str(v))?
            .map(|()| out))
    }
}

/// A JSON body or GraphQL variables with templates in its strings (keys are literal).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Literal(Value),
    Text(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    pub fn parse(value: &Value, inputs: &[Input]) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => {
                let t = Template::parse(s, inputs)?;
                if t.parts.iter().all(|p| matches!(p, Part::Lit(_))) {
                    JsonTemplate::Literal(Value::String(t.render(&[])?.unwrap_or_default()))
                } else {
                    JsonTemplate::Text(t)
                }
            }
            Value::Array(items) => JsonTemplate::Array(
                items
                    .iter()
                    .map(|v| JsonTemplate::parse(v, inputs))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => JsonTemplate::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), JsonTemplate::parse(v, inputs)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => JsonTemplate::Literal(other.clone()),
        })
    }

    pub fn uses(&self, name: &str) -> bool {
        match self {
            JsonTemplate::Literal(_) => false,
            JsonTemplate::Text(t) => t.uses(name),
            JsonTemplate::Array(items) => items.iter().any(|i| i.uses(name)),
            JsonTemplate::Object(fields) => fields.iter().any(|(_, v)| v.uses(name)),
        }
    }

    /// The filled-in value; `None` for a whole-value placeholder whose input is absent (an
    /// object leaves that key out, an array that element).
    pub fn render(&self, inputs: Inputs<'_>) -> Result<Option<Value>, String> {
        Ok(match self {
            JsonTemplate::Literal(v) => Some(v.clone()),
            JsonTemplate::Text(t) => match t.sole_var() {
                Some(name) => lookup(inputs, name).cloned(),
                None => t.render(inputs)?.map(Value::String),
            },
            JsonTemplate::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    if let Some(v) = i.render(inputs)? {
                        out.push(v);
                    }
                }
                Some(Value::Array(out))
            }
            JsonTemplate::Object(fields) => {
                let mut out = serde_json::Map::new();
                for (k, v) in fields {
                    if let Some(v) = v.render(inputs)? {
                        out.insert(k.clone(), v);
                    }
                }
                Some(Value::Object(out))
            }
        })
    }
}

/// Appends `segment` percent-encoded as one path segment: an input can never add a `/`, a
/// `?` or a `..` step to the path.
pub fn push_path_segment(segment: &str, out: &mut String) {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');
    // `.` stays encoded too, so "." and ".." are never path steps.
    out.extend(utf8_percent_encode(segment, SEGMENT));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INPUTS: &[Input] = &[
        Input {
            name: "order_id",
            required: true,
        },
        Input {
            name: "amount_cents",
            required: true,
        },
        Input {
            name: "payment_ref",
            required: false,
        },
    ];

    #[test]
    fn placeholders_are_checked_against_the_inputs() {
        let e = Template::parse("/orders/{order}", INPUTS).unwrap_err();
        assert!(
            e.contains("`{order}` is not an input") && e.contains("order_id"),
            "{e}"
        );
        assert!(Template::parse("/orders/{order_id", INPUTS)
            .unwrap_err()
            .contains("unclosed"));
        assert!(Template::parse("a}b", INPUTS)
            .unwrap_err()
            .contains("stray"));
        let e = Template::parse("pi/{payment_ref}", INPUTS).unwrap_err();
        assert!(e.contains("whole value"), "{e}");
        let t = Template::parse("{{literal}} {order_id}", INPUTS).unwrap();
        let inputs = [("order_id", json!("1001"))];
        assert_eq!(t.render(&inputs).unwrap().unwrap(), "{literal} 1001");
    }

    #[test]
    fn path_segments_cannot_escape() {
        let t = Template::parse("/orders/{order_id}", INPUTS).unwrap();
        let mut out = String::new();
        t.render_with(
            &[("order_id", json!("../admin?x=1#y"))],
            &mut out,
            push_path_segment,
        )
        .unwrap();
        assert_eq!(out, "/orders/%2E%2E%2Fadmin%3Fx%3D1%23y");
    }

    #[test]
    fn json_keeps_types_and_leaves_out_absent_optionals() {
        let body = JsonTemplate::parse(
            &json!({"order": "{order_id}", "amount": "{amount_cents}", "note": "refund for #{order_id}",
                    "payment": "{payment_ref}", "list": ["{payment_ref}", 1]}),
            INPUTS,
        )
        .unwrap();
        let out = body
            .render(&[("order_id", json!("1002")), ("amount_cents", json!(4599))])
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            json!({"order": "1002", "amount": 4599, "note": "refund for #1002", "list": [1]})
        );
        assert!(body.uses("payment_ref") && !body.uses("currency"));
    }
}
