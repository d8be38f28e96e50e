//! `nlu-train`: expands a bot bundle's training templates (`<bundle>/examples/<language>/`)
//! and trains its intent model.
//!
//!   cargo run --release -p nlu-train -- [--bundle DIR] [--language L] [--dump] [--per-template N] [--seed S]
//!                                       [--out FILE | --check FILE]
//!                                       [--epochs N] [--lr X] [--l2 X] [--min-df N]
//!
//! The bundle defaults to the shop bot, `config/bot`, the language to its first (each language
//! has a model of its own: `model.bin` for the first, `model.<lang>.bin` for the others). The training options default to what the
//! shipped model uses (`Settings::default`); `--check` only passes with those.
//!
//! Reports how many examples each intent gets (`--dump` prints them, for authoring) and, with
//! `--out FILE` (normally `<bundle>/model.bin`), trains the model and writes it there;
//! `--check config/bot/model.bin` (run by `./dev/test`) trains again and fails unless the result
//! is byte-for-byte that file, so the model can never drift from the templates it claims to
//! come from.

use std::path::PathBuf;
use std::process::ExitCode;

use nlu_train::{examples, train, Settings};

fn main() -> ExitCode {
    let mut dump = false;
    let mut out: Option<PathBuf> = None;
    let mut check = false;
    let mut settings = Settings::default();
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/bot");
    let mut language: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let o = &mut settings.options;
        let parsed = match a.as_str() {
            "--dump" => {
                dump = true;
                Ok(())
            }
            "--per-template" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| settings.per_template = v)
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
            "--bundle" => args
                .next()
                .map(|v| dir = PathBuf::from(v))
                .ok_or("--bundle needs a directory"),
            "--language" => args
                .next()
                .map(|v| language = Some(v))
                .ok_or("--language needs a language code"),
            "--epochs" | "--min-df" | "--lr" | "--l2" => match args.next() {
                Some(v) => match a.as_str() {
                    "--epochs" => v.parse().map(|x| o.epochs = x).map_err(|_| "--epochs needs a number"),
                    "--min-df" => v.parse().map(|x| o.min_df = x).map_err(|_| "--min-df needs a number"),
                    "--lr" => v.parse().map(|x| o.learning_rate = x).map_err(|_| "--lr needs a number"),
                    _ => v.parse().map(|x| o.l2 = x).map_err(|_| "--l2 needs a number"),
                },
                None => Err("a training option needs a value"),
            },
            "--seed" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| settings.seed = v)
                .ok_or("--seed needs a number"),
            _ => Err("usage: nlu-train [--bundle DIR] [--language L] [--dump] [--per-template N] [--seed S] [--epochs N] [--lr X] [--l2 X] [--min-df N] [--out FILE | --check FILE]"),
        };
        if let Err(e) = parsed {
            eprintln!("nlu-train: {e}");
            return ExitCode::FAILURE;
        }
    }
    let language =
        match language.map_or_else(|| nlu_train::languages(&dir).map(|l| l[0].clone()), Ok) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("nlu-train: {e}");
                return ExitCode::FAILURE;
            }
        };
    let examples = match examples(&dir, &settings, &language) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("nlu-train: {e}");
            return ExitCode::FAILURE;
        }
    };
    if dump {
        for (intent, text) in &examples.all {
            println!("{}\t{text}", intent.name());
        }
    } else {
        for (intent, templates) in &examples.templates {
            let n = examples.all.iter().filter(|(i, _)| i == intent).count();
            println!(
                "{:<26} {:>3} templates {:>5} examples",
                intent.name(),
                templates.len(),
                n
            );
        }
        println!(
            "{} intents, {} examples",
            examples.templates.len(),
            examples.all.len()
        );
    }
    let Some(path) = out else {
        return ExitCode::SUCCESS;
    };
    let start = std::time::Instant::now();
    let trained = train(&examples, &settings);
    let c = &trained.calibration;
    println!(
        "held-out templates: {} examples, accuracy {:.1}%, temperature {:.2} (log-loss {:.3} -> {:.3})",
        examples.held.len(),
        c.accuracy * 100.0,
        c.temperature,
        c.loss_before,
        c.loss_after
    );
    let model = trained.model;
    let bytes = model.to_bytes();
    if check {
        return match std::fs::read(&path) {
            Ok(existing) if existing == bytes => {
                println!("{} is what the templates train to", path.display());
                ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "nlu-train: {} is stale: the templates train to a different model; run `cargo run --release -p nlu-train -- --bundle {} --out {}` and commit it",
                    path.display(),
                    dir.display(),
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
    ExitCode::SUCCESS
}
