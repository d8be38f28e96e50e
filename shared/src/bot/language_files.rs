//! Each language's files of a bundle, parsed side by side: its messages, the words it is read
//! with and its intent model are most of a bundle's load (the TOML and the model's arrays), and
//! none of them depends on another language's or on the rest of the bundle. A cold start waits
//! for the bundle (it is on the path to the first poll), so each language is parsed on a thread
//! of its own. That shortens init where there is more than one core to run them on — Lambda's
//! init phase has been measured running on two unthrottled vCPUs whatever the memory setting
//! (not documented by AWS) — and costs a thread start per language where there is not.
//!
//! Only the parsing is done here. `Bot::from_files` still walks the files in its own order and
//! reports every problem where it did before; it takes a result from here when there is one and
//! parses the file itself when there is not (a file that is not UTF-8, a language listed twice,
//! a thread the system would not start).

use std::collections::BTreeMap;

use super::bundle::{model_file, Files};
use super::error::BundleErrors;
use super::messages::Messages;
use super::words::Words;
use crate::intent_model::{IntentModel, ModelError};

/// Parse results by the file's path inside the bundle.
#[derive(Default)]
pub(super) struct LanguageFiles {
    messages: BTreeMap<String, (Messages, BundleErrors)>,
    words: BTreeMap<String, Result<Words, BundleErrors>>,
    models: BTreeMap<String, Result<IntentModel, ModelError>>,
}

impl LanguageFiles {
    /// `languages` as bot.toml lists them (the first is the default); `root` names the files
    /// in errors, as `from_files` does. `alongside` runs on the calling thread meanwhile (the
    /// bundle's files that are no language's), and its answer comes back with the languages'.
    pub(super) fn parse<T>(
        root: &str,
        files: &Files,
        languages: &[String],
        alongside: impl FnOnce() -> T,
    ) -> (Self, T) {
        if languages.len() < 2 {
            let one = languages
                .first()
                .map(|lang| Self::of_one(root, files, true, lang))
                .unwrap_or_default();
            return (one, alongside());
        }
        std::thread::scope(|scope| {
            let started: Vec<_> = languages
                .iter()
                .enumerate()
                .map(|(i, lang)| {
                    std::thread::Builder::new()
                        .name(format!("bundle-{i}"))
                        .spawn_scoped(scope, move || Self::of_one(root, files, i == 0, lang))
                        .map_err(|_| (i, lang))
                })
                .collect();
            let theirs = alongside();
            let mut all = Self::default();
            for thread in started {
                let one = match thread {
                    Ok(handle) => handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    // No thread: this one's files are parsed here.
                    Err((i, lang)) => Self::of_one(root, files, i == 0, lang),
                };
                all.messages.extend(one.messages);
                all.words.extend(one.words);
                all.models.extend(one.models);
            }
            (all, theirs)
        })
    }

    fn of_one(root: &str, files: &Files, default: bool, lang: &str) -> Self {
        let text = |rel: &str| {
            files
                .get(rel)
                .and_then(|bytes| std::str::from_utf8(bytes).ok())
        };
        let mut out = Self::default();
        let rel = format!("messages/{lang}.toml");
        if let Some(text) = text(&rel) {
            let parsed = Messages::parse_partial(&format!("{root}/{rel}"), text);
            out.messages.insert(rel, parsed);
        }
        let rel = format!("words/{lang}.toml");
        if let Some(text) = text(&rel) {
            let parsed = Words::parse(&format!("{root}/{rel}"), lang, text);
            out.words.insert(rel, parsed);
        }
        let rel = model_file(default, lang);
        if let Some(bytes) = files.get(&rel) {
            let parsed = IntentModel::from_file(bytes);
            out.models.insert(rel, parsed);
        }
        out
    }

    pub(super) fn messages(&mut self, rel: &str) -> Option<(Messages, BundleErrors)> {
        self.messages.remove(rel)
    }

    pub(super) fn words(&mut self, rel: &str) -> Option<Result<Words, BundleErrors>> {
        self.words.remove(rel)
    }

    pub(super) fn model(&mut self, rel: &str) -> Option<Result<IntentModel, ModelError>> {
        self.models.remove(rel)
    }
}
