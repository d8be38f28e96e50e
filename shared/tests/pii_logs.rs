//! The logs of a whole conversation, captured through the production pipeline
//! (`telemetry::subscriber`: JSON formatter and redaction), hold none of the personal data the
//! customer and a vendor's error put into it.
//!
//! A binary of its own: tracing caches which call sites are enabled across threads, and tests
//! running beside it with no subscriber could make it miss lines.

use std::io;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use switchboard::auth::Principal;
use switchboard::config::ChatSettings;
use switchboard::connectors::{ConnectorError, Order, OrdersPort};
use switchboard::dialogue::Dialogue;
use switchboard::store::memory::MemoryStore;
use switchboard::telemetry::{filter, subscriber};
use switchboard::turn::{PostMessage, TurnService};
use tracing_subscriber::fmt::MakeWriter;

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// An orders system whose error quotes the request back, as some vendors' error bodies do.
struct EchoingOrders(String);

#[async_trait]
impl OrdersPort for EchoingOrders {
    async fn recent_orders(&self, _: &str) -> Result<Vec<Order>, ConnectorError> {
        Ok(vec![])
    }
    async fn order(&self, _: &str) -> Result<Option<Order>, ConnectorError> {
        Err(ConnectorError::Rejected {
            system: "orders",
            status: 422,
            detail: self.0.clone(),
        })
    }
}

#[tokio::test]
async fn a_conversation_with_personal_data_logs_none_of_it() {
    let unique = ulid::Ulid::new().to_string();
    let email = format!("pii.{}@example.com", unique.to_lowercase());
    let phone = "+1 415 555 0199";
    let card = "4111 1111 1111 1111";
    let address = "742 Evergreen Terrace";
    let vendor_error = format!(
        "GraphQL: no order for customer {email} (card {card}, phone {phone}, ship to {address})"
    );

    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(subscriber(
        filter(Some("debug")).unwrap(),
        capture.clone(),
    ));
    let svc = TurnService::new(
        Arc::new(MemoryStore::new()),
        Dialogue::new(Arc::new(EchoingOrders(vendor_error))),
        ChatSettings::default(),
    );
    let alice = Principal::customer("t", "cust_alice");
    let say = |conversation: Option<String>, text: String| PostMessage {
        conversation_id: conversation,
        text,
        client_message_id: None,
        language: None,
        quick_reply: None,
    };
    let first = svc
        .post(&alice, say(None, format!("hi, my email is {email}")))
        .await
        .unwrap();
    let conv = Some(first.conversation_id.clone());
    for text in [
        format!("call me on {phone}"),
        format!("my card {card} was charged twice"),
        format!("please ship to {address}, Springfield"),
        "where is my order 1002?".to_string(),
    ] {
        svc.post(&alice, say(conv.clone(), text)).await.unwrap();
    }
    drop(_guard);

    let out = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for seeded in [
        email.as_str(),
        &unique.to_lowercase(),
        phone,
        "4155550199",
        card,
        "4111111111111111",
        address,
        "Evergreen",
    ] {
        assert!(!out.contains(seeded), "{seeded:?} reached the logs:\n{out}");
    }
    // The lines still say what happened, with their non-personal fields.
    let message = |l: &serde_json::Value| l["fields"]["message"].as_str().map(str::to_string);
    let understood = lines
        .iter()
        .filter(|l| message(l).as_deref() == Some("understood"))
        .count();
    assert_eq!(understood, 5, "{out}");
    let failed = lines
        .iter()
        .find(|l| message(l).as_deref() == Some("a flow's read failed during a turn"))
        .unwrap_or_else(|| panic!("the connector error is logged:\n{out}"));
    assert_eq!(failed["level"], "WARN");
    assert_eq!(
        failed["fields"]["detail"],
        "orders rejected the request (422): GraphQL: no order for customer [email] \
         (card [card], phone [phone], ship to [address])"
    );
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["fields"].is_object()));
}
