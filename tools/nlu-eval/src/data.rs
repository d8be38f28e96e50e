//! The evaluation sets, read from `../shared/data/` (never from the project tree: they are not
//! training data), with each row's expected project intent.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use switchboard::bot::Bot;
use switchboard::nlu::{Intent, Move};

#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub text: String,
    pub expected: Intent,
}

/// The dataset labels the bundle's intents stand for (their `labels`).
pub struct Labels(BTreeMap<String, Intent>);

impl Labels {
    pub fn of(bot: &Bot) -> Self {
        Self(
            bot.intents
                .values()
                .flat_map(|d| d.labels.iter().map(|l| (l.clone(), d.intent.clone())))
                .collect(),
        )
    }
}

#[derive(Deserialize)]
struct BitextRow {
    utterance: String,
    intent: String,
}

/// Bitext customer service (CSV: `utterance,intent,...`): every row is in scope.
pub fn bitext(path: &Path, labels: &Labels) -> Result<Vec<Case>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cases = Vec::new();
    for (i, row) in reader.deserialize::<BitextRow>().enumerate() {
        let row = row.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 2))?;
        let expected = labels.0.get(&row.intent).cloned().ok_or_else(|| {
            format!(
                "{}: row {}: Bitext label {:?} is no intent's `labels`",
                path.display(),
                i + 2,
                row.intent
            )
        })?;
        cases.push(Case {
            text: row.utterance,
            expected,
        });
    }
    Ok(cases)
}

#[derive(Deserialize)]
struct Clinc {
    val: Vec<(String, String)>,
    oos_val: Vec<(String, String)>,
}

/// CLINC150's general-domain intents that a shop's support bot does handle; every other one,
/// and everything in `oos_val`, is out of scope for it.
pub fn clinc_intent(label: &str) -> Intent {
    match label {
        "greeting" => Move::Greet.into(),
        "goodbye" => Move::Goodbye.into(),
        "thank_you" => Move::Thanks.into(),
        "yes" => Move::Affirm.into(),
        "no" => Move::Deny.into(),
        "order_status" => Intent::new("order_status"),
        _ => Move::OutOfScope.into(),
    }
}

/// CLINC150 validation (JSON: `val` and `oos_val`, lists of `[text, intent]`).
pub fn clinc(path: &Path) -> Result<Vec<Case>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data: Clinc =
        serde_json::from_slice(&raw).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(data
        .val
        .into_iter()
        .map(|(text, label)| Case {
            expected: clinc_intent(&label),
            text,
        })
        .chain(data.oos_val.into_iter().map(|(text, _)| Case {
            text,
            expected: Move::OutOfScope.into(),
        }))
        .collect())
}

#[derive(Deserialize)]
struct MultilingualRow {
    language: String,
    utterance: String,
    intent: String,
}

/// Utterances in other languages than English (CSV: `language,utterance,intent`, the intent a
/// Bitext label or `out_of_scope`), with their language.
pub fn multilingual(path: &Path, labels: &Labels) -> Result<Vec<(String, Case)>, String> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut cases = Vec::new();
    for (i, row) in reader.deserialize::<MultilingualRow>().enumerate() {
        let row = row.map_err(|e| format!("{}: row {}: {e}", path.display(), i + 2))?;
        let expected = if row.intent == Move::OutOfScope.name() {
            Move::OutOfScope.into()
        } else {
            labels.0.get(&row.intent).cloned().ok_or_else(|| {
                format!(
                    "{}: row {}: label {:?} is no intent's `labels`",
                    path.display(),
                    i + 2,
                    row.intent
                )
            })?
        };
        cases.push((
            row.language,
            Case {
                text: row.utterance,
                expected,
            },
        ));
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, body: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("nlu-eval-{}-{name}", std::process::id()));
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn reads_bitext_rows_with_quoted_commas() {
        let p = temp(
            "b.csv",
            "utterance,intent,entity_type\n\"hi, can you cancel order 12?\",cancel_order,order_id\nwhere is it,track_order,\n",
        );
        let cases = bitext(&p, &Labels::of(&Bot::embedded())).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].text, "hi, can you cancel order 12?");
        assert_eq!(cases[0].expected.name(), "cancel_order");
        assert_eq!(cases[1].expected.name(), "order_status");
        let bad = temp("bad.csv", "utterance,intent\nx,launch_rocket\n");
        assert!(bitext(&bad, &Labels::of(&Bot::embedded()))
            .unwrap_err()
            .contains("launch_rocket"));
    }

    #[test]
    fn reads_clinc_and_maps_the_shops_overlap() {
        let p = temp(
            "c.json",
            r#"{"val": [["hello there", "greeting"], ["will it rain", "weather"]],
                "oos_val": [["how do i get a pilot license", "oos"]]}"#,
        );
        let cases = clinc(&p).unwrap();
        let expected: Vec<&str> = cases.iter().map(|c| c.expected.name()).collect();
        assert_eq!(expected, ["greet", "out_of_scope", "out_of_scope"]);
    }
}
