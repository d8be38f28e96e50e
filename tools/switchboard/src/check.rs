//! `switchboard check`: loads each file as the functions would at init, prints what it
//! configures, and exits 1 naming file, line and field of every problem.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use switchboard::bot::Bot;
use switchboard::connectors::config::{self as connectors, Auth, Body};
use switchboard::webhook::config as webhooks;

/// The shipped bundle, checked when no option names a file.
const DEFAULT_BOT: &str = "config/bot";

pub fn run(
    connector_files: &[PathBuf],
    webhooks_file: Option<&Path>,
    channels_file: Option<&Path>,
    bot: Option<&Path>,
) -> ExitCode {
    let everything = connector_files.is_empty()
        && webhooks_file.is_none()
        && channels_file.is_none()
        && bot.is_none();
    let mut ok = true;
    let mut declared = None;
    if everything || !connector_files.is_empty() {
        let config = check_connectors(connector_files);
        ok &= config.is_some();
        declared = config.map(|c| c.declared);
    }
    if everything || bot.is_some() {
        // With connector files named, the bundle's flows may call what they declare (as a
        // function loading them would); else (or when they do not load: reported above) what
        // the bundle's own connectors.toml declares.
        let declared = declared.as_ref().filter(|_| !connector_files.is_empty());
        ok &= check_bot(bot.unwrap_or(Path::new(DEFAULT_BOT)), declared);
    }
    if everything || webhooks_file.is_some() {
        ok &= check_webhooks(webhooks_file);
    }
    if everything || channels_file.is_some() {
        ok &= check_channels(channels_file);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `${NAME}` variables unset here are filled with a placeholder (`https://placeholder.invalid`
/// for `*_URL`) and listed, so a file can be checked away from the stage it is for. Secrets are
/// not resolved, only their references checked.
fn check_connectors(files: &[PathBuf]) -> Option<connectors::ConnectorsConfig> {
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
    let spec = (!files.is_empty()).then(|| {
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(",")
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds");
    let config = match runtime.block_on(connectors::load(spec.as_deref(), &env, None)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return None;
        }
    };
    for s in config.systems.values() {
        let auth = match &s.auth {
            Auth::None => "no auth".to_string(),
            Auth::ApiKey { secret, .. } => format!("api key {secret}"),
            Auth::Bearer { secret } => format!("bearer {secret}"),
            Auth::Basic { username, .. } => format!("basic as {username}"),
            Auth::PathToken { secret, prefix } => format!("path token /{prefix}<{secret}>"),
            Auth::OAuth2(o) => format!("oauth2 client {} at {}", o.client_id, o.token_url),
        };
        println!("{}: {} ({auth})", s.name, s.base_url);
        if let Some(ids) = &s.order_ids {
            let digits = ids
                .digits()
                .map_or("any number of digits".to_string(), |n| {
                    format!("{n} digits")
                });
            println!("  order ids: {:?} + {digits}", ids.prefix());
        }
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
    Some(config)
}

/// The bundle a function would load at init: bot.toml, intents, examples, messages, flows
/// (validated against the bundle's messages, slots, allowed operations — built in, or
/// `declared` by connector files, by default the bundle's own connectors.toml — and the
/// actions) and the model. Every problem of every file is listed.
fn check_bot(dir: &Path, declared: Option<&connectors::DeclaredOps>) -> bool {
    let loaded = match declared {
        Some(d) => Bot::load_with(dir, d),
        None => Bot::load(dir),
    };
    match loaded {
        Ok(bot) => {
            println!(
                "ok: bot {} ({}): {} intents, {} flows, languages {}",
                bot.name,
                dir.display(),
                bot.intents.len(),
                bot.flows.len(),
                bot.languages.join(", ")
            );
            true
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}", problems(errors.0.len()));
            false
        }
    }
}

/// Secrets are not resolved here, only their references checked.
fn check_webhooks(file: Option<&Path>) -> bool {
    let path = file.map(|f| f.display().to_string());
    let vendors = match webhooks::load(path.as_deref()) {
        Ok(v) => v,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}", problems(errors.0.len()));
            return false;
        }
    };
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
    true
}

/// Secrets are not resolved here, only their references checked; an unset `${NAME}` (Twilio's
/// public URL) is reported as the channel the intake would refuse.
fn check_channels(file: Option<&Path>) -> bool {
    let path = file.map(|f| f.display().to_string());
    let env = |name: &str| std::env::var(name).ok();
    let channels = match switchboard::channels::config::load(path.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    for c in channels.channels.values() {
        let secrets: Vec<String> = c.secrets.iter().map(ToString::to_string).collect();
        println!(
            "{}: {}, tenant {}, ≤{} bytes, dedup {} days, secrets [{}], link by phone: {}{}",
            c.name,
            c.provider.as_str(),
            c.tenant,
            c.max_body_bytes,
            c.dedup_for.as_secs() / 86_400,
            secrets.join(", "),
            if c.link_by_phone { "yes" } else { "no" },
            c.template
                .as_ref()
                .map(|t| format!(", template {} ({})", t.name, t.language))
                .unwrap_or_default(),
        );
    }
    for (name, why) in &channels.disabled {
        println!("{name}: its messages are refused here: {why}");
    }
    println!("ok: {} channels", channels.channels.len());
    true
}

fn problems(n: usize) -> String {
    match n {
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    }
}
