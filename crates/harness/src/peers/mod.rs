//! `authbench peers`: each of our servers beside what a team would build instead
//! (`authbench-peer`, crates/peers), on the same machine in the same run, interleaved.
//!
//! One measurement is one fresh server process, in its own cgroup capped at `--cores`
//! (one core by default, so the generator has the other and the figure is the server's,
//! not the split the scheduler happened to make), one credential from its own `/login`,
//! then a closed loop of `--connections` keep-alive connections sending the pair's request
//! back to back: a warm-up run, then the measured window. The figures are the answers per
//! second, the server's CPU per request (its process CPU time over the window ÷ answers),
//! and for the Redis pair the store's commands and CPU per request. Every answer must be a
//! 200; one that is not fails the run.
//!
//! Rounds interleave the two sides of every pair (round r runs ours first when r is even,
//! the peer first when it is odd), so a machine that drifts during the run drifts for both;
//! the table takes medians over the rounds and shows the per-round ratios' range.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, header};

use crate::{
    calibrate,
    cgroup::{Cgroup, CgroupRoot},
    deploy::{self, Process, ServerSetup, WorkDir},
    drive::{
        client::{Conn, Prepared},
        engine::{self, Mode, Spec},
    },
    experiment::run_id,
    observe::{RedisObserver, ThreadCpu},
    plan::System,
    record::Machine,
    workload::FixedWorkload,
};

mod table;

pub use table::{FILE_JSON, FILE_MD, PeersResults, Round, Side, render};

/// One comparison: our system on `path` beside the peer built for the same job.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    pub id: &'static str,
    pub path: &'static str,
    pub ours: System,
    /// What our side is, for the table.
    pub ours_label: &'static str,
    /// `authbench-peer`'s kind.
    pub peer: &'static str,
    /// What the peer is, for the table.
    pub peer_label: &'static str,
    /// Issue 13's goal: ours ÷ peer throughput at least this.
    pub goal: f64,
    /// What the two do differently, stated beside the numbers.
    pub differences: &'static str,
}

pub const PAIRS: [Pair; 4] = [
    Pair {
        id: "healthz",
        path: "/healthz",
        ours: System::SESSION_MEMORY,
        ours_label: "our server stack (session-server)",
        peer: "axum",
        peer_label: "bare axum 0.8",
        goal: 0.95,
        differences: "Same static body and content type. Ours also adds `Cache-Control: no-store`, counts the \
                      request in its metrics, enforces a header-read timeout, a request timeout and a header-size \
                      limit (hyper's connection builder rather than `axum::serve`).",
    },
    Pair {
        id: "jwt-hs256",
        path: "/me",
        ours: System::JWT_HS256,
        ours_label: "jwt-hs256",
        peer: "jwt",
        peer_label: "axum + jsonwebtoken 12 (axum's JWT example)",
        goal: 1.0,
        differences: "The peer checks the signature and `exp` (jsonwebtoken's `Validation::default()`), and its \
                      token carries `sub`, `role`, `exp` only. Ours pins the algorithm and `kid`, requires and \
                      checks `typ`, `iss`, `aud`, `nbf`, `exp` with leeway, refuses key-bearing headers and \
                      `crit`, caps the token size, type-checks every claim, and its token carries nine claims \
                      (362 bytes against about 140: more to decode, hash and parse). Both answer the same JSON shape; ours adds `no-store`.",
    },
    Pair {
        id: "session-memory",
        path: "/me",
        ours: System::SESSION_MEMORY,
        ours_label: "session-memory",
        peer: "sessions-memory",
        peer_label: "tower-sessions 0.14, MemoryStore",
        goal: 1.1,
        differences: "Both keep sessions in process memory with an inactivity expiry. tower-sessions loads the \
                      whole session record (a map of values) per request and deserializes the user from it; \
                      ours keeps the user and role as typed fields, also enforces an absolute lifetime, and adds \
                      `no-store`. Ours' memory store is bounded; `MemoryStore` is not.",
    },
    Pair {
        id: "session-redis",
        path: "/me",
        ours: System::SESSION_REDIS,
        ours_label: "session-redis",
        peer: "sessions-redis",
        peer_label: "tower-sessions 0.14 + tower-sessions-redis-store 0.16 (fred)",
        goal: 1.2,
        differences: "Same private Redis, both one command per request. Ours refreshes the session's TTL on every \
                      read (sliding expiry kept true in the store); tower-sessions does not write on a read, so \
                      its inactivity expiry runs from the last change of the session, not the last request. \
                      Ours fails closed with 503 when Redis is down.",
    },
];

#[derive(Clone, Debug)]
pub struct PeersConfig {
    pub pairs: Vec<Pair>,
    pub rounds: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub connections: usize,
    /// Each server's cap; `None` runs uncapped.
    pub cores: Option<f64>,
    /// Where `peers.md` and `peers.json` go.
    pub out: PathBuf,
    pub bin_dir: Option<PathBuf>,
}

/// A pair by its id (`--pairs`).
pub fn pair(id: &str) -> Result<Pair, String> {
    PAIRS.iter().copied().find(|p| p.id == id).ok_or_else(|| {
        let ids: Vec<&str> = PAIRS.iter().map(|p| p.id).collect();
        format!("unknown pair {id:?}; one of {}", ids.join(", "))
    })
}

const PASSWORD: &str = "demo-password";
const TIMEOUT: Duration = Duration::from_secs(5);

/// What a run needs for its whole length: binaries, keys, the private Redis, the cgroups.
struct Rig {
    ours: deploy::Binaries,
    peer: PathBuf,
    work: WorkDir,
    redis: Option<deploy::Store>,
    /// The run's cgroup and each server's cap in it; `None` uncapped.
    caps: Option<(CgroupRoot, f64)>,
}

impl Rig {
    fn group(&self, name: &str) -> anyhow::Result<Option<Cgroup>> {
        let Some((root, cores)) = &self.caps else { return Ok(None) };
        deploy::group(Some(root), name, *cores)
    }

    async fn start(&self, pair: &Pair, side: Side, round: usize) -> anyhow::Result<(Process, std::net::SocketAddr)> {
        let name = format!("{}-{}-{round}", pair.id, side.as_str());
        let redis_url = self.redis.as_ref().map(|s| s.url.clone());
        let (program, args) = match side {
            Side::Ours => {
                let setup = ServerSetup {
                    users: 2,
                    password: PASSWORD,
                    store_url: redis_url.as_deref(),
                    prefix: "authbench-peers:",
                    key_dir: &self.work.keys,
                    jwt_extra: &[],
                };
                (self.ours.program(pair.ours).to_path_buf(), deploy::server_args(pair.ours, 0, &setup))
            }
            Side::Peer => {
                let mut args = vec![pair.peer.to_owned(), "--demo-password".into(), PASSWORD.into()];
                if let Some(url) = &redis_url {
                    args.extend(["--redis-url".into(), url.clone()]);
                }
                (self.peer.clone(), args)
            }
        };
        let group = self.group(&name)?;
        deploy::spawn_server(&name, &program, &args, group, &self.work.logs).await
    }
}

/// Run every pair `rounds` times, interleaved; write `peers.json` and `peers.md` to `out`.
pub async fn peers(config: PeersConfig, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<PeersResults> {
    anyhow::ensure!(!config.pairs.is_empty(), "no pairs to measure");
    let id = run_id();
    let ours = deploy::find_binaries(config.bin_dir.as_deref())?;
    let peer = deploy::find_binary("authbench-peer", config.bin_dir.as_deref())?;
    let work = WorkDir::create(&format!("authbench-peers-{id}"))?;
    ours.keygen(["HS256"], &work.keys)?;
    let caps = match config.cores {
        Some(cores) => Some((
            CgroupRoot::create(&id, Duration::from_millis(100), 0.0).map_err(|e| {
                anyhow::anyhow!(
                    "cannot cap the servers ({e}); run as root with cgroup v2, or pass --cores 0 to run uncapped"
                )
            })?,
            cores,
        )),
        None => None,
    };
    let mut rig = Rig { ours, peer, work, redis: None, caps };
    if config.pairs.iter().any(|p| p.ours.needs_redis()) {
        // Its own core share is not capped: the store is not what is compared.
        rig.redis = Some(deploy::start_redis(None, &rig.work.logs).await?);
    }

    let started = std::time::Instant::now();
    let calibration = calibrate::probe(0.0, rig.redis.as_ref().map(|s| s.url.as_str())).await;
    let total = config.rounds * config.pairs.len() * 2;
    let mut rounds = Vec::with_capacity(total);
    for r in 0..config.rounds {
        for pair in &config.pairs {
            let order = if r % 2 == 0 { [Side::Ours, Side::Peer] } else { [Side::Peer, Side::Ours] };
            for side in order {
                if *stop.borrow() {
                    bail!("stopped");
                }
                eprintln!(
                    "peers: [{}/{total}] round {}/{} {} {} ({:.0}s)",
                    rounds.len() + 1,
                    r + 1,
                    config.rounds,
                    pair.id,
                    side.as_str(),
                    started.elapsed().as_secs_f64()
                );
                let round = measure(&rig, &config, pair, side, r)
                    .await
                    .with_context(|| format!("{} ({}) round {}", pair.id, side.as_str(), r + 1))?;
                eprintln!(
                    "        {:.0} req/s, {:.2} us CPU/request, p99 {:.2} ms",
                    round.rps, round.cpu_us_per_request, round.p99_ms
                );
                rounds.push(round);
            }
        }
    }
    if let Some(process) = rig.redis.as_mut().and_then(|s| s.process.as_mut()) {
        process.stop().await;
    }
    let results = PeersResults {
        machine: Machine::detect(),
        calibration,
        rounds_per_pair: config.rounds,
        warmup_s: config.warmup.as_secs_f64(),
        duration_s: config.duration.as_secs_f64(),
        connections: config.connections,
        cores: config.cores,
        wall_s: started.elapsed().as_secs_f64(),
        pairs: config.pairs.iter().map(|p| p.id.to_owned()).collect(),
        rounds,
    };
    results.write(&config.out)?;
    Ok(results)
}

/// Every request answered, and answered 200 (`failed` counts only 4xx/5xx and transport).
fn all_ok(outcome: &engine::Outcome) -> anyhow::Result<()> {
    let ok = outcome.by_status.get(&200).copied().unwrap_or(0);
    if outcome.failed() > 0 || ok == 0 || outcome.by_status.keys().any(|s| *s != 200) {
        bail!(
            "{} of {} requests were not answered 200 (statuses {:?}, {} timeouts, {} broken connections, {} unsent)",
            outcome.requests - ok.min(outcome.requests),
            outcome.requests,
            outcome.by_status,
            outcome.timeouts,
            outcome.io,
            outcome.unsent
        );
    }
    Ok(())
}

/// Log in once; the header the measured request carries (a session cookie or a bearer).
async fn credential(addr: std::net::SocketAddr) -> anyhow::Result<(HeaderName, HeaderValue)> {
    let mut conn = Conn::connect(addr, TIMEOUT).await?;
    let login = Prepared::post_json("/login", &serde_json::json!({"username": "user1", "password": PASSWORD}))?;
    let (status, headers, body) = conn.send_with_headers(&login, TIMEOUT).await?;
    anyhow::ensure!(status.is_success(), "login answered {status}: {}", String::from_utf8_lossy(&body));
    if let Some(cookie) = headers.get(header::SET_COOKIE) {
        let pair = cookie.to_str()?.split(';').next().unwrap_or_default();
        return Ok((header::COOKIE, HeaderValue::from_str(pair)?));
    }
    let json: serde_json::Value = serde_json::from_slice(&body).context("login body is not JSON")?;
    let token = json["access_token"].as_str().context("login gave neither a cookie nor an access_token")?;
    Ok((header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}"))?))
}

async fn measure(rig: &Rig, config: &PeersConfig, pair: &Pair, side: Side, r: usize) -> anyhow::Result<Round> {
    let (mut process, addr) = rig.start(pair, side, r).await?;
    let outcome = async {
        let mut request = Prepared::get(pair.path)?;
        if pair.path != "/healthz" {
            let (name, value) = credential(addr).await?;
            request = request.with_header(name, value);
        }
        let workload = Arc::new(FixedWorkload(request));
        let spec = |duration| Spec {
            targets: vec![addr],
            connections_per_target: config.connections,
            mode: Mode::Closed { connections: config.connections },
            warmup: Duration::ZERO,
            duration,
            timeout: TIMEOUT,
        };
        let progress = Arc::new(engine::Progress::default());
        let warm = engine::run(&spec(config.warmup), workload.clone(), progress.clone()).await?;
        all_ok(&warm).context("during the warm-up")?;
        let mut store = match &rig.redis {
            Some(s) if pair.ours.needs_redis() => Some(RedisObserver::connect(&s.url).await?),
            _ => None,
        };
        let store_before = match store.as_mut() {
            Some(o) => Some(o.info().await?),
            None => None,
        };
        // Per-thread schedstat: nanoseconds, where /proc/PID/stat counts 10 ms ticks.
        let cpu_before = ThreadCpu::read(process.pid);
        let outcome = engine::run(&spec(config.duration), workload, progress).await?;
        let cpu = ThreadCpu::read(process.pid).seconds_since(&cpu_before);
        anyhow::ensure!(cpu > 0.0, "cannot read the server's CPU time (/proc/{}/task/*/schedstat)", process.pid);
        let store_after = match store.as_mut() {
            Some(o) => Some(o.info().await?),
            None => None,
        };
        all_ok(&outcome)?;
        let summary = outcome.latency.summary();
        let window = outcome.window.as_secs_f64();
        let answered = outcome.completed.max(1) as f64;
        // The first INFO is counted by the second.
        let (store_commands, store_cpu_us) = match (store_before, store_after) {
            (Some(a), Some(b)) => (
                Some(b.commands.saturating_sub(a.commands).saturating_sub(1) as f64 / answered),
                Some((b.cpu_s - a.cpu_s) * 1e6 / answered),
            ),
            _ => (None, None),
        };
        Ok(Round {
            pair: pair.id.to_owned(),
            side,
            round: r + 1,
            rps: outcome.completed as f64 / window,
            cpu_us_per_request: cpu * 1e6 / answered,
            server_cores: cpu / window,
            p50_ms: summary.p50 as f64 / 1e3,
            p99_ms: summary.p99 as f64 / 1e3,
            store_commands_per_request: store_commands,
            store_cpu_us_per_request: store_cpu_us,
        })
    }
    .await;
    process.stop().await;
    outcome
}
