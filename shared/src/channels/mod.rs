//! Messaging channels (WhatsApp Cloud API, Twilio SMS and WhatsApp, Telegram): one adapter per
//! provider, each verify → normalise → send. Inbound messages become turns of the customer's
//! channel conversation; what the bot and agents say there goes back out through the provider.
pub mod adapter;
pub mod config;
pub mod identity;
pub mod message;
pub mod outbound;
pub mod party;
