//! `authbench revocation`: how long a logged-out credential keeps working, per system.
//!
//! For each system, N uncapped instances; then, per repeat: log a user in on its home
//! instance, make the credential known to every instance (one `/me` each), log out on the
//! home instance, and probe every instance's `/me` in a tight loop (one connection per
//! instance, all concurrently, each sending its next request as soon as the previous answer
//! arrives) until each answers 401. The window of a repeat is the time from the logout
//! response to the last instance's first 401 (answer received); a repeat still accepted
//! somewhere at the deadline counts as "not revoked within deadline".

use std::{
    net::SocketAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use http::StatusCode;

use crate::{
    deploy::{
        self, Binaries, Deployment, Store,
        cluster::{RedisCluster, start_cluster},
        postgres::{DEFAULT_USER, PgSettings, Postgres, start_postgres},
    },
    drive::client::{Conn, Prepared},
    experiment::{self, Steps},
    plan::{Server, System},
    record::{
        ExperimentKind, RunHeader,
        revocation::{RevocationConfig, RevocationResults, Skipped, SystemWindows, WindowSummary},
    },
    workload,
};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What each system's window means, for `notes`.
fn notes(system: System, config: &RevocationConfig) -> String {
    let common = "instances uncapped (no cgroups); window = logout response to each instance's first 401";
    let what = match system {
        System::SESSION_MEMORY => "sticky: the session lives only in its home instance's memory, so the cookie works \
                                  only there (other instances reject it from the start); the window is the home \
                                  instance's"
            .to_owned(),
        System::SESSION_REDIS => {
            "logout deletes the session from the shared Redis, which every instance reads per request".into()
        }
        System::SESSION_REDIS_CACHED => "logout deletes the session from Redis and publishes its id; each instance \
                                         drops its local copy (otherwise served for up to --session-cache-ttl, 10 s) when the message arrives"
            .into(),
        System::SESSION_POSTGRES | System::SESSION_POSTGRES_TOUCH => {
            "logout deletes the session's row from the shared PostgreSQL, which every instance reads per request".into()
        }
        System::SESSION_REDIS_CLUSTER => {
            "logout deletes the session from the Redis Cluster shard that owns it, which every instance reads per request"
                .into()
        }
        System::JWT_HS256_DENYLIST => "logout writes the token's jti to Redis; every request checks Redis".into(),
        System::JWT_HS256_DENYLIST_CACHED => {
            "logout writes the jti to Redis and publishes it; each instance checks a local copy kept current by pub/sub"
                .into()
        }
        _ => format!(
            "--revocation none: logout cannot reach the access token, which stays valid until exp; the window is its \
             remaining lifetime (--access-ttl {}, --leeway 0s, exp in whole seconds, so up to one second more)",
            humantime::format_duration(config.access_ttl)
        ),
    };
    format!("{what}; {common}")
}

/// Run the experiment; returns the results (also written to `config.out`/revocation.json).
pub async fn revocation(
    config: RevocationConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<RevocationResults> {
    anyhow::ensure!(!config.systems.is_empty(), "--systems is empty");
    anyhow::ensure!((1..=64).contains(&config.instances), "--instances must be between 1 and 64");
    anyhow::ensure!(config.repeats >= 1, "--repeats must be at least 1");
    anyhow::ensure!(
        !config.systems.iter().any(|s| s.is_control()),
        "--systems: control reads no credential, so there is nothing to revoke"
    );
    let binaries = deploy::find_binaries(config.bin_dir.as_deref())?;
    let (id, work) = experiment::start("revocation-", &config.out)?;
    let (log_dir, key_dir) = (&work.logs, &work.keys);
    println!(
        "authbench revocation: {} instances per system, uncapped (no cgroups: the window is a latency)",
        config.instances
    );

    let mut systems = config.systems.clone();
    let mut skipped = Vec::new();
    let (mut store, missing) =
        deploy::open_store(&mut systems, config.redis_url.as_deref(), || Ok(None), log_dir).await?;
    for (system, reason) in missing {
        println!("authbench: skipping {system}: {reason}");
        skipped.push(Skipped { system, reason });
    }
    anyhow::ensure!(!systems.is_empty(), "nothing left to measure: every requested system was skipped");
    // The database and the cluster are private to the run, as the sweep's are.
    let mut pg = if systems.iter().any(|s| s.needs_postgres()) {
        Some(start_postgres(DEFAULT_USER, PgSettings::default(), None, log_dir).await?)
    } else {
        None
    };
    let mut cluster = if systems.iter().any(|s| s.needs_cluster()) {
        Some(start_cluster(3, |_| Ok(None), log_dir).await?)
    } else {
        None
    };
    if systems.iter().any(|s| s.server() == Server::Jwt) {
        binaries.keygen(["HS256"], key_dir)?;
    }
    anyhow::ensure!(
        systems.iter().all(|s| s.jwt_alg().is_none_or(|a| a == "HS256")),
        "authbench revocation measures session-* and jwt-hs256* systems only"
    );

    let results = RevocationResults {
        store: store
            .as_ref()
            .map(|s| if s.private() { "private redis-server".into() } else { "external (--redis-url)".into() }),
        run: RunHeader::new(ExperimentKind::Revocation, &id, config.clone()),
        skipped,
        systems: Vec::new(),
    };
    let prefix = format!("authbench:{id}:");
    let mut ctx = Ctx {
        config: &config,
        binaries: &binaries,
        store: store.as_ref(),
        pg: pg.as_ref(),
        cluster: cluster.as_ref(),
        key_dir,
        log_dir,
        prefix: &prefix,
        results,
    };
    let outcome = experiment::run(&mut ctx, &systems, &shutdown).await;
    let mut results = ctx.results;
    results.run.finished_at = Some(crate::record::now_rfc3339());
    results.write(&config.out)?;
    if let Some(p) = store.as_mut().and_then(|s| s.process.as_mut()) {
        p.stop().await;
    }
    if let Some(pg) = pg.as_mut() {
        pg.stop().await;
    }
    if let Some(c) = cluster.as_mut() {
        c.stop().await;
    }
    outcome.map(|()| results)
}

struct Ctx<'a> {
    config: &'a RevocationConfig,
    binaries: &'a Binaries,
    store: Option<&'a Store>,
    pg: Option<&'a Postgres>,
    cluster: Option<&'a RedisCluster>,
    key_dir: &'a Path,
    log_dir: &'a Path,
    prefix: &'a str,
    results: RevocationResults,
}

impl Steps for Ctx<'_> {
    type Step = System;

    fn announce(&mut self, _: usize, _: usize, system: &System) {
        println!("{system}: {} repeats on {} instances", self.config.repeats, self.config.instances);
    }

    async fn run(&mut self, &system: &System, deployment: &mut Deployment) -> anyhow::Result<()> {
        let windows = self.system(system, deployment).await.with_context(|| format!("measuring {system}"))?;
        self.results.systems.push(windows);
        self.results.write(&self.config.out)
    }

    async fn after(&mut self) -> anyhow::Result<()> {
        deploy::clear_stores(self.store.map(|s| s.url.as_str()), self.prefix, self.cluster, self.pg).await
    }
}

impl Ctx<'_> {
    fn server_args(&self, system: System, k: usize) -> Vec<String> {
        // --revocation none's window is the token's remaining life: keep it short and exact.
        let jwt_extra = [
            "--access-ttl".to_owned(),
            format!("{}ms", self.config.access_ttl.as_millis()),
            "--leeway".to_owned(),
            "0s".to_owned(),
        ];
        let cluster_urls = self.cluster.map(RedisCluster::urls);
        let setup = deploy::ServerSetup {
            users: self.config.repeats.clamp(10, 1000),
            password: &self.config.demo_password,
            store_url: if system.needs_postgres() {
                self.pg.map(|p| p.url.as_str())
            } else if system.needs_cluster() {
                cluster_urls.as_deref()
            } else {
                self.store.map(|s| s.url.as_str())
            },
            prefix: self.prefix,
            key_dir: self.key_dir,
            jwt_extra: &jwt_extra,
        };
        deploy::server_args(system, k, &setup)
    }

    async fn system(&self, system: System, deployment: &mut Deployment) -> anyhow::Result<SystemWindows> {
        let program = self.binaries.program(system);
        let args = |k| self.server_args(system, k);
        deploy::spawn_instances(deployment, system, self.config.instances, program, args, |_| Ok(None), self.log_dir)
            .await?;
        let mut samples = Vec::new();
        let mut per_instance = Vec::new();
        let mut not_revoked = 0;
        let mut probes = 0;
        let users = self.config.repeats.clamp(10, 1000);
        for r in 0..self.config.repeats {
            let rep = self.repeat(system, &deployment.addrs, r % deployment.addrs.len(), r % users).await?;
            if let Some(why) = deployment.casualty() {
                bail!("instance died during {system}: {why}");
            }
            probes += rep.probes;
            match rep.window() {
                Some(w) => samples.push(w),
                None => not_revoked += 1,
            }
            per_instance.push(rep.per_instance);
        }
        let window_ms = WindowSummary::of(&samples);
        println!(
            "{system}: p50 {} ms, p99 {} ms, max {} ms, not revoked {not_revoked}/{}",
            fmt_ms(window_ms.p50),
            fmt_ms(window_ms.p99),
            fmt_ms(window_ms.max),
            self.config.repeats
        );
        Ok(SystemWindows {
            system,
            instances: deployment.addrs.len(),
            repeats: self.config.repeats,
            window_ms,
            samples_ms: samples,
            per_instance_ms: per_instance,
            not_revoked,
            probes,
            notes: notes(system, self.config),
        })
    }

    /// Login, spread, logout, probe: one window.
    async fn repeat(&self, system: System, addrs: &[SocketAddr], home: usize, user: usize) -> anyhow::Result<Repeat> {
        let mut home_conn = Conn::connect(addrs[home], REQUEST_TIMEOUT).await?;
        let ((name, value), _) = workload::login_one(system, &mut home_conn, user, &self.config.demo_password).await?;
        let me = Prepared::get("/me")?.with_header(name.clone(), value.clone());
        // Make the credential known everywhere (caches, keep-alive connections).
        let mut conns = Vec::new();
        for (k, &addr) in addrs.iter().enumerate() {
            let mut conn = Conn::connect(addr, REQUEST_TIMEOUT).await?;
            let (status, body) = conn.send(&me, REQUEST_TIMEOUT).await?;
            let expected =
                if system.instance_local_state() && k != home { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
            if status != expected {
                bail!(
                    "{system}: /me on instance {k} before logout answered {status} (expected {expected}): {}",
                    String::from_utf8_lossy(&body)
                );
            }
            conns.push(conn);
        }
        // No body: a session logout reads the cookie, a JWT logout the bearer token.
        let logout = Prepared {
            method: http::Method::POST,
            uri: "/logout".parse()?,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
        }
        .with_header(name, value);
        let (status, body) = home_conn.send(&logout, REQUEST_TIMEOUT).await?;
        let t0 = Instant::now();
        if status != StatusCode::NO_CONTENT {
            bail!("{system}: logout answered {status}: {}", String::from_utf8_lossy(&body));
        }
        let deadline = t0 + self.config.deadline;
        let mut tasks = Vec::new();
        for (conn, &addr) in conns.into_iter().zip(addrs) {
            tasks.push(tokio::spawn(probe(conn, addr, me.clone(), t0, deadline)));
        }
        let mut per_instance = Vec::new();
        let mut probes = 0;
        for t in tasks {
            let (first_401, n) = t.await??;
            probes += n;
            per_instance.push(first_401.map(|d| d.as_secs_f64() * 1e3));
        }
        Ok(Repeat { per_instance, probes })
    }
}

struct Repeat {
    per_instance: Vec<Option<f64>>,
    probes: u64,
}

impl Repeat {
    /// The last instance's first 401, if every instance got there.
    fn window(&self) -> Option<f64> {
        self.per_instance.iter().try_fold(0.0_f64, |m, w| w.map(|w| m.max(w)))
    }
}

/// Send `/me` back to back until a 401 or the deadline; returns the time from `t0` to the
/// first 401 received, and the number of probes.
async fn probe(
    mut conn: Conn,
    addr: SocketAddr,
    me: Prepared,
    t0: Instant,
    deadline: Instant,
) -> anyhow::Result<(Option<Duration>, u64)> {
    let mut n = 0;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Ok((None, n));
        }
        let timeout = (deadline - now).min(REQUEST_TIMEOUT);
        n += 1;
        match conn.send(&me, timeout).await {
            Ok((StatusCode::UNAUTHORIZED, _)) => return Ok((Some(t0.elapsed()), n)),
            Ok((StatusCode::OK, _)) => {}
            Ok((status, body)) => bail!("/me on {addr} answered {status}: {}", String::from_utf8_lossy(&body)),
            Err(_) => {
                // A broken connection is not an answer: open a new one and keep probing.
                if let Ok(c) = Conn::connect(addr, timeout).await {
                    conn = c;
                }
            }
        }
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

/// The end-of-run table.
pub fn summary_table(results: &RevocationResults) -> String {
    let mut out = format!(
        "{:<26} {:>3} {:>7} {:>10} {:>10} {:>10} {:>10} {:>12}\n",
        "system", "N", "repeats", "p50 ms", "p99 ms", "max ms", "mean ms", "not revoked"
    );
    for s in &results.systems {
        out.push_str(&format!(
            "{:<26} {:>3} {:>7} {:>10} {:>10} {:>10} {:>10} {:>12}\n",
            s.system.id(),
            s.instances,
            s.repeats,
            fmt_ms(s.window_ms.p50),
            fmt_ms(s.window_ms.p99),
            fmt_ms(s.window_ms.max),
            fmt_ms(s.window_ms.mean),
            s.not_revoked,
        ));
    }
    for s in &results.skipped {
        out.push_str(&format!("skipped {}: {}\n", s.system, s.reason));
    }
    out.push_str("instances ran uncapped; window = logout response to the last instance's first 401\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_summary() {
        let s = WindowSummary::of(&[3.0, 1.0, 2.0, 4.0]);
        assert_eq!((s.p50, s.p99, s.max, s.mean), (Some(2.0), Some(4.0), Some(4.0), Some(2.5)));
        assert_eq!(WindowSummary::of(&[]), WindowSummary::default());
    }

    #[test]
    fn window_is_the_last_instance_and_none_if_any_missed() {
        let r = Repeat { per_instance: vec![Some(1.0), Some(3.0)], probes: 2 };
        assert_eq!(r.window(), Some(3.0));
        let r = Repeat { per_instance: vec![Some(1.0), None], probes: 2 };
        assert_eq!(r.window(), None);
    }
}
