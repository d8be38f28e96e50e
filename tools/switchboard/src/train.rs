//! `switchboard train`: the bundle's examples → one model per language (`<bundle>/model.bin` for
//! the default language, `model.<lang>.bin` for each other), reproducibly (the same examples give
//! the same bytes, so the models are committed beside them and `--check` proves they still are
//! what they train to).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(bot: &Path, check: bool) -> ExitCode {
    let started = Instant::now();
    let models = match nlu_train::train_bundle(bot) {
        Ok(models) => models,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let took = started.elapsed().as_secs_f32();
    let mut failed = false;
    for (name, model) in &models {
        let path = bot.join(name);
        if check {
            match std::fs::read(&path) {
                Ok(existing) if existing == *model => {
                    println!(
                        "ok: {} is what the examples train to ({took:.1} s)",
                        path.display()
                    );
                }
                Ok(_) => {
                    eprintln!(
                        "error: {} is not what the examples train to: run `switchboard train --bot {}` and commit it",
                        path.display(),
                        bot.display()
                    );
                    failed = true;
                }
                Err(e) => {
                    eprintln!("error: {}: cannot read: {e}", path.display());
                    failed = true;
                }
            }
            continue;
        }
        // A new file renamed over the old one: a function running from this bundle maps its
        // model files (shared/src/bot/bundle_load.rs) and keeps reading the old one.
        let fresh = path.with_extension("bin.new");
        match std::fs::write(&fresh, model).and_then(|()| std::fs::rename(&fresh, &path)) {
            Ok(()) => println!(
                "ok: wrote {} ({} bytes, {took:.1} s)",
                path.display(),
                model.len()
            ),
            Err(e) => {
                eprintln!("error: {}: cannot write: {e}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
