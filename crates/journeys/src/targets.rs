//! Targets: the instances a run talks to, and which one each request goes to. Load only
//! ever goes to loopback addresses; [`loopback_url`] is the one gate every URL passes.

use std::net::IpAddr;

use anyhow::{Context as _, bail};
use harness::plan::Lb;

/// The instances of one run, in instance order.
#[derive(Clone, Debug)]
pub struct Targets {
    /// Base URLs, without a trailing slash (`http://127.0.0.1:41234`).
    pub urls: Vec<String>,
    /// The `--instance-id` of each instance, when we started them: `/me`'s `instance`
    /// must name the instance the request went to.
    pub ids: Option<Vec<String>>,
    pub lb: Lb,
}

impl Targets {
    pub fn new(urls: Vec<String>, ids: Option<Vec<String>>, lb: Lb) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "no instances to send load to");
        anyhow::ensure!(
            !lb.proxy(),
            "--lb {lb}: the journeys balance over their --url instances themselves; put HAProxy in front and give its \
             URL with --lb round-robin instead"
        );
        if let Some(ids) = &ids {
            anyhow::ensure!(ids.len() == urls.len(), "{} instance ids for {} instances", ids.len(), urls.len());
        }
        Ok(Self { urls, ids, lb })
    }

    /// The instance of the `seq`-th request (0-based) of goose user `user`: its home
    /// instance (`user mod N`) when sticky, the next one after the previous request's
    /// when round-robin. Users start at their home, so they are spread either way.
    pub fn instance(&self, user: usize, seq: u64) -> usize {
        let n = self.urls.len();
        let home = user % n;
        match self.lb {
            Lb::Sticky => home,
            // Proxy policies are refused in `new`.
            Lb::RoundRobin | Lb::HaproxyRr | Lb::HaproxySticky => (home + (seq % n as u64) as usize) % n,
        }
    }

    /// The expected `/me` `instance` of instance `k`, when known.
    pub fn id(&self, k: usize) -> Option<&str> {
        self.ids.as_ref().and_then(|ids| ids.get(k)).map(String::as_str)
    }
}

/// Check that `url` points at this machine (127.0.0.0/8, `::1` or `localhost`) and
/// return it without a trailing slash. Anything else is refused: this tool sends load.
pub fn loopback_url(url: &str) -> anyhow::Result<String> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => bail!("{url}: scheme {other:?} is not http or https"),
        None => bail!("{url}: no scheme; give e.g. http://127.0.0.1:8080"),
    }
    check_loopback_host(url, &uri)?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        bail!("{url}: give the server's base URL only (no path): the journeys add /login, /me, ...");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// The same gate for a store URL such as `redis://127.0.0.1:6379/0`.
pub fn loopback_store_url(url: &str) -> anyhow::Result<()> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    check_loopback_host(url, &uri)
}

fn check_loopback_host(url: &str, uri: &http::Uri) -> anyhow::Result<()> {
    let host = uri.host().with_context(|| format!("{url}: no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let local = bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !local {
        bail!(
            "{url}: refusing to send load to {host}: only loopback targets are allowed \
             (127.0.0.1, ::1, localhost)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_pass() {
        assert_eq!(loopback_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(loopback_url("http://127.1.2.3:1").unwrap(), "http://127.1.2.3:1");
        assert_eq!(loopback_url("http://localhost:8080").unwrap(), "http://localhost:8080");
        assert_eq!(loopback_url("http://[::1]:8080").unwrap(), "http://[::1]:8080");
        for bad in [
            "http://10.0.0.1:8080",
            "http://192.168.1.1",
            "http://example.com",
            "http://localhost.example.com",
            "http://0.0.0.0:8080",
            "ftp://127.0.0.1",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/api",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad} passed");
        }
        let err = loopback_url("http://10.1.2.3:80").unwrap_err().to_string();
        assert!(err.contains("only loopback"), "{err}");
        assert!(loopback_store_url("redis://127.0.0.1:6379/0").is_ok());
        assert!(loopback_store_url("redis://cache.internal:6379").is_err());
    }

    #[test]
    fn sticky_keeps_a_user_home_and_round_robin_moves_on() {
        let urls = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let sticky = Targets::new(urls.clone(), None, Lb::Sticky).unwrap();
        assert_eq!((0..4).map(|s| sticky.instance(4, s)).collect::<Vec<_>>(), vec![1, 1, 1, 1]);
        assert_eq!((0..6).map(|u| sticky.instance(u, 0)).collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2]);
        let rr = Targets::new(urls, None, Lb::RoundRobin).unwrap();
        assert_eq!((0..4).map(|s| rr.instance(4, s)).collect::<Vec<_>>(), vec![1, 2, 0, 1]);
    }
}
