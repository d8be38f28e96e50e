//! jsonwebtoken's cryptography on `ring`, installed for the process by [`install`].
//!
//! Why not the crate's own `rust_crypto` backend: size and an advisory. It links rsa (with
//! num-bigint-dig), p256, p384, ed25519-dalek, curve25519-dalek and their PKCS/DER crates, about
//! 350 KB of arm64 code in every function for three algorithms (issue 24); and rsa carries
//! RUSTSEC-2023-0071 (Marvin: timing leaks in private-key operations, no fixed release), which
//! every audit reports although the functions only verify. `ring` is in every binary anyway:
//! rustls uses it for TLS.
//!
//! Exactly what Switchboard uses, nothing more:
//! - verifies HS256 (the shared-secret mode), RS256 and ES256 (the JWKS mode, `auth`);
//! - signs HS256 (dev tokens), and for the tests also RS256, ES256 and the algorithms the
//!   verifier must refuse (HS384, RS384, PS256);
//! - the JWK helpers: an RSA private key's n and e and a P-256 key's x and y
//!   (`Jwk::from_encoding_key`, in tests), the SHA-2 digests of thumbprints.
//!
//! Anything else is jsonwebtoken's error, never a panic. RSA keys are 2048 to 8192 bits (ring's
//! limits): smaller keys are refused, for verifying and signing alike.

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::{new_error, Error, ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaEncoding, RsaKeyPair, RsaPublicKeyComponents, UnparsedPublicKey,
};
use ring::{digest, hmac, rand};

/// Switchboard's provider; [`install`] makes it the process's.
pub static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    jwk_utils: JwkUtils {
        extract_rsa_public_key_components: rsa_public_components,
        extract_ec_public_key_coordinates: ec_public_coordinates,
        compute_digest,
    },
};

/// Makes [`PROVIDER`] jsonwebtoken's for this process. Call it before anything signs or
/// verifies a token: jsonwebtoken fixes its provider at the first use, and without a backend
/// feature its fallback panics. Every `JwtVerifier` constructor and `DevClaims::sign` call it.
pub fn install() {
    // `install_default` fails once a provider is installed: by an earlier call of this function
    // (every constructor calls it), so the provider in place is this one and the error is
    // nothing to act on.
    let _ = PROVIDER.install_default();
}

fn unsupported(alg: &Algorithm) -> Error {
    new_error(ErrorKind::Provider(format!(
        "{alg:?} is not supported (Switchboard's ring provider verifies HS256, RS256 and ES256)"
    )))
}

/// A key of the wrong family for the algorithm, as jsonwebtoken's own backends answer.
fn check_family(alg: &Algorithm, family: AlgorithmFamily) -> Result<()> {
    if alg.family() == family {
        Ok(())
    } else {
        Err(new_error(ErrorKind::InvalidKeyFormat))
    }
}

/// RSASSA padding for signing; RS384 and PS256 only so tests can mint what must be refused.
fn rsa_padding(alg: &Algorithm) -> Option<&'static dyn RsaEncoding> {
    match alg {
        Algorithm::RS256 => Some(&ring::signature::RSA_PKCS1_SHA256),
        Algorithm::RS384 => Some(&ring::signature::RSA_PKCS1_SHA384),
        Algorithm::PS256 => Some(&ring::signature::RSA_PSS_SHA256),
        _ => None,
    }
}

enum SigningKey {
    Hmac(hmac::Key),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
    Ecdsa(EcdsaKeyPair),
}

struct Signer {
    alg: Algorithm,
    key: SigningKey,
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let key = match alg {
        Algorithm::HS256 => SigningKey::Hmac(hmac::Key::new(
            hmac::HMAC_SHA256,
            key.try_get_hmac_secret()?,
        )),
        Algorithm::HS384 => SigningKey::Hmac(hmac::Key::new(
            hmac::HMAC_SHA384,
            key.try_get_hmac_secret()?,
        )),
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::PS256 => {
            check_family(alg, key.family())?;
            // PKCS#1 RSAPrivateKey DER, as `EncodingKey::from_rsa_der` holds it.
            let pair = RsaKeyPair::from_der(key.inner())
                .map_err(|e| new_error(ErrorKind::InvalidRsaKey(e.to_string())))?;
            SigningKey::Rsa(pair, rsa_padding(alg).ok_or_else(|| unsupported(alg))?)
        }
        Algorithm::ES256 => {
            check_family(alg, key.family())?;
            // PKCS#8 DER, as `EncodingKey::from_ec_der` holds it.
            let pair = EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.inner(),
                &rand::SystemRandom::new(),
            )
            .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
            SigningKey::Ecdsa(pair)
        }
        _ => return Err(unsupported(alg)),
    };
    Ok(Box::new(Signer { alg: *alg, key }))
}

impl signature::Signer<Vec<u8>> for Signer {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        match &self.key {
            SigningKey::Hmac(key) => Ok(hmac::sign(key, msg).as_ref().to_vec()),
            SigningKey::Rsa(pair, padding) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(*padding, &rand::SystemRandom::new(), msg, &mut sig)
                    .map_err(|_| signature::Error::new())?;
                Ok(sig)
            }
            // JWS's ES256 signature is r || s, 32 bytes each (RFC 7518 section 3.4).
            SigningKey::Ecdsa(pair) => pair
                .sign(&rand::SystemRandom::new(), msg)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
        }
    }
}

impl JwtSigner for Signer {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

enum VerifyingKey {
    Hmac(hmac::Key),
    /// Modulus and exponent, big-endian without leading zeros (a JWK's `n` and `e`).
    RsaComponents {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// PKCS#1 RSAPublicKey DER (`DecodingKey::from_rsa_der`).
    RsaDer(Vec<u8>),
    /// The uncompressed point 0x04 || x || y (`DecodingKey::from_ec_components`, from a JWK).
    P256(Vec<u8>),
}

struct Verifier {
    alg: Algorithm,
    key: VerifyingKey,
}

/// The RSA key sizes verified (ring's `RSA_PKCS1_2048_8192_SHA256`): a key set's other RSA
/// keys are skipped when it is read, with the reason logged.
pub const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

/// The bit length of an RSA modulus given big-endian (leading zero octets allowed).
pub fn modulus_bits(n: &[u8]) -> usize {
    let n = &n[n.iter().position(|&b| b != 0).unwrap_or(n.len())..];
    n.first()
        .map_or(0, |&top| 8 * n.len() - top.leading_zeros() as usize)
}

/// RFC 7518 asks for `n` and `e` in the fewest octets, and ring refuses a leading zero; some
/// key sets carry one anyway, and it changes nothing about the number.
fn minimal(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let key = match alg {
        Algorithm::HS256 => VerifyingKey::Hmac(hmac::Key::new(
            hmac::HMAC_SHA256,
            key.try_get_hmac_secret()?,
        )),
        Algorithm::RS256 => {
            check_family(alg, key.family())?;
            match key.kind() {
                DecodingKeyKind::RsaModulusExponent { n, e } => VerifyingKey::RsaComponents {
                    n: minimal(n),
                    e: minimal(e),
                },
                DecodingKeyKind::SecretOrDer(der) => VerifyingKey::RsaDer(der.clone()),
            }
        }
        Algorithm::ES256 => {
            check_family(alg, key.family())?;
            match key.kind() {
                DecodingKeyKind::SecretOrDer(point) => VerifyingKey::P256(point.clone()),
                DecodingKeyKind::RsaModulusExponent { .. } => {
                    return Err(new_error(ErrorKind::InvalidKeyFormat))
                }
            }
        }
        _ => return Err(unsupported(alg)),
    };
    Ok(Box::new(Verifier { alg: *alg, key }))
}

impl signature::Verifier<Vec<u8>> for Verifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let rs256 = &ring::signature::RSA_PKCS1_2048_8192_SHA256;
        match &self.key {
            // Constant time.
            VerifyingKey::Hmac(key) => hmac::verify(key, msg, sig),
            VerifyingKey::RsaComponents { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(rs256, msg, sig)
            }
            VerifyingKey::RsaDer(der) => UnparsedPublicKey::new(rs256, der).verify(msg, sig),
            VerifyingKey::P256(point) => {
                UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
            }
        }
        .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for Verifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// `Jwk::from_encoding_key` for RSA: n and e of a PKCS#1 private key.
fn rsa_public_components(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = RsaKeyPair::from_der(der)
        .map_err(|e| new_error(ErrorKind::InvalidRsaKey(e.to_string())))?;
    let public: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
    Ok((public.n, public.e))
}

/// `Jwk::from_encoding_key` for EC: x and y of a P-256 PKCS#8 private key (ES256 only).
fn ec_public_coordinates(der: &[u8], alg: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    if alg != Algorithm::ES256 {
        return Err(new_error(ErrorKind::InvalidEcdsaKey));
    }
    let pair = EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        der,
        &rand::SystemRandom::new(),
    )
    .map_err(|_| new_error(ErrorKind::InvalidEcdsaKey))?;
    // Uncompressed: 0x04 || x || y.
    match pair.public_key().as_ref() {
        [0x04, xy @ ..] if xy.len() == 64 => {
            let (x, y) = xy.split_at(32);
            Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
        }
        _ => Err(new_error(ErrorKind::InvalidEcdsaKey)),
    }
}

/// A JWK thumbprint's hash (RFC 7638).
fn compute_digest(data: &[u8], hash: ThumbprintHash) -> Vec<u8> {
    let alg = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
    };
    digest::digest(alg, data).as_ref().to_vec()
}

#[cfg(test)]
mod tests;
