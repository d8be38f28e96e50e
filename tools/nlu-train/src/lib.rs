//! Training a bot bundle's intent models from its examples: `train_bundle(dir)` gives the bytes
//! of one model per language (`model.bin` for the first, `model.<lang>.bin` for the others; the
//! `nlu-train` binary and `switchboard train` write them).
//!
//! Reads `<dir>/bot.toml` (its languages), `<dir>/intents/` (which intents exist) and
//! `<dir>/examples/<language>/<intent>.txt`. Seeded, and each model trained on one thread: the
//! same bundle trains to the same bytes.

pub mod templates;
pub mod train;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use switchboard::bot::model_file;
use switchboard::intent_model::IntentModel;
use switchboard::language::is_bundle_code;
use switchboard::nlu::Intent;

use crate::templates::Template;

/// How the shipped model is trained (`--check` only passes with these).
pub struct Settings {
    /// Examples drawn from each template.
    pub per_template: usize,
    pub seed: u64,
    pub options: train::Options,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            per_template: 60,
            seed: 2026,
            options: train::Options::default(),
        }
    }
}

/// A bundle's templates, expanded.
pub struct Examples {
    /// Per intent (languages in bot.toml's order, files by name), for reports.
    pub templates: Vec<(Intent, Vec<Template>)>,
    pub all: Vec<(Intent, String)>,
    /// About one template in five (chosen by its text) is held out to calibrate the temperature on sentence
    /// frames the fitted model never saw.
    pub fit: Vec<(Intent, String)>,
    pub held: Vec<(Intent, String)>,
    /// The model's class order: the intents with examples, by name.
    pub classes: Vec<Intent>,
    /// The language of the examples, written into the model.
    pub language: String,
}

pub struct Trained {
    pub model: IntentModel,
    pub calibration: train::Calibration,
}

#[derive(Deserialize)]
struct BotToml {
    languages: Vec<String>,
}

/// The bundle's languages (bot.toml's `languages`), the first being its default.
pub fn languages(dir: &Path) -> Result<Vec<String>, String> {
    let bot_toml = dir.join("bot.toml");
    let text =
        std::fs::read_to_string(&bot_toml).map_err(|e| format!("{}: {e}", bot_toml.display()))?;
    let bot: BotToml =
        toml::from_str(&text).map_err(|e| format!("{}: {}", bot_toml.display(), e.message()))?;
    for lang in &bot.languages {
        // A language names a directory: "../x" must not read outside the bundle.
        if !is_bundle_code(lang) {
            return Err(format!(
                "{}: languages: {lang:?} is not a language code (en, es, pt-BR…)",
                bot_toml.display()
            ));
        }
    }
    if bot.languages.is_empty() {
        return Err(format!("{}: languages: none listed", bot_toml.display()));
    }
    Ok(bot.languages)
}

/// The bundle's examples in `language`, expanded with `settings`.
pub fn examples(dir: &Path, settings: &Settings, language: &str) -> Result<Examples, String> {
    let intents_dir = dir.join("intents");
    let intents: BTreeSet<String> = std::fs::read_dir(&intents_dir)
        .map_err(|e| format!("{}: {e}", intents_dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    if !is_bundle_code(language) {
        return Err(format!(
            "{language:?} is not a language code (en, es, pt-BR…)"
        ));
    }
    let templates = templates::load_dir(&dir.join("examples").join(language), &intents)?;
    let (mut all, mut fit, mut held) = (Vec::new(), Vec::new(), Vec::new());
    for (intent, ts) in &templates {
        let named = intent
            .name()
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        for t in ts {
            // Each template samples from its own seed, and is held out by its own text: a
            // template added to one intent changes neither the examples nor the held-out set
            // (so the temperature) of the others.
            let fingerprint = t.fingerprint();
            let mut rng = fastrand::Rng::with_seed(settings.seed ^ named ^ fingerprint);
            let sampled = t.sample(settings.per_template, &mut rng);
            let part = if fingerprint % 5 == 4 {
                &mut held
            } else {
                &mut fit
            };
            part.extend(sampled.iter().map(|e| (intent.clone(), e.clone())));
            all.extend(sampled.into_iter().map(|e| (intent.clone(), e)));
        }
    }
    if templates.iter().all(|(_, ts)| ts.is_empty()) {
        return Err(format!(
            "{}: no intent has examples in {language:?}: write examples/{language}/<intent>.txt",
            dir.display()
        ));
    }
    let classes = class_order(&templates);
    Ok(Examples {
        templates,
        all,
        fit,
        held,
        classes,
        language: language.to_string(),
    })
}

/// The intents with examples, by name: the order is a function of the bundle alone, so a model
/// deleted and trained again, or trained in a fresh clone, is the same bytes.
fn class_order(templates: &[(Intent, Vec<Template>)]) -> Vec<Intent> {
    let named: BTreeSet<&Intent> = templates.iter().map(|(i, _)| i).collect();
    named.into_iter().cloned().collect()
}

/// Fits the model on every example, its temperature calibrated on the held-out templates.
pub fn train(examples: &Examples, settings: &Settings) -> Trained {
    let calibration = train::calibrate(
        &examples.classes,
        &examples.fit,
        &examples.held,
        &settings.options,
    );
    let mut model = train::train(&examples.classes, &examples.all, &settings.options);
    model.temperature = calibration.temperature;
    model.language = Some(examples.language.clone());
    Trained { model, calibration }
}

/// Each language's model file (its name in the bundle, `model_file`) and bytes as the bundle's
/// examples train them, with the shipped settings. A model per language: trained together, the
/// languages' out-of-scope examples and sentence frames blur each other's borders (nlu-eval's
/// figures in docs/nlu.md), and a language's vocabulary is what tells it apart (`language`).
pub fn train_bundle(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, String> {
    let settings = Settings::default();
    let languages = languages(dir)?;
    let sets = languages
        .iter()
        .map(|lang| examples(dir, &settings, lang))
        .collect::<Result<Vec<_>, _>>()?;
    // The languages train side by side: each alone is seeded and deterministic.
    let models: Vec<Vec<u8>> = std::thread::scope(|s| {
        let running: Vec<_> = sets
            .iter()
            .map(|e| s.spawn(|| train(e, &settings).model.to_bytes()))
            .collect();
        running
            .into_iter()
            .map(|h| h.join().expect("training does not panic"))
            .collect()
    });
    Ok(languages
        .iter()
        .enumerate()
        .map(|(i, lang)| model_file(i == 0, lang))
        .zip(models)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_bundle_trains_to_the_same_model_whatever_model_bin_held() {
        let dir = std::env::temp_dir().join(format!("nlu-train-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("intents")).unwrap();
        std::fs::create_dir_all(dir.join("examples/en")).unwrap();
        std::fs::write(dir.join("bot.toml"), "name = \"t\"\nlanguages = [\"en\"]\n").unwrap();
        for (name, lines) in [
            ("greet", "{hi|hello|hey} {there|}\n"),
            ("cancel_order", "{cancel|stop} my {order|purchase}\n"),
        ] {
            std::fs::write(dir.join(format!("intents/{name}.toml")), "").unwrap();
            std::fs::write(dir.join(format!("examples/en/{name}.txt")), lines).unwrap();
        }
        let settings = Settings {
            options: train::Options {
                min_df: 1,
                ..train::Options::default()
            },
            ..Settings::default()
        };
        let once = train(&examples(&dir, &settings, "en").unwrap(), &settings).model;
        let names: Vec<&str> = once.classes.iter().map(Intent::name).collect();
        assert_eq!(names, ["cancel_order", "greet"], "new classes by name");
        assert_eq!(once.predict("hello there")[0].0.name(), "greet");
        assert_eq!(
            train(&examples(&dir, &settings, "en").unwrap(), &settings).model,
            once
        );

        // Whatever model.bin held before (another order here) plays no part.
        let mut swapped = once.clone();
        swapped.classes.reverse();
        std::fs::write(dir.join("model.bin"), swapped.to_bytes()).unwrap();
        let again = train(&examples(&dir, &settings, "en").unwrap(), &settings).model;
        assert_eq!(again, once);

        std::fs::write(dir.join("examples/en/orphan.txt"), "x\n").unwrap();
        assert!(train_bundle(&dir).unwrap_err().contains("orphan"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bundles_that_cannot_train_say_why() {
        let dir = std::env::temp_dir().join(format!("nlu-train-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("intents")).unwrap();
        std::fs::create_dir_all(dir.join("examples/en")).unwrap();
        std::fs::write(dir.join("bot.toml"), "name = \"t\"\nlanguages = [\"en\"]\n").unwrap();
        std::fs::write(dir.join("intents/greet.toml"), "").unwrap();
        std::fs::write(dir.join("examples/en/greet.txt"), "# nothing yet\n\n").unwrap();
        let e = train_bundle(&dir).unwrap_err();
        assert!(e.contains("no intent has examples in \"en\""), "{e}");
        // A template's mistake names its line.
        std::fs::write(
            dir.join("examples/en/greet.txt"),
            "# greetings\nhello\n{hi|hey\n",
        )
        .unwrap();
        let e = train_bundle(&dir).unwrap_err();
        assert!(e.contains("examples/en/greet.txt:3: "), "{e}");
        // A language is a directory name: never a path out of the bundle.
        std::fs::write(
            dir.join("bot.toml"),
            "name = \"t\"\nlanguages = [\"../../etc\"]\n",
        )
        .unwrap();
        let e = train_bundle(&dir).unwrap_err();
        assert!(e.contains("not a language code"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
