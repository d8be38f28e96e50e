//! One intent of a bundle (`intents/<name>.toml`): what it is about, what the bot does with it,
//! and the evaluation labels it stands for.

use serde::Deserialize;
use toml::Spanned;

use super::error::{line_of, BundleError, BundleErrors};
use super::toml_file::{self, Schema, LEAF};
use crate::nlu::{Intent, Move};

#[derive(Debug, Clone, PartialEq)]
pub struct IntentDef {
    pub intent: Intent,
    /// What it is about, for "Did you want to: 1. …".
    pub description: String,
    /// `None` only for moves: the engine's own behaviour applies.
    pub action: Option<Action>,
    /// The evaluation datasets' labels it stands for (`nlu-eval`: Bitext).
    pub labels: Vec<String>,
    /// The intent a message of this one means when it names an order ("how long does
    /// delivery take?" is policy; "when will 1004 get here?" is that order's status).
    pub with_order: Option<Intent>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A flow of `flows/<name>.toml`.
    Flow(String),
    /// A message said as is.
    Answer {
        key: String,
        /// Ask "which order?" first; `{order}` in the message is that order.
        needs_order: bool,
        /// Also hand the conversation to a person.
        handoff: bool,
    },
}

/// An intent file with the line of its action, for the bundle's checks across files.
pub(super) struct Parsed {
    pub def: IntentDef,
    pub action_line: Option<usize>,
    pub with_order_line: Option<usize>,
}

static SCHEMA: Schema = Schema::Keys(&[
    ("description", &LEAF),
    ("flow", &LEAF),
    ("answer", &LEAF),
    ("needs_order", &LEAF),
    ("handoff", &LEAF),
    ("labels", &LEAF),
    ("with_order", &LEAF),
]);

#[derive(Deserialize)]
struct Raw {
    description: Option<Spanned<String>>,
    flow: Option<Spanned<String>>,
    answer: Option<Spanned<String>>,
    needs_order: Option<Spanned<bool>>,
    handoff: Option<Spanned<bool>>,
    #[serde(default)]
    labels: Vec<String>,
    with_order: Option<Spanned<String>>,
}

/// Intent names are file names and message-key parts: lower-case words joined by `_`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Every problem of the file goes to `errs`; `None` when it cannot be used at all.
pub(super) fn parse(file: &str, name: &str, text: &str, errs: &mut BundleErrors) -> Option<Parsed> {
    let before = errs.0.len();
    if !valid_name(name) {
        errs.push(BundleError::new(
            file,
            None,
            "",
            "an intent's file name is its name: lower-case letters, digits and _",
        ));
    }
    if name == Move::Unknown.name() {
        errs.push(BundleError::new(
            file,
            None,
            "",
            "`unknown` is what a low confidence means, never an intent of its own",
        ));
    }
    let raw: Raw = toml_file::parse(file, text, &SCHEMA, errs)?;
    let line = |s: std::ops::Range<usize>| Some(line_of(text, s.start));
    let is_move = Move::from_name(name).is_some();
    let description = match raw.description {
        Some(d) if d.get_ref().trim().is_empty() => {
            errs.push(BundleError::new(
                file,
                line(d.span()),
                "description",
                "must not be empty",
            ));
            String::new()
        }
        Some(d) => d.into_inner(),
        None => {
            errs.push(BundleError::new(
                file,
                None,
                "description",
                "missing: what the intent is about, as in \"Did you want to: 1. check where an order is\"",
            ));
            String::new()
        }
    };
    let mut action_line = None;
    let action = match (raw.flow, raw.answer) {
        (Some(f), Some(a)) => {
            errs.push(BundleError::new(
                file,
                line(a.span()),
                "answer",
                "an intent has a flow or an answer, not both",
            ));
            action_line = line(f.span());
            None
        }
        (Some(f), None) => {
            action_line = line(f.span());
            Some(Action::Flow(f.into_inner()))
        }
        (None, Some(a)) => {
            action_line = line(a.span());
            Some(Action::Answer {
                key: a.into_inner(),
                needs_order: raw.needs_order.as_ref().is_some_and(|v| *v.get_ref()),
                handoff: raw.handoff.as_ref().is_some_and(|v| *v.get_ref()),
            })
        }
        (None, None) if is_move => None,
        (None, None) => {
            errs.push(BundleError::new(
                file,
                None,
                "",
                "needs `flow = \"<flow>\"` or `answer = \"<message key>\"`: what the bot does",
            ));
            None
        }
    };
    if !matches!(action, Some(Action::Answer { .. })) {
        for (key, v) in [("needs_order", &raw.needs_order), ("handoff", &raw.handoff)] {
            if let Some(v) = v {
                errs.push(BundleError::new(
                    file,
                    line(v.span()),
                    key,
                    "only goes with `answer` (a flow asks and hands off in its steps)",
                ));
            }
        }
    }
    let with_order_line = raw.with_order.as_ref().and_then(|w| line(w.span()));
    (errs.0.len() == before).then(|| Parsed {
        def: IntentDef {
            intent: Intent::new(name),
            description,
            action,
            labels: raw.labels,
            with_order: raw.with_order.map(|w| Intent::new(w.get_ref())),
        },
        action_line,
        with_order_line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(name: &str, text: &str) -> Vec<String> {
        let mut errs = BundleErrors::default();
        let parsed = parse("intents/x.toml", name, text, &mut errs);
        assert_eq!(parsed.is_some(), errs.is_empty());
        errs.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_answer_or_a_flow() {
        let mut errs = BundleErrors::default();
        let p = parse(
            "f",
            "cancel_order",
            "description = \"cancel an order\"\nanswer = \"answer.cancel_order\"\nneeds_order = true\nlabels = [\"cancel_order\"]\n",
            &mut errs,
        )
        .unwrap();
        assert_eq!(p.action_line, Some(2));
        assert_eq!(
            p.def.action,
            Some(Action::Answer {
                key: "answer.cancel_order".into(),
                needs_order: true,
                handoff: false
            })
        );
        assert_eq!(p.def.labels, ["cancel_order"]);
        let greet = parse("f", "greet", "description = \"say hello\"", &mut errs).unwrap();
        assert_eq!(greet.def.action, None, "a move needs no action");
        assert!(errs.is_empty());
    }

    #[test]
    fn every_problem_of_a_file_is_named_with_its_line() {
        let e = errors(
            "x",
            "description = \"\"\nflow = \"f\"\nanswer = \"a\"\ncolour = \"red\"\n[extra]\nk = 1\n",
        );
        assert_eq!(
            e,
            [
                "intents/x.toml:4: colour: unknown key (expected one of: description, flow, answer, needs_order, handoff, labels, with_order)",
                "intents/x.toml:5: extra: unknown key (expected one of: description, flow, answer, needs_order, handoff, labels, with_order)",
                "intents/x.toml:1: description: must not be empty",
                "intents/x.toml:3: answer: an intent has a flow or an answer, not both",
            ]
        );
        assert_eq!(
            errors("x", "description = \"d\"\nflow = \"f\"\nhandoff = true"),
            ["intents/x.toml:3: handoff: only goes with `answer` (a flow asks and hands off in its steps)"]
        );
        assert!(errors("x", "description = \"d\"")[0].contains("needs `flow"));
        assert!(errors("x", "flow = \"f\"")[0].contains("description: missing"));
        assert!(errors("x", "description = 3\nflow = \"f\"")[0].starts_with("intents/x.toml:1: "));
        assert!(errors("x", "description = \"d")[0].starts_with("intents/x.toml:1: "));
        assert!(errors("Bad-Name", "description = \"d\"\nflow = \"f\"")[0].contains("file name"));
        assert!(
            errors("unknown", "description = \"d\"\nflow = \"f\"")[0].contains("never an intent")
        );
    }
}
