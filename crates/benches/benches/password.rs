//! The login cost: one argon2id verification of a correct password at the servers'
//! parameters (OWASP: 19 MiB, t = 2, p = 1), on the calling thread and through
//! `Passwords::verify` (tokio's blocking pool behind a semaphore), as `/login` runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{hint::black_box, sync::Arc, time::Duration};

use argon2::{Argon2, PasswordHash, PasswordVerifier as _};
use auth_core::{
    Role, User,
    password::{HashParams, Passwords, hash_password},
};
use benches::ids;
use criterion::SamplingMode;

const PASSWORD: &str = "demo-password";

fn main() {
    let mut c = common::criterion();
    let rt = common::runtime();
    let params = HashParams::default();
    let hash = hash_password(PASSWORD, params).expect("hash");
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    let user = User { name: Arc::from("user1"), role: Role::User, password_hash: Arc::from(hash.as_str()) };
    let passwords = Passwords::new(1, params).expect("Passwords");
    assert!(rt.block_on(passwords.verify(Some(&user), PASSWORD)).is_ok());

    let mut group = c.benchmark_group(ids::PASSWORD_GROUP);
    // Tens of milliseconds per iteration: the minimum of 10 samples, each the same size.
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(3));
    group.bench_function(ids::PASSWORD_VERIFY, |b| {
        b.iter(|| {
            // What `Passwords::verify` runs on the blocking pool.
            let parsed = PasswordHash::new(black_box(&hash)).expect("PHC string");
            Argon2::default().verify_password(PASSWORD.as_bytes(), &parsed).is_ok()
        })
    });
    group.bench_function(ids::PASSWORD_SERVER_VERIFY, |b| {
        b.iter(|| rt.block_on(passwords.verify(Some(black_box(&user)), PASSWORD)).is_ok())
    });
    group.finish();
    c.final_summary();
}
