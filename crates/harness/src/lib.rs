//! `authbench`, the load harness. It answers "sessions or JWT, and what happens as we
//! scale out?" with measurements, following one pipeline per point:
//!
//! [`plan`] (what to measure, and the systems' identities) → [`deploy`] (start capped
//! instances and the store, see [`cgroup`]) → [`drive`] (the open-loop generator) →
//! [`observe`] (CPU, memory, store commands) → [`record`] (the result files' schemas, a
//! point from a measured window, the summary table) → [`report`] (`report.md`,
//! `report.html` and the charts, rendered from the result files alone).
//!
//! [`experiment`] is the run loop the three experiments share: [`sweep`] (throughput
//! against N; its find-max decisions are the pure [`sweep::search`]), [`revocation`] and
//! [`chaos`]. [`load`] exposes the generator alone; [`merge`] adds up several
//! generators' `load --hlog` files. `ARCHITECTURE.md` at the repository's
//! root maps the pipeline to the files. Start reading at [`sweep::sweep`], then
//! [`drive::engine`].

pub mod advise;
pub mod calibrate;
pub mod cgroup;
pub mod chaos;
pub mod cli;
pub mod deploy;
pub mod drive;
pub mod experiment;
pub mod load;
pub mod merge;
pub mod observe;
pub mod peers;
pub mod plan;
pub mod progress;
pub mod record;
pub mod report;
pub mod revocation;
pub mod sweep;
pub mod workload;

/// Input refused before anything started (a configuration that cannot be measured, a
/// `--target` that is not what it is said to be): the command exits 2, like a bad flag.
#[derive(Debug)]
pub struct Refused(pub anyhow::Error);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Refused {}
