//! `--jwt-verifier`: who checks a token's signature for jsonwebtoken.
//!
//! jsonwebtoken asks its process-wide `CryptoProvider` for a fresh verifier on every
//! `decode`, handing it the `DecodingKey`; the stock aws-lc-rs provider parses that key
//! again each time (the HMAC key schedule; the RSA, P-256 or Ed25519 public key, copied
//! and decoded). [`Verifier::Cached`] keeps each of the server's own keys parsed for the
//! life of the process instead: a key is [registered](register) once, when the
//! [`TokenService`](crate::tokens::TokenService) is built, and every later verification
//! with exactly those key bytes and that algorithm uses the parsed form. Anything not
//! registered — [`Verifier::Stock`], or a key the server never loaded — goes to the stock
//! aws-lc-rs verifier unchanged, so nothing about *what* is accepted changes: only the
//! signature arithmetic is shared, and jsonwebtoken still does every header and claim
//! check. A rotated key is a new registration beside the old one.
//!
//! A cached service also verifies its own tokens in one pass (`TokenService::verify`):
//! a token whose header is byte for byte the header the server signs with has every
//! header check already answered, so only the signature (with the parsed key) and one
//! parse of the claims remain, under exactly jsonwebtoken's rules; any other header goes
//! through `jsonwebtoken::decode` as above. A unit test holds the two paths to the same
//! answers over edited claims and encodings, and the adversarial suites run against both
//! `--jwt-verifier` values.

use std::{
    cell::Cell,
    sync::{Arc, OnceLock, RwLock},
};

use aws_lc_rs::{hmac, signature as lc};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    crypto::{CryptoProvider, JwtSigner, JwtVerifier, aws_lc},
    errors::Result,
    signature,
};

/// How the server verifies signatures (`--jwt-verifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Verifier {
    /// jsonwebtoken's own aws-lc-rs verifier: the key parsed on every verification.
    Stock,
    /// The server's keys parsed once and kept (this module).
    #[default]
    Cached,
}

/// A key in the form the signature check needs.
pub(crate) enum Parsed {
    /// Boxed: an HMAC key holds both hash states, far larger than a parsed public key.
    Hmac(Box<hmac::Key>),
    Public(lc::ParsedPublicKey),
}

struct Entry {
    alg: Algorithm,
    key: Vec<u8>,
    parsed: Arc<Parsed>,
}

thread_local! {
    /// Set while a [`Verifier::Cached`] service decodes on this thread ([`cached`]): the
    /// provider is process-wide, the choice is per service, so the choice travels with
    /// the call. Unset, every verification is the stock one.
    static USE_CACHE: Cell<bool> = const { Cell::new(false) };
}

/// Run `decode` with registered keys verified from their parsed form (the flag is put
/// back as it was afterwards, even if `decode` panics).
pub fn cached<T>(decode: impl FnOnce() -> T) -> T {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            USE_CACHE.set(self.0);
        }
    }
    let _restore = Restore(USE_CACHE.replace(true));
    decode()
}

/// Registered keys. A handful at most (one per algorithm a process loads, plus rotations),
/// read on every verification and written once per key: a read lock over a short list.
static KEYS: RwLock<Vec<Entry>> = RwLock::new(Vec::new());

/// The verification algorithm aws-lc-rs uses for `alg` (what jsonwebtoken's aws-lc
/// provider uses), for the public-key algorithms the servers sign with.
fn public_alg(alg: Algorithm) -> Option<&'static dyn lc::VerificationAlgorithm> {
    match alg {
        Algorithm::RS256 => Some(&lc::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::ES256 => Some(&lc::ECDSA_P256_SHA256_FIXED),
        Algorithm::EdDSA => Some(&lc::ED25519),
        _ => None,
    }
}

/// Keep `key` parsed for `alg`: from now on a verification with these exact key bytes and
/// this algorithm uses the parsed key. Registering the same key twice keeps one entry.
/// Returns the parsed key, for a caller that verifies with it directly.
pub(crate) fn register(alg: Algorithm, key: &DecodingKey) -> std::result::Result<Arc<Parsed>, String> {
    let bytes = key.try_get_as_bytes().map_err(|e| format!("a {alg:?} key in a form the cache cannot hold: {e}"))?;
    let parsed = match alg {
        Algorithm::HS256 => Parsed::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, bytes))),
        _ => {
            let algorithm = public_alg(alg).ok_or_else(|| format!("no cached verifier for {alg:?}"))?;
            Parsed::Public(lc::ParsedPublicKey::new(algorithm, bytes).map_err(|e| format!("{alg:?} public key: {e}"))?)
        }
    };
    let mut keys = KEYS.write().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = keys.iter().find(|e| e.alg == alg && e.key == bytes) {
        return Ok(e.parsed.clone());
    }
    let parsed = Arc::new(parsed);
    keys.push(Entry { alg, key: bytes.to_vec(), parsed: parsed.clone() });
    Ok(parsed)
}

impl Parsed {
    /// Whether `sig` is this key's signature of `msg` (HMAC compared in constant time).
    pub(crate) fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Parsed::Hmac(key) => hmac::verify(key, msg, sig).is_ok(),
            Parsed::Public(key) => key.verify_sig(msg, sig).is_ok(),
        }
    }
}

fn lookup(alg: Algorithm, key: &DecodingKey) -> Option<Arc<Parsed>> {
    let bytes = key.try_get_as_bytes().ok()?;
    let keys = KEYS.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    keys.iter().find(|e| e.alg == alg && e.key == bytes).map(|e| e.parsed.clone())
}

struct CachedVerifier {
    alg: Algorithm,
    parsed: Arc<Parsed>,
}

impl signature::Verifier<Vec<u8>> for CachedVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        if self.parsed.verify(msg, sig) { Ok(()) } else { Err(signature::Error::new()) }
    }
}

impl JwtVerifier for CachedVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    match USE_CACHE.get().then(|| lookup(*alg, key)).flatten() {
        Some(parsed) => Ok(Box::new(CachedVerifier { alg: *alg, parsed })),
        None => (aws_lc::DEFAULT_PROVIDER.verifier_factory)(alg, key),
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    (aws_lc::DEFAULT_PROVIDER.signer_factory)(alg, key)
}

/// The provider the servers install: aws-lc-rs throughout, with registered keys verified
/// from their parsed form.
pub fn provider() -> &'static CryptoProvider {
    static PROVIDER: OnceLock<CryptoProvider> = OnceLock::new();
    PROVIDER.get_or_init(|| CryptoProvider {
        signer_factory: new_signer,
        verifier_factory: new_verifier,
        key_utils: aws_lc::DEFAULT_PROVIDER.key_utils.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Alg, keygen, load};

    /// Straight through the provider's factory, as jsonwebtoken calls it from a cached
    /// service.
    fn verifies(alg: Algorithm, key: &DecodingKey, msg: &[u8], sig: &[u8]) -> bool {
        cached(|| new_verifier(&alg, key).is_ok_and(|v| v.verify(msg, &sig.to_vec()).is_ok()))
    }

    #[test]
    fn only_a_cached_call_uses_the_cache_and_the_flag_is_put_back() {
        let key = DecodingKey::from_secret(&[9u8; 32]).unwrap();
        register(Algorithm::HS256, &key).unwrap();
        assert!(!USE_CACHE.get());
        assert!(cached(|| USE_CACHE.get()));
        assert!(!USE_CACHE.get(), "put back");
        let _ = std::panic::catch_unwind(|| cached(|| panic!("inside decode")));
        assert!(!USE_CACHE.get(), "put back after a panic too");
    }

    #[test]
    fn a_registered_key_verifies_exactly_what_the_stock_verifier_does() {
        let dir = tempfile::tempdir().unwrap();
        for alg in Alg::ALL {
            keygen(alg, dir.path(), true).unwrap();
            let keys = load(alg, dir.path()).unwrap();
            let msg = b"header.claims";
            let sig = jsonwebtoken::crypto::sign(msg, &keys.encoding, alg.jwt()).unwrap();
            let sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
            let mut bad = sig.clone();
            bad[0] ^= 1;
            let stock = |m: &[u8], s: &[u8]| {
                (aws_lc::DEFAULT_PROVIDER.verifier_factory)(&alg.jwt(), &keys.decoding)
                    .is_ok_and(|v| v.verify(m, &s.to_vec()).is_ok())
            };
            register(alg.jwt(), &keys.decoding).unwrap();
            assert!(lookup(alg.jwt(), &keys.decoding).is_some(), "{alg}: registered");
            for (m, s, want) in
                [(&msg[..], &sig[..], true), (&msg[..], &bad[..], false), (&b"header.claimz"[..], &sig[..], false)]
            {
                assert_eq!(verifies(alg.jwt(), &keys.decoding, m, s), want, "{alg}: cached");
                assert_eq!(stock(m, s), want, "{alg}: stock");
            }
            // The same key under another algorithm is not the registered entry.
            let other = if alg == Alg::Hs256 { Algorithm::HS384 } else { Algorithm::PS256 };
            assert!(lookup(other, &keys.decoding).is_none(), "{alg}: keyed by algorithm too");
        }
    }

    #[test]
    fn an_unregistered_key_goes_to_the_stock_verifier() {
        let other = DecodingKey::from_secret(&[7u8; 32]).unwrap();
        assert!(lookup(Algorithm::HS256, &other).is_none());
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32]);
        let sig = hmac::sign(&key, b"m");
        assert!(verifies(Algorithm::HS256, &other, b"m", sig.as_ref()), "stock path still verifies");
        assert!(!verifies(Algorithm::HS256, &other, b"n", sig.as_ref()));
    }
}
