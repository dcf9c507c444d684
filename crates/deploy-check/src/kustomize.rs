//! The kustomizations under deploy/k8s: what each `kustomization.yaml` names (its fields,
//! bases, resources, patches and generated files), and rendering one with `kubectl
//! kustomize`, which turns it into the objects [`crate::manifests`] reads.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use yaml_rust2::{Yaml, YamlLoader};

use crate::compose::scalar;

/// The Kubernetes manifests: a base, one overlay per system, the load generator.
pub const K8S: &str = "deploy/k8s";
/// One directory per system, named after it (`jwt-hs256+denylist` as `jwt-hs256-denylist`).
pub const OVERLAYS: &str = "deploy/k8s/overlays";
/// The Indexed Job that generates load from several pods.
pub const GENERATOR: &str = "deploy/k8s/generator";
pub const KUSTOMIZATION: &str = "kustomization.yaml";

/// The variable that names the kubectl to render with, instead of the one on `PATH`.
pub const KUBECTL_VAR: &str = "KUBECTL";

#[derive(Debug, thiserror::Error)]
pub enum KustomizeError {
    #[error("not YAML: {0}")]
    NotYaml(#[from] yaml_rust2::ScanError),
    #[error("not a mapping of fields")]
    NotAMapping,
}

/// One `kustomization.yaml`, its paths as written (relative to its directory).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Kustomization {
    /// Every top-level field, in order.
    pub fields: Vec<String>,
    pub resources: Vec<String>,
    pub bases: Vec<String>,
    /// `patchesStrategicMerge` entries and the `path` of each `patchesJson6902` entry.
    pub patches: Vec<String>,
    /// The files of every `secretGenerator` and `configMapGenerator` (`key=path` as `path`).
    pub generated_from: Vec<String>,
    /// The files of the `secretGenerator`s alone.
    pub secret_files: Vec<String>,
}

impl Kustomization {
    pub fn parse(text: &str) -> Result<Kustomization, KustomizeError> {
        let docs = YamlLoader::load_from_str(text)?;
        let Some(Yaml::Hash(top)) = docs.first() else { return Err(KustomizeError::NotAMapping) };
        let doc = &docs[0];
        let list = |field: &str| -> Vec<String> {
            doc[field].as_vec().map(|items| items.iter().filter_map(scalar).collect()).unwrap_or_default()
        };
        let files_of = |generator: &str| -> Vec<String> {
            doc[generator]
                .as_vec()
                .into_iter()
                .flatten()
                .flat_map(|g| g["files"].as_vec().into_iter().flatten().filter_map(scalar))
                .map(|f| f.rsplit('=').next().unwrap_or_default().to_owned())
                .collect()
        };
        let json_patches = doc["patchesJson6902"]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(|p| scalar(&p["path"]))
            .collect::<Vec<_>>();
        let secret_files = files_of("secretGenerator");
        Ok(Kustomization {
            fields: top.keys().filter_map(scalar).collect(),
            resources: list("resources"),
            bases: list("bases"),
            patches: list("patchesStrategicMerge").into_iter().chain(json_patches).collect(),
            generated_from: secret_files.iter().cloned().chain(files_of("configMapGenerator")).collect(),
            secret_files,
        })
    }
}

/// `rel` (with `.` and `..`) taken from the repository directory `dir`; `None` if it
/// climbs above the repository or is absolute.
pub fn join(dir: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The kubectl to render with: `$KUBECTL`, else `kubectl` on `PATH`; `None` if it does not
/// run (`kubectl version --client` fails or is not found).
pub fn kubectl() -> Option<PathBuf> {
    let kubectl = std::env::var_os(KUBECTL_VAR).filter(|v| !v.is_empty()).unwrap_or_else(|| "kubectl".into());
    let runs = Command::new(&kubectl)
        .args(["version", "--client"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    runs.then(|| kubectl.into())
}

/// `kubectl kustomize DIR`: the rendered objects, or kubectl's error without its
/// deprecation warnings (which newer versions print for fields kubectl 1.20 needs).
pub fn render(kubectl: &Path, dir: &Path) -> Result<String, String> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", kubectl.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(without_warnings(&String::from_utf8_lossy(&out.stderr))
        .unwrap_or_else(|| format!("kubectl kustomize exited with {}", out.status)))
}

/// kubectl's error lines, the `# Warning:` lines left out; `None` if nothing else is left.
fn without_warnings(stderr: &str) -> Option<String> {
    let error: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty() && !l.starts_with("# Warning:")).collect();
    (!error.is_empty()).then(|| error.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_kustomization_names() {
        let k = Kustomization::parse(
            "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
bases: [../../base]
resources: [extra.yaml]
patchesStrategicMerge: [server.yaml]
patchesJson6902:
  - {target: {kind: Deployment, name: server}, path: args.yaml}
secretGenerator:
  - {name: keys, files: [keys/hs256.key, other=keys/x.pem]}
configMapGenerator:
  - {name: cfg, literals: [A=1], files: [cfg.txt]}
",
        )
        .unwrap();
        assert_eq!(
            k.fields,
            [
                "apiVersion",
                "kind",
                "bases",
                "resources",
                "patchesStrategicMerge",
                "patchesJson6902",
                "secretGenerator",
                "configMapGenerator"
            ]
        );
        assert_eq!((k.bases, k.resources), (vec!["../../base".to_owned()], vec!["extra.yaml".to_owned()]));
        assert_eq!(k.patches, ["server.yaml", "args.yaml"]);
        assert_eq!(k.secret_files, ["keys/hs256.key", "keys/x.pem"]);
        assert_eq!(k.generated_from, ["keys/hs256.key", "keys/x.pem", "cfg.txt"]);
    }

    #[test]
    fn malformed_kustomizations_are_errors() {
        assert!(Kustomization::parse("bases: [").unwrap_err().to_string().starts_with("not YAML: "));
        assert_eq!(Kustomization::parse("").unwrap_err().to_string(), "not a mapping of fields");
        assert_eq!(Kustomization::parse("- a\n").unwrap_err().to_string(), "not a mapping of fields");
    }

    #[test]
    fn paths_relative_to_a_directory() {
        assert_eq!(join("deploy/k8s/overlays/x", "../../base").as_deref(), Some("deploy/k8s/base"));
        assert_eq!(
            join("deploy/k8s/overlays/x", "./server.yaml").as_deref(),
            Some("deploy/k8s/overlays/x/server.yaml")
        );
        assert_eq!(join("deploy/k8s", "base/redis/").as_deref(), Some("deploy/k8s/base/redis"));
        assert_eq!(join("deploy", "../.."), None);
        assert_eq!(join("deploy", "/etc/passwd"), None);
    }

    #[test]
    fn a_failing_render_says_why_without_the_warnings() {
        let stderr = "# Warning: 'bases' is deprecated.\nError: accumulating resources: x\n\n  more\n";
        assert_eq!(without_warnings(stderr).as_deref(), Some("Error: accumulating resources: x\n  more"));
        assert_eq!(without_warnings("# Warning: only this\n\n"), None);
        let missing = render(Path::new("/nonexistent/kubectl"), Path::new("."));
        assert!(missing.unwrap_err().starts_with("cannot run /nonexistent/kubectl"));
    }
}
