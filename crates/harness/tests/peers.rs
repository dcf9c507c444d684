//! `authbench peers`: our servers beside the peers, end to end (real servers, the real
//! peer binary, a private Redis, cgroups where the machine allows them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{cgroups_writable, run, serial};
use harness::peers::{FILE_JSON, FILE_MD, PeersResults, Side, render};

#[test]
fn every_pair_is_measured_on_both_sides_and_the_table_renders_from_the_json() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().to_str().unwrap();
    let cores = if cgroups_writable() { "1" } else { "0" };
    let o =
        run(&["peers", "--rounds", "1", "--warmup", "200ms", "--duration", "600ms", "--cores", cores, "--out", dir]);
    assert!(o.status.success(), "authbench peers failed: {}", String::from_utf8_lossy(&o.stderr));

    let results = PeersResults::read(out.path()).unwrap();
    assert_eq!(results.pairs, ["healthz", "jwt-hs256", "session-memory", "session-redis"]);
    assert_eq!(results.rounds.len(), 8, "four pairs, two sides, one round");
    for r in &results.rounds {
        assert!(r.rps > 100.0, "{} {:?}: {} req/s", r.pair, r.side, r.rps);
        assert!(r.cpu_us_per_request > 0.0 && r.cpu_us_per_request < 10_000.0, "{r:?}");
        assert!(r.p50_ms <= r.p99_ms, "{r:?}");
        let redis = r.pair == "session-redis";
        assert_eq!(r.store_commands_per_request.is_some(), redis, "{r:?}");
        if redis {
            // Both read the session with one command per request (ours refreshes the TTL
            // in the same command).
            let cmds = r.store_commands_per_request.unwrap();
            assert!((0.9..1.2).contains(&cmds), "{:?}: {cmds} Redis commands per request", r.side);
        }
    }
    assert!(results.rounds.iter().any(|r| r.side == Side::Peer));
    if cores == "1" {
        assert_eq!(results.cores, Some(1.0));
        // A cap of one core: no round used more.
        assert!(results.rounds.iter().all(|r| r.server_cores < 1.15), "{:?}", results.rounds);
    }

    let md = std::fs::read_to_string(out.path().join(FILE_MD)).unwrap();
    assert_eq!(md, render(&results), "peers.md is a function of peers.json");
    for needle in [
        "| jwt-hs256 vs axum + jsonwebtoken 12",
        "tower-sessions 0.14, MemoryStore",
        "## What each pair does differently",
    ] {
        assert!(md.contains(needle), "{needle} missing from:\n{md}");
    }
    assert!(out.path().join(FILE_JSON).is_file());

    // --render re-makes the same bytes from peers.json alone.
    std::fs::remove_file(out.path().join(FILE_MD)).unwrap();
    let o = run(&["peers", "--render", "--out", dir]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(out.path().join(FILE_MD)).unwrap(), md);
}

#[test]
fn bad_flags_get_clear_errors() {
    let o = run(&["peers", "--pairs", "healthz,nope"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown pair \"nope\"") && err.contains("session-redis"), "{err}");
    let o = run(&["peers", "--cores=-1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("0 (uncapped)"));
    let o = run(&["peers", "--rounds", "0"]);
    assert!(!o.status.success());
}
