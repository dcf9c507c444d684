//! `jwt-server`: stateless authentication with signed access tokens, plus rotated,
//! server-side refresh tokens.
//!
//! Read [`app`] first (routes, the [`app::TokenUser`] extractor), then [`tokens`]
//! (signing and the pinned-algorithm verification), [`refresh`] (rotation and reuse
//! detection), [`revocation`] (`--revocation`: denylists for access tokens) and [`keys`]
//! (key files, JWKS, keygen).

pub mod app;
pub mod config;
pub mod keys;
pub mod refresh;
pub mod revocation;
pub mod tokens;
pub mod verifier;
