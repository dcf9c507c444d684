//! Deploy: start the servers and the store as child processes, each in its own capped
//! cgroup, wait for their ready lines, and stop them on every exit path — or, for
//! `sweep --target`, check that an already-running deployment is the system it is said to
//! be ([`check_target`]).
//!
//! Child processes are stopped explicitly (SIGTERM, then SIGKILL) by [`Deployment::stop`];
//! if that is skipped by an error or a panic, `kill_on_drop` still kills them, and the
//! cgroups are removed when their handles drop.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};

use crate::{
    cgroup::{Cgroup, CgroupRoot},
    plan::{SESSION_CACHE_TTL, Server, System},
};

pub mod cluster;
pub mod delay;
pub mod haproxy;
pub mod postgres;
mod store;
mod target;

pub use store::{Store, delete_prefix, open_store, ping, start_redis, start_redis_on};
pub use target::{check_target, parse_target};

/// How long a server may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Paths of the two server binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub session: PathBuf,
    pub jwt: PathBuf,
}

/// Find `session-server` and `jwt-server`: next to the running `authbench` (same cargo
/// target directory), in `dir` when given, or on PATH.
pub fn find_binaries(dir: Option<&Path>) -> anyhow::Result<Binaries> {
    Ok(Binaries { session: find_binary("session-server", dir)?, jwt: find_binary("jwt-server", dir)? })
}

/// Find the binary `name` in `dir` when given, next to the running `authbench`, or on PATH.
pub fn find_binary(name: &str, dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let mut places: Vec<PathBuf> = dir.into_iter().map(Path::to_path_buf).collect();
    places.extend(here);
    if let Some(path) = std::env::var_os("PATH") {
        places.extend(std::env::split_paths(&path));
    }
    places.iter().map(|d| d.join(name)).find(|p| p.is_file()).with_context(|| {
        format!(
            "cannot find `{name}` next to authbench{} or on PATH; build it with \
             `cargo build --release --workspace --bins` (or pass --bin-dir)",
            dir.map(|d| format!(", in {}", d.display())).unwrap_or_default()
        )
    })
}

impl Binaries {
    /// The binary that runs `system`.
    pub fn program(&self, system: System) -> &Path {
        match system.server() {
            Server::Session => &self.session,
            Server::Jwt => &self.jwt,
        }
    }

    /// `jwt-server keygen` once for each distinct algorithm into `key_dir`, so every
    /// instance of a run signs and verifies with the same key (jwt-hs256 and its denylist
    /// variants share hs256.key).
    pub fn keygen<'a>(&self, algs: impl IntoIterator<Item = &'a str>, key_dir: &Path) -> anyhow::Result<()> {
        for alg in algs.into_iter().collect::<std::collections::BTreeSet<_>>() {
            let status = std::process::Command::new(&self.jwt)
                .args(["keygen", "--alg", alg, "--key-dir"])
                .arg(key_dir)
                .stdout(Stdio::null())
                .status()
                .context("cannot run jwt-server keygen")?;
            anyhow::ensure!(status.success(), "jwt-server keygen --alg {alg} failed");
        }
        Ok(())
    }
}

/// The schema `session-postgres` instances keep their tables in, in the run's private
/// cluster (dropped after each step, as a Redis prefix is deleted).
pub const PG_SCHEMA: &str = "authbench_run";

/// Connections each `session-postgres` instance keeps (`--database-pool`): enough for the
/// requests one capped instance has at the store at once, and 64 instances stay within
/// the private cluster's `max_connections`.
pub const PG_POOL: u16 = 4;

/// session-server's `--idle-timeout` default, which the harness leaves as it is; `+touch`
/// systems derive their `--touch-after` from it.
pub const SESSION_IDLE: Duration = Duration::from_secs(30 * 60);

/// session-server's `--absolute-timeout` default, likewise left as it is (the live-sessions
/// preload writes it into the rows it creates).
pub const SESSION_ABSOLUTE: Duration = Duration::from_secs(8 * 60 * 60);

/// What every instance of a run is started with beyond its system's own flags.
#[derive(Clone, Debug)]
pub struct ServerSetup<'a> {
    /// `--demo-users`.
    pub users: usize,
    pub password: &'a str,
    /// The URL of the store the system uses (Redis, or PostgreSQL for `session-postgres`).
    pub store_url: Option<&'a str>,
    /// Key prefix of this run in the store (its keys are deleted after each step).
    pub prefix: &'a str,
    pub key_dir: &'a Path,
    /// Appended to a JWT server's flags (e.g. `--access-ttl`).
    pub jwt_extra: &'a [String],
}

/// The command line of instance `k` of `system`: loopback, port 0, a distinct instance id.
pub fn server_args(system: System, k: usize, setup: &ServerSetup<'_>) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--instance-id".into(),
        format!("{system}-{k}"),
        "--demo-users".into(),
        setup.users.to_string(),
        "--demo-password".into(),
        setup.password.to_owned(),
    ];
    let redis = |args: &mut Vec<String>| {
        args.extend(["--redis-url".into(), setup.store_url.unwrap_or_default().to_owned()]);
        args.extend(["--redis-prefix".into(), setup.prefix.to_owned()]);
    };
    match system.server() {
        Server::Session if system.needs_postgres() => {
            args.extend(["--store".into(), "postgres".into()]);
            args.extend(["--database-url".into(), setup.store_url.unwrap_or_default().to_owned()]);
            args.extend(["--database-schema".into(), PG_SCHEMA.into()]);
            args.extend(["--database-pool".into(), PG_POOL.to_string()]);
            if let Some(after) = system.touch_after(SESSION_IDLE) {
                args.extend(["--touch-after".into(), format!("{}ms", after.as_millis())]);
            }
        }
        Server::Session if system.needs_cluster() => {
            args.extend(["--store".into(), "redis-cluster".into()]);
            redis(&mut args);
        }
        Server::Session => {
            args.extend(["--store".into(), if system.needs_redis() { "redis" } else { "memory" }.into()]);
            if system.needs_redis() {
                redis(&mut args);
            }
            if system.cached {
                args.extend(["--session-cache-ttl".into(), format!("{}ms", SESSION_CACHE_TTL.as_millis())]);
            }
            if system.is_control() {
                args.push("--control".into());
            }
        }
        Server::Jwt => {
            let alg = system.jwt_alg().unwrap_or("HS256");
            args.extend(["--alg".into(), alg.into(), "--key-dir".into(), setup.key_dir.display().to_string()]);
            args.extend(["--revocation".into(), system.revocation().unwrap_or("none").into()]);
            args.extend(["--jwt-verifier".into(), system.jwt_verifier().unwrap_or("cached").into()]);
            if system.needs_redis() {
                redis(&mut args);
            }
            args.extend(setup.jwt_extra.iter().cloned());
        }
    }
    args
}

/// A run's scratch directory under the system temp dir: server logs and JWT keys. Removed
/// when dropped, on every exit path.
#[derive(Debug)]
pub struct WorkDir {
    root: PathBuf,
    pub logs: PathBuf,
    pub keys: PathBuf,
}

impl WorkDir {
    pub fn create(name: &str) -> anyhow::Result<Self> {
        let root = std::env::temp_dir().join(name);
        let logs = root.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
        Ok(Self { keys: root.join("keys"), logs, root })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A running child process, optionally in a cgroup.
#[derive(Debug)]
pub struct Process {
    pub name: String,
    child: Child,
    pub pid: u32,
    pub cgroup: Option<Cgroup>,
    stderr_log: PathBuf,
}

impl Process {
    /// A just-spawned `child`, moved into `cgroup` (killed, and an error, if it cannot be).
    /// Every child the harness starts comes through here.
    pub async fn adopt(
        name: &str,
        mut child: Child,
        cgroup: Option<Cgroup>,
        stderr_log: PathBuf,
    ) -> anyhow::Result<Self> {
        let pid = child.id().with_context(|| format!("{name} exited immediately"))?;
        if let Some(group) = &cgroup
            && let Err(e) = group.add(pid)
        {
            let _ = child.kill().await;
            bail!("cannot move {name} into its cgroup: {e}");
        }
        Ok(Self { name: name.to_owned(), child, pid, cgroup, stderr_log })
    }

    /// Whether the process has exited (and how), without waiting.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited ({status}){}", self.name, self.stderr_tail())),
            Ok(None) => None,
            Err(e) => Some(format!("{}: cannot query status: {e}", self.name)),
        }
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect();
        if tail.is_empty() { String::new() } else { format!(": {}", tail.join(" | ")) }
    }

    /// Send a signal by name (`TERM`, `KILL`, `STOP`, `CONT`) with `kill(1)`.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("cannot run kill -{name}"))?;
        anyhow::ensure!(status.success(), "kill -{name} {} ({}) failed", self.pid, self.name);
        Ok(())
    }

    /// SIGTERM, a short grace period, then SIGKILL.
    pub async fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = self.signal("TERM");
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

/// Spawn `program args…`, put it in `cgroup`, and wait for `listening on http://ADDR`.
pub async fn spawn_server(
    name: &str,
    program: &Path,
    args: &[String],
    cgroup: Option<Cgroup>,
    log_dir: &Path,
) -> anyhow::Result<(Process, SocketAddr)> {
    let stderr_log = log_dir.join(format!("{name}.stderr.log"));
    let stderr =
        std::fs::File::create(&stderr_log).with_context(|| format!("cannot create {}", stderr_log.display()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;
    let stdout = child.stdout.take().context("child stdout not captured")?;
    let mut process = Process::adopt(name, child, cgroup, stderr_log).await?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_TIMEOUT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("listening on http://") {
                return Ok::<_, anyhow::Error>(Some(addr.trim().parse::<SocketAddr>()?));
            }
        }
        Ok(None)
    })
    .await;
    match ready {
        Ok(Ok(Some(addr))) => {
            // Keep draining stdout so a chatty server can never block on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok((process, addr))
        }
        Ok(Ok(None)) | Ok(Err(_)) => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let why = process.exited().unwrap_or_else(|| format!("{name} closed stdout without a ready line"));
            bail!("{why}")
        }
        Err(_) => {
            process.stop().await;
            bail!("{name} printed no ready line within {READY_TIMEOUT:?}{}", process.stderr_tail())
        }
    }
}

/// Start `count` instances of `system` into `deployment`: instance `k` is named
/// `{system}-{k}`, runs with `args(k)` and, when `group(name)` makes one, in its own cgroup
/// with the cap lifted — start-up and logins are not measured; the caller caps them before
/// the load (`Deployment::set_cores`). Every experiment starts its instances here.
pub async fn spawn_instances(
    deployment: &mut Deployment,
    system: System,
    count: usize,
    program: &Path,
    args: impl Fn(usize) -> Vec<String>,
    mut group: impl FnMut(&str) -> anyhow::Result<Option<Cgroup>>,
    log_dir: &Path,
) -> anyhow::Result<()> {
    deployment.system = Some(system);
    for k in 0..count {
        let name = format!("{system}-{k}");
        let cgroup = group(&name)?;
        if let Some(g) = &cgroup {
            g.set_cores(None).map_err(anyhow::Error::msg)?;
        }
        let (process, addr) = spawn_server(&name, program, &args(k), cgroup, log_dir).await?;
        deployment.instances.push(process);
        deployment.addrs.push(addr);
    }
    Ok(())
}

/// After a step: delete what its sessions left in each store, so the next step starts
/// empty — the run's keys in a Redis (`redis`, best effort: only a prefix of it is ours),
/// every key of the private cluster, the private PostgreSQL's schema.
pub async fn clear_stores(
    redis: Option<&str>,
    prefix: &str,
    cluster: Option<&cluster::RedisCluster>,
    pg: Option<&postgres::Postgres>,
) -> anyhow::Result<()> {
    if let Some(url) = redis {
        let _ = delete_prefix(url, prefix).await;
    }
    if let Some(c) = cluster {
        c.flush().await.context("cannot delete the last step's sessions from the Redis Cluster")?;
    }
    if let Some(pg) = pg {
        crate::observe::drop_pg_schema(&pg.url, PG_SCHEMA)
            .await
            .context("cannot drop the sessions of the last step from the private PostgreSQL")?;
    }
    Ok(())
}

/// The port of a `scheme://host:port[/]` URL (a store's, to start it again there).
pub fn port_of(url: &str) -> anyhow::Result<u16> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("no port in {url}"))
}

/// A free TCP port on 127.0.0.1 (bind to :0 and release it).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// N running instances of one system.
#[derive(Debug, Default)]
pub struct Deployment {
    pub instances: Vec<Process>,
    pub addrs: Vec<SocketAddr>,
    /// The system the instances run (`None` for an external deployment).
    pub system: Option<System>,
    /// HAProxy in front of the instances, for a point with a proxy policy.
    pub proxy: Option<haproxy::Proxy>,
}

impl Deployment {
    pub async fn stop(&mut self) {
        self.stop_proxy().await;
        for p in &mut self.instances {
            p.stop().await;
        }
    }

    /// Where the generator sends: the proxy's frontend when there is one, else every instance.
    pub fn targets(&self) -> Vec<SocketAddr> {
        match &self.proxy {
            Some(p) => vec![p.addr],
            None => self.addrs.clone(),
        }
    }

    /// Connections the generator opens to each target when it would open `per_instance` to
    /// every instance: through a proxy the one target carries all instances' shares.
    pub fn connections_per_target(&self, per_instance: usize) -> usize {
        per_instance * if self.proxy.is_some() { self.addrs.len().max(1) } else { 1 }
    }

    pub async fn stop_proxy(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            p.stop().await;
        }
    }

    /// The first instance that died, if any.
    pub fn casualty(&mut self) -> Option<String> {
        self.instances.iter_mut().find_map(Process::exited)
    }

    /// Lift (None) or set the CPU cap of every instance.
    pub fn set_cores(&self, cores: Option<f64>) -> anyhow::Result<()> {
        for p in &self.instances {
            if let Some(g) = &p.cgroup {
                g.set_cores(cores).map_err(anyhow::Error::msg)?;
            }
        }
        Ok(())
    }
}

/// Create a capped child cgroup when caps are in use.
pub fn group(root: Option<&CgroupRoot>, name: &str, cores: f64) -> anyhow::Result<Option<Cgroup>> {
    root.map(|r| r.child(name, cores).map_err(anyhow::Error::msg)).transpose()
}
