//! A system under test: what its identity is made of, and its one canonical string form.
//!
//! Every system is a point in a few independent axes — which server family authenticates
//! (and with which JWT algorithm), where per-request state lives, which verifier checks a
//! token, how a logout reaches a token, how many shards the store has, and which balancer
//! spreads the load. The string form (`session-redis`, `jwt-hs256+denylist-cached`) is the
//! id used in flags, results files and the report; it is built from the axes and parsed
//! back into them by one grammar, so a new variant extends the grammar instead of inventing
//! a string of its own:
//!
//! ```text
//! system   = "control" | family [ "@" verifier ] [ "+" modifier ]
//! family   = "session-" store | "jwt-" alg
//! store    = "memory" | "redis" | "postgres" | "redis-cluster"
//! alg      = "hs256" | "rs256" | "es256" | "eddsa"
//! verifier = "stock"                                  (jwt only)
//! modifier = revocation                               (jwt)
//!          | "touch"                                  (session-postgres)
//!          | "cached"                                 (session-redis)
//! revocation = "denylist" | "denylist-cached"
//! ```
//!
//! The verifier's default (`jwt-server --jwt-verifier cached`, the key kept parsed) adds
//! nothing to the string; shards (1) and balancer (`client`, the generator's own) have one
//! value each today and add nothing either; [`System::ALL`] lists the systems that can
//! be built and run, and parsing refuses anything else with the list of known ids.

use std::{cmp::Ordering, fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `+touch` systems write a session's sliding expiry only after this fraction of the idle
/// timeout has passed since it was last written (3 min of the default 30).
pub const TOUCH_FRACTION: f64 = 0.1;

/// `+cached` systems serve a local copy of a session for at most this long
/// (`--session-cache-ttl`): well below the 30-minute idle timeout, so the sliding expiry
/// in Redis stays true (a copy is re-read, and the expiry slid, once per lifetime).
pub const SESSION_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Which server authenticates, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// The control line: `session-server --control`, whose `/me` answers without reading
    /// or checking the credential — the rig and the server stack, no authentication.
    Control,
    /// `session-server`: an opaque id in a cookie, state on the server side.
    Session,
    /// `jwt-server`: a signed access token that carries the state.
    Jwt(Alg),
}

/// JWT signature algorithm (`--alg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    Hs256,
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    /// The name in system ids (`jwt-hs256`).
    pub fn id(self) -> &'static str {
        match self {
            Alg::Hs256 => "hs256",
            Alg::Rs256 => "rs256",
            Alg::Es256 => "es256",
            Alg::EdDsa => "eddsa",
        }
    }

    /// The server's `--alg` value.
    pub fn flag(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    const ALL: [Alg; 4] = [Alg::Hs256, Alg::Rs256, Alg::Es256, Alg::EdDsa];
}

/// Where the state an authenticated request needs lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// Nowhere but the token: nothing is looked up per request.
    None,
    /// Each instance's own memory: only the instance that holds a session can use it.
    Memory,
    /// One shared Redis.
    Redis,
    /// One shared PostgreSQL.
    Postgres,
    /// A Redis Cluster: sessions spread over its shards (`--store-shards`).
    RedisCluster,
}

impl StoreKind {
    fn id(self) -> &'static str {
        match self {
            StoreKind::None => "none",
            StoreKind::Memory => "memory",
            StoreKind::Redis => "redis",
            StoreKind::Postgres => "postgres",
            StoreKind::RedisCluster => "redis-cluster",
        }
    }
}

/// What checks a token's signature and claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verifier {
    /// The server's own path: jsonwebtoken behind `TokenService` with the key kept parsed
    /// (`--jwt-verifier cached`); sessions have no token and carry this value too.
    Builtin,
    /// jsonwebtoken's own verifier, the key parsed per request (`--jwt-verifier stock`):
    /// what the library's call path costs.
    Stock,
}

impl Verifier {
    /// jwt-server's `--jwt-verifier` value.
    pub fn flag(self) -> &'static str {
        match self {
            Verifier::Builtin => "cached",
            Verifier::Stock => "stock",
        }
    }
}

/// How a JWT logout reaches the access token (`--revocation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// It does not: the token works until `exp`.
    None,
    /// Denied token ids in the store, checked per request.
    Denylist,
    /// Denied token ids in the store, copied to every instance through pub/sub.
    DenylistCached,
}

impl Revocation {
    /// The server's `--revocation` value.
    pub fn flag(self) -> &'static str {
        match self {
            Revocation::None => "none",
            Revocation::Denylist => "denylist",
            Revocation::DenylistCached => "denylist-cached",
        }
    }
}

/// Where the load is spread over the instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Balancer {
    /// In the load generator itself, by the run's `lb` policy.
    Client,
}

/// Which server binary runs a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Session,
    Jwt,
}

/// A system under test. Its string form is its id everywhere (flags, results, report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct System {
    pub family: Family,
    pub store: StoreKind,
    pub verifier: Verifier,
    /// `None` for sessions, whose logout deletes the state itself.
    pub revocation: Revocation,
    /// Shards of the store (1: a single store, or none).
    pub shards: u16,
    /// Sessions in PostgreSQL only: the sliding expiry is written only when
    /// `--touch-after` ([`TOUCH_FRACTION`] of the idle timeout) has passed since it was
    /// last written, instead of on every request (`+touch`).
    pub touch: bool,
    /// Sessions in Redis only: each instance keeps a local copy of the sessions it reads
    /// for [`SESSION_CACHE_TTL`], dropped on logout through pub/sub (`+cached`).
    pub cached: bool,
    pub balancer: Balancer,
}

impl System {
    const fn session(store: StoreKind) -> Self {
        System {
            family: Family::Session,
            store,
            verifier: Verifier::Builtin,
            revocation: Revocation::None,
            shards: 1,
            touch: false,
            cached: false,
            balancer: Balancer::Client,
        }
    }

    const fn jwt(alg: Alg, revocation: Revocation) -> Self {
        let store = match revocation {
            Revocation::None => StoreKind::None,
            Revocation::Denylist | Revocation::DenylistCached => StoreKind::Redis,
        };
        System {
            family: Family::Jwt(alg),
            store,
            verifier: Verifier::Builtin,
            revocation,
            shards: 1,
            touch: false,
            cached: false,
            balancer: Balancer::Client,
        }
    }

    /// The control line, measured beside the systems (see [`Family::Control`]).
    pub const CONTROL: System = System {
        family: Family::Control,
        store: StoreKind::None,
        verifier: Verifier::Builtin,
        revocation: Revocation::None,
        shards: 1,
        touch: false,
        cached: false,
        balancer: Balancer::Client,
    };
    pub const SESSION_MEMORY: System = System::session(StoreKind::Memory);
    pub const SESSION_REDIS: System = System::session(StoreKind::Redis);
    /// Sessions in PostgreSQL, the sliding expiry written on every request.
    pub const SESSION_POSTGRES: System = System::session(StoreKind::Postgres);
    /// Sessions in a Redis Cluster of `--store-shards` primaries.
    pub const SESSION_REDIS_CLUSTER: System = System::session(StoreKind::RedisCluster);
    /// Sessions in PostgreSQL with the touch-throttled expiry (`+touch`).
    pub const SESSION_POSTGRES_TOUCH: System = System { touch: true, ..System::session(StoreKind::Postgres) };
    /// Sessions in Redis with a local copy in each instance (`+cached`).
    pub const SESSION_REDIS_CACHED: System = System { cached: true, ..System::session(StoreKind::Redis) };
    pub const JWT_HS256: System = System::jwt(Alg::Hs256, Revocation::None);
    pub const JWT_RS256: System = System::jwt(Alg::Rs256, Revocation::None);
    pub const JWT_ES256: System = System::jwt(Alg::Es256, Revocation::None);
    pub const JWT_EDDSA: System = System::jwt(Alg::EdDsa, Revocation::None);
    /// HS256 with `--revocation denylist`: logout denies the token in Redis, every request
    /// checks it there.
    pub const JWT_HS256_DENYLIST: System = System::jwt(Alg::Hs256, Revocation::Denylist);
    /// HS256 with `--revocation denylist-cached`: a local denylist per instance, kept
    /// current through Redis pub/sub.
    pub const JWT_HS256_DENYLIST_CACHED: System = System::jwt(Alg::Hs256, Revocation::DenylistCached);
    /// The plain JWT systems with jsonwebtoken's own verifier (`@stock`): the library's
    /// call path, beside the server's default.
    pub const JWT_HS256_STOCK: System = System::jwt(Alg::Hs256, Revocation::None).with_verifier(Verifier::Stock);
    pub const JWT_RS256_STOCK: System = System::jwt(Alg::Rs256, Revocation::None).with_verifier(Verifier::Stock);
    pub const JWT_ES256_STOCK: System = System::jwt(Alg::Es256, Revocation::None).with_verifier(Verifier::Stock);
    pub const JWT_EDDSA_STOCK: System = System::jwt(Alg::EdDsa, Revocation::None).with_verifier(Verifier::Stock);

    const fn with_verifier(self, verifier: Verifier) -> Self {
        System { verifier, ..self }
    }

    /// Every system that can be run, in the order results and the report list them (the
    /// control last: it is not a contender).
    pub const ALL: [System; 17] = [
        System::SESSION_MEMORY,
        System::SESSION_REDIS,
        System::JWT_HS256,
        System::JWT_RS256,
        System::JWT_ES256,
        System::JWT_EDDSA,
        System::JWT_HS256_DENYLIST,
        System::JWT_HS256_DENYLIST_CACHED,
        System::JWT_HS256_STOCK,
        System::JWT_RS256_STOCK,
        System::JWT_ES256_STOCK,
        System::JWT_EDDSA_STOCK,
        System::SESSION_POSTGRES,
        System::SESSION_POSTGRES_TOUCH,
        System::SESSION_REDIS_CLUSTER,
        System::SESSION_REDIS_CACHED,
        System::CONTROL,
    ];

    /// The canonical string form (see the module's grammar).
    pub fn id(self) -> String {
        self.to_string()
    }

    pub fn server(self) -> Server {
        match self.family {
            Family::Session | Family::Control => Server::Session,
            Family::Jwt(_) => Server::Jwt,
        }
    }

    /// Systems whose requests touch the shared Redis.
    pub fn needs_redis(self) -> bool {
        self.store == StoreKind::Redis
    }

    /// Systems whose requests touch the shared PostgreSQL.
    pub fn needs_postgres(self) -> bool {
        self.store == StoreKind::Postgres
    }

    /// Systems whose requests touch a Redis Cluster.
    pub fn needs_cluster(self) -> bool {
        self.store == StoreKind::RedisCluster
    }

    /// Systems whose requests touch a shared store (Redis, PostgreSQL or a Redis Cluster).
    pub fn uses_store(self) -> bool {
        self.needs_redis() || self.needs_postgres() || self.needs_cluster()
    }

    /// Systems the live-sessions axis can preload: sessions in memory (a server flag), in
    /// Redis or PostgreSQL (written straight into the store), and JWT refresh-token
    /// families (a server flag). Not the Redis Cluster (its keys would have to be written
    /// shard by shard) nor the control, which holds no credential.
    pub fn supports_live(self) -> bool {
        match self.family {
            Family::Control => false,
            Family::Jwt(_) => true,
            Family::Session => matches!(self.store, StoreKind::Memory | StoreKind::Redis | StoreKind::Postgres),
        }
    }

    /// `--touch-after` for `idle` (the session idle timeout), for `+touch` systems.
    pub fn touch_after(self, idle: std::time::Duration) -> Option<std::time::Duration> {
        self.touch.then(|| idle.mul_f64(TOUCH_FRACTION))
    }

    /// `--revocation` value for JWT systems (`None` for sessions). Passed explicitly even
    /// for `none`, so an `AUTHBENCH_REVOCATION` in the environment cannot change a system.
    pub fn revocation(self) -> Option<&'static str> {
        match self.family {
            Family::Session | Family::Control => None,
            Family::Jwt(_) => Some(self.revocation.flag()),
        }
    }

    /// `--jwt-verifier` value for JWT systems (`None` for sessions). Passed explicitly,
    /// so an `AUTHBENCH_JWT_VERIFIER` in the environment cannot change a system.
    pub fn jwt_verifier(self) -> Option<&'static str> {
        match self.family {
            Family::Session | Family::Control => None,
            Family::Jwt(_) => Some(self.verifier.flag()),
        }
    }

    /// `--alg` value for JWT systems.
    pub fn jwt_alg(self) -> Option<&'static str> {
        match self.family {
            Family::Jwt(alg) => Some(alg.flag()),
            Family::Session | Family::Control => None,
        }
    }

    /// Per-instance state: requests only work on the instance that holds the session.
    pub fn instance_local_state(self) -> bool {
        self.store == StoreKind::Memory
    }

    /// Behind `lb` at `instances`, most requests reach an instance without the session, by
    /// design: instance-local state, round-robin, more than one instance.
    pub fn rejects_by_design(self, lb: super::Lb, instances: usize) -> bool {
        self.instance_local_state() && !lb.sticky() && instances > 1
    }

    /// The control line rather than a system under test.
    pub fn is_control(self) -> bool {
        self.family == Family::Control
    }

    /// Position in [`System::ALL`]: the order of tables, legends and charts.
    fn rank(self) -> usize {
        System::ALL.iter().position(|s| *s == self).unwrap_or(usize::MAX)
    }

    /// Parse the grammar alone, without asking whether the system can be built.
    fn parse(s: &str) -> Option<System> {
        if s == "control" {
            return Some(System::CONTROL);
        }
        let (family, modifier) = match s.split_once('+') {
            Some((f, m)) => (f, Some(m)),
            None => (s, None),
        };
        let (family, verifier) = match family.split_once('@') {
            Some((f, "stock")) => (f, Verifier::Stock),
            Some(_) => return None,
            None => (family, Verifier::Builtin),
        };
        if let Some(store) = family.strip_prefix("session-") {
            let store = [StoreKind::Memory, StoreKind::Redis, StoreKind::Postgres, StoreKind::RedisCluster]
                .into_iter()
                .find(|x| x.id() == store)?;
            let (touch, cached) = match modifier {
                None => (false, false),
                Some("touch") => (true, false),
                Some("cached") => (false, true),
                Some(_) => return None,
            };
            return (verifier == Verifier::Builtin).then_some(System { touch, cached, ..System::session(store) });
        }
        let alg = family.strip_prefix("jwt-")?;
        let alg = Alg::ALL.into_iter().find(|a| a.id() == alg)?;
        let revocation = match modifier {
            None => Revocation::None,
            Some("denylist") => Revocation::Denylist,
            Some("denylist-cached") => Revocation::DenylistCached,
            Some(_) => return None,
        };
        Some(System::jwt(alg, revocation).with_verifier(verifier))
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut id = match self.family {
            Family::Control => "control".to_owned(),
            Family::Session => format!("session-{}", self.store.id()),
            Family::Jwt(alg) => format!("jwt-{}", alg.id()),
        };
        if matches!(self.family, Family::Jwt(_)) && self.verifier != Verifier::Builtin {
            id.push('@');
            id.push_str(self.verifier.flag());
        }
        if matches!(self.family, Family::Jwt(_)) && self.revocation != Revocation::None {
            id.push('+');
            id.push_str(self.revocation.flag());
        }
        if self.touch {
            id.push_str("+touch");
        }
        if self.cached {
            id.push_str("+cached");
        }
        // `pad`, so `{:<25}` lines tables up.
        f.pad(&id)
    }
}

impl FromStr for System {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        System::parse(s).filter(|sys| System::ALL.contains(sys)).ok_or_else(|| {
            let known: Vec<_> = System::ALL.iter().map(|s| s.id()).collect();
            format!("unknown system {s:?} (known: {})", known.join(", "))
        })
    }
}

impl Ord for System {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank()).then_with(|| self.id().cmp(&other.id()))
    }
}

impl PartialOrd for System {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for System {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for System {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_ids_round_trip_and_unknown_ones_list_the_known() {
        for s in System::ALL {
            assert_eq!(s.id().parse::<System>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.id()));
            assert_eq!(serde_json::from_str::<System>(&format!("\"{s}\"")).unwrap(), s);
        }
        let err = "jwt-none".parse::<System>().unwrap_err();
        assert!(err.contains("session-memory") && err.contains("jwt-eddsa"), "{err}");
        assert!(serde_json::from_str::<System>("\"jwt-hs512\"").is_err());
    }

    #[test]
    fn the_ids_are_the_ones_results_files_hold() {
        let ids: Vec<String> = System::ALL.iter().map(|s| s.id()).collect();
        assert_eq!(
            ids,
            [
                "session-memory",
                "session-redis",
                "jwt-hs256",
                "jwt-rs256",
                "jwt-es256",
                "jwt-eddsa",
                "jwt-hs256+denylist",
                "jwt-hs256+denylist-cached",
                "jwt-hs256@stock",
                "jwt-rs256@stock",
                "jwt-es256@stock",
                "jwt-eddsa@stock",
                "session-postgres",
                "session-postgres+touch",
                "session-redis-cluster",
                "session-redis+cached",
                "control"
            ]
        );
        assert_eq!(format!("[{:<16}]", System::JWT_HS256), "[jwt-hs256       ]", "pads like a str");
    }

    #[test]
    fn the_grammar_refuses_what_cannot_be_built() {
        for bad in [
            "session-redis+denylist",
            "jwt-rs256+cache",
            "session-",
            "jwt-hs256+",
            "session-none",
            "",
            "control+denylist",
            "session-redis@stock",
            "jwt-hs256@cached",
            "jwt-hs256@",
            "control@stock",
            "session-postgres+denylist",
            "jwt-hs256+touch",
            "session-postgres@stock",
            "session-redis+cached+touch",
            "jwt-hs256+cached",
        ] {
            assert!(bad.parse::<System>().is_err(), "{bad}");
        }
        // Parsed by the grammar but not built: touch throttling is PostgreSQL's, a denylist
        // needs HS256 in this project.
        assert!(System::parse("session-redis+touch").is_some());
        assert!("session-redis+touch".parse::<System>().is_err());
        assert!(
            "session-postgres+cached".parse::<System>().is_err() && "session-memory+cached".parse::<System>().is_err()
        );
        assert!(System::SESSION_REDIS_CACHED.needs_redis());
        assert!(System::parse("jwt-es256+denylist").is_some());
        assert!("jwt-es256+denylist".parse::<System>().is_err());
    }

    #[test]
    fn order_is_the_order_of_all() {
        let mut v = System::ALL.to_vec();
        v.reverse();
        v.sort();
        assert_eq!(v, System::ALL);
    }

    #[test]
    fn axes_follow_from_the_identity() {
        for (s, mode) in
            [(System::JWT_HS256_DENYLIST, "denylist"), (System::JWT_HS256_DENYLIST_CACHED, "denylist-cached")]
        {
            assert_eq!(s.server(), Server::Jwt);
            assert_eq!(s.jwt_alg(), Some("HS256"));
            assert_eq!(s.revocation(), Some(mode));
            assert!(s.needs_redis());
        }
        assert_eq!(System::JWT_HS256.revocation(), Some("none"));
        assert_eq!(System::JWT_HS256.jwt_verifier(), Some("cached"));
        assert_eq!(System::JWT_RS256_STOCK.jwt_verifier(), Some("stock"));
        assert_eq!(System::JWT_RS256_STOCK.jwt_alg(), Some("RS256"));
        assert_eq!(System::SESSION_REDIS.jwt_verifier(), None);
        // Parsed by the grammar, not built: the stock verifier is measured on plain JWT.
        assert!(System::parse("jwt-hs256@stock+denylist").is_some());
        assert!("jwt-hs256@stock+denylist".parse::<System>().is_err());
        assert_eq!(System::SESSION_REDIS.revocation(), None);
        assert!(!System::JWT_HS256.needs_redis());
        assert!(System::SESSION_MEMORY.instance_local_state());
        assert!(!System::SESSION_REDIS.instance_local_state());
        assert_eq!(System::JWT_EDDSA.jwt_alg(), Some("EdDSA"));
        assert_eq!(System::ALL[5], System::JWT_EDDSA, "the new systems come after jwt-eddsa");
        assert_eq!(System::CONTROL.server(), Server::Session);
        assert!(System::CONTROL.is_control() && !System::SESSION_MEMORY.is_control());
        assert!(!System::CONTROL.needs_redis() && !System::CONTROL.instance_local_state());
        assert_eq!((System::CONTROL.jwt_alg(), System::CONTROL.revocation()), (None, None));
    }
}
