//! The mixed workload's request mix, derived from how users behave instead of fixed
//! percentages: a user logs in, makes `requests_per_minute` authenticated reads for
//! `session_length`, refreshes the access token once per `access_ttl` (JWT), and logs out.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{drive::route::Route, plan::Server};

/// How a service's users behave (`--session-length`, `--requests-per-user-per-minute`,
/// `--access-ttl`); recorded as `config.profile` by mixed runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    /// From login to logout.
    #[serde(with = "crate::record::secs")]
    pub session_length: Duration,
    /// Authenticated reads (`/me`, `/admin`) a signed-in user makes per minute.
    pub requests_per_minute: f64,
    /// Access-token lifetime of the JWT servers: one refresh per lifetime per user.
    #[serde(with = "crate::record::secs")]
    pub access_ttl: Duration,
}

/// Share of the reads that go to `/admin`, all by admins (every tenth demo user).
pub const ADMIN_SHARE: f64 = 0.05;

impl UserProfile {
    /// The documented default: a web app whose users make 20 requests a minute in
    /// 30-minute sessions, with 5-minute access tokens.
    pub const WEB_APP: UserProfile = UserProfile {
        session_length: Duration::from_secs(30 * 60),
        requests_per_minute: 20.0,
        access_ttl: Duration::from_secs(5 * 60),
    };

    /// Reads one session makes: requests per minute × session length.
    pub fn reads_per_session(&self) -> f64 {
        self.requests_per_minute * self.session_length.as_secs_f64() / 60.0
    }

    /// Refreshes one session makes on a JWT server: the access token issued at login runs
    /// out every `access_ttl`, and each time the session still goes on it is refreshed
    /// (⌈length / ttl⌉ − 1; none for a session shorter than a token's lifetime). Session
    /// servers have no refresh: their sliding expiry is written by the reads.
    pub fn refreshes_per_session(&self, server: Server) -> f64 {
        match server {
            Server::Session => 0.0,
            Server::Jwt => {
                let ratio = self.session_length.as_secs_f64() / self.access_ttl.as_secs_f64();
                // A float ratio a hair above a whole number (30 min / 5 min) is that number.
                ((ratio - 1e-9).ceil() - 1.0).max(0.0)
            }
        }
    }

    /// Active (signed-in) users behind one request per second of reads.
    pub fn users_per_rps(&self) -> f64 {
        60.0 / self.requests_per_minute
    }

    /// The share of requests each route gets on a `server`.
    pub fn mix(&self, server: Server) -> Mix {
        let reads = self.reads_per_session();
        let refresh = self.refreshes_per_session(server);
        let total = reads + refresh + 2.0;
        Mix {
            me: reads * (1.0 - ADMIN_SHARE) / total,
            admin: reads * ADMIN_SHARE / total,
            refresh: refresh / total,
            login: 1.0 / total,
            logout: 1.0 / total,
        }
    }
}

/// Shares of the requests per route (they add up to 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mix {
    pub me: f64,
    pub admin: f64,
    pub refresh: f64,
    pub login: f64,
    pub logout: f64,
}

/// Resolution of a request's position in the mix: parts per million.
pub const PPM: u64 = 1_000_000;

impl Mix {
    /// Upper bounds, in parts per million, of the positions sent to `/me`, `/admin`,
    /// `/refresh` and `/logout` (the rest, up to [`PPM`], is `/login`). Logins and logouts
    /// keep at least one part each, so a mix never rounds them away.
    pub fn bounds(&self) -> [u64; 4] {
        let ppm = |share: f64| (share * PPM as f64).round() as u64;
        let at_least_one = |share: f64| if share > 0.0 { ppm(share).max(1) } else { 0 };
        let login = at_least_one(self.login);
        let logout = at_least_one(self.logout);
        let refresh = ppm(self.refresh);
        let admin = ppm(self.admin);
        let me = PPM.saturating_sub(login + logout + refresh + admin);
        [me, me + admin, me + admin + refresh, me + admin + refresh + logout]
    }

    /// Every request to one route (the per-route service demands measure each alone).
    pub fn only(route: Route) -> Mix {
        let one = |r: Route| if r == route { 1.0 } else { 0.0 };
        Mix {
            me: one(Route::Me),
            admin: one(Route::Admin),
            refresh: one(Route::Refresh),
            login: one(Route::Login),
            logout: one(Route::Logout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_app_profile_derives_its_mix() {
        let p = UserProfile::WEB_APP;
        assert_eq!(p.reads_per_session(), 600.0);
        assert_eq!(p.refreshes_per_session(Server::Jwt), 5.0, "refreshed at 5, 10, 15, 20 and 25 minutes");
        assert_eq!(p.refreshes_per_session(Server::Session), 0.0);
        assert_eq!(p.users_per_rps(), 3.0);
        let jwt = p.mix(Server::Jwt);
        assert!((jwt.login - 1.0 / 607.0).abs() < 1e-12);
        assert!((jwt.refresh - 5.0 / 607.0).abs() < 1e-12);
        assert!((jwt.admin - 30.0 / 607.0).abs() < 1e-12);
        let total = jwt.me + jwt.admin + jwt.refresh + jwt.login + jwt.logout;
        assert!((total - 1.0).abs() < 1e-12);
        let session = p.mix(Server::Session);
        assert_eq!(session.refresh, 0.0);
        assert!((session.logout - 1.0 / 602.0).abs() < 1e-12);
    }

    #[test]
    fn a_session_shorter_than_a_token_has_no_refresh_and_a_longer_one_refreshes_per_lifetime() {
        let short = UserProfile { session_length: Duration::from_secs(120), ..UserProfile::WEB_APP };
        assert_eq!(short.refreshes_per_session(Server::Jwt), 0.0);
        let eight_hours = UserProfile { session_length: Duration::from_secs(8 * 3600), ..UserProfile::WEB_APP };
        assert_eq!(eight_hours.refreshes_per_session(Server::Jwt), 95.0);
        let odd = UserProfile { session_length: Duration::from_secs(11 * 60), ..UserProfile::WEB_APP };
        assert_eq!(odd.refreshes_per_session(Server::Jwt), 2.0, "refreshed at 5 and 10 minutes");
        // A shorter token lifetime shows up as more refreshes, i.e. more signing.
        let one_minute = UserProfile { access_ttl: Duration::from_secs(60), ..UserProfile::WEB_APP };
        assert!(one_minute.mix(Server::Jwt).refresh > 5.0 * UserProfile::WEB_APP.mix(Server::Jwt).refresh);
    }

    #[test]
    fn bounds_cover_a_million_in_route_order_and_never_lose_a_login() {
        let [me, admin, refresh, logout] = UserProfile::WEB_APP.mix(Server::Jwt).bounds();
        assert!(me < admin && admin < refresh && refresh < logout && logout < PPM);
        assert_eq!(PPM - logout, (PPM as f64 / 607.0).round() as u64, "the login share");
        // A marathon session: its one login is 1 in 10⁷ requests, still one part per million.
        let long = UserProfile {
            session_length: Duration::from_secs(500 * 3600),
            requests_per_minute: 300.0,
            ..UserProfile::WEB_APP
        };
        let b = long.mix(Server::Session).bounds();
        assert_eq!(PPM - b[3], 1);
        assert_eq!(b[3] - b[2], 1);
        assert_eq!(b[2], b[1], "a session server has no refresh");
    }

    #[test]
    fn a_mix_of_one_route_sends_only_that_route() {
        assert_eq!(Mix::only(Route::Refresh).bounds(), [0, 0, PPM, PPM], "every position is a refresh");
        assert_eq!(Mix::only(Route::Login).bounds(), [0, 0, 0, 0], "every position is a login");
        assert_eq!(Mix::only(Route::Me).bounds(), [PPM; 4]);
    }
}
