//! SMS and WhatsApp through Twilio's Messaging API.
//!
//! - Webhooks are form posts (`application/x-www-form-urlencoded`) signed in
//!   `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the account's auth token, over the
//!   full URL Twilio requested followed by every form parameter, sorted by name, as name then
//!   value with nothing between. Twilio's own validators also accept the URL with its port
//!   removed or the scheme's default port added, as Twilio has signed both forms: so does
//!   [`verify`].
//! - Out of scope: JSON webhooks (signed over the URL with a `bodySHA256` query parameter) and
//!   webhooks signed with a shared key and `X-Twilio-Webhooks-Signature-Settings` (HMAC-SHA256):
//!   both fail verification here, as a mismatch.
//! - One webhook is one message: `MessageSid`, `From`, `To`, `Body`, media, location or a
//!   WhatsApp quick-reply button. Status callbacks sent to the same URL give nothing.
//! - Replies are `twilio.send_message` calls (`To`, `From`, `Body`), text only, in parts of
//!   1600 characters.

use std::borrow::Cow;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha1::Sha1;
use subtle::{Choice, ConstantTimeEq};

use super::message::{
    check_size, e164, is_visible_ascii, message_id, numbered, split, ChannelParseError, Content,
    Inbound, Outgoing, SendInputs,
};
use crate::signatures::{Headers, KeyError, Rejection};

type HmacSha1 = Hmac<Sha1>;

/// The connector operation a reply is sent with.
pub const SEND_OPERATION: &str = "twilio.send_message";

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// An account's auth token, kept as a keyed HMAC-SHA1 state. Never printed.
#[derive(Clone)]
pub struct AuthToken(HmacSha1);

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthToken(<redacted>)")
    }
}

impl AuthToken {
    pub fn new(token: &str) -> Result<Self, KeyError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self(
            HmacSha1::new_from_slice(token.as_bytes()).expect("HMAC accepts keys of any length"),
        ))
    }

    fn sign(&self, url: &str, params: &[(Cow<str>, Cow<str>)]) -> [u8; 20] {
        let mut mac = self.0.clone();
        mac.update(url.as_bytes());
        for (name, value) in params {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// The form's parameters as Twilio signs them: sorted by name, then by value (a repeated name
/// keeps all its values), each distinct pair once, as Twilio's libraries do. Names and values
/// are decoded ('+' is a space, `%xx` a byte, bytes that are not UTF-8 a U+FFFD).
fn signed_params(body: &[u8]) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut params: Vec<_> = url::form_urlencoded::parse(body).collect();
    // Byte order of UTF-8 is code point order, the order Twilio's libraries sort in.
    params.sort_unstable();
    params.dedup();
    params
}

/// The forms of `url` Twilio may have signed: without a port, and with the scheme's default
/// port (443 for https, else 80) when it has none. Worked on the text, not a parsed URL, so
/// everything but the port stays as Twilio sent it (a parser would normalise the path, the
/// query's escapes and the default port itself).
fn url_variants(url: &str) -> [Cow<'_, str>; 2] {
    let Some((scheme, rest)) = url.split_once("://") else {
        return [Cow::Borrowed(url), Cow::Borrowed(url)];
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority_start = url.len() - rest.len();
    let authority = &rest[..authority_end];
    // The host and port follow any `user:password@`; an IPv6 host is in brackets.
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    let port_colon = match host_port.rfind(']') {
        Some(close) => host_port[close..].find(':').map(|i| close + i),
        None => host_port.rfind(':'),
    };
    let port = port_colon.map(|i| &host_port[i + 1..]);
    let (before, after) = (
        &url[..authority_start + authority_end],
        &url[authority_start + authority_end..],
    );
    match (port_colon, port) {
        (Some(colon), Some(p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            let cut = authority_start + host_start + colon;
            let without = format!("{}{}", &url[..cut], after);
            [Cow::Owned(without), Cow::Borrowed(url)]
        }
        _ => {
            let default = if scheme.eq_ignore_ascii_case("https") {
                "443"
            } else {
                "80"
            };
            [
                Cow::Borrowed(url),
                Cow::Owned(format!("{before}:{default}{after}")),
            ]
        }
    }
}

/// Verifies a webhook: `public_url` is the full URL Twilio requested, query string included,
/// exactly as configured in Twilio (the function's own URL may differ behind a proxy or a
/// custom domain). Every token is tried (a secondary token while the primary rotates) against
/// both forms of the URL; the comparisons are constant time.
pub fn verify<H: Headers + ?Sized>(
    auth_tokens: &[AuthToken],
    headers: &H,
    public_url: &str,
    body: &[u8],
) -> Result<(), Rejection> {
    let header = headers
        .header(SIGNATURE_HEADER)
        .ok_or(Rejection::MissingHeader(SIGNATURE_HEADER))?;
    let mut buf = [0u8; 32];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(header.trim(), &mut buf)
        .map_err(|_| Rejection::MalformedHeader(SIGNATURE_HEADER))?;
    let given: [u8; 20] = buf[..n]
        .try_into()
        .map_err(|_| Rejection::MalformedHeader(SIGNATURE_HEADER))?;
    let params = signed_params(body);
    let urls = url_variants(public_url);
    let mut matched = Choice::from(0);
    for token in auth_tokens {
        for url in &urls {
            matched |= token.sign(url, &params)[..].ct_eq(&given[..]);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(Rejection::Mismatch)
    }
}

/// The `X-Twilio-Signature` Twilio would send for `body` posted to `url`; for the local demo
/// sender, tests and fuzzing.
pub fn sign(token: &AuthToken, url: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(token.sign(url, &signed_params(body)))
}

/// Twilio's `From`/`To` are numbers or `channel:address`; this bounds them.
const MAX_ADDRESS: usize = 128;

/// The message of a webhook body, or nothing for a status callback.
pub fn normalise(body: &[u8]) -> Result<Vec<Inbound>, ChannelParseError> {
    check_size(body)?;
    // The first value of each field read; Twilio sends each once.
    let mut fields: [Option<Cow<str>>; 11] = Default::default();
    const NAMES: [&str; 11] = [
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
    ];
    for (name, value) in url::form_urlencoded::parse(body) {
        if let Some(i) = NAMES.iter().position(|n| *n == name) {
            fields[i].get_or_insert(value);
        }
    }
    let [sid, sms_sid, from, to, text, num_media, lat, lon, payload, button_text, status] = fields;
    // A status callback (queued, sent, delivered, read, failed...) says nothing a customer wrote.
    if status.as_deref().is_some_and(|s| s != "received") {
        return Ok(Vec::new());
    }
    let sid = sid
        .or(sms_sid)
        .ok_or(ChannelParseError::Missing("MessageSid"))?;
    let from = from.ok_or(ChannelParseError::Missing("From"))?;
    if !is_visible_ascii(&from, MAX_ADDRESS) {
        return Err(ChannelParseError::Invalid("From"));
    }
    let business = to
        .map(|to| {
            is_visible_ascii(&to, MAX_ADDRESS)
                .then(|| to.into_owned())
                .ok_or(ChannelParseError::Invalid("To"))
        })
        .transpose()?;
    let num_media: u32 = match num_media.as_deref() {
        None | Some("") => 0,
        Some(n) => n
            .trim()
            .parse()
            .map_err(|_| ChannelParseError::Invalid("NumMedia"))?,
    };
    let text = text.unwrap_or_default();
    let content = match payload.filter(|p| !p.is_empty()) {
        // A WhatsApp quick-reply button (the Body repeats its text).
        Some(value) => Content::Button {
            value: value.into_owned(),
            label: button_text.unwrap_or_default().into_owned(),
        },
        None if lat.is_some() && lon.is_some() => Content::Unsupported {
            what: "location".into(),
        },
        None if text.trim().is_empty() && num_media > 0 => Content::Unsupported {
            what: "media".into(),
        },
        None if text.trim().is_empty() => Content::Unsupported {
            what: "empty".into(),
        },
        None => Content::Text {
            text: text.into_owned(),
        },
    };
    // SMS senders are numbers; WhatsApp senders are "whatsapp:" and a number. Other channels
    // ("messenger:…") have no phone Twilio vouches for.
    let number = from.strip_prefix("whatsapp:").unwrap_or(&from);
    let phone = number.starts_with('+').then(|| e164(number)).flatten();
    Ok(vec![Inbound {
        message_id: message_id(&sid),
        user: from.into_owned(),
        business,
        phone,
        language: None,
        sent_at: None,
        content,
    }])
}

/// Twilio's limit for a message body.
const MAX_BODY_TEXT: usize = 1600;

/// The `twilio.send_message` calls that send `out` to `to` from `business` (the number or
/// `whatsapp:` address the customer wrote to): text with numbered options, in parts of 1600.
/// `account_sid` is the caller's to add.
pub fn render(to: &str, business: Option<&str>, out: &Outgoing) -> Vec<SendInputs> {
    let body = numbered(out.text.trim(), out.quick_replies);
    split(&body, MAX_BODY_TEXT)
        .into_iter()
        .map(|part| {
            let mut call = vec![("To", json!(to))];
            if let Some(b) = business {
                call.push(("From", json!(b)));
            }
            call.push(("Body", json!(part)));
            call
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::message::text_len;
    use crate::conversation::QuickReply;

    fn tokens(t: &str) -> Vec<AuthToken> {
        vec![AuthToken::new(t).unwrap()]
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    fn verify_sig(token: &str, sig: &str, url: &str, body: &[u8]) -> Result<(), Rejection> {
        let h: &[(&str, &str)] = &[("X-Twilio-Signature", sig)];
        verify(&tokens(token), h, url, body)
    }

    /// Twilio's worked example in its webhook security documentation (token 12345).
    #[test]
    fn twilios_documented_example() {
        let body = form(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            verify_sig("12345", "L/OH5YylLD5NRKLltdqwSvS0BnU=", url, &body),
            Ok(())
        );
        assert_eq!(
            sign(&AuthToken::new("12345").unwrap(), url, &body),
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        );
    }

    /// The same example in its earlier versions (mycompany.com; other numbers), as Twilio's
    /// helper libraries test it. Each checked with openssl too:
    /// printf '%s' "$URL$PARAMS" | openssl dgst -sha1 -hmac 12345 -binary | base64
    #[test]
    fn earlier_versions_of_the_example() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        for (number, sig) in [
            ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ] {
            let body = form(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", number),
                ("Digits", "1234"),
                ("From", number),
                ("To", "+18005551212"),
            ]);
            assert_eq!(verify_sig("12345", sig, url, &body), Ok(()), "{number}");
        }
    }

    fn example() -> (Vec<u8>, &'static str, &'static str) {
        (
            form(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+14158675309"),
                ("Digits", "1234"),
                ("From", "+14158675309"),
                ("To", "+18005551212"),
            ]),
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        )
    }

    #[test]
    fn tampered_params_wrong_token_and_wrong_url_are_refused() {
        let (body, url, sig) = example();
        let tampered = String::from_utf8(body.clone())
            .unwrap()
            .replace("1234&", "1235&");
        assert_eq!(
            verify_sig("12345", sig, url, tampered.as_bytes()),
            Err(Rejection::Mismatch)
        );
        let extra = [&body[..], b"&Extra=1"].concat();
        assert_eq!(
            verify_sig("12345", sig, url, &extra),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify_sig("54321", sig, url, &body),
            Err(Rejection::Mismatch)
        );
        for wrong in [
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            "https://mycompany.com/myapp.php?bar=2&foo=1",
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            "https://mycompany.com/other.php?foo=1&bar=2",
            "https://mycompany.com/myapp.php",
            "https://evil.example/myapp.php?foo=1&bar=2",
        ] {
            assert_eq!(
                verify_sig("12345", sig, wrong, &body),
                Err(Rejection::Mismatch),
                "{wrong}"
            );
        }
    }

    #[test]
    fn parameter_order_in_the_body_does_not_matter() {
        let (_, url, sig) = example();
        let shuffled = form(&[
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
        ]);
        assert_eq!(verify_sig("12345", sig, url, &shuffled), Ok(()));
        // The same pair twice is signed once, as Twilio's libraries do.
        let (body, _, _) = example();
        let twice = [&body[..], b"&Digits=1234"].concat();
        assert_eq!(verify_sig("12345", sig, url, &twice), Ok(()));
    }

    #[test]
    fn missing_and_malformed_headers() {
        let (body, url, _) = example();
        let none: &[(&str, &str)] = &[];
        assert_eq!(
            verify(&tokens("12345"), none, url, &body),
            Err(Rejection::MissingHeader(SIGNATURE_HEADER))
        );
        // Not base64, or not 20 bytes (an HMAC-SHA256 is 32).
        for bad in [
            "",
            "not base64!",
            "AAAA",
            "L/OH5YylLD5NRKLltdqwSvS0BnU=AAAA",
            &"A".repeat(44),
        ] {
            assert_eq!(
                verify_sig("12345", bad, url, &body),
                Err(Rejection::MalformedHeader(SIGNATURE_HEADER)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_secondary_token_verifies_while_the_primary_rotates() {
        let (body, url, sig) = example();
        let both = vec![
            AuthToken::new("new-primary").unwrap(),
            AuthToken::new("12345").unwrap(),
        ];
        let h: &[(&str, &str)] = &[("x-twilio-signature", sig)];
        assert_eq!(verify(&both, h, url, &body), Ok(()));
        assert_eq!(AuthToken::new("  ").unwrap_err(), KeyError::Empty);
        assert_eq!(format!("{:?}", both[0]), "AuthToken(<redacted>)");
    }

    /// Twilio's validators check the URL with its port removed and with the scheme's default
    /// port added, since Twilio has signed both forms. `sign` is proven by the documented
    /// examples above; here it signs the form Twilio would have used.
    #[test]
    fn the_url_with_or_without_its_port_verifies_like_twilios_validator() {
        let body = form(&[("Body", "Where is my parcel?"), ("From", "+15550001111")]);
        let token = AuthToken::new("port-test-token").unwrap();
        let check = |signed_url: &str, configured: &str| {
            let sig = sign(&token, signed_url, &body);
            let h: &[(&str, &str)] = &[("x-twilio-signature", &sig)];
            verify(std::slice::from_ref(&token), h, configured, &body)
        };
        let bare = "https://hooks.example/twilio?tenant=demo";
        let with_443 = "https://hooks.example:443/twilio?tenant=demo";
        let with_8443 = "https://hooks.example:8443/twilio?tenant=demo";
        assert_eq!(check(bare, bare), Ok(()));
        assert_eq!(check(bare, with_443), Ok(()), "port removed");
        assert_eq!(check(with_443, bare), Ok(()), "default port added");
        assert_eq!(check(with_443, with_443), Ok(()));
        // Any port is removed (as Twilio's validator does), but only the default one is added.
        assert_eq!(check(bare, with_8443), Ok(()));
        assert_eq!(check(with_8443, with_8443), Ok(()));
        assert_eq!(check(with_8443, bare), Err(Rejection::Mismatch));
        assert_eq!(check(with_443, with_8443), Err(Rejection::Mismatch));
        assert_eq!(
            check("http://hooks.example:80/t", "http://hooks.example/t"),
            Ok(())
        );
        assert_eq!(
            check("https://hooks.example:80/t", "https://hooks.example/t"),
            Err(Rejection::Mismatch),
            "https adds 443, not 80"
        );
    }

    #[test]
    fn url_variants_touch_only_the_port() {
        let v = |u| url_variants(u).map(Cow::into_owned);
        assert_eq!(
            v("https://a.example/p?q=%2B1"),
            [
                "https://a.example/p?q=%2B1",
                "https://a.example:443/p?q=%2B1"
            ]
        );
        assert_eq!(
            v("https://a.example:8443/p"),
            ["https://a.example/p", "https://a.example:8443/p"]
        );
        assert_eq!(
            v("http://a.example"),
            ["http://a.example", "http://a.example:80"]
        );
        assert_eq!(
            v("https://u:pw@a.example:443/p"),
            ["https://u:pw@a.example/p", "https://u:pw@a.example:443/p"]
        );
        assert_eq!(
            v("https://u:pw@a.example/p"),
            ["https://u:pw@a.example/p", "https://u:pw@a.example:443/p"]
        );
        assert_eq!(
            v("https://[2001:db8::1]:8443/p"),
            ["https://[2001:db8::1]/p", "https://[2001:db8::1]:8443/p"]
        );
        assert_eq!(
            v("https://[2001:db8::1]/p"),
            ["https://[2001:db8::1]/p", "https://[2001:db8::1]:443/p"]
        );
        assert_eq!(
            v("https://a.example?x=1:2"),
            ["https://a.example?x=1:2", "https://a.example:443?x=1:2"]
        );
        assert_eq!(v("no scheme"), ["no scheme", "no scheme"]);
    }

    #[test]
    fn an_sms() {
        let body = form(&[
            ("ToCountry", "US"),
            ("SmsMessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
            ("NumMedia", "0"),
            ("SmsSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
            ("SmsStatus", "received"),
            ("Body", "Where is order 1042?"),
            ("To", "+15557778888"),
            ("NumSegments", "1"),
            ("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", "+15550001111"),
            ("ApiVersion", "2010-04-01"),
        ]);
        assert_eq!(
            normalise(&body).unwrap(),
            [Inbound {
                message_id: "SM1f0e8ae6ade43cb3c0ce4525424e404f".into(),
                user: "+15550001111".into(),
                business: Some("+15557778888".into()),
                phone: Some("+15550001111".into()),
                language: None,
                sent_at: None,
                content: Content::Text {
                    text: "Where is order 1042?".into()
                },
            }]
        );
    }

    fn whatsapp(extra: &[(&str, &str)]) -> Inbound {
        let mut pairs = vec![
            ("MessageSid", "SM0000000000000000000000000000001"),
            ("From", "whatsapp:+15550001111"),
            ("To", "whatsapp:+15557778888"),
            ("ProfileName", "Sam"),
            ("WaId", "15550001111"),
        ];
        pairs.extend_from_slice(extra);
        let mut all = normalise(&form(&pairs)).unwrap();
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    #[test]
    fn whatsapp_through_twilio() {
        let m = whatsapp(&[("Body", "Hi, can I change my address?"), ("NumMedia", "0")]);
        assert_eq!(m.user, "whatsapp:+15550001111");
        assert_eq!(m.phone.as_deref(), Some("+15550001111"));
        assert_eq!(m.business.as_deref(), Some("whatsapp:+15557778888"));
        assert_eq!(
            m.content,
            Content::Text {
                text: "Hi, can I change my address?".into()
            }
        );
    }

    #[test]
    fn buttons_media_location() {
        assert_eq!(
            whatsapp(&[
                ("Body", "Yes please"),
                ("ButtonText", "Yes please"),
                ("ButtonPayload", "confirm_return")
            ])
            .content,
            Content::Button {
                value: "confirm_return".into(),
                label: "Yes please".into()
            }
        );
        assert_eq!(
            whatsapp(&[
                ("Body", ""),
                ("NumMedia", "1"),
                ("MediaContentType0", "image/jpeg"),
                (
                    "MediaUrl0",
                    "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0"
                )
            ])
            .content,
            Content::Unsupported {
                what: "media".into()
            }
        );
        // A caption is text.
        assert_eq!(
            whatsapp(&[("Body", "the label is torn"), ("NumMedia", "1")]).content,
            Content::Text {
                text: "the label is torn".into()
            }
        );
        assert_eq!(
            whatsapp(&[("Latitude", "52.37"), ("Longitude", "4.89"), ("Body", "")]).content,
            Content::Unsupported {
                what: "location".into()
            }
        );
        assert_eq!(
            whatsapp(&[]).content,
            Content::Unsupported {
                what: "empty".into()
            }
        );
    }

    #[test]
    fn status_callbacks_give_nothing() {
        let body = form(&[
            ("MessageSid", "SM0000000000000000000000000000002"),
            ("MessageStatus", "delivered"),
            ("From", "+15557778888"),
            ("To", "+15550001111"),
        ]);
        assert_eq!(normalise(&body).unwrap(), []);
    }

    #[test]
    fn other_senders_and_broken_forms() {
        let m = normalise(&form(&[
            ("MessageSid", "SM1"),
            ("From", "messenger:1234"),
            ("Body", "hi"),
        ]))
        .unwrap()
        .pop()
        .unwrap();
        assert_eq!(m.phone, None);
        assert_eq!(m.business, None);
        for (pairs, want) in [
            (
                vec![("From", "+1555"), ("Body", "x")],
                ChannelParseError::Missing("MessageSid"),
            ),
            (
                vec![("MessageSid", "SM1"), ("Body", "x")],
                ChannelParseError::Missing("From"),
            ),
            (
                vec![("MessageSid", "SM1"), ("From", "+1 555")],
                ChannelParseError::Invalid("From"),
            ),
            (
                vec![("MessageSid", "SM1"), ("From", "+1555"), ("To", "")],
                ChannelParseError::Invalid("To"),
            ),
            (
                vec![
                    ("MessageSid", "SM1"),
                    ("From", "+1555"),
                    ("NumMedia", "many"),
                ],
                ChannelParseError::Invalid("NumMedia"),
            ),
        ] {
            assert_eq!(normalise(&form(&pairs)), Err(want.clone()), "{want}");
        }
        assert!(matches!(
            normalise(&vec![b'a'; super::super::message::MAX_BODY + 1]),
            Err(ChannelParseError::TooLarge { .. })
        ));
    }

    #[test]
    fn replies_are_numbered_text_in_parts() {
        let qr = [
            QuickReply {
                label: "Refund".into(),
                value: "refund".into(),
            },
            QuickReply {
                label: "Replacement".into(),
                value: "replace".into(),
            },
        ];
        let calls = render(
            "+15550001111",
            Some("+15557778888"),
            &Outgoing {
                text: "What would you prefer?",
                quick_replies: &qr,
            },
        );
        assert_eq!(
            calls,
            vec![vec![
                ("To", json!("+15550001111")),
                ("From", json!("+15557778888")),
                (
                    "Body",
                    json!("What would you prefer?\n\n1. Refund\n2. Replacement")
                ),
            ]]
        );
        let long = "Our returns policy, in full. ".repeat(100);
        let calls = render(
            "+1",
            None,
            &Outgoing {
                text: &long,
                quick_replies: &[],
            },
        );
        assert_eq!(calls.len(), 2);
        for c in &calls {
            assert_eq!(c.len(), 2, "no From without a business");
            assert!(text_len(c[1].1.as_str().unwrap()) <= 1600);
        }
    }
}
