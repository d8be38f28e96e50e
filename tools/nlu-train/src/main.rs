//! `nlu-train`: expands the project's own training templates (`shared/nlu/examples/`).
//!
//!   cargo run -p nlu-train -- [--dump] [--per-template N] [--seed S]
//!
//! Reports how many examples each intent gets (`--dump` prints them, for authoring) and, with
//! `--out FILE`, trains the intent model on them and writes it there.

mod templates;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut dump = false;
    let mut per_template = 40usize;
    let mut seed = 2026u64;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let parsed = match a.as_str() {
            "--dump" => {
                dump = true;
                Ok(())
            }
            "--per-template" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| per_template = v)
                .ok_or("--per-template needs a number"),
            "--out" => args
                .next()
                .map(|v| out = Some(PathBuf::from(v)))
                .ok_or("--out needs a file"),
            "--seed" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| seed = v)
                .ok_or("--seed needs a number"),
            _ => Err("usage: nlu-train [--dump] [--per-template N] [--seed S] [--out FILE]"),
        };
        if let Err(e) = parsed {
            eprintln!("nlu-train: {e}");
            return ExitCode::FAILURE;
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/nlu/examples");
    let loaded = match templates::load_dir(&dir) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nlu-train: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut total = 0;
    let mut all: Vec<(switchboard::nlu::Intent, String)> = Vec::new();
    for (intent, templates) in &loaded {
        let examples: Vec<String> = templates
            .iter()
            .flat_map(|t| t.sample(per_template, &mut rng))
            .collect();
        total += examples.len();
        all.extend(examples.iter().map(|e| (*intent, e.clone())));
        if dump {
            for e in &examples {
                println!("{}\t{e}", intent.name());
            }
        } else {
            println!(
                "{:<26} {:>3} templates {:>5} examples",
                intent.name(),
                templates.len(),
                examples.len()
            );
        }
    }
    if !dump {
        println!("{} intents, {total} examples", loaded.len());
    }
    if let Some(path) = out {
        let start = std::time::Instant::now();
        let model = train::train(&all, &train::Options::default());
        let bytes = model.to_bytes();
        if let Err(e) = std::fs::write(&path, &bytes) {
            eprintln!("nlu-train: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!(
            "trained in {:.1} s: {} features x {} classes, {} bytes -> {}",
            start.elapsed().as_secs_f64(),
            model.ids.len(),
            model.classes.len(),
            bytes.len(),
            path.display()
        );
    }
    ExitCode::SUCCESS
}
