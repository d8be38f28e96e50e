//! Validates a bot answers file before it is deployed:
//!   cargo run -p switchboard --bin answers-check -- config/answers.toml
//! Prints each intent's answer kind; exits 1 with the file and field on an error.

use std::process::ExitCode;

use switchboard::answers::{has_built_in_flow, Answers};
use switchboard::nlu::Intent;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let answers = match args.as_slice() {
        [] => Answers::load(None),
        [path] => Answers::load(Some(path)),
        _ => {
            eprintln!("usage: answers-check [FILE]   (no FILE: the bundled config/answers.toml)");
            return ExitCode::from(2);
        }
    };
    match answers {
        Ok(answers) => {
            for intent in Intent::ALL {
                let how = match answers.get(intent) {
                    _ if has_built_in_flow(intent) => "built-in flow".to_string(),
                    Some(a) => format!(
                        "text{}{}",
                        if a.needs_order {
                            ", asks which order"
                        } else {
                            ""
                        },
                        if a.handoff { ", hands off" } else { "" }
                    ),
                    None => "missing".to_string(),
                };
                println!("{:<26} {how}", intent.name());
            }
            println!("ok: {} configured answers", answers.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
