//! `switchboard train`: trains a bundle's intent model from its examples and writes
//! `<bundle>/model.bin`, byte for byte what `nlu-train` writes with the shipped settings.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(bundle: &Path) -> ExitCode {
    let started = Instant::now();
    let bytes = match nlu_train::train_bundle(bundle) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = bundle.join("model.bin");
    if let Err(e) = std::fs::write(&out, &bytes) {
        eprintln!("error: {}: cannot write: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "ok: {} bytes -> {} in {:.1} s",
        bytes.len(),
        out.display(),
        started.elapsed().as_secs_f32()
    );
    ExitCode::SUCCESS
}
