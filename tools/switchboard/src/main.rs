//! `switchboard`: the operator's command for what is deployed as data. Checks configuration
//! files before they ship; everything runs offline.

mod check;

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
    /// Validate connector and webhook files before they are deployed. Every problem is named by
    /// file, line and field. With neither option, the bundled config/connectors.toml and
    /// config/webhooks.toml are checked.
    Check {
        /// Connector files, checked as one configuration (each system in one file only), as
        /// `SWITCHBOARD_CONNECTORS_FILE=a.toml,b.toml` would load them.
        #[arg(long, num_args = 1..)]
        connectors: Vec<PathBuf>,
        /// A webhook vendor file.
        #[arg(long)]
        webhooks: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check {
            connectors,
            webhooks,
        } => check::run(&connectors, webhooks.as_deref()),
    }
}
