//! What a run measured of each option, in the units the model needs: service demands with
//! their spread, per-route costs of issuing credentials, the revocation window, what a
//! store outage did, and state per live session. Nothing here is invented: a figure the
//! run does not hold is `None`, and the advice says so.

use serde::Serialize;

use crate::{
    drive::route::Route,
    plan::{Lb, System},
    record::{
        Results,
        chaos::{ChaosResults, Experiment},
        revocation::RevocationResults,
    },
    report::analysis::{self, Analysis, median},
};

/// A figure with the spread the run gives it: `mid` is the estimate, `lo`..`hi` its range.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub mid: f64,
    pub hi: f64,
}

impl Interval {
    pub fn exact(v: f64) -> Self {
        Self { lo: v, mid: v, hi: v }
    }

    /// Apply `f` to each end (for increasing `f`).
    pub fn map(self, f: impl Fn(f64) -> f64) -> Self {
        Self { lo: f(self.lo), mid: f(self.mid), hi: f(self.hi) }
    }
}

/// Where the store of an option lives, which decides how it grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// One Redis: commands run on one thread, so at most about one core.
    Redis,
    /// A Redis Cluster: one thread per shard.
    RedisCluster,
    /// PostgreSQL: grows with cores (assumed linear; not measured past the run's cap).
    Postgres,
}

impl StoreKind {
    fn of(system: System) -> Option<Self> {
        if system.needs_postgres() {
            Some(StoreKind::Postgres)
        } else if system.needs_cluster() {
            Some(StoreKind::RedisCluster)
        } else if system.uses_store() {
            Some(StoreKind::Redis)
        } else {
            None
        }
    }
}

/// What a store outage did to the option (from `chaos.json`, or by design when it has no
/// store to lose).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outage {
    /// No store in the request path: nothing to lose.
    NoStore,
    /// Measured: kept answering while the store was down.
    KeepsAnswering,
    /// Measured: refused requests (503) while the store was down.
    FailsClosed,
    /// Measured: the restarted store came back empty and every user had to log in again.
    LogsEveryoneOut,
    /// The run holds no chaos experiment for this option.
    NotMeasured,
}

impl Outage {
    pub fn text(self) -> &'static str {
        match self {
            Outage::NoStore => "keeps answering (no store)",
            Outage::KeepsAnswering => "keeps answering",
            Outage::FailsClosed => "fails closed (503)",
            Outage::LogsEveryoneOut => "logs everyone out",
            Outage::NotMeasured => "not measured",
        }
    }

    /// Whether it keeps answering; `None` when not measured.
    pub fn answers(self) -> Option<bool> {
        match self {
            Outage::NoStore | Outage::KeepsAnswering => Some(true),
            Outage::FailsClosed | Outage::LogsEveryoneOut => Some(false),
            Outage::NotMeasured => None,
        }
    }
}

/// A revoked credential's remaining life.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "seconds")]
pub enum Revocation {
    /// Measured: p99 of the time from the logout to the last instance refusing it.
    Measured(f64),
    /// By design: a JWT without a denylist lives until `exp` (the access-token lifetime).
    UntilExpiry,
    /// Measured, but some repeat still accepted the credential at the probe's deadline.
    NotRevoked,
    NotMeasured,
}

/// CPU per request of one route measured alone (instance and store), µs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RouteCost {
    pub instance_us: f64,
    pub store_us: Option<f64>,
}

/// Everything the model takes from the run for one option.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measured {
    pub system: System,
    pub lb: Lb,
    /// Instance CPU per authenticated read, µs: the median over the points that held at
    /// capacity; the range spans the repeats and the run at 70 % of capacity.
    pub instance_us: Interval,
    /// The control's instance CPU per request (the stack without authentication), µs.
    pub control_us: Option<f64>,
    pub store: Option<StoreKind>,
    /// Store CPU per read, µs, with the same spread.
    pub store_us: Option<Interval>,
    /// Store calls per read (each pays the round trip).
    pub store_calls: Option<f64>,
    pub login: Option<RouteCost>,
    pub refresh: Option<RouteCost>,
    pub revocation: Revocation,
    pub outage: Outage,
    /// Server-side state per live session (store or instance memory), bytes.
    pub bytes_per_session: Option<f64>,
    /// Credential bytes a client sends with every request.
    pub credential_bytes: usize,
    /// Points that held, which the demands are medians of.
    pub points: usize,
}

/// The options of a run: every scaling line but the control (session-memory sticky only,
/// since round-robin rejects by design). `mix` supplies per-route costs when the run
/// itself has none (a read run beside a mixed one).
pub fn options(
    a: &Analysis<'_>,
    mix: Option<&Results>,
    revocation: Option<&RevocationResults>,
    chaos: Option<&ChaosResults>,
) -> Vec<Measured> {
    let control_us = a.control.as_ref().and_then(|c| {
        median(c.points.iter().filter(|p| p.held).map(|p| p.cpu.per_request_us).filter(|d| d.is_finite()).collect())
    });
    let mut out: Vec<Measured> = Vec::new();
    for cost in &a.costs {
        let Some(series) = a.series_of(cost.system) else { continue };
        let held: Vec<_> = series.points.iter().copied().filter(|p| p.held).collect();
        let moderate = median(held.iter().filter_map(|p| p.latency.as_ref()?.cpu_per_request_us).collect());
        let (lo_ratio, hi_ratio) = repeat_spread(&held);
        let mid = cost.instance_us;
        let instance_us = Interval { lo: mid * lo_ratio, mid, hi: (mid * hi_ratio).max(moderate.unwrap_or(mid)) };
        let store_us = cost.store_us.map(|mid| {
            let lat = median(held.iter().filter_map(|p| p.latency.as_ref()?.store_per_request_us).collect());
            let l = lat.unwrap_or(mid);
            Interval { lo: mid.min(l), mid, hi: mid.max(l) }
        });
        let route = |r: Route| route_cost(a.results, cost.system, r).or_else(|| route_cost(mix?, cost.system, r));
        out.push(Measured {
            system: cost.system,
            lb: series.lb,
            instance_us,
            control_us,
            store: StoreKind::of(cost.system),
            store_us,
            store_calls: cost.store_commands,
            login: route(Route::Login),
            refresh: if cost.system.jwt_alg().is_some() { route(Route::Refresh) } else { None },
            revocation: revocation_of(revocation, cost.system),
            outage: outage_of(chaos, cost.system),
            bytes_per_session: bytes_per_session(a, cost.system),
            credential_bytes: analysis::jwt_credential(cost.system).unwrap_or_else(analysis::session_credential).bytes,
            points: cost.points,
        });
    }
    out
}

/// The repeats' spread of instance CPU per request, as ratios to each point's first round:
/// (median of the lowest, median of the highest); (1, 1) without repeats.
fn repeat_spread(held: &[&crate::record::Point]) -> (f64, f64) {
    let mut lows = Vec::new();
    let mut highs = Vec::new();
    for p in held {
        let rounds: Vec<f64> = p
            .rounds()
            .iter()
            .filter(|r| r.held && r.cpu_per_request_us.is_finite() && r.cpu_per_request_us > 0.0)
            .map(|r| r.cpu_per_request_us)
            .collect();
        let first = p.cpu.per_request_us;
        if rounds.len() < 2 || !(first.is_finite() && first > 0.0) {
            continue;
        }
        lows.push(rounds.iter().copied().fold(f64::INFINITY, f64::min) / first);
        highs.push(rounds.iter().copied().fold(0.0, f64::max) / first);
    }
    (median(lows).unwrap_or(1.0).min(1.0), median(highs).unwrap_or(1.0).max(1.0))
}

fn route_cost(results: &Results, system: System, route: Route) -> Option<RouteCost> {
    let d = results.route_demands.iter().find(|d| d.system == system && d.route == route)?;
    (d.instance_us.is_finite() && d.requests > 0)
        .then_some(RouteCost { instance_us: d.instance_us, store_us: d.store_us })
}

fn revocation_of(rev: Option<&RevocationResults>, system: System) -> Revocation {
    if system.revocation() == Some("none") {
        return Revocation::UntilExpiry;
    }
    match rev.and_then(|r| r.systems.iter().find(|w| w.system == system)) {
        Some(w) if w.not_revoked > 0 => Revocation::NotRevoked,
        Some(w) => w.window_ms.p99.map_or(Revocation::NotMeasured, |ms| Revocation::Measured(ms / 1e3)),
        None => Revocation::NotMeasured,
    }
}

fn outage_of(chaos: Option<&ChaosResults>, system: System) -> Outage {
    if !system.uses_store() {
        return Outage::NoStore;
    }
    let Some(chaos) = chaos else { return Outage::NotMeasured };
    let run = |e: Experiment| chaos.runs.iter().find(|r| r.experiment == e && r.system == system);
    let (freeze, restart) = (run(Experiment::StoreFreeze), run(Experiment::StoreRestart));
    if freeze.is_none() && restart.is_none() {
        return Outage::NotMeasured;
    }
    if restart.is_some_and(|r| r.users_relogged > 0) {
        return Outage::LogsEveryoneOut;
    }
    // More than 1 % of the requests of a run failing is not "kept answering".
    let failed = |r: &&crate::record::chaos::ChaosRun| {
        let all = r.totals.ok + r.totals.failed();
        all > 0 && r.totals.failed() as f64 / all as f64 > 0.01
    };
    if freeze.iter().chain(restart.iter()).any(failed) { Outage::FailsClosed } else { Outage::KeepsAnswering }
}

/// State per live session: on the live-sessions axis, the growth from its smallest to its
/// largest count (instance RSS has no empty baseline) or over each point's own baseline;
/// else the store's growth over the login phase of the main points.
fn bytes_per_session(a: &Analysis<'_>, system: System) -> Option<f64> {
    let live: Vec<&crate::record::LivePoint> =
        a.live.iter().filter(|p| p.system == system).filter_map(|p| p.live.as_ref()).collect();
    let smallest = live.iter().min_by_key(|l| l.sessions);
    let largest = live.iter().max_by_key(|l| l.sessions);
    let slope = match (smallest, largest) {
        (Some(s), Some(l)) if l.sessions > s.sessions => {
            Some((l.state_bytes as f64 - s.state_bytes as f64) / (l.sessions - s.sessions) as f64)
        }
        _ => median(live.iter().filter_map(|l| l.bytes_per_session()).collect()),
    };
    slope.filter(|b| *b > 0.0).or_else(|| {
        let series = a.series_of(system)?;
        median(series.points.iter().filter_map(|p| p.store.as_ref()?.bytes_per_session).filter(|b| *b > 0.0).collect())
    })
}
