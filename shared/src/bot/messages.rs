//! What the bot says, as data: `messages/<lang>.toml` maps dotted keys (`[order] late = "…"` is
//! `order.late`) to sentences with `{variables}`. Templates are parsed once, at load, and every
//! problem of the file is reported at once with its line and key; rendering then cannot fail on
//! the file's account, so a typo in a message is an init error and never a customer's surprise.
//!
//! The keys the Rust code renders are listed in `ENGINE_KEYS` with the variables each one is
//! given; a file must define them all and use no other variable in them. Other keys (flows',
//! intents' answers) are the bundle's business: it checks them against `vars_of`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use time::Date;
use toml::de::{DeTable, DeValue};

use super::error::{line_of, BundleError, BundleErrors, Lines};
use super::format::{self, Format};
use crate::money::Money;

/// Every key the Rust code outside the flow engine renders, with the variables it offers the
/// sentence (the flow engine's own are `flow::engine::ENGINE_KEYS`; `engine_keys` has both).
pub const ENGINE_KEYS: &[(&str, &[&str])] = &[
    // What the bot can help with, and what it says to a question outside it (dialogue).
    ("move.help", &[]),
    ("move.out_of_scope", &[]),
    // The moves' lines (dialogue/moves.rs); `{help}` is `move.help`.
    ("chat.greet", &["help"]),
    ("chat.thanks", &["help"]),
    ("chat.goodbye", &["help"]),
    ("chat.acknowledge", &["help"]),
    ("chat.nothing_else", &["help"]),
    ("chat.waiting_for_team", &[]),
    ("fallback.didnt_catch", &["help"]),
    ("fallback.out_of_scope", &["out_of_scope", "help"]),
    ("fallback.cant_help", &["help"]),
    ("fallback.clarify", &["first", "second"]),
    ("fallback.clarify_denied", &["help"]),
    ("handoff.done", &[]),
    ("handoff.already", &[]),
    // A language named in itself ("español"), and a message in one the bundle does not speak
    // (dialogue/moves.rs): `{languages}` lists the bundle's, each named in itself.
    ("language.name", &[]),
    ("language.unsupported", &["languages"]),
    // A turn whose lookup missed its budget or found its system down (dialogue).
    ("deferred.let_me_check", &[]),
    ("deferred.down_will_message", &[]),
    // A flow's read failed for good and the intent has no answer of its own.
    ("system.orders_down", &[]),
    // An agent takes a conversation over, gives it back, or resolves it (turn.rs, handoff.rs).
    ("agent.taken_over", &[]),
    ("agent.released", &[]),
    ("agent.resolved", &[]),
    // The buttons of a yes/no question (dialogue/offers.rs): labels that read as the answer.
    ("offer.yes", &[]),
    ("offer.no", &[]),
    // Proactive messages from vendors' events (fulfillment).
    ("event.this_order", &["order"]),
    ("event.your_order", &[]),
    ("event.shipped", &["order"]),
    ("event.shipped_with", &["order", "carrier"]),
    ("event.delayed", &["order"]),
    ("order.tracking", &["tracking_url"]),
    // How an order is named, and one line of "which order?" (the flows' host).
    ("order.summary.plain", &["order"]),
    ("order.summary.one_item", &["order", "item"]),
    ("order.summary.items", &["order", "item", "more"]),
    // A deferred answer that could not be given (fulfillment).
    ("deferred.gave_up", &[]),
    ("deferred.gave_up_late", &[]),
    ("deferred.failed", &[]),
    // A connector write a system refused (fulfillment); the flow had said it was on its way.
    ("write.failed", &[]),
    // Refund jobs (fulfillment).
    ("refund.issued", &["amount", "order", "reference"]),
    ("refund.failed", &["order"]),
    ("refund.refused.not_theirs", &["order"]),
    ("refund.refused.no_longer_offered", &["order"]),
    ("refund.refused.amount_not_covered", &["order"]),
    ("email.refund.subject", &["order", "amount", "reference"]),
    ("email.refund.text", &["order", "amount", "reference"]),
    // Linking a messaging channel's user to their account (`verify.needed` is the flow
    // engine's): the code emailed to the CRM's address (`channels::identity`), the same answer
    // whether or not the address has an account, and how the check went.
    ("verify.code_sent", &[]),
    ("verify.email.subject", &[]),
    ("verify.email.text", &["code"]),
    ("verify.done", &[]),
    ("verify.wrong_code", &["left"]),
    ("verify.expired", &[]),
    ("verify.phone_linked", &[]),
    // Messaging channels: a message that is not text, the label of WhatsApp's list button
    // (`LIMITS`), and the agents' note when WhatsApp's 24-hour window has closed.
    ("channel.text_only", &[]),
    ("channel.list_button", &[]),
    ("channel.window_closed", &["template"]),
    ("channel.window_closed.no_template", &[]),
];

/// Engine keys a provider shows in a field of limited length (in characters): a longer label
/// would have the provider refuse the whole message, so it is a load error instead.
pub const LIMITS: &[(&str, usize)] = &[
    // WhatsApp's interactive list: `action.button`, at most 20 characters.
    ("channel.list_button", 20),
];

/// Every key some Rust code says, with the variables it offers: a file must have them all.
pub fn engine_keys() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    ENGINE_KEYS
        .iter()
        .chain(crate::flow::engine::ENGINE_KEYS)
        .copied()
}

/// A variable's value; written for people, as the language's `[format]` says, when rendered.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    /// "$45.99" in English, "45,99 €" in Spanish.
    Money(Money),
    /// "November 20" in English, "20 de noviembre" in Spanish.
    Date(Date),
    Number(i64),
    /// A whole enumeration: "a, b and c" in English, "a, b y c" in Spanish.
    List(Vec<String>),
    /// "yes" in English, "sí" in Spanish.
    Bool(bool),
}

impl Value {
    fn write(&self, format: &Format, out: &mut String) {
        match self {
            Value::Text(t) => out.push_str(t),
            Value::Money(m) => out.push_str(&format.money(m)),
            Value::Date(d) => out.push_str(&format.date(*d)),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::List(items) => out.push_str(&format.list(items)),
            Value::Bool(b) => out.push_str(format.truth(*b)),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&Money> for Value {
    fn from(m: &Money) -> Self {
        Value::Money(m.clone())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Part {
    Text(String),
    Var(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Template {
    parts: Vec<Part>,
    /// The variables used, in order of first use.
    vars: Vec<String>,
    line: usize,
}

/// One language's sentences, parsed and checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Messages {
    /// By key. Hashed, not ordered: a turn renders several, and a tree of ~200 keys compared
    /// each lookup's key with a dozen others, each a read of its own heap allocation (misses,
    /// between turns), where a hash reads the one it finds.
    templates: HashMap<String, Template>,
    /// How this language writes money, dates and lists (`[format]`; English when absent).
    format: Format,
}

/// The shipped shop bot's English sentences, parsed once per process: the one place the
/// engine's messages come from until the bundle (`bot::Bot`) owns them.
pub fn embedded() -> Arc<Messages> {
    static EMBEDDED: OnceLock<Arc<Messages>> = OnceLock::new();
    EMBEDDED
        .get_or_init(|| {
            let text = include_str!("../../../config/bot/messages/en.toml");
            // Checked by a unit test: failing here is a build that shipped a broken file.
            Arc::new(
                Messages::parse("config/bot/messages/en.toml", text)
                    .unwrap_or_else(|e| panic!("the embedded messages do not load:\n{e}")),
            )
        })
        .clone()
}

impl Messages {
    /// Parses and checks a messages file; `file` names it in the errors.
    pub fn parse(file: &str, text: &str) -> Result<Messages, BundleErrors> {
        let (messages, errors) = Self::parse_partial(file, text);
        errors.into_result(messages)
    }

    /// The keys that could be read, and the problems of the others: the bundle still checks
    /// what refers to the keys present, so one run names every problem.
    pub fn parse_partial(file: &str, text: &str) -> (Messages, BundleErrors) {
        let mut errors = Vec::new();
        let (table, syntax) = DeTable::parse_recoverable(text);
        for e in &syntax {
            let line = e.span().map(|s| line_of(text, s.start));
            errors.push(BundleError::new(file, line, "", e.message().trim()));
        }
        let mut templates = HashMap::new();
        let lines = Lines::new(text);
        collect(
            file,
            &lines,
            "",
            table.get_ref(),
            &mut templates,
            &mut errors,
        );
        let written = table
            .get_ref()
            .iter()
            .find(|(k, _)| k.get_ref() == format::TABLE);
        let format = match written {
            Some((k, v)) => {
                let line = lines.of(k.span().start);
                Format::parse(file, text, v.get_ref(), line, &mut errors)
            }
            None => Format::default(),
        };
        let messages = Messages { templates, format };
        // A file that does not parse yields only part of its keys: "missing" would be noise.
        if syntax.is_empty() {
            messages.check_engine_keys(file, &mut errors);
        }
        errors.sort_by_key(|e| e.line);
        (messages, BundleErrors(errors))
    }

    fn check_engine_keys(&self, file: &str, errors: &mut Vec<BundleError>) {
        for (key, offered) in engine_keys() {
            let Some(t) = self.templates.get(key) else {
                errors.push(BundleError::new(
                    file,
                    None,
                    key,
                    "missing: the bot says this message, so every language needs it",
                ));
                continue;
            };
            if let Some((_, max)) = LIMITS.iter().find(|(k, _)| *k == key) {
                let len: usize = t
                    .parts
                    .iter()
                    .map(|p| match p {
                        Part::Text(s) => s.chars().count(),
                        Part::Var(_) => 0,
                    })
                    .sum();
                if len > *max {
                    let message = format!("{len} characters: where it is shown, at most {max}");
                    errors.push(BundleError::new(file, Some(t.line), key, message));
                }
            }
            for var in t.vars.iter().filter(|v| !offered.contains(&v.as_str())) {
                let message = if offered.is_empty() {
                    format!("unknown variable {{{var}}}: this message has none")
                } else {
                    let names: Vec<String> = offered.iter().map(|o| format!("{{{o}}}")).collect();
                    format!(
                        "unknown variable {{{var}}}: this message may use {}",
                        names.join(", ")
                    )
                };
                errors.push(BundleError::new(file, Some(t.line), key, message));
            }
        }
    }

    /// The sentence for `key` with its variables filled in. A key or variable the file lacks
    /// (a bug: loading checks the engine's keys) is logged and shown as `{name}`, never a panic.
    pub fn render(&self, key: &str, vars: &[(&str, Value)]) -> String {
        let Some(t) = self.templates.get(key) else {
            tracing::error!(key, "no such message");
            return format!("{{{key}}}");
        };
        let mut out = String::new();
        for part in &t.parts {
            match part {
                Part::Text(s) => out.push_str(s),
                Part::Var(name) => match vars.iter().find(|(n, _)| n == name) {
                    Some((_, v)) => v.write(&self.format, &mut out),
                    None => {
                        tracing::error!(key, variable = %name, "message variable not given");
                        out.push_str(&format!("{{{name}}}"));
                    }
                },
            }
        }
        out
    }

    /// The variables a message uses; `None` when the file has no such key.
    pub fn vars_of(&self, key: &str) -> Option<&[String]> {
        self.templates.get(key).map(|t| t.vars.as_slice())
    }

    /// The line a key is defined on, for the bundle's own errors about it.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.templates.get(key).map(|t| t.line)
    }

    /// Every key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.templates.keys().map(String::as_str)
    }

    /// How this language writes values, for text composed outside a sentence of the file
    /// (a flow's `"{o.total} on {o.placed_at}"`, a list of names).
    pub fn format(&self) -> &Format {
        &self.format
    }
}

/// Walks nested tables into dotted keys, parsing each string into a template.
fn collect(
    file: &str,
    lines: &Lines,
    prefix: &str,
    table: &DeTable<'_>,
    templates: &mut HashMap<String, Template>,
    errors: &mut Vec<BundleError>,
) {
    for (k, v) in table {
        // `[format]` says how values are written (`Format::parse`), not what the bot says.
        if prefix.is_empty() && k.get_ref() == format::TABLE {
            continue;
        }
        let key = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        let line = lines.of(k.span().start);
        // `"order.late" = …` and `[order] late = …` are the same key to the bot.
        if let Some(first) = templates.get(&key) {
            let message = format!("defined twice: also on line {}", first.line);
            errors.push(BundleError::new(file, Some(line), key, message));
            continue;
        }
        match v.get_ref() {
            DeValue::Table(inner) => collect(file, lines, &key, inner, templates, errors),
            DeValue::String(s) => match parse_template(s) {
                Ok(parts) => {
                    let mut vars: Vec<String> = Vec::new();
                    for p in &parts {
                        if let Part::Var(name) = p {
                            if !vars.contains(name) {
                                vars.push(name.clone());
                            }
                        }
                    }
                    templates.insert(key, Template { parts, vars, line });
                }
                Err(problem) => errors.push(BundleError::new(file, Some(line), key, problem)),
            },
            other => errors.push(BundleError::new(
                file,
                Some(line),
                key,
                format!("must be a string (a sentence), not {}", kind(other)),
            )),
        }
    }
}

pub(super) fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "a number",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// `Hello {name}`, with `{{` and `}}` for literal braces.
pub(super) fn parse_template(s: &str) -> Result<Vec<Part>, String> {
    if s.trim().is_empty() {
        return Err("empty: say something, or leave the key out".into());
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                literal.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                literal.push('}');
            }
            '}' => return Err("unmatched }: write }} for a literal brace".into()),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => {
                            return Err(format!(
                                "unclosed {{{name}: close it with }}, or write {{{{ for a literal brace"
                            ))
                        }
                    }
                }
                if !is_variable_name(&name) {
                    return Err(format!(
                        "{{{name}}} is not a variable: names are lowercase letters, digits and _"
                    ));
                }
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(Part::Var(name));
            }
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(parts)
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `extra` (keys at the top level, dotted, so that they may share tables with the engine's)
    /// then every engine key `extra` leaves out, without variables. Those are quoted whole
    /// (`"channel.window_closed" = …`): one key may start another, which as dotted keys would
    /// make one name both a sentence and a table.
    fn with_engine_keys(extra: &str) -> String {
        let mut text = String::from(extra);
        text.push('\n');
        for (key, _) in engine_keys() {
            if !extra.contains(&format!("{key} =")) {
                text.push_str(&format!("\"{key}\" = \"x\"\n"));
            }
        }
        text
    }

    fn errors(text: &str) -> Vec<BundleError> {
        Messages::parse("en.toml", text).unwrap_err().0
    }

    #[test]
    fn nested_tables_become_dotted_keys() {
        let mut text = with_engine_keys("");
        let before = text.lines().count();
        text.push_str("[shop]\nlate = \"Late!\"\n[shop.refund]\nasked = \"Asked.\"\n");
        let m = Messages::parse("en.toml", &text).unwrap();
        assert_eq!(m.render("shop.late", &[]), "Late!");
        assert_eq!(m.render("shop.refund.asked", &[]), "Asked.");
        assert_eq!(m.line_of("shop.refund.asked"), Some(before + 4));
        assert!(m.keys().any(|k| k == "agent.released"));
    }

    #[test]
    fn renders_variables_money_dates_numbers_and_lists() {
        let text = with_engine_keys(
            "s = \"{n}. {name} costs {price}, due {due}; try {list}. {{literal}} {name}\"",
        );
        let m = Messages::parse("en.toml", &text).unwrap();
        let price = Money {
            amount_cents: 4599,
            currency: "USD".into(),
        };
        let out = m.render(
            "s",
            &[
                ("name", "Lamp".into()),
                ("price", (&price).into()),
                ("due", Value::Date(time::macros::date!(2026 - 11 - 20))),
                ("n", Value::Number(2)),
                (
                    "list",
                    Value::List(vec!["a".into(), "b".into(), "c".into()]),
                ),
            ],
        );
        // A list is a whole enumeration: English says "a, b and c" (no message of the shipped
        // bundles gives one yet; the products' `{examples}` are a sample, written as text).
        assert_eq!(
            out,
            "2. Lamp costs $45.99, due November 20; try a, b and c. {literal} Lamp"
        );
        assert_eq!(
            m.vars_of("s").unwrap(),
            ["n", "name", "price", "due", "list"]
        );
    }

    #[test]
    fn the_format_table_writes_the_values_and_is_no_sentence() {
        // The table last: `with_engine_keys` appends top-level keys.
        let mut text = with_engine_keys("s = \"{price}, {due}, {list}, {gift}\"");
        text.push_str(
            "[format]\nmoney = \"{amount} {symbol}\"\ndecimal = \",\"\nthousands = \".\"\ndate = \"{day} de {month}\"\nmonths = [\"enero\", \"febrero\", \"marzo\", \"abril\", \"mayo\", \"junio\", \"julio\", \"agosto\", \"septiembre\", \"octubre\", \"noviembre\", \"diciembre\"]\nlist_last = \" y \"\nyes = \"sí\"",
        );
        let m = Messages::parse("es.toml", &text).unwrap();
        let price = Money {
            amount_cents: 123450,
            currency: "EUR".into(),
        };
        let out = m.render(
            "s",
            &[
                ("price", (&price).into()),
                ("due", Value::Date(time::macros::date!(2026 - 11 - 20))),
                (
                    "list",
                    Value::List(vec!["a".into(), "b".into(), "c".into()]),
                ),
                ("gift", Value::Bool(true)),
            ],
        );
        assert_eq!(out, "1.234,50 €, 20 de noviembre, a, b y c, sí");
        assert!(m.keys().all(|k| !k.starts_with("format")));
        assert_eq!(m.format().list(&["x", "y"]), "x y y");
        // A file without the table writes English, as before the table existed.
        let en = Messages::parse("en.toml", &with_engine_keys("s = \"{price}\"")).unwrap();
        assert_eq!(en.format(), &Format::default());
    }

    #[test]
    fn a_bad_format_value_is_an_error_of_the_file() {
        let mut text = with_engine_keys("");
        text.push_str("[format]\nmonths = [\"enero\"]\ncurrency = \"EUR\"\n");
        let errs = errors(&text);
        let found: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        let first = text.lines().position(|l| l == "[format]").unwrap() + 1;
        assert_eq!(
            found,
            [
                format!("en.toml:{}: format.months: has 1 names: it needs the twelve months, January first", first + 1),
                format!("en.toml:{}: format.currency: unknown key (expected one of: money, decimal, thousands, date, months, list_separator, list_last, yes, no)", first + 2),
            ]
        );
    }

    #[test]
    fn a_missing_key_or_variable_renders_its_name() {
        let m = Messages::parse("en.toml", &with_engine_keys("s = \"Hi {name}\"")).unwrap();
        assert_eq!(m.render("nope", &[]), "{nope}");
        assert_eq!(m.render("s", &[]), "Hi {name}");
    }

    #[test]
    fn every_engine_key_is_required() {
        let errs = errors("agent.taken_over = \"x\"");
        assert_eq!(errs.len(), engine_keys().count() - 1, "{errs:?}");
        let e = errs.iter().find(|e| e.key == "agent.released").unwrap();
        assert_eq!(e.file, "en.toml");
        assert!(e.message.contains("missing"), "{e}");
    }

    #[test]
    fn a_label_a_provider_limits_is_checked_at_load() {
        let fits = with_engine_keys("channel.list_button = \"Elegir una opción\"");
        assert!(Messages::parse("en.toml", &fits).is_ok());
        let long = with_engine_keys("channel.list_button = \"Choose one of these options\"");
        let errs = errors(&long);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "en.toml:1: channel.list_button: 27 characters: where it is shown, at most 20"
        );
    }

    #[test]
    fn an_engine_key_uses_only_the_variables_it_is_offered() {
        let text = with_engine_keys("refund.failed = \"No refund for #{order}, {oder}\"");
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0].to_string(),
            "en.toml:1: refund.failed: unknown variable {oder}: this message may use {order}"
        );
    }

    #[test]
    fn other_keys_may_use_any_variable() {
        let m = Messages::parse("en.toml", &with_engine_keys("flow.x = \"{anything}\""));
        assert_eq!(m.unwrap().vars_of("flow.x").unwrap(), ["anything"]);
    }

    #[test]
    fn template_mistakes_name_file_line_and_key() {
        let text = with_engine_keys(
            "a = \"open {name\"\nb = \"stray } brace\"\nc = \"  \"\nd = 3\ne = \"{Bad Name}\"\nf = [\"x\"]",
        );
        let errs = errors(&text);
        let found: Vec<(Option<usize>, &str)> =
            errs.iter().map(|e| (e.line, e.key.as_str())).collect();
        assert_eq!(
            found,
            [
                (Some(1), "a"),
                (Some(2), "b"),
                (Some(3), "c"),
                (Some(4), "d"),
                (Some(5), "e"),
                (Some(6), "f")
            ]
        );
        assert!(errs[0].message.contains("unclosed"), "{}", errs[0]);
        assert!(errs[1].message.contains("unmatched }"), "{}", errs[1]);
        assert!(errs[2].message.contains("empty"), "{}", errs[2]);
        assert!(errs[3].message.contains("not a number"), "{}", errs[3]);
        assert!(errs[4].message.contains("not a variable"), "{}", errs[4]);
        assert!(errs[5].message.contains("not a list"), "{}", errs[5]);
    }

    #[test]
    fn a_quoted_dotted_key_is_the_same_key_as_a_nested_one() {
        let m = Messages::parse("en.toml", &with_engine_keys("\"answer.x\" = \"X\""));
        assert_eq!(m.unwrap().render("answer.x", &[]), "X");
        let errs = errors(&with_engine_keys(
            "\"shop.late\" = \"A\"\nshop.late = \"B\"",
        ));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].key, "shop.late");
        assert!(errs[0].message.contains("defined twice"), "{}", errs[0]);
    }

    #[test]
    fn a_syntax_error_has_its_line() {
        let errs = errors("a = \"fine\"\nb = \"unterminated\n");
        assert_eq!(errs[0].line, Some(2), "{errs:?}");
        assert!(
            errs.iter().all(|e| !e.message.contains("missing")),
            "{errs:?}"
        );
    }

    #[test]
    fn the_shipped_file_loads() {
        let m = embedded();
        // Its `[format]` spells out the defaults: English bundles without one say the same.
        assert_eq!(m.format(), &Format::default());
        for (key, _) in engine_keys() {
            assert!(m.vars_of(key).is_some(), "{key}");
        }
    }

    /// The built-in flows validate against the shipped sentences: every key they say is there,
    /// using only variables the flow has at that step. (`answer.*` are the intents' answers,
    /// which another file of the bundle brings.)
    #[test]
    fn the_shipped_flows_find_their_sentences() {
        use crate::flow::catalog::{operation_fields, FlowCatalog, Operation};
        use crate::flow::SlotType;

        struct Shipped(Arc<Messages>);
        impl FlowCatalog for Shipped {
            fn message_vars(&self, key: &str) -> Option<Vec<String>> {
                if key.starts_with("answer.") {
                    return Some(Vec::new());
                }
                self.0.vars_of(key).map(<[String]>::to_vec)
            }
            fn slot(&self, name: &str) -> Option<SlotType> {
                match name {
                    "order" => Some(SlotType::Order),
                    "product" => Some(SlotType::Product),
                    "choice" => Some(SlotType::Text),
                    _ => None,
                }
            }
            fn operation(&self, name: &str) -> Operation {
                let op = name
                    .split_once('.')
                    .and_then(|(s, o)| crate::connectors::catalog::Op::find(s, o));
                op.map(operation_fields).unwrap_or(Operation::Unknown)
            }
        }
        let catalog = Shipped(embedded());
        let actions = crate::flow::actions::Actions::builtin();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/bot/flows");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let file = format!("config/bot/flows/{name}.toml");
            crate::flow::load(&name, &file, &text, &catalog, &actions)
                .unwrap_or_else(|e| panic!("{e}"));
            checked += 1;
        }
        assert!(checked >= 7, "{checked} flows");
        for slot in ["order", "product", "choice"] {
            for key in ["prompt", "reprompt"] {
                let key = format!("slot.{slot}.{key}");
                assert!(catalog.0.vars_of(&key).is_some(), "{key}");
            }
        }
    }
}
