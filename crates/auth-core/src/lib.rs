//! What the two authbench servers share, so that the only difference the benchmark sees
//! is how a request is authenticated: a user directory with argon2id password checks
//! ([`users`], [`password`]), the JSON wire types ([`wire`]), the single error enum that
//! maps every failure to a status code ([`error`]), Prometheus metrics ([`metrics`]),
//! the listener with its ready line and graceful shutdown ([`server`]), the per-account
//! login brute-force limit ([`throttle`]) and the clock in-memory deadlines read ([`clock`]).
//!
//! Start reading at [`server::common_layers`] (what every request passes through) and
//! [`password::Passwords::verify`] (the login cost).

pub mod clock;
pub mod config;
pub mod error;
pub mod follow;
pub mod metrics;
pub mod password;
pub mod pg;
pub mod server;
pub mod store;
pub mod throttle;
pub mod users;
pub mod wire;

pub use error::ApiError;
pub use users::{Role, User, UserDirectory};

/// Fill a fixed-size array from the operating system's CSPRNG.
///
/// Every secret in authbench (session IDs, refresh tokens, JWT IDs, salts) comes from here.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all; there is nothing
    // sensible to fall back to, and continuing with zeros would be a security bug.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// Current Unix time in milliseconds.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
