//! JWT sign and verify with jsonwebtoken's `aws_lc_rs` backend, beside aws-lc-rs's own
//! `hmac` and `signature` on the same input. The backend is process-wide, so the
//! `rust_crypto` backend has its own binary (`jwt_rust_crypto`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use aws_lc_rs::{
    hmac,
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
        ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, UnparsedPublicKey,
        VerificationAlgorithm,
    },
};
use benches::ids;
use common::jwt::{Material, Primitive};
use jwt_server::keys::Alg;

enum Signer {
    // Boxed: an HMAC key holds its precomputed state inline (over a kilobyte).
    Hmac(Box<hmac::Key>),
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

struct AwsLc {
    alg: Alg,
    private: Vec<u8>,
    signer: Signer,
    /// Public key bytes exactly as jwt-server hands them to `DecodingKey` (PKCS#1 RSA
    /// key, uncompressed P-256 point, raw Ed25519 key); `None` for HMAC.
    public: Option<(Vec<u8>, &'static dyn VerificationAlgorithm, ParsedPublicKey)>,
}

fn parse_signer(alg: Alg, private: &[u8]) -> Signer {
    match alg {
        Alg::Hs256 => Signer::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private))),
        Alg::Rs256 => Signer::Rsa(RsaKeyPair::from_pkcs8(private).expect("RSA key")),
        Alg::Es256 => {
            Signer::Ecdsa(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private).expect("P-256 key"))
        }
        Alg::EdDsa => Signer::Ed25519(Ed25519KeyPair::from_pkcs8(private).expect("Ed25519 key")),
    }
}

fn sign_with(signer: &Signer, msg: &[u8]) -> Vec<u8> {
    let rng = SystemRandom::new();
    match signer {
        Signer::Hmac(key) => hmac::sign(key, msg).as_ref().to_vec(),
        Signer::Rsa(pair) => {
            let mut out = vec![0; pair.public_modulus_len()];
            pair.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut out).expect("RSA sign");
            out
        }
        Signer::Ecdsa(pair) => pair.sign(&rng, msg).expect("ECDSA sign").as_ref().to_vec(),
        Signer::Ed25519(pair) => pair.sign(msg).as_ref().to_vec(),
    }
}

fn primitive(m: &Material) -> Box<dyn Primitive> {
    let signer = parse_signer(m.alg, &m.private);
    let public = match &signer {
        Signer::Hmac(_) => None,
        Signer::Rsa(pair) => Some((pair.public_key().as_ref().to_vec(), &RSA_PKCS1_2048_8192_SHA256 as _)),
        Signer::Ecdsa(pair) => Some((pair.public_key().as_ref().to_vec(), &ECDSA_P256_SHA256_FIXED as _)),
        Signer::Ed25519(pair) => Some((pair.public_key().as_ref().to_vec(), &ED25519 as _)),
    };
    let public = public.map(|(bytes, alg): (Vec<u8>, &'static dyn VerificationAlgorithm)| {
        let parsed = ParsedPublicKey::new(alg, &bytes).expect("public key");
        (bytes, alg, parsed)
    });
    Box::new(AwsLc { alg: m.alg, private: m.private.clone(), signer, public })
}

impl Primitive for AwsLc {
    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        sign_with(&self.signer, msg)
    }

    fn sign_key_parse(&self, msg: &[u8]) -> Vec<u8> {
        sign_with(&parse_signer(self.alg, &self.private), msg)
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match (&self.signer, &self.public) {
            (Signer::Hmac(key), _) => hmac::verify(key, msg, sig).is_ok(),
            (_, Some((_, _, parsed))) => parsed.verify_sig(msg, sig).is_ok(),
            (_, None) => false,
        }
    }

    fn verify_key_parse(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.public {
            None => hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &self.private), msg, sig).is_ok(),
            Some((bytes, alg, _)) => UnparsedPublicKey::new(*alg, bytes).verify(msg, sig).is_ok(),
        }
    }
}

fn main() {
    // The server's own choice (it picks aws-lc-rs explicitly, since `cargo bench` turns on
    // both of jsonwebtoken's backends); then check that it is the one in use.
    jwt_server::keys::install_crypto_provider();
    common::jwt::ensure_provider(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER, ids::AWS_LC);
    let mut c = common::criterion();
    common::jwt::run(&mut c, ids::AWS_LC, primitive);
    c.final_summary();
}
