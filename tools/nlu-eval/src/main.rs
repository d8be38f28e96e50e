//! `nlu-eval`: how well Switchboard understands customers, on held-out data.
//!
//!   cargo run --release -p nlu-eval -- [DATA_DIR]     (default: ../shared/data)
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

use switchboard::nlu::{understand, Intent};

use crate::data::Case;
use crate::metrics::{percentile, Scores};

fn predict(cases: &[Case]) -> Vec<(Intent, Intent)> {
    cases
        .iter()
        .map(|c| (c.expected, understand(&c.text).intent))
        .collect()
}

/// Wall time per `understand` call over every utterance, several passes, sorted.
fn timings(texts: &[&str], passes: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(texts.len() * passes);
    for _ in 0..passes {
        for t in texts {
            let start = Instant::now();
            std::hint::black_box(understand(std::hint::black_box(t)));
            out.push(start.elapsed());
        }
    }
    out.sort();
    out
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn run(dir: PathBuf) -> Result<(), String> {
    // The first call builds the model (regexes now, the classifier later): timed on its own.
    let start = Instant::now();
    std::hint::black_box(understand("hello"));
    let init = start.elapsed();

    let bitext = data::bitext(&dir.join("bitext_customer_service_dev.csv"))?;
    let clinc = data::clinc(&dir.join("clinc150_val.json"))?;

    let b = predict(&bitext);
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

    let c = predict(&clinc);
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
    let t = timings(&texts, 5);
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
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    match run(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nlu-eval: {e}");
            ExitCode::FAILURE
        }
    }
}
