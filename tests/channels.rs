//! Messaging channels against the local stack: each provider's signature (Twilio's computed by
//! the official `twilio` package's RequestValidator), what is refused and that nothing is queued
//! for it, redeliveries, and whole conversations: a WhatsApp customer proving who they are and
//! accepting a refund with a button, a Telegram handoff answered by an agent in the console API.
//! Replies are read from the demo systems' stand-ins for the providers' send APIs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard::auth::Role;
use switchboard::signatures::{sign, Scheme, SigningKey};
use switchboard_it::{bot_text, repo_root, Reply, Stack};

fn secret(name: &str) -> String {
    std::env::var(format!("DEV_CHANNEL_SECRET_{}", name.to_uppercase()))
        .unwrap_or_else(|_| panic!("DEV_CHANNEL_SECRET_{name} is not set: run with ./dev/test"))
}

fn id(name: &str) -> String {
    std::env::var(format!("DEV_CHANNEL_ID_{}", name.to_uppercase())).unwrap()
}

/// A phone number of the test's own (no CRM customer has it).
fn fresh_phone() -> String {
    format!("+1555{:07}", fastrand::u32(0..10_000_000))
}

fn fresh_message_id(prefix: &str) -> String {
    format!("{prefix}.{}", ulid::Ulid::new())
}

/// The status `post` gets.
async fn status(
    stack: &Stack,
    channel: &str,
    headers: &[(&str, String)],
    body: &[u8],
    content_type: &str,
) -> u16 {
    post(stack, channel, headers, body, content_type)
        .await
        .status
}

async fn post(
    stack: &Stack,
    channel: &str,
    headers: &[(&str, String)],
    body: &[u8],
    content_type: &str,
) -> Reply {
    let mut req = stack
        .http
        .post(format!("{}/channels/{channel}", stack.webhook_url))
        .header("content-type", content_type)
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        content_type,
        retry_after: None,
    }
}

// ---- WhatsApp -------------------------------------------------------------------------------

fn whatsapp_body(from: &str, message_id: &str, message: Value) -> Vec<u8> {
    let mut m = message;
    let wa_id = from.trim_start_matches('+');
    m["from"] = json!(wa_id);
    m["id"] = json!(message_id);
    m["timestamp"] = json!(switchboard_it::unix_now().to_string());
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": id("whatsapp_business_account_id"),
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {
                        "display_phone_number": id("whatsapp_display_phone_number"),
                        "phone_number_id": id("whatsapp_phone_number_id"),
                    },
                    "contacts": [{ "profile": { "name": "Test Customer" }, "wa_id": wa_id }],
                    "messages": [m],
                }
            }]
        }]
    })
    .to_string()
    .into_bytes()
}

fn meta_signature(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    // Meta's X-Hub-Signature-256 is GitHub's scheme exactly: "sha256=" + hex HMAC of the body.
    let key = SigningKey::new(Scheme::Github, secret).unwrap();
    sign(Scheme::Github, &key, "", 0, body)
        .into_iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-hub-signature-256"))
        .collect()
}

async fn whatsapp(stack: &Stack, from: &str, message: Value) -> Reply {
    let body = whatsapp_body(from, &fresh_message_id("wamid"), message);
    whatsapp_raw(stack, &body).await
}

async fn whatsapp_raw(stack: &Stack, body: &[u8]) -> Reply {
    let headers = meta_signature(&secret("whatsapp_app_secret"), body);
    post(stack, "whatsapp", &headers, body, "application/json").await
}

fn text(t: &str) -> Value {
    json!({ "type": "text", "text": { "body": t } })
}

fn button_reply(value: &str, title: &str) -> Value {
    json!({ "type": "interactive", "interactive": {
        "type": "button_reply", "button_reply": { "id": value, "title": title } } })
}

/// What the stand-in for `channel`'s send API was sent for `to`, once there are at least `n`.
async fn sent(stack: &Stack, channel: &str, to: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = stack
            .http
            .get(format!("{}/_admin/channels/sent", stack.demo_url))
            .query(&[("channel", channel), ("to", to)])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let sent = r["sent"].as_array().unwrap().clone();
        if sent.len() >= n {
            return sent;
        }
        assert!(
            Instant::now() < deadline,
            "{n} messages to {to} through {channel} expected within 60 s; sent: {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text of a WhatsApp send (a text message's body, an interactive one's body text).
fn wa_text(m: &Value) -> String {
    let b = &m["body"];
    b["text"]["body"]
        .as_str()
        .or(b["interactive"]["body"]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn whatsapp_signatures_are_checked_over_the_raw_body_and_refusals_queue_nothing() {
    let stack = Stack::connect().await;
    let from = fresh_phone();
    let body = whatsapp_body(&from, &fresh_message_id("wamid"), text("hello 👋 there"));
    let good = meta_signature(&secret("whatsapp_app_secret"), &body);

    let mut tampered = body.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    let r = post(&stack, "whatsapp", &good, &tampered, "application/json").await;
    assert_eq!(r.status, 401, "tampered: {}", r.body);
    let wrong = meta_signature("not-the-app-secret", &body);
    assert_eq!(
        status(&stack, "whatsapp", &wrong, &body, "application/json").await,
        401
    );
    assert_eq!(
        status(&stack, "whatsapp", &[], &body, "application/json").await,
        401
    );
    let malformed = vec![("x-hub-signature-256", "sha1=abc".to_string())];
    assert_eq!(
        status(&stack, "whatsapp", &malformed, &body, "application/json").await,
        401
    );
    let huge = vec![b'x'; 70 * 1024];
    let h = meta_signature(&secret("whatsapp_app_secret"), &huge);
    assert_eq!(
        status(&stack, "whatsapp", &h, &huge, "application/json").await,
        413
    );
    assert_eq!(
        status(&stack, "nosuchchannel", &good, &body, "application/json").await,
        404
    );
    // A signed body that is not the provider's shape is refused, not guessed at.
    let junk = b"{\"entry\": 7}".to_vec();
    let j = meta_signature(&secret("whatsapp_app_secret"), &junk);
    assert_eq!(
        status(&stack, "whatsapp", &j, &junk, "application/json").await,
        400
    );

    // None of these was a turn: nothing was sent to the number.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = stack
        .http
        .get(format!("{}/_admin/channels/sent", stack.demo_url))
        .query(&[("channel", "whatsapp"), ("to", from.as_str())])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(r["sent"], json!([]), "{r}");

    // The genuine one (emoji and all, as the bytes were signed) is taken and answered.
    let r = post(&stack, "whatsapp", &good, &body, "application/json").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["queued"], 1, "{}", r.body);
    sent(&stack, "whatsapp", &from, 1).await;
}

#[tokio::test]
async fn the_whatsapp_subscription_handshake_echoes_the_challenge_only_for_the_verify_token() {
    let stack = Stack::connect().await;
    let url = format!("{}/channels/whatsapp", stack.webhook_url);
    let get = |token: String| {
        let http = stack.http.clone();
        let url = url.clone();
        async move {
            let r = http
                .get(&url)
                .query(&[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", token.as_str()),
                    ("hub.challenge", "1158201444"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        get(secret("whatsapp_verify_token")).await,
        (200, "1158201444".to_string())
    );
    assert_eq!(get("guess".into()).await.0, 403);
}

#[tokio::test]
async fn a_whatsapp_customer_proves_who_they_are_then_accepts_a_refund_with_a_button_once() {
    let stack = Stack::connect().await;
    let customer = stack.create_customer("cust_whatsapp").await;
    let order = stack
        .create_order_with(
            &customer,
            json!({ "total_cents": 4120, "placed_days_ago": 12, "promised_in_days": -4, "carrier": "UPS" }),
        )
        .await;
    let from = fresh_phone();

    // Not linked (no CRM customer has this number): an order question asks to verify first.
    assert_eq!(
        whatsapp(&stack, &from, text("where is my order?"))
            .await
            .status,
        200
    );
    let out = sent(&stack, "whatsapp", &from, 1).await;
    assert_eq!(wa_text(&out[0]), bot_text("verify.needed"), "{out:?}");

    // The email on the account: a code goes to the address the CRM has.
    let email = format!("{customer}@example.com");
    assert_eq!(
        whatsapp(&stack, &from, text(&format!("it's {email}")))
            .await
            .status,
        200
    );
    let out = sent(&stack, "whatsapp", &from, 2).await;
    assert_eq!(wa_text(&out[1]), bot_text("verify.code_sent"));
    let code = wait_for_code(&stack, &email).await;

    // A wrong code first, then the right one.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    whatsapp(&stack, &from, text(wrong)).await;
    let out = sent(&stack, "whatsapp", &from, 3).await;
    assert!(wa_text(&out[2]).contains('4'), "4 tries left: {out:?}");
    whatsapp(&stack, &from, text(&code)).await;
    let out = sent(&stack, "whatsapp", &from, 4).await;
    assert_eq!(wa_text(&out[3]), bot_text("verify.done"));

    // Now the order: its status, and a refund offered with buttons.
    whatsapp(&stack, &from, text("where is my order?")).await;
    let out = sent(&stack, "whatsapp", &from, 5).await;
    let offer = &out[4];
    assert!(
        wa_text(offer).contains(&order),
        "the late order is told: {out:?}"
    );
    assert_eq!(offer["body"]["type"], "interactive", "{offer}");
    let buttons = offer["body"]["interactive"]["action"]["buttons"]
        .as_array()
        .unwrap();
    let yes = buttons
        .iter()
        .find(|b| b["reply"]["id"] == "Yes")
        .unwrap_or_else(|| panic!("a Yes button: {offer}"));

    // Pressed; the provider delivers the press three times.
    let press = whatsapp_body(
        &from,
        &fresh_message_id("wamid"),
        button_reply("Yes", yes["reply"]["title"].as_str().unwrap()),
    );
    for _ in 0..3 {
        assert_eq!(whatsapp_raw(&stack, &press).await.status, 200);
    }
    // The refund's confirmation goes out through WhatsApp, after the turn's own reply.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (paid, _) = stack.refunds_for(&order).await;
        let out = sent(&stack, "whatsapp", &from, 6).await;
        if paid == 1 && out.len() >= 7 {
            assert_eq!(
                out.len(),
                7,
                "one reply to the press, one confirmation: {out:?}"
            );
            break;
        }
        assert!(paid <= 1, "paid {paid} times");
        assert!(
            Instant::now() < deadline,
            "paid {paid} times; sent: {}",
            out.iter().map(wa_text).collect::<Vec<_>>().join(" | ")
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stack.refunds_for(&order).await.0, 1, "paid once");
}

/// The code in the latest email to `to` (the demo email API records each one).
async fn wait_for_code(stack: &Stack, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let emails = stack.demo_admin("emails").await;
        if let Some(mail) = emails["sent"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["to"] == to)
        {
            let text = mail["text"].as_str().unwrap();
            let code: String = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .unwrap_or_else(|| panic!("no code in {text}"))
                .to_string();
            return code;
        }
        assert!(Instant::now() < deadline, "no email to {to}: {emails}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn an_image_is_answered_politely_and_a_phone_on_file_links_the_account() {
    let stack = Stack::connect().await;
    let customer = stack.create_customer("cust_wa_phone").await;
    let phone = fresh_phone();
    let resp = stack
        .http
        .post(format!("{}/_admin/customers", stack.demo_url))
        .json(&json!({ "id": format!("{customer}_p"), "email": format!("{customer}_p@example.com"), "phone": phone }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let image = json!({ "type": "image", "image": { "id": "media_1", "mime_type": "image/jpeg" } });
    assert_eq!(whatsapp(&stack, &phone, image).await.status, 200);
    // Linked by the number on the way (said first), and asked for text.
    let out = sent(&stack, "whatsapp", &phone, 2).await;
    assert_eq!(wa_text(&out[0]), bot_text("verify.phone_linked"));
    assert!(
        out.iter()
            .any(|m| wa_text(m) == bot_text("channel.text_only")),
        "{out:?}"
    );
    // WhatsApp vouches for the number: the account with it is the customer's, no code asked.
    whatsapp(&stack, &phone, text("where is my order?")).await;
    let out = sent(&stack, "whatsapp", &phone, 3).await;
    assert!(
        !out.iter().any(|m| wa_text(m) == bot_text("verify.needed")),
        "{out:?}"
    );
}

// ---- Twilio ---------------------------------------------------------------------------------

/// X-Twilio-Signature for `form`, computed by the official `twilio` package.
fn twilio_signature(url: &str, token: &str, form: &str) -> String {
    let out = std::process::Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("dev/channel.py"))
        .args([
            "sign-twilio",
            "--url",
            url,
            "--token",
            token,
            "--form",
            form,
        ])
        .output()
        .expect("the dev virtualenv's python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn twilio_form(from: &str, body: &str, sid: &str) -> String {
    let mut f = url::form_urlencoded::Serializer::new(String::new());
    f.append_pair("MessageSid", sid)
        .append_pair("SmsMessageSid", sid)
        .append_pair("AccountSid", &secret("twilio_account_sid"))
        .append_pair("From", from)
        .append_pair("To", &id("twilio_number"))
        .append_pair("Body", body)
        .append_pair("NumMedia", "0");
    f.finish()
}

fn twilio_url(stack: &Stack) -> String {
    format!("{}/channels/twilio", stack.webhook_url)
}

#[tokio::test]
async fn twilio_requests_are_verified_against_the_configured_url_with_twilios_own_validator() {
    let stack = Stack::connect().await;
    let from = fresh_phone();
    let form = twilio_form(
        &from,
        "do you ship to Canada? ¿y a México?",
        &format!("SM{}", ulid::Ulid::new()),
    );
    let url = twilio_url(&stack);
    let token = secret("twilio_auth_token");
    let sig = vec![("x-twilio-signature", twilio_signature(&url, &token, &form))];
    let ct = "application/x-www-form-urlencoded";

    let other_url = vec![(
        "x-twilio-signature",
        twilio_signature("https://example.com/channels/twilio", &token, &form),
    )];
    assert_eq!(
        status(&stack, "twilio", &other_url, form.as_bytes(), ct).await,
        401
    );
    let wrong_token = vec![(
        "x-twilio-signature",
        twilio_signature(&url, "0".repeat(32).as_str(), &form),
    )];
    assert_eq!(
        status(&stack, "twilio", &wrong_token, form.as_bytes(), ct).await,
        401
    );
    let tampered = form.replace("Canada", "Canadb");
    assert_eq!(
        status(&stack, "twilio", &sig, tampered.as_bytes(), ct).await,
        401
    );
    assert_eq!(
        status(&stack, "twilio", &[], form.as_bytes(), ct).await,
        401
    );

    let r = post(&stack, "twilio", &sig, form.as_bytes(), ct).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(
        r.content_type.starts_with("text/xml"),
        "TwiML: {}",
        r.content_type
    );
    let out = sent(&stack, "twilio", &from, 1).await;
    assert_eq!(out[0]["body"]["From"], id("twilio_number"), "{out:?}");
}

// ---- Telegram -------------------------------------------------------------------------------

fn telegram_update(chat: i64, update_id: i64, message_id: i64, text: &str) -> Vec<u8> {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": { "id": chat, "is_bot": false, "first_name": "Test", "language_code": "en" },
            "chat": { "id": chat, "first_name": "Test", "type": "private" },
            "date": switchboard_it::unix_now(),
            "text": text,
        }
    })
    .to_string()
    .into_bytes()
}

async fn telegram(stack: &Stack, body: &[u8]) -> Reply {
    let h = vec![(
        "x-telegram-bot-api-secret-token",
        secret("telegram_secret_token"),
    )];
    post(stack, "telegram", &h, body, "application/json").await
}

fn fresh_chat() -> i64 {
    fastrand::i64(100_000_000..999_999_999)
}

#[tokio::test]
async fn telegram_checks_its_secret_token_and_a_message_delivered_three_times_is_one_turn() {
    let stack = Stack::connect().await;
    let chat = fresh_chat();
    let body = telegram_update(
        chat,
        fastrand::i64(1..i64::MAX / 2),
        1,
        "hello, are you a bot?",
    );
    let wrong = vec![("x-telegram-bot-api-secret-token", "guess".to_string())];
    assert_eq!(
        status(&stack, "telegram", &wrong, &body, "application/json").await,
        401
    );
    assert_eq!(
        status(&stack, "telegram", &[], &body, "application/json").await,
        401
    );

    let mut answers = Vec::new();
    for _ in 0..3 {
        let r = telegram(&stack, &body).await;
        assert_eq!(r.status, 200, "{}", r.body);
        answers.push(r.body);
    }
    assert_eq!(answers[0]["queued"], 1, "{answers:?}");
    assert_eq!(answers[1]["duplicates"], 1, "{answers:?}");
    let to = chat.to_string();
    let out = sent(&stack, "telegram", &to, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = sent(&stack, "telegram", &to, 1).await;
    assert_eq!(out.len(), again.len(), "one turn, one reply: {again:?}");
}

#[tokio::test]
async fn a_telegram_handoff_reaches_the_console_and_the_agents_reply_goes_out_through_telegram() {
    let stack = Stack::connect().await;
    let chat = fresh_chat();
    let to = chat.to_string();
    let body = telegram_update(
        chat,
        fastrand::i64(1..i64::MAX / 2),
        1,
        "I want to talk to a person",
    );
    assert_eq!(telegram(&stack, &body).await.status, 200);
    sent(&stack, "telegram", &to, 1).await;

    // The conversation is in the agents' queue, as any other.
    let agent = stack.token_as(
        &switchboard_it::unique("agent_tg"),
        Some("default"),
        Role::Agent,
    );
    // A channel user's conversation id is derived from the channel and their address.
    let conversation = switchboard::channels::party::conversation_id("default", "telegram", &to);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = stack
            .get(Some(&agent), "/v1/handoffs?state=waiting&limit=100")
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["handoffs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["conversation_id"] == conversation.as_str())
        {
            break;
        }
        assert!(Instant::now() < deadline, "not queued: {}", r.body);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let path = format!("/v1/conversations/{conversation}/takeover");
    assert_eq!(
        stack.call("POST", Some(&agent), &path, None).await.status,
        200
    );
    let path = format!("/v1/conversations/{conversation}/agent-messages");
    let r = stack
        .call(
            "POST",
            Some(&agent),
            &path,
            Some(json!({ "text": "Hi, Sam from support here." })),
        )
        .await;
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let said = |m: &Value| m["body"]["text"] == "Hi, Sam from support here.";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !sent(&stack, "telegram", &to, 1).await.iter().any(said) {
        assert!(
            Instant::now() < deadline,
            "the agent's reply never went out"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn an_address_without_an_account_behaves_as_one_with_and_codes_are_rationed() {
    let stack = Stack::connect().await;
    let from = fresh_phone();
    let nobody = format!("{}@example.com", switchboard_it::unique("nobody"));
    whatsapp(&stack, &from, text(&format!("my email is {nobody}"))).await;
    let out = sent(&stack, "whatsapp", &from, 1).await;
    assert_eq!(wa_text(&out[0]), bot_text("verify.code_sent"));
    // A code typed now is checked like a real one: the answer does not say there was none.
    whatsapp(&stack, &from, text("123456")).await;
    let out = sent(&stack, "whatsapp", &from, 2).await;
    let wrong = wa_text(&out[1]);
    assert!(
        wrong.contains('4') && wrong != bot_text("verify.needed"),
        "{wrong}"
    );

    // A real account's code, asked for again at once: the same answer, and one email only.
    let customer = stack.create_customer("cust_wa_ration").await;
    let other = fresh_phone();
    let email = format!("{customer}@example.com");
    whatsapp(&stack, &other, text(&email)).await;
    sent(&stack, "whatsapp", &other, 1).await;
    whatsapp(&stack, &other, text(&email)).await;
    let out = sent(&stack, "whatsapp", &other, 2).await;
    assert_eq!(wa_text(&out[1]), bot_text("verify.code_sent"));
    wait_for_code(&stack, &email).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let emails = stack.demo_admin("emails").await;
    let to_them = emails["sent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["to"] == email.as_str())
        .count();
    assert_eq!(to_them, 1, "one code a minute: {emails}");
}

#[tokio::test]
async fn outside_whatsapps_window_the_template_goes_out_and_the_agents_are_told() {
    use switchboard::channels::party::{conversation_id, guest_id};
    use time::format_description::well_known::Rfc3339;
    let stack = Stack::connect().await;
    let from = fresh_phone();
    whatsapp(&stack, &from, text("hello there")).await;
    sent(&stack, "whatsapp", &from, 1).await;
    let wa_id = from.trim_start_matches('+');
    let conv = conversation_id("default", "whatsapp", wa_id);

    // The customer last wrote 25 hours ago.
    let pk = format!("T#default#C#{conv}");
    let item = stack.item(&pk, "STATE").await.expect("the conversation");
    let mut channel: Value = serde_json::from_str(item["channel"].as_s().unwrap()).unwrap();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::hours(25);
    channel["last_inbound_at"] = json!(long_ago.format(&Rfc3339).unwrap());
    stack
        .ddb
        .update_item()
        .table_name(&stack.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("STATE".into()),
        )
        .update_expression("SET channel = :c")
        .expression_attribute_values(
            ":c",
            aws_sdk_dynamodb::types::AttributeValue::S(channel.to_string()),
        )
        .send()
        .await
        .unwrap();

    // Something the bot says on its own now (a vendor's event would): only the template goes.
    let customer = guest_id("default", "whatsapp", wa_id);
    let body = switchboard_it::proactive_body(
        &customer,
        &conv,
        &switchboard_it::unique("late"),
        "Your parcel has left the warehouse.",
    );
    stack.send_jobs(&[(&conv, &body)]).await;
    let out = sent(&stack, "whatsapp", &from, 2).await;
    assert_eq!(out[1]["body"]["type"], "template", "{out:?}");
    assert_eq!(out[1]["body"]["template"]["name"], "support_follow_up");

    // The agents are told, in the conversation, in a note the customer never receives.
    let agent = stack.token_as(
        &switchboard_it::unique("agent_wa"),
        Some("default"),
        Role::Agent,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = stack
            .get(
                Some(&agent),
                &format!("/v1/conversations/{conv}/messages?limit=100"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["channel"]["provider"], "whatsapp", "{}", r.body);
        let noted = r.body["messages"].as_array().unwrap().iter().any(|m| {
            m["internal"] == true && m["text"].as_str().unwrap().contains("support_follow_up")
        });
        if noted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no note for the agents: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sent(&stack, "whatsapp", &from, 2).await.len(),
        2,
        "nothing else went out"
    );
}

#[tokio::test]
async fn a_send_the_provider_refuses_for_a_while_is_retried_and_delivered_once() {
    let stack = Stack::connect().await;
    let chat = fresh_chat();
    let to = chat.to_string();
    let fault = stack
        .arm_fault(json!({
            "path": "/telegram", "match": { "chat_id": to }, "status": 500, "times": 2
        }))
        .await;
    let body = telegram_update(
        chat,
        fastrand::i64(1..i64::MAX / 2),
        1,
        "hi, is anyone there?",
    );
    assert_eq!(telegram(&stack, &body).await.status, 200);
    let out = sent(&stack, "telegram", &to, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r: Value = stack
        .http
        .get(format!("{}/_admin/channels/sent", stack.demo_url))
        .query(&[("channel", "telegram"), ("to", to.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls: Vec<u64> = r["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        calls,
        [500, 500, 200],
        "two refusals, then the one send: {r}"
    );
    assert_eq!(r["sent"].as_array().unwrap().len(), out.len(), "{r}");
    assert_eq!(out.len(), 1);
    stack.clear_fault(&fault).await;
}
