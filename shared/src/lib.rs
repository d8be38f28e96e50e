//! Switchboard's domain, shared by the three Lambda functions.
//!
//! Organised as ports and adapters: the domain (`dialogue`, `nlu`, `turn`, `fulfillment`, `webhook`) talks
//! to traits (`store::ConversationStore`, `connectors::{OrdersPort, PaymentsPort, CustomersPort}`,
//! `jobs::JobQueue`, `webhook::claims::ClaimStore`, `secrets::SecretSource`); `store::dynamo`, `connectors::configured` (connector files) and `jobs::sqs` are the AWS and HTTP
//! adapters, `store::memory` an in-process one for unit tests. The functions only build the adapters
//! once at init and hand events to `api`, `webhook` and `fulfillment`.

pub mod access;
pub mod api;
pub mod auth;
pub mod aws_http;
pub mod bot;
pub mod channels;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod conversation;
pub mod cors;
pub mod dialogue;
pub mod entities;
pub mod features;
pub mod flow;
pub mod fulfillment;
pub mod handoff;
pub mod http_event;
pub mod intent_model;
pub mod io_clock;
pub mod jobs;
pub mod knowledge;
pub mod language;
pub mod links;
pub mod matching;
pub mod metrics;
pub mod money;
pub mod nlu;
pub mod order_ids;
pub mod problem;
pub mod product_words;
pub mod rate_limit;
pub mod redact;
pub mod refunds;
pub mod relay;
pub mod secrets;
pub mod setup;
pub mod signatures;
pub mod single_flight;
pub mod store;
pub mod telemetry;
pub mod turn;
pub mod webhook;
