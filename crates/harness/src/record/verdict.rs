//! The words a sweep records about its points, as types: how a point was loaded, which
//! workload ran, whether a rate held and why not, what a search step was, and the flags.
//!
//! The JSON keeps the sentences earlier runs wrote (`"p99 6.86 ms > SLO 5.00 ms"`,
//! `"final run did not hold: …"`), so every committed results file still reads and renders
//! the same; but the sentence is *made* from the typed value by `Display` and read back by
//! `FromStr` in this file only, with a round-trip test over every form. The report matches
//! variants, never text: rewording a message here changes what is written, and an old file
//! whose wording no longer parses fails to load with the sentence named, instead of
//! silently changing the report.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Serialize through `Display`, deserialize through `FromStr` (errors name the text).
macro_rules! serde_as_text {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// How a point's load was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PointMode {
    /// The highest rate the search found to hold.
    FindMax,
    /// A rate given with `--rate`, or half of what sticky held for a system that rejects
    /// most requests by design.
    FixedRate,
}

impl fmt::Display for PointMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            PointMode::FindMax => "find-max",
            PointMode::FixedRate => "fixed-rate",
        })
    }
}

/// The request mix of a sweep (`--workload`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// Authenticated `GET /me` only.
    #[default]
    Read,
    /// Mostly `/me`, with `/admin`, refresh rotation, logins and logouts.
    Mixed,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 2] = [WorkloadKind::Read, WorkloadKind::Mixed];

    pub fn id(self) -> &'static str {
        match self {
            WorkloadKind::Read => "read",
            WorkloadKind::Mixed => "mixed",
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.id())
    }
}

impl FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WorkloadKind::ALL.into_iter().find(|w| w.id() == s).ok_or_else(|| {
            let known: Vec<_> = WorkloadKind::ALL.iter().map(|w| w.id()).collect();
            format!("unknown --workload {s:?} (available: {})", known.join(", "))
        })
    }
}

/// Why a rate did not hold: the first criterion it failed, in the order they are judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Miss {
    /// The instances used ≥ 95 % of their combined CPU cap: the queue is growing even if a
    /// short window has not shown it in the latency yet.
    CpuCap { utilization: f64 },
    /// More than 1 % of requests failed.
    Errors { ratio: f64 },
    /// Less than 95 % of the offered rate was achieved.
    Throughput { achieved_rps: f64, offered_rps: f64 },
    /// p99 above the objective.
    Latency { p99_ms: f64, slo_ms: f64 },
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Miss::CpuCap { utilization } => write!(f, "instances at {:.0}% of their CPU cap", utilization * 100.0),
            Miss::Errors { ratio } => write!(f, "errors {:.2}% > 1%", ratio * 100.0),
            Miss::Throughput { achieved_rps, offered_rps } => {
                write!(f, "achieved {achieved_rps:.0} < 95% of {offered_rps:.0}")
            }
            Miss::Latency { p99_ms, slo_ms } => write!(f, "p99 {p99_ms:.2} ms > SLO {slo_ms:.2} ms"),
        }
    }
}

impl FromStr for Miss {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let num = |v: &str| v.trim().parse::<f64>().ok();
        let parsed = if let Some(rest) = s.strip_prefix("instances at ") {
            let pct = rest.strip_suffix("% of their CPU cap").and_then(num);
            pct.map(|p| Miss::CpuCap { utilization: p / 100.0 })
        } else if let Some(rest) = s.strip_prefix("errors ") {
            rest.strip_suffix("% > 1%").and_then(num).map(|p| Miss::Errors { ratio: p / 100.0 })
        } else if let Some(rest) = s.strip_prefix("achieved ") {
            rest.split_once(" < 95% of ")
                .and_then(|(a, o)| Some(Miss::Throughput { achieved_rps: num(a)?, offered_rps: num(o)? }))
        } else if let Some(rest) = s.strip_prefix("p99 ") {
            rest.strip_suffix(" ms")
                .and_then(|r| r.split_once(" ms > SLO "))
                .and_then(|(p, o)| Some(Miss::Latency { p99_ms: num(p)?, slo_ms: num(o)? }))
        } else {
            None
        };
        parsed.ok_or_else(|| format!("not a reason a rate did not hold: {s:?}"))
    }
}

/// Whether a rate held: errors ≤ 1 %, achieved ≥ 95 % of offered, p99 within the
/// objective and — when capped — the instances not pinned at their CPU cap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Held,
    Missed(Miss),
}

impl Verdict {
    pub fn held(&self) -> bool {
        matches!(self, Verdict::Held)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Held => f.write_str("held"),
            Verdict::Missed(m) => m.fmt(f),
        }
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "held" { Ok(Verdict::Held) } else { s.parse().map(Verdict::Missed) }
    }
}

/// What one recorded search step was (`why` in `results.json`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepOutcome {
    /// A search try and its verdict.
    Judged(Verdict),
    /// A latency miss while the instances had CPU to spare (`cpu` is their utilization):
    /// the same rate is tried once more, and the next step is that second try.
    TriedAgain { miss: Miss, cpu: f64 },
    /// The final, longer run missed at the rate the search held; it is run once more at
    /// 90 % of that rate.
    FinalRetry(Miss),
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepOutcome::Judged(v) => v.fmt(f),
            StepOutcome::TriedAgain { miss, cpu } => write!(f, "{miss}; at {:.0}% CPU, so tried again", cpu * 100.0),
            StepOutcome::FinalRetry(miss) => write!(f, "final run: {miss}; retrying at 90%"),
        }
    }
}

impl FromStr for StepOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let retried = || -> Option<StepOutcome> {
            if let Some(rest) = s.strip_prefix("final run: ") {
                return rest.strip_suffix("; retrying at 90%")?.parse().ok().map(StepOutcome::FinalRetry);
            }
            let (miss, cpu) = s.strip_suffix("% CPU, so tried again")?.rsplit_once("; at ")?;
            Some(StepOutcome::TriedAgain { miss: miss.parse().ok()?, cpu: cpu.parse::<f64>().ok()? / 100.0 })
        };
        if s.starts_with("final run: ") || s.ends_with("so tried again") {
            return retried().ok_or_else(|| format!("not a search step: {s:?}"));
        }
        s.parse().map(StepOutcome::Judged)
    }
}

/// Why a find-max search stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchEnd {
    /// The next try would have differed from the last by less than 3 %.
    Converged,
    /// Every try allowed (`--search-steps`) was used; the best rate that held stands.
    Budget,
    /// Every try allowed was used and every one held: no rate above was seen to fail, so
    /// the capacity is at least the best rate, not found (schema 2 on).
    Unbracketed,
    /// No try held; the final run measures half of the lowest rate that failed.
    NothingHeld,
}

/// A condition a point was measured under that its numbers must be read with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Flag {
    /// The load generator used more than 80 % of the CPU left to it.
    Generator,
    /// No CPU caps: N instances share the machine instead of being N small machines.
    Uncapped,
    /// An already-running deployment (`--target`): its caps, if any, are its own.
    External,
    /// The whole machine was more than 90 % busy.
    MachineSaturated,
    /// The final run missed even after the retry at 90 %.
    FinalRunMissed(Miss),
    /// `--store-rtt`: the round trip added under load was off its target by more than
    /// ±20 % or ±50 µs (whichever is larger), or could not be measured.
    StoreRttOff,
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Generator => f.write_str("generator"),
            Flag::Uncapped => f.write_str("uncapped"),
            Flag::External => f.write_str("external"),
            Flag::MachineSaturated => f.write_str("machine-saturated"),
            Flag::FinalRunMissed(m) => write!(f, "final run did not hold: {m}"),
            Flag::StoreRttOff => f.write_str("store-rtt-off"),
        }
    }
}

impl FromStr for Flag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "generator" => Flag::Generator,
            "uncapped" => Flag::Uncapped,
            "external" => Flag::External,
            "machine-saturated" => Flag::MachineSaturated,
            "store-rtt-off" => Flag::StoreRttOff,
            _ => match s.strip_prefix("final run did not hold: ") {
                Some(miss) => Flag::FinalRunMissed(miss.parse()?),
                None => return Err(format!("unknown point flag {s:?}")),
            },
        })
    }
}

serde_as_text!(Miss);
serde_as_text!(Verdict);
serde_as_text!(StepOutcome);
serde_as_text!(Flag);

/// The rig conditions among `flags`: a point with any of these describes the test rig as
/// much as the system.
pub fn rig_flag(f: &Flag) -> bool {
    matches!(f, Flag::Generator | Flag::Uncapped | Flag::MachineSaturated)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T>(text: &str)
    where
        T: FromStr<Err = String> + fmt::Display + fmt::Debug,
    {
        let v: T = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(v.to_string(), text, "{v:?}");
    }

    #[test]
    fn every_form_reads_back_as_it_was_written() {
        for miss in [
            "instances at 97% of their CPU cap",
            "errors 1.25% > 1%",
            "achieved 1840 < 95% of 2000",
            "p99 6.86 ms > SLO 5.00 ms",
            "p99 35.42 ms > SLO 5.00 ms",
        ] {
            round_trip::<Miss>(miss);
            round_trip::<Verdict>(miss);
            round_trip::<StepOutcome>(miss);
            round_trip::<StepOutcome>(&format!("final run: {miss}; retrying at 90%"));
            round_trip::<StepOutcome>(&format!("{miss}; at 41% CPU, so tried again"));
            round_trip::<Flag>(&format!("final run did not hold: {miss}"));
        }
        round_trip::<StepOutcome>("held");
        for flag in ["generator", "uncapped", "external", "machine-saturated"] {
            round_trip::<Flag>(flag);
        }
    }

    #[test]
    fn the_typed_value_is_what_the_text_says() {
        assert_eq!(
            "p99 6.86 ms > SLO 5.00 ms; at 41% CPU, so tried again".parse::<StepOutcome>(),
            Ok(StepOutcome::TriedAgain { miss: Miss::Latency { p99_ms: 6.86, slo_ms: 5.0 }, cpu: 0.41 })
        );
        assert_eq!(
            "final run did not hold: instances at 97% of their CPU cap".parse::<Flag>(),
            Ok(Flag::FinalRunMissed(Miss::CpuCap { utilization: 0.97 }))
        );
        assert_eq!("held".parse::<Verdict>(), Ok(Verdict::Held));
        assert_eq!(serde_json::to_string(&PointMode::FindMax).unwrap(), "\"find-max\"");
        assert_eq!(serde_json::to_string(&WorkloadKind::Mixed).unwrap(), "\"mixed\"");
        assert_eq!(serde_json::to_string(&Flag::MachineSaturated).unwrap(), "\"machine-saturated\"");
    }

    #[test]
    fn text_that_is_no_known_form_is_refused_with_the_text() {
        for bad in ["p99 high", "final run: held; retrying at 90%", "errors 2% > 5%", "", "tried again"] {
            let e = bad.parse::<StepOutcome>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!("final run did not hold: because".parse::<Flag>().is_err());
        assert!("slow".parse::<Flag>().unwrap_err().contains("unknown point flag"));
        assert!(serde_json::from_str::<Flag>("\"fast\"").is_err());
        assert!("write".parse::<WorkloadKind>().unwrap_err().contains("unknown --workload"));
    }
}
