//! Messaging channels: customers who write from WhatsApp (Meta's Cloud API), SMS or WhatsApp
//! through Twilio, or Telegram. Each provider has one adapter, and each adapter does the same
//! three things, in this order:
//!
//! 1. verify: the request came from the provider (its signature or secret header), checked
//!    over the raw body before anything reads it;
//! 2. normalise: the provider's webhook body becomes [`message::Inbound`]s, one per customer
//!    message, whatever the provider's shape;
//! 3. send: a bot message ([`message::Outgoing`]) becomes the inputs of the provider's send
//!    operation, in the richest form the provider offers (buttons, lists, inline keyboards),
//!    with numbered options where it cannot.
//!
//! The adapters are free functions over bytes and values: no AWS, no HTTP client. `adapter`
//! picks one by provider; `party`, `outbound` and `identity` are what a channel conversation
//! keeps, sends and proves; `config` is `config/channels.toml`.

pub mod adapter;
pub mod config;
pub mod identity;
pub mod message;
pub mod outbound;
pub mod party;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;
