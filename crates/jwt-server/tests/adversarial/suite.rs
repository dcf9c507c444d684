// The suite itself, included by `adversarial.rs` (`--jwt-verifier cached`, the default)
// and `adversarial_stock.rs` (`--jwt-verifier stock`): the same attacks against both
// verifiers. `VERIFIER` is defined by the including file.

use std::time::{Duration, Instant};

use auth_core::password::{HashParams, hash_password};
use aws_lc_rs::{
    encoding::PublicKeyX509Der,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use jwt_server::{keys::Alg, tokens::MAX_TOKEN_BYTES};
use reqwest::{
    StatusCode,
    header::{self, HeaderValue},
};
use serde_json::{Map, Value, json};

type Object = Map<String, Value>;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.claims.signature` over exactly these JSON texts, signed with `key` as `alg`.
fn sign_texts(header: &str, claims: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

/// The token with its signature segment replaced by `signature` (raw bytes).
fn with_signature(token: &str, signature: &[u8]) -> String {
    let (message, _) = token.rsplit_once('.').unwrap();
    format!("{message}.{}", b64(signature))
}

fn signature_of(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(token.rsplit_once('.').unwrap().1).unwrap()
}

/// What a request authenticates with: raw `Authorization` values (any bytes, any number of
/// them) and an optional query string.
#[derive(Clone, Debug, Default)]
struct Auth {
    authorization: Vec<Vec<u8>>,
    query: Option<String>,
}

impl Auth {
    fn raw(values: &[&[u8]]) -> Self {
        Self { authorization: values.iter().map(|v| v.to_vec()).collect(), query: None }
    }

    fn value(value: impl Into<String>) -> Self {
        Self { authorization: vec![value.into().into_bytes()], query: None }
    }
}

fn bearer(token: &str) -> Auth {
    Auth::value(format!("Bearer {token}"))
}

/// One running server, its signing key (loaded from its key directory) and the claims of a
/// token it issued to `user1`.
struct Target {
    server: TestServer,
    keys: KeyDir,
    alg: Alg,
    key: jwt_server::keys::Keys,
    claims: Object,
    issued: auth_core::wire::TokenResponse,
    http: reqwest::Client,
}

impl Target {
    async fn start(alg: Alg, extra: &[&str]) -> Self {
        let keys = KeyDir::new(&[alg]);
        let instance = format!("adv-{}", alg.to_string().to_lowercase());
        let mut flags = vec!["--jwt-verifier", VERIFIER];
        flags.extend_from_slice(extra);
        let server = TestServer::start(&instance, alg, &keys, &flags).await;
        let http = client();
        let issued = login(&http, &server, "user1").await;
        let key = jwt_server::keys::load(alg, keys.path()).unwrap();
        let Value::Object(claims) = serde_json::to_value(claims(&issued.access_token)).unwrap() else {
            unreachable!("claims serialize to an object")
        };
        Self { server, keys, alg, key, claims, issued, http }
    }

    /// The header the server itself writes.
    fn header(&self) -> Object {
        let Value::Object(h) = json!({"alg": self.alg.to_string(), "typ": "at+jwt", "kid": self.key.kid}) else {
            unreachable!()
        };
        h
    }

    fn sign(&self, header: &Object, claims: &Object) -> String {
        let (h, c) = (Value::Object(header.clone()).to_string(), Value::Object(claims.clone()).to_string());
        sign_texts(&h, &c, &self.key.encoding, self.alg.jwt())
    }

    /// A token as the server would issue it, forged with its key: the positive control.
    fn token(&self) -> String {
        self.sign(&self.header(), &self.claims)
    }

    fn with_header(&self, edit: impl FnOnce(&mut Object)) -> String {
        let mut h = self.header();
        edit(&mut h);
        self.sign(&h, &self.claims)
    }

    fn with_claims(&self, edit: impl FnOnce(&mut Object)) -> String {
        let mut c = self.claims.clone();
        edit(&mut c);
        self.sign(&self.header(), &c)
    }

    /// The claims with `field` removed and, when `raw` is given, put back as this exact
    /// JSON text (which need not be representable as a `serde_json::Value`, e.g. `1e309`).
    fn with_claim_text(&self, field: &str, raw: Option<&str>) -> String {
        let mut c = self.claims.clone();
        c.remove(field);
        let mut text = Value::Object(c).to_string();
        if let Some(raw) = raw {
            text.pop();
            text.push_str(&format!(",\"{field}\":{raw}}}"));
        }
        sign_texts(&Value::Object(self.header()).to_string(), &text, &self.key.encoding, self.alg.jwt())
    }

    async fn send(&self, path: &str, auth: &Auth) -> Reply {
        let mut url = self.server.at(path);
        if let Some(q) = &auth.query {
            url = format!("{url}?{q}");
        }
        let mut req = self.http.get(url);
        for value in &auth.authorization {
            req = req.header(header::AUTHORIZATION, HeaderValue::from_bytes(value).unwrap());
        }
        Reply::read(req.send().await.unwrap()).await
    }

    async fn rejected(&self, what: &str, auth: &Auth) {
        let r = self.send("/me", auth).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{} {what}: accepted: {r:?}", self.alg);
        r.assert_invalid_token();
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }

    async fn accepted(&self, what: &str, auth: &Auth) {
        let r = self.send("/me", auth).await;
        assert_eq!(r.status, StatusCode::OK, "{} control for {what} was refused: {r:?}", self.alg);
        assert_eq!(r.json(), json!({"user": "user1", "role": "user", "instance": self.server.instance}), "{what}");
    }

    /// `bad` is refused with 401 `invalid_token`; `good`, the same request made valid, is
    /// accepted.
    async fn case(&self, what: &str, bad: Auth, good: Auth) {
        self.rejected(what, &bad).await;
        self.accepted(what, &good).await;
    }

    async fn tokens(&self, what: &str, bad: &str, good: &str) {
        self.case(what, bearer(bad), bearer(good)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Header: alg, keys named or embedded by the token, kid, typ, crit
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_in_any_spelling_with_or_without_a_signature_is_rejected() {
    for alg in Alg::ALL {
        let t = Target::start(alg, &[]).await;
        let claims = Value::Object(t.claims.clone()).to_string();
        for spelling in ["none", "None", "NONE", "nOnE"] {
            let mut h = t.header();
            h.insert("alg".into(), json!(spelling));
            let header = Value::Object(h).to_string();
            let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
            // The server's own valid signature over exactly this header and payload.
            let signed = sign_texts(&header, &claims, &t.key.encoding, alg.jwt());
            // A real token's signature pasted on.
            let pasted =
                format!("{}.{}", unsigned.trim_end_matches('.'), t.issued.access_token.rsplit_once('.').unwrap().1);
            let good = t.token();
            t.tokens(&format!("alg {spelling}, empty signature"), &unsigned, &good).await;
            t.tokens(&format!("alg {spelling}, no signature segment"), unsigned.trim_end_matches('.'), &good).await;
            t.tokens(&format!("alg {spelling}, signed by the server key"), &signed, &good).await;
            t.tokens(&format!("alg {spelling}, signature of an issued token"), &pasted, &good).await;
        }
        // Without any alg at all.
        t.tokens(
            "alg missing",
            &t.with_header(|h| {
                h.remove("alg");
            }),
            &t.token(),
        )
        .await;
    }
}

/// The public key in the forms an attacker could try as an HMAC secret.
fn public_key_forms(t: &Target) -> Vec<(&'static str, Vec<u8>)> {
    let pem_text = std::fs::read_to_string(t.keys.path().join(t.alg.file_name())).unwrap();
    let body: String = pem_text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).unwrap();
    let (raw, spki): (Vec<u8>, Vec<u8>) = match t.alg {
        Alg::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der).unwrap();
            let pk = pair.public_key();
            (pk.as_ref().to_vec(), AsDerSpki::spki(pk))
        }
        Alg::Es256 => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
            let pk = pair.public_key();
            (pk.as_ref().to_vec(), AsDerSpki::spki(pk))
        }
        Alg::EdDsa => {
            let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
            let pk = pair.public_key();
            (pk.as_ref().to_vec(), AsDerSpki::spki(pk))
        }
        Alg::Hs256 => unreachable!("HMAC has no public key"),
    };
    let pem = |label: &str, der: &[u8]| {
        let b = STANDARD.encode(der);
        let lines: Vec<&str> = b.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    };
    let jwk = t.key.jwk.clone().unwrap();
    let mut forms = vec![
        ("raw public key bytes", raw.clone()),
        ("SubjectPublicKeyInfo DER", spki.clone()),
        ("SubjectPublicKeyInfo PEM", pem("PUBLIC KEY", &spki).into_bytes()),
        ("SubjectPublicKeyInfo PEM without the final newline", pem("PUBLIC KEY", &spki).trim_end().as_bytes().to_vec()),
        ("the published JWK", jwk.to_string().into_bytes()),
        ("the published JWKS document", json!({"keys": [jwk]}).to_string().into_bytes()),
    ];
    if t.alg == Alg::Rs256 {
        forms.push(("PKCS#1 RSA PUBLIC KEY PEM", pem("RSA PUBLIC KEY", &raw).into_bytes()));
    }
    forms
}

/// `AsDer<PublicKeyX509Der>` for the three public key types, as one call.
trait AsDerSpki {
    fn spki(&self) -> Vec<u8>;
}

impl<T: aws_lc_rs::encoding::AsDer<PublicKeyX509Der<'static>>> AsDerSpki for T {
    fn spki(&self) -> Vec<u8> {
        self.as_der().unwrap().as_ref().to_vec()
    }
}

#[tokio::test]
async fn algorithm_confusion_is_rejected() {
    for alg in Alg::ALL {
        let t = Target::start(alg, &[]).await;
        let good = t.token();
        let claims = Value::Object(t.claims.clone()).to_string();
        let header_for = |name: &str| {
            let mut h = t.header();
            h.insert("alg".into(), json!(name));
            Value::Object(h).to_string()
        };
        if alg == Alg::Hs256 {
            // The HMAC secret with another hash: the algorithm is pinned, not the key family.
            let secret = std::fs::read(t.keys.path().join("hs256.key")).unwrap();
            for (name, other) in [("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)] {
                let forged = sign_texts(&header_for(name), &claims, &EncodingKey::from_secret(&secret).unwrap(), other);
                t.tokens(&format!("{name} with the server's HMAC secret"), &forged, &good).await;
            }
            // Asymmetric tokens (the attacker's own keys) presented to an HMAC server.
            let attacker = KeyDir::new(&[Alg::Rs256, Alg::Es256, Alg::EdDsa]);
            for other in [Alg::Rs256, Alg::Es256, Alg::EdDsa] {
                let k = jwt_server::keys::load(other, attacker.path()).unwrap();
                let forged = sign_texts(&header_for(&other.to_string()), &claims, &k.encoding, other.jwt());
                t.tokens(&format!("{other} signed by an attacker key with our kid"), &forged, &good).await;
            }
            continue;
        }
        for (form, secret) in public_key_forms(&t) {
            for (name, hmac) in [("HS256", Algorithm::HS256), ("HS384", Algorithm::HS384), ("HS512", Algorithm::HS512)]
            {
                let forged = sign_texts(&header_for(name), &claims, &EncodingKey::from_secret(&secret).unwrap(), hmac);
                t.tokens(&format!("{name} keyed with {form}"), &forged, &good).await;
            }
        }
        // Another asymmetric family, with the attacker's key.
        let other = if alg == Alg::Es256 { Alg::EdDsa } else { Alg::Es256 };
        let attacker = KeyDir::new(&[other]);
        let k = jwt_server::keys::load(other, attacker.path()).unwrap();
        let forged = sign_texts(&header_for(&other.to_string()), &claims, &k.encoding, other.jwt());
        t.tokens(&format!("{other} token on a {alg} server"), &forged, &good).await;
    }
}

#[tokio::test]
async fn keys_named_or_embedded_by_the_token_are_never_used() {
    for alg in Alg::ALL {
        let t = Target::start(alg, &[]).await;
        let good = t.token();
        let attacker_dir = KeyDir::new(&[alg]);
        let attacker = jwt_server::keys::load(alg, attacker_dir.path()).unwrap();
        let attacker_jwk = match &attacker.jwk {
            Some(jwk) => jwk.clone(),
            None => {
                json!({"kty": "oct", "k": b64(std::fs::read(attacker_dir.path().join("hs256.key")).unwrap())})
            }
        };
        let signed_by_attacker = |edit: &dyn Fn(&mut Object)| {
            let mut h = t.header();
            edit(&mut h);
            let (h, c) = (Value::Object(h).to_string(), Value::Object(t.claims.clone()).to_string());
            sign_texts(&h, &c, &attacker.encoding, alg.jwt())
        };

        let embedded = signed_by_attacker(&|h| {
            h.insert("jwk".into(), attacker_jwk.clone());
        });
        // A JWK the library parses: the refusal is the server's policy, not a parse error.
        assert!(jsonwebtoken::decode_header(&embedded).unwrap().jwk.is_some(), "{alg}");
        t.tokens("embedded jwk of the signing (attacker) key, our kid", &embedded, &good).await;
        let embedded_kid = signed_by_attacker(&|h| {
            h.insert("jwk".into(), attacker_jwk.clone());
            h.insert("kid".into(), json!(attacker.kid));
        });
        t.tokens("embedded jwk with its own kid", &embedded_kid, &good).await;
        if let Some(ours) = &t.key.jwk {
            // Even our own public key is not taken from a token: keys come from configuration.
            let own = t.with_header(|h| {
                h.insert("jwk".into(), ours.clone());
            });
            t.tokens("embedded jwk that is our own public key", &own, &good).await;
        }

        let own_jwks = t.server.at("/.well-known/jwks.json");
        for (field, value) in [
            ("jku", json!("https://attacker.example/.well-known/jwks.json")),
            ("jku", json!(own_jwks)),
            ("x5u", json!("https://attacker.example/cert.pem")),
            ("x5c", json!(["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"])),
        ] {
            // Signed with the server's key, so only the header field differs from the control.
            let ours = t.with_header(|h| {
                h.insert(field.into(), value.clone());
            });
            t.tokens(&format!("{field} {value}, signed by our key"), &ours, &good).await;
            let theirs = signed_by_attacker(&|h| {
                h.insert(field.into(), value.clone());
            });
            t.tokens(&format!("{field} {value}, signed by the attacker"), &theirs, &good).await;
        }
    }
}

#[tokio::test]
async fn a_kid_that_is_not_ours_is_rejected() {
    let other_keys = KeyDir::new(&Alg::ALL);
    for alg in Alg::ALL {
        let t = Target::start(alg, &[]).await;
        let good = t.token();
        let ours = t.key.kid.clone();
        let same_alg_other_key = jwt_server::keys::load(alg, other_keys.path()).unwrap().kid;
        let mut kids = vec![
            ("missing", None),
            ("null", Some(Value::Null)),
            ("empty", Some(json!(""))),
            ("another name", Some(json!("attacker-key"))),
            ("path traversal", Some(json!("../../../../../../dev/null"))),
            ("SQL", Some(json!("x' OR '1'='1"))),
            ("ours upper-cased", Some(json!(ours.to_uppercase()))),
            ("ours with a trailing space", Some(json!(format!("{ours} ")))),
            ("ours as an array", Some(json!([ours]))),
            ("a number", Some(json!(1))),
            ("the kid of another key of the same algorithm", Some(json!(same_alg_other_key))),
        ];
        if ours.to_uppercase() == ours {
            kids.retain(|(what, _)| *what != "ours upper-cased");
        }
        for (what, kid) in kids {
            let bad = t.with_header(|h| {
                match kid {
                    Some(v) => h.insert("kid".into(), v),
                    None => h.remove("kid"),
                };
            });
            t.tokens(&format!("kid {what}"), &bad, &good).await;
        }
    }
}

#[tokio::test]
async fn typ_must_be_at_jwt() {
    let t = Target::start(Alg::Es256, &[]).await;
    let good = t.token();
    let typ = |value: Option<Value>| {
        t.with_header(|h| {
            match value {
                Some(v) => h.insert("typ".into(), v),
                None => h.remove("typ"),
            };
        })
    };
    for (what, value) in [
        ("missing", None),
        ("null", Some(Value::Null)),
        ("JWT", Some(json!("JWT"))),
        ("jwt", Some(json!("jwt"))),
        ("empty", Some(json!(""))),
        ("at+jwt with a trailing space", Some(json!("at+jwt "))),
        ("at+jwt with a parameter", Some(json!("at+jwt; charset=utf-8"))),
        ("application/jwt", Some(json!("application/jwt"))),
        ("rt+jwt", Some(json!("rt+jwt"))),
        ("secevent+jwt", Some(json!("secevent+jwt"))),
        ("an array", Some(json!(["at+jwt"]))),
    ] {
        t.tokens(&format!("typ {what}"), &typ(value), &good).await;
    }
    // RFC 9068 §4 allows the full media type, and media types compare case-insensitively.
    for accepted in ["at+jwt", "AT+JWT", "application/at+jwt"] {
        t.accepted(&format!("typ {accepted}"), &bearer(&typ(Some(json!(accepted))))).await;
    }
}

#[tokio::test]
async fn an_unknown_crit_header_or_a_duplicate_header_parameter_is_rejected() {
    let t = Target::start(Alg::EdDsa, &[]).await;
    let good = t.token();
    for (what, edit) in [
        ("crit naming an unknown extension", json!({"crit": ["urn:authbench:unknown"], "urn:authbench:unknown": 1})),
        ("crit b64 (RFC 7797 unencoded payload)", json!({"crit": ["b64"], "b64": false})),
        ("crit naming a registered parameter", json!({"crit": ["kid"]})),
        ("crit naming an absent parameter", json!({"crit": ["exp"]})),
        ("crit empty (forbidden by RFC 7515)", json!({"crit": []})),
        ("crit not an array", json!({"crit": "b64"})),
    ] {
        let bad = t.with_header(|h| h.extend(edit.as_object().unwrap().clone()));
        t.tokens(what, &bad, &good).await;
    }
    // An unknown, non-critical parameter is ignored (RFC 7515 §4), which is what shows
    // that `crit` is what the cases above are refused for.
    t.accepted(
        "unknown non-critical header parameter",
        &bearer(&t.with_header(|h| {
            h.insert("x-note".into(), json!(1));
        })),
    )
    .await;

    // Duplicate header parameters whose last value is hostile. (RFC 7515 §4 allows a parser
    // to reject duplicates or take the last one; both must end in a rejection here.)
    let claims = Value::Object(t.claims.clone()).to_string();
    let base = Value::Object(t.header()).to_string();
    let sign = |header: &str| sign_texts(header, &claims, &t.key.encoding, t.alg.jwt());
    for (what, extra) in [
        ("alg then alg none", r#","alg":"none"}"#.to_owned()),
        ("alg then alg HS256", r#","alg":"HS256"}"#.to_owned()),
        ("kid then another kid", r#","kid":"attacker-key"}"#.to_owned()),
        ("typ then typ JWT", r#","typ":"JWT"}"#.to_owned()),
    ] {
        let header = format!("{}{extra}", &base[..base.len() - 1]);
        t.tokens(&format!("duplicate header parameter: {what}"), &sign(&header), &sign(&base)).await;
    }
}

/// Nesting bombs inside the 8 KiB limit: no stack overflow, no 5xx. In the header (parsed
/// into a value by `jsonwebtoken`) serde_json's 128-level limit refuses it; in an unknown
/// claim it is skipped without recursion and the token is accepted, which is harmless.
#[tokio::test]
async fn deeply_nested_json_in_the_header_or_claims_does_no_harm() {
    let t = Target::start(Alg::Hs256, &[]).await;
    // Built as text: serde_json would refuse to hold it as a `Value`.
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let claims = Value::Object(t.claims.clone()).to_string();
    let base = Value::Object(t.header()).to_string();
    let header_with = |depth: usize| {
        let header = format!("{},\"x-deep\":{}}}", &base[..base.len() - 1], nested(depth));
        sign_texts(&header, &claims, &t.key.encoding, t.alg.jwt())
    };
    t.tokens("1000-deep array in a header parameter", &header_with(1000), &header_with(8)).await;
    for depth in [8, 1000, 2500] {
        let token = t.with_claim_text("x-deep", Some(&nested(depth)));
        assert!(token.len() <= MAX_TOKEN_BYTES);
        t.accepted(&format!("{depth}-deep array in an unknown claim"), &bearer(&token)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Claims: presence, JSON types, leeway
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn required_claims_missing_or_of_the_wrong_json_type_are_rejected() {
    let t = Target::start(Alg::Es256, &[]).await;
    let numeric = ["exp", "nbf", "iat"];
    let textual = ["iss", "aud", "sub", "jti", "sid", "role"];
    for field in numeric.iter().chain(&textual) {
        let real = t.claims[*field].to_string();
        let good = t.with_claim_text(field, Some(&real));
        t.tokens(&format!("{field} missing"), &t.with_claim_text(field, None), &good).await;
        let mut wrong: Vec<String> = vec!["null".into(), "true".into(), "{}".into(), format!("[{real}]")];
        if numeric.contains(field) {
            let n = t.claims[*field].as_u64().unwrap();
            wrong.extend([
                format!("\"{n}\""),            // a string
                format!("{n}.5"),              // a float
                format!("{n}.0"),              // an integral float
                format!("{n}e0"),              // exponent notation
                "1e309".into(),                // overflows f64
                "-1".into(),                   // negative
                format!("-{n}"),               // negative
                "18446744073709551616".into(), // u64::MAX + 1
                "NaN".into(),                  // not JSON at all
            ]);
        } else {
            wrong.extend(["123".into(), "0".into()]);
        }
        // Exact-match claims: near misses are other values. (`sub` and `jti` are not
        // compared with anything; only their emptiness is refused. `sid` is ours, opaque.)
        if ["iss", "aud", "role"].contains(field) {
            let s = t.claims[*field].as_str().unwrap();
            wrong.extend([format!("\"{s} \""), format!("\"{}\"", s.to_uppercase())]);
        }
        if *field != "sid" && !numeric.contains(field) {
            wrong.push("\"\"".into());
        }
        if *field == "role" {
            wrong.extend(["\"root\"".into(), "\"Admin\"".into()]);
        }
        for raw in wrong {
            if raw == real {
                continue;
            }
            t.tokens(&format!("{field}: {raw}"), &t.with_claim_text(field, Some(&raw)), &good).await;
        }
    }
    // A duplicate claim whose last value is another user or role.
    let claims = Value::Object(t.claims.clone()).to_string();
    let header = Value::Object(t.header()).to_string();
    for extra in [r#","sub":"user0"}"#, r#","role":"admin"}"#, r#","exp":"never"}"#] {
        let text = format!("{}{extra}", &claims[..claims.len() - 1]);
        let bad = sign_texts(&header, &text, &t.key.encoding, t.alg.jwt());
        t.tokens(&format!("duplicate claim {extra}"), &bad, &t.token()).await;
    }
    // `aud` as an array is valid JWT (RFC 7519 §4.1.3) but never what we issue; one shape.
    t.tokens(
        "aud as an array",
        &t.with_claims(|c| {
            c.insert("aud".into(), json!(["authbench-api"]));
        }),
        &t.token(),
    )
    .await;
    // Claims that are not an object at all.
    for text in ["[]", "null", "\"user1\"", "{}"] {
        let bad = sign_texts(&header, text, &t.key.encoding, t.alg.jwt());
        t.tokens(&format!("claims {text}"), &bad, &t.token()).await;
    }
}

fn now() -> u64 {
    auth_core::unix_millis() / 1000
}

/// Leeway is configured, and applies to `exp` and `nbf` both ways. The margins are 7 s or
/// more, so a slow machine cannot turn a pass into a fail.
#[tokio::test]
async fn leeway_is_applied_to_exp_and_nbf_and_no_further() {
    let lenient = Target::start(Alg::Hs256, &["--leeway", "10s"]).await;
    let strict = Target::start(Alg::Hs256, &["--leeway", "0s"]).await;
    let set = |t: &Target, field: &str, value: u64| {
        t.with_claims(|c| {
            c.insert(field.into(), json!(value));
        })
    };

    // exp three seconds ago: inside 10 s of leeway, outside 0 s.
    let n = now();
    lenient.accepted("expired 3 s ago, leeway 10 s", &bearer(&set(&lenient, "exp", n - 3))).await;
    strict.tokens("expired 3 s ago, leeway 0 s", &set(&strict, "exp", n - 3), &set(&strict, "exp", n + 60)).await;
    // exp thirty seconds ago: outside the leeway.
    lenient.tokens("expired 30 s ago, leeway 10 s", &set(&lenient, "exp", n - 30), &set(&lenient, "exp", n + 60)).await;

    // nbf three seconds ahead: inside 10 s, outside 0 s.
    let n = now();
    lenient.accepted("valid from 3 s ahead, leeway 10 s", &bearer(&set(&lenient, "nbf", n + 3))).await;
    strict.tokens("valid from 3 s ahead, leeway 0 s", &set(&strict, "nbf", n + 3), &set(&strict, "nbf", n)).await;
    lenient.tokens("valid from 60 s ahead, leeway 10 s", &set(&lenient, "nbf", n + 60), &set(&lenient, "nbf", n)).await;
}

// ---------------------------------------------------------------------------------------
// Refresh tokens and access tokens are not interchangeable
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_and_access_tokens_are_not_interchangeable() {
    let t = Target::start(Alg::Rs256, &[]).await;
    let issued = &t.issued;
    t.tokens("refresh token as a bearer access token", &issued.refresh_token, &issued.access_token).await;

    // An access token presented as a refresh token: 401 invalid_grant, and the family it
    // names is not touched (the real refresh token still rotates).
    refresh(&t.http, &t.server, &issued.access_token).await.assert_invalid_grant();
    // Nor are 43 characters of its signature, which have a refresh token's shape.
    refresh(&t.http, &t.server, &issued.access_token.rsplit_once('.').unwrap().1[..43]).await.assert_invalid_grant();
    let next = assert_token_response(&refresh(&t.http, &t.server, &issued.refresh_token).await);

    // /logout by bearer with a refresh token is an invalid token, and revokes nothing.
    let r =
        Reply::read(t.http.post(t.server.at("/logout")).bearer_auth(&next.refresh_token).send().await.unwrap()).await;
    r.assert_invalid_token();
    // /logout with an access token in the body is not a refresh token.
    let r = post_json(&t.http, &t.server.at("/logout"), &json!({"refresh_token": next.access_token})).await;
    r.assert_error(StatusCode::BAD_REQUEST, "malformed_refresh_token");
    // Controls: the refresh token still refreshes, the access token still authenticates.
    let last = assert_token_response(&refresh(&t.http, &t.server, &next.refresh_token).await);
    t.accepted("rotated access token", &bearer(&last.access_token)).await;
}

// ---------------------------------------------------------------------------------------
// Structural garbage and the Authorization header
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn structurally_broken_tokens_are_rejected() {
    for alg in Alg::ALL {
        let t = Target::start(alg, &[]).await;
        let good = t.token();
        let parts: Vec<&str> = good.split('.').collect();
        let [h, p, s] = parts.as_slice() else { unreachable!() };

        // Segment counts.
        for (what, bad) in [
            ("1 segment", h.to_string()),
            ("2 segments", format!("{h}.{p}")),
            ("4 segments, signature twice", format!("{h}.{p}.{s}.{s}")),
            ("4 segments, header twice", format!("{h}.{h}.{p}.{s}")),
            ("5 segments (JWE shape)", format!("{h}.{p}.{s}.{p}.{s}")),
            ("leading dot", format!(".{good}")),
            ("trailing dot", format!("{good}.")),
            ("empty header", format!(".{p}.{s}")),
            ("empty payload", format!("{h}..{s}")),
            ("only dots", "..".into()),
        ] {
            t.tokens(what, &bad, &good).await;
        }

        // Base64 variants: padding, the standard alphabet, whitespace.
        for (i, seg) in [h, p, s].iter().enumerate() {
            let pad = "=".repeat(match seg.len() % 4 {
                0 => 1,
                r => 4 - r,
            });
            let mut padded: Vec<String> = parts.iter().map(|x| x.to_string()).collect();
            padded[i] = format!("{seg}{pad}");
            t.tokens(&format!("segment {i} with base64 padding"), &padded.join("."), &good).await;
        }
        let mut plain = good.clone();
        for extra in 0.. {
            if plain.contains(['-', '_']) {
                break;
            }
            plain = t.with_claims(|c| {
                c.insert("n".into(), json!(extra));
            });
        }
        t.tokens("standard base64 alphabet (+ and /)", &plain.replace('-', "+").replace('_', "/"), &plain).await;
        for (what, bad) in [
            ("space after the first dot", format!("{h}. {p}.{s}")),
            ("tab inside the signature", format!("{h}.{p}.{}\t{}", &s[..10], &s[10..])),
            ("space inside the payload", format!("{h}.{} {}.{s}", &p[..10], &p[10..])),
            ("a second word after the token", format!("{good} {good}")),
        ] {
            t.tokens(what, &bad, &good).await;
        }

        // Bytes that are not UTF-8 (or not ASCII) in the header value.
        let raw = |prefix: &[u8], suffix: &[u8]| {
            let mut v = b"Bearer ".to_vec();
            v.extend_from_slice(prefix);
            v.extend_from_slice(good.as_bytes());
            v.extend_from_slice(suffix);
            Auth::raw(&[&v])
        };
        t.case("0xff after the token", raw(b"", b"\xff"), raw(b"", b"")).await;
        t.case("a lone UTF-8 continuation byte before the token", raw(b"\x80", b""), raw(b"", b"")).await;
        t.case("overlong UTF-8 encoding of '.'", raw(b"", b"\xc0\xae"), raw(b"", b"")).await;
        t.case("valid UTF-8 zero-width space after the token", raw(b"", "\u{200b}".as_bytes()), raw(b"", b"")).await;
        let mut mid = b"Bearer ".to_vec();
        mid.extend_from_slice(&good.as_bytes()[..20]);
        mid.push(0xe9);
        mid.extend_from_slice(&good.as_bytes()[21..]);
        t.case("a Latin-1 byte replacing a character", Auth::raw(&[&mid]), bearer(&good)).await;

        // The signature: truncated, bit-flipped.
        let sig = signature_of(&good);
        for (what, bad) in [
            ("signature missing one character", good[..good.len() - 1].to_owned()),
            ("signature missing two characters", good[..good.len() - 2].to_owned()),
            ("signature cut in half", format!("{h}.{p}.{}", &s[..s.len() / 2])),
            ("signature one byte short", with_signature(&good, &sig[..sig.len() - 1])),
            ("signature with a byte appended", with_signature(&good, &[sig.as_slice(), &[0]].concat())),
            ("signature with a zero byte prepended", with_signature(&good, &[&[0], sig.as_slice()].concat())),
        ] {
            t.tokens(what, &bad, &good).await;
        }
        for byte in [0, sig.len() / 2, sig.len() - 1] {
            for bit in [0, 7] {
                let mut flipped = sig.clone();
                flipped[byte] ^= 1 << bit;
                t.tokens(
                    &format!("signature bit {bit} of byte {byte} flipped"),
                    &with_signature(&good, &flipped),
                    &good,
                )
                .await;
            }
        }
        // The signed part changed, the signature kept.
        for (i, seg) in [h, p].iter().enumerate() {
            let mut bytes = URL_SAFE_NO_PAD.decode(seg).unwrap();
            let at = bytes.len() / 2;
            bytes[at] ^= 0x01;
            let mut changed: Vec<String> = parts.iter().map(|x| x.to_string()).collect();
            changed[i] = b64(&bytes);
            t.tokens(&format!("segment {i} bit-flipped, signature kept"), &changed.join("."), &good).await;
        }
        // Non-canonical base64: same signature bytes, spare bits of the last character set.
        let last = s.as_bytes()[s.len() - 1];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        if s.len() % 4 != 0 {
            let spare = alphabet[index ^ 1] as char;
            let bad = format!("{}{spare}", &good[..good.len() - 1]);
            t.tokens("signature spelled with non-zero spare bits", &bad, &good).await;
        }

        // Over 8 KiB, against the largest token that still fits: only the size differs.
        let padded = |n: usize| {
            t.with_claims(|c| {
                c.insert("pad".into(), json!("x".repeat(n)));
            })
        };
        let (mut lo, mut hi) = (0, MAX_TOKEN_BYTES);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if padded(mid).len() <= MAX_TOKEN_BYTES { lo = mid } else { hi = mid - 1 }
        }
        let (fits, too_big) = (padded(lo), padded(lo + 4));
        assert!(fits.len() <= MAX_TOKEN_BYTES && too_big.len() > MAX_TOKEN_BYTES);
        t.tokens(&format!("{} bytes", too_big.len()), &too_big, &fits).await;
        // Larger still, but under the HTTP header limit (--max-header-bytes, 16 KiB): the
        // token limit answers, with the bearer challenge.
        t.tokens("a 12 KiB token", &"a".repeat(12 * 1024), &good).await;
    }
}

#[tokio::test]
async fn the_authorization_header_must_be_one_bearer_credential() {
    let t = Target::start(Alg::Es256, &[]).await;
    let good = t.token();
    let one = bearer(&good);
    let basic = format!("Basic {}", STANDARD.encode("user1:demo-password"));
    let two = |a: String, b: String| Auth { authorization: vec![a.into_bytes(), b.into_bytes()], query: None };
    for (what, bad) in [
        ("two identical Bearer headers", two(format!("Bearer {good}"), format!("Bearer {good}"))),
        ("a valid and a garbage Bearer header", two(format!("Bearer {good}"), "Bearer garbage".into())),
        ("a garbage and a valid Bearer header", two("Bearer garbage".into(), format!("Bearer {good}"))),
        ("Basic and Bearer headers", two(basic.clone(), format!("Bearer {good}"))),
        ("Basic scheme with a password", Auth::value(basic.clone())),
        ("Basic scheme with the token", Auth::value(format!("Basic {good}"))),
        ("Token scheme", Auth::value(format!("Token {good}"))),
        ("JWT scheme", Auth::value(format!("JWT {good}"))),
        ("Bearer with a colon", Auth::value(format!("Bearer: {good}"))),
        ("Bearer glued to the token", Auth::value(format!("Bearer{good}"))),
        ("Bearer and a tab", Auth::value(format!("Bearer\t{good}"))),
        ("Bearers", Auth::value(format!("Bearers {good}"))),
        ("the token without a scheme", Auth::value(good.clone())),
        ("an empty header", Auth::value("")),
        ("Bearer and nothing", Auth::value("Bearer")),
        ("two tokens comma-separated", Auth::value(format!("Bearer {good}, Bearer {good}"))),
        // RFC 6750 §2.3 allows a query parameter; we deliberately do not (URLs get logged).
        ("access_token query parameter", Auth { authorization: vec![], query: Some(format!("access_token={good}")) }),
    ] {
        t.case(what, bad, one.clone()).await;
    }
    // The scheme is case-insensitive (RFC 7235 §2.1), and RFC 6750 §2.1 allows 1*SP.
    for scheme in ["bearer", "BEARER", "bEaReR", "Bearer "] {
        t.accepted(&format!("scheme {scheme:?}"), &Auth::value(format!("{scheme} {good}"))).await;
    }
}

/// What hyper and the server answer to header bytes a well-behaved client cannot send:
/// never a 5xx, never a 200.
#[tokio::test]
async fn raw_header_bytes_never_produce_a_5xx() {
    let t = Target::start(Alg::Hs256, &[]).await;
    let good = t.token();
    let addr = t.server.url.strip_prefix("http://").unwrap().to_owned();
    let send = |authorization: Vec<u8>| {
        let addr = addr.clone();
        async move {
            let mut req = b"GET /me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ".to_vec();
            req.extend_from_slice(&authorization);
            req.extend_from_slice(b"\r\n\r\n");
            raw_status(&addr, &req).await
        }
    };
    let with = |inner: &[u8]| [b"Bearer ".as_slice(), &good.as_bytes()[..10], inner, &good.as_bytes()[10..]].concat();
    for (what, value) in [
        ("NUL inside the token", with(b"\0")),
        ("DEL inside the token", with(b"\x7f")),
        ("a control character", with(b"\x01")),
        ("a bare CR", with(b"\r")),
        ("obs-fold continuation line", [b"Bearer\r\n ".as_slice(), good.as_bytes()].concat()),
    ] {
        let status = send(value).await;
        assert!(matches!(status, 400 | 401), "{what}: {status}");
    }
    assert_eq!(send(with(b"")).await, 200, "control: the same raw request with the token intact");
}

// ---------------------------------------------------------------------------------------
// Signature values out of range
// ---------------------------------------------------------------------------------------

/// Order of the P-256 group, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa,
    0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
/// Order of the Ed25519 group, little-endian.
const ED25519_L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// a − b for 32-byte big-endian numbers, a ≥ b.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// a + b for 32-byte little-endian numbers (no overflow in the uses here).
fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

/// a + b for big-endian numbers of equal length; one byte longer when it carries out.
fn add_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let s = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    if carry > 0 {
        out.insert(0, carry as u8);
    }
    out
}

/// ASN.1 DER `ECDSA-Sig-Value` for (r, s): what JWS forbids (RFC 7518 §3.4 wants R || S).
fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let int = |x: &[u8]| {
        let mut x: Vec<u8> = x.iter().copied().skip_while(|&b| b == 0).collect();
        if x.first().is_none_or(|&b| b & 0x80 != 0) {
            x.insert(0, 0);
        }
        [vec![0x02, x.len() as u8], x].concat()
    };
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

#[tokio::test]
async fn ecdsa_r_or_s_out_of_range_is_rejected() {
    let t = Target::start(Alg::Es256, &[]).await;
    let good = t.token();
    let sig = signature_of(&good);
    assert_eq!(sig.len(), 64, "ES256 signatures are R || S, 32 bytes each");
    let (r, s) = sig.split_at(32);
    let zero = [0u8; 32];
    let ones = [0xffu8; 32];
    let mut one = [0u8; 32];
    one[31] = 1;
    let n_plus_1 = {
        let mut x = P256_N;
        x[31] += 1; // the last byte of n is 0x51: no carry
        x
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("r = 0", [&zero[..], s].concat()),
        ("s = 0", [r, &zero[..]].concat()),
        ("r = s = 0", [&zero[..], &zero[..]].concat()),
        ("r = n", [&P256_N[..], s].concat()),
        ("s = n", [r, &P256_N[..]].concat()),
        ("r = n + 1", [&n_plus_1[..], s].concat()),
        ("s = n + 1", [r, &n_plus_1[..]].concat()),
        ("r = 2^256 - 1", [&ones[..], s].concat()),
        ("s = 2^256 - 1", [r, &ones[..]].concat()),
        ("r = s = 1", [&one[..], &one[..]].concat()),
        ("r and s swapped", [s, r].concat()),
        ("ASN.1 DER instead of R || S", der_signature(r, s)),
        ("R || S || 0", [&sig[..], &[0]].concat()),
    ];
    for (what, bad) in cases {
        t.tokens(what, &with_signature(&good, &bad), &good).await;
    }

    // ECDSA is malleable: (r, n − s) is a second valid signature of the same message, and
    // RFC 7518 does not ask verifiers to refuse it. It authenticates the same claims, so it
    // gains an attacker nothing, but it means a token's bytes do not identify it: anything
    // keyed on the token text (a denylist, a cache) must key on `jti` instead.
    let twin = with_signature(&good, &[r, &sub_be(&P256_N, s)].concat());
    assert_ne!(twin, good);
    t.accepted("high-s twin of a valid signature (ECDSA malleability)", &bearer(&twin)).await;
}

#[tokio::test]
async fn eddsa_and_rsa_signature_values_out_of_range_are_rejected() {
    let t = Target::start(Alg::EdDsa, &[]).await;
    let good = t.token();
    let sig = signature_of(&good);
    let (r, s) = sig.split_at(32);
    // S + L verifies in a verifier that does not check S < L (RFC 8032 §5.1.7 requires it);
    // that is the Ed25519 malleability.
    for (what, bad) in [
        ("S + L (non-canonical S)", [r, &add_le(s, &ED25519_L)].concat()),
        ("S = L", [r, &ED25519_L[..]].concat()),
        ("S = 0", [r, &[0u8; 32][..]].concat()),
        ("R = 0", [&[0u8; 32][..], s].concat()),
        ("all bits set", vec![0xff; 64]),
    ] {
        t.tokens(what, &with_signature(&good, &bad), &good).await;
    }

    let t = Target::start(Alg::Rs256, &[]).await;
    let good = t.token();
    let sig = signature_of(&good);
    let pem_text = std::fs::read_to_string(t.keys.path().join("rs256.pem")).unwrap();
    let body: String = pem_text.lines().filter(|l| !l.starts_with("-----")).collect();
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
    let n = pair.public_key().modulus().big_endian_without_leading_zero().to_vec();
    assert_eq!(n.len(), sig.len());
    for (what, bad) in [
        ("s = n", n.clone()),
        // Congruent to the real signature mod n: valid in a verifier that reduces s.
        ("s + n", add_be(&sig, &n)),
        ("s = 0", vec![0; n.len()]),
        ("s = 1", [vec![0; n.len() - 1], vec![1]].concat()),
        ("s = 2^2048 - 1", vec![0xff; n.len()]),
    ] {
        t.tokens(what, &with_signature(&good, &bad), &good).await;
    }
}

// ---------------------------------------------------------------------------------------
// Role changes and deleted users: the JWT revocation window
// ---------------------------------------------------------------------------------------

fn users_file(dir: &std::path::Path, lines: &[(&str, &str)], hash: &str) -> String {
    let path = dir.join("users.txt");
    let text: String = lines.iter().map(|(name, role)| format!("{name}:{role}:{hash}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// An access token carries the role it was issued with, and nothing is looked up on `/me`
/// or `/admin`. So after an admin is demoted, or a user deleted, and every instance is
/// restarted with the new users file, the old access token keeps its old role — and keeps
/// authenticating a deleted user — until its `exp`. This is the JWT revocation window
/// (at most `--access-ttl` plus the leeway); the revocation experiment measures it, and
/// session-server has none. The change reaches the client at the next `/refresh`, which
/// reads the current directory: the demoted user gets a `user` token, the deleted user
/// gets 401 `invalid_grant` and their refresh family is revoked.
#[tokio::test]
async fn a_role_change_or_deletion_reaches_old_access_tokens_only_at_refresh_or_exp() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("pw-alice-bob", HashParams { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap();
    let file = users_file(dir.path(), &[("alice", "admin"), ("bob", "user")], &hash);
    let keys = KeyDir::new(&[Alg::Es256]);
    let store = Store::redis();
    let http = client();

    let before = store.start("roles-1", Alg::Es256, &keys, &["--users-file", &file]).await;
    let alice = assert_token_response(&try_login(&http, &before, "alice", "pw-alice-bob").await);
    let bob = assert_token_response(&try_login(&http, &before, "bob", "pw-alice-bob").await);
    assert_eq!(get(&http, &before.at("/admin"), Some(&alice.access_token)).await.status, StatusCode::OK);
    before.stop().await;

    // Alice is demoted, Bob is deleted; the instance restarts with the new file.
    users_file(dir.path(), &[("alice", "user")], &hash);
    let after = store.start("roles-2", Alg::Es256, &keys, &["--users-file", &file]).await;
    try_login(&http, &after, "bob", "pw-alice-bob").await.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");

    // The window: the old tokens still say what they said, far from their exp.
    let exp = claims(&alice.access_token).exp;
    assert!(exp > now() + 200, "the tokens are far from exp; only revocation could stop them");
    let r = get(&http, &after.at("/admin"), Some(&alice.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "the demoted admin's old token still passes /admin until exp: {r:?}");
    assert_eq!(r.json(), json!({"user": "alice", "role": "admin", "instance": "roles-2"}));
    let r = get(&http, &after.at("/me"), Some(&bob.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "the deleted user's old token still authenticates until exp: {r:?}");
    assert_eq!(r.json(), json!({"user": "bob", "role": "user", "instance": "roles-2"}));

    // /refresh reads the directory now.
    let demoted = assert_token_response(&refresh(&http, &after, &alice.refresh_token).await);
    assert_eq!(claims(&demoted.access_token).role, auth_core::Role::User);
    get(&http, &after.at("/admin"), Some(&demoted.access_token)).await.assert_error(StatusCode::FORBIDDEN, "forbidden");
    let r = get(&http, &after.at("/me"), Some(&demoted.access_token)).await;
    assert_eq!(r.json(), json!({"user": "alice", "role": "user", "instance": "roles-2"}));
    refresh(&http, &after, &bob.refresh_token).await.assert_invalid_grant();
    refresh(&http, &after, &bob.refresh_token).await.assert_invalid_grant();
}

/// The window closes at `exp`: a deleted user's access token stops working once it
/// expires, with no revocation at all (`--access-ttl 1s`, `--leeway 0s`).
#[tokio::test]
async fn a_deleted_users_access_token_ends_at_its_exp() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("pw-carol", HashParams { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap();
    let file = users_file(dir.path(), &[("carol", "admin")], &hash);
    let keys = KeyDir::new(&[Alg::EdDsa]);
    let store = Store::redis();
    let http = client();
    let flags = ["--users-file", &file, "--access-ttl", "1s", "--leeway", "0s"];

    let before = store.start("del-1", Alg::EdDsa, &keys, &flags).await;
    let carol = assert_token_response(&try_login(&http, &before, "carol", "pw-carol").await);
    let r = get(&http, &before.at("/admin"), Some(&carol.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "control: the token works while carol exists: {r:?}");
    before.stop().await;

    users_file(dir.path(), &[], &hash);
    // A users file may not leave the server without users; the demo users keep it valid.
    let after = store.start("del-2", Alg::EdDsa, &keys, &flags).await;
    let exp = claims(&carol.access_token).exp;
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let r = get(&http, &after.at("/admin"), Some(&carol.access_token)).await;
        if r.status == StatusCode::UNAUTHORIZED {
            r.assert_invalid_token();
            assert!(now() > exp, "refused at {} before exp {exp}: the refusal must be the expiry", now());
            break;
        }
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert!(now() <= exp + 1, "still accepted after exp {exp}: {r:?}");
        assert!(Instant::now() < deadline, "the token was never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    refresh(&http, &after, &carol.refresh_token).await.assert_invalid_grant();
}
