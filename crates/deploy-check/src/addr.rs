//! `host:port` as the compose file, HAProxy and URLs write it.

/// `host:port` (with `[v6]` hosts), the port as a number.
pub fn host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        assert_eq!(host_port("0.0.0.0:8000"), Some(("0.0.0.0", 8000)));
        assert_eq!(host_port("[::1]:443"), Some(("::1", 443)));
        assert_eq!(host_port(":8080"), Some(("", 8080)));
        assert_eq!(host_port("redis"), None);
        assert_eq!(host_port("redis:port"), None);
        assert_eq!(host_port("redis:70000"), None);
    }
}
