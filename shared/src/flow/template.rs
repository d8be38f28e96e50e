//! Inputs and message variables written over the flow's values: `"{o.id}"` passes the value
//! itself (money stays money), `"#{o.id} for {slot}"` makes text.

use super::condition::Scope;
use super::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// Exactly one `{path}`: the value as it is.
    Whole(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Path(String),
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = src;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("`{{` without `}}` in {src:?}"))?;
            let path = rest[open + 1..open + close].trim();
            let valid = !path.is_empty()
                && path.split('.').all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            if !valid {
                return Err(format!("`{{{path}}}` is not a path in {src:?}"));
            }
            parts.push(Part::Path(path.to_string()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`}}` without `{{` in {src:?}"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(match parts.as_slice() {
            [Part::Path(p)] => Template::Whole(p.clone()),
            _ => Template::Parts(parts),
        })
    }

    pub fn paths(&self) -> Vec<&str> {
        match self {
            Template::Whole(p) => vec![p.as_str()],
            Template::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    Part::Path(p) => Some(p.as_str()),
                    Part::Text(_) => None,
                })
                .collect(),
        }
    }

    /// `None` when a path it names has no value. Values inside text read as an English
    /// customer reads them ("November 27"); `render_with` writes them in another language.
    pub fn render(&self, scope: &dyn Scope) -> Option<Value> {
        self.render_as(scope, |v| v.to_string())
    }

    /// As `render`, values inside text written by `show` (`Value::written` in the customer's
    /// language).
    pub fn render_with(&self, scope: &dyn Scope, show: impl Fn(&Value) -> String) -> Option<Value> {
        self.render_as(scope, show)
    }

    /// For what systems read (idempotency keys, connector inputs): values inside text in their
    /// exact form ("2026-11-27"), so a key is never the same for two different days of the year.
    pub fn render_exact(&self, scope: &dyn Scope) -> Option<Value> {
        self.render_as(scope, Value::exact)
    }

    fn render_as(&self, scope: &dyn Scope, show: impl Fn(&Value) -> String) -> Option<Value> {
        match self {
            Template::Whole(p) => scope.lookup(p),
            Template::Parts(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Text(t) => out.push_str(t),
                        Part::Path(p) => out.push_str(&show(&scope.lookup(p)?)),
                    }
                }
                Some(Value::Text(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_paths_and_text() {
        assert_eq!(
            Template::parse("{o.id}"),
            Ok(Template::Whole("o.id".into()))
        );
        assert_eq!(
            Template::parse("refund-{order}"),
            Ok(Template::Parts(vec![
                Part::Text("refund-".into()),
                Part::Path("order".into())
            ]))
        );
        assert!(Template::parse("{o.id").is_err());
        assert!(Template::parse("{}").is_err());
        assert!(Template::parse("a}").is_err());
    }

    struct Box27;

    impl Scope for Box27 {
        fn lookup(&self, path: &str) -> Option<Value> {
            match path {
                "sub.id" => Some(Value::text("sub_1")),
                "sub.next_box" => Some(Value::Time(time::macros::datetime!(2026-11-27 09:00 UTC))),
                _ => None,
            }
        }
        fn now(&self) -> Value {
            Value::Time(time::macros::datetime!(2026-11-24 12:00 UTC))
        }
    }

    #[test]
    fn keys_carry_exact_values_and_sentences_readable_ones() {
        let t = Template::parse("pause:{sub.id}:{sub.next_box}").unwrap();
        // Next year's box of the same day is another key.
        assert_eq!(
            t.render_exact(&Box27),
            Some(Value::text("pause:sub_1:2026-11-27T09:00:00Z"))
        );
        assert_eq!(
            t.render(&Box27),
            Some(Value::text("pause:sub_1:November 27"))
        );
        assert_eq!(
            Template::parse("{nothing}").unwrap().render_exact(&Box27),
            None
        );
    }
}
