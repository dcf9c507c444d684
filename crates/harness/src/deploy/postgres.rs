//! A private PostgreSQL: a fresh cluster (`initdb`) in a scratch directory, served on a
//! free loopback port for one run and removed afterwards, so a measurement never shares a
//! database with anything else (the sessions-in-a-database store of issue 14 builds on it).
//!
//! PostgreSQL refuses to run as root, and the harness and CI do run as root; so as root
//! the cluster is created and served as a named non-root user ([`DEFAULT_USER`],
//! `postgres`), with `setpriv` (util-linux), which execs the server directly: the process
//! the harness holds is the postmaster itself, so its cgroup and its signals reach the
//! server and not a wrapper. As any other user it runs as that user.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context as _, bail};
use tokio::process::Command;

use super::{Process, free_port};
use crate::{cgroup::Cgroup, record::PgFacts};

/// The user a root harness runs PostgreSQL as.
pub const DEFAULT_USER: &str = "postgres";

/// How long `initdb` plus start-up may take.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings that change what a write costs; recorded with the results that use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgSettings {
    /// `fsync`: off makes commits skip the disk flush (nothing here survives a crash anyway).
    pub fsync: bool,
    /// `synchronous_commit`.
    pub synchronous_commit: bool,
}

impl Default for PgSettings {
    fn default() -> Self {
        Self { fsync: true, synchronous_commit: true }
    }
}

/// A running private cluster. Stopped by [`Postgres::stop`] and started again on the same
/// port and data by [`Postgres::restart`]; its directory is removed when this is dropped
/// (the server is killed first if still running).
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://USER@127.0.0.1:PORT/postgres`
    pub url: String,
    pub port: u16,
    /// The OS user the server runs as (and its superuser role).
    pub user: String,
    pub settings: PgSettings,
    pub process: Process,
    root: PathBuf,
    as_user: Option<(u32, u32)>,
    log: PathBuf,
}

impl Postgres {
    /// Fast shutdown (SIGINT: abort open transactions, then exit), then SIGKILL after a grace.
    pub async fn stop(&mut self) {
        if self.process.exited().is_some() {
            return;
        }
        let _ = self.process.signal("INT");
        if tokio::time::timeout(Duration::from_secs(5), self.process.child.wait()).await.is_err() {
            self.process.stop().await;
        }
    }

    /// Start the stopped server again, on the same port, data and cgroup; returns once it
    /// accepts connections (what a store restart looks like to the servers using it).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.process.exited().is_some(), "postgres on port {} is still running", self.port);
        // The old process hands its (now empty) cgroup on to the new one.
        let cgroup = self.process.cgroup.take();
        self.process = spawn(self.port, &self.root, self.as_user, self.settings, cgroup, &self.log).await?;
        self.wait_ready().await
    }

    /// What the run records about this cluster (see [`PgFacts`]).
    pub async fn facts(&self) -> PgFacts {
        // Through the harness's own client, as the observer is (no psql needed to run).
        let version = match crate::observe::pg_connect(&self.url).await {
            Ok(c) => c.query_one("SHOW server_version", &[]).await.map(|r| r.get::<_, String>(0)).unwrap_or_default(),
            Err(_) => String::new(),
        };
        let fs = std::process::Command::new("stat").args(["-f", "-c", "%T"]).arg(&self.root).output();
        PgFacts {
            version,
            fsync: self.settings.fsync,
            synchronous_commit: self.settings.synchronous_commit,
            unlogged: false,
            data_filesystem: fs.ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default(),
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        // The postmaster logs this line once it accepts connections (before, clients are
        // told "the database system is starting up"); the log is appended to on a restart,
        // so count the lines.
        const READY: &str = "database system is ready to accept connections";
        let before = std::fs::read_to_string(&self.log).unwrap_or_default().matches(READY).count();
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(why) = self.process.exited() {
                bail!("{why}");
            }
            let ready = std::fs::read_to_string(&self.log).unwrap_or_default().matches(READY).count();
            // `before` counts lines of earlier starts; a first start has none yet.
            if ready > before || (before == 0 && ready > 0) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                self.stop().await;
                bail!(
                    "postgres on port {} was not ready within {READY_TIMEOUT:?} (log: {})",
                    self.port,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.process.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Whether this process runs as root (`id -u` answers 0).
fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `uid` and `gid` of `user`, or a clear error naming what to do.
fn ids_of(user: &str) -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = std::process::Command::new("id").args([flag, user]).output().context("cannot run `id`")?;
        anyhow::ensure!(
            out.status.success(),
            "PostgreSQL refuses to run as root, so the harness runs it as the user `{user}`, and there is no such \
             user here: create one (`useradd --system {user}`) or name another non-root user"
        );
        String::from_utf8_lossy(&out.stdout).trim().parse().context("`id` printed no number")
    };
    let (uid, gid) = (id("-u")?, id("-g")?);
    anyhow::ensure!(uid != 0, "`{user}` is root, and PostgreSQL refuses to run as root: name a non-root user");
    Ok((uid, gid))
}

/// `program args…` as `as_user` (root only: through `setpriv`, which execs it directly).
fn command(program: &str, as_user: Option<(u32, u32)>) -> Command {
    match as_user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--clear-groups".into(), "--".into()]);
            c.arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Start the postmaster on `root/data`, appending its log to `log`, in `cgroup`.
async fn spawn(
    port: u16,
    root: &Path,
    as_user: Option<(u32, u32)>,
    settings: PgSettings,
    cgroup: Option<Cgroup>,
    log: &Path,
) -> anyhow::Result<Process> {
    let on_off = |b: bool| if b { "on" } else { "off" };
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let child = command("postgres", as_user)
        .arg("-D")
        .arg(root.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(root)
        .args(["-c", "listen_addresses=127.0.0.1"])
        // Up to 64 instances × their pools, the observer and the tests' own connections.
        .args(["-c", "max_connections=300"])
        // Statement counts that are exact at any moment (the statistics views lag up to a
        // second); it ships with PostgreSQL and is common in production.
        .args(["-c", "shared_preload_libraries=pg_stat_statements"])
        .args(["-c", &format!("fsync={}", on_off(settings.fsync))])
        .args(["-c", &format!("synchronous_commit={}", on_off(settings.synchronous_commit))])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start postgres")?;
    Process::adopt("postgres", child, cgroup, log.to_path_buf()).await
}

/// Create a cluster in a fresh directory and start it on a free loopback port, in
/// `cgroup`; returns once it accepts connections. `user`: who runs it when we are root.
pub async fn start_postgres(
    user: &str,
    settings: PgSettings,
    cgroup: Option<Cgroup>,
    log_dir: &Path,
) -> anyhow::Result<Postgres> {
    let as_user = if running_as_root() { Some(ids_of(user)?) } else { None };
    let role = match as_user {
        Some(_) => user.to_owned(),
        None => std::env::var("USER").unwrap_or_else(|_| "postgres".into()),
    };
    let port = free_port()?;
    let root = std::env::temp_dir().join(format!("authbench-pg-{}-{port}", crate::experiment::run_id()));
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    if let Some((uid, gid)) = as_user {
        std::os::unix::fs::chown(&root, Some(uid), Some(gid))
            .with_context(|| format!("cannot hand {} to {user}", root.display()))?;
    }
    let log = log_dir.join(format!("postgres-{port}.log"));

    let init = command("initdb", as_user)
        .args(["-D"])
        .arg(root.join("data"))
        .args(["-A", "trust", "-U", &role, "-E", "UTF8", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run initdb (PostgreSQL's server binaries must be on PATH)")?;
    if !init.status.success() {
        let _ = std::fs::remove_dir_all(&root);
        bail!("initdb failed: {}", String::from_utf8_lossy(&init.stderr).trim());
    }

    let process = match spawn(port, &root, as_user, settings, cgroup, &log).await {
        Ok(process) => process,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&root);
            return Err(e);
        }
    };
    let mut pg = Postgres {
        url: format!("postgres://{role}@127.0.0.1:{port}/postgres"),
        port,
        user: role,
        settings,
        process,
        root,
        as_user,
        log,
    };
    pg.wait_ready().await?;
    Ok(pg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn psql(port: u16, user: &str, sql: &str) -> std::process::Output {
        std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user, "-d", "postgres", "-tAc", sql])
            .output()
            .expect("run psql")
    }

    #[tokio::test]
    async fn a_private_cluster_answers_with_its_settings_and_leaves_nothing_behind() {
        let logs = tempfile::tempdir().unwrap();
        let settings = PgSettings { fsync: false, synchronous_commit: false };
        let mut pg = start_postgres(DEFAULT_USER, settings, None, logs.path()).await.expect("a private PostgreSQL");
        let out = psql(pg.port, &pg.user, "show fsync");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "off");
        let out = psql(pg.port, &pg.user, "show synchronous_commit");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "off");
        assert!(pg.url.ends_with(&format!("@127.0.0.1:{}/postgres", pg.port)), "{}", pg.url);
        let out = psql(pg.port, &pg.user, "create table kept (x int); insert into kept values (7)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let root = pg.root.clone();
        pg.stop().await;
        assert!(pg.process.exited().is_some(), "stopped");
        assert!(!psql(pg.port, &pg.user, "select 1").status.success(), "no longer answers");
        // Started again: same port, same data.
        pg.restart().await.expect("restart");
        assert_eq!(String::from_utf8_lossy(&psql(pg.port, &pg.user, "select x from kept").stdout).trim(), "7");
        pg.stop().await;
        drop(pg);
        assert!(!root.exists(), "its directory is removed");
    }

    #[tokio::test]
    async fn a_missing_user_is_a_clear_error() {
        if !running_as_root() {
            // Only a root harness switches users; CI runs as root, so there it is tested.
            assert!(std::env::var_os("CI").is_none(), "CI runs as root: this test must run there");
            return;
        }
        let logs = tempfile::tempdir().unwrap();
        let err = start_postgres("authbench-no-such-user", PgSettings::default(), None, logs.path()).await.unwrap_err();
        assert!(err.to_string().contains("there is no such user here"), "{err:#}");
    }
}
