//! Renderings as `kubectl kustomize` prints them, checked with binaries that answer from
//! canned help texts; each case breaks one thing and expects the checks to say so. The real
//! deploy/k8s, rendered by the real kubectl and checked against the real binaries, is
//! tests/k8s.rs's.

use super::*;

const IMAGE: &str = "authbench:local";

/// jwt-hs256 with its Redis and key, and a Redis Cluster its server does not use.
const JWT: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: jwt-hs256-jwt-keys-5f7h}
data: {hs256.key: eA==}
---
apiVersion: v1
kind: Service
metadata: {name: jwt-hs256-redis}
spec:
  selector: {app.kubernetes.io/instance: jwt-hs256, app.kubernetes.io/name: redis}
  ports: [{name: redis, port: 6379, targetPort: 6379}]
---
apiVersion: v1
kind: Service
metadata: {name: jwt-hs256-server}
spec:
  selector: {app.kubernetes.io/instance: jwt-hs256, app.kubernetes.io/name: server}
  ports: [{name: http, port: 8000, targetPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: jwt-hs256-shard}
spec:
  clusterIP: None
  selector: {app.kubernetes.io/instance: jwt-hs256, app.kubernetes.io/name: shard}
  ports: [{name: redis, port: 6379}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: jwt-hs256-redis}
spec:
  replicas: 1
  template:
    metadata: {labels: {app.kubernetes.io/instance: jwt-hs256, app.kubernetes.io/name: redis}}
    spec:
      containers:
      - {name: redis, image: "redis:7", args: [redis-server, --save, ""], ports: [{containerPort: 6379}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: jwt-hs256-server}
spec:
  replicas: 4
  template:
    metadata: {labels: {app.kubernetes.io/instance: jwt-hs256, app.kubernetes.io/name: server}}
    spec:
      containers:
      - name: server
        image: authbench:local
        args: [jwt-server, --listen, 0.0.0.0:8000, --alg, HS256, --key-dir, /keys, --refresh-store, redis,
               --redis-url, "redis://jwt-hs256-redis:6379", --demo-users, "1000"]
        ports: [{name: http, containerPort: 8000}]
        readinessProbe: {httpGet: {path: /healthz, port: 8000}}
        resources: {requests: {cpu: 500m}, limits: {cpu: "0.5"}}
        volumeMounts: [{name: jwt-keys, mountPath: /keys, readOnly: true}]
      volumes:
      - {name: jwt-keys, secret: {secretName: jwt-hs256-jwt-keys-5f7h}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: jwt-hs256-shard}
spec:
  serviceName: jwt-hs256-shard
  replicas: 3
  template:
    metadata: {labels: {app.kubernetes.io/instance: jwt-hs256, app.kubernetes.io/name: shard}}
    spec:
      containers: [{name: redis, image: "redis:7", ports: [{containerPort: 6379}]}]
"#;

const GENERATOR: &str = r#"apiVersion: v1
kind: ConfigMap
metadata: {name: generator-8k2}
data: {TARGET_URL: "http://x:8000/me", RATE: "10", START_AT: "2030-01-01T00:00:00Z"}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: generator-logs}
spec: {accessModes: [ReadWriteMany]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: generator}
spec:
  completionMode: Indexed
  completions: 4
  parallelism: 4
  template:
    spec:
      containers:
      - name: load
        image: authbench:local
        args: [authbench, load, --url, $(TARGET_URL), --rate, $(RATE), --duration, 60s, --start-at, $(START_AT),
               --hlog, /logs/gen-$(JOB_COMPLETION_INDEX).hlog]
        env:
        - {name: JOB_COMPLETION_INDEX, valueFrom: {fieldRef: {fieldPath: x}}}
        - {name: TARGET_URL, valueFrom: {configMapKeyRef: {name: generator-8k2, key: TARGET_URL}}}
        - {name: RATE, valueFrom: {configMapKeyRef: {name: generator-8k2, key: RATE}}}
        - {name: START_AT, valueFrom: {configMapKeyRef: {name: generator-8k2, key: START_AT}}}
        volumeMounts: [{name: logs, mountPath: /logs}]
      volumes: [{name: logs, persistentVolumeClaim: {claimName: generator-logs}}]
"#;

/// The binaries as their `--help` would describe them; a value of `bad-value` is refused.
struct FakeBins;

impl Binaries for FakeBins {
    fn help(&self, bin: &str, sub: Option<&str>) -> Result<String, String> {
        let flags = match (bin, sub) {
            ("session-server", None) => "--listen --store --redis-url --database-url --demo-users --demo-password",
            ("jwt-server", None) => {
                "--listen --alg --key-dir --refresh-store --revocation --redis-url --demo-users --demo-password"
            }
            _ => return Err(format!("error: unrecognized subcommand '{}'", sub.unwrap_or(bin))),
        };
        let mut help: String = flags.split(' ').map(|f| format!("      {f} <VALUE>\n")).collect();
        help.push_str("      --instance-id <ID>  [env: AUTHBENCH_INSTANCE_ID=]\n");
        Ok(help)
    }

    fn accepts(&self, inv: &Invocation) -> Result<(), String> {
        match inv.args.iter().find(|a| *a == "bad-value") {
            Some(a) => Err(format!("error: invalid value '{a}'")),
            None => Ok(()),
        }
    }
}

fn parse(rendered: &str) -> Manifests {
    Manifests::parse(rendered).unwrap_or_else(|e| panic!("{e} in\n{rendered}"))
}

fn overlay(name: &str, rendered: &str) -> Vec<String> {
    check_overlay(name, &parse(rendered), IMAGE, &FakeBins)
}

fn generator(rendered: &str) -> Vec<String> {
    check_generator("deploy/k8s/generator", &parse(rendered))
}

#[test]
fn the_fixtures_pass() {
    assert_eq!(overlay("jwt-hs256", JWT), [] as [String; 0]);
    assert_eq!(generator(GENERATOR), [] as [String; 0]);
}

/// (what to replace in [`JWT`], by what, a problem that must follow)
const BROKEN: &[(&str, &str, &str)] = &[
    ("--demo-users, \"1000\"", "--demo-user, \"1000\"", "`jwt-server` has no --demo-user (not in its --help)"),
    ("--alg, HS256", "--alg, bad-value", "is refused: error: invalid value 'bad-value'"),
    ("args: [jwt-server", "command: [sh]\n        args: [jwt-server", "sets `command`, which replaces the image's"),
    ("args: [jwt-server", "args: [jwt-servers", "runs none of"),
    (
        "args: [jwt-server",
        "env: [{name: AUTHBENCH_X, value: \"1\"}]\n        args: [jwt-server",
        "sets AUTHBENCH_X, which",
    ),
    ("0.0.0.0:8000", "127.0.0.1:8000", "must `--listen 0.0.0.0:PORT`"),
    (
        "{name: http, containerPort: 8000}",
        "{name: http, containerPort: 8001}",
        "listens on 8000 (--listen), but its containerPorts are [8001]",
    ),
    ("        readinessProbe: {httpGet: {path: /healthz, port: 8000}}\n", "", "container server has no readinessProbe"),
    (
        "httpGet: {path: /healthz, port: 8000}",
        "exec: {command: [true]}",
        "readinessProbe is not an httpGet of /healthz",
    ),
    ("path: /healthz, port: 8000", "path: /ready, port: 8000", "readinessProbe asks \"/ready\", not /healthz"),
    (
        "path: /healthz, port: 8000",
        "path: /healthz, port: 8001",
        "readinessProbe asks port Some(Number(8001)), but the server listens on 8000",
    ),
    ("path: /healthz, port: 8000", "path: /healthz, port: https", "readinessProbe asks port Some(Name(\"https\"))"),
    (
        "limits: {cpu: \"0.5\"}",
        "limits: {cpu: \"1\"}",
        "resources.requests.cpu (Some(\"500m\")) and resources.limits.cpu (Some(\"1\")) must be set and equal",
    ),
    ("requests: {cpu: 500m}, ", "", "resources.requests.cpu (None)"),
    ("replicas: 4", "replicas: 0", "Deployment jwt-hs256-server has no replicas"),
    ("--demo-users, \"1000\"", "--demo-users, \"0\"", "creates no --demo-users"),
    ("--demo-users, \"1000\"", "--demo-users, \"1\", --demo-password, x", "sets --demo-password \"x\""),
    (
        "name: server}\n  ports: [{name: http",
        "name: servers}\n  ports: [{name: http",
        "no Service selects Deployment jwt-hs256-server",
    ),
    (
        "port: 8000, targetPort: 8000",
        "port: 8000, targetPort: 8080",
        "Service jwt-hs256-server sends port 8000 to targetPort Number(8080), but the server listens on 8000",
    ),
    ("--redis-url, \"redis://jwt-hs256-redis:6379\", ", "", "uses a store without --redis-url"),
    (
        "redis://jwt-hs256-redis:6379",
        "redis://redis:6379",
        "--redis-url redis://redis:6379: redis is not a Service of this overlay",
    ),
    ("redis://jwt-hs256-redis:6379", "redis://jwt-hs256-redis:6380", "Service jwt-hs256-redis has no port 6380"),
    (
        "name: redis}}\n    spec:\n      containers:\n      - {name: redis, image: \"redis:7\"",
        "name: cache}}\n    spec:\n      containers:\n      - {name: redis, image: \"redis:7\"",
        "Service jwt-hs256-redis selects no workload",
    ),
    (
        "[{name: redis, port: 6379, targetPort: 6379}]",
        "[{name: redis, port: 6379, targetPort: 6380}]",
        "sends it to Number(6380), which no container it selects declares",
    ),
    (
        "redis://jwt-hs256-redis:6379",
        "redis://jwt-hs256-shard-3.jwt-hs256-shard:6379",
        "jwt-hs256-shard-3 is not a pod of StatefulSet jwt-hs256-shard (Some(3) replicas)",
    ),
    (
        "redis://jwt-hs256-redis:6379",
        "redis://jwt-hs256-shard-0.jwt-hs256-redis:6379",
        "Service jwt-hs256-redis is not headless",
    ),
    (
        "redis://jwt-hs256-redis:6379",
        "redis://jwt-hs256-shard-0.shards:6379",
        "shards is not a Service of this overlay",
    ),
    (
        "redis://jwt-hs256-redis:6379",
        "redis://jwt-hs256-shard-0.jwt-hs256-shard:7000",
        "no container of StatefulSet jwt-hs256-shard declares port 7000",
    ),
    ("mountPath: /keys", "mountPath: /etc/keys", "reads keys from /keys (--key-dir), but mounts nothing there"),
    ("data: {hs256.key: eA==}", "data: {es256.pem: eA==}", "holds {\"es256.pem\"}, not hs256.key (--alg HS256)"),
    (
        "name: jwt-hs256-jwt-keys-5f7h}\ndata",
        "name: jwt-hs256-jwt-keys-0000}\ndata",
        "mounts Secret jwt-hs256-jwt-keys-5f7h, which this overlay does not generate",
    ),
    (
        "secret: {secretName: jwt-hs256-jwt-keys-5f7h}",
        "emptyDir: {}",
        "/keys should be a Secret generated from `jwt-server keygen`'s hs256.key, not Some(Other)",
    ),
    (
        "--alg, HS256",
        "--alg, ES256",
        "the overlay is named jwt-hs256, but its servers (image authbench:local) run {\"jwt-es256\"}",
    ),
    ("--alg, HS256", "--alg, HS256, --revocation, denylist", "run {\"jwt-hs256+denylist\"}"),
    (
        "image: authbench:local",
        "image: authbench:other",
        "no container runs authbench:local, the image the Dockerfile builds",
    ),
];

#[test]
fn each_broken_overlay_is_caught() {
    let mut missed = Vec::new();
    for (from, to, expected) in BROKEN {
        assert!(JWT.contains(from), "the fixture does not contain {from:?}");
        let problems = overlay("jwt-hs256", &JWT.replacen(from, to, 1));
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!("{from:?} -> {to:?}: expected {expected:?}, got {problems:#?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));
}

#[test]
fn stores_reached_through_a_statefulset() {
    let cluster = JWT.replace("redis://jwt-hs256-redis:6379", "redis://jwt-hs256-shard-2.jwt-hs256-shard:6379");
    assert_eq!(overlay("jwt-hs256", &cluster), [] as [String; 0]);
    let unnamed = cluster.replace("serviceName: jwt-hs256-shard", "serviceName: other");
    let problems = overlay("jwt-hs256", &unnamed);
    assert!(
        problems.iter().any(|p| p.contains("no StatefulSet names its pods through Service jwt-hs256-shard")),
        "{problems:#?}"
    );
}

#[test]
fn instance_local_sessions_need_client_affinity() {
    let memory = JWT
        .replace("jwt-server, --listen", "session-server, --listen")
        .replace("--alg, HS256, --key-dir, /keys, --refresh-store, redis,\n               --redis-url, \"redis://jwt-hs256-redis:6379\", ", "");
    let problems = overlay("session-memory", &memory);
    assert_eq!(
        problems,
        [
            "deploy/k8s/overlays/session-memory: Deployment jwt-hs256-server, container server: Service jwt-hs256-server \
          balances sessions that live in one replica without `sessionAffinity: ClientIP`"
        ]
    );
    let sticky = memory.replace("\n  ports: [{name: http", "\n  sessionAffinity: ClientIP\n  ports: [{name: http");
    assert_eq!(overlay("session-memory", &sticky), [] as [String; 0]);
    let one = memory.replace("replicas: 4", "replicas: 1");
    assert_eq!(overlay("session-memory", &one), [] as [String; 0], "one replica holds every session");
}

#[test]
fn each_broken_generator_is_caught() {
    let cases: &[(&str, &str, &str)] = &[
        ("  completionMode: Indexed\n", "", "completionMode is None, not Indexed"),
        ("parallelism: 4", "parallelism: 2", "completions (Some(4)) and parallelism (Some(2)) must be equal"),
        ("args: [authbench, load,", "args: [authbench, sweep,", "runs no `authbench load`"),
        (", --start-at, $(START_AT)", "", "`authbench load` has no --start-at"),
        (
            "/logs/gen-$(JOB_COMPLETION_INDEX).hlog",
            "/logs/gen.hlog",
            "--hlog \"/logs/gen.hlog\" is not one file per pod",
        ),
        (
            "        - {name: RATE, valueFrom: {configMapKeyRef: {name: generator-8k2, key: RATE}}}\n",
            "",
            "args use $(RATE)",
        ),
        ("key: RATE}", "key: RATES}", "env reads key RATES of ConfigMap generator-8k2, which is not generated"),
        (
            "accessModes: [ReadWriteMany]",
            "accessModes: [ReadWriteOnce]",
            "--hlog's directory \"/logs\" must be a ReadWriteMany claim",
        ),
        ("mountPath: /logs", "mountPath: /data", "must be a ReadWriteMany claim of this kustomization (has None)"),
        ("kind: Job", "kind: Deployment", "deploy/k8s/generator: no Job"),
    ];
    let mut missed = Vec::new();
    for (from, to, expected) in cases {
        assert!(GENERATOR.contains(from), "the fixture does not contain {from:?}");
        let problems = generator(&GENERATOR.replacen(from, to, 1));
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!("{from:?} -> {to:?}: expected {expected:?}, got {problems:#?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));
}

const BASE: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [server.yaml]\n";
const OVERLAY: &str = "kind: Kustomization
namePrefix: jwt-hs256-
bases: [../../base]
resources: [extra.yaml]
patchesStrategicMerge: [server.yaml]
secretGenerator:
  - {name: jwt-keys, files: [keys/hs256.key]}
";

fn kustomizations() -> Files {
    [
        ("deploy/k8s/base/kustomization.yaml", BASE),
        ("deploy/k8s/base/server.yaml", "kind: Deployment"),
        ("deploy/k8s/overlays/jwt-hs256/kustomization.yaml", OVERLAY),
        ("deploy/k8s/overlays/jwt-hs256/server.yaml", "kind: Deployment"),
        ("deploy/k8s/overlays/jwt-hs256/extra.yaml", "kind: Service"),
        // A kustomization directory inside the overlay, which it may list only as a base.
        ("deploy/k8s/overlays/jwt-hs256/sub/kustomization.yaml", BASE),
        ("deploy/k8s/overlays/jwt-hs256/sub/server.yaml", "kind: Deployment"),
    ]
    .into_iter()
    .collect()
}

#[test]
fn kustomizations_use_what_kustomize_2_0_3_reads() {
    let files = kustomizations();
    assert_eq!(check_kustomizations(&files), [] as [String; 0]);
    let overlay = "deploy/k8s/overlays/jwt-hs256/kustomization.yaml";
    let cases: &[(&str, &str, &str)] = &[
        (
            "bases: [../../base]\nresources: [extra.yaml]",
            "resources: [../../base, extra.yaml]",
            "resource ../../base is not in or below deploy/k8s/overlays/jwt-hs256",
        ),
        ("bases: [../../base]", "bases: [../../bass]", "base ../../bass is not a directory with a kustomization.yaml"),
        ("resources: [extra.yaml]", "resources: [extras.yaml]", "resource extras.yaml: no such file"),
        ("resources: [extra.yaml]", "resources: [sub]", "resource sub is a kustomization directory: kustomize v2.0.3"),
        (
            "patchesStrategicMerge: [server.yaml]",
            "patches: [{path: server.yaml}]",
            "field `patches` is not one the kustomize",
        ),
        ("namePrefix:", "components: [x]\nnamePrefix:", "field `components` is not one"),
        (
            "patchesStrategicMerge: [server.yaml]",
            "patchesStrategicMerge: [../server.yaml]",
            "patch ../server.yaml is not a file in or below",
        ),
        (
            "files: [keys/hs256.key]",
            "files: [../../keys/hs256.key]",
            "generator file ../../keys/hs256.key is not in or below",
        ),
        ("kind: Kustomization", "kind: [", "deploy/k8s/overlays/jwt-hs256/kustomization.yaml: not YAML"),
    ];
    let mut missed = Vec::new();
    for (from, to, expected) in cases {
        let problems = check_kustomizations(&files.with_replaced(overlay, from, to).unwrap());
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!("{from:?} -> {to:?}: expected {expected:?}, got {problems:#?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));

    assert_eq!(check_kustomizations(&Files::default()), ["deploy/k8s: no kustomization.yaml"]);
}

#[test]
fn key_files_and_overlay_names() {
    assert_eq!(
        (key_file("HS256"), key_file("eddsa"), key_file("HS512")),
        (Some("hs256.key"), Some("ed25519.pem"), None)
    );
    assert_eq!((key_alg("rs256.pem"), key_alg("x.pem")), (Some("RS256"), None));
    assert_eq!(overlay_name("jwt-hs256+denylist"), "jwt-hs256-denylist");
    assert_eq!(
        substitutions(&["$(A)".into(), "x-$(B).y$(C)".into(), "$(".into(), "$D".into()]),
        BTreeSet::from(["A".to_owned(), "B".to_owned(), "C".to_owned()])
    );
}
