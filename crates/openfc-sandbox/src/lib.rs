//! The instance launcher, in the spirit of Firecracker's jailer: a small, synchronous program that puts one
//! function instance into its own pid, mount, network, ipc and uts namespaces, under cgroup limits, with a
//! minimal read-only root (system directories, the package at `/code`, layers at `/opt`, the runtime shims),
//! a size-capped `/tmp`, a fresh `/proc`, loopback-only networking, rlimits, a seccomp allow-list (`filter`), and an
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

// The only crate with `unsafe`: every block says why it is sound.
#![deny(clippy::undocumented_unsafe_blocks)]

mod activate;
pub mod exec;
mod filter;
mod mounts;
mod sys;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use activate::{detached_bind, send_activation};

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
    /// Apply the seccomp allow-list (`filter`).
    pub seccomp: bool,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// Networks the instance must not reach (the host's own addresses, private ranges and cloud metadata,
    /// when it has outbound network): blackhole routes set before the runtime starts.
    #[serde(default)]
    pub blackhole: Vec<Net>,
    /// Files generated for the instance's minimal `/etc` (passwd, group, hosts, resolv.conf, ...), as (name,
    /// contents); the rest of `/etc` is a short list of host entries the runtimes need (see `mounts`).
    #[serde(default)]
    pub etc_files: Vec<(String, String)>,
    /// Hold the runtime at its last step before `execve` until one more byte arrives on the launcher's stdin
    /// (EOF instead: the runtime is not started). The spec is then one line, and stdin stays open after it:
    /// the invoker opens what the runtime needs from the outside first (the Runtime API's listener in the
    /// instance's network namespace, which must exist before the runtime's first request).
    #[serde(default)]
    pub gate: bool,
    /// A container image's flattened tree: it becomes the root, read-only (instead of the tmpfs with the host's
    /// system directories); `/tmp`, `/proc`, `/dev`, `/etc/hosts` and `/etc/resolv.conf` are mounted over it.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    /// Supplementary groups of the runtime user (an image user's groups); empty: none.
    #[serde(default)]
    pub groups: Vec<u32>,
    /// Run the runtime in its own user namespace mapping ids 0–65535 to host ids from this base; `uid`, `gid`
    /// and `groups` are then ids inside it.
    #[serde(default)]
    pub userns_base: Option<u32>,
    /// A pre-started runtime (`activate`): `/code` and `/opt` are empty mount points, the launcher's stdin stays
    /// a control socket for init, and the runtime's stdin is the pipe its function's activation line arrives on.
    #[serde(default)]
    pub prestart: bool,
}

/// An IP network, `addr/prefix` (the address's bits beyond the prefix are zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Net {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl Net {
    /// The network of `prefix` bits containing `addr` (None when the prefix is too long for the family).
    pub fn new(addr: std::net::IpAddr, prefix: u8) -> Option<Net> {
        let (bits, max) = Net::bits(addr);
        if prefix > max {
            return None;
        }
        let mask = if prefix == 0 { 0 } else { u128::MAX << (u32::from(max) - u32::from(prefix)) } & Net::all(max);
        Some(Net { addr: Net::from_bits(addr, bits & mask), prefix })
    }

    pub fn addr(&self) -> std::net::IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn all(max: u8) -> u128 {
        if max == 128 { u128::MAX } else { (1u128 << max) - 1 }
    }

    fn bits(addr: std::net::IpAddr) -> (u128, u8) {
        match addr {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    fn from_bits(like: std::net::IpAddr, bits: u128) -> std::net::IpAddr {
        match like {
            std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::from(bits as u32)),
            std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::from(bits)),
        }
    }

    /// Whether `other` lies wholly inside this network.
    pub fn contains(&self, other: &Net) -> bool {
        if self.addr.is_ipv4() != other.addr.is_ipv4() || other.prefix < self.prefix {
            return false;
        }
        Net::new(other.addr, self.prefix) == Some(*self)
    }

    /// This network without `hole`: the smallest set of networks covering exactly the rest.
    pub fn without(&self, hole: &Net) -> Vec<Net> {
        if hole.contains(self) {
            return Vec::new();
        }
        if !self.contains(hole) {
            return vec![*self];
        }
        // Walk down from this network to the hole, keeping the sibling half at each step.
        let (hole_bits, max) = Net::bits(hole.addr);
        let mut out = Vec::new();
        for len in self.prefix + 1..=hole.prefix {
            let sibling_bits = hole_bits ^ (1u128 << (u32::from(max) - u32::from(len)));
            out.extend(Net::new(Net::from_bits(hole.addr, sibling_bits), len));
        }
        out
    }
}

impl std::fmt::Display for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Net {
    type Err = String;

    /// `a.b.c.d/n`, `x::y/n`, or a bare address (a single host).
    fn from_str(s: &str) -> Result<Net, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = addr.trim().parse().map_err(|_| format!("{s:?} is not an IP network (a.b.c.d/n)"))?;
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| format!("{s:?}: the prefix length is not a number"))?,
            None => Net::bits(addr).1,
        };
        Net::new(addr, prefix).ok_or_else(|| format!("{s:?}: the prefix length is too long"))
    }
}

impl TryFrom<String> for Net {
    type Error = String;
    fn try_from(s: String) -> Result<Net, String> {
        s.parse()
    }
}

impl From<Net> for String {
    fn from(n: Net) -> String {
        n.to_string()
    }
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

/// A TCP listener on `addr` inside the network namespace `netns`, made on the calling thread, which returns to
/// `home` before the call ends (as [`connect_in_netns`]); the socket stays in `netns`, so only that namespace's
/// processes can reach it. `IP_FREEBIND`: the namespace's loopback may not be up yet (its init brings it up
/// while the invoker prepares the listener); connections arrive once it is. Blocking: run it on a thread
/// that may block.
pub fn listen_in_netns(
    netns: &std::fs::File,
    home: &std::fs::File,
    addr: std::net::SocketAddrV4,
) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: as in `connect_in_netns`.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        let check = |r: libc::c_int| if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r) };
        // SAFETY: plain socket creation; the descriptor is owned by `fd` from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(check(libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0))?) };
        let one: libc::c_int = 1;
        // SAFETY: the option value is a c_int that lives for the call, its size passed.
        check(unsafe {
            libc::setsockopt(fd.as_raw_fd(), libc::IPPROTO_IP, libc::IP_FREEBIND, (&one as *const libc::c_int).cast(), std::mem::size_of::<libc::c_int>() as u32)
        })?;
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
            sin_zero: [0; 8],
        };
        // SAFETY: a sockaddr_in of the size passed, alive for the call.
        check(unsafe { libc::bind(fd.as_raw_fd(), (&sin as *const libc::sockaddr_in).cast(), std::mem::size_of::<libc::sockaddr_in>() as u32) })?;
        // SAFETY: listen takes plain integers.
        check(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
        Ok(std::net::TcpListener::from(fd))
    })();
    // SAFETY: as in `connect_in_netns`.
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

#[cfg(test)]
mod tests {
    use super::Net;

    fn n(s: &str) -> Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(n("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(n("192.168.1.7").to_string(), "192.168.1.7/32");
        assert!("10.0.0.0/33".parse::<Net>().is_err());
        assert!("nope/8".parse::<Net>().is_err());
        assert_eq!(n("::1").to_string(), "::1/128");
    }

    #[test]
    fn subtracts_a_hole() {
        let rest = n("10.0.0.0/8").without(&n("10.1.0.0/16"));
        assert_eq!(rest.len(), 8);
        assert!(rest.iter().all(|r| !r.contains(&n("10.1.2.3/32")) && n("10.0.0.0/8").contains(r)));
        for probe in ["10.0.0.1", "10.2.0.1", "10.255.255.255", "10.1.255.255"] {
            let inside_hole = n("10.1.0.0/16").contains(&n(probe));
            assert_eq!(rest.iter().any(|r| r.contains(&n(probe))), !inside_hole, "{probe}");
        }
        assert_eq!(n("10.0.0.0/8").without(&n("10.0.0.0/8")), Vec::<Net>::new());
        assert_eq!(n("10.0.0.0/8").without(&n("0.0.0.0/0")), Vec::<Net>::new());
        assert_eq!(n("10.0.0.0/8").without(&n("192.168.0.0/16")), vec![n("10.0.0.0/8")]);
    }
}
