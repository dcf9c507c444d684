//! The HTTP contract of jwt-server (docs/http-api.md) for every signing algorithm, over real
//! HTTP on 127.0.0.1: login, bearer authentication, authorization, JWKS, refresh rotation
//! and reuse detection, logout, expiry, keys, health, metrics and error bodies.
//!
//! Each test starts its own in-process instances (and, with Redis, its own key prefix), so
//! the tests run in parallel without touching each other's data. Multi-instance, outage and
//! concurrency tests are in `stores.rs`; the binary's command line is in `cli.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use auth_core::{Role, wire::MeResponse};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use jwt_server::{keys::Alg, tokens::AccessClaims};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn me_body(user: &str, role: Role, instance: &str) -> MeResponse {
    MeResponse { user: user.into(), role, instance: instance.into() }
}

// ---------------------------------------------------------------------------------------
// login → /me → /admin → JWKS, for each algorithm
// ---------------------------------------------------------------------------------------

/// What an issued token must look like, and that the published JWK verifies it.
async fn login_me_admin_and_jwks(alg: Alg) {
    let keys = KeyDir::new(&[alg]);
    let server = TestServer::start("alg-1", alg, &keys, &[]).await;
    let http = client();

    // Admin.
    let admin = login(&http, &server, "user0").await;
    assert_eq!(admin.expires_in, 300);
    let header = jsonwebtoken::decode_header(&admin.access_token).unwrap();
    assert_eq!(header.alg, alg.jwt());
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.clone().expect("tokens name their key");
    assert!(header.jku.is_none() && header.jwk.is_none() && header.x5u.is_none());
    let c = claims(&admin.access_token);
    assert_eq!((c.sub.as_str(), c.role), ("user0", Role::Admin));
    assert_eq!((c.iss.as_str(), c.aud.as_str()), ("authbench", "authbench-api"));
    assert_eq!(c.exp - c.iat, 300);
    assert_eq!(c.nbf, c.iat);
    assert!(!c.jti.is_empty() && !c.sid.is_empty());

    let r = get(&http, &server.at("/me"), Some(&admin.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json(), json!({"user": "user0", "role": "admin", "instance": "alg-1"}));

    let r = get(&http, &server.at("/admin"), Some(&admin.access_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json(), json!({"user": "user0", "role": "admin", "instance": "alg-1"}));

    // Ordinary user: /me yes, /admin no.
    let user = login(&http, &server, "user1").await;
    assert_ne!(user.access_token, admin.access_token);
    assert_ne!(user.refresh_token, admin.refresh_token);
    assert_ne!(claims(&user.access_token).sid, c.sid, "every login starts its own family");
    assert_eq!(me(&http, &server, &user.access_token).await, me_body("user1", Role::User, "alg-1"));
    let r = get(&http, &server.at("/admin"), Some(&user.access_token)).await;
    r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(r.header("www-authenticate"), None, "403 is not an authentication challenge");

    // JWKS: public keys only, the kid of issued tokens, and the key verifies them.
    let r = get(&http, &server.at("/.well-known/jwks.json"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"), "public keys may be cached");
    let jwks = r.json();
    let published = jwks["keys"].as_array().unwrap();
    if alg == Alg::Hs256 {
        assert_eq!(jwks, json!({"keys": []}), "an HMAC secret is never published");
        return;
    }
    assert_eq!(published.len(), 1, "{jwks}");
    let jwk = published[0].as_object().unwrap();
    assert_eq!(jwk["kid"], json!(kid));
    assert_eq!(jwk["alg"], json!(alg.to_string()));
    assert_eq!(jwk["use"], json!("sig"));
    let str_of = |k: &str| jwk[k].as_str().unwrap_or_else(|| panic!("{k} missing in {jwk:?}"));
    let (expected_fields, decoding): (&[&str], DecodingKey) = match alg {
        Alg::Rs256 => {
            assert_eq!(jwk["kty"], "RSA");
            assert_eq!(str_of("e"), "AQAB");
            assert_eq!(URL_SAFE_NO_PAD.decode(str_of("n")).unwrap().len(), 256, "2048-bit modulus");
            (
                &["alg", "e", "kid", "kty", "n", "use"],
                DecodingKey::from_rsa_components(str_of("n"), str_of("e")).unwrap(),
            )
        }
        Alg::Es256 => {
            assert_eq!(jwk["kty"], "EC");
            assert_eq!(jwk["crv"], "P-256");
            assert_eq!(URL_SAFE_NO_PAD.decode(str_of("x")).unwrap().len(), 32);
            assert_eq!(URL_SAFE_NO_PAD.decode(str_of("y")).unwrap().len(), 32);
            (
                &["alg", "crv", "kid", "kty", "use", "x", "y"],
                DecodingKey::from_ec_components(str_of("x"), str_of("y")).unwrap(),
            )
        }
        Alg::EdDsa => {
            assert_eq!(jwk["kty"], "OKP");
            assert_eq!(jwk["crv"], "Ed25519");
            assert_eq!(URL_SAFE_NO_PAD.decode(str_of("x")).unwrap().len(), 32);
            (&["alg", "crv", "kid", "kty", "use", "x"], DecodingKey::from_ed_components(str_of("x")).unwrap())
        }
        Alg::Hs256 => unreachable!(),
    };
    let mut fields: Vec<&str> = jwk.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, expected_fields, "no private parameters (d, p, q, …) in the JWK");

    let mut validation = Validation::new(alg.jwt());
    validation.set_issuer(&["authbench"]);
    validation.set_audience(&["authbench-api"]);
    for token in [&admin.access_token, &user.access_token] {
        let verified = jsonwebtoken::decode::<AccessClaims>(token, &decoding, &validation)
            .unwrap_or_else(|e| panic!("the published {alg} key does not verify an issued token: {e}"));
        assert_eq!(verified.claims, claims(token));
    }
    // And it is that key, not any key: a token signed by another key does not verify.
    let other_keys = KeyDir::new(&[alg]);
    let other = TestServer::start("alg-2", alg, &other_keys, &[]).await;
    let foreign = login(&http, &other, "user1").await;
    assert!(jsonwebtoken::decode::<AccessClaims>(&foreign.access_token, &decoding, &validation).is_err());
}

#[tokio::test]
async fn login_me_admin_and_jwks_hs256() {
    login_me_admin_and_jwks(Alg::Hs256).await;
}

#[tokio::test]
async fn login_me_admin_and_jwks_rs256() {
    login_me_admin_and_jwks(Alg::Rs256).await;
}

#[tokio::test]
async fn login_me_admin_and_jwks_es256() {
    login_me_admin_and_jwks(Alg::Es256).await;
}

#[tokio::test]
async fn login_me_admin_and_jwks_eddsa() {
    login_me_admin_and_jwks(Alg::EdDsa).await;
}

// ---------------------------------------------------------------------------------------
// /login errors
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_rejects_bad_credentials_identically() {
    let keys = KeyDir::new(&[Alg::Es256]);
    let server = TestServer::start("cred-1", Alg::Es256, &keys, &[]).await;
    let http = client();

    let wrong_password = try_login(&http, &server, "user1", "not-the-password").await;
    let unknown_user = try_login(&http, &server, "nobody", DEMO_PASSWORD).await;
    let empty_password = try_login(&http, &server, "user1", "").await;
    for r in [&wrong_password, &unknown_user, &empty_password] {
        r.assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
        assert_eq!(r.header("www-authenticate"), None, "{r:?}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    assert_eq!(wrong_password.body, unknown_user.body, "unknown user and wrong password look alike");
    assert_eq!(wrong_password.body, r#"{"error":"invalid_credentials"}"#);

    // Overlong passwords are refused before any hashing.
    let r = try_login(&http, &server, "user1", &"x".repeat(1025)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "password_too_long");

    // And the right password still works afterwards (no lockout from a few failures).
    login(&http, &server, "user1").await;
}

#[tokio::test]
async fn login_and_refresh_reject_malformed_bodies() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let server = TestServer::start("body-1", Alg::Hs256, &keys, &[]).await;
    let http = client();

    for route in ["/login", "/refresh"] {
        let url = server.at(route);
        let raw = |ct: Option<&'static str>, body: String| {
            let mut req = http.post(&url).body(body);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            async move { Reply::read(req.send().await.unwrap()).await }
        };
        // 400: not JSON at all.
        for broken in ["{nope", "", "{\"", "{,}"] {
            raw(Some("application/json"), broken.into()).await.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
        }
        // 415: not declared as JSON.
        raw(Some("text/plain"), r#"{"username":"user0","password":"demo-password"}"#.into())
            .await
            .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        raw(None, r#"{"refresh_token":"x"}"#.into())
            .await
            .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
        // 422: JSON, wrong shape (missing, mistyped and unknown fields).
        for body in [json!({"user": "user0"}), json!({"username": 5, "password": 5, "refresh_token": 5}), json!([1, 2])]
        {
            post_json(&http, &url, &body).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
        }
        let extra = if route == "/login" {
            json!({"username": "user0", "password": DEMO_PASSWORD, "admin": true})
        } else {
            json!({"refresh_token": "x", "scope": "admin"})
        };
        post_json(&http, &url, &extra).await.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
        // 413: over 16 KiB, even when otherwise valid JSON.
        let big = json!({"username": "user0", "password": "p".repeat(16 * 1024)}).to_string();
        assert!(big.len() > 16 * 1024);
        raw(Some("application/json"), big).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    }

    // A refresh token that cannot be one of ours is refused like any other bad grant.
    for bad in ["", "short", &"A".repeat(44), &"!".repeat(43)] {
        refresh(&http, &server, bad).await.assert_invalid_grant();
    }
}

// ---------------------------------------------------------------------------------------
// Bearer authentication
// ---------------------------------------------------------------------------------------

/// A signed token with arbitrary header and claims (for forgeries).
fn forge(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

#[tokio::test]
async fn me_and_admin_reject_missing_and_invalid_bearer_tokens() {
    let keys = KeyDir::new(&[Alg::Es256, Alg::Hs256]);
    let server = TestServer::start("bearer-1", Alg::Es256, &keys, &[]).await;
    let http = client();
    let user = login(&http, &server, "user1").await;
    let valid = user.access_token.as_str();

    let send = |path: &'static str, auth: Vec<String>| {
        let mut req = http.get(server.at(path));
        for value in auth {
            req = req.header("authorization", value);
        }
        async move { Reply::read(req.send().await.unwrap()).await }
    };

    // Tampered payload: user1 promotes itself to admin, keeping the signature.
    let parts: Vec<&str> = valid.split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert!(payload.contains(r#""role":"user""#), "{payload}");
    let promoted = URL_SAFE_NO_PAD.encode(payload.replace(r#""role":"user""#, r#""role":"admin""#));
    let tampered = format!("{}.{promoted}.{}", parts[0], parts[2]);

    // `alg: none`, and HS256 keyed with the public key (algorithm confusion).
    let mut claims_json = serde_json::to_value(claims(valid)).unwrap();
    claims_json["role"] = json!("admin");
    let kid = jsonwebtoken::decode_header(valid).unwrap().kid.unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string());
    let alg_none = format!("{none_header}.{}.", URL_SAFE_NO_PAD.encode(claims_json.to_string()));
    let jwks = get(&http, &server.at("/.well-known/jwks.json"), None).await.json();
    let public = jwks["keys"][0].to_string();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = Some(kid.clone());
    let confused = forge(&hs_header, &claims_json, &EncodingKey::from_secret(public.as_bytes()).unwrap());
    // A correctly signed token with a wrong audience, issuer, typ or kid.
    let es_key = EncodingKey::from_ec_pem(&std::fs::read(keys.path().join("es256.pem")).unwrap()).unwrap();
    let mut es_header = Header::new(Algorithm::ES256);
    es_header.typ = Some("at+jwt".into());
    es_header.kid = Some(kid.clone());
    let good_claims = serde_json::to_value(claims(valid)).unwrap();
    assert_eq!(
        me(&http, &server, &forge(&es_header, &good_claims, &es_key)).await,
        me_body("user1", Role::User, "bearer-1"),
        "control: a token forged with the real key is accepted, so the rejections below are about the field changed"
    );
    let with = |field: &str, value: Value| {
        let mut c = good_claims.clone();
        c[field] = value;
        forge(&es_header, &c, &es_key)
    };
    let wrong_aud = with("aud", json!("someone-else"));
    let wrong_iss = with("iss", json!("evil"));
    let expired = with("exp", json!(claims(valid).iat - 60));
    let not_yet = with("nbf", json!(claims(valid).iat + 600));
    let mut jwt_typ = es_header.clone();
    jwt_typ.typ = Some("JWT".into());
    let wrong_typ = forge(&jwt_typ, &good_claims, &es_key);
    let mut other_kid = es_header.clone();
    other_kid.kid = Some("another-key".into());
    let wrong_kid = forge(&other_kid, &good_claims, &es_key);

    let bearer = |t: &str| vec![format!("Bearer {t}")];
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("no Authorization header", vec![]),
        ("garbage token", bearer("garbage")),
        ("Basic scheme", vec!["Basic dXNlcjE6ZGVtby1wYXNzd29yZA==".into()]),
        ("Bearer without token", vec!["Bearer".into()]),
        ("Bearer with empty token", vec!["Bearer ".into()]),
        ("token without scheme", vec![valid.to_owned()]),
        ("two Authorization headers", vec![format!("Bearer {valid}"), format!("Bearer {valid}")]),
        ("space inside the token", vec![format!("Bearer {} x", valid)]),
        ("oversized token", bearer(&"a".repeat(9000))),
        ("tampered payload", bearer(&tampered)),
        ("alg none", bearer(&alg_none)),
        ("HS256 keyed with the public key", bearer(&confused)),
        ("wrong audience", bearer(&wrong_aud)),
        ("wrong issuer", bearer(&wrong_iss)),
        ("expired", bearer(&expired)),
        ("not yet valid", bearer(&not_yet)),
        ("typ JWT instead of at+jwt", bearer(&wrong_typ)),
        ("unknown kid", bearer(&wrong_kid)),
    ];
    for (what, auth) in cases {
        for path in ["/me", "/admin"] {
            let r = send(path, auth.clone()).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what} on {path}: {r:?}");
            r.assert_invalid_token();
            assert_eq!(r.header("cache-control"), Some("no-store"));
        }
    }

    // The scheme is case-insensitive (RFC 7235 §2.1).
    let r = send("/me", vec![format!("bearer {valid}")]).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json(), json!({"user": "user1", "role": "user", "instance": "bearer-1"}));
}

#[tokio::test]
async fn tokens_of_another_key_or_algorithm_are_rejected() {
    let http = client();
    for alg in Alg::ALL {
        let keys_a = KeyDir::new(&[alg]);
        let keys_b = KeyDir::new(&[alg]);
        let a = TestServer::start("key-a", alg, &keys_a, &[]).await;
        let b = TestServer::start("key-b", alg, &keys_b, &[]).await;
        let token = login(&http, &a, "user0").await.access_token;
        assert_eq!(me(&http, &a, &token).await, me_body("user0", Role::Admin, "key-a"));
        let r = get(&http, &b.at("/me"), Some(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{alg}: {r:?}");
        r.assert_invalid_token();
        // Same key directory, other algorithm: also refused (the algorithm is pinned).
        let other_alg = if alg == Alg::Hs256 { Alg::Es256 } else { Alg::Hs256 };
        jwt_server::keys::keygen(other_alg, keys_a.path(), false).unwrap();
        let c = TestServer::start("key-c", other_alg, &keys_a, &[]).await;
        let r = get(&http, &c.at("/me"), Some(&token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{alg} token on {other_alg}: {r:?}");
        r.assert_invalid_token();
    }
}

// ---------------------------------------------------------------------------------------
// Refresh rotation, reuse detection, logout
// ---------------------------------------------------------------------------------------

async fn refresh_rotates_and_reuse_revokes_the_family(store: Store) {
    let keys = KeyDir::new(&[Alg::EdDsa]);
    let server = store.start("rot-1", Alg::EdDsa, &keys, &[]).await;
    let http = client();

    let first = login(&http, &server, "user1").await;
    let r = refresh(&http, &server, &first.refresh_token).await;
    let second = assert_token_response(&r);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.expires_in, 300);
    let (c1, c2) = (claims(&first.access_token), claims(&second.access_token));
    assert_eq!(c2.sid, c1.sid, "a refresh stays in its family");
    assert_ne!(c2.jti, c1.jti);
    assert_eq!(me(&http, &server, &second.access_token).await, me_body("user1", Role::User, "rot-1"));

    // Chained rotation works.
    let third = assert_token_response(&refresh(&http, &server, &second.refresh_token).await);
    // An unrelated family, to show that revocation is per family.
    let bystander = login(&http, &server, "user1").await;

    // Reusing an already rotated token: refused, and the whole family is revoked.
    refresh(&http, &server, &first.refresh_token).await.assert_invalid_grant();
    refresh(&http, &server, &third.refresh_token).await.assert_invalid_grant();
    // Revoked for good.
    refresh(&http, &server, &third.refresh_token).await.assert_invalid_grant();
    // The other family is untouched.
    assert_token_response(&refresh(&http, &server, &bystander.refresh_token).await);
    // A well-formed token nobody issued.
    refresh(&http, &server, &URL_SAFE_NO_PAD.encode([7u8; 32])).await.assert_invalid_grant();
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family_memory() {
    refresh_rotates_and_reuse_revokes_the_family(Store::Memory).await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family_redis() {
    refresh_rotates_and_reuse_revokes_the_family(Store::redis()).await;
}

async fn logout(store: Store) {
    let keys = KeyDir::new(&[Alg::Rs256]);
    let server = store.start("out-1", Alg::Rs256, &keys, &[]).await;
    let http = client();
    let url = server.at("/logout");

    // With the refresh token in the body.
    let by_body = login(&http, &server, "user2").await;
    let bystander = login(&http, &server, "user2").await;
    let r = post_json(&http, &url, &json!({"refresh_token": by_body.refresh_token})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(r.body, "");
    refresh(&http, &server, &by_body.refresh_token).await.assert_invalid_grant();
    // The access token is not revoked: it stays valid until its exp (the JWT trade-off).
    assert_eq!(me(&http, &server, &by_body.access_token).await, me_body("user2", Role::User, "out-1"));

    // With only the bearer token: its family (the `sid` claim) is revoked.
    let by_bearer = login(&http, &server, "user3").await;
    let rotated = assert_token_response(&refresh(&http, &server, &by_bearer.refresh_token).await);
    // The first access token names the same family as the rotated refresh token.
    let r = Reply::read(http.post(&url).bearer_auth(&by_bearer.access_token).send().await.unwrap()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{r:?}");
    assert_eq!(r.body, "");
    refresh(&http, &server, &rotated.refresh_token).await.assert_invalid_grant();

    // Logging out one family leaves the user's other sessions alone.
    assert_token_response(&refresh(&http, &server, &bystander.refresh_token).await);

    // Logout is idempotent and does not reveal which tokens exist.
    let again = post_json(&http, &url, &json!({"refresh_token": by_body.refresh_token})).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "{again:?}");
    let unknown = post_json(&http, &url, &json!({"refresh_token": URL_SAFE_NO_PAD.encode([9u8; 32])})).await;
    assert_eq!(unknown.status, StatusCode::NO_CONTENT, "{unknown:?}");

    // Nothing to identify a session: 401 with the bearer challenge.
    let r = Reply::read(http.post(&url).send().await.unwrap()).await;
    r.assert_invalid_token();
    let r = Reply::read(http.post(&url).bearer_auth("garbage").send().await.unwrap()).await;
    r.assert_invalid_token();
    // A body that is not a refresh request.
    let r = Reply::read(http.post(&url).header("content-type", "application/json").body("{nope").send().await.unwrap())
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "malformed_json");
    post_json(&http, &url, &json!({"token": "x"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable_entity");
    post_json(&http, &url, &json!({"refresh_token": "short"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "malformed_refresh_token");
    let big = json!({"refresh_token": "x".repeat(16 * 1024)}).to_string();
    let r =
        Reply::read(http.post(&url).header("content-type", "application/json").body(big).send().await.unwrap()).await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
}

#[tokio::test]
async fn logout_revokes_the_family_memory() {
    logout(Store::Memory).await;
}

#[tokio::test]
async fn logout_revokes_the_family_redis() {
    logout(Store::redis()).await;
}

// ---------------------------------------------------------------------------------------
// Expiry
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn access_tokens_expire_at_exp_without_leeway() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let server = TestServer::start("exp-1", Alg::Hs256, &keys, &["--access-ttl", "1s", "--leeway", "0s"]).await;
    let http = client();
    let t = login(&http, &server, "user1").await;
    assert_eq!(t.expires_in, 1);
    let c = claims(&t.access_token);
    assert_eq!(c.exp - c.iat, 1);
    assert_eq!(me(&http, &server, &t.access_token).await, me_body("user1", Role::User, "exp-1"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    get(&http, &server.at("/me"), Some(&t.access_token)).await.assert_invalid_token();
    // The refresh token outlives it and gets a fresh, working access token.
    let fresh = assert_token_response(&refresh(&http, &server, &t.refresh_token).await);
    assert_eq!(me(&http, &server, &fresh.access_token).await, me_body("user1", Role::User, "exp-1"));
}

#[tokio::test]
async fn sub_second_access_ttl_reports_what_the_token_says() {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let server = TestServer::start("exp-2", Alg::Hs256, &keys, &["--access-ttl", "500ms"]).await;
    let http = client();
    let t = login(&http, &server, "user1").await;
    let c = claims(&t.access_token);
    assert_eq!(c.exp - c.iat, 1, "exp has whole seconds; the lifetime is rounded up to one");
    assert_eq!(t.expires_in, 1, "expires_in must match the token's lifetime, never 0");
}

async fn refresh_tokens_expire(store: Store) {
    let keys = KeyDir::new(&[Alg::Hs256]);
    let server = store.start("rexp-1", Alg::Hs256, &keys, &["--refresh-ttl", "1s"]).await;
    let http = client();
    let t = login(&http, &server, "user1").await;
    // Within the TTL it rotates (and the successor gets a fresh TTL)…
    let next = assert_token_response(&refresh(&http, &server, &t.refresh_token).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // …after it, it is refused.
    refresh(&http, &server, &next.refresh_token).await.assert_invalid_grant();
    // The access token (5 min) is unaffected.
    assert_eq!(me(&http, &server, &next.access_token).await, me_body("user1", Role::User, "rexp-1"));
}

#[tokio::test]
async fn refresh_tokens_expire_memory() {
    refresh_tokens_expire(Store::Memory).await;
}

#[tokio::test]
async fn refresh_tokens_expire_redis() {
    refresh_tokens_expire(Store::redis()).await;
}

// ---------------------------------------------------------------------------------------
// healthz, metrics, 404, 405
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn health_metrics_and_unknown_routes() {
    let keys = KeyDir::new(&[Alg::Es256]);
    let server = TestServer::start("ops-1", Alg::Es256, &keys, &[]).await;
    let http = client();

    let r = get(&http, &server.at("/healthz"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.json(), json!({"status": "ok"}));

    let t = login(&http, &server, "user1").await;
    me(&http, &server, &t.access_token).await;
    me(&http, &server, &t.access_token).await;
    get(&http, &server.at("/me"), None).await.assert_invalid_token();
    get(&http, &server.at("/admin"), Some(&t.access_token)).await.assert_error(StatusCode::FORBIDDEN, "forbidden");

    // 404 is JSON too, and unknown paths share one metrics series.
    for path in ["/nope", "/me/extra", "/.well-known/openid-configuration"] {
        get(&http, &server.at(path), None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    }

    let r = get(&http, &server.at("/metrics"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = &r.body;
    for line in [
        "authbench_info{system=\"jwt-es256\",instance=\"ops-1\"} 1\n",
        "authbench_http_requests_total{route=\"/healthz\",status=\"200\"} 1\n",
        "authbench_http_requests_total{route=\"/login\",status=\"200\"} 1\n",
        "authbench_http_requests_total{route=\"/me\",status=\"200\"} 2\n",
        "authbench_http_requests_total{route=\"/me\",status=\"401\"} 1\n",
        "authbench_http_requests_total{route=\"/admin\",status=\"403\"} 1\n",
        "authbench_http_requests_total{route=\"other\",status=\"404\"} 3\n",
        "authbench_http_request_duration_seconds_count{route=\"/me\"} 3\n",
        "authbench_store_call_duration_seconds_count{op=\"put\"} 1\n",
        "authbench_store_errors_total{op=\"put\"} 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    // 405 for a known path with the wrong method, as JSON.
    get(&http, &server.at("/login"), None).await.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    get(&http, &server.at("/refresh"), None).await.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let r = Reply::read(http.post(server.at("/me")).send().await.unwrap()).await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
}
