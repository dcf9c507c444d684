//! The parts of an HAProxy configuration the checks look at: frontends and the ports they
//! bind, backends and the servers they send to, resolvers, and the defaults that apply.

use std::collections::{BTreeMap, BTreeSet};

use crate::addr::host_port;

#[derive(Debug, Default)]
pub struct Haproxy {
    pub frontends: BTreeMap<String, Frontend>,
    pub backends: BTreeMap<String, Backend>,
    pub resolvers: BTreeSet<String>,
    /// `default-server` parameters of the defaults sections.
    pub default_server: Vec<String>,
    /// `option httpchk` of the defaults sections.
    pub default_httpchk: Option<String>,
}

#[derive(Debug, Default)]
pub struct Frontend {
    pub binds: Vec<u16>,
    /// `default_backend` and `use_backend`, in order.
    pub backends: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Backend {
    pub servers: Vec<Server>,
    pub httpchk: Option<String>,
    /// Cookie names in `req.cook(...)` / `res.cook(...)` (stickiness).
    pub cookies: Vec<String>,
}

/// A `server` or `server-template` line.
#[derive(Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
    /// How many servers it makes: 1, or a template's count (0 if unreadable).
    pub slots: usize,
    pub params: Vec<String>,
}

const SECTIONS: [&str; 13] = [
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "resolvers",
    "peers",
    "userlist",
    "cache",
    "program",
    "http-errors",
    "ring",
    "mailers",
];

impl Haproxy {
    /// All `(path, text)` files of one HAProxy process, in load order. Also returns the
    /// lines it could not read, each naming its file; the rest is still parsed, so that the
    /// checks can go on and say what else is wrong.
    pub fn parse(files: &[(&str, &str)]) -> (Haproxy, Vec<String>) {
        let mut h = Haproxy::default();
        let mut errors = Vec::new();
        for (path, text) in files {
            let mut section = ("", String::new());
            for line in text.lines() {
                let line = line.split('#').next().unwrap_or_default().trim();
                let words: Vec<&str> = line.split_whitespace().collect();
                let Some(&keyword) = words.first() else { continue };
                if SECTIONS.contains(&keyword) {
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
                            Some(port) => fe.binds.push(port),
                            None => errors.push(format!("{path}: `{line}`: no port to bind")),
                        },
                        "default_backend" | "use_backend" => fe.backends.extend(words.get(1).map(|b| (*b).to_owned())),
                        _ => {}
                    }
                }
                if matches!(kind, "backend" | "listen") {
                    let be = h.backends.entry(name.to_owned()).or_default();
                    parse_backend_line(be, path, line, &words, &mut errors);
                }
            }
        }
        (h, errors)
    }
}

fn parse_backend_line(be: &mut Backend, path: &str, line: &str, words: &[&str], errors: &mut Vec<String>) {
    for (i, _) in line.match_indices(".cook(") {
        let rest = &line[i + ".cook(".len()..];
        be.cookies.push(rest.split(')').next().unwrap_or_default().to_owned());
    }
    if words.starts_with(&["option", "httpchk"]) {
        be.httpchk = Some(words[2..].join(" "));
    }
    let (slots, addr, params) = match words {
        ["server", _, addr, params @ ..] => (1, *addr, params),
        ["server-template", _, n, addr, params @ ..] => {
            // A count, or a range of ids `1-16`.
            let slots = match n.split_once('-') {
                Some((a, b)) => b.parse::<usize>().unwrap_or(0).saturating_sub(a.parse().unwrap_or(1)) + 1,
                None => n.parse().unwrap_or(0),
            };
            (slots, *addr, params)
        }
        _ => return,
    };
    match host_port(addr) {
        Some((host, port)) => be.servers.push(Server {
            host: host.to_owned(),
            port,
            slots,
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }),
        None => errors.push(format!("{path}: `{line}`: the server needs host:port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMON: &str = "global
    maxconn 4096   # a comment

defaults
    default-server init-addr none resolvers docker check
    option httpchk GET /healthz

resolvers docker
    nameserver docker 127.0.0.11:53
";

    const SITES: &str = "frontend web
    bind :8080
    bind 127.0.0.1:8081
    default_backend app
    use_backend other if { path_beg /x }

backend app
    stick on req.cook(__Host-sid)
    stick store-response res.cook(__Host-sid)
    server-template app- 16 app:8000
    server-template more- 3-10 app:8000 weight 2

listen both
    bind :9000
    option httpchk GET /ready
    server one 10.0.0.1:9001
";

    #[test]
    fn sections_across_files() {
        let (h, errors) = Haproxy::parse(&[("00-common.cfg", COMMON), ("sites.cfg", SITES)]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(h.resolvers, BTreeSet::from(["docker".to_owned()]));
        assert_eq!(h.default_server, ["init-addr", "none", "resolvers", "docker", "check"]);
        assert_eq!(h.default_httpchk.as_deref(), Some("GET /healthz"));
        assert_eq!(h.frontends["web"].binds, [8080, 8081]);
        assert_eq!(h.frontends["web"].backends, ["app", "other"]);
        let app = &h.backends["app"];
        assert_eq!(app.cookies, ["__Host-sid", "__Host-sid"]);
        assert_eq!(app.httpchk, None);
        assert_eq!(
            app.servers,
            [
                Server { host: "app".into(), port: 8000, slots: 16, params: vec![] },
                Server { host: "app".into(), port: 8000, slots: 8, params: vec!["weight".into(), "2".into()] },
            ]
        );
        // A listen section is a frontend and a backend.
        assert_eq!(h.frontends["both"].binds, [9000]);
        assert_eq!(h.backends["both"].httpchk.as_deref(), Some("GET /ready"));
        assert_eq!(h.backends["both"].servers[0].host, "10.0.0.1");
    }

    #[test]
    fn malformed_lines_are_errors_and_the_rest_is_read() {
        let broken = "frontend web\n    bind localhost\n    default_backend app\nbackend app\n    server a app\n    server b app:8000\n    server-template c 16\n";
        let (h, errors) = Haproxy::parse(&[("web.cfg", broken)]);
        assert_eq!(
            errors,
            ["web.cfg: `bind localhost`: no port to bind", "web.cfg: `server a app`: the server needs host:port"]
        );
        assert_eq!(h.frontends["web"].backends, ["app"]);
        assert_eq!(h.backends["app"].servers.len(), 1);
    }

    #[test]
    fn an_unreadable_template_count_is_no_slots() {
        let (h, _) = Haproxy::parse(&[("x.cfg", "backend b\n    server-template s many b:1\n")]);
        assert_eq!(h.backends["b"].servers[0].slots, 0);
    }
}
