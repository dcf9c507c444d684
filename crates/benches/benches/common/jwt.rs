//! The JWT suite both backends run: per algorithm, sign and verify with jsonwebtoken, with
//! the backend's raw primitive (key parsed once, and parsed per call as jsonwebtoken does)
//! and through jwt-server's own `TokenService::verify`. Only the primitives differ between
//! `jwt_aws_lc` and `jwt_rust_crypto`; they come in as a [`Primitive`].

use std::{hint::black_box, time::Duration};

use auth_core::Role;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use benches::ids::{self, jwt};
use criterion::Criterion;
use jsonwebtoken::{Header, crypto::CryptoProvider};
use jwt_server::{
    keys::{self, Alg},
    tokens::{ACCESS_TOKEN_TYP, AccessClaims, TokenConfig, TokenService},
};

/// One algorithm's key as the backend sees it: the HMAC secret, or the PKCS#8 DER of the
/// private key in jwt-server's key file.
pub struct Material {
    pub alg: Alg,
    pub private: Vec<u8>,
}

/// A backend's raw signature operations on one key.
pub trait Primitive {
    /// Sign with a key parsed once.
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
    /// Parse the private key, then sign: jsonwebtoken's backends do this on every call.
    fn sign_key_parse(&self, msg: &[u8]) -> Vec<u8>;
    /// Verify with a public key parsed once.
    fn verify(&self, msg: &[u8], signature: &[u8]) -> bool;
    /// Parse the public key, then verify: jsonwebtoken's backends do this on every call.
    fn verify_key_parse(&self, msg: &[u8], signature: &[u8]) -> bool;
}

/// Fail unless `provider` is the one jsonwebtoken uses in this process (installing it when
/// none is yet), so a result can never be labelled with the wrong backend.
pub fn ensure_provider(provider: &'static CryptoProvider, backend: &str) {
    if let Err(installed) = provider.install_default() {
        assert!(std::ptr::eq(installed, provider), "another jsonwebtoken backend than {backend} is installed");
    }
    println!("jsonwebtoken backend: {backend}");
}

pub fn run(c: &mut Criterion, backend: &str, primitive: impl Fn(&Material) -> Box<dyn Primitive>) {
    let dir = super::key_dir();
    let config = TokenConfig {
        issuer: "authbench".into(),
        audience: "authbench-api".into(),
        // Long enough that no token expires during the run; the rest are the server's defaults.
        access_ttl: Duration::from_secs(3600),
        leeway: Duration::from_secs(5),
    };
    for alg in Alg::ALL {
        let keys = keys::load(alg, dir.path()).expect("load key");
        let service = TokenService::new(keys::load(alg, dir.path()).expect("load key"), config.clone());
        let stock = TokenService::with_verifier(
            keys::load(alg, dir.path()).expect("load key"),
            config.clone(),
            jwt_server::verifier::Verifier::Stock,
        );
        let path = keys::key_path(alg, dir.path());
        let private = if alg == Alg::Hs256 { std::fs::read(&path).expect("key") } else { super::pkcs8_der(&path) };
        let prim = primitive(&Material { alg, private });

        // A token as jwt-server issues it; the header and claims it signs.
        let token = service.issue("user1", Role::User, &jwt_server::tokens::new_family_id()).expect("issue");
        let verified = service.verify(&token).expect("jwt-server verifies its own token");
        // The whole claim set it signed (verify keeps only what the request path reads).
        let claims: AccessClaims = jsonwebtoken::dangerous::insecure_decode(&token).expect("payload").claims;
        assert_eq!(
            (verified.sub.as_str(), verified.jti.as_str(), verified.exp),
            (claims.sub.as_str(), claims.jti.as_str(), claims.exp)
        );
        let mut header = Header::new(alg.jwt());
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(keys.kid.clone());
        let validation = jwt_server::tokens::validation(alg, &config);
        let (message, signature) = token.rsplit_once('.').expect("three segments");
        let (message, signature) = (message.as_bytes(), URL_SAFE_NO_PAD.decode(signature).expect("base64url"));

        // Every line below must compute the same thing; check before timing it.
        let reencoded = jsonwebtoken::encode(&header, &claims, &keys.encoding).expect("encode");
        assert_eq!(reencoded.rsplit_once('.').map(|p| p.0.as_bytes()), Some(message), "{alg}: same signing input");
        assert!(service.verify(&reencoded).is_ok(), "{alg}: jsonwebtoken's token verifies");
        assert_eq!(stock.verify(&token).expect("the stock verifier too"), verified, "{alg}: both verifiers agree");
        let decoded = jsonwebtoken::decode::<AccessClaims>(&token, &keys.decoding, &validation).expect("decode");
        assert_eq!(decoded.claims, claims);
        assert!(prim.verify(message, &signature), "{alg}: primitive verifies jsonwebtoken's signature");
        assert!(prim.verify_key_parse(message, &signature), "{alg}: primitive verifies (key parse)");
        for own in [prim.sign(message), prim.sign_key_parse(message)] {
            let spliced = format!("{}.{}", std::str::from_utf8(message).expect("ascii"), URL_SAFE_NO_PAD.encode(&own));
            assert!(service.verify(&spliced).is_ok(), "{alg}: jwt-server accepts the primitive's signature");
        }
        let mut tampered = signature.clone();
        tampered[0] ^= 1;
        assert!(!prim.verify(message, &tampered) && !prim.verify_key_parse(message, &tampered), "{alg}: tamper");

        let mut group = c.benchmark_group(ids::jwt_group(backend, &alg.to_string()));
        // An RSA-2048 signature takes milliseconds; fewer samples keep the group to seconds.
        group.sample_size(if alg == Alg::Rs256 { 20 } else { 50 });
        group.bench_function(jwt::SIGN_LIBRARY, |b| {
            b.iter(|| jsonwebtoken::encode(black_box(&header), black_box(&claims), &keys.encoding))
        });
        group.bench_function(jwt::SIGN_PRIMITIVE, |b| b.iter(|| prim.sign(black_box(message))));
        group.bench_function(jwt::SIGN_PRIMITIVE_KEY_PARSE, |b| b.iter(|| prim.sign_key_parse(black_box(message))));
        group.bench_function(jwt::VERIFY_LIBRARY, |b| {
            b.iter(|| jsonwebtoken::decode::<AccessClaims>(black_box(&token), &keys.decoding, &validation))
        });
        group.bench_function(jwt::VERIFY_PRIMITIVE, |b| {
            b.iter(|| prim.verify(black_box(message), black_box(&signature)))
        });
        group.bench_function(jwt::VERIFY_PRIMITIVE_KEY_PARSE, |b| {
            b.iter(|| prim.verify_key_parse(black_box(message), black_box(&signature)))
        });
        // The server is built on aws-lc-rs whatever this suite's backend: its own figures
        // belong beside that backend only.
        if backend == ids::AWS_LC {
            group.bench_function(jwt::VERIFY_SERVER, |b| b.iter(|| service.verify(black_box(&token))));
            group.bench_function(jwt::VERIFY_SERVER_STOCK, |b| b.iter(|| stock.verify(black_box(&token))));
        }
        group.finish();
    }
}
