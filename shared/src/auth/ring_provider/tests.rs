use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{decode, encode, Header, Validation};
use serde_json::{json, Map, Value};

use super::*;

// Test-only keys (shared/tests/keys/README.md): RSA-2048 as PKCS#1 DER, P-256 as PKCS#8 DER.
const RSA_DER: &[u8] = include_bytes!("../../../tests/keys/rsa_private.der");
const RSA_OTHER_DER: &[u8] = include_bytes!("../../../tests/keys/rsa_other_private.der");
const EC_DER: &[u8] = include_bytes!("../../../tests/keys/ec_private.der");
const HMAC_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

// Signed by OpenSSL 3.0, not by ring: the claims {"sub":"cust_alice","exp":4102444800} under
// {"alg":ALG,"typ":"JWT"}, with K=shared/tests/keys and `b64url` base64url without padding:
//   HS256: openssl dgst -sha256 -mac HMAC -macopt key:0123456789abcdef0123456789abcdef -binary
//   RS256: openssl dgst -sha256 -keyform DER -sign $K/rsa_private.der -binary
//   ES256: openssl dgst -sha256 -keyform DER -sign $K/ec_private.der -binary, its DER
//          SEQUENCE { r, s } rewritten as r || s of 32 bytes each (openssl asn1parse)
const HS256_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXN0X2FsaWNlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.BZ7zeHeeUN1q-1H41gKwsGGO9pacy-kWxtwIpULrP30";
const RS256_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXN0X2FsaWNlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.YQpz8hCww7Vqkt7jOrRwR-2xpW7LH2OJDe8eSPAWS84bk6B_R5CvGqqFnxrsLuc6NVGbRAwNKHeb5n8I-4B_VpglhrYErLhTLMlQuM8GAvzP3y19_9NIetHxXxO4giMbKKX4ayXus31kNRKUkpMWexO6aMH5lIEONdf8pZfr7Tphr_BQwIRdKyMbhjPksMD_no_9uY1VK7W3n3j-jQc4dh2AMmnmaNn6LargqUoCJJ1LzcVEgulEhOBnA4WShzTZXhKbqfbMeYdllkXdqfO9CnNcxTsEqCUnshUyOPYlSYIMhVcd3_duseQoL-H6zFtRHF4lL9u3-paam_rYyNplDw";
const ES256_TOKEN: &str = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXN0X2FsaWNlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.BRTP9KfBEI23YyzJOYbsJku8D6CmRGtc83YxxjUTaCwbEMcjbULw35gewGj0fCAk_lTk4xZD4X0oYYZq7zWXbA";

// The public halves, as OpenSSL prints them: `openssl rsa -modulus` (n; e is 65537) and the last
// 64 bytes of `openssl pkey -pubout -outform DER` (x, y), base64url.
const RSA_N: &str = "qh-ffpesOf9Eq8plZJjLRocAB9KVS33lS9ttTDm21QgHatkCG578apGkvqf0dyBvD2aQsfsKr7UBFQk41WHUJb5JD0-MbrGAA7JWNy0ikbgq4SKBxmF91IVntky5ifwZH2lXkzNMlWn7wRiByEe-V3hdT4--gdSkBQi1a3xKVQ4lU1XvvzuPGv0VHyzUQPlz3zoRsR2acTqwHx_Fzft7W4AQwqjqumgVq5jBEoFQtoh_r3UDDHpHvEo6jEHiWqpNqsp_5Lyf6XMJlaDcG9_9AKBFm-2Y9WiPapeUzveZMh7kuM9ypv6i63TmYH_9AMC7Nj84_LAQ7343ZMAGTqfWXQ";
const RSA_E: &str = "AQAB";
const EC_X: &str = "xGZdUA7HwOO9s1xwWRpiJpj1VPhGId0SyoES3UER0q0";
const EC_Y: &str = "vb42VPQG8apvAofdItg1YARLyk5-wK_TZrMfsyExW14";
// `openssl rsa -RSAPublicKey_out -outform DER`, base64.
const RSA_PUBLIC_PKCS1: &str = "MIIBCgKCAQEAqh+ffpesOf9Eq8plZJjLRocAB9KVS33lS9ttTDm21QgHatkCG578apGkvqf0dyBvD2aQsfsKr7UBFQk41WHUJb5JD0+MbrGAA7JWNy0ikbgq4SKBxmF91IVntky5ifwZH2lXkzNMlWn7wRiByEe+V3hdT4++gdSkBQi1a3xKVQ4lU1XvvzuPGv0VHyzUQPlz3zoRsR2acTqwHx/Fzft7W4AQwqjqumgVq5jBEoFQtoh/r3UDDHpHvEo6jEHiWqpNqsp/5Lyf6XMJlaDcG9/9AKBFm+2Y9WiPapeUzveZMh7kuM9ypv6i63TmYH/9AMC7Nj84/LAQ7343ZMAGTqfWXQIDAQAB";

// An RS256 token under a fresh 1024-bit key (`openssl genrsa 1024`), and that key's n.
const RSA1024_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjdXN0X2FsaWNlIiwiZXhwIjo0MTAyNDQ0ODAwfQ.eHqLmRSN6wr4cSRktkHlt0XRT3VfuKWinw4MvxVl6P_UV3Bg30GFuXW-NY6n-NTN-nj6ykjGE8J5PifL7yRRePYPczzqOECiRtKLHewVufKmYF0XysoxCitU_v8xDRtv9F0nIvHCd63xKuxx29oovmVTiXfMiwcBiZmQafdaQVQ";
const RSA1024_N: &str = "4Ta9PiL9QLk7OiNWByT0-BdJO4S5GmBUrFwHqip4fncDcMhpMSDvKdNNaeHga8YP5TwOmbpukPoVDfWwFxy3U51ik8-OLYTRRDMyr2GRk4V2yNSiXLier7C3WD6-bv03oKlnKvwKPuOZrxPN8z7FRvq-V8p71OJn0vjelT-mgsc";

fn b64url(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .unwrap()
}

fn hs256_key() -> DecodingKey {
    DecodingKey::from_secret(HMAC_KEY)
}

fn rs256_key() -> DecodingKey {
    DecodingKey::from_rsa_components(RSA_N, RSA_E).unwrap()
}

fn es256_key() -> DecodingKey {
    DecodingKey::from_ec_components(EC_X, EC_Y).unwrap()
}

/// `header.claims` and the signature's bytes.
fn parts(token: &str) -> (&str, Vec<u8>) {
    let (message, sig) = token.rsplit_once('.').unwrap();
    (message, b64url(sig))
}

/// Whether the provider itself (not the process's) accepts the token's signature.
fn verifies(token: &str, alg: Algorithm, key: &DecodingKey) -> bool {
    let (message, sig) = parts(token);
    let verifier = (PROVIDER.verifier_factory)(&alg, key).unwrap();
    assert_eq!(verifier.algorithm(), alg);
    verifier.verify(message.as_bytes(), &sig).is_ok()
}

fn sign(alg: Algorithm, key: &EncodingKey, message: &str) -> Vec<u8> {
    let signer = (PROVIDER.signer_factory)(&alg, key).unwrap();
    assert_eq!(signer.algorithm(), alg);
    signer.try_sign(message.as_bytes()).unwrap()
}

/// The token with one bit of its signature flipped.
fn tampered(token: &str) -> String {
    let (message, mut sig) = parts(token);
    sig[7] ^= 0x01;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
    format!("{message}.{sig}")
}

#[test]
fn tokens_signed_by_openssl_verify() {
    assert!(verifies(HS256_TOKEN, Algorithm::HS256, &hs256_key()));
    assert!(verifies(RS256_TOKEN, Algorithm::RS256, &rs256_key()));
    assert!(verifies(ES256_TOKEN, Algorithm::ES256, &es256_key()));
    // The RSA key as PKCS#1 RSAPublicKey DER (`DecodingKey::from_rsa_der`).
    let der = base64::engine::general_purpose::STANDARD
        .decode(RSA_PUBLIC_PKCS1)
        .unwrap();
    assert!(verifies(
        RS256_TOKEN,
        Algorithm::RS256,
        &DecodingKey::from_rsa_der(&der)
    ));
}

#[test]
fn through_jsonwebtoken_once_installed() {
    install();
    install(); // a second call is harmless
    for (token, alg, key) in [
        (HS256_TOKEN, Algorithm::HS256, hs256_key()),
        (RS256_TOKEN, Algorithm::RS256, rs256_key()),
        (ES256_TOKEN, Algorithm::ES256, es256_key()),
    ] {
        let data = decode::<Map<String, Value>>(token, &key, &Validation::new(alg)).unwrap();
        assert_eq!(data.claims["sub"], "cust_alice", "{alg:?}");
        let err = decode::<Map<String, Value>>(tampered(token), &key, &Validation::new(alg));
        assert_eq!(
            err.unwrap_err().kind(),
            &ErrorKind::InvalidSignature,
            "{alg:?}"
        );
    }
    // And what it signs, it verifies.
    let claims = json!({"sub": "cust_bob", "exp": 4102444800u64});
    for (alg, signing, verifying) in [
        (
            Algorithm::HS256,
            EncodingKey::from_secret(HMAC_KEY),
            hs256_key(),
        ),
        (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(RSA_DER),
            rs256_key(),
        ),
        (
            Algorithm::ES256,
            EncodingKey::from_ec_der(EC_DER),
            es256_key(),
        ),
    ] {
        let token = encode(&Header::new(alg), &claims, &signing).unwrap();
        let data = decode::<Value>(&token, &verifying, &Validation::new(alg)).unwrap();
        assert_eq!(data.claims, claims, "{alg:?}");
    }
}

#[test]
fn signatures_match_openssl_where_deterministic() {
    // HMAC and RSASSA-PKCS1-v1_5 have one signature per message and key: ring's are OpenSSL's.
    for (token, alg, key) in [
        (
            HS256_TOKEN,
            Algorithm::HS256,
            EncodingKey::from_secret(HMAC_KEY),
        ),
        (
            RS256_TOKEN,
            Algorithm::RS256,
            EncodingKey::from_rsa_der(RSA_DER),
        ),
    ] {
        let (message, sig) = parts(token);
        assert_eq!(sign(alg, &key, message), sig, "{alg:?}");
    }
    // ECDSA signatures are random: r || s, 64 bytes, and they verify.
    let (message, _) = parts(ES256_TOKEN);
    let sig = sign(Algorithm::ES256, &EncodingKey::from_ec_der(EC_DER), message);
    assert_eq!(sig.len(), 64);
    let verifier = (PROVIDER.verifier_factory)(&Algorithm::ES256, &es256_key()).unwrap();
    assert!(verifier.verify(message.as_bytes(), &sig).is_ok());
}

#[test]
fn tampered_signatures_wrong_keys_and_wrong_algorithms_are_refused() {
    // One flipped bit.
    assert!(!verifies(
        &tampered(HS256_TOKEN),
        Algorithm::HS256,
        &hs256_key()
    ));
    assert!(!verifies(
        &tampered(RS256_TOKEN),
        Algorithm::RS256,
        &rs256_key()
    ));
    assert!(!verifies(
        &tampered(ES256_TOKEN),
        Algorithm::ES256,
        &es256_key()
    ));
    // Another message under the same signature.
    let (_, sig) = RS256_TOKEN.rsplit_once('.').unwrap();
    let other = format!("{}.{sig}", parts(HS256_TOKEN).0);
    assert!(!verifies(&other, Algorithm::RS256, &rs256_key()));

    // Another key of the right type.
    let other_hmac = DecodingKey::from_secret(b"another-key-another-key-another-k");
    assert!(!verifies(HS256_TOKEN, Algorithm::HS256, &other_hmac));
    let (n, e) = rsa_public_components(RSA_OTHER_DER).unwrap();
    let other_rsa = DecodingKey::from_rsa_raw_components(&n, &e);
    assert!(!verifies(RS256_TOKEN, Algorithm::RS256, &other_rsa));
    // The P-256 generator, a valid point that is not the key.
    let g = DecodingKey::from_ec_components(
        "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU",
    )
    .unwrap();
    assert!(!verifies(ES256_TOKEN, Algorithm::ES256, &g));

    // A signature checked as another algorithm: ES256's r || s as RS256 and the reverse.
    assert!(!verifies(ES256_TOKEN, Algorithm::RS256, &rs256_key()));
    assert!(!verifies(RS256_TOKEN, Algorithm::ES256, &es256_key()));
    assert!(!verifies(HS256_TOKEN, Algorithm::ES256, &es256_key()));

    // A key of another family for the algorithm: refused before any signature is looked at.
    for (alg, key) in [
        (Algorithm::HS256, rs256_key()),
        (Algorithm::HS256, es256_key()),
        (Algorithm::RS256, hs256_key()),
        (Algorithm::RS256, es256_key()),
        (Algorithm::ES256, hs256_key()),
        (Algorithm::ES256, rs256_key()),
    ] {
        let err = (PROVIDER.verifier_factory)(&alg, &key).err().unwrap();
        assert_eq!(err.kind(), &ErrorKind::InvalidKeyFormat, "{alg:?}");
    }
    for (alg, key) in [
        (Algorithm::HS256, EncodingKey::from_rsa_der(RSA_DER)),
        (Algorithm::RS256, EncodingKey::from_secret(HMAC_KEY)),
        (Algorithm::RS256, EncodingKey::from_ec_der(EC_DER)),
        (Algorithm::ES256, EncodingKey::from_rsa_der(RSA_DER)),
    ] {
        let err = (PROVIDER.signer_factory)(&alg, &key).err().unwrap();
        assert_eq!(err.kind(), &ErrorKind::InvalidKeyFormat, "{alg:?}");
    }
    // Key bytes that are no key.
    assert!(!verifies(
        RS256_TOKEN,
        Algorithm::RS256,
        &DecodingKey::from_rsa_der(b"not a key")
    ));
    assert!(!verifies(
        ES256_TOKEN,
        Algorithm::ES256,
        &DecodingKey::from_ec_der(&[4; 65])
    ));
    for (alg, key) in [
        (Algorithm::RS256, EncodingKey::from_rsa_der(b"not a key")),
        (Algorithm::ES256, EncodingKey::from_ec_der(RSA_DER)),
    ] {
        assert!((PROVIDER.signer_factory)(&alg, &key).is_err(), "{alg:?}");
    }
}

#[test]
fn other_algorithms_are_errors_not_panics() {
    use Algorithm::*;
    let hmac = || EncodingKey::from_secret(HMAC_KEY);
    let rsa = || EncodingKey::from_rsa_der(RSA_DER);
    let ec = || EncodingKey::from_ec_der(EC_DER);
    for (alg, signing, verifying) in [
        (HS384, hmac(), hs256_key()),
        (HS512, hmac(), hs256_key()),
        (RS384, rsa(), rs256_key()),
        (RS512, rsa(), rs256_key()),
        (PS256, rsa(), rs256_key()),
        (PS384, rsa(), rs256_key()),
        (PS512, rsa(), rs256_key()),
        (ES384, ec(), es256_key()),
        (
            EdDSA,
            EncodingKey::from_ed_der(&[0; 48]),
            DecodingKey::from_ed_der(&[0; 32]),
        ),
    ] {
        let err = (PROVIDER.verifier_factory)(&alg, &verifying).err().unwrap();
        assert!(
            matches!(err.kind(), ErrorKind::Provider(m) if m.contains("not supported")),
            "{alg:?}: {err}"
        );
        // Only what the tests mint to see it refused is signed (auth/tests.rs).
        let signed = (PROVIDER.signer_factory)(&alg, &signing);
        assert_eq!(
            signed.is_ok(),
            matches!(alg, HS384 | RS384 | PS256),
            "{alg:?}"
        );
    }
    // What the tests mint is what the algorithm says: RS384 and PS256 verify with ring's own
    // verifiers (which the provider does not offer), HS384 is HMAC-SHA384.
    let (message, _) = parts(RS256_TOKEN);
    let n = b64url(RSA_N);
    let e = b64url(RSA_E);
    for (alg, params) in [
        (RS384, &ring::signature::RSA_PKCS1_2048_8192_SHA384),
        (PS256, &ring::signature::RSA_PSS_2048_8192_SHA256),
    ] {
        let sig = sign(alg, &rsa(), message);
        let public = RsaPublicKeyComponents { n: &n, e: &e };
        assert!(
            public.verify(params, message.as_bytes(), &sig).is_ok(),
            "{alg:?}"
        );
    }
    let tag = sign(HS384, &hmac(), message);
    let key = hmac::Key::new(hmac::HMAC_SHA384, HMAC_KEY);
    assert!(hmac::verify(&key, message.as_bytes(), &tag).is_ok());
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    // ring's floor (NIST's since 2013); the RustCrypto backend verified this token.
    let n = b64url(RSA1024_N);
    let e = b64url(RSA_E);
    let key = DecodingKey::from_rsa_raw_components(&n, &e);
    assert!(!verifies(RSA1024_TOKEN, Algorithm::RS256, &key));
    // The same check passes with the 2048-bit key's n, the same way (n and e as a JWK has them)
    // and with a leading zero, which ring alone would refuse.
    let mut padded = vec![0];
    padded.extend(b64url(RSA_N));
    let key = DecodingKey::from_rsa_raw_components(&padded, &e);
    assert!(verifies(RS256_TOKEN, Algorithm::RS256, &key));
}

#[test]
fn jwk_helpers_agree_with_openssl() {
    let (n, e) = rsa_public_components(RSA_DER).unwrap();
    assert_eq!((n, e), (b64url(RSA_N), b64url(RSA_E)));
    let (curve, x, y) = ec_public_coordinates(EC_DER, Algorithm::ES256).unwrap();
    assert_eq!(
        (curve, x, y),
        (EllipticCurve::P256, b64url(EC_X), b64url(EC_Y))
    );

    // RFC 7638 thumbprints of the RSA key; the expected values are
    // printf '{"e":"AQAB","kty":"RSA","n":"%s"}' "$RSA_N" | openssl dgst -shaNNN -binary | b64url
    let jwk: Jwk = serde_json::from_value(json!({"kty": "RSA", "n": RSA_N, "e": RSA_E})).unwrap();
    install();
    for (hash, want) in [
        (
            ThumbprintHash::SHA256,
            "AXIC0TKHgU2-sJPifH-G-5A8m4GAKyykXoCFRc3JKK4",
        ),
        (
            ThumbprintHash::SHA384,
            "D-rptqkXRpMyd9vR-MsnrxJ7S0220G6PQadsfbKcVjGSS1tkOv44sBfV6itJL5OK",
        ),
        (
            ThumbprintHash::SHA512,
            "l7b0BquzrPq4-5SGnjUpEVynMVeucRkdzt056LB5dxbDLxHSQZ40yuAtkRCFHKMtAx5K2TpLZwfCHilr9AvJFQ",
        ),
    ] {
        assert_eq!(jwk.thumbprint(hash), want);
    }

    // Errors, not panics, for what it does not read.
    assert!(matches!(
        rsa_public_components(b"not a key").unwrap_err().kind(),
        ErrorKind::InvalidRsaKey(_)
    ));
    for (der, alg) in [
        (EC_DER, Algorithm::ES384),
        (EC_DER, Algorithm::RS256),
        (RSA_DER, Algorithm::ES256),
    ] {
        let err = ec_public_coordinates(der, alg).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidEcdsaKey, "{alg:?}");
    }
}

#[test]
fn a_modulus_is_measured_in_bits_without_its_leading_zeros() {
    assert_eq!(modulus_bits(&[]), 0);
    assert_eq!(modulus_bits(&[0, 0]), 0);
    assert_eq!(modulus_bits(&[1]), 1);
    assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
    assert_eq!(modulus_bits(&[0x01, 0xff]), 9);
    assert_eq!(modulus_bits(&vec![0xff; 256]), 2048);
}
