//! The attacks of `adversarial.rs` against `--jwt-verifier stock`: jsonwebtoken's own
//! verifier, which parses the key on every request. Both verifiers must accept and refuse
//! exactly the same tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

const VERIFIER: &str = "stock";

include!("adversarial/suite.rs");
