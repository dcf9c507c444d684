//! End-to-end test of `authbench chaos`: real servers, a private redis-server that the
//! experiment really stops, kills and restarts, and an instance really killed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{run, serial};
use serde_json::Value;

/// `duration`: the run after a 1 s warm-up; the fault starts 2 s in and lasts `outage`.
/// A store restart needs room after the fault: every user must notice at its next request
/// and log in again (argon2id) before the last full second, which must be calm.
fn chaos(out: &std::path::Path, systems: &str, experiments: &str, duration: &str, outage: &str) -> Value {
    let o = run(&[
        "chaos",
        "--systems",
        systems,
        "--experiments",
        experiments,
        "--instances",
        "2",
        "--rate",
        "150",
        "--users",
        "30",
        "--duration",
        duration,
        "--fault-at",
        "2s",
        "--outage",
        outage,
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "chaos failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("recovery"), "summary table: {stdout}");
    serde_json::from_str(&std::fs::read_to_string(out.join("chaos.json")).unwrap()).unwrap()
}

fn find<'a>(results: &'a Value, experiment: &str, system: &str) -> &'a Value {
    results["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["experiment"] == experiment && r["system"] == system)
        .unwrap_or_else(|| panic!("no run {experiment} {system}"))
}

fn total(run: &Value, key: &str) -> u64 {
    run["totals"][key].as_u64().unwrap()
}

#[test]
fn a_store_restart_logs_every_session_out_and_an_instance_loss_only_its_own_users() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let r = chaos(dir.path(), "session-memory,session-redis,jwt-hs256", "store-restart,instance-loss", "8s", "1s");
    assert_eq!(r["kind"], "chaos");
    assert_eq!(r["capped"], false);
    assert_eq!(r["runs"].as_array().unwrap().len(), 6);

    // The store is not on session-memory's or plain JWT's request path.
    for system in ["session-memory", "jwt-hs256"] {
        let run = find(&r, "store-restart", system);
        assert!(total(run, "ok") > 0, "{system}: {run:#}");
        assert_eq!(
            (total(run, "unauthorized"), total(run, "unavailable"), total(run, "no_answer")),
            (0, 0, 0),
            "{system}: {run:#}"
        );
        assert_eq!(run["recovery_ms"], 0.0);
    }
    // An empty store ends every session: each user is refused, logs in again, and the
    // system recovers before the run ends.
    let redis = find(&r, "store-restart", "session-redis");
    assert!(total(redis, "unauthorized") > 0, "{redis:#}");
    assert_eq!(redis["users_relogged"], 30, "{redis:#}");
    assert!(redis["logins_ok"].as_u64().unwrap() >= 30, "{redis:#}");
    assert!(redis["recovery_ms"].as_f64().is_some(), "recovered: {redis:#}");
    let t = redis["fault_start_s"].as_f64().unwrap();
    assert!((2.0..2.5).contains(&t), "the fault starts at --fault-at: {t}");
    assert!(redis["fault_end_s"].as_f64().unwrap() >= t + 1.0, "the store stays down for --outage");
    // The timeline covers the run and adds up to the totals.
    let buckets = redis["timeline"].as_array().unwrap();
    assert!(buckets.len() >= 9);
    let sum: u64 = buckets.iter().map(|b| b["unauthorized"].as_u64().unwrap()).sum();
    assert_eq!(sum, total(redis, "unauthorized"));

    // Instance loss: in-memory sessions lose exactly the users homed on the dead instance;
    // shared state and JWT lose no user, only requests in flight.
    let memory = find(&r, "instance-loss", "session-memory");
    let lost = memory["users_on_lost_instance"].as_u64().unwrap();
    assert_eq!(lost, 15, "half of 30 users lived on one of 2 instances");
    assert_eq!(memory["users_relogged"].as_u64().unwrap(), lost, "{memory:#}");
    assert!(memory["recovery_ms"].as_f64().is_some(), "{memory:#}");
    for system in ["session-redis", "jwt-hs256"] {
        let run = find(&r, "instance-loss", system);
        assert_eq!(total(run, "unauthorized"), 0, "{system}: {run:#}");
        assert_eq!(run["users_relogged"], 0, "{system}");
        assert!(total(run, "no_answer") < 50, "{system}: only in-flight and queued requests are lost: {run:#}");
        assert!(run["recovery_ms"].as_f64().unwrap() < 1000.0, "{system}: {run:#}");
    }
}

#[test]
fn a_hung_store_fails_closed_and_recovers_when_it_resumes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // The freeze outlasts the cached denylist's ping interval plus the store timeout
    // (1 s + 500 ms), so its ping is sure to go unanswered. A shorter freeze can pass
    // unnoticed there, which is safe: nothing can be published while Redis is stopped, and
    // its pub/sub connection delivers what was queued once it resumes.
    // The session cache's copies answer until the lost subscription is noticed the same way.
    let r =
        chaos(dir.path(), "session-redis,jwt-hs256+denylist-cached,session-redis+cached", "store-freeze", "7s", "2s");
    for system in ["session-redis", "jwt-hs256+denylist-cached", "session-redis+cached"] {
        let run = find(&r, "store-freeze", system);
        assert!(total(run, "unavailable") > 0, "{system} fails closed with 503: {run:#}");
        assert_eq!(total(run, "unauthorized"), 0, "{system}: nothing is lost, nobody is logged out");
        assert_eq!(run["users_relogged"], 0);
        assert!(run["recovery_ms"].as_f64().is_some(), "{system} recovered: {run:#}");
        // Answers after the store is back are fine again.
        let end = run["fault_end_s"].as_f64().unwrap();
        let last = run["timeline"].as_array().unwrap().iter().filter(|b| b["t_s"].as_f64().unwrap() >= end + 1.5);
        for b in last {
            assert_eq!(b["unavailable"], 0, "{system}: {b}");
        }
    }
}

/// PostgreSQL frozen (every backend) fails closed and keeps its sessions through a
/// restart; a Redis Cluster with one shard of three frozen fails only that shard's
/// sessions: about a third of what a whole store fails, never all of them.
#[test]
fn postgres_keeps_its_sessions_and_a_frozen_shard_fails_only_its_own() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let r = chaos(dir.path(), "session-postgres,session-redis-cluster", "store-freeze,store-restart", "7s", "2s");
    let during = |run: &Value| -> (u64, u64) {
        let (start, end) = (run["fault_start_s"].as_f64().unwrap(), run["fault_end_s"].as_f64().unwrap());
        let inside = run["timeline"].as_array().unwrap().iter().filter(|b| {
            let t = b["t_s"].as_f64().unwrap();
            t >= start.ceil() && t + 1.0 <= end
        });
        inside.fold((0, 0), |(ok, failed), b| {
            (ok + b["ok"].as_u64().unwrap(), failed + b["unavailable"].as_u64().unwrap())
        })
    };
    let pg = find(&r, "store-freeze", "session-postgres");
    let (ok, failed) = during(pg);
    assert!(failed > 0 && ok == 0, "a frozen PostgreSQL fails every request closed: ok {ok}, 503 {failed}");
    let shard = find(&r, "store-freeze", "session-redis-cluster");
    let (ok, failed) = during(shard);
    let share = failed as f64 / (ok + failed).max(1) as f64;
    assert!(
        (0.1..=0.6).contains(&share),
        "one shard of three fails its own share only: {share:.2} ({ok} ok, {failed} 503)"
    );
    for system in ["session-postgres", "session-redis-cluster"] {
        let run = find(&r, "store-freeze", system);
        assert_eq!(total(run, "unauthorized"), 0, "{system}: a freeze loses nothing");
        assert!(run["recovery_ms"].as_f64().is_some(), "{system} recovered: {run:#}");
    }
    let restart = find(&r, "store-restart", "session-postgres");
    assert!(total(restart, "unavailable") > 0, "{restart:#}");
    assert_eq!(restart["users_relogged"], 0, "PostgreSQL comes back with its sessions: nobody logs in again");
}

#[test]
fn bad_input_is_one_clear_line() {
    let _serial = serial();
    for (args, expect) in [
        (vec!["chaos", "--instances", "1"], "between 2 and 64"),
        (vec!["chaos", "--experiments", "store-melt"], "unknown experiment"),
        (vec!["chaos", "--fault-at", "30s"], "--fault-at"),
        (vec!["chaos", "--rate", "0"], "greater than zero"),
        (vec!["chaos", "--outage", "20s"], "--outage"),
    ] {
        let o = run(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A login storm: half the users log in at once, once per hashing-pool setting, while the
/// others keep reading; every login is answered and the reads' p99 is kept per phase.
#[test]
fn a_login_storm_sends_a_share_of_the_users_to_log_in_at_once_per_pool_setting() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "chaos",
        "--systems",
        "session-redis,jwt-hs256",
        "--experiments",
        "login-storm",
        "--hash-concurrency",
        "1,2",
        "--storm-share",
        "0.5",
        "--instances",
        "2",
        "--rate",
        "150",
        "--users",
        "30",
        "--duration",
        "6s",
        "--fault-at",
        "3s",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "chaos failed\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("drained in"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("chaos.json")).unwrap()).unwrap();
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4, "two systems × two pool settings");
    for run in runs {
        let storm = &run["storm"];
        assert_eq!(storm["users"], 15, "half of 30 users: {storm}");
        assert_eq!(storm["failed"], 0, "{storm}");
        let drain = storm["drain_ms"].as_f64().unwrap();
        // 15 argon2id hashes cannot all finish in the time of one.
        assert!(drain > 0.0 && storm["login_us"]["p99"].as_f64().unwrap() > 0.0, "{storm}");
        assert!(storm["me_p99_before_us"].as_u64().unwrap() > 0, "{storm}");
        assert!(storm["me_p99_during_us"].as_u64().unwrap() > 0, "{storm}");
        // Nothing broke: the reads were all answered.
        assert_eq!(total(run, "unauthorized") + total(run, "unavailable") + total(run, "no_answer"), 0, "{run:#}");
    }
    let pools: Vec<u64> = runs
        .iter()
        .filter(|r| r["system"] == "jwt-hs256")
        .map(|r| r["storm"]["hash_concurrency"].as_u64().unwrap())
        .collect();
    assert_eq!(pools, [1, 2]);
}
