//! Validates a webhook vendor file before it is deployed:
//!   cargo run -p switchboard --bin webhooks-check -- config/webhooks.toml
//! Prints each vendor and what it accepts; exits 1 with the file, vendor and field on an error.
//! Secrets are not resolved here, only their references checked.

use std::process::ExitCode;

use switchboard::webhook::config;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let vendors = match args.as_slice() {
        [] => config::load(None),
        [path] => config::load(Some(path)),
        _ => {
            eprintln!("usage: webhooks-check [FILE]   (no FILE: the bundled config/webhooks.toml)");
            return ExitCode::from(2);
        }
    };
    match vendors {
        Ok(vendors) => {
            for v in vendors.values() {
                let secrets: Vec<String> = v.secrets.iter().map(ToString::to_string).collect();
                println!(
                    "{}: {:?}, tenant {}, ±{} s, ≤{} bytes, dedup {} days, secrets [{}], {} mapped types, routed by email: {}",
                    v.name,
                    v.scheme,
                    v.tenant,
                    v.tolerance.as_secs(),
                    v.max_body_bytes,
                    v.dedup_for.as_secs() / 86_400,
                    secrets.join(", "),
                    v.events.len(),
                    if v.route_by_email { "yes" } else { "no" }
                );
            }
            println!("ok: {} vendors", vendors.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
