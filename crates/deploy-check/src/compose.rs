//! The parts of docker-compose.yml the checks look at, in either of the forms Compose
//! allows for each (`depends_on` as a list or a map, ports as `"H:C"` or a map, ...).
//!
//! A field the checks need but cannot read stays empty, and the check that needs it says
//! so in its own words; only a file that is no compose file at all is an error here.

use std::collections::{BTreeMap, BTreeSet};

use yaml_rust2::{Yaml, YamlLoader};

use crate::{
    addr::host_port,
    shell::{self, ShellError},
};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("not YAML: {0}")]
    NotYaml(#[from] yaml_rust2::ScanError),
    #[error("empty")]
    Empty,
    #[error("no services")]
    NoServices,
    #[error("{service}'s command cannot be split into words: {error}")]
    Command { service: String, error: ShellError },
}

#[derive(Debug, Default)]
pub struct Compose {
    pub services: BTreeMap<String, Service>,
    /// Top-level named volumes.
    pub volumes: BTreeSet<String>,
}

#[derive(Debug, Default)]
pub struct Service {
    /// `build:`, with its context (`build: .` or `build: {context: .}`).
    pub build: Option<Build>,
    pub image: Option<String>,
    /// Whether it sets `entrypoint:`.
    pub entrypoint: bool,
    /// `command:` as an argv, Compose's `$$` unescaped; `None` runs the image's CMD.
    pub command: Option<Vec<String>>,
    /// The names of the `environment:` variables.
    pub environment: Vec<String>,
    pub depends_on: Vec<Dependency>,
    pub network_mode: Option<String>,
    pub volumes: Vec<Mount>,
    pub ports: Vec<Published>,
    /// Present when `healthcheck.test` is.
    pub healthcheck: Option<Healthcheck>,
    /// `deploy.replicas`, when it is a number.
    pub replicas: Option<i64>,
    /// `deploy.resources.limits.cpus`, when it is a positive number.
    pub cpus: Option<f64>,
}

#[derive(Debug)]
pub struct Build {
    pub context: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    /// `service_started` when the list form gives none.
    pub condition: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub read_only: bool,
}

impl Mount {
    pub fn is_named_volume(&self) -> bool {
        !(self.source.is_empty() || self.source.starts_with(['.', '/', '~']))
    }
}

/// A published port; 0 where a port cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    pub host_ip: String,
    pub host: u16,
    pub container: u16,
    /// As written, for the messages.
    pub spec: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Healthcheck {
    /// The test as one line, `$$` unescaped; `None` if it is neither a string nor a list.
    pub line: Option<String>,
    /// The list (exec) form, `["CMD", ...]`, `$$` unescaped.
    pub exec: Option<Vec<String>>,
}

impl Compose {
    pub fn parse(text: &str) -> Result<Compose, ComposeError> {
        let docs = YamlLoader::load_from_str(text)?;
        let yaml = docs.first().ok_or(ComposeError::Empty)?;
        let services = yaml["services"].as_hash().ok_or(ComposeError::NoServices)?;
        let services = services
            .iter()
            .filter_map(|(k, v)| Some((scalar(k)?, v)))
            .map(|(name, svc)| match Service::parse(svc) {
                Ok(s) => Ok((name, s)),
                Err(error) => Err(ComposeError::Command { service: name, error }),
            })
            .collect::<Result<_, _>>()?;
        Ok(Compose { services, volumes: keys(&yaml["volumes"]).into_iter().collect() })
    }

    /// The name the services that build the Dockerfile give its image (the first one; the
    /// checks of [`crate::checks::problems`] say when they disagree).
    pub fn built_image(&self) -> Option<&str> {
        self.services.values().filter(|s| s.build.is_some()).find_map(|s| s.image.as_deref())
    }
}

impl Service {
    fn parse(svc: &Yaml) -> Result<Service, ShellError> {
        let build = &svc["build"];
        let deploy = &svc["deploy"];
        let test = &svc["healthcheck"]["test"];
        Ok(Service {
            build: (!build.is_badvalue())
                .then(|| Build { context: scalar(build).or_else(|| scalar(&build["context"])) }),
            image: scalar(&svc["image"]),
            entrypoint: !svc["entrypoint"].is_badvalue(),
            command: argv(&svc["command"])?,
            environment: environment(svc),
            depends_on: depends_on(svc),
            network_mode: scalar(&svc["network_mode"]),
            volumes: mounts(svc),
            ports: published(svc),
            healthcheck: (!test.is_badvalue()).then(|| healthcheck(test)),
            replicas: deploy["replicas"].as_i64(),
            cpus: scalar(&deploy["resources"]["limits"]["cpus"])
                .and_then(|c| c.parse().ok())
                .filter(|&c: &f64| c > 0.0),
        })
    }
}

/// Compose's own escaping: `$$` is a literal `$`.
pub fn unescape(s: &str) -> String {
    s.replace("$$", "$")
}

/// The TCP port a health check talks to: `/dev/tcp/HOST/PORT` or `http://HOST:PORT/`.
pub fn healthcheck_target(test: &str) -> Option<(String, u16)> {
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

pub(crate) fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list of scalars, or a string split as Compose splits it (shell words); `None` if absent.
fn argv(y: &Yaml) -> Result<Option<Vec<String>>, ShellError> {
    Ok(match y {
        Yaml::Array(items) => Some(items.iter().map(|i| unescape(&scalar(i).unwrap_or_default())).collect()),
        Yaml::String(s) => Some(shell::split(&unescape(s))?.into_iter().flatten().collect()),
        _ => None,
    })
}

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash().map(|h| h.keys().filter_map(scalar).collect()).unwrap_or_default()
}

fn healthcheck(test: &Yaml) -> Healthcheck {
    let exec = match test {
        Yaml::Array(items) => Some(items.iter().map(|i| unescape(&scalar(i).unwrap_or_default())).collect::<Vec<_>>()),
        _ => None,
    };
    Healthcheck { line: scalar(test).map(|t| unescape(&t)).or_else(|| exec.as_ref().map(|v| v.join(" "))), exec }
}

fn depends_on(svc: &Yaml) -> Vec<Dependency> {
    let started = || "service_started".to_owned();
    match &svc["depends_on"] {
        Yaml::Array(items) => {
            items.iter().filter_map(scalar).map(|service| Dependency { service, condition: started() }).collect()
        }
        Yaml::Hash(h) => h
            .iter()
            .filter_map(|(k, v)| {
                Some(Dependency { service: scalar(k)?, condition: scalar(&v["condition"]).unwrap_or_else(started) })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// In list (`K=V`) or map form.
fn environment(svc: &Yaml) -> Vec<String> {
    match &svc["environment"] {
        Yaml::Array(items) => {
            items.iter().filter_map(scalar).map(|s| s.split('=').next().unwrap_or_default().to_owned()).collect()
        }
        y => keys(y),
    }
}

fn mounts(svc: &Yaml) -> Vec<Mount> {
    let Some(volumes) = svc["volumes"].as_vec() else { return Vec::new() };
    volumes
        .iter()
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
}

fn published(svc: &Yaml) -> Vec<Published> {
    let Some(ports) = svc["ports"].as_vec() else { return Vec::new() };
    let port = |s: Option<&str>| s.and_then(|p| p.parse().ok()).unwrap_or(0);
    ports
        .iter()
        .map(|p| match p {
            Yaml::Hash(_) => Published {
                host_ip: scalar(&p["host_ip"]).unwrap_or_default(),
                host: port(scalar(&p["published"]).as_deref()),
                container: port(scalar(&p["target"]).as_deref()),
                spec: format!("{p:?}"),
            },
            _ => {
                let spec = scalar(p).unwrap_or_default();
                let plain = spec.split('/').next().unwrap_or_default();
                // [host_ip:][host:]container, from the right.
                let parts: Vec<&str> = plain.rsplitn(3, ':').collect();
                let host_ip = match parts.get(2) {
                    Some(ip) => ip.trim_matches(['[', ']']).to_owned(),
                    None => String::new(),
                };
                Published { host_ip, host: port(parts.get(1).copied()), container: port(parts.first().copied()), spec }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(yaml: &str) -> Service {
        let mut compose = Compose::parse(&format!("services:\n  s:\n{yaml}")).unwrap();
        compose.services.remove("s").unwrap()
    }

    #[test]
    fn services_and_volumes() {
        let compose =
            Compose::parse("services:\n  a: {image: x}\n  b:\n    build: .\nvolumes:\n  keys:\n  data: {}\n").unwrap();
        assert_eq!(compose.services.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(compose.volumes, BTreeSet::from(["keys".to_owned(), "data".to_owned()]));
        assert_eq!(compose.services["a"].image.as_deref(), Some("x"));
        assert!(compose.services["a"].build.is_none());
        assert_eq!(compose.services["b"].build.as_ref().unwrap().context.as_deref(), Some("."));
        assert_eq!(compose.built_image(), None, "b builds an image it does not name");
        let named = Compose::parse("services:\n  a: {image: redis:7}\n  b: {build: ., image: x:local}\n").unwrap();
        assert_eq!(named.built_image(), Some("x:local"));
    }

    #[test]
    fn malformed_files_are_errors() {
        let err = |text: &str| Compose::parse(text).unwrap_err().to_string();
        assert!(err("services: [a").starts_with("not YAML: "), "{}", err("services: [a"));
        assert_eq!(err(""), "empty");
        assert_eq!(err("# nothing but a comment\n"), "empty");
        assert_eq!(err("name: x\n"), "no services");
        assert_eq!(err("services: [a, b]\n"), "no services");
        assert_eq!(
            err("services:\n  a:\n    command: sh -c 'exec x\n"),
            "a's command cannot be split into words: a ' quote is never closed"
        );
    }

    #[test]
    fn commands_in_list_or_string_form() {
        let list = service("    command: [\"sh\", \"-c\", \"[ \\\"$$x\\\" = 1 ]\", 8000]\n");
        assert_eq!(list.command.unwrap(), ["sh", "-c", "[ \"$x\" = 1 ]", "8000"]);
        let string = service("    command: session-server --listen '0.0.0.0:8000' --x $$y\n");
        assert_eq!(string.command.unwrap(), ["session-server", "--listen", "0.0.0.0:8000", "--x", "$y"]);
        assert_eq!(service("    image: x\n").command, None);
        assert!(service("    entrypoint: [x]\n").entrypoint);
    }

    #[test]
    fn depends_on_environment_and_network() {
        let list = service("    depends_on: [a, b]\n    environment: [A=1, B]\n    network_mode: service:lb\n");
        assert_eq!(
            list.depends_on,
            [
                Dependency { service: "a".into(), condition: "service_started".into() },
                Dependency { service: "b".into(), condition: "service_started".into() }
            ]
        );
        assert_eq!(list.environment, ["A", "B"]);
        assert_eq!(list.network_mode.as_deref(), Some("service:lb"));
        let map =
            service("    depends_on:\n      a: {condition: service_healthy}\n      b: {}\n    environment: {C: 1}\n");
        assert_eq!(map.depends_on[0].condition, "service_healthy");
        assert_eq!(map.depends_on[1].condition, "service_started");
        assert_eq!(map.environment, ["C"]);
    }

    #[test]
    fn mounts_in_short_or_long_form() {
        let svc = service(
            "    volumes:\n      - keys:/keys:ro\n      - ./deploy:/etc/x\n      - {type: volume, source: data, target: /d, read_only: true}\n      - /only-a-target\n",
        );
        assert_eq!(
            svc.volumes,
            [
                Mount { source: "keys".into(), target: "/keys".into(), read_only: true },
                Mount { source: "./deploy".into(), target: "/etc/x".into(), read_only: false },
                Mount { source: "data".into(), target: "/d".into(), read_only: true },
            ]
        );
        assert_eq!(svc.volumes.iter().map(Mount::is_named_volume).collect::<Vec<_>>(), [true, false, true]);
    }

    #[test]
    fn ports_in_short_or_long_form() {
        let svc = service(
            "    ports:\n      - \"127.0.0.1:8080:80\"\n      - \"8081:81/tcp\"\n      - \"[::1]:8082:82\"\n      - 83\n      - {target: 84, published: 8084, host_ip: 127.0.0.1}\n      - \"x:y\"\n",
        );
        let ports: Vec<(&str, u16, u16)> =
            svc.ports.iter().map(|p| (p.host_ip.as_str(), p.host, p.container)).collect();
        assert_eq!(
            ports,
            [
                ("127.0.0.1", 8080, 80),
                ("", 8081, 81),
                ("::1", 8082, 82),
                ("", 0, 83),
                ("127.0.0.1", 8084, 84),
                ("", 0, 0)
            ]
        );
        assert_eq!(svc.ports[0].spec, "127.0.0.1:8080:80");
    }

    #[test]
    fn health_checks_and_limits() {
        let svc = service(
            "    healthcheck:\n      test: [\"CMD\", \"bash\", \"-c\", \"[ \\\"$$c\\\" = 200 ]\"]\n    deploy:\n      replicas: 4\n      resources: {limits: {cpus: \"0.5\"}}\n",
        );
        let hc = svc.healthcheck.unwrap();
        assert_eq!(hc.exec.unwrap(), ["CMD", "bash", "-c", "[ \"$c\" = 200 ]"]);
        assert_eq!(hc.line.unwrap(), "CMD bash -c [ \"$c\" = 200 ]");
        assert_eq!((svc.replicas, svc.cpus), (Some(4), Some(0.5)));
        let string = service("    healthcheck: {test: curl -f http://localhost:8000/healthz}\n").healthcheck.unwrap();
        assert_eq!((string.line.as_deref(), string.exec), (Some("curl -f http://localhost:8000/healthz"), None));
        let odd =
            service("    healthcheck: {test: {a: 1}}\n    deploy: {replicas: four, resources: {limits: {cpus: 0}}}\n");
        assert_eq!(odd.healthcheck, Some(Healthcheck { line: None, exec: None }));
        assert_eq!((odd.replicas, odd.cpus), (None, None));
        assert_eq!(service("    healthcheck: {interval: 2s}\n").healthcheck, None);
    }

    #[test]
    fn what_a_health_check_talks_to() {
        assert_eq!(healthcheck_target("exec 3<>/dev/tcp/127.0.0.1/8000 && x"), Some(("127.0.0.1".into(), 8000)));
        assert_eq!(healthcheck_target("curl -f 'http://localhost:8001/healthz'"), Some(("localhost".into(), 8001)));
        assert_eq!(healthcheck_target("wget http://[::1]:8002"), Some(("::1".into(), 8002)));
        assert_eq!(healthcheck_target("redis-cli ping"), None);
        assert_eq!(healthcheck_target("/dev/tcp/host"), None);
        assert_eq!(healthcheck_target("curl http://localhost/healthz"), None);
    }
}
