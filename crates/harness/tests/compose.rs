//! The container deployment (docker-compose.yml, deploy/, Dockerfile) held to the real
//! binaries it runs, without a Docker engine. The checks are crates/deploy-check's; here
//! they run on the real files, and what can run here does: the key generation (twice, as
//! on a second `up`), and a session server started through the image's entry point and
//! probed by its compose health check.
//!
//! Start at `deployment_matches_the_binaries`; each `broken_*` test breaks one thing in a
//! copy of the real files and expects the checker to say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::BTreeSet,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use deploy_check::{
    BinDir, Files,
    addr::host_port,
    checks::{check_invocation, documented_runs, problems},
    command::{Invocation, invocations},
    compose::Compose,
    dockerfile::Dockerfile,
    files::{COMPOSE, DOCKERFILE, README},
};

/// The cookie the session server sets, as docs/http-api.md fixes it; the real test learns it
/// from a running server instead.
const SESSION_COOKIE: &str = "__Host-sid";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn read_files() -> Files {
    Files::read(&repo_root()).unwrap()
}

fn bins() -> BinDir {
    BinDir::new(common::ensure_servers())
}

/// What a service runs, our binaries only.
fn runs(name: &str, command: Option<&Vec<String>>) -> Vec<Invocation> {
    invocations(name, command.map_or(&[][..], Vec::as_slice)).unwrap()
}

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program` with a clean environment and the built binaries first on `PATH`, as
/// /usr/local/bin is in the image.
fn in_image(bins: &BinDir, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bins.dir().display());
    command.env_clear().env("PATH", path).stdin(Stdio::null());
    command
}

/// (status, head, body) of `request` (its request line and headers) with `body`.
fn http(port: u16, request: &str, body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let length = body.len();
    write!(stream, "{request}\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n{body}").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The keygen service's command, run twice into a temporary directory standing for its
/// volume: both runs succeed (a second `docker compose up` must not fail) and the key stays.
fn keygen_is_idempotent(compose: &Compose, bins: &BinDir) {
    let (name, svc) = compose
        .services
        .iter()
        .find(|(name, svc)| runs(name, svc.command.as_ref()).iter().any(|i| i.sub.as_deref() == Some("keygen")))
        .expect("a service runs jwt-server keygen");
    let command = svc.command.as_ref().unwrap();
    let target = &svc.volumes.first().expect("keygen mounts the key volume").target;
    let dir = tempfile::tempdir().unwrap();
    let local: Vec<String> = command.iter().map(|a| a.replace(target, dir.path().to_str().unwrap())).collect();
    let mut keys = Vec::new();
    for attempt in 1..=2 {
        let out = in_image(bins, &local[0]).args(&local[1..]).output().unwrap();
        assert!(out.status.success(), "{name}, run {attempt}: {local:?}: {}", String::from_utf8_lossy(&out.stderr));
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{name} made one key: {files:?}");
        keys.push(std::fs::read(&files[0]).unwrap());
    }
    assert!(keys[0].len() >= 32, "{name}: a key of {} bytes", keys[0].len());
    assert_eq!(keys[0], keys[1], "{name}: a second run replaced the key (tokens issued before would stop verifying)");
}

/// The in-memory session service started through the image's entry point as Docker would
/// (HOSTNAME set), probed by its own compose health check; logs a demo user in and returns
/// the session cookie's name. Also checks /me names the replica by its hostname.
fn session_server_runs_as_composed(files: &Files, compose: &Compose, bins: &BinDir) -> String {
    let svc =
        compose.services.get("session-memory").unwrap_or_else(|| panic!("no service session-memory in {COMPOSE}"));
    let command = svc.command.clone().unwrap();
    let inv = &runs("session-memory", Some(&command))[0];
    let container_port = inv.flag("--listen").and_then(host_port).unwrap().1;
    let mut local = command.clone();
    let i = local.iter().position(|a| a == "--listen").unwrap();
    local[i + 1] = "127.0.0.1:0".into();

    let docker = Dockerfile::parse(files.get(DOCKERFILE).unwrap()).unwrap();
    let script = docker.entrypoint_script().expect("the entry point is a script from the repository");
    let mut child = Running(
        in_image(bins, "sh")
            .arg(repo_root().join(script))
            .args(&local)
            .env("HOSTNAME", "compose-replica-7")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    // Kept open until the end: the server may still write to its stdout.
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    stdout.read_line(&mut ready).unwrap();
    let addr = ready.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("ready line: {ready:?}"));
    let port = host_port(addr).unwrap().1;

    // The compose health check, pointed at the real port: passes here, fails on a closed port.
    let test = svc.healthcheck.as_ref().and_then(|h| h.exec.clone()).unwrap_or_default();
    assert_eq!(test.first().map(String::as_str), Some("CMD"), "exec form: {test:?}");
    let probe = |port: u16| {
        let args: Vec<String> = test[2..]
            .iter()
            .map(|a| a.replace(&format!("127.0.0.1/{container_port}"), &format!("127.0.0.1/{port}")))
            .collect();
        Command::new(&test[1])
            .args(&args)
            .env_clear()
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(probe(port), "the health check fails against a healthy server: {test:?}");
    assert!(!probe(test_support::free_port()), "the health check passes with no server: {test:?}");

    let login = r#"{"username":"user1","password":"demo-password"}"#;
    let (status, head, body) = http(port, "POST /login HTTP/1.1\r\nContent-Type: application/json", login);
    assert_eq!(status, 200, "login: {head}\n{body}");
    let cookie = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim()))
        .expect("login sets a cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, body) = http(port, &format!("GET /me HTTP/1.1\r\nCookie: {cookie}"), "");
    assert_eq!(status, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["instance"], "compose-replica-7", "the entry point names the replica by its hostname: {me}");
    cookie.split('=').next().unwrap().to_owned()
}

/// HAProxy's own syntax check of deploy/haproxy. Skipped on a machine without haproxy,
/// but not under CI, which installs it (.ci/run).
fn haproxy_accepts_the_configs() {
    let version = Command::new("haproxy").arg("-v").output();
    if test_support::skip_without("haproxy", version.is_ok()) {
        return;
    }
    assert!(version.unwrap().status.success());
    let out = Command::new("haproxy").args(["-c", "-f"]).arg(repo_root().join("deploy/haproxy")).output().unwrap();
    assert!(
        out.status.success(),
        "haproxy -c: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deployment_matches_the_binaries() {
    let files = read_files();
    let bins = bins();
    let compose = Compose::parse(files.get(COMPOSE).unwrap()).unwrap();

    let cookie = session_server_runs_as_composed(&files, &compose, &bins);
    assert_eq!(cookie, SESSION_COOKIE);
    keygen_is_idempotent(&compose, &bins);
    haproxy_accepts_the_configs();

    let problems = problems(&files, &bins, &cookie);
    assert!(problems.is_empty(), "the deployment disagrees with the binaries:\n  {}", problems.join("\n  "));

    // The checks saw what they were meant to see, not an empty file.
    let runs: Vec<Invocation> =
        compose.services.iter().flat_map(|(name, svc)| runs(name, svc.command.as_ref())).collect();
    let servers: BTreeSet<(&str, Option<&str>)> = runs
        .iter()
        .filter(|i| i.is_server())
        .map(|i| (i.bin.as_str(), i.flag("--store").or(i.flag("--alg"))))
        .collect();
    let composed =
        [("session-server", Some("memory")), ("session-server", Some("redis")), ("jwt-server", Some("HS256"))];
    assert_eq!(servers, BTreeSet::from(composed));
    assert!(runs.iter().any(|i| i.sub.as_deref() == Some("keygen")));
    let (documented, unreadable) = documented_runs(&files);
    assert!(unreadable.is_empty(), "{unreadable:?}");
    for origin in [COMPOSE, README] {
        let targets = documented.iter().filter(|i| i.origin.starts_with(origin) && i.flag("--target").is_some());
        assert!(targets.count() >= 3, "{origin} documents `authbench sweep --target` for each system: {documented:?}");
    }
}

/// The checker, with the real binaries, finds `expected` among the problems of a copy of
/// the real files in which the first `from` in `rel` is replaced by `to`.
fn assert_caught(files: &Files, rel: &str, from: &str, to: &str, expected: &str) {
    let broken = files.with_replaced(rel, from, to).unwrap_or_else(|e| panic!("{e}: the test needs updating"));
    let problems = problems(&broken, &bins(), SESSION_COOKIE);
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "expected a problem containing {expected:?}, got:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn an_unknown_flag_or_subcommand_or_value_is_caught() {
    let bins = bins();
    let check = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let mut p = Vec::new();
        for inv in runs("unit", Some(&argv)) {
            check_invocation(&bins, &inv, &mut p);
        }
        p
    };
    assert!(check(&["session-server", "--listen", "0.0.0.0:8000", "--store", "redis"]).is_empty());
    assert!(check(&["session-server", "--bogus-flag", "1"])[0].contains("has no --bogus-flag"));
    assert!(check(&["session-server", "--bogus-flag=1"])[0].contains("has no --bogus-flag"));
    // A prefix of a real flag is not that flag.
    assert!(check(&["session-server", "--stor", "redis"])[0].contains("has no --stor"));
    assert!(check(&["session-server", "--store", "mongodb"])[0].contains("is refused"));
    assert!(check(&["session-server", "--idle-timeout", "0s"])[0].contains("is refused"));
    assert!(check(&["jwt-server", "keygen", "--alg", "HS257", "--key-dir", "/keys"])[0].contains("is refused"));
    assert!(check(&["jwt-server", "keygen", "--listen", "0.0.0.0:1"])[0].contains("has no --listen"));
    assert!(check(&["jwt-server", "rotate-keys"])[0].contains("no such command"));
    assert!(check(&["authbench", "sweep", "--systems", "session-redis", "--no-such"])[0].contains("has no --no-such"));
    // Inside `sh -c`, after `||`, with `exec`.
    let p = check(&["sh", "-c", "test -s /k/x || exec jwt-server keygen --alg HS256 --key-dirs /k"]);
    assert!(p[0].contains("has no --key-dirs"), "{p:?}");
}

#[test]
fn broken_flags_and_values_in_compose_are_caught() {
    let f = &read_files();
    assert_caught(f, COMPOSE, r#""--store", "redis""#, r#""--storage", "redis""#, "has no --storage");
    assert_caught(f, COMPOSE, r#""--store", "memory""#, r#""--store", "memroy""#, "is refused");
    assert_caught(f, COMPOSE, r#""--demo-users", "1000""#, r#""--demo-users", "lots""#, "is refused");
    assert_caught(f, COMPOSE, "keygen --alg HS256", "keygen --alg ES256", "makes a ES256 key");
    assert_caught(f, COMPOSE, r#""authbench", "load""#, r#""authbench", "lode""#, "no such command");
}

#[test]
fn broken_ports_hosts_and_dependencies_are_caught() {
    let f = &read_files();
    assert_caught(f, COMPOSE, "/dev/tcp/127.0.0.1/8000", "/dev/tcp/127.0.0.1/8001", "healthcheck talks to");
    assert_caught(f, COMPOSE, "0.0.0.0:8000", "127.0.0.1:8000", "must `--listen 0.0.0.0:PORT`");
    assert_caught(f, COMPOSE, "\"127.0.0.1:8080:8080\"", "\"8080:8080\"", "beyond loopback");
    assert_caught(f, COMPOSE, "\"127.0.0.1:8091:8091\"", "\"127.0.0.1:8091:8092\"", "publishes 8092");
    assert_caught(f, COMPOSE, "redis://redis:6379", "redis://cache:6379", "cache is not a service");
    let (healthy, rediss) =
        ("      redis:\n        condition: service_healthy", "      rediss:\n        condition: service_healthy");
    assert_caught(f, COMPOSE, healthy, rediss, "rediss, which is not a service");
    let (completed, started) = ("condition: service_completed_successfully", "condition: service_started");
    assert_caught(f, COMPOSE, completed, started, "must wait for jwt-keygen");
    assert_caught(f, COMPOSE, "jwt-keys:/keys:ro", "jwt-keys:/keys", "writable");
    assert_caught(f, COMPOSE, "replicas: 4", "replicas: 40", "16 slots for 40 replicas");
    let rr = "deploy/haproxy/round-robin.cfg";
    assert_caught(f, rr, "session-redis:8000", "session-redis:9000", "listens on 8000");
    assert_caught(f, rr, "session-redis:8000", "sesion-redis:8000", "not a compose service");
    assert_caught(f, rr, "default_backend rr_jwt_hs256", "default_backend rr_jwt", "not defined");
    assert_caught(f, "deploy/haproxy/sticky.cfg", "req.cook(__Host-sid)", "req.cook(sid)", "sticks by cookie sid");
    assert_caught(f, "deploy/haproxy/00-common.cfg", "resolvers docker\n", "resolvers dns\n", "which is not defined");
}

#[test]
fn broken_load_targets_are_caught() {
    let f = &read_files();
    let documented = "--target http://127.0.0.1:8091 --systems session-memory --lb sticky";
    let other_system = "--target http://127.0.0.1:8091 --systems session-redis --lb sticky";
    assert_caught(f, COMPOSE, documented, other_system, "port 8091 leads to session-memory");
    let other_policy = "--target http://127.0.0.1:8091 --systems session-memory --lb round-robin";
    assert_caught(f, README, documented, other_policy, "port 8091 balances sticky");
    assert_caught(f, README, documented, "--targets http://127.0.0.1:8091", "has no --targets");
    let (healthz, elsewhere) = ("http://127.0.0.1:8080/healthz", "http://127.0.0.1:8083/healthz");
    assert_caught(f, COMPOSE, healthz, elsewhere, "no load balancer port");
}

#[test]
fn broken_image_is_caught() {
    let f = &read_files();
    let copy = "COPY --from=build /out/authbench /usr/local/bin/authbench\n";
    assert_caught(f, DOCKERFILE, copy, "", "compose runs authbench");
    assert_caught(f, DOCKERFILE, "USER 10001:10001", "USER 0:0", "non-root USER");
    assert_caught(
        f,
        DOCKERFILE,
        "ARG RUST_VERSION=1.95",
        "ARG RUST_VERSION=1.80",
        "at least Cargo.toml's rust-version",
    );
    assert_caught(f, DOCKERFILE, "EXPOSE 8000", "EXPOSE 8080", "EXPOSE does not list 8000");
    let (instance_id, instance) = (": \"${AUTHBENCH_INSTANCE_ID:=", ": \"${AUTHBENCH_INSTANCE:=");
    assert_caught(f, "deploy/docker-entrypoint.sh", instance_id, instance, "AUTHBENCH_INSTANCE, which");
}
