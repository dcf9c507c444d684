//! `authbench advise` on a committed-style run: the sweep fixture with its revocation and
//! chaos runs beside it, and a mixed run's per-route demands from `--mix-from`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The sweep fixture with revocation.json and chaos.json beside it.
fn run_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("full-sweep/results.json"), dir.path().join("results.json")).unwrap();
    for f in ["revocation.json", "chaos.json"] {
        std::fs::copy(fixtures().join("experiments").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn advise(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authbench")).arg("advise").args(args).output().unwrap()
}

#[test]
fn answers_in_a_table_under_100_columns_and_as_json() {
    let dir = run_dir();
    let from = dir.path().to_str().unwrap();
    let out = advise(&["--from", from, "--peak-rps", "20000", "--instance-cores", "2", "--revocation-window", "1s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
    assert!(text.contains("Recommended: "), "{text}");
    // jwt-hs256 lives until `exp` (5 minutes): excluded by a 1 s requirement.
    assert!(text.contains("Excluded jwt-hs256: revocation window 5 min > required 1 s."), "{text}");
    assert!(text.contains("No per-route demands"), "logins are not priced and it says so: {text}");

    let out = advise(&["--from", from, "--peak-rps", "20000", "--survive-store-outage", "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let plans = json["plans"].as_array().unwrap();
    assert!(!plans.is_empty());
    // The fixture's chaos run: session-redis answered 503 while Redis was stopped.
    let redis = plans.iter().find(|p| p["system"] == "session-redis").unwrap();
    assert!(!redis["excluded"].as_array().unwrap().is_empty(), "{redis}");
    let jwt = plans.iter().find(|p| p["system"] == "jwt-hs256").unwrap();
    assert_eq!(jwt["outage"], "no-store");
    assert!(jwt["excluded"].as_array().unwrap().is_empty(), "{jwt}");
}

#[test]
fn a_mixed_run_prices_logins_and_refreshes() {
    let dir = run_dir();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/2026-12-06-mixed");
    let out = advise(&[
        "--from",
        dir.path().to_str().unwrap(),
        "--mix-from",
        repo.to_str().unwrap(),
        "--peak-rps",
        "6000",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jwt = json["plans"].as_array().unwrap().iter().find(|p| p["system"] == "jwt-hs256").unwrap();
    // 6 000 req/s, web-app profile: 10 logins/s and 50 refreshes/s, priced (cores > 0).
    assert_eq!(jwt["logins_per_s"], 10.0);
    assert_eq!(jwt["refreshes_per_s"], 50.0);
    assert!(jwt["issuing_cores"].as_f64().unwrap() > 0.0, "{jwt}");
    // A read run is no source of per-route demands: refused with a pointer.
    let out = advise(&[
        "--from",
        dir.path().to_str().unwrap(),
        "--mix-from",
        dir.path().to_str().unwrap(),
        "--peak-rps",
        "1",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no per-route demands") && stderr.contains("--workload mixed"), "{stderr}");
}

#[test]
fn bad_input_gets_one_line_and_exit_2_and_a_missing_run_is_named() {
    let dir = run_dir();
    let from = dir.path().to_str().unwrap();
    for args in [
        vec!["--from", from, "--peak-rps", "-1"],
        vec!["--from", from, "--peak-rps", "10", "--revocation-window", "5"],
        vec!["--from", from, "--peak-rps", "10", "--store-rtt", "half a ms"],
    ] {
        let out = advise(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    let out = advise(&["--from", "/nonexistent/run", "--peak-rps", "10"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/run holds no results.json"), "{stderr}");
}

/// An RTT the run never measured is added as a constant and the answer says it is an
/// extrapolation.
#[test]
fn an_unmeasured_store_rtt_is_called_an_extrapolation() {
    let dir = run_dir();
    let out = advise(&["--from", dir.path().to_str().unwrap(), "--peak-rps", "1000", "--store-rtt", "500us"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("the run measured a local store only") && text.contains("(extrapolated)"), "{text}");
}
