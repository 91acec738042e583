//! The instance launcher, in the spirit of Firecracker's jailer: a small, synchronous program that puts one
//! function instance into its own pid, mount, network, ipc and uts namespaces, under cgroup limits, with a
//! minimal read-only root (system directories, the package at `/code`, layers at `/opt`, the runtime shims),
//! a size-capped `/tmp`, a fresh `/proc`, loopback-only networking, rlimits, a seccomp deny-list, and an
//! unprivileged user; then execs the runtime. It is the only crate allowed `unsafe`.
//!
//! Start-up: the launcher first joins the cgroups named in `CGROUPS_ENV` (on cgroup v1 a join waits out an
//! RCU grace period, 5–30 ms here), then reads its `Spec` as JSON from stdin. So the invoker can start
//! launchers ahead of need ("warm launchers") and hand one its spec at a cold start, leaving the process
//! start and the cgroup join off the cold path. EOF before any spec: the launcher was not needed; it exits 0.
//!
//! Process shape: the launcher (host namespaces) unshares, forks the namespace's init (pid 1), which builds
//! the root and forks the runtime; init reaps and exits with the runtime's status; the launcher reports
//! mirrors init's exit status. The invoker finds init as the launcher's only child
//! (`/proc/PID/task/PID/children`) to enter its network namespace.

mod filter;
mod mounts;
mod sys;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The hidden first argument that turns the `openfc` binary into the launcher.
pub const COMMAND: &str = "__sandbox";

/// The environment variable naming, one per line, the cgroup directories (each with a `cgroup.procs`)
/// the launcher joins before anything else, so everything it starts is held by them.
pub const CGROUPS_ENV: &str = "OPENFC_SANDBOX_CGROUPS";

/// Everything the launcher needs, written as JSON to its stdin.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// An empty directory on the host that becomes the instance's root (a tmpfs is mounted on it).
    pub root: PathBuf,
    /// Host directories shown read-only inside, as (host path, path inside).
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Size cap of the writable `/tmp`, in MiB.
    pub tmp_mib: u64,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    pub nofile: u64,
    /// Apply the seccomp deny-list.
    pub seccomp: bool,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Addresses the instance must not reach (the host's own, when it has outbound network).
    #[serde(default)]
    pub blackhole: Vec<std::net::IpAddr>,
}

/// Runs the launcher (see the module notes); never returns. Exit status: the runtime's, or 128 + signal;
/// 125 when the sandbox could not be built (the reason is on stderr); 0 when no spec came.
pub fn launch() -> ! {
    match sys::launcher() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("openfc sandbox: {e}");
            std::process::exit(125)
        }
    }
}

/// Sends SIGKILL to a process (a stale pid at worst gets ESRCH, which is ignored).
pub fn kill(pid: i32) {
    // SAFETY: kill takes plain integers and touches no memory.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Connects to `addr` from inside the network namespace `netns` (an open `/proc/PID/ns/net`), on the calling
/// thread, which returns to `home` (this process's own namespace) before the call ends. Blocking: run it
/// on a thread that may block. The socket keeps the namespace it was created in.
pub fn connect_in_netns(
    netns: &std::fs::File,
    home: &std::fs::File,
    addr: std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    use std::os::fd::AsRawFd;
    // SAFETY: setns takes an fd we hold open and a namespace type; it changes only this thread's namespace.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1));
    // SAFETY: as above; returning home must not fail silently, or this pool thread would stay inside.
    if unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        let e = std::io::Error::last_os_error();
        eprintln!("openfc: cannot return a thread to its network namespace: {e}");
        std::process::abort();
    }
    result
}

/// This host's own IPv4 addresses, other than loopback.
pub fn host_addresses() -> Vec<std::net::IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned and we have not freed it yet.
        let ifa = unsafe { &*cur };
        // SAFETY: a non-null ifa_addr points at a sockaddr whose family says which struct it is.
        if !ifa.ifa_addr.is_null() && i32::from(unsafe { (*ifa.ifa_addr).sa_family }) == libc::AF_INET {
            // SAFETY: family AF_INET means the sockaddr is a sockaddr_in.
            let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if !ip.is_loopback() && !out.contains(&std::net::IpAddr::V4(ip)) {
                out.push(std::net::IpAddr::V4(ip));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs.
    unsafe { libc::freeifaddrs(list) };
    out
}
