//! The languages part of the evaluation: each message read as a conversation's first (its
//! language chosen by `language::choose`, then understood in it), per language: accuracy on
//! the in-scope messages, out-of-scope rejection, and how often the language was told right —
//! for the multilingual set and for the English sets (an English message read as another
//! language would be answered in it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use switchboard::bot::Bot;
use switchboard::language::{choose, evidence, Choice};
use switchboard::nlu::{Intent, Move, Nlu};

use crate::data::Case;
use crate::metrics::percentile;
use crate::pct;

/// Messages shorter than this keep the conversation's language (`language::choose`): detection
/// is measured on the others, as the target says.
const DETECTED_FROM_WORDS: usize = 3;
/// Messages of that length told wrong whose evidence is printed, per language.
const MISREAD_SHOWN: usize = 5;

/// What one message came to: the language chosen (`None`: one the bot does not speak) and the
/// intent understood in it.
fn read(bot: &Bot, nlu: &Nlu, text: &str) -> (Option<String>, Intent) {
    match choose(bot, None, None, text) {
        Choice::Speak(lang) => {
            let intent = nlu.understand(&lang, text).intent;
            (Some(lang), intent)
        }
        Choice::Unsupported(_) => (None, Move::OutOfScope.into()),
    }
}

fn words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count()
}

/// Prints the per-language table; `english` are the English sets' messages.
pub fn report(bot: &Bot, nlu: &Nlu, cases: &[(String, Case)], english: &[&Case]) {
    let mut by_lang: BTreeMap<&str, Vec<&Case>> = BTreeMap::new();
    for (lang, case) in cases {
        by_lang.entry(lang.as_str()).or_default().push(case);
    }
    by_lang.insert("en", english.to_vec());
    println!();
    println!(
        "Languages (each message a conversation's first; non-English from multilingual_dev.csv, English from Bitext + CLINC150):"
    );
    println!("  language     n  accuracy  OOS-rejected  language-told (>= {DETECTED_FROM_WORDS} words)  read as");
    let mut times: Vec<Duration> = Vec::new();
    for (lang, cases) in &by_lang {
        let mut read_as: BTreeMap<String, usize> = BTreeMap::new();
        let (mut right, mut in_scope, mut rejected, mut oos) = (0, 0, 0, 0);
        let (mut told, mut long) = (0, 0);
        let mut misread: Vec<String> = Vec::new();
        for case in cases {
            let start = Instant::now();
            let (chosen, intent) = read(bot, nlu, &case.text);
            times.push(start.elapsed());
            let chosen_name = chosen.clone().unwrap_or_else(|| "unsupported".into());
            *read_as.entry(chosen_name.clone()).or_default() += 1;
            if case.expected.is(Move::OutOfScope) {
                oos += 1;
                rejected += usize::from(intent.is_rejection());
            } else {
                in_scope += 1;
                right += usize::from(intent == case.expected);
            }
            if words(&case.text) >= DETECTED_FROM_WORDS {
                long += 1;
                told += usize::from(chosen_name == *lang);
                if chosen_name != *lang && misread.len() < MISREAD_SHOWN {
                    // Why, not what: the sentences stay in the data set.
                    misread.push(format!(
                        "read as {chosen_name}: {}",
                        evidence(bot, &case.text)
                    ));
                }
            }
        }
        let share = |a: usize, b: usize| {
            if b == 0 {
                "-".to_string()
            } else {
                pct(a as f64 / b as f64)
            }
        };
        let mut read_as: Vec<(String, usize)> = read_as.into_iter().collect();
        read_as.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let read_as: Vec<String> = read_as.iter().map(|(l, n)| format!("{l} {n}")).collect();
        println!(
            "  {lang:<8} {:>5}  {:>8}  {:>12}  {:>30}  {}",
            cases.len(),
            share(right, in_scope),
            share(rejected, oos),
            share(told, long),
            read_as.join(", ")
        );
        for m in &misread {
            println!("             {m}");
        }
    }
    times.sort();
    println!(
        "  time per message (choosing the language + understanding): p50 {:.1} us, p99 {:.1} us",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6,
    );
}
