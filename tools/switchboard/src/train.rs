//! `switchboard train`: the bundle's examples → `<bundle>/model.bin`, reproducibly (the same
//! examples give the same bytes, so the model is committed beside them and `--check` proves it
//! still is what they train to).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(bot: &Path, check: bool) -> ExitCode {
    let started = Instant::now();
    let model = match nlu_train::train_bundle(bot) {
        Ok(model) => model,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let path = bot.join("model.bin");
    let took = started.elapsed().as_secs_f32();
    if check {
        return match std::fs::read(&path) {
            Ok(existing) if existing == model => {
                println!(
                    "ok: {} is what the examples train to ({took:.1} s)",
                    path.display()
                );
                ExitCode::SUCCESS
            }
            Ok(_) => {
                eprintln!(
                    "error: {} is not what the examples train to: run `switchboard train --bot {}` and commit it",
                    path.display(),
                    bot.display()
                );
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("error: {}: cannot read: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    match std::fs::write(&path, &model) {
        Ok(()) => {
            println!(
                "ok: wrote {} ({} bytes, {took:.1} s)",
                path.display(),
                model.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: cannot write: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
