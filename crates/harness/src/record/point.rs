//! A [`Point`] from one measured window: the generator's outcome and the resources sampled
//! at the window's edges, with the flags that say how far the numbers describe the rig.

use std::time::Duration;

use super::{
    Cpu, Errors, Flag, LatencyRun, Point, PointMode, RouteStats, SearchStep, StepOutcome, StoreRtt, StoreStats,
    Verdict, WorkloadKind,
};
use crate::{
    drive::{engine::Outcome, route::Objectives},
    observe::{self, Sample},
    plan::{Lb, System},
};

/// What was measured, and under which load.
pub struct Window<'a> {
    pub system: System,
    pub instances: usize,
    pub lb: Lb,
    pub workload: WorkloadKind,
    pub mode: PointMode,
    pub duration: Duration,
    pub outcome: &'a Outcome,
    pub start: &'a Sample,
    pub end: &'a Sample,
}

/// How the rig was set up for the run.
pub struct Rig<'a> {
    /// Instances (and a private store) ran in capped cgroups.
    pub capped: bool,
    /// An already-running deployment (`--target`): the instances' own figures are unknown.
    pub external: bool,
    pub instance_cpu: f64,
    pub store_cpu: f64,
    /// The store is a `redis-server` the run started (and capped).
    pub private_store: bool,
    pub targets: &'a [String],
    /// Cores of this machine.
    pub cores: f64,
    /// The round trip put between instances and store (`--store-rtt`), when one was.
    pub store_rtt: Option<Duration>,
    /// HAProxy's cap (`--lb-cpu`), reserved like the store's on points it is in.
    pub lb_cpu: Option<f64>,
}

/// Generator CPU above this share of what it was left is flagged `generator`: the generator
/// may have been the bottleneck.
pub const GENERATOR_LIMIT: f64 = 0.8;
/// Machine CPU at this share is flagged `machine-saturated` (and the report names the
/// machine as the limit).
pub const MACHINE_LIMIT: f64 = 0.9;

/// The point `w` describes; `held`, `search` and the search's end are the caller's.
pub fn build(w: &Window<'_>, rig: &Rig<'_>) -> Point {
    let (o, a, b) = (w.outcome, w.start, w.end);
    let secs = w.duration.as_secs_f64();
    let n = w.instances;
    // Not observed for an external deployment: NaN, written as null (record::unknown).
    let instances_total_s = if rig.external { f64::NAN } else { observe::instance_seconds(a, b) };
    let completed = o.completed.max(1) as f64;
    let generator_s = (b.generator_cpu - a.generator_cpu).max(0.0);
    let lb_s = match (a.lb_cpu, b.lb_cpu) {
        (Some(x), Some(y)) if w.lb.proxy() => Some((y - x).max(0.0)),
        _ => None,
    };
    let reserved = if rig.capped {
        n as f64 * rig.instance_cpu
            + if rig.private_store { rig.store_cpu } else { 0.0 }
            + if w.lb.proxy() { rig.lb_cpu.unwrap_or(0.0) } else { 0.0 }
    } else {
        0.0
    };
    let generator_cores = (rig.cores - reserved).max(0.25);
    let generator_utilization = generator_s / (secs * generator_cores);
    let instance_capacity = if rig.capped { n as f64 * rig.instance_cpu } else { rig.cores };
    let store_s = match (&a.store, &b.store) {
        (Some(x), Some(y)) => Some((y.cpu_s - x.cpu_s).max(0.0)),
        _ => None,
    }
    .or_else(|| Some(b.store_proc_cpu? - a.store_proc_cpu?));
    let uses_store = w.system.uses_store();
    let store = match (&a.store, &b.store) {
        (Some(x), Some(y)) if uses_store => {
            // The INFO that opened the window is itself one command (PostgreSQL's observer
            // excludes its own statements, so there this takes one too many off: 1 in thousands).
            let commands = y.commands.saturating_sub(x.commands).saturating_sub(1) as f64;
            let per_request = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / completed);
            Some(StoreStats {
                ops_per_sec: commands / secs,
                commands_per_request: commands / completed,
                used_memory_bytes: y.used_memory,
                bytes_per_session: None,
                keys: y.keys,
                writes_per_request: per_request(x.writes, y.writes),
                wal_bytes_per_request: per_request(x.wal_bytes, y.wal_bytes),
            })
        }
        _ => None,
    };
    let mut flags = Vec::new();
    if generator_utilization > GENERATOR_LIMIT {
        flags.push(Flag::Generator);
    }
    let machine_s = match (a.machine_busy, b.machine_busy) {
        (Some(x), Some(y)) if rig.external => Some((y - x).max(0.0)),
        _ => None,
    };
    if rig.external {
        // Caps, if any, are the deployment's: "uncapped" would be a claim we cannot make.
        flags.push(Flag::External);
    } else if !rig.capped {
        flags.push(Flag::Uncapped);
    }
    let busy = machine_s.unwrap_or_else(|| {
        instances_total_s + generator_s + if uses_store { store_s.unwrap_or(0.0) } else { 0.0 } + lb_s.unwrap_or(0.0)
    });
    if busy > MACHINE_LIMIT * rig.cores * secs {
        flags.push(Flag::MachineSaturated);
    }
    let rtt = rig.store_rtt.filter(|_| uses_store).map(|target| store_rtt(target, a, b));
    if rtt.as_ref().is_some_and(|r| !r.within) {
        flags.push(Flag::StoreRttOff);
    }
    Point {
        system: w.system,
        instances: n,
        lb: w.lb,
        store_cpu: None,
        store_rtt_us: None,
        store_shards: None,
        live: None,
        mix_users: None,
        workload: w.workload,
        mode: w.mode,
        offered_rps: o.offered_rps,
        achieved_rps: o.achieved_rps,
        requests: o.requests,
        duration_s: secs,
        errors: Errors {
            by_status: o.by_status.iter().filter(|(s, _)| **s >= 400).map(|(s, c)| (s.to_string(), *c)).collect(),
            timeouts: o.timeouts,
            connect: o.connect,
            io: o.io,
            unsent: o.unsent,
        },
        error_ratio: o.error_ratio(),
        latency_us: o.latency.summary(),
        scheduler_lag_us: o.scheduler_lag,
        cpu: Cpu {
            instances_total_s,
            per_request_us: instances_total_s * 1e6 / completed,
            store_s: if uses_store { store_s } else { None },
            store_per_request_us: if uses_store { store_s.map(|s| s * 1e6 / completed) } else { None },
            generator_s,
            generator_utilization,
            instance_utilization: instances_total_s / (secs * instance_capacity),
            machine_s,
            steal_s: a.steal.zip(b.steal).map(|(x, y)| (y - x).max(0.0)),
            lb_s,
            lb_per_request_us: lb_s.map(|s| s * 1e6 / completed),
        },
        rss_bytes: b.rss.clone(),
        store,
        capped: rig.capped,
        external: rig.external,
        targets: rig.targets.to_vec(),
        held: false,
        flags,
        search: Vec::new(),
        search_end: None,
        latency: None,
        direct_latency: None,
        store_rtt: rtt,
        repeats: Vec::new(),
        throttled_periods: match (a.throttled, b.throttled) {
            (Some(x), Some(y)) => Some(y.saturating_sub(x)),
            _ => None,
        },
        histogram: o.latency.to_base64(),
        routes: if w.workload == WorkloadKind::Mixed {
            o.routes.iter().map(|(r, o)| (*r, RouteStats::of(o))).collect()
        } else {
            Default::default()
        },
    }
}

/// The round trip a window's store-backed requests had, from the probe in `b`.
fn store_rtt(target: Duration, a: &Sample, b: &Sample) -> StoreRtt {
    let r = b.rtt.filter(|r| r.samples > 0);
    let added = r.map(|r| r.via_us - r.direct_us);
    StoreRtt {
        target_us: super::micros(target),
        via_us: r.map(|r| r.via_us),
        direct_us: r.map(|r| r.direct_us),
        added_us: added,
        samples: r.map_or(0, |r| r.samples),
        within: added.is_some_and(|x| crate::deploy::delay::within(target, x)),
        proxy_cpu_s: b.delay_proxy_cpu.zip(a.delay_proxy_cpu).map(|(y, x)| (y - x).max(0.0)),
        hold_us: r.and_then(|r| r.hold_us),
    }
}

/// Whether a p99 meets the objective (equal meets it).
pub fn slo_met(p99_us: u64, slo: Duration) -> bool {
    p99_us <= slo.as_micros() as u64
}

/// The latency run measured in `w` at [`LatencyRun::SHARE`] of a point's capacity, judged
/// against the p99 objectives (reads only: the point's p99 against the read objective;
/// mixed: each route class's p99 against its own); `period` is the CFS period (to count the
/// periods in the window).
pub fn latency_run(w: &Window<'_>, rig: &Rig<'_>, objectives: &Objectives, period: Duration) -> LatencyRun {
    let p = build(w, rig);
    let classes = if w.workload == WorkloadKind::Mixed { objectives.judge(&w.outcome.routes) } else { Vec::new() };
    let slo_met = if w.workload == WorkloadKind::Mixed {
        classes.iter().all(|c| c.met)
    } else {
        slo_met(p.latency_us.p99, objectives.read)
    };
    let periods = (rig.capped && !period.is_zero())
        .then(|| (w.duration.as_secs_f64() / period.as_secs_f64()).round() as u64 * w.instances as u64);
    LatencyRun {
        share: LatencyRun::SHARE,
        offered_rps: p.offered_rps.unwrap_or(p.achieved_rps),
        achieved_rps: p.achieved_rps,
        requests: p.requests,
        duration_s: p.duration_s,
        error_ratio: p.error_ratio,
        slo_met,
        latency_us: p.latency_us,
        throttled_periods: p.throttled_periods,
        periods,
        instance_utilization: p.cpu.instance_utilization,
        cpu_per_request_us: Some(p.cpu.per_request_us).filter(|x| x.is_finite()),
        store_per_request_us: p.cpu.store_per_request_us,
        histogram: p.histogram,
        routes: p.routes,
        classes,
    }
}

/// A recorded search step: the load offered, what came of it, and how it was judged.
pub fn search_step(o: &Outcome, offered_rps: f64, why: StepOutcome) -> SearchStep {
    SearchStep {
        offered_rps,
        achieved_rps: o.achieved_rps,
        p99_us: o.latency.summary().p99,
        error_ratio: o.error_ratio(),
        held: why == StepOutcome::Judged(Verdict::Held),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window<'a>(o: &'a Outcome, a: &'a Sample, b: &'a Sample) -> Window<'a> {
        Window {
            system: System::JWT_HS256,
            instances: 2,
            lb: Lb::RoundRobin,
            workload: WorkloadKind::Read,
            mode: PointMode::FindMax,
            duration: Duration::from_secs(1),
            outcome: o,
            start: a,
            end: b,
        }
    }

    fn objectives(read: Duration) -> Objectives {
        Objectives { read, write: Objectives::WRITE, login: Objectives::LOGIN }
    }

    fn rig(capped: bool, external: bool) -> Rig<'static> {
        Rig {
            capped,
            external,
            instance_cpu: 0.1,
            store_cpu: 0.1,
            private_store: false,
            targets: &[],
            cores: 2.0,
            store_rtt: None,
            lb_cpu: None,
        }
    }

    #[test]
    fn flags_say_what_the_rig_did() {
        let o = Outcome { completed: 1000, requests: 1000, ..Outcome::default() };
        let idle = Sample::default();
        // 1 s of generator CPU out of the 1.8 cores left to it beside two 0.1-core caps.
        let busy = Sample { generator_cpu: 1.5, ..Sample::default() };
        let p = build(&window(&o, &idle, &busy), &rig(true, false));
        assert_eq!(p.flags, [Flag::Generator]);
        assert!((p.cpu.generator_utilization - 1.5 / 1.8).abs() < 1e-9);
        let p = build(&window(&o, &idle, &idle), &rig(false, false));
        assert_eq!(p.flags, [Flag::Uncapped]);
        let saturated = Sample { machine_busy: Some(1.9), ..Sample::default() };
        let zero = Sample { machine_busy: Some(0.0), ..Sample::default() };
        let p = build(&window(&o, &zero, &saturated), &rig(false, true));
        assert_eq!(p.flags, [Flag::External, Flag::MachineSaturated]);
        assert!(p.cpu.instances_total_s.is_nan(), "an external deployment's CPU is unknown, not 0");
        assert_eq!(p.cpu.machine_s, Some(1.9));
    }

    #[test]
    fn the_objective_is_met_at_equality() {
        let slo = Duration::from_millis(5);
        assert!(slo_met(5000, slo), "p99 = objective meets it");
        assert!(!slo_met(5001, slo));
    }

    #[test]
    fn a_latency_run_is_judged_on_p99_and_counts_the_periods() {
        let mut o = Outcome { completed: 1000, requests: 1000, offered_rps: Some(700.0), ..Outcome::default() };
        for _ in 0..1000 {
            o.latency.record_us(4000);
        }
        let idle = Sample::default();
        let slo = objectives(Duration::from_millis(5));
        let period = Duration::from_millis(10);
        let run = latency_run(&window(&o, &idle, &idle), &rig(true, false), &slo, period);
        assert!(run.slo_met, "p99 4 ms within 5 ms");
        assert_eq!(run.share, 0.7);
        assert_eq!(run.offered_rps, 700.0);
        assert_eq!(run.periods, Some(200), "1 s of 10 ms periods on each of 2 instances");
        let run =
            latency_run(&window(&o, &idle, &idle), &rig(true, false), &objectives(Duration::from_millis(3)), period);
        assert!(!run.slo_met, "p99 4 ms beyond 3 ms");
        let run = latency_run(&window(&o, &idle, &idle), &rig(false, false), &slo, period);
        assert_eq!(run.periods, None, "uncapped: no periods");
        assert!(run.routes.is_empty() && run.classes.is_empty(), "reads only: no per-route figures");
    }

    #[test]
    fn a_mixed_latency_run_is_judged_per_route_class() {
        use crate::drive::route::{Route, RouteClass, RouteOutcome};
        let mut o = Outcome { completed: 1000, requests: 1000, offered_rps: Some(700.0), ..Outcome::default() };
        let mut me = RouteOutcome::default();
        for _ in 0..980 {
            o.latency.record_us(2000);
            me.latency.record_us(2000);
            me.requests += 1;
        }
        let mut login = RouteOutcome::default();
        for _ in 0..20 {
            o.latency.record_us(400_000);
            login.latency.record_us(400_000);
            login.requests += 1;
        }
        o.routes.insert(Route::Me, me);
        o.routes.insert(Route::Login, login);
        let idle = Sample::default();
        let mut w = window(&o, &idle, &idle);
        w.workload = WorkloadKind::Mixed;
        let slo = objectives(Duration::from_millis(5));
        let run = latency_run(&w, &rig(true, false), &slo, Duration::from_millis(10));
        assert!(run.latency_us.p99 > 5000, "the single p99 is a login's");
        assert!(run.slo_met, "but reads meet 5 ms and logins 1 s: {:?}", run.classes);
        assert_eq!(run.classes.iter().map(|c| c.class).collect::<Vec<_>>(), [RouteClass::Read, RouteClass::Login]);
        assert_eq!(run.routes[&Route::Login].requests, 20);
        let strict = crate::drive::route::Objectives { login: Duration::from_millis(100), ..slo };
        assert!(!latency_run(&w, &rig(true, false), &strict, Duration::from_millis(10)).slo_met);
        // The same window as reads only is judged on its single p99.
        w.workload = WorkloadKind::Read;
        assert!(!latency_run(&w, &rig(true, false), &slo, Duration::from_millis(10)).slo_met);
    }

    #[test]
    fn a_search_step_holds_only_when_judged_held() {
        let o = Outcome::default();
        assert!(search_step(&o, 10.0, StepOutcome::Judged(Verdict::Held)).held);
        let miss = crate::record::Miss::CpuCap { utilization: 0.97 };
        assert!(!search_step(&o, 10.0, StepOutcome::Judged(Verdict::Missed(miss))).held);
        assert!(!search_step(&o, 10.0, StepOutcome::FinalRetry(miss)).held);
    }
}
