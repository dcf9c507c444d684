//! `authbench-goose`: realistic user journeys against the session and JWT servers, driven
//! by [goose](https://docs.rs/goose/0.19). Where `authbench` measures one request type at
//! a time, this walks whole journeys — log in, `/me` a few times, `/admin`, refresh (JWT),
//! log out, check the credential is dead — and fails the run when any answer is wrong.
//!
//! One run: [`cli`] (our flags plus goose's own) → [`targets`] (loopback only) →
//! [`servers`] (start the instances with the harness's deploy code, or use `--host`) →
//! [`journey`] (the goose scenarios, one per server kind) → [`summary`] (per-request
//! figures and the verdict that decides the exit status). [`run::run`] strings them
//! together; start reading there, then [`journey::session`] and [`journey::jwt`].

pub mod cli;
pub mod journey;
pub mod run;
pub mod servers;
pub mod summary;
pub mod targets;
