//! `sweep --target`: an already-running deployment, checked to be the system it is said to
//! be before any load goes to it.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context as _, bail};

use crate::{
    drive::client::{Conn, Prepared},
    plan::{Server, System},
};

/// `http://HOST:PORT[/]` of an already-running deployment → its address. HOST must be
/// loopback (`localhost` is 127.0.0.1): authbench sends load to this machine only, unless
/// `allow_remote` (`--allow-remote`, for a user's own cluster), which also resolves names.
pub fn parse_target(url: &str, allow_remote: bool) -> anyhow::Result<SocketAddr> {
    let uri: http::Uri = url.parse().map_err(|_| anyhow::anyhow!("--target {url:?} is not a URL"))?;
    anyhow::ensure!(uri.scheme_str() == Some("http"), "--target {url}: must start with http:// (TLS is not supported)");
    anyhow::ensure!(
        uri.path_and_query().is_none_or(|p| p.as_str() == "/"),
        "--target {url}: give the server's base URL (http://HOST:PORT), without a path"
    );
    let host = uri.host().with_context(|| format!("--target {url} has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    if allow_remote {
        use std::net::ToSocketAddrs as _;
        return (host, port)
            .to_socket_addrs()
            .with_context(|| format!("--target {url}: cannot resolve {host}"))?
            .next()
            .with_context(|| format!("--target {url}: {host} has no address"));
    }
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h.parse().map_err(|_| {
            anyhow::anyhow!(
                "--target {url}: host {h:?} is not an IP address or localhost (load goes to loopback only; \
                 --allow-remote for your own cluster)"
            )
        })?,
    };
    anyhow::ensure!(
        ip.is_loopback(),
        "--target {url}: authbench sends load only to this machine (127.0.0.0/8, ::1 or localhost) unless \
         --allow-remote is given; {ip} is not loopback"
    );
    Ok(SocketAddr::new(ip, port))
}

/// The system id a server reports in `authbench_info` on `/metrics` for `system`: the
/// revocation modes are not in it, so every HS256 variant reports `jwt-hs256`.
fn reported_id(system: System) -> String {
    match system.jwt_alg() {
        Some(alg) => format!("jwt-{}", alg.to_ascii_lowercase()),
        None => system.id(),
    }
}

/// Check that `url` (at `addr`) answers as `system`: it accepts a connection, its
/// `/metrics` (when it is an authbench server) names the same system, and `user0` logs in
/// with `password` and gets the credential `system` uses (a cookie, or a bearer token
/// signed with the system's algorithm). Every failure is one line naming the URL.
pub async fn check_target(system: System, url: &str, addr: SocketAddr, password: &str) -> anyhow::Result<()> {
    const TIMEOUT: Duration = Duration::from_secs(10);
    let connect = || async {
        Conn::connect(addr, Duration::from_secs(3)).await.with_context(|| format!("--target {url}: cannot connect"))
    };
    let mut conn = connect().await?;
    // Only an authbench server says what it is; anything else is judged by its login.
    if let Ok((status, body)) = conn.send(&Prepared::get("/metrics")?, TIMEOUT).await
        && status == http::StatusCode::OK
        && let Some(running) = String::from_utf8_lossy(&body).lines().find_map(|l| {
            let rest = l.strip_prefix("authbench_info{")?;
            let (_, after) = rest.split_once("system=\"")?;
            Some(after.split('"').next()?.to_owned())
        })
    {
        let expected = reported_id(system);
        anyhow::ensure!(
            running == expected,
            "--target {url} runs {running} (its /metrics says so), not {system}; give --systems {running}"
        );
    }
    // A fresh connection: a server that answered /metrics with `connection: close` may not
    // have closed this one yet, and a login sent on it would be lost.
    drop(conn);
    let mut conn = connect().await?;
    let body = serde_json::json!({"username": "user0", "password": password});
    let (status, headers, body) = conn
        .send_with_headers(&Prepared::post_json("/login", &body)?, TIMEOUT)
        .await
        // SendError's text already names its cause.
        .map_err(|e| anyhow::anyhow!("--target {url}: POST /login got no answer ({e})"))?;
    let text = String::from_utf8_lossy(&body);
    let snippet: String = text.chars().take(120).collect();
    if status != http::StatusCode::OK {
        let hint = match status.as_u16() {
            401 => " (no demo user user0 there, or a different --demo-password?)",
            404 | 405 => " (not an authbench server?)",
            429 => " (too many failed logins for user0; wait for the window to pass)",
            _ => "",
        };
        bail!("--target {url} is not a working {system}: POST /login as user0 answered {status}{hint}: {snippet}");
    }
    let cookie = headers.get(http::header::SET_COOKIE).and_then(|v| v.to_str().ok());
    let token: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["access_token"].as_str().map(str::to_owned));
    match system.server() {
        Server::Session => anyhow::ensure!(
            cookie.is_some_and(|c| c.starts_with("__Host-sid=")),
            "--target {url} is not {system}: POST /login answered {status} without a __Host-sid session cookie{}",
            if token.is_some() { " but with an access_token (a JWT server?)" } else { "" }
        ),
        Server::Jwt => {
            let token = token.with_context(|| {
                format!(
                    "--target {url} is not {system}: POST /login answered {status} without an access_token{}",
                    if cookie.is_some() { " but with a cookie (a session server?)" } else { "" }
                )
            })?;
            let alg = token_alg(&token);
            let expected = system.jwt_alg().unwrap_or_default();
            anyhow::ensure!(
                alg.as_deref() == Some(expected),
                "--target {url} is not {system}: its access tokens are signed with {}, not {expected}",
                alg.as_deref().unwrap_or("an unreadable header")
            );
        }
    }
    Ok(())
}

/// `alg` from a JWT's header (not verified: only to tell which system issued it).
fn token_alg(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').next()?).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(v["alg"].as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_loopback_base_urls() {
        assert_eq!(parse_target("http://127.0.0.1:8080", false).unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_target("http://localhost:8081/", false).unwrap(), "127.0.0.1:8081".parse().unwrap());
        assert_eq!(parse_target("http://[::1]:8082", false).unwrap(), "[::1]:8082".parse().unwrap());
        assert_eq!(parse_target("http://127.0.0.1", false).unwrap(), "127.0.0.1:80".parse().unwrap());
        // The opt-in takes any address (nothing here sends load to one).
        assert_eq!(parse_target("http://192.0.2.1:8080", true).unwrap(), "192.0.2.1:8080".parse().unwrap());
        for (url, why) in [
            ("http://192.0.2.1:8080", "not loopback"),
            ("http://example.com:8080", "not an IP address or localhost"),
            ("https://127.0.0.1:8443", "http://"),
            ("http://127.0.0.1:8080/api", "without a path"),
            ("127.0.0.1:8080", "http://"),
            ("", "not a URL"),
        ] {
            let e = parse_target(url, false).unwrap_err().to_string();
            assert!(e.contains(why), "{url:?}: {e}");
        }
    }

    #[test]
    fn reported_ids_drop_the_revocation_mode() {
        assert_eq!(reported_id(System::SESSION_REDIS), "session-redis");
        assert_eq!(reported_id(System::JWT_EDDSA), "jwt-eddsa");
        assert_eq!(reported_id(System::JWT_HS256_DENYLIST_CACHED), "jwt-hs256");
    }

    #[test]
    fn token_alg_reads_the_header() {
        // {"alg":"ES256","typ":"at+jwt"}
        assert_eq!(token_alg("eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.e30.sig").as_deref(), Some("ES256"));
        assert_eq!(token_alg("garbage"), None);
    }
}
