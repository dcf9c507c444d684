//! The session-server journey: `POST /login` (a `__Host-sid` cookie), `GET /me` a few
//! times, `GET /admin` (200 for admins, 403 for the rest), `POST /logout` (204), and `GET
//! /me` with the old cookie (401: the session is gone on the server, not just forgotten
//! by the client).
//!
//! The cookie is handled here, not by reqwest's cookie store: it is `Secure` and
//! `__Host-` prefixed, which a cookie store may refuse to send over plain http on
//! 127.0.0.1, and keeping it in the user's state makes "one cookie per goose user"
//! explicit.

use std::sync::Arc;

use goose::prelude::*;
use http::{StatusCode, header};
use serde_json::json;

use super::{Auth, Call, Journey, step};

/// The session cookie's name (docs/http-api.md).
pub const COOKIE_NAME: &str = "__Host-sid";

pub fn scenario(journey: &Arc<Journey>) -> Result<Scenario, GooseError> {
    Ok(Scenario::new("session journey")
        .register_transaction(step!(journey, "login", login).set_sequence(1))
        .register_transaction(step!(journey, "me", me).set_sequence(2).set_weight(journey.me_per_journey)?)
        .register_transaction(step!(journey, "admin", admin).set_sequence(3))
        .register_transaction(step!(journey, "logout", logout).set_sequence(4))
        .register_transaction(step!(journey, "me after logout", me_after_logout).set_sequence(5)))
}

/// The `__Host-sid=…` pair of a login's `Set-Cookie`, if there is one with a value.
pub fn session_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let pair = v.split(';').next()?.trim();
        let value = pair.strip_prefix(COOKIE_NAME)?.strip_prefix('=')?;
        (!value.is_empty()).then(|| pair.to_owned())
    })
}

async fn login(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let state = j.state(user);
    // A new journey: whatever the last one left behind is not reused.
    state.cookie = None;
    state.logged_out = false;
    let body = json!({"username": state.name, "password": j.password});
    let (name, role) = (state.name.clone(), state.role());
    let mut a = j.call(user, Call::post("/login", "/login", StatusCode::OK, Auth::None, Some(body))).await?;
    let who = a.body["user"].as_str() == Some(name.as_str()) && a.body["role"].as_str() == Some(role);
    j.check(user, &mut a, who, "/login: wrong user or role")?;
    let cookie = session_cookie(&a.headers);
    j.check(user, &mut a, cookie.is_some(), "/login: no __Host-sid cookie")?;
    j.state(user).cookie = cookie;
    Ok(())
}

async fn me(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let Some(cookie) = j.state(user).cookie.clone() else { return Ok(()) };
    let mut a = j.call(user, Call::get("/me", "/me", StatusCode::OK, Auth::Cookie(&cookie))).await?;
    j.check_me(user, &mut a, "/me")
}

async fn admin(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let Some(cookie) = j.state(user).cookie.clone() else { return Ok(()) };
    j.admin(user, Auth::Cookie(&cookie)).await
}

async fn logout(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let Some(cookie) = j.state(user).cookie.clone() else { return Ok(()) };
    j.call(user, Call::post("/logout", "/logout", StatusCode::NO_CONTENT, Auth::Cookie(&cookie), None)).await?;
    j.state(user).logged_out = true;
    Ok(())
}

async fn me_after_logout(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let state = j.state(user);
    let (Some(cookie), true) = (state.cookie.take(), state.logged_out) else { return Ok(()) };
    let call = Call::get("/me", "/me (after logout)", StatusCode::UNAUTHORIZED, Auth::Cookie(&cookie));
    let mut a = j.call(user, call).await?;
    let has_error = a.body["error"].is_string();
    j.check(user, &mut a, has_error, "/me (after logout): no error body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = http::HeaderMap::new();
        h.append(header::SET_COOKIE, "theme=dark; Path=/".parse().unwrap());
        h.append(header::SET_COOKIE, "__Host-sid=abc123; Path=/; HttpOnly; Secure; SameSite=Lax".parse().unwrap());
        assert_eq!(session_cookie(&h).as_deref(), Some("__Host-sid=abc123"));
        let mut cleared = http::HeaderMap::new();
        cleared.append(header::SET_COOKIE, "__Host-sid=; Path=/; Max-Age=0".parse().unwrap());
        assert_eq!(session_cookie(&cleared), None);
        assert_eq!(session_cookie(&http::HeaderMap::new()), None);
    }
}
