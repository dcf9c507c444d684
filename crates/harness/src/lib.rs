//! `authbench`, the load harness. It answers "sessions or JWT, and what happens as we
//! scale out?" with measurements, following one pipeline per point:
//!
//! [`plan`] (what to measure) → [`deploy`] (start capped instances and the store, see
//! [`cgroup`]) → [`drive`] (the open-loop generator) → [`observe`] (CPU, memory, store
//! commands) → [`record`] (`results.json`, the summary table) → [`report`] (`report.md`,
//! `report.html` and the charts, rendered from `results.json` alone).
//!
//! [`sweep`] strings the steps together; [`load`] exposes the generator alone; [`revocation`]
//! and [`chaos`] are the two experiments that are not throughput sweeps. Start
//! reading at [`sweep::sweep`], then [`drive::engine`].

pub mod cgroup;
pub mod chaos;
pub mod cli;
pub mod deploy;
pub mod drive;
pub mod load;
pub mod observe;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod revocation;
pub mod sweep;
pub mod workload;
