//! The deployment's files, as text, so that a test can check a copy with one thing broken.

use std::{collections::BTreeMap, io, path::Path};

pub const COMPOSE: &str = "docker-compose.yml";
pub const DOCKERFILE: &str = "Dockerfile";
pub const DOCKERIGNORE: &str = ".dockerignore";
/// The workspace manifest, for its rust-version.
pub const WORKSPACE: &str = "Cargo.toml";
pub const README: &str = "README.md";
/// The README's section on the compose stack, whose commands are checked too.
pub const README_SECTION: &str = "## Beyond one machine";
/// HAProxy configs and the image's entry point: every text file below it is read.
pub const DEPLOY: &str = "deploy";

/// Text files by path relative to the repository (`deploy/haproxy/sticky.cfg`).
#[derive(Clone, Debug, Default)]
pub struct Files(BTreeMap<String, String>);

impl Files {
    /// The deployment's files in the repository at `root`.
    pub fn read(root: &Path) -> io::Result<Files> {
        let mut files = BTreeMap::new();
        for rel in [COMPOSE, DOCKERFILE, DOCKERIGNORE, WORKSPACE, README] {
            files.insert(rel.to_owned(), read_text(&root.join(rel))?);
        }
        walk(&root.join(DEPLOY), DEPLOY, &mut files)?;
        Ok(Files(files))
    }

    pub fn get(&self, rel: &str) -> Option<&str> {
        self.0.get(rel.trim_start_matches("./").trim_end_matches('/')).map(String::as_str)
    }

    /// Files directly or indirectly under `dir` (relative to the repository).
    pub fn under(&self, dir: &str) -> Vec<(&str, &str)> {
        let dir = format!("{}/", dir.trim_start_matches("./").trim_end_matches('/'));
        self.0.iter().filter(|(k, _)| k.starts_with(&dir)).map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// A copy with the first `from` in `rel` replaced by `to`. An error if `from` is not
    /// there: a test that breaks nothing would pass for the wrong reason.
    pub fn with_replaced(&self, rel: &str, from: &str, to: &str) -> Result<Files, String> {
        let mut copy = self.clone();
        let text = copy.0.get_mut(rel).ok_or_else(|| format!("no file {rel}"))?;
        if !text.contains(from) {
            return Err(format!("{rel} does not contain {from:?}"));
        }
        *text = text.replacen(from, to, 1);
        Ok(copy)
    }
}

impl<P: Into<String>, T: Into<String>> FromIterator<(P, T)> for Files {
    fn from_iter<I: IntoIterator<Item = (P, T)>>(iter: I) -> Files {
        Files(iter.into_iter().map(|(p, t)| (p.into(), t.into())).collect())
    }
}

fn read_text(path: &Path) -> io::Result<String> {
    std::fs::read_to_string(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn walk(dir: &Path, rel: &str, files: &mut BTreeMap<String, String>) -> io::Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &name, files)?;
        } else {
            match read_text(&entry.path()) {
                Ok(text) => {
                    files.insert(name, text);
                }
                // Not text: nothing a check reads.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_compose_writes_them() {
        let files: Files =
            [("deploy/haproxy/a.cfg", "a"), ("deploy/haproxy/b.cfg", "b"), ("deploy/x.sh", "x")].into_iter().collect();
        assert_eq!(files.get("./deploy/x.sh"), Some("x"));
        assert_eq!(files.get("deploy/haproxy/"), None);
        assert_eq!(files.under("./deploy/haproxy/"), [("deploy/haproxy/a.cfg", "a"), ("deploy/haproxy/b.cfg", "b")]);
        assert_eq!(files.under("deploy").len(), 3);
        assert!(files.under("deploy/hap").is_empty());
    }

    #[test]
    fn a_broken_copy_leaves_the_original() {
        let files: Files = [("a", "one two two")].into_iter().collect();
        let broken = files.with_replaced("a", "two", "three").unwrap();
        assert_eq!((files.get("a"), broken.get("a")), (Some("one two two"), Some("one three two")));
        assert_eq!(files.with_replaced("a", "four", "x").unwrap_err(), r#"a does not contain "four""#);
        assert_eq!(files.with_replaced("b", "one", "x").unwrap_err(), "no file b");
    }

    #[test]
    fn reads_a_repository() {
        let root = tempfile::tempdir().unwrap();
        for rel in [COMPOSE, DOCKERFILE, DOCKERIGNORE, WORKSPACE, README] {
            std::fs::write(root.path().join(rel), rel).unwrap();
        }
        std::fs::create_dir_all(root.path().join("deploy/haproxy")).unwrap();
        std::fs::write(root.path().join("deploy/haproxy/a.cfg"), "cfg").unwrap();
        std::fs::write(root.path().join("deploy/blob"), [0xff, 0xfe]).unwrap();
        let files = Files::read(root.path()).unwrap();
        assert_eq!(files.get("deploy/haproxy/a.cfg"), Some("cfg"));
        assert_eq!(files.get("deploy/blob"), None, "not text");
        assert_eq!(files.get(README), Some(README));

        std::fs::remove_file(root.path().join(DOCKERFILE)).unwrap();
        let e = Files::read(root.path()).unwrap_err();
        assert!(e.to_string().contains("Dockerfile"), "{e}");
    }
}
