//! The three documented example profiles (docs/advise.md) the report answers.

use super::Params;
use crate::workload::profile::UserProfile;

/// The three documented example profiles the report renders (docs/advise.md).
pub fn examples() -> [(&'static str, Params); 3] {
    use std::time::Duration as D;
    let web = UserProfile::WEB_APP;
    [
        (
            "A small internal app",
            Params {
                peak_rps: 50.0,
                instance_cores: 1.0,
                app_cpu: D::from_millis(2),
                store_rtt: D::from_micros(500),
                revocation: None,
                profile: UserProfile { session_length: D::from_secs(8 * 3600), requests_per_minute: 6.0, ..web },
                survive_store_outage: false,
                live_sessions: None,
                slo_p99: Some(D::from_millis(200)),
                requests_per_day: Some(50.0 * 8.0 * 3600.0 / 4.0),
                target_utilization: 0.7,
            },
        ),
        (
            "A large public API needing 1 s revocation",
            Params {
                peak_rps: 20_000.0,
                instance_cores: 2.0,
                app_cpu: D::from_micros(200),
                store_rtt: D::from_micros(500),
                revocation: Some(D::from_secs(1)),
                profile: web,
                survive_store_outage: false,
                live_sessions: None,
                slo_p99: Some(D::from_millis(50)),
                requests_per_day: Some(20_000.0 * 86_400.0 * 0.4),
                target_utilization: 0.7,
            },
        ),
        (
            "A high-traffic read-mostly service (app CPU 1 ms)",
            Params {
                peak_rps: 50_000.0,
                instance_cores: 4.0,
                app_cpu: D::from_millis(1),
                store_rtt: D::from_micros(300),
                revocation: None,
                profile: UserProfile {
                    session_length: D::from_secs(2 * 3600),
                    requests_per_minute: 60.0,
                    access_ttl: D::from_secs(15 * 60),
                },
                survive_store_outage: true,
                live_sessions: None,
                slo_p99: None,
                requests_per_day: Some(50_000.0 * 86_400.0 * 0.4),
                target_utilization: 0.7,
            },
        ),
    ]
}
