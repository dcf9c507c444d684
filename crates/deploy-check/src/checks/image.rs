//! The image: it holds exactly the binaries compose runs, builds them with a toolchain the
//! workspace allows, runs as a non-root user with no secret in it, and its entry point is a
//! script from deploy/ whose variables the servers know.

use std::collections::BTreeSet;

use crate::{
    Binaries, Files,
    binaries::documents_env,
    dockerfile::Dockerfile,
    files::{DOCKERFILE, DOCKERIGNORE, WORKSPACE},
};

/// What the build context must leave out: large (target), private (.git), or results.
const IGNORED: [&str; 3] = ["target", ".git", "bench-results"];

/// The runtime stage copies what compose runs (`used`), each built by a `cargo build`.
pub(super) fn check_contents(docker: &Dockerfile, used: &BTreeSet<String>, p: &mut Vec<String>) {
    for bin in used.difference(&docker.copied_from_stage) {
        p.push(format!("{DOCKERFILE}: compose runs {bin}, but the runtime stage does not COPY --from it"));
    }
    for bin in docker.copied_from_stage.difference(used) {
        p.push(format!("{DOCKERFILE}: the image holds {bin}, which no compose service runs"));
    }
    for bin in &docker.copied_from_stage {
        if !docker.build_runs.iter().any(|r| r.contains(&format!("target/release/{bin}"))) {
            p.push(format!("{DOCKERFILE}: {bin} is copied but no `cargo build` step produces target/release/{bin}"));
        }
    }
}

pub(super) fn check_dockerfile(files: &Files, docker: &Dockerfile, bins: &impl Binaries, p: &mut Vec<String>) {
    let workspace = files.get(WORKSPACE).unwrap_or_default();
    let msrv = workspace
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version").map(|v| v.trim_matches([' ', '=', '"']).to_owned()));
    match (&docker.rust_version, msrv) {
        (Some(image), Some(msrv)) if version(image) >= version(&msrv) => {}
        (image, msrv) => p.push(format!(
            "{DOCKERFILE}: the rust builder ({image:?}) must be at least {WORKSPACE}'s rust-version ({msrv:?})"
        )),
    }
    match docker.final_user.as_deref() {
        Some(user) if !(user == "root" || user == "0" || user.starts_with("root:") || user.starts_with("0:")) => {}
        other => p.push(format!("{DOCKERFILE}: the runtime stage must switch to a non-root USER (has {other:?})")),
    }
    for (source, _) in &docker.copied_from_context {
        if source.ends_with(".key") || source.ends_with(".pem") || source.contains("keys") {
            p.push(format!("{DOCKERFILE}: copies {source} into the image: keys are made at run time, never baked in"));
        }
    }
    for var in &docker.variables {
        let upper = var.to_ascii_uppercase();
        if ["SECRET", "PASSWORD", "TOKEN", "_KEY"].iter().any(|s| upper.contains(s)) {
            p.push(format!("{DOCKERFILE}: sets {var}: no secrets in the image"));
        }
    }
    check_entrypoint(files, docker, bins, p);
    let ignore = files.get(DOCKERIGNORE).unwrap_or_default();
    for needed in IGNORED {
        if !ignore.lines().any(|l| l.trim().trim_matches('/') == needed) {
            p.push(format!("{DOCKERIGNORE}: does not leave out {needed}"));
        }
    }
}

/// The entry point is a script from deploy/; every AUTHBENCH_* it sets is a server flag.
fn check_entrypoint(files: &Files, docker: &Dockerfile, bins: &impl Binaries, p: &mut Vec<String>) {
    let Some(entry) = docker.entrypoint.first() else {
        p.push(format!("{DOCKERFILE}: no ENTRYPOINT (it names each replica)"));
        return;
    };
    let script = docker.entrypoint_script().and_then(|source| Some((source, files.get(source)?)));
    let Some((source, text)) = script else {
        p.push(format!("{DOCKERFILE}: ENTRYPOINT {entry} is not a file copied from the repository"));
        return;
    };
    for var in authbench_variables(text) {
        for bin in ["session-server", "jwt-server"] {
            if !bins.help(bin, None).is_ok_and(|h| documents_env(&h, &var)) {
                p.push(format!("{source}: sets {var}, which `{bin} --help` does not document"));
            }
        }
    }
}

fn authbench_variables(text: &str) -> BTreeSet<String> {
    text.match_indices("AUTHBENCH_")
        .map(|(i, _)| {
            text[i..].chars().take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_').collect()
        })
        .collect()
}

/// `1.88.0` as numbers, so that 1.100 is newer than 1.95; what is not a number counts 0.
fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version("1.100") > version("1.95"));
        assert!(version("1.88.1") > version("1.88"));
        assert!(version("1.88") >= version("1.88"));
        assert!(version("1.9") < version("1.88"));
        assert_eq!(version(""), [0]);
    }

    #[test]
    fn the_variables_a_script_sets() {
        let script = ": \"${AUTHBENCH_INSTANCE_ID:=${HOSTNAME}}\"\nexport AUTHBENCH_INSTANCE_ID AUTHBENCH_X2\n";
        assert_eq!(
            authbench_variables(script),
            BTreeSet::from(["AUTHBENCH_INSTANCE_ID".to_owned(), "AUTHBENCH_X2".to_owned()])
        );
    }
}
