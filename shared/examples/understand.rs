//! What the bot makes of messages, one per line on stdin: the intent acted on, its confidence,
//! the two intents it would ask about when unsure, and the model's top two, in the language the
//! message is read as (each line on its own, as a conversation's first message).
//!   echo "where is my refund?" | cargo run -q -p switchboard --example understand
//! The bundle is `SWITCHBOARD_BOT`'s, or the compiled-in one.

use std::process::ExitCode;

fn main() -> ExitCode {
    let bot = match switchboard::bot::Bot::from_env() {
        Ok(bot) => bot,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let nlu = bot.nlu();
    for line in std::io::stdin().lines() {
        let Ok(text) = line else { break };
        let lang = match switchboard::language::choose(&bot, None, None, &text) {
            switchboard::language::Choice::Speak(l) => l,
            switchboard::language::Choice::Unsupported(code) => {
                println!("{text:<50} -> a language the bot does not speak ({code})");
                continue;
            }
        };
        let u = nlu.understand(&lang, &text);
        let ranked = nlu.rank(&lang, &text);
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
            "{text:<50} -> [{lang}] {} ({:.2}){unsure} | model: {}",
            u.intent.name(),
            u.confidence,
            top.join(", ")
        );
    }
    ExitCode::SUCCESS
}
