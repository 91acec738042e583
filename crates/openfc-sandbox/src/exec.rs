//! InstanceExec's process: a command run inside a running instance, as its runtime runs — in the runtime's
//! namespaces (user, ipc, uts, network, pid, mount: its root, `/code`, `/tmp`), in its cgroups (memory, CPU and
//! process limits shared with it), as its user, with its rlimits, no capabilities and the same syscall filter.
//!
//! Process shape: the `openfc` binary started with [`COMMAND`] (single-threaded: `setns` into a mount namespace
//! refuses a process that shares its file-system attributes with other threads) joins the cgroups named in
//! `CGROUPS_ENV`, enters the namespaces of the runtime (the process the namespace's init started; a container's
//! runtime may have a user namespace of its own), then forks — a pid namespace takes only children — and
//! waits; the child makes its own session (with the terminal the invoker gave it as its controlling terminal,
//! for `tty`), drops to the runtime's user and execs the command. The exit status is the command's.
//! Both die with their parent: the invoker kills the first to end a session.

use std::os::fd::AsRawFd;

use serde::{Deserialize, Serialize};

use crate::sys::{self, Result, check};

/// The hidden first argument that turns the `openfc` binary into an exec process.
pub const COMMAND: &str = "__exec";

/// The environment variable carrying the [`ExecSpec`] as JSON (stdin is the command's).
pub const SPEC_ENV: &str = "OPENFC_EXEC_SPEC";

/// What the exec process needs: whose namespaces to enter, and the command as the runtime's user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecSpec {
    /// The instance's runtime process (a host pid): its namespaces are entered.
    pub target: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub groups: Vec<u32>,
    pub nofile: u64,
    pub seccomp: bool,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
    /// Standard input is a terminal that becomes the command's controlling terminal.
    #[serde(default)]
    pub tty: bool,
}

/// Runs the exec process (see the module notes); never returns. Exit status: the command's, 128 + signal, or
/// 126 when the command could not be started (the reason is on stderr).
pub fn exec_main() -> ! {
    match run() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("openfc exec: {e}");
            std::process::exit(126)
        }
    }
}

fn run() -> Result<i32> {
    sys::die_with_parent()?;
    let json = std::env::var(SPEC_ENV).map_err(|_| format!("{SPEC_ENV} is not set"))?;
    let spec: ExecSpec = serde_json::from_str(&json).map_err(|e| format!("the exec spec is not valid: {e}"))?;
    for cg in std::env::var(crate::CGROUPS_ENV).unwrap_or_default().lines().filter(|l| !l.is_empty()) {
        std::fs::write(std::path::Path::new(cg).join("cgroup.procs"), "0").map_err(|e| format!("joining cgroup {cg}: {e}"))?;
    }
    enter_namespaces(spec.target)?;
    // SAFETY: this process is single-threaded (it was just started and has spawned nothing), so fork is safe.
    let pid = check(unsafe { libc::fork() }, "fork")?;
    if pid == 0 {
        let err = command(&spec).unwrap_err();
        eprintln!("openfc exec: {err}");
        // SAFETY: _exit ends the child without running the parent's atexit handlers twice.
        unsafe { libc::_exit(126) };
    }
    sys::wait_exit(pid)
}

/// Enters every namespace of `target` that differs from this process's own (its user namespace only when it
/// has one of its own: entering one's own is refused). The user namespace last: the others were made by init in
/// the host's user namespace, and only there does openfc have the rights to enter them.
fn enter_namespaces(target: u32) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let kinds = [
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("net", libc::CLONE_NEWNET),
        ("pid", libc::CLONE_NEWPID),
        ("mnt", libc::CLONE_NEWNS),
        ("user", libc::CLONE_NEWUSER),
    ];
    // All opened before any is entered: after the mount namespace, /proc is the instance's.
    let mut open = Vec::new();
    for (name, flag) in kinds {
        let theirs = format!("/proc/{target}/ns/{name}");
        let file = std::fs::File::open(&theirs).map_err(|e| format!("opening {theirs}: {e}"))?;
        let same = match (file.metadata(), std::fs::metadata(format!("/proc/self/ns/{name}"))) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            open.push((name, flag, file));
        }
    }
    for (name, flag, file) in open {
        // SAFETY: setns takes a descriptor we hold open and a namespace type.
        check(unsafe { libc::setns(file.as_raw_fd(), flag) }, &format!("entering the {name} namespace"))?;
    }
    Ok(())
}

/// The child: its own session (a signal it sends its group reaches only it), the terminal if any, then the
/// runtime's user, limits and filter, and the command. Returns only on error.
fn command(spec: &ExecSpec) -> Result<()> {
    sys::new_session()?;
    if spec.tty {
        // SAFETY: ioctl on standard input (the terminal's follower side) with an integer argument.
        check(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }, "ioctl(TIOCSCTTY)")?;
    }
    let as_runtime = crate::Spec {
        root: std::path::PathBuf::new(),
        binds: Vec::new(),
        tmp_mib: 0,
        hostname: String::new(),
        uid: spec.uid,
        gid: spec.gid,
        nofile: spec.nofile,
        seccomp: spec.seccomp,
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        blackhole: Vec::new(),
        etc_files: Vec::new(),
        gate: false,
        rootfs: None,
        groups: spec.groups.clone(),
        userns_base: None,
        prestart: false,
    };
    // A cwd that does not exist in this instance (a container without it): `/` rather than no command.
    if !spec.cwd.is_dir() {
        let mut fallback = as_runtime;
        fallback.cwd = std::path::PathBuf::from("/");
        return sys::exec_runtime(&fallback, None);
    }
    sys::exec_runtime(&as_runtime, None)
}

/// A pseudo-terminal pair: (leader, follower), both close-on-exec; the follower becomes a command's standard
/// streams and controlling terminal.
pub fn open_terminal(cols: u16, rows: u16) -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let (mut leader, mut follower) = (-1, -1);
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: out-pointers to two ints; no name buffer; a valid winsize; a null termios (defaults).
    if unsafe { libc::openpty(&mut leader, &mut follower, std::ptr::null_mut(), std::ptr::null(), &size) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openpty returned two descriptors nobody else owns.
    let (leader, follower) = unsafe { (std::os::fd::OwnedFd::from_raw_fd(leader), std::os::fd::OwnedFd::from_raw_fd(follower)) };
    for fd in [&leader, &follower] {
        // SAFETY: fcntl on a descriptor we own, with an integer argument.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((leader, follower))
}

/// A pseudo-terminal pair from the devpts whose `ptmx` is at `ptmx` (an instance's own, through
/// `/proc/PID/root`), so the follower is named inside that instance; as [`open_terminal`] otherwise.
pub fn open_terminal_at(ptmx: &std::path::Path, cols: u16, rows: u16) -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let leader: std::os::fd::OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(ptmx)?
        .into();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int that outlives the call.
    if unsafe { libc::ioctl(leader.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The follower opened through the leader, not by a path: no lookup in another mount namespace.
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let follower = unsafe { libc::ioctl(leader.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if follower < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the ioctl returned a descriptor nobody else owns.
    let follower = unsafe { std::os::fd::OwnedFd::from_raw_fd(follower) };
    resize_terminal(std::os::fd::AsFd::as_fd(&leader), cols, rows)?;
    Ok((leader, follower))
}

/// Sets a terminal's window size (the client resized its window).
pub fn resize_terminal(leader: std::os::fd::BorrowedFd<'_>, cols: u16, rows: u16) -> std::io::Result<()> {
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize that outlives the call.
    if unsafe { libc::ioctl(leader.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
