//! `benches`: the `cargo bench` suites (criterion) that price the pieces a sweep only
//! sees in sum — a JWT signature with jsonwebtoken beside the raw primitive, for each
//! algorithm and both crypto backends; a session ID, a memory-store lookup under
//! contention, a Redis round trip; one authenticated request through each server's
//! router; one argon2id login check — and `micro-summary`, which turns criterion's
//! results into `bench-results/micro.md`.
//!
//! The suites are in `benches/` (start with `benches/jwt_aws_lc.rs`; the shared set-up is
//! `benches/common/`). This library is the part both sides agree on: [`ids`] names every
//! benchmark, [`results`] reads what criterion wrote, [`render`] writes the markdown and
//! [`machine`] describes the host it ran on.

pub mod ids;
pub mod machine;
pub mod render;
pub mod results;
