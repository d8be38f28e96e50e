//! WhatsApp through Meta's Cloud API.
//!
//! - Webhook POSTs carry `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the raw body with
//!   the app secret: GitHub's scheme, so [`verify`] is `signatures`' own.
//! - Subscribing a webhook is a GET with `hub.mode=subscribe`, `hub.verify_token` (a token we
//!   chose) and `hub.challenge` (echoed back): [`handshake`].
//! - A body is `entry[].changes[]`; changes with `field: "messages"` hold `value.messages[]`
//!   (what customers wrote) and `value.statuses[]` (receipts for what we sent, ignored here).
//! - Replies are `whatsapp.send_message` calls: reply buttons (1-3), a list (4-10) or text.

use serde::Deserialize;
use serde_json::{json, Value};
use subtle::{Choice, ConstantTimeEq};

use super::message::{
    check_size, e164, is_visible_ascii, message_id, numbered, split, text_len, ChannelParseError,
    Content, Inbound, Outgoing, SendInputs,
};
use crate::conversation::QuickReply;
use crate::signatures::{self, Headers, KeyError, Rejection, Scheme, SigningKey};

/// The connector operation a reply is sent with.
pub const SEND_OPERATION: &str = "whatsapp.send_message";

/// The key for an app secret, as [`verify`] takes it.
pub fn key(app_secret: &str) -> Result<SigningKey, KeyError> {
    SigningKey::new(Scheme::Github, app_secret)
}

/// Verifies a webhook POST against the app secrets (more than one while a secret rotates).
pub fn verify<H: Headers + ?Sized>(
    app_secrets: &[SigningKey],
    headers: &H,
    body: &[u8],
) -> Result<(), Rejection> {
    // GitHub's scheme has no timestamp: the clock arguments are unused.
    signatures::verify(Scheme::Github, app_secrets, headers, body, 0, 0).map(|_| ())
}

/// Meta's challenges are short numbers; a bound keeps us from echoing whatever a caller sends.
const MAX_CHALLENGE: usize = 256;

/// Answers Meta's subscription check (GET `?hub.mode=subscribe&hub.verify_token=…&
/// hub.challenge=…`): the challenge, to be returned as the response body, when the token is one
/// of ours. The parameters are reported through [`Rejection`]'s header variants under their
/// query names; a parameter given twice is malformed (which one would Meta mean?).
pub fn handshake(query: &str, verify_tokens: &[&str]) -> Result<String, Rejection> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let (slot, name) = match name.as_ref() {
            "hub.mode" => (&mut mode, "hub.mode"),
            "hub.verify_token" => (&mut token, "hub.verify_token"),
            "hub.challenge" => (&mut challenge, "hub.challenge"),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(Rejection::MalformedHeader(name));
        }
    }
    let mode = mode.ok_or(Rejection::MissingHeader("hub.mode"))?;
    if mode != "subscribe" {
        return Err(Rejection::MalformedHeader("hub.mode"));
    }
    let token = token.ok_or(Rejection::MissingHeader("hub.verify_token"))?;
    // Every configured token is compared, in constant time, before anything is echoed. An empty
    // configured token would accept an empty parameter: it is never a match.
    let matched = verify_tokens
        .iter()
        .filter(|t| !t.is_empty())
        .fold(Choice::from(0), |acc, t| {
            acc | t.as_bytes().ct_eq(token.as_bytes())
        });
    if !bool::from(matched) {
        return Err(Rejection::Mismatch);
    }
    let challenge = challenge.ok_or(Rejection::MissingHeader("hub.challenge"))?;
    if !is_visible_ascii(&challenge, MAX_CHALLENGE) {
        return Err(Rejection::MalformedHeader("hub.challenge"));
    }
    Ok(challenge.into_owned())
}

#[derive(Deserialize)]
struct Notification {
    #[serde(default)]
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    field: String,
    /// Its shape depends on `field`: read as `MessagesValue` only for "messages".
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct MessagesValue {
    metadata: Option<Metadata>,
    #[serde(default)]
    messages: Vec<WaMessage>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: Option<String>,
}

#[derive(Deserialize)]
struct WaMessage {
    from: Option<String>,
    id: Option<String>,
    /// Unix seconds as a decimal string; a number is accepted too.
    timestamp: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<TextBody>,
    interactive: Option<Interactive>,
    button: Option<TemplateButton>,
}

#[derive(Deserialize)]
struct TextBody {
    body: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(rename = "type", default)]
    kind: String,
    button_reply: Option<Reply>,
    list_reply: Option<Reply>,
}

#[derive(Deserialize)]
struct Reply {
    id: Option<String>,
    #[serde(default)]
    title: String,
}

/// A quick-reply button of a template message.
#[derive(Deserialize)]
struct TemplateButton {
    payload: Option<String>,
    #[serde(default)]
    text: String,
}

/// Ids Meta gives (wa_id, phone_number_id) are digits; anything printable up to this is let
/// through so a format change does not drop messages, anything else is refused.
const MAX_ADDRESS: usize = 64;

/// The customer messages of a webhook body, in order. Statuses, other fields and other objects
/// give nothing: an empty list is an answer, not an error.
pub fn normalise(body: &[u8]) -> Result<Vec<Inbound>, ChannelParseError> {
    check_size(body)?;
    let notification: Notification = serde_json::from_slice(body)?;
    if notification.object != "whatsapp_business_account" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for change in notification.entry.into_iter().flat_map(|e| e.changes) {
        if change.field != "messages" {
            continue;
        }
        let value: MessagesValue = serde_json::from_value(change.value)?;
        let business = value
            .metadata
            .and_then(|m| m.phone_number_id)
            .map(|id| {
                is_visible_ascii(&id, MAX_ADDRESS)
                    .then_some(id)
                    .ok_or(ChannelParseError::Invalid("metadata.phone_number_id"))
            })
            .transpose()?;
        for m in value.messages {
            out.push(inbound(m, business.clone())?);
        }
    }
    Ok(out)
}

fn inbound(m: WaMessage, business: Option<String>) -> Result<Inbound, ChannelParseError> {
    let id = m.id.ok_or(ChannelParseError::Missing("messages[].id"))?;
    let from = m
        .from
        .ok_or(ChannelParseError::Missing("messages[].from"))?;
    if !is_visible_ascii(&from, MAX_ADDRESS) {
        return Err(ChannelParseError::Invalid("messages[].from"));
    }
    let sent_at = match m.timestamp {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| ChannelParseError::Invalid("messages[].timestamp"))?,
        ),
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or(ChannelParseError::Invalid("messages[].timestamp"))?,
        ),
        Some(_) => return Err(ChannelParseError::Invalid("messages[].timestamp")),
    };
    let kind = m
        .kind
        .ok_or(ChannelParseError::Missing("messages[].type"))?;
    let content = match kind.as_str() {
        "text" => Content::Text {
            text: m
                .text
                .and_then(|t| t.body)
                .ok_or(ChannelParseError::Missing("messages[].text.body"))?,
        },
        "interactive" => {
            let i = m
                .interactive
                .ok_or(ChannelParseError::Missing("messages[].interactive"))?;
            let reply = match i.kind.as_str() {
                "button_reply" => Some(
                    i.button_reply
                        .ok_or(ChannelParseError::Missing("interactive.button_reply"))?,
                ),
                "list_reply" => Some(
                    i.list_reply
                        .ok_or(ChannelParseError::Missing("interactive.list_reply"))?,
                ),
                // Flow answers (nfm_reply) and whatever Meta adds: not a quick reply of ours.
                _ => None,
            };
            match reply {
                Some(r) => Content::Button {
                    value: r
                        .id
                        .ok_or(ChannelParseError::Missing("interactive reply id"))?,
                    label: r.title,
                },
                None => Content::Unsupported {
                    what: "interactive".into(),
                },
            }
        }
        // A quick-reply button of a template: its payload is what the template was given, its
        // text what it showed (templates made without payloads send the text alone).
        "button" => {
            let b = m
                .button
                .ok_or(ChannelParseError::Missing("messages[].button"))?;
            let value = match b.payload {
                Some(p) if !p.is_empty() => p,
                _ => b.text.clone(),
            };
            Content::Button {
                value,
                label: b.text,
            }
        }
        other => Content::Unsupported {
            what: type_name(other),
        },
    };
    Ok(Inbound {
        message_id: message_id(&id),
        // Meta documents `from` as the customer's phone number (a wa_id may differ from it):
        // it is both the address we reply to and the phone we vouch for.
        phone: e164(&from),
        user: from,
        business,
        language: None,
        sent_at,
        content,
    })
}

/// Meta's type names are short snake case ("image", "video_note"): one that is not (empty,
/// long, odd characters) is reported as "unknown" rather than copied into logs and metrics.
fn type_name(kind: &str) -> String {
    let kind = kind.to_ascii_lowercase();
    let plain = (1..=32).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        kind
    } else {
        "unknown".into()
    }
}

/// Meta's limits (Cloud API, messages reference): reply buttons 1-3, titles of 20 characters,
/// ids of 256; list rows 1-10, titles of 24, ids of 200; the list's button 20; an interactive
/// message's body 1024; a text message's body 4096.
const MAX_BUTTONS: usize = 3;
const MAX_BUTTON_TITLE: usize = 20;
const MAX_BUTTON_ID: usize = 256;
const MAX_ROWS: usize = 10;
const MAX_ROW_TITLE: usize = 24;
const MAX_ROW_ID: usize = 200;
const MAX_LIST_BUTTON: usize = 20;
const MAX_INTERACTIVE_BODY: usize = 1024;
const MAX_TEXT_BODY: usize = 4096;

/// The `whatsapp.send_message` calls that send `out` to `to` from the business phone number id:
/// reply buttons when there are 1-3 quick replies whose labels fit, a list (opened by a button
/// reading `list_button`, from the bot's messages) for up to 10, else text with numbered
/// options. Interactive messages need the whole text within 1024 characters; longer text is
/// sent as text, split in parts of 4096, one call each.
pub fn render(
    to: &str,
    business: Option<&str>,
    out: &Outgoing,
    list_button: &str,
) -> Vec<SendInputs> {
    let text = out.text.trim();
    if let Some(interactive) = interactive(text, out.quick_replies, list_button) {
        let mut call = address(to, business);
        call.push(("type", json!("interactive")));
        call.push(("interactive", interactive));
        return vec![call];
    }
    let body = numbered(text, out.quick_replies);
    split(&body, MAX_TEXT_BODY)
        .into_iter()
        .map(|part| {
            let mut call = address(to, business);
            call.push(("type", json!("text")));
            // Meta shows a link's preview only when asked to.
            let preview = !crate::links::links_in(part).is_empty();
            call.push(("text", json!({"body": part, "preview_url": preview})));
            call
        })
        .collect()
}

/// A template message, the only kind Meta delivers outside the 24 hours after the customer's
/// last message. `language` is the template's language code ("en_US").
pub fn template(to: &str, business: Option<&str>, name: &str, language: &str) -> SendInputs {
    let mut call = address(to, business);
    call.push(("type", json!("template")));
    call.push((
        "template",
        json!({"name": name, "language": {"code": language}}),
    ));
    call
}

fn address(to: &str, business: Option<&str>) -> SendInputs {
    let mut call = Vec::with_capacity(4);
    if let Some(b) = business {
        call.push(("phone_number_id", json!(b)));
    }
    call.push(("to", json!(to)));
    call
}

/// The interactive object for `replies`, if Meta would take it.
fn interactive(text: &str, replies: &[QuickReply], list_button: &str) -> Option<Value> {
    if replies.is_empty() || text.is_empty() || text_len(text) > MAX_INTERACTIVE_BODY {
        return None;
    }
    // Meta refuses a message whose buttons or rows repeat a title or an id.
    let unique = |f: fn(&QuickReply) -> &str| {
        replies
            .iter()
            .enumerate()
            .all(|(i, r)| replies[..i].iter().all(|s| f(s) != f(r)))
    };
    if !unique(|r| r.label.as_str()) || !unique(|r| r.value.as_str()) {
        return None;
    }
    let fits = |title_max: usize, id_max: usize| {
        replies.iter().all(|r| {
            !r.label.trim().is_empty()
                && text_len(&r.label) <= title_max
                && !r.value.is_empty()
                && text_len(&r.value) <= id_max
        })
    };
    if replies.len() <= MAX_BUTTONS && fits(MAX_BUTTON_TITLE, MAX_BUTTON_ID) {
        let buttons: Vec<Value> = replies
            .iter()
            .map(|r| json!({"type": "reply", "reply": {"id": r.value, "title": r.label}}))
            .collect();
        return Some(json!({
            "type": "button",
            "body": {"text": text},
            "action": {"buttons": buttons},
        }));
    }
    let button = list_button.trim();
    if replies.len() <= MAX_ROWS
        && fits(MAX_ROW_TITLE, MAX_ROW_ID)
        && !button.is_empty()
        && text_len(button) <= MAX_LIST_BUTTON
    {
        let rows: Vec<Value> = replies
            .iter()
            .map(|r| json!({"id": r.value, "title": r.label}))
            .collect();
        // One section needs no title.
        return Some(json!({
            "type": "list",
            "body": {"text": text},
            "action": {"button": button, "sections": [{"rows": rows}]},
        }));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whatsapp-app-secret-for-tests";

    fn keys() -> Vec<SigningKey> {
        vec![key(SECRET).unwrap()]
    }

    fn signed(body: &[u8]) -> String {
        let k = key(SECRET).unwrap();
        let headers = signatures::sign(Scheme::Github, &k, "", 0, body);
        headers
            .into_iter()
            .find(|(n, _)| *n == "x-hub-signature-256")
            .unwrap()
            .1
    }

    #[test]
    fn a_signed_body_verifies() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let sig = signed(body);
        let h: &[(&str, &str)] = &[("X-Hub-Signature-256", &sig)];
        assert_eq!(verify(&keys(), h, body), Ok(()));
    }

    #[test]
    fn a_signature_computed_elsewhere_verifies() {
        // printf '%s' "$BODY" | openssl dgst -sha256 -hmac whatsapp-app-secret-for-tests
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let h: &[(&str, &str)] = &[(
            "x-hub-signature-256",
            "sha256=08ff180b3fb270f2b6ac76e591f26dc478d476fdd450c2b9ced5a2c444207e63",
        )];
        assert_eq!(verify(&keys(), h, body), Ok(()));
    }

    #[test]
    fn tampered_body_wrong_secret_and_bad_headers_are_refused() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let sig = signed(body);
        let h: &[(&str, &str)] = &[("x-hub-signature-256", &sig)];
        assert_eq!(
            verify(&keys(), h, br#"{"object":"whatsapp_business_accounT"}"#),
            Err(Rejection::Mismatch)
        );
        let other = vec![key("another-secret").unwrap()];
        assert_eq!(verify(&other, h, body), Err(Rejection::Mismatch));
        // Rotation: the old and the new secret both verify.
        let both = vec![key("another-secret").unwrap(), key(SECRET).unwrap()];
        assert_eq!(verify(&both, h, body), Ok(()));
        let none: &[(&str, &str)] = &[];
        assert_eq!(
            verify(&keys(), none, body),
            Err(Rejection::MissingHeader("x-hub-signature-256"))
        );
        for bad in ["", "sha256=", "sha1=abcd", "sha256=zz", &sig[7..]] {
            let h: &[(&str, &str)] = &[("x-hub-signature-256", bad)];
            assert_eq!(
                verify(&keys(), h, body),
                Err(Rejection::MalformedHeader("x-hub-signature-256")),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn handshake_echoes_the_challenge_for_our_token() {
        let q = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock";
        assert_eq!(
            handshake(q, &["old-token", "meatyhamhock"]).as_deref(),
            Ok("1158201444")
        );
        assert_eq!(
            handshake(&format!("?{q}"), &["meatyhamhock"]).as_deref(),
            Ok("1158201444")
        );
    }

    #[test]
    fn handshake_refuses_anything_else() {
        let ok = ["meatyhamhock"];
        let cases: [(&str, Rejection); 9] = [
            (
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
                Rejection::Mismatch,
            ),
            (
                "hub.mode=subscribe&hub.challenge=1",
                Rejection::MissingHeader("hub.verify_token"),
            ),
            (
                "hub.challenge=1&hub.verify_token=meatyhamhock",
                Rejection::MissingHeader("hub.mode"),
            ),
            (
                "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock",
                Rejection::MalformedHeader("hub.mode"),
            ),
            (
                "hub.mode=subscribe&hub.verify_token=meatyhamhock",
                Rejection::MissingHeader("hub.challenge"),
            ),
            (
                "hub.mode=subscribe&hub.challenge=%3Cscript%3E%20x&hub.verify_token=meatyhamhock",
                Rejection::MalformedHeader("hub.challenge"),
            ),
            (
                "hub.mode=subscribe&hub.challenge=&hub.verify_token=meatyhamhock",
                Rejection::MalformedHeader("hub.challenge"),
            ),
            (
                "hub.mode=subscribe&hub.challenge=1&hub.challenge=2&hub.verify_token=meatyhamhock",
                Rejection::MalformedHeader("hub.challenge"),
            ),
            (
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
                Rejection::Mismatch,
            ),
        ];
        for (q, want) in cases {
            assert_eq!(handshake(q, &ok), Err(want), "{q}");
        }
        // An empty configured token matches nothing, not even an empty parameter.
        assert_eq!(
            handshake(
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=",
                &[""]
            ),
            Err(Rejection::Mismatch)
        );
        let long = format!(
            "hub.mode=subscribe&hub.verify_token=meatyhamhock&hub.challenge={}",
            "9".repeat(257)
        );
        assert_eq!(
            handshake(&long, &ok),
            Err(Rejection::MalformedHeader("hub.challenge"))
        );
    }

    /// Meta's sample `messages` notification, as the App Dashboard's webhook test sends it.
    #[test]
    fn metas_sample_text_message() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"0","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"16505551111","phone_number_id":"123456123"},"contacts":[{"profile":{"name":"test user name"},"wa_id":"16315551181"}],"messages":[{"from":"16315551181","id":"ABGGFlA5Fpa","timestamp":"1504902988","type":"text","text":{"body":"this is a text message"}}]}}]}]}"#;
        assert_eq!(
            normalise(body).unwrap(),
            [Inbound {
                message_id: "ABGGFlA5Fpa".into(),
                user: "16315551181".into(),
                business: Some("123456123".into()),
                phone: Some("+16315551181".into()),
                language: None,
                sent_at: Some(1504902988),
                content: Content::Text {
                    text: "this is a text message".into()
                },
            }]
        );
    }

    /// A notification in the shape of Meta's webhook reference, with one message; the values
    /// are the reference's examples (business 106540352242922, user 16505551234).
    fn notification(message: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": "102290129340398",
                "changes": [{
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "15550783881",
                            "phone_number_id": "106540352242922"
                        },
                        "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
                        "messages": [message]
                    },
                    "field": "messages"
                }]
            }]
        }))
        .unwrap()
    }

    fn one(message: Value) -> Inbound {
        let mut all = normalise(&notification(message)).unwrap();
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    #[test]
    fn interactive_button_reply_from_the_reference() {
        let m = one(json!({
            "context": {"from": "15550783881", "id": "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="},
            "from": "16505551234",
            "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
            "timestamp": "1739321024",
            "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": "cancel-button", "title": "Cancel"}}
        }));
        assert_eq!(
            m.message_id,
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
        );
        assert_eq!(m.user, "16505551234");
        assert_eq!(m.phone.as_deref(), Some("+16505551234"));
        assert_eq!(m.business.as_deref(), Some("106540352242922"));
        assert_eq!(m.sent_at, Some(1739321024));
        assert_eq!(
            m.content,
            Content::Button {
                value: "cancel-button".into(),
                label: "Cancel".into()
            }
        );
    }

    #[test]
    fn interactive_list_reply_from_the_reference() {
        let m = one(json!({
            "from": "16505551234",
            "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
            "timestamp": "1739321024",
            "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {
                "id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"}}
        }));
        assert_eq!(
            m.content,
            Content::Button {
                value: "priority_express".into(),
                label: "Priority Mail Express".into()
            }
        );
    }

    #[test]
    fn template_quick_reply_button() {
        let m = one(json!({
            "from": "16505551234", "id": "wamid.b1", "timestamp": "1739321024", "type": "button",
            "button": {"payload": "reschedule", "text": "Pick another day"}
        }));
        assert_eq!(
            m.content,
            Content::Button {
                value: "reschedule".into(),
                label: "Pick another day".into()
            }
        );
        let no_payload = one(json!({
            "from": "16505551234", "id": "wamid.b2", "type": "button", "button": {"text": "Yes"}
        }));
        assert_eq!(
            no_payload.content,
            Content::Button {
                value: "Yes".into(),
                label: "Yes".into()
            }
        );
    }

    #[test]
    fn image_and_other_kinds_are_unsupported() {
        let image = one(json!({
            "from": "16505551234", "id": "wamid.i1", "timestamp": "1739321024", "type": "image",
            "image": {"caption": "the dent on the box", "mime_type": "image/jpeg",
                      "sha256": "81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3",
                      "id": "2754859441498128"}
        }));
        assert_eq!(
            image.content,
            Content::Unsupported {
                what: "image".into()
            }
        );
        for kind in [
            "sticker",
            "location",
            "audio",
            "video",
            "document",
            "contacts",
            "reaction",
            "unsupported",
        ] {
            let m = one(json!({"from": "16505551234", "id": "wamid.x", "type": kind}));
            assert_eq!(m.content, Content::Unsupported { what: kind.into() });
        }
        for odd in ["", "x".repeat(33).as_str(), "image/jpeg", "ünïcode"] {
            let m = one(json!({"from": "16505551234", "id": "wamid.x", "type": odd}));
            assert_eq!(
                m.content,
                Content::Unsupported {
                    what: "unknown".into()
                },
                "{odd:?}"
            );
        }
        let upper = one(json!({"from": "16505551234", "id": "wamid.x", "type": "Sticker"}));
        assert_eq!(
            upper.content,
            Content::Unsupported {
                what: "sticker".into()
            }
        );
        let flow = one(json!({
            "from": "16505551234", "id": "wamid.f", "type": "interactive",
            "interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}}
        }));
        assert_eq!(
            flow.content,
            Content::Unsupported {
                what: "interactive".into()
            }
        );
    }

    #[test]
    fn statuses_and_other_fields_give_nothing() {
        let statuses = br#"{"object":"whatsapp_business_account","entry":[{"id":"122951744235903","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550984277","phone_number_id":"114896151713920"},"statuses":[{"id":"wamid.HBgLNjAxNzM1MjYyMzMVAgARGBJCNkY5NTBENEU3ODYxQTM3RUQA","status":"delivered","timestamp":"1694492484","recipient_id":"60173526233","conversation":{"id":"f5fdae3920125a39a1e6a23e5f877c16","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"CBP","category":"utility"}}]},"field":"messages"}]}]}"#;
        assert_eq!(normalise(statuses).unwrap(), []);
        let template_update = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED","messages":"not a list here"}}]}]}"#;
        assert_eq!(normalise(template_update).unwrap(), []);
        let page = br#"{"object":"page","entry":[{"changes":[{"field":"messages","value":{}}]}]}"#;
        assert_eq!(normalise(page).unwrap(), []);
        assert_eq!(
            normalise(br#"{"object":"whatsapp_business_account"}"#).unwrap(),
            []
        );
    }

    #[test]
    fn several_messages_in_one_body_keep_their_order() {
        let mut v: Value = serde_json::from_slice(&notification(json!({
            "from": "16505551234", "id": "wamid.1", "type": "text", "text": {"body": "first"}
        })))
        .unwrap();
        v["entry"][0]["changes"][0]["value"]["messages"]
            .as_array_mut()
            .unwrap()
            .push(json!({"from": "16505551235", "id": "wamid.2", "type": "text", "text": {"body": "second"}}));
        let all = normalise(&serde_json::to_vec(&v).unwrap()).unwrap();
        let ids: Vec<&str> = all.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids, ["wamid.1", "wamid.2"]);
        assert_eq!(all[1].user, "16505551235");
    }

    #[test]
    fn broken_bodies_are_clear_errors() {
        assert!(matches!(
            normalise(b"not json"),
            Err(ChannelParseError::Json {
                category: "syntax",
                ..
            })
        ));
        assert!(matches!(
            normalise(b""),
            Err(ChannelParseError::Json {
                category: "eof",
                ..
            })
        ));
        let cases: [(Value, ChannelParseError); 6] = [
            (
                json!({"from": "1", "type": "text", "text": {"body": "x"}}),
                ChannelParseError::Missing("messages[].id"),
            ),
            (
                json!({"id": "w", "type": "text", "text": {"body": "x"}}),
                ChannelParseError::Missing("messages[].from"),
            ),
            (
                json!({"id": "w", "from": "1", "text": {"body": "x"}}),
                ChannelParseError::Missing("messages[].type"),
            ),
            (
                json!({"id": "w", "from": "1", "type": "text"}),
                ChannelParseError::Missing("messages[].text.body"),
            ),
            (
                json!({"id": "w", "from": "1 2", "type": "text", "text": {"body": "x"}}),
                ChannelParseError::Invalid("messages[].from"),
            ),
            (
                json!({"id": "w", "from": "1", "timestamp": "soon", "type": "text", "text": {"body": "x"}}),
                ChannelParseError::Invalid("messages[].timestamp"),
            ),
        ];
        for (m, want) in cases {
            assert_eq!(normalise(&notification(m.clone())), Err(want), "{m}");
        }
        let too_big = vec![b' '; super::super::message::MAX_BODY + 1];
        assert!(matches!(
            normalise(&too_big),
            Err(ChannelParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn odd_message_ids_and_numbers() {
        let m = one(
            json!({"from": "abc", "id": "has space", "timestamp": 1739321024, "type": "text", "text": {"body": ""}}),
        );
        assert!(m.message_id.starts_with("h:"));
        assert_eq!(m.phone, None, "not a phone number");
        assert_eq!(m.sent_at, Some(1739321024));
    }

    fn replies(labels: &[&str]) -> Vec<QuickReply> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| QuickReply {
                label: (*l).into(),
                value: format!("v{i}"),
            })
            .collect()
    }

    fn render_one(text: &str, labels: &[&str]) -> Vec<SendInputs> {
        let qr = replies(labels);
        render(
            "16505551234",
            Some("106540352242922"),
            &Outgoing {
                text,
                quick_replies: &qr,
            },
            "See options",
        )
    }

    fn get<'a>(call: &'a SendInputs, name: &str) -> Option<&'a Value> {
        call.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn up_to_three_short_replies_are_buttons() {
        let calls = render_one("Shall I cancel order 1042?", &["Yes, cancel", "No"]);
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(get(c, "phone_number_id"), Some(&json!("106540352242922")));
        assert_eq!(get(c, "to"), Some(&json!("16505551234")));
        assert_eq!(get(c, "type"), Some(&json!("interactive")));
        assert_eq!(
            get(c, "interactive"),
            Some(&json!({
                "type": "button",
                "body": {"text": "Shall I cancel order 1042?"},
                "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "v0", "title": "Yes, cancel"}},
                    {"type": "reply", "reply": {"id": "v1", "title": "No"}}
                ]}
            }))
        );
        assert_eq!(get(c, "text"), None);
    }

    #[test]
    fn four_to_ten_replies_or_longer_labels_are_a_list() {
        let calls = render_one("Which order?", &["1042", "1043", "1044", "1045"]);
        let i = get(&calls[0], "interactive").unwrap();
        assert_eq!(i["type"], "list");
        assert_eq!(i["action"]["button"], "See options");
        assert_eq!(
            i["action"]["sections"][0]["rows"].as_array().unwrap().len(),
            4
        );
        assert_eq!(
            i["action"]["sections"][0]["rows"][3],
            json!({"id": "v3", "title": "1045"})
        );
        // 21-24 characters do not fit a button but fit a row.
        let calls = render_one("Which one?", &["A label of 22 letters.", "Short"]);
        assert_eq!(get(&calls[0], "interactive").unwrap()["type"], "list");
    }

    #[test]
    fn what_does_not_fit_is_numbered_text() {
        let many: Vec<String> = (1..=11).map(|i| format!("Option {i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let too_long = "A label much longer than twenty-four";
        let dup = ["Same", "Same"];
        for labels in [&many[..], &[too_long][..], &dup[..], &[""][..]] {
            let calls = render_one("Pick one", labels);
            assert_eq!(calls.len(), 1, "{labels:?}");
            assert_eq!(get(&calls[0], "type"), Some(&json!("text")));
            let body = get(&calls[0], "text").unwrap()["body"].as_str().unwrap();
            assert!(body.starts_with("Pick one\n\n1. "), "{body}");
        }
        // No list button text from the bundle: numbered text.
        let qr = replies(&["a", "b", "c", "d"]);
        let calls = render(
            "1",
            None,
            &Outgoing {
                text: "Pick",
                quick_replies: &qr,
            },
            " ",
        );
        assert_eq!(get(&calls[0], "type"), Some(&json!("text")));
        assert_eq!(get(&calls[0], "phone_number_id"), None);
    }

    #[test]
    fn long_text_is_plain_text_in_parts() {
        let long = "Here is everything about your return. ".repeat(120);
        let calls = render_one(&long, &["OK"]);
        assert!(calls.len() >= 2);
        for c in &calls {
            assert_eq!(get(c, "type"), Some(&json!("text")));
            let body = get(c, "text").unwrap()["body"].as_str().unwrap();
            assert!(text_len(body) <= 4096);
        }
        let last = get(calls.last().unwrap(), "text").unwrap()["body"]
            .as_str()
            .unwrap();
        assert!(last.ends_with("\n\n1. OK"), "{last}");
    }

    #[test]
    fn links_ask_for_a_preview() {
        let calls = render_one("Track it at https://track.example/1042", &[]);
        assert_eq!(
            get(&calls[0], "text"),
            Some(&json!({"body": "Track it at https://track.example/1042", "preview_url": true}))
        );
        let calls = render_one("No link here.", &[]);
        assert_eq!(get(&calls[0], "text").unwrap()["preview_url"], false);
        assert!(
            render_one("   ", &[]).is_empty(),
            "nothing to say, nothing sent"
        );
    }

    #[test]
    fn template_inputs() {
        assert_eq!(
            template(
                "16505551234",
                Some("106540352242922"),
                "order_update",
                "en_US"
            ),
            vec![
                ("phone_number_id", json!("106540352242922")),
                ("to", json!("16505551234")),
                ("type", json!("template")),
                (
                    "template",
                    json!({"name": "order_update", "language": {"code": "en_US"}})
                ),
            ]
        );
    }
}
