//! Drive: the load generator. [`engine`] is the timing loop, [`schedule`] the open-loop
//! arrival times, [`client`] one HTTP/1.1 connection, [`histogram`] latency bookkeeping, [`route`]
//! the same per route.

pub mod client;
pub mod engine;
pub mod histogram;
pub mod route;
pub mod schedule;
