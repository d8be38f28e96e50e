//! The step kinds, one file each: how a step is written (parsed from its TOML table) and what
//! it does when the engine reaches it.

pub mod action;
pub mod ask;
pub mod branch;
pub mod call;
pub mod confirm;
pub mod end;
pub mod goto;
pub mod handoff;
pub mod job;
pub mod say;

use std::collections::BTreeMap;

use crate::bot::error::{BundleError, BundleErrors};

use super::template::Template;
use super::Target;

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    Ask(ask::Ask),
    Call(call::Call),
    Branch(branch::Branch),
    Say(say::Say),
    Confirm(confirm::Confirm),
    Job(job::Job),
    Handoff(handoff::Handoff),
    Action(action::ActionStep),
    Goto(goto::Goto),
    End(end::End),
}

/// The key that says which kind a step is.
pub const KINDS: &[&str] = &[
    "ask", "call", "branch", "say", "confirm", "job", "handoff", "action", "goto", "end",
];

impl StepKind {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Ask(_) => "ask",
            StepKind::Call(_) => "call",
            StepKind::Branch(_) => "branch",
            StepKind::Say(_) => "say",
            StepKind::Confirm(_) => "confirm",
            StepKind::Job(_) => "job",
            StepKind::Handoff(_) => "handoff",
            StepKind::Action(_) => "action",
            StepKind::Goto(_) => "goto",
            StepKind::End(_) => "end",
        }
    }

    /// Parses a step's table (its `id` already taken); problems go to `f`'s errors.
    pub fn parse(f: &mut Fields<'_>) -> Option<StepKind> {
        let present: Vec<&str> = KINDS
            .iter()
            .copied()
            .filter(|k| f.table.contains_key(*k))
            .collect();
        let kind = match present.as_slice() {
            [one] => *one,
            [] => {
                let first = f.table.keys().next().cloned().unwrap_or_default();
                let what = if first.is_empty() {
                    "an empty step"
                } else {
                    "unknown step kind"
                };
                f.error(
                    &first,
                    format!("{what}: a step is one of {}", KINDS.join(", ")),
                );
                f.table.clear();
                return None;
            }
            many => {
                f.error(
                    many[1],
                    format!("one kind per step: found `{}` and `{}`", many[0], many[1]),
                );
                f.table.clear();
                return None;
            }
        };
        let parsed = match kind {
            "ask" => ask::Ask::parse(f).map(StepKind::Ask),
            "call" => call::Call::parse(f).map(StepKind::Call),
            "branch" => branch::Branch::parse(f).map(StepKind::Branch),
            "say" => say::Say::parse(f).map(StepKind::Say),
            "confirm" => confirm::Confirm::parse(f).map(StepKind::Confirm),
            "job" => job::Job::parse(f).map(StepKind::Job),
            "handoff" => handoff::Handoff::parse(f).map(StepKind::Handoff),
            "action" => action::ActionStep::parse(f).map(StepKind::Action),
            "goto" => goto::Goto::parse(f).map(StepKind::Goto),
            _ => end::End::parse(f).map(StepKind::End),
        };
        f.finish(kind);
        parsed
    }

    /// Where the step may go other than the next step.
    pub fn targets(&self) -> Vec<&Target> {
        match self {
            StepKind::Call(c) => c.on_missing.iter().chain(&c.on_error).collect(),
            StepKind::Branch(b) => b.arms.iter().map(|a| &a.goto).collect(),
            StepKind::Confirm(c) => vec![&c.yes, &c.no],
            StepKind::Action(a) => a.on.values().chain(&a.on_error).collect(),
            StepKind::Goto(g) => vec![&g.to],
            _ => Vec::new(),
        }
    }

    /// Whether the step can go on to the next one.
    pub fn falls_through(&self) -> bool {
        match self {
            StepKind::Confirm(_) | StepKind::Goto(_) | StepKind::End(_) | StepKind::Handoff(_) => {
                false
            }
            // The last arm without `if` always goes somewhere.
            StepKind::Branch(b) => b.arms.last().is_none_or(|a| a.condition.is_some()),
            _ => true,
        }
    }

    /// Whether the step can stop and wait for the customer (what makes a loop safe).
    pub fn waits(&self) -> bool {
        matches!(self, StepKind::Ask(_) | StepKind::Confirm(_))
    }
}

/// A step's table while it is parsed: takes keys off it, and reports each problem with the
/// line of its key.
pub struct Fields<'a> {
    pub table: toml::Table,
    pub file: &'a str,
    /// The step's own text in the file, and the line it starts on, to find a key's line.
    pub text: &'a str,
    pub first_line: usize,
    pub errors: &'a mut BundleErrors,
}

impl Fields<'_> {
    /// The line of `key` within the step (the step's first line if it cannot be found).
    pub fn line(&self, key: &str) -> usize {
        if key.is_empty() {
            return self.first_line;
        }
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(self.first_line, |i| self.first_line + i)
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let line = self.line(key);
        self.errors
            .push(BundleError::new(self.file, Some(line), key, message));
    }

    /// An optional text.
    pub fn text(&mut self, key: &str) -> Option<String> {
        match self.table.remove(key)? {
            toml::Value::String(s) => Some(s),
            other => {
                self.error(key, format!("must be text, not {}", other.type_str()));
                None
            }
        }
    }

    /// A text the step needs.
    pub fn required(&mut self, key: &str, kind: &str) -> Option<String> {
        if !self.table.contains_key(key) {
            self.error(key, format!("a `{kind}` step needs `{key}`"));
            return None;
        }
        self.text(key)
    }

    pub fn target(&mut self, key: &str) -> Option<Target> {
        let line = self.line(key);
        self.text(key).map(|to| Target { to, line })
    }

    pub fn required_target(&mut self, key: &str, kind: &str) -> Option<Target> {
        let line = self.line(key);
        self.required(key, kind).map(|to| Target { to, line })
    }

    pub fn template(&mut self, key: &str) -> Option<Template> {
        let src = self.text(key)?;
        match Template::parse(&src) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    /// `key = { name = "template", ... }`.
    pub fn templates(&mut self, key: &str) -> BTreeMap<String, Template> {
        let mut out = BTreeMap::new();
        let Some(v) = self.table.remove(key) else {
            return out;
        };
        let toml::Value::Table(t) = v else {
            self.error(key, "must be a table of texts: { name = \"{slot}\" }");
            return out;
        };
        for (name, v) in t {
            let parsed = match &v {
                toml::Value::String(s) => Template::parse(s),
                // Numbers and flags are written as themselves.
                toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_) => {
                    Template::parse(&v.to_string())
                }
                other => Err(format!("must be text, not {}", other.type_str())),
            };
            match parsed {
                Ok(t) => {
                    out.insert(name, t);
                }
                Err(e) => self.error(key, format!("`{name}`: {e}")),
            }
        }
        out
    }

    /// Reports the keys nobody took: a typo (`on_mising`) is an error, not ignored.
    fn finish(&mut self, kind: &str) {
        let left: Vec<String> = self.table.keys().cloned().collect();
        for k in left {
            self.error(&k, format!("unknown key for a `{kind}` step"));
        }
        self.table.clear();
    }
}
