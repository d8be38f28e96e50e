//! `switchboard import rasa`: a Rasa project's intents, training examples and responses as a
//! bundle's files, so a Rasa user starts from their own bot. What Rasa keeps elsewhere (stories,
//! rules, forms, custom actions) has no counterpart to convert to yet and is left out.
//!
//! nlu.yml: `nlu:` items with `intent:` and an `examples:` block of `- ` lines; entities are
//! annotated `[text](entity)` or `[text]{"entity": "..."}`. domain.yml: `responses:` maps
//! `utter_*` names to variants (`- text: ...`). Synonyms, regexes and lookups are skipped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Deserialize;

#[derive(Deserialize)]
struct Nlu {
    #[serde(default)]
    nlu: Vec<NluItem>,
}

#[derive(Deserialize)]
struct NluItem {
    intent: Option<String>,
    #[serde(default)]
    examples: Option<String>,
}

#[derive(Deserialize)]
struct Domain {
    #[serde(default)]
    responses: BTreeMap<String, Vec<Response>>,
}

#[derive(Deserialize)]
struct Response {
    text: Option<String>,
}

/// What was imported, for the operator to check.
#[derive(Debug, Default, PartialEq)]
pub struct Imported {
    pub intents: usize,
    pub examples: usize,
    pub messages: usize,
    /// Intents with an answer (a `utter_<intent>` response).
    pub answered: usize,
    /// Intents without a response: they hand the conversation to a person until an answer or
    /// a flow is written for them.
    pub handed_off: Vec<String>,
    /// What was changed on the way in, for the operator to look at.
    pub notes: Vec<String>,
}

/// What the bot says for an imported intent that had no response: honest, and never a dead end.
const NO_ANSWER_YET: &str =
    "I'll ask a person from our team to help with that — they'll reply right here.";

/// The conversational moves our engine interprets, by the names Rasa projects give them.
fn move_name(intent: &str) -> Option<&'static str> {
    Some(match intent {
        "greet" | "hello" | "greeting" => "greet",
        "goodbye" | "bye" => "goodbye",
        "affirm" | "yes" => "affirm",
        "deny" | "no" => "deny",
        "thanks" | "thank" | "thankyou" | "thank_you" => "thanks",
        "out_of_scope" => "out_of_scope",
        "human_handoff" | "human" | "agent" | "human_agent" => "human_agent",
        _ => return None,
    })
}

/// Rasa fills `{slot}` in responses from its slots; ours has no such slots, so the reference is
/// taken out (and reported) rather than left to show as "{name}".
fn without_slot_references(text: &str) -> (String, Vec<String>) {
    static SLOT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r",?\s?\{([^{}]*)\}").expect("a valid pattern"));
    let slot = &*SLOT;
    let found = slot.captures_iter(text).map(|c| c[1].to_string()).collect();
    (slot.replace_all(text, "").trim().to_string(), found)
}

/// Our example placeholders, by the entity names Rasa projects commonly use.
fn placeholder(entity: &str) -> Option<&'static str> {
    Some(match entity.to_ascii_lowercase().as_str() {
        "order" | "order_id" | "order_number" | "order_ref" => "<order>",
        "product" | "item" | "product_name" => "<product>",
        "email" | "email_address" => "<email>",
        "phone" | "phone_number" => "<phone>",
        "amount" | "price" | "money" => "<amount>",
        "date" | "time" | "day" => "<date>",
        "city" => "<city>",
        "country" => "<country>",
        _ => return None,
    })
}

/// A Rasa example as one of our templates: annotated entities become a placeholder when they
/// are a kind we fill, else their plain text; characters that mean something in a template
/// (`{ } | < >`) are dropped.
pub fn template(example: &str) -> String {
    // Compiled once for the whole file, not per example.
    static ANNOTATION: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"\[([^\]]*)\](?:\(([^)]*)\)|\{[^}]*"entity"\s*:\s*"([^"]*)"[^}]*\})"#)
            .expect("a valid pattern")
    });
    let converted = ANNOTATION.replace_all(example, |c: &Captures| {
        let text = &c[1];
        let entity = c.get(2).or(c.get(3)).map_or("", |m| m.as_str());
        // `(entity:value)` is Rasa's old synonym form.
        let entity = entity.split(':').next().unwrap_or_default();
        // Marked apart until the template's own special characters are dropped.
        placeholder(entity).map_or_else(
            || text.to_string(),
            |p| p.replace('<', "\u{1}").replace('>', "\u{2}"),
        )
    });
    let kept: String = converted
        .chars()
        .filter(|c| !matches!(c, '{' | '}' | '|' | '<' | '>'))
        .collect::<String>()
        .replace('\u{1}', "<")
        .replace('\u{2}', ">");
    let words = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    // A leading `#` would make the line a comment.
    words.trim_start_matches('#').trim().to_string()
}

fn toml_string(s: &str) -> String {
    // TOML basic strings escape like JSON strings do.
    serde_json::to_string(s).expect("a string serialises")
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The default bundle's sentences the engine says (system down, handoffs, fallbacks, …): an
/// imported bot needs every one of them to load. Its intents' answers and its "what I can help
/// with" lines are the shop's own, so they are left out.
fn engine_sentences() -> String {
    const SHOP: &str = include_str!("../../../config/bot/messages/en.toml");
    let mut out = String::new();
    let mut skipping = false;
    for line in SHOP.lines() {
        if line.starts_with('[') {
            skipping = line == "[answer]" || line == "[move]";
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Converts `nlu` (and `domain`) into a bundle layout under `out`.
pub fn import(nlu: &Path, domain: Option<&Path>, out: &Path) -> Result<Imported, String> {
    // Never into an existing bundle: its messages file and same-named intents would be
    // overwritten without a word.
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{}: not empty: import into a new directory, then copy what you want",
            out.display()
        ));
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
    };
    let parsed: Nlu =
        serde_norway::from_str(&read(nlu)?).map_err(|e| format!("{}: {e}", nlu.display()))?;
    let responses = match domain {
        Some(d) => {
            serde_norway::from_str::<Domain>(&read(d)?)
                .map_err(|e| format!("{}: {e}", d.display()))?
                .responses
        }
        None => BTreeMap::new(),
    };
    let mut examples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for item in parsed.nlu {
        let Some(intent) = item.intent else { continue };
        let intent = intent.to_ascii_lowercase().replace(['-', ' '], "_");
        if !is_name(&intent) {
            return Err(format!(
                "{}: intent {intent:?} cannot be a file name: use a-z, 0-9 and _",
                nlu.display()
            ));
        }
        if intent == "unknown" {
            return Err(format!(
                "{}: intent \"unknown\" is what our bot calls a message it did not understand: rename it",
                nlu.display()
            ));
        }
        let intent = move_name(&intent).map_or(intent, str::to_string);
        let lines = examples.entry(intent).or_default();
        for line in item.examples.unwrap_or_default().lines() {
            if let Some(example) = line.trim().strip_prefix("- ") {
                let t = template(example);
                if !t.is_empty() {
                    lines.push(t);
                }
            }
        }
    }
    let mut done = Imported::default();
    let write = |path: &Path, text: &str| {
        std::fs::create_dir_all(path.parent().expect("a file in a directory"))
            .and_then(|()| std::fs::write(path, text))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    };
    // Top-level keys first: after a `[table]` header they would belong to that table.
    let mut messages =
        String::from("# Imported from Rasa responses (utter_<name> -> answer.<name>).\n");
    for (name, variants) in &responses {
        let Some(key) = name.strip_prefix("utter_").filter(|k| is_name(k)) else {
            continue;
        };
        let texts: Vec<&str> = variants.iter().filter_map(|v| v.text.as_deref()).collect();
        let Some((first, rest)) = texts.split_first() else {
            continue;
        };
        // Rasa picks a variant at random; a message here is one sentence, kept as the first.
        for other in rest {
            let _ = writeln!(messages, "# also: {}", toml_string(other));
        }
        let (first, slots) = without_slot_references(first);
        for slot in slots {
            done.notes
                .push(format!("{name}: the Rasa slot {{{slot}}} was taken out"));
        }
        let _ = writeln!(messages, "\"answer.{key}\" = {}", toml_string(&first));
        done.messages += 1;
    }
    let name_of = |intent: &str| {
        move_name(intent)
            .and_then(|m| {
                responses
                    .keys()
                    .find(|r| r.strip_prefix("utter_").and_then(move_name) == Some(m))
            })
            .and_then(|r| r.strip_prefix("utter_"))
            .unwrap_or(intent)
            .to_string()
    };
    let mut def_texts = Vec::new();
    for (intent, lines) in &examples {
        let response = name_of(intent);
        let answered = responses.contains_key(&format!("utter_{response}"));
        let mut def = format!("description = {}\n", toml_string(&intent.replace('_', " ")));
        if answered {
            let _ = writeln!(def, "answer = \"answer.{response}\"");
            done.answered += 1;
        } else if move_name(intent).is_none() {
            let _ = writeln!(def, "answer = \"answer.{intent}\"\nhandoff = true");
            let _ = writeln!(
                messages,
                "\"answer.{intent}\" = {}",
                toml_string(NO_ANSWER_YET)
            );
            done.handed_off.push(intent.clone());
        }
        def_texts.push((intent, lines, def));
    }
    let topics: Vec<String> = def_texts
        .iter()
        .filter(|(intent, _, _)| move_name(intent).is_none())
        .map(|(intent, _, _)| format!("• {}", intent.replace('_', " ")))
        .collect();
    let _ = writeln!(
        messages,
        "\n# What the bot can help with (after \"hi\", and when it did not understand).\n\"move.help\" = {}\n\"move.out_of_scope\" = {}",
        toml_string(&format!("I can help with:\n{}", topics.join("\n"))),
        toml_string("That's outside what I can help with here.")
    );
    messages
        .push_str("\n# The engine's own sentences, as the shop bot says them: make them yours.\n");
    messages.push_str(&engine_sentences());
    write(&out.join("messages/en.toml"), &messages)?;
    let bot_name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .map(|n| {
            n.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "imported".into());
    write(
        &out.join("bot.toml"),
        &format!(
            "# Imported from Rasa. Thresholds as the shop bot's; see config/bot/bot.toml.\nname = {}\nlanguages = [\"en\"]\n\n[understanding]\naccept = 0.5\nclarify = 0.25\n",
            toml_string(&bot_name)
        ),
    )?;
    for (intent, lines, def) in def_texts {
        write(&out.join(format!("intents/{intent}.toml")), &def)?;
        let text = format!("# {intent}: imported from Rasa\n{}\n", lines.join("\n"));
        write(&out.join(format!("examples/en/{intent}.txt")), &text)?;
        done.intents += 1;
        done.examples += lines.len();
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_become_placeholders_or_plain_text() {
        assert_eq!(
            template("where is order [1234](order_id)?"),
            "where is order <order>?"
        );
        assert_eq!(
            template(r#"is the [desk lamp]{"entity": "product"} back"#),
            "is the <product> back"
        );
        assert_eq!(template("I'm [Ana](name)"), "I'm Ana");
        assert_eq!(template("a {weird} | <line>"), "a weird line");
        assert_eq!(template("[red](colour:red) shoes"), "red shoes");
    }
}
