//! What the bot makes of messages, one per line on stdin: the intent acted on, its confidence,
//! the two intents it would ask about when unsure, and the model's top two.
//!   echo "where is my refund?" | cargo run -q -p switchboard --example understand
//! The bundle is `SWITCHBOARD_BOT`'s, or the compiled-in one.

use std::process::ExitCode;

fn main() -> ExitCode {
    let nlu = match switchboard::bot::Bot::from_env() {
        Ok(bot) => bot.nlu(),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for line in std::io::stdin().lines() {
        let Ok(text) = line else { break };
        let u = nlu.understand(nlu.default_language(), &text);
        let ranked = nlu.rank(&text);
        let top: Vec<String> = ranked
            .iter()
            .take(2)
            .map(|(i, p)| format!("{} {p:.2}", i.name()))
            .collect();
        let unsure = u
            .unsure_between
            .map(|(a, b)| format!(" unsure: {} or {}", a.name(), b.name()))
            .unwrap_or_default();
        println!(
            "{text:<50} -> {} ({:.2}){unsure} | model: {}",
            u.intent.name(),
            u.confidence,
            top.join(", ")
        );
    }
    ExitCode::SUCCESS
}
