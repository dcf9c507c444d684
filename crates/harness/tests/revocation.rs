//! End-to-end test of `authbench revocation`: real servers, a real (private) Redis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{run, serial};
use serde_json::Value;

fn system<'a>(results: &'a Value, id: &str) -> &'a Value {
    results["systems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["system"] == id)
        .unwrap_or_else(|| panic!("no system {id} in {results:#}"))
}

#[test]
fn windows_are_a_round_trip_with_state_and_the_token_lifetime_without() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "revocation",
        "--systems",
        "session-redis,jwt-hs256,jwt-hs256+denylist,session-redis+cached",
        "--repeats",
        "3",
        "--instances",
        "2",
        "--access-ttl",
        "2s",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "revocation failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("not revoked") && stdout.contains("uncapped"), "summary table: {stdout}");

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("revocation.json")).unwrap()).unwrap();
    assert_eq!(results["schema_version"], 1);
    assert_eq!(results["kind"], "revocation");
    for key in ["run_id", "started_at"] {
        assert!(results[key].is_string(), "{key} missing");
    }
    assert!(results["machine"]["cores"].as_u64().unwrap() >= 1);
    assert_eq!(results["config"]["access_ttl"], 2.0);
    assert_eq!(results["systems"].as_array().unwrap().len(), 4);

    for id in ["session-redis", "jwt-hs256", "jwt-hs256+denylist", "session-redis+cached"] {
        let s = system(&results, id);
        assert_eq!(s["instances"], 2, "{id}");
        assert_eq!(s["repeats"], 3, "{id}");
        assert_eq!(s["not_revoked"], 0, "{id}: every repeat revoked: {s:#}");
        assert_eq!(s["samples_ms"].as_array().unwrap().len(), 3, "{id}");
        assert_eq!(s["per_instance_ms"].as_array().unwrap().len(), 3, "{id}");
        for k in ["p50", "p99", "max", "mean"] {
            assert!(s["window_ms"][k].as_f64().is_some(), "{id}: window_ms.{k}");
        }
        assert!(s["notes"].as_str().is_some_and(|n| n.contains("uncapped")), "{id}");
    }
    // With state on the server, a logout is seen at once: about one round trip (for the
    // session cache, one pub/sub message).
    for id in ["session-redis", "jwt-hs256+denylist", "session-redis+cached"] {
        let max = system(&results, id)["window_ms"]["max"].as_f64().unwrap();
        assert!(max < 200.0, "{id}: window {max} ms");
    }
    // Without, the token lives until exp: --access-ttl 2s, exp in whole seconds (so up
    // to one second more), no leeway.
    let none = system(&results, "jwt-hs256");
    for w in none["samples_ms"].as_array().unwrap() {
        let w = w.as_f64().unwrap();
        assert!((1000.0..=3500.0).contains(&w), "jwt-hs256 window {w} ms");
    }
    assert!(none["notes"].as_str().unwrap().contains("exp"), "{none:#}");
}

/// The database and the cluster stores: a logout deletes the session where every instance
/// reads it, so the window is about a round trip too; each runs on a private store.
#[test]
fn postgres_and_cluster_sessions_are_revoked_at_once() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "revocation",
        "--systems",
        "session-postgres,session-postgres+touch,session-redis-cluster",
        "--repeats",
        "3",
        "--instances",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "revocation failed\nstderr:\n{stderr}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("revocation.json")).unwrap()).unwrap();
    for id in ["session-postgres", "session-postgres+touch", "session-redis-cluster"] {
        let s = system(&results, id);
        assert_eq!(s["not_revoked"], 0, "{id}: every repeat revoked: {s:#}");
        let max = s["window_ms"]["max"].as_f64().unwrap();
        assert!(max < 200.0, "{id}: window {max} ms");
        assert!(s["notes"].as_str().is_some_and(|n| n.contains("logout deletes")), "{id}: {s:#}");
    }
}

/// A credential still accepted at the deadline is counted, not waited for.
#[test]
fn a_window_longer_than_the_deadline_is_counted_as_not_revoked() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "revocation",
        "--systems",
        "jwt-hs256",
        "--repeats",
        "2",
        "--instances",
        "2",
        "--access-ttl",
        "5s",
        "--deadline",
        "300ms",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("revocation.json")).unwrap()).unwrap();
    let s = system(&results, "jwt-hs256");
    assert_eq!(s["not_revoked"], 2, "{s:#}");
    assert!(s["samples_ms"].as_array().unwrap().is_empty());
    assert!(s["window_ms"]["p50"].is_null());
    for repeat in s["per_instance_ms"].as_array().unwrap() {
        assert_eq!(repeat, &serde_json::json!([null, null]));
    }
    assert!(s["probes"].as_u64().unwrap() > 2, "probing went on until the deadline");
}

/// The control line reads no credential: there is nothing to revoke, and nothing starts.
#[test]
fn the_control_line_is_refused_with_a_reason() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let o = run(&["revocation", "--systems", "jwt-hs256,control", "--out", out.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("control reads no credential"), "{stderr}");
    assert!(!out.path().join("revocation.json").exists(), "nothing measured");
}
