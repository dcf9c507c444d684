//! `peers.json` (every round as measured) and `peers.md` (the ratio table), rendered from
//! the JSON alone so a committed table can be re-made byte for byte.

use std::{fmt::Write as _, path::Path};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::{PAIRS, Pair};
use crate::record::{Machine, calibration::Probe, median};

pub const FILE_JSON: &str = "peers.json";
pub const FILE_MD: &str = "peers.md";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Ours,
    Peer,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::Peer => "peer",
        }
    }
}

/// One measurement of one side of one pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub pair: String,
    pub side: Side,
    /// 1-based.
    pub round: usize,
    /// Answers (all 200) per second over the window.
    pub rps: f64,
    /// The server process's CPU time over the window ÷ answers, µs.
    pub cpu_us_per_request: f64,
    /// The server's CPU time ÷ the window: how much of its cap it used.
    pub server_cores: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Redis commands per answer (the Redis pair only).
    pub store_commands_per_request: Option<f64>,
    /// Redis CPU per answer, µs (the Redis pair only).
    pub store_cpu_us_per_request: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeersResults {
    pub machine: Machine,
    pub calibration: Probe,
    pub rounds_per_pair: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub connections: usize,
    /// Each server's CPU cap; `null`: uncapped.
    pub cores: Option<f64>,
    pub wall_s: f64,
    pub pairs: Vec<String>,
    pub rounds: Vec<Round>,
}

impl PeersResults {
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)? + "\n";
        std::fs::write(dir.join(FILE_JSON), json).with_context(|| format!("cannot write {FILE_JSON}"))?;
        self.write_md(dir)
    }

    /// `peers.md` alone (`authbench peers --render`: the JSON stays as measured).
    pub fn write_md(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(dir.join(FILE_MD), render(self)).with_context(|| format!("cannot write {FILE_MD}"))
    }

    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(FILE_JSON);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a peers run", path.display()))
    }

    fn side(&self, pair: &str, side: Side) -> impl Iterator<Item = &Round> {
        self.rounds.iter().filter(move |r| r.pair == pair && r.side == side)
    }
}

/// What the table says of one pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub ours_rps: f64,
    pub peer_rps: f64,
    /// Median of ours ÷ median of the peer.
    pub ratio: f64,
    /// Smallest and largest per-round ratio (round r of ours ÷ round r of the peer).
    pub ratio_range: (f64, f64),
    pub ours_cpu_us: f64,
    pub peer_cpu_us: f64,
    /// Smallest server utilization of any round of either side, in cores.
    pub min_server_cores: f64,
}

pub fn figures(results: &PeersResults, pair: &str) -> Option<Figures> {
    let med = |side, f: fn(&Round) -> f64| median(results.side(pair, side).map(f).collect());
    let ours_rps = med(Side::Ours, |r| r.rps)?;
    let peer_rps = med(Side::Peer, |r| r.rps)?;
    let per_round: Vec<f64> = results
        .side(pair, Side::Ours)
        .filter_map(|o| results.side(pair, Side::Peer).find(|p| p.round == o.round).map(|p| o.rps / p.rps))
        .collect();
    let lo = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min_server_cores =
        results.rounds.iter().filter(|r| r.pair == pair).map(|r| r.server_cores).fold(f64::INFINITY, f64::min);
    Some(Figures {
        ours_rps,
        peer_rps,
        ratio: ours_rps / peer_rps,
        ratio_range: (lo, hi),
        ours_cpu_us: med(Side::Ours, |r| r.cpu_us_per_request)?,
        peer_cpu_us: med(Side::Peer, |r| r.cpu_us_per_request)?,
        min_server_cores,
    })
}

fn known(id: &str) -> Option<&'static Pair> {
    PAIRS.iter().find(|p| p.id == id)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.filter(|v| v.is_finite()).map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The markdown table: a function of `results` alone.
pub fn render(results: &PeersResults) -> String {
    let mut out = String::new();
    let m = &results.machine;
    let cap = results.cores.map_or_else(|| "uncapped".to_owned(), |c| format!("capped at {c} core each"));
    let _ = writeln!(out, "# Our servers beside what users would build instead\n");
    let _ = writeln!(
        out,
        "Made by `authbench peers` on {} ({} cores, kernel {}); calibration: CPU loop {:.0} µs, loopback round \
         trip {:.1} µs. Each server a fresh process, {cap}, one credential from its own `/login`; a closed loop of \
         {} keep-alive connections, {:.0} s warm-up then {:.0} s measured; {} interleaved rounds per pair \
         ({:.0} s in all). Every answer was a 200.\n",
        m.cpu_model,
        m.cores,
        m.kernel,
        results.calibration.cpu_loop_us,
        results.calibration.loopback_rtt_us,
        results.connections,
        results.warmup_s,
        results.duration_s,
        results.rounds_per_pair,
        results.wall_s,
    );
    let _ = writeln!(
        out,
        "Throughput is answers per second (median of the rounds); the ratio is ours ÷ the peer's median, with the \
         range of the per-round ratios. CPU per request is the server process's CPU time over the window ÷ its \
         answers: it does not depend on how fast the generator is, so it is the figure that transfers. Compare \
         only within this table: it names one machine.\n"
    );
    let _ = writeln!(
        out,
        "| pair | path | ours req/s | peer req/s | ours ÷ peer | per-round range | goal | ours CPU µs/req | peer \
         CPU µs/req | CPU ratio |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|---:|---:|---:|---:|");
    let mut notes = Vec::new();
    for id in &results.pairs {
        let Some(pair) = known(id) else { continue };
        let Some(f) = figures(results, id) else { continue };
        let met = if f.ratio >= pair.goal { "met" } else { "**not met**" };
        let _ = writeln!(
            out,
            "| {} vs {} | `{}` | {:.0} | {:.0} | **{:.2}×** | {:.2}–{:.2} | ≥ {:.2}× {met} | {:.2} | {:.2} | {:.2}× |",
            pair.ours_label,
            pair.peer_label,
            pair.path,
            f.ours_rps,
            f.peer_rps,
            f.ratio,
            f.ratio_range.0,
            f.ratio_range.1,
            pair.goal,
            f.ours_cpu_us,
            f.peer_cpu_us,
            f.ours_cpu_us / f.peer_cpu_us,
        );
        if let Some(cap) = results.cores
            && f.min_server_cores < 0.9 * cap
        {
            notes.push(format!(
                "- {}: a server used only {:.2} of its {cap} core in some round, so the generator, not the server, \
                 set that round's throughput; read the CPU columns for this pair.",
                pair.id, f.min_server_cores
            ));
        }
    }
    let _ = writeln!(out);
    let redis: Vec<&Round> = results.rounds.iter().filter(|r| r.store_commands_per_request.is_some()).collect();
    if !redis.is_empty() {
        let _ = writeln!(out, "The store, for the Redis pair (medians over the rounds):\n");
        let _ = writeln!(out, "| side | Redis commands per request | Redis CPU µs per request |");
        let _ = writeln!(out, "|---|---:|---:|");
        for side in [Side::Ours, Side::Peer] {
            let rows: Vec<&&Round> = redis.iter().filter(|r| r.side == side).collect();
            let cmds = median(rows.iter().filter_map(|r| r.store_commands_per_request).collect());
            let cpu = median(rows.iter().filter_map(|r| r.store_cpu_us_per_request).collect());
            let _ = writeln!(out, "| {} | {} | {} |", side.as_str(), opt(cmds, 2), opt(cpu, 2));
        }
        let _ = writeln!(out);
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "{}\n", notes.join("\n"));
    }
    let _ = writeln!(out, "## What each pair does differently\n");
    for id in &results.pairs {
        if let Some(pair) = known(id) {
            let _ = writeln!(out, "- **{}** vs {}: {}", pair.ours_label, pair.peer_label, pair.differences);
        }
    }
    let _ = writeln!(out, "\n## Every round\n");
    let _ = writeln!(out, "| pair | round | side | req/s | CPU µs/req | server cores | p50 ms | p99 ms |");
    let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|");
    for r in &results.rounds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.3} | {:.3} |",
            r.pair,
            r.round,
            r.side.as_str(),
            r.rps,
            r.cpu_us_per_request,
            r.server_cores,
            r.p50_ms,
            r.p99_ms
        );
    }
    out
}
