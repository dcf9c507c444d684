//! Signing keys: which file holds which algorithm's key, loading it, deriving the public
//! half and its JWK, and `keygen`.
//!
//! Every instance of one run reads the same `--key-dir`, so the key ID is derived from the
//! key itself (a SHA-256 thumbprint) and all instances agree on it without coordination.

use std::{
    fmt,
    io::Write as _,
    path::{Path, PathBuf},
};

use aws_lc_rs::{
    digest,
    rand::SystemRandom,
    rsa::KeySize,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::json;

/// The signing algorithms the benchmark compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Alg {
    #[value(name = "HS256", alias = "hs256")]
    Hs256,
    #[value(name = "RS256", alias = "rs256")]
    Rs256,
    #[value(name = "ES256", alias = "es256")]
    Es256,
    #[value(name = "EdDSA", alias = "eddsa", alias = "EDDSA")]
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 4] = [Alg::Hs256, Alg::Rs256, Alg::Es256, Alg::EdDsa];

    pub fn jwt(self) -> Algorithm {
        match self {
            Alg::Hs256 => Algorithm::HS256,
            Alg::Rs256 => Algorithm::RS256,
            Alg::Es256 => Algorithm::ES256,
            Alg::EdDsa => Algorithm::EdDSA,
        }
    }

    /// File in `--key-dir` that holds this algorithm's key.
    pub fn file_name(self) -> &'static str {
        match self {
            Alg::Hs256 => "hs256.key",
            Alg::Rs256 => "rs256.pem",
            Alg::Es256 => "es256.pem",
            Alg::EdDsa => "ed25519.pem",
        }
    }

    /// System name used by the harness and the report.
    pub fn system(self) -> &'static str {
        match self {
            Alg::Hs256 => "jwt-hs256",
            Alg::Rs256 => "jwt-rs256",
            Alg::Es256 => "jwt-es256",
            Alg::EdDsa => "jwt-eddsa",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        })
    }
}

/// Make aws-lc-rs, through [`verifier::provider`](crate::verifier::provider), jsonwebtoken's
/// crypto backend for this process. Idempotent; call it
/// before the first signature or verification (loading a key and building the
/// [`TokenService`](crate::tokens::TokenService) both do).
///
/// jsonwebtoken picks its backend from its crate features and panics at the first
/// signature when both `aws_lc_rs` and `rust_crypto` are on, which Cargo's feature
/// unification does whenever another crate in the same build enables `rust_crypto` (the
/// `benches` crate does, to compare the two). Choosing explicitly keeps the server
/// working either way. A backend installed earlier in the process (the `rust_crypto`
/// benchmark installs its own first) is left in place.
pub fn install_crypto_provider() {
    // Err only means a backend is already installed: exactly what we want either way.
    let _ = crate::verifier::provider().install_default();
}

/// Shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash output size).
pub const MIN_HMAC_SECRET: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no {alg} key at {path}: create one with `jwt-server keygen --alg {alg} --key-dir {dir}`")]
    Missing { alg: Alg, path: String, dir: String },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path} already exists; pass --force to replace it (tokens signed with the old key stop verifying)")]
    Exists { path: String },
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("key generation failed")]
    Generate,
}

/// Everything the server needs about its one signing key.
pub struct Keys {
    pub alg: Alg,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub kid: String,
    /// Public JWK for `/.well-known/jwks.json`; `None` for HMAC (the secret is never published).
    pub jwk: Option<serde_json::Value>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

fn thumbprint(bytes: &[u8]) -> String {
    let d = digest::digest(&digest::SHA256, bytes);
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..12])
}

/// Decode a PEM file holding one `PRIVATE KEY` (PKCS#8) block.
fn pem_to_der(path: &str, text: &str) -> Result<Vec<u8>, KeyError> {
    let invalid = |reason: &str| KeyError::Invalid { path: path.to_owned(), reason: reason.to_owned() };
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let start = text.find(begin).ok_or_else(|| invalid("expected a PKCS#8 `BEGIN PRIVATE KEY` PEM block"))?;
    let body = &text[start + begin.len()..];
    let stop = body.find(end).ok_or_else(|| invalid("PEM block has no END line"))?;
    let b64: String = body[..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).map_err(|e| invalid(&format!("PEM body is not base64: {e}")))
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

pub fn key_path(alg: Alg, dir: &Path) -> PathBuf {
    dir.join(alg.file_name())
}

/// Load `alg`'s key from `dir`.
pub fn load(alg: Alg, dir: &Path) -> Result<Keys, KeyError> {
    install_crypto_provider();
    let path = key_path(alg, dir);
    let label = path.display().to_string();
    let bytes = std::fs::read(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            KeyError::Missing { alg, path: label.clone(), dir: dir.display().to_string() }
        } else {
            KeyError::Read { path: label.clone(), source }
        }
    })?;
    let invalid = |reason: String| KeyError::Invalid { path: label.clone(), reason };

    if alg == Alg::Hs256 {
        if bytes.len() < MIN_HMAC_SECRET {
            return Err(invalid(format!("HMAC secret is {} bytes; at least {MIN_HMAC_SECRET} required", bytes.len())));
        }
        // jsonwebtoken 12 refuses an empty secret; ours is at least 32 bytes already.
        let refused = |e: jsonwebtoken::errors::Error| invalid(format!("HMAC secret refused: {e}"));
        return Ok(Keys {
            alg,
            encoding: EncodingKey::from_secret(&bytes).map_err(refused)?,
            decoding: DecodingKey::from_secret(&bytes).map_err(refused)?,
            kid: thumbprint(&bytes),
            jwk: None,
        });
    }

    let text = String::from_utf8(bytes).map_err(|_| invalid("not a PEM text file".into()))?;
    let der = pem_to_der(&label, &text)?;
    let bad_key = |e: &dyn fmt::Display| invalid(format!("not a valid {alg} PKCS#8 private key: {e}"));
    let (encoding, public, jwk_fields) = match alg {
        Alg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).map_err(|e| bad_key(&e))?;
            if pair.public_modulus_len() * 8 < 2048 {
                return Err(invalid("RSA keys shorter than 2048 bits are refused".into()));
            }
            let public = pair.public_key();
            let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
            let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
            let enc = EncodingKey::from_rsa_pem(text.as_bytes()).map_err(|e| bad_key(&e))?;
            (enc, public.as_ref().to_vec(), json!({"kty": "RSA", "n": n, "e": e}))
        }
        Alg::Es256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).map_err(|e| bad_key(&e))?;
            let point = pair.public_key().as_ref().to_vec();
            if point.len() != 65 || point[0] != 0x04 {
                return Err(invalid("unexpected P-256 public key encoding".into()));
            }
            let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
            let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
            let enc = EncodingKey::from_ec_pem(text.as_bytes()).map_err(|e| bad_key(&e))?;
            (enc, point, json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}))
        }
        Alg::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| bad_key(&e))?;
            let raw = pair.public_key().as_ref().to_vec();
            let x = URL_SAFE_NO_PAD.encode(&raw);
            let enc = EncodingKey::from_ed_pem(text.as_bytes()).map_err(|e| bad_key(&e))?;
            (enc, raw, json!({"kty": "OKP", "crv": "Ed25519", "x": x}))
        }
        Alg::Hs256 => unreachable!("handled above"),
    };
    let decoding = match alg {
        Alg::Rs256 => DecodingKey::from_rsa_der(&public),
        Alg::Es256 => DecodingKey::from_ec_der(&public),
        _ => DecodingKey::from_ed_der(&public),
    };
    let kid = thumbprint(&public);
    let mut jwk = jwk_fields;
    if let Some(obj) = jwk.as_object_mut() {
        obj.insert("kid".into(), json!(kid));
        obj.insert("alg".into(), json!(alg.to_string()));
        obj.insert("use".into(), json!("sig"));
    }
    Ok(Keys { alg, encoding, decoding, kid, jwk: Some(jwk) })
}

/// Create `alg`'s key file in `dir` (created if missing), readable only by its owner.
pub fn keygen(alg: Alg, dir: &Path, force: bool) -> Result<PathBuf, KeyError> {
    let path = key_path(alg, dir);
    let label = path.display().to_string();
    let write_err = |source| KeyError::Write { path: label.clone(), source };
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let contents: Vec<u8> = match alg {
        Alg::Hs256 => auth_core::random_bytes::<64>().to_vec(),
        Alg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| KeyError::Generate)?;
            der_to_pem(der.as_ref()).into_bytes()
        }
        Alg::Es256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| KeyError::Generate)?;
            der_to_pem(doc.as_ref()).into_bytes()
        }
        Alg::EdDsa => {
            let doc = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
            der_to_pem(doc.as_ref()).into_bytes()
        }
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists { path: label.clone() }
        } else {
            KeyError::Write { path: label.clone(), source }
        }
    })?;
    file.write_all(&contents).map_err(write_err)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_then_load_round_trips_for_every_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        for alg in Alg::ALL {
            let path = keygen(alg, dir.path(), false).unwrap();
            assert!(path.ends_with(alg.file_name()));
            let keys = load(alg, dir.path()).unwrap();
            assert_eq!(keys.alg, alg);
            assert_eq!(keys.jwk.is_some(), alg != Alg::Hs256, "only asymmetric keys are published");
            // Same file, same kid: instances agree without talking.
            assert_eq!(load(alg, dir.path()).unwrap().kid, keys.kid);
            assert!(matches!(keygen(alg, dir.path(), false), Err(KeyError::Exists { .. })));
        }
    }

    #[test]
    fn missing_short_and_garbage_keys_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(Alg::Es256, dir.path()).err().unwrap().to_string();
        assert!(err.contains("jwt-server keygen --alg ES256"), "{err}");
        std::fs::write(dir.path().join("hs256.key"), b"short").unwrap();
        let err = load(Alg::Hs256, dir.path()).err().unwrap().to_string();
        assert!(err.contains("at least 32"), "{err}");
        std::fs::write(dir.path().join("rs256.pem"), b"hello").unwrap();
        assert!(matches!(load(Alg::Rs256, dir.path()), Err(KeyError::Invalid { .. })));
        // An ES256 key in the EdDSA file is refused, not misused.
        keygen(Alg::Es256, dir.path(), false).unwrap();
        std::fs::copy(dir.path().join("es256.pem"), dir.path().join("ed25519.pem")).unwrap();
        assert!(matches!(load(Alg::EdDsa, dir.path()), Err(KeyError::Invalid { .. })));
    }
}
