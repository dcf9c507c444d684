//! Load sent by authbench reaches the system it claims to measure: the bench service's
//! command, and the `authbench` lines documented in docker-compose.yml's comments and in
//! the README's section on the stack.

use super::{Stack, balancers::Balancer, check_invocation};
use crate::{
    Binaries, Files,
    addr::host_port,
    command::Invocation,
    files::{COMPOSE, README, README_SECTION},
    shell,
};

pub(super) fn check_all(
    files: &Files,
    bins: &impl Binaries,
    stack: &Stack,
    balancers: &[Balancer],
    p: &mut Vec<String>,
) {
    for (name, invs) in &stack.runs {
        // A service in a balancer's network namespace reaches its frontends on loopback.
        let inside = stack
            .compose
            .services
            .get(name)
            .and_then(|svc| svc.network_mode.as_deref()?.strip_prefix("service:"))
            .and_then(|lb| balancers.iter().find(|b| b.name == lb));
        for inv in invs.iter().filter(|i| i.bin == "authbench") {
            check_load_target(inv, inside, balancers, p);
        }
    }
    let (documented, unreadable) = documented_runs(files);
    p.extend(unreadable);
    for inv in documented {
        check_invocation(bins, &inv, p);
        check_load_target(&inv, None, balancers, p);
    }
}

/// `authbench ...` command lines documented for the stack: the indented (example) lines of
/// docker-compose.yml's comments, and the code blocks of the README's section. Also the
/// lines that look like one but cannot be split into words, each saying where it is.
pub fn documented_runs(files: &Files) -> (Vec<Invocation>, Vec<String>) {
    let compose = files.get(COMPOSE).unwrap_or_default();
    let examples = compose
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .filter(|l| l.starts_with("  "))
        .map(|l| (COMPOSE, l));
    let readme = files.get(README).unwrap_or_default();
    let section = readme.split_once(README_SECTION).map_or("", |(_, rest)| rest.split("\n## ").next().unwrap_or(""));
    // Odd pieces between ``` fences are the code blocks.
    let code = section.split("```").skip(1).step_by(2).flat_map(str::lines).map(|l| (README, l));
    let (mut runs, mut unreadable) = (Vec::new(), Vec::new());
    for (origin, line) in examples.chain(code).filter(|(_, line)| line.trim_start().starts_with("authbench ")) {
        match shell::split(line) {
            Ok(commands) => runs.extend(
                commands.first().and_then(|words| Invocation::from_argv(&format!("{origin} (documented)"), words)),
            ),
            Err(e) => unreadable.push(format!("{origin}: `{}`: {e}", line.trim())),
        }
    }
    (runs, unreadable)
}

/// An authbench run's URLs are balancer ports (seen from the host, or from inside the
/// balancer's network namespace), and a `sweep --target` names the system and policy that
/// port leads to.
fn check_load_target(inv: &Invocation, inside: Option<&Balancer>, balancers: &[Balancer], p: &mut Vec<String>) {
    let urls: Vec<&str> = match inv.sub.as_deref() {
        Some("load") => inv.flag("--url").into_iter().collect(),
        Some("sweep") => inv.flag("--target").map(|t| t.split(',').collect()).unwrap_or_default(),
        _ => return,
    };
    let run = format!("{}: `{}`", inv.origin, inv.full_line());
    for url in urls {
        let authority = url.trim_start_matches("http://").split('/').next().unwrap_or_default();
        let Some((host, port)) = host_port(authority).filter(|(h, _)| matches!(*h, "127.0.0.1" | "localhost")) else {
            p.push(format!("{run}: {url} is not a loopback URL with a port"));
            continue;
        };
        let route = match inside {
            Some(lb) => lb.routes.get(&port),
            None => balancers.iter().find_map(|b| b.routes.get(b.published.get(&port)?)),
        };
        let Some((system, policy)) = route else {
            p.push(format!("{run}: {host}:{port} is no load balancer port"));
            continue;
        };
        if inv.sub.as_deref() != Some("sweep") {
            continue;
        }
        match inv.flag("--systems") {
            Some(s) if s == system => {}
            other => p.push(format!("{run}: port {port} leads to {system}, not --systems {other:?}")),
        }
        match inv.flag("--lb") {
            Some(lb) if lb == *policy => {}
            other => p.push(format!("{run}: port {port} balances {policy}; say so with --lb (has {other:?})")),
        }
    }
}
