//! deploy/k8s rendered by the real kubectl and held to the real binaries: every overlay and
//! the generator render, every server container's command line is parsed by the binary it
//! names, and ports, probes, Services, stores and keys agree (the checks of
//! `deploy_check::checks::k8s`). The JWT overlays need key files, which are never
//! committed: the tests copy deploy/k8s to a temporary directory and make them there with
//! the real `jwt-server keygen`.
//!
//! Without kubectl the tests print SKIPPED and pass, but fail under CI (`CI=true`), which
//! installs it (.ci/run). `KUBECTL=/path/to/kubectl` renders with another kubectl, such as
//! Debian's 1.20, whose kustomize (v2.0.3) is the oldest the manifests must render with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use deploy_check::{
    BinDir, Files,
    checks::k8s::{check_generator, check_kustomizations, check_overlay, key_alg, overlay_name},
    compose::Compose,
    files::COMPOSE,
    kustomize::{self, GENERATOR, K8S, KUSTOMIZATION, Kustomization, OVERLAYS},
    manifests::Manifests,
};

/// The systems the sweep and the compose stack know that deploy/k8s deploys, one overlay each.
const SYSTEMS: [&str; 9] = [
    "session-memory",
    "session-redis",
    "session-postgres",
    "session-redis-cluster",
    "jwt-hs256",
    "jwt-rs256",
    "jwt-es256",
    "jwt-eddsa",
    "jwt-hs256+denylist",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The kubectl to render with, or `None` when the test must skip (never under CI).
fn kubectl() -> Option<PathBuf> {
    let kubectl = kustomize::kubectl();
    if test_support::skip_without("kubectl", kubectl.is_some()) {
        return None;
    }
    kubectl
}

/// The directory of `session-server` and `jwt-server`: the cargo target directory this
/// test was built into (its executable is in `deps/` below it), built there if missing.
fn bin_dir() -> &'static Path {
    let exe = std::env::current_exe().unwrap();
    test_support::server_binaries(exe.parent().and_then(Path::parent).unwrap())
}

/// The image the servers must run: the one docker-compose.yml builds from the Dockerfile.
fn image() -> String {
    let files = Files::read(&repo_root()).unwrap();
    Compose::parse(files.get(COMPOSE).unwrap()).unwrap().built_image().expect("compose builds a named image").to_owned()
}

/// `from` copied into `to`, leaving out `keys/` directories (keys a user made in-tree).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "keys" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn overlays(k8s: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(k8s.join("overlays"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// deploy/k8s copied to a temporary directory, with every file a `secretGenerator` names
/// made by the real `jwt-server keygen`, for the algorithm whose key file it is.
fn tree_with_keys(bins: &Path) -> tempfile::TempDir {
    let tree = tempfile::tempdir().unwrap();
    copy_tree(&repo_root().join(K8S), tree.path());
    for name in overlays(tree.path()) {
        let overlay = tree.path().join("overlays").join(&name);
        let k = Kustomization::parse(&std::fs::read_to_string(overlay.join(KUSTOMIZATION)).unwrap()).unwrap();
        for file in &k.secret_files {
            let (dir, key) = file.rsplit_once('/').unwrap_or((".", file));
            let alg =
                key_alg(key).unwrap_or_else(|| panic!("{OVERLAYS}/{name}: {file} is no key file jwt-server reads"));
            let key_dir = overlay.join(dir);
            let out = Command::new(bins.join("jwt-server"))
                .args(["keygen", "--alg", alg, "--key-dir"])
                .arg(&key_dir)
                .env_clear()
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{name}: jwt-server keygen --alg {alg}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                key_dir.join(key).is_file(),
                "`jwt-server keygen --alg {alg}` did not write {key}: KEY_FILES disagrees with the binary"
            );
        }
    }
    tree
}

/// The problems of one overlay of `tree`: its rendering's, or why it does not render.
fn overlay_problems(kubectl: &Path, tree: &Path, name: &str, image: &str, bins: &BinDir) -> Vec<String> {
    let rendered = match kustomize::render(kubectl, &tree.join("overlays").join(name)) {
        Ok(text) => text,
        Err(e) => return vec![format!("{OVERLAYS}/{name}: kubectl kustomize: {e}")],
    };
    match Manifests::parse(&rendered) {
        Ok(m) => check_overlay(name, &m, image, bins),
        Err(e) => vec![format!("{OVERLAYS}/{name}: kubectl kustomize printed {e}")],
    }
}

#[test]
fn every_overlay_renders_and_matches_the_binaries() {
    let Some(kubectl) = kubectl() else { return };
    let files = Files::read(&repo_root()).unwrap();
    let mut problems = check_kustomizations(&files);
    let bins = BinDir::new(bin_dir());
    let tree = tree_with_keys(bins.dir());
    let names = overlays(tree.path());
    let mut expected: Vec<String> = SYSTEMS.iter().map(|s| overlay_name(s)).collect();
    expected.sort();
    assert_eq!(names, expected, "one overlay per system in {OVERLAYS}");
    let image = image();
    for name in &names {
        problems.extend(overlay_problems(&kubectl, tree.path(), name, &image, &bins));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_generator_renders_as_an_indexed_job() {
    let Some(kubectl) = kubectl() else { return };
    let rendered =
        kustomize::render(&kubectl, &repo_root().join(GENERATOR)).unwrap_or_else(|e| panic!("{GENERATOR}: {e}"));
    let m = Manifests::parse(&rendered).unwrap_or_else(|e| panic!("{GENERATOR}: {e}"));
    let problems = check_generator(GENERATOR, &m);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// (overlay to render, file under deploy/k8s, what to replace, by what, a problem that must follow)
const BROKEN: &[(&str, &str, &str, &str, &str)] = &[
    (
        "jwt-hs256",
        "overlays/jwt-hs256/server.yaml",
        r#""--demo-users""#,
        r#""--demo-user""#,
        "`jwt-server` has no --demo-user (not in its --help)",
    ),
    (
        "jwt-rs256",
        "overlays/jwt-rs256/server.yaml",
        r#""--alg", "RS256""#,
        r#""--alg", "RS257""#,
        "is refused: error: invalid value 'RS257'",
    ),
    (
        "session-redis",
        "base/server.yaml",
        "          args: [",
        "          command: [",
        "sets `command`, which replaces the image's entry point",
    ),
    (
        "session-redis",
        "base/server.yaml",
        "containerPort: 8000",
        "containerPort: 8001",
        "listens on 8000 (--listen), but its containerPorts are [8001]",
    ),
    ("session-redis", "base/server.yaml", "path: /healthz", "path: /health", r#"readinessProbe asks "/health""#),
    (
        "session-postgres",
        "base/server.yaml",
        "targetPort: 8000",
        "targetPort: 8080",
        "Service session-postgres-server sends port 8000 to targetPort Number(8080), but the server listens on 8000",
    ),
    (
        "jwt-es256",
        "base/server.yaml",
        "cpu: 500m\n              memory: 1Gi",
        "cpu: 1000m\n              memory: 1Gi",
        r#"resources.requests.cpu (Some("500m")) and resources.limits.cpu (Some("1000m")) must be set and equal"#,
    ),
    (
        "jwt-eddsa",
        "base/server.yaml",
        "image: authbench:local",
        "image: authbench:latest",
        "no container runs authbench:local",
    ),
    (
        "session-memory",
        "overlays/session-memory/server.yaml",
        "  sessionAffinity: ClientIP\n",
        "",
        "balances sessions that live in one replica without `sessionAffinity: ClientIP`",
    ),
    (
        "session-redis",
        "overlays/session-redis/server.yaml",
        "redis://session-redis-redis:6379",
        "redis://redis:6379",
        "--redis-url redis://redis:6379: redis is not a Service of this overlay",
    ),
    (
        "session-postgres",
        "overlays/session-postgres/server.yaml",
        "session-postgres-postgres:5432",
        "session-postgres-postgres:5433",
        "Service session-postgres-postgres has no port 5433",
    ),
    (
        "session-redis-cluster",
        "overlays/session-redis-cluster/server.yaml",
        "shard-2.session-redis-cluster-shard",
        "shard-3.session-redis-cluster-shard",
        "session-redis-cluster-shard-3 is not a pod of StatefulSet session-redis-cluster-shard",
    ),
    (
        "jwt-es256",
        "overlays/jwt-es256/server.yaml",
        "mountPath: /keys",
        "mountPath: /etc/keys",
        "reads keys from /keys (--key-dir), but mounts nothing there",
    ),
    (
        "jwt-hs256-denylist",
        "overlays/jwt-hs256-denylist/server.yaml",
        r#""--revocation", "denylist","#,
        "",
        r#"the overlay is named jwt-hs256-denylist, but its servers (image authbench:local) run {"jwt-hs256"}"#,
    ),
    (
        "jwt-eddsa",
        "overlays/jwt-eddsa/kustomization.yaml",
        "  - server.yaml",
        "  - servers.yaml",
        "deploy/k8s/overlays/jwt-eddsa: kubectl kustomize: ",
    ),
];

#[test]
fn each_broken_overlay_is_rejected() {
    let Some(kubectl) = kubectl() else { return };
    let bins = BinDir::new(bin_dir());
    let tree = tree_with_keys(bins.dir());
    let image = image();
    let mut missed = Vec::new();
    for (overlay, file, from, to, expected) in BROKEN {
        let path = tree.path().join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        assert!(original.contains(from), "{K8S}/{file} does not contain {from:?}");
        std::fs::write(&path, original.replacen(from, to, 1)).unwrap();
        let problems = overlay_problems(&kubectl, tree.path(), overlay, &image, &bins);
        std::fs::write(&path, &original).unwrap();
        if !problems.iter().any(|p| p.contains(expected)) {
            missed.push(format!("{file}: {from:?} -> {to:?}: expected {expected:?}, got {problems:#?}"));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));
}

#[test]
fn a_kustomization_kubectl_1_20_cannot_read_is_rejected() {
    let files = Files::read(&repo_root()).unwrap();
    let overlay = "deploy/k8s/overlays/jwt-hs256/kustomization.yaml";
    let cases = [
        ("bases:", "resources:", "resource ../../base is not in or below deploy/k8s/overlays/jwt-hs256"),
        ("patchesStrategicMerge:", "patches:", "field `patches` is not one the kustomize of kubectl 1.20"),
        ("commonLabels:", "labels:", "field `labels` is not one"),
    ];
    for (from, to, expected) in cases {
        let problems = check_kustomizations(&files.with_replaced(overlay, from, to).unwrap());
        assert!(problems.iter().any(|p| p.contains(expected)), "{from} -> {to}: {problems:#?}");
    }
}
