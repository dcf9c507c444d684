//! The cross-checks: the deployment's files against each other and against the binaries.
//! [`problems`] runs them all; each problem names the file and what disagrees.

mod balancers;
mod image;
pub mod k8s;
mod services;
mod targets;

use std::collections::{BTreeMap, BTreeSet};

pub use targets::documented_runs;

use crate::{
    Binaries, Files,
    binaries::{documents_env, documents_flag},
    command::{BINARIES, Invocation, flag_name, invocations},
    compose::Compose,
    dockerfile::Dockerfile,
    files::{COMPOSE, DOCKERFILE},
};

/// A compose file read together with what its services run.
struct Stack<'a> {
    compose: &'a Compose,
    /// What each service that runs the Dockerfile's image runs.
    runs: BTreeMap<String, Vec<Invocation>>,
    /// The services that run a server, and where it listens.
    servers: BTreeMap<String, services::ServerService>,
}

/// Everything that can be checked without running a server; none means the deployment
/// matches the binaries. `session_cookie` is the cookie the sticky balancer must follow.
pub fn problems(files: &Files, bins: &impl Binaries, session_cookie: &str) -> Vec<String> {
    let compose = match Compose::parse(files.get(COMPOSE).unwrap_or_default()) {
        Ok(compose) => compose,
        Err(e) => return vec![format!("{COMPOSE}: {e}")],
    };
    let docker = match Dockerfile::parse(files.get(DOCKERFILE).unwrap_or_default()) {
        Ok(docker) => docker,
        Err(e) => return vec![format!("{DOCKERFILE}: {e}")],
    };
    let mut p = Vec::new();
    let mut stack =
        Stack { compose: &compose, runs: what_services_run(&compose, &docker, bins, &mut p), servers: BTreeMap::new() };
    let cmd_runs = invocations("Dockerfile CMD", &docker.cmd).unwrap_or_else(|e| {
        p.push(format!("{DOCKERFILE}: CMD: {e}"));
        Vec::new()
    });
    for inv in stack.runs.values().flatten().chain(&cmd_runs) {
        check_invocation(bins, inv, &mut p);
    }
    let used: BTreeSet<String> = stack.runs.values().flatten().chain(&cmd_runs).map(|i| i.bin.clone()).collect();
    image::check_contents(&docker, &used, &mut p);
    image::check_dockerfile(files, &docker, bins, &mut p);
    services::check_all(&mut stack, &docker, &mut p);
    let balancers = balancers::check_all(files, &stack, session_cookie, &mut p);
    targets::check_all(files, bins, &stack, &balancers, &mut p);
    p
}

/// Which services run the image built from the Dockerfile, and what they run.
fn what_services_run(
    compose: &Compose,
    docker: &Dockerfile,
    bins: &impl Binaries,
    p: &mut Vec<String>,
) -> BTreeMap<String, Vec<Invocation>> {
    let images: BTreeSet<&str> =
        compose.services.values().filter(|s| s.build.is_some()).filter_map(|s| s.image.as_deref()).collect();
    if images.len() > 1 {
        p.push(format!("{COMPOSE}: services build different image names from one Dockerfile: {images:?}"));
    }
    let mut runs = BTreeMap::new();
    for (name, svc) in &compose.services {
        if let Some(build) = &svc.build
            && build.context.as_deref().map(|c| c.trim_end_matches('/')) != Some(".")
        {
            p.push(format!(
                "{COMPOSE}: {name} builds from {:?}, not the repository's Dockerfile (context .)",
                build.context
            ));
        }
        let ours = svc.build.is_some() || svc.image.as_deref().is_some_and(|i| images.contains(i));
        if !ours {
            continue;
        }
        if svc.entrypoint {
            p.push(format!("{COMPOSE}: {name} replaces the image's entry point (it names each replica)"));
        }
        let command = svc.command.as_ref().unwrap_or(&docker.cmd);
        let invs = invocations(name, command).unwrap_or_else(|e| {
            p.push(format!("{COMPOSE}: {name}'s command: {e}"));
            Vec::new()
        });
        if invs.is_empty() {
            p.push(format!("{COMPOSE}: {name} runs none of {BINARIES:?}: {command:?}"));
        }
        for var in &svc.environment {
            for inv in &invs {
                if !bins.help(&inv.bin, inv.sub.as_deref()).is_ok_and(|h| documents_env(&h, var)) {
                    p.push(format!("{COMPOSE}: {name} sets {var}, which `{} --help` does not document", inv.line()));
                }
            }
        }
        runs.insert(name.clone(), invs);
    }
    runs
}

/// The binary knows the command: every flag is in its `--help`, and it accepts the values.
pub fn check_invocation(bins: &impl Binaries, inv: &Invocation, p: &mut Vec<String>) {
    let help = match bins.help(&inv.bin, inv.sub.as_deref()) {
        Ok(help) => help,
        Err(e) => {
            p.push(format!("{}: `{} --help` fails, no such command: {e}", inv.origin, inv.line()));
            return;
        }
    };
    let before = p.len();
    for flag in inv.args.iter().filter_map(|a| flag_name(a)) {
        if !documents_flag(&help, flag) {
            p.push(format!("{}: `{}` has no {flag} (not in its --help)", inv.origin, inv.line()));
        }
    }
    // Flags first: their message is clearer than clap's.
    if p.len() == before
        && let Err(e) = bins.accepts(inv)
    {
        p.push(format!("{}: `{}` is refused: {e}", inv.origin, inv.full_line()));
    }
}

#[cfg(test)]
mod tests;
