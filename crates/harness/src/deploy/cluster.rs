//! A private Redis Cluster of S primaries on loopback, each its own `redis-server` in its
//! own cgroup, formed by hand: `redis-cli --cluster create` refuses fewer than three
//! masters, so each node is given its share of the 16384 slots with
//! `CLUSTER ADDSLOTSRANGE` and introduced to the first with `CLUSTER MEET`. Full coverage
//! is not required (`cluster-require-full-coverage no`), so a stopped shard fails only the
//! keys it owns.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, bail};

use super::{Store, free_port, port_of, store::start_redis_with};
use crate::cgroup::Cgroup;

/// Slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// A running cluster; its nodes are stopped when it is dropped (their processes are killed
/// on drop) and its node files live in `dir`, removed with it.
#[derive(Debug)]
pub struct RedisCluster {
    /// One per shard, in slot order: node `i` owns [`slot_range`]`(i, S)`.
    pub nodes: Vec<Store>,
    /// Each node's cluster-bus port (given explicitly: the default, port + 10000, does not
    /// exist above 55535 and may be taken).
    bus_ports: Vec<u16>,
    dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    #[derive(Debug)]
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The slots shard `i` of `shards` owns: an even split, the remainder to the last.
pub fn slot_range(i: usize, shards: usize) -> (u16, u16) {
    let per = SLOTS as usize / shards;
    let lo = i * per;
    let hi = if i + 1 == shards { SLOTS as usize - 1 } else { lo + per - 1 };
    (lo as u16, hi as u16)
}

impl RedisCluster {
    /// The seed nodes, comma-separated, for `--redis-url` of `--store redis-cluster`.
    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| n.url.as_str()).collect::<Vec<_>>().join(",")
    }

    /// The node (shard index) that owns `slot`.
    pub fn shard_of(&self, slot: u16) -> usize {
        (0..self.nodes.len()).find(|&i| slot_range(i, self.nodes.len()).1 >= slot).unwrap_or(0)
    }

    /// Start node `i` again after it was stopped: the same port and node file, so it
    /// comes back with its identity and slots.
    pub async fn restart(&mut self, i: usize, cgroup: Option<Cgroup>, log_dir: &Path) -> anyhow::Result<()> {
        let port = port_of(&self.nodes[i].url)?;
        let node = start_redis_with(port, &node_args(&self.dir.0, port, self.bus_ports[i]), cgroup, log_dir).await?;
        self.nodes[i] = node;
        wait_formed(&self.nodes).await
    }

    /// Delete every key on every node (the nodes are private to the run). A multi-key
    /// `UNLINK` would fail with CROSSSLOT on a cluster node, so this is `FLUSHALL`.
    pub async fn flush(&self) -> anyhow::Result<()> {
        for n in &self.nodes {
            let client = redis::Client::open(n.url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let _: () = redis::cmd("FLUSHALL")
                .query_async(&mut conn)
                .await
                .with_context(|| format!("FLUSHALL on {}", n.url))?;
        }
        Ok(())
    }

    pub async fn stop(&mut self) {
        for n in &mut self.nodes {
            if let Some(p) = &mut n.process {
                p.stop().await;
            }
        }
    }
}

fn node_args(dir: &Path, port: u16, bus_port: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        &bus_port.to_string(),
        "--cluster-require-full-coverage",
        "no",
        "--cluster-node-timeout",
        "5000",
        "--dir",
        &dir.display().to_string(),
        "--cluster-config-file",
        &format!("nodes-{port}.conf"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Start `shards` primaries (node `i` in `group(i)`) and form them into one cluster that
/// covers every slot; returns once every node sees the cluster as `ok`.
pub async fn start_cluster(
    shards: usize,
    mut group: impl FnMut(usize) -> anyhow::Result<Option<Cgroup>>,
    log_dir: &Path,
) -> anyhow::Result<RedisCluster> {
    if !(1..=16).contains(&shards) {
        bail!("a Redis Cluster here has 1 to 16 shards (got {shards})");
    }
    let dir = std::env::temp_dir().join(format!("authbench-cluster-{}-{}", crate::experiment::run_id(), free_port()?));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = tempdir::Dir(dir);
    let mut nodes = Vec::with_capacity(shards);
    let mut bus_ports = Vec::with_capacity(shards);
    for i in 0..shards {
        let (port, bus_port) = (free_port()?, free_port()?);
        nodes.push(start_redis_with(port, &node_args(&dir.0, port, bus_port), group(i)?, log_dir).await?);
        bus_ports.push(bus_port);
    }
    let mut conns = Vec::with_capacity(shards);
    for n in &nodes {
        let client = redis::Client::open(n.url.as_str())?;
        conns.push(client.get_multiplexed_async_connection().await?);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let (lo, hi) = slot_range(i, shards);
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(lo)
            .arg(hi)
            .query_async(c)
            .await
            .with_context(|| format!("CLUSTER ADDSLOTSRANGE {lo} {hi} on {}", nodes[i].url))?;
    }
    for (n, bus) in nodes.iter().zip(&bus_ports).skip(1) {
        let port = port_of(&n.url)?;
        // With its own bus port, a node is met there (MEET's optional third argument).
        let _: () = redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(port)
            .arg(*bus)
            .query_async(&mut conns[0])
            .await
            .with_context(|| format!("CLUSTER MEET 127.0.0.1 {port} {bus}"))?;
    }
    wait_formed(&nodes).await?;
    Ok(RedisCluster { nodes, bus_ports, dir })
}

/// Wait (at most 20 s) until every node says `cluster_state:ok`, knows every other node and
/// sees all 16384 slots assigned.
async fn wait_formed(nodes: &[Store]) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut all = true;
        let mut last = String::new();
        for n in nodes {
            let info = cluster_info(&n.url).await.unwrap_or_default();
            let field = |k: &str| info.lines().find_map(|l| l.trim().strip_prefix(k)).unwrap_or("").to_owned();
            let formed = field("cluster_state:") == "ok"
                && field("cluster_slots_assigned:") == SLOTS.to_string()
                && field("cluster_known_nodes:") == nodes.len().to_string();
            if !formed {
                all = false;
                last = format!("{}: {}", n.url, info.lines().take(6).collect::<Vec<_>>().join(" "));
            }
        }
        if all {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the Redis Cluster did not form within 20 s ({last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cluster_info(url: &str) -> anyhow::Result<String> {
    let client = redis::Client::open(url)?;
    let mut conn = tokio::time::timeout(Duration::from_secs(1), client.get_multiplexed_async_connection()).await??;
    Ok(redis::cmd("CLUSTER").arg("INFO").query_async(&mut conn).await?)
}

/// The slot of `key` (CRC16 as Redis computes it, with hash tags), asked of `url`.
pub async fn key_slot(url: &str, key: &str) -> anyhow::Result<u16> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    Ok(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query_async(&mut conn).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slots_are_split_evenly_and_all_covered() {
        for shards in 1..=16 {
            let mut next = 0u32;
            for i in 0..shards {
                let (lo, hi) = slot_range(i, shards);
                assert_eq!(u32::from(lo), next, "{shards} shards, shard {i}");
                assert!(hi >= lo);
                next = u32::from(hi) + 1;
            }
            assert_eq!(next, u32::from(SLOTS), "{shards} shards cover every slot");
        }
        assert_eq!(slot_range(0, 4), (0, 4095));
        assert_eq!(slot_range(3, 4), (12288, 16383));
    }
}
