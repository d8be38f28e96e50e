//! `nlu-eval`: how well Switchboard understands customers, on held-out data.
//!
//!   cargo run --release -p nlu-eval -- [DATA_DIR] [--bundle DIR] [--threshold P] [--clarify P] [--out-of-scope S]
//!                                      [--model FILE]
//!
//! DATA_DIR defaults to ../shared/data. By default what the bot runs is measured: `understand`
//! with the bundle's model and thresholds (the compiled-in shop bot, or `--bundle`;
//! `--threshold` / `--clarify` / `--out-of-scope` override them). With `--model`, a candidate model (from
//! `nlu-train --out`) is measured instead: its top intent, or `unknown` below the threshold.
//! Dataset labels map to the bundle's intents through their `labels`.
//!
//! Reads `bitext_customer_service_dev.csv` (the shop's in-scope taxonomy) and `clinc150_val.json`
//! (general-domain and out-of-scope queries), runs `switchboard::nlu::understand` on every
//! utterance and prints accuracy, macro-F1, per-intent recall with the main confusions, the
//! out-of-scope rejection and in-scope acceptance rates, and classification time (p50/p99).
//! With `multilingual_dev.csv` (es, fr, de), each language's accuracy, out-of-scope rejection
//! and how often its language was told, beside English's (`languages`).
//! These files are evaluation data: nothing here trains on them.

mod data;
mod languages;
mod metrics;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use switchboard::bot::Bot;
use switchboard::intent_model::IntentModel;
use switchboard::nlu::{Intent, Move, Nlu};

use crate::data::Case;
use crate::metrics::{percentile, Scores};

/// Bitext and CLINC150 are English.
const ENGLISH: &str = "en";

/// What is measured: the bot's `understand`, or a candidate model with a confidence threshold.
enum Classifier {
    Understand(Nlu),
    Model(Box<IntentModel>, f32),
}

impl Classifier {
    fn intent(&self, text: &str) -> Intent {
        match self {
            Classifier::Understand(nlu) => nlu.understand(ENGLISH, text).intent,
            Classifier::Model(m, threshold) => match m.predict(text).into_iter().next() {
                Some((intent, p)) if p >= *threshold => intent,
                _ => Intent::unknown(),
            },
        }
    }

    /// The model's top intent and probability, before any threshold.
    fn top(&self, text: &str) -> (Intent, f32) {
        let ranked = match self {
            Classifier::Understand(nlu) => nlu.rank(ENGLISH, text),
            Classifier::Model(m, _) => m.predict(text),
        };
        ranked
            .into_iter()
            .next()
            .unwrap_or((Intent::unknown(), 0.0))
    }
}

/// Accuracy, in-scope acceptance and out-of-scope rejection of the model alone at several
/// acceptance thresholds, for choosing one.
fn sweep(classifier: &Classifier, bitext: &[Case], clinc: &[Case]) {
    let b: Vec<(Intent, (Intent, f32))> = bitext
        .iter()
        .map(|c| (c.expected.clone(), classifier.top(&c.text)))
        .collect();
    let oos: Vec<(Intent, f32)> = clinc
        .iter()
        .filter(|c| c.expected.is(Move::OutOfScope))
        .map(|c| classifier.top(&c.text))
        .collect();
    println!();
    println!(
        "Threshold sweep (model alone): accept  Bitext-accuracy  in-scope-accepted  OOS-rejected"
    );
    for t in [0.2f32, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let correct = b.iter().filter(|(e, (p, c))| *c >= t && p == e).count();
        let accepted = b
            .iter()
            .filter(|(_, (p, c))| *c >= t && !p.is_rejection())
            .count();
        let rejected = oos
            .iter()
            .filter(|(p, c)| *c < t || p.is_rejection())
            .count();
        println!(
            "                                {t:.1}  {:>15}  {:>17}  {:>12}",
            pct(correct as f64 / b.len().max(1) as f64),
            pct(accepted as f64 / b.len().max(1) as f64),
            pct(rejected as f64 / oos.len().max(1) as f64)
        );
    }
}

fn predict(classifier: &Classifier, cases: &[Case]) -> Vec<(Intent, Intent)> {
    cases
        .iter()
        .map(|c| (c.expected.clone(), classifier.intent(&c.text)))
        .collect()
}

/// Wall time per classification over every utterance, several passes, sorted.
fn timings(classifier: &Classifier, texts: &[&str], passes: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(texts.len() * passes);
    for _ in 0..passes {
        for t in texts {
            let start = Instant::now();
            std::hint::black_box(classifier.intent(std::hint::black_box(t)));
            out.push(start.elapsed());
        }
    }
    out.sort();
    out
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `--threshold` / `--clarify`.
#[derive(Default)]
struct Overrides {
    accept: Option<f32>,
    clarify: Option<f32>,
    out_of_scope: Option<f32>,
}

fn run(
    dir: PathBuf,
    bundle: Option<PathBuf>,
    model: Option<PathBuf>,
    o: Overrides,
) -> Result<(), String> {
    // Building the classifier (loading the bundle and its model, compiling regexes) is timed
    // on its own.
    let start = Instant::now();
    let bot = match &bundle {
        Some(b) => std::sync::Arc::new(Bot::load(b).map_err(|e| e.to_string())?),
        None => Bot::try_embedded().map_err(|e| e.to_string())?,
    };
    let mut thresholds = bot.thresholds;
    thresholds.accept = o.accept.unwrap_or(thresholds.accept);
    thresholds.clarify = o.clarify.unwrap_or(thresholds.clarify);
    thresholds.out_of_scope = o.out_of_scope.unwrap_or(thresholds.out_of_scope);
    let classifier = match model {
        None => {
            let loaded = start.elapsed();
            let nlu = bot.nlu().with_thresholds(thresholds);
            nlu.warm_up();
            println!(
                "bundle {} ({} intents, loaded in {:.2} ms), accept {}, clarify {}, out of scope {}",
                bot.source,
                bot.intents.len(),
                loaded.as_secs_f64() * 1e3,
                thresholds.accept,
                thresholds.clarify,
                thresholds.out_of_scope
            );
            Classifier::Understand(nlu)
        }
        Some(path) => {
            let threshold = thresholds.accept;
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let m =
                IntentModel::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            std::hint::black_box(m.predict("hello"));
            println!(
                "model {} ({} bytes), threshold {threshold}",
                path.display(),
                bytes.len()
            );
            Classifier::Model(Box::new(m), threshold)
        }
    };
    let init = start.elapsed();

    let labels = data::Labels::of(&bot);
    let bitext = data::bitext(&dir.join("bitext_customer_service_dev.csv"), &labels)?;
    let clinc = data::clinc(&dir.join("clinc150_val.json"))?;

    let b = predict(&classifier, &bitext);
    let bs = Scores::new(&b);
    let intents: std::collections::BTreeSet<&Intent> = bitext.iter().map(|c| &c.expected).collect();
    println!(
        "Bitext customer service (dev): {} utterances, {} intents",
        b.len(),
        intents.len()
    );
    println!("  accuracy              {}", pct(bs.accuracy()));
    println!("  macro-F1              {}", pct(bs.macro_f1()));
    println!(
        "  in-scope accepted     {}   (not out_of_scope/unknown)",
        pct(bs.share(|p| !p.is_rejection()))
    );
    println!("  per intent (recall, precision, n; top confusions):");
    for (intent, prf) in bs.per_intent() {
        let confused: Vec<String> = bs
            .confusions(&intent)
            .into_iter()
            .take(3)
            .map(|(i, n)| format!("{} {n}", i.name()))
            .collect();
        println!(
            "    {:<26} {:>6} {:>6} {:>4}   {}",
            intent.name(),
            pct(prf.recall),
            pct(prf.precision),
            prf.support,
            confused.join(", ")
        );
    }

    let c = predict(&classifier, &clinc);
    let (out_of_scope, overlap): (Vec<_>, Vec<_>) =
        c.iter().cloned().partition(|(e, _)| e.is(Move::OutOfScope));
    println!();
    println!(
        "CLINC150 (val + oos_val): {} utterances; {} out of scope for a shop, {} it handles",
        c.len(),
        out_of_scope.len(),
        overlap.len()
    );
    println!(
        "  out-of-scope rejected {}",
        pct(Scores::new(&out_of_scope).share(|p| p.is_rejection()))
    );
    let mut leaks: std::collections::BTreeMap<Intent, usize> = std::collections::BTreeMap::new();
    for (_, p) in out_of_scope.iter().filter(|(_, p)| !p.is_rejection()) {
        *leaks.entry(p.clone()).or_default() += 1;
    }
    let mut leaks: Vec<(Intent, usize)> = leaks.into_iter().collect();
    leaks.sort_by_key(|l| std::cmp::Reverse(l.1));
    let leaks: Vec<String> = leaks
        .iter()
        .take(8)
        .map(|(i, n)| format!("{} {n}", i.name()))
        .collect();
    println!("  accepted as           {}", leaks.join(", "));
    println!(
        "  overlap accuracy      {}   (greeting, goodbye, thank_you, yes, no, order_status)",
        pct(Scores::new(&overlap).accuracy())
    );

    if let Classifier::Understand(nlu) = &classifier {
        let unsure: Vec<(&Intent, (Intent, Intent))> = bitext
            .iter()
            .filter_map(|c| {
                Some((
                    &c.expected,
                    nlu.understand(ENGLISH, &c.text).unsure_between?,
                ))
            })
            .collect();
        let right = unsure
            .iter()
            .filter(|(expected, (a, b))| a == *expected || b == *expected)
            .count();
        println!();
        println!(
            "Clarification (\"did you mean X or Y?\"): asked for {} of Bitext; the right intent offered in {}",
            pct(unsure.len() as f64 / bitext.len().max(1) as f64),
            pct(right as f64 / unsure.len().max(1) as f64)
        );
    }
    if let Classifier::Understand(nlu) = &classifier {
        let path = dir.join("multilingual_dev.csv");
        if path.exists() {
            let cases = data::multilingual(&path, &labels)?;
            let english: Vec<&Case> = bitext.iter().chain(clinc.iter()).collect();
            languages::report(&bot, nlu, &cases, &english);
        }
    }
    sweep(&classifier, &bitext, &clinc);

    let texts: Vec<&str> = bitext
        .iter()
        .chain(clinc.iter())
        .map(|c| c.text.as_str())
        .collect();
    let t = timings(&classifier, &texts, 5);
    println!();
    println!(
        "Time per utterance ({} calls): p50 {:.1} us, p99 {:.1} us, max {:.1} us; first call (init) {:.2} ms",
        t.len(),
        percentile(&t, 0.5).as_secs_f64() * 1e6,
        percentile(&t, 0.99).as_secs_f64() * 1e6,
        t.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
        init.as_secs_f64() * 1e3,
    );
    Ok(())
}

fn main() -> ExitCode {
    let mut dir = PathBuf::from("../shared/data");
    let mut model: Option<PathBuf> = None;
    let mut bundle: Option<PathBuf> = None;
    let mut overrides = Overrides::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--bundle" => bundle = args.next().map(PathBuf::from),
            "--threshold" | "--clarify" | "--out-of-scope" => {
                match args.next().and_then(|v| v.parse().ok()) {
                    Some(p) if a == "--threshold" => overrides.accept = Some(p),
                    Some(p) if a == "--clarify" => overrides.clarify = Some(p),
                    Some(p) => overrides.out_of_scope = Some(p),
                    None => {
                        eprintln!("nlu-eval: {a} needs a probability");
                        return ExitCode::FAILURE;
                    }
                }
            }
            other => dir = PathBuf::from(other),
        }
    }
    match run(dir, bundle, model, overrides) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nlu-eval: {e}");
            ExitCode::FAILURE
        }
    }
}
