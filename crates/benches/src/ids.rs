//! Every benchmark's name, in one place: the suites register under these IDs and
//! `micro-summary` looks them up, so a renamed benchmark cannot silently drop out of the
//! tables. A criterion ID is `group/function[/parameter]`.

/// jsonwebtoken's two crypto backends, as named in its crate features.
pub const BACKENDS: [&str; 2] = [AWS_LC, RUST_CRYPTO];
pub const AWS_LC: &str = "aws_lc_rs";
pub const RUST_CRYPTO: &str = "rust_crypto";

/// The algorithms jwt-server signs with, as JOSE names them.
pub const ALGS: [&str; 4] = ["HS256", "RS256", "ES256", "EdDSA"];

/// Criterion group of one algorithm on one backend, e.g. `jwt/aws_lc_rs/HS256`.
pub fn jwt_group(backend: &str, alg: &str) -> String {
    format!("jwt/{backend}/{alg}")
}

/// The functions inside a [`jwt_group`].
pub mod jwt {
    /// `jsonwebtoken::encode` of jwt-server's header and claims.
    pub const SIGN_LIBRARY: &str = "sign/jsonwebtoken";
    /// The backend's signature over the same signing input, key parsed once.
    pub const SIGN_PRIMITIVE: &str = "sign/primitive";
    /// The same, parsing the private key first, as jsonwebtoken does on every call.
    pub const SIGN_PRIMITIVE_KEY_PARSE: &str = "sign/primitive+key-parse";
    /// `jsonwebtoken::decode` with jwt-server's `Validation`.
    pub const VERIFY_LIBRARY: &str = "verify/jsonwebtoken";
    /// The backend's signature check on the signing input, key parsed once.
    pub const VERIFY_PRIMITIVE: &str = "verify/primitive";
    /// The same, parsing the public key first, as jsonwebtoken does on every call.
    pub const VERIFY_PRIMITIVE_KEY_PARSE: &str = "verify/primitive+key-parse";
    /// `jwt_server::tokens::TokenService::verify`: decode plus the header checks, with
    /// the default `--jwt-verifier cached` (the key kept parsed; aws-lc-rs only).
    pub const VERIFY_SERVER: &str = "verify/jwt-server";
    /// The same with `--jwt-verifier stock`: jsonwebtoken's own verifier.
    pub const VERIFY_SERVER_STOCK: &str = "verify/jwt-server-stock";
}

pub fn jwt_id(backend: &str, alg: &str, function: &str) -> String {
    format!("{}/{function}", jwt_group(backend, alg))
}

pub const SESSION_ID_GROUP: &str = "session/id";
pub const SESSION_ID_GENERATE: &str = "generate";
pub const SESSION_ID_ENCODE: &str = "encode";
pub const SESSION_ID_PARSE: &str = "parse";

/// `MemoryStore::get` with N threads looking up at once: function `threads`, parameter N.
pub const SESSION_MEMORY_GROUP: &str = "session/memory/get";
pub const SESSION_MEMORY_THREADS: [usize; 3] = [1, 2, 4];

pub fn session_memory_id(threads: usize) -> String {
    format!("{SESSION_MEMORY_GROUP}/threads/{threads}")
}

pub const SESSION_REDIS_GROUP: &str = "session/redis";
/// A plain `GET` of a session-sized value: the round trip alone.
pub const SESSION_REDIS_GET: &str = "GET";
/// `RedisStore::get`: the `GETEX` every session request sends, plus decoding.
pub const SESSION_REDIS_STORE_GET: &str = "RedisStore::get";

/// One request through a server's axum router: `router/me/<system>` is an authenticated
/// `GET /me`; `router/healthz/session-memory` is the same router without authentication.
pub const ROUTER_ME_GROUP: &str = "router/me";
pub const ROUTER_HEALTHZ_GROUP: &str = "router/healthz";
pub const ROUTER_BASELINE_SYSTEM: &str = "session-memory";
/// `router/rejected/session-memory`: `GET /me` with a session cookie another instance
/// holds — the 401 that round-robin gives (N−1)/N of session-memory's requests.
pub const ROUTER_REJECTED_GROUP: &str = "router/rejected";
pub const ROUTER_SYSTEMS: [&str; 6] =
    ["session-memory", "session-redis", "jwt-hs256", "jwt-rs256", "jwt-es256", "jwt-eddsa"];

pub const PASSWORD_GROUP: &str = "password/argon2id";
/// `argon2` verify of an OWASP-parameter hash on the calling thread.
pub const PASSWORD_VERIFY: &str = "verify";
/// `auth_core::password::Passwords::verify`: the same on tokio's blocking pool, as login does.
pub const PASSWORD_SERVER_VERIFY: &str = "Passwords::verify";

pub fn id(group: &str, function: &str) -> String {
    format!("{group}/{function}")
}
