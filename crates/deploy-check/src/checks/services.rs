//! The server services: where they listen, how they are scaled and capped, and that the
//! Redis, the keys and the other services they need are there.

use super::Stack;
use crate::{
    addr::host_port,
    command::Invocation,
    compose::{Compose, Service, healthcheck_target},
    dockerfile::Dockerfile,
    files::{COMPOSE, DOCKERFILE},
};

#[derive(Debug)]
pub(super) struct ServerService {
    pub bin: String,
    /// The system id authbench knows it by (session-redis, jwt-hs256, ...).
    pub system: String,
    pub port: u16,
    pub replicas: u64,
}

/// Fills `stack.servers`, which the balancer checks need.
pub(super) fn check_all(stack: &mut Stack, docker: &Dockerfile, p: &mut Vec<String>) {
    let compose = stack.compose;
    for (name, invs) in &stack.runs {
        let Some(svc) = compose.services.get(name) else { continue };
        for inv in invs.iter().filter(|i| i.is_server()) {
            if let Some(server) = check_server(name, svc, inv, docker, p) {
                stack.servers.insert(name.clone(), server);
            }
        }
    }
    for (name, invs) in &stack.runs {
        for inv in invs.iter().filter(|i| i.is_server()) {
            check_redis(name, inv, stack, p);
            if inv.bin == "jwt-server" {
                check_keys(name, inv, stack, p);
            }
        }
    }
    check_dependencies(compose, p);
}

/// A server service: listens where the balancer and its health check reach it, is scaled
/// and capped, and lets authbench log in.
fn check_server(
    name: &str,
    svc: &Service,
    inv: &Invocation,
    docker: &Dockerfile,
    p: &mut Vec<String>,
) -> Option<ServerService> {
    let port = match inv.flag("--listen").and_then(host_port) {
        Some((host, port)) if port > 0 && matches!(host, "0.0.0.0" | "::") => port,
        Some(_) | None => {
            p.push(format!(
                "{COMPOSE}: {name} must `--listen 0.0.0.0:PORT` (a fixed port, every interface: the \
                 balancer and the health check reach it there); it has {:?}",
                inv.flag("--listen")
            ));
            return None;
        }
    };
    if !docker.expose.contains(&port) {
        p.push(format!("{DOCKERFILE}: EXPOSE does not list {port}, the port {name} listens on"));
    }
    match svc.healthcheck.as_ref().and_then(|h| h.line.as_deref()) {
        None => p.push(format!("{COMPOSE}: {name} has no healthcheck")),
        Some(test) => {
            if !test.contains("/healthz") {
                p.push(format!("{COMPOSE}: {name}'s healthcheck does not ask /healthz: {test}"));
            }
            match healthcheck_target(test) {
                Some((host, hport)) if hport == port && matches!(host.as_str(), "127.0.0.1" | "localhost") => {}
                other => p.push(format!(
                    "{COMPOSE}: {name}'s healthcheck talks to {other:?}, but the server listens on port {port}"
                )),
            }
        }
    }
    let replicas = svc.replicas.unwrap_or(0);
    if replicas < 1 {
        p.push(format!("{COMPOSE}: {name} has no deploy.replicas"));
    }
    if svc.cpus.is_none() {
        p.push(format!("{COMPOSE}: {name} has no deploy.resources.limits.cpus"));
    }
    match inv.flag("--demo-password") {
        None | Some("demo-password") => {}
        Some(other) => {
            p.push(format!("{COMPOSE}: {name} sets --demo-password {other:?}; authbench logs in with the default"))
        }
    }
    if inv.flag("--demo-users").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) == 0 {
        p.push(format!("{COMPOSE}: {name} creates no --demo-users for authbench to log in as"));
    }
    let replicas = u64::try_from(replicas).unwrap_or(0);
    Some(ServerService { bin: inv.bin.clone(), system: inv.system(), port, replicas })
}

/// Dependencies, shared network namespaces and named volumes refer to things that exist.
fn check_dependencies(compose: &Compose, p: &mut Vec<String>) {
    for (name, svc) in &compose.services {
        for dep in &svc.depends_on {
            let (dep, condition) = (&dep.service, dep.condition.as_str());
            match compose.services.get(dep) {
                None => p.push(format!("{COMPOSE}: {name} depends on {dep}, which is not a service")),
                Some(target) => match condition {
                    "service_started" | "service_completed_successfully" => {}
                    "service_healthy" if target.healthcheck.is_none() => {
                        p.push(format!("{COMPOSE}: {name} waits for {dep} to be healthy, but {dep} has no healthcheck"))
                    }
                    "service_healthy" => {}
                    other => p.push(format!("{COMPOSE}: {name} depends on {dep} with unknown condition {other}")),
                },
            }
        }
        if let Some(other) = svc.network_mode.as_deref().and_then(|m| m.strip_prefix("service:"))
            && !compose.services.contains_key(other)
        {
            p.push(format!("{COMPOSE}: {name} joins the network of {other}, which is not a service"));
        }
        for m in svc.volumes.iter().filter(|m| m.is_named_volume()) {
            if !compose.volumes.contains(&m.source) {
                p.push(format!(
                    "{COMPOSE}: {name} mounts volume {}, which the top-level volumes do not declare",
                    m.source
                ));
            }
        }
    }
}

fn depends(svc: &Service, on: &str) -> bool {
    svc.depends_on.iter().any(|d| d.service == on)
}

/// A server that uses Redis must be told where it is: a compose service it waits for.
fn check_redis(name: &str, inv: &Invocation, stack: &Stack, p: &mut Vec<String>) {
    let services = &stack.compose.services;
    let needs = inv.flag("--store") == Some("redis")
        || inv.flag("--refresh-store") == Some("redis")
        || inv.flag("--revocation").is_some_and(|r| r.starts_with("denylist"));
    let Some(url) = inv.flag("--redis-url") else {
        if needs {
            p.push(format!("{COMPOSE}: {name} uses Redis without --redis-url (the default is its own loopback)"));
        }
        return;
    };
    let authority = url.trim_start_matches("redis://").split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let (host, port) = host_port(authority).unwrap_or((authority, 6379));
    let Some(redis) = services.get(host) else {
        p.push(format!("{COMPOSE}: {name} --redis-url {url}: {host} is not a service"));
        return;
    };
    if !stack.runs.contains_key(host) {
        let command = redis.command.as_deref().unwrap_or_default();
        let listens =
            command.iter().position(|a| a == "--port").and_then(|i| command.get(i + 1)?.parse().ok()).unwrap_or(6379);
        if listens != port {
            p.push(format!("{COMPOSE}: {name} --redis-url {url}, but {host} listens on {listens}"));
        }
        if redis.cpus.is_none() {
            p.push(format!("{COMPOSE}: {host} (the store) has no deploy.resources.limits.cpus"));
        }
    }
    if services.get(name).is_none_or(|svc| !depends(svc, host)) {
        p.push(format!("{COMPOSE}: {name} uses {host} but does not depend on it"));
    }
}

/// A JWT server's --key-dir is a volume, read-only, filled by a `jwt-server keygen` for the
/// same algorithm that the server waits for.
fn check_keys(name: &str, inv: &Invocation, stack: &Stack, p: &mut Vec<String>) {
    let services = &stack.compose.services;
    let Some(svc) = services.get(name) else { return };
    let key_dir = inv.flag("--key-dir").unwrap_or("keys");
    let alg = inv.flag("--alg").unwrap_or("HS256");
    let Some(volume) = svc.volumes.iter().find(|m| m.target.trim_end_matches('/') == key_dir.trim_end_matches('/'))
    else {
        p.push(format!("{COMPOSE}: {name} reads keys from {key_dir}, but mounts nothing there"));
        return;
    };
    if !volume.is_named_volume() || !stack.compose.volumes.contains(&volume.source) {
        p.push(format!("{COMPOSE}: {name}'s {key_dir} should be a declared named volume, not {:?}", volume.source));
    }
    if !volume.read_only {
        p.push(format!("{COMPOSE}: {name} mounts its keys writable; the servers only read them (`:ro`)"));
    }
    let keygen = stack.runs.iter().find_map(|(other, invs)| {
        let target = &services.get(other)?.volumes.iter().find(|m| m.source == volume.source)?.target;
        invs.iter()
            .find(|i| {
                i.bin == "jwt-server"
                    && i.sub.as_deref() == Some("keygen")
                    && i.flag("--key-dir").map(|d| d.trim_end_matches('/')) == Some(target.trim_end_matches('/'))
            })
            .map(|i| (other, i.flag("--alg").unwrap_or_default()))
    });
    match keygen {
        None => p.push(format!(
            "{COMPOSE}: no service runs `jwt-server keygen --key-dir` into volume {} for {name}",
            volume.source
        )),
        Some((keygen, keygen_alg)) => {
            if !keygen_alg.eq_ignore_ascii_case(alg) {
                p.push(format!("{COMPOSE}: {keygen} makes a {keygen_alg} key, but {name} runs --alg {alg}"));
            }
            let waits =
                svc.depends_on.iter().any(|d| d.service == *keygen && d.condition == "service_completed_successfully");
            if !waits {
                p.push(format!("{COMPOSE}: {name} must wait for {keygen} (condition: service_completed_successfully)"));
            }
        }
    }
}
