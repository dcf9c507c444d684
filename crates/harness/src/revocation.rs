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
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::{
    deploy::{self, Binaries, Deployment, Store},
    drive::client::{Conn, Prepared},
    plan::{Server, System},
    record::RunHeader,
    workload,
};

/// Everything `authbench revocation` needs, after flag parsing.
#[derive(Clone, Debug, Serialize)]
pub struct RevocationConfig {
    pub systems: Vec<System>,
    pub instances: usize,
    pub repeats: usize,
    pub redis_url: Option<String>,
    pub out: PathBuf,
    /// `--access-ttl` of the JWT servers: bounds the `none` window.
    #[serde(with = "crate::record::secs")]
    pub access_ttl: Duration,
    /// Longest probe per repeat.
    #[serde(with = "crate::record::secs")]
    pub deadline: Duration,
    pub demo_password: String,
    pub bin_dir: Option<PathBuf>,
}

/// p50/p99/max/mean of the revoked repeats' windows, in ms (`null` when none was revoked).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WindowSummary {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl WindowSummary {
    /// Nearest-rank percentiles.
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Self {
            p50: Some(rank(0.50)),
            p99: Some(rank(0.99)),
            max: v.last().copied(),
            mean: Some(v.iter().sum::<f64>() / v.len() as f64),
        }
    }
}

/// One system's windows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SystemWindows {
    pub system: System,
    pub instances: usize,
    pub repeats: usize,
    pub window_ms: WindowSummary,
    /// Window of every revoked repeat, in run order.
    pub samples_ms: Vec<f64>,
    /// Per repeat, per instance: ms from the logout response to that instance's first
    /// 401 (`null`: still accepted at the deadline).
    pub per_instance_ms: Vec<Vec<Option<f64>>>,
    /// Repeats in which some instance still accepted the credential at the deadline.
    pub not_revoked: usize,
    /// `/me` probes sent after the logouts, all repeats together.
    pub probes: u64,
    pub notes: String,
}

pub use crate::record::Skipped;

/// `revocation.json`: a revocation run (beside a sweep's results.json when `--out` names
/// the sweep's directory, which puts it into that run's report).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RevocationResults {
    /// Schema, kind, run id, times, machine, config; `capped` is always false.
    #[serde(flatten)]
    pub run: RunHeader,
    pub store: Option<String>,
    pub skipped: Vec<Skipped>,
    pub systems: Vec<SystemWindows>,
}

pub const FILE: &str = "revocation.json";

impl RevocationResults {
    /// Write `revocation.json` atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        crate::record::write_json_atomically(dir, FILE, self)
    }

    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        crate::record::read_json(dir, FILE)
    }
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What each system's window means, for `notes`.
fn notes(system: System, config: &RevocationConfig) -> String {
    let common = "instances uncapped (no cgroups); window = logout response to each instance's first 401";
    let what = match system {
        System::SessionMemory => "sticky: the session lives only in its home instance's memory, so the cookie works \
                                  only there (other instances reject it from the start); the window is the home \
                                  instance's"
            .to_owned(),
        System::SessionRedis => {
            "logout deletes the session from the shared Redis, which every instance reads per request".into()
        }
        System::JwtHs256Denylist => "logout writes the token's jti to Redis; every request checks Redis".into(),
        System::JwtHs256DenylistCached => {
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
    let binaries = deploy::find_binaries(config.bin_dir.as_deref())?;
    let id = crate::sweep::run_id();
    let work = deploy::WorkDir::create(&format!("authbench-revocation-{id}"))?;
    let (log_dir, key_dir) = (&work.logs, &work.keys);
    std::fs::create_dir_all(&config.out).with_context(|| format!("cannot create {}", config.out.display()))?;
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
    if systems.iter().any(|s| s.server() == Server::Jwt) {
        binaries.keygen(["HS256"], key_dir)?;
    }
    anyhow::ensure!(
        systems.iter().all(|s| s.jwt_alg().is_none_or(|a| a == "HS256")),
        "authbench revocation measures session-* and jwt-hs256* systems only"
    );

    let mut results = RevocationResults {
        run: RunHeader::new("revocation", &id, &config)?,
        store: store
            .as_ref()
            .map(|s| if s.private() { "private redis-server".into() } else { "external (--redis-url)".into() }),
        skipped,
        systems: Vec::new(),
    };
    let prefix = format!("authbench:{id}:");
    let ctx = Ctx { config: &config, binaries: &binaries, store: store.as_ref(), key_dir, log_dir, prefix: &prefix };
    let mut outcome = Ok(());
    for &system in &systems {
        if *shutdown.borrow() {
            outcome = Err(anyhow::anyhow!("interrupted (Ctrl-C)"));
            break;
        }
        println!("{system}: {} repeats on {} instances", config.repeats, config.instances);
        let mut deployment = Deployment::default();
        let mut stop = shutdown.clone();
        let r = tokio::select! {
            r = ctx.system(system, &mut deployment) => r,
            _ = stop.wait_for(|s| *s) => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
        };
        deployment.stop().await;
        if let Some(s) = &store {
            let _ = deploy::delete_prefix(&s.url, &prefix).await;
        }
        match r {
            Ok(w) => {
                results.systems.push(w);
                results.write(&config.out)?;
            }
            Err(e) => {
                outcome = Err(e.context(format!("measuring {system}")));
                break;
            }
        }
    }
    results.run.finished_at = Some(crate::record::now_rfc3339());
    results.write(&config.out)?;
    if let Some(p) = store.as_mut().and_then(|s| s.process.as_mut()) {
        p.stop().await;
    }
    outcome.map(|()| results)
}

struct Ctx<'a> {
    config: &'a RevocationConfig,
    binaries: &'a Binaries,
    store: Option<&'a Store>,
    key_dir: &'a Path,
    log_dir: &'a Path,
    prefix: &'a str,
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
        let setup = deploy::ServerSetup {
            users: self.config.repeats.clamp(10, 1000),
            password: &self.config.demo_password,
            store_url: self.store.map(|s| s.url.as_str()),
            prefix: self.prefix,
            key_dir: self.key_dir,
            jwt_extra: &jwt_extra,
        };
        deploy::server_args(system, k, &setup)
    }

    async fn system(&self, system: System, deployment: &mut Deployment) -> anyhow::Result<SystemWindows> {
        let program = self.binaries.program(system);
        for k in 0..self.config.instances {
            let name = format!("{system}-{k}");
            let (process, addr) =
                deploy::spawn_server(&name, program, &self.server_args(system, k), None, self.log_dir).await?;
            deployment.instances.push(process);
            deployment.addrs.push(addr);
        }
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
