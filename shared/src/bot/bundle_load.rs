//! A function's bot bundle when it is a directory (`SWITCHBOARD_BOT`; deployed, the template's
//! BotLayer at `/opt/bot`): read, and its languages and flows parsed, on a thread of its own from
//! the start of init while the AWS SDK and the connectors are set up — as the compiled-in bundle
//! is (`setup::prepare_bundle`), so that a bundle that is data costs the cold start little more
//! than one compiled in (measured in docs/performance-history.md, issue 24, sixth session).
//! Checking its flows needs the connectors' operations, known later; a bundle whose flows may
//! call built-in operations only checks the same against any connectors, so its thread checks it
//! too and `finish` only waits for it. `finish` gives what `Bot::load_with` gives.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::bundle::{self, Ahead, Bot, Files};
use super::error::BundleErrors;
use crate::connectors::config::DeclaredOps;

/// What the thread leaves for `finish`.
enum Read {
    /// Parsed; checked once the connectors are known.
    Parsed(Files, Ahead),
    /// Its operations all built in: checked against the built-in ones alone, with the files to
    /// check again if that failed (so the errors name the function's operations too).
    Checked(Files, Result<Bot, BundleErrors>),
}

/// Once per process: the models it maps stay mapped for the process's life.
pub struct BundleLoad {
    dir: PathBuf,
    /// `None` when the system would not start a thread: `finish` then reads the bundle itself.
    reading: Option<JoinHandle<Result<Read, BundleErrors>>>,
}

impl BundleLoad {
    pub fn start(dir: &str) -> Self {
        let dir = PathBuf::from(dir);
        let reading = std::thread::Builder::new()
            .name("bundle".into())
            .spawn({
                let dir = dir.clone();
                move || read(&dir)
            })
            .ok();
        Self { dir, reading }
    }

    /// The bundle, its flows checked against `declared` (the function's connectors) as
    /// `Bot::load_with` checks them.
    pub fn finish(self, declared: &DeclaredOps) -> Result<Arc<Bot>, BundleErrors> {
        let read = match self.reading.map(JoinHandle::join) {
            Some(Ok(read)) => read?,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => read(&self.dir)?,
        };
        let root = self.dir.display().to_string();
        match read {
            Read::Parsed(files, ahead) => {
                Bot::from_files(&root, &files, Some(declared), Some(ahead))
            }
            // Checked as `declared` would check it: its flows name no operation of a company's
            // own system (they would be unknown or not allowed).
            Read::Checked(_, Ok(mut bot)) => {
                bot.declared = declared.clone();
                Ok(bot)
            }
            // Checked against no operations of a company's own: what `load_with` says then.
            Read::Checked(_, Err(e)) if declared.is_empty() => Err(e),
            Read::Checked(files, Err(_)) => Bot::from_files(&root, &files, Some(declared), None),
        }
        .map(Arc::new)
    }
}

fn read(dir: &Path) -> Result<Read, BundleErrors> {
    let files = bundle::read_files(dir, map)?;
    let root = dir.display().to_string();
    let outline = bundle::outline_of(&root, &files);
    let ahead = Ahead::parse(&root, &files, &outline.languages);
    if !outline.built_in_operations {
        return Ok(Read::Parsed(files, ahead));
    }
    let bot = Bot::from_files(&root, &files, Some(&DeclaredOps::new()), Some(ahead));
    Ok(Read::Checked(files, bot))
}

/// A model file mapped into memory, read-only, for the rest of the process: its weights are read
/// where they lie, as from the binary when the bundle is compiled in. Read into memory instead, the
/// shop bot's 1.6 MB of models cost a cold start here 2–3 ms of page faults on fresh memory and
/// the copy (docs/performance-history.md, issue 24, sixth session); mapped, only the pages a
/// model's use touches are faulted in, from the page cache, several at a time.
fn map(path: &Path) -> std::io::Result<Cow<'static, [u8]>> {
    let file = std::fs::File::open(path)?;
    // SAFETY: the mapping is only ever read, and nothing may change the file while this
    // process runs: deployed, it is in the function's layer, which Lambda mounts read-only;
    // a bundle directory named locally (`./dev/up --bot`, dev/bench) is read by a function the
    // same way, and `switchboard train` replaces a model by renaming a new file over it, which
    // leaves a running function's mapping on the old file.
    let mapped = unsafe { memmap2::Mmap::map(&file)? };
    let kept: &'static memmap2::Mmap = Box::leak(Box::new(mapped));
    Ok(Cow::Borrowed(&kept[..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/bot");
    const SUBSCRIPTIONS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/bots/subscriptions"
    );

    fn messages(bot: &Bot) -> Vec<String> {
        bot.languages
            .iter()
            .map(|l| bot.messages(l).unwrap().render("order.which", &[]))
            .collect()
    }

    #[test]
    fn a_directory_loads_ahead_as_load_with_loads_it() {
        // The shop bot calls built-in operations only.
        let declared = DeclaredOps::new();
        let ahead = BundleLoad::start(SHOP).finish(&declared).unwrap();
        let plain = Bot::load_with(Path::new(SHOP), &declared).unwrap();
        assert_eq!(ahead.source, SHOP);
        assert_eq!(ahead.languages, plain.languages);
        assert_eq!(ahead.intents, plain.intents);
        assert_eq!(ahead.flows.len(), plain.flows.len());
        assert_eq!(messages(&ahead), messages(&plain));
        for lang in &plain.languages {
            // The model read where the file's bytes lie is the same model.
            assert_eq!(ahead.model(lang), plain.model(lang), "{lang}");
        }
    }

    #[test]
    fn a_bundle_that_does_not_load_ahead_gives_load_withs_errors() {
        let none = DeclaredOps::new();
        let ahead = BundleLoad::start(SUBSCRIPTIONS).finish(&none).unwrap_err();
        let plain = Bot::load_with(Path::new(SUBSCRIPTIONS), &none).unwrap_err();
        assert!(!plain.0.is_empty());
        assert_eq!(ahead.to_string(), plain.to_string());

        let missing = BundleLoad::start("/nonexistent/bot")
            .finish(&none)
            .unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/bot: cannot read the bundle"),
            "{missing}"
        );
    }
}
