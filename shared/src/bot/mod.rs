//! The bot bundle: a company's intents, examples, flows, messages and conversation tests as
//! files (`config/bot/` is the shipped shop bot; `examples/bots/` holds others). Loaded and
//! validated as a whole at init, so a broken bundle stops a function before any customer
//! reaches it, naming the file, line and key.

pub mod bundle;
pub mod bundle_load;
pub mod conversation_tests;
pub mod embedded;
pub mod error;
pub mod flows;
pub mod format;
pub mod intents;
mod language_files;
pub mod messages;
pub mod order_answer;
pub mod pattern;
pub mod relative_dates;
mod toml_file;
pub mod words;

pub use bundle::{model_file, Bot, Slot, SlotKind};
pub use intents::{Action, IntentDef};
pub use words::Words;
