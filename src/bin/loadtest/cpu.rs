//! CPU for the scale-out scenario: a cgroup per router instance with a CPU quota (cgroup v2's
//! `cpu.max` or v1's `cpu.cfs_quota_us`, whichever the machine has), and CPU time read from
//! `/proc` (each process's ticks, the machine's busy time) so a run can show who was the bound.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Linux's `USER_HZ`: the unit of the ticks in `/proc/<pid>/stat` and `/proc/stat`.
const TICKS_PER_SECOND: f64 = 100.0;

/// Where CPU groups can be made, and how their quota is written.
#[derive(Clone)]
pub enum Controller {
    /// cgroup v2: a directory whose `cgroup.subtree_control` has `cpu`.
    V2(PathBuf),
    /// cgroup v1: the `cpu` hierarchy's root (or the directory this process is in there).
    V1(PathBuf),
}

impl Controller {
    /// The machine's CPU controller, or why none can be used (not root, no `cpu` controller).
    pub fn find() -> Result<Self, String> {
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            return probe(Self::V1(v1.to_path_buf()));
        }
        let root = Path::new("/sys/fs/cgroup");
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
            .map_err(|_| "no cgroup v1 cpu hierarchy and no cgroup v2 at /sys/fs/cgroup".to_string())?;
        if !controllers.split_whitespace().any(|c| c == "cpu") {
            return Err("cgroup v2 has no cpu controller here".into());
        }
        // The groups go beside this process's own cgroup's children: under the v2 root, whose
        // subtree may enable `cpu` whatever processes it holds.
        std::fs::write(root.join("cgroup.subtree_control"), "+cpu")
            .map_err(|e| format!("cannot enable the cpu controller in {}: {e} (root is needed)", root.display()))?;
        probe(Self::V2(root.to_path_buf()))
    }
}

/// Makes and removes one group, so an unusable controller is found before anything starts.
fn probe(controller: Controller) -> Result<Controller, String> {
    let group = CpuGroup::create(&controller, "probe", 1.0)?;
    drop(group);
    Ok(controller)
}

/// One cgroup holding one router instance at a fixed share of a core. Removed when dropped
/// (after its process is gone).
pub struct CpuGroup {
    dir: PathBuf,
    v2: bool,
}

impl CpuGroup {
    /// A new group `spscan-loadtest-<pid>-<name>` limited to `share` of one core (quota over a
    /// 100 ms period).
    pub fn create(controller: &Controller, name: &str, share: f64) -> Result<Self, String> {
        let (parent, v2) = match controller {
            Controller::V2(p) => (p, true),
            Controller::V1(p) => (p, false),
        };
        let dir = parent.join(format!("spscan-loadtest-{}-{name}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot make the cgroup {}: {e} (root is needed)", dir.display()))?;
        let group = Self { dir, v2 };
        let quota = ((share * 100_000.0) as u64).max(1_000);
        let written = if v2 {
            std::fs::write(group.dir.join("cpu.max"), format!("{quota} 100000"))
        } else {
            std::fs::write(group.dir.join("cpu.cfs_period_us"), "100000").and_then(|_| std::fs::write(group.dir.join("cpu.cfs_quota_us"), quota.to_string()))
        };
        written.map_err(|e| format!("cannot set the CPU quota of {}: {e}", group.dir.display()))?;
        Ok(group)
    }

    /// Moves a process (every thread of it) into the group.
    pub fn add(&self, pid: u32) -> Result<(), String> {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).map_err(|e| format!("cannot move {pid} into {}: {e}", self.dir.display()))
    }

    /// Periods the group ran in, and those in which its quota ran out (`cpu.stat`).
    pub fn periods(&self) -> (u64, u64) {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| stat.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or(0);
        (field("nr_periods"), field("nr_throttled"))
    }

    pub fn describe(&self) -> String {
        format!("{} ({})", self.dir.display(), if self.v2 { "cgroup v2 cpu.max" } else { "cgroup v1 cpu.cfs_quota_us" })
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        // A killed process leaves its group a moment later.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Every process's CPU ticks (user + system) and command name, and the machine's busy and total
/// ticks, at one moment.
pub struct Snapshot {
    processes: HashMap<u32, (String, u64)>,
    busy: u64,
    total: u64,
    at: std::time::Instant,
}

impl Snapshot {
    pub fn take() -> Self {
        let mut processes = HashMap::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some(reading) = process_ticks(pid) {
                processes.insert(pid, reading);
            }
        }
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|n| n.parse().ok()).collect();
        let total: u64 = cpu.iter().sum();
        // idle and iowait are the 4th and 5th fields.
        let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
        Self { processes, busy: total - idle, total, at: std::time::Instant::now() }
    }

    /// Cores used from `earlier` to now by the processes `pick` chooses (by pid and command
    /// name); a process started in between counts from zero.
    pub fn cores_since(&self, earlier: &Snapshot, pick: impl Fn(u32, &str) -> bool) -> f64 {
        let ticks: u64 = self
            .processes
            .iter()
            .filter(|(pid, (comm, _))| pick(**pid, comm))
            .map(|(pid, (_, now))| now.saturating_sub(earlier.processes.get(pid).map_or(0, |(_, then)| *then)))
            .sum();
        ticks as f64 / TICKS_PER_SECOND / (self.at - earlier.at).as_secs_f64()
    }

    /// The machine's busy share (of all its cores) from `earlier` to now.
    pub fn machine_busy_since(&self, earlier: &Snapshot) -> f64 {
        (self.busy - earlier.busy) as f64 / (self.total - earlier.total).max(1) as f64
    }
}

/// (command name, user + system ticks) of one process.
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may hold spaces; the fields after it are plain.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based over the whole line).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}
