//! The bot bundle: a company's intents, examples, flows, messages and conversation tests as
//! files (`config/bot/` is the shipped shop bot; `examples/bots/` holds others). Loaded and
//! validated as a whole at init, so a broken bundle stops a function before any customer
//! reaches it, naming the file, line and key.

pub mod conversation_tests;
pub mod error;
pub mod messages;
