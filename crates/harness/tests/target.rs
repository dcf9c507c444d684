//! End-to-end tests of `authbench sweep --target`: servers this test starts itself stand
//! in for an already-running deployment (docker compose, Kubernetes); authbench must
//! measure them without starting, capping or stopping anything, and refuse targets it
//! cannot or may not measure with one clear line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
};

mod common;

use common::{ensure_servers, run, serial};
use serde_json::Value;

const REDIS: &str = "redis://127.0.0.1:6379";

/// Server processes started by a test, killed (and their Redis keys deleted) on drop, so
/// a failing assertion leaves nothing behind.
struct Deployment {
    children: Vec<Child>,
    urls: Vec<String>,
    prefix: Option<String>,
}

impl Deployment {
    fn new() -> Self {
        Self { children: Vec::new(), urls: Vec::new(), prefix: None }
    }

    /// Start `program args…` and wait for its ready line `listening on http://ADDR`.
    fn start(&mut self, program: &str, args: &[&str]) -> String {
        let mut child = Command::new(ensure_servers().join(program))
            .args(["--listen", "127.0.0.1:0", "--demo-users", "64"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        self.children.push(child);
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{program}: no ready line: {line:?}"));
        self.urls.push(url.to_owned());
        url.to_owned()
    }

    fn all_running(&mut self) -> bool {
        self.children.iter_mut().all(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(prefix) = &self.prefix {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = rt.block_on(harness::deploy::delete_prefix(REDIS, prefix));
        }
    }
}

fn read_results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn total_errors(p: &Value) -> u64 {
    let e = &p["errors"];
    let statuses: u64 = e["by_status"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    statuses + ["timeouts", "connect", "io", "unsent"].iter().map(|k| e[k].as_u64().unwrap()).sum::<u64>()
}

/// A fixed-rate single point: short, and long enough for the rate to be checked.
const FIXED: [&str; 10] =
    ["--rate", "300", "--duration", "2s", "--warmup", "1s", "--min-requests", "200", "--users", "16"];

#[test]
fn two_running_instances_are_measured_as_an_external_point() {
    let _serial = serial();
    let mut deployment = Deployment::new();
    let prefix = format!("authbench-test-target:{}:", std::process::id());
    deployment.prefix = Some(prefix.clone());
    for id in ["ext-0", "ext-1"] {
        deployment.start(
            "session-server",
            &["--instance-id", id, "--store", "redis", "--redis-url", REDIS, "--redis-prefix", &prefix],
        );
    }
    let targets = deployment.urls.join(",");
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let mut args = vec!["sweep", "--target", &targets, "--systems", "session-redis", "--redis-url", REDIS];
    args.extend(FIXED);
    args.extend(["--out", out_dir.to_str().unwrap()]);
    let o = run(&args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "sweep --target failed\nstderr:\n{stderr}");
    assert!(deployment.all_running(), "authbench must leave an external deployment running");

    let results = read_results(&out_dir);
    assert!(results["problems"].as_array().unwrap().is_empty(), "{}", results["problems"]);
    assert_eq!(results["caps"]["capped"], false);
    assert!(results["caps"]["reason"].as_str().unwrap().contains("external deployment"), "{}", results["caps"]);
    assert_eq!(results["config"]["targets"], serde_json::json!(deployment.urls));
    let points = results["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "one system, one N (the two URLs), one policy: {points:#?}");
    let p = &points[0];
    assert_eq!(p["system"], "session-redis");
    assert_eq!(p["external"], true);
    assert_eq!(p["instances"], 2);
    assert_eq!(p["lb"], "round-robin");
    assert_eq!(p["targets"], serde_json::json!(deployment.urls));
    assert_eq!(p["capped"], false);
    assert_eq!(total_errors(p), 0, "{}", p["errors"]);
    let achieved = p["achieved_rps"].as_f64().unwrap();
    assert!((achieved - 300.0).abs() / 300.0 < 0.05, "achieved {achieved} of 300 offered");
    // What authbench cannot see is unknown, not zero.
    for k in ["instances_total_s", "per_request_us", "instance_utilization"] {
        assert!(p["cpu"][k].is_null(), "cpu.{k} must be null for an external point: {}", p["cpu"]);
    }
    assert!(p["cpu"]["generator_s"].as_f64().unwrap() > 0.0);
    assert!(p["cpu"]["machine_s"].as_f64().unwrap() > 0.0, "machine CPU from /proc/stat: {}", p["cpu"]);
    assert_eq!(p["rss_bytes"], serde_json::json!([]));
    assert!(p["throttled_periods"].is_null());
    assert!(p["flags"].as_array().unwrap().iter().any(|f| f == "external"), "{}", p["flags"]);
    // The store given by --redis-url is observed as usual. The Redis on 6379 is shared,
    // so other clients' commands may add to the count, never take from it.
    let store = &p["store"];
    assert!(store["commands_per_request"].as_f64().unwrap() >= 0.95, "{store}");
    assert!(store["bytes_per_session"].is_null(), "the deployment's key prefix is unknown: {store}");

    // The report renders from such a file (what it says about unknown CPU is its own business).
    assert!(out_dir.join("report.md").is_file());
}

#[test]
fn one_balancer_url_without_a_store_and_targets_that_are_refused() {
    let _serial = serial();
    let keys = tempfile::tempdir().unwrap();
    let keys_dir = keys.path().to_str().unwrap();
    let status = Command::new(ensure_servers().join("jwt-server"))
        .args(["keygen", "--alg", "HS256", "--key-dir", keys_dir])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut deployment = Deployment::new();
    let jwt = deployment.start("jwt-server", &["--instance-id", "lb-0", "--alg", "HS256", "--key-dir", keys_dir]);

    // One URL stands for a balancer: N is the number of URLs, --lb labels what it does,
    // and without --redis-url there are no store statistics.
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().join("run");
    let mut args = vec!["sweep", "--target", &jwt, "--systems", "jwt-hs256", "--lb", "sticky"];
    args.extend(FIXED);
    args.extend(["--out", out_dir.to_str().unwrap()]);
    let o = run(&args);
    assert!(o.status.success(), "sweep --target failed\nstderr:\n{}", String::from_utf8_lossy(&o.stderr));
    let results = read_results(&out_dir);
    let p = &results["points"][0];
    assert_eq!(results["points"].as_array().unwrap().len(), 1);
    assert_eq!(
        (&p["system"], &p["instances"], &p["lb"], &p["external"]),
        (&"jwt-hs256".into(), &1.into(), &"sticky".into(), &true.into())
    );
    assert_eq!(total_errors(p), 0, "{}", p["errors"]);
    let achieved = p["achieved_rps"].as_f64().unwrap();
    assert!((achieved - 300.0).abs() / 300.0 < 0.05, "achieved {achieved} of 300 offered");
    assert!(p["store"].is_null());
    assert!(p["cpu"]["per_request_us"].is_null());

    // Something that speaks HTTP but is no authbench server: every request gets a 404.
    let foreign = TcpListener::bind("127.0.0.1:0").unwrap();
    let foreign_url = format!("http://{}", foreign.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in foreign.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            // Drain what the client still sends (a body in a second segment) before closing:
            // closing with unread data would reset the connection and lose the 404.
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    // A port nobody listens on.
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let two = format!("{jwt},{jwt}");
    let cases: &[(&[&str], &str)] = &[
        (&["--target", "http://192.0.2.1:8080", "--systems", "jwt-hs256"], "not loopback"),
        (&["--target", "http://example.com:8080", "--systems", "jwt-hs256"], "not an IP address or localhost"),
        (&["--target", &refused, "--systems", "jwt-hs256"], "cannot connect"),
        (&["--target", &jwt, "--systems", "session-redis"], "runs jwt-hs256"),
        (&["--target", &jwt, "--systems", "jwt-es256"], "not jwt-es256"),
        (&["--target", &foreign_url, "--systems", "session-redis"], "answered 404 Not Found"),
        (&["--target", &jwt, "--systems", "jwt-hs256", "--demo-password", "wrong"], "answered 401 Unauthorized"),
        (&["--target", &two, "--systems", "jwt-hs256,session-redis"], "exactly one system"),
        (&["--target", &jwt], "exactly one system"),
        (&["--target", &jwt, "--systems", "jwt-hs256", "--instances", "4"], "--instances does not go with --target"),
    ];
    for (flags, needle) in cases {
        let refused_out = out.path().join("refused");
        let mut args = vec!["sweep"];
        args.extend_from_slice(flags);
        args.extend(["--rate", "100", "--duration", "1s", "--out", refused_out.to_str().unwrap()]);
        let o = run(&args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: refused like a bad flag\n{stderr}");
        assert!(stderr.contains(needle), "{flags:?}: stderr lacks {needle:?}:\n{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{flags:?}: one line, not:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{flags:?} panicked:\n{stderr}");
        assert!(!refused_out.exists(), "{flags:?}: nothing is written for a refused target");
    }
    assert!(deployment.all_running());
}
