//! A small deployment that passes every check, with binaries that answer from canned help
//! texts; each case breaks one thing in it and expects the checks to say so. The real files
//! against the real binaries are crates/harness/tests/compose.rs's.

use super::*;
use crate::files::README;

const COMPOSE_YML: &str = r#"# From the host:
#   authbench sweep --target http://127.0.0.1:8080 --systems session-redis --lb round-robin
x-healthz: &healthz
  test: ["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8000 && echo GET /healthz >&3"]

services:
  redis:
    image: redis:7
    command: ["redis-server", "--port", "6379"]
    deploy: {resources: {limits: {cpus: "0.5"}}}
    healthcheck: {test: ["CMD", "redis-cli", "ping"]}
  session-redis:
    build: .
    image: authbench:local
    command: ["session-server", "--listen", "0.0.0.0:8000", "--store", "redis", "--redis-url", "redis://redis:6379", "--demo-users", "10"]
    depends_on: {redis: {condition: service_healthy}}
    healthcheck: *healthz
    deploy: {replicas: 2, resources: {limits: {cpus: "0.5"}}}
  jwt-keygen:
    build: .
    image: authbench:local
    command: ["sh", "-c", "test -s /keys/k || exec jwt-server keygen --alg HS256 --key-dir /keys"]
    volumes: ["jwt-keys:/keys"]
  jwt-hs256:
    build: .
    image: authbench:local
    command: ["jwt-server", "--listen", "0.0.0.0:8000", "--alg", "HS256", "--key-dir", "/keys", "--demo-users", "10"]
    volumes: ["jwt-keys:/keys:ro"]
    depends_on: {jwt-keygen: {condition: service_completed_successfully}}
    healthcheck: *healthz
    deploy: {replicas: 2, resources: {limits: {cpus: "0.5"}}}
  lb:
    image: haproxy:3.0
    command: ["haproxy", "-f", "/usr/local/etc/haproxy/"]
    volumes: ["./deploy/haproxy:/usr/local/etc/haproxy:ro"]
    ports: ["127.0.0.1:8080:8080", "127.0.0.1:8082:8082", "127.0.0.1:18090:8090"]
    depends_on: {session-redis: {condition: service_healthy}, jwt-hs256: {condition: service_healthy}}
  bench:
    build: .
    image: authbench:local
    network_mode: "service:lb"
    command: ["authbench", "load", "--url", "http://127.0.0.1:8082/healthz"]

volumes:
  jwt-keys:
"#;

const HAPROXY_CFG: &str = "defaults
    default-server init-addr none resolvers docker check
    option httpchk GET /healthz

resolvers docker
    nameserver docker 127.0.0.11:53

frontend rr_session
    bind :8080
    default_backend rr_session

frontend rr_jwt
    bind :8082
    default_backend rr_jwt

frontend sticky_session
    bind :8090
    default_backend sticky_session

backend rr_session
    server-template s- 4 session-redis:8000

backend rr_jwt
    server-template j- 4 jwt-hs256:8000

backend sticky_session
    stick on req.cook(__Host-sid)
    server-template s- 4 session-redis:8000
";

const DOCKERFILE_TEXT: &str = r#"ARG RUST_VERSION=1.90
FROM rust:${RUST_VERSION}-slim AS build
RUN cargo build --release --bins \
    && cp target/release/session-server target/release/jwt-server target/release/authbench /out/

FROM debian:bookworm-slim
COPY --from=build /out/session-server /out/jwt-server /out/authbench /usr/local/bin/
COPY deploy/entrypoint.sh /usr/local/bin/entrypoint
USER 10001
EXPOSE 8000
ENTRYPOINT ["entrypoint"]
CMD ["session-server", "--listen", "0.0.0.0:8000"]
"#;

const README_TEXT: &str = "# authbench
## Beyond one machine
```sh
authbench sweep --target http://127.0.0.1:18090 --systems session-redis --lb sticky
```
## Elsewhere (not checked)
```sh
authbench sweep --target http://127.0.0.1:9999
```
";

const COOKIE: &str = "__Host-sid";

fn fixture() -> Files {
    [
        (COMPOSE, COMPOSE_YML),
        (DOCKERFILE, DOCKERFILE_TEXT),
        ("deploy/haproxy/lb.cfg", HAPROXY_CFG),
        (
            "deploy/entrypoint.sh",
            ": \"${AUTHBENCH_INSTANCE_ID:=$HOSTNAME}\"\nexport AUTHBENCH_INSTANCE_ID\nexec \"$@\"\n",
        ),
        ("Cargo.toml", "[workspace.package]\nrust-version = \"1.88\"\n"),
        (".dockerignore", "target\n.git\nbench-results/\n"),
        ("README.md", README_TEXT),
    ]
    .into_iter()
    .collect()
}

/// The binaries as their `--help` would describe them; a value of `bad-value` is refused
/// as clap would refuse a bad one.
struct FakeBins;

impl Binaries for FakeBins {
    fn help(&self, bin: &str, sub: Option<&str>) -> Result<String, String> {
        let flags = match (bin, sub) {
            ("session-server", None) => "--listen --store --redis-url --demo-users --demo-password",
            ("jwt-server", None) => "--listen --alg --key-dir --redis-url --demo-users --demo-password",
            ("jwt-server", Some("keygen")) => "--alg --key-dir",
            ("authbench", Some("load")) => "--url --rate",
            ("authbench", Some("sweep")) => "--target --systems --lb",
            _ => return Err(format!("error: unrecognized subcommand '{}'", sub.unwrap_or(bin))),
        };
        let mut help: String = flags.split(' ').map(|f| format!("      {f} <VALUE>\n")).collect();
        if sub.is_none() {
            help.push_str("      --instance-id <ID>  [env: AUTHBENCH_INSTANCE_ID=]\n");
        }
        Ok(help)
    }

    fn accepts(&self, inv: &Invocation) -> Result<(), String> {
        match inv.args.iter().find(|a| *a == "bad-value") {
            Some(a) => Err(format!("error: invalid value '{a}'")),
            None => Ok(()),
        }
    }
}

#[test]
fn the_fixture_passes() {
    let problems = problems(&fixture(), &FakeBins, COOKIE);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// (file, what to replace, by what, a problem that must follow)
const BROKEN: &[(&str, &str, &str, &str)] = &[
    // The compose file as a whole, and what its services run.
    (COMPOSE, "services:", "services: [", "docker-compose.yml: not YAML"),
    (COMPOSE, "image: authbench:local", "image: authbench:other", "build different image names"),
    (COMPOSE, "build: .", "build: ./x", r#"session-redis builds from Some("./x")"#),
    (COMPOSE, "network_mode", "entrypoint: [x]\n    network_mode", "bench replaces the image's entry point"),
    (COMPOSE, r#"["authbench", "load""#, r#"["true", "load""#, "bench runs none of"),
    (
        COMPOSE,
        "network_mode",
        "environment: [AUTHBENCH_RATE=1]\n    network_mode",
        "bench sets AUTHBENCH_RATE, which `authbench load --help`",
    ),
    (COMPOSE, "test -s /keys/k", "test -s '/keys/k", "jwt-keygen's command: a ' quote is never closed"),
    (
        COMPOSE,
        r#""--demo-users", "10"]"#,
        r#""--demo-user", "10"]"#,
        "session-redis: `session-server` has no --demo-user",
    ),
    (COMPOSE, r#""--store", "redis""#, r#""--store", "bad-value""#, "is refused: error: invalid value 'bad-value'"),
    (COMPOSE, r#""authbench", "load""#, r#""authbench", "lode""#, "`authbench lode --help` fails, no such command"),
    (
        COMPOSE,
        "keygen --alg HS256 --key-dir",
        "keygen --alg HS256 --key-dirs",
        "jwt-keygen: `jwt-server keygen` has no --key-dirs",
    ),
    (
        COMPOSE,
        "redis:7\n",
        "redis:7\n    ports: [\"6379:6379\"]\n",
        "redis publishes ports; only the load balancers should",
    ),
    // The image.
    (
        DOCKERFILE,
        r#"CMD ["session-server", "--listen""#,
        r#"CMD ["session-server", "--lisen""#,
        "Dockerfile CMD: `session-server` has no --lisen",
    ),
    (
        DOCKERFILE,
        r#"CMD ["session-server", "--listen", "0.0.0.0:8000"]"#,
        "CMD session-server",
        "Dockerfile: CMD must be a JSON list",
    ),
    (
        DOCKERFILE,
        " /out/authbench /usr",
        " /usr",
        "compose runs authbench, but the runtime stage does not COPY --from it",
    ),
    (
        DOCKERFILE,
        "--from=build /out/session-server",
        "--from=build /out/extra /out/session-server",
        "the image holds extra, which no compose service runs",
    ),
    (
        DOCKERFILE,
        "target/release/jwt-server target",
        "target",
        "jwt-server is copied but no `cargo build` step produces",
    ),
    (
        DOCKERFILE,
        "RUST_VERSION=1.90",
        "RUST_VERSION=1.87",
        "the rust builder (Some(\"1.87\")) must be at least Cargo.toml's rust-version",
    ),
    (DOCKERFILE, "USER 10001", "USER 0:0", "must switch to a non-root USER (has Some(\"0:0\"))"),
    (DOCKERFILE, "USER 10001\n", "", "must switch to a non-root USER (has None)"),
    (DOCKERFILE, "USER", "COPY deploy/hs256.key /keys/\nUSER", "copies deploy/hs256.key into the image"),
    (DOCKERFILE, "ARG RUST", "ENV JWT_SECRET=x\nARG RUST", "sets JWT_SECRET: no secrets in the image"),
    (DOCKERFILE, "ENTRYPOINT [\"entrypoint\"]\n", "", "Dockerfile: no ENTRYPOINT"),
    (
        DOCKERFILE,
        "ENTRYPOINT [\"entrypoint\"]",
        "ENTRYPOINT [\"other\"]",
        "ENTRYPOINT other is not a file copied from the repository",
    ),
    (
        "deploy/entrypoint.sh",
        "AUTHBENCH_INSTANCE_ID:=",
        "AUTHBENCH_INSTANCE:=",
        "deploy/entrypoint.sh: sets AUTHBENCH_INSTANCE, which `session-server --help`",
    ),
    (".dockerignore", ".git\n", "", ".dockerignore: does not leave out .git"),
    // The servers.
    (COMPOSE, "0.0.0.0:8000", "127.0.0.1:8000", "session-redis must `--listen 0.0.0.0:PORT`"),
    (DOCKERFILE, "EXPOSE 8000", "EXPOSE 8001", "EXPOSE does not list 8000, the port jwt-hs256 listens on"),
    (COMPOSE, "    healthcheck: *healthz\n", "", "session-redis has no healthcheck"),
    (
        COMPOSE,
        "    healthcheck: *healthz\n",
        "",
        "lb waits for session-redis to be healthy, but session-redis has no healthcheck",
    ),
    (COMPOSE, "echo GET /healthz", "echo GET /ready", "session-redis's healthcheck does not ask /healthz"),
    (
        COMPOSE,
        "/dev/tcp/127.0.0.1/8000",
        "/dev/tcp/127.0.0.1/8001",
        "healthcheck talks to Some((\"127.0.0.1\", 8001)), but the server listens on port 8000",
    ),
    (COMPOSE, "replicas: 2", "replicas: 0", "session-redis has no deploy.replicas"),
    (
        COMPOSE,
        "{replicas: 2, resources: {limits: {cpus: \"0.5\"}}}",
        "{replicas: 2}",
        "session-redis has no deploy.resources.limits.cpus",
    ),
    (
        COMPOSE,
        "\"/keys\", \"--demo",
        "\"/keys\", \"--demo-password\", \"x\", \"--demo",
        "jwt-hs256 sets --demo-password \"x\"",
    ),
    (COMPOSE, r#""--demo-users", "10""#, r#""--demo-users", "0""#, "session-redis creates no --demo-users"),
    (COMPOSE, "{redis: {condition", "{rediss: {condition", "session-redis depends on rediss, which is not a service"),
    (
        COMPOSE,
        "{redis: {condition: service_healthy",
        "{redis: {condition: service_ready",
        "unknown condition service_ready",
    ),
    (COMPOSE, "service:lb", "service:lbb", "bench joins the network of lbb, which is not a service"),
    (
        COMPOSE,
        "volumes:\n  jwt-keys:",
        "volumes:\n  other:",
        "mounts volume jwt-keys, which the top-level volumes do not declare",
    ),
    (COMPOSE, r#""--redis-url", "redis://redis:6379", "#, "", "session-redis uses Redis without --redis-url"),
    (COMPOSE, "redis://redis:6379", "redis://cache:6379", "cache is not a service"),
    (COMPOSE, "redis://redis:6379", "redis://redis:6380", "but redis listens on 6379"),
    (
        COMPOSE,
        "    deploy: {resources: {limits: {cpus: \"0.5\"}}}\n",
        "",
        "redis (the store) has no deploy.resources.limits.cpus",
    ),
    (COMPOSE, "{redis: {condition: service_healthy}}", "{}", "session-redis uses redis but does not depend on it"),
    // The JWT keys.
    (COMPOSE, "jwt-keys:/keys:ro", "jwt-keys:/key:ro", "jwt-hs256 reads keys from /keys, but mounts nothing there"),
    (
        COMPOSE,
        "jwt-keys:/keys:ro",
        "./keys:/keys:ro",
        "jwt-hs256's /keys should be a declared named volume, not \"./keys\"",
    ),
    (COMPOSE, "jwt-keys:/keys:ro", "jwt-keys:/keys", "jwt-hs256 mounts its keys writable"),
    (
        COMPOSE,
        "keygen --alg HS256",
        "keygen --alg ES256",
        "jwt-keygen makes a ES256 key, but jwt-hs256 runs --alg HS256",
    ),
    (COMPOSE, "service_completed_successfully", "service_started", "jwt-hs256 must wait for jwt-keygen"),
    (
        COMPOSE,
        "--key-dir /keys\"",
        "--key-dir /elsewhere\"",
        "no service runs `jwt-server keygen --key-dir` into volume jwt-keys for jwt-hs256",
    ),
    // The balancer.
    (COMPOSE, "./deploy/haproxy:", "./deploy/proxy:", "no service mounts deploy/haproxy: there is no load balancer"),
    (COMPOSE, "\"127.0.0.1:8080:8080\"", "\"8080:8080\"", "lb publishes 8080:8080 beyond loopback"),
    (
        COMPOSE,
        "./deploy/haproxy:",
        "./deploy/haproxy-none:",
        "lb mounts \"./deploy/haproxy-none\", which holds no .cfg file",
    ),
    (
        COMPOSE,
        "\"-f\", \"/usr/local/etc/haproxy/\"",
        "\"-f\", \"/etc/haproxy/\"",
        "lb loads /etc/haproxy, which is not one of its mounted configs",
    ),
    (
        COMPOSE,
        "[\"haproxy\", \"-f\", \"/usr/local/etc/haproxy/\"]",
        "[\"haproxy\"]",
        "lb loads /usr/local/etc/haproxy/haproxy.cfg, which is not",
    ),
    (
        "deploy/haproxy/lb.cfg",
        "bind :8082",
        "bind localhost",
        "deploy/haproxy/lb.cfg: `bind localhost`: no port to bind",
    ),
    ("deploy/haproxy/lb.cfg", "bind :8082", "bind :8083", "lb binds 8083 (deploy/haproxy) but does not publish it"),
    (COMPOSE, "127.0.0.1:18090:8090", "127.0.0.1:18090:8091", "lb publishes 8091, which no HAProxy frontend binds"),
    ("deploy/haproxy/lb.cfg", "    default_backend rr_jwt\n", "", "frontend rr_jwt has no default_backend"),
    (
        "deploy/haproxy/lb.cfg",
        "default_backend rr_jwt",
        "default_backend rr_jw",
        "uses backend rr_jw, which is not defined",
    ),
    ("deploy/haproxy/lb.cfg", "    server-template j- 4 jwt-hs256:8000\n", "", "backend rr_jwt has no servers"),
    (
        "deploy/haproxy/lb.cfg",
        "option httpchk GET /healthz",
        "option httpchk GET /",
        "backend rr_jwt does not check /healthz (Some(\"GET /\"))",
    ),
    (
        "deploy/haproxy/lb.cfg",
        "jwt-hs256:8000",
        "jwt:8000",
        "backend rr_jwt sends to jwt, which is not a compose service",
    ),
    (
        "deploy/haproxy/lb.cfg",
        "jwt-hs256:8000",
        "jwt-hs256:9000",
        "sends to jwt-hs256:9000, but jwt-hs256 listens on 8000",
    ),
    (COMPOSE, "replicas: 2", "replicas: 5", "backend rr_session has 4 slots for 5 replicas of session-redis"),
    (
        "deploy/haproxy/lb.cfg",
        "resolvers docker\n",
        "resolvers dns\n",
        "through resolvers Some(\"docker\"), which is not defined",
    ),
    (COMPOSE, ", jwt-hs256: {condition: service_healthy}", "", "lb balances jwt-hs256 but does not depend on it"),
    (
        "deploy/haproxy/lb.cfg",
        "__Host-sid)\n    server-template s- 4 session-redis",
        "__Host-sid)\n    server-template s- 4 jwt-hs256",
        "backend sticky_session sticks by cookie, but jwt-hs256 runs jwt-server",
    ),
    (
        "deploy/haproxy/lb.cfg",
        "req.cook(__Host-sid)",
        "req.cook(sid)",
        "sticks by cookie sid; the session cookie is __Host-sid",
    ),
    // Where authbench sends load.
    (
        COMPOSE,
        "http://127.0.0.1:8082/healthz",
        "http://lb:8082/healthz",
        "http://lb:8082/healthz is not a loopback URL with a port",
    ),
    // Inside the balancer's namespace the container port counts, from the host the published one.
    (
        COMPOSE,
        "http://127.0.0.1:8082/healthz",
        "http://127.0.0.1:18090/healthz",
        "127.0.0.1:18090 is no load balancer port",
    ),
    (
        README,
        "127.0.0.1:18090",
        "127.0.0.1:8090",
        "README.md (documented): `authbench sweep --target http://127.0.0.1:8090 --systems session-redis --lb sticky`: 127.0.0.1:8090 is no load balancer port",
    ),
    (
        README,
        "--systems session-redis",
        "--systems jwt-hs256",
        "port 18090 leads to session-redis, not --systems Some(\"jwt-hs256\")",
    ),
    (
        README,
        "--lb sticky",
        "--lb round-robin",
        "port 18090 balances sticky; say so with --lb (has Some(\"round-robin\"))",
    ),
    (
        README,
        "--lb sticky",
        "--lb 'sticky",
        "README.md: `authbench sweep --target http://127.0.0.1:18090 --systems session-redis --lb 'sticky`: a ' quote",
    ),
    (
        COMPOSE,
        "#   authbench sweep --target",
        "#   authbench sweep --targets",
        "docker-compose.yml (documented): `authbench sweep` has no --targets",
    ),
];

#[test]
fn each_broken_thing_is_caught() {
    let files = fixture();
    let mut missed = Vec::new();
    for (file, from, to, expected) in BROKEN {
        let broken = files.with_replaced(file, from, to).unwrap();
        let problems = problems(&broken, &FakeBins, COOKIE);
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!("{file}: {from:?} -> {to:?}: expected {expected:?}, got {problems:#?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));
}

#[test]
fn the_session_cookie_is_the_callers() {
    let problems = problems(&fixture(), &FakeBins, "sid");
    assert!(
        problems.iter().any(|p| p.contains("sticks by cookie __Host-sid; the session cookie is sid")),
        "{problems:#?}"
    );
}

#[test]
fn documented_runs_come_from_compose_comments_and_the_readme_section() {
    let (runs, unreadable) = documented_runs(&fixture());
    assert!(unreadable.is_empty());
    let targets: Vec<(&str, Option<&str>)> = runs.iter().map(|r| (r.origin.as_str(), r.flag("--target"))).collect();
    assert_eq!(
        targets,
        [
            ("docker-compose.yml (documented)", Some("http://127.0.0.1:8080")),
            ("README.md (documented)", Some("http://127.0.0.1:18090")),
        ]
    );
}
