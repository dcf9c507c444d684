//! Checking a sweep's configuration before anything starts: one clear message per
//! combination of flags that cannot be measured.

use std::time::Duration;

use crate::record::SweepConfig;

pub(super) fn validate(c: &SweepConfig) -> anyhow::Result<()> {
    anyhow::ensure!(!c.systems.is_empty(), "--systems is empty");
    if c.external() {
        let ids: Vec<String> = c.systems.iter().map(|s| s.id()).collect();
        anyhow::ensure!(
            c.systems.len() == 1,
            "--target needs exactly one system in --systems, the one running there (got {}: {})",
            ids.len(),
            ids.join(",")
        );
        // into_config leaves `instances` empty unless --instances was given.
        anyhow::ensure!(
            c.instances.is_empty(),
            "--instances does not go with --target: the instances are the target URLs (one URL per instance, or \
             one load balancer)"
        );
        anyhow::ensure!(c.targets.len() <= 64, "--target takes at most 64 URLs");
        return validate_common(c);
    }
    anyhow::ensure!(!c.instances.is_empty(), "--instances is empty");
    anyhow::ensure!(c.instances.iter().all(|&n| (1..=64).contains(&n)), "--instances must be between 1 and 64");
    validate_common(c)
}

fn validate_common(c: &SweepConfig) -> anyhow::Result<()> {
    if c.proxied() {
        anyhow::ensure!(
            !c.external(),
            "HAProxy (--lb haproxy-*, --haproxy) goes in front of the instances a sweep starts; a --target deployment has \
             its own balancer"
        );
        anyhow::ensure!(
            c.live_sessions.is_empty() && c.workload != crate::record::WorkloadKind::Mixed,
            "HAProxy (--lb haproxy-*, --haproxy) goes with the read workload and no --live-sessions: preloaded sessions are written into the \
             instances and stores directly, so the proxy's stick table would never have seen them"
        );
    }
    anyhow::ensure!(!c.duration.is_zero() && !c.step_duration.is_zero(), "durations must be greater than zero");
    if c.repeat_search {
        anyhow::ensure!(c.repeat >= 2, "--repeat-search needs --repeat 2 or more (or --reference)");
        anyhow::ensure!(
            c.rate.is_none(),
            "--repeat-search searches each round, --rate fixes the rate: give one of them"
        );
    }
    if let Some(r) = c.rate {
        anyhow::ensure!(r.is_finite() && r > 0.0, "--rate must be a positive number");
    }
    anyhow::ensure!(c.instance_cpu > 0.0 && c.store_cpu > 0.0, "--instance-cpu and --store-cpu must be positive");
    if !c.store_cpus.is_empty() {
        anyhow::ensure!(
            c.cgroups && c.redis_url.is_none() && !c.external(),
            "several --store-cpu values need the private, capped Redis a sweep starts (not --redis-url, --target or --no-cgroups)"
        );
        no_repeats("--store-cpu", &c.store_cpus)?;
    }
    anyhow::ensure!(c.users >= 1, "--users must be at least 1");
    no_repeats("--store-shards", &c.store_shards)?;
    if !c.store_shards.is_empty() {
        anyhow::ensure!(
            c.systems.iter().any(|s| s.needs_cluster()),
            "--store-shards sizes the Redis Cluster of session-redis-cluster, and none of --systems is that"
        );
        anyhow::ensure!(!c.external(), "--store-shards needs the private Redis Cluster a sweep starts (not --target)");
    }
    no_repeats("--live-sessions", &c.live_sessions)?;
    if !c.live_sessions.is_empty() {
        anyhow::ensure!(!c.external(), "--live-sessions preloads the stores a sweep starts (not --target)");
        anyhow::ensure!(
            c.systems.iter().any(|s| s.supports_live()),
            "--live-sessions: none of --systems can hold preloaded sessions (session-memory, session-redis, \
             session-redis+cached, session-postgres, session-postgres+touch and the jwt systems can)"
        );
        anyhow::ensure!(
            c.workload == crate::record::WorkloadKind::Read,
            "--live-sessions measures reads over the preloaded sessions: use --workload read"
        );
        anyhow::ensure!(!c.live_spreads.is_empty(), "--live-spread is empty");
        no_repeats("--live-spread", &c.live_spreads)?;
    }
    no_repeats("--store-rtt", &c.store_rtts)?;
    if c.store_rtt_values().any(|d| !d.is_zero()) {
        anyhow::ensure!(
            c.redis_url.is_none() && !c.external(),
            "--store-rtt needs the private Redis a sweep starts (not --redis-url or --target)"
        );
        anyhow::ensure!(
            c.systems.iter().any(|s| s.needs_redis()),
            "--store-rtt delays the store, and none of --systems uses one"
        );
        // An axis (0,500us) leaves the PostgreSQL systems at its first value; a main line
        // with a round trip would measure them without it.
        anyhow::ensure!(
            c.store_rtt.is_zero() || !c.systems.iter().any(|s| s.needs_postgres()),
            "--store-rtt delays Redis only so far: measure the session-postgres systems in a run of their own, or start \
             the axis at 0 (e.g. 0,500us: they are measured at 0 only)"
        );
        anyhow::ensure!(
            c.store_rtt_values().all(|d| d <= Duration::from_millis(100)),
            "--store-rtt must be at most 100ms"
        );
    }
    Ok(())
}

/// An axis lists each value once (`{flag} lists {v:?} twice` otherwise).
fn no_repeats<T: PartialEq + std::fmt::Debug>(flag: &str, values: &[T]) -> anyhow::Result<()> {
    for (i, v) in values.iter().enumerate() {
        anyhow::ensure!(!values[..i].contains(v), "{flag} lists {v:?} twice");
    }
    Ok(())
}
