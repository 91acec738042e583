//! Warm sandbox launchers. Starting a launcher costs an exec of this binary and, on cgroup v1, a join of
//! its cgroups that waits out an RCU grace period (5–30 ms on the project's machines, measured) — most of
//! a cold start's platform overhead. So a few launchers are started ahead of need, already inside fresh
//! (still unlimited) cgroups, waiting for a spec on stdin; a cold start takes one, sets its limits and
//! hands it the spec. Taken launchers are replaced in the background, after the instance is up.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::cgroup::Cgroup;
use crate::{InvokeError, Shared};

/// A started launcher that has no spec yet.
pub struct Launcher {
    /// Becomes the instance's id (its cgroup and root directory are named after it).
    pub id: String,
    pub cgroup: Option<Cgroup>,
    pub child: tokio::process::Child,
}

impl Launcher {
    /// Ends an unused launcher and removes its groups, off the async threads.
    fn discard(mut self) {
        let _ = self.child.start_kill();
        drop(GroupGuard(self.cgroup.take()));
    }
}

/// Removes the groups it holds when dropped (off the async threads), unless they were taken out.
pub struct GroupGuard(pub Option<Cgroup>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            off_async(move || {
                cg.destroy();
            });
        }
    }
}

/// Runs blocking teardown (killing, waiting for, removing) on the blocking pool when inside the runtime,
/// else here.
pub fn off_async(work: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(work);
        }
        Err(_) => work(),
    }
}

pub struct Launchers {
    warm: Mutex<Vec<Launcher>>,
    target: usize,
    refilling: AtomicBool,
}

impl Launchers {
    pub fn new(target: usize) -> Launchers {
        Launchers { warm: Mutex::new(Vec::new()), target, refilling: AtomicBool::new(false) }
    }

    /// Starts a launcher now. Must run on a thread that lives as long as the launcher (an async worker,
    /// not a blocking-pool thread): the launcher dies with the thread that started it (PDEATHSIG).
    fn spawn(shared: &Shared) -> Result<Launcher, InvokeError> {
        Launchers::spawn_with(shared, Stdio::piped())
    }

    /// As `spawn`, with the launcher's stdin given (a pre-started runtime's control socket).
    pub fn spawn_with(shared: &Shared, stdin: Stdio) -> Result<Launcher, InvokeError> {
        let id = format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        let cgroup = shared.cgroups.create(&id).map_err(|e| InvokeError::internal(format!("cgroup: {e}")))?;
        let groups: Vec<String> = cgroup.iter().flat_map(|c| c.dirs()).map(|d| d.to_string_lossy().into_owned()).collect();
        let spawned = tokio::process::Command::new(&shared.self_exe)
            .arg(openfc_sandbox::COMMAND)
            .env_clear()
            .env(openfc_sandbox::CGROUPS_ENV, groups.join("\n"))
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        match spawned {
            Ok(child) => Ok(Launcher { id, cgroup, child }),
            Err(e) => {
                drop(GroupGuard(cgroup));
                Err(InvokeError::internal(format!("spawning the sandbox: {e}")))
            }
        }
    }

    /// A warm launcher when one is alive, else one started now.
    pub fn take(shared: &Shared) -> Result<Launcher, InvokeError> {
        loop {
            let warm = shared.launchers.warm.lock().expect("warm launchers").pop();
            match warm {
                Some(mut l) => match l.child.try_wait() {
                    Ok(None) => return Ok(l),
                    _ => l.discard(),
                },
                None => return Launchers::spawn(shared),
            }
        }
    }

    /// Tops the warm set up to its target in the background (one refill at a time).
    pub fn refill(shared: &Arc<Shared>) {
        let me = &shared.launchers;
        if me.target == 0 || me.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let me = &shared.launchers;
            while me.warm.lock().expect("warm launchers").len() < me.target {
                match Launchers::spawn(&shared) {
                    Ok(l) => me.warm.lock().expect("warm launchers").push(l),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not start a warm sandbox launcher");
                        break;
                    }
                }
                tokio::task::yield_now().await;
            }
            me.refilling.store(false, Ordering::Release);
        });
    }

    /// How many launchers wait now.
    pub fn warm(&self) -> usize {
        self.warm.lock().expect("warm launchers").len()
    }

    /// Ends every warm launcher (shutdown).
    pub fn discard_all(&self) {
        for l in self.warm.lock().expect("warm launchers").drain(..) {
            l.discard();
        }
    }
}
