//! `nlu-eval`: how well Switchboard understands customers, on held-out data.
//!
//!   cargo run --release -p nlu-eval -- [DATA_DIR] [--model FILE [--threshold P]]
//!
//! DATA_DIR defaults to ../shared/data. With `--model`, a trained intent model (from
//! `nlu-train --out`) is measured instead of what `understand` does today: its top intent, or
//! `unknown` when that intent's probability is below the threshold (default 0.5).
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
use switchboard::nlu::{understand, Intent};

use crate::data::Case;
use crate::metrics::{percentile, Scores};

/// What is measured: today's `understand`, or a trained model with a confidence threshold.
enum Classifier {
    Understand,
    Model(IntentModel, f32),
}

impl Classifier {
    fn intent(&self, text: &str) -> Intent {
        match self {
            Classifier::Understand => understand(text).intent,
            Classifier::Model(m, threshold) => match m.predict(text).first() {
                Some((intent, p)) if p >= threshold => *intent,
                _ => Intent::Unknown,
            },
        }
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

fn run(dir: PathBuf, model: Option<(PathBuf, f32)>) -> Result<(), String> {
    // Building the classifier (compiling regexes, or parsing the model) is timed on its own.
    let start = Instant::now();
    let classifier = match model {
        None => {
            std::hint::black_box(understand("hello"));
            Classifier::Understand
        }
        Some((path, threshold)) => {
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
    println!(
        "  overlap accuracy      {}   (greeting, goodbye, thank_you, yes, no, order_status)",
        pct(Scores::new(&overlap).accuracy())
    );

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
    let mut threshold = 0.5f32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--threshold" => match args.next().and_then(|v| v.parse().ok()) {
                Some(t) => threshold = t,
                None => {
                    eprintln!("nlu-eval: --threshold needs a probability");
                    return ExitCode::FAILURE;
                }
            },
            other => dir = PathBuf::from(other),
        }
    }
    match run(dir, model.map(|m| (m, threshold))) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nlu-eval: {e}");
            ExitCode::FAILURE
        }
    }
}
