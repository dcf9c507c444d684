//! argon2id password hashing and verification, run off the async threads.
//!
//! One verification at the OWASP parameters costs ~19 MiB of memory and tens of
//! milliseconds of one core. Running it on a tokio worker would stall every other request
//! on that worker, so it goes to the blocking pool, and a semaphore bounds how many run at
//! once so a login storm cannot exhaust memory.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::{error::ApiError, users::User};

/// OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
pub const OWASP_MEMORY_KIB: u32 = 19 * 1024;
pub const OWASP_ITERATIONS: u32 = 2;
pub const OWASP_PARALLELISM: u32 = 1;

/// Longest password we hash; longer ones are refused before any work is done, so a
/// megabyte-long "password" cannot be used to burn CPU.
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self { memory_kib: OWASP_MEMORY_KIB, iterations: OWASP_ITERATIONS, parallelism: OWASP_PARALLELISM }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(argon2::Error),
    #[error("hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
}

/// Hash `password` with argon2id and a fresh random salt; returns a PHC string.
pub fn hash_password(password: &str, params: HashParams) -> Result<String, HashError> {
    let params =
        Params::new(params.memory_kib, params.iterations, params.parallelism, None).map_err(HashError::Params)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt_bytes: [u8; 16] = crate::random_bytes();
    let salt = argon2::password_hash::SaltString::encode_b64(&salt_bytes).map_err(HashError::Hash)?;
    argon.hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(HashError::Hash)
}

/// Verifies passwords with a bound on concurrent hashes.
#[derive(Clone, Debug)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Hash of a random password with the same parameters as real hashes. Unknown users
    /// are verified against it, so "no such user" costs the same time as "wrong password".
    dummy_hash: Arc<str>,
}

impl Passwords {
    pub fn new(max_concurrent: usize, params: HashParams) -> Result<Self, HashError> {
        let secret: [u8; 16] = crate::random_bytes();
        let dummy = hash_password(&format!("{secret:02x?}"), params)?;
        Ok(Self { permits: Arc::new(Semaphore::new(max_concurrent.max(1))), dummy_hash: Arc::from(dummy) })
    }

    /// Returns the user when `password` is theirs. Unknown user and wrong password give the
    /// same error, after the same amount of work.
    pub async fn verify(&self, user: Option<&User>, password: &str) -> Result<User, ApiError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::BadRequest("password_too_long"));
        }
        let hash = user.map_or_else(|| self.dummy_hash.clone(), |u| u.password_hash.clone());
        let password = password.to_owned();
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| ApiError::Unavailable)?;
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash)
                .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .map_err(|_| ApiError::Unavailable)?;
        match (ok, user) {
            (true, Some(user)) => Ok(user.clone()),
            _ => Err(ApiError::InvalidCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Role;

    // Small parameters keep the unit tests fast; the servers use HashParams::default().
    const FAST: HashParams = HashParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    fn user(hash: &str) -> User {
        User { name: Arc::from("alice"), role: Role::User, password_hash: Arc::from(hash) }
    }

    #[test]
    fn default_parameters_are_owasps() {
        let hash = hash_password("pw", HashParams::default()).unwrap_or_default();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    }

    #[tokio::test]
    async fn right_password_passes_wrong_and_unknown_fail_alike() {
        let pw = Passwords::new(2, FAST).unwrap_or_else(|e| panic!("{e}"));
        let alice = user(&hash_password("secret", FAST).unwrap_or_default());
        assert!(pw.verify(Some(&alice), "secret").await.is_ok());
        let wrong = pw.verify(Some(&alice), "Secret").await.err();
        let unknown = pw.verify(None, "secret").await.err();
        assert!(matches!(wrong, Some(ApiError::InvalidCredentials)));
        assert!(matches!(unknown, Some(ApiError::InvalidCredentials)));
    }

    #[tokio::test]
    async fn overlong_passwords_are_refused_before_hashing() {
        let pw = Passwords::new(1, FAST).unwrap_or_else(|e| panic!("{e}"));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(pw.verify(None, &long).await, Err(ApiError::BadRequest("password_too_long"))));
    }
}
