//! Plan: what a sweep will measure — systems, instance counts, balancer policies — and
//! the flags' vocabulary (system ids, `round-robin`/`sticky`).

use std::fmt;

use serde::{Deserialize, Serialize};

mod system;

pub use system::{Alg, Balancer, Family, Revocation, Server, StoreKind, System, Verifier};

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
}

impl Lb {
    pub fn id(self) -> &'static str {
        match self {
            Lb::RoundRobin => "round-robin",
            Lb::Sticky => "sticky",
        }
    }
}

impl fmt::Display for Lb {
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
}

/// The sweep's steps, in run order. Without an explicit `--lb`, every system runs
/// round-robin and `session-memory` also runs sticky: that pair is the picture of the
/// session-synchronisation problem.
///
/// `store_cpus` with several values makes store capacity an axis: a system that uses the
/// store runs every instance count at each of them, in the order given; the others run once.
pub fn steps(systems: &[System], instances: &[usize], lb: Option<&[Lb]>, store_cpus: &[f64]) -> Vec<Step> {
    let mut out = Vec::new();
    for &system in systems {
        let lbs = match lb {
            Some(list) => list.to_vec(),
            None if system.instance_local_state() => vec![Lb::Sticky, Lb::RoundRobin],
            None => vec![Lb::RoundRobin],
        };
        let caps: Vec<Option<f64>> = if system.needs_redis() && store_cpus.len() > 1 {
            store_cpus.iter().map(|&c| Some(c)).collect()
        } else {
            vec![None]
        };
        for store_cpu in caps {
            for &n in instances {
                // With one instance there is nothing to balance: both policies are the same
                // measurement, so it is made once (as round-robin).
                let lbs = if n == 1 && lb.is_none() { vec![Lb::RoundRobin] } else { lbs.clone() };
                out.push(Step { system, instances: n, lbs, store_cpu });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_adds_sticky_only_for_session_memory() {
        let plan = steps(&[System::SESSION_MEMORY, System::JWT_HS256], &[1, 2], None, &[]);
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0].lbs, vec![Lb::RoundRobin], "N=1 needs no balancer");
        assert_eq!(plan[1].lbs, vec![Lb::Sticky, Lb::RoundRobin]);
        assert_eq!(plan[2].lbs, vec![Lb::RoundRobin]);
        let explicit = steps(&[System::JWT_HS256], &[4], Some(&[Lb::Sticky]), &[]);
        assert_eq!(
            explicit,
            vec![Step { system: System::JWT_HS256, instances: 4, lbs: vec![Lb::Sticky], store_cpu: None }]
        );
    }

    #[test]
    fn a_store_cpu_list_repeats_only_the_store_backed_systems_at_each_cap() {
        let plan = steps(&[System::SESSION_REDIS, System::JWT_HS256], &[8], None, &[0.05, 0.4]);
        let caps: Vec<(String, Option<f64>)> = plan.iter().map(|s| (s.system.id(), s.store_cpu)).collect();
        assert_eq!(
            caps,
            [("session-redis".into(), Some(0.05)), ("session-redis".into(), Some(0.4)), ("jwt-hs256".into(), None)]
        );
        let one = steps(&[System::SESSION_REDIS], &[8], None, &[0.2]);
        assert_eq!(one[0].store_cpu, None, "one value is the run's cap, not an axis");
    }
}
