//! `sweep`'s flags for the mixed workload: the user behaviour its mix is derived from, and
//! the objective of each route class.

use std::time::Duration;

use clap::Args;

use super::parse::{duration, positive};
use crate::{drive::route::Objectives, workload::profile::UserProfile};

#[derive(Debug, Args)]
pub struct MixArgs {
    /// Mixed workload: how long a user stays signed in, login to logout (one of each per
    /// session).
    #[arg(long, env = "AUTHBENCH_SESSION_LENGTH", default_value = "30m", value_parser = duration)]
    pub session_length: Duration,

    /// Mixed workload: authenticated reads (/me, 5% of them /admin by admins) a signed-in
    /// user makes per minute.
    #[arg(long, env = "AUTHBENCH_REQUESTS_PER_USER_PER_MINUTE", default_value_t = 20.0, value_parser = positive)]
    pub requests_per_user_per_minute: f64,

    /// Mixed workload: access-token lifetime the JWT refreshes follow (one refresh per
    /// lifetime per signed-in user; a session shorter than it has none).
    #[arg(long = "access-ttl", env = "AUTHBENCH_MIX_ACCESS_TTL", default_value = "5m", value_parser = duration)]
    pub access_ttl: Duration,

    /// Mixed workload: p99 objective of /refresh and /logout (reads are judged by
    /// --slo-p99).
    #[arg(long, env = "AUTHBENCH_SLO_WRITE", default_value = "50ms", value_parser = duration)]
    pub slo_write: Duration,

    /// Mixed workload: p99 objective of /login (an argon2id hash each).
    #[arg(long, env = "AUTHBENCH_SLO_LOGIN", default_value = "1s", value_parser = duration)]
    pub slo_login: Duration,
}

impl MixArgs {
    pub fn profile(&self) -> UserProfile {
        UserProfile {
            session_length: self.session_length,
            requests_per_minute: self.requests_per_user_per_minute,
            access_ttl: self.access_ttl,
        }
    }

    pub fn objectives(&self, read: Duration) -> Objectives {
        Objectives { read, write: self.slo_write, login: self.slo_login }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        mix: MixArgs,
    }

    #[test]
    fn the_defaults_are_the_web_app_profile_and_the_documented_objectives() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.mix.profile(), UserProfile::WEB_APP);
        let o = cli.mix.objectives(Duration::from_millis(5));
        assert_eq!((o.write, o.login), (Objectives::WRITE, Objectives::LOGIN));
    }

    #[test]
    fn bad_profiles_and_objectives_are_refused() {
        for args in [
            ["x", "--slo-login", "2"],
            ["x", "--session-length", "0s"],
            ["x", "--session-length", "-5m"],
            ["x", "--requests-per-user-per-minute", "0"],
            ["x", "--access-ttl", "soon"],
        ] {
            let err = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        // A session shorter than a token's lifetime is valid: it has no refreshes.
        let cli = Cli::try_parse_from(["x", "--session-length", "1m"]).unwrap();
        assert_eq!(cli.mix.profile().refreshes_per_session(crate::plan::Server::Jwt), 0.0);
    }
}
