//! End-to-end tests of `authbench`: real servers, real Redis, real cgroups where the
//! machine allows them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::{authbench, cgroups_writable, ensure_servers, run, serial};
use serde_json::Value;

/// PIDs of running session-server / jwt-server processes started from our target dir.
fn server_pids() -> Vec<u32> {
    let dir = ensure_servers();
    let ours = [dir.join("session-server"), dir.join("jwt-server")];
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| ours.contains(&exe)))
        .collect()
}

fn point<'a>(results: &'a Value, system: &str, n: u64, lb: &str) -> &'a Value {
    results["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["system"] == system && p["instances"] == n && p["lb"] == lb)
        .unwrap_or_else(|| panic!("no point {system} N={n} {lb} in {results:#}"))
}

fn total_errors(p: &Value) -> u64 {
    let e = &p["errors"];
    let statuses: u64 = e["by_status"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    statuses + ["timeouts", "connect", "io", "unsent"].iter().map(|k| e[k].as_u64().unwrap()).sum::<u64>()
}

#[test]
fn fixed_rate_sweep_writes_results_that_tell_the_truth() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let before = server_pids();
    let o = run(&[
        "sweep",
        "--systems",
        "session-memory,session-redis,jwt-hs256,control",
        "--instances",
        "1,2",
        "--rate",
        "120",
        "--duration",
        "1500ms",
        "--warmup",
        "300ms",
        "--min-requests",
        "100",
        "--users",
        "8",
        "--instance-cpu",
        "0.3",
        "--store-cpu",
        "0.3",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "sweep failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("system") && stdout.contains("achieved"), "summary table printed: {stdout}");

    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["schema_version"], 2, "capacity and latency apart");
    for key in ["run_id", "started_at", "finished_at"] {
        assert!(results[key].is_string(), "{key} missing");
    }
    for key in ["cpu_model", "kernel"] {
        assert!(results["machine"][key].as_str().is_some_and(|s| !s.is_empty()), "machine.{key}");
    }
    assert!(results["machine"]["cores"].as_u64().unwrap() >= 1);
    assert!(results["machine"]["memory_bytes"].as_u64().unwrap() > 0);
    assert_eq!(results["config"]["rate"], 120.0);
    assert!(results["problems"].as_array().unwrap().is_empty(), "{}", results["problems"]);
    // Calibration: a probe before the first step and after every step; the
    // store (a private redis-server, for session-redis) is pinged in every probe.
    let probes = results["calibration"]["probes"].as_array().unwrap();
    let steps = 8; // 4 systems × N = 1, 2
    assert_eq!(probes.len(), steps + 1, "{probes:#?}");
    for p in probes {
        assert!(p["cpu_loop_us"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["loopback_rtt_us"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["store_ping_us"].as_f64().unwrap() > 0.0, "{p}");
    }
    assert!(probes.windows(2).all(|w| w[0]["at_s"].as_f64() <= w[1]["at_s"].as_f64()), "in run order");

    // Capped exactly when this machine lets us create CPU cgroups, and every point agrees.
    let capped = cgroups_writable();
    assert_eq!(results["caps"]["capped"], capped, "{}", results["caps"]);
    if capped {
        assert_eq!(results["caps"]["period_us"], 10_000);
        assert_eq!(results["caps"]["instance_cpu"], 0.3);
    }
    let points = results["points"].as_array().unwrap();
    // 4 systems x N=1,2, plus session-memory N=2 under both policies.
    assert_eq!(points.len(), 9, "{points:#?}");
    for p in points {
        assert_eq!(p["capped"], capped);
        for k in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(p["latency_us"][k].is_number(), "latency_us.{k}");
        }
        assert!(p["requests"].as_u64().unwrap() >= 100, "{p}");
        assert!(p["cpu"]["instances_total_s"].as_f64().unwrap() > 0.0, "instance CPU observed: {p}");
        assert!(p["cpu"]["generator_s"].as_f64().unwrap() >= 0.0);
        assert!(p["cpu"]["steal_s"].as_f64().unwrap() >= 0.0, "the hypervisor's share is recorded: {p}");
        assert_eq!(p["rss_bytes"].as_array().unwrap().len() as u64, p["instances"].as_u64().unwrap());
        assert!(!p["histogram"].as_str().unwrap().is_empty(), "raw histogram kept");
        assert_eq!(p["offered_rps"], 120.0);
    }

    // Shared state and stateless tokens: no errors at all, the offered rate achieved.
    for (system, n, lb) in [
        ("session-redis", 1, "round-robin"),
        ("session-redis", 2, "round-robin"),
        ("jwt-hs256", 1, "round-robin"),
        ("jwt-hs256", 2, "round-robin"),
        ("session-memory", 1, "round-robin"),
        ("session-memory", 2, "sticky"),
        // The control answers every instance, whoever's cookie it gets.
        ("control", 1, "round-robin"),
        ("control", 2, "round-robin"),
    ] {
        let p = point(&results, system, n, lb);
        assert_eq!(total_errors(p), 0, "{system} N={n} {lb}: {}", p["errors"]);
        let achieved = p["achieved_rps"].as_f64().unwrap();
        assert!((achieved - 120.0).abs() / 120.0 < 0.05, "{system} N={n}: achieved {achieved} vs offered 120");
    }

    // Per-instance sessions behind round-robin: the other instance rejects (N-1)/N = 1/2.
    let rr = point(&results, "session-memory", 2, "round-robin");
    let ratio = rr["error_ratio"].as_f64().unwrap();
    assert!((ratio - 0.5).abs() < 0.1, "session-memory round-robin N=2 rejected {ratio}, expected ~0.5");
    assert!(rr["errors"]["by_status"]["401"].as_u64().unwrap() > 0);
    assert_eq!(rr["held"], false);

    // One store round trip per authenticated request.
    for n in [1, 2] {
        let store = &point(&results, "session-redis", n, "round-robin")["store"];
        let cpr = store["commands_per_request"].as_f64().unwrap();
        assert!((0.95..1.1).contains(&cpr), "session-redis N={n}: {cpr} Redis commands per request");
        assert!(store["bytes_per_session"].as_f64().unwrap() > 0.0);
    }
    assert!(point(&results, "jwt-hs256", 2, "round-robin")["store"].is_null());
    assert!(point(&results, "control", 2, "round-robin")["store"].is_null());

    // The report sets the systems against the control line.
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("## The control line: what the rig costs"), "{report}");
    assert!(report.contains("beyond the control's"), "{report}");

    // Nothing left behind: no server processes, no cgroups.
    assert_eq!(server_pids(), before, "orphaned server processes");
    let run_id = results["run_id"].as_str().unwrap();
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/cpu"] {
        assert!(!Path::new(root).join(format!("authbench-{run_id}")).exists(), "cgroup left in {root}");
    }
}

#[test]
fn bad_input_gets_one_clear_message_and_a_non_zero_exit() {
    let _serial = serial();
    let cases: &[(&[&str], &str)] = &[
        (&["sweep", "--systems", "jwt-none"], "unknown system"),
        (&["sweep", "--duration", "0s"], "greater than zero"),
        (&["sweep", "--instances", "0"], "between 1 and 64"),
        (&["sweep", "--instances", ""], "instance"),
        (&["sweep", "--rate=-5"], "greater than zero"),
        (&["sweep", "--workload", "write"], "unknown --workload"),
        (&["sweep", "--repeat", "0"], "--repeat"),
        (&["sweep", "--repeat", "many"], "--repeat"),
        (&["sweep", "--repeat-search"], "--repeat-search needs --repeat 2 or more"),
        (&["sweep", "--repeat", "2", "--repeat-search", "--rate", "100"], "give one of them"),
        (&["sweep", "--store-rtt=-1ms"], "negative"),
        (&["sweep", "--store-rtt", "soon"], "--store-rtt"),
        (&["sweep", "--store-rtt", "0,500us,0.5ms"], "twice"),
        (&["sweep", "--store-rtt", "0,200ms"], "at most 100ms"),
        (&["sweep", "--store-cpu", ""], "--store-cpu"),
        (&["sweep", "--store-cpu", "0.1,0.1"], "twice"),
        (&["sweep", "--store-cpu", "0.1,0.2", "--redis-url", "redis://127.0.0.1:6379"], "private, capped Redis"),
        (&["sweep", "--systems", "jwt-hs256", "--store-rtt", "1ms"], "none of --systems uses one"),
        (&["sweep", "--systems", "session-redis+touch"], "unknown system"),
        (&["sweep", "--store-shards", "0"], "1 to 16 shards"),
        (&["sweep", "--store-shards", "two"], "not a number of shards"),
        (&["sweep", "--systems", "session-redis-cluster", "--store-shards", "1,2,1"], "lists 1 twice"),
        (&["sweep", "--systems", "session-redis", "--store-shards", "1,2"], "none of --systems is that"),
        (&["sweep", "--systems", "session-redis,session-postgres", "--store-rtt", "1ms"], "Redis only so far"),
        (&["sweep", "--live-sessions", "0"], "from 1 to 2000000"),
        (&["sweep", "--live-sessions", "lots"], "not a number of sessions"),
        (&["sweep", "--live-sessions", "1000,1000"], "lists 1000 twice"),
        (&["sweep", "--live-sessions", "1000", "--live-spread", "pareto"], "--live-spread"),
        (&["sweep", "--live-sessions", "1000", "--workload", "mixed"], "use --workload read"),
        (&["sweep", "--systems", "session-redis-cluster,control", "--live-sessions", "1000"], "can hold preloaded"),
        (&["sweep", "--live-sessions", "1000", "--live-purge-wait=-1s"], "negative"),
        (&["sweep", "--workload", "mixed", "--slo-login", "2"], "--slo-login"),
        (&["sweep", "--workload", "mixed", "--session-length", "0s"], "greater than zero"),
        (&["sweep", "--workload", "mixed", "--session-length=-5m"], "--session-length"),
        (&["sweep", "--workload", "mixed", "--requests-per-user-per-minute", "0"], "greater than zero"),
        (&["chaos", "--storm-share", "1.5"], "--storm-share must be above 0 and at most 1"),
        (&["chaos", "--storm-share", "0"], "greater than zero"),
        (&["chaos", "--hash-concurrency", "0"], "--hash-concurrency must be between 1 and 64"),
        (&["chaos", "--hash-concurrency", "two"], "--hash-concurrency"),
        (&["load", "--url", "http://127.0.0.1:1/healthz", "--duration", "1s"], "cannot connect"),
        (&["load", "--url", "http://192.0.2.1/", "--duration", "1s"], "loopback"),
        (&["load", "--url", "http://127.0.0.1:1/", "--duration", "0s"], "greater than zero"),
    ];
    for (args, needle) in cases {
        let o = run(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: stderr lacks {needle:?}:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    }
    // A bad --repeat is a usage error: exit 2, one error line, nothing started.
    let o = run(&["sweep", "--repeat", "0", "--out", "/nonexistent/never-created"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");
    assert!(!Path::new("/nonexistent/never-created").exists());
}

#[test]
fn load_holds_the_offered_rate_against_a_real_server() {
    let _serial = serial();
    let dir = ensure_servers();
    let mut server = Command::new(dir.join("session-server"))
        .args(["--listen", "127.0.0.1:0", "--demo-users", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.take().unwrap()), &mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap().to_owned();
    let o = run(&[
        "load",
        "--url",
        &format!("{addr}/healthz"),
        "--rate",
        "400",
        "--duration",
        "2s",
        "--warmup",
        "200ms",
        "--json",
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let achieved = report["achieved_rps"].as_f64().unwrap();
    assert!((achieved - 400.0).abs() / 400.0 < 0.01, "open loop held {achieved} of 400 rps");
    assert_eq!(report["by_status"]["200"].as_u64().unwrap(), report["requests"].as_u64().unwrap());
    assert_eq!(report["error_ratio"], 0.0);
    assert!(report["scheduler_lag_us"]["p99"].as_u64().is_some());
}

#[test]
fn an_instance_that_dies_mid_run_stops_the_sweep_and_keeps_completed_points() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let before = server_pids();
    ensure_servers();
    let child = Command::new(authbench())
        .args(["sweep", "--systems", "jwt-hs256,session-memory", "--instances", "1", "--rate", "100"])
        .args([
            "--duration",
            "3s",
            "--warmup",
            "200ms",
            "--min-requests",
            "50",
            "--users",
            "4",
            "--instance-cpu",
            "0.3",
        ])
        .args(["--out", out_dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the session-server of the second step, then kill it.
    let session = ensure_servers().join("session-server");
    let deadline = Instant::now() + Duration::from_secs(60);
    let victim = loop {
        let found = server_pids()
            .into_iter()
            .filter(|p| !before.contains(p))
            .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == session));
        if let Some(pid) = found {
            break pid;
        }
        assert!(Instant::now() < deadline, "session-server never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(1500));
    Command::new("kill").args(["-KILL", &victim.to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "sweep should fail when an instance dies");
    assert!(stderr.contains("died") || stderr.contains("exited"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    let points = results["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "the jwt-hs256 point completed before the failure");
    assert_eq!(points[0]["system"], "jwt-hs256");
    assert!(!results["problems"].as_array().unwrap().is_empty());
    assert_eq!(server_pids(), before, "orphaned server processes");
}

/// The denylist systems are not in the default sweep but run when asked, sharing the
/// HS256 key with jwt-hs256: `denylist` asks Redis once per request, `denylist-cached`
/// (almost) never.
#[test]
fn denylist_systems_run_when_asked() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "jwt-hs256,jwt-hs256+denylist,jwt-hs256+denylist-cached",
        "--instances",
        "2",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--min-requests",
        "50",
        "--users",
        "4",
        "--no-cgroups",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    for id in ["jwt-hs256", "jwt-hs256+denylist", "jwt-hs256+denylist-cached"] {
        assert_eq!(total_errors(point(&results, id, 2, "round-robin")), 0, "{id}");
    }
    assert!(point(&results, "jwt-hs256", 2, "round-robin")["store"].is_null());
    let per_request = |id| point(&results, id, 2, "round-robin")["store"]["commands_per_request"].as_f64().unwrap();
    assert!((0.9..=1.2).contains(&per_request("jwt-hs256+denylist")), "{}", per_request("jwt-hs256+denylist"));
    assert!(per_request("jwt-hs256+denylist-cached") < 0.5, "{}", per_request("jwt-hs256+denylist-cached"));
}

/// The live-sessions axis: sessions preloaded into each store (and into session-memory's
/// instances and jwt-server's refresh store by flag), requests spread over them, and what
/// holding them took, recorded and reported.
#[test]
fn live_sessions_are_preloaded_and_what_they_hold_is_recorded() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "session-memory,session-redis,session-postgres,jwt-hs256,jwt-hs256+denylist-cached",
        "--instances",
        "2",
        "--live-sessions",
        "300,30000",
        "--live-purge-wait",
        "0s",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--min-requests",
        "30",
        "--users",
        "4",
        "--no-cgroups",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["config"]["live_sessions"], serde_json::json!([300, 30000]));
    let live = |id: &str, n: u64, spread: &str| -> Value {
        results["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["system"] == id && p["live"]["sessions"] == n && p["live"]["spread"] == spread)
            .unwrap_or_else(|| panic!("no live point {id} {n} {spread}"))
            .clone()
    };
    for id in ["session-memory", "session-redis", "session-postgres", "jwt-hs256", "jwt-hs256+denylist-cached"] {
        for n in [300, 30000] {
            for spread in ["uniform", "zipf"] {
                let p = live(id, n, spread);
                assert_eq!(total_errors(&p), 0, "{id} {n} {spread}: every preloaded session answered: {p:#}");
                let credentials = p["live"]["credentials"].as_u64().unwrap();
                if id.starts_with("session") {
                    assert_eq!(credentials, n, "{id}: the requests spread over the preloaded sessions");
                } else {
                    assert_eq!(credentials, 4, "{id}: the logged-in users' tokens");
                }
            }
        }
        // 30 000 sessions, not 3 000: two instances' RSS moves by ±100 KB on its own, and
        // 2 700 sessions (~450 KB) once came out 94 KB below 300.
        let (small, large) = (live(id, 300, "uniform"), live(id, 30000, "uniform"));
        assert!(
            large["live"]["state_bytes"].as_u64() > small["live"]["state_bytes"].as_u64(),
            "{id}: more sessions, more bytes held: {} vs {}",
            small["live"],
            large["live"]
        );
    }
    // Redis: growth per session about what MEMORY USAGE says a key takes, plus its index.
    let redis = live("session-redis", 30000, "uniform")["live"].clone();
    let per = (redis["state_bytes"].as_f64().unwrap() - redis["state_bytes_before"].as_f64().unwrap()) / 30000.0;
    assert!((120.0..400.0).contains(&per), "Redis used_memory per session: {per}");
    assert_eq!(live("session-postgres", 30000, "zipf")["live"]["held_in"], "postgres-relation");
    // A JWT system's families are in its instances, even when its denylist is in Redis.
    assert_eq!(live("jwt-hs256+denylist-cached", 30000, "uniform")["live"]["held_in"], "instance-rss");
    assert_eq!(live("session-memory", 30000, "zipf")["lb"], "sticky");
    // The main line is unchanged beside the axis, and the report has the section.
    assert!(point(&results, "session-redis", 2, "round-robin")["live"].is_null());
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("## Live sessions as an axis"), "{report}");
    assert!(out_dir.join("live-memory.svg").exists());
}

/// The session near-cache against plain session-redis in one sweep: the same sessions, the
/// store asked once per copy lifetime instead of on every request.
#[test]
fn the_session_cache_spares_the_store() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "session-redis,session-redis+cached",
        "--instances",
        "2",
        "--rate",
        "200",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--min-requests",
        "50",
        "--users",
        "4",
        "--no-cgroups",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    let per_request = |id| point(&results, id, 2, "round-robin")["store"]["commands_per_request"].as_f64().unwrap();
    for id in ["session-redis", "session-redis+cached"] {
        assert_eq!(total_errors(point(&results, id, 2, "round-robin")), 0, "{id}");
    }
    assert!((0.9..=1.2).contains(&per_request("session-redis")), "{}", per_request("session-redis"));
    assert!(per_request("session-redis+cached") < 0.1, "{}", per_request("session-redis+cached"));
}

/// The PostgreSQL systems run in a sweep against a private cluster the sweep starts and
/// removes: one statement per request; a write per request, or (`+touch`) none once every
/// session's expiry is fresh; WAL with the writes; the settings recorded.
#[test]
fn postgres_systems_run_on_a_private_cluster_with_their_writes_measured() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let before = server_pids();
    let clusters_before = temp_dirs("authbench-pg-");
    let o = run(&[
        "sweep",
        "--systems",
        "session-postgres,session-postgres+touch",
        "--instances",
        "2",
        "--rate",
        "150",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--min-requests",
        "100",
        "--users",
        "8",
        "--store-cpu",
        "0.5",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    let pg = &results["postgres"];
    assert!(pg["version"].as_str().unwrap().starts_with(char::is_numeric), "{pg}");
    assert_eq!((pg["fsync"].as_bool(), pg["unlogged"].as_bool()), (Some(true), Some(false)), "{pg}");
    assert!(!pg["data_filesystem"].as_str().unwrap().is_empty(), "{pg}");
    for id in ["session-postgres", "session-postgres+touch"] {
        let p = point(&results, id, 2, "round-robin");
        assert_eq!(total_errors(p), 0, "{id}: {p:#}");
        let store = &p["store"];
        let statements = store["commands_per_request"].as_f64().unwrap();
        assert!((0.9..=1.1).contains(&statements), "{id}: one statement per request, got {statements}");
        assert!(store["bytes_per_session"].as_f64().unwrap() > 0.0, "{id}");
        assert!(p["cpu"]["store_per_request_us"].as_f64().unwrap() > 0.0, "{id}");
    }
    let every = &point(&results, "session-postgres", 2, "round-robin")["store"];
    let touch = &point(&results, "session-postgres+touch", 2, "round-robin")["store"];
    // Row updates lag by up to a second at each edge of the window: loose bounds.
    assert!(every["writes_per_request"].as_f64().unwrap() > 0.5, "{every}");
    assert!(touch["writes_per_request"].as_f64().unwrap() < 0.05, "{touch}");
    // WAL is exact: every write logs its new row version; no write, (almost) no WAL.
    assert!(every["wal_bytes_per_request"].as_f64().unwrap() > 50.0, "{every}");
    assert!(touch["wal_bytes_per_request"].as_f64().unwrap() < 10.0, "{touch}");
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("writes/request") && report.contains("fsync on"), "report lacks the PostgreSQL table");
    assert_eq!(server_pids(), before, "orphaned server processes");
    assert_eq!(temp_dirs("authbench-pg-"), clusters_before, "the private cluster's directory is removed");
}

/// Entries of the temp dir whose names start with `prefix`.
fn temp_dirs(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// session-redis-cluster runs on a private Redis Cluster per shard count, and the shards
/// axis is measured at the largest N: every request one command on the cluster.
#[test]
fn the_cluster_system_runs_on_private_clusters_of_each_shard_count() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let before = server_pids();
    let clusters_before = temp_dirs("authbench-cluster-");
    let o = run(&[
        "sweep",
        "--systems",
        "session-redis-cluster",
        "--instances",
        "1,2",
        "--store-shards",
        "1,3",
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
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    let points = results["points"].as_array().unwrap();
    let shards: Vec<(u64, u64)> =
        points.iter().map(|p| (p["instances"].as_u64().unwrap(), p["store_shards"].as_u64().unwrap())).collect();
    assert_eq!(shards, [(1, 1), (2, 1), (2, 3)], "main line at 1 shard, the axis at the largest N");
    for p in points {
        assert_eq!(total_errors(p), 0, "{p:#}");
        let per_request = p["store"]["commands_per_request"].as_f64().unwrap();
        assert!((0.9..=1.1).contains(&per_request), "one GETEX per request on the cluster: {per_request}");
    }
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("Store shards as an axis"), "the report shows the shards axis");
    assert_eq!(server_pids(), before, "orphaned server processes");
    assert_eq!(temp_dirs("authbench-cluster-"), clusters_before, "the clusters' node files are removed");
}

/// One jwt-hs256 instance at 0.2 core, two short find-max tries, two rounds: the quick sweep
/// the find-max and repeat tests share.
const TWO_SHORT_ROUNDS: &[&str] = &[
    "sweep",
    "--systems",
    "jwt-hs256",
    "--instances",
    "1",
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
    "--repeat",
    "2",
];

/// Find-max measures capacity on throughput and errors alone, then latency apart, at 70 %
/// of the rate that held, and judges the p99 objective there.
#[test]
fn find_max_measures_capacity_then_latency_at_70_percent_of_it() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[TWO_SHORT_ROUNDS, &["--out", out_dir.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "sweep failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("p99@70%"), "the summary shows the latency run: {stdout}");
    assert!(stderr.contains("round 2"), "the second round is shown: {stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    let p = point(&results, "jwt-hs256", 1, "round-robin");
    assert_eq!(p["mode"], "find-max");
    let search = p["search"].as_array().unwrap();
    // Two tries, then the final run may step down at 90 % up to FINAL_RUNS − 1 times.
    let most = 2 + harness::sweep::search::FINAL_RUNS - 1;
    assert!(!search.is_empty() && search.len() <= most, "two tries and at most {most} entries: {search:#?}");
    for step in search {
        let why = step["why"].as_str().unwrap();
        assert!(!why.contains("SLO") && !why.contains("tried again"), "latency is no reason to stop: {why}");
    }
    let offered = p["offered_rps"].as_f64().unwrap();
    // The first try runs at a third of a closed-loop probe and the final run (stepped down at
    // 90 % when it misses) at the best rate that held: a point that holds nothing here is a broken rig.
    assert_eq!(p["held"], true, "{p:#}");
    {
        let l = &p["latency"];
        assert_eq!(l["share"], 0.7);
        let rate = l["offered_rps"].as_f64().unwrap();
        assert!((rate - 0.7 * offered).abs() < 1e-6 * offered, "latency at 70% of {offered}: {rate}");
        let p99 = l["latency_us"]["p99"].as_u64().unwrap();
        assert_eq!(l["slo_met"], p99 <= 5_000, "the objective is judged on this run: {l}");
        assert!(l["requests"].as_u64().unwrap() >= 200, "{l}");
        assert!(!l["histogram"].as_str().unwrap().is_empty());
        if cgroups_writable() {
            assert!(l["periods"].as_u64().unwrap() > 0 && l["throttled_periods"].is_u64(), "{l}");
        }
    }
    // --repeat 2: the final run and the latency run again, at the same rate, in a second round.
    assert_eq!(results["config"]["repeat"], 2);
    let repeats = p["repeats"].as_array().unwrap();
    assert_eq!(repeats.len(), 1, "{p:#}");
    let r = &repeats[0];
    assert_eq!(r["round"], 2);
    assert_eq!(r["offered_rps"].as_f64().unwrap(), offered, "the same rate as round 1");
    assert!(r["cpu_per_request_us"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["latency_p99_us"].as_u64().unwrap() > 0 && r["slo_met"].is_boolean(), "{r}");
    // A calibration probe before the run and after every step of both rounds.
    assert_eq!(results["calibration"]["probes"].as_array().unwrap().len(), 3);
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("capacity = the highest measured rate"), "the run line says what capacity is");
    assert!(report.contains("## Repeats: 2 rounds per point"), "the repeats section");
}

/// `--repeat-search`: the second round searches the point's capacity again and measures at
/// the rate its own search ended at, its log kept with the round.
#[test]
fn repeat_search_searches_each_point_again_in_every_round() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[TWO_SHORT_ROUNDS, &["--repeat-search", "--out", out_dir.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["config"]["repeat_search"], true);
    let p = point(&results, "jwt-hs256", 1, "round-robin");
    assert_eq!(p["held"], true, "{p:#}");
    let r = &p["repeats"].as_array().unwrap()[0];
    let search = r["search"].as_array().expect("the round's own search log");
    let tries: Vec<&Value> = search.iter().filter(|s| !s["why"].as_str().unwrap().starts_with("final run")).collect();
    assert!(!tries.is_empty() && tries.len() <= 2, "two tries at most, as in round 1: {search:#?}");
    // The round measured at the best rate its own tries held, or 90 % steps below it when the
    // final run missed (each such miss logged), or under the lowest try when none held.
    let offered = r["offered_rps"].as_f64().unwrap();
    let retries = search.len() - tries.len();
    let best =
        tries.iter().filter(|s| s["held"] == true).map(|s| s["offered_rps"].as_f64().unwrap()).fold(0.0, f64::max);
    if best > 0.0 {
        let expected = best * harness::sweep::search::FINAL_RETRY.powi(retries as i32);
        assert!((offered - expected).abs() < 1e-6 * expected, "round 2 at {offered}, its search: {search:#?}");
    }
    assert!(r["latency_p99_us"].as_u64().unwrap() > 0, "the latency run again: {r}");
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("capacity was searched again in each of 1 later rounds"), "the repeats section says so");
}

/// Store capacity and the store's round trip as the run records them: one point per store
/// cap, and the round trip through the delay proxy measured under load.
#[test]
fn store_caps_and_a_store_round_trip_are_measured_and_recorded() {
    let _serial = serial();
    let before = delay_proxies();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "session-redis,jwt-hs256",
        "--instances",
        "1",
        "--rate",
        "100",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--min-requests",
        "50",
        "--users",
        "4",
        "--instance-cpu",
        "0.3",
        "--store-cpu",
        "0.1,0.3",
        "--store-rtt",
        "2ms,0",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["config"]["store_cpus"], serde_json::json!([0.1, 0.3]));
    assert_eq!(results["config"]["store_rtt"], 0.002);
    assert_eq!(results["config"]["store_rtts"], serde_json::json!([0.002, 0.0]));
    let points = results["points"].as_array().unwrap();
    assert_eq!(points.len(), 4, "session-redis at two store caps and two round trips, jwt-hs256 once: {points:#?}");
    let axes: Vec<(&Value, &Value)> = points
        .iter()
        .filter(|p| p["system"] == "session-redis")
        .map(|p| (&p["store_cpu"], &p["store_rtt_us"]))
        .collect();
    let (c1, c3, r2, r0) =
        (serde_json::json!(0.1), serde_json::json!(0.3), serde_json::json!(2000.0), serde_json::json!(0.0));
    assert_eq!(axes, [(&c1, &r2), (&c3, &r2), (&c1, &r0)], "one store dimension at a time");
    let hs = point(&results, "jwt-hs256", 1, "round-robin");
    assert!(hs["store_cpu"].is_null() && hs["store_rtt"].is_null(), "no store, no store axis: {hs}");
    let straight = points.iter().find(|p| p["store_rtt_us"] == 0.0).unwrap();
    assert!(straight["store_rtt"].is_null(), "a round trip of 0 goes straight to the store: {straight}");
    for p in points.iter().filter(|p| p["system"] == "session-redis" && p["store_rtt_us"] == 2000.0) {
        assert_eq!(total_errors(p), 0, "{p}");
        let rtt = &p["store_rtt"];
        assert_eq!(rtt["target_us"], 2000.0);
        assert!(rtt["samples"].as_u64().unwrap() >= 5, "sampled through the window: {rtt}");
        let added = rtt["added_us"].as_f64().unwrap();
        assert!(added > 1500.0, "the delay is there, both ways: {rtt}");
        let flagged = p["flags"].as_array().unwrap().iter().any(|f| f == "store-rtt-off");
        assert_eq!(flagged, rtt["within"] == false, "flagged exactly when off target: {p}");
        assert!(rtt["proxy_cpu_s"].as_f64().unwrap() >= 0.0);
        let hold = rtt["hold_us"].as_f64().unwrap();
        assert!((0.0..=2000.0).contains(&hold), "the steered hold stays within 0..=target: {rtt}");
    }
    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(report.contains("## Store capacity as an axis"), "{report}");
    assert!(report.contains("The store a round trip away"), "{report}");
    assert!(report.contains("## The store's round trip as an axis"), "{report}");
    // The proxy went with the run.
    assert_eq!(delay_proxies(), before, "delay proxy left running");
}

/// PIDs of running `authbench delay-proxy` processes.
fn delay_proxies() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            String::from_utf8_lossy(&cmdline).contains("delay-proxy").then_some(pid)
        })
        .collect()
}

/// The mixed workload: its mix from the user profile, per-route figures on every point, and
/// each route's service demand measured alone, over real servers and a real Redis.
#[test]
fn a_mixed_run_keeps_per_route_figures_and_measures_each_route_alone() {
    let _serial = serial();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let o = run(&[
        "sweep",
        "--systems",
        "session-redis,jwt-hs256",
        "--instances",
        "1",
        "--workload",
        "mixed",
        "--session-length",
        "2m",
        "--requests-per-user-per-minute",
        "60",
        "--access-ttl",
        "30s",
        "--rate",
        "300",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--step-duration",
        "500ms",
        "--min-requests",
        "30",
        "--users",
        "8",
        "--no-cgroups",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep failed\nstderr:\n{stderr}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap()).unwrap();
    // 120 reads, 3 refreshes (at 30, 60 and 90 s), a login and a logout per 2-minute session.
    assert_eq!(results["config"]["profile"]["session_length"], 120.0);
    assert_eq!(results["config"]["instance_cpu"], 0.3, "a mixed run's default cap");
    assert_eq!(results["config"]["store_cpu"], 0.6, "and its store's: two instances' worth");
    for (id, routes) in [("session-redis", &["me", "login"][..]), ("jwt-hs256", &["me", "refresh", "login"][..])] {
        let p = point(&results, id, 1, "round-robin");
        for r in routes {
            let stats = &p["routes"][r];
            assert!(stats["requests"].as_u64().unwrap() > 0, "{id}: {r} was sent: {}", p["routes"]);
            assert_eq!(stats["errors"], 0, "{id} {r}: {stats}");
        }
        let refresh = p["routes"]["refresh"]["requests"].as_u64().unwrap_or(0) as f64;
        let me = p["routes"]["me"]["requests"].as_u64().unwrap() as f64;
        if id == "jwt-hs256" {
            // 3 refreshes per 114 /me (5 % of 120 reads are /admin): about 1 in 38.
            assert!((0.01..0.07).contains(&(refresh / me)), "{id}: refresh/me = {}", refresh / me);
        } else {
            assert_eq!(refresh, 0.0, "a session server has no refresh");
        }
        // One active user per request/s (60 requests a minute each), drawn from the users of
        // 20 000 requests/s preloaded before the point: sessions written into Redis, refresh
        // families handed to the JWT instances. Nobody logged in with argon2id for them.
        let users = &p["mix_users"];
        assert_eq!(users["preloaded"], 20_000, "{id}: {users}");
        // JWT reads carry the 8 logged-in users' tokens: verifying one reads no server state.
        let (credentials, active) = if id == "jwt-hs256" { (8, 8) } else { (20_000, 300) };
        assert_eq!(users["credentials"], credentials, "{id}: {users}");
        assert_eq!(users["active"], active, "{id}: one user per request/s at 300 requests/s: {users}");
        let demands: Vec<&Value> =
            results["route_demands"].as_array().unwrap().iter().filter(|d| d["system"] == id).collect();
        let measured: Vec<&str> = demands.iter().map(|d| d["route"].as_str().unwrap()).collect();
        assert_eq!(measured, routes, "{id}: each route measured alone");
        for d in &demands {
            assert!(d["requests"].as_u64().unwrap() > 0 && d["other_requests"] == 0, "{id}: {d}");
            assert!(d["instance_us"].as_f64().unwrap() > 0.0, "{id}: {d}");
        }
        let cost = |r: &str| demands.iter().find(|d| d["route"] == r).unwrap()["instance_us"].as_f64().unwrap();
        assert!(cost("login") > 20.0 * cost("me"), "{id}: an argon2id login costs far more than a read");
    }
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("## Per route") && md.contains("### Per-route service demands"), "{md}");
}
