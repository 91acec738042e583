//! Resource limits per instance through cgroups: v1 (memory, pids and cpu hierarchies, as on this project's
//! machines) or v2 (one unified hierarchy), detected at start. Where neither is writable the invoker says so
//! and runs instances without these limits rather than pretending.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupMode {
    /// Each path is this openfc's own group in that hierarchy (`.../openfc/<node>`).
    V1 { memory: PathBuf, pids: PathBuf, cpu: PathBuf },
    V2 { root: PathBuf },
    Unavailable(String),
}

/// The limits of one instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_mb: u64,
    pub pids: u64,
    /// Relative CPU weight, proportional to memory (FC gives CPU in proportion to memory).
    pub cpu_shares: u64,
}

/// One instance's cgroup directories.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    memory_dir: PathBuf,
    v2: bool,
    /// The peak-usage file, kept open: it is read after every invocation, and a path lookup through
    /// the cgroup filesystem costs several times the read. An open file does not keep the group alive.
    peak: Option<std::fs::File>,
}

const GROUP: &str = "openfc";
const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

fn writable_dir(p: &Path) -> bool {
    let probe = p.join(format!("{GROUP}-probe-{}", std::process::id()));
    let ok = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    ok
}

impl CgroupMode {
    /// Detects the hierarchy. `node` names this openfc's own group (several may share a host), whose
    /// leftovers from an earlier run are cleaned up.
    pub fn detect(node: &str) -> CgroupMode {
        Self::detect_at(Path::new("/sys/fs/cgroup"), node)
    }

    fn detect_at(base: &Path, node: &str) -> CgroupMode {
        let v1 = |c: &str| base.join(c);
        if v1("memory").join("memory.limit_in_bytes").exists() && v1("pids").is_dir() && v1("cpu").is_dir() {
            if [v1("memory"), v1("pids"), v1("cpu")].iter().all(|d| writable_dir(d)) {
                let mine = |c: &str| v1(c).join(GROUP).join(node);
                for d in [mine("memory"), mine("pids"), mine("cpu")] {
                    clean(&d);
                }
                return CgroupMode::V1 { memory: mine("memory"), pids: mine("pids"), cpu: mine("cpu") };
            }
            return CgroupMode::Unavailable("cgroup v1 hierarchies are not writable (run openfc as root)".into());
        }
        let controllers = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        if !CONTROLLERS.iter().all(|c| controllers.split_whitespace().any(|x| x == *c)) {
            return CgroupMode::Unavailable("no cgroup hierarchy with memory, pids and cpu controllers".into());
        }
        if !writable_dir(base) {
            return CgroupMode::Unavailable("the cgroup v2 hierarchy is not writable (run openfc as root)".into());
        }
        // Every level down to the instances needs the controllers enabled for its children.
        let mine = base.join(GROUP).join(node);
        clean(&mine);
        let _ = std::fs::create_dir_all(&mine);
        let mut failed = None;
        for level in [base.to_path_buf(), base.join(GROUP), mine.clone()] {
            if let Err(e) = std::fs::write(level.join("cgroup.subtree_control"), "+memory +pids +cpu") {
                failed.get_or_insert(format!("{}: {e}", level.join("cgroup.subtree_control").display()));
            }
        }
        // Enabling fails, for one, where the top group holds processes (a container's own cgroup: v2's "no
        // internal processes" rule). Then instances could get no limits: say so rather than fail each start.
        let enabled = std::fs::read_to_string(mine.join("cgroup.subtree_control")).unwrap_or_default();
        let on = |c: &str| enabled.split_whitespace().any(|x| x.trim_start_matches('+') == c);
        if !CONTROLLERS.iter().all(|c| on(c)) {
            return CgroupMode::Unavailable(format!(
                "cgroup v2: the memory, pids and cpu controllers could not be enabled for openfc's group ({}); \
                 in a container, give openfc a cgroup of its own with no other processes in its parent",
                failed.unwrap_or_else(|| format!("{} says \"{}\"", mine.join("cgroup.subtree_control").display(), enabled.trim()))
            ));
        }
        CgroupMode::V2 { root: mine }
    }

    pub fn describe(&self) -> String {
        match self {
            CgroupMode::V1 { .. } => "cgroup v1 (memory, pids, cpu)".into(),
            CgroupMode::V2 { .. } => "cgroup v2 (memory, pids, cpu)".into(),
            CgroupMode::Unavailable(why) => format!("unavailable: {why}"),
        }
    }

    /// Creates an instance's groups, without limits yet (see [`Cgroup::limit`]). `None` when cgroups are
    /// unavailable.
    pub fn create(&self, instance: &str) -> std::io::Result<Option<Cgroup>> {
        match self {
            CgroupMode::Unavailable(_) => Ok(None),
            CgroupMode::V1 { memory, pids, cpu } => {
                let (m, p, c) = (memory.join(instance), pids.join(instance), cpu.join(instance));
                for d in [&m, &p, &c] {
                    std::fs::create_dir_all(d)?;
                }
                Ok(Some(Cgroup::new(vec![m.clone(), p, c], m, false)))
            }
            CgroupMode::V2 { root } => {
                let d = root.join(instance);
                std::fs::create_dir_all(&d)?;
                Ok(Some(Cgroup::new(vec![d.clone()], d, true)))
            }
        }
    }
}

/// How long [`Cgroup::destroy`] keeps at a group whose processes will not die or that will not go.
const DESTROY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);
/// The same at start-up, where a stuck leftover must not hold the server back for long.
const LEFTOVER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Removes instance groups an earlier run of this openfc left behind (killing what still runs in them).
fn clean(node_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(node_dir) else { return };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) && !Cgroup::new(vec![e.path()], e.path(), false).destroy_within(LEFTOVER_PATIENCE) {
            tracing::warn!(group = %e.path().display(), "could not remove a cgroup left by an earlier run");
        }
    }
}

impl Cgroup {
    fn new(dirs: Vec<PathBuf>, memory_dir: PathBuf, v2: bool) -> Cgroup {
        let file = if v2 { "memory.peak" } else { "memory.max_usage_in_bytes" };
        let path = memory_dir.join(file);
        // memory.peak is read-only on v2 kernels before 6.12: then the peak is the instance's, not the request's.
        let peak = std::fs::OpenOptions::new().read(true).write(true).open(&path).or_else(|_| std::fs::File::open(&path)).ok();
        Cgroup { dirs, memory_dir, v2, peak }
    }

    /// Sets the instance's limits: before its runtime starts (a launcher may already be inside).
    pub fn limit(&self, limits: Limits) -> std::io::Result<()> {
        let bytes = limits.memory_mb * 1024 * 1024;
        if self.v2 {
            let d = &self.memory_dir;
            std::fs::write(d.join("memory.max"), bytes.to_string())?;
            let _ = std::fs::write(d.join("memory.swap.max"), "0");
            std::fs::write(d.join("pids.max"), limits.pids.to_string())?;
            // cpu.weight is 1..10000 (default 100); shares are 2..262144 (default 1024).
            let weight = (limits.cpu_shares * 100 / 1024).clamp(1, 10_000);
            std::fs::write(d.join("cpu.weight"), weight.to_string())?;
        } else {
            let [m, p, c] = &self.dirs[..] else { return Err(std::io::Error::other("a v1 group has three hierarchies")) };
            std::fs::write(m.join("memory.limit_in_bytes"), bytes.to_string())?;
            // No swap escape: memory+swap capped at the same figure where the kernel supports it (after the
            // memory limit: memsw may never be below it).
            let _ = std::fs::write(m.join("memory.memsw.limit_in_bytes"), bytes.to_string());
            std::fs::write(p.join("pids.max"), limits.pids.to_string())?;
            std::fs::write(c.join("cpu.shares"), limits.cpu_shares.to_string())?;
        }
        Ok(())
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Peak memory since the last reset, in bytes.
    pub fn memory_peak(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 32];
        // Offset 0 each time: the kernel renders the figure afresh for a read from the start.
        let n = self.peak.as_ref()?.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    pub fn reset_peak(&self) {
        use std::os::unix::fs::FileExt;
        if let Some(f) = &self.peak {
            let _ = f.write_at(b"0", 0);
        }
    }

    /// How many processes the kernel killed for exceeding the memory limit.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = if self.v2 { ("memory.events", "oom_kill") } else { ("memory.oom_control", "oom_kill") };
        std::fs::read_to_string(self.memory_dir.join(file))
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
            })
            .unwrap_or(0)
    }

    /// Kills every process left in the group, then removes it. Processes of a fork bomb keep forking
    /// while being killed and a v1 group refuses removal (EBUSY) until its last task is gone, so this
    /// keeps killing and retrying, backing off, for up to [`DESTROY_PATIENCE`]. Returns whether every
    /// directory is gone. Blocks: call it off the async threads.
    pub fn destroy(&self) -> bool {
        self.destroy_within(DESTROY_PATIENCE)
    }

    fn destroy_within(&self, patience: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + patience;
        let mut all_gone = true;
        for d in &self.dirs {
            let mut pause = std::time::Duration::from_millis(1);
            loop {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                let pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
                for &pid in &pids {
                    openfc_sandbox::kill(pid);
                }
                if pids.is_empty() {
                    match std::fs::remove_dir(d) {
                        Ok(()) => break,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                        Err(_) => {}
                    }
                }
                if std::time::Instant::now() >= deadline {
                    all_gone = false;
                    break;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
        }
        all_gone
    }
}

#[cfg(test)]
mod tests {
    //! The files each hierarchy is given, on a plain directory standing in for the cgroup file system
    //! (this project's machines mount v1 only; the e2e suite covers v1 for real).
    use super::*;

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap().trim().to_owned()
    }

    const LIMITS: Limits = Limits { memory_mb: 256, pids: 1024, cpu_shares: 2048 };

    #[test]
    fn v2_limits_go_to_the_unified_group() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.peak"), "7340032\n").unwrap();
        let cg = CgroupMode::V2 { root: root.path().to_owned() }.create("c-1").unwrap().unwrap();
        cg.limit(LIMITS).unwrap();
        assert_eq!(cg.dirs(), std::slice::from_ref(&dir));
        assert_eq!(read(&dir.join("memory.max")), (256u64 << 20).to_string());
        assert_eq!(read(&dir.join("memory.swap.max")), "0");
        assert_eq!(read(&dir.join("pids.max")), "1024");
        // shares 2048 (twice the v1 default) → weight 200 (twice the v2 default).
        assert_eq!(read(&dir.join("cpu.weight")), "200");
        assert_eq!(cg.memory_peak(), Some(7_340_032));
    }

    #[test]
    fn v1_limits_go_to_each_hierarchy() {
        let base = tempfile::tempdir().unwrap();
        let (m, p, c) = (base.path().join("memory"), base.path().join("pids"), base.path().join("cpu"));
        std::fs::create_dir_all(m.join("c-2")).unwrap();
        std::fs::write(m.join("c-2").join("memory.max_usage_in_bytes"), "1048576\n").unwrap();
        let cg = CgroupMode::V1 { memory: m.clone(), pids: p.clone(), cpu: c.clone() }.create("c-2").unwrap().unwrap();
        cg.limit(LIMITS).unwrap();
        assert_eq!(cg.dirs(), [m.join("c-2"), p.join("c-2"), c.join("c-2")]);
        assert_eq!(read(&m.join("c-2/memory.limit_in_bytes")), (256u64 << 20).to_string());
        assert_eq!(read(&m.join("c-2/memory.memsw.limit_in_bytes")), (256u64 << 20).to_string());
        assert_eq!(read(&p.join("c-2/pids.max")), "1024");
        assert_eq!(read(&c.join("c-2/cpu.shares")), "2048");
        assert_eq!(cg.memory_peak(), Some(1_048_576));
    }

    #[test]
    fn v2_detection_enables_the_controllers_down_to_openfcs_group() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n").unwrap();
        let mode = CgroupMode::detect_at(base.path(), "n1");
        assert_eq!(mode, CgroupMode::V2 { root: base.path().join("openfc/n1") });
        for level in ["", "openfc", "openfc/n1"] {
            assert_eq!(read(&base.path().join(level).join("cgroup.subtree_control")), "+memory +pids +cpu");
        }
    }

    #[test]
    fn v2_without_enabled_controllers_is_unavailable_and_says_why() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        // Writes that do not take (as where the kernel enables nothing): the group's file reads back empty.
        std::fs::create_dir_all(base.path().join("openfc/n2")).unwrap();
        std::os::unix::fs::symlink("/dev/null", base.path().join("openfc/n2/cgroup.subtree_control")).unwrap();
        match CgroupMode::detect_at(base.path(), "n2") {
            CgroupMode::Unavailable(why) => assert!(why.contains("could not be enabled"), "{why}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    #[test]
    fn a_hierarchy_without_the_controllers_is_unavailable() {
        let base = tempfile::tempdir().unwrap();
        std::fs::write(base.path().join("cgroup.controllers"), "cpu io\n").unwrap();
        assert!(matches!(CgroupMode::detect_at(base.path(), "n3"), CgroupMode::Unavailable(_)));
    }

    #[test]
    fn without_cgroups_there_is_no_group() {
        assert!(CgroupMode::Unavailable("test".into()).create("c-3").unwrap().is_none());
    }
}
