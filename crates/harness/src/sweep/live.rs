//! The live-sessions axis (`--live-sessions`): a step at the largest N with that many
//! sessions already held, preloaded without an HTTP route — written straight into Redis or
//! PostgreSQL, or handed to each session-memory instance as a `--preload-sessions` file
//! and to each jwt-server as `--preload-refresh-families` — then measured like any point,
//! once per `--live-spread`, with what holding them cost: the holder's bytes and the
//! instances' background purges.
//!
//! Credential `i` belongs to `user{i mod users}` (the servers' demo users) and is at home
//! on instance `i mod N`, as a login through the balancer would have put it.

use std::{path::PathBuf, time::Instant};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use http::{HeaderValue, header};

use super::Run;
use crate::{
    deploy::{self, Deployment},
    drive::client::{Conn, Prepared},
    observe::{self, RedisObserver},
    plan::{Server, Spread, Step, System},
    record::LivePoint,
    workload::Credential,
};

/// Rows or keys per round trip while preloading.
const BATCH: usize = 10_000;

/// A mixed run preloads the active users of this many requests/s (the profile's users per
/// request/s × this): more than two cores of generator can offer, so every run finds the
/// users its rate needs among them.
pub const MIX_POOL_RPS: f64 = 20_000.0;

/// The most sessions a mixed run preloads, whatever its profile (a profile of one request
/// per user per minute would otherwise ask for 1.2 million).
const MIX_POOL_MAX: u64 = 1_000_000;

/// The sessions of the current live step.
pub(super) struct LiveSet {
    pub sessions: u64,
    /// Session IDs (session systems), credential `i` at index `i`.
    ids: Vec<String>,
    /// session-memory: one `--preload-sessions` file per instance.
    files: Option<PathBuf>,
    started: Instant,
}

/// What the preload left, before any measured request.
pub(super) struct LiveState {
    pub held_in: &'static str,
    pub state_bytes: u64,
    pub state_bytes_before: Option<u64>,
    pub preload_s: f64,
}

fn user_of(i: usize, users: usize) -> (String, &'static str) {
    let u = i % users;
    (format!("user{u}"), if u.is_multiple_of(10) { "admin" } else { "user" })
}

impl Run {
    /// The demo users every instance is started with (`ServerSetup::users`).
    pub(super) fn demo_users(&self) -> usize {
        self.config.users.max(10)
    }

    /// Sessions a mixed run preloads for `step`: the active users of [`MIX_POOL_RPS`]
    /// (`None` for read runs, live steps, a `--target` deployment, and systems the preload
    /// cannot fill, whose users log in instead).
    pub(super) fn mix_pool(&self, step: &Step) -> Option<u64> {
        let wanted = self.config.workload == crate::record::WorkloadKind::Mixed
            && step.live_sessions.is_none()
            && !self.config.external()
            && step.system.supports_live();
        let per = self.config.user_profile().users_per_rps();
        wanted.then(|| ((per * MIX_POOL_RPS).ceil() as u64).min(MIX_POOL_MAX))
    }

    /// Before the instances start: the step's session IDs, and session-memory's files.
    pub(super) fn live_prepare(&mut self, step: &Step) -> anyhow::Result<()> {
        self.live = None;
        let Some(sessions) = step.live_sessions.or(self.mix_pool(step)) else { return Ok(()) };
        self.status.phase(format!("preparing {sessions} live sessions"), std::time::Duration::ZERO, None);
        let started = Instant::now();
        let ids: Vec<String> = if step.system.server() == Server::Session {
            (0..sessions).map(|_| URL_SAFE_NO_PAD.encode(auth_core::random_bytes::<32>())).collect()
        } else {
            Vec::new()
        };
        let files = if step.system.instance_local_state() {
            let dir = self.log_dir.join("live");
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let users = self.demo_users();
            let mut texts = vec![String::new(); step.instances];
            for (i, id) in ids.iter().enumerate() {
                let text = &mut texts[i % step.instances];
                let (user, role) = user_of(i, users);
                text.push_str(id);
                text.push(' ');
                text.push_str(&user);
                text.push(' ');
                text.push_str(role);
                text.push('\n');
            }
            for (k, text) in texts.iter().enumerate() {
                let path = dir.join(format!("instance-{k}.txt"));
                std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
            }
            Some(dir)
        } else {
            None
        };
        self.live = Some(LiveSet { sessions, ids, files, started });
        Ok(())
    }

    /// The preload flags of instance `k` of `system` in the current live step.
    pub(super) fn live_args(&self, system: System, k: usize, instances: usize) -> Vec<String> {
        let Some(live) = &self.live else { return Vec::new() };
        if let Some(dir) = &live.files {
            return vec!["--preload-sessions".into(), dir.join(format!("instance-{k}.txt")).display().to_string()];
        }
        if system.server() == Server::Jwt {
            // Logins through the balancer spread families evenly over the instances.
            let n = instances as u64;
            let mine = live.sessions / n + u64::from((k as u64) < live.sessions % n);
            return vec!["--preload-refresh-families".into(), mine.to_string()];
        }
        Vec::new()
    }

    /// After the instances started: write the sessions into a shared store (uncapped: the
    /// preload is not measured), and read what holding them takes.
    pub(super) async fn live_load(&mut self, step: &Step, deployment: &Deployment) -> anyhow::Result<LiveState> {
        let live = self.live.as_ref().context("a live step without its sessions")?;
        let system = step.system;
        // A JWT system's state is its refresh families, in each instance's memory, even
        // when its denylist is in Redis.
        let server_side = system.server() == Server::Session;
        if server_side && system.needs_redis() {
            let url = self.store.as_ref().context("no Redis for the live sessions")?.url.clone();
            let mut obs = RedisObserver::connect(&url).await?;
            let before = obs.info().await?.used_memory;
            self.status.phase(
                format!("writing {} sessions into Redis", live.sessions),
                std::time::Duration::ZERO,
                None,
            );
            self.with_store_uncapped(self.write_redis(&url, live)).await?;
            let after = obs.info().await?.used_memory;
            return Ok(LiveState {
                held_in: "redis-used-memory",
                state_bytes: after,
                state_bytes_before: Some(before),
                preload_s: live.started.elapsed().as_secs_f64(),
            });
        }
        if server_side && system.needs_postgres() {
            let url = self.pg.as_ref().context("no PostgreSQL for the live sessions")?.url.clone();
            let client = observe::pg_connect(&url).await?;
            let size = format!("SELECT pg_total_relation_size('{}.sessions')", deploy::PG_SCHEMA);
            let before: i64 = client.query_one(&size, &[]).await?.get(0);
            let phase = format!("writing {} sessions into PostgreSQL", live.sessions);
            self.status.phase(phase, std::time::Duration::ZERO, None);
            self.with_store_uncapped(self.write_pg(&client, live)).await?;
            let after: i64 = client.query_one(&size, &[]).await?.get(0);
            return Ok(LiveState {
                held_in: "postgres-relation",
                state_bytes: after as u64,
                state_bytes_before: Some(before as u64),
                preload_s: live.started.elapsed().as_secs_f64(),
            });
        }
        // In the instances: loaded at start-up, before their ready lines.
        let rss = deployment.instances.iter().filter_map(|p| observe::rss_bytes(&p.pid.to_string())).sum();
        Ok(LiveState {
            held_in: "instance-rss",
            state_bytes: rss,
            state_bytes_before: None,
            preload_s: live.started.elapsed().as_secs_f64(),
        })
    }

    /// Run `work` with the store's cap lifted, and put the cap back whatever happened.
    pub(super) async fn with_store_uncapped<T>(
        &self,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let groups: Vec<_> = [
            self.store.as_ref().and_then(|s| s.process.as_ref()).and_then(|p| p.cgroup.as_ref()),
            self.pg.as_ref().and_then(|p| p.process.cgroup.as_ref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut uncapped = Ok(());
        for g in &groups {
            uncapped = uncapped.and(g.set_cores(None).map_err(anyhow::Error::msg));
        }
        let out = match uncapped {
            Ok(()) => work.await,
            Err(e) => Err(e),
        };
        // Every group gets its cap back, whatever failed above.
        let mut recapped = Ok(());
        for g in &groups {
            recapped = recapped.and(g.set_cores(Some(self.store_cap)).map_err(anyhow::Error::msg));
        }
        let out = out?;
        recapped.context("cannot put the store's CPU cap back")?;
        Ok(out)
    }

    /// `SET <prefix>s:<id> <created_ms>:<role>:<user> PX <idle>` for every session, the
    /// value format session-server's Redis store reads (docs/http-api.md, section 13).
    async fn write_redis(&self, url: &str, live: &LiveSet) -> anyhow::Result<()> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let (users, now) = (self.demo_users(), auth_core::unix_millis());
        let idle = deploy::SESSION_IDLE.as_millis() as u64;
        for (b, chunk) in live.ids.chunks(BATCH).enumerate() {
            let mut pipe = redis::pipe();
            for (j, id) in chunk.iter().enumerate() {
                let (user, role) = user_of(b * BATCH + j, users);
                let key = format!("{}s:{id}", self.prefix);
                pipe.cmd("SET").arg(key).arg(format!("{now}:{role}:{user}")).arg("PX").arg(idle).ignore();
            }
            pipe.query_async::<()>(&mut conn).await.context("preloading sessions into Redis")?;
        }
        Ok(())
    }

    /// The sessions as rows of session-server's table (created by the instances at start),
    /// then `VACUUM ANALYZE`, so the measured points do not run beside autovacuum's first
    /// pass over a million fresh rows.
    async fn write_pg(&self, client: &tokio_postgres::Client, live: &LiveSet) -> anyhow::Result<()> {
        let (users, now) = (self.demo_users(), auth_core::unix_millis() as i64);
        let insert = format!(
            "INSERT INTO {}.sessions (id, username, role, created_ms, absolute_at, expires_at) \
             SELECT id, u, r, $4, now() + $5 * interval '1 ms', now() + $6 * interval '1 ms' \
             FROM unnest($1::bytea[], $2::text[], $3::text[]) AS t(id, u, r)",
            deploy::PG_SCHEMA
        );
        let (idle, absolute) = (deploy::SESSION_IDLE.as_millis() as f64, deploy::SESSION_ABSOLUTE.as_millis() as f64);
        for (b, chunk) in live.ids.chunks(BATCH).enumerate() {
            let mut ids = Vec::with_capacity(chunk.len());
            let (mut names, mut roles) = (Vec::with_capacity(chunk.len()), Vec::with_capacity(chunk.len()));
            for (j, id) in chunk.iter().enumerate() {
                ids.push(URL_SAFE_NO_PAD.decode(id)?);
                let (user, role) = user_of(b * BATCH + j, users);
                names.push(user);
                roles.push(role.to_owned());
            }
            client
                .execute(&insert, &[&ids, &names, &roles, &now, &absolute, &idle])
                .await
                .context("preloading sessions into PostgreSQL")?;
        }
        client.batch_execute(&format!("VACUUM ANALYZE {}.sessions", deploy::PG_SCHEMA)).await?;
        Ok(())
    }

    /// The credentials a live step's points spread over: every preloaded session (at home
    /// on instance `i mod N`), or for JWT the run's logged-in users.
    pub(super) fn live_creds(&self, step: &Step) -> Option<Vec<Credential>> {
        let live = self.live.as_ref()?;
        if step.system.server() == Server::Jwt {
            return None;
        }
        let creds = live
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let cookie = HeaderValue::from_str(&format!("__Host-sid={id}")).context("a session cookie")?;
                let admin = crate::workload::demo_admin(i % self.demo_users());
                Ok(Credential { header: (header::COOKIE, cookie), refresh: None, home: i % step.instances, admin })
            })
            .collect::<anyhow::Result<Vec<_>>>();
        creds.ok()
    }

    /// The purges the instances ran so far (`authbench_purges_total`,
    /// `authbench_purge_seconds_total` on their `/metrics`), summed; `None` when an
    /// instance did not answer (a sum over fewer instances would be compared with one over
    /// all of them).
    pub(super) async fn live_purges(&self, deployment: &Deployment) -> Option<(u64, f64)> {
        let mut total = (0u64, 0.0f64);
        for addr in &deployment.addrs {
            let mut conn = Conn::connect(*addr, std::time::Duration::from_secs(2)).await.ok()?;
            let req = Prepared::get("/metrics").ok()?;
            let (_, body) = conn.send(&req, std::time::Duration::from_secs(2)).await.ok()?;
            let text = String::from_utf8_lossy(&body);
            let value =
                |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok()).unwrap_or(0.0);
            total.0 += value("authbench_purges_total ") as u64;
            total.1 += value("authbench_purge_seconds_total ");
        }
        Some(total)
    }

    /// After a live step's points: wait (at most `--live-purge-wait`) until the instances
    /// have run as many purges since `start` as there are instances (PostgreSQL: one, its
    /// purge runs on one instance at a time), so the step records what one purge costs at
    /// this many sessions; Redis expires its keys itself.
    pub(super) async fn live_purge_cost(
        &self,
        step: &Step,
        deployment: &Deployment,
        start: Option<(u64, f64)>,
    ) -> (u64, Option<f64>) {
        let Some(start) = start else { return (0, None) };
        if !purges_itself(step.system) {
            return (0, None);
        }
        let wait = self.config.live_purge_wait;
        self.status.phase("waiting for a purge".into(), wait, None);
        let deadline = Instant::now() + wait;
        loop {
            let Some(now) = self.live_purges(deployment).await else { return (0, None) };
            let runs = now.0.saturating_sub(start.0);
            // PostgreSQL's purge runs on one instance at a time: one run is the cluster's.
            let enough = if step.system.needs_postgres() { 1 } else { deployment.addrs.len() as u64 };
            if runs >= enough || Instant::now() >= deadline {
                let mean = (runs > 0).then(|| (now.1 - start.1) / runs as f64 * 1e3);
                return (runs, mean);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

/// Whether `system`'s instances purge expired state themselves (session-memory,
/// session-postgres, and every JWT system's memory refresh store); sessions in Redis expire
/// there.
pub fn purges_itself(system: System) -> bool {
    system.server() == Server::Jwt || !system.needs_redis()
}

/// The record of one live point.
pub(super) fn live_point(
    live: &LiveSet,
    state: &LiveState,
    spread: Spread,
    credentials: usize,
    purges: (u64, Option<f64>),
) -> LivePoint {
    LivePoint {
        sessions: live.sessions,
        spread,
        credentials: credentials as u64,
        held_in: state.held_in.into(),
        state_bytes: state.state_bytes,
        state_bytes_before: state.state_bytes_before,
        preload_s: state.preload_s,
        purges: purges.0,
        purge_ms: purges.1,
    }
}
