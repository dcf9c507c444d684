//! Per-route figures of a mixed run: one route's share of a window, and one route's
//! service demand measured alone.

use serde::{Deserialize, Serialize};

use super::unknown;
use crate::{
    drive::{
        histogram::LatencySummary,
        route::{Route, RouteOutcome},
    },
    plan::System,
};

/// One route's service demand: the route alone, open loop at about half the instances' cap.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RouteDemand {
    pub system: System,
    pub instances: usize,
    pub route: Route,
    pub offered_rps: f64,
    pub achieved_rps: f64,
    /// Requests to `route` in the window.
    pub requests: u64,
    /// Requests that went out as another route (a refresh with no token left is sent as
    /// `/me`): their CPU is in the figures too, so this should be 0.
    pub other_requests: u64,
    pub errors: u64,
    #[serde(with = "unknown")]
    pub instance_utilization: f64,
    /// Instance CPU per completed request, µs.
    #[serde(with = "unknown")]
    pub instance_us: f64,
    /// Store CPU per completed request, µs (store-backed systems).
    pub store_us: Option<f64>,
    pub store_commands: Option<f64>,
    pub latency_us: LatencySummary,
}

/// One route's share of a window.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RouteStats {
    pub requests: u64,
    /// Requests that failed: a status ≥ 400, a timeout, a broken or refused connection.
    pub errors: u64,
    pub latency_us: LatencySummary,
    /// HdrHistogram V2 + DEFLATE, base64 (latency in µs).
    pub histogram: String,
}

impl RouteStats {
    pub fn of(o: &RouteOutcome) -> Self {
        Self {
            requests: o.requests,
            errors: o.failed,
            latency_us: o.latency.summary(),
            histogram: o.latency.to_base64(),
        }
    }

    pub fn error_ratio(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }
}
