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
    drive::client::{Conn, Prepared},
    plan::{Server, System},
};

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

/// What every instance of a run is started with beyond its system's own flags.
#[derive(Clone, Debug)]
pub struct ServerSetup<'a> {
    /// `--demo-users`.
    pub users: usize,
    pub password: &'a str,
    /// The store's URL, for systems that use one.
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
    let store = |args: &mut Vec<String>| {
        args.extend(["--redis-url".into(), setup.store_url.unwrap_or_default().to_owned()]);
        args.extend(["--redis-prefix".into(), setup.prefix.to_owned()]);
    };
    match system.server() {
        Server::Session => {
            args.extend(["--store".into(), if system.needs_redis() { "redis" } else { "memory" }.into()]);
            if system.needs_redis() {
                store(&mut args);
            }
        }
        Server::Jwt => {
            let alg = system.jwt_alg().unwrap_or("HS256");
            args.extend(["--alg".into(), alg.into(), "--key-dir".into(), setup.key_dir.display().to_string()]);
            args.extend(["--revocation".into(), system.revocation().unwrap_or("none").into()]);
            if system.needs_redis() {
                store(&mut args);
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
    start_redis_on(free_port()?, cgroup, log_dir).await
}

/// [`start_redis`] on a given port (a restarted store comes back where clients look for it).
pub async fn start_redis_on(port: u16, cgroup: Option<Cgroup>, log_dir: &Path) -> anyhow::Result<Store> {
    let log = log_dir.join(format!("redis-server-{port}.log"));
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

/// The store `systems` need: the Redis at `redis_url` when given (it must answer), else a
/// private `redis-server` in the cgroup `group()` makes. When neither is possible, the
/// systems that need a store are taken out of `systems` and returned with the reason.
pub async fn open_store(
    systems: &mut Vec<System>,
    redis_url: Option<&str>,
    group: impl FnOnce() -> anyhow::Result<Option<Cgroup>>,
    log_dir: &Path,
) -> anyhow::Result<(Option<Store>, Vec<(System, String)>)> {
    if !systems.iter().any(|s| s.needs_redis()) {
        return Ok((None, Vec::new()));
    }
    if let Some(url) = redis_url {
        ping(url).await.with_context(|| format!("--redis-url {url} does not answer"))?;
        return Ok((Some(Store { url: url.to_owned(), process: None }), Vec::new()));
    }
    match start_redis(group()?, log_dir).await {
        Ok(store) => Ok((Some(store), Vec::new())),
        Err(e) => {
            let reason = format!("no Redis: give --redis-url or put redis-server on PATH ({e:#})");
            let skipped = systems.iter().filter(|s| s.needs_redis()).map(|s| (*s, reason.clone())).collect();
            systems.retain(|s| !s.needs_redis());
            Ok((None, skipped))
        }
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

/// `http://HOST:PORT[/]` of an already-running deployment → its address. HOST must be
/// loopback (`localhost` is 127.0.0.1): authbench sends load to this machine only.
pub fn parse_target(url: &str) -> anyhow::Result<SocketAddr> {
    let uri: http::Uri = url.parse().map_err(|_| anyhow::anyhow!("--target {url:?} is not a URL"))?;
    anyhow::ensure!(uri.scheme_str() == Some("http"), "--target {url}: must start with http:// (TLS is not supported)");
    anyhow::ensure!(
        uri.path_and_query().is_none_or(|p| p.as_str() == "/"),
        "--target {url}: give the server's base URL (http://HOST:PORT), without a path"
    );
    let host = uri.host().with_context(|| format!("--target {url} has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h.parse().map_err(|_| {
            anyhow::anyhow!("--target {url}: host {h:?} is not an IP address or localhost (load goes to loopback only)")
        })?,
    };
    anyhow::ensure!(
        ip.is_loopback(),
        "--target {url}: authbench sends load only to this machine (127.0.0.0/8, ::1 or localhost); {ip} is not loopback"
    );
    Ok(SocketAddr::new(ip, uri.port_u16().unwrap_or(80)))
}

/// The system id a server reports in `authbench_info` on `/metrics` for `system`: the
/// revocation modes are not in it, so every HS256 variant reports `jwt-hs256`.
fn reported_id(system: System) -> String {
    match system.jwt_alg() {
        Some(alg) => format!("jwt-{}", alg.to_ascii_lowercase()),
        None => system.id().to_owned(),
    }
}

/// Check that `url` (at `addr`) answers as `system`: it accepts a connection, its
/// `/metrics` (when it is an authbench server) names the same system, and `user0` logs in
/// with `password` and gets the credential `system` uses (a cookie, or a bearer token
/// signed with the system's algorithm). Every failure is one line naming the URL.
pub async fn check_target(system: System, url: &str, addr: SocketAddr, password: &str) -> anyhow::Result<()> {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let connect = || async {
        Conn::connect(addr, Duration::from_secs(3)).await.with_context(|| format!("--target {url}: cannot connect"))
    };
    let mut conn = connect().await?;
    // Only an authbench server says what it is; anything else is judged by its login.
    if let Ok((status, body)) = conn.send(&Prepared::get("/metrics")?, TIMEOUT).await
        && status == http::StatusCode::OK
        && let Some(running) = String::from_utf8_lossy(&body).lines().find_map(|l| {
            let rest = l.strip_prefix("authbench_info{")?;
            let (_, after) = rest.split_once("system=\"")?;
            Some(after.split('"').next()?.to_owned())
        })
    {
        let expected = reported_id(system);
        anyhow::ensure!(
            running == expected,
            "--target {url} runs {running} (its /metrics says so), not {system}; give --systems {running}"
        );
    }
    // A fresh connection: a server that answered /metrics with `connection: close` may not
    // have closed this one yet, and a login sent on it would be lost.
    drop(conn);
    let mut conn = connect().await?;
    let body = serde_json::json!({"username": "user0", "password": password});
    let (status, headers, body) = conn
        .send_with_headers(&Prepared::post_json("/login", &body)?, TIMEOUT)
        .await
        // SendError's text already names its cause.
        .map_err(|e| anyhow::anyhow!("--target {url}: POST /login got no answer ({e})"))?;
    let text = String::from_utf8_lossy(&body);
    let snippet: String = text.chars().take(120).collect();
    if status != http::StatusCode::OK {
        let hint = match status.as_u16() {
            401 => " (no demo user user0 there, or a different --demo-password?)",
            404 | 405 => " (not an authbench server?)",
            429 => " (too many failed logins for user0; wait for the window to pass)",
            _ => "",
        };
        bail!("--target {url} is not a working {system}: POST /login as user0 answered {status}{hint}: {snippet}");
    }
    let cookie = headers.get(http::header::SET_COOKIE).and_then(|v| v.to_str().ok());
    let token: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned));
    match system.server() {
        Server::Session => anyhow::ensure!(
            cookie.is_some_and(|c| c.starts_with("__Host-sid=")),
            "--target {url} is not {system}: POST /login answered {status} without a __Host-sid session cookie{}",
            if token.is_some() { " but with an access_token (a JWT server?)" } else { "" }
        ),
        Server::Jwt => {
            let token = token.with_context(|| {
                format!(
                    "--target {url} is not {system}: POST /login answered {status} without an access_token{}",
                    if cookie.is_some() { " but with a cookie (a session server?)" } else { "" }
                )
            })?;
            let alg = token_alg(&token);
            let expected = system.jwt_alg().unwrap_or_default();
            anyhow::ensure!(
                alg.as_deref() == Some(expected),
                "--target {url} is not {system}: its access tokens are signed with {}, not {expected}",
                alg.as_deref().unwrap_or("an unreadable header")
            );
        }
    }
    Ok(())
}

/// `alg` from a JWT's header (not verified: only to tell which system issued it).
fn token_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(v["alg"].as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_loopback_base_urls() {
        assert_eq!(parse_target("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_target("http://localhost:8081/").unwrap(), "127.0.0.1:8081".parse().unwrap());
        assert_eq!(parse_target("http://[::1]:8082").unwrap(), "[::1]:8082".parse().unwrap());
        assert_eq!(parse_target("http://127.0.0.1").unwrap(), "127.0.0.1:80".parse().unwrap());
        for (url, why) in [
            ("http://192.0.2.1:8080", "not loopback"),
            ("http://example.com:8080", "not an IP address or localhost"),
            ("https://127.0.0.1:8443", "http://"),
            ("http://127.0.0.1:8080/api", "without a path"),
            ("127.0.0.1:8080", "http://"),
            ("", "not a URL"),
        ] {
            let e = parse_target(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url:?}: {e}");
        }
    }

    #[test]
    fn reported_ids_drop_the_revocation_mode() {
        assert_eq!(reported_id(System::SessionRedis), "session-redis");
        assert_eq!(reported_id(System::JwtEddsa), "jwt-eddsa");
        assert_eq!(reported_id(System::JwtHs256DenylistCached), "jwt-hs256");
    }

    #[test]
    fn token_alg_reads_the_header() {
        // {"alg":"ES256","typ":"at+jwt"}
        assert_eq!(token_alg("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.sig").as_deref(), Some("ES256"));
        assert_eq!(token_alg("garbage"), None);
    }
}
