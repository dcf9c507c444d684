//! The login storm: a share of the users log in at once while everyone else keeps reading,
//! once per setting of the instances' argon2id pool (`--hash-concurrency`). A login costs
//! ~25 ms of CPU where a `/me` costs tens of µs, so what the storm measures is how long
//! the logins take to drain and what they do to the reads sharing those cores: `/me` p99
//! before, during and after.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use super::clients::ChaosWorkload;
use crate::{
    drive::{
        client::{Conn, Prepared},
        histogram::Latency,
    },
    plan::{Server, System},
    record::chaos::{ChaosConfig, ChaosRun, Experiment, Storm},
};

/// A login may wait this long in a storm (all of them queue for the hashing pool).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// What the storm's logins got back.
pub(super) struct Burst {
    latency: Latency,
    failed: u64,
    /// From the storm's start to the last login answered.
    last: Duration,
}

/// Send every login at once, each on its own connection to its user's instance, and wait
/// for all of them. Latency runs from the storm's start: what a user who pressed "log in"
/// then waited.
pub(super) async fn burst(logins: Vec<(Prepared, SocketAddr)>) -> Burst {
    let start = Instant::now();
    let tasks: Vec<_> = logins
        .into_iter()
        .map(|(req, addr)| {
            tokio::spawn(async move {
                let mut conn = Conn::connect(addr, LOGIN_TIMEOUT).await.ok()?;
                let (status, ..) = conn.send_with_headers(&req, LOGIN_TIMEOUT).await.ok()?;
                (status == http::StatusCode::OK).then(|| start.elapsed())
            })
        })
        .collect();
    let mut out = Burst { latency: Latency::new(), failed: 0, last: Duration::ZERO };
    for t in tasks {
        match t.await.ok().flatten() {
            Some(took) => {
                out.latency.record_us(took.as_micros() as u64);
                out.last = out.last.max(took);
            }
            None => out.failed += 1,
        }
    }
    out
}

/// The largest `--hash-concurrency` a run accepts (the servers' own bound is the cores).
const MAX_POOL: usize = 64;

pub(super) fn check(config: &ChaosConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.storm_share > 0.0 && config.storm_share <= 1.0,
        "--storm-share must be above 0 and at most 1 (a share of the users), got {}",
        config.storm_share
    );
    if let Some(bad) = config.hash_concurrency.iter().find(|&&k| !(1..=MAX_POOL).contains(&k)) {
        anyhow::bail!("--hash-concurrency must be between 1 and {MAX_POOL}, got {bad}");
    }
    Ok(())
}

/// The pool settings `experiment` runs with: one run per `--hash-concurrency` for a login
/// storm (the servers' default when none is given), one run otherwise.
pub(super) fn settings(config: &ChaosConfig, experiment: Experiment) -> Vec<Option<usize>> {
    if experiment == Experiment::LoginStorm && !config.hash_concurrency.is_empty() {
        config.hash_concurrency.iter().copied().map(Some).collect()
    } else {
        vec![None]
    }
}

/// Users the storm sends to log in: `--storm-share` of them, at least one.
pub(super) fn users(config: &ChaosConfig) -> usize {
    ((config.users as f64 * config.storm_share).round() as usize).clamp(1, config.users)
}

pub(super) fn notes(system: System) -> &'static str {
    match system.server() {
        Server::Session if system.uses_store() => {
            "each login hashes the password (argon2id) and writes a session to the store; the old sessions stay valid"
        }
        Server::Session => "each login hashes the password (argon2id) and creates a session in the instance's memory",
        Server::Jwt => "each login hashes the password (argon2id) and signs an access token and a refresh token",
    }
}

/// The whole seconds `[from, to)` of the run as bucket indices.
fn seconds(from: f64, to: f64) -> (usize, usize) {
    (from.max(0.0).ceil() as usize, to.max(0.0).floor() as usize)
}

/// The storm's figures, once the run is over: `/me` p99 in the whole seconds after the
/// warm-up and before the storm, from the second it started in to the second its last
/// login was answered in, and in the whole seconds after that.
pub(super) fn record(
    load: &ChaosWorkload,
    config: &ChaosConfig,
    hash_concurrency: Option<usize>,
    burst: &Burst,
    start_s: f64,
) -> Storm {
    let run_end = (config.warmup + config.duration).as_secs_f64();
    let done = (burst.failed == 0).then_some(start_s + burst.last.as_secs_f64());
    let before = seconds(config.warmup.as_secs_f64(), start_s);
    let during = (start_s.floor() as usize, done.unwrap_or(run_end).ceil() as usize);
    let after = done.map(|d| seconds(d, run_end));
    Storm {
        hash_concurrency,
        users: burst.latency.count() + burst.failed,
        failed: burst.failed,
        drain_ms: done.map(|d| (d - start_s).max(0.0) * 1e3),
        login_us: burst.latency.summary(),
        me_p99_before_us: load.me_p99_between(before.0, before.1),
        me_p99_during_us: load.me_p99_between(during.0, during.1),
        me_p99_after_us: after.and_then(|(a, b)| load.me_p99_between(a, b)),
    }
}

/// The storm's part of a run's progress line.
pub(super) fn line(run: &ChaosRun) -> Option<String> {
    let s = run.storm.as_ref()?;
    let ms = |us: Option<u64>| us.map_or("—".into(), |u| format!("{:.1}", u as f64 / 1e3));
    Some(format!(
        "{} logins{} drained in {}; login p99 {} ms; /me p99 before {} ms, during {} ms, after {} ms",
        s.users,
        s.hash_concurrency.map_or(String::new(), |k| format!(" (pool {k} per instance)")),
        s.drain_ms.map_or(format!("— ({} failed)", s.failed), |d| format!("{d:.0} ms")),
        ms(Some(s.login_us.p99)),
        ms(s.me_p99_before_us),
        ms(s.me_p99_during_us),
        ms(s.me_p99_after_us),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_leave_out_the_partial_ones_at_both_ends() {
        assert_eq!(seconds(1.0, 4.0), (1, 4));
        assert_eq!(seconds(1.2, 4.7), (2, 4));
        assert_eq!(seconds(-1.0, 0.5), (0, 0));
    }
}
