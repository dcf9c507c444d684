//! CPU caps. Each instance and the store run in their own cgroup with a CPU quota, so N
//! instances on a 2-core machine behave like N small machines instead of N processes
//! sharing the same two cores (which would make "scaling out" meaningless).
//!
//! cgroup v2 (`cpu.max`) and v1 (`cpu.cfs_quota_us`) are both supported. A short period
//! (10 ms by default) keeps throttling from dominating the median: with the kernel's
//! default 100 ms, a capped instance can be frozen for 90 ms at a time.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Flavor {
    V2,
    V1,
}

/// The run's own cgroup directory; children are created inside it.
#[derive(Debug)]
pub struct CgroupRoot {
    dir: PathBuf,
    flavor: Flavor,
    period: Duration,
    burst: f64,
}

/// One capped group (an instance or the store).
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    flavor: Flavor,
    period: Duration,
    /// Unused quota a group may save for later, as a fraction of its quota.
    burst: f64,
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("cannot write {value:?} to {}: {e}", path.display()))
}

impl CgroupRoot {
    /// Create `authbench-<run_id>` under the CPU controller. `Err` says why caps are not
    /// possible here (the sweep then runs uncapped and records that).
    pub fn create(run_id: &str, period: Duration, burst: f64) -> Result<Self, String> {
        if !(Duration::from_millis(1)..=Duration::from_secs(1)).contains(&period) {
            return Err(format!("cgroup period {period:?} outside 1ms..1s"));
        }
        let name = format!("authbench-{run_id}");
        let v2_root = Path::new("/sys/fs/cgroup");
        let (dir, flavor) = if v2_root.join("cgroup.controllers").exists() {
            let controllers = fs::read_to_string(v2_root.join("cgroup.controllers")).unwrap_or_default();
            if !controllers.split_whitespace().any(|c| c == "cpu") {
                return Err("cgroup v2 without the cpu controller".into());
            }
            // Children of our directory need the cpu controller delegated to them.
            write(&v2_root.join("cgroup.subtree_control"), "+cpu")?;
            (v2_root.join(&name), Flavor::V2)
        } else if v2_root.join("cpu/cpu.cfs_quota_us").exists() {
            (v2_root.join("cpu").join(&name), Flavor::V1)
        } else {
            return Err("no writable cgroup CPU controller found under /sys/fs/cgroup".into());
        };
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if flavor == Flavor::V2
            && let Err(e) = write(&dir.join("cgroup.subtree_control"), "+cpu")
        {
            let _ = fs::remove_dir(&dir);
            return Err(e);
        }
        Ok(Self { dir, flavor, period, burst })
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    pub fn flavor(&self) -> &'static str {
        match self.flavor {
            Flavor::V2 => "v2",
            Flavor::V1 => "v1",
        }
    }

    /// A child group limited to `cores` CPUs.
    pub fn child(&self, name: &str, cores: f64) -> Result<Cgroup, String> {
        let dir = self.dir.join(name);
        // A leftover from an earlier crashed step would still hold its quota; reuse it.
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let group = Cgroup { dir, flavor: self.flavor.clone(), period: self.period, burst: self.burst };
        group.set_cores(Some(cores))?;
        Ok(group)
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        // Children are removed by their own Drop; an rmdir of a non-empty group fails
        // harmlessly, and the next run's name is different.
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The CFS period and quota (µs) that give `cores`: the run's period, lengthened when the
/// quota would fall below the kernel's 1 ms minimum; no quota when uncapped.
pub fn quota(period: Duration, cores: Option<f64>) -> (u64, Option<u64>) {
    let period_us = period.as_micros() as u64;
    match cores {
        None => (period_us, None),
        Some(c) if c * period_us as f64 >= 1000.0 => (period_us, Some((c * period_us as f64).round() as u64)),
        Some(c) => ((1000.0 / c).round() as u64, Some(1000)),
    }
}

impl Cgroup {
    /// Limit to `cores` CPUs, or lift the limit with `None` (used while logging users in,
    /// so argon2 set-up does not eat into the measured time budget).
    ///
    /// With a burst allowance (`cpu.cfs_burst_us` / `cpu.max.burst`), a group that used
    /// less than its quota may spend the saving in a later period. The long-run average
    /// is still the cap, but a brief burst no longer freezes the instance for the rest of
    /// the period: without it, a 0.1-core instance at half load showed p99 ≈ 6.6 ms that
    /// were pure CFS stalls; with burst = quota, 1.0 ms.
    ///
    /// The kernel's smallest quota is 1 ms: a cap below 1 ms per period (0.05 core at a
    /// 10 ms period) gets a longer period of its own instead of a silently larger cap.
    pub fn set_cores(&self, cores: Option<f64>) -> Result<(), String> {
        let (period_us, quota_us) = quota(self.period, cores);
        let burst_us = quota_us.map_or(0, |q| (q as f64 * self.burst).round() as u64);
        match self.flavor {
            Flavor::V2 => {
                // The burst may not exceed the quota in force, so clear it first.
                self.write_burst("cpu.max.burst", 0);
                let quota = quota_us.map_or("max".to_string(), |q| q.to_string());
                write(&self.dir.join("cpu.max"), &format!("{quota} {period_us}"))?;
                self.write_burst("cpu.max.burst", burst_us);
                Ok(())
            }
            Flavor::V1 => {
                // Lift the quota first: the kernel refuses a period that would make the
                // current quota exceed the parent's.
                self.write_burst("cpu.cfs_burst_us", 0);
                write(&self.dir.join("cpu.cfs_quota_us"), "-1")?;
                write(&self.dir.join("cpu.cfs_period_us"), &period_us.to_string())?;
                if let Some(q) = quota_us {
                    write(&self.dir.join("cpu.cfs_quota_us"), &q.to_string())?;
                    self.write_burst("cpu.cfs_burst_us", burst_us);
                }
                Ok(())
            }
        }
    }

    /// Kernels before 5.14 have no burst file; caps then work without it.
    fn write_burst(&self, file: &str, us: u64) {
        let path = self.dir.join(file);
        if path.exists() {
            let _ = write(&path, &us.to_string());
        }
    }

    /// Whether this kernel supports a burst allowance.
    pub fn burst_supported(&self) -> bool {
        self.dir.join("cpu.cfs_burst_us").exists() || self.dir.join("cpu.max.burst").exists()
    }

    /// The group's share when the CPU is contended, relative to its siblings' (cgroup v2
    /// `cpu.weight`, 1–10000, default 100; v1 `cpu.shares`, scaled from the same number).
    pub fn set_weight(&self, weight: u32) -> Result<(), String> {
        let weight = weight.clamp(1, 10_000);
        match self.flavor {
            Flavor::V2 => write(&self.dir.join("cpu.weight"), &weight.to_string()),
            Flavor::V1 => write(&self.dir.join("cpu.shares"), &(u64::from(weight) * 1024 / 100).max(2).to_string()),
        }
    }

    pub fn add(&self, pid: u32) -> Result<(), String> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    /// Times the group was throttled so far (from `cpu.stat`).
    pub fn throttled(&self) -> Option<u64> {
        let stat = fs::read_to_string(self.dir.join("cpu.stat")).ok()?;
        stat.lines().find_map(|l| l.strip_prefix("nr_throttled ")?.trim().parse().ok())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Processes must be gone first (the deployment kills them before dropping this).
        for _ in 0..20 {
            if fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        eprintln!("authbench: could not remove cgroup {}", self.dir.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_below_the_kernels_minimum_quota_gets_a_longer_period_not_a_larger_cap() {
        let ten = Duration::from_millis(10);
        assert_eq!(quota(ten, Some(0.1)), (10_000, Some(1_000)));
        assert_eq!(quota(ten, Some(0.4)), (10_000, Some(4_000)));
        assert_eq!(quota(ten, Some(0.05)), (20_000, Some(1_000)), "0.05 core: 1 ms per 20 ms");
        assert_eq!(quota(ten, None), (10_000, None));
    }
}
