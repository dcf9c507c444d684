//! JSON bodies on the wire, shared by the servers, the harness and the tests.

use serde::{Deserialize, Serialize};

use crate::Role;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Session server's `/login` answer (the credential itself travels in `Set-Cookie`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginResponse {
    pub user: String,
    pub role: Role,
}

/// `/me` and `/admin`. Servers write it borrowed (`MeResponse<&str>`: no copy of the
/// user or instance name per request); clients read it owned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MeResponse<S = String> {
    pub user: S,
    pub role: Role,
    /// The answering server's `--instance-id`.
    pub instance: S,
}

/// JWT server's `/login` and `/refresh` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody<S = String> {
    pub error: S,
}
