//! `nlu-train`: expands the project's own training templates (`shared/nlu/examples/`).
//!
//!   cargo run -p nlu-train -- [--dump] [--per-template N] [--seed S]
//!
//! For now it reports how many examples each intent gets (and with `--dump` prints them, for
//! authoring); training the classifier from them is the next step of issue 5.

mod templates;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut dump = false;
    let mut per_template = 40usize;
    let mut seed = 2026u64;
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
            "--seed" => args
                .next()
                .and_then(|v| v.parse().ok())
                .map(|v| seed = v)
                .ok_or("--seed needs a number"),
            _ => Err("usage: nlu-train [--dump] [--per-template N] [--seed S]"),
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
    for (intent, templates) in &loaded {
        let examples: Vec<String> = templates
            .iter()
            .flat_map(|t| t.sample(per_template, &mut rng))
            .collect();
        total += examples.len();
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
    ExitCode::SUCCESS
}
