//! Plan: what a sweep will measure — systems, instance counts, balancer policies — and
//! the flags' vocabulary (system ids, `round-robin`/`sticky`).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A system under test, by the id used everywhere (flags, results, report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum System {
    #[serde(rename = "session-memory")]
    SessionMemory,
    #[serde(rename = "session-redis")]
    SessionRedis,
    #[serde(rename = "jwt-hs256")]
    JwtHs256,
    #[serde(rename = "jwt-rs256")]
    JwtRs256,
    #[serde(rename = "jwt-es256")]
    JwtEs256,
    #[serde(rename = "jwt-eddsa")]
    JwtEddsa,
    /// HS256 with `--revocation denylist`: logout denies the token in Redis, every
    /// request checks it there.
    #[serde(rename = "jwt-hs256+denylist")]
    JwtHs256Denylist,
    /// HS256 with `--revocation denylist-cached`: a local denylist per instance, kept
    /// current through Redis pub/sub.
    #[serde(rename = "jwt-hs256+denylist-cached")]
    JwtHs256DenylistCached,
}

/// Which server binary runs a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Session,
    Jwt,
}

impl System {
    pub const ALL: [System; 8] = [
        System::SessionMemory,
        System::SessionRedis,
        System::JwtHs256,
        System::JwtRs256,
        System::JwtEs256,
        System::JwtEddsa,
        System::JwtHs256Denylist,
        System::JwtHs256DenylistCached,
    ];

    pub fn id(self) -> &'static str {
        match self {
            System::SessionMemory => "session-memory",
            System::SessionRedis => "session-redis",
            System::JwtHs256 => "jwt-hs256",
            System::JwtRs256 => "jwt-rs256",
            System::JwtEs256 => "jwt-es256",
            System::JwtEddsa => "jwt-eddsa",
            System::JwtHs256Denylist => "jwt-hs256+denylist",
            System::JwtHs256DenylistCached => "jwt-hs256+denylist-cached",
        }
    }

    pub fn server(self) -> Server {
        match self {
            System::SessionMemory | System::SessionRedis => Server::Session,
            _ => Server::Jwt,
        }
    }

    /// Systems whose requests touch the shared store.
    pub fn needs_redis(self) -> bool {
        matches!(self, System::SessionRedis | System::JwtHs256Denylist | System::JwtHs256DenylistCached)
    }

    /// `--revocation` value for JWT systems (`None` for sessions). Passed explicitly even
    /// for `none`, so an `AUTHBENCH_REVOCATION` in the environment cannot change a system.
    pub fn revocation(self) -> Option<&'static str> {
        match self {
            System::JwtHs256Denylist => Some("denylist"),
            System::JwtHs256DenylistCached => Some("denylist-cached"),
            System::SessionMemory | System::SessionRedis => None,
            _ => Some("none"),
        }
    }

    /// `--alg` value for JWT systems.
    pub fn jwt_alg(self) -> Option<&'static str> {
        match self {
            System::JwtHs256 | System::JwtHs256Denylist | System::JwtHs256DenylistCached => Some("HS256"),
            System::JwtRs256 => Some("RS256"),
            System::JwtEs256 => Some("ES256"),
            System::JwtEddsa => Some("EdDSA"),
            _ => None,
        }
    }

    /// Per-instance state: requests only work on the instance that holds the session.
    pub fn instance_local_state(self) -> bool {
        self == System::SessionMemory
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for System {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        System::ALL.into_iter().find(|sys| sys.id() == s).ok_or_else(|| {
            let known: Vec<_> = System::ALL.iter().map(|s| s.id()).collect();
            format!("unknown system {s:?} (known: {})", known.join(", "))
        })
    }
}

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub system: System,
    pub instances: usize,
    pub lbs: Vec<Lb>,
}

/// The sweep's steps, in run order. Without an explicit `--lb`, every system runs
/// round-robin and `session-memory` also runs sticky: that pair is the picture of the
/// session-synchronisation problem.
pub fn steps(systems: &[System], instances: &[usize], lb: Option<&[Lb]>) -> Vec<Step> {
    let mut out = Vec::new();
    for &system in systems {
        let lbs = match lb {
            Some(list) => list.to_vec(),
            None if system.instance_local_state() => vec![Lb::Sticky, Lb::RoundRobin],
            None => vec![Lb::RoundRobin],
        };
        for &n in instances {
            // With one instance there is nothing to balance: both policies are the same
            // measurement, so it is made once (as round-robin).
            let lbs = if n == 1 && lb.is_none() { vec![Lb::RoundRobin] } else { lbs.clone() };
            out.push(Step { system, instances: n, lbs });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_ids_round_trip_and_unknown_ones_list_the_known() {
        for s in System::ALL {
            assert_eq!(s.id().parse::<System>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.id()));
        }
        let err = "jwt-none".parse::<System>().unwrap_err();
        assert!(err.contains("session-memory") && err.contains("jwt-eddsa"), "{err}");
    }

    #[test]
    fn denylist_systems_are_hs256_with_redis() {
        for (s, mode) in [(System::JwtHs256Denylist, "denylist"), (System::JwtHs256DenylistCached, "denylist-cached")] {
            assert_eq!(s.server(), Server::Jwt);
            assert_eq!(s.jwt_alg(), Some("HS256"));
            assert_eq!(s.revocation(), Some(mode));
            assert!(s.needs_redis());
        }
        assert_eq!("jwt-hs256+denylist-cached".parse::<System>(), Ok(System::JwtHs256DenylistCached));
        assert_eq!(System::JwtHs256.revocation(), Some("none"));
        assert_eq!(System::SessionRedis.revocation(), None);
        assert!(!System::JwtHs256.needs_redis());
        assert_eq!(System::ALL[5], System::JwtEddsa, "the new systems come after jwt-eddsa");
    }

    #[test]
    fn default_plan_adds_sticky_only_for_session_memory() {
        let plan = steps(&[System::SessionMemory, System::JwtHs256], &[1, 2], None);
        assert_eq!(plan.len(), 4);
        assert_eq!(plan[0].lbs, vec![Lb::RoundRobin], "N=1 needs no balancer");
        assert_eq!(plan[1].lbs, vec![Lb::Sticky, Lb::RoundRobin]);
        assert_eq!(plan[2].lbs, vec![Lb::RoundRobin]);
        let explicit = steps(&[System::JwtHs256], &[4], Some(&[Lb::Sticky]));
        assert_eq!(explicit, vec![Step { system: System::JwtHs256, instances: 4, lbs: vec![Lb::Sticky] }]);
    }
}
