//! Attack tokens against the running chat function: each is refused with a 401 problem and
//! nothing is written for the customer it names. The stack runs in HS256 mode with its issuer and
//! audience checked (dev/stack.py); the JWKS mode's own attacks are unit tests in shared/src/auth.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use switchboard_it::{Reply, Stack};

/// A key the stack has never seen (test-only, shared/tests/keys/README.md).
const FRESH_RSA_DER: &[u8] = include_bytes!("../shared/tests/keys/rsa_other_private.der");
const RSA_PUBLIC_PEM: &str = include_str!("../shared/tests/keys/rsa_public.pem");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn assert_401_problem(name: &str, r: &Reply) {
    assert_eq!(r.status, 401, "{name}: {}", r.body);
    assert_eq!(r.content_type, "application/problem+json", "{name}");
    assert_eq!(r.body["status"], 401, "{name}");
    assert!(
        r.body["type"].is_string() && r.body["title"].is_string() && r.body["detail"].is_string(),
        "{name}: {}",
        r.body
    );
}

#[tokio::test]
async fn attack_tokens_get_401_and_nothing_is_written() {
    let stack = Stack::connect().await;
    assert!(
        std::env::var("JWT_ISSUER").is_ok() && std::env::var("JWT_AUDIENCE").is_ok(),
        "the local stack checks issuer and audience (dev/stack.py sets JWT_ISSUER, JWT_AUDIENCE)"
    );
    // Each mints its token for the customer it names.
    type Minter<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let attacks: Vec<(&str, Minter)> = vec![
        (
            "forged key",
            Box::new(|who| {
                stack
                    .claims(who)
                    .sign_hs256(b"not-the-stack-key-not-the-stack-key")
            }),
        ),
        ("expired", Box::new(|who| stack.expired_token(who))),
        (
            "not yet valid",
            Box::new(|who| stack.sign(&stack.claims(who).not_before_in(600))),
        ),
        (
            "wrong audience",
            Box::new(|who| stack.sign(&stack.claims(who).audience("someone-else"))),
        ),
        (
            "wrong issuer",
            Box::new(|who| stack.sign(&stack.claims(who).issuer("https://evil.example"))),
        ),
        (
            "alg none",
            Box::new(|who| {
                let head = json!({"alg": "none", "typ": "JWT"}).to_string();
                let claims = stack.claims(who).to_json().to_string();
                format!("{}.{}.", b64(head.as_bytes()), b64(claims.as_bytes()))
            }),
        ),
        (
            "RS256 signed with a fresh key",
            Box::new(|who| {
                let mut head = Header::new(Algorithm::RS256);
                head.kid = Some("attacker".into());
                stack
                    .claims(who)
                    .sign(&head, &EncodingKey::from_rsa_der(FRESH_RSA_DER))
                    .unwrap()
            }),
        ),
        (
            "HS256 keyed with an RSA public key",
            Box::new(|who| stack.claims(who).sign_hs256(RSA_PUBLIC_PEM.as_bytes())),
        ),
        (
            "HS256 with an empty signature",
            Box::new(|who| {
                let valid = stack.token(who);
                format!("{}.", valid.rsplit_once('.').unwrap().0)
            }),
        ),
        ("garbage", Box::new(|_| "not.a.jwt".into())),
    ];
    for (name, attack) in &attacks {
        let who = Stack::fresh_customer("cust_attack");
        let r = stack
            .post(
                &attack(&who),
                json!({ "text": "where is my order", "client_message_id": "attack-1" }),
            )
            .await;
        assert_401_problem(name, &r);

        // The customer the token named has nothing stored.
        let r = stack
            .get(Some(&stack.token(&who)), "/v1/conversations")
            .await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.body["conversations"], json!([]), "{name}");
    }
}
