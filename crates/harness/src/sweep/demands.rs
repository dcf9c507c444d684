//! Per-route service demands (mixed runs): each system's instance and store CPU per request
//! of reads, refreshes (JWT) and logins, each route measured alone. A first short window
//! at a low rate gives the route's CPU per request D₀; the measured window then runs at
//! the rate the utilization law puts at [`TARGET`] of the instances' cap (X = U / D₀), so
//! every route is measured at the same moderate load, however dear it is.

use super::Run;
use crate::{
    deploy::Deployment,
    drive::route::Route,
    plan::{Lb, Server, Step},
    record::{PointMode, RouteDemand, WorkloadKind, point},
    workload::{Credential, MixSetup, MixedWorkload, profile::Mix},
};

/// The instances' utilization each route's measured window aims at.
pub const TARGET: f64 = 0.5;

/// Rate of the first, short window per instance: low enough for a login at 0.1 core.
fn first_rate(route: Route) -> f64 {
    match route {
        Route::Login => 2.0,
        Route::Refresh => 50.0,
        _ => 200.0,
    }
}

impl Run {
    /// Whether this step measures the per-route demands: mixed runs, each system once,
    /// at the smallest N, on the main line, in the first round.
    pub(super) fn wants_demands(&self, step: &Step) -> bool {
        self.config.workload == WorkloadKind::Mixed
            && self.round == 1
            && !self.config.external()
            && !step.system.is_control()
            && step.live_sessions.is_none()
            && step.store_cpu.is_none()
            && step.store_rtt.is_none()
            && step.store_shards.is_none_or(|s| s == self.config.store_shards.first().copied().unwrap_or(1))
            && self.config.instances.iter().min() == Some(&step.instances)
            && !self.results.route_demands.iter().any(|d| d.system == step.system)
    }

    /// The mixed workload over `creds` with `mix`, its reads spread over the profile's
    /// active users for each run's rate.
    pub(super) fn mixed_workload(
        &self,
        step: &Step,
        creds: &[Credential],
        lb: Lb,
        mix: Mix,
    ) -> anyhow::Result<std::sync::Arc<MixedWorkload>> {
        let setup = MixSetup {
            mix,
            demo_users: self.demo_users(),
            password: &self.config.demo_password,
            users_per_rps: Some(self.config.user_profile().users_per_rps()),
        };
        MixedWorkload::new(step.system, creds, lb, step.instances, setup)
    }

    /// Measure each route of `step`'s system alone, with the credentials the point used.
    pub(super) async fn route_demands(
        &self,
        step: &Step,
        lb: Lb,
        deployment: &Deployment,
        creds: &[Credential],
    ) -> anyhow::Result<Vec<RouteDemand>> {
        let mut routes = vec![Route::Me];
        if step.system.server() == Server::Jwt {
            routes.push(Route::Refresh);
        }
        routes.push(Route::Login);
        let n = step.instances as f64;
        let cap = self.config.instance_cpu * n;
        let mut out = Vec::new();
        for route in routes {
            let work = self.mixed_workload(step, creds, lb, Mix::only(route))?;
            let low = first_rate(route) * n;
            let short = (self.config.step_warmup(), self.config.step_duration);
            let label = |rate: f64| format!("{} alone @ {rate:.0} rps", route.path());
            // Not lengthened for --min-requests: a few dozen logins give their CPU per
            // request well (CPU is summed over the window), and thousands would take minutes.
            let first = self.measure_window(deployment, &work, low, label(low), short).await?;
            let p = point::build(&first.window(step, lb, WorkloadKind::Mixed, PointMode::FixedRate), &self.rig());
            let d0 = p.cpu.per_request_us / 1e6;
            let rate = if d0.is_finite() && d0 > 0.0 { (TARGET * cap / d0).max(low * 0.5) } else { low };
            let full = (self.config.warmup, self.config.duration);
            let fixed = self.measure_window(deployment, &work, rate, label(rate), full).await?;
            let p = point::build(&fixed.window(step, lb, WorkloadKind::Mixed, PointMode::FixedRate), &self.rig());
            let mine = p.routes.get(&route);
            out.push(RouteDemand {
                system: step.system,
                instances: step.instances,
                route,
                offered_rps: rate,
                achieved_rps: p.achieved_rps,
                requests: mine.map_or(0, |r| r.requests),
                other_requests: p.routes.iter().filter(|(r, _)| **r != route).map(|(_, s)| s.requests).sum(),
                errors: mine.map_or(0, |r| r.errors),
                instance_utilization: p.cpu.instance_utilization,
                instance_us: p.cpu.per_request_us,
                store_us: p.cpu.store_per_request_us,
                store_commands: p.store.as_ref().map(|s| s.commands_per_request),
                latency_us: mine.map(|r| r.latency_us).unwrap_or_default(),
            });
        }
        Ok(out)
    }
}
