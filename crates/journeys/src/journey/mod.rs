//! The journeys: what one goose user does, over and over, for each server kind.
//!
//! A journey is one goose scenario whose transactions run in sequence (log in first, check
//! the credential is dead last); what they hand each other — the cookie, the tokens —
//! lives in the user's goose session data ([`UserState`]). Every response is checked: its
//! status (goose's `expect_status_code`, so a 401 where 200 was due is a failed request,
//! not a success) and the body field that proves it is the right answer (`/me`'s `user`).
//! A failed check marks the request failed in goose's metrics — its error table and
//! report — and is counted in the [`Tally`] the exit status is decided from.
//!
//! A step whose precondition failed earlier in the journey (no cookie because the login
//! failed) sends nothing: that failure is already counted once.

pub mod jwt;
pub mod session;

use std::sync::Arc;

use goose::{goose::GooseResponse, metrics::GooseRequestMetric, prelude::*};
use harness::plan::{Server, System};
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use crate::{summary::Tally, targets::Targets};

/// What every transaction of a run shares.
#[derive(Debug)]
pub struct Journey {
    pub targets: Targets,
    pub password: String,
    /// How many times the `/me` step runs per journey.
    pub me_per_journey: usize,
    pub tally: Arc<Tally>,
}

/// The goose scenario for `system`'s server kind.
pub fn scenario(system: System, journey: &Arc<Journey>) -> Result<Scenario, GooseError> {
    match system.server() {
        Server::Session => session::scenario(journey),
        Server::Jwt => jwt::scenario(journey),
    }
}

/// One goose transaction that runs `$step(&Journey, &mut GooseUser)`.
macro_rules! step {
    ($journey:expr, $name:expr, $step:path) => {{
        let journey = std::sync::Arc::clone($journey);
        goose::goose::Transaction::new(std::sync::Arc::new(move |user| {
            let journey = std::sync::Arc::clone(&journey);
            Box::pin(async move { $step(&journey, user).await })
        }))
        .set_name($name)
    }};
}
pub(crate) use step;

/// Demo user `user{k}` for goose user `k`, as `auth_core::users::UserDirectory::demo`
/// defines them.
pub fn demo_user(k: usize) -> (String, bool) {
    (format!("user{k}"), k.is_multiple_of(10))
}

/// One goose user's journey state (goose session data).
#[derive(Clone, Debug, Default)]
pub struct UserState {
    /// Goose's user index (0-based).
    pub index: usize,
    pub name: String,
    pub admin: bool,
    /// Requests sent so far, for round-robin routing.
    pub sent: u64,
    /// Session: the `__Host-sid=…` pair to send back.
    pub cookie: Option<String>,
    /// JWT: the current access and refresh tokens.
    pub access: Option<String>,
    pub refresh: Option<String>,
    /// JWT: this journey's refresh has rotated the tokens.
    pub refreshed: bool,
    /// Logout answered 204: the next step checks the credential is dead.
    pub logged_out: bool,
}

impl UserState {
    pub fn role(&self) -> &'static str {
        if self.admin { "admin" } else { "user" }
    }
}

/// The credential a request carries.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    None,
    Cookie(&'a str),
    Bearer(&'a str),
}

/// One request of a step.
#[derive(Debug)]
pub struct Call<'a> {
    pub method: GooseMethod,
    pub path: &'a str,
    /// The name in goose's tables (the path, plus what distinguishes it).
    pub name: &'a str,
    pub expect: StatusCode,
    pub auth: Auth<'a>,
    pub json: Option<Value>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str, name: &'a str, expect: StatusCode, auth: Auth<'a>) -> Self {
        Self { method: GooseMethod::Get, path, name, expect, auth, json: None }
    }

    pub fn post(path: &'a str, name: &'a str, expect: StatusCode, auth: Auth<'a>, json: Option<Value>) -> Self {
        Self { method: GooseMethod::Post, path, name, expect, auth, json }
    }
}

/// A response whose status was the expected one, read whole.
#[derive(Debug)]
pub struct Answer {
    pub request: GooseRequestMetric,
    /// The instance it came from (index into [`Targets::urls`]).
    pub instance: usize,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    pub text: String,
}

impl Journey {
    /// This user's state, created on first use from goose's user index.
    pub fn state<'u>(&self, user: &'u mut GooseUser) -> &'u mut UserState {
        if user.get_session_data::<UserState>().is_none() {
            let index = user.weighted_users_index;
            let (name, admin) = demo_user(index);
            user.set_session_data(UserState { index, name, admin, ..UserState::default() });
        }
        // Set just above when missing, and only this type is ever stored.
        user.get_session_data_unchecked_mut::<UserState>()
    }

    /// Send `call` to the instance the balancer picks; `Err` (a failed request, counted
    /// and in goose's metrics) unless the status is `call.expect`.
    pub async fn call(&self, user: &mut GooseUser, call: Call<'_>) -> Result<Answer, Box<TransactionError>> {
        let state = self.state(user);
        let instance = self.targets.instance(state.index, state.sent);
        state.sent += 1;
        let url = format!("{}{}", self.targets.urls[instance], call.path);
        let mut builder = user.get_request_builder(&call.method, &url)?;
        builder = match call.auth {
            Auth::None => builder,
            Auth::Cookie(cookie) => builder.header(header::COOKIE, cookie),
            Auth::Bearer(token) => builder.header(header::AUTHORIZATION, format!("Bearer {token}")),
        };
        if let Some(json) = &call.json {
            builder = builder.json(json);
        }
        let request = GooseRequest::builder()
            .method(call.method)
            .path(url.as_str())
            .name(call.name)
            .expect_status_code(call.expect.as_u16())
            .set_request_builder(builder)
            .build();
        self.tally.sent();
        let GooseResponse { request, response } = match user.request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.tally.failed(call.name, &e.to_string());
                return Err(e);
            }
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                self.tally.failed(call.name, &format!("{}: {e}", url));
                return Err(Box::new(TransactionError::RequestFailed { raw_request: Box::new(request) }));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await;
        if !request.success {
            // Goose has recorded the wrong status; the tally keeps the body for the summary.
            let body = text.unwrap_or_default();
            self.tally
                .failed(call.name, &format!("expected {}, got {status} from {url}: {}", call.expect, clip(&body)));
            return Err(Box::new(TransactionError::RequestFailed { raw_request: Box::new(request) }));
        }
        let mut answer = Answer { request, instance, headers, body: Value::Null, text: String::new() };
        match text {
            Ok(text) => {
                answer.body = serde_json::from_str(&text).unwrap_or(Value::Null);
                answer.text = text;
                Ok(answer)
            }
            Err(e) => Err(self.reject(user, &mut answer, "unreadable body", &e.to_string())),
        }
    }

    /// `Ok` when `ok`, otherwise mark `answer`'s request failed with `tag` (the error
    /// table's row: keep it free of per-user values so rows aggregate).
    pub fn check(&self, user: &mut GooseUser, answer: &mut Answer, ok: bool, tag: &str) -> TransactionResult {
        if ok { Ok(()) } else { Err(self.reject(user, answer, tag, "")) }
    }

    fn reject(&self, user: &mut GooseUser, answer: &mut Answer, tag: &str, detail: &str) -> Box<TransactionError> {
        self.tally.failed(&answer.request.name, &format!("{tag}{detail}: {}", clip(&answer.text)));
        match user.set_failure(tag, &mut answer.request, Some(&answer.headers), Some(&answer.text)) {
            Err(e) => e,
            // set_failure always answers Err; keep a failure even if that ever changes.
            Ok(()) => Box::new(TransactionError::Custom(tag.to_owned())),
        }
    }

    /// `/me`-shaped body (`/me`, and `/admin` for admins): this user, this role, and the
    /// instance it was sent to.
    pub fn check_me(&self, user: &mut GooseUser, answer: &mut Answer, what: &str) -> TransactionResult {
        let state = self.state(user);
        let (name, role) = (state.name.clone(), state.role());
        let body = &answer.body;
        if body["user"].as_str() != Some(name.as_str()) {
            return self.check(user, answer, false, &format!("{what}: wrong user"));
        }
        if body["role"].as_str() != Some(role) {
            return self.check(user, answer, false, &format!("{what}: wrong role"));
        }
        let instance_ok = self.targets.id(answer.instance).is_none_or(|id| body["instance"].as_str() == Some(id));
        self.check(user, answer, instance_ok, &format!("{what}: answered by another instance"))
    }

    /// An error body (`{"error": code}`) with this code.
    pub fn check_error(&self, user: &mut GooseUser, answer: &mut Answer, code: &str, what: &str) -> TransactionResult {
        let ok = answer.body["error"].as_str() == Some(code);
        self.check(user, answer, ok, &format!("{what}: expected error {code:?}"))
    }

    /// `/admin`: 200 with the user's `/me` for admins, 403 `forbidden` for everyone else.
    pub async fn admin(&self, user: &mut GooseUser, auth: Auth<'_>) -> TransactionResult {
        if self.state(user).admin {
            let mut a = self.call(user, Call::get("/admin", "/admin (admin)", StatusCode::OK, auth)).await?;
            self.check_me(user, &mut a, "/admin")
        } else {
            let mut a = self.call(user, Call::get("/admin", "/admin (user)", StatusCode::FORBIDDEN, auth)).await?;
            self.check_error(user, &mut a, "forbidden", "/admin")
        }
    }
}

/// At most 200 characters of a body, for messages.
fn clip(text: &str) -> String {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_users_match_auth_core() {
        assert_eq!(demo_user(0), ("user0".to_owned(), true));
        assert_eq!(demo_user(7), ("user7".to_owned(), false));
        assert_eq!(demo_user(30), ("user30".to_owned(), true));
    }

    #[test]
    fn clip_cuts_on_a_char_boundary() {
        let s = "é".repeat(150);
        assert!(clip(&s).len() <= 200);
        assert_eq!(clip("short"), "short");
    }
}
