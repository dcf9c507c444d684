//! Attacks on jwt-server's bearer authentication (issue 3: RFC 8725, RFC 7519, RFC 9068,
//! the OWASP JWT cheat sheet), over real HTTP on 127.0.0.1.
//!
//! Every rejected request has a positive control beside it: the same request, built by the
//! same helper with only the attacked part made valid, is accepted. A server that rejected
//! everything would fail this suite, and each rejection is shown to come from the one thing
//! the case changed.
//!
//! Forgeries are signed with the server's *real* key (read from its key directory) unless
//! the case is about the key. No outside attacker can do that; it is done here so that the
//! header and claim checks are tested on their own, not hidden behind the signature check.
//!
//! What is already covered elsewhere is not repeated: issued-token shape and JWKS
//! (`http.rs`), tokens of another key or server (`http.rs`), revocation after logout
//! (`stores.rs`).

//! This file runs the suite against `--jwt-verifier cached` (the default);
//! `adversarial_stock.rs` runs the same suite against `--jwt-verifier stock`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

const VERIFIER: &str = "cached";

include!("adversarial/suite.rs");
