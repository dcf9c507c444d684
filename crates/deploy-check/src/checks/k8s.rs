//! deploy/k8s against the binaries and against itself: the kustomizations use only what
//! kubectl 1.20's kustomize (v2.0.3) renders, and each rendered overlay runs the system it
//! is named after, with a command line its binary accepts, reachable where its Service,
//! its readiness probe and its stores say.
//!
//! The renderings come from `kubectl kustomize` (see [`crate::kustomize`]); these checks
//! read them as [`Manifests`] and never run kubectl themselves.

use std::collections::BTreeSet;

use super::check_invocation;
use crate::{
    Binaries, Files,
    addr::host_port,
    binaries::documents_env,
    command::{BINARIES, Invocation, invocations},
    kustomize::{K8S, KUSTOMIZATION, Kustomization, OVERLAYS, join},
    manifests::{Container, Manifests, Probe, VolumeSource, Workload, millicores},
};

/// The fields a kustomization here may use: those the kustomize inside kubectl 1.14-1.20
/// (v2.0.3) renders and this repository needs. Not `components`, `patches`, `replacements`,
/// `labels` or `helmCharts` (later versions), nor directories under `resources` (v2.1).
pub const ALLOWED_FIELDS: [&str; 12] = [
    "apiVersion",
    "kind",
    "resources",
    "bases",
    "namePrefix",
    "nameSuffix",
    "commonLabels",
    "patchesStrategicMerge",
    "patchesJson6902",
    "configMapGenerator",
    "secretGenerator",
    "images",
];

/// The key file `jwt-server keygen --alg ALG` writes and `jwt-server --alg ALG` reads
/// (docs/http-api.md 11.4; the k8s test holds this table to the real keygen).
pub const KEY_FILES: [(&str, &str); 4] =
    [("HS256", "hs256.key"), ("RS256", "rs256.pem"), ("ES256", "es256.pem"), ("EdDSA", "ed25519.pem")];

/// The key file of `alg`, spelled in any case as `--alg` accepts it.
pub fn key_file(alg: &str) -> Option<&'static str> {
    KEY_FILES.iter().find(|(a, _)| a.eq_ignore_ascii_case(alg)).map(|(_, f)| *f)
}

/// The algorithm whose key `file` holds.
pub fn key_alg(file: &str) -> Option<&'static str> {
    KEY_FILES.iter().find(|(_, f)| *f == file).map(|(a, _)| *a)
}

/// The overlay directory of a system: its id, with `+` (not filesystem-friendly) as `-`.
pub fn overlay_name(system: &str) -> String {
    system.replace('+', "-")
}

/// Every `kustomization.yaml` under deploy/k8s uses only [`ALLOWED_FIELDS`], lists its
/// bases (directories with a kustomization) under `bases`, and names as `resources` and
/// patches files in or below its own directory, as kustomize v2.0.3 requires.
pub fn check_kustomizations(files: &Files) -> Vec<String> {
    let mut p = Vec::new();
    let kustomizations: Vec<(&str, &str)> =
        files.under(K8S).into_iter().filter(|(path, _)| path.rsplit('/').next() == Some(KUSTOMIZATION)).collect();
    if kustomizations.is_empty() {
        p.push(format!("{K8S}: no {KUSTOMIZATION}"));
    }
    for (path, text) in kustomizations {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        let k = match Kustomization::parse(text) {
            Ok(k) => k,
            Err(e) => {
                p.push(format!("{path}: {e}"));
                continue;
            }
        };
        for field in k.fields.iter().filter(|f| !ALLOWED_FIELDS.contains(&f.as_str())) {
            p.push(format!(
                "{path}: field `{field}` is not one the kustomize of kubectl 1.20 (v2.0.3) renders and deploy/k8s allows \
                 ({})",
                ALLOWED_FIELDS.join(", ")
            ));
        }
        for base in &k.bases {
            let target = join(dir, base).map(|b| format!("{b}/{KUSTOMIZATION}"));
            if target.as_deref().and_then(|t| files.get(t)).is_none() {
                p.push(format!("{path}: base {base} is not a directory with a {KUSTOMIZATION}"));
            }
        }
        let own = |rel: &str| join(dir, rel).filter(|j| j.starts_with(&format!("{dir}/")));
        for resource in &k.resources {
            let Some(target) = own(resource) else {
                p.push(format!(
                    "{path}: resource {resource} is not in or below {dir}: kustomize v2.0.3 reads only those; \
                     a base goes under `bases`"
                ));
                continue;
            };
            if files.get(&format!("{target}/{KUSTOMIZATION}")).is_some() {
                p.push(format!(
                    "{path}: resource {resource} is a kustomization directory: kustomize v2.0.3 reads resources as \
                     files; list it under `bases`"
                ));
            } else if files.get(&target).is_none() {
                p.push(format!("{path}: resource {resource}: no such file"));
            }
        }
        for patch in &k.patches {
            if own(patch).and_then(|t| files.get(&t)).is_none() {
                p.push(format!("{path}: patch {patch} is not a file in or below {dir}"));
            }
        }
        for file in k.generated_from.iter().filter(|f| own(f).is_none()) {
            p.push(format!("{path}: generator file {file} is not in or below {dir}"));
        }
    }
    p
}

/// One rendered overlay, `deploy/k8s/overlays/<name>`: every container of the authbench
/// `image` keeps the image's entry point and runs one of our binaries with a command line
/// that binary accepts, and its servers are [`check_server`]'s. The servers run the system
/// the overlay is named after.
pub fn check_overlay(name: &str, m: &Manifests, image: &str, bins: &impl Binaries) -> Vec<String> {
    let origin = format!("{OVERLAYS}/{name}");
    let mut p = Vec::new();
    let mut systems = BTreeSet::new();
    for w in &m.workloads {
        for c in w.containers.iter().filter(|c| c.image.as_deref() == Some(image)) {
            let who = format!("{origin}: {} {}, container {}", w.kind, w.name, c.name);
            if c.command.is_some() {
                p.push(format!(
                    "{who} sets `command`, which replaces the image's entry point (it names each replica); \
                     give the command line as `args`"
                ));
            }
            let invs = invocations(&who, c.argv()).unwrap_or_else(|e| {
                p.push(format!("{who}: its args: {e}"));
                Vec::new()
            });
            if invs.is_empty() {
                p.push(format!("{who} runs none of {BINARIES:?}: args {:?}", c.argv()));
            }
            for inv in &invs {
                check_invocation(bins, inv, &mut p);
                for var in &c.env {
                    if !bins.help(&inv.bin, inv.sub.as_deref()).is_ok_and(|h| documents_env(&h, &var.name)) {
                        p.push(format!("{who} sets {}, which `{} --help` does not document", var.name, inv.line()));
                    }
                }
            }
            for inv in invs.iter().filter(|i| i.is_server()) {
                systems.insert(inv.system());
                check_server(&who, m, w, c, inv, &mut p);
            }
        }
    }
    for c in m.workloads.iter().flat_map(|w| &w.containers).filter(|c| c.image.as_deref().is_none()) {
        p.push(format!("{origin}: container {} names no image", c.name));
    }
    let ours = m.workloads.iter().flat_map(|w| &w.containers).any(|c| c.image.as_deref() == Some(image));
    if !ours {
        p.push(format!(
            "{origin}: no container runs {image}, the image the Dockerfile builds (as docker-compose.yml names it)"
        ));
    } else if systems.len() != 1 || systems.iter().any(|s| overlay_name(s) != name) {
        p.push(format!(
            "{origin}: the overlay is named {name}, but its servers (image {image}) run {systems:?}; \
             one system per overlay, named after it"
        ));
    }
    p
}

/// A server container: listens on `0.0.0.0:PORT`, declares PORT as a container port, is
/// ready when `GET /healthz` on PORT answers, is capped with CPU requests equal to limits,
/// lets authbench log in, is reached by a Service whose `targetPort` is PORT (sticky by
/// client address when its sessions live in one replica), reaches its stores through this
/// overlay's Services, and reads its JWT key from a Secret holding the file of its `--alg`.
fn check_server(who: &str, m: &Manifests, w: &Workload, c: &Container, inv: &Invocation, p: &mut Vec<String>) {
    let port = match inv.flag("--listen").and_then(host_port) {
        Some((host, port)) if port > 0 && matches!(host, "0.0.0.0" | "::") => port,
        _ => {
            p.push(format!(
                "{who} must `--listen 0.0.0.0:PORT` (a fixed port, every interface: the Service and the probe reach \
                 it there); it has {:?}",
                inv.flag("--listen")
            ));
            return;
        }
    };
    if !c.ports.iter().any(|cp| cp.port == port) {
        let declared: Vec<u16> = c.ports.iter().map(|cp| cp.port).collect();
        p.push(format!("{who} listens on {port} (--listen), but its containerPorts are {declared:?}"));
    }
    match &c.readiness {
        None => p.push(format!("{who} has no readinessProbe")),
        Some(Probe::Other) => p.push(format!("{who}'s readinessProbe is not an httpGet of /healthz")),
        Some(Probe::Http { path, port: probe }) => {
            if path != "/healthz" {
                p.push(format!("{who}'s readinessProbe asks {path:?}, not /healthz"));
            }
            if probe.as_ref().and_then(|probe| c.resolve(probe)) != Some(port) {
                p.push(format!("{who}'s readinessProbe asks port {probe:?}, but the server listens on {port}"));
            }
        }
    }
    let (request, limit) = (c.cpu_request.as_deref(), c.cpu_limit.as_deref());
    match (request.and_then(millicores), limit.and_then(millicores)) {
        (Some(r), Some(l)) if r == l && r > 0 => {}
        _ => p.push(format!(
            "{who}: resources.requests.cpu ({request:?}) and resources.limits.cpu ({limit:?}) must be set and equal, \
             as a sweep caps each instance"
        )),
    }
    if w.kind == "Deployment" && w.replicas.unwrap_or(1) < 1 {
        p.push(format!("{who}: {} {} has no replicas", w.kind, w.name));
    }
    match inv.flag("--demo-password") {
        None | Some("demo-password") => {}
        Some(other) => p.push(format!("{who} sets --demo-password {other:?}; authbench logs in with the default")),
    }
    if inv.flag("--demo-users").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) == 0 {
        p.push(format!("{who} creates no --demo-users for authbench to log in as"));
    }
    let instance_local = inv.bin == "session-server" && inv.flag("--store").unwrap_or("memory") == "memory";
    let services: Vec<_> = m.services_of(w).collect();
    if services.is_empty() {
        p.push(format!("{who}: no Service selects {} {}", w.kind, w.name));
    }
    for svc in services {
        for sp in &svc.ports {
            if c.resolve(&sp.target) != Some(port) {
                p.push(format!(
                    "{who}: Service {} sends port {} to targetPort {:?}, but the server listens on {port}",
                    svc.name, sp.port, sp.target
                ));
            }
        }
        if instance_local && w.replicas.unwrap_or(1) > 1 && svc.session_affinity.as_deref() != Some("ClientIP") {
            p.push(format!(
                "{who}: Service {} balances sessions that live in one replica without `sessionAffinity: ClientIP`",
                svc.name
            ));
        }
    }
    check_stores(who, m, inv, p);
    if inv.bin == "jwt-server" {
        check_key(who, w, c, m, inv, p);
    }
}

/// A store the server uses is named by its URL flag (the defaults are the pod's own
/// loopback) and reached through a Service, or a StatefulSet pod's name, of this overlay.
fn check_stores(who: &str, m: &Manifests, inv: &Invocation, p: &mut Vec<String>) {
    let store = inv.flag("--store");
    let redis = matches!(store, Some("redis" | "redis-cluster"))
        || inv.flag("--refresh-store") == Some("redis")
        || inv.flag("--revocation").is_some_and(|r| r.starts_with("denylist"));
    let mut needs = Vec::new();
    if redis {
        needs.push(("--redis-url", 6379));
    }
    if store == Some("postgres") {
        needs.push(("--database-url", 5432));
    }
    for (flag, default_port) in needs {
        let Some(urls) = inv.flag(flag) else {
            p.push(format!("{who} uses a store without {flag} (the default is the pod's own loopback)"));
            continue;
        };
        for url in urls.split(',') {
            let authority = url.split_once("://").map_or(url, |(_, rest)| rest).split('/').next().unwrap_or_default();
            let authority = authority.rsplit('@').next().unwrap_or_default();
            let (host, port) = host_port(authority).unwrap_or((authority, default_port));
            if let Err(why) = reachable(m, host, port) {
                p.push(format!("{who}: {flag} {url}: {why}"));
            }
        }
    }
}

/// `host:port` leads to a container of this overlay that declares the port: through a
/// Service, or as `<pod>.<headless service>` of a StatefulSet.
fn reachable(m: &Manifests, host: &str, port: u16) -> Result<(), String> {
    if let Some(svc) = m.service(host) {
        let sp =
            svc.ports.iter().find(|sp| sp.port == port).ok_or_else(|| format!("Service {host} has no port {port}"))?;
        let selected: Vec<&Workload> = m.selected_by(svc).collect();
        if selected.is_empty() {
            return Err(format!("Service {host} selects no workload of this overlay"));
        }
        if !selected.iter().flat_map(|w| &w.containers).any(|c| c.resolve(&sp.target).is_some()) {
            return Err(format!("Service {host} sends it to {:?}, which no container it selects declares", sp.target));
        }
        return Ok(());
    }
    let Some((pod, svc_name)) = host.split_once('.') else {
        return Err(format!("{host} is not a Service of this overlay"));
    };
    match m.service(svc_name) {
        Some(svc) if svc.headless => {}
        Some(_) => return Err(format!("Service {svc_name} is not headless (clusterIP: None): it names no pods")),
        None => return Err(format!("{svc_name} is not a Service of this overlay")),
    }
    let set = m
        .workloads
        .iter()
        .find(|w| w.kind == "StatefulSet" && w.service_name.as_deref() == Some(svc_name))
        .ok_or_else(|| format!("no StatefulSet names its pods through Service {svc_name}"))?;
    let index = pod.strip_prefix(&format!("{}-", set.name)).and_then(|i| i.parse::<i64>().ok());
    if index.is_none_or(|i| i >= set.replicas.unwrap_or(1)) {
        return Err(format!("{pod} is not a pod of StatefulSet {} ({:?} replicas)", set.name, set.replicas));
    }
    if !set.containers.iter().any(|c| c.ports.iter().any(|cp| cp.port == port)) {
        return Err(format!("no container of StatefulSet {} declares port {port}", set.name));
    }
    Ok(())
}

/// `--key-dir` is a mounted Secret of this overlay that holds the key file of `--alg`.
fn check_key(who: &str, w: &Workload, c: &Container, m: &Manifests, inv: &Invocation, p: &mut Vec<String>) {
    let key_dir = inv.flag("--key-dir").unwrap_or("keys").trim_end_matches('/');
    let alg = inv.flag("--alg").unwrap_or("HS256");
    let Some(file) = key_file(alg) else { return };
    let Some(mount) = c.mounts.iter().find(|mt| mt.path.trim_end_matches('/') == key_dir) else {
        p.push(format!("{who} reads keys from {key_dir} (--key-dir), but mounts nothing there"));
        return;
    };
    match w.volume(&mount.volume).map(|v| &v.source) {
        Some(VolumeSource::Secret(secret)) => match m.secrets.get(secret) {
            Some(keys) if keys.contains(file) => {}
            Some(keys) => {
                p.push(format!("{who}: Secret {secret} at {key_dir} holds {keys:?}, not {file} (--alg {alg})"))
            }
            None => p.push(format!("{who} mounts Secret {secret}, which this overlay does not generate")),
        },
        other => p.push(format!(
            "{who}: {key_dir} should be a Secret generated from `jwt-server keygen`'s {file}, not {other:?}"
        )),
    }
}

/// The rendered generator (deploy/k8s/generator): an Indexed Job whose G pods all start
/// at once and each run `authbench load` with a shared `--start-at` and a `--hlog` of its
/// own (by `$(JOB_COMPLETION_INDEX)`) on a ReadWriteMany claim, every `$(VAR)` of their
/// args defined in their env and every ConfigMap key they read generated. The flags
/// themselves are not asked of the binary here.
pub fn check_generator(origin: &str, m: &Manifests) -> Vec<String> {
    let mut p = Vec::new();
    let jobs: Vec<&Workload> = m.workloads.iter().filter(|w| w.kind == "Job").collect();
    if jobs.is_empty() {
        p.push(format!("{origin}: no Job"));
    }
    for job in jobs {
        let who = format!("{origin}: Job {}", job.name);
        if job.completion_mode.as_deref() != Some("Indexed") {
            p.push(format!("{who}: completionMode is {:?}, not Indexed", job.completion_mode));
        }
        match (job.completions, job.parallelism) {
            (Some(c), Some(par)) if c == par && c > 0 => {}
            (c, par) => p.push(format!(
                "{who}: completions ({c:?}) and parallelism ({par:?}) must be equal: every generator pod runs at once"
            )),
        }
        let loads: Vec<(&Container, Invocation)> = job
            .containers
            .iter()
            .flat_map(|c| invocations(&who, c.argv()).unwrap_or_default().into_iter().map(move |inv| (c, inv)))
            .filter(|(_, inv)| inv.bin == "authbench" && inv.sub.as_deref() == Some("load"))
            .collect();
        if loads.is_empty() {
            p.push(format!("{who} runs no `authbench load`"));
        }
        for (c, inv) in loads {
            for flag in ["--url", "--rate", "--start-at"] {
                if inv.flag(flag).is_none() {
                    p.push(format!("{who}: `authbench load` has no {flag}"));
                }
            }
            let hlog = inv.flag("--hlog").unwrap_or_default();
            if !hlog.contains("$(JOB_COMPLETION_INDEX)") {
                p.push(format!("{who}: --hlog {hlog:?} is not one file per pod (by $(JOB_COMPLETION_INDEX))"));
            }
            for var in substitutions(c.argv()) {
                if !c.env.iter().any(|e| e.name == var) {
                    p.push(format!("{who}: args use $({var}), which is not in the container's env (passed literally)"));
                }
            }
            for (map, key) in c.env.iter().filter_map(|e| e.config_map_key.as_ref()) {
                if !m.config_maps.get(map).is_some_and(|keys| keys.contains(key)) {
                    p.push(format!("{who}: env reads key {key} of ConfigMap {map}, which is not generated"));
                }
            }
            let dir = hlog.rsplit_once('/').map_or("", |(dir, _)| dir);
            let claim = c.mounts.iter().find(|mt| mt.path.trim_end_matches('/') == dir).and_then(|mt| {
                match &job.volume(&mt.volume)?.source {
                    VolumeSource::Claim(claim) => Some(claim),
                    _ => None,
                }
            });
            match claim {
                Some(claim) if m.claims.get(claim).is_some_and(|modes| modes.iter().any(|a| a == "ReadWriteMany")) => {}
                other => p.push(format!(
                    "{who}: --hlog's directory {dir:?} must be a ReadWriteMany claim of this kustomization (has {other:?})"
                )),
            }
        }
    }
    p
}

/// The `$(NAME)` references Kubernetes substitutes from the container's env.
fn substitutions(args: &[String]) -> BTreeSet<String> {
    args.iter()
        .flat_map(|a| a.split("$(").skip(1).filter_map(|rest| rest.split_once(')').map(|(name, _)| name.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests;
