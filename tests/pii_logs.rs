//! Personal data stays out of the running functions' logs: a fresh customer chats with an
//! email, a phone number, a card number and a street address, a vendor webhook carries the
//! same email, and none of them is found in what the functions wrote to stdout
//! (`.local/<stack>/logs/functions.log`, where dev/stack.py sends `cargo lambda watch`'s output).

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard::auth::Role;
use switchboard::signatures::Scheme;
use switchboard_it::{repo_root, signed, unix_now, Stack};

fn log_path(stack: &Stack) -> std::path::PathBuf {
    repo_root()
        .join(".local")
        .join(&stack.name)
        .join("logs/functions.log")
}

/// What the functions logged after `from` bytes.
fn logged_since(stack: &Stack, from: u64) -> String {
    let all = std::fs::read(log_path(stack)).unwrap_or_default();
    String::from_utf8_lossy(all.get(from as usize..).unwrap_or_default()).into_owned()
}

/// A Luhn-valid Visa-shaped number no other run uses, grouped by fours.
fn card_number(seed: u128) -> String {
    let mut digits: Vec<u32> = std::iter::once(4)
        .chain((0..14).map(|i| ((seed >> (i * 4)) % 10) as u32))
        .collect();
    // With the check digit appended, every second digit from the right of these 15 is doubled,
    // starting with the last of them.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, d2) if d2 > 9 => d2 - 9,
            (0, d2) => d2,
            _ => d,
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let s: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect();
    format!("{} {} {} {}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
}

#[tokio::test]
async fn seeded_personal_data_never_reaches_the_functions_logs() {
    let stack = Stack::connect().await;
    let from = std::fs::metadata(log_path(&stack))
        .map(|m| m.len())
        .unwrap_or(0);

    let id = ulid::Ulid::new();
    let tag = id.to_string().to_lowercase();
    let seed = id.random();
    let email = format!("pii.{tag}@example.com");
    let phone = format!("+1 212 555 {:04}", seed % 10_000);
    let card = card_number(seed >> 16);
    // A street named from letters only (the address pattern wants a word), unique per run.
    let street: String = tag[16..]
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                (b'a' + c as u8 - b'0') as char
            } else {
                c
            }
        })
        .collect();
    let address = format!("{} Pii{street} Street", 1 + seed % 9_000);

    let customer = Stack::fresh_customer("pii");
    let token = stack.token(&customer);
    let first = stack
        .say(&token, None, &format!("hi, my email is {email}"))
        .await;
    let conv = first["conversation_id"].as_str().unwrap().to_string();
    for text in [
        format!("you can call me on {phone}"),
        format!("my card {card} was charged twice"),
        format!("please ship it to {address}, Springfield"),
        "where is my order 1002?".to_string(),
        "I want to talk to a person".to_string(),
    ] {
        stack.say(&token, Some(&conv), &text).await;
    }

    // A billing platform's event naming the same email: no customer has it, so the
    // fulfillment function looks it up, finds no one and drops the event (and logs that).
    // An id of its own: it is logged, as it should be.
    let msg_id = format!("msg_pii_{}", ulid::Ulid::new().to_string().to_lowercase());
    let body = json!({
        "type": "payment.failed",
        "data": { "customer_email": email, "amount": 6400, "currency": "usd" }
    })
    .to_string();
    let headers = signed(
        Scheme::StandardWebhooks,
        "billing",
        &msg_id,
        unix_now(),
        body.as_bytes(),
    );
    let r = stack.webhook("billing", &headers, body.as_bytes()).await;
    assert_eq!(r.status, 202, "{}", r.body);

    // The event's line shows the log read here is the functions' own output, and that the
    // asynchronous work (handoff, event) has run before the log is searched.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let log = logged_since(&stack, from);
        if log
            .lines()
            .any(|l| l.contains(&msg_id) && l.contains("no customer matches the event"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fulfillment function never logged the event {msg_id}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stack
        .wait_until_drained(&stack.queue_url, Duration::from_secs(60))
        .await;
    let log = logged_since(&stack, from);

    let card_digits: String = card.chars().filter(char::is_ascii_digit).collect();
    let phone_digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    for seeded in [
        email.as_str(),
        &tag,
        &phone,
        &phone_digits,
        &card,
        &card_digits,
        &address,
        &street,
    ] {
        assert!(
            !log.contains(seeded),
            "{seeded:?} reached the functions' log:\n{log}"
        );
    }
    // The functions' JSON lines stay JSON after redaction.
    let event_line = log
        .lines()
        .find(|l| l.contains(&msg_id) && l.contains("no customer matches the event"))
        .unwrap();
    let start = event_line.find('{').unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&event_line[start..]).unwrap_or_else(|e| panic!("{e}: {event_line}"));
    assert_eq!(v["fields"]["vendor"], "billing", "{event_line}");
}

#[tokio::test]
async fn an_erasure_by_percent_encoded_email_leaves_no_email_in_the_logs() {
    let stack = Stack::connect().await;
    let from = std::fs::metadata(log_path(&stack))
        .map(|m| m.len())
        .unwrap_or(0);
    // The tag is in the email and nowhere else: found in any encoding of it (raw, %40, %2540,
    // upper or lower case), it shows the email was logged.
    let tag = ulid::Ulid::new().to_string().to_lowercase();
    let local = format!("erase.{tag}");
    let email = format!("{local}@example.com");
    let token = stack.token(&email);
    let hello = stack.say(&token, None, "hello").await;
    assert!(hello["conversation_id"].is_string(), "{hello}");

    let admin = stack.token_as("admin_pii", Some("default"), Role::Admin);
    let r = stack
        .call(
            "DELETE",
            Some(&admin),
            &format!("/v1/customers/{local}%40example.com"),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["customer_id"], email.as_str());
    // Encoded twice, and in a path no route has: refused, and logged without it too.
    for path in [
        format!("/v1/customers/{local}%2540example.com"),
        format!("/v1/customer/{local}%40EXAMPLE.com"),
    ] {
        let r = stack.call("DELETE", Some(&admin), &path, None).await;
        assert!(r.status >= 400, "{path}: {}", r.body);
    }

    // The three requests' lines are in the log before it is searched.
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = loop {
        let log = logged_since(&stack, from);
        let lines = log
            .lines()
            .filter(|l| l.contains("chat request") && l.contains("DELETE"))
            .count();
        if lines >= 3 {
            break log;
        }
        assert!(
            Instant::now() < deadline,
            "the erasure requests were not logged:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        !log.contains(&tag),
        "the erased customer's email reached the functions' log:\n{log}"
    );
    let erasure = log
        .lines()
        .find(|l| l.contains("chat request") && l.contains("DELETE"))
        .unwrap();
    assert!(
        erasure.contains("/v1/customers/{customer_id}"),
        "the route, not the path: {erasure}"
    );
}
