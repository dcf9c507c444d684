//! Flags both servers share. Every flag can also be set through the environment variable
//! named in `--help`.

use std::{path::PathBuf, time::Duration};

use crate::{
    password::{HashParams, Passwords, hash_password},
    server::Limits,
    users::{UserDirectory, UsersError},
};

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Address to listen on; port 0 picks a free port (the ready line says which).
    #[arg(long, env = "AUTHBENCH_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: String,

    /// Name of this instance, returned in `/me` so a client can see who answered.
    #[arg(long, env = "AUTHBENCH_INSTANCE_ID", default_value = "instance-0")]
    pub instance_id: String,

    /// Create demo users user0 … user{N-1} (user{i} is an admin when i % 10 == 0).
    #[arg(long, env = "AUTHBENCH_DEMO_USERS", default_value_t = 0)]
    pub demo_users: u32,

    /// Password of every demo user.
    #[arg(long, env = "AUTHBENCH_DEMO_PASSWORD", default_value = "demo-password")]
    pub demo_password: String,

    /// Extra users, one `name:role:argon2id-phc-hash` per line (see `hash-password`).
    #[arg(long, env = "AUTHBENCH_USERS_FILE")]
    pub users_file: Option<PathBuf>,

    /// Most password hashes computed at once (each takes ~19 MiB); default: one per core.
    #[arg(long, env = "AUTHBENCH_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    // Login throttling (see `crate::throttle`).
    /// Login attempts allowed per account (known or not) within --login-failure-window;
    /// the next one gets 429 with Retry-After. A successful login resets the count.
    #[arg(long, env = "AUTHBENCH_LOGIN_MAX_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures: u32,

    /// Fixed window opened by an account's first failed login; its count, and any lock,
    /// ends with it.
    #[arg(long, env = "AUTHBENCH_LOGIN_FAILURE_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_failure_window: Duration,

    /// Close a connection whose request headers have not all arrived after this long
    /// (slowloris); also how long an idle keep-alive connection is kept.
    #[arg(long, env = "AUTHBENCH_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Answer 503 {"error":"timeout"} to a request not done after this long, body upload included.
    #[arg(long, env = "AUTHBENCH_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Largest request line + headers in bytes (1024-262144); larger gets 431.
    #[arg(long, env = "AUTHBENCH_MAX_HEADER_BYTES", default_value = "16384", value_parser = parse_header_bytes)]
    pub max_header_bytes: usize,
}

/// Where a server's shared state lives when it uses Redis (both servers share these flags).
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// Redis to use when the store is `redis`.
    #[arg(long = "redis-url", env = "AUTHBENCH_REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub url: String,

    /// Prefix for every Redis key this server writes.
    #[arg(long = "redis-prefix", env = "AUTHBENCH_REDIS_PREFIX", default_value = "authbench:")]
    pub prefix: String,

    /// Longest wait for the store before a request fails closed with 503.
    #[arg(long, env = "AUTHBENCH_STORE_TIMEOUT", default_value = "500ms", value_parser = parse_duration)]
    pub store_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Hash(#[from] crate::password::HashError),
}

impl CommonArgs {
    /// Build the user directory and the password verifier. The demo password is hashed
    /// once and shared by every demo user.
    pub fn users(&self) -> Result<(UserDirectory, Passwords), ConfigError> {
        let params = HashParams::default();
        let demo = if self.demo_users > 0 {
            UserDirectory::demo(self.demo_users, &hash_password(&self.demo_password, params)?)
        } else {
            UserDirectory::default()
        };
        let extra = match &self.users_file {
            Some(path) => UserDirectory::load_file(path)?,
            None => Vec::new(),
        };
        let users = UserDirectory::merge(demo, extra)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let passwords = Passwords::new(self.hash_concurrency.unwrap_or(cores), params)?;
        Ok((users, passwords))
    }

    /// The HTTP limits to pass to [`crate::server::serve`].
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: self.header_read_timeout,
            request_timeout: self.request_timeout,
            max_header_bytes: self.max_header_bytes,
        }
    }
}

impl CommonArgs {
    /// Login brute-force limits for [`crate::throttle::LoginThrottle`].
    pub fn login_throttle(&self) -> crate::throttle::ThrottleConfig {
        crate::throttle::ThrottleConfig { max_failures: self.login_max_failures, window: self.login_failure_window }
    }
}

impl RedisArgs {
    /// A login throttle in this Redis, so failed logins count on every instance that shares
    /// it (both servers use it when their state lives in Redis).
    pub async fn login_throttle(
        &self,
        config: crate::throttle::ThrottleConfig,
    ) -> Result<crate::throttle::LoginThrottle, crate::store::StoreError> {
        crate::throttle::LoginThrottle::redis(&self.url, &self.prefix, self.store_timeout, config).await
    }
}

/// Parse a human duration (`30m`, `8h`, `14d`, `500ms`); zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 500ms, 30s, 5m, 8h, 14d)"))?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

fn parse_header_bytes(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e} (a number of bytes, e.g. 16384)"))?;
    let range = Limits::MAX_HEADER_BYTES_RANGE;
    if !range.contains(&n) {
        return Err(format!("must be between {} and {} bytes", range.start(), range.end()));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn limits_default_to_the_documented_values_and_are_bounded() {
        use clap::Parser as _;
        let cli = Cli::try_parse_from(["t"]).unwrap();
        assert_eq!(cli.common.limits(), Limits::default());
        assert_eq!(
            Limits::default(),
            Limits {
                header_read_timeout: Duration::from_secs(10),
                request_timeout: Duration::from_secs(10),
                max_header_bytes: 16384,
            }
        );
        let cli = Cli::try_parse_from([
            "t",
            "--header-read-timeout",
            "300ms",
            "--request-timeout",
            "2s",
            "--max-header-bytes",
            "8192",
        ])
        .unwrap();
        assert_eq!(
            cli.common.limits(),
            Limits {
                header_read_timeout: Duration::from_millis(300),
                request_timeout: Duration::from_secs(2),
                max_header_bytes: 8192,
            }
        );
        for bad in [
            ["--max-header-bytes", "1023"],
            ["--max-header-bytes", "262145"],
            ["--max-header-bytes", "16k"],
            ["--request-timeout", "0s"],
            ["--header-read-timeout", "0s"],
        ] {
            assert!(Cli::try_parse_from(["t", bad[0], bad[1]]).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn durations_parse_and_zero_is_refused() {
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
