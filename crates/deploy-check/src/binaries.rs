//! What the binaries say about themselves. `<bin> [sub] ARGS... --help` makes clap parse
//! ARGS before it prints the help, so an unknown flag or a bad value fails exactly as it
//! would in the container.

use std::{
    cell::RefCell,
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::command::Invocation;

/// The binaries a deployment runs, asked through `--help`. [`BinDir`] runs the real ones;
/// the checks' own tests answer from canned help texts.
pub trait Binaries {
    /// `bin [sub] --help`, or the first line of why it failed (an unknown subcommand).
    fn help(&self, bin: &str, sub: Option<&str>) -> Result<String, String>;
    /// Whether the binary accepts the whole command line, values included.
    fn accepts(&self, inv: &Invocation) -> Result<(), String>;
}

/// `--help` of one command, or why it failed.
type HelpOutput = Result<String, String>;

/// The binaries in one directory (a cargo target directory, or the image's /usr/local/bin).
#[derive(Debug)]
pub struct BinDir {
    dir: PathBuf,
    /// Each command is asked many times (every service, every documented line).
    help: RefCell<HashMap<(String, Option<String>), HelpOutput>>,
}

impl BinDir {
    pub fn new(dir: impl Into<PathBuf>) -> BinDir {
        BinDir { dir: dir.into(), help: RefCell::default() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn run(&self, bin: &str, args: &[&str]) -> Result<String, String> {
        // A clean environment: an AUTHBENCH_* variable of the machine running the check
        // must not change what a flag means.
        let out = Command::new(self.dir.join(bin))
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.dir.join(bin).display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no message)").trim().to_owned())
        }
    }
}

impl Binaries for BinDir {
    fn help(&self, bin: &str, sub: Option<&str>) -> Result<String, String> {
        let key = (bin.to_owned(), sub.map(str::to_owned));
        if let Some(cached) = self.help.borrow().get(&key) {
            return cached.clone();
        }
        let args: Vec<&str> = sub.into_iter().chain(["--help"]).collect();
        let result = self.run(bin, &args);
        self.help.borrow_mut().insert(key, result.clone());
        result
    }

    fn accepts(&self, inv: &Invocation) -> Result<(), String> {
        // clap parses every argument before it acts on a trailing `--help`.
        let args: Vec<&str> =
            inv.sub.iter().map(String::as_str).chain(inv.args.iter().map(String::as_str)).chain(["--help"]).collect();
        self.run(&inv.bin, &args).map(drop)
    }
}

/// Whether `help` lists `flag` as an option (a whole word: `--store` is not `--store-timeout`).
pub fn documents_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == ',' || c == '[')
            && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

/// Whether `help` names `var` as the environment variable of one of its flags.
pub fn documents_env(help: &str, var: &str) -> bool {
    help.contains(&format!("[env: {var}="))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP: &str = "Options:
      --store <STORE>  Where sessions live [env: AUTHBENCH_STORE=] [default: memory]
      --store-timeout <T>
  -h, --help           Print help
      [--verbose]";

    #[test]
    fn flags_are_whole_words() {
        for flag in ["--store", "--store-timeout", "-h", "--help", "--verbose"] {
            assert!(documents_flag(HELP, flag), "{flag}");
        }
        for flag in ["--stor", "--tore", "--store-time", "-s", "--timeout"] {
            assert!(!documents_flag(HELP, flag), "{flag}");
        }
    }

    #[test]
    fn environment_variables() {
        assert!(documents_env(HELP, "AUTHBENCH_STORE"));
        assert!(!documents_env(HELP, "AUTHBENCH_STOR"));
        assert!(!documents_env(HELP, "STORE"));
    }

    #[test]
    fn a_failing_or_missing_binary_is_an_answer_not_a_panic() {
        let bins = BinDir::new("/bin");
        assert_eq!(
            bins.run("sh", &["-c", "echo; echo '  no such flag  ' >&2; echo later >&2; exit 2"]),
            Err("no such flag".into())
        );
        assert_eq!(bins.run("sh", &["-c", "exit 1"]), Err("(no message)".into()));
        assert_eq!(bins.run("sh", &["-c", "echo ok"]), Ok("ok\n".into()));
        let missing = BinDir::new("/nonexistent");
        assert!(
            missing.help("session-server", None).unwrap_err().starts_with("cannot run /nonexistent/session-server")
        );
    }

    #[test]
    fn help_is_asked_once() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::os::unix::fs::symlink("/bin/echo", &tool).unwrap();
        let bins = BinDir::new(dir.path());
        assert_eq!(bins.help("tool", Some("sub")), Ok("sub --help\n".into()));
        std::fs::remove_file(&tool).unwrap();
        assert_eq!(bins.help("tool", Some("sub")), Ok("sub --help\n".into()), "the second answer comes from the cache");
        assert!(bins.help("tool", None).is_err());
    }
}
