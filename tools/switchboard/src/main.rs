//! `switchboard`: the operator's command for what is deployed as data. Checks configuration
//! files before they ship, runs a bot's conversation tests and chats with it; everything runs
//! offline.

mod chat;
mod check;
mod import_rasa;
mod test;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "switchboard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a bot bundle, connector and webhook files before they are deployed. Every
    /// problem is named by file, line and field. With no option, config/bot, the bundled
    /// config/connectors.toml, config/webhooks.toml and config/channels.toml are checked.
    Check {
        /// Connector files, checked as one configuration (each system in one file only), as
        /// `SWITCHBOARD_CONNECTORS_FILE=a.toml,b.toml` would load them.
        #[arg(long, num_args = 1..)]
        connectors: Vec<PathBuf>,
        /// A webhook vendor file.
        #[arg(long)]
        webhooks: Option<PathBuf>,
        /// A messaging channels file (config/channels.toml's format).
        #[arg(long)]
        channels: Option<PathBuf>,
        /// A bot bundle directory (bot.toml, intents/, examples/, messages/, flows/, model.bin).
        #[arg(long)]
        bot: Option<PathBuf>,
    },
    /// Train the bundle's intent model from its examples into <bot>/model.bin (the same examples
    /// always give the same bytes); with --check, only verify the committed model is that.
    Train {
        /// The bundle directory.
        #[arg(long, default_value = "config/bot")]
        bot: PathBuf,
        /// Fail unless <bot>/model.bin is exactly what the examples train to; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Run a bot bundle's conversation tests (tests/*.yaml against tests/fixtures.yaml),
    /// offline: every failing turn is listed with its file, test and what came instead.
    Test {
        /// The bundle directory.
        #[arg(long, default_value = "config/bot")]
        bot: PathBuf,
    },
    /// Talk to the bot offline, one message per line of standard input, against in-memory
    /// conversations and the conversation tests' fixtures (or a connector file's systems).
    Chat {
        /// The systems' data (default: the bundle's tests/fixtures.yaml).
        #[arg(long, conflicts_with = "connectors")]
        fixtures: Option<PathBuf>,
        /// Connector files whose systems answer instead; secrets from the environment.
        #[arg(long, num_args = 1..)]
        connectors: Vec<PathBuf>,
        /// Who is talking (default: the fixtures' first customer).
        #[arg(long)]
        customer: Option<String>,
        /// The bundle directory.
        #[arg(long, default_value = "config/bot")]
        bot: PathBuf,
    },
    /// Start a bundle from another tool's bot.
    #[command(subcommand)]
    Import(Import),
}

#[derive(Subcommand)]
enum Import {
    /// A Rasa project's intents and examples (nlu.yml) and responses (domain.yml) as
    /// intents/, examples/en/ and messages/en.toml under --out.
    Rasa {
        nlu: PathBuf,
        domain: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check {
            connectors,
            webhooks,
            channels,
            bot,
        } => check::run(
            &connectors,
            webhooks.as_deref(),
            channels.as_deref(),
            bot.as_deref(),
        ),
        Command::Test { bot } => test::run(&bot),
        Command::Train { bot, check } => train::run(&bot, check),
        Command::Import(Import::Rasa { nlu, domain, out }) => {
            match import_rasa::import(&nlu, domain.as_deref(), &out) {
                Ok(done) => {
                    println!(
                        "ok: {} intents ({} with an answer), {} examples, {} messages in {}",
                        done.intents,
                        done.answered,
                        done.examples,
                        done.messages,
                        out.display()
                    );
                    if !done.handed_off.is_empty() {
                        println!(
                            "no response in the domain, so these hand off to a person until you write their answer or flow: {}",
                            done.handed_off.join(", ")
                        );
                    }
                    for note in &done.notes {
                        println!("note: {note}");
                    }
                    println!(
                        "next: switchboard train --bot {0} && switchboard check --bot {0}",
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Chat {
            fixtures,
            connectors,
            customer,
            bot,
        } => chat::run(chat::Options {
            fixtures: fixtures.unwrap_or_else(|| chat::default_fixtures(&bot)),
            bot,
            connectors,
            customer,
        }),
    }
}
