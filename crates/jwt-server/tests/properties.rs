//! Property tests over the bearer-token parsing path (`app::bearer_token`, then
//! `TokenService::verify`), for every algorithm: arbitrary bytes and strings never panic and
//! never authenticate, and a valid token changed in any way is refused.
//!
//! The one change that keeps an ES256 token valid, the high-s twin of its signature, is
//! shown in `adversarial.rs`; random edits cannot reach it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::LazyLock, time::Duration};

use auth_core::Role;
use axum::http::{HeaderMap, HeaderValue, header};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jwt_server::{
    app::bearer_token,
    keys::{Alg, keygen, load},
    tokens::{TokenConfig, TokenService},
};
use proptest::{prelude::*, sample::Index};

/// One token service per algorithm, and a token each issued.
static SERVICES: LazyLock<Vec<(Alg, TokenService, String)>> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    Alg::ALL
        .iter()
        .map(|&alg| {
            keygen(alg, dir.path(), false).unwrap();
            let config = TokenConfig {
                issuer: "authbench".into(),
                audience: "authbench-api".into(),
                access_ttl: Duration::from_secs(3600),
                leeway: Duration::from_secs(5),
            };
            let service = TokenService::new(load(alg, dir.path()).unwrap(), config);
            let token = service.issue("user1", Role::User, "family").unwrap();
            (alg, service, token)
        })
        .collect()
});

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, ..ProptestConfig::default() }
}

/// No service accepts `token`.
fn refused_everywhere(token: &str) -> Result<(), TestCaseError> {
    for (alg, service, _) in SERVICES.iter() {
        prop_assert!(service.verify(token).is_err(), "{alg} accepted {token:?}");
    }
    Ok(())
}

/// One edit of a token. Inserted and replacing bytes are printable ASCII or tab, so the
/// result is still a `&str` and gets past the header parser into the token code.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index, usize),
    FlipBit(Index, u8),
    Swap(Index, Index),
    Truncate(Index),
    DuplicateSegment(Index),
}

fn text_byte() -> impl Strategy<Value = u8> {
    prop_oneof![0x20u8..0x7f, Just(b'\t'), Just(b'.'), Just(b'='), Just(b'-'), Just(b'_'), Just(b'A')]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), text_byte()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<Index>(), text_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), 0u8..7).prop_map(|(i, bit)| Edit::FlipBit(i, bit)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        any::<Index>().prop_map(Edit::Truncate),
        any::<Index>().prop_map(Edit::DuplicateSegment),
    ]
}

fn apply(token: &mut Vec<u8>, edit: &Edit) {
    if token.is_empty() {
        return;
    }
    match edit {
        Edit::Replace(i, b) => {
            let at = i.index(token.len());
            token[at] = *b;
        }
        Edit::Insert(i, b) => token.insert(i.index(token.len() + 1), *b),
        Edit::Delete(i, n) => {
            let at = i.index(token.len());
            token.drain(at..(at + n).min(token.len()));
        }
        Edit::FlipBit(i, bit) => {
            let at = i.index(token.len());
            token[at] ^= 1 << bit;
        }
        Edit::Swap(a, b) => {
            let (a, b) = (a.index(token.len()), b.index(token.len()));
            token.swap(a, b);
        }
        Edit::Truncate(i) => token.truncate(i.index(token.len())),
        Edit::DuplicateSegment(i) => {
            let text = String::from_utf8_lossy(token).into_owned();
            let mut segments: Vec<&str> = text.split('.').collect();
            let at = i.index(segments.len());
            segments.insert(at, segments[at]);
            *token = segments.join(".").into_bytes();
        }
    }
}

fn authorization(values: &[Vec<u8>]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            headers.append(header::AUTHORIZATION, v);
        }
    }
    headers
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_strings_are_refused(s in any::<String>()) {
        refused_everywhere(&s)?;
    }

    #[test]
    fn token_shaped_strings_are_refused(s in "[A-Za-z0-9_=+/ -]{0,120}(\\.[A-Za-z0-9_=+/ -]{0,400}){0,4}") {
        refused_everywhere(&s)?;
    }

    /// Well-formed base64url segments around header JSON that names each algorithm (and
    /// `none`), with arbitrary claims and signature bytes: past the parsers, into the
    /// signature check, and refused there.
    #[test]
    fn well_encoded_tokens_with_random_signatures_are_refused(
        alg in prop::sample::select(vec!["HS256", "RS256", "ES256", "EdDSA", "none", "HS512"]),
        kid in prop::sample::select(SERVICES.iter().map(|(_, s, _)| s.keys().kid.clone()).collect::<Vec<_>>()),
        claims in prop::collection::vec(any::<u8>(), 0..300),
        signature in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"{kid}"}}"#);
        let (_, _, issued) = &SERVICES[0];
        let real_claims = issued.split('.').nth(1).unwrap();
        for payload in [URL_SAFE_NO_PAD.encode(&claims), real_claims.to_owned()] {
            let token = format!("{}.{payload}.{}", URL_SAFE_NO_PAD.encode(&header), URL_SAFE_NO_PAD.encode(&signature));
            refused_everywhere(&token)?;
        }
    }

    /// A valid token, edited one to four times, is refused by every service unless the
    /// edits left it byte-identical (then only its own service accepts it).
    #[test]
    fn edited_valid_tokens_are_refused(which in 0..Alg::ALL.len(), edits in prop::collection::vec(edit(), 1..5)) {
        let (alg, service, issued) = &SERVICES[which];
        let mut bytes = issued.clone().into_bytes();
        for e in &edits {
            apply(&mut bytes, e);
        }
        let Ok(edited) = String::from_utf8(bytes) else { return Ok(()) };
        if edited == *issued {
            prop_assert!(service.verify(&edited).is_ok(), "{alg}: the unedited token was refused");
        } else {
            refused_everywhere(&edited)?;
            // And through the header parser, as a server would see it.
            let headers = authorization(&[format!("Bearer {edited}").into_bytes()]);
            if let Some(token) = bearer_token(&headers) {
                prop_assert!(service.verify(token).is_err(), "{alg} accepted {token:?} from the header");
            }
        }
    }

    /// Arbitrary `Authorization` header bytes, one to three headers: whatever
    /// `bearer_token` extracts is refused.
    #[test]
    fn arbitrary_authorization_headers_never_authenticate(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..4),
        prefix in prop::sample::select(vec!["", "Bearer ", "bearer  ", "Basic ", "Bearer"]),
    ) {
        let values: Vec<Vec<u8>> = values.into_iter().map(|v| [prefix.as_bytes(), &v].concat()).collect();
        let headers = authorization(&values);
        if let Some(token) = bearer_token(&headers) {
            prop_assert!(!token.is_empty() && !token.bytes().any(|b| b.is_ascii_whitespace()), "{token:?}");
            refused_everywhere(token)?;
        }
    }

    /// The positive side: the scheme in any case, followed by one or more spaces, yields
    /// exactly the token, which verifies.
    #[test]
    fn any_spelling_of_the_bearer_scheme_yields_the_token(
        which in 0..Alg::ALL.len(),
        upper in prop::collection::vec(any::<bool>(), 6),
        spaces in 1usize..4,
    ) {
        let (alg, service, issued) = &SERVICES[which];
        let scheme: String = "bearer".chars().zip(&upper).map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c }).collect();
        let headers = authorization(&[format!("{scheme}{}{issued}", " ".repeat(spaces)).into_bytes()]);
        prop_assert_eq!(bearer_token(&headers), Some(issued.as_str()));
        prop_assert!(service.verify(issued).is_ok(), "{}", alg);
    }
}
