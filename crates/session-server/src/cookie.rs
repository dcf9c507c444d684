//! The `__Host-sid` cookie: finding it in `Cookie` headers and writing `Set-Cookie`.
//!
//! The `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no `Domain`, so a
//! sibling subdomain cannot plant or overwrite the session cookie.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::id::SessionId;

pub const COOKIE_NAME: &str = "__Host-sid";
const ATTRIBUTES: &str = "Path=/; HttpOnly; Secure; SameSite=Lax";

/// What the request's cookies say about the session.
#[derive(Debug, PartialEq, Eq)]
pub enum CookieSession {
    /// No `__Host-sid` at all.
    Absent,
    /// A well-formed ID (it may still be unknown to the store).
    Present(SessionId),
    /// Present but malformed, duplicated, or in a header that is not valid text.
    Invalid,
}

/// Space and tab (WSP): the only whitespace cookie parsing trims around names and values
/// (RFC 6265bis).
const OWS: [char; 2] = [' ', '\t'];

/// Look for exactly one `__Host-sid` across every `Cookie` header.
pub fn session_from_headers(headers: &HeaderMap) -> CookieSession {
    let mut found: Option<SessionId> = None;
    for value in headers.get_all(header::COOKIE) {
        // UTF-8, not ASCII (`to_str`): browsers send other cookies' non-ASCII values as raw
        // UTF-8, and one such cookie elsewhere on the site must not end the session. The
        // session ID itself must still be exactly ASCII base64url (`SessionId::parse`).
        let Ok(text) = std::str::from_utf8(value.as_bytes()) else {
            return CookieSession::Invalid;
        };
        for pair in text.split(';') {
            let pair = pair.trim_start_matches(OWS);
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            if name.trim_end_matches(OWS) != COOKIE_NAME {
                continue;
            }
            if found.is_some() {
                // Two session cookies: which one the client meant is ambiguous, and
                // guessing is how fixation attacks win.
                return CookieSession::Invalid;
            }
            // Only OWS is trimmed: `str::trim` would also strip Unicode spaces such as
            // U+00A0, now that the text may be non-ASCII.
            match SessionId::parse(value.trim_matches(OWS)) {
                Some(id) => found = Some(id),
                None => return CookieSession::Invalid,
            }
        }
    }
    found.map_or(CookieSession::Absent, CookieSession::Present)
}

pub fn set_cookie(id: &SessionId) -> HeaderValue {
    let mut buf = [0u8; crate::id::ENCODED_LEN];
    let text = format!("{COOKIE_NAME}={}; {ATTRIBUTES}", id.encode_into(&mut buf));
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("__Host-sid=; Max-Age=0"))
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-sid=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn finds_the_session_among_other_cookies() {
        let id = SessionId::generate();
        let line = format!("theme=dark; {COOKIE_NAME}={}; lang=ko", id.encode());
        assert_eq!(session_from_headers(&headers(&[line.as_bytes()])), CookieSession::Present(id));
        assert_eq!(session_from_headers(&headers(&[b"theme=dark"])), CookieSession::Absent);
        // Another cookie's UTF-8 value does not hide the session; a non-UTF-8 header does.
        let utf8 = format!("theme=caf\u{e9}; {COOKIE_NAME}={}", id.encode());
        assert_eq!(session_from_headers(&headers(&[utf8.as_bytes()])), CookieSession::Present(id));
        let latin1 = [b"theme=caf\xe9; ".as_slice(), format!("{COOKIE_NAME}={}", id.encode()).as_bytes()].concat();
        assert_eq!(session_from_headers(&headers(&[&latin1])), CookieSession::Invalid);
        assert_eq!(session_from_headers(&HeaderMap::new()), CookieSession::Absent);
    }

    #[test]
    fn malformed_duplicated_and_binary_cookies_are_invalid() {
        let id = SessionId::generate().encode();
        let dup = format!("{COOKIE_NAME}={id}; {COOKIE_NAME}={id}");
        assert_eq!(session_from_headers(&headers(&[dup.as_bytes()])), CookieSession::Invalid);
        let split = format!("{COOKIE_NAME}={id}");
        assert_eq!(session_from_headers(&headers(&[split.as_bytes(), split.as_bytes()])), CookieSession::Invalid);
        assert_eq!(session_from_headers(&headers(&[b"__Host-sid=short"])), CookieSession::Invalid);
        assert_eq!(session_from_headers(&headers(&[b"__Host-sid=\xff\xfe"])), CookieSession::Invalid);
    }

    #[test]
    fn set_cookie_has_exactly_the_documented_attributes() {
        let id = SessionId::generate();
        let v = set_cookie(&id);
        assert_eq!(v.to_str().unwrap(), format!("__Host-sid={}; Path=/; HttpOnly; Secure; SameSite=Lax", id.encode()));
    }
}
