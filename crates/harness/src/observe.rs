//! Observe: what every point costs. Process CPU and RSS from /proc, the generator's own
//! CPU, and the store's CPU, commands and memory from Redis `INFO` or PostgreSQL's
//! statistics views ([`PgObserver`]) — sampled at the edges
//! of a measurement window ([`Sample`]) — and whether the instances have gone quiet again
//! after a load ([`settle`]).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::OnceLock,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::drive::client::{Conn, Prepared};

/// A `getconf` value, read once per name; `default` when it cannot be read.
fn getconf(name: &'static str, cell: &'static OnceLock<u64>, default: u64) -> u64 {
    *cell.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg(name)
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(default)
    })
}

/// Clock ticks per second for /proc CPU times (100 on Linux).
fn clk_tck() -> f64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    getconf("CLK_TCK", &TCK, 100) as f64
}

fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    getconf("PAGESIZE", &PAGE, 4096)
}

/// User + system CPU seconds of a process (all threads), from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 overall, utime 14, stime 15 → indices 11 and 12 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clk_tck())
}

/// Resident set size in bytes, from `/proc/<pid>/statm`.
pub fn rss_bytes(pid: &str) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Per-thread CPU time of a process in nanoseconds (`/proc/<pid>/task/*/schedstat`).
/// Nanosecond resolution, where `/proc/<pid>/stat` counts 10 ms ticks; a short window
/// needs the former.
#[derive(Clone, Debug, Default)]
pub struct ThreadCpu(HashMap<u32, u64>);

impl ThreadCpu {
    pub fn read(pid: u32) -> Self {
        let mut map = HashMap::new();
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for entry in dir.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else { continue };
                if let Some(ns) = schedstat_ns(&entry.path().join("schedstat")) {
                    map.insert(tid, ns);
                }
            }
        }
        Self(map)
    }

    /// CPU seconds between `earlier` and `self`. Threads that appeared in between count
    /// whole; threads that exited in between are lost (their time cannot be read), which
    /// is why the per-thread deltas are summed instead of comparing two totals — a total
    /// would go *down* when a thread that had run before the window exits.
    pub fn seconds_since(&self, earlier: &ThreadCpu) -> f64 {
        let ns: u64 = self.0.iter().map(|(tid, now)| now.saturating_sub(*earlier.0.get(tid).unwrap_or(&0))).sum();
        ns as f64 / 1e9
    }
}

/// CPU nanoseconds run so far, from a `schedstat` file (its first number).
fn schedstat_ns(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

/// The calling thread's CPU time so far, ns (`/proc/thread-self/schedstat`).
pub fn thread_cpu_ns() -> Option<u64> {
    schedstat_ns(std::path::Path::new("/proc/thread-self/schedstat"))
}

pub fn self_cpu_seconds() -> f64 {
    cpu_seconds("self").unwrap_or(0.0)
}

/// The whole machine's CPU since boot, in seconds, from the `cpu` line of `/proc/stat`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MachineCpu {
    /// Busy: all but idle and iowait. A loopback deployment shares this machine, so this
    /// is what tells a saturated machine from a saturated system when the instances' own
    /// CPU is out of sight.
    pub busy_s: f64,
    /// Taken by the hypervisor from this machine's vCPUs (`steal`): time a measurement
    /// window lost without any process here using it.
    pub steal_s: f64,
}

impl MachineCpu {
    pub fn read() -> Option<Self> {
        let (busy, steal) = machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(Self { busy_s: busy as f64 / clk_tck(), steal_s: steal as f64 / clk_tck() })
    }
}

/// (busy, steal) ticks on the `cpu` line of `/proc/stat`.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let fields: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    Some((total.saturating_sub(idle), *fields.get(7)?))
}

/// What was sampled at one edge of a measurement window.
#[derive(Debug, Default)]
pub struct Sample {
    pub instance_cpu: Vec<ThreadCpu>,
    pub generator_cpu: f64,
    pub store: Option<StoreInfo>,
    /// CPU seconds of a store process we started (`None` for an external store).
    pub store_proc_cpu: Option<f64>,
    /// Throttled periods of the instances' cgroups together (`None` when uncapped).
    pub throttled: Option<u64>,
    pub rss: Vec<u64>,
    /// Busy CPU seconds of the whole machine (external deployments only).
    pub machine_busy: Option<f64>,
    /// CPU seconds stolen from the machine by the hypervisor since boot.
    pub steal: Option<f64>,
    /// CPU seconds of the store-delay proxy (`--store-rtt`), the rig's.
    pub delay_proxy_cpu: Option<f64>,
    /// CPU seconds of the HAProxy in front of the instances (`--lb haproxy-*` points).
    pub lb_cpu: Option<f64>,
    /// Round trips sampled through the delay and straight to the store during the window
    /// (end samples of `--store-rtt` runs only).
    pub rtt: Option<RttSample>,
}

/// Medians of the round trips sampled during one window (`--store-rtt`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RttSample {
    pub via_us: f64,
    pub direct_us: f64,
    pub samples: usize,
    /// The delay proxy's hold time at the end of the window, µs.
    pub hold_us: Option<f64>,
}

/// Instance CPU seconds between two samples.
pub fn instance_seconds(a: &Sample, b: &Sample) -> f64 {
    b.instance_cpu.iter().zip(&a.instance_cpu).map(|(y, x)| y.seconds_since(x)).sum()
}

/// Instance CPU between two samples as a share of the instances' combined cap of
/// `cores_each` over `window` (`None` when uncapped).
pub fn utilization(a: &Sample, b: &Sample, window: Duration, cores_each: Option<f64>) -> Option<f64> {
    let cap = a.instance_cpu.len() as f64 * cores_each? * window.as_secs_f64();
    (cap > 0.0).then(|| instance_seconds(a, b) / cap)
}

/// Wait until the processes `pids` are idle again (under 10 % of `budget` cores), for at
/// most 3 s: after an overloaded try, a server keeps working through requests its clients
/// already gave up on, and that backlog would be billed to the next measurement.
pub async fn settle(pids: &[u32], budget: f64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let a: Vec<_> = pids.iter().map(|p| ThreadCpu::read(*p)).collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let used: f64 = pids.iter().zip(&a).map(|(p, x)| ThreadCpu::read(*p).seconds_since(x)).sum();
        if used < 0.1 * budget * 0.1 || Instant::now() > deadline {
            return;
        }
    }
}

/// [`settle`] without processes to watch: wait until every address answers `/healthz`
/// within `quick` three times in a row (a server working through a backlog answers late),
/// for at most 3 s.
pub async fn settle_external(addrs: &[SocketAddr], quick: Duration) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let Ok(healthz) = Prepared::get("/healthz") else { return };
    let mut conns: Vec<Option<Conn>> = addrs.iter().map(|_| None).collect();
    let mut in_a_row = 0;
    while in_a_row < 3 && Instant::now() < deadline {
        let mut all_quick = true;
        for (addr, conn) in addrs.iter().zip(&mut conns) {
            if conn.as_ref().is_none_or(Conn::is_closed) {
                *conn = Conn::connect(*addr, Duration::from_secs(1)).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                all_quick = false;
                continue;
            };
            let t = Instant::now();
            let ok = c.send(&healthz, Duration::from_secs(1)).await.is_ok_and(|(s, _)| s.is_success());
            all_quick &= ok && t.elapsed() <= quick;
        }
        in_a_row = if all_quick { in_a_row + 1 } else { 0 };
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Redis memory per stored key under `prefix` (`MEMORY USAGE` on a sample of 32).
pub async fn bytes_per_key(url: &str, prefix: &str) -> Option<f64> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let (_, keys): (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .arg("COUNT")
        .arg(1000)
        .query_async(&mut conn)
        .await
        .ok()?;
    let mut total = 0u64;
    let mut n = 0u64;
    for key in keys.iter().take(32) {
        if let Ok(Some(bytes)) = redis::cmd("MEMORY").arg("USAGE").arg(key).query_async::<Option<u64>>(&mut conn).await
        {
            total += bytes;
            n += 1;
        }
    }
    (n > 0).then(|| total as f64 / n as f64)
}

/// What one snapshot of the store says: the fields of Redis `INFO` we use, or their
/// PostgreSQL counterparts ([`PgObserver::info`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreInfo {
    pub cpu_s: f64,
    /// Commands (Redis) or statements (PostgreSQL, from `pg_stat_statements`).
    pub commands: u64,
    pub used_memory: u64,
    pub keys: u64,
    /// PostgreSQL: rows updated in the sessions table (the sliding-expiry writes).
    pub writes: Option<u64>,
    /// PostgreSQL: WAL bytes written so far (`pg_current_wal_lsn()`).
    pub wal_bytes: Option<u64>,
}

pub fn parse_info(text: &str) -> StoreInfo {
    let fields: HashMap<&str, &str> = text.lines().filter_map(|l| l.trim_end_matches('\r').split_once(':')).collect();
    let num = |k: &str| fields.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // db0:keys=12,expires=12,avg_ttl=0
    let keys = fields
        .iter()
        .filter(|(k, _)| k.starts_with("db"))
        .filter_map(|(_, v)| v.split(',').find_map(|kv| kv.strip_prefix("keys="))?.parse::<u64>().ok())
        .sum();
    StoreInfo {
        cpu_s: num("used_cpu_sys") + num("used_cpu_user"),
        commands: num("total_commands_processed") as u64,
        used_memory: num("used_memory") as u64,
        keys,
        writes: None,
        wal_bytes: None,
    }
}

/// A connection used only for `INFO` snapshots.
pub struct RedisObserver {
    conn: redis::aio::MultiplexedConnection,
}

impl RedisObserver {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection()).await??;
        Ok(Self { conn })
    }

    pub async fn info(&mut self) -> anyhow::Result<StoreInfo> {
        let text: String = tokio::time::timeout(
            Duration::from_secs(3),
            redis::cmd("INFO").arg("everything").query_async(&mut self.conn),
        )
        .await??;
        Ok(parse_info(&text))
    }
}

/// CPU seconds of a PostgreSQL cluster: the postmaster, every live process it forked (the
/// backends serving connections, the writers) and every one it has reaped (autovacuum
/// workers, closed connections: its `cutime` + `cstime`), so a process that exits does not
/// take its time with it.
pub fn postgres_cpu_seconds(postmaster: u32) -> f64 {
    let children =
        std::fs::read_to_string(format!("/proc/{postmaster}/task/{postmaster}/children")).unwrap_or_default();
    let live: f64 = std::iter::once(postmaster.to_string())
        .chain(children.split_whitespace().map(str::to_owned))
        .filter_map(|pid| cpu_seconds(&pid))
        .sum();
    live + reaped_children_seconds(&postmaster.to_string()).unwrap_or(0.0)
}

/// `cutime` + `cstime` of a process: CPU of the children it has waited for.
fn reaped_children_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // After the name: cutime is field 16 overall, cstime 17 → indices 13 and 14 here.
    let cutime: f64 = fields.get(13)?.parse().ok()?;
    let cstime: f64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) / clk_tck())
}

/// Snapshots of a private PostgreSQL for one window (one connection, one query each).
///
/// Statements come from `pg_stat_statements` (loaded by the private cluster), which counts
/// each one as it finishes: exact. Row updates come from the statistics views, which
/// backends flush at most once a second: a count read during load misses up to about a
/// second of activity at each edge; sampled at both edges of a window under the same load,
/// the misses cancel on average, and what remains is noise of up to a second's worth over
/// the window. WAL bytes are read off the current WAL position and are exact.
pub struct PgObserver {
    client: tokio_postgres::Client,
    postmaster: u32,
    query: String,
}

impl PgObserver {
    /// Observe the cluster at `url` (run by `postmaster`), its sessions in `schema`.
    pub async fn connect(url: &str, postmaster: u32, schema: &str) -> anyhow::Result<Self> {
        let client = pg_connect(url).await?;
        tokio::time::timeout(
            Duration::from_secs(10),
            client.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"),
        )
        .await??;
        let table = format!("'{schema}.sessions'");
        // Every statement but the observer's own (which all name pg_stat_statements).
        let query = format!(
            "SELECT (SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements \
                     WHERE query NOT LIKE '%pg_stat_statements%'), \
                    coalesce((SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = to_regclass({table})), 0)::bigint, \
                    coalesce((SELECT n_live_tup FROM pg_stat_user_tables WHERE relid = to_regclass({table})), 0)::bigint, \
                    coalesce(pg_total_relation_size(to_regclass({table})), 0)::bigint, \
                    (pg_current_wal_lsn() - '0/0')::bigint"
        );
        Ok(Self { client, postmaster, query })
    }

    pub async fn info(&mut self) -> anyhow::Result<StoreInfo> {
        let row = tokio::time::timeout(Duration::from_secs(3), self.client.query_one(&self.query, &[])).await??;
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(StoreInfo {
            cpu_s: postgres_cpu_seconds(self.postmaster),
            commands: n(0),
            used_memory: n(3),
            keys: n(2),
            writes: Some(n(1)),
            wal_bytes: Some(n(4)),
        })
    }
}

/// Either store's snapshots, for the store the system under test uses.
pub enum StoreObserver {
    Redis(RedisObserver),
    Postgres(PgObserver),
    /// Every primary of a Redis Cluster, summed; `calls`: snapshots taken so far.
    Cluster {
        nodes: Vec<RedisObserver>,
        calls: u64,
    },
}

impl StoreObserver {
    pub async fn info(&mut self) -> anyhow::Result<StoreInfo> {
        match self {
            StoreObserver::Redis(r) => r.info().await,
            StoreObserver::Postgres(p) => p.info().await,
            StoreObserver::Cluster { nodes, calls } => {
                let mut sum = StoreInfo::default();
                for n in nodes.iter_mut() {
                    let i = n.info().await?;
                    sum.cpu_s += i.cpu_s;
                    sum.commands += i.commands;
                    sum.used_memory += i.used_memory;
                    sum.keys += i.keys;
                }
                // Each snapshot is one INFO on every node, where a single Redis sees one
                // (which record::point takes off a window's count): take the others off.
                sum.commands = sum.commands.saturating_sub(*calls * nodes.len().saturating_sub(1) as u64);
                *calls += 1;
                Ok(sum)
            }
        }
    }
}

/// One connection to the harness's private PostgreSQL, its I/O driven by a task of its
/// own (it ends when the client is dropped).
pub async fn pg_connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio::time::timeout(Duration::from_secs(3), tokio_postgres::connect(url, tokio_postgres::NoTls)).await??;
    tokio::spawn(connection);
    Ok(client)
}

/// Bytes of `schema.sessions` (table, indexes, TOAST) per row, counted exactly (`None`
/// without rows).
pub async fn pg_bytes_per_row(url: &str, schema: &str) -> anyhow::Result<Option<f64>> {
    let client = pg_connect(url).await?;
    let q = format!("SELECT pg_total_relation_size('{schema}.sessions'), count(*) FROM {schema}.sessions");
    let row = tokio::time::timeout(Duration::from_secs(30), client.query_one(&q, &[])).await??;
    let (bytes, rows): (i64, i64) = (row.get(0), row.get(1));
    Ok((rows > 0).then(|| bytes as f64 / rows as f64))
}

/// Drop `schema` and everything in it (between steps, as a Redis prefix is deleted).
pub async fn drop_pg_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let client = pg_connect(url).await?;
    tokio::time::timeout(
        Duration::from_secs(30),
        client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")),
    )
    .await??;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn machine_busy_time_is_everything_but_idle_and_iowait() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 0 0\ncpu0 50 2 25 500 10 0 1 1 0 0\n";
        // Busy: user+nice+system+irq+softirq+steal; steal: the eighth number.
        assert_eq!(super::machine_ticks(stat), Some((161, 3)));
        assert_eq!(super::machine_ticks("intr 1 2 3"), None);
        assert!(super::MachineCpu::read().is_some_and(|m| m.busy_s > 0.0 && m.steal_s >= 0.0));
    }

    use super::*;

    #[test]
    fn info_fields_are_read_and_summed() {
        let text = "# CPU\r\nused_cpu_sys:1.50\r\nused_cpu_user:2.25\r\n# Stats\r\ntotal_commands_processed:1234\r\n\
                    # Memory\r\nused_memory:1048576\r\n# Keyspace\r\ndb0:keys=10,expires=10,avg_ttl=5\r\ndb3:keys=2,expires=0,avg_ttl=0\r\n";
        let info = parse_info(text);
        assert_eq!(
            info,
            StoreInfo { cpu_s: 3.75, commands: 1234, used_memory: 1_048_576, keys: 12, writes: None, wal_bytes: None }
        );
    }

    #[test]
    fn own_process_cpu_and_rss_are_readable() {
        let start = self_cpu_seconds();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(self_cpu_seconds() >= start);
        assert!(rss_bytes("self").unwrap_or(0) > 1024 * 1024);
        assert!(cpu_seconds("999999999").is_none());
        // The kernel adds a running thread's time to `schedstat` at its ticks, so a short
        // spin can read the same figure twice; spin until it moves (or 5 s have passed).
        let a = ThreadCpu::read(std::process::id());
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut y = 0u64;
        let b = loop {
            for i in 0..5_000_000u64 {
                y = y.wrapping_mul(17).wrapping_add(i);
            }
            let b = ThreadCpu::read(std::process::id());
            if b.seconds_since(&a) > 0.0 || std::time::Instant::now() > until {
                break b;
            }
        };
        assert!(y != 1);
        assert!(b.seconds_since(&a) > 0.0, "5 s of spinning never showed in schedstat");
        // Over the threads both readings saw, the later one is never behind the earlier.
        // (Not `a.seconds_since(&b) == 0`: a thread of another test that exits in between
        // is in `a` only and counts whole there; the postgres tests made that flake show.)
        let behind: u64 = a.0.iter().filter_map(|(tid, ns)| Some(ns.saturating_sub(*b.0.get(tid)?))).sum();
        assert_eq!(behind, 0, "never negative");
    }
}
