//! Pre-started runtimes (issues 9 and 17): for Python, Node.js, Java and PHP, a few sandboxes are kept built ahead
//! of need — their own namespaces and cgroups, seccomp, uid 65534 — with the interpreter started and openfc's shim
//! loaded, waiting for a function. A cold start takes one, sets the function's limits on its cgroups, and hands it the
//! function through the sandbox's init (`openfc_sandbox::send_activation`): the package and layers attached
//! read-only at `/code` and `/opt`, then the environment; only then does the shim import user code. A waiting
//! runtime serves exactly one instance and is never returned; one that dies is discarded; the pool refills in the
//! background after a cold start, never on its path.
//!
//! A JVM's heap ceiling is fixed when it starts (OpenJDK 17 reads a cgroup v1 limit once: measured, a JVM started
//! under 2 GiB with `MaxRAMPercentage=70` kept its 1386 MiB ceiling after the limit dropped to 256 MiB, and
//! allocating was a cgroup kill, not an `OutOfMemoryError`; and the sandbox shows it no cgroup files anyway). So
//! waiting JVMs are keyed by memory size, started with that size's options ([`crate::runtime::java_options`]), and
//! only for the common sizes ([`JAVA_SIZES`]) that cold starts have asked for since openfc started (the first
//! cold start of a size also builds the shim with javac; other sizes always start afresh). Each waiting JVM costs
//! ~75 MB of resident memory (/health, launcher + init + JVM), so sizes nobody uses are not kept.

use std::os::fd::AsFd;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cgroup::Cgroup;
use crate::launchers::{GroupGuard, Launchers};
use crate::runtime::{Interpreter, RUNTIME_MOUNT};
use crate::{InvokeError, Shared};

/// The runtimes that can be pre-started.
pub const FAMILIES: [Interpreter; 4] = [Interpreter::Python, Interpreter::Node, Interpreter::Java, Interpreter::Php];

/// The memory sizes (MB) JVMs are pre-started for, once a cold start of that size has been seen.
pub const JAVA_SIZES: [u64; 4] = [128, 256, 512, 1024];

/// What a waiting runtime can serve: its interpreter and, for a JVM, the memory size its heap was sized for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub interpreter: Interpreter,
    pub memory_mb: Option<u64>,
}

impl Kind {
    /// The kind of waiting runtime a cold start of `spec` (its package unpacked at `code`) can take, if any.
    /// What the JVM and PHP read only at their start sends some functions to a fresh start: a JVM whose memory
    /// size is not pre-started, a function setting its own `LD_LIBRARY_PATH` (the JVM's java.library.path, the
    /// dynamic loader's path), PHP with the package's own extensions (`/code/extension`, PHP_INI_SCAN_DIR) or
    /// its own PHP_INI_SCAN_DIR.
    pub fn of(interpreter: Interpreter, spec: &crate::FunctionSpec, code: &std::path::Path) -> Option<Kind> {
        let own = |name: &str| spec.env.contains_key(name);
        match interpreter {
            Interpreter::Java if own("LD_LIBRARY_PATH") => None,
            Interpreter::Java => JAVA_SIZES.contains(&spec.memory_mb).then_some(Kind { interpreter, memory_mb: Some(spec.memory_mb) }),
            Interpreter::Php if own("LD_LIBRARY_PATH") || own("PHP_INI_SCAN_DIR") || code.join("extension").is_dir() => None,
            _ => Some(Kind { interpreter, memory_mb: None }),
        }
    }
}

/// A sandbox with a runtime waiting for its function.
pub struct Waiting {
    pub id: String,
    pub cgroup: Option<Cgroup>,
    pub child: tokio::process::Child,
    /// The invoker's end of the launcher's control socket.
    pub ctrl: std::os::unix::net::UnixStream,
    pub kind: Kind,
}

impl Waiting {
    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends it and removes its groups and its (empty) root directory.
    fn discard(mut self, instances_dir: &std::path::Path) {
        let _ = self.child.start_kill();
        drop(GroupGuard(self.cgroup.take()));
        let root = instances_dir.join(&self.id);
        crate::launchers::off_async(move || {
            // The mount namespace goes with the processes; the directory is empty on the host.
            let _ = std::fs::remove_dir(root);
        });
    }
}

pub struct Prestarted {
    target: usize,
    waiting: Mutex<Vec<Waiting>>,
    refilling: AtomicBool,
    /// JVM memory sizes cold starts have asked for (kept waiting from then on).
    java_sizes: Mutex<Vec<u64>>,
}

impl Prestarted {
    /// `target` waiting runtimes per family; 0 turns pre-starting off.
    pub fn new(target: usize) -> Prestarted {
        Prestarted { target, waiting: Mutex::new(Vec::new()), refilling: AtomicBool::new(false), java_sizes: Mutex::new(Vec::new()) }
    }

    pub fn target(&self) -> usize {
        self.target
    }

    /// A live waiting runtime of `kind`, if one is ready. A JVM size asked for is kept waiting from then on.
    pub fn take(&self, kind: Kind, instances_dir: &std::path::Path) -> Option<Waiting> {
        if self.target == 0 {
            return None;
        }
        if let Some(m) = kind.memory_mb {
            let mut sizes = self.java_sizes.lock().expect("prestarted");
            if !sizes.contains(&m) {
                sizes.push(m);
            }
        }
        loop {
            let mut found = {
                let mut w = self.waiting.lock().expect("prestarted");
                let i = w.iter().position(|x| x.kind == kind)?;
                w.swap_remove(i)
            };
            if found.alive() {
                return Some(found);
            }
            found.discard(instances_dir);
        }
    }

    /// How many wait now, per family, and their runtimes' resident memory in bytes.
    pub fn counts(&self) -> Vec<(Interpreter, usize, u64)> {
        let w = self.waiting.lock().expect("prestarted");
        FAMILIES
            .iter()
            .map(|f| {
                let mine: Vec<&Waiting> = w.iter().filter(|x| x.kind.interpreter == *f).collect();
                let rss = mine.iter().filter_map(|x| x.child.id()).map(tree_rss).sum();
                (*f, mine.len(), rss)
            })
            .collect()
    }

    /// Drops waiting runtimes that died (the refill that calls this replaces them).
    fn prune(&self, instances_dir: &std::path::Path) {
        let dead: Vec<Waiting> = {
            let mut w = self.waiting.lock().expect("prestarted");
            let mut gone = Vec::new();
            let mut i = 0;
            while i < w.len() {
                if w[i].alive() { i += 1 } else { gone.push(w.swap_remove(i)) }
            }
            gone
        };
        for d in dead {
            tracing::info!(instance = %d.id, "a pre-started runtime died; replacing it");
            d.discard(instances_dir);
        }
    }

    /// Tops every family up to the target in the background (one refill at a time), skipping runtimes whose
    /// interpreter is missing.
    pub fn refill(shared: &Arc<Shared>) {
        let me = &shared.prestarted;
        // Not before the Python shim is compiled: a runtime started earlier would keep running the source.
        if me.target == 0 || !shared.shims_ready.load(Ordering::Acquire) || me.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let me = &shared.prestarted;
            me.prune(&shared.instances_dir);
            for kind in me.kinds(&shared) {
                loop {
                    let have = me.waiting.lock().expect("prestarted").iter().filter(|x| x.kind == kind).count();
                    if have >= me.target {
                        break;
                    }
                    match start(&shared, kind).await {
                        Ok(w) => me.waiting.lock().expect("prestarted").push(w),
                        Err(e) => {
                            tracing::warn!(error = %e, runtime = ?kind.interpreter, memory_mb = ?kind.memory_mb,
                                "could not pre-start a runtime; cold starts use the plain path");
                            break;
                        }
                    }
                }
            }
            me.refilling.store(false, Ordering::Release);
        });
    }

    /// The kinds to keep waiting now: every family whose interpreter is installed; JVMs only once their shim is
    /// built (by the first Java cold start), and only for the sizes asked for.
    fn kinds(&self, shared: &Shared) -> Vec<Kind> {
        let mut out = Vec::new();
        for family in FAMILIES {
            if !shared.config.interpreters.path(family).exists() {
                continue;
            }
            match family {
                Interpreter::Java => {
                    if shared.java_shim_built.load(Ordering::Acquire) {
                        let sizes = self.java_sizes.lock().expect("prestarted").clone();
                        out.extend(sizes.into_iter().map(|m| Kind { interpreter: family, memory_mb: Some(m) }));
                    }
                }
                _ => out.push(Kind { interpreter: family, memory_mb: None }),
            }
        }
        out
    }

    /// Ends every waiting runtime (shutdown).
    pub fn discard_all(&self, instances_dir: &std::path::Path) {
        for w in self.waiting.lock().expect("prestarted").drain(..) {
            w.discard(instances_dir);
        }
    }
}

/// Resident memory of a launcher's process tree (launcher, init, runtime), from /proc.
fn tree_rss(pid: u32) -> u64 {
    let mut total = 0;
    let mut stack = vec![pid];
    while let Some(p) = stack.pop() {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) {
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1024;
        }
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            stack.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
    }
    total
}

/// Builds one waiting sandbox: a launcher on a control socket, its generic spec, and the wait until init has
/// started the runtime.
async fn start(shared: &Arc<Shared>, kind: Kind) -> Result<Waiting, InvokeError> {
    let python_bytecode = shared.python_bytecode.load(Ordering::Acquire);
    let family = kind.interpreter;
    let argv = crate::runtime::prestart_argv(family, kind.memory_mb, &shared.config.interpreters, python_bytecode)
        .ok_or_else(|| InvokeError::internal(format!("{family:?} cannot be pre-started")))?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| InvokeError::internal(format!("socketpair: {e}")))?;
    let launcher = Launchers::spawn_with(shared, Stdio::from(std::os::fd::OwnedFd::from(theirs)))?;
    let (id, mut child) = (launcher.id, launcher.child);
    let cgroup = GroupGuard(launcher.cgroup);
    let root = shared.instances_dir.join(&id);
    std::fs::create_dir_all(&root).map_err(|e| InvokeError::internal(format!("instance root: {e}")))?;
    let (uid, gid) = (shared.config.uid, shared.config.gid);
    let sandbox = openfc_sandbox::Spec {
        root,
        // The built-ins directory is the same for every function: shown from the start.
        binds: std::iter::once((shared.runtime_dir.clone(), std::path::PathBuf::from(RUNTIME_MOUNT)))
            .chain(crate::runtime::builtins_bind(shared.config.builtins_dir.as_deref()))
            .collect(),
        tmp_mib: shared.config.tmp_mib,
        hostname: id.clone(),
        uid,
        gid,
        nofile: shared.config.nofile,
        seccomp: true,
        env: crate::instance::generic_env(),
        argv,
        cwd: std::path::PathBuf::from("/"),
        // Set at activation, when it is known whether the function has outbound network.
        blackhole: Vec::new(),
        // As for an instance with outbound network: which one this becomes is not known yet.
        etc_files: crate::network::etc_files(&id, uid, gid, true),
        gate: false,
        rootfs: None,
        groups: Vec::new(),
        userns_base: None,
        prestart: true,
    };
    let mut line = serde_json::to_vec(&sandbox).map_err(|e| InvokeError::internal(e.to_string()))?;
    line.push(b'\n');
    // A fresh socket's buffer takes the spec at once: this write does not block.
    std::io::Write::write_all(&mut &ours, &line).map_err(|e| InvokeError::internal(format!("handing the sandbox its spec: {e}")))?;
    let pid = child.id().ok_or_else(|| InvokeError::internal("sandbox exited at once"))?;
    let deadline = Instant::now() + Duration::from_secs(shared.config.start_timeout_secs);
    // Ready to hand over once init has forked the runtime (it then loads while it waits).
    loop {
        if let Some(init) = crate::instance::init_pid(pid)
            && crate::instance::init_pid(init).is_some()
        {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(InvokeError::internal(format!("the pre-started sandbox exited ({status})")));
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            return Err(InvokeError::internal("the pre-started sandbox did not start"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut cgroup = cgroup;
    Ok(Waiting { id, cgroup: cgroup.0.take(), child, ctrl: ours, kind })
}

/// Hands a waiting runtime its function: the package (and layers) attached read-only, then the activation line.
pub fn activate(
    ctrl: &std::os::unix::net::UnixStream,
    code: &std::path::Path,
    layers: Option<&std::path::Path>,
    blackhole: &[openfc_sandbox::Net],
    activation: &str,
) -> Result<(), InvokeError> {
    let err = |what: &str, e: std::io::Error| InvokeError::internal(format!("{what}: {e}"));
    let code_fd = openfc_sandbox::detached_bind(code).map_err(|e| err("detaching the package mount", e))?;
    let layers_fd = layers.map(openfc_sandbox::detached_bind).transpose().map_err(|e| err("detaching the layers mount", e))?;
    let mut mounts = vec![(code_fd.as_fd(), "/code")];
    if let Some(fd) = &layers_fd {
        mounts.push((fd.as_fd(), "/opt"));
    }
    openfc_sandbox::send_activation(ctrl.as_fd(), &mounts, blackhole, activation).map_err(|e| err("activating the pre-started runtime", e))
}
