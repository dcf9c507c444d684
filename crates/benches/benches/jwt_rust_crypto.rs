//! JWT sign and verify with jsonwebtoken's `rust_crypto` backend, beside the RustCrypto
//! crates it is built on (`hmac`+`sha2`, `rsa`, `p256`, `ed25519-dalek`) on the same
//! input. The backend is installed first thing, before jwt-server (which would pick
//! aws-lc-rs) touches a key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use benches::ids;
use common::jwt::{Material, Primitive};
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use jwt_server::keys::Alg;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use rsa::{
    PrivateKey as RsaPrivateKey, PublicKey as RsaPublicKey,
    pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _, EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _},
    pkcs1v15,
    signature::SignatureEncoding as _,
};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Keys parsed once, plus the encodings jsonwebtoken parses per call: the HMAC secret, a
/// PKCS#1 RSA private key (jsonwebtoken keeps PKCS#1 and parses it per signature), PKCS#8
/// for P-256 and Ed25519, and the public keys as jwt-server hands them to `DecodingKey`.
enum RustCrypto {
    Hmac {
        secret: Vec<u8>,
        mac: HmacSha256,
    },
    Rsa {
        private_pkcs1: Vec<u8>,
        public_pkcs1: Vec<u8>,
        signing: pkcs1v15::SigningKey<Sha256>,
        verifying: pkcs1v15::VerifyingKey<Sha256>,
    },
    Ecdsa {
        pkcs8: Vec<u8>,
        public_sec1: Vec<u8>,
        signing: p256::ecdsa::SigningKey,
        verifying: p256::ecdsa::VerifyingKey,
    },
    Ed25519 {
        pkcs8: Vec<u8>,
        public: [u8; 32],
        signing: ed25519_dalek::SigningKey,
        verifying: ed25519_dalek::VerifyingKey,
    },
}

fn primitive(m: &Material) -> Box<dyn Primitive> {
    Box::new(match m.alg {
        Alg::Hs256 => RustCrypto::Hmac {
            secret: m.private.clone(),
            mac: HmacSha256::new_from_slice(&m.private).expect("HMAC key"),
        },
        Alg::Rs256 => {
            let private = rsa::pkcs8::DecodePrivateKey::from_pkcs8_der(&m.private).map(|k: RsaPrivateKey| k);
            let private = private.expect("RSA key");
            let public = private.to_public_key();
            RustCrypto::Rsa {
                private_pkcs1: private.to_pkcs1_der().expect("PKCS#1").as_bytes().to_vec(),
                public_pkcs1: public.to_pkcs1_der().expect("PKCS#1").as_bytes().to_vec(),
                signing: pkcs1v15::SigningKey::new(private),
                verifying: pkcs1v15::VerifyingKey::new(public),
            }
        }
        Alg::Es256 => {
            let signing = p256::ecdsa::SigningKey::from_pkcs8_der(&m.private).expect("P-256 key");
            let verifying = *signing.verifying_key();
            RustCrypto::Ecdsa {
                pkcs8: m.private.clone(),
                public_sec1: verifying.to_sec1_point(false).as_bytes().to_vec(),
                signing,
                verifying,
            }
        }
        Alg::EdDsa => {
            let signing = ed25519_dalek::SigningKey::from_pkcs8_der(&m.private).expect("Ed25519 key");
            let verifying = signing.verifying_key();
            RustCrypto::Ed25519 { pkcs8: m.private.clone(), public: verifying.to_bytes(), signing, verifying }
        }
    })
}

fn rsa_sign(key: &pkcs1v15::SigningKey<Sha256>, msg: &[u8]) -> Vec<u8> {
    // `Signer::sign`, as jsonwebtoken 12's rust_crypto backend signs.
    key.sign(msg).to_vec()
}

fn rsa_verify(key: &pkcs1v15::VerifyingKey<Sha256>, msg: &[u8], sig: &[u8]) -> bool {
    pkcs1v15::Signature::try_from(sig).is_ok_and(|s| key.verify(msg, &s).is_ok())
}

fn ecdsa_verify(key: &p256::ecdsa::VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    p256::ecdsa::Signature::from_slice(sig).is_ok_and(|s| key.verify(msg, &s).is_ok())
}

fn ed25519_verify(key: &ed25519_dalek::VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
    ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| key.verify(msg, &s).is_ok())
}

impl Primitive for RustCrypto {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            RustCrypto::Hmac { mac, .. } => mac.clone().chain_update(msg).finalize().into_bytes().to_vec(),
            RustCrypto::Rsa { signing, .. } => rsa_sign(signing, msg),
            RustCrypto::Ecdsa { signing, .. } => {
                let sig: p256::ecdsa::Signature = signing.sign(msg);
                sig.to_bytes().to_vec()
            }
            RustCrypto::Ed25519 { signing, .. } => signing.sign(msg).to_bytes().to_vec(),
        }
    }

    fn sign_key_parse(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            RustCrypto::Hmac { secret, .. } => {
                let mac = HmacSha256::new_from_slice(secret).expect("HMAC key");
                mac.chain_update(msg).finalize().into_bytes().to_vec()
            }
            RustCrypto::Rsa { private_pkcs1, .. } => {
                let key = RsaPrivateKey::from_pkcs1_der(private_pkcs1).expect("RSA key");
                rsa_sign(&pkcs1v15::SigningKey::new(key), msg)
            }
            RustCrypto::Ecdsa { pkcs8, .. } => {
                let key = p256::ecdsa::SigningKey::from_pkcs8_der(pkcs8).expect("P-256 key");
                let sig: p256::ecdsa::Signature = key.sign(msg);
                sig.to_bytes().to_vec()
            }
            RustCrypto::Ed25519 { pkcs8, .. } => {
                let key = ed25519_dalek::SigningKey::from_pkcs8_der(pkcs8).expect("Ed25519 key");
                key.sign(msg).to_bytes().to_vec()
            }
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            RustCrypto::Hmac { mac, .. } => mac.clone().chain_update(msg).verify_slice(sig).is_ok(),
            RustCrypto::Rsa { verifying, .. } => rsa_verify(verifying, msg, sig),
            RustCrypto::Ecdsa { verifying, .. } => ecdsa_verify(verifying, msg, sig),
            RustCrypto::Ed25519 { verifying, .. } => ed25519_verify(verifying, msg, sig),
        }
    }

    fn verify_key_parse(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            RustCrypto::Hmac { secret, .. } => {
                HmacSha256::new_from_slice(secret).is_ok_and(|mac| mac.chain_update(msg).verify_slice(sig).is_ok())
            }
            RustCrypto::Rsa { public_pkcs1, .. } => RsaPublicKey::from_pkcs1_der(public_pkcs1)
                .is_ok_and(|key| rsa_verify(&pkcs1v15::VerifyingKey::new(key), msg, sig)),
            RustCrypto::Ecdsa { public_sec1, .. } => {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(public_sec1).is_ok_and(|key| ecdsa_verify(&key, msg, sig))
            }
            RustCrypto::Ed25519 { public, .. } => {
                ed25519_dalek::VerifyingKey::from_bytes(public).is_ok_and(|key| ed25519_verify(&key, msg, sig))
            }
        }
    }
}

fn main() {
    // Before anything signs or verifies: jsonwebtoken fixes its backend at first use, and
    // jwt-server's `install_crypto_provider` leaves an installed one in place.
    common::jwt::ensure_provider(&jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER, ids::RUST_CRYPTO);
    let mut c = common::criterion();
    common::jwt::run(&mut c, ids::RUST_CRYPTO, primitive);
    c.final_summary();
}
