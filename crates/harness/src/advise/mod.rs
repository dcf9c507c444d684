//! `authbench advise`: carry a run's measured service demands to a user's deployment.
//!
//! For every option the run measured ([`measured::options`]) the model sizes the
//! instances and the store by the utilization law at a target utilization, estimates the
//! latency authentication adds with M/M/c waits ([`queue`]) plus the store's round trip per
//! call, prices issuing credentials (logins and refreshes from the user profile, at the
//! per-route demands of a mixed run), and checks the hard requirements (revocation window,
//! answering through a store outage, a p99 objective). Options that fail one are excluded
//! with the reason; the rest are ranked by the cores they need. The method is stated in
//! `docs/advise.md`; [`validate`] checks it against the run's own points.

mod examples;
pub mod measured;
pub mod queue;
pub mod render;
#[cfg(test)]
mod tests;
pub mod validate;

use std::time::Duration;

use serde::Serialize;

pub use examples::examples;
pub use measured::{Interval, Measured, Outage, Revocation, StoreKind};
use queue::{Station, units_needed};
pub use render::{fmt_cores, fmt_rate, fmt_secs};

use crate::{
    plan::{Lb, System},
    record::{Results, chaos::ChaosResults, revocation::RevocationResults},
    report::analysis::Analysis,
    workload::profile::UserProfile,
};

/// The user's deployment and requirements.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Params {
    /// Authenticated requests per second at the peak.
    pub peak_rps: f64,
    /// Cores per instance.
    pub instance_cores: f64,
    /// The application's own CPU per request on top of authentication, seconds.
    #[serde(with = "crate::record::secs")]
    pub app_cpu: Duration,
    /// Network round trip from an instance to the store, per store call.
    #[serde(with = "crate::record::secs")]
    pub store_rtt: Duration,
    /// The longest a revoked credential may keep working (`None`: no requirement).
    #[serde(with = "crate::record::opt_secs")]
    pub revocation: Option<Duration>,
    /// Session length, reads per user per minute, access-token lifetime.
    pub profile: UserProfile,
    /// The service must keep answering while the store is down.
    pub survive_store_outage: bool,
    /// Live sessions to hold (`None`: the profile's active users at the peak).
    pub live_sessions: Option<u64>,
    /// p99 objective of an authenticated read (application included).
    #[serde(with = "crate::record::opt_secs")]
    pub slo_p99: Option<Duration>,
    /// Requests per day (`None`: the peak all day, an upper bound).
    pub requests_per_day: Option<f64>,
    /// Utilization each resource is sized to.
    pub target_utilization: f64,
}

impl Params {
    /// Logins per second: one per session, active users / session length.
    pub fn logins_per_s(&self) -> f64 {
        self.active_users() / self.profile.session_length.as_secs_f64()
    }

    /// Refreshes per second of a JWT server.
    pub fn refreshes_per_s(&self) -> f64 {
        self.logins_per_s() * self.profile.refreshes_per_session(crate::plan::Server::Jwt)
    }

    /// Signed-in users behind the peak.
    pub fn active_users(&self) -> f64 {
        self.peak_rps * self.profile.users_per_rps()
    }

    pub fn sessions(&self) -> f64 {
        self.live_sessions.map_or(self.active_users(), |n| n as f64)
    }

    pub fn requests_per_day(&self) -> f64 {
        self.requests_per_day.unwrap_or(self.peak_rps * 86_400.0)
    }
}

/// The plan for one option at the user's parameters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub system: System,
    pub lb: Lb,
    /// Instances needed (`lo`..`hi` from the demands' range).
    pub instances: [u32; 3],
    /// Redis shards (one thread each) or PostgreSQL cores; `None` without a store.
    pub store_units: Option<[u32; 3]>,
    pub store: Option<StoreKind>,
    /// Instance cores plus store cores at the estimate.
    pub cores: f64,
    /// The resource at the highest utilization at this plan: the first to saturate.
    pub first_to_saturate: &'static str,
    pub instance_utilization: f64,
    pub store_utilization: Option<f64>,
    /// Authentication's share of an instance's CPU (credential checks, logins, refreshes).
    pub auth_share: f64,
    /// Latency authentication adds to a read, p50 and p99, seconds.
    pub auth_p50_s: f64,
    pub auth_p99_s: f64,
    /// A read's whole p99 (application included), seconds.
    pub read_p99_s: f64,
    /// Logins and refreshes per second, and the cores they take (instances and store).
    pub logins_per_s: f64,
    pub refreshes_per_s: f64,
    pub issuing_cores: Option<f64>,
    pub revocation: Revocation,
    /// The revocation window in seconds (`None`: not measured; ∞ never revoked).
    pub revocation_s: Option<f64>,
    pub outage: Outage,
    /// Server-side memory for the live sessions, bytes.
    pub session_memory_bytes: Option<f64>,
    /// Credential bytes on the wire per day.
    pub wire_bytes_per_day: f64,
    /// Why the option fails a hard requirement (empty: it does not).
    pub excluded: Vec<String>,
    /// Hard requirements the run cannot check for this option (a figure not measured).
    pub unchecked: Vec<String>,
    /// Figures that were extrapolated or are missing.
    pub notes: Vec<String>,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Advice {
    pub run_id: String,
    pub machine: String,
    pub params: Params,
    /// Ranked options first (fewest cores), then the excluded ones.
    pub plans: Vec<Plan>,
    /// Why the first option wins, in one or two reasons.
    pub reasons: Vec<String>,
    /// Notes about the whole answer (what the run measured and what it did not).
    pub notes: Vec<String>,
}

/// Answer `params` from a run: `results` with its experiments, and `mix` (a mixed run)
/// for the per-route costs when `results` has none.
pub fn advise(
    results: &Results,
    revocation: Option<&RevocationResults>,
    chaos: Option<&ChaosResults>,
    mix: Option<&Results>,
    params: &Params,
) -> Advice {
    let mut a = Analysis::new(results);
    a.revocation = revocation;
    a.chaos = chaos;
    let options = measured::options(&a, mix, revocation, chaos);
    let mut notes = run_notes(results, revocation, chaos, mix, params);
    if options.is_empty() {
        notes.push("The run holds no system with a point that held its rate: nothing to size".into());
    }
    let priced = !results.route_demands.is_empty() || mix.is_some_and(|m| !m.route_demands.is_empty());
    let mut plans: Vec<Plan> = options.iter().map(|m| plan(m, params, priced)).collect();
    // Ranked: options that meet every requirement by cores, then p99; then those with a
    // requirement the run cannot check; the excluded last.
    plans.sort_by(|x, y| {
        (!x.excluded.is_empty())
            .cmp(&!y.excluded.is_empty())
            .then((!x.unchecked.is_empty()).cmp(&!y.unchecked.is_empty()))
            .then(x.cores.total_cmp(&y.cores))
            .then(x.read_p99_s.total_cmp(&y.read_p99_s))
            .then(x.system.cmp(&y.system))
    });
    let reasons = reasons(&plans, params);
    if let Some(top) = plans.first().filter(|p| p.excluded.is_empty())
        && !top.notes.is_empty()
    {
        notes.push(format!("{}: {}", top.system, top.notes.join("; ")));
    }
    // One note per unchecked requirement, naming every option it applies to.
    let mut unchecked: Vec<(&str, Vec<String>)> = Vec::new();
    for p in plans.iter().filter(|p| p.excluded.is_empty()) {
        for u in &p.unchecked {
            match unchecked.iter_mut().find(|(w, _)| w == u) {
                Some((_, systems)) => systems.push(p.system.to_string()),
                None => unchecked.push((u, vec![p.system.to_string()])),
            }
        }
    }
    for (what, systems) in unchecked {
        notes.push(format!("Requirement unchecked ({what}) for {}", systems.join(", ")));
    }
    Advice {
        run_id: results.run_id.clone(),
        machine: format!("{} ({} cores)", results.machine.cpu_model, results.machine.cores),
        params: params.clone(),
        plans,
        reasons,
        notes,
    }
}

/// What the run measured and what the answer therefore extrapolates.
fn run_notes(
    results: &Results,
    revocation: Option<&RevocationResults>,
    chaos: Option<&ChaosResults>,
    mix: Option<&Results>,
    params: &Params,
) -> Vec<String> {
    let mut notes = Vec::new();
    let cap = results.caps.instance_cpu;
    if results.caps.capped && (params.instance_cores - cap).abs() > 1e-9 {
        notes.push(format!(
            "Instances of {} cores: demands measured at {cap} core per instance are assumed to hold per core (extrapolated)",
            params.instance_cores
        ));
    }
    if !params.store_rtt.is_zero() {
        let measured: Vec<f64> =
            results.config.store_rtt_values().filter(|d| !d.is_zero()).map(|d| d.as_secs_f64() * 1e6).collect();
        notes.push(if measured.is_empty() {
            format!(
                "Store RTT {}: the run measured a local store only; the round trip is added per store call as a constant \
                 (extrapolated)",
                fmt_secs(params.store_rtt.as_secs_f64())
            )
        } else {
            format!(
                "Store RTT {}: added per store call as a constant (the run measured {} µs)",
                fmt_secs(params.store_rtt.as_secs_f64()),
                measured.iter().map(|u| format!("{u:.0}")).collect::<Vec<_>>().join(", ")
            )
        });
    }
    if revocation.is_none() && params.revocation.is_some() {
        notes.push(
            "No revocation.json in the run: only JWTs without a denylist (which live until `exp`) can be checked against \
             the revocation requirement"
                .into(),
        );
    }
    if chaos.is_none() && params.survive_store_outage {
        notes.push(
            "No chaos.json in the run: what a store outage does is known only for options without a store".into(),
        );
    }
    if results.route_demands.is_empty() && mix.is_none_or(|m| m.route_demands.is_empty()) {
        notes.push(
            "No per-route demands (a mixed run measures them; give one with --mix-from): logins and refreshes are not \
             priced"
                .into(),
        );
    }
    notes
}

fn plan(m: &Measured, p: &Params, priced_anywhere: bool) -> Plan {
    let c = p.instance_cores;
    let app = p.app_cpu.as_secs_f64();
    let logins = p.logins_per_s();
    let refreshes = if m.system.jwt_alg().is_some() { p.refreshes_per_s() } else { 0.0 };
    let mut notes = Vec::new();
    // Instance work per second (cores busy), at each end of the demand's range.
    let issuing_inst = match (m.login, m.refresh, refreshes > 0.0) {
        (Some(l), Some(r), true) => Some(logins * l.instance_us + refreshes * r.instance_us),
        (Some(l), _, false) => Some(logins * l.instance_us),
        _ => None,
    }
    .map(|us| us / 1e6);
    if issuing_inst.is_none() && priced_anywhere {
        notes.push("logins/refreshes not priced (the per-route demands do not cover it)".into());
    }
    let busy = |d_us: f64| p.peak_rps * (d_us / 1e6 + app) + issuing_inst.unwrap_or(0.0);
    let target = p.target_utilization;
    let inst = |d_us: f64| units_needed(busy(d_us), c, target, 1);
    let mut instances = [inst(m.instance_us.lo), inst(m.instance_us.mid), inst(m.instance_us.hi)];

    // The store: Redis shards of one thread, or PostgreSQL cores.
    let issuing_store = m.login.and_then(|l| l.store_us).unwrap_or(0.0) * logins / 1e6
        + m.refresh.and_then(|r| r.store_us).unwrap_or(0.0) * refreshes / 1e6;
    let store_busy = |d_us: f64| p.peak_rps * d_us / 1e6 + issuing_store;
    let store_units = m.store_us.map(|d| {
        let units = |us: f64| units_needed(store_busy(us), 1.0, target, 1);
        [units(d.lo), units(d.mid), units(d.hi)]
    });
    if m.store.is_some() && m.store_us.is_none() {
        notes.push("store CPU not measured: the store is not sized".into());
    }
    if let (Some(StoreKind::Redis), Some(u)) = (m.store, store_units)
        && u[1] > 1
    {
        notes.push(format!(
            "one Redis thread cannot carry it: {} shards needed (session-redis-cluster is the measured sharded form)",
            u[1]
        ));
    }
    let store_cores = store_units.map_or(0.0, |u| f64::from(u[1]));

    // The instances' work at the estimate, and the requests it is spread over: logins and
    // refreshes only when priced.
    let load = Load {
        busy: busy(m.instance_us.mid),
        requests: p.peak_rps + if issuing_inst.is_some() { logins + refreshes } else { 0.0 },
    };
    let mut auth = latency(m, p, instances[1], store_units.map(|u| u[1]), load);
    let mut excluded = Vec::new();
    let mut unchecked = Vec::new();
    if m.system.instance_local_state() {
        notes.push("an instance lost logs out the users whose sessions it held".into());
    }
    if let Some(slo) = p.slo_p99.map(|d| d.as_secs_f64()) {
        // More instances shorten the queue at the instances; the store's part stays.
        let most = instances[1].saturating_mul(8).max(instances[1] + 8);
        while auth.read_p99 > slo && instances[1] < most {
            instances[1] += 1;
            auth = latency(m, p, instances[1], store_units.map(|u| u[1]), load);
        }
        instances[2] = instances[2].max(instances[1]);
        if auth.read_p99 > slo {
            excluded.push(format!(
                "p99 {} > objective {} at any instance count (the floor: service time and store round trips)",
                fmt_secs(auth.read_p99),
                fmt_secs(slo)
            ));
        }
    }
    let revocation_s = match m.revocation {
        Revocation::Measured(s) => Some(s),
        Revocation::UntilExpiry => Some(p.profile.access_ttl.as_secs_f64()),
        Revocation::NotRevoked => Some(f64::INFINITY),
        Revocation::NotMeasured => None,
    };
    if let Some(req) = p.revocation.map(|d| d.as_secs_f64()) {
        match revocation_s {
            Some(w) if w > req => excluded.push(format!(
                "revocation window {} > required {}",
                if w.is_finite() { fmt_secs(w) } else { "never (some repeat)".into() },
                fmt_secs(req)
            )),
            None => unchecked.push("revocation window not measured".to_string()),
            _ => {}
        }
    }
    if p.survive_store_outage {
        match m.outage.answers() {
            Some(false) => excluded.push(format!("store outage: {}", m.outage.text())),
            None => unchecked.push("store outage not measured".to_string()),
            Some(true) => {}
        }
    }
    let auth_busy = load.busy - p.peak_rps * (app + m.control_us.unwrap_or(0.0) / 1e6);
    Plan {
        system: m.system,
        lb: m.lb,
        instances,
        store_units,
        store: m.store,
        cores: f64::from(instances[1]) * c + store_cores,
        first_to_saturate: match auth.store_utilization {
            Some(s) if s > auth.instance_utilization => "store",
            _ => "instances",
        },
        instance_utilization: auth.instance_utilization,
        store_utilization: auth.store_utilization,
        auth_share: (auth_busy / load.busy).clamp(0.0, 1.0),
        auth_p50_s: auth.added_p50,
        auth_p99_s: auth.added_p99,
        read_p99_s: auth.read_p99,
        logins_per_s: logins,
        refreshes_per_s: refreshes,
        issuing_cores: issuing_inst.map(|i| i + issuing_store),
        revocation: m.revocation,
        revocation_s,
        outage: m.outage,
        session_memory_bytes: session_memory(m, p, &mut notes),
        wire_bytes_per_day: m.credential_bytes as f64 * p.requests_per_day(),
        excluded,
        unchecked,
        notes,
    }
}

/// Server-side memory for the live sessions (for JWT servers, their refresh families).
fn session_memory(m: &Measured, p: &Params, notes: &mut Vec<String>) -> Option<f64> {
    if m.bytes_per_session.is_none() {
        notes.push("bytes per session not measured (a run with --live-sessions measures them)".into());
    }
    m.bytes_per_session.map(|b| b * p.sessions())
}

/// The instances' work per second at a plan's estimate (cores busy), and the requests per
/// second it is spread over.
#[derive(Clone, Copy)]
struct Load {
    busy: f64,
    requests: f64,
}

/// The latency figures of one plan.
struct Latency {
    instance_utilization: f64,
    store_utilization: Option<f64>,
    added_p50: f64,
    added_p99: f64,
    read_p99: f64,
}

/// A read's response at the plan: its service at the instance plus the wait there (M/M/c
/// over every request the instance serves), plus, per store call, the round trip, and the
/// store's own service and wait. Authentication's part: that response less the same read
/// without authentication (the control's demand, no store, no logins) on the same instances.
fn latency(m: &Measured, p: &Params, instances: u32, shards: Option<u32>, load: Load) -> Latency {
    let c = p.instance_cores;
    let n = f64::from(instances);
    let app = p.app_cpu.as_secs_f64();
    let d = m.instance_us.mid / 1e6;
    let with = Station::cpu(c, load.busy / n, load.busy / load.requests);
    let ctl = m.control_us.unwrap_or(0.0) / 1e6;
    let busy_ctl = p.peak_rps * (ctl + app);
    let without = Station::cpu(c, busy_ctl / n, ctl + app);
    // A read's own service: on one server of a fractional allowance it runs at c's speed.
    let own = |dd: f64| if with.servers == 1 { (dd + app) / c } else { dd + app };
    let own_ctl = if without.servers == 1 { (ctl + app) / c } else { ctl + app };
    let (store_p50, store_p99, store_u) = match (m.store_us, shards) {
        (Some(ds), Some(k)) => {
            let ds = ds.mid / 1e6;
            let calls = m.store_calls.unwrap_or(1.0);
            let rtt = calls * p.store_rtt.as_secs_f64();
            let st = Station { servers: 1, mean_service_s: ds, utilization: p.peak_rps * ds / f64::from(k) };
            (rtt + ds + st.wait_quantile(0.5), rtt + ds + st.wait_quantile(0.99), Some(st.utilization))
        }
        _ => (0.0, 0.0, None),
    };
    let q = |s: &Station, own: f64, q: f64| own + s.wait_quantile(q);
    let p50 = q(&with, own(d), 0.5) + store_p50;
    let p99 = q(&with, own(d), 0.99) + store_p99;
    Latency {
        instance_utilization: with.utilization,
        store_utilization: store_u,
        added_p50: (p50 - q(&without, own_ctl, 0.5)).max(0.0),
        added_p99: (p99 - q(&without, own_ctl, 0.99)).max(0.0),
        read_p99: p99,
    }
}

/// The one or two reasons that decide the ranking.
fn reasons(plans: &[Plan], p: &Params) -> Vec<String> {
    let ranked: Vec<&Plan> = plans.iter().filter(|x| x.excluded.is_empty()).collect();
    let Some(top) = ranked.first() else {
        return vec!["No option meets every requirement: see why each is excluded".into()];
    };
    let mut out = Vec::new();
    match ranked.get(1) {
        Some(next) if (next.cores - top.cores).abs() < 1e-9 && next.read_p99_s > top.read_p99_s * 1.1 => {
            out.push(format!(
                "As few cores as {} ({}); the lower read p99 ({} against {}) decides",
                next.system,
                fmt_cores(top.cores),
                fmt_secs(top.read_p99_s),
                fmt_secs(next.read_p99_s)
            ))
        }
        Some(next) if (next.cores - top.cores).abs() < 1e-9 => out.push(format!(
            "As few cores as {} ({}) and a read p99 within 10% of it ({} against {}): either will do by these figures",
            next.system,
            fmt_cores(top.cores),
            fmt_secs(top.read_p99_s),
            fmt_secs(next.read_p99_s)
        )),
        Some(next) => out.push(format!(
            "Fewest cores: {} against {} for {}, the next",
            fmt_cores(top.cores),
            fmt_cores(next.cores),
            next.system
        )),
        None => out.push("The only option that meets every requirement".into()),
    }
    let excluded = plans.iter().filter(|x| !x.excluded.is_empty()).count();
    if excluded > 0 {
        let what: Vec<&str> = [
            p.revocation.map(|_| "the revocation window"),
            p.survive_store_outage.then_some("answering through a store outage"),
            p.slo_p99.map(|_| "the p99 objective"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let what: Vec<&str> = what
            .into_iter()
            .filter(|w| plans.iter().any(|x| x.excluded.iter().any(|e| e.starts_with(exclusion_prefix(w)))))
            .collect();
        out.push(format!(
            "{excluded} option{} excluded by {}",
            if excluded == 1 { "" } else { "s" },
            what.join(" and ")
        ));
    }
    out
}

/// How each requirement's exclusion reason begins.
fn exclusion_prefix(requirement: &str) -> &'static str {
    match requirement {
        "the revocation window" => "revocation window",
        "answering through a store outage" => "store outage",
        _ => "p99",
    }
}
