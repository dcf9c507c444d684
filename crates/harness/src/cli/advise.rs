//! `authbench advise`'s flags: the user's deployment and requirements.

use std::{path::PathBuf, time::Duration};

use clap::Args;

use super::parse::{duration, duration_or_zero, positive};
use crate::{advise::Params, workload::profile::UserProfile};

#[derive(Debug, Args)]
pub struct AdviseArgs {
    /// The run directory whose measurements the answer rests on (its results.json, and
    /// revocation.json and chaos.json when there).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,

    /// A mixed run to take the per-route costs (logins, refreshes) from, when --from has
    /// none.
    #[arg(long, value_name = "DIR")]
    pub mix_from: Option<PathBuf>,

    /// Authenticated requests per second at the peak.
    #[arg(long, value_parser = positive)]
    pub peak_rps: f64,

    /// Cores per instance.
    #[arg(long, default_value = "1", value_parser = positive)]
    pub instance_cores: f64,

    /// The application's own CPU per request on top of authentication (e.g. 0, 300us, 1ms).
    #[arg(long, default_value = "0", value_parser = duration_or_zero)]
    pub app_cpu: Duration,

    /// Network round trip from an instance to the store, paid per store call (e.g. 500us).
    #[arg(long, default_value = "0", value_parser = duration_or_zero)]
    pub store_rtt: Duration,

    /// The longest a logged-out credential may keep working (e.g. 0s, 1s, 5m); omitted:
    /// no requirement.
    #[arg(long, value_parser = duration_or_zero)]
    pub revocation_window: Option<Duration>,

    /// Access-token lifetime: how long a JWT without a denylist outlives a logout, and one
    /// refresh per lifetime per signed-in user.
    #[arg(long, default_value = "5m", value_parser = duration)]
    pub access_ttl: Duration,

    /// How long a user stays signed in (one login per session).
    #[arg(long, default_value = "30m", value_parser = duration)]
    pub session_length: Duration,

    /// Authenticated requests a signed-in user makes per minute.
    #[arg(long, default_value_t = 20.0, value_parser = positive)]
    pub requests_per_user_per_minute: f64,

    /// The service must keep answering while the session store is down.
    #[arg(long)]
    pub survive_store_outage: bool,

    /// Live sessions to hold (default: the signed-in users the peak implies).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub live_sessions: Option<u64>,

    /// p99 objective of an authenticated read, application included (e.g. 50ms).
    #[arg(long, value_parser = duration)]
    pub slo_p99: Option<Duration>,

    /// Requests per day, for credential bytes on the wire (default: the peak all day).
    #[arg(long, value_parser = positive)]
    pub requests_per_day: Option<f64>,

    /// Utilization every resource is sized to (between 0 and 1).
    #[arg(long, default_value = "0.7", value_parser = utilization)]
    pub target_utilization: f64,

    /// Print the answer as JSON.
    #[arg(long)]
    pub json: bool,
}

fn utilization(s: &str) -> Result<f64, String> {
    let v = positive(s)?;
    if v >= 1.0 {
        return Err("must be below 1 (a resource sized to 100% busy has no room for a queue)".into());
    }
    Ok(v)
}

impl AdviseArgs {
    pub fn params(&self) -> Params {
        Params {
            peak_rps: self.peak_rps,
            instance_cores: self.instance_cores,
            app_cpu: self.app_cpu,
            store_rtt: self.store_rtt,
            revocation: self.revocation_window,
            profile: UserProfile {
                session_length: self.session_length,
                requests_per_minute: self.requests_per_user_per_minute,
                access_ttl: self.access_ttl,
            },
            survive_store_outage: self.survive_store_outage,
            live_sessions: self.live_sessions,
            slo_p99: self.slo_p99,
            requests_per_day: self.requests_per_day,
            target_utilization: self.target_utilization,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        advise: AdviseArgs,
    }

    #[test]
    fn defaults_and_units() {
        let cli = Cli::try_parse_from(["x", "--from", "d", "--peak-rps", "1000", "--revocation-window", "0s"]).unwrap();
        let p = cli.advise.params();
        assert_eq!(p.revocation, Some(Duration::ZERO));
        assert_eq!((p.instance_cores, p.target_utilization), (1.0, 0.7));
        assert_eq!(p.profile, UserProfile::WEB_APP);
        assert!(p.app_cpu.is_zero() && p.store_rtt.is_zero());
    }

    #[test]
    fn bad_input_is_refused_with_exit_2() {
        for args in [
            vec!["--peak-rps", "-5"],
            vec!["--peak-rps", "0"],
            vec!["--peak-rps", "lots"],
            vec!["--peak-rps", "10", "--revocation-window", "5"],
            vec!["--peak-rps", "10", "--app-cpu", "1 fortnight"],
            vec!["--peak-rps", "10", "--app-cpu", "-1ms"],
            vec!["--peak-rps", "10", "--store-rtt", "500"],
            vec!["--peak-rps", "10", "--instance-cores", "-2"],
            vec!["--peak-rps", "10", "--target-utilization", "1.2"],
            vec!["--peak-rps", "10", "--session-length", "0s"],
            vec!["--peak-rps", "10", "--live-sessions", "0"],
            vec![],
        ] {
            let argv: Vec<&str> = ["x", "--from", "d"].into_iter().chain(args.iter().copied()).collect();
            let err = Cli::try_parse_from(&argv).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
