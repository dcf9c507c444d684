//! Routes and handlers. Authentication is the [`SessionUser`] extractor: a handler that
//! takes one has an already-verified identity; everything that can fail on the way
//! becomes an [`ApiError`].

use std::sync::Arc;

use auth_core::{
    ApiError, Role, UserDirectory,
    error::Json,
    metrics::{Metrics, StoreOp},
    password::Passwords,
    store::timed,
    throttle::LoginThrottle,
    wire::{LoginRequest, LoginResponse, MeResponse},
};
use axum::{
    Extension, Router,
    extract::{FromRequestParts, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use crate::{
    cookie::{self, CookieSession},
    id::SessionId,
    store::{Session, SessionStore},
};

pub const ROUTES: &[&str] = &["/login", "/me", "/admin", "/logout", "/healthz", "/metrics"];

pub struct AppState<S> {
    pub store: S,
    pub users: UserDirectory,
    pub passwords: Passwords,
    pub instance: Arc<str>,
    pub metrics: Arc<Metrics>,
}

/// The user `--control`'s `/me` answers for, whoever asks.
#[derive(Clone, Debug)]
pub struct ControlUser {
    pub user: Arc<str>,
    pub role: Role,
}

/// The whole HTTP surface of one session-server instance. The failed-login limit is
/// attached to `/login` alone, so the state every other request clones stays as small as
/// it was (the `/me` hot path does not change). With `control`, `/me` is the control
/// route instead (see [`control_me`]).
pub fn app<S: SessionStore>(state: AppState<S>, throttle: LoginThrottle, control: Option<ControlUser>) -> Router {
    let metrics = state.metrics.clone();
    let me_route = match control {
        Some(user) => get(control_me::<S>).layer(Extension(user)),
        None => get(me::<S>),
    };
    let router = Router::new()
        .route("/login", post(login::<S>).layer(Extension(throttle)))
        .route("/me", me_route)
        .route("/admin", get(admin))
        .route("/logout", post(logout::<S>))
        .with_state(Arc::new(state));
    auth_core::server::common_layers(router, metrics)
}

/// An authenticated user: the request carried a session cookie that the store knows.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub session: Session,
}

impl<S: SessionStore> FromRequestParts<Arc<AppState<S>>> for SessionUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState<S>>) -> Result<Self, ApiError> {
        let CookieSession::Present(id) = cookie::session_from_headers(&parts.headers) else {
            return Err(ApiError::Unauthenticated);
        };
        match timed(&state.metrics, StoreOp::Get, state.store.get(&id)).await? {
            Some(session) => Ok(SessionUser { session }),
            None => Err(ApiError::Unauthenticated),
        }
    }
}

async fn login<S: SessionStore>(
    State(state): State<Arc<AppState<S>>>,
    Extension(throttle): Extension<LoginThrottle>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    // Counted before the password is checked, so a throttled account costs no hash and
    // parallel guesses cannot slip past the limit (see `auth_core::throttle`).
    throttle.attempt(&req.username).await?;
    let user = state.passwords.verify(state.users.get(&req.username), &req.password).await?;
    throttle.succeeded(&req.username).await?;

    // Never keep a session ID the client brought with it (session fixation): the old
    // session, if any, is deleted and a fresh ID is issued on every login.
    if let CookieSession::Present(old) = cookie::session_from_headers(&headers) {
        timed(&state.metrics, StoreOp::Delete, state.store.delete(&old)).await?;
    }
    let id = SessionId::generate();
    let session = Session { user: user.name.clone(), role: user.role, created_ms: state.store.now_ms() };
    timed(&state.metrics, StoreOp::Put, state.store.put(&id, &session)).await?;

    let body = LoginResponse { user: user.name.to_string(), role: user.role };
    Ok(([(header::SET_COOKIE, cookie::set_cookie(&id))], axum::Json(body)).into_response())
}

async fn me<S: SessionStore>(State(state): State<Arc<AppState<S>>>, user: SessionUser) -> Response {
    me_body(&user.session.user, user.session.role, &state.instance)
}

/// The `/me` and `/admin` body, written from borrowed fields.
fn me_body(user: &str, role: Role, instance: &str) -> Response {
    axum::Json(MeResponse { user, role, instance }).into_response()
}

/// authbench's control line: the same stack, route and response as `/me`, for a fixed
/// user, with no credential read or checked. Measured beside every system, it shows what
/// the rig (caps, co-location, the generator, HTTP) costs on its own, so what a system
/// costs beyond it is its authentication. Served only with `--control`.
async fn control_me<S: SessionStore>(
    State(state): State<Arc<AppState<S>>>,
    Extension(control): Extension<ControlUser>,
) -> Response {
    me_body(&control.user, control.role, &state.instance)
}

async fn admin<S: SessionStore>(
    State(state): State<Arc<AppState<S>>>,
    user: SessionUser,
) -> Result<Response, ApiError> {
    if user.session.role != Role::Admin {
        return Err(ApiError::Forbidden);
    }
    Ok(me_body(&user.session.user, user.session.role, &state.instance))
}

/// Deletes the session in the store (so every instance rejects it at once) and clears
/// the cookie. Idempotent: an unknown but well-formed ID also gets 204.
async fn logout<S: SessionStore>(
    State(state): State<Arc<AppState<S>>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let CookieSession::Present(id) = cookie::session_from_headers(&headers) else {
        return Err(ApiError::Unauthenticated);
    };
    timed(&state.metrics, StoreOp::Delete, state.store.delete(&id)).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie::clear_cookie())]).into_response())
}
