//! The parts of a Dockerfile the checks look at: mostly its final (runtime) stage.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DockerfileError {
    /// The shell form would run the command through `/bin/sh -c`, with the replica's
    /// signals going to the shell: the checks want the exec form.
    #[error("{instruction} must be a JSON list of strings (the exec form), not `{text}`")]
    NotExecForm { instruction: &'static str, text: String },
    #[error("the last line ends in a backslash: the instruction is never finished")]
    UnfinishedLine,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dockerfile {
    /// Basenames of everything `COPY --from=<stage>` puts in the runtime image.
    pub copied_from_stage: BTreeSet<String>,
    /// (source, destination) of the other COPYs of the final stage.
    pub copied_from_context: Vec<(String, String)>,
    /// The `RUN` lines, of any stage, that run `cargo build`.
    pub build_runs: Vec<String>,
    /// The version of the last `rust:<version>...` image built FROM (ARGs substituted).
    pub rust_version: Option<String>,
    pub final_user: Option<String>,
    pub expose: BTreeSet<u16>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    /// ENV and ARG names.
    pub variables: Vec<String>,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Result<Dockerfile, DockerfileError> {
        let mut d = Dockerfile::default();
        let mut args: HashMap<String, String> = HashMap::new();
        for line in logical_lines(text)? {
            let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let rest = rest.trim();
            match instr.to_ascii_uppercase().as_str() {
                "ARG" | "ENV" => {
                    let (name, value) = rest.split_once(['=', ' ']).unwrap_or((rest, ""));
                    d.variables.push(name.to_owned());
                    args.insert(name.to_owned(), value.to_owned());
                }
                "FROM" => {
                    let mut image = rest.split_whitespace().next().unwrap_or_default().to_owned();
                    for (name, value) in &args {
                        image = image.replace(&format!("${{{name}}}"), value);
                    }
                    if let Some(tag) = image.strip_prefix("rust:") {
                        d.rust_version = Some(tag.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect());
                    }
                    // A new stage: what counts is the final one's.
                    d.copied_from_stage.clear();
                    d.copied_from_context.clear();
                    d.final_user = None;
                }
                "COPY" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let from_stage = words.iter().any(|w| w.starts_with("--from="));
                    let paths: Vec<&str> = words.iter().copied().filter(|w| !w.starts_with("--")).collect();
                    if let Some((dest, sources)) = paths.split_last() {
                        for source in sources {
                            if from_stage {
                                d.copied_from_stage.insert(source.rsplit('/').next().unwrap_or(source).to_owned());
                            } else {
                                d.copied_from_context.push(((*source).to_owned(), (*dest).to_owned()));
                            }
                        }
                    }
                }
                "RUN" if rest.contains("cargo build") => d.build_runs.push(rest.to_owned()),
                "USER" => d.final_user = Some(rest.to_owned()),
                "EXPOSE" => {
                    d.expose.extend(rest.split_whitespace().filter_map(|p| p.split('/').next()?.parse::<u16>().ok()))
                }
                "CMD" => d.cmd = exec_form("CMD", rest)?,
                "ENTRYPOINT" => d.entrypoint = exec_form("ENTRYPOINT", rest)?,
                _ => {}
            }
        }
        Ok(d)
    }

    /// The repository file the ENTRYPOINT runs: the one a COPY from the build context puts
    /// under the entry point's name.
    pub fn entrypoint_script(&self) -> Option<&str> {
        let entry = self.entrypoint.first()?;
        let name = entry.rsplit('/').next().unwrap_or(entry);
        let (source, _) = self.copied_from_context.iter().find(|(_, dest)| dest.rsplit('/').next() == Some(name))?;
        Some(source)
    }
}

/// Comments out, backslash continuations joined.
fn logical_lines(text: &str) -> Result<Vec<String>, DockerfileError> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if current.is_empty() { Ok(lines) } else { Err(DockerfileError::UnfinishedLine) }
}

fn exec_form(instruction: &'static str, text: &str) -> Result<Vec<String>, DockerfileError> {
    serde_json::from_str(text).map_err(|_| DockerfileError::NotExecForm { instruction, text: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTI_STAGE: &str = r#"# syntax=docker/dockerfile:1
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim AS build
COPY crates ./crates
RUN --mount=type=cache,target=/src/target \
    # a comment inside the continuation
    cargo build --release -p x \
    && cp target/release/x /out/
USER builder

FROM debian:bookworm-slim AS runtime
COPY --from=build /out/x /out/y /usr/local/bin/
COPY --chmod=0755 deploy/entry.sh /usr/local/bin/entry
ENV MODE=fast
USER 10001:10001
EXPOSE 8000 8001/tcp
ENTRYPOINT ["entry"]
CMD ["x", "--listen", "0.0.0.0:8000"]
"#;

    #[test]
    fn the_final_stage_counts() {
        let d = Dockerfile::parse(MULTI_STAGE).unwrap();
        assert_eq!(d.rust_version.as_deref(), Some("1.95"));
        assert_eq!(d.copied_from_stage, BTreeSet::from(["x".to_owned(), "y".to_owned()]));
        assert_eq!(d.copied_from_context, [("deploy/entry.sh".to_owned(), "/usr/local/bin/entry".to_owned())]);
        assert_eq!(d.build_runs.len(), 1);
        assert!(d.build_runs[0].contains("cargo build --release -p x") && d.build_runs[0].contains("target/release/x"));
        assert_eq!(d.final_user.as_deref(), Some("10001:10001"));
        assert_eq!(d.expose, BTreeSet::from([8000, 8001]));
        assert_eq!(d.entrypoint, ["entry"]);
        assert_eq!(d.cmd, ["x", "--listen", "0.0.0.0:8000"]);
        assert_eq!(d.variables, ["RUST_VERSION", "MODE"]);
        assert_eq!(d.entrypoint_script(), Some("deploy/entry.sh"));
    }

    #[test]
    fn an_entry_point_not_copied_from_the_repository_has_no_script() {
        let d = Dockerfile::parse("FROM a\nCOPY x.sh /bin/other\nENTRYPOINT [\"/bin/entry\"]\n").unwrap();
        assert_eq!(d.entrypoint_script(), None);
        assert_eq!(Dockerfile::default().entrypoint_script(), None);
    }

    #[test]
    fn a_stage_without_user_runs_as_root() {
        let d = Dockerfile::parse("FROM a\nUSER app\nFROM b\n").unwrap();
        assert_eq!(d.final_user, None);
        assert_eq!(Dockerfile::parse("").unwrap(), Dockerfile::default());
    }

    #[test]
    fn malformed_files_are_errors() {
        assert_eq!(
            Dockerfile::parse("FROM a\nCMD x --listen 0.0.0.0:8000\n").unwrap_err().to_string(),
            "CMD must be a JSON list of strings (the exec form), not `x --listen 0.0.0.0:8000`"
        );
        assert!(matches!(
            Dockerfile::parse("ENTRYPOINT [\"a\", 1]"),
            Err(DockerfileError::NotExecForm { instruction: "ENTRYPOINT", .. })
        ));
        assert_eq!(Dockerfile::parse("FROM a\nRUN true \\\n"), Err(DockerfileError::UnfinishedLine));
    }
}
