//! `nlu-train`: expands the project's own training templates (`config/bot/examples/en/`).
//!
//!   cargo run --release -p nlu-train -- [--dump] [--per-template N] [--seed S]
//!                                       [--examples DIR] [--out FILE | --check FILE]
//!                                       [--epochs N] [--lr X] [--l2 X] [--min-df N]
//!
//! The training options default to what the shipped model uses (`train::Options`); `--check`
//! only passes with those.
//!
//! Reports how many examples each intent gets (`--dump` prints them, for authoring) and, with
//! `--out FILE`, trains the intent model on them and writes it there. The bot embeds
//! `config/bot/model.bin`; `--check config/bot/model.bin` (run by `./dev/test`) trains again and
//! fails unless the result is byte-for-byte that file, so the model can never drift from the
//! templates it claims to come from. Training is seeded and single-threaded.

mod templates;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut dump = false;
    let mut per_template = 60usize;
    let mut seed = 2026u64;
    let mut out: Option<PathBuf> = None;
    let mut check = false;
    let mut options = train::Options::default();
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/bot/examples/en");
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
            "--check" => args
                .next()
                .map(|v| {
                    out = Some(PathBuf::from(v));
                    check = true;
                })
                .ok_or("--check needs a file"),
            "--examples" => args
                .next()
                .map(|v| dir = PathBuf::from(v))
                .ok_or("--examples needs a directory"),
            "--epochs" | "--min-df" | "--lr" | "--l2" => match args.next() {
                Some(v) => match a.as_str() {
                    "--epochs" => v.parse().map(|x| options.epochs = x).map_err(|_| "--epochs needs a number"),
                    "--min-df" => v.parse().map(|x| options.min_df = x).map_err(|_| "--min-df needs a number"),
                    "--lr" => v.parse().map(|x| options.learning_rate = x).map_err(|_| "--lr needs a number"),
                    _ => v.parse().map(|x| options.l2 = x).map_err(|_| "--l2 needs a number"),
                },
                None => Err("a training option needs a value"),
            },
            "--seed" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| seed = v)
                .ok_or("--seed needs a number"),
            _ => Err("usage: nlu-train [--dump] [--per-template N] [--seed S] [--examples DIR] [--epochs N] [--lr X] [--l2 X] [--min-df N] [--out FILE | --check FILE]"),
        };
        if let Err(e) = parsed {
            eprintln!("nlu-train: {e}");
            return ExitCode::FAILURE;
        }
    }
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
    // Every fifth template of each intent, held out to calibrate the temperature on sentence
    // frames the fitted model never saw.
    let (mut fit, mut held) = (Vec::new(), Vec::new());
    for (intent, templates) in &loaded {
        let mut examples: Vec<String> = Vec::new();
        for (i, t) in templates.iter().enumerate() {
            let sampled = t.sample(per_template, &mut rng);
            let part = if i % 5 == 4 { &mut held } else { &mut fit };
            part.extend(sampled.iter().map(|e| (*intent, e.clone())));
            examples.extend(sampled);
        }
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
        let calibration = train::calibrate(&fit, &held, &options);
        println!(
            "held-out templates: {} examples, accuracy {:.1}%, temperature {:.2} (log-loss {:.3} -> {:.3})",
            held.len(),
            calibration.accuracy * 100.0,
            calibration.temperature,
            calibration.loss_before,
            calibration.loss_after
        );
        let mut model = train::train(&all, &options);
        model.temperature = calibration.temperature;
        let bytes = model.to_bytes();
        if check {
            return match std::fs::read(&path) {
                Ok(existing) if existing == bytes => {
                    println!("{} is what the templates train to", path.display());
                    ExitCode::SUCCESS
                }
                Ok(_) => {
                    eprintln!(
                        "nlu-train: {} is stale: the templates train to a different model; run `cargo run --release -p nlu-train -- --out {}` and commit it",
                        path.display(),
                        path.display()
                    );
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("nlu-train: {}: {e}", path.display());
                    ExitCode::FAILURE
                }
            };
        }
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
