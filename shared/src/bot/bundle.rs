//! A bundle loaded and checked as a whole: its settings (`bot.toml`), intents, which intents have
//! examples in which language, messages, flows and model. Either every check passes or loading
//! fails with all the problems found, so no function ever serves a half-loaded bot.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::error::{line_of, BundleError, BundleErrors};
use super::flows::{self, FlowEngine};
use super::intents::{self, Action, IntentDef};
use super::language_files::LanguageFiles;
use super::messages::Messages;
use super::toml_file::{self, Schema, LEAF};
use super::words::{self, Words};
use crate::connectors::catalog::Op;
use crate::connectors::config::{self as connectors, find_op, DeclaredOps};
use crate::flow::actions::Actions;
use crate::flow::Flow;
use crate::intent_model::IntentModel;
use crate::nlu::{Intent, Move, Nlu, Thresholds};

/// Where a deployment's own bundle is (a directory); without it, the compiled-in one.
pub const BOT_ENV: &str = "SWITCHBOARD_BOT";

/// A bundle's own connector file: the systems of the company's own its flows call, declared
/// beside them (read by [`Bot::load`]; a function reads its connectors from
/// `SWITCHBOARD_CONNECTORS_FILE` instead, which names this file too).
pub const CONNECTORS_FILE: &str = "connectors.toml";

#[derive(Debug)]
pub struct Bot {
    /// Where it was loaded from, as its errors name it.
    pub source: String,
    pub name: String,
    /// The first is the default.
    pub languages: Vec<String>,
    pub thresholds: Thresholds,
    pub slots: BTreeMap<String, Slot>,
    /// The connector operations its flows may call.
    pub operations: Vec<String>,
    /// The operations of the company's own systems its flows were checked against (see
    /// [`Bot::load`]).
    pub declared: DeclaredOps,
    pub intents: BTreeMap<Intent, IntentDef>,
    /// What a message that is only an order number asks when the conversation is about
    /// nothing yet (`[understanding] order_number`).
    pub order_number_intent: Option<Intent>,
    /// The intent classifier, per language (`model_file` names each one's file).
    models: BTreeMap<String, IntentModel>,
    /// Per language.
    messages: BTreeMap<String, Arc<Messages>>,
    /// How each language is read (`words/<lang>.toml`): every listed language's, and any other
    /// the bundle has a file for.
    words: BTreeMap<String, Words>,
    /// `flows/<name>.toml`, parsed and validated.
    pub flows: BTreeMap<String, Flow>,
    /// Runs the flows.
    pub engine: Arc<FlowEngine>,
}

/// A bundle slot (`[slots.NAME]` of bot.toml) is what the flow engine asks for: one type for both.
pub type Slot = crate::flow::SlotDef;
pub type SlotKind = crate::flow::SlotType;

static BOT_SCHEMA: Schema = Schema::Keys(&[
    ("name", &LEAF),
    ("languages", &LEAF),
    (
        "understanding",
        &Schema::Keys(&[
            ("accept", &LEAF),
            ("clarify", &LEAF),
            ("out_of_scope", &LEAF),
            ("order_number", &LEAF),
        ]),
    ),
    (
        "slots",
        &Schema::Map(&Schema::Keys(&[
            ("type", &LEAF),
            ("prompt", &LEAF),
            ("reprompt", &LEAF),
            ("attempts", &LEAF),
        ])),
    ),
    ("connectors", &Schema::Keys(&[("operations", &LEAF)])),
]);

#[derive(Deserialize)]
struct RawBot {
    name: Spanned<String>,
    languages: Spanned<Vec<String>>,
    #[serde(default)]
    understanding: RawUnderstanding,
    #[serde(default)]
    slots: BTreeMap<String, Spanned<RawSlot>>,
    #[serde(default)]
    connectors: RawConnectors,
}

#[derive(Deserialize, Default)]
struct RawUnderstanding {
    accept: Option<Spanned<f32>>,
    clarify: Option<Spanned<f32>>,
    out_of_scope: Option<Spanned<f32>>,
    order_number: Option<Spanned<String>>,
}

#[derive(Deserialize)]
struct RawSlot {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    prompt: Spanned<String>,
    reprompt: Spanned<String>,
    #[serde(default = "default_attempts")]
    attempts: u32,
}

fn default_attempts() -> u32 {
    2
}

#[derive(Deserialize, Default)]
struct RawConnectors {
    #[serde(default)]
    operations: Vec<Spanned<String>>,
}

/// A bundle's files by their path inside it (`/`-separated): the compiled-in bundle's borrowed
/// from the binary, a directory's read into memory.
pub(super) type Files = BTreeMap<String, Cow<'static, [u8]>>;

impl Bot {
    /// The bundle in `dir`, its flows checked against the built-in operations and those its
    /// own `connectors.toml` declares (if it has one): what the offline tools load.
    pub fn load(dir: &Path) -> Result<Bot, BundleErrors> {
        Self::load_from(dir, None)
    }

    /// The bundle in `dir`, its flows checked against the built-in operations and `declared`
    /// (a function's connector configuration, or files named on the command line) — its own
    /// `connectors.toml` is not read: a flow may call only what the caller can reach.
    pub fn load_with(dir: &Path, declared: &DeclaredOps) -> Result<Bot, BundleErrors> {
        Self::load_from(dir, Some(declared))
    }

    fn load_from(dir: &Path, declared: Option<&DeclaredOps>) -> Result<Bot, BundleErrors> {
        let root = dir.display().to_string();
        let files = read_files(dir, |p| std::fs::read(p).map(Cow::Owned))?;
        Self::from_files(&root, &files, declared, None)
    }

    /// The default bundle compiled into the binaries (a unit test loads it on every build).
    /// Only with the `bundled-bot` feature: a Lambda binary (built without it) that asked for
    /// it would not compile, rather than stop at init.
    #[cfg(feature = "bundled-bot")]
    pub fn embedded() -> Arc<Bot> {
        match Self::try_embedded() {
            Ok(bot) => bot,
            Err(e) => panic!("the compiled-in bundle is broken:\n{e}"),
        }
    }

    #[cfg(feature = "bundled-bot")]
    pub fn try_embedded() -> Result<Arc<Bot>, BundleErrors> {
        use super::embedded;
        static BOT: std::sync::LazyLock<Result<Arc<Bot>, BundleErrors>> =
            std::sync::LazyLock::new(|| {
                let files: Files = embedded::FILES
                    .iter()
                    .map(|(p, b)| (p.to_string(), Cow::Borrowed(*b)))
                    .collect();
                Bot::from_files(embedded::ROOT, &files, None, None).map(Arc::new)
            });
        BOT.clone()
    }

    /// A build without the `bundled-bot` feature (the Lambda binaries) has only the words files
    /// compiled in: its bundle is a directory.
    #[cfg(not(feature = "bundled-bot"))]
    pub fn try_embedded() -> Result<Arc<Bot>, BundleErrors> {
        Err(BundleError::new(
            BOT_ENV,
            None,
            "",
            "not set, and this build has no bundle compiled in (it was built without the \
             `bundled-bot` feature): set it to the bundle's directory (deployed: /opt/bot, the \
             template's BotLayer)",
        )
        .into())
    }

    /// `SWITCHBOARD_BOT`'s bundle, else the compiled-in one.
    pub fn from_env() -> Result<Arc<Bot>, BundleErrors> {
        Self::from_setting(std::env::var(BOT_ENV).ok().as_deref())
    }

    /// The bundle in `dir` when set, else the compiled-in one.
    pub fn from_setting(dir: Option<&str>) -> Result<Arc<Bot>, BundleErrors> {
        match dir.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => Self::load(Path::new(d)).map(Arc::new),
            None => Self::try_embedded(),
        }
    }

    pub fn nlu(self: &Arc<Self>) -> Nlu {
        Nlu::new(self.clone())
    }

    pub fn intent(&self, intent: &Intent) -> Option<&IntentDef> {
        self.intents.get(intent)
    }

    /// The default language's messages (the first of `languages`; loading refuses a bundle
    /// without them).
    pub fn default_messages(&self) -> Arc<Messages> {
        self.languages
            .first()
            .and_then(|l| self.messages.get(l))
            .cloned()
            .unwrap_or_default()
    }

    pub fn messages(&self, language: &str) -> Option<&Arc<Messages>> {
        self.messages.get(language)
    }

    /// The bundle's language `language` is written in, or its default (the first) for one it
    /// does not speak.
    pub fn language<'a>(&'a self, language: &str) -> &'a str {
        self.languages
            .iter()
            .find(|l| *l == language)
            .or(self.languages.first())
            .map_or("", String::as_str)
    }

    /// `language`'s intent classifier (the default language's for one the bundle does not
    /// speak; loading refuses a bundle without a model for each).
    pub fn model(&self, language: &str) -> &IntentModel {
        self.models
            .get(self.language(language))
            .or_else(|| self.models.values().next())
            .expect("a loaded bundle has a model per language")
    }

    /// How `language` is read; a language the bundle has no words for reads with the default
    /// language's (loading refuses a bundle without them).
    pub fn words(&self, language: &str) -> &Words {
        self.words
            .get(language)
            .or_else(|| self.languages.first().and_then(|l| self.words.get(l)))
            .unwrap_or_else(|| Words::english())
    }

    /// The default language's words.
    pub fn default_words(&self) -> &Words {
        self.words(self.languages.first().map_or("", String::as_str))
    }

    /// `ahead`: its languages' files and flows parsed already (`BundleLoad`), used when they
    /// are `files`' languages as bot.toml lists them.
    pub(super) fn from_files(
        root: &str,
        files: &Files,
        declared: Option<&DeclaredOps>,
        ahead: Option<Ahead>,
    ) -> Result<Bot, BundleErrors> {
        let mut errs = BundleErrors::default();
        let path = |rel: &str| format!("{root}/{rel}");
        let text_of = |rel: &str, errs: &mut BundleErrors| -> Option<&str> {
            let bytes = files.get(rel)?;
            match std::str::from_utf8(bytes) {
                Ok(t) => Some(t),
                Err(_) => {
                    errs.push(BundleError::new(path(rel), None, "", "not UTF-8 text"));
                    None
                }
            }
        };

        // bot.toml
        let bot_file = path("bot.toml");
        let raw = match text_of("bot.toml", &mut errs) {
            Some(text) => settings_of(&bot_file, text, &mut errs).map(|raw| (raw, text)),
            None => {
                if !files.contains_key("bot.toml") {
                    errs.push(BundleError::new(
                        &bot_file,
                        None,
                        "",
                        "missing: every bundle has one",
                    ));
                }
                None
            }
        };
        let languages: Vec<String> = raw
            .as_ref()
            .map(|(r, _)| r.languages.get_ref().clone())
            .unwrap_or_default();
        // Each language's messages, words and model, parsed side by side, and meanwhile on this
        // thread the flows (parsed only: validating one needs the messages); taken below in
        // the order the files are checked.
        let Ahead {
            files: mut parsed,
            flows: parsed_flows,
            ..
        } = match ahead {
            Some(ahead) if ahead.languages == languages => ahead,
            _ => Ahead::parse(root, files, &languages),
        };

        // messages/<lang>.toml
        let mut messages = BTreeMap::new();
        for lang in &languages {
            let rel = format!("messages/{lang}.toml");
            match text_of(&rel, &mut errs) {
                // The engine's keys are checked by the parse.
                Some(text) => {
                    let (m, e) = parsed
                        .messages(&rel)
                        .unwrap_or_else(|| Messages::parse_partial(&path(&rel), text));
                    errs.0.extend(e.0);
                    messages.insert(lang.clone(), Arc::new(m));
                }
                None if !files.contains_key(&rel) => errs.push(BundleError::new(
                    path(&rel),
                    None,
                    "",
                    format!("missing: bot.toml lists the language {lang:?}"),
                )),
                None => {}
            }
        }
        // words/<lang>.toml: every file is checked; a listed language without one reads with
        // the default bundle's, if that ships it.
        let mut words = BTreeMap::new();
        for rel in files.keys() {
            let Some(lang) = rel
                .strip_prefix("words/")
                .and_then(|n| n.strip_suffix(".toml"))
            else {
                continue;
            };
            if let Some(text) = text_of(rel, &mut errs) {
                let read = parsed
                    .words(rel)
                    .unwrap_or_else(|| Words::parse(&path(rel), lang, text));
                match read {
                    Ok(w) => {
                        words.insert(lang.to_string(), w);
                    }
                    Err(e) => errs.0.extend(e.0),
                }
            }
        }
        for lang in &languages {
            if words.contains_key(lang) {
                continue;
            }
            match words::default_words(lang) {
                Some(Ok(w)) => {
                    words.insert(lang.clone(), w);
                }
                Some(Err(e)) => errs.0.extend(e.0),
                None => errs.push(BundleError::new(
                    path(&format!("words/{lang}.toml")),
                    None,
                    "",
                    format!(
                        "missing: bot.toml lists the language {lang:?}, and the default bundle has no words for it to read it with"
                    ),
                )),
            }
        }
        // A key the bot refers to, missing from a language's messages (checked only for the
        // languages whose file was read: the others are errors already).
        let missing_in = |key: &str| -> Vec<String> {
            messages
                .iter()
                .filter(|(_, m)| m.vars_of(key).is_none())
                .map(|(l, _): (&String, _)| l.clone())
                .collect()
        };

        // connectors.toml: the company's own operations (unless the caller gives them).
        let declared = match declared {
            Some(d) => d.clone(),
            None => match text_of(CONNECTORS_FILE, &mut errs) {
                Some(text) => own_operations(&path(CONNECTORS_FILE), text, &mut errs),
                None => DeclaredOps::new(),
            },
        };

        let mut settings = None;
        if let Some((raw, text)) = &raw {
            settings = Some(check_settings(
                &bot_file,
                text,
                raw,
                &missing_in,
                &declared,
                &mut errs,
            ));
        }
        // flows/<name>.toml: parsed beside the languages (`parsed_flows`, the text ones),
        // validated once the settings are known (below); a file that is not text is reported here.
        for rel in files.keys() {
            if rel.starts_with("flows/") && rel.ends_with(".toml") {
                text_of(rel, &mut errs);
            }
        }

        // intents/<name>.toml; `needs_order` answers' flows (name → (file, text), the line of
        // the intent's `answer`)
        let mut intents = BTreeMap::new();
        let mut order_answers = BTreeMap::new();
        let mut with_order = Vec::new();
        for (rel, _) in files.range("intents/".to_string()..) {
            let Some(name) = rel.strip_prefix("intents/") else {
                break;
            };
            let Some(name) = name.strip_suffix(".toml") else {
                continue;
            };
            let file = path(rel);
            let Some(text) = text_of(rel, &mut errs) else {
                continue;
            };
            let Some(parsed) = intents::parse(&file, name, text, &mut errs) else {
                continue;
            };
            // "Did you want to: 1. … 2. …?" names intents in the conversation's language: the
            // first language may use the description, every other one needs its own words.
            let named = format!("{}{name}", crate::dialogue::INTENT_NAME);
            for lang in missing_in(&named) {
                if languages.first() != Some(&lang) {
                    errs.push(BundleError::new(
                        &file,
                        None,
                        "description",
                        format!(
                            "no message {named:?} in messages/{lang}.toml (how the intent is named when the bot asks which of two was meant)"
                        ),
                    ));
                }
            }
            match &parsed.def.action {
                Some(Action::Answer {
                    key, needs_order, ..
                }) => {
                    for lang in missing_in(key) {
                        errs.push(BundleError::new(
                            &file,
                            parsed.action_line,
                            "answer",
                            format!("no message {key:?} in messages/{lang}.toml"),
                        ));
                    }
                    let names_order = messages
                        .values()
                        .filter_map(|m| m.vars_of(key))
                        .any(|vars| vars.iter().any(|v| v == "order"));
                    if names_order && !needs_order {
                        errs.push(BundleError::new(
                            &file,
                            parsed.action_line,
                            "answer",
                            format!("{key} uses {{order}} but needs_order is not set"),
                        ));
                    }
                    if *needs_order {
                        let handoff = matches!(
                            parsed.def.action,
                            Some(Action::Answer { handoff: true, .. })
                        );
                        let source = super::order_answer::source(
                            name,
                            &parsed.def.description,
                            key,
                            handoff,
                        );
                        order_answers.insert(
                            super::order_answer::flow_name(name),
                            ((file.clone(), source), parsed.action_line),
                        );
                    }
                }
                Some(Action::Flow(flow)) if !parsed_flows.contains_key(flow) => {
                    errs.push(BundleError::new(
                        &file,
                        parsed.action_line,
                        "flow",
                        format!("no flow {flow:?} (flows/{flow}.toml)"),
                    ));
                }
                _ => {}
            }
            if let Some(target) = &parsed.def.with_order {
                with_order.push((file.clone(), parsed.with_order_line, target.clone()));
            }
            intents.insert(parsed.def.intent.clone(), parsed.def);
        }
        for (file, line, target) in with_order {
            if !intents.contains_key(&target) {
                errs.push(BundleError::new(
                    &file,
                    line,
                    "with_order",
                    format!(
                        "no intent {:?} (intents/{}.toml)",
                        target.name(),
                        target.name()
                    ),
                ));
            }
        }
        let intent_files: BTreeSet<String> = files
            .keys()
            .filter_map(|rel| rel.strip_prefix("intents/")?.strip_suffix(".toml"))
            .map(str::to_string)
            .collect();

        // examples/<lang>/<intent>.txt
        let mut with_examples: BTreeSet<String> = BTreeSet::new();
        for rel in files.keys() {
            let Some(rest) = rel.strip_prefix("examples/") else {
                continue;
            };
            let Some((lang, name)) = rest.split_once('/') else {
                continue;
            };
            let Some(name) = name.strip_suffix(".txt") else {
                continue;
            };
            // Without a readable bot.toml the languages are not known: nothing to check against.
            if raw.is_some() && !languages.iter().any(|l| l == lang) {
                errs.push(BundleError::new(
                    path(rel),
                    None,
                    "",
                    format!("bot.toml does not list the language {lang:?}"),
                ));
            } else if !intent_files.contains(name) {
                errs.push(BundleError::new(
                    path(rel),
                    None,
                    "",
                    format!("no intent {name:?}: add intents/{name}.toml, or remove the examples"),
                ));
            } else {
                with_examples.insert(name.to_string());
            }
        }
        for name in &intent_files {
            // `acknowledge` is reserved: its examples come with issue 20.
            if name == Move::Acknowledge.name() {
                continue;
            }
            for lang in &languages {
                if !files.contains_key(&format!("examples/{lang}/{name}.txt")) {
                    errs.push(BundleError::new(
                        path(&format!("intents/{name}.toml")),
                        None,
                        "",
                        format!("no training examples: add examples/{lang}/{name}.txt"),
                    ));
                }
            }
        }

        // model.bin (the default language), model.<lang>.bin (each other one)
        let mut models = BTreeMap::new();
        for (i, lang) in languages.iter().enumerate() {
            let name = model_file(i == 0, lang);
            let model_path = path(&name);
            let model = match files.get(name.as_str()) {
                None => {
                    errs.push(BundleError::new(
                        &model_path,
                        None,
                        "",
                        format!(
                            "missing: train it from the examples (switchboard train --bot {root})"
                        ),
                    ));
                    continue;
                }
                Some(bytes) => match parsed
                    .model(&name)
                    .unwrap_or_else(|| IntentModel::from_file(bytes))
                {
                    Ok(m) => m,
                    Err(e) => {
                        errs.push(BundleError::new(&model_path, None, "", e.to_string()));
                        continue;
                    }
                },
            };
            if let Some(trained) = model.language.as_deref().filter(|t| t != lang) {
                errs.push(BundleError::new(
                    &model_path,
                    None,
                    "",
                    format!(
                        "trained for {trained:?}, but it is {lang:?}'s model file (bot.toml's languages changed order?); train it again (switchboard train --bot {root})"
                    ),
                ));
                continue;
            }
            let classes: BTreeSet<String> =
                model.classes.iter().map(|c| c.name().to_string()).collect();
            let stale: Vec<&str> = classes
                .symmetric_difference(&with_examples)
                .map(String::as_str)
                .collect();
            if !stale.is_empty() || classes.len() != model.classes.len() {
                errs.push(BundleError::new(
                    &model_path,
                    None,
                    "",
                    format!(
                        "stale: its intents are not the intents with examples (differ: {}); train it again (switchboard train --bot {root})",
                        stale.join(", ")
                    ),
                ));
            }
            models.insert(lang.clone(), model);
        }

        // Flows refer to the settings' slots and operations: without them, validation
        // would only add noise to the errors already found.
        let Some((thresholds, slots, operations)) = settings else {
            return Err(errs);
        };
        let catalog = flows::BundleCatalog {
            messages: &messages,
            slots: &slots,
            operations: &operations,
            declared: &declared,
        };
        let actions = Actions::builtin();
        let mut flows = flows::load(parsed_flows, &catalog, &actions, &mut errs);
        // A `needs_order` answer's flow is the bundle's own text: its problems are the
        // intent's, at its `answer` line (the flow needs the `order` slot and the orders'
        // operations, and `order.*` messages).
        for (name, ((file, source), line)) in order_answers {
            let parsed = crate::flow::parse::parse(&name, &file, &source);
            let one = BTreeMap::from([(name, parsed)]);
            let mut found = BundleErrors::default();
            flows.extend(flows::load(one, &catalog, &actions, &mut found));
            for e in found.0 {
                errs.push(BundleError::new(
                    &e.file,
                    line,
                    "needs_order",
                    format!("{}: {}", e.key, e.message),
                ));
            }
        }
        let engine = flows::engine(&flows, &slots, &intents, actions);
        let order_number_intent = raw.as_ref().and_then(|(raw, text)| {
            let name = raw.understanding.order_number.as_ref()?;
            let intent = Intent::new(name.get_ref());
            if intents.contains_key(&intent) {
                return Some(intent);
            }
            errs.push(BundleError::new(
                &bot_file,
                Some(line_of(text, name.span().start)),
                "understanding.order_number",
                format!(
                    "no intent {:?} (intents/{}.toml)",
                    name.get_ref(),
                    name.get_ref()
                ),
            ));
            None
        });
        let Some((raw, _)) = raw else {
            return Err(errs);
        };
        if models.len() != languages.len() {
            return Err(errs);
        }
        errs.into_result(Bot {
            source: root.to_string(),
            name: raw.name.into_inner(),
            languages,
            thresholds,
            slots,
            operations,
            declared,
            intents,
            order_number_intent,
            models,
            messages,
            words,
            flows,
            engine: Arc::new(engine),
        })
    }
}

/// Where a language's intent model is kept in a bundle: the default (first) language's in
/// `model.bin`, as in bundles written before there were several; each other one's beside it.
pub fn model_file(default: bool, language: &str) -> String {
    if default {
        "model.bin".to_string()
    } else {
        format!("model.{language}.bin")
    }
}

type Settings = (Thresholds, BTreeMap<String, Slot>, Vec<String>);

fn check_settings(
    file: &str,
    text: &str,
    raw: &RawBot,
    missing_in: &dyn Fn(&str) -> Vec<String>,
    declared: &DeclaredOps,
    errs: &mut BundleErrors,
) -> Settings {
    let line = |s: std::ops::Range<usize>| Some(line_of(text, s.start));
    let name = raw.name.get_ref();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        errs.push(BundleError::new(
            file,
            line(raw.name.span()),
            "name",
            "lower-case letters, digits, _ and -",
        ));
    }
    if raw.languages.get_ref().is_empty() {
        errs.push(BundleError::new(
            file,
            line(raw.languages.span()),
            "languages",
            "at least one",
        ));
    }
    // Each language names its files (messages/<lang>.toml, model.<lang>.bin) and is what a
    // customer's language is matched against: a code, once.
    let mut listed = BTreeSet::new();
    for lang in raw.languages.get_ref() {
        let problem = if !crate::language::is_bundle_code(lang) {
            format!("{lang:?}: a language code (en, es, pt-BR)")
        } else if !listed.insert(lang) {
            format!("{lang:?} is listed twice")
        } else {
            continue;
        };
        errs.push(BundleError::new(
            file,
            line(raw.languages.span()),
            "languages",
            problem,
        ));
    }
    let defaults = Thresholds::default();
    let value = |v: &Option<Spanned<f32>>, d: f32| v.as_ref().map_or(d, |v| *v.get_ref());
    let thresholds = Thresholds {
        accept: value(&raw.understanding.accept, defaults.accept),
        clarify: value(&raw.understanding.clarify, defaults.clarify),
        out_of_scope: value(&raw.understanding.out_of_scope, defaults.out_of_scope),
    };
    let u = &raw.understanding;
    // A threshold's problem, at the line of the value written (none for a default).
    let mut wrong = |v: &Option<Spanned<f32>>, key: &str, expected: &str| {
        let at = v.as_ref().and_then(|v| line(v.span()));
        errs.push(BundleError::new(
            file,
            at,
            format!("understanding.{key}"),
            expected,
        ));
    };
    // 0 would turn every request down; above 1 would never doubt one.
    if !(thresholds.out_of_scope > 0.0 && thresholds.out_of_scope <= 1.0) {
        wrong(
            &u.out_of_scope,
            "out_of_scope",
            "a share of the top intent's probability: above 0, at most 1",
        );
    }
    if !(0.0..=1.0).contains(&thresholds.accept) {
        wrong(&u.accept, "accept", "a probability: 0 to 1");
    } else if !(0.0..=thresholds.accept).contains(&thresholds.clarify) {
        wrong(&u.clarify, "clarify", "from 0 to `accept`");
    }
    let mut slots = BTreeMap::new();
    for (name, slot) in &raw.slots {
        let s = slot.get_ref();
        for (field, key) in [("prompt", &s.prompt), ("reprompt", &s.reprompt)] {
            for lang in missing_in(key.get_ref()) {
                errs.push(BundleError::new(
                    file,
                    line(key.span()),
                    format!("slots.{name}.{field}"),
                    format!("no message {:?} in messages/{lang}.toml", key.get_ref()),
                ));
            }
        }
        let kind = SlotKind::ALL
            .into_iter()
            .find(|k| k.name() == s.kind.get_ref().as_str());
        if kind.is_none() {
            let known: Vec<&str> = SlotKind::ALL.iter().map(|k| k.name()).collect();
            errs.push(BundleError::new(
                file,
                line(s.kind.span()),
                format!("slots.{name}.type"),
                format!(
                    "no entity type {:?} (known: {})",
                    s.kind.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        slots.insert(
            name.clone(),
            Slot {
                kind: kind.unwrap_or(SlotKind::Text),
                prompt: s.prompt.get_ref().clone(),
                reprompt: s.reprompt.get_ref().clone(),
                attempts: s.attempts,
            },
        );
    }
    let mut operations = Vec::new();
    for op in &raw.connectors.operations {
        if find_op(op.get_ref(), declared).is_none() {
            let known: Vec<&str> = Op::ALL
                .iter()
                .map(|o| o.name())
                .chain(declared.keys().copied())
                .collect();
            errs.push(BundleError::new(
                file,
                line(op.span()),
                "connectors.operations",
                format!(
                    "no operation {:?} (known: {})",
                    op.get_ref(),
                    known.join(", ")
                ),
            ));
        }
        operations.push(op.get_ref().clone());
    }
    (thresholds, slots, operations)
}

/// The operations a bundle's own connector file declares. Its systems' variables (base URLs)
/// are not needed to know what an operation takes and gives back, so none is read: every
/// system is off here, its operations declared all the same.
fn own_operations(file: &str, text: &str, errs: &mut BundleErrors) -> DeclaredOps {
    match connectors::parse(file, text, &|_| None) {
        Ok(config) => config.declared,
        Err(e) => {
            for e in std::iter::once(&e).chain(&e.also) {
                errs.push(BundleError::new(&e.file, e.line, &e.field, &e.message));
            }
            DeclaredOps::new()
        }
    }
}

/// bot.toml's settings (problems into `errs`).
fn settings_of(file: &str, text: &str, errs: &mut BundleErrors) -> Option<RawBot> {
    toml_file::parse::<RawBot>(file, text, &BOT_SCHEMA, errs)
}

/// What a load ahead (`BundleLoad`) reads of bot.toml before the rest: its languages, and
/// whether every operation it allows its flows is a built-in one.
pub(super) struct Outline {
    pub languages: Vec<String>,
    /// Then the bundle checks the same against any function's connectors: what a company
    /// declares for its own systems is named by those systems, never a built-in one's name.
    pub built_in_operations: bool,
}

/// bot.toml's outline, if it reads (its problems are `from_files`' to report).
pub(super) fn outline_of(root: &str, files: &Files) -> Outline {
    let text = files
        .get("bot.toml")
        .and_then(|bytes| std::str::from_utf8(bytes).ok());
    let raw = text.and_then(|text| {
        settings_of(
            &format!("{root}/bot.toml"),
            text,
            &mut BundleErrors::default(),
        )
    });
    let built_in_operations = raw.as_ref().is_some_and(|raw| {
        raw.connectors
            .operations
            .iter()
            .all(|op| find_op(op.get_ref(), &DeclaredOps::new()).is_some())
    });
    Outline {
        languages: raw
            .map(|raw| raw.languages.into_inner())
            .unwrap_or_default(),
        built_in_operations,
    }
}

/// A bundle's languages' files and flows, parsed (`LanguageFiles`, `flows::parse_all`): the most
/// of a load, and what a function's init starts before it knows its connectors (`BundleLoad`).
pub(super) struct Ahead {
    languages: Vec<String>,
    files: LanguageFiles,
    flows: flows::Parsed,
}

impl Ahead {
    pub(super) fn parse(root: &str, files: &Files, languages: &[String]) -> Self {
        let (parsed, flows) =
            LanguageFiles::parse(root, files, languages, || flows::parse_all(root, files));
        Self {
            languages: languages.to_vec(),
            files: parsed,
            flows,
        }
    }
}

/// Every file of the bundle in `dir` (as `list_dir` finds them): the models (`*.bin`, most of
/// a bundle's bytes) as `model` gives them, the rest read.
pub(super) fn read_files(
    dir: &Path,
    model: impl Fn(&Path) -> std::io::Result<Cow<'static, [u8]>>,
) -> Result<Files, BundleErrors> {
    let cannot = |e: std::io::Error| {
        BundleError::new(
            dir.display().to_string(),
            None,
            "",
            format!("cannot read the bundle: {e}"),
        )
    };
    let mut found = Vec::new();
    list_dir(dir, dir, &mut found).map_err(cannot)?;
    let mut files = Files::new();
    for (rel, path) in found {
        let bytes = match path {
            None => Ok(Cow::Borrowed(&[][..])),
            Some(p) if rel.ends_with(".bin") => model(&p),
            Some(p) => std::fs::read(&p).map(Cow::Owned),
        }
        .map_err(|e| cannot(std::io::Error::new(e.kind(), format!("{rel}: {e}"))))?;
        files.insert(rel, bytes);
    }
    Ok(files)
}

/// Every file under `dir` but the conversation tests, by its path inside the bundle, with where it
/// is to be read from: none for the examples, which are only named (training reads them).
fn list_dir(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, Option<std::path::PathBuf>)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let p = entry.path();
        // The listing's own file type, not a `stat` of every file (the shop bot's examples are
        // 140 of them, on a cold start's path); a link is followed, as before.
        let kind = entry.file_type()?;
        let is_dir = kind.is_dir() || (kind.is_symlink() && p.is_dir());
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if is_dir {
            if rel != "tests" {
                list_dir(root, &p, out)?;
            }
        } else if rel.starts_with("examples/") {
            out.push((rel, None));
        } else {
            out.push((rel, Some(p)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::messages::Value;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/bot");

    /// A copy of the shop bundle to break (the model and examples as they are).
    fn copy() -> std::path::PathBuf {
        fn cp(from: &Path, to: &Path) {
            std::fs::create_dir_all(to).unwrap();
            for e in std::fs::read_dir(from).unwrap() {
                let p = e.unwrap().path();
                let dest = to.join(p.file_name().unwrap());
                if p.is_dir() {
                    cp(&p, &dest);
                } else {
                    std::fs::copy(&p, &dest).unwrap();
                }
            }
        }
        let to = std::env::temp_dir().join(format!("bundle-{}", ulid::Ulid::new()));
        cp(Path::new(DIR), &to);
        to
    }

    fn edit(dir: &Path, file: &str, from: &str, to: &str) {
        let p = dir.join(file);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{file}: {from:?}");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }

    fn errors(dir: &Path) -> Vec<String> {
        let e = Bot::load(dir).unwrap_err();
        let root = dir.display().to_string();
        e.0.iter()
            .map(|e| e.to_string().replacen(&root, "B", 1))
            .collect()
    }

    #[test]
    fn the_shop_bundle_loads_compiled_in_and_from_its_directory() {
        let bot = Bot::embedded();
        assert_eq!(bot.name, "shop");
        assert_eq!(bot.languages, ["en", "es", "fr", "de"]);
        assert_eq!(bot.thresholds, Thresholds::default());
        assert_eq!(bot.intents.len(), 35);
        assert_eq!(bot.model("en").classes.len(), 35);
        let status = bot.intent(&Intent::new("order_status")).unwrap();
        assert_eq!(status.description, "check where an order is");
        assert_eq!(status.action, Some(Action::Flow("order_status".into())));
        assert_eq!(status.labels, ["track_order"]);
        let cancel = bot.intent(&Intent::new("cancel_order")).unwrap();
        assert_eq!(
            cancel.action,
            Some(Action::Answer {
                key: "answer.cancel_order".into(),
                needs_order: true,
                handoff: true
            })
        );
        assert!(bot
            .default_messages()
            .render(
                "answer.cancel_order",
                &[("order", Value::Text("1002".into()))]
            )
            .contains("#1002"));
        assert_eq!(bot.slots["order"].kind, SlotKind::Order);
        assert_eq!(bot.slots["product"].prompt, "slot.product.prompt");
        for m in [Move::Greet, Move::Human, Move::OutOfScope] {
            assert!(bot.intent(&m.into()).is_some(), "{}", m.name());
        }
        assert!(bot.intent(&Intent::unknown()).is_none());

        let from_dir = Bot::load(Path::new(DIR)).unwrap();
        assert_eq!(from_dir.intents, bot.intents);
        assert_eq!(from_dir.model("en"), bot.model("en"));
        assert_eq!(from_dir.slots, bot.slots);
        assert_eq!(from_dir.messages, bot.messages);
        assert!(Arc::ptr_eq(&Bot::from_setting(None).unwrap(), &bot));
        assert!(Arc::ptr_eq(&Bot::from_setting(Some(" ")).unwrap(), &bot));
        assert_eq!(Bot::from_setting(Some(DIR)).unwrap().intents, bot.intents);
    }

    #[test]
    fn every_problem_of_a_broken_bundle_is_named_at_once() {
        let dir = copy();
        edit(
            &dir,
            "bot.toml",
            "accept = 0.5",
            "accept = 1.5\nreject = 0.1",
        );
        edit(&dir, "bot.toml", "out_of_scope = 0.45", "out_of_scope = 0");
        edit(
            &dir,
            "bot.toml",
            "prompt = \"slot.order.prompt\"",
            "prompt = \"slot.order.ask\"",
        );
        edit(&dir, "bot.toml", "type = \"product\"", "type = \"gadget\"");
        edit(
            &dir,
            "bot.toml",
            "\"inventory.availability\"",
            "\"inventory.teleport\"",
        );
        edit(
            &dir,
            "intents/review.toml",
            "answer.review",
            "answer.reviews",
        );
        edit(
            &dir,
            "intents/complaint.toml",
            "handoff = true",
            "handoff = true\ncolour = 1",
        );
        edit(
            &dir,
            "messages/en.toml",
            "\n[answer]\n",
            "\n[answer]\nodd = 3\n",
        );
        std::fs::write(
            dir.join("intents/track_parcel.toml"),
            "description = \"track a parcel\"\nanswer = \"answer.place_order\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("examples/en/orphan.txt"), "an orphan\n").unwrap();
        std::fs::write(dir.join("examples/pt/greet.txt"), "olá\n").unwrap_or_else(|_| {
            std::fs::create_dir_all(dir.join("examples/pt")).unwrap();
            std::fs::write(dir.join("examples/pt/greet.txt"), "olá\n").unwrap();
        });
        let e = errors(&dir);
        let expected = [
            "B/bot.toml:15: understanding.reject: unknown key (expected one of: accept, clarify, out_of_scope, order_number)",
            "B/messages/en.toml",
            ": answer.odd: must be a string",
            "B/bot.toml:14: understanding.accept: a probability: 0 to 1",
            "B/bot.toml:17: understanding.out_of_scope: a share of the top intent's probability: above 0, at most 1",
            "B/intents/complaint.toml:4: colour: unknown key",
            "B/intents/review.toml:2: answer: no message \"answer.reviews\" in messages/en.toml",
            "B/intents/track_parcel.toml: no training examples: add examples/en/track_parcel.txt",
            "B/examples/en/orphan.txt: no intent \"orphan\"",
            "B/examples/pt/greet.txt: bot.toml does not list the language \"pt\"",
        ];
        let all = e.join("\n");
        for x in expected.iter().chain(&[
            "B/bot.toml:26: slots.order.prompt: no message \"slot.order.ask\" in messages/en.toml",
            "B/bot.toml:31: slots.product.type: no entity type \"gadget\"",
            "B/bot.toml:45: connectors.operations: no operation \"inventory.teleport\"",
        ]) {
            assert!(all.contains(x), "{x:?} not in:\n{all}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flows_and_the_model_must_match_the_intents() {
        let dir = copy();
        // An intent with examples the model was not trained on: stale.
        std::fs::write(
            dir.join("intents/track_parcel.toml"),
            "description = \"track a parcel\"\nanswer = \"answer.place_order\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("examples/en/track_parcel.txt"),
            "where is my parcel\n",
        )
        .unwrap();
        let all = errors(&dir).join("\n");
        // It says how to mend it, for the directory it was given.
        let stale = format!(
            "B/model.bin: stale: its intents are not the intents with examples (differ: track_parcel); train it again (switchboard train --bot {})",
            dir.display()
        );
        assert!(all.contains(&stale), "{all}");
        // Flow names are checked against the files of flows/.
        std::fs::remove_file(dir.join("flows/request_refund.toml")).unwrap();
        let all = errors(&dir).join("\n");
        assert!(
            all.contains("B/intents/request_refund.toml:2: flow: no flow \"request_refund\""),
            "{all}"
        );
        assert!(!all.contains("order_status.toml"), "{all}");
        // Flows are validated against the bundle: its messages, slots and operations.
        edit(
            &dir,
            "flows/order_status.toml",
            "say = \"order.not_found\"",
            "say = \"order.not_fund\"",
        );
        edit(&dir, "bot.toml", "\"orders.get_status\", ", "");
        let all = errors(&dir).join("\n");
        for x in [
            "B/flows/order_status.toml:169: order.not_fund: no such message",
            "B/flows/order_status.toml:19: orders.get_status: not allowed",
        ] {
            assert!(all.contains(x), "{x:?} not in:\n{all}");
        }
        std::fs::remove_file(dir.join("model.bin")).unwrap();
        assert!(errors(&dir).join("\n").contains("B/model.bin: missing"));
        std::fs::remove_dir_all(&dir).unwrap();

        let none = Bot::from_setting(Some("/nonexistent/bot")).unwrap_err();
        assert!(
            none.to_string()
                .starts_with("/nonexistent/bot: cannot read the bundle"),
            "{none}"
        );
    }

    #[test]
    fn every_language_after_the_first_names_every_intent() {
        let dir = copy();
        edit(
            &dir,
            "messages/fr.toml",
            "cancel_order = \"annuler une commande\"\n",
            "",
        );
        let all = errors(&dir).join("\n");
        assert!(
            all.contains("B/intents/cancel_order.toml: description: no message \"intent.cancel_order\" in messages/fr.toml"),
            "{all}"
        );
        // The first language names it by its description.
        assert!(!all.contains("messages/en.toml"), "{all}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_listed_language_has_words_its_own_or_the_default_bundles() {
        let dir = copy();
        // Italian has no words file, here or in the default bundle; Spanish reads with the
        // default bundle's.
        edit(
            &dir,
            "bot.toml",
            "languages = [\"en\", \"es\", \"fr\", \"de\"]",
            "languages = [\"en\", \"es\", \"it\"]",
        );
        std::fs::remove_file(dir.join("words/es.toml")).unwrap();
        let all = errors(&dir).join("\n");
        assert!(
            all.contains("B/words/it.toml: missing: bot.toml lists the language \"it\""),
            "{all}"
        );
        assert!(!all.contains("words/es.toml"), "{all}");
        // A words file is checked where it is, even for a language not listed.
        edit(
            &dir,
            "words/fr.toml",
            "numeric = \"day/month\"",
            "numeric = \"d/m\"",
        );
        let all = errors(&dir).join("\n");
        assert!(
            all.contains("B/words/fr.toml:") && all.contains(": dates.numeric: \"d/m\""),
            "{all}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // A language is a code, listed once.
        let dir = copy();
        edit(
            &dir,
            "bot.toml",
            "languages = [\"en\", \"es\", \"fr\", \"de\"]",
            "languages = [\"en\", \"es\", \"es\", \"../fr\", \"EN\"]",
        );
        let all = errors(&dir).join("\n");
        assert!(all.contains(": languages: \"es\" is listed twice"), "{all}");
        assert!(
            all.contains(": languages: \"../fr\": a language code"),
            "{all}"
        );
        assert!(
            all.contains(": languages: \"EN\": a language code"),
            "{all}"
        );
        // Another language first: model.bin is still English's, and says so.
        edit(
            &dir,
            "bot.toml",
            "languages = [\"en\", \"es\", \"es\", \"../fr\", \"EN\"]",
            "languages = [\"es\", \"en\", \"fr\", \"de\"]",
        );
        let all = errors(&dir).join("\n");
        assert!(
            all.contains("B/model.bin: trained for \"en\", but it is \"es\"'s model file"),
            "{all}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        // A bundle without words of its own reads its languages with the default bundle's.
        let subscriptions = Bot::load(Path::new(SUBSCRIPTIONS)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(subscriptions.default_words().language(), "en");
        // Any language the bundle has no words for reads as its default language.
        assert_eq!(subscriptions.words("es").language(), "en");
        let shop = Bot::embedded();
        assert_eq!(shop.words("de").language(), "de");
        assert_eq!(shop.words("pt").language(), "en");
    }

    /// A function's load of a directory (`BundleLoad`, read and parsed ahead) reports a broken
    /// bundle as the offline tools' `load_with` does, whatever is wrong with its files, and
    /// whatever its connectors declare (with none, the thread checks the bundle itself).
    #[test]
    fn a_bundle_read_ahead_reports_what_load_with_reports() {
        let own = Bot::load(Path::new(SUBSCRIPTIONS)).unwrap().declared;
        let ahead = |dir: &Path, declared: &DeclaredOps| {
            crate::bot::bundle_load::BundleLoad::start(&dir.display().to_string())
                .finish(declared)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let plain = |dir: &Path, declared: &DeclaredOps| {
            Bot::load_with(dir, declared)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };

        let no_settings = copy();
        std::fs::remove_file(no_settings.join("bot.toml")).unwrap();
        let bad_settings = copy();
        std::fs::write(
            bad_settings.join("bot.toml"),
            b"name = \"shop\nlanguages = [",
        )
        .unwrap();
        let not_text = copy();
        std::fs::write(not_text.join("messages/es.toml"), b"greet = \"\xff\"\n").unwrap();
        let no_model = copy();
        std::fs::remove_file(no_model.join("model.fr.bin")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(no_model.join("nowhere.bin"), no_model.join("model.fr.bin"))
            .unwrap();
        // Allowed built-in operations only, a flow calling a company's own: unknown without
        // connectors that declare it, not allowed with them.
        let own_call = copy();
        edit(
            &own_call,
            "flows/order_status.toml",
            "\"orders.get_status\"",
            "\"boxes.pause_box\"",
        );

        for (dir, declared, expected) in [
            (&no_settings, &DeclaredOps::new(), "bot.toml: missing"),
            (&bad_settings, &DeclaredOps::new(), "bot.toml"),
            (
                &not_text,
                &DeclaredOps::new(),
                "messages/es.toml: not UTF-8 text",
            ),
            (&no_model, &DeclaredOps::new(), "model.fr.bin"),
            (&no_model, &own, "model.fr.bin"),
            (
                &own_call,
                &DeclaredOps::new(),
                "boxes.pause_box: no such operation",
            ),
            (&own_call, &own, "boxes.pause_box: not allowed"),
        ] {
            let (ahead, plain) = (ahead(dir, declared), plain(dir, declared));
            assert_eq!(ahead, plain, "{}", dir.display());
            assert!(ahead.contains(expected), "{ahead}");
        }
        for dir in [no_settings, bad_settings, not_text, no_model, own_call] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    /// Checked ahead against the built-in operations, a bundle that allows only those is the
    /// bundle `load_with` gives for any connectors: the function's operations are its own.
    #[test]
    fn a_bundle_checked_ahead_takes_the_functions_operations() {
        let own = Bot::load(Path::new(SUBSCRIPTIONS)).unwrap().declared;
        let ahead = crate::bot::bundle_load::BundleLoad::start(DIR)
            .finish(&own)
            .unwrap();
        let plain = Bot::load_with(Path::new(DIR), &own).unwrap();
        assert_eq!(ahead.declared, own);
        assert_eq!(ahead.declared, plain.declared);
        assert_eq!(ahead.operations, plain.operations);
        assert_eq!(ahead.intents, plain.intents);
        assert_eq!(
            ahead.flows.keys().collect::<Vec<_>>(),
            plain.flows.keys().collect::<Vec<_>>()
        );
    }

    /// A bundle whose flows call a company's own operations is checked once the function's
    /// connectors are known (`finish`), as `load_with` checks it.
    #[test]
    fn a_bundle_calling_its_own_operations_is_checked_with_the_functions() {
        let own = Bot::load(Path::new(SUBSCRIPTIONS)).unwrap().declared;
        let ahead = crate::bot::bundle_load::BundleLoad::start(SUBSCRIPTIONS)
            .finish(&own)
            .unwrap_or_else(|e| panic!("{e}"));
        let plain = Bot::load_with(Path::new(SUBSCRIPTIONS), &own).unwrap();
        assert_eq!(ahead.declared, own);
        assert_eq!(ahead.operations, plain.operations);
        assert_eq!(ahead.intents, plain.intents);
        assert_eq!(
            ahead.flows.keys().collect::<Vec<_>>(),
            plain.flows.keys().collect::<Vec<_>>()
        );
        for lang in &plain.languages {
            assert_eq!(ahead.model(lang), plain.model(lang), "{lang}");
        }
    }

    #[test]
    fn the_outline_says_whether_a_bundle_allows_only_built_in_operations() {
        let outline = |dir: &str| {
            let files = read_files(Path::new(dir), |p| std::fs::read(p).map(Cow::Owned)).unwrap();
            outline_of(dir, &files)
        };
        let shop = outline(DIR);
        assert_eq!(shop.languages, ["en", "es", "fr", "de"]);
        assert!(shop.built_in_operations);
        let subscriptions = outline(SUBSCRIPTIONS);
        assert_eq!(subscriptions.languages, ["en"]);
        assert!(!subscriptions.built_in_operations);

        let broken = copy();
        std::fs::write(broken.join("bot.toml"), b"languages = [").unwrap();
        let outline = outline(&broken.display().to_string());
        assert!(outline.languages.is_empty());
        assert!(!outline.built_in_operations);
        std::fs::remove_dir_all(broken).unwrap();
    }

    const SUBSCRIPTIONS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/bots/subscriptions"
    );

    #[test]
    fn a_bundles_flows_call_the_operations_its_own_connector_file_declares() {
        let bot = Bot::load(Path::new(SUBSCRIPTIONS)).unwrap_or_else(|e| panic!("{e}"));
        let declared: Vec<&str> = bot.declared.keys().copied().collect();
        assert_eq!(declared, ["boxes.get_subscription", "boxes.pause_box"]);
        assert_eq!(bot.flows.len(), 2);

        // Given operations (a function's connectors) replace the bundle's own file: a flow
        // calling what the caller cannot reach is refused, one error per unknown name where
        // it is used — not one per field the read would have bound.
        let e = Bot::load_with(Path::new(SUBSCRIPTIONS), &DeclaredOps::new()).unwrap_err();
        let all: Vec<String> =
            e.0.iter()
                .map(|e| e.to_string().replacen(SUBSCRIPTIONS, "B", 1))
                .collect();
        assert_eq!(
            all,
            [
                "B/bot.toml:20: connectors.operations: no operation \"boxes.get_subscription\" (known: orders.get_status, orders.list_by_customer, crm.get_customer, crm.find_customer, crm.find_by_vendor_id, crm.find_by_phone, inventory.availability, payments.refund, email.send, whatsapp.send_message, twilio.send_message, telegram.send_message)",
                "B/bot.toml:20: connectors.operations: no operation \"boxes.pause_box\" (known: orders.get_status, orders.list_by_customer, crm.get_customer, crm.find_customer, crm.find_by_vendor_id, crm.find_by_phone, inventory.availability, payments.refund, email.send, whatsapp.send_message, twilio.send_message, telegram.send_message)",
                "B/flows/pause_box.toml:9: boxes.get_subscription: no such operation (not built in, and no connector file declares it)",
                "B/flows/pause_box.toml:35: boxes.pause_box: no such operation",
                "B/flows/subscription_status.toml:10: boxes.get_subscription: no such operation (not built in, and no connector file declares it)",
            ]
        );
    }

    #[test]
    fn a_broken_own_connector_file_is_a_bundle_error_with_its_line() {
        let to = std::env::temp_dir().join(format!("bundle-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&to).unwrap();
        for f in ["bot.toml", "model.bin"] {
            std::fs::copy(Path::new(SUBSCRIPTIONS).join(f), to.join(f)).unwrap();
        }
        let text = std::fs::read_to_string(Path::new(SUBSCRIPTIONS).join(CONNECTORS_FILE))
            .unwrap()
            .replace("kind = \"flag\"", "kind = \"flg\"");
        std::fs::write(to.join(CONNECTORS_FILE), text).unwrap();
        let all = Bot::load(&to).unwrap_err().to_string();
        let root = to.display().to_string();
        assert!(
            all.contains(&format!(
                "{root}/connectors.toml:28: systems.boxes.operations.get_subscription.response.fields.gift"
            )),
            "{all}"
        );
        std::fs::remove_dir_all(&to).unwrap();
    }

    /// Each language's files are parsed on threads of their own (`language_files`): their
    /// problems are still all named, in the order the files are checked, whichever thread
    /// finished first.
    #[test]
    fn problems_in_several_languages_files_are_named_in_file_order() {
        let dir = copy();
        let append = |file: &str, bytes: &[u8]| {
            let p = dir.join(file);
            let mut all = std::fs::read(&p).unwrap();
            all.extend_from_slice(bytes);
            std::fs::write(&p, all).unwrap();
        };
        append("messages/es.toml", b"\n= no key\n");
        append("messages/de.toml", b"\n# \xff\xfe\n");
        append("words/fr.toml", b"\n[[[\n");
        let model = dir.join("model.de.bin");
        let bytes = std::fs::read(&model).unwrap();
        std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();

        let all = errors(&dir);
        let at = |what: &str| {
            all.iter()
                .position(|e| e.starts_with(what))
                .unwrap_or_else(|| panic!("no error for {what}: {all:#?}"))
        };
        let order = [
            at("B/messages/es.toml"),
            at("B/messages/de.toml"),
            at("B/words/fr.toml"),
            at("B/model.de.bin"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{all:#?}");
        assert!(all[order[1]].contains("not UTF-8"), "{all:#?}");
        assert!(all[order[3]].contains("truncated"), "{all:#?}");
        // The same bundle, loaded again: the same errors, in the same order.
        assert_eq!(errors(&dir), all);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A language code is checked after the languages' files are parsed: whatever it holds,
    /// the load reports it rather than failing to start a thread for it.
    #[test]
    fn a_language_code_with_a_nul_in_it_is_an_error_not_a_panic() {
        let dir = copy();
        edit(
            &dir,
            "bot.toml",
            r#"languages = ["en", "es", "fr", "de"]"#,
            r#"languages = ["en", "e\u0000s"]"#,
        );
        let all = errors(&dir).join("\n");
        assert!(all.contains("B/bot.toml"), "{all}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
