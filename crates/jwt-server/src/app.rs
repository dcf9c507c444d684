//! Routes and handlers. Authentication is the [`TokenUser`] extractor: signature and
//! claims are checked locally, with no store call, which is the whole point of JWT.

use std::sync::Arc;

use auth_core::{
    ApiError, Role, UserDirectory,
    error::Json,
    metrics::{Metrics, StoreOp},
    password::Passwords,
    store::timed,
    throttle::LoginThrottle,
    wire::{LoginRequest, MeResponse, RefreshRequest, TokenResponse},
};
use axum::{
    Extension, Router,
    body::Bytes,
    extract::{FromRequestParts, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::{
    refresh::{Grant, RefreshStore, Rotation},
    revocation::{Deny, Revocation},
    tokens::{RefreshToken, TokenService, VerifiedClaims, new_family_id},
};

pub const ROUTES: &[&str] =
    &["/login", "/me", "/admin", "/logout", "/refresh", "/.well-known/jwks.json", "/healthz", "/metrics"];

pub struct AppState<R> {
    pub tokens: TokenService,
    pub refresh: R,
    pub users: UserDirectory,
    pub passwords: Passwords,
    pub instance: Arc<str>,
    pub metrics: Arc<Metrics>,
    /// `--revocation`; `Revocation::None` adds no work to a request.
    pub revocation: Revocation,
}

/// The whole HTTP surface of one jwt-server instance. The failed-login limit is attached
/// to `/login` alone, so the state every other request clones stays as small as it was
/// (the `/me` hot path does not change).
pub fn app<R: RefreshStore>(state: AppState<R>, throttle: LoginThrottle) -> Router {
    let metrics = state.metrics.clone();
    let jwks = jwks_body(&state.tokens);
    let router = Router::new()
        .route("/login", post(login::<R>).layer(Extension(throttle)))
        .route("/me", get(me::<R>))
        .route("/admin", get(admin::<R>))
        .route("/logout", post(logout::<R>))
        .route("/refresh", post(refresh::<R>))
        .route(
            "/.well-known/jwks.json",
            get(move || {
                let body = jwks.clone();
                async move {
                    let headers =
                        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")];
                    (headers, body)
                }
            }),
        )
        .with_state(Arc::new(state));
    auth_core::server::common_layers(router, metrics)
}

/// The token from `Authorization: Bearer <token>`: exactly one such header, the scheme
/// compared case-insensitively (RFC 7235), one or more spaces after it (RFC 6750 §2.1:
/// `"Bearer" 1*SP b64token`), no whitespace inside the token.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return None };
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    let valid =
        scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.bytes().any(|b| b.is_ascii_whitespace());
    valid.then_some(token)
}

/// An authenticated caller: a bearer token that verified.
#[derive(Debug, Clone)]
pub struct TokenUser {
    pub claims: VerifiedClaims,
}

impl<R: RefreshStore> FromRequestParts<Arc<AppState<R>>> for TokenUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState<R>>) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::InvalidToken)?;
        let claims = state.tokens.verify(token)?;
        if !matches!(state.revocation, Revocation::None) {
            state.revocation.check(&claims, &state.metrics).await?;
        }
        Ok(TokenUser { claims })
    }
}

fn token_response<R>(
    state: &AppState<R>,
    user: &str,
    role: Role,
    refresh: &RefreshToken,
    family: &str,
) -> Result<Response, ApiError> {
    let access = state.tokens.issue(user, role, family).map_err(|_| ApiError::Unavailable)?;
    let body = TokenResponse {
        access_token: access,
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl_secs(),
        refresh_token: refresh.encode(),
    };
    Ok(axum::Json(body).into_response())
}

async fn login<R: RefreshStore>(
    State(state): State<Arc<AppState<R>>>,
    Extension(throttle): Extension<LoginThrottle>,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    // Counted before the password is checked, so a throttled account costs no hash and
    // parallel guesses cannot slip past the limit (see `auth_core::throttle`).
    throttle.attempt(&req.username).await?;
    let user = state.passwords.verify(state.users.get(&req.username), &req.password).await?;
    throttle.succeeded(&req.username).await?;
    let grant = Grant { family: Arc::from(new_family_id()), user: user.name.clone(), role: user.role };
    let refresh = RefreshToken::generate();
    timed(&state.metrics, StoreOp::Put, state.refresh.create(&refresh.hash(), &grant)).await?;
    token_response(&state, &user.name, user.role, &refresh, &grant.family)
}

async fn me<R: RefreshStore>(State(state): State<Arc<AppState<R>>>, user: TokenUser) -> Response {
    me_body(&state, &user)
}

fn me_body<R>(state: &AppState<R>, user: &TokenUser) -> Response {
    axum::Json(MeResponse { user: user.claims.sub.as_str(), role: user.claims.role, instance: &*state.instance })
        .into_response()
}

/// Authorization from the token's `role` claim alone: a role change reaches this check
/// only when the next access token is issued (at most `--access-ttl` later).
async fn admin<R: RefreshStore>(State(state): State<Arc<AppState<R>>>, user: TokenUser) -> Result<Response, ApiError> {
    if user.claims.role != Role::Admin {
        return Err(ApiError::Forbidden);
    }
    Ok(me_body(&state, &user))
}

async fn refresh<R: RefreshStore>(
    State(state): State<Arc<AppState<R>>>,
    Json(req): Json<RefreshRequest>,
) -> Result<Response, ApiError> {
    let old = RefreshToken::parse(&req.refresh_token).ok_or(ApiError::InvalidGrant)?;
    let new = RefreshToken::generate();
    let rotation = timed(&state.metrics, StoreOp::Rotate, state.refresh.rotate(&old.hash(), &new.hash())).await?;
    let Rotation::Rotated(grant) = rotation else { return Err(ApiError::InvalidGrant) };
    // The role comes from the directory now, not from login time; a deleted user's family
    // ends here.
    let Some(user) = state.users.get(&grant.user) else {
        timed(&state.metrics, StoreOp::Revoke, state.refresh.revoke_family(&grant.family)).await?;
        return Err(ApiError::InvalidGrant);
    };
    token_response(&state, &user.name, user.role, &new, &grant.family)
}

/// Revokes the refresh-token family named by a `{"refresh_token"}` body or, without a
/// body, by the bearer token's `sid`. With `--revocation none` the access token itself
/// stays valid until its `exp`: that window is what the revocation experiment measures.
/// With a denylist, a bearer logout denies that access token (its `jti`); a logout by
/// refresh token (body) denies the whole family (its `sid`), since the server does not
/// know which of the family's access tokens are out.
async fn logout<R: RefreshStore>(
    State(state): State<Arc<AppState<R>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Taken as a `Result` so an oversized body gets our JSON 413, not axum's plain text.
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest("unreadable_body")
        }
    })?;
    let (family, bearer): (Option<Arc<str>>, Option<VerifiedClaims>) = if body.iter().all(u8::is_ascii_whitespace) {
        let token = bearer_token(&headers).ok_or(ApiError::InvalidToken)?;
        let claims = state.tokens.verify(token)?;
        (Some(Arc::from(claims.sid.as_str())), Some(claims))
    } else {
        let req: RefreshRequest = serde_json::from_slice(&body)
            .map_err(|e| if e.is_data() { ApiError::Unprocessable } else { ApiError::BadRequest("malformed_json") })?;
        let token = RefreshToken::parse(&req.refresh_token).ok_or(ApiError::BadRequest("malformed_refresh_token"))?;
        (timed(&state.metrics, StoreOp::Get, state.refresh.family_of(&token.hash())).await?, None)
    };
    // Unknown refresh tokens also get 204 (as in RFC 7009): logout is idempotent and
    // does not reveal which tokens exist.
    if let Some(family) = &family {
        timed(&state.metrics, StoreOp::Revoke, state.refresh.revoke_family(family)).await?;
    }
    if !matches!(state.revocation, Revocation::None) {
        let leeway_ms = state.tokens.leeway().as_millis() as u64;
        let deny = match (&bearer, &family) {
            (Some(claims), _) => Some(Deny::Token { jti: &claims.jti, until_ms: claims.exp * 1000 + leeway_ms }),
            (None, Some(sid)) => Some(Deny::Family {
                sid,
                until_ms: auth_core::unix_millis() + state.tokens.access_ttl_secs() * 1000 + leeway_ms,
            }),
            (None, None) => None,
        };
        if let Some(deny) = deny {
            state.revocation.deny(deny, &state.metrics).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The JWKS document, built once: the keys are loaded at start and do not change while
/// the process runs (rotation is a restart with the new key set).
fn jwks_body(tokens: &TokenService) -> Bytes {
    let keys: Vec<&serde_json::Value> = tokens.keys().jwk.iter().collect();
    Bytes::from(serde_json::json!({ "keys": keys }).to_string())
}
