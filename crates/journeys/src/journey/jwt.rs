//! The jwt-server journey: `POST /login` (access + refresh token), `GET /me` a few times
//! with `Authorization: Bearer`, `GET /admin`, `POST /refresh` (rotation: a new refresh
//! token, which is the one used from then on), `GET /me` with the new access token, `POST
//! /logout` with the current refresh token (204), and `POST /refresh` with that same token
//! (401 `invalid_grant`: logout revoked its family).
//!
//! The post-logout check uses the token that was *valid* until the logout: the one rotated
//! away earlier would be refused anyway (reuse detection), proving nothing about logout.
//! The access token is not checked after logout: with `--revocation none` it stays valid
//! until `exp`, by design (README, "The revocation gap").

use std::sync::Arc;

use goose::prelude::*;
use http::StatusCode;
use serde_json::json;

use super::{Answer, Auth, Call, Journey, step};

pub fn scenario(journey: &Arc<Journey>) -> Result<Scenario, GooseError> {
    Ok(Scenario::new("jwt journey")
        .register_transaction(step!(journey, "login", login).set_sequence(1))
        .register_transaction(step!(journey, "me", me).set_sequence(2).set_weight(journey.me_per_journey)?)
        .register_transaction(step!(journey, "admin", admin).set_sequence(3))
        .register_transaction(step!(journey, "refresh", refresh).set_sequence(4))
        .register_transaction(step!(journey, "me after refresh", me_after_refresh).set_sequence(5))
        .register_transaction(step!(journey, "logout", logout).set_sequence(6))
        .register_transaction(step!(journey, "refresh after logout", refresh_after_logout).set_sequence(7)))
}

/// The access and refresh token of a login or refresh answer.
fn tokens(a: &Answer) -> Option<(String, String)> {
    let access = a.body["access_token"].as_str().filter(|t| !t.is_empty())?;
    let refresh = a.body["refresh_token"].as_str().filter(|t| !t.is_empty())?;
    (a.body["token_type"].as_str() == Some("Bearer")).then(|| (access.to_owned(), refresh.to_owned()))
}

async fn login(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let state = j.state(user);
    // A new journey: whatever the last one left behind is not reused.
    (state.access, state.refresh, state.refreshed, state.logged_out) = (None, None, false, false);
    let body = json!({"username": state.name, "password": j.password});
    let mut a = j.call(user, Call::post("/login", "/login", StatusCode::OK, Auth::None, Some(body))).await?;
    let got = tokens(&a);
    j.check(user, &mut a, got.is_some(), "/login: no access_token, refresh_token or token_type Bearer")?;
    let state = j.state(user);
    (state.access, state.refresh) = got.unzip();
    Ok(())
}

async fn me(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let Some(access) = j.state(user).access.clone() else { return Ok(()) };
    let mut a = j.call(user, Call::get("/me", "/me", StatusCode::OK, Auth::Bearer(&access))).await?;
    j.check_me(user, &mut a, "/me")
}

async fn admin(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let Some(access) = j.state(user).access.clone() else { return Ok(()) };
    j.admin(user, Auth::Bearer(&access)).await
}

async fn refresh(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let Some(old) = j.state(user).refresh.clone() else { return Ok(()) };
    let body = json!({"refresh_token": old});
    let mut a = j.call(user, Call::post("/refresh", "/refresh", StatusCode::OK, Auth::None, Some(body))).await?;
    let got = tokens(&a);
    j.check(user, &mut a, got.is_some(), "/refresh: no access_token, refresh_token or token_type Bearer")?;
    let rotated = got.as_ref().is_some_and(|(_, new)| *new != old);
    j.check(user, &mut a, rotated, "/refresh: refresh token not rotated")?;
    let state = j.state(user);
    (state.access, state.refresh) = got.unzip();
    state.refreshed = true;
    Ok(())
}

async fn me_after_refresh(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let state = j.state(user);
    let (Some(access), true) = (state.access.clone(), state.refreshed) else { return Ok(()) };
    let mut a = j.call(user, Call::get("/me", "/me (after refresh)", StatusCode::OK, Auth::Bearer(&access))).await?;
    j.check_me(user, &mut a, "/me (after refresh)")
}

async fn logout(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let state = j.state(user);
    let (Some(access), Some(refresh)) = (state.access.clone(), state.refresh.clone()) else { return Ok(()) };
    let body = Some(json!({"refresh_token": refresh}));
    j.call(user, Call::post("/logout", "/logout", StatusCode::NO_CONTENT, Auth::Bearer(&access), body)).await?;
    j.state(user).logged_out = true;
    Ok(())
}

async fn refresh_after_logout(j: &Journey, user: &mut GooseUser) -> TransactionResult {
    let state = j.state(user);
    let (Some(refresh), true) = (state.refresh.take(), state.logged_out) else { return Ok(()) };
    state.access = None;
    let body = Some(json!({"refresh_token": refresh}));
    let call = Call::post("/refresh", "/refresh (after logout)", StatusCode::UNAUTHORIZED, Auth::None, body);
    let mut a = j.call(user, call).await?;
    j.check_error(user, &mut a, "invalid_grant", "/refresh (after logout)")
}
