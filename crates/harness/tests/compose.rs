//! The container deployment (docker-compose.yml, deploy/, Dockerfile) checked against the
//! binaries it runs, without a Docker engine.
//!
//! Every command line a service runs is handed to the binary itself: `<bin> [subcommand]
//! ARGS... --help` makes clap parse ARGS before it prints the help, so an unknown flag or a
//! bad value fails exactly as it would in the container. Around that, the ports, hosts,
//! volumes and dependencies that tie the services, their health checks, the HAProxy configs
//! and the image together must agree, and the `authbench sweep --target` lines documented in
//! docker-compose.yml and the README must name the system and policy behind their port.
//! Finally the pieces that can run here do: the key generation (twice, as on a second `up`),
//! and a session server started through the image's entry point and probed by its compose
//! health check.
//!
//! Start at `deployment_matches_the_binaries`; each `broken_*` test breaks one thing in a
//! copy of the real files and expects the checker to say so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet, HashMap},
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use yaml_rust2::{Yaml, YamlLoader};

/// What the image holds (Dockerfile) and compose may run.
const BINARIES: [&str; 3] = ["session-server", "jwt-server", "authbench"];
const COMPOSE: &str = "docker-compose.yml";
const DOCKERFILE: &str = "Dockerfile";
const README: &str = "README.md";
/// The README's section on the compose stack, whose commands are checked too.
const README_SECTION: &str = "## Beyond one machine";
/// The cookie the session server sets, as DESIGN.md §3 fixes it; the real test learns it
/// from a running server instead.
const SESSION_COOKIE: &str = "__Host-sid";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

// ---------------------------------------------------------------------------------------
// The files, as text, so a test can break a copy of them.

#[derive(Clone, Debug)]
struct Files(BTreeMap<String, String>);

impl Files {
    fn read() -> Files {
        let root = repo_root();
        let mut files = BTreeMap::new();
        for rel in [COMPOSE, DOCKERFILE, ".dockerignore", "Cargo.toml", README] {
            let text = std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            files.insert(rel.to_owned(), text);
        }
        fn walk(dir: &Path, rel: &str, files: &mut BTreeMap<String, String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = format!("{rel}/{}", entry.file_name().to_string_lossy());
                if entry.file_type().unwrap().is_dir() {
                    walk(&entry.path(), &name, files);
                } else if let Ok(text) = std::fs::read_to_string(entry.path()) {
                    files.insert(name, text);
                }
            }
        }
        walk(&root.join("deploy"), "deploy", &mut files);
        Files(files)
    }

    fn get(&self, rel: &str) -> Option<&str> {
        self.0.get(rel.trim_start_matches("./").trim_end_matches('/')).map(String::as_str)
    }

    /// Files directly or indirectly under `dir` (relative to the repository).
    fn under(&self, dir: &str) -> Vec<(&str, &str)> {
        let dir = format!("{}/", dir.trim_start_matches("./").trim_end_matches('/'));
        self.0.iter().filter(|(k, _)| k.starts_with(&dir)).map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    /// A copy with the first `from` in `rel` replaced by `to` (which must be there).
    fn broken(&self, rel: &str, from: &str, to: &str) -> Files {
        let mut copy = self.clone();
        let text = copy.0.get_mut(rel).unwrap_or_else(|| panic!("no {rel}"));
        assert!(text.contains(from), "{rel} does not contain {from:?}: the test needs updating");
        *text = text.replacen(from, to, 1);
        copy
    }
}

// ---------------------------------------------------------------------------------------
// The binaries, asked through `--help`.

/// `--help` of one command, or why it failed.
type HelpOutput = Result<String, String>;

struct Bins {
    dir: PathBuf,
    help: RefCell<HashMap<(String, Option<String>), HelpOutput>>,
}

impl Bins {
    fn new() -> Bins {
        Bins { dir: common::ensure_servers().to_path_buf(), help: RefCell::default() }
    }

    /// A clean environment: an AUTHBENCH_* variable of the machine running the test must
    /// not change what a flag means.
    fn command(&self, bin: &str) -> Command {
        let mut c = Command::new(self.dir.join(bin));
        c.env_clear().stdin(Stdio::null());
        c
    }

    fn run(&self, bin: &str, args: &[&str]) -> Result<String, String> {
        let out = self.command(bin).args(args).output().unwrap_or_else(|e| panic!("run {bin}: {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no message)").trim().to_owned())
        }
    }

    /// `bin [sub] --help`, or why it failed (an unknown subcommand).
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

    /// Whether the binary accepts the whole command line: clap parses every argument
    /// before it acts on a trailing `--help`, values included.
    fn accepts(&self, inv: &Invocation) -> Result<(), String> {
        let args: Vec<&str> =
            inv.sub.iter().map(String::as_str).chain(inv.args.iter().map(String::as_str)).chain(["--help"]).collect();
        self.run(&inv.bin, &args).map(drop)
    }
}

/// `--flag` of `--flag` or `--flag=value`, `-x` of `-x`; `None` for values.
fn flag_name(arg: &str) -> Option<&str> {
    if arg.len() > 2 && arg.starts_with("--") {
        return arg.split('=').next();
    }
    let mut chars = arg.chars();
    (arg.len() == 2 && chars.next() == Some('-') && chars.next().is_some_and(|c| c.is_ascii_alphabetic()))
        .then_some(arg)
}

/// Whether `help` lists `flag` as an option (a whole word: `--store` is not `--store-timeout`).
fn documents_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        before.is_none_or(|c| c.is_whitespace() || c == ',' || c == '[')
            && after.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    })
}

fn documents_env(help: &str, var: &str) -> bool {
    help.contains(&format!("[env: {var}="))
}

// ---------------------------------------------------------------------------------------
// What a service runs.

/// One run of one of [`BINARIES`]: `bin [sub] args...`.
#[derive(Clone, Debug)]
struct Invocation {
    /// Where it comes from (a service name, or the Dockerfile's CMD).
    origin: String,
    bin: String,
    sub: Option<String>,
    args: Vec<String>,
}

impl Invocation {
    fn from_argv(origin: &str, argv: &[String]) -> Option<Invocation> {
        let bin = argv.first()?.rsplit('/').next()?;
        if !BINARIES.contains(&bin) {
            return None;
        }
        let rest = &argv[1..];
        let sub = rest.first().filter(|a| !a.starts_with('-')).cloned();
        let args = rest[usize::from(sub.is_some())..].to_vec();
        Some(Invocation { origin: origin.to_owned(), bin: bin.to_owned(), sub, args })
    }

    fn line(&self) -> String {
        let sub = self.sub.as_deref().map(|s| format!(" {s}")).unwrap_or_default();
        format!("{}{sub}", self.bin)
    }

    /// The value of `--name V` or `--name=V`.
    fn flag(&self, name: &str) -> Option<&str> {
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
    fn is_server(&self) -> bool {
        self.sub.is_none() && (self.bin == "session-server" || self.bin == "jwt-server")
    }
}

/// The runs of our binaries in a command: the command itself, or each simple command of an
/// `sh -c` script (`exec` dropped).
fn invocations(origin: &str, argv: &[String]) -> Vec<Invocation> {
    let shell = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a));
    if argv.len() >= 3 && matches!(shell, Some("sh" | "bash")) && argv[1] == "-c" {
        shell_commands(&argv[2])
            .into_iter()
            .filter_map(|mut words| {
                if words.first().is_some_and(|w| w == "exec") {
                    words.remove(0);
                }
                Invocation::from_argv(origin, &words)
            })
            .collect()
    } else {
        Invocation::from_argv(origin, argv).into_iter().collect()
    }
}

/// Words of each simple command of a POSIX shell one-liner: quotes, backslashes and the
/// separators `;`, `&`, `&&`, `|`, `||` and newline; no expansions or redirections, which
/// the command lines of a compose file do not need.
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                if !matches!(n, '"' | '\\' | '$' | '`') {
                                    w.push('\\');
                                }
                                w.push(n);
                            }
                        }
                        c => w.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(n) = chars.next().filter(|&n| n != '\n') {
                    word.get_or_insert_with(String::new).push(n);
                }
            }
            ';' | '&' | '|' | '\n' => {
                words.extend(word.take());
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
                if matches!(c, '&' | '|') && chars.peek() == Some(&c) {
                    chars.next();
                }
            }
            c if c.is_whitespace() => words.extend(word.take()),
            // A comment runs to the end of the line.
            '#' if word.is_none() => while chars.next_if(|&c| c != '\n').is_some() {},
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word.take());
    if !words.is_empty() {
        commands.push(words);
    }
    commands
}

/// Compose's own escaping: `$$` is a literal `$`.
fn compose_unescape(s: &str) -> String {
    s.replace("$$", "$")
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of scalars, or a string split as Compose splits it (shell words).
fn argv(y: &Yaml) -> Option<Vec<String>> {
    match y {
        Yaml::Array(items) => {
            Some(items.iter().map(|i| scalar(i).unwrap_or_default()).map(|s| compose_unescape(&s)).collect())
        }
        Yaml::String(s) => Some(shell_commands(&compose_unescape(s)).into_iter().flatten().collect()),
        _ => None,
    }
}

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash().map(|h| h.keys().filter_map(scalar).collect()).unwrap_or_default()
}

/// `depends_on` in list or map form: (service, condition).
fn depends_on(svc: &Yaml) -> Vec<(String, String)> {
    match &svc["depends_on"] {
        Yaml::Array(items) => items.iter().filter_map(scalar).map(|s| (s, "service_started".to_owned())).collect(),
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| {
                let cond = scalar(&v["condition"]).unwrap_or_else(|| "service_started".to_owned());
                Some((scalar(k)?, cond))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `environment` in list (`K=V`) or map form: the variable names.
fn environment(svc: &Yaml) -> Vec<String> {
    match &svc["environment"] {
        Yaml::Array(items) => {
            items.iter().filter_map(scalar).map(|s| s.split('=').next().unwrap_or_default().to_owned()).collect()
        }
        y => keys(y),
    }
}

#[derive(Debug)]
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

impl Mount {
    fn is_named_volume(&self) -> bool {
        !(self.source.is_empty() || self.source.starts_with(['.', '/', '~']))
    }
}

fn mounts(svc: &Yaml) -> Vec<Mount> {
    svc["volumes"]
        .as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|m| match m {
                    Yaml::String(s) => {
                        let mut parts = s.split(':');
                        let (source, target) = (parts.next()?, parts.next()?);
                        let read_only = parts.next().is_some_and(|mode| mode.split(',').any(|o| o == "ro"));
                        Some(Mount { source: source.into(), target: target.into(), read_only })
                    }
                    Yaml::Hash(_) => Some(Mount {
                        source: scalar(&m["source"]).unwrap_or_default(),
                        target: scalar(&m["target"])?,
                        read_only: m["read_only"].as_bool().unwrap_or(false),
                    }),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug)]
struct Published {
    host_ip: String,
    host: u16,
    container: u16,
    spec: String,
}

fn published(svc: &Yaml) -> Vec<Published> {
    svc["ports"]
        .as_vec()
        .map(|v| {
            v.iter()
                .map(|p| match p {
                    Yaml::Hash(_) => Published {
                        host_ip: scalar(&p["host_ip"]).unwrap_or_default(),
                        host: scalar(&p["published"]).and_then(|t| t.parse().ok()).unwrap_or(0),
                        container: scalar(&p["target"]).and_then(|t| t.parse().ok()).unwrap_or(0),
                        spec: format!("{p:?}"),
                    },
                    _ => {
                        let spec = scalar(p).unwrap_or_default();
                        let plain = spec.split('/').next().unwrap_or_default();
                        let parts: Vec<&str> = plain.rsplitn(3, ':').collect();
                        let container = parts.first().and_then(|c| c.parse().ok()).unwrap_or(0);
                        let host = parts.get(1).and_then(|h| h.parse().ok()).unwrap_or(0);
                        let host_ip =
                            if parts.len() == 3 { parts[2].trim_matches(['[', ']']).to_owned() } else { String::new() };
                        Published { host_ip, host, container, spec }
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `host:port` (with `[v6]` hosts), port as a number.
fn host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?))
}

/// The TCP port a health check talks to: `/dev/tcp/HOST/PORT` or `http://HOST:PORT/`.
fn healthcheck_target(test: &str) -> Option<(String, u16)> {
    if let Some((_, rest)) = test.split_once("/dev/tcp/") {
        let (host, rest) = rest.split_once('/')?;
        let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return Some((host.to_owned(), port.parse().ok()?));
    }
    let (_, rest) = test.split_once("http://")?;
    let authority: String = rest.chars().take_while(|c| !matches!(c, '/' | ' ' | '"' | '\'')).collect();
    let (host, port) = host_port(&authority)?;
    Some((host.to_owned(), port))
}

// ---------------------------------------------------------------------------------------
// Dockerfile

#[derive(Debug, Default)]
struct Dockerfile {
    /// Basenames of everything `COPY --from=<stage>` puts in the runtime image.
    copied_from_stage: BTreeSet<String>,
    /// (source, destination) of the other COPYs of the final stage.
    copied_from_context: Vec<(String, String)>,
    build_runs: Vec<String>,
    rust_version: Option<String>,
    final_user: Option<String>,
    expose: BTreeSet<u16>,
    cmd: Vec<String>,
    entrypoint: Vec<String>,
    /// ENV and ARG names.
    variables: Vec<String>,
}

impl Dockerfile {
    fn parse(text: &str) -> Dockerfile {
        // Logical lines: comments out, backslash continuations joined.
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
        let mut d = Dockerfile::default();
        let mut args: HashMap<String, String> = HashMap::new();
        for line in lines {
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
                "CMD" => d.cmd = serde_json::from_str(rest).unwrap_or_default(),
                "ENTRYPOINT" => d.entrypoint = serde_json::from_str(rest).unwrap_or_default(),
                _ => {}
            }
        }
        d
    }
}

fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

// ---------------------------------------------------------------------------------------
// HAProxy configs

#[derive(Debug, Default)]
struct Haproxy {
    /// Frontend name → (bind ports, backends it uses).
    frontends: BTreeMap<String, (Vec<u16>, Vec<String>)>,
    backends: BTreeMap<String, Backend>,
    resolvers: BTreeSet<String>,
    /// `default-server` parameters and `option httpchk` of the defaults sections.
    default_server: Vec<String>,
    default_httpchk: Option<String>,
}

#[derive(Debug, Default)]
struct Backend {
    /// (host, port, slots, parameters) of each `server` / `server-template` line.
    servers: Vec<(String, u16, usize, Vec<String>)>,
    httpchk: Option<String>,
    /// Cookie names in `req.cook(...)` / `res.cook(...)` (stickiness).
    cookies: Vec<String>,
}

impl Haproxy {
    /// All files of one HAProxy process, in load order.
    fn parse(files: &[(&str, &str)], problems: &mut Vec<String>) -> Haproxy {
        let mut h = Haproxy::default();
        for (path, text) in files {
            let mut section = ("", String::new());
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default().trim();
                let words: Vec<&str> = line.split_whitespace().collect();
                let Some(&keyword) = words.first() else { continue };
                match keyword {
                    "global" | "defaults" | "frontend" | "backend" | "listen" | "resolvers" | "peers" | "userlist"
                    | "cache" | "program" | "http-errors" | "ring" | "mailers" => {
                        let name = words.get(1).map(|s| (*s).to_owned()).unwrap_or_default();
                        match keyword {
                            "frontend" | "listen" => {
                                h.frontends.entry(name.clone()).or_default();
                            }
                            "backend" => {
                                h.backends.entry(name.clone()).or_default();
                            }
                            "resolvers" => {
                                h.resolvers.insert(name.clone());
                            }
                            _ => {}
                        }
                        section = (keyword, name);
                        continue;
                    }
                    _ => {}
                }
                let (kind, name) = (section.0, section.1.as_str());
                if kind == "defaults" {
                    if keyword == "default-server" {
                        h.default_server.extend(words[1..].iter().map(|w| (*w).to_owned()));
                    } else if words.starts_with(&["option", "httpchk"]) {
                        h.default_httpchk = Some(words[2..].join(" "));
                    }
                }
                if matches!(kind, "frontend" | "listen") {
                    let fe = h.frontends.entry(name.to_owned()).or_default();
                    match keyword {
                        "bind" => match words.get(1).and_then(|a| a.rsplit_once(':')).and_then(|(_, p)| p.parse().ok())
                        {
                            Some(port) => fe.0.push(port),
                            None => problems.push(format!("{path}: `{line}`: no port to bind")),
                        },
                        "default_backend" | "use_backend" => fe.1.extend(words.get(1).map(|b| (*b).to_owned())),
                        _ => {}
                    }
                }
                if matches!(kind, "backend" | "listen") {
                    let be = h.backends.entry(name.to_owned()).or_default();
                    for (i, _) in line.match_indices(".cook(") {
                        let rest = &line[i + ".cook(".len()..];
                        be.cookies.push(rest.split(')').next().unwrap_or_default().to_owned());
                    }
                    if words.starts_with(&["option", "httpchk"]) {
                        be.httpchk = Some(words[2..].join(" "));
                    }
                    let (slots, addr, params) = match keyword {
                        "server" if words.len() >= 3 => (1, words[2], &words[3..]),
                        "server-template" if words.len() >= 4 => {
                            let n = words[2];
                            let slots = match n.split_once('-') {
                                Some((a, b)) => {
                                    b.parse::<usize>().unwrap_or(0).saturating_sub(a.parse().unwrap_or(1)) + 1
                                }
                                None => n.parse().unwrap_or(0),
                            };
                            (slots, words[3], &words[4..])
                        }
                        _ => continue,
                    };
                    match host_port(addr) {
                        Some((host, port)) => be.servers.push((
                            host.to_owned(),
                            port,
                            slots,
                            params.iter().map(|p| (*p).to_owned()).collect(),
                        )),
                        None => problems.push(format!("{path}: `{line}`: the server needs host:port")),
                    }
                }
            }
        }
        h
    }
}

// ---------------------------------------------------------------------------------------
// The checks

/// The parts of docker-compose.yml the checks look at.
struct Compose<'a> {
    services: BTreeMap<String, &'a Yaml>,
    /// Top-level named volumes.
    volumes: BTreeSet<String>,
    /// What each service that runs the Dockerfile's image runs.
    runs: BTreeMap<String, Vec<Invocation>>,
    /// The services that run a server, and where it listens.
    servers: BTreeMap<String, ServerService>,
}

#[derive(Debug)]
struct ServerService {
    bin: String,
    /// The system id authbench knows it by (session-redis, jwt-hs256, ...).
    system: String,
    port: u16,
    replicas: u64,
}

/// Where a balancer port leads: (system, policy).
type Routes = BTreeMap<u16, (String, &'static str)>;

/// A load balancer service and what each of its ports leads to.
struct Balancer {
    name: String,
    /// Container port (an HAProxy bind) → where it leads.
    routes: Routes,
    /// Host port → container port.
    published: BTreeMap<u16, u16>,
}

/// Everything that can be checked without running a server. Each problem names the file
/// and what disagrees; none means the deployment matches the binaries.
fn static_problems(files: &Files, bins: &Bins, session_cookie: &str) -> Vec<String> {
    let mut p = Vec::new();
    let docs = match YamlLoader::load_from_str(files.get(COMPOSE).unwrap_or_default()) {
        Ok(docs) => docs,
        Err(e) => return vec![format!("{COMPOSE}: not YAML: {e}")],
    };
    let Some(yaml) = docs.first() else { return vec![format!("{COMPOSE}: empty")] };
    let Some(services) = yaml["services"].as_hash() else { return vec![format!("{COMPOSE}: no services")] };
    let docker = Dockerfile::parse(files.get(DOCKERFILE).unwrap_or_default());
    let mut compose = Compose {
        services: services.iter().filter_map(|(k, v)| Some((scalar(k)?, v))).collect(),
        volumes: keys(&yaml["volumes"]).into_iter().collect(),
        runs: BTreeMap::new(),
        servers: BTreeMap::new(),
    };

    // Which services run the image built from the Dockerfile, and what they run.
    let images: BTreeSet<String> =
        compose.services.values().filter(|s| !s["build"].is_badvalue()).filter_map(|s| scalar(&s["image"])).collect();
    if images.len() > 1 {
        p.push(format!("{COMPOSE}: services build different image names from one Dockerfile: {images:?}"));
    }
    for (name, svc) in &compose.services {
        let build = &svc["build"];
        let context = scalar(build).or_else(|| scalar(&build["context"]));
        if !build.is_badvalue() && context.as_deref().map(|c| c.trim_end_matches('/')) != Some(".") {
            p.push(format!("{COMPOSE}: {name} builds from {context:?}, not the repository's Dockerfile (context .)"));
        }
        let ours = !build.is_badvalue() || scalar(&svc["image"]).is_some_and(|i| images.contains(&i));
        if !ours {
            continue;
        }
        if !svc["entrypoint"].is_badvalue() {
            p.push(format!("{COMPOSE}: {name} replaces the image's entry point (it names each replica)"));
        }
        let command = argv(&svc["command"]).unwrap_or_else(|| docker.cmd.clone());
        let invs = invocations(name, &command);
        if invs.is_empty() {
            p.push(format!("{COMPOSE}: {name} runs none of {BINARIES:?}: {command:?}"));
        }
        for var in environment(svc) {
            for inv in &invs {
                if !bins.help(&inv.bin, inv.sub.as_deref()).is_ok_and(|h| documents_env(&h, &var)) {
                    p.push(format!("{COMPOSE}: {name} sets {var}, which `{} --help` does not document", inv.line()));
                }
            }
        }
        compose.runs.insert(name.clone(), invs);
    }
    let cmd_runs = invocations("Dockerfile CMD", &docker.cmd);
    for inv in compose.runs.values().flatten().chain(&cmd_runs) {
        check_invocation(bins, inv, &mut p);
    }

    // The image holds exactly what compose runs.
    let used: BTreeSet<String> = compose.runs.values().flatten().chain(&cmd_runs).map(|i| i.bin.clone()).collect();
    for bin in used.difference(&docker.copied_from_stage) {
        p.push(format!("{DOCKERFILE}: compose runs {bin}, but the runtime stage does not COPY --from it"));
    }
    for bin in docker.copied_from_stage.difference(&used) {
        p.push(format!("{DOCKERFILE}: the image holds {bin}, which no compose service runs"));
    }
    for bin in &docker.copied_from_stage {
        if !docker.build_runs.iter().any(|r| r.contains(&format!("target/release/{bin}"))) {
            p.push(format!("{DOCKERFILE}: {bin} is copied but no `cargo build` step produces target/release/{bin}"));
        }
    }
    check_dockerfile(files, &docker, bins, &mut p);

    for (name, invs) in &compose.runs {
        for inv in invs.iter().filter(|i| i.is_server()) {
            if let Some(server) = check_server(name, inv, &compose, &docker, &mut p) {
                compose.servers.insert(name.clone(), server);
            }
        }
    }
    for (name, invs) in &compose.runs {
        for inv in invs.iter().filter(|i| i.is_server()) {
            check_redis(name, inv, &compose, &mut p);
            if inv.bin == "jwt-server" {
                check_keys(name, inv, &compose, &mut p);
            }
        }
    }
    check_dependencies(&compose, &mut p);

    // Load balancers: whatever mounts deploy/haproxy.
    let balancers: Vec<&String> = compose
        .services
        .iter()
        .filter(|(_, svc)| mounts(svc).iter().any(|m| m.source.trim_start_matches("./").starts_with("deploy/haproxy")))
        .map(|(name, _)| name)
        .collect();
    if balancers.is_empty() {
        p.push(format!("{COMPOSE}: no service mounts deploy/haproxy: there is no load balancer"));
    }
    for (name, svc) in &compose.services {
        if !balancers.contains(&name) && !published(svc).is_empty() {
            p.push(format!("{COMPOSE}: {name} publishes ports; only the load balancers should"));
        }
    }
    let balancers: Vec<Balancer> = balancers
        .into_iter()
        .filter_map(|name| check_balancer(name, files, &compose, session_cookie, &mut p))
        .collect();

    // Load sent by authbench reaches the system it claims to measure: the bench service's
    // command, and the commands documented in this file's comments and in the README.
    for (name, invs) in &compose.runs {
        let inside = scalar(&compose.services[name]["network_mode"])
            .and_then(|m| Some(m.strip_prefix("service:")?.to_owned()))
            .and_then(|lb| balancers.iter().find(|b| b.name == lb));
        for inv in invs.iter().filter(|i| i.bin == "authbench") {
            check_load_target(inv, inside, &balancers, &mut p);
        }
    }
    for inv in documented_runs(files) {
        check_invocation(bins, &inv, &mut p);
        check_load_target(&inv, None, &balancers, &mut p);
    }
    p
}

/// `authbench ...` command lines documented for the stack: the indented (example) lines of
/// docker-compose.yml's comments, and the code blocks of the README's section.
fn documented_runs(files: &Files) -> Vec<Invocation> {
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
    examples
        .chain(code)
        .filter(|(_, line)| line.trim_start().starts_with("authbench "))
        .filter_map(|(origin, line)| {
            let words = shell_commands(line).into_iter().next()?;
            Invocation::from_argv(&format!("{origin} (documented)"), &words)
        })
        .collect()
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
    let run = format!("{}: `{} {}`", inv.origin, inv.line(), inv.args.join(" "));
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

/// A server service: listens where the balancer and its health check reach it, is scaled
/// and capped, and lets authbench log in.
fn check_server(
    name: &str,
    inv: &Invocation,
    compose: &Compose,
    docker: &Dockerfile,
    p: &mut Vec<String>,
) -> Option<ServerService> {
    let svc = compose.services[name];
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
    let test = &svc["healthcheck"]["test"];
    match scalar(test).or_else(|| argv(test).map(|v| v.join(" "))) {
        None => p.push(format!("{COMPOSE}: {name} has no healthcheck")),
        Some(test) => {
            let test = compose_unescape(&test);
            if !test.contains("/healthz") {
                p.push(format!("{COMPOSE}: {name}'s healthcheck does not ask /healthz: {test}"));
            }
            match healthcheck_target(&test) {
                Some((host, hport)) if hport == port && matches!(host.as_str(), "127.0.0.1" | "localhost") => {}
                other => p.push(format!(
                    "{COMPOSE}: {name}'s healthcheck talks to {other:?}, but the server listens on port {port}"
                )),
            }
        }
    }
    let replicas = svc["deploy"]["replicas"].as_i64().unwrap_or(0);
    if replicas < 1 {
        p.push(format!("{COMPOSE}: {name} has no deploy.replicas"));
    }
    if cpu_limit(svc).is_none() {
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
    let system = match inv.bin.as_str() {
        "session-server" => format!("session-{}", inv.flag("--store").unwrap_or("memory")),
        _ => format!("jwt-{}", inv.flag("--alg").unwrap_or("HS256").to_ascii_lowercase()),
    };
    Some(ServerService { bin: inv.bin.clone(), system, port, replicas: u64::try_from(replicas).unwrap_or(0) })
}

fn cpu_limit(svc: &Yaml) -> Option<f64> {
    scalar(&svc["deploy"]["resources"]["limits"]["cpus"]).and_then(|c| c.parse().ok()).filter(|&c: &f64| c > 0.0)
}

/// Dependencies, shared network namespaces and named volumes refer to things that exist.
fn check_dependencies(compose: &Compose, p: &mut Vec<String>) {
    for (name, svc) in &compose.services {
        for (dep, condition) in depends_on(svc) {
            match compose.services.get(&dep) {
                None => p.push(format!("{COMPOSE}: {name} depends on {dep}, which is not a service")),
                Some(target) => match condition.as_str() {
                    "service_started" | "service_completed_successfully" => {}
                    "service_healthy" if target["healthcheck"]["test"].is_badvalue() => {
                        p.push(format!("{COMPOSE}: {name} waits for {dep} to be healthy, but {dep} has no healthcheck"))
                    }
                    "service_healthy" => {}
                    other => p.push(format!("{COMPOSE}: {name} depends on {dep} with unknown condition {other}")),
                },
            }
        }
        if let Some(other) = scalar(&svc["network_mode"]).as_deref().and_then(|m| m.strip_prefix("service:"))
            && !compose.services.contains_key(other)
        {
            p.push(format!("{COMPOSE}: {name} joins the network of {other}, which is not a service"));
        }
        for m in mounts(svc).iter().filter(|m| m.is_named_volume()) {
            if !compose.volumes.contains(&m.source) {
                p.push(format!(
                    "{COMPOSE}: {name} mounts volume {}, which the top-level volumes do not declare",
                    m.source
                ));
            }
        }
    }
}

/// A load balancer: publishes on loopback exactly what HAProxy binds, loads the mounted
/// configs, and its backends reach the servers.
fn check_balancer(
    name: &str,
    files: &Files,
    compose: &Compose,
    session_cookie: &str,
    p: &mut Vec<String>,
) -> Option<Balancer> {
    let svc = compose.services[name];
    let ports = published(svc);
    for port in &ports {
        if !matches!(port.host_ip.as_str(), "127.0.0.1" | "::1" | "localhost") {
            p.push(format!(
                "{COMPOSE}: {name} publishes {} beyond loopback; authbench only loads 127.0.0.1 (\"127.0.0.1:H:C\")",
                port.spec
            ));
        }
    }
    let all_mounts = mounts(svc);
    let configs: Vec<&Mount> =
        all_mounts.iter().filter(|m| m.source.trim_start_matches("./").starts_with("deploy/haproxy")).collect();
    let mut cfg_files = Vec::new();
    for m in &configs {
        match files.get(&m.source) {
            Some(text) => cfg_files.push((m.source.as_str(), text, m.target.clone())),
            None => cfg_files.extend(
                files
                    .under(&m.source)
                    .into_iter()
                    .filter(|(path, _)| path.ends_with(".cfg"))
                    .map(|(path, text)| (path, text, m.target.clone())),
            ),
        }
    }
    if cfg_files.is_empty() {
        p.push(format!("{COMPOSE}: {name} mounts {:?}, which holds no .cfg file", configs[0].source));
        return None;
    }
    check_haproxy_loads(name, svc, &configs, &cfg_files, p);
    let texts: Vec<(&str, &str)> = cfg_files.iter().map(|(path, text, _)| (*path, *text)).collect();
    let cfg = Haproxy::parse(&texts, p);
    check_haproxy(name, &cfg, &ports, compose, session_cookie, p);
    let mut routes = Routes::new();
    for (binds, backends) in cfg.frontends.values() {
        let Some(backend) = backends.first().and_then(|b| cfg.backends.get(b)) else { continue };
        let Some(server) = backend.servers.iter().find_map(|(host, ..)| compose.servers.get(host)) else { continue };
        let policy = if backend.cookies.is_empty() { "round-robin" } else { "sticky" };
        for port in binds {
            routes.insert(*port, (server.system.clone(), policy));
        }
    }
    let published = ports.iter().map(|p| (p.host, p.container)).collect();
    Some(Balancer { name: name.to_owned(), routes, published })
}

fn check_invocation(bins: &Bins, inv: &Invocation, p: &mut Vec<String>) {
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
        p.push(format!("{}: `{} {}` is refused: {e}", inv.origin, inv.line(), inv.args.join(" ")));
    }
}

fn check_dockerfile(files: &Files, docker: &Dockerfile, bins: &Bins, p: &mut Vec<String>) {
    let workspace = files.get("Cargo.toml").unwrap_or_default();
    let msrv = workspace
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version").map(|v| v.trim_matches([' ', '=', '"']).to_owned()));
    match (&docker.rust_version, msrv) {
        (Some(image), Some(msrv)) if version(image) >= version(&msrv) => {}
        (image, msrv) => p.push(format!(
            "{DOCKERFILE}: the rust builder ({image:?}) must be at least Cargo.toml's rust-version ({msrv:?})"
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
    // The entry point is a script from deploy/; every AUTHBENCH_* it sets is a server flag.
    match docker.entrypoint.first() {
        None => p.push(format!("{DOCKERFILE}: no ENTRYPOINT (it names each replica)")),
        Some(entry) => {
            let name = entry.rsplit('/').next().unwrap_or(entry);
            let script = docker
                .copied_from_context
                .iter()
                .find(|(_, dest)| dest.rsplit('/').next() == Some(name))
                .and_then(|(source, _)| files.get(source).map(|text| (source, text)));
            match script {
                None => p.push(format!("{DOCKERFILE}: ENTRYPOINT {entry} is not a file copied from the repository")),
                Some((source, text)) => {
                    for var in authbench_variables(text) {
                        for bin in ["session-server", "jwt-server"] {
                            if !bins.help(bin, None).is_ok_and(|h| documents_env(&h, &var)) {
                                p.push(format!("{source}: sets {var}, which `{bin} --help` does not document"));
                            }
                        }
                    }
                }
            }
        }
    }
    let ignore = files.get(".dockerignore").unwrap_or_default();
    for needed in ["target", ".git", "bench-results"] {
        if !ignore.lines().any(|l| l.trim().trim_matches('/') == needed) {
            p.push(format!(".dockerignore: does not leave out {needed}"));
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

/// A server that uses Redis must be told where it is: a compose service it waits for.
fn check_redis(name: &str, inv: &Invocation, compose: &Compose, p: &mut Vec<String>) {
    let svc = compose.services[name];
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
    let Some(redis) = compose.services.get(host) else {
        p.push(format!("{COMPOSE}: {name} --redis-url {url}: {host} is not a service"));
        return;
    };
    if !compose.runs.contains_key(host) {
        let command = argv(&redis["command"]).unwrap_or_default();
        let listens =
            command.iter().position(|a| a == "--port").and_then(|i| command.get(i + 1)?.parse().ok()).unwrap_or(6379);
        if listens != port {
            p.push(format!("{COMPOSE}: {name} --redis-url {url}, but {host} listens on {listens}"));
        }
        if cpu_limit(redis).is_none() {
            p.push(format!("{COMPOSE}: {host} (the store) has no deploy.resources.limits.cpus"));
        }
    }
    if !depends_on(svc).iter().any(|(dep, _)| dep == host) {
        p.push(format!("{COMPOSE}: {name} uses {host} but does not depend on it"));
    }
}

/// A JWT server's --key-dir is a volume, read-only, filled by a `jwt-server keygen` for the
/// same algorithm that the server waits for.
fn check_keys(name: &str, inv: &Invocation, compose: &Compose, p: &mut Vec<String>) {
    let svc = compose.services[name];
    let key_dir = inv.flag("--key-dir").unwrap_or("keys");
    let alg = inv.flag("--alg").unwrap_or("HS256");
    let own = mounts(svc);
    let Some(volume) = own.iter().find(|m| m.target.trim_end_matches('/') == key_dir.trim_end_matches('/')) else {
        p.push(format!("{COMPOSE}: {name} reads keys from {key_dir}, but mounts nothing there"));
        return;
    };
    if !volume.is_named_volume() || !compose.volumes.contains(&volume.source) {
        p.push(format!("{COMPOSE}: {name}'s {key_dir} should be a declared named volume, not {:?}", volume.source));
    }
    if !volume.read_only {
        p.push(format!("{COMPOSE}: {name} mounts its keys writable; the servers only read them (`:ro`)"));
    }
    let keygen = compose.runs.iter().find_map(|(other, invs)| {
        let target = mounts(compose.services[other]).into_iter().find(|m| m.source == volume.source)?.target;
        invs.iter()
            .find(|i| {
                i.bin == "jwt-server"
                    && i.sub.as_deref() == Some("keygen")
                    && i.flag("--key-dir").map(|d| d.trim_end_matches('/')) == Some(target.trim_end_matches('/'))
            })
            .map(|i| (other.clone(), i.flag("--alg").unwrap_or_default().to_owned()))
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
            if !depends_on(svc).iter().any(|(dep, c)| *dep == keygen && c == "service_completed_successfully") {
                p.push(format!("{COMPOSE}: {name} must wait for {keygen} (condition: service_completed_successfully)"));
            }
        }
    }
}

/// HAProxy reads the mounted files: `-f` names the mounted directory or a mounted file.
fn check_haproxy_loads(name: &str, svc: &Yaml, configs: &[&Mount], cfgs: &[(&str, &str, String)], p: &mut Vec<String>) {
    let command = argv(&svc["command"]).unwrap_or_default();
    let mut loaded: Vec<String> =
        command.windows(2).filter(|w| w[0] == "-f").map(|w| w[1].trim_end_matches('/').to_owned()).collect();
    if loaded.is_empty() {
        loaded.push("/usr/local/etc/haproxy/haproxy.cfg".to_owned());
    }
    for path in &loaded {
        let found = configs.iter().any(|m| m.target.trim_end_matches('/') == path)
            || cfgs.iter().any(|(file, _, target)| {
                format!("{}/{}", target.trim_end_matches('/'), file.rsplit('/').next().unwrap_or_default()) == *path
            });
        if !found {
            p.push(format!("{COMPOSE}: {name} loads {path}, which is not one of its mounted configs"));
        }
    }
}

fn check_haproxy(
    name: &str,
    cfg: &Haproxy,
    ports: &[Published],
    compose: &Compose,
    session_cookie: &str,
    p: &mut Vec<String>,
) {
    let svc = compose.services[name];
    let binds: BTreeSet<u16> = cfg.frontends.values().flat_map(|(b, _)| b.iter().copied()).collect();
    let publishes: BTreeSet<u16> = ports.iter().map(|p| p.container).collect();
    for port in binds.difference(&publishes) {
        p.push(format!("{COMPOSE}: {name} binds {port} (deploy/haproxy) but does not publish it"));
    }
    for port in publishes.difference(&binds) {
        p.push(format!("{COMPOSE}: {name} publishes {port}, which no HAProxy frontend binds"));
    }
    for (frontend, (_, backends)) in &cfg.frontends {
        if backends.is_empty() {
            p.push(format!("deploy/haproxy: frontend {frontend} has no default_backend"));
        }
        for backend in backends.iter().filter(|b| !cfg.backends.contains_key(*b)) {
            p.push(format!("deploy/haproxy: frontend {frontend} uses backend {backend}, which is not defined"));
        }
    }
    let deps: Vec<String> = depends_on(svc).into_iter().map(|(d, _)| d).collect();
    for (backend, be) in &cfg.backends {
        if be.servers.is_empty() {
            p.push(format!("deploy/haproxy: backend {backend} has no servers"));
        }
        match be.httpchk.as_ref().or(cfg.default_httpchk.as_ref()) {
            Some(check) if check.contains("/healthz") => {}
            other => p.push(format!("deploy/haproxy: backend {backend} does not check /healthz ({other:?})")),
        }
        for (host, port, slots, params) in &be.servers {
            let Some(server) = compose.servers.get(host) else {
                if compose.services.contains_key(host) || host.parse::<std::net::IpAddr>().is_ok() {
                    continue;
                }
                p.push(format!("deploy/haproxy: backend {backend} sends to {host}, which is not a compose service"));
                continue;
            };
            if *port != server.port {
                p.push(format!(
                    "deploy/haproxy: backend {backend} sends to {host}:{port}, but {host} listens on {}",
                    server.port
                ));
            }
            if (*slots as u64) < server.replicas {
                p.push(format!(
                    "deploy/haproxy: backend {backend} has {slots} slots for {} replicas of {host}",
                    server.replicas
                ));
            }
            let resolvers = params
                .iter()
                .chain(&cfg.default_server)
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0] == "resolvers")
                .map(|w| w[1].clone());
            match resolvers {
                Some(r) if cfg.resolvers.contains(&r) => {}
                other => p.push(format!(
                    "deploy/haproxy: backend {backend} finds {host}'s replicas through resolvers {other:?}, which is not defined"
                )),
            }
            if !deps.contains(host) {
                p.push(format!("{COMPOSE}: {name} balances {host} but does not depend on it"));
            }
            if !be.cookies.is_empty() && server.bin != "session-server" {
                p.push(format!("deploy/haproxy: backend {backend} sticks by cookie, but {host} runs {}", server.bin));
            }
        }
        for cookie in be.cookies.iter().filter(|c| *c != session_cookie) {
            p.push(format!(
                "deploy/haproxy: backend {backend} sticks by cookie {cookie}; the session cookie is {session_cookie}"
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// What can run here: key generation, and a server started as the image starts it.

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `PATH` with the built binaries first, as /usr/local/bin is in the image.
fn path_with(bins: &Bins) -> String {
    format!("{}:/usr/local/bin:/usr/bin:/bin", bins.dir.display())
}

fn http(port: u16, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let svc = &compose["services"][name];
    assert!(!svc.is_badvalue(), "no service {name} in {COMPOSE}");
    svc
}

/// The keygen service's command, run twice into a temporary directory standing for its
/// volume: both runs succeed (a second `docker compose up` must not fail) and the key stays.
fn keygen_is_idempotent(compose: &Yaml, bins: &Bins) {
    let services = compose["services"].as_hash().unwrap();
    let (name, svc) = services
        .iter()
        .find(|(k, v)| {
            let command = argv(&v["command"]).unwrap_or_default();
            invocations(&scalar(k).unwrap(), &command).iter().any(|i| i.sub.as_deref() == Some("keygen"))
        })
        .expect("a service runs jwt-server keygen");
    let name = scalar(name).unwrap();
    let command = argv(&svc["command"]).unwrap();
    let target = mounts(svc).into_iter().next().expect("keygen mounts the key volume").target;
    let dir = tempfile::tempdir().unwrap();
    let local: Vec<String> = command.iter().map(|a| a.replace(&target, dir.path().to_str().unwrap())).collect();
    let mut keys = Vec::new();
    for attempt in 1..=2 {
        let out = Command::new(&local[0])
            .args(&local[1..])
            .env_clear()
            .env("PATH", path_with(bins))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}, run {attempt}: {local:?}: {}", String::from_utf8_lossy(&out.stderr));
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{name} made one key: {files:?}");
        keys.push(std::fs::read(&files[0]).unwrap());
    }
    assert!(keys[0].len() >= 32, "{name}: a key of {} bytes", keys[0].len());
    assert_eq!(keys[0], keys[1], "{name}: a second run replaced the key (tokens issued before would stop verifying)");
}

/// The in-memory session service started through the image's entry point as Docker would
/// (HOSTNAME set), probed by its own compose health check; logs a demo user in and returns
/// the session cookie's name. Also checks /me names the replica by its hostname.
fn session_server_runs_as_composed(files: &Files, compose: &Yaml, bins: &Bins) -> String {
    let svc = service(compose, "session-memory");
    let command = argv(&svc["command"]).unwrap();
    let inv = &invocations("session-memory", &command)[0];
    let container_port = inv.flag("--listen").and_then(host_port).unwrap().1;
    let mut local = command.clone();
    let i = local.iter().position(|a| a == "--listen").unwrap();
    local[i + 1] = "127.0.0.1:0".into();

    let docker = Dockerfile::parse(files.get(DOCKERFILE).unwrap());
    let entry = docker.entrypoint[0].rsplit('/').next().unwrap().to_owned();
    let script = &docker.copied_from_context.iter().find(|(_, dest)| dest.ends_with(&entry)).unwrap().0;
    let mut child = Running(
        Command::new("sh")
            .arg(repo_root().join(script))
            .args(&local)
            .env_clear()
            .env("PATH", path_with(bins))
            .env("HOSTNAME", "compose-replica-7")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut ready = String::new();
    // Kept open until the end: the server may still write to its stdout.
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    stdout.read_line(&mut ready).unwrap();
    let addr = ready.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("ready line: {ready:?}"));
    let port = host_port(addr).unwrap().1;

    // The compose health check, pointed at the real port: passes here, fails on a closed port.
    let test = argv(&svc["healthcheck"]["test"]).unwrap();
    assert_eq!(test[0], "CMD", "exec form");
    let probe = |port: u16| {
        let args: Vec<String> = test[2..]
            .iter()
            .map(|a| a.replace(&format!("127.0.0.1/{container_port}"), &format!("127.0.0.1/{port}")))
            .collect();
        Command::new(&test[1])
            .args(&args)
            .env_clear()
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(probe(port), "the health check fails against a healthy server: {test:?}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert!(!probe(closed), "the health check passes with no server: {test:?}");

    let body = r#"{"username":"user1","password":"demo-password"}"#;
    let (status, head, body) = http(
        port,
        &format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 200, "login: {head}\n{body}");
    let cookie = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")).map(|(_, v)| v.trim()))
        .expect("login sets a cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, body) =
        http(port, &format!("GET /me HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"));
    assert_eq!(status, 200, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["instance"], "compose-replica-7", "the entry point names the replica by its hostname: {me}");
    cookie.split('=').next().unwrap().to_owned()
}

/// HAProxy's own syntax check, where it is installed (it is not needed otherwise).
fn haproxy_accepts_the_configs() {
    let Ok(out) = Command::new("haproxy").arg("-v").output() else {
        eprintln!("haproxy is not on PATH: deploy/haproxy syntax not checked by HAProxy itself");
        return;
    };
    assert!(out.status.success());
    let out = Command::new("haproxy").args(["-c", "-f"]).arg(repo_root().join("deploy/haproxy")).output().unwrap();
    assert!(
        out.status.success(),
        "haproxy -c: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn deployment_matches_the_binaries() {
    let files = Files::read();
    let bins = Bins::new();
    let compose = YamlLoader::load_from_str(files.get(COMPOSE).unwrap()).unwrap().remove(0);

    let cookie = session_server_runs_as_composed(&files, &compose, &bins);
    assert_eq!(cookie, SESSION_COOKIE);
    keygen_is_idempotent(&compose, &bins);
    haproxy_accepts_the_configs();

    let problems = static_problems(&files, &bins, &cookie);
    assert!(problems.is_empty(), "the deployment disagrees with the binaries:\n  {}", problems.join("\n  "));

    // The checks saw what they were meant to see, not an empty file.
    let services = compose["services"].as_hash().unwrap();
    let runs: Vec<Invocation> = services
        .iter()
        .flat_map(|(k, v)| invocations(&scalar(k).unwrap(), &argv(&v["command"]).unwrap_or_default()))
        .collect();
    let servers: BTreeSet<(&str, Option<&str>)> = runs
        .iter()
        .filter(|i| i.is_server())
        .map(|i| (i.bin.as_str(), i.flag("--store").or(i.flag("--alg"))))
        .collect();
    assert_eq!(
        servers,
        BTreeSet::from([
            ("session-server", Some("memory")),
            ("session-server", Some("redis")),
            ("jwt-server", Some("HS256"))
        ])
    );
    assert!(runs.iter().any(|i| i.sub.as_deref() == Some("keygen")));
    let documented = documented_runs(&files);
    for origin in [COMPOSE, README] {
        let targets = documented.iter().filter(|i| i.origin.starts_with(origin) && i.flag("--target").is_some());
        assert!(targets.count() >= 3, "{origin} documents `authbench sweep --target` for each system: {documented:?}");
    }
}

/// Problems for a broken copy of the files; the checker must find `expected` among them.
fn assert_caught(files: Files, expected: &str) {
    let problems = static_problems(&files, &Bins::new(), SESSION_COOKIE);
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "expected a problem containing {expected:?}, got:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn an_unknown_flag_or_subcommand_or_value_is_caught() {
    let bins = Bins::new();
    let check = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let mut p = Vec::new();
        for inv in invocations("unit", &argv) {
            check_invocation(&bins, &inv, &mut p);
        }
        p
    };
    assert!(check(&["session-server", "--listen", "0.0.0.0:8000", "--store", "redis"]).is_empty());
    assert!(check(&["session-server", "--bogus-flag", "1"])[0].contains("has no --bogus-flag"));
    assert!(check(&["session-server", "--bogus-flag=1"])[0].contains("has no --bogus-flag"));
    // A prefix of a real flag is not that flag.
    assert!(check(&["session-server", "--stor", "redis"])[0].contains("has no --stor"));
    assert!(check(&["session-server", "--store", "postgres"])[0].contains("is refused"));
    assert!(check(&["session-server", "--idle-timeout", "0s"])[0].contains("is refused"));
    assert!(check(&["jwt-server", "keygen", "--alg", "HS257", "--key-dir", "/keys"])[0].contains("is refused"));
    assert!(check(&["jwt-server", "keygen", "--listen", "0.0.0.0:1"])[0].contains("has no --listen"));
    assert!(check(&["jwt-server", "rotate-keys"])[0].contains("no such command"));
    assert!(check(&["authbench", "sweep", "--systems", "session-redis", "--no-such"])[0].contains("has no --no-such"));
    // Inside `sh -c`, after `||`, with `exec`.
    let p = check(&["sh", "-c", "test -s /k/x || exec jwt-server keygen --alg HS256 --key-dirs /k"]);
    assert!(p[0].contains("has no --key-dirs"), "{p:?}");
}

#[test]
fn shell_one_liners_split_into_commands() {
    assert_eq!(
        shell_commands(r#"test -s '/a b' || exec x --y="1 2" && z;w\ v | q"#),
        vec![vec!["test", "-s", "/a b"], vec!["exec", "x", "--y=1 2"], vec!["z"], vec!["w v"], vec!["q"]]
    );
}

#[test]
fn broken_flags_and_values_in_compose_are_caught() {
    let files = Files::read();
    assert_caught(files.broken(COMPOSE, r#""--store", "redis""#, r#""--storage", "redis""#), "has no --storage");
    assert_caught(files.broken(COMPOSE, r#""--store", "memory""#, r#""--store", "memroy""#), "is refused");
    assert_caught(files.broken(COMPOSE, r#""--demo-users", "1000""#, r#""--demo-users", "lots""#), "is refused");
    assert_caught(files.broken(COMPOSE, "keygen --alg HS256", "keygen --alg ES256"), "makes a ES256 key");
    assert_caught(files.broken(COMPOSE, r#""authbench", "load""#, r#""authbench", "lode""#), "no such command");
}

#[test]
fn broken_ports_hosts_and_dependencies_are_caught() {
    let files = Files::read();
    assert_caught(files.broken(COMPOSE, "/dev/tcp/127.0.0.1/8000", "/dev/tcp/127.0.0.1/8001"), "healthcheck talks to");
    assert_caught(files.broken(COMPOSE, "0.0.0.0:8000", "127.0.0.1:8000"), "must `--listen 0.0.0.0:PORT`");
    assert_caught(files.broken(COMPOSE, "\"127.0.0.1:8080:8080\"", "\"8080:8080\""), "beyond loopback");
    assert_caught(files.broken(COMPOSE, "\"127.0.0.1:8091:8091\"", "\"127.0.0.1:8091:8092\""), "publishes 8092");
    assert_caught(files.broken(COMPOSE, "redis://redis:6379", "redis://cache:6379"), "cache is not a service");
    assert_caught(
        files.broken(
            COMPOSE,
            "      redis:\n        condition: service_healthy",
            "      rediss:\n        condition: service_healthy",
        ),
        "rediss, which is not a service",
    );
    assert_caught(
        files.broken(COMPOSE, "condition: service_completed_successfully", "condition: service_started"),
        "must wait for jwt-keygen",
    );
    assert_caught(files.broken(COMPOSE, "jwt-keys:/keys:ro", "jwt-keys:/keys"), "writable");
    assert_caught(files.broken(COMPOSE, "replicas: 4", "replicas: 40"), "16 slots for 40 replicas");
    assert_caught(
        files.broken("deploy/haproxy/round-robin.cfg", "session-redis:8000", "session-redis:9000"),
        "listens on 8000",
    );
    assert_caught(
        files.broken("deploy/haproxy/round-robin.cfg", "session-redis:8000", "sesion-redis:8000"),
        "not a compose service",
    );
    assert_caught(
        files.broken("deploy/haproxy/round-robin.cfg", "default_backend rr_jwt_hs256", "default_backend rr_jwt"),
        "not defined",
    );
    assert_caught(
        files.broken("deploy/haproxy/sticky.cfg", "req.cook(__Host-sid)", "req.cook(sid)"),
        "sticks by cookie sid",
    );
    assert_caught(
        files.broken("deploy/haproxy/00-common.cfg", "resolvers docker\n", "resolvers dns\n"),
        "which is not defined",
    );
}

#[test]
fn broken_load_targets_are_caught() {
    let files = Files::read();
    let documented = "--target http://127.0.0.1:8091 --systems session-memory --lb sticky";
    assert_caught(
        files.broken(COMPOSE, documented, "--target http://127.0.0.1:8091 --systems session-redis --lb sticky"),
        "port 8091 leads to session-memory",
    );
    assert_caught(
        files.broken(README, documented, "--target http://127.0.0.1:8091 --systems session-memory --lb round-robin"),
        "port 8091 balances sticky",
    );
    assert_caught(files.broken(README, documented, "--targets http://127.0.0.1:8091"), "has no --targets");
    assert_caught(
        files.broken(COMPOSE, "http://127.0.0.1:8080/healthz", "http://127.0.0.1:8083/healthz"),
        "no load balancer port",
    );
}

#[test]
fn broken_image_is_caught() {
    let files = Files::read();
    assert_caught(
        files.broken(DOCKERFILE, "COPY --from=build /out/authbench /usr/local/bin/authbench\n", ""),
        "compose runs authbench",
    );
    assert_caught(files.broken(DOCKERFILE, "USER 10001:10001", "USER 0:0"), "non-root USER");
    assert_caught(
        files.broken(DOCKERFILE, "ARG RUST_VERSION=1.95", "ARG RUST_VERSION=1.80"),
        "at least Cargo.toml's rust-version",
    );
    assert_caught(files.broken(DOCKERFILE, "EXPOSE 8000", "EXPOSE 8080"), "EXPOSE does not list 8000");
    assert_caught(
        files.broken("deploy/docker-entrypoint.sh", ": \"${AUTHBENCH_INSTANCE_ID:=", ": \"${AUTHBENCH_INSTANCE:="),
        "AUTHBENCH_INSTANCE, which",
    );
}
