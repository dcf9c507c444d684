//! `authbench chaos`: what each system does when a part fails under steady load.
//!
//! Every run holds a constant open-loop rate against N uncapped instances and, at a fixed
//! moment, breaks one part:
//!
//! - `store-freeze`: the store is stopped (SIGSTOP) for `--outage`, then resumed: a hung
//!   or partitioned Redis. Its data survives.
//! - `store-restart`: the store is killed (SIGKILL) and, after `--outage`, a new empty
//!   one starts on the same port: a crash of a Redis that keeps nothing on disk (the
//!   usual cache configuration). Sessions and denials it held are gone.
//! - `instance-loss`: one instance is killed (SIGKILL). The client-side balancer treats
//!   the first failed connection as the instance's death and sends its users elsewhere —
//!   a best-case balancer with passive health checks; a real one probing every few
//!   seconds loses more.
//! - `login-storm`: nothing breaks; a share of the users log in at once, as after a lost
//!   session store or at the start of a working day, once per `--hash-concurrency` (each
//!   instance's argon2id pool), and the run records what their logins did to everyone
//!   else's `/me` ([`storm`]).
//!
//! The clients behave like real ones: a user whose credential is refused (401) logs in
//! again, so the timeline shows the login storm a lost session store causes and when it
//! ends. Every answer is counted in one-second buckets by the time it arrived; the
//! recovery time runs from the end of the fault (store back, or instance gone) to the
//! last failed answer.
//!
//! The store is the one the system uses, private to the run: a Redis, or for
//! `session-postgres` a PostgreSQL cluster (frozen: the postmaster and every backend;
//! restarted: a fast shutdown and a start on the same data, so its sessions survive), or
//! for `session-redis-cluster` a Redis Cluster of three primaries whose fault hits one
//! shard only (a third of the sessions).

use std::{
    path::Path,
    sync::{Arc, atomic::Ordering::Relaxed},
    time::Duration,
};

use anyhow::Context as _;

use crate::{
    deploy::{self, Binaries, Deployment},
    drive::{
        client::Prepared,
        engine::{self, Mode, Progress, Spec},
    },
    experiment::{self, Steps},
    plan::{Lb, Server, System},
    record::{
        ExperimentKind, RunHeader,
        chaos::{Bucket, ChaosConfig, ChaosResults, ChaosRun, Experiment, Skipped},
    },
    workload,
};

mod clients;
mod store;
mod storm;

use store::ChaosStore;

use clients::{ChaosWorkload, User};

fn check(config: &ChaosConfig) -> anyhow::Result<()> {
    anyhow::ensure!(!config.systems.is_empty(), "--systems is empty");
    anyhow::ensure!(!config.experiments.is_empty(), "--experiments is empty");
    anyhow::ensure!((2..=64).contains(&config.instances), "--instances must be between 2 and 64 (one is lost)");
    anyhow::ensure!(config.rate.is_finite() && config.rate > 0.0, "--rate must be greater than zero");
    anyhow::ensure!((1..=100_000).contains(&config.users), "--users must be between 1 and 100000");
    anyhow::ensure!(!config.duration.is_zero(), "--duration must be greater than zero");
    let end = config.warmup + config.duration;
    anyhow::ensure!(
        config.fault_at >= config.warmup && config.fault_at < end,
        "--fault-at ({}) must fall after the warm-up and before the end of the run ({})",
        humantime::format_duration(config.fault_at),
        humantime::format_duration(end)
    );
    storm::check(config)?;
    if config.experiments.iter().any(|e| e.breaks_store()) {
        anyhow::ensure!(
            config.fault_at + config.outage + Duration::from_secs(2) <= end,
            "--fault-at + --outage must end at least 2 s before the run does, so recovery can be seen"
        );
    }
    Ok(())
}

/// Share of failed answers at or above which a second counts as disturbed.
const DISTURBED: f64 = 0.01;

/// Recovery after a fault that ended at `fault_end_s` (seconds from the start of the run):
/// `(recovery, settled)` in ms, where recovery runs to the last failed answer (a user who
/// comes back late still finds their session gone) and settled to the end of the last
/// second with ≥ 1 % failed answers. Both `None` when the run's last full second was still
/// disturbed: not recovered as far as the run can see.
fn recovery(
    timeline: &[Bucket],
    last_failure_s: Option<f64>,
    fault_end_s: f64,
    run_end_s: f64,
) -> (Option<f64>, Option<f64>) {
    let disturbed = |b: &Bucket| {
        let all = b.ok + b.failed();
        all > 0 && b.failed() as f64 / all as f64 >= DISTURBED
    };
    let last_full = (run_end_s.floor() as u32).saturating_sub(1);
    if timeline.iter().any(|b| b.t_s == last_full && disturbed(b)) {
        return (None, None);
    }
    let ms_after = |t: f64| ((t - fault_end_s) * 1e3).max(0.0);
    // Seconds that began after the fault ended: the second the fault ends in is disturbed by
    // the fault itself, not by the recovery.
    let settled = timeline
        .iter()
        .rev()
        .find(|b| f64::from(b.t_s) >= fault_end_s && b.t_s <= last_full && disturbed(b))
        .map(|b| f64::from(b.t_s) + 1.0);
    (Some(last_failure_s.map_or(0.0, ms_after)), Some(settled.map_or(0.0, ms_after)))
}

/// Which balancer a system runs behind in these experiments: the one it needs in
/// production (instance-local sessions must be sticky).
fn lb_for(system: System) -> Lb {
    if system.instance_local_state() { Lb::Sticky } else { Lb::RoundRobin }
}

fn notes(experiment: Experiment, system: System) -> String {
    if let Some(what) = own_store_notes(experiment, system) {
        return what.to_owned();
    }
    let what = match (experiment, system.needs_redis()) {
        // Nothing breaks: what a login costs this system, without the fault's description.
        (Experiment::LoginStorm, _) => return storm::notes(system).to_owned(),
        (Experiment::InstanceLoss, _) if system.instance_local_state() => {
            "sessions live in the lost instance's memory: its users are refused elsewhere and log in again"
        }
        (Experiment::InstanceLoss, _) => "state is shared or in the token: the other instances serve the moved users",
        (_, false) => "no store on the request path: a control",
        (Experiment::StoreFreeze, _) if system == System::JWT_HS256_DENYLIST_CACHED => {
            "the local denylist cannot be kept current while Redis is away: once the pub/sub ping (every second) fails, \
             requests fail closed at once until the subscription is back and the list re-loaded"
        }
        (Experiment::StoreFreeze, true) => {
            "requests that need the store wait --store-timeout (500 ms), then fail closed"
        }
        (Experiment::StoreRestart, _) if system == System::JWT_HS256_DENYLIST_CACHED => {
            "the subscription breaks: requests fail closed until it is re-established and the (now empty) list re-loaded; \
             denials the old store held are gone"
        }
        (Experiment::StoreRestart, _) if system.server() == Server::Session => {
            "the new store is empty: every session is gone and every user logs in again"
        }
        (Experiment::StoreRestart, true) => {
            "the new store is empty: denials it held are gone (a revoked, unexpired token works again)"
        }
    };
    format!("{}; {what}", experiment.describe())
}

/// What a store fault does to the systems with a store of their own kind.
fn own_store_notes(experiment: Experiment, system: System) -> Option<&'static str> {
    Some(match experiment {
        Experiment::InstanceLoss => return None,
        Experiment::StoreFreeze if system.needs_postgres() => {
            "PostgreSQL (postmaster and backends) stopped (SIGSTOP) and resumed: requests wait --store-timeout (500 ms), then fail closed"
        }
        Experiment::StoreRestart if system.needs_postgres() => {
            "PostgreSQL shut down (fast) and, after the outage, started again on its data: requests fail closed while it is down; the \
             sessions survive, so nobody logs in again"
        }
        Experiment::StoreFreeze if system.needs_cluster() => {
            "one shard of a 3-primary Redis Cluster stopped (SIGSTOP) and resumed: the requests whose session it holds wait --store-timeout, then fail closed; \
             the others go on"
        }
        Experiment::StoreRestart if system.needs_cluster() => {
            "one shard of a 3-primary Redis Cluster killed (SIGKILL) and restarted empty: the sessions it held fail closed, then are gone (their \
             users log in again); the others go on"
        }
        _ => return None,
    })
}

/// Run every experiment on every system; returns the results (also written to
/// `config.out`/chaos.json after each run).
pub async fn chaos(config: ChaosConfig, shutdown: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<ChaosResults> {
    check(&config)?;
    let binaries = deploy::find_binaries(config.bin_dir.as_deref())?;
    let (id, work) = experiment::start("chaos-", &config.out)?;
    let mut skipped = Vec::new();
    // These experiments kill the store, so they never use a shared one.
    let redis_missing = which_redis().err();
    binaries.keygen(config.systems.iter().filter_map(|s| s.jwt_alg()), &work.keys)?;
    let mut plan = Vec::new();
    for &experiment in &config.experiments {
        for &system in &config.systems {
            let needs_store = system.uses_store() || experiment.breaks_store();
            match &redis_missing {
                Some(why) if needs_store => {
                    println!("authbench: skipping {experiment} {system}: {why}");
                    skipped.push(Skipped { experiment, system, reason: why.clone() });
                }
                _ => plan.extend(storm::settings(&config, experiment).into_iter().map(|h| (experiment, system, h))),
            }
        }
    }
    anyhow::ensure!(!plan.is_empty(), "nothing left to measure: every requested run was skipped");
    println!(
        "authbench chaos: {} runs of {:.0} s, {} uncapped instances, {} req/s offered, {} users",
        plan.len(),
        (config.warmup + config.duration).as_secs_f64(),
        config.instances,
        config.rate,
        config.users
    );
    let results =
        ChaosResults { run: RunHeader::new(ExperimentKind::Chaos, &id, config.clone()), skipped, runs: Vec::new() };
    let env = Env { config: &config, binaries: &binaries, key_dir: &work.keys, log_dir: &work.logs, prefix: &id };
    let mut ctx = Ctx { env, store: None, results };
    let outcome = experiment::run(&mut ctx, &plan, &shutdown).await;
    let mut results = ctx.results;
    results.run.finished_at = Some(crate::record::now_rfc3339());
    results.write(&config.out)?;
    outcome.map(|()| results)
}

fn which_redis() -> Result<(), String> {
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("redis-server").is_file()));
    if found { Ok(()) } else { Err("redis-server is not on PATH (chaos starts and kills its own)".into()) }
}

/// What every run of one `authbench chaos` shares.
struct Env<'a> {
    config: &'a ChaosConfig,
    binaries: &'a Binaries,
    key_dir: &'a Path,
    log_dir: &'a Path,
    prefix: &'a str,
}

struct Ctx<'a> {
    env: Env<'a>,
    /// The current run's own store, which its fault may kill and restart.
    store: Option<ChaosStore>,
    results: ChaosResults,
}

/// One run: an experiment on a system, and (login storm) each instance's hashing pool.
type Run = (Experiment, System, Option<usize>);

impl Steps for Ctx<'_> {
    type Step = Run;

    fn announce(&mut self, i: usize, total: usize, &(experiment, system, hash): &Run) {
        let run_s = (self.env.config.warmup + self.env.config.duration).as_secs_f64();
        let pool = hash.map_or(String::new(), |k| format!(" --hash-concurrency {k}"));
        println!("[{}/{total}] {experiment} {system}{pool}: running {run_s:.0} s", i + 1);
    }

    async fn run(&mut self, &(experiment, system, hash): &Run, deployment: &mut Deployment) -> anyhow::Result<()> {
        let run = self
            .env
            .run((experiment, system, hash), deployment, &mut self.store)
            .await
            .with_context(|| format!("{experiment} on {system}"))?;
        println!("    {}", line(&run));
        self.results.runs.push(run);
        self.results.write(&self.env.config.out)
    }

    async fn after(&mut self) -> anyhow::Result<()> {
        if let Some(store) = self.store.as_mut() {
            store.stop().await;
        }
        self.store = None;
        Ok(())
    }
}

impl Env<'_> {
    async fn run(
        &self,
        (experiment, system, hash): Run,
        deployment: &mut Deployment,
        store_slot: &mut Option<ChaosStore>,
    ) -> anyhow::Result<ChaosRun> {
        let config = self.config;
        let needs_store = system.uses_store() || experiment.breaks_store();
        if needs_store {
            *store_slot = Some(ChaosStore::start(system, self.log_dir).await?);
        }
        let store_url = store_slot.as_ref().map(ChaosStore::url);
        let prefix = format!("authbench:{}:", self.prefix);
        let setup = deploy::ServerSetup {
            users: config.users.max(10),
            password: &config.demo_password,
            store_url: store_url.as_deref(),
            prefix: &prefix,
            key_dir: self.key_dir,
            jwt_extra: &[],
        };
        let args = |k| {
            let mut args = deploy::server_args(system, k, &setup);
            args.extend(hash.map(|h| ["--hash-concurrency".to_owned(), h.to_string()]).into_iter().flatten());
            args
        };
        let program = self.binaries.program(system);
        deploy::spawn_instances(deployment, system, config.instances, program, args, |_| Ok(None), self.log_dir)
            .await?;
        let n = deployment.addrs.len();
        let lb = if config.haproxy {
            let lb = Lb::proxy_for(system);
            deployment.proxy = Some(deploy::haproxy::start(lb, &deployment.addrs, None, 1, self.log_dir).await?);
            lb
        } else {
            lb_for(system)
        };
        // Through the proxy: one target, and the logins teach a sticky proxy every session.
        let targets = deployment.targets();
        let creds = workload::login_pool(system, &targets, config.users, &config.demo_password).await?;
        let users = creds
            .iter()
            .enumerate()
            .map(|(u, c)| {
                let me = Prepared::get("/me")?.with_header(c.header.0.clone(), c.header.1.clone());
                let login = Prepared::post_json(
                    "/login",
                    &serde_json::json!({"username": format!("user{u}"), "password": config.demo_password}),
                )?;
                Ok(User::new(me, login, c.home))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // The storm's users: the first --storm-share of them, each to the instance its
        // login went to (its home, under either balancer).
        let storm_logins: Vec<(Prepared, std::net::SocketAddr)> = if experiment == Experiment::LoginStorm {
            let k = storm::users(config);
            users.iter().take(k).map(|x| (x.login.clone(), targets[x.home.load(Relaxed)])).collect()
        } else {
            Vec::new()
        };
        // Killed: the last instance (round-robin and sticky both send it 1/N of the users).
        let victim = n - 1;
        // Through a proxy, which instance holds which user is the proxy's to know.
        let users_on_lost_instance = (experiment == Experiment::InstanceLoss && lb == Lb::Sticky)
            .then(|| creds.iter().filter(|c| c.home == victim).count() as u64);
        let proxied = lb.proxy();
        let run_len = config.warmup + config.duration;
        let spec = Spec {
            targets: targets.clone(),
            connections_per_target: deployment.connections_per_target(config.connections_per_instance),
            mode: Mode::Open { rate: config.rate },
            warmup: config.warmup,
            duration: config.duration,
            timeout: config.timeout,
        };
        let load = Arc::new(ChaosWorkload::new(
            users,
            system.server(),
            lb.routing(),
            targets.len(),
            // The generator moves users off a dead instance itself only without a proxy.
            experiment == Experiment::InstanceLoss && !proxied,
            run_len + config.timeout,
            config.fault_at,
        ));
        let t0 = load.t0;
        let drive = engine::run(&spec, load.clone(), Arc::new(Progress::default()));
        let fault = async {
            tokio::time::sleep_until((t0 + config.fault_at).into()).await;
            let start = t0.elapsed();
            match experiment {
                Experiment::InstanceLoss => {
                    deployment.instances[victim].signal("KILL")?;
                    Ok::<_, anyhow::Error>((start, start, None))
                }
                Experiment::StoreFreeze => {
                    let store = store_slot.as_ref().context("no store to freeze")?;
                    store.signal("STOP")?;
                    tokio::time::sleep(config.outage).await;
                    store.signal("CONT")?;
                    Ok((start, t0.elapsed(), None))
                }
                Experiment::StoreRestart => {
                    store_slot.as_mut().context("no store to restart")?.restart(config.outage, self.log_dir).await?;
                    Ok((start, t0.elapsed(), None))
                }
                Experiment::LoginStorm => Ok((start, start, Some(storm::burst(storm_logins).await))),
            }
        };
        let (outcome, fault) = tokio::join!(drive, fault);
        let outcome = outcome?;
        let (fault_start, fault_end, burst) = fault?;
        let timeline = load.timeline();
        let mut totals = Bucket::default();
        for b in &timeline {
            totals.ok += b.ok;
            totals.unauthorized += b.unauthorized;
            totals.unavailable += b.unavailable;
            totals.other_status += b.other_status;
            totals.no_answer += b.no_answer;
            totals.logins += b.logins;
        }
        let first = load.first_failure_us.load(Relaxed);
        let last = load.last_failure_us.load(Relaxed);
        let last_s = (last > 0).then_some(last as f64 / 1e6);
        let (fault_start_s, fault_end_s) = (fault_start.as_secs_f64(), fault_end.as_secs_f64());
        let (recovery_ms, settled_ms) = recovery(&timeline, last_s, fault_end_s, run_len.as_secs_f64());
        Ok(ChaosRun {
            experiment,
            system,
            instances: n,
            lb,
            offered_rps: config.rate,
            users: config.users,
            fault_start_s,
            fault_end_s,
            timeline,
            totals,
            first_failure_ms: (first != u64::MAX).then(|| (first as f64 / 1e6 - fault_start_s) * 1e3),
            last_failure_ms: last_s.map(|t| (t - fault_end_s) * 1e3),
            recovery_ms,
            settled_ms,
            users_relogged: load.relogged.load(Relaxed),
            logins_ok: load.logins_ok.load(Relaxed),
            users_on_lost_instance,
            latency_us: outcome.latency.summary(),
            requests: outcome.requests,
            notes: notes(experiment, system),
            storm: burst.map(|b| storm::record(&load, config, hash, &b, fault_start_s)),
        })
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("not recovered".into(), |v| format!("{v:.0} ms"))
}

fn fmt_settled(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0} s", v / 1e3))
}

fn line(run: &ChaosRun) -> String {
    if let Some(storm) = storm::line(run) {
        return storm;
    }
    let t = &run.totals;
    format!(
        "failed {} (401 {}, 503 {}, other {}, no answer {}), re-logins {}, recovery {} (settled {})",
        t.failed(),
        t.unauthorized,
        t.unavailable,
        t.other_status,
        t.no_answer,
        run.users_relogged,
        fmt_ms(run.recovery_ms),
        fmt_settled(run.settled_ms)
    )
}

/// The end-of-run table.
pub fn summary_table(results: &ChaosResults) -> String {
    let mut out = format!(
        "{:<14} {:<26} {:>7} {:>6} {:>6} {:>6} {:>9} {:>9} {:>14} {:>8}\n",
        "experiment", "system", "answers", "401", "503", "none", "re-login", "p99 ms", "recovery", "settled"
    );
    for r in &results.runs {
        let t = &r.totals;
        out.push_str(&format!(
            "{:<14} {:<26} {:>7} {:>6} {:>6} {:>6} {:>9} {:>9.1} {:>14} {:>8}\n",
            r.experiment.id(),
            r.system.id(),
            t.ok + t.failed(),
            t.unauthorized,
            t.unavailable,
            t.no_answer,
            r.users_relogged,
            r.latency_us.p99 as f64 / 1e3,
            fmt_ms(r.recovery_ms),
            fmt_settled(r.settled_ms),
        ));
    }
    for s in &results.skipped {
        out.push_str(&format!("skipped {} {}: {}\n", s.experiment, s.system, s.reason));
    }
    out.push_str(
        "instances uncapped; recovery = end of the fault to the last failed answer; settled = to the end of the last \
         second with >= 1 % failed\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(failed: &[(u32, u64)]) -> Vec<Bucket> {
        (0..16)
            .map(|t| {
                let f = failed.iter().find(|(s, _)| *s == t).map_or(0, |(_, n)| *n);
                Bucket { t_s: t, ok: 300 - f, unauthorized: f, ..Bucket::default() }
            })
            .collect()
    }

    #[test]
    fn recovery_is_measured_from_the_end_of_the_fault() {
        let quiet = timeline(&[]);
        assert_eq!(recovery(&quiet, None, 5.0, 15.0), (Some(0.0), Some(0.0)));
        let during = timeline(&[(4, 100)]);
        assert_eq!(recovery(&during, Some(4.9), 5.0, 15.0), (Some(0.0), Some(0.0)), "failures during the fault only");
        // A storm that fades, and one straggler later: the straggler sets recovery, the
        // storm sets settled.
        let storm = timeline(&[(5, 200), (6, 40), (7, 2), (11, 1)]);
        assert_eq!(recovery(&storm, Some(11.5), 5.0, 15.0), (Some(6500.0), Some(2000.0)));
        // The second the fault ends in belongs to the fault.
        let tail = timeline(&[(4, 300), (5, 100)]);
        assert_eq!(recovery(&tail, Some(5.25), 4.5, 15.0), (Some(750.0), Some(1500.0)));
        assert_eq!(recovery(&timeline(&[(4, 300)]), Some(4.4), 4.5, 15.0), (Some(0.0), Some(0.0)));
        let still = timeline(&[(5, 200), (14, 9)]);
        assert_eq!(recovery(&still, Some(14.5), 5.0, 15.0), (None, None), "still failing at the end");
    }

    #[test]
    fn experiments_parse_by_id() {
        for e in Experiment::ALL {
            assert_eq!(e.id().parse::<Experiment>(), Ok(e));
        }
        assert!("store-melt".parse::<Experiment>().unwrap_err().contains("store-freeze"));
    }
}
