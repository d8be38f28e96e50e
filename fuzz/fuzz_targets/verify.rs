//! Fuzzes the webhook header parsers and verifiers (`switchboard::signatures`): any scheme, any
//! headers (real names and others), any secret, body and clock must give Ok or a Rejection,
//! never a panic. And for every input, a request signed as the vendor would sign it verifies,
//! and the same request with one body byte flipped does not.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard::signatures::{sign, verify, Scheme, SigningKey};

const NAMES: [&str; 13] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "stripe-signature",
    "x-hub-signature-256",
    "x-github-delivery",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-slack-signature",
    "x-slack-request-timestamp",
];

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    scheme: u8,
    secret: String,
    headers: Vec<(Name, String)>,
    body: Vec<u8>,
    now: i64,
    tolerance: u16,
    id: String,
    flip: usize,
}

fn scheme(n: u8) -> Scheme {
    match n % 5 {
        0 => Scheme::StandardWebhooks,
        1 => Scheme::Stripe,
        2 => Scheme::Github,
        3 => Scheme::Shopify,
        _ => Scheme::Slack,
    }
}

fuzz_target!(|input: Input| {
    let scheme = scheme(input.scheme);
    let Ok(key) = SigningKey::new(scheme, &input.secret) else {
        return;
    };
    let keys = vec![key.clone()];
    let tolerance = i64::from(input.tolerance);

    // Arbitrary headers: only Ok or Err, never a panic.
    let owned: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| {
            let name = match n {
                Name::Known(i) => {
                    let name = NAMES[*i as usize % NAMES.len()];
                    // Header names arrive in any case.
                    if i % 2 == 0 {
                        name.to_ascii_uppercase()
                    } else {
                        name.to_string()
                    }
                }
                Name::Other(s) => s.clone(),
            };
            (name, v.clone())
        })
        .collect();
    let headers: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let _ = verify(
        scheme,
        &keys,
        headers.as_slice(),
        &input.body,
        input.now,
        tolerance,
    );

    // Round trip: what the vendor signs verifies; one flipped byte does not. Timestamps are
    // kept where a vendor's would be (and where `now ± tolerance` cannot overflow).
    let ts = input.now.rem_euclid(4_000_000_000);
    let id: String = input.id.chars().filter(|c| c.is_ascii_graphic()).collect();
    let signed = sign(scheme, &key, &id, ts, &input.body);
    let signed: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = verify(scheme, &keys, signed.as_slice(), &input.body, ts, tolerance);
    assert!(
        ok.is_ok(),
        "{scheme:?}: a vendor-signed request was rejected: {ok:?}"
    );
    if !input.body.is_empty() {
        let mut tampered = input.body.clone();
        let at = input.flip % tampered.len();
        tampered[at] ^= 0x01;
        assert!(
            verify(scheme, &keys, signed.as_slice(), &tampered, ts, tolerance).is_err(),
            "{scheme:?}: a changed body still verified"
        );
    }
});
