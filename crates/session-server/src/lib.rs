//! `session-server`: authentication with a server-side session and a cookie that holds
//! only the session ID.
//!
//! Read [`app`] first (routes, the [`app::SessionUser`] extractor), then [`store`] (the
//! trait and its memory and Redis implementations). [`config`] turns flags into a
//! running server; the binary is a few lines around [`config::run`].

pub mod app;
pub mod config;
pub mod cookie;
pub mod id;
pub mod store;
