//! The load balancers: the services that mount deploy/haproxy. They publish on loopback
//! exactly what HAProxy binds, load the mounted configs, and their backends reach the
//! servers; what each port leads to is what the load-target checks hold authbench to.

use std::collections::{BTreeMap, BTreeSet};

use super::Stack;
use crate::{
    Files,
    compose::{Mount, Service},
    files::COMPOSE,
    haproxy::Haproxy,
};

/// Where the configs live in the repository.
const HAPROXY_DIR: &str = "deploy/haproxy";
/// What the haproxy image loads when its command names no `-f`.
const HAPROXY_DEFAULT_CONFIG: &str = "/usr/local/etc/haproxy/haproxy.cfg";

/// Where a balancer port leads: (system, policy).
pub(super) type Routes = BTreeMap<u16, (String, &'static str)>;

/// A load balancer service and what each of its ports leads to.
#[derive(Debug)]
pub(super) struct Balancer {
    pub name: String,
    /// Container port (an HAProxy bind) → where it leads.
    pub routes: Routes,
    /// Host port → container port.
    pub published: BTreeMap<u16, u16>,
}

fn is_haproxy_config(m: &Mount) -> bool {
    m.source.trim_start_matches("./").starts_with(HAPROXY_DIR)
}

pub(super) fn check_all(files: &Files, stack: &Stack, session_cookie: &str, p: &mut Vec<String>) -> Vec<Balancer> {
    let services = &stack.compose.services;
    let balancers: Vec<(&String, &Service)> =
        services.iter().filter(|(_, svc)| svc.volumes.iter().any(is_haproxy_config)).collect();
    if balancers.is_empty() {
        p.push(format!("{COMPOSE}: no service mounts {HAPROXY_DIR}: there is no load balancer"));
    }
    for (name, svc) in services {
        if !balancers.iter().any(|(b, _)| *b == name) && !svc.ports.is_empty() {
            p.push(format!("{COMPOSE}: {name} publishes ports; only the load balancers should"));
        }
    }
    balancers.into_iter().filter_map(|(name, svc)| check_balancer(name, svc, files, stack, session_cookie, p)).collect()
}

fn check_balancer(
    name: &str,
    svc: &Service,
    files: &Files,
    stack: &Stack,
    session_cookie: &str,
    p: &mut Vec<String>,
) -> Option<Balancer> {
    for port in &svc.ports {
        if !matches!(port.host_ip.as_str(), "127.0.0.1" | "::1" | "localhost") {
            p.push(format!(
                "{COMPOSE}: {name} publishes {} beyond loopback; authbench only loads 127.0.0.1 (\"127.0.0.1:H:C\")",
                port.spec
            ));
        }
    }
    let configs: Vec<&Mount> = svc.volumes.iter().filter(|m| is_haproxy_config(m)).collect();
    // (repository path, text, where the directory or file is mounted)
    let mut cfg_files: Vec<(&str, &str, &str)> = Vec::new();
    for m in &configs {
        match files.get(&m.source) {
            Some(text) => cfg_files.push((m.source.as_str(), text, m.target.as_str())),
            None => cfg_files.extend(
                files
                    .under(&m.source)
                    .into_iter()
                    .filter(|(path, _)| path.ends_with(".cfg"))
                    .map(|(path, text)| (path, text, m.target.as_str())),
            ),
        }
    }
    if cfg_files.is_empty() {
        let source = configs.first().map_or("", |m| m.source.as_str());
        p.push(format!("{COMPOSE}: {name} mounts {source:?}, which holds no .cfg file"));
        return None;
    }
    check_loads(name, svc, &configs, &cfg_files, p);
    let texts: Vec<(&str, &str)> = cfg_files.iter().map(|(path, text, _)| (*path, *text)).collect();
    let (cfg, errors) = Haproxy::parse(&texts);
    p.extend(errors);
    check_haproxy(name, svc, &cfg, stack, session_cookie, p);
    let mut routes = Routes::new();
    for frontend in cfg.frontends.values() {
        let Some(backend) = frontend.backends.first().and_then(|b| cfg.backends.get(b)) else { continue };
        let Some(server) = backend.servers.iter().find_map(|s| stack.servers.get(&s.host)) else { continue };
        let policy = if backend.cookies.is_empty() { "round-robin" } else { "sticky" };
        for port in &frontend.binds {
            routes.insert(*port, (server.system.clone(), policy));
        }
    }
    let published = svc.ports.iter().map(|p| (p.host, p.container)).collect();
    Some(Balancer { name: name.to_owned(), routes, published })
}

/// HAProxy reads the mounted files: `-f` names the mounted directory or a mounted file.
fn check_loads(name: &str, svc: &Service, configs: &[&Mount], cfgs: &[(&str, &str, &str)], p: &mut Vec<String>) {
    let command = svc.command.as_deref().unwrap_or_default();
    let mut loaded: Vec<&str> =
        command.windows(2).filter(|w| w[0] == "-f").map(|w| w[1].trim_end_matches('/')).collect();
    if loaded.is_empty() {
        loaded.push(HAPROXY_DEFAULT_CONFIG);
    }
    for path in loaded {
        let found = configs.iter().any(|m| m.target.trim_end_matches('/') == path)
            || cfgs.iter().any(|(file, _, target)| {
                format!("{}/{}", target.trim_end_matches('/'), file.rsplit('/').next().unwrap_or_default()) == path
            });
        if !found {
            p.push(format!("{COMPOSE}: {name} loads {path}, which is not one of its mounted configs"));
        }
    }
}

fn check_haproxy(name: &str, svc: &Service, cfg: &Haproxy, stack: &Stack, session_cookie: &str, p: &mut Vec<String>) {
    let binds: BTreeSet<u16> = cfg.frontends.values().flat_map(|f| f.binds.iter().copied()).collect();
    let publishes: BTreeSet<u16> = svc.ports.iter().map(|p| p.container).collect();
    for port in binds.difference(&publishes) {
        p.push(format!("{COMPOSE}: {name} binds {port} ({HAPROXY_DIR}) but does not publish it"));
    }
    for port in publishes.difference(&binds) {
        p.push(format!("{COMPOSE}: {name} publishes {port}, which no HAProxy frontend binds"));
    }
    for (frontend, fe) in &cfg.frontends {
        if fe.backends.is_empty() {
            p.push(format!("{HAPROXY_DIR}: frontend {frontend} has no default_backend"));
        }
        for backend in fe.backends.iter().filter(|b| !cfg.backends.contains_key(*b)) {
            p.push(format!("{HAPROXY_DIR}: frontend {frontend} uses backend {backend}, which is not defined"));
        }
    }
    for (backend, be) in &cfg.backends {
        if be.servers.is_empty() {
            p.push(format!("{HAPROXY_DIR}: backend {backend} has no servers"));
        }
        match be.httpchk.as_ref().or(cfg.default_httpchk.as_ref()) {
            Some(check) if check.contains("/healthz") => {}
            other => p.push(format!("{HAPROXY_DIR}: backend {backend} does not check /healthz ({other:?})")),
        }
        for s in &be.servers {
            let host = &s.host;
            let Some(server) = stack.servers.get(host) else {
                if stack.compose.services.contains_key(host) || host.parse::<std::net::IpAddr>().is_ok() {
                    continue;
                }
                p.push(format!("{HAPROXY_DIR}: backend {backend} sends to {host}, which is not a compose service"));
                continue;
            };
            if s.port != server.port {
                p.push(format!(
                    "{HAPROXY_DIR}: backend {backend} sends to {host}:{}, but {host} listens on {}",
                    s.port, server.port
                ));
            }
            if (s.slots as u64) < server.replicas {
                p.push(format!(
                    "{HAPROXY_DIR}: backend {backend} has {} slots for {} replicas of {host}",
                    s.slots, server.replicas
                ));
            }
            let resolvers = s
                .params
                .iter()
                .chain(&cfg.default_server)
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0] == "resolvers")
                .map(|w| w[1].clone());
            match resolvers {
                Some(r) if cfg.resolvers.contains(&r) => {}
                other => p.push(format!(
                    "{HAPROXY_DIR}: backend {backend} finds {host}'s replicas through resolvers {other:?}, which is not defined"
                )),
            }
            if !svc.depends_on.iter().any(|d| d.service == *host) {
                p.push(format!("{COMPOSE}: {name} balances {host} but does not depend on it"));
            }
            if !be.cookies.is_empty() && server.bin != "session-server" {
                p.push(format!("{HAPROXY_DIR}: backend {backend} sticks by cookie, but {host} runs {}", server.bin));
            }
        }
        for cookie in be.cookies.iter().filter(|c| *c != session_cookie) {
            p.push(format!(
                "{HAPROXY_DIR}: backend {backend} sticks by cookie {cookie}; the session cookie is {session_cookie}"
            ));
        }
    }
}
