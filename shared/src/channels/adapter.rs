//! One interface over the three providers: the intake and fulfillment ask for a provider's
//! verify, normalise and send by `Provider`, never by name.

use super::message::{Inbound, Outgoing, Provider, SendInputs};
use super::{telegram, twilio, whatsapp};
use crate::signatures::{Headers, Rejection};

/// WhatsApp's GET subscription check; other providers have none (`Mismatch`).
pub fn handshake(p: Provider, query: &str, tokens: &[&str]) -> Result<String, Rejection> {
    match p {
        Provider::Whatsapp => whatsapp::handshake(query, tokens),
        _ => Err(Rejection::Mismatch),
    }
}

/// Verifies a POST with the channel's secrets (several while one rotates). A secret that is not
/// a usable key verifies nothing. Twilio signs the public URL, which the channel must have.
pub fn verify<H: Headers + ?Sized>(
    p: Provider,
    secrets: &[&str],
    headers: &H,
    public_url: Option<&str>,
    body: &[u8],
) -> Result<(), Rejection> {
    match p {
        Provider::Whatsapp => {
            let keys: Vec<_> = secrets
                .iter()
                .filter_map(|s| whatsapp::key(s).ok())
                .collect();
            whatsapp::verify(&keys, headers, body)
        }
        Provider::Twilio => {
            let tokens: Vec<_> = secrets
                .iter()
                .filter_map(|s| twilio::AuthToken::new(s).ok())
                .collect();
            let url = public_url.ok_or(Rejection::Mismatch)?;
            twilio::verify(&tokens, headers, url, body)
        }
        Provider::Telegram => telegram::verify(secrets, headers),
    }
}

/// The customer messages in a verified body (none for a delivery receipt or an update that is
/// not a customer's message). Errors name a field, never a customer's words.
///
/// Message ids are replaced by a digest: WhatsApp's `wamid` is base64 holding the sender's
/// number, and ids end up in claim keys, job keys and logs. Still one per provider id, so
/// redeliveries keep deduplicating; a body naming the same id twice yields it once.
pub fn normalise(p: Provider, body: &[u8]) -> Result<Vec<Inbound>, String> {
    let mut messages = match p {
        Provider::Whatsapp => whatsapp::normalise(body),
        Provider::Twilio => twilio::normalise(body),
        Provider::Telegram => telegram::normalise(body),
    }
    .map_err(|e| e.to_string())?;
    let mut seen = std::collections::HashSet::new();
    messages.retain_mut(|m| {
        m.message_id = digest(p, &m.message_id);
        seen.insert(m.message_id.clone())
    });
    Ok(messages)
}

fn digest(p: Provider, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(p.as_str().as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    let d = h.finalize();
    let mut out = String::with_capacity(34);
    out.push_str("m:");
    for b in &d[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The calls of the channel's send operation that deliver `out` to `to` from `business`;
/// `list_button` is the label of WhatsApp's list button, in the conversation's language.
pub fn render(
    p: Provider,
    to: &str,
    business: Option<&str>,
    out: &Outgoing,
    list_button: &str,
) -> Vec<SendInputs> {
    match p {
        Provider::Whatsapp => whatsapp::render(to, business, out, list_button),
        Provider::Twilio => twilio::render(to, business, out)
            .into_iter()
            .map(twilio_inputs)
            .collect(),
        Provider::Telegram => telegram::render(to, business, out),
    }
}

/// The template message sent when WhatsApp's customer-service window has closed. Only WhatsApp
/// has one; the others never get here (their window is always open).
pub fn template(
    p: Provider,
    to: &str,
    business: Option<&str>,
    name: &str,
    language: &str,
) -> SendInputs {
    match p {
        Provider::Whatsapp => whatsapp::template(to, business, name, language),
        _ => Vec::new(),
    }
}

/// Twilio's form fields (`To`, `From`, `Body`) are the operation's inputs `to`, `from`, `body`:
/// inputs are lowercase, like every operation's.
fn twilio_inputs(call: SendInputs) -> SendInputs {
    call.into_iter()
        .map(|(k, v)| {
            let k = match k {
                "To" => "to",
                "From" => "from",
                "Body" => "body",
                other => other,
            };
            (k, v)
        })
        .collect()
}
