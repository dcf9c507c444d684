//! Which of our binaries a command line runs, and with what arguments.

use crate::shell::{self, ShellError};

/// What the image holds (Dockerfile) and compose may run.
pub const BINARIES: [&str; 3] = ["session-server", "jwt-server", "authbench"];

/// One run of one of [`BINARIES`]: `bin [sub] args...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Where it comes from (a service name, or the Dockerfile's CMD), for the messages.
    pub origin: String,
    pub bin: String,
    pub sub: Option<String>,
    pub args: Vec<String>,
}

impl Invocation {
    /// `None` unless `argv` runs one of [`BINARIES`] (by name or by path).
    pub fn from_argv(origin: &str, argv: &[String]) -> Option<Invocation> {
        let (first, rest) = argv.split_first()?;
        let bin = first.rsplit('/').next()?;
        if !BINARIES.contains(&bin) {
            return None;
        }
        let sub = rest.first().filter(|a| !a.starts_with('-')).cloned();
        let args = rest[usize::from(sub.is_some())..].to_vec();
        Some(Invocation { origin: origin.to_owned(), bin: bin.to_owned(), sub, args })
    }

    /// `bin [sub]`.
    pub fn line(&self) -> String {
        let sub = self.sub.as_deref().map(|s| format!(" {s}")).unwrap_or_default();
        format!("{}{sub}", self.bin)
    }

    /// `bin [sub] args...`.
    pub fn full_line(&self) -> String {
        format!("{} {}", self.line(), self.args.join(" "))
    }

    /// The value of `--name V` or `--name=V`.
    pub fn flag(&self, name: &str) -> Option<&str> {
        let mut args = self.args.iter();
        while let Some(a) = args.next() {
            if a == name {
                return args.next().map(String::as_str);
            }
            if let Some(v) = a.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
                return Some(v);
            }
        }
        None
    }

    /// A server (not a subcommand such as keygen).
    pub fn is_server(&self) -> bool {
        self.sub.is_none() && (self.bin == "session-server" || self.bin == "jwt-server")
    }

    /// The system id authbench knows a server by, from its flags and their defaults:
    /// `session-<store>`, `jwt-<alg>`, and `+<revocation>` for a JWT denylist.
    pub fn system(&self) -> String {
        match self.bin.as_str() {
            "session-server" => format!("session-{}", self.flag("--store").unwrap_or("memory")),
            _ => {
                let alg = self.flag("--alg").unwrap_or("HS256").to_ascii_lowercase();
                match self.flag("--revocation") {
                    None | Some("none") => format!("jwt-{alg}"),
                    Some(revocation) => format!("jwt-{alg}+{revocation}"),
                }
            }
        }
    }
}

/// The runs of our binaries in a command: the command itself, or each simple command of an
/// `sh -c` script (`exec` dropped).
pub fn invocations(origin: &str, argv: &[String]) -> Result<Vec<Invocation>, ShellError> {
    let shell = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
    match argv {
        [_, c, script, ..] if matches!(shell, Some("sh" | "bash")) && c == "-c" => Ok(shell::split(script)?
            .into_iter()
            .filter_map(|mut words| {
                if words.first().is_some_and(|w| w == "exec") {
                    words.remove(0);
                }
                Invocation::from_argv(origin, &words)
            })
            .collect()),
        _ => Ok(Invocation::from_argv(origin, argv).into_iter().collect()),
    }
}

/// `--flag` of `--flag` or `--flag=value`, `-x` of `-x`; `None` for values.
pub fn flag_name(arg: &str) -> Option<&str> {
    if arg.len() > 2 && arg.starts_with("--") {
        return arg.split('=').next();
    }
    let mut chars = arg.chars();
    (arg.len() == 2 && chars.next() == Some('-') && chars.next().is_some_and(|c| c.is_ascii_alphabetic()))
        .then_some(arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn a_run_of_ours_by_name_or_path() {
        let inv = Invocation::from_argv("svc", &argv(&["/usr/local/bin/jwt-server", "keygen", "--alg=HS256"])).unwrap();
        assert_eq!(
            (inv.bin.as_str(), inv.sub.as_deref(), inv.line()),
            ("jwt-server", Some("keygen"), "jwt-server keygen".into())
        );
        assert_eq!(inv.flag("--alg"), Some("HS256"));
        assert!(!inv.is_server());
        let server = Invocation::from_argv("svc", &argv(&["session-server", "--store", "redis"])).unwrap();
        assert_eq!((server.sub.as_deref(), server.flag("--store"), server.flag("--stor")), (None, Some("redis"), None));
        assert!(server.is_server());
        assert_eq!(server.full_line(), "session-server --store redis");
        assert_eq!(server.system(), "session-redis");
        assert!(Invocation::from_argv("svc", &argv(&["redis-server", "--port", "1"])).is_none());
        assert!(Invocation::from_argv("svc", &[]).is_none());
    }

    #[test]
    fn system_ids() {
        let system = |words: &[&str]| Invocation::from_argv("svc", &argv(words)).unwrap().system();
        assert_eq!(system(&["session-server"]), "session-memory");
        assert_eq!(system(&["session-server", "--store=postgres"]), "session-postgres");
        assert_eq!(system(&["jwt-server"]), "jwt-hs256");
        assert_eq!(system(&["jwt-server", "--alg", "EdDSA", "--revocation", "none"]), "jwt-eddsa");
        assert_eq!(system(&["jwt-server", "--revocation", "denylist"]), "jwt-hs256+denylist");
    }

    #[test]
    fn a_flag_without_its_value() {
        let inv = Invocation::from_argv("svc", &argv(&["authbench", "sweep", "--target"])).unwrap();
        assert_eq!(inv.flag("--target"), None);
    }

    #[test]
    fn runs_inside_a_shell_script() {
        let script = argv(&["sh", "-c", "test -s /k/x || exec jwt-server keygen --key-dir /k; authbench load"]);
        let runs = invocations("keygen", &script).unwrap();
        assert_eq!(runs.iter().map(Invocation::line).collect::<Vec<_>>(), ["jwt-server keygen", "authbench load"]);
        assert_eq!(runs[0].args, ["--key-dir", "/k"]);
        assert_eq!(runs[0].origin, "keygen");
        // Not a script: `-c` must come first.
        assert!(invocations("x", &argv(&["/bin/bash", "-e", "jwt-server"])).unwrap().is_empty());
        assert_eq!(invocations("x", &argv(&["sh", "-c", "exec 'jwt-server"])), Err(ShellError::UnclosedQuote('\'')));
    }

    #[test]
    fn flag_names() {
        assert_eq!(flag_name("--store"), Some("--store"));
        assert_eq!(flag_name("--store=redis"), Some("--store"));
        assert_eq!(flag_name("-f"), Some("-f"));
        for value in ["redis", "-1", "--", "-", "0.0.0.0:8000"] {
            assert_eq!(flag_name(value), None, "{value}");
        }
    }
}
