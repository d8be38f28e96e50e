//! `nlu-eval`: how well Switchboard understands customers, on held-out data.
//!
//!   cargo run --release -p nlu-eval -- [DATA_DIR] [--threshold P] [--clarify P] [--model FILE]
//!
//! DATA_DIR defaults to ../shared/data. By default what the bot runs is measured: `understand`
//! with the embedded model and the default thresholds (`--threshold` / `--clarify` override
//! them). With `--model`, a candidate model (from `nlu-train --out`) is measured instead: its
//! top intent, or `unknown` below the threshold.
//!
//! Reads `bitext_customer_service_dev.csv` (the shop's in-scope taxonomy) and `clinc150_val.json`
//! (general-domain and out-of-scope queries), runs `switchboard::nlu::understand` on every
//! utterance and prints accuracy, macro-F1, per-intent recall with the main confusions, the
//! out-of-scope rejection and in-scope acceptance rates, and classification time (p50/p99).
//! These files are evaluation data: nothing here trains on them.

mod data;
mod metrics;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use switchboard::intent_model::IntentModel;
use switchboard::nlu::{self, understand_with, Intent, Thresholds};

use crate::data::Case;
use crate::metrics::{percentile, Scores};

/// What is measured: the bot's `understand`, or a candidate model with a confidence threshold.
enum Classifier {
    Understand(Thresholds),
    Model(IntentModel, f32),
}

impl Classifier {
    fn intent(&self, text: &str) -> Intent {
        match self {
            Classifier::Understand(t) => understand_with(text, *t).intent,
            Classifier::Model(m, threshold) => match m.predict(text).first() {
                Some((intent, p)) if p >= threshold => *intent,
                _ => Intent::Unknown,
            },
        }
    }

    /// The model's top intent and probability, before any threshold.
    fn top(&self, text: &str) -> (Intent, f32) {
        let ranked = match self {
            Classifier::Understand(_) => nlu::rank(text),
            Classifier::Model(m, _) => m.predict(text),
        };
        ranked.first().copied().unwrap_or((Intent::Unknown, 0.0))
    }
}

/// Accuracy, in-scope acceptance and out-of-scope rejection of the model alone at several
/// acceptance thresholds, for choosing one.
fn sweep(classifier: &Classifier, bitext: &[Case], clinc: &[Case]) {
    let b: Vec<(Intent, (Intent, f32))> = bitext
        .iter()
        .map(|c| (c.expected, classifier.top(&c.text)))
        .collect();
    let oos: Vec<(Intent, f32)> = clinc
        .iter()
        .filter(|c| c.expected == Intent::OutOfScope)
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
        .map(|c| (c.expected, classifier.intent(&c.text)))
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

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn run(dir: PathBuf, model: Option<PathBuf>, thresholds: Thresholds) -> Result<(), String> {
    // Building the classifier (parsing the model, compiling regexes) is timed on its own.
    let start = Instant::now();
    let classifier = match model {
        None => {
            let m = IntentModel::from_bytes(nlu::MODEL_BYTES).map_err(|e| e.to_string())?;
            let parse = start.elapsed();
            nlu::warm_up();
            println!(
                "embedded model ({} bytes, parsed in {:.2} ms), accept {}, clarify {}",
                nlu::MODEL_BYTES.len(),
                parse.as_secs_f64() * 1e3,
                thresholds.accept,
                thresholds.clarify
            );
            std::hint::black_box(m);
            Classifier::Understand(thresholds)
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
            Classifier::Model(m, threshold)
        }
    };
    let init = start.elapsed();

    let bitext = data::bitext(&dir.join("bitext_customer_service_dev.csv"))?;
    let clinc = data::clinc(&dir.join("clinc150_val.json"))?;

    let b = predict(&classifier, &bitext);
    let bs = Scores::new(&b);
    println!(
        "Bitext customer service (dev): {} utterances, 27 intents",
        b.len()
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
            .confusions(intent)
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
    let out_of_scope: Vec<(Intent, Intent)> = c
        .iter()
        .copied()
        .filter(|(e, _)| *e == Intent::OutOfScope)
        .collect();
    let overlap: Vec<(Intent, Intent)> = c
        .iter()
        .copied()
        .filter(|(e, _)| *e != Intent::OutOfScope)
        .collect();
    println!();
    println!(
        "CLINC150 (val + oos_val): {} utterances; {} out of scope for a shop, {} it handles",
        c.len(),
        out_of_scope.len(),
        overlap.len()
    );
    println!(
        "  out-of-scope rejected {}",
        pct(Scores::new(&out_of_scope).share(Intent::is_rejection))
    );
    let mut leaks: std::collections::BTreeMap<Intent, usize> = std::collections::BTreeMap::new();
    for (_, p) in out_of_scope.iter().filter(|(_, p)| !p.is_rejection()) {
        *leaks.entry(*p).or_default() += 1;
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

    if let Classifier::Understand(t) = &classifier {
        let unsure: Vec<(Intent, (Intent, Intent))> = bitext
            .iter()
            .filter_map(|c| Some((c.expected, understand_with(&c.text, *t).unsure_between?)))
            .collect();
        let right = unsure
            .iter()
            .filter(|(expected, (a, b))| a == expected || b == expected)
            .count();
        println!();
        println!(
            "Clarification (\"did you mean X or Y?\"): asked for {} of Bitext; the right intent offered in {}",
            pct(unsure.len() as f64 / bitext.len().max(1) as f64),
            pct(right as f64 / unsure.len().max(1) as f64)
        );
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
    let mut thresholds = Thresholds::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--threshold" | "--clarify" => match args.next().and_then(|v| v.parse().ok()) {
                Some(p) if a == "--threshold" => thresholds.accept = p,
                Some(p) => thresholds.clarify = p,
                None => {
                    eprintln!("nlu-eval: {a} needs a probability");
                    return ExitCode::FAILURE;
                }
            },
            other => dir = PathBuf::from(other),
        }
    }
    match run(dir, model, thresholds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nlu-eval: {e}");
            ExitCode::FAILURE
        }
    }
}
