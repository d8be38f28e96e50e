//! `switchboard test`: runs a bundle's conversation tests offline and lists every failing turn.

use std::path::Path;
use std::process::ExitCode;

use switchboard::bot::conversation_tests::{run as run_tests, Suite};

pub fn run(bundle: &Path) -> ExitCode {
    let suite = match Suite::load(bundle) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime builds");
    let report = runtime.block_on(run_tests(&suite));
    for f in &report.failures {
        eprintln!("FAIL {f}");
    }
    let failed = suite.tests.len() - report.passed;
    println!("{} passed, {failed} failed", report.passed);
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
