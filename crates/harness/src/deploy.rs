//! Deploy: start the servers and the store as child processes, each in its own capped
//! cgroup, wait for their ready lines, and stop them on every exit path.
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

use crate::cgroup::{Cgroup, CgroupRoot};

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
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    let find = |name: &str| -> anyhow::Result<PathBuf> {
        let mut places: Vec<PathBuf> = dir.into_iter().map(Path::to_path_buf).collect();
        places.extend(here.clone());
        if let Some(path) = std::env::var_os("PATH") {
            places.extend(std::env::split_paths(&path));
        }
        places.iter().map(|d| d.join(name)).find(|p| p.is_file()).with_context(|| {
            format!(
                "cannot find `{name}` next to authbench{} or on PATH; build the servers with \
                 `cargo build --release --workspace --bins` (or pass --bin-dir)",
                dir.map(|d| format!(", in {}", d.display())).unwrap_or_default()
            )
        })
    };
    Ok(Binaries { session: find("session-server")?, jwt: find("jwt-server")? })
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

    /// SIGTERM, a short grace period, then SIGKILL.
    pub async fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
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
    let pid = child.id().context("child exited immediately")?;
    if let Some(group) = &cgroup
        && let Err(e) = group.add(pid)
    {
        let _ = child.kill().await;
        bail!("cannot move {name} into its cgroup: {e}");
    }
    let stdout = child.stdout.take().context("child stdout not captured")?;
    let mut process = Process { name: name.to_owned(), child, pid, cgroup, stderr_log };
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

/// A free TCP port on 127.0.0.1 (bind to :0 and release it).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// The store the sweep uses: a private `redis-server`, or one given by `--redis-url`.
#[derive(Debug)]
pub struct Store {
    pub url: String,
    /// Present when we started it ourselves.
    pub process: Option<Process>,
}

impl Store {
    pub fn private(&self) -> bool {
        self.process.is_some()
    }
}

/// Start a private `redis-server` with no persistence on a free port, in `cgroup`.
pub async fn start_redis(cgroup: Option<Cgroup>, log_dir: &Path) -> anyhow::Result<Store> {
    let port = free_port()?;
    let log = log_dir.join("redis-server.log");
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--protected-mode", "yes", "--logfile", &log.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start redis-server")?;
    let pid = child.id().context("redis-server exited immediately")?;
    if let Some(group) = &cgroup
        && let Err(e) = group.add(pid)
    {
        let _ = child.kill().await;
        bail!("cannot move redis-server into its cgroup: {e}");
    }
    let url = format!("redis://127.0.0.1:{port}");
    let mut process = Process { name: "redis-server".into(), child, pid, cgroup, stderr_log: log };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(why) = process.exited() {
            bail!("{why}");
        }
        if ping(&url).await.is_ok() {
            return Ok(Store { url, process: Some(process) });
        }
        if tokio::time::Instant::now() > deadline {
            process.stop().await;
            bail!("redis-server on port {port} did not answer PING within 10s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn ping(url: &str) -> anyhow::Result<()> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection())
        .await
        .context("timed out")??;
    let pong: String = redis::cmd("PING").query_async(&mut conn).await?;
    anyhow::ensure!(pong == "PONG", "unexpected PING answer {pong:?}");
    Ok(())
}

/// Delete every key under `prefix` (and nothing else).
pub async fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// N running instances of one system.
#[derive(Debug, Default)]
pub struct Deployment {
    pub instances: Vec<Process>,
    pub addrs: Vec<SocketAddr>,
}

impl Deployment {
    pub async fn stop(&mut self) {
        for p in &mut self.instances {
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
