//! The bot's configured answers (`config/answers.toml`): policy texts, how-tos and handoffs for
//! the intents no connector answers, plus the help and out-of-scope replies. Validated as a whole
//! at init, so a bad file fails the deploy's first invocation with the file and field, never a
//! customer's turn.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use serde::Deserialize;

use crate::nlu::Intent;

pub const BUNDLED: &str = include_str!("../../config/answers.toml");
pub const BUNDLED_NAME: &str = "config/answers.toml (bundled)";

/// Longest reply text accepted: a chat bubble, not a document.
const MAX_TEXT: usize = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// Ask "which order?" first; `{order}` in `text` is that order.
    pub needs_order: bool,
    /// Also hand the conversation to a person.
    pub handoff: bool,
}

impl Answer {
    pub fn for_order(&self, order_id: Option<&str>) -> String {
        match order_id {
            Some(id) => self.text.replace("{order}", id),
            None => self.text.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub help: String,
    pub out_of_scope: String,
    intents: BTreeMap<Intent, Answer>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{file}: {message}")]
pub struct AnswersError {
    pub file: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    help: String,
    out_of_scope: String,
    #[serde(default)]
    intents: BTreeMap<String, RawAnswer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    text: String,
    #[serde(default)]
    needs_order: bool,
    #[serde(default)]
    handoff: bool,
}

/// Intents the dialogue answers itself; the file may not override them.
pub fn has_built_in_flow(intent: Intent) -> bool {
    matches!(
        intent,
        Intent::OrderStatus
            | Intent::RequestRefund
            | Intent::HumanAgent
            | Intent::Greet
            | Intent::Thanks
            | Intent::Goodbye
            | Intent::Affirm
            | Intent::Deny
            | Intent::OutOfScope
            | Intent::Unknown
    )
}

impl Answers {
    /// The bundled file, parsed once per process.
    pub fn bundled() -> Arc<Self> {
        static PARSED: LazyLock<Arc<Answers>> = LazyLock::new(|| {
            // The bundled file is checked by a unit test on every build.
            Arc::new(
                Answers::parse(BUNDLED_NAME, BUNDLED).expect("the bundled answers file is valid"),
            )
        });
        PARSED.clone()
    }

    /// `SWITCHBOARD_ANSWERS_FILE`'s file, or the bundled one.
    pub fn load(path: Option<&str>) -> Result<Self, AnswersError> {
        match path {
            None => Self::parse(BUNDLED_NAME, BUNDLED),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| AnswersError {
                    file: p.to_string(),
                    message: format!("cannot read: {e}"),
                })?;
                Self::parse(p, &text)
            }
        }
    }

    pub fn parse(file: &str, text: &str) -> Result<Self, AnswersError> {
        let err = |message: String| AnswersError {
            file: file.to_string(),
            message,
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| err(e.to_string().trim().into()))?;
        let check_text = |field: &str, t: &str| {
            if t.trim().is_empty() {
                Err(err(format!("{field}: must not be empty")))
            } else if t.chars().count() > MAX_TEXT {
                Err(err(format!("{field}: longer than {MAX_TEXT} characters")))
            } else {
                Ok(())
            }
        };
        check_text("help", &raw.help)?;
        check_text("out_of_scope", &raw.out_of_scope)?;
        let mut intents = BTreeMap::new();
        for (name, a) in raw.intents {
            let field = format!("intents.{name}");
            let intent = Intent::from_name(&name).ok_or_else(|| {
                err(format!(
                    "{field}: no such intent (the names are Intent::name() in shared/src/nlu.rs)"
                ))
            })?;
            if has_built_in_flow(intent) {
                return Err(err(format!(
                    "{field}: this intent has a built-in flow; remove the entry"
                )));
            }
            check_text(&format!("{field}.text"), &a.text)?;
            if intent == Intent::TrackRefund && (a.needs_order || a.handoff) {
                return Err(err(format!(
                    "{field}: only `text` is used (what to say when no refund is known)"
                )));
            }
            if a.text.contains("{order}") && !a.needs_order {
                return Err(err(format!(
                    "{field}.text: uses {{order}} but needs_order is not set"
                )));
            }
            intents.insert(
                intent,
                Answer {
                    text: a.text,
                    needs_order: a.needs_order,
                    handoff: a.handoff,
                },
            );
        }
        let missing: Vec<&str> = Intent::ALL
            .into_iter()
            .filter(|i| !has_built_in_flow(*i) && !intents.contains_key(i))
            .map(Intent::name)
            .collect();
        if !missing.is_empty() {
            return Err(err(format!(
                "intents: no answer for {} (every intent without a built-in flow needs one, or the bot has a dead end)",
                missing.join(", ")
            )));
        }
        Ok(Self {
            help: raw.help,
            out_of_scope: raw.out_of_scope,
            intents,
        })
    }

    pub fn get(&self, intent: Intent) -> Option<&Answer> {
        self.intents.get(&intent)
    }

    pub fn len(&self) -> usize {
        self.intents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.intents.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_file_answers_every_intent_without_a_flow() {
        let a = Answers::bundled();
        for i in Intent::ALL {
            assert!(
                has_built_in_flow(i) || a.get(i).is_some(),
                "{} has neither a flow nor an answer",
                i.name()
            );
        }
        let cancel = a.get(Intent::CancelOrder).unwrap();
        assert!(cancel.needs_order && cancel.handoff);
        assert!(cancel.for_order(Some("1002")).contains("#1002"));
    }

    fn with(extra: &str) -> String {
        // The bundled file plus one edit, so each case fails for one reason only.
        format!("{BUNDLED}\n{extra}")
    }

    #[test]
    fn bad_files_name_the_field() {
        let cases = [
            (
                with("[intents.refund_everything]\ntext = \"x\""),
                "intents.refund_everything: no such intent",
            ),
            (
                with("[intents.greet]\ntext = \"x\""),
                "intents.greet: this intent has a built-in flow",
            ),
            (
                BUNDLED.replace(
                    "[intents.track_refund]\n",
                    "[intents.track_refund]\nhandoff = true\n",
                ),
                "intents.track_refund: only `text` is used",
            ),
            (
                BUNDLED.replace(
                    "text = \"You can add a delivery address",
                    "text = \"   \"\nx = \"",
                ),
                "unknown field",
            ),
            (
                BUNDLED.replace(
                    "[intents.review]\ntext = \"",
                    "[intents.review]\ntext = \"{order} ",
                ),
                "intents.review.text: uses {order} but needs_order is not set",
            ),
            (
                BUNDLED.replace("[intents.review]", "[intents.not_review]"),
                "no such intent",
            ),
            (
                BUNDLED.replace("[intents.review]\n", "[ignored]\n"),
                "unknown field",
            ),
            (
                BUNDLED.replace(
                    "help = \"\"\"",
                    "help = \"\"\"\n\n\"\"\"\nold_help = \"\"\"",
                ),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let e = Answers::parse("answers.toml", &text).unwrap_err();
            assert_eq!(e.file, "answers.toml");
            assert!(
                e.message.contains(expected),
                "{expected:?} not in {:?}",
                e.message
            );
        }
        let long = BUNDLED.replace(
            "[intents.review]\ntext = \"",
            &format!("[intents.review]\ntext = \"{}", "a".repeat(MAX_TEXT)),
        );
        assert!(Answers::parse("f", &long)
            .unwrap_err()
            .message
            .contains("intents.review.text: longer than"));
    }

    #[test]
    fn a_missing_intent_is_named() {
        let text = BUNDLED.replace("[intents.review]", "[intents.review_removed]");
        let start = text.find("[intents.review_removed]").unwrap();
        let end = text[start..]
            .find("\n\n")
            .map(|e| start + e)
            .unwrap_or(text.len());
        let without = format!("{}{}", &text[..start], &text[end..]);
        let e = Answers::parse("a.toml", &without).unwrap_err();
        assert!(e.message.contains("no answer for review"), "{}", e.message);
    }

    #[test]
    fn an_unreadable_file_is_an_error() {
        let e = Answers::load(Some("/nonexistent/answers.toml")).unwrap_err();
        assert!(e.message.starts_with("cannot read"));
    }
}
