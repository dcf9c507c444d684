//! The command line: our own flags under "Journeys", and goose's [`GooseConfiguration`]
//! flattened in under goose's own headings. One clap parser reads both, so `--help` shows
//! everything and a typo in either is an error; nothing is forwarded as raw strings.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use goose::config::GooseConfiguration;
use harness::plan::{Lb, System};

/// Users when neither `--users` nor `--test-plan` says.
pub const DEFAULT_USERS: usize = 8;
/// Run time when neither `--run-time`, `--iterations` nor `--test-plan` bounds the run.
pub const DEFAULT_RUN_TIME_SECS: usize = 20;
/// Request timeout (goose's own default is 60 s).
pub const DEFAULT_TIMEOUT_SECS: &str = "10";

const ABOUT: &str = "User journeys (login, /me, /admin, refresh, logout) against the authbench servers, with goose";

const LONG_ABOUT: &str = "\
User journeys (login, /me, /admin, refresh, logout) against the authbench servers, with goose.

Starts --instances servers of --system on 127.0.0.1 (and a private redis-server when the \
system needs one), runs the goose load test, stops everything (also on error and Ctrl-C) \
and exits non-zero when any response was wrong: a wrong status (a 401 mid-journey is a \
failure, not a success), a missing cookie or token, a /me naming another user. With \
--host URL it runs against an already running server instead (loopback only).

Goose user k logs in as demo user `user{k}` (an admin when k % 10 == 0). Every flag in the \
goose sections is goose's own (--users, --run-time, --increase-rate, --report-file, \
--threshold, ...); --hatch-rate is accepted as another name for --increase-rate. Defaults \
set here, each overridden by its flag: --users 8, --increase-rate 8, --run-time 20s \
(unless --iterations or --test-plan bounds the run), --timeout 10, --no-reset-metrics \
(requests made while users start are validated and counted too), and goose's telnet \
controller off. --max-duration caps every run.";

const AFTER_HELP: &str = "\
Examples:
  authbench-goose --system session-redis
  authbench-goose --system jwt-hs256 --users 16 --run-time 30s --report-file goose.html
  authbench-goose --system session-memory --lb round-robin   # fails: sessions are instance-local
  authbench-goose --system jwt-hs256 --host http://127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(name = "authbench-goose", about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
// goose's flags include -V/--version (goose's version), so clap's own stays off.
#[command(disable_version_flag = true, args_override_self = true)]
pub struct Cli {
    /// The system to walk the journeys against: session-memory, session-redis, jwt-hs256,
    /// jwt-rs256, jwt-es256, jwt-eddsa, jwt-hs256+denylist, jwt-hs256+denylist-cached.
    #[arg(long, env = "AUTHBENCH_GOOSE_SYSTEM", help_heading = "Journeys")]
    pub system: System,

    /// Server instances to start [default: 2]. Goose users are spread over them, user k
    /// on instance k mod N. Not with --host (one server).
    #[arg(long, env = "AUTHBENCH_GOOSE_INSTANCES", help_heading = "Journeys", value_parser = instance_count)]
    pub instances: Option<usize>,

    /// Which instance each request goes to. `sticky` (default): a user's whole journey goes
    /// to its own instance — what session-memory needs (its sessions live in one instance's
    /// memory) and what the JWT systems need for /refresh and /logout (their refresh
    /// tokens are instance-local too). `round-robin`: every request goes to the next
    /// instance; only session-redis passes all checks that way, the others fail — which is
    /// the session-synchronisation problem, shown rather than hidden.
    #[arg(long, env = "AUTHBENCH_GOOSE_LB", value_enum, default_value = "sticky", help_heading = "Journeys")]
    pub lb: Lb,

    /// `/me` requests per journey, between login and /admin.
    #[arg(long, env = "AUTHBENCH_GOOSE_ME_PER_JOURNEY", default_value_t = 3,
          value_parser = clap::value_parser!(u16).range(1..=1000), help_heading = "Journeys")]
    pub me_per_journey: u16,

    /// Password of the demo users (the servers are started with it).
    #[arg(long, env = "AUTHBENCH_DEMO_PASSWORD", default_value = "demo-password", help_heading = "Journeys")]
    pub demo_password: String,

    /// Demo users the servers are started with (`user0`…); at least --users.
    #[arg(long, env = "AUTHBENCH_GOOSE_DEMO_USERS", default_value_t = 1000, help_heading = "Journeys")]
    pub demo_users: usize,

    /// Redis for systems that need one (loopback only). Without it a private redis-server
    /// is started; failing that, redis://127.0.0.1:6379 is used if it answers. Keys are
    /// written under a per-run prefix and deleted afterwards.
    #[arg(long, env = "AUTHBENCH_GOOSE_REDIS_URL", help_heading = "Journeys")]
    pub redis_url: Option<String>,

    /// Where session-server and jwt-server are [default: next to authbench-goose, or PATH].
    #[arg(long, env = "AUTHBENCH_GOOSE_BIN_DIR", help_heading = "Journeys")]
    pub bin_dir: Option<PathBuf>,

    /// Hard cap on the load test, whatever goose's flags say: past it goose is stopped
    /// and the run fails.
    #[arg(long, env = "AUTHBENCH_GOOSE_MAX_DURATION", default_value = "10m", value_parser = humantime::parse_duration,
          help_heading = "Journeys")]
    pub max_duration: Duration,

    /// Another name for goose's --increase-rate (users started per second).
    #[arg(long, value_name = "RATE", help_heading = "Journeys")]
    pub hatch_rate: Option<String>,

    #[command(flatten)]
    pub goose: GooseConfiguration,
}

fn instance_count(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|_| format!("{s:?} is not a whole number"))?;
    if !(1..=64).contains(&n) {
        return Err("must be between 1 and 64".into());
    }
    Ok(n)
}

impl Cli {
    /// Goose's configuration with `--hatch-rate` folded in.
    pub fn goose_configuration(&self) -> anyhow::Result<GooseConfiguration> {
        let mut c = self.goose.clone();
        if let Some(rate) = &self.hatch_rate {
            anyhow::ensure!(c.increase_rate.is_none(), "--hatch-rate and --increase-rate are the same flag: give one");
            c.increase_rate = Some(rate.clone());
        }
        Ok(c)
    }

    /// Goose only prints something and exits (`--version`, `--list`, `--scenarios-list`).
    pub fn informational(&self) -> bool {
        self.goose.version || self.goose.list || self.goose.scenarios_list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_flags_and_goose_flags_parse_together() {
        let cli = Cli::try_parse_from([
            "authbench-goose",
            "--system",
            "jwt-hs256",
            "--instances",
            "3",
            "--users",
            "4",
            "-t",
            "3s",
            "--hatch-rate",
            "2",
            "--report-file",
            "r.html",
        ])
        .unwrap();
        assert_eq!(cli.system, System::JWT_HS256);
        assert_eq!(cli.instances, Some(3));
        assert_eq!(cli.lb, Lb::Sticky);
        assert_eq!(cli.goose.users, Some(4));
        assert_eq!(cli.goose.run_time.as_deref(), Some("3s"));
        assert_eq!(cli.goose.report_file, vec!["r.html".to_owned()]);
        assert_eq!(cli.goose_configuration().unwrap().increase_rate.as_deref(), Some("2"));
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Cli::try_parse_from(["authbench-goose", "--system", "jwt-none"]).is_err());
        assert!(Cli::try_parse_from(["authbench-goose", "--system", "jwt-hs256", "--instances", "0"]).is_err());
        assert!(Cli::try_parse_from(["authbench-goose", "--system", "jwt-hs256", "--no-such-flag"]).is_err());
        let both =
            Cli::try_parse_from(["authbench-goose", "--system", "jwt-hs256", "--hatch-rate", "1", "-r", "2"]).unwrap();
        assert!(both.goose_configuration().is_err());
    }
}
