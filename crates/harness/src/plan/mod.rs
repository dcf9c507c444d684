//! Plan: what a sweep will measure — systems, instance counts, balancer policies — and
//! the flags' vocabulary (system ids, `round-robin`/`sticky`).

use std::{fmt, time::Duration};

use serde::{Deserialize, Serialize};

mod system;

pub use system::{
    Alg, Balancer, Family, Revocation, SESSION_CACHE_TTL, Server, StoreKind, System, TOUCH_FRACTION, Verifier,
};

/// Client-side load-balancing policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
pub enum Lb {
    /// Request k goes to instance k mod N, whoever sends it.
    #[serde(rename = "round-robin")]
    #[value(name = "round-robin")]
    RoundRobin,
    /// A user always reaches the same instance.
    #[serde(rename = "sticky")]
    #[value(name = "sticky")]
    Sticky,
    /// A real HAProxy in the path, `balance roundrobin`, health-checking `/healthz`.
    #[serde(rename = "haproxy-rr")]
    #[value(name = "haproxy-rr")]
    HaproxyRr,
    /// HAProxy sticking each session to the instance that issued its cookie (a stick table
    /// learnt from the login's `Set-Cookie`); logins and JWT requests go round-robin.
    #[serde(rename = "haproxy-sticky")]
    #[value(name = "haproxy-sticky")]
    HaproxySticky,
}

impl Lb {
    pub fn id(self) -> &'static str {
        match self {
            Lb::RoundRobin => "round-robin",
            Lb::Sticky => "sticky",
            Lb::HaproxyRr => "haproxy-rr",
            Lb::HaproxySticky => "haproxy-sticky",
        }
    }

    /// A proxy process balances, not the generator.
    pub fn proxy(self) -> bool {
        matches!(self, Lb::HaproxyRr | Lb::HaproxySticky)
    }

    /// A session always reaches the instance that holds it.
    pub fn sticky(self) -> bool {
        matches!(self, Lb::Sticky | Lb::HaproxySticky)
    }

    /// How the generator spreads requests over its targets: through a proxy it has one
    /// target, the proxy, and the proxy balances.
    pub fn routing(self) -> Lb {
        if self.proxy() { Lb::RoundRobin } else { self }
    }

    /// The proxy policy `system` needs in production: sticky for instance-local sessions.
    pub fn proxy_for(system: System) -> Lb {
        if system.instance_local_state() { Lb::HaproxySticky } else { Lb::HaproxyRr }
    }

    /// The generator-side policy a proxy policy stands beside (the zero-overhead reference).
    pub fn client_side(self) -> Lb {
        match self {
            Lb::HaproxyRr => Lb::RoundRobin,
            Lb::HaproxySticky => Lb::Sticky,
            other => other,
        }
    }
}

impl fmt::Display for Lb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How the measured requests pick among the live sessions (`--live-spread`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Spread {
    /// Every live session equally often.
    Uniform,
    /// Zipf with s = 1: the k-th most used session is used 1/k as often as the first, as
    /// real traffic concentrates on a few active users.
    Zipf,
}

impl Spread {
    pub fn id(self) -> &'static str {
        match self {
            Spread::Uniform => "uniform",
            Spread::Zipf => "zipf",
        }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One deployment to measure: a system at N instances, under one or more policies.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub system: System,
    pub instances: usize,
    pub lbs: Vec<Lb>,
    /// The store's CPU cap for this step, when store capacity is an axis (`--store-cpu`
    /// with several values); `None` keeps the run's one cap.
    pub store_cpu: Option<f64>,
    /// The round trip to the store for this step, when it is an axis (`--store-rtt` with
    /// several values); `None` keeps the run's one round trip.
    pub store_rtt: Option<Duration>,
    /// Primaries of the Redis Cluster for this step (`session-redis-cluster` only).
    pub store_shards: Option<u16>,
    /// Sessions (or, for JWT, refresh-token families) preloaded before this step's points,
    /// when live sessions are an axis (`--live-sessions`); `None` on the main line.
    pub live_sessions: Option<u64>,
}

/// The store axes of a run: every `--store-cpu` and `--store-rtt` value when more than one
/// was given (empty otherwise). The first of each is the main line.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreAxes<'a> {
    pub cpus: &'a [f64],
    pub rtts: &'a [Duration],
    /// `--store-shards` (a Redis Cluster's primaries), for `session-redis-cluster` only;
    /// its first value is the main line (1 when empty).
    pub shards: &'a [u16],
    /// `--live-sessions`: every value is a step of its own at the largest N, for the systems
    /// that can hold preloaded sessions ([`System::supports_live`]).
    pub live: &'a [u64],
    /// `--haproxy`: at the largest N, each system is measured once more through HAProxy
    /// with the policy it needs ([`Lb::proxy_for`]), on the main line's deployment.
    pub haproxy: bool,
}

/// The sweep's steps, in run order. Without an explicit `--lb`, every system runs
/// round-robin and `session-memory` also runs sticky: that pair is the picture of the
/// session-synchronisation problem.
///
/// A store axis (`axes`) measures a system that uses the store at the largest N once more
/// at each further value of that axis, with the other axis at its main value: one store
/// dimension at a time, not their product. Every N runs at the first values (main line).
pub fn steps(systems: &[System], instances: &[usize], lb: Option<&[Lb]>, axes: StoreAxes<'_>) -> Vec<Step> {
    let mut out = Vec::new();
    let largest = instances.iter().copied().max();
    for &system in systems {
        let lbs = match lb {
            Some(list) => list.to_vec(),
            None if system.instance_local_state() => vec![Lb::Sticky, Lb::RoundRobin],
            None => vec![Lb::RoundRobin],
        };
        // With one instance there is nothing to balance: both policies are the same
        // measurement, so it is made once (as round-robin).
        let lbs_at = |n: usize| if n == 1 && lb.is_none() { vec![Lb::RoundRobin] } else { lbs.clone() };
        let store = system.uses_store();
        let cpu = (store && axes.cpus.len() > 1).then(|| axes.cpus[0]);
        // The round trip goes through a proxy in front of the single Redis only.
        let rtt = (system.needs_redis() && axes.rtts.len() > 1).then(|| axes.rtts[0]);
        let shards = system.needs_cluster().then(|| axes.shards.first().copied().unwrap_or(1));
        let step = |n: usize, store_cpu, store_rtt, store_shards| Step {
            system,
            instances: n,
            lbs: lbs_at(n),
            store_cpu,
            store_rtt,
            store_shards,
            live_sessions: None,
        };
        for &n in instances {
            let mut s = step(n, cpu, rtt, shards);
            if axes.haproxy && Some(n) == largest && !s.lbs.contains(&Lb::proxy_for(system)) {
                s.lbs.push(Lb::proxy_for(system));
            }
            out.push(s);
        }
        if let (true, Some(n)) = (store, largest) {
            for &c in axes.cpus.iter().skip(1) {
                out.push(step(n, Some(c), rtt, shards));
            }
            for &r in axes.rtts.iter().skip(1).filter(|_| system.needs_redis()) {
                out.push(step(n, cpu, Some(r), shards));
            }
            if system.needs_cluster() {
                for &k in axes.shards.iter().skip(1) {
                    out.push(step(n, cpu, rtt, Some(k)));
                }
            }
        }
        if let (true, Some(n)) = (system.supports_live(), largest) {
            for &live in axes.live {
                // Round-robin over per-instance sessions fails by design: sticky only.
                let lbs = if lb.is_none() && system.instance_local_state() { vec![Lb::Sticky] } else { lbs_at(n) };
                out.push(Step { lbs, live_sessions: Some(live), ..step(n, cpu, rtt, shards) });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_haproxy_axis_adds_the_needed_proxy_at_the_largest_n_only() {
        let axes = StoreAxes { haproxy: true, ..StoreAxes::default() };
        let plan = steps(&[System::SESSION_MEMORY, System::JWT_HS256], &[1, 4], None, axes);
        let lbs: Vec<(usize, Vec<Lb>)> = plan.iter().map(|s| (s.instances, s.lbs.clone())).collect();
        assert_eq!(
            lbs,
            vec![
                (1, vec![Lb::RoundRobin]),
                (4, vec![Lb::Sticky, Lb::RoundRobin, Lb::HaproxySticky]),
                (1, vec![Lb::RoundRobin]),
                (4, vec![Lb::RoundRobin, Lb::HaproxyRr]),
            ]
        );
    }

    #[test]
    fn default_plan_adds_sticky_only_for_session_memory() {
        let plan = steps(&[System::SESSION_MEMORY, System::JWT_HS256], &[1, 2], None, StoreAxes::default());
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0].lbs, vec![Lb::RoundRobin], "N=1 needs no balancer");
        assert_eq!(plan[1].lbs, vec![Lb::Sticky, Lb::RoundRobin]);
        assert_eq!(plan[2].lbs, vec![Lb::RoundRobin]);
        let explicit = steps(&[System::JWT_HS256], &[4], Some(&[Lb::Sticky]), StoreAxes::default());
        assert_eq!(
            explicit,
            vec![Step {
                system: System::JWT_HS256,
                instances: 4,
                lbs: vec![Lb::Sticky],
                store_cpu: None,
                store_rtt: None,
                store_shards: None,
                live_sessions: None
            }]
        );
    }

    #[test]
    fn the_shards_axis_is_the_cluster_systems_at_the_largest_n() {
        let axes = StoreAxes { cpus: &[0.05, 0.1], rtts: &[], shards: &[1, 2, 4], live: &[], haproxy: false };
        let plan = steps(&[System::SESSION_REDIS_CLUSTER, System::SESSION_REDIS], &[1, 4], None, axes);
        let got: Vec<(String, usize, Option<f64>, Option<u16>)> =
            plan.iter().map(|s| (s.system.id(), s.instances, s.store_cpu, s.store_shards)).collect();
        let c = "session-redis-cluster".to_owned();
        let r = "session-redis".to_owned();
        assert_eq!(
            got,
            vec![
                (c.clone(), 1, Some(0.05), Some(1)),
                (c.clone(), 4, Some(0.05), Some(1)),
                (c.clone(), 4, Some(0.1), Some(1)),
                (c.clone(), 4, Some(0.05), Some(2)),
                (c, 4, Some(0.05), Some(4)),
                (r.clone(), 1, Some(0.05), None),
                (r.clone(), 4, Some(0.05), None),
                (r, 4, Some(0.1), None),
            ]
        );
    }

    #[test]
    fn a_store_axis_adds_only_the_store_backed_systems_at_the_largest_n() {
        let half = Duration::from_micros(500);
        let axes =
            StoreAxes { cpus: &[0.1, 0.4], rtts: &[Duration::ZERO, half], shards: &[], live: &[], haproxy: false };
        let plan = steps(&[System::SESSION_REDIS, System::JWT_HS256], &[1, 8], None, axes);
        let got: Vec<(String, usize, Option<f64>, Option<Duration>)> =
            plan.iter().map(|s| (s.system.id(), s.instances, s.store_cpu, s.store_rtt)).collect();
        let zero = Some(Duration::ZERO);
        assert_eq!(
            got,
            [
                ("session-redis".into(), 1, Some(0.1), zero),
                ("session-redis".into(), 8, Some(0.1), zero),
                ("session-redis".into(), 8, Some(0.4), zero),
                ("session-redis".into(), 8, Some(0.1), Some(half)),
                ("jwt-hs256".into(), 1, None, None),
                ("jwt-hs256".into(), 8, None, None),
            ],
            "one store dimension at a time, the main line at every N"
        );
        let one = steps(
            &[System::SESSION_REDIS],
            &[8],
            None,
            StoreAxes { cpus: &[0.2], rtts: &[half], shards: &[], live: &[], haproxy: false },
        );
        assert_eq!((one[0].store_cpu, one[0].store_rtt), (None, None), "one value is the run's, not an axis");
    }

    #[test]
    fn a_round_trip_axis_leaves_postgres_at_its_first_value() {
        let half = Duration::from_micros(500);
        let axes =
            StoreAxes { cpus: &[0.1, 0.2], rtts: &[Duration::ZERO, half], shards: &[], live: &[], haproxy: false };
        let plan = steps(&[System::SESSION_POSTGRES, System::SESSION_REDIS], &[8], None, axes);
        let got: Vec<(String, Option<f64>, Option<Duration>)> =
            plan.iter().map(|s| (s.system.id(), s.store_cpu, s.store_rtt)).collect();
        assert_eq!(
            got,
            [
                ("session-postgres".into(), Some(0.1), None),
                ("session-postgres".into(), Some(0.2), None),
                ("session-redis".into(), Some(0.1), Some(Duration::ZERO)),
                ("session-redis".into(), Some(0.2), Some(Duration::ZERO)),
                ("session-redis".into(), Some(0.1), Some(half)),
            ],
            "the delay proxy speaks Redis: PostgreSQL gets the CPU axis only"
        );
    }

    #[test]
    fn live_sessions_are_steps_of_their_own_at_the_largest_n() {
        let axes = StoreAxes { live: &[1000, 100_000], ..StoreAxes::default() };
        let systems = [System::SESSION_MEMORY, System::SESSION_REDIS_CLUSTER, System::JWT_HS256, System::CONTROL];
        let plan = steps(&systems, &[1, 4], None, axes);
        let live: Vec<(String, usize, Option<u64>, Vec<Lb>)> = plan
            .iter()
            .filter(|s| s.live_sessions.is_some())
            .map(|s| (s.system.id(), s.instances, s.live_sessions, s.lbs.clone()))
            .collect();
        assert_eq!(
            live,
            [
                ("session-memory".into(), 4, Some(1000), vec![Lb::Sticky]),
                ("session-memory".into(), 4, Some(100_000), vec![Lb::Sticky]),
                ("jwt-hs256".into(), 4, Some(1000), vec![Lb::RoundRobin]),
                ("jwt-hs256".into(), 4, Some(100_000), vec![Lb::RoundRobin]),
            ],
            "no live steps for the cluster or the control"
        );
        assert_eq!(plan.iter().filter(|s| s.live_sessions.is_none()).count(), 8, "the main line is unchanged");
    }
}
