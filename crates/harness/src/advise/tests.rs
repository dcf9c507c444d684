//! The model against hand-computed cases.

use std::time::Duration;

use super::*;
use crate::plan::{Lb, System};

fn measured(system: System, instance_us: f64) -> Measured {
    Measured {
        system,
        lb: Lb::RoundRobin,
        instance_us: Interval::exact(instance_us),
        control_us: Some(40.0),
        store: None,
        store_us: None,
        store_calls: None,
        login: None,
        refresh: None,
        revocation: Revocation::UntilExpiry,
        outage: Outage::NoStore,
        bytes_per_session: None,
        credential_bytes: 100,
        points: 3,
    }
}

fn redis(instance_us: f64, store_us: f64) -> Measured {
    Measured {
        store: Some(StoreKind::Redis),
        store_us: Some(Interval::exact(store_us)),
        store_calls: Some(1.0),
        revocation: Revocation::Measured(0.002),
        outage: Outage::FailsClosed,
        ..measured(System::SESSION_REDIS, instance_us)
    }
}

fn params(peak_rps: f64) -> Params {
    Params {
        peak_rps,
        instance_cores: 1.0,
        app_cpu: Duration::ZERO,
        store_rtt: Duration::ZERO,
        revocation: None,
        profile: UserProfile::WEB_APP,
        survive_store_outage: false,
        live_sessions: None,
        slo_p99: None,
        requests_per_day: None,
        target_utilization: 0.7,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1e-6)
}

#[test]
fn the_utilization_law_sizes_the_instances() {
    // 10 000 req/s × 100 µs = 1.0 core busy; 1-core instances at 70 % → ⌈1.0 / 0.7⌉ = 2.
    let plan = plan(&measured(System::JWT_HS256, 100.0), &params(10_000.0), false);
    assert_eq!(plan.instances, [2, 2, 2]);
    assert_eq!(plan.cores, 2.0);
    assert!(close(plan.instance_utilization, 0.5), "{}", plan.instance_utilization);
    // Authentication: 100 − 40 µs (the control's) of every 100 µs.
    assert!(close(plan.auth_share, 0.6), "{}", plan.auth_share);
    // M/M/1 at ρ = 0.5 with S = 100 µs: p99 = S + 2S·ln 50; without authentication ρ = 0.2
    // and S = 40 µs: p99 = 40 + 50·ln 20 µs. At p50 neither waits (P(wait) ≤ ½).
    let with = 100e-6 + 200e-6 * 50f64.ln();
    let without = 40e-6 + 50e-6 * 20f64.ln();
    assert!(close(plan.read_p99_s, with), "{}", plan.read_p99_s);
    assert!(close(plan.auth_p99_s, with - without), "{}", plan.auth_p99_s);
    assert!(close(plan.auth_p50_s, 60e-6), "{}", plan.auth_p50_s);
    assert!(plan.excluded.is_empty());
    // Credential bytes: 100 per request, the peak all day.
    assert!(close(plan.wire_bytes_per_day, 100.0 * 10_000.0 * 86_400.0));
}

#[test]
fn application_cpu_and_larger_instances_are_in_the_sizing() {
    // (100 µs + 1 ms) × 10 000 = 11 cores of work; 4-core instances at 70 % → ⌈11 / 2.8⌉ = 4.
    let p = Params { app_cpu: Duration::from_millis(1), instance_cores: 4.0, ..params(10_000.0) };
    let plan = plan(&measured(System::JWT_HS256, 100.0), &p, false);
    assert_eq!(plan.instances[1], 4);
    assert!(close(plan.auth_share, 60e-6 * 10_000.0 / 11.0), "{}", plan.auth_share);
}

#[test]
fn logins_and_refreshes_are_priced_from_the_profile() {
    // 6 000 req/s at 20 a minute: 18 000 users; 30-minute sessions → 10 logins/s; 5-minute
    // tokens → 5 refreshes a session → 50/s. 10 × 20 ms + 50 × 100 µs = 0.205 cores.
    let mut m = measured(System::JWT_HS256, 100.0);
    m.login = Some(measured::RouteCost { instance_us: 20_000.0, store_us: None });
    m.refresh = Some(measured::RouteCost { instance_us: 100.0, store_us: None });
    let plan = plan(&m, &params(6_000.0), true);
    assert!(close(plan.logins_per_s, 10.0) && close(plan.refreshes_per_s, 50.0));
    assert!(close(plan.issuing_cores.unwrap(), 0.205), "{:?}", plan.issuing_cores);
    // 0.6 + 0.205 cores at 70 % of 1 core → 2 instances.
    assert_eq!(plan.instances[1], 2);
    // Without per-route demands nothing is priced, and the plan says so when others are.
    let bare = super::plan(&measured(System::JWT_HS256, 100.0), &params(6_000.0), true);
    assert_eq!(bare.issuing_cores, None);
    assert!(bare.notes.iter().any(|n| n.contains("not priced")), "{:?}", bare.notes);
}

#[test]
fn one_redis_thread_is_a_ceiling_and_the_round_trip_a_constant() {
    // 50 000 req/s × 20 µs of Redis = 1.0 core on one thread → 2 shards at 70 %.
    let p = Params { store_rtt: Duration::from_micros(500), ..params(50_000.0) };
    let plan = plan(&redis(50.0, 20.0), &p, false);
    assert_eq!(plan.store_units, Some([2, 2, 2]));
    assert!(plan.notes.iter().any(|n| n.contains("2 shards needed")), "{:?}", plan.notes);
    // 50 000 × 50 µs = 2.5 cores → 4 instances; 4 + 2 cores in all.
    assert_eq!((plan.instances[1], plan.cores), (4, 6.0));
    // The round trip is added once per store call, whatever the load: p50 ≥ 500 µs + 20 µs.
    assert!(plan.auth_p50_s >= 520e-6, "{}", plan.auth_p50_s);
}

#[test]
fn a_hard_requirement_excludes_and_an_unmeasured_one_is_said() {
    let p = Params { revocation: Some(Duration::from_secs(1)), survive_store_outage: true, ..params(1_000.0) };
    // A JWT without a denylist lives until `exp`: 5 minutes > 1 s.
    let jwt = plan(&measured(System::JWT_HS256, 100.0), &p, false);
    assert_eq!(jwt.excluded, ["revocation window 5 min > required 1 s"]);
    // Redis measured failing closed while the store was down.
    let r = plan(&redis(50.0, 20.0), &p, false);
    assert_eq!(r.excluded, ["store outage: fails closed (503)"]);
    // Not measured: unchecked, never excluded and never assumed met.
    let mut m = redis(50.0, 20.0);
    m.revocation = Revocation::NotMeasured;
    m.outage = Outage::NotMeasured;
    let u = plan(&m, &p, false);
    assert!(u.excluded.is_empty());
    assert_eq!(u.unchecked, ["revocation window not measured", "store outage not measured"]);
}

#[test]
fn a_p99_objective_adds_instances_or_excludes_at_the_floor() {
    // 1-core instances at 70 %: p99 ≈ 1.2 ms. An objective of 600 µs needs more of them.
    let m = measured(System::JWT_HS256, 100.0);
    let loose = plan(&m, &params(7_000.0), false);
    let p = Params { slo_p99: Some(Duration::from_micros(600)), ..params(7_000.0) };
    let tight = plan(&m, &p, false);
    assert!(tight.instances[1] > loose.instances[1], "{} vs {}", tight.instances[1], loose.instances[1]);
    assert!(tight.read_p99_s <= 600e-6 && tight.excluded.is_empty());
    // A store round trip of 1 ms is a floor no instance count removes.
    let p =
        Params { slo_p99: Some(Duration::from_micros(600)), store_rtt: Duration::from_millis(1), ..params(7_000.0) };
    let floor = plan(&redis(50.0, 5.0), &p, false);
    assert_eq!(floor.excluded.len(), 1);
    assert!(floor.excluded[0].starts_with("p99 "), "{:?}", floor.excluded);
}

#[test]
fn ranking_puts_checked_options_first_then_unchecked_then_excluded() {
    let results: Results = serde_json::from_str(include_str!("../../tests/fixtures/full-sweep/results.json")).unwrap();
    let p = Params { revocation: Some(Duration::from_secs(1)), ..params(5_000.0) };
    let advice = advise(&results, None, None, None, &p);
    let order: Vec<(bool, bool)> =
        advice.plans.iter().map(|x| (!x.excluded.is_empty(), !x.unchecked.is_empty())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "{order:?}");
    assert!(advice.plans.iter().any(|x| !x.excluded.is_empty()), "the JWTs fail 1 s");
    assert!(advice.notes.iter().any(|n| n.contains("No revocation.json")), "{:?}", advice.notes);
    assert!(advice.notes.iter().any(|n| n.contains("No per-route demands")), "{:?}", advice.notes);
}
