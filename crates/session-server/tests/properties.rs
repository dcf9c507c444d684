//! Property tests over the cookie parsing path (`cookie::session_from_headers`, then
//! `SessionId::parse`): arbitrary bytes and strings never panic, and only the exact,
//! canonical encoding of an issued ID is read as that ID.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::{HeaderMap, HeaderValue, header};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use proptest::{prelude::*, sample::Index};
use session_server::{
    cookie::{COOKIE_NAME, CookieSession, session_from_headers},
    id::{ENCODED_LEN, SessionId},
};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, ..ProptestConfig::default() }
}

fn cookie_headers<V: AsRef<[u8]>>(values: &[V]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v.as_ref()) {
            headers.append(header::COOKIE, v);
        }
    }
    headers
}

/// One edit of an encoded ID; new bytes are printable ASCII or tab.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Swap(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = prop_oneof![0x20u8..0x7f, Just(b'\t'), Just(b'A'), Just(b'-'), Just(b'_'), Just(b'=')];
    prop_oneof![
        (any::<Index>(), byte.clone()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<Index>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        if b.is_empty() {
            break;
        }
        match e {
            Edit::Replace(i, c) => {
                let at = i.index(b.len());
                b[at] = *c;
            }
            Edit::Insert(i, c) => b.insert(i.index(b.len() + 1), *c),
            Edit::Delete(i) => {
                b.remove(i.index(b.len()));
            }
            Edit::Swap(x, y) => {
                let (x, y) = (x.index(b.len()), y.index(b.len()));
                b.swap(x, y);
            }
        }
    }
    String::from_utf8(b).unwrap()
}

/// Other cookies: a name that is never the session cookie's, and a value without `;`.
fn other_cookie() -> impl Strategy<Value = String> {
    let name = "[!#$%&'*+.^_`|~0-9A-Za-z-]{0,12}".prop_filter("not the session cookie", |n| n.trim() != COOKIE_NAME);
    let value = prop_oneof!["[!#-:<-~]{0,24}", "[^;\\x00-\\x1f\\x7f]{0,12}"];
    prop_oneof![(name, value).prop_map(|(n, v)| format!("{n}={v}")), "[a-z]{1,8}", Just(String::new())]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parse_accepts_only_canonical_encodings(s in any::<String>()) {
        if let Some(id) = SessionId::parse(&s) {
            prop_assert_eq!(id.encode(), s);
        }
    }

    /// Strings close to an ID (its alphabet, the standard one, padding, lengths 40 to 46):
    /// parse succeeds exactly when the text is the canonical base64url of 32 bytes.
    #[test]
    fn parse_is_exactly_canonical_base64url_of_32_bytes(s in "[A-Za-z0-9_+/=-]{40,46}|[A-Za-z0-9_-]{43}") {
        let canonical = URL_SAFE_NO_PAD
            .decode(&s)
            .ok()
            .filter(|bytes| bytes.len() == 32 && URL_SAFE_NO_PAD.encode(bytes) == s);
        prop_assert_eq!(SessionId::parse(&s).is_some(), canonical.is_some(), "{}", s);
        if let Some(id) = SessionId::parse(&s) {
            prop_assert_eq!(s.len(), ENCODED_LEN);
            prop_assert_eq!(id.encode(), s);
        }
    }

    /// An issued ID, edited: never parses back to that ID unless unchanged.
    #[test]
    fn an_edited_id_is_never_the_issued_id(edits in prop::collection::vec(edit(), 1..4)) {
        let id = SessionId::generate();
        let text = id.encode();
        let edited = apply(&text, &edits);
        if edited == text {
            prop_assert_eq!(SessionId::parse(&edited), Some(id));
        } else {
            prop_assert_ne!(SessionId::parse(&edited), Some(id));
        }
    }

    /// Arbitrary bytes in one to three `Cookie` headers never panic and, since no ID in
    /// them was issued, never name a session they do not spell out in full.
    #[test]
    fn arbitrary_cookie_bytes_never_panic(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..4),
        prefix in prop::sample::select(vec!["", "__Host-sid=", "a=b; __Host-sid="]),
    ) {
        let values: Vec<Vec<u8>> = values.into_iter().map(|v| [prefix.as_bytes(), &v].concat()).collect();
        let headers = cookie_headers(&values);
        if let CookieSession::Present(id) = session_from_headers(&headers) {
            let pair = format!("{COOKIE_NAME}={}", id.encode());
            let all: Vec<&str> = headers.get_all(header::COOKIE).iter().map(|v| std::str::from_utf8(v.as_bytes()).unwrap()).collect();
            prop_assert!(all.iter().any(|v| v.contains(&pair)), "{:?} found in {:?}", id, all);
        }
    }

    /// The positive side: an issued ID among arbitrary other cookies, in any order and
    /// split over several headers, is found.
    #[test]
    fn an_issued_id_among_other_cookies_is_found(
        before in prop::collection::vec(other_cookie(), 0..6),
        after in prop::collection::vec(other_cookie(), 0..6),
        split in any::<bool>(),
    ) {
        let id = SessionId::generate();
        let mine = format!("{COOKIE_NAME}={}", id.encode());
        let headers = if split {
            cookie_headers(&[before.join("; "), mine, after.join("; ")])
        } else {
            cookie_headers(&[[before, vec![mine], after].concat().join("; ")])
        };
        prop_assert_eq!(session_from_headers(&headers), CookieSession::Present(id));
    }

    /// An issued ID edited inside its cookie, among other cookies: never read as that ID,
    /// unless the edits only added the spaces or tabs cookie parsing trims, or a `;` that
    /// ends the pair right after the ID.
    #[test]
    fn an_edited_id_in_a_cookie_header_is_never_the_issued_id(
        others in prop::collection::vec(other_cookie(), 0..4),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let id = SessionId::generate();
        let text = id.encode();
        let edited = apply(&text, &edits);
        let line = [others, vec![format!("{COOKIE_NAME}={edited}")]].concat().join("; ");
        let found = session_from_headers(&cookie_headers(&[line]));
        // A `;` the edits put in ends the cookie pair there: what comes before it is the
        // cookie's whole value (the rest is another pair), so the ID is still read when
        // that value is the ID (CI found `ID;` read as the ID, which is right).
        let value = edited.split(';').next().unwrap_or_default();
        if edited.trim_matches([' ', '\t']) == text {
            prop_assert_eq!(found, CookieSession::Present(id));
        } else if value.trim_matches([' ', '\t']) != text {
            prop_assert_ne!(found, CookieSession::Present(id));
        }
    }
}
