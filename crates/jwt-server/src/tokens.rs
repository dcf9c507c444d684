//! Access tokens (signed JWTs) and refresh tokens (opaque random strings).
//!
//! Verification pins the algorithm from configuration: the token's own `alg` header is
//! only compared against it, never used to choose a key or an algorithm (RFC 8725 §3.1).

use std::{sync::Arc, time::Duration};

use auth_core::{ApiError, Role};
use aws_lc_rs::digest;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::Keys;

/// RFC 9068 media type of JWT access tokens, carried in `typ`.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Longest `Authorization` value we try to parse; real tokens here are < 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Claims of an access token (RFC 9068 profile, plus `role` and the refresh family `sid`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    /// Refresh-token family this access token was issued with; `/logout` with only a bearer
    /// token revokes this family.
    pub sid: String,
}

/// What a verified access token tells the request path: the claims handlers, the
/// denylist and logout read. The claim set must still have [`AccessClaims`]'s shape —
/// every claim present, each of its type — so what is accepted does not change; `iss`
/// and `aud` (whose values [`validation`] checks) are type-checked but not copied out.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct VerifiedClaims {
    pub sub: String,
    pub role: Role,
    pub exp: u64,
    pub jti: String,
    pub sid: String,
    pub iat: u64,
    pub nbf: u64,
    iss: AString,
    aud: AString,
}

/// A JSON string, checked and dropped: no allocation for a value nobody reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AString;

impl<'de> Deserialize<'de> for AString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = AString;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AString, E> {
                Ok(AString)
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// Clock-skew allowance for `exp`/`nbf`, at most 30 s.
    pub leeway: Duration,
}

/// Signs and verifies access tokens with the one configured key.
#[derive(Clone)]
pub struct TokenService {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Keys,
    config: TokenConfig,
    header: Header,
    validation: Validation,
    verifier: crate::verifier::Verifier,
    /// The cached verifier's one-pass path; `None` for the stock verifier.
    fast: Option<FastPath>,
}

/// [`Verifier::Cached`](crate::verifier::Verifier)'s path for a token whose header is
/// byte for byte the one this server signs with. Every header check is a function of the
/// header's bytes alone, and that header passes them all, so for such a token they are
/// already answered; what is left is the signature, with the key kept parsed, and one
/// pass over the claims that does exactly what `jsonwebtoken::decode` with [`validation`]
/// and then [`VerifiedClaims`] would (same base64, the same claim types, the same `exp`,
/// `nbf`, `iss` and `aud` rules). Any other header goes the full jsonwebtoken way.
struct FastPath {
    /// base64url of the header JSON, as jsonwebtoken writes it into every token we issue.
    header: String,
    key: std::sync::Arc<crate::verifier::Parsed>,
}

/// The claims as one borrowed pass reads them: the fields and types of [`VerifiedClaims`]
/// (so exactly what it accepts), with `iss` and `aud` kept to compare.
#[derive(Deserialize)]
struct OnePass<'a> {
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    role: Role,
    exp: u64,
    #[serde(borrow)]
    jti: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sid: std::borrow::Cow<'a, str>,
    iat: u64,
    nbf: u64,
    #[serde(borrow)]
    iss: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    aud: std::borrow::Cow<'a, str>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").field("keys", &self.inner.keys).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the access token: {0}")]
pub struct SignError(jsonwebtoken::errors::Error);

/// What jsonwebtoken checks for an access token: the configured algorithm only, `exp`,
/// `nbf`, `iss`, `aud` and `sub` required, the configured leeway (the header checks —
/// `typ`, `kid`, no key-bearing parameters — are [`TokenService::verify`]'s own).
pub fn validation(alg: crate::keys::Alg, config: &TokenConfig) -> Validation {
    let alg = alg.jwt();
    let mut validation = Validation::new(alg);
    validation.algorithms = vec![alg];
    validation.leeway = config.leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation
}

impl TokenService {
    /// With the default verifier ([`Verifier::Cached`](crate::verifier::Verifier)).
    pub fn new(keys: Keys, config: TokenConfig) -> Self {
        Self::with_verifier(keys, config, crate::verifier::Verifier::default())
    }

    /// `verifier` decides whether the key is kept parsed for verification
    /// ([`crate::verifier`]); what is accepted is the same either way.
    pub fn with_verifier(keys: Keys, config: TokenConfig, verifier: crate::verifier::Verifier) -> Self {
        crate::keys::install_crypto_provider();
        let alg = keys.alg.jwt();
        let mut header = Header::new(alg);
        header.typ = Some(ACCESS_TOKEN_TYP.into());
        header.kid = Some(keys.kid.clone());
        let fast = match verifier {
            crate::verifier::Verifier::Stock => None,
            crate::verifier::Verifier::Cached => match crate::verifier::register(alg, &keys.decoding) {
                Ok(key) => {
                    serde_json::to_vec(&header).ok().map(|json| FastPath { header: URL_SAFE_NO_PAD.encode(json), key })
                }
                Err(e) => {
                    // Every algorithm the server loads has a cached form; should one not,
                    // the stock verifier still checks it.
                    eprintln!("jwt-server: key not cached, verified the stock way: {e}");
                    None
                }
            },
        };

        let validation = validation(keys.alg, &config);
        Self { inner: Arc::new(Inner { keys, config, header, validation, verifier, fast }) }
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub fn access_ttl(&self) -> Duration {
        self.inner.config.access_ttl
    }

    /// How long after `exp` a token still verifies (the clock-skew allowance).
    pub fn leeway(&self) -> Duration {
        self.inner.config.leeway
    }

    /// Lifetime of issued tokens in whole seconds, as in `exp - iat` and `expires_in`:
    /// `exp` has one-second resolution, so a sub-second `--access-ttl` becomes one second.
    pub fn access_ttl_secs(&self) -> u64 {
        self.inner.config.access_ttl.as_secs().max(1)
    }

    pub fn issue(&self, user: &str, role: Role, sid: &str) -> Result<String, SignError> {
        let now = auth_core::unix_millis() / 1000;
        let c = &self.inner.config;
        let claims = AccessClaims {
            sub: user.to_owned(),
            role,
            iss: c.issuer.clone(),
            aud: c.audience.clone(),
            iat: now,
            nbf: now,
            exp: now + self.access_ttl_secs(),
            jti: URL_SAFE_NO_PAD.encode(auth_core::random_bytes::<16>()),
            sid: sid.to_owned(),
        };
        jsonwebtoken::encode(&self.inner.header, &claims, &self.inner.keys.encoding).map_err(SignError)
    }

    /// Verify signature, algorithm, header and claims. Every failure is the same
    /// `invalid_token`: the client learns nothing about which check failed.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::InvalidToken);
        }
        let inner = &self.inner;
        if let Some(fast) = &inner.fast
            && let Some(outcome) = self.verify_fast(fast, token)
        {
            return outcome;
        }
        let decode = || jsonwebtoken::decode::<VerifiedClaims>(token, &inner.keys.decoding, &inner.validation);
        let data = match inner.verifier {
            crate::verifier::Verifier::Cached => crate::verifier::cached(decode),
            crate::verifier::Verifier::Stock => decode(),
        }
        .map_err(|_| ApiError::InvalidToken)?;
        let h = &data.header;
        let typ_ok = h
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt"));
        let header_ok = typ_ok
            && h.kid.as_deref() == Some(inner.keys.kid.as_str())
            // Keys named or embedded by the token itself are never trusted (RFC 8725 §3.10).
            && h.jku.is_none()
            && h.jwk.is_none()
            && h.x5u.is_none()
            && h.x5c.is_none()
            // We implement no JWS extension, so any `crit` is one we do not understand.
            && h.crit.is_none();
        if !header_ok || data.claims.sub.is_empty() || data.claims.jti.is_empty() {
            return Err(ApiError::InvalidToken);
        }
        Ok(data.claims)
    }
}

impl TokenService {
    /// The one-pass verification ([`FastPath`]); `None` when the header is not ours, so
    /// the caller takes the full way.
    fn verify_fast(&self, fast: &FastPath, token: &str) -> Option<Result<VerifiedClaims, ApiError>> {
        // Split as jsonwebtoken does: exactly three parts.
        let (message, signature) = token.rsplit_once('.')?;
        let (header, payload) = message.rsplit_once('.')?;
        if header != fast.header {
            return None;
        }
        Some(self.check_fast(fast, message, payload, signature).ok_or(ApiError::InvalidToken))
    }

    fn check_fast(&self, fast: &FastPath, message: &str, payload: &str, signature: &str) -> Option<VerifiedClaims> {
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        if !fast.key.verify(message.as_bytes(), &signature) {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        // A JSON object only: serde would also fill the struct from an array, in field
        // order, which jsonwebtoken's claims check never accepts.
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        let c: OnePass<'_> = serde_json::from_slice(&json).ok()?;
        // `validation`'s rules, as jsonwebtoken applies them.
        let config = &self.inner.config;
        let now = jsonwebtoken::get_current_timestamp();
        let leeway = config.leeway.as_secs();
        let timely = c.exp >= now.saturating_sub(leeway) && c.nbf <= now + leeway;
        let ours = c.iss == config.issuer && c.aud == config.audience;
        // TokenService::verify's own claim checks.
        let named = !c.sub.is_empty() && !c.jti.is_empty();
        (timely && ours && named).then(|| VerifiedClaims {
            sub: c.sub.into_owned(),
            role: c.role,
            exp: c.exp,
            jti: c.jti.into_owned(),
            sid: c.sid.into_owned(),
            iat: c.iat,
            nbf: c.nbf,
            iss: AString,
            aud: AString,
        })
    }
}

/// An opaque refresh token: 256 bits from the CSPRNG, base64url. The server stores only
/// its SHA-256, so a leaked store does not leak usable tokens.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RefreshToken([u8; 32]);

/// SHA-256 of a refresh token: the store key.
pub type TokenHash = [u8; 32];

impl RefreshToken {
    pub const ENCODED_LEN: usize = 43;

    pub fn generate() -> Self {
        Self(auth_core::random_bytes())
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != Self::ENCODED_LEN {
            return None;
        }
        let mut out = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut out) {
            Ok(32) => {}
            _ => return None,
        }
        let t = Self(out);
        (t.encode() == s).then_some(t)
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    pub fn hash(&self) -> TokenHash {
        let d = digest::digest(&digest::SHA256, &self.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

/// A new refresh-token family ID (one per login).
pub fn new_family_id() -> String {
    URL_SAFE_NO_PAD.encode(auth_core::random_bytes::<16>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Alg, keygen, load};

    fn service(alg: Alg, dir: &std::path::Path) -> TokenService {
        keygen(alg, dir, true).unwrap();
        TokenService::new(
            load(alg, dir).unwrap(),
            TokenConfig {
                issuer: "authbench".into(),
                audience: "authbench-api".into(),
                access_ttl: Duration::from_secs(300),
                leeway: Duration::from_secs(5),
            },
        )
    }

    #[test]
    fn issued_tokens_verify_for_every_algorithm_and_carry_the_documented_header() {
        let dir = tempfile::tempdir().unwrap();
        for alg in Alg::ALL {
            let s = service(alg, dir.path());
            let token = s.issue("user3", Role::User, "fam").unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(s.keys().kid.as_str()));
            let claims = s.verify(&token).unwrap();
            assert_eq!((claims.sub.as_str(), claims.role, claims.sid.as_str()), ("user3", Role::User, "fam"));
            let all = jsonwebtoken::dangerous::insecure_decode::<AccessClaims>(&token).unwrap().claims;
            assert_eq!(all.exp - all.iat, 300);
            assert_eq!((claims.exp, claims.jti.as_str()), (all.exp, all.jti.as_str()));
            // One flipped signature bit and it is rejected.
            let mut bytes = token.into_bytes();
            let last = bytes.len() - 2;
            bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
            assert!(s.verify(std::str::from_utf8(&bytes).unwrap()).is_err(), "{alg}");
        }
    }

    #[test]
    fn a_token_from_another_key_or_algorithm_is_rejected() {
        let dir_a = tempfile::tempdir().unwrap();
        let dir_b = tempfile::tempdir().unwrap();
        let a = service(Alg::Es256, dir_a.path());
        let b = service(Alg::Es256, dir_b.path());
        let other_alg = service(Alg::EdDsa, dir_a.path());
        let token = b.issue("user1", Role::User, "f").unwrap();
        assert!(a.verify(&token).is_err());
        assert!(a.verify(&other_alg.issue("user1", Role::User, "f").unwrap()).is_err());
    }

    /// Tokens with our exact header, properly signed, whose claims are edited one or two
    /// at a time; plus encodings only one bit or one character off. The one-pass path
    /// must accept exactly what jsonwebtoken + `VerifiedClaims` accept, with the same
    /// claims.
    #[test]
    fn the_one_pass_path_accepts_exactly_what_the_stock_path_does() {
        use crate::verifier::Verifier;
        let dir = tempfile::tempdir().unwrap();
        for alg in [Alg::Hs256, Alg::Es256] {
            keygen(alg, dir.path(), true).unwrap();
            let keys = load(alg, dir.path()).unwrap();
            let config = TokenConfig {
                issuer: "authbench".into(),
                audience: "authbench-api".into(),
                access_ttl: Duration::from_secs(300),
                leeway: Duration::from_secs(5),
            };
            let fast = TokenService::with_verifier(load(alg, dir.path()).unwrap(), config.clone(), Verifier::Cached);
            let stock = TokenService::with_verifier(load(alg, dir.path()).unwrap(), config, Verifier::Stock);
            let header = fast.inner.fast.as_ref().expect("cached keeps a fast path").header.clone();
            let issued = fast.issue("user1", Role::User, "fam").unwrap();
            assert!(issued.starts_with(&format!("{header}.")), "{alg}: issued tokens take the one-pass path");

            let sign = |payload: &str| {
                let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
                let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &keys.encoding, alg.jwt()).unwrap();
                format!("{message}.{sig}")
            };
            let now = auth_core::unix_millis() / 1000;
            let base: Vec<(&str, String)> = vec![
                ("sub", r#""user1""#.into()),
                ("role", r#""user""#.into()),
                ("iss", r#""authbench""#.into()),
                ("aud", r#""authbench-api""#.into()),
                ("iat", now.to_string()),
                ("nbf", now.to_string()),
                ("exp", (now + 300).to_string()),
                ("jti", r#""j1""#.into()),
                ("sid", r#""fam""#.into()),
            ];
            let values: Vec<String> = [
                "null",
                "0",
                "-1",
                "1.5",
                "1e3",
                "18446744073709551616",
                r#""""#,
                r#""user1""#,
                r#""admin""#,
                r#""authbench""#,
                r#""authbench-api""#,
                r#"["authbench-api"]"#,
                r#""\u0061uthbench""#,
                r#""authbench ""#,
                "{}",
                "[]",
                "true",
            ]
            .iter()
            .map(|v| v.to_string())
            .chain([now - 6, now - 5, now - 4, now, now + 4, now + 5, now + 6, now + 300].iter().map(|t| t.to_string()))
            .collect();
            let render = |fields: &[(&str, String)]| {
                let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(","))
            };
            let mut payloads = vec![render(&base)];
            for (i, (name, _)) in base.iter().enumerate() {
                let mut without = base.clone();
                without.remove(i);
                payloads.push(render(&without));
                let mut twice = base.clone();
                twice.push((name, base[i].1.clone()));
                payloads.push(render(&twice));
                for v in &values {
                    let mut edited = base.clone();
                    edited[i].1 = v.clone();
                    payloads.push(render(&edited));
                    // A second field off at the same time: exp with nbf, and iss with aud.
                    let pair = match *name {
                        "exp" => Some(5),
                        "iss" => Some(3),
                        _ => None,
                    };
                    if let Some(j) = pair {
                        for w in &values {
                            let mut both = edited.clone();
                            both[j].1 = w.clone();
                            payloads.push(render(&both));
                        }
                    }
                }
            }
            payloads.push(format!("{} ", render(&base)));
            payloads.push(format!(" \n{}", render(&base)));
            // The claims as an array, in the struct's field order and in the token's.
            let array = |order: &[&str]| {
                let values: Vec<String> =
                    order.iter().map(|k| base.iter().find(|(n, _)| n == k).unwrap().1.clone()).collect();
                format!("[{}]", values.join(","))
            };
            payloads.push(array(&["sub", "role", "exp", "jti", "sid", "iat", "nbf", "iss", "aud"]));
            payloads.push(array(&["sub", "role", "iss", "aud", "iat", "nbf", "exp", "jti", "sid"]));
            payloads.push(format!("{}x", render(&base)));
            payloads.push(r#"{"extra":1,"sub":"user1","role":"user","iss":"authbench","aud":"authbench-api","iat":1,"nbf":1,"exp":99999999999,"jti":"j","sid":"s"}"#.into());

            let mut tokens: Vec<String> = payloads.iter().map(|p| sign(p)).collect();
            let good = sign(&render(&base));
            let (message, sig) = good.rsplit_once('.').unwrap();
            let (h, p) = message.split_once('.').unwrap();
            // One character off anywhere in the signature and payload; padding; extra parts.
            for (i, _) in sig.char_indices() {
                for c in ['A', 'B', 'Q', 'g', '_', '-', '='] {
                    let mut s = sig.to_owned();
                    s.replace_range(i..=i, &c.to_string());
                    tokens.push(format!("{message}.{s}"));
                }
            }
            for (i, _) in p.char_indices().step_by(3) {
                let mut q = p.to_owned();
                q.replace_range(i..=i, "A");
                tokens.push(format!("{h}.{q}.{sig}"));
            }
            tokens.extend([
                format!("{message}.{sig}="),
                format!("{message}.{sig}A"),
                format!("{h}.{p}=.{sig}"),
                format!("{message}.{sig}.{sig}"),
                format!("{h}..{sig}"),
                format!("{message}."),
                message.to_owned(),
            ]);
            for t in &tokens {
                // Each path reads the clock itself: on a token at the leeway's edge, a second
                // ticking between the two calls would be a false disagreement, so take a pair
                // of answers from within one second.
                let (a, b) = loop {
                    let second = auth_core::unix_millis() / 1000;
                    let pair = (fast.verify(t).ok(), stock.verify(t).ok());
                    if auth_core::unix_millis() / 1000 == second {
                        break pair;
                    }
                };
                assert_eq!(a, b, "{alg}: the paths disagree on {t}");
            }
            let accepted = tokens.iter().filter(|t| stock.verify(t).is_ok()).count();
            assert!(accepted > 20 && accepted < tokens.len() / 2, "{alg}: {accepted} of {} accepted", tokens.len());
        }
    }

    #[test]
    fn refresh_tokens_parse_strictly_and_hash_stably() {
        let t = RefreshToken::generate();
        let text = t.encode();
        assert_eq!(RefreshToken::parse(&text), Some(t));
        assert_eq!(RefreshToken::parse(&text).unwrap().hash(), t.hash());
        assert!(RefreshToken::parse(&text[1..]).is_none());
        assert!(RefreshToken::parse("not a token").is_none());
        assert_ne!(RefreshToken::generate().hash(), t.hash());
    }
}
