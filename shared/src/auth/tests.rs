use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const OTHER_KEY: &[u8] = b"another-key-another-key-another-k";
const ISS: &str = "https://id.example.test";
const AUD: &str = "switchboard-chat";

// Test-only keys (shared/tests/keys/README.md): RSA-2048 as PKCS#1 DER, P-256 as PKCS#8 DER.
const RSA_DER: &[u8] = include_bytes!("../../tests/keys/rsa_private.der");
const RSA_OTHER_DER: &[u8] = include_bytes!("../../tests/keys/rsa_other_private.der");
const RSA_PUBLIC_PEM: &str = include_str!("../../tests/keys/rsa_public.pem");
const EC_DER: &[u8] = include_bytes!("../../tests/keys/ec_private.der");

fn rsa() -> EncodingKey {
    EncodingKey::from_rsa_der(RSA_DER)
}

fn rsa_other() -> EncodingKey {
    EncodingKey::from_rsa_der(RSA_OTHER_DER)
}

fn ec() -> EncodingKey {
    EncodingKey::from_ec_der(EC_DER)
}

/// The public key's SubjectPublicKeyInfo DER, as an attacker would find it.
fn rsa_public_der() -> Vec<u8> {
    let b64: String = RSA_PUBLIC_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// The public JWK of a private key, as the identity provider publishes it.
fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    // The first JWT call of some tests: n, e, x and y come from the provider.
    ring_provider::install();
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    serde_json::to_value(jwk).unwrap()
}

fn claims(sub: &str) -> DevClaims {
    DevClaims::new(sub).issuer(ISS).audience(AUD)
}

fn signed(claims: &DevClaims, alg: Algorithm, kid: Option<&str>, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    claims.sign(&header, key).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.` with no signature: what an `alg: none` token looks like.
fn unsigned(header: Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// An HMAC-SHA256 token keyed with arbitrary bytes (e.g. a public key).
fn hs256_with(key: &[u8], kid: Option<&str>, claims: &DevClaims) -> String {
    signed(
        claims,
        Algorithm::HS256,
        kid,
        &EncodingKey::from_secret(key),
    )
}

/// Customers' tokens without a tenant claim belong to the default tenant (`JWT_DEFAULT_TENANT`
/// set, as the local stack does): the verifiers of tests about something else.
fn single_tenant(v: JwtVerifier) -> JwtVerifier {
    v.with_claim_names(ClaimNames {
        default_tenant: Some(DEFAULT_TENANT.into()),
        ..ClaimNames::default()
    })
}

/// The 401 detail, or the status and message of another error.
async fn check(v: &JwtVerifier, token: &str) -> Result<Principal, String> {
    v.verify_header(Some(&format!("Bearer {token}")))
        .await
        .map_err(|e| match e {
            ApiError::Unauthorized(m) => m,
            other => format!("{} {other}", other.status()),
        })
}

const INVALID: Result<(), &str> = Err("invalid token");

#[tokio::test]
async fn hs256_attack_table() {
    let v = single_tenant(JwtVerifier::hs256(KEY, Some(ISS), Some(AUD)));
    let alice = || claims("cust_alice");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let raw = |c: Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(KEY),
        )
        .unwrap()
    };
    let valid = alice().sign_hs256(KEY);
    let without_signature = format!("{}.", valid.rsplit_once('.').unwrap().0);
    let cases: Vec<(&str, String, Result<(), &str>)> = vec![
        ("valid", valid.clone(), Ok(())),
        ("forged", alice().sign_hs256(OTHER_KEY), INVALID),
        (
            "expired",
            alice().expires_in(-3600).sign_hs256(KEY),
            Err("token expired"),
        ),
        (
            "expired within the leeway",
            alice().expires_in(-30).sign_hs256(KEY),
            Ok(()),
        ),
        (
            "expired just beyond the leeway",
            alice().expires_in(-70).sign_hs256(KEY),
            Err("token expired"),
        ),
        (
            "no exp",
            raw(json!({"sub": "cust_alice", "iss": ISS, "aud": AUD})),
            INVALID,
        ),
        (
            "exp not a number",
            raw(json!({"sub": "cust_alice", "iss": ISS, "aud": AUD, "exp": "tomorrow"})),
            INVALID,
        ),
        (
            "nbf in the future",
            alice().not_before_in(300).sign_hs256(KEY),
            Err("token not yet valid"),
        ),
        (
            "nbf within the leeway",
            alice().not_before_in(30).sign_hs256(KEY),
            Ok(()),
        ),
        (
            "wrong audience",
            alice().audience("someone-else").sign_hs256(KEY),
            INVALID,
        ),
        (
            "audience among several",
            alice().claim("aud", json!(["other", AUD])).sign_hs256(KEY),
            Ok(()),
        ),
        (
            "no audience",
            raw(json!({"sub": "cust_alice", "iss": ISS, "exp": now + 60})),
            INVALID,
        ),
        (
            "no aud but the client_id (Cognito access token)",
            raw(json!({"sub": "cust_alice", "iss": ISS, "client_id": AUD, "exp": now + 60})),
            Ok(()),
        ),
        (
            "aud wins over client_id",
            raw(json!({"sub": "c", "iss": ISS, "aud": "x", "client_id": AUD, "exp": now + 60})),
            INVALID,
        ),
        (
            "wrong issuer",
            alice().issuer("https://evil.example").sign_hs256(KEY),
            INVALID,
        ),
        (
            "no issuer",
            raw(json!({"sub": "cust_alice", "aud": AUD, "exp": now + 60})),
            INVALID,
        ),
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "JWT"}), &alice().to_json()),
            INVALID,
        ),
        (
            "alg None with the HS signature kept",
            format!(
                "{}{}",
                unsigned(json!({"alg": "None"}), &alice().to_json()),
                valid.rsplit_once('.').unwrap().1
            ),
            INVALID,
        ),
        (
            "RS256 signed with a real key",
            signed(&alice(), Algorithm::RS256, None, &rsa()),
            INVALID,
        ),
        (
            "ES256 signed with a real key",
            signed(&alice(), Algorithm::ES256, None, &ec()),
            INVALID,
        ),
        (
            "HS384 with the right key",
            signed(
                &alice(),
                Algorithm::HS384,
                None,
                &EncodingKey::from_secret(KEY),
            ),
            INVALID,
        ),
        ("HS256 with an empty signature", without_signature, INVALID),
        ("garbage", "not.a.jwt".into(), INVALID),
        ("two parts", "abc.def".into(), INVALID),
        ("empty", "".into(), INVALID),
        ("huge", "a".repeat(20_000), INVALID),
        (
            "subject that could break keys",
            claims("a#b").sign_hs256(KEY),
            Err("token subject or tenant is malformed"),
        ),
        (
            "no subject",
            raw(json!({"iss": ISS, "aud": AUD, "exp": now + 60})),
            INVALID,
        ),
        (
            "tenant that could break keys",
            alice().tenant("acme#T").sign_hs256(KEY),
            Err("token subject or tenant is malformed"),
        ),
        (
            "tenant not a string",
            alice().claim("tenant", 7).sign_hs256(KEY),
            Err("token subject or tenant is malformed"),
        ),
    ];
    for (name, token, want) in cases {
        let got = check(&v, &token).await;
        match want {
            Ok(()) => assert!(got.is_ok(), "{name}: {got:?}"),
            Err(detail) => assert_eq!(got.err().as_deref(), Some(detail), "{name}"),
        }
    }
}

#[tokio::test]
async fn header_must_be_a_bearer_token() {
    let v = JwtVerifier::hs256(KEY, None, None);
    let t = dev_token(KEY, "cust_1", Some("acme"), 60);
    let p = v.verify_header(Some(&format!("bearer {t}"))).await.unwrap();
    assert_eq!(p, Principal::customer("acme", "cust_1"));
    for header in [None, Some("Basic abc"), Some(t.as_str())] {
        assert!(matches!(
            v.verify_header(header).await,
            Err(ApiError::Unauthorized(_))
        ));
    }
}

#[tokio::test]
async fn without_configured_issuer_and_audience_any_are_accepted() {
    let v = single_tenant(JwtVerifier::hs256(KEY, None, None));
    let t = DevClaims::new("cust_1")
        .issuer("whoever")
        .audience("whatever")
        .sign_hs256(KEY);
    assert!(check(&v, &t).await.is_ok());
}

#[test]
fn claims_become_a_principal() {
    let plain = ClaimNames {
        default_tenant: Some("default".into()),
        ..ClaimNames::default()
    };
    let cognito = ClaimNames {
        tenant: "custom:tenant".into(),
        role: "cognito:groups".into(),
        default_tenant: Some("default".into()),
    };
    use Role::*;
    let cases: Vec<(&str, Value, &ClaimNames, (&str, Role))> = vec![
        ("nothing", json!({}), &plain, ("default", Customer)),
        (
            "null tenant",
            json!({"tenant": null}),
            &plain,
            ("default", Customer),
        ),
        (
            "tenant and role",
            json!({"tenant": "acme", "role": "agent"}),
            &plain,
            ("acme", Agent),
        ),
        (
            "admin",
            json!({"tenant": "acme", "role": "admin"}),
            &plain,
            ("acme", Admin),
        ),
        (
            "strongest of an array",
            json!({"tenant": "acme", "role": ["customer", "admin", "agent"]}),
            &plain,
            ("acme", Admin),
        ),
        (
            "unknown values ignored",
            json!({"tenant": "acme", "role": ["ops", "agent", 3]}),
            &plain,
            ("acme", Agent),
        ),
        (
            "unknown role",
            json!({"role": "superuser"}),
            &plain,
            ("default", Customer),
        ),
        (
            "case matters",
            json!({"role": "Admin"}),
            &plain,
            ("default", Customer),
        ),
        (
            "not a string",
            json!({"role": 42}),
            &plain,
            ("default", Customer),
        ),
        (
            "empty array",
            json!({"role": []}),
            &plain,
            ("default", Customer),
        ),
        (
            "Cognito names",
            json!({"custom:tenant": "acme", "cognito:groups": ["Staff", "agent"]}),
            &cognito,
            ("acme", Agent),
        ),
        (
            "renamed: the default names mean nothing",
            json!({"tenant": "acme", "role": "admin"}),
            &cognito,
            ("default", Customer),
        ),
    ];
    for (name, mut claims, names, (tenant, role)) in cases {
        claims["sub"] = "user_1".into();
        let p = principal(claims.as_object().unwrap(), names).unwrap();
        assert_eq!(
            (p.tenant.as_str(), p.role, p.customer_id.as_str()),
            (tenant, role, "user_1"),
            "{name}"
        );
    }
}

#[test]
fn staff_tokens_without_a_tenant_are_refused() {
    let single = ClaimNames {
        default_tenant: Some("default".into()),
        ..ClaimNames::default()
    };
    for claims in [
        json!({"sub": "agent_1", "role": "agent"}),
        json!({"sub": "root", "role": ["admin"], "tenant": null}),
    ] {
        for names in [&ClaimNames::default(), &single] {
            let (why, _) = principal(claims.as_object().unwrap(), names).unwrap_err();
            assert!(why.contains("must name their tenant"), "{why}");
        }
    }
}

#[test]
fn a_customer_without_a_tenant_gets_the_default_one_only_if_configured() {
    let unset = ClaimNames::default();
    let set = ClaimNames {
        default_tenant: Some("shop".into()),
        ..ClaimNames::default()
    };
    for claims in [
        json!({"sub": "cust_1"}),
        json!({"sub": "cust_1", "tenant": null}),
        json!({"sub": "cust_1", "role": "customer"}),
    ] {
        let claims = claims.as_object().unwrap();
        let (why, detail) = principal(claims, &unset).unwrap_err();
        assert!(why.contains("JWT_DEFAULT_TENANT is not set"), "{why}");
        assert_eq!(detail, "the token names no tenant (claim \"tenant\")");
        assert_eq!(
            principal(claims, &set).unwrap(),
            Principal::customer("shop", "cust_1")
        );
    }
    // A tenant in the token wins over the default.
    let named = json!({"sub": "cust_1", "tenant": "acme"});
    for names in [&unset, &set] {
        let p = principal(named.as_object().unwrap(), names).unwrap();
        assert_eq!(p.tenant, "acme");
    }
}

#[tokio::test]
async fn the_default_tenant_is_opt_in_by_configuration() {
    let secret = std::str::from_utf8(KEY).unwrap();
    let token = DevClaims::new("cust_1").sign_hs256(KEY);
    let strict = JwtVerifier::from_env(&env(&[("JWT_HS256_SECRET", secret)])).unwrap();
    assert_eq!(
        check(&strict, &token).await.unwrap_err(),
        "the token names no tenant (claim \"tenant\")"
    );
    let single = JwtVerifier::from_env(&env(&[
        ("JWT_HS256_SECRET", secret),
        ("JWT_DEFAULT_TENANT", "default"),
    ]))
    .unwrap();
    assert_eq!(
        check(&single, &token).await.unwrap(),
        Principal::customer("default", "cust_1")
    );
    for bad in ["a#b", "two words"] {
        match JwtVerifier::from_env(&env(&[
            ("JWT_HS256_SECRET", secret),
            ("JWT_DEFAULT_TENANT", bad),
        ])) {
            Err(ConfigError::Invalid { name, .. }) => assert_eq!(name, "JWT_DEFAULT_TENANT"),
            other => panic!("{bad}: {:?}", other.map(|_| ())),
        }
    }
}

use crate::config::test_env as env;

#[tokio::test]
async fn configuration_from_the_environment() {
    let secret = std::str::from_utf8(KEY).unwrap();
    type Vars<'a> = Vec<(&'a str, &'a str)>;
    let errors: Vec<(&str, Vars, &str)> = vec![
        ("neither", vec![], "JWT_JWKS_URL"),
        (
            "both",
            vec![
                ("JWT_HS256_SECRET", secret),
                ("JWT_JWKS_URL", "https://id.example/jwks.json"),
            ],
            "JWT_JWKS_URL",
        ),
        (
            "short secret",
            vec![("JWT_HS256_SECRET", "short")],
            "JWT_HS256_SECRET",
        ),
        (
            "JWKS without issuer",
            vec![
                ("JWT_JWKS_URL", "https://id.example/jwks.json"),
                ("JWT_AUDIENCE", AUD),
            ],
            "JWT_ISSUER",
        ),
        (
            "JWKS without audience",
            vec![
                ("JWT_JWKS_URL", "https://id.example/jwks.json"),
                ("JWT_ISSUER", ISS),
            ],
            "JWT_AUDIENCE",
        ),
        (
            "JWKS over plain http",
            vec![
                ("JWT_JWKS_URL", "http://id.example/jwks.json"),
                ("JWT_ISSUER", ISS),
                ("JWT_AUDIENCE", AUD),
            ],
            "JWT_JWKS_URL",
        ),
        (
            "JWKS URL not a URL",
            vec![
                ("JWT_JWKS_URL", "id.example"),
                ("JWT_ISSUER", ISS),
                ("JWT_AUDIENCE", AUD),
            ],
            "JWT_JWKS_URL",
        ),
    ];
    for (name, vars, variable) in errors {
        match JwtVerifier::from_env(&env(&vars)) {
            Err(ConfigError::Invalid { name: n, reason }) => {
                assert_eq!(n, variable, "{name}: {reason}")
            }
            Err(e) => panic!("{name}: {e}"),
            Ok(_) => panic!("{name}: accepted"),
        }
    }
    for url in [
        "https://id.example/jwks.json",
        "http://127.0.0.1:9/jwks.json",
        "http://localhost:9/jwks.json",
    ] {
        let vars = [
            ("JWT_JWKS_URL", url),
            ("JWT_ISSUER", ISS),
            ("JWT_AUDIENCE", AUD),
        ];
        assert!(JwtVerifier::from_env(&env(&vars)).is_ok(), "{url}");
    }

    let v = JwtVerifier::from_env(&env(&[
        ("JWT_HS256_SECRET", secret),
        ("JWT_ISSUER", ISS),
        ("JWT_AUDIENCE", AUD),
        ("JWT_TENANT_CLAIM", "custom:tenant"),
        ("JWT_ROLE_CLAIM", "cognito:groups"),
    ]))
    .unwrap();
    let t = claims("agent_7")
        .claim("custom:tenant", "acme")
        .claim("cognito:groups", json!(["agent"]))
        .sign_hs256(KEY);
    let p = check(&v, &t).await.unwrap();
    assert_eq!((p.tenant.as_str(), p.role), ("acme", Role::Agent));
    let no_iss = DevClaims::new("cust_1").audience(AUD).sign_hs256(KEY);
    assert_eq!(check(&v, &no_iss).await.unwrap_err(), "invalid token");
}

// JWKS mode against a real loopback HTTP server.

async fn idp(keys: Vec<Value>) -> MockServer {
    let server = MockServer::start().await;
    serve(
        &server,
        ResponseTemplate::new(200).set_body_json(json!({ "keys": keys })),
    )
    .await;
    server
}

async fn serve(server: &MockServer, response: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks.json"))
        .respond_with(response)
        .mount(server)
        .await;
}

async fn fetches(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

fn verifier(server: &MockServer, options: JwksOptions) -> JwtVerifier {
    single_tenant(JwtVerifier::jwks(
        url::Url::parse(&format!("{}/jwks.json", server.uri())).unwrap(),
        ISS,
        AUD,
        crate::connectors::engine::http_client(),
        options,
    ))
}

/// A cooldown short enough for tests to wait out.
fn quick() -> JwksOptions {
    JwksOptions {
        cooldown: Duration::from_millis(500),
        ..JwksOptions::default()
    }
}

const PAST_COOLDOWN: Duration = Duration::from_millis(600);

#[tokio::test]
async fn jwks_accepts_rs256_and_es256_and_refuses_confusion() {
    let server = idp(vec![
        jwk(&rsa(), Algorithm::RS256, "rsa-1"),
        jwk(&ec(), Algorithm::ES256, "ec-1"),
    ])
    .await;
    let v = verifier(&server, JwksOptions::default());
    v.warm_up().await;
    let agent = || claims("agent_1").tenant("acme").role(Role::Agent);

    let p = check(
        &v,
        &signed(&agent(), Algorithm::RS256, Some("rsa-1"), &rsa()),
    )
    .await
    .unwrap();
    assert_eq!(
        p,
        Principal {
            tenant: "acme".into(),
            customer_id: "agent_1".into(),
            role: Role::Agent,
            locale: None,
            verified: true,
        }
    );
    let p = check(
        &v,
        &signed(&claims("cust_2"), Algorithm::ES256, Some("ec-1"), &ec()),
    )
    .await
    .unwrap();
    assert_eq!(p, Principal::customer("default", "cust_2"));

    let c = claims("cust_1");
    let pem = RSA_PUBLIC_PEM.as_bytes();
    let der = rsa_public_der();
    let cases: Vec<(&str, String, Result<(), &str>)> = vec![
        (
            "HS256 keyed with the public PEM",
            hs256_with(pem, Some("rsa-1"), &c),
            INVALID,
        ),
        ("... without kid", hs256_with(pem, None, &c), INVALID),
        (
            "HS256 keyed with the public DER",
            hs256_with(&der, Some("rsa-1"), &c),
            INVALID,
        ),
        ("... without kid", hs256_with(&der, None, &c), INVALID),
        (
            "alg none naming a real kid",
            unsigned(json!({"alg": "none", "kid": "rsa-1"}), &c.to_json()),
            INVALID,
        ),
        (
            "RS256 naming the EC key",
            signed(&c, Algorithm::RS256, Some("ec-1"), &rsa()),
            INVALID,
        ),
        (
            "ES256 naming the RSA key",
            signed(&c, Algorithm::ES256, Some("rsa-1"), &ec()),
            INVALID,
        ),
        (
            "RS256 signed by another key under a known kid",
            signed(&c, Algorithm::RS256, Some("rsa-1"), &rsa_other()),
            INVALID,
        ),
        (
            "RS384 with the right key",
            signed(&c, Algorithm::RS384, Some("rsa-1"), &rsa()),
            INVALID,
        ),
        (
            "PS256 with the right key",
            signed(&c, Algorithm::PS256, Some("rsa-1"), &rsa()),
            INVALID,
        ),
        (
            "no kid while the set has two keys",
            signed(&c, Algorithm::RS256, None, &rsa()),
            INVALID,
        ),
        (
            "expired",
            signed(
                &c.clone().expires_in(-3600),
                Algorithm::RS256,
                Some("rsa-1"),
                &rsa(),
            ),
            Err("token expired"),
        ),
        (
            "wrong audience",
            signed(
                &c.clone().audience("other"),
                Algorithm::ES256,
                Some("ec-1"),
                &ec(),
            ),
            INVALID,
        ),
        (
            "wrong issuer",
            signed(
                &c.clone().issuer("other"),
                Algorithm::RS256,
                Some("rsa-1"),
                &rsa(),
            ),
            INVALID,
        ),
        (
            "no issuer",
            signed(
                &DevClaims::new("cust_1").audience(AUD),
                Algorithm::RS256,
                Some("rsa-1"),
                &rsa(),
            ),
            INVALID,
        ),
    ];
    for (name, token, want) in cases {
        let got = check(&v, &token).await;
        match want {
            Ok(()) => assert!(got.is_ok(), "{name}: {got:?}"),
            Err(detail) => assert_eq!(got.err().as_deref(), Some(detail), "{name}"),
        }
    }
    // Known kids, within the cooldown and the max age: the set was fetched once, at init.
    assert_eq!(fetches(&server).await, 1);
}

#[tokio::test]
async fn jwks_key_selection() {
    // One key: a token without kid means it, if the algorithm matches.
    let server = idp(vec![jwk(&rsa(), Algorithm::RS256, "rsa-1")]).await;
    let v = verifier(&server, JwksOptions::default());
    v.warm_up().await;
    let c = claims("cust_1");
    assert!(check(&v, &signed(&c, Algorithm::RS256, None, &rsa()))
        .await
        .is_ok());
    assert_eq!(
        check(&v, &signed(&c, Algorithm::ES256, None, &ec()))
            .await
            .unwrap_err(),
        "invalid token"
    );

    // A JWK whose alg contradicts its type, an encryption key, and an RSA key for another
    // algorithm are not usable: tokens naming them are refused.
    let mut enc = jwk(&rsa(), Algorithm::RS256, "enc-1");
    enc["use"] = "enc".into();
    let mut lying = jwk(&rsa(), Algorithm::RS256, "rsa-as-es");
    lying["alg"] = "ES256".into();
    let server = idp(vec![
        lying,
        enc,
        jwk(&rsa(), Algorithm::PS256, "ps-1"),
        jwk(&ec(), Algorithm::ES256, "ec-1"),
        json!({"kty": "oct", "k": b64(KEY), "kid": "hmac-1", "alg": "HS256"}),
        json!({"kty": "weird"}),
    ])
    .await;
    let v = verifier(&server, JwksOptions::default());
    v.warm_up().await;
    for (kid, alg, key) in [
        ("rsa-as-es", Algorithm::RS256, rsa()),
        ("rsa-as-es", Algorithm::ES256, ec()),
        ("enc-1", Algorithm::RS256, rsa()),
        ("ps-1", Algorithm::RS256, rsa()),
        ("ps-1", Algorithm::PS256, rsa()),
        ("hmac-1", Algorithm::HS256, EncodingKey::from_secret(KEY)),
    ] {
        let got = check(&v, &signed(&c, alg, Some(kid), &key)).await;
        assert_eq!(got.unwrap_err(), "invalid token", "{kid} {alg:?}");
    }
    // The one usable key still works, so a mixed set is not rejected as a whole.
    assert!(
        check(&v, &signed(&c, Algorithm::ES256, Some("ec-1"), &ec()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_once_so_rotation_works() {
    let server = idp(vec![jwk(&rsa(), Algorithm::RS256, "rsa-1")]).await;
    let v = verifier(&server, quick());
    v.warm_up().await;
    assert_eq!(fetches(&server).await, 1);
    tokio::time::sleep(PAST_COOLDOWN).await;

    // The provider rotates: the new key is published before tokens name it.
    serve(
        &server,
        ResponseTemplate::new(200).set_body_json(json!({"keys": [
            jwk(&rsa(), Algorithm::RS256, "rsa-1"),
            jwk(&rsa_other(), Algorithm::RS256, "rsa-2"),
        ]})),
    )
    .await;
    let c = claims("cust_1");
    let new = signed(&c, Algorithm::RS256, Some("rsa-2"), &rsa_other());
    assert!(check(&v, &new).await.is_ok());
    assert_eq!(fetches(&server).await, 1, "exactly one refetch");
    assert!(check(&v, &new).await.is_ok());
    assert!(
        check(&v, &signed(&c, Algorithm::RS256, Some("rsa-1"), &rsa()))
            .await
            .is_ok()
    );
    assert_eq!(fetches(&server).await, 1, "known kids fetch nothing");
}

#[tokio::test]
async fn a_flood_of_unknown_kids_makes_one_fetch_per_cooldown() {
    let server = idp(vec![jwk(&rsa(), Algorithm::RS256, "rsa-1")]).await;
    let v = verifier(&server, quick());
    v.warm_up().await;
    tokio::time::sleep(PAST_COOLDOWN).await;

    let flood = |round: usize| {
        let v = &v;
        futures_util::future::join_all((0..40).map(move |i| async move {
            // Unsigned: an unknown kid is refused before any signature is checked, and RSA
            // signing in a debug build would outlast the cooldown.
            let head = json!({"alg": "RS256", "kid": format!("random-{round}-{i}")});
            check(
                v,
                &format!("{}c2ln", unsigned(head, &claims("cust_1").to_json())),
            )
            .await
        }))
    };
    for got in flood(1).await {
        assert_eq!(got.unwrap_err(), "invalid token");
    }
    assert_eq!(
        fetches(&server).await,
        2,
        "the concurrent requests shared one fetch"
    );
    for got in flood(2).await {
        assert_eq!(got.unwrap_err(), "invalid token");
    }
    assert_eq!(fetches(&server).await, 2, "none within the cooldown");
    // The real key still works meanwhile.
    let ok = signed(&claims("cust_1"), Algorithm::RS256, Some("rsa-1"), &rsa());
    assert!(check(&v, &ok).await.is_ok());
}

#[tokio::test]
async fn jwks_down_at_start_is_503_until_it_comes_up() {
    let server = MockServer::start().await;
    serve(&server, ResponseTemplate::new(500)).await;
    let v = verifier(&server, quick());
    let token = signed(&claims("cust_1"), Algorithm::RS256, Some("rsa-1"), &rsa());
    v.warm_up().await;
    for _ in 0..3 {
        match v.verify_header(Some(&format!("Bearer {token}"))).await {
            Err(e @ ApiError::Unavailable { .. }) => {
                assert_eq!(e.status(), 503);
                assert!(e.retry_after().is_some_and(|s| (1..=30).contains(&s)));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(fetches(&server).await, 1, "no fetch within the cooldown");

    tokio::time::sleep(PAST_COOLDOWN).await;
    serve(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(json!({"keys": [jwk(&rsa(), Algorithm::RS256, "rsa-1")]})),
    )
    .await;
    assert!(check(&v, &token).await.is_ok());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_old_keys() {
    let server = idp(vec![jwk(&rsa(), Algorithm::RS256, "rsa-1")]).await;
    let v = verifier(&server, quick());
    v.warm_up().await;
    tokio::time::sleep(PAST_COOLDOWN).await;
    serve(&server, ResponseTemplate::new(503)).await;
    let c = claims("cust_1");
    let unknown = signed(&c, Algorithm::RS256, Some("rsa-9"), &rsa());
    assert_eq!(check(&v, &unknown).await.unwrap_err(), "invalid token");
    assert_eq!(fetches(&server).await, 1);
    assert!(
        check(&v, &signed(&c, Algorithm::RS256, Some("rsa-1"), &rsa()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn keys_past_their_max_age_are_refetched_on_the_next_request() {
    let server = idp(vec![jwk(&rsa(), Algorithm::RS256, "rsa-1")]).await;
    let v = verifier(
        &server,
        JwksOptions {
            cooldown: Duration::from_millis(50),
            max_age: Duration::from_millis(800),
            ..JwksOptions::default()
        },
    );
    let token = signed(&claims("cust_1"), Algorithm::RS256, Some("rsa-1"), &rsa());
    v.warm_up().await;
    assert!(check(&v, &token).await.is_ok());
    assert_eq!(fetches(&server).await, 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    // The provider revoked the key: after the max age it no longer verifies.
    serve(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(json!({"keys": [jwk(&rsa_other(), Algorithm::RS256, "rsa-2")]})),
    )
    .await;
    assert_eq!(check(&v, &token).await.unwrap_err(), "invalid token");
    assert_eq!(fetches(&server).await, 1);
}

#[tokio::test]
async fn oversized_or_slow_key_sets_are_refused() {
    let big = json!({"keys": [jwk(&rsa(), Algorithm::RS256, "rsa-1")], "pad": "x".repeat(70_000)});
    let slow = ResponseTemplate::new(200)
        .set_body_json(json!({"keys": [jwk(&rsa(), Algorithm::RS256, "rsa-1")]}))
        .set_delay(Duration::from_secs(5));
    let token = signed(&claims("cust_1"), Algorithm::RS256, Some("rsa-1"), &rsa());
    for (name, response) in [
        ("oversized", ResponseTemplate::new(200).set_body_json(big)),
        ("slow", slow),
        (
            "not JSON",
            ResponseTemplate::new(200).set_body_string("<html>"),
        ),
        (
            "no keys",
            ResponseTemplate::new(200).set_body_json(json!({"keys": []})),
        ),
    ] {
        let server = MockServer::start().await;
        serve(&server, response).await;
        let v = verifier(
            &server,
            JwksOptions {
                timeout: Duration::from_millis(300),
                ..JwksOptions::default()
            },
        );
        let started = Instant::now();
        v.warm_up().await;
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
        let got = v.verify_header(Some(&format!("Bearer {token}"))).await;
        assert!(
            matches!(got, Err(ApiError::Unavailable { .. })),
            "{name}: {got:?}"
        );
    }
}

#[test]
fn dev_token_still_mints_what_the_verifier_accepts() {
    let c = DevClaims::new("cust_1")
        .tenant("acme")
        .role(Role::Admin)
        .issued_for(Some(ISS), None)
        .not_before_in(-5)
        .to_json();
    assert_eq!(c["tenant"], "acme");
    assert_eq!(c["role"], "admin");
    assert_eq!(c["iss"], ISS);
    assert!(c.get("aud").is_none());
    assert!(c["nbf"].as_i64().unwrap() < c["exp"].as_i64().unwrap());
}

#[tokio::test]
async fn the_sample_events_carry_a_token_the_local_stack_accepts() {
    // dev/devtoken.py and dev/stack.py: the local key, issuer, audience and default tenant.
    let v = single_tenant(JwtVerifier::hs256(
        b"switchboard-local-development-key-do-not-deploy",
        Some("switchboard-local"),
        Some("switchboard-chat"),
    ));
    for sample in [
        include_str!("../../../events/chat-post-message.json"),
        include_str!("../../../events/chat-history.json"),
    ] {
        let event: Value = serde_json::from_str(sample).unwrap();
        let header = event["headers"]["authorization"].as_str();
        let p = v.verify_header(header).await.unwrap();
        assert_eq!(p, Principal::customer("default", "cust_alice"));
    }
}

#[test]
fn p256_keys_whose_coordinates_are_not_32_bytes_are_skipped_when_the_set_is_read() {
    // Not real points: the lengths are decided before the key is built.
    let ec = |x: &str, y: &str| json!({"kty": "EC", "use": "sig", "crv": "P-256", "x": x, "y": y});
    let (short, right, long) = (b64(&[7; 31]), b64(&[7; 32]), b64(&[9; 33]));
    assert!(signing_key(ec(&short, &right)).is_none());
    assert!(signing_key(ec(&right, &long)).is_none());
    assert!(signing_key(ec("***", &right)).is_none());
    // Padded: JWKs are base64url without padding (RFC 7515, section 2).
    assert!(signing_key(ec(&format!("{right}="), &right)).is_none());
    let key = signing_key(ec(&right, &right)).expect("kept");
    assert_eq!(key.alg, Algorithm::ES256);
}

#[test]
fn rsa_keys_the_verifier_cannot_use_are_skipped_when_the_set_is_read() {
    // Not real keys: the size is decided before the key is built. A modulus's top bit set.
    let rsa = |bytes: usize, kid: &str| {
        let mut n = vec![0xC5; bytes];
        n.insert(0, 0); // a leading zero octet changes nothing about the number
        json!({"kty": "RSA", "use": "sig", "kid": kid, "n": b64(&n), "e": "AQAB"})
    };
    assert!(signing_key(rsa(128, "1024-bit")).is_none());
    assert!(signing_key(rsa(1025, "8200-bit")).is_none());
    for (bytes, kid) in [(256, "2048-bit"), (512, "4096-bit"), (1024, "8192-bit")] {
        let key = signing_key(rsa(bytes, kid)).unwrap_or_else(|| panic!("{kid}"));
        assert_eq!(key.alg, Algorithm::RS256);
    }
}
