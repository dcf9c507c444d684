//! `sweep --lb haproxy-*`: a real HAProxy between the generator and real instances over
//! loopback, its stickiness learnt from the logins, its CPU recorded, the report's section.
//! Skipped on a machine without haproxy, but not under CI, which installs it (.ci/run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{run, serial};
use serde_json::Value;

fn point<'a>(results: &'a Value, system: &str, lb: &str) -> &'a Value {
    results["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["system"] == system && p["lb"] == lb)
        .unwrap_or_else(|| panic!("no point {system} {lb}"))
}

/// No `haproxy` here: the test is skipped, except under CI, where that is a failure.
fn no_haproxy() -> bool {
    let present = std::process::Command::new("haproxy").arg("-v").output().is_ok();
    test_support::skip_without("haproxy", present)
}

fn error_ratio(p: &Value) -> f64 {
    p["error_ratio"].as_f64().unwrap()
}

#[test]
fn haproxy_balances_sticks_and_is_measured() {
    if no_haproxy() {
        return;
    }
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "session-memory,jwt-hs256",
        "--instances",
        "2",
        "--lb",
        "sticky,haproxy-sticky,haproxy-rr",
        "--rate",
        "150",
        "--duration",
        "1500ms",
        "--warmup",
        "300ms",
        "--min-requests",
        "100",
        "--users",
        "12",
        "--instance-cpu",
        "0.3",
        "--lb-cpu",
        "0.3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "sweep failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let results: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["config"]["lb_cpu"], 0.3);

    // Sessions held on one instance each: the proxy's stick table, learnt from the
    // logins that went through it, sends every request to its session's instance…
    let sticky = point(&results, "session-memory", "haproxy-sticky");
    assert!(error_ratio(sticky) < 0.01, "haproxy-sticky must find every session: {sticky:#}");
    assert!(sticky["held"].as_bool().unwrap(), "{sticky:#}");
    // …while plain round-robin through it misses about half of them with two instances.
    let rr = point(&results, "session-memory", "haproxy-rr");
    let e = error_ratio(rr);
    assert!((0.3..0.7).contains(&e), "haproxy-rr over 2 instances of instance-local sessions: {e}");
    assert!(!rr["held"].as_bool().unwrap(), "it rejects by design, so it never holds");
    // JWT needs no stickiness: through either policy every request is answered.
    for lb in ["haproxy-rr", "haproxy-sticky"] {
        let p = point(&results, "jwt-hs256", lb);
        assert!(error_ratio(p) < 0.01, "{lb}: {p:#}");
        // The proxy's own CPU is recorded, and only on proxied points.
        let us = p["cpu"]["lb_per_request_us"].as_f64().unwrap();
        assert!(us > 0.0 && us < 10_000.0, "{lb}: HAProxy µs per request {us}");
        assert_eq!(p["instances"], 2);
    }
    assert!(point(&results, "jwt-hs256", "sticky")["cpu"].get("lb_per_request_us").is_none());
    // At a fixed rate both paths already ran at one rate: no extra window.
    assert!(point(&results, "jwt-hs256", "haproxy-rr").get("direct_latency").is_none());

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let section = md.split("## Through a real load balancer (HAProxy)").nth(1).expect("the proxy section");
    assert!(section.contains("| jwt-hs256 | 2 | haproxy-rr |"), "{section}");
    assert!(section.contains("rejected (by design)"), "{section}");
    // The proxied points stay out of the scaling lines: no "haproxy" line in the headline.
    let first_screen = md.split("\n## ").next().unwrap();
    assert!(!first_screen.contains("haproxy"), "{first_screen}");
}

/// A searched point through the proxy: its latency run is repeated at the same rate on the
/// same instances with the generator balancing, which is what the proxy added.
#[test]
fn what_the_proxy_adds_is_measured_at_one_rate() {
    if no_haproxy() {
        return;
    }
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "jwt-hs256",
        "--instances",
        "2",
        "--lb",
        "round-robin,haproxy-rr",
        "--search-steps",
        "2",
        "--step-duration",
        "500ms",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--min-requests",
        "200",
        "--users",
        "4",
        "--instance-cpu",
        "0.2",
        "--lb-cpu",
        "0.3",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let p = point(&results, "jwt-hs256", "haproxy-rr");
    assert!(p["held"].as_bool().unwrap(), "{p:#}");
    let (with, without) = (&p["latency"], &p["direct_latency"]);
    assert_eq!(with["offered_rps"], without["offered_rps"], "one rate both ways: {p:#}");
    assert!(without["error_ratio"].as_f64().unwrap() < 0.01, "{without:#}");
    assert!(point(&results, "jwt-hs256", "round-robin").get("direct_latency").is_none());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("At one rate it added"), "{md}");
}

#[test]
fn haproxy_refuses_what_it_cannot_measure() {
    for (args, says) in [
        (vec!["--lb", "haproxy-rr", "--workload", "mixed"], "read workload"),
        (vec!["--lb", "haproxy-rr", "--live-sessions", "1000"], "--live-sessions"),
        (vec!["--lb", "haproxy-rr", "--lb-cpu", "0"], "--lb-cpu"),
    ] {
        let mut argv = vec!["sweep", "--systems", "jwt-hs256", "--instances", "2"];
        argv.extend(args);
        let o = run(&argv);
        assert!(!o.status.success(), "{argv:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(says), "{argv:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// `chaos --haproxy`: an instance killed behind a real HAProxy. Its health checks take the
/// dead instance out; session-memory's users who lived there are refused elsewhere, log in
/// again through the proxy, and are stuck to their new instance; JWT users lose nothing
/// but requests in flight.
#[test]
fn an_instance_loss_through_haproxy_moves_the_users_by_its_health_checks() {
    if no_haproxy() {
        return;
    }
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let o = run(&[
        "chaos",
        "--systems",
        "session-memory,jwt-hs256",
        "--experiments",
        "instance-loss",
        "--haproxy",
        "--instances",
        "2",
        "--rate",
        "150",
        "--users",
        "30",
        "--duration",
        "7s",
        "--fault-at",
        "2s",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "chaos failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(out.path().join("chaos.json")).unwrap()).unwrap();
    assert_eq!(r["config"]["haproxy"], true);
    let find = |system: &str| {
        r["runs"].as_array().unwrap().iter().find(|x| x["system"] == system).unwrap_or_else(|| panic!("{system}"))
    };
    let memory = find("session-memory");
    assert_eq!(memory["lb"], "haproxy-sticky");
    let relogged = memory["users_relogged"].as_u64().unwrap();
    // Round-robin logins over 2 instances: about half of the 30 users lived on the lost one.
    assert!((8..=22).contains(&relogged), "users on the lost instance log in again: {memory:#}");
    assert!(memory["recovery_ms"].as_f64().is_some(), "recovered before the run ended: {memory:#}");
    let jwt = find("jwt-hs256");
    assert_eq!(jwt["lb"], "haproxy-rr");
    assert_eq!(jwt["users_relogged"], 0, "{jwt:#}");
    assert_eq!(jwt["totals"]["unauthorized"], 0, "{jwt:#}");
    assert!(jwt["recovery_ms"].as_f64().is_some(), "{jwt:#}");
}
