//! Fuzzes the messaging channel adapters (`switchboard::channels`): the first byte picks
//! WhatsApp, Twilio or Telegram; the rest gives a webhook body (raw bytes, or built from the
//! fields the provider sends, with values of any type), headers (the providers' real names,
//! in any case, and others), a secret, a public URL and a reply to render. Every input must end
//! in `Ok` or a `ChannelParseError` / `Rejection`, never a panic, and:
//!
//! - a normalised message has an id a turn accepts (1-128 visible ASCII), a sender, and a phone
//!   only in E.164;
//! - a request signed as the provider signs it verifies, and a changed one does not: a flipped
//!   body byte (WhatsApp), a flipped byte that changes the string Twilio signs (URL and sorted
//!   parameters), another secret (Telegram);
//! - a rendered reply keeps every visible character of the text, in parts within the
//!   provider's limits, with buttons, list rows and keyboard data within theirs.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use switchboard::channels::message::{
    numbered, text_len, Content, Inbound, Outgoing, SendInputs, MAX_MESSAGE_ID,
};
use switchboard::channels::{telegram, twilio, whatsapp};
use switchboard::conversation::QuickReply;
use switchboard::signatures::{self, Scheme};

const HEADERS: [&str; 4] = [
    "x-hub-signature-256",
    "x-twilio-signature",
    "x-telegram-bot-api-secret-token",
    "content-type",
];

/// Values the adapters branch on, so the fuzzer reaches them without guessing.
const KNOWN: [&str; 22] = [
    "text",
    "interactive",
    "button",
    "button_reply",
    "list_reply",
    "image",
    "nfm_reply",
    "private",
    "group",
    "supergroup",
    "channel",
    "messages",
    "statuses",
    "whatsapp_business_account",
    "received",
    "delivered",
    "whatsapp:+15551234567",
    "+15551234567",
    "15551234567",
    "1739321024",
    "0",
    "2",
];

#[derive(Arbitrary, Debug)]
enum Val {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Known(u8),
    List(Vec<u8>),
}

impl Val {
    fn json(&self) -> Value {
        match self {
            Val::Text(s) => Value::from(s.as_str()),
            Val::Int(i) => Value::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Bool(b) => Value::from(*b),
            Val::Null => Value::Null,
            Val::Known(i) => Value::from(KNOWN[*i as usize % KNOWN.len()]),
            Val::List(items) => Value::from(items.clone()),
        }
    }

    /// As a form value: Twilio's values are all text.
    fn text(&self) -> String {
        match self.json() {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }
}

/// Where WhatsApp's webhook puts what `whatsapp::normalise` reads, relative to one message or
/// to the change's value (`~` marks the latter).
const WHATSAPP_FIELDS: [&str; 16] = [
    "/from",
    "/id",
    "/timestamp",
    "/type",
    "/text/body",
    "/interactive/type",
    "/interactive/button_reply/id",
    "/interactive/button_reply/title",
    "/interactive/list_reply/id",
    "/interactive/list_reply/title",
    "/button/payload",
    "/button/text",
    "/image/id",
    "~/metadata/phone_number_id",
    "~/statuses",
    "~/field",
];

const TELEGRAM_FIELDS: [&str; 17] = [
    "/update_id",
    "/message/message_id",
    "/message/date",
    "/message/chat/id",
    "/message/chat/type",
    "/message/from/language_code",
    "/message/text",
    "/message/photo",
    "/message/sticker",
    "/edited_message/text",
    "/callback_query/id",
    "/callback_query/data",
    "/callback_query/from/language_code",
    "/callback_query/message/chat/id",
    "/callback_query/message/chat/type",
    "/callback_query/message",
    "/message",
];

const TWILIO_FIELDS: [&str; 12] = [
    "MessageSid",
    "SmsMessageSid",
    "From",
    "To",
    "Body",
    "NumMedia",
    "Latitude",
    "Longitude",
    "ButtonPayload",
    "ButtonText",
    "MessageStatus",
    "AccountSid",
];

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    /// Provider-shaped: each field at one of the provider's paths (or, for Twilio, a form
    /// field of its own name), some messages in a WhatsApp batch.
    Fields {
        fields: Vec<(Result<u8, String>, Val)>,
        messages: u8,
    },
}

#[derive(Arbitrary, Debug)]
struct Reply {
    text: String,
    quick_replies: Vec<(String, String)>,
    list_button: String,
}

#[derive(Arbitrary, Debug)]
struct Input {
    provider: u8,
    body: Body,
    headers: Vec<(Result<u8, String>, String)>,
    secret: String,
    other_secret: String,
    url: String,
    flip: usize,
    reply: Reply,
}

fn set(root: &mut Value, pointer: &str, v: Value) {
    let mut at = root;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let obj = at.as_object_mut().expect("made an object");
        if i + 1 == parts.len() {
            obj.insert((*part).to_string(), v);
            return;
        }
        at = obj.entry(*part).or_insert(Value::Object(Map::new()));
    }
}

fn body(provider: usize, body: &Body) -> Vec<u8> {
    let (fields, messages) = match body {
        Body::Raw(bytes) => return bytes.clone(),
        Body::Fields { fields, messages } => (fields, *messages),
    };
    match provider {
        0 => {
            let mut value = json!({"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"}});
            let mut message = json!({"from": "15551234567", "id": "wamid.A", "type": "text"});
            for (name, v) in fields {
                match name {
                    Ok(i) => {
                        let path = WHATSAPP_FIELDS[*i as usize % WHATSAPP_FIELDS.len()];
                        match path.strip_prefix('~') {
                            Some(p) => set(&mut value, p, v.json()),
                            None => set(&mut message, path, v.json()),
                        }
                    }
                    Err(other) => set(&mut message, &format!("/{other}"), v.json()),
                }
            }
            let field = value
                .as_object_mut()
                .and_then(|o| o.remove("field"))
                .unwrap_or_else(|| json!("messages"));
            value["messages"] = Value::from(vec![message; usize::from(messages % 4)]);
            serde_json::to_vec(&json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": "1", "changes": [{"field": field, "value": value}]}]
            }))
            .unwrap()
        }
        1 => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, v) in fields {
                let name = match name {
                    Ok(i) => TWILIO_FIELDS[*i as usize % TWILIO_FIELDS.len()].to_string(),
                    Err(other) => other.clone(),
                };
                form.append_pair(&name, &v.text());
            }
            form.finish().into_bytes()
        }
        _ => {
            let mut update = json!({"update_id": 1});
            for (name, v) in fields {
                match name {
                    Ok(i) => set(
                        &mut update,
                        TELEGRAM_FIELDS[*i as usize % TELEGRAM_FIELDS.len()],
                        v.json(),
                    ),
                    Err(other) => set(&mut update, &format!("/message/{other}"), v.json()),
                }
            }
            serde_json::to_vec(&update).unwrap()
        }
    }
}

fn check_inbound(provider: usize, m: &Inbound) {
    let id_ok = (1..=MAX_MESSAGE_ID).contains(&m.message_id.len())
        && m.message_id.bytes().all(|b| b.is_ascii_graphic());
    assert!(id_ok, "a turn would refuse message id {:?}", m.message_id);
    assert!(!m.user.is_empty(), "no sender");
    if let Some(phone) = &m.phone {
        let digits = phone.strip_prefix('+').expect("E.164 starts with +");
        assert!(
            (1..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
            "not E.164: {phone:?}"
        );
    }
    if provider == 2 {
        m.user.parse::<i64>().expect("a Telegram user is a chat id");
    }
    if let Content::Unsupported { what } = &m.content {
        let plain = (1..=32).contains(&what.len())
            && what
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(plain, "an odd type name: {what:?}");
    }
}

/// The string Twilio signs: the URL, then every distinct (name, value) pair in order, name then
/// value. A model written apart from the adapter, to tell a real change from a harmless one.
fn twilio_signed_string(url: &str, body: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut s = url.to_string();
    for (k, v) in pairs {
        s.push_str(&k);
        s.push_str(&v);
    }
    s
}

fn visible(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The text of one send call, and the provider's limit for it.
fn sent_text(provider: usize, call: &SendInputs) -> (String, usize) {
    let get = |name: &str| call.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    match provider {
        0 => {
            if let Some(i) = get("interactive") {
                let title_max = if i["type"] == "button" { 20 } else { 24 };
                let options: Vec<&Value> = match i["type"].as_str() {
                    Some("button") => i["action"]["buttons"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| &b["reply"])
                        .collect(),
                    _ => i["action"]["sections"][0]["rows"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .collect(),
                };
                assert!(!options.is_empty() && options.len() <= 10);
                if i["type"] == "button" {
                    assert!(options.len() <= 3);
                }
                for o in options {
                    let title = o["title"].as_str().unwrap();
                    assert!(!title.trim().is_empty() && text_len(title) <= title_max);
                }
                (i["body"]["text"].as_str().unwrap().to_string(), 1024)
            } else {
                let text = get("text").expect("text or interactive");
                (text["body"].as_str().unwrap().to_string(), 4096)
            }
        }
        1 => (get("Body").unwrap().as_str().unwrap().to_string(), 1600),
        _ => {
            if let Some(markup) = get("reply_markup") {
                for row in markup["inline_keyboard"].as_array().unwrap() {
                    let data = row[0]["callback_data"].as_str().unwrap();
                    assert!((1..=64).contains(&data.len()), "callback_data {data:?}");
                }
            }
            (get("text").unwrap().as_str().unwrap().to_string(), 4096)
        }
    }
}

fuzz_target!(|input: Input| {
    let provider = usize::from(input.provider % 3);
    let raw = body(provider, &input.body);

    // Normalise: Ok or an error, and what comes out is usable.
    let normalised = match provider {
        0 => whatsapp::normalise(&raw),
        1 => twilio::normalise(&raw),
        _ => telegram::normalise(&raw),
    };
    if let Ok(messages) = &normalised {
        for m in messages {
            check_inbound(provider, m);
        }
    }

    // Verify with arbitrary headers: Ok or a Rejection.
    let owned: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| {
            let name = match n {
                Ok(i) if i % 2 == 0 => HEADERS[*i as usize % HEADERS.len()].to_ascii_uppercase(),
                Ok(i) => HEADERS[*i as usize % HEADERS.len()].to_string(),
                Err(s) => s.clone(),
            };
            (name, v.clone())
        })
        .collect();
    let headers: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut tampered = raw.clone();
    if !tampered.is_empty() {
        let at = input.flip % tampered.len();
        tampered[at] ^= 1 << (input.flip / tampered.len().max(1) % 8);
    }
    match provider {
        0 => {
            if let Ok(key) = whatsapp::key(&input.secret) {
                let keys = [key.clone()];
                let _ = whatsapp::verify(&keys, headers.as_slice(), &raw);
                let signed = signatures::sign(Scheme::Github, &key, "", 0, &raw);
                let signed: Vec<(&str, &str)> =
                    signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let ok = whatsapp::verify(&keys, signed.as_slice(), &raw);
                assert!(ok.is_ok(), "a body Meta signed was rejected: {ok:?}");
                if tampered != raw {
                    assert!(
                        whatsapp::verify(&keys, signed.as_slice(), &tampered).is_err(),
                        "a changed body still verified"
                    );
                }
            }
            let tokens = [input.secret.as_str()];
            if let Ok(challenge) = whatsapp::handshake(&input.url, &tokens) {
                assert!(challenge.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
        1 => {
            if let Ok(token) = twilio::AuthToken::new(&input.secret) {
                let tokens = [token.clone()];
                let _ = twilio::verify(&tokens, headers.as_slice(), &input.url, &raw);
                let sig = twilio::sign(&token, &input.url, &raw);
                let signed: &[(&str, &str)] = &[("X-Twilio-Signature", &sig)];
                let ok = twilio::verify(&tokens, signed, &input.url, &raw);
                assert!(ok.is_ok(), "a request Twilio signed was rejected: {ok:?}");
                if twilio_signed_string(&input.url, &tampered)
                    != twilio_signed_string(&input.url, &raw)
                {
                    assert!(
                        twilio::verify(&tokens, signed, &input.url, &tampered).is_err(),
                        "changed parameters still verified"
                    );
                }
            }
        }
        _ => {
            let tokens = [input.secret.as_str()];
            let _ = telegram::verify(&tokens, headers.as_slice());
            if telegram::valid_secret_token(&input.secret) {
                let ours: &[(&str, &str)] = &[(telegram::SECRET_HEADER, &input.secret)];
                assert!(
                    telegram::verify(&tokens, ours).is_ok(),
                    "our own token refused"
                );
                if input.other_secret != input.secret {
                    let other = [input.other_secret.as_str()];
                    assert!(
                        telegram::verify(&other, ours).is_err(),
                        "another token accepted"
                    );
                }
            }
        }
    }

    // Render: every visible character of the text is sent, within the limits.
    let quick_replies: Vec<QuickReply> = input
        .reply
        .quick_replies
        .iter()
        .map(|(label, value)| QuickReply {
            label: label.clone(),
            value: value.clone(),
        })
        .collect();
    let out = Outgoing {
        text: &input.reply.text,
        quick_replies: &quick_replies,
    };
    let calls = match provider {
        0 => whatsapp::render(
            "15551234567",
            Some("106540352242922"),
            &out,
            &input.reply.list_button,
        ),
        1 => twilio::render("+15551234567", Some("+15557654321"), &out),
        _ => telegram::render("424242", None, &out),
    };
    let mut sent = String::new();
    for call in &calls {
        let (text, limit) = sent_text(provider, call);
        assert!(!text.is_empty(), "an empty part");
        assert!(text_len(&text) <= limit, "a part over {limit}");
        sent.push_str(&text);
    }
    let sent = visible(&sent);
    assert!(
        sent.starts_with(&visible(&input.reply.text)),
        "text lost in rendering"
    );
    if quick_replies.is_empty() {
        assert_eq!(
            sent,
            visible(&input.reply.text),
            "something added to plain text"
        );
    } else if calls.len() > 1 || !sent.eq(&visible(&input.reply.text)) {
        // Numbered options, when used, are all there.
        let numbered = visible(&numbered(input.reply.text.trim(), &quick_replies));
        assert!(
            sent == numbered || sent == visible(&input.reply.text),
            "options lost"
        );
    }
});
