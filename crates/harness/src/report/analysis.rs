//! Everything the report derives from `results.json`: scaling series, USL fits, what
//! saturated at each point (the utilization law), the cost model, credential sizes.
//!
//! Pure functions of the results, iterated in sorted order, so the same file always gives
//! the same numbers. The charts and the text only read this.

use std::collections::BTreeMap;

use crate::{
    plan::{Lb, System},
    record::{Flag, Point, Results},
    report::usl::{self, UslFit},
};

/// Utilization at or above which a resource counts as saturated. The sweep's own judge
/// refuses a rate at 95 % instance CPU; 85 % is where queueing already dominates latency.
pub const SATURATED: f64 = 0.85;
/// Below this, the resource had clear room left.
pub const BUSY: f64 = 0.6;
/// The generator must stay below this share of its cores, or it measures itself, not the
/// system; the machine below this share of all cores. One value each, for the sweep's flags
/// and the report's attribution.
pub use crate::record::point::{GENERATOR_LIMIT, MACHINE_LIMIT};

/// One line of measurements: a system behind one balancer policy, over instance counts.
#[derive(Debug)]
pub struct Series<'a> {
    pub system: System,
    pub lb: Lb,
    /// Shown with its policy because the run measured this system under more than one.
    pub show_lb: bool,
    /// Instance-local state behind round-robin: most requests fail by design.
    pub rejects_by_design: bool,
    /// Sorted by instance count (stable: run order within one N).
    pub points: Vec<&'a Point>,
    pub fit: Result<UslFit, String>,
    /// 90 % interval of the fit's κ ([`usl::kappa_interval`]), when there is a fit.
    pub kappa_interval: Option<(f64, f64)>,
    /// Points left out of the fit, with why.
    pub excluded: Vec<(usize, String)>,
}

/// What the report may say about where a fitted line peaks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Peak {
    /// κ ≈ 0: the curve never turns down.
    None,
    /// A peak at this N, told apart from the rig's curvature (or in a line that shares a store).
    At(f64),
    /// A shared-nothing line whose κ interval does not lie above the control's: the
    /// curvature is the rig's (co-location), not the system's.
    Rig(f64),
    /// A shared-nothing line in a run without a control line, or whose control line could
    /// not be fitted: the rig's curvature cannot be told apart, so no peak is claimed.
    NoControl(f64),
}

impl Peak {
    /// The text of a "peak N" cell.
    pub fn cell(self, digits: usize) -> String {
        match self {
            Peak::None => "none (κ≈0)".into(),
            Peak::At(p) => format!("{p:.digits$}"),
            Peak::Rig(_) => "none beyond the rig's (κ within the control's)".into(),
            Peak::NoControl(_) => "not claimed (no control fit to compare)".into(),
        }
    }
}

impl Series<'_> {
    pub fn label(&self) -> String {
        if self.show_lb { format!("{} ({})", self.system, self.lb) } else { self.system.to_string() }
    }

    pub fn largest(&self) -> Option<&Point> {
        self.points.last().copied()
    }

    pub fn at(&self, n: usize) -> Option<&Point> {
        self.points.iter().rev().find(|p| p.instances == n).copied()
    }

    /// X(N_max) / (N_max · X(1)): 1.0 is perfectly linear.
    pub fn efficiency(&self) -> Option<(usize, f64)> {
        let one = self.at(1)?;
        let last = self.largest()?;
        (last.instances > 1 && one.achieved_rps > 0.0)
            .then(|| (last.instances, last.achieved_rps / (last.instances as f64 * one.achieved_rps)))
    }
}

/// What limited one point.
#[derive(Clone, Debug, PartialEq)]
pub enum Limit {
    /// Instance-local state behind round-robin: requests reached instances without the session.
    Rejected,
    /// A resource at or above [`SATURATED`] (generator: above its 80 % limit).
    Saturated(Resource, f64),
    /// Nothing saturated; the p99 objective broke first. The busiest resource is named.
    Latency(Resource, f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Instances,
    Store,
    Generator,
    Machine,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Instances => "instances",
            Resource::Store => "store",
            Resource::Generator => "generator",
            Resource::Machine => "machine",
        }
    }
}

/// The utilization law per point: U = X·D for each resource, as a share of what it had.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    pub instances: f64,
    /// Store CPU over its cap (over one core when uncapped: Redis runs commands on one thread).
    pub store: Option<f64>,
    pub generator: f64,
    /// Everything measured over all cores of the machine.
    pub machine: f64,
    pub limit: Limit,
}

pub fn attribute(results: &Results, p: &Point) -> Attribution {
    let secs = p.duration_s.max(1e-9);
    // A Redis Cluster's capacity is its shards × each one's cap.
    let cap = p.store_cpu.unwrap_or(results.caps.store_cpu) * f64::from(p.store_shards.unwrap_or(1));
    let store_cap = if results.caps.capped && cap > 0.0 { cap } else { 1.0 };
    let store = p.cpu.store_s.map(|s| s / (secs * store_cap));
    let cores = results.machine.cores.max(1) as f64;
    // External deployments (`--target`): the instances' CPU is unknown (NaN); the machine's
    // busy time is measured directly instead.
    let machine = p.cpu.machine_s.map_or_else(
        || (p.cpu.instances_total_s + p.cpu.store_s.unwrap_or(0.0) + p.cpu.generator_s) / (secs * cores),
        |m| m / (secs * cores),
    );
    let instances = p.cpu.instance_utilization;
    let generator = p.cpu.generator_utilization;
    let limit = if rejects_by_design(p) {
        Limit::Rejected
    } else if generator > GENERATOR_LIMIT || p.flags.contains(&Flag::Generator) {
        Limit::Saturated(Resource::Generator, generator)
    } else if machine >= MACHINE_LIMIT || p.flags.contains(&Flag::MachineSaturated) {
        Limit::Saturated(Resource::Machine, machine)
    } else {
        let (r, u) = match store {
            // An unknown (NaN) instance share loses to a measured store.
            Some(s) if instances.partial_cmp(&s).is_none_or(|o| o.is_lt()) => (Resource::Store, s),
            _ if instances.is_finite() => (Resource::Instances, instances),
            _ => (Resource::Machine, machine),
        };
        if u >= SATURATED { Limit::Saturated(r, u) } else { Limit::Latency(r, u) }
    };
    Attribution { instances, store, generator, machine, limit }
}

/// The USL fit of a line's held points and its κ interval.
fn fitted(points: &[&Point]) -> (Result<UslFit, String>, Option<(f64, f64)>) {
    let held: Vec<(f64, f64)> =
        points.iter().filter(|p| p.held).map(|p| (p.instances as f64, p.achieved_rps)).collect();
    match usl::fit(&held) {
        Ok(f) => (Ok(f), Some(usl::kappa_interval(&held, &f))),
        Err(e) => (Err(e.to_string()), None),
    }
}

/// Instance-local state behind round-robin with more than one instance: most requests
/// reach an instance without the session, by design. Such a point never "holds".
pub fn rejects_by_design(p: &Point) -> bool {
    p.rejects_by_design()
}

/// Why a point did not hold, in the sweep's own words when it recorded them.
pub fn why_not_held(p: &Point) -> String {
    if rejects_by_design(p) {
        return "rejected by design (session on another instance)".into();
    }
    p.flags
        .iter()
        .find_map(|f| match f {
            Flag::FinalRunMissed(miss) => Some(miss.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "did not hold".into())
}

pub use crate::record::median;

/// One sweep in a sub-directory of the run.
#[derive(Debug)]
pub struct Part {
    /// The sub-directory's name.
    pub dir: String,
    pub results: Results,
    /// It holds a `chaos.json` beside its sweep.
    pub chaos: bool,
}

/// Measured CPU cost per request of one system.
#[derive(Clone, Debug, PartialEq)]
pub struct Cost {
    pub system: System,
    /// Instance CPU µs per request (median over the series' points that held).
    pub instance_us: f64,
    /// Store CPU µs per request, for store-backed systems.
    pub store_us: Option<f64>,
    pub store_commands: Option<f64>,
    pub points: usize,
    /// Min and max of the instance CPU per request over every round of those points, when
    /// the run repeated them (`--repeat`): how far the figure moved over N and the rounds.
    pub instance_range: Option<(f64, f64)>,
}

/// Requests/s where a pool of `cores` saturates at `us` CPU µs per request.
pub fn capacity(cores: f64, us: f64) -> f64 {
    if us > 0.0 { cores * 1e6 / us } else { f64::INFINITY }
}

/// Instances of `instance_cores` each that one store of `store_cores` serves before it
/// saturates, when the application adds `app_us` of its own CPU to every request.
pub fn instances_per_store(cost: &Cost, instance_cores: f64, store_cores: f64, app_us: f64) -> Option<f64> {
    let store = capacity(store_cores, cost.store_us?);
    let per_instance = capacity(instance_cores, cost.instance_us + app_us);
    Some(store / per_instance)
}

/// Everything the report shows, derived once.
#[derive(Debug)]
pub struct Analysis<'a> {
    pub results: &'a Results,
    /// Scaling series (not rejecting by design), in system then policy order.
    pub series: Vec<Series<'a>>,
    /// Series that reject by design (session-memory behind round-robin).
    pub rejecting: Vec<Series<'a>>,
    pub costs: Vec<Cost>,
    /// The control line (`control`: the stack without authentication), kept out of
    /// `series` and `costs`: it is the rig's yardstick, not a contender.
    pub control: Option<Series<'a>>,
    /// `revocation.json` beside the sweep, when there is one.
    pub revocation: Option<&'a crate::record::revocation::RevocationResults>,
    /// `chaos.json` beside the sweep, when there is one.
    pub chaos: Option<&'a crate::record::chaos::ChaosResults>,
    /// The run's other sweeps, in sub-directories (`mixed/`, `live/`, `haproxy/`).
    pub parts: &'a [Part],
    /// Store capacity as an axis (`--store-cpu` with several values): every store-backed
    /// system at every store cap, the main cap included, in system then cap order. The
    /// other sections show the main cap only.
    pub store_axis: Vec<StoreCap<'a>>,
    /// The store's round trip as an axis (`--store-rtt` with several values): every
    /// store-backed system at every round trip, the main one included, in system then
    /// round-trip order. The other sections show the main round trip only.
    pub rtt_axis: Vec<StoreRttLine<'a>>,
    /// `session-redis-cluster` at every `--store-shards` value (main included) at the
    /// main store cap, in system then shard order; the other sections show the main
    /// shard count only.
    pub shard_axis: Vec<(System, u16, &'a Point)>,
    /// The live-sessions axis (`--live-sessions`): its points in system, sessions, spread
    /// order, kept out of every other section (they hold other credentials).
    pub live: Vec<&'a Point>,
    /// Points measured through HAProxy (`--lb haproxy-*`), in system, N, policy order, kept
    /// out of the lines: they are read beside the generator-balanced point they stand for.
    pub proxied: Vec<&'a Point>,
}

/// A store-backed system's points at one round trip to the store.
#[derive(Debug)]
pub struct StoreRttLine<'a> {
    pub system: System,
    pub lb: Lb,
    /// The round trip asked for, µs (0: straight to the store).
    pub rtt_us: f64,
    /// Sorted by instance count.
    pub points: Vec<&'a Point>,
}

/// A store-backed system's points at one store cap.
#[derive(Debug)]
pub struct StoreCap<'a> {
    pub system: System,
    pub lb: Lb,
    /// The store's cap, in cores.
    pub cores: f64,
    /// Sorted by instance count.
    pub points: Vec<&'a Point>,
}

impl<'a> Analysis<'a> {
    pub fn new(results: &'a Results) -> Self {
        let mut by: BTreeMap<(System, Lb), Vec<&Point>> = BTreeMap::new();
        let mut control: Vec<&Point> = Vec::new();
        let mut store_axis: Vec<StoreCap<'a>> = Vec::new();
        let main_cap = results.config.store_cpu;
        let mut rtt_axis: Vec<StoreRttLine<'a>> = Vec::new();
        let main_rtt = crate::record::micros(results.config.store_rtt);
        let main_shards = results.config.store_shards.first().copied().unwrap_or(1);
        let mut shard_axis = Vec::new();
        let mut live: Vec<&Point> = Vec::new();
        let mut proxied: Vec<&Point> = Vec::new();
        for p in &results.points {
            if p.live.is_some() {
                live.push(p);
                continue;
            }
            if p.lb.proxy() {
                proxied.push(p);
                continue;
            }
            if let Some(k) = p.store_shards
                && !results.config.store_shards.is_empty()
                && p.store_cpu.is_none_or(|c| c == main_cap)
                && p.instances
                    == results.points.iter().filter(|q| q.system == p.system).map(|q| q.instances).max().unwrap_or(0)
            {
                shard_axis.push((p.system, k, p));
            }
            if p.store_shards.is_some_and(|k| k != main_shards) {
                continue;
            }
            // A point of the store-cpu axis at another cap is not on the round-trip axis.
            if let Some(rtt_us) = p.store_rtt_us.filter(|_| p.store_cpu.is_none_or(|c| c == main_cap)) {
                match rtt_axis.iter_mut().find(|c| c.system == p.system && c.lb == p.lb && c.rtt_us == rtt_us) {
                    Some(c) => c.points.push(p),
                    None => rtt_axis.push(StoreRttLine { system: p.system, lb: p.lb, rtt_us, points: vec![p] }),
                }
                if rtt_us != main_rtt {
                    continue;
                }
            }
            if let Some(cores) = p.store_cpu {
                match store_axis.iter_mut().find(|c| c.system == p.system && c.lb == p.lb && c.cores == cores) {
                    Some(c) => c.points.push(p),
                    None => store_axis.push(StoreCap { system: p.system, lb: p.lb, cores, points: vec![p] }),
                }
                if cores != main_cap {
                    continue;
                }
            }
            if p.system.is_control() {
                control.push(p);
            } else {
                by.entry((p.system, p.lb)).or_default().push(p);
            }
        }
        store_axis.sort_by(|x, y| (x.system, x.lb).cmp(&(y.system, y.lb)).then(x.cores.total_cmp(&y.cores)));
        for c in &mut store_axis {
            c.points.sort_by_key(|p| p.instances);
        }
        rtt_axis.sort_by(|x, y| (x.system, x.lb).cmp(&(y.system, y.lb)).then(x.rtt_us.total_cmp(&y.rtt_us)));
        for c in &mut rtt_axis {
            c.points.sort_by_key(|p| p.instances);
        }
        let mut lbs_of: BTreeMap<System, usize> = BTreeMap::new();
        for (system, _) in by.keys() {
            *lbs_of.entry(*system).or_default() += 1;
        }
        let mut series = Vec::new();
        let mut rejecting = Vec::new();
        for (&(system, lb), points) in &by {
            let mut points = points.clone();
            // With one instance there is nothing to balance: the sweep measures N=1 once
            // (as round-robin), and it belongs to the sticky line too.
            if lb == Lb::Sticky
                && !points.iter().any(|p| p.instances == 1)
                && let Some(one) = by.get(&(system, Lb::RoundRobin)).and_then(|v| v.iter().find(|p| p.instances == 1))
            {
                points.push(one);
            }
            points.sort_by_key(|p| p.instances);
            // A round-robin line of instance-local state that never went past N=1 rejects
            // nothing: it is the system's only scaling line then.
            let rejects_by_design = points.iter().any(|p| rejects_by_design(p));
            let show_lb = lbs_of.get(&system).copied().unwrap_or(0) > 1;
            let excluded: Vec<(usize, String)> =
                points.iter().filter(|p| !p.held).map(|p| (p.instances, why_not_held(p))).collect();
            let (fit, kappa_interval) = if rejects_by_design {
                (Err("requests are rejected by design; throughput here is not capacity".into()), None)
            } else {
                fitted(&points)
            };
            let s = Series { system, lb, show_lb, rejects_by_design, points, fit, kappa_interval, excluded };
            if rejects_by_design { rejecting.push(s) } else { series.push(s) }
        }

        let mut costs = Vec::new();
        for s in &series {
            // A cost rests on the points that held their rate: past it, CPU per request
            // measures the overload (retries, queues, timeouts) as much as the system.
            let pts: Vec<&Point> = s.points.iter().copied().filter(|p| p.held).collect();
            let Some(instance_us) = median(pts.iter().map(|p| p.cpu.per_request_us).collect()) else { continue };
            let store_us = median(pts.iter().filter_map(|p| p.cpu.store_per_request_us).collect());
            let store_commands =
                median(pts.iter().filter_map(|p| p.store.as_ref().map(|st| st.commands_per_request)).collect());
            // A range only for a repeated run, and none when no round has a figure (an
            // external run's CPU is unknown).
            let rounds: Vec<f64> = if pts.iter().any(|p| !p.repeats.is_empty()) {
                pts.iter()
                    .flat_map(|p| p.rounds())
                    .map(|r| r.cpu_per_request_us)
                    .filter(|x| x.is_finite() && *x > 0.0)
                    .collect()
            } else {
                Vec::new()
            };
            let instance_range = rounds.iter().copied().reduce(f64::min).zip(rounds.iter().copied().reduce(f64::max));
            let cost =
                Cost { system: s.system, instance_us, store_us, store_commands, points: pts.len(), instance_range };
            // One cost per system: the first series (policy order puts round-robin first).
            if !costs.iter().any(|c: &Cost| c.system == s.system) {
                costs.push(cost);
            }
        }
        let control = (!control.is_empty()).then(|| {
            control.sort_by_key(|p| p.instances);
            let (fit, kappa_interval) = fitted(&control);
            Series {
                system: System::CONTROL,
                lb: control[0].lb,
                show_lb: false,
                rejects_by_design: false,
                excluded: control.iter().filter(|p| !p.held).map(|p| (p.instances, why_not_held(p))).collect(),
                fit,
                kappa_interval,
                points: control,
            }
        });
        shard_axis.sort_by_key(|(s, k, _)| (*s, *k));
        live.sort_by_key(|p| (p.system, p.live.as_ref().map(|l| (l.sessions, l.spread))));
        proxied.sort_by_key(|p| (p.system, p.instances, p.lb));
        Self {
            results,
            series,
            rejecting,
            costs,
            control,
            revocation: None,
            chaos: None,
            parts: &[],
            store_axis,
            rtt_axis,
            shard_axis,
            live,
            proxied,
        }
    }

    /// Where a line peaks, if the report may say so. A line that shares nothing between
    /// instances (no store: session-memory sticky, plain JWT) can only bend because of the
    /// rig — instances and the generator on one machine — so its peak counts only when its
    /// κ interval lies wholly above the control's.
    pub fn peak(&self, s: &Series<'_>) -> Option<Peak> {
        let f = s.fit.as_ref().ok()?;
        let Some(at) = f.peak() else { return Some(Peak::None) };
        if s.system.uses_store() || s.system.is_control() {
            return Some(Peak::At(at));
        }
        let control = self.control.as_ref().and_then(|c| c.kappa_interval);
        Some(match (s.kappa_interval, control) {
            (Some((lo, _)), Some((_, hi))) if lo > hi => Peak::At(at),
            (_, Some(_)) => Peak::Rig(at),
            (_, None) => Peak::NoControl(at),
        })
    }

    pub fn cost(&self, system: System) -> Option<&Cost> {
        self.costs.iter().find(|c| c.system == system)
    }

    /// The scaling series of a system (sticky first for instance-local state).
    pub fn series_of(&self, system: System) -> Option<&Series<'a>> {
        let mut of = self.series.iter().filter(|s| s.system == system);
        let first = of.next()?;
        Some(of.find(|s| s.lb == Lb::Sticky).unwrap_or(first))
    }

    /// A mixed run beside this one (`mixed/`, as `scripts/reference.sh` lays a reference run
    /// out) with per-route demands: they price logins and refreshes in *Your deployment*.
    pub fn mix(&self) -> Option<&'a Results> {
        self.parts
            .iter()
            .find(|p| p.dir == super::MIXED_DIR)
            .map(|p| &p.results)
            .filter(|m| !m.route_demands.is_empty())
    }

    pub fn largest_n(&self) -> Option<usize> {
        self.results.points.iter().map(|p| p.instances).max()
    }
}

/// Credential bytes a client sends on every request, as a header line without CRLF.
#[derive(Clone, Debug, PartialEq)]
pub struct Credential {
    pub header: &'static str,
    pub bytes: usize,
}

/// Bytes of the session cookie header: `Cookie: __Host-sid=` and a 43-character id
/// (256 random bits, base64url) — the session server's fixed format.
pub fn session_credential() -> Credential {
    Credential { header: "Cookie: __Host-sid=<43 chars>", bytes: "Cookie: __Host-sid=".len() + 43 }
}

/// Bytes of `Authorization: Bearer <token>` for an access token of jwt-server, computed from
/// its layout (not measured): header `{"typ":"at+jwt","alg":…,"kid":<16 chars>}`, claims
/// for `user12` with role `user`, the default issuer and audience, 10-digit timestamps,
/// 22-character `jti` and `sid`; signature 32 bytes (HS256), 256 (RS256, 2048-bit key),
/// 64 (ES256 P-256, EdDSA Ed25519). Usernames of other lengths shift it byte for byte.
pub fn jwt_credential(system: System) -> Option<Credential> {
    let alg = system.jwt_alg()?;
    let sig_bytes = match alg {
        "HS256" => 32,
        "RS256" => 256,
        _ => 64,
    };
    let kid = "k".repeat(16);
    let header = format!(r#"{{"typ":"at+jwt","alg":"{alg}","kid":"{kid}"}}"#);
    let id = "i".repeat(22);
    let t = 1_700_000_000u64;
    let claims = format!(
        r#"{{"sub":"user12","role":"user","iss":"authbench","aud":"authbench-api","iat":{t},"nbf":{t},"exp":{},"jti":"{id}","sid":"{id}"}}"#,
        t + 300
    );
    let token = b64_len(header.len()) + 1 + b64_len(claims.len()) + 1 + b64_len(sig_bytes);
    Some(Credential { header: "Authorization: Bearer <token>", bytes: "Authorization: Bearer ".len() + token })
}

/// Length of unpadded base64url of `n` bytes.
fn b64_len(n: usize) -> usize {
    (n * 4).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_sizes() {
        assert_eq!(session_credential().bytes, 62);
        assert_eq!(b64_len(32), 43);
        assert_eq!(b64_len(256), 342);
        assert_eq!(b64_len(64), 86);
        let hs = jwt_credential(System::JWT_HS256).unwrap().bytes;
        let rs = jwt_credential(System::JWT_RS256).unwrap().bytes;
        let es = jwt_credential(System::JWT_ES256).unwrap().bytes;
        let ed = jwt_credential(System::JWT_EDDSA).unwrap().bytes;
        assert_eq!(rs - hs, 342 - 43);
        assert_eq!(es, hs + 86 - 43);
        assert_eq!(ed, es, "\"EdDSA\" and \"ES256\" are both five characters");
        assert_eq!(jwt_credential(System::SESSION_REDIS), None);
        assert_eq!(jwt_credential(System::JWT_HS256_DENYLIST), Some(jwt_credential(System::JWT_HS256).unwrap()));
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
