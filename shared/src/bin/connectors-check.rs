//! Validates connector files before they are deployed:
//!   cargo run -p switchboard --bin connectors-check -- config/connectors.toml [MORE.toml ...]
//! Several files are checked as one configuration (each system in one file only), as
//! `SWITCHBOARD_CONNECTORS_FILE=a.toml,b.toml` would load them. `${NAME}` variables that are unset
//! here are filled with a placeholder (`https://placeholder.invalid` for `*_URL`) and listed, so a
//! file can be checked away from the stage it is for. Secrets are not resolved, only their
//! references checked. Exits 1 with the file, the field and what is wrong.

use std::cell::RefCell;
use std::process::ExitCode;

use switchboard::connectors::config::{self, Auth, Body};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.iter().any(|f| f.starts_with('-')) {
        eprintln!(
            "usage: connectors-check [FILE ...]   (no FILE: the bundled config/connectors.toml)"
        );
        return ExitCode::from(2);
    }
    let assumed = RefCell::new(Vec::<String>::new());
    let env = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            assumed.borrow_mut().push(name.to_string());
            Some(if name.ends_with("_URL") {
                "https://placeholder.invalid".to_string()
            } else {
                "placeholder".to_string()
            })
        })
    };
    let spec = (!files.is_empty()).then(|| files.join(","));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let loaded = runtime.block_on(config::load(spec.as_deref(), &env, None));
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    for s in config.systems.values() {
        let auth = match &s.auth {
            Auth::None => "no auth".to_string(),
            Auth::ApiKey { secret, .. } => format!("api key {secret}"),
            Auth::Bearer { secret } => format!("bearer {secret}"),
            Auth::Basic { username, .. } => format!("basic as {username}"),
            Auth::OAuth2(o) => format!("oauth2 client {} at {}", o.client_id, o.token_url),
        };
        println!("{}: {} ({auth})", s.name, s.base_url);
        for op in s.operations.values() {
            let how = match &op.body {
                Body::GraphQl { .. } => "GraphQL".to_string(),
                _ => op.method.to_string(),
            };
            println!(
                "  {}: {how}, timeout {} ms, {} retries",
                op.op,
                op.timeout.as_millis(),
                op.retries
            );
        }
    }
    let assumed = assumed.into_inner();
    if !assumed.is_empty() {
        println!("placeholders for unset variables: {}", assumed.join(", "));
    }
    println!(
        "ok: {} systems, {} operations",
        config.systems.len(),
        config
            .systems
            .values()
            .map(|s| s.operations.len())
            .sum::<usize>()
    );
    ExitCode::SUCCESS
}
