//! Session IDs: 256 bits from the OS CSPRNG, base64url without padding in the cookie.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};

const ID_BYTES: usize = 32;
/// Length of the encoded ID: ceil(32 * 4 / 3) without padding.
pub const ENCODED_LEN: usize = 43;

/// A session ID. Only the server creates them ([`SessionId::generate`]); a cookie value is
/// accepted as a lookup key only when it has exactly the shape of one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    pub fn generate() -> Self {
        Self(auth_core::random_bytes())
    }

    /// Strict parse: 43 base64url characters that decode to 32 bytes and re-encode to the
    /// same text (so there is exactly one spelling of each ID).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != ENCODED_LEN {
            return None;
        }
        let mut out = [0u8; ID_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut out) {
            Ok(ID_BYTES) => {}
            _ => return None,
        }
        // The last character carries 2 spare bits; non-zero spare bits decode to the same
        // bytes, which would give one ID several spellings. The engine rejects them, but
        // check again rather than rely on a default.
        let id = Self(out);
        let mut buf = [0u8; ENCODED_LEN];
        (id.encode_into(&mut buf) == s).then_some(id)
    }

    pub fn encode_into<'a>(&self, buf: &'a mut [u8; ENCODED_LEN]) -> &'a str {
        let n = URL_SAFE_NO_PAD.encode_slice(self.0, buf).unwrap_or(0);
        std::str::from_utf8(&buf[..n]).unwrap_or("")
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The 32 raw bytes (the database store's key).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// First byte, used to pick a shard: uniformly distributed because IDs are random.
    pub fn shard_byte(&self) -> u8 {
        self.0[0]
    }
}

// Never print a live credential in logs or panics.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_uniqueness() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        let text = a.encode();
        assert_eq!(text.len(), ENCODED_LEN);
        assert_eq!(SessionId::parse(&text), Some(a));
    }

    #[test]
    fn anything_but_the_exact_shape_is_refused() {
        let good = SessionId::generate().encode();
        assert!(SessionId::parse(&good[1..]).is_none());
        assert!(SessionId::parse(&format!("{good}A")).is_none());
        assert!(SessionId::parse(&format!("{}=", &good[..42])).is_none());
        assert!(SessionId::parse(&good.replace(|c: char| c.is_ascii_alphanumeric(), "+")).is_none());
        // Same bytes, different spare bits in the last character.
        let mut alt = good.clone().into_bytes();
        let last = alt[42];
        alt[42] = if last == b'A' { b'B' } else { b'A' };
        let alt = String::from_utf8(alt).unwrap();
        if let Some(p) = SessionId::parse(&alt) {
            assert_ne!(p, SessionId::parse(&good).unwrap());
        }
        assert!(format!("{:?}", SessionId::parse(&good)).contains(".."));
    }
}
