//! The system calls, in order. Each `unsafe` block says why it is sound.

use std::ffi::CString;
use std::io::Error;

use crate::{Spec, filter, mounts};

pub type Result<T> = std::result::Result<T, String>;

pub fn check(ret: libc::c_int, what: &str) -> Result<libc::c_int> {
    if ret < 0 { Err(format!("{what}: {}", Error::last_os_error())) } else { Ok(ret) }
}

fn cstr(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| format!("NUL byte in {s:?}"))
}

/// Waits for `pid` and turns its end into an exit code (128 + signal for a signal).
pub(crate) fn wait_exit(pid: libc::pid_t) -> Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid: {}", Error::last_os_error()));
        }
    }
    Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) })
}

pub(crate) fn die_with_parent() -> Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) }, "prctl(PDEATHSIG)")?;
    Ok(())
}

/// A session and process group of its own, with no controlling terminal: a signal a runtime sends to its
/// process group (`kill(0, sig)`) then reaches only its own instance, never other functions' runtimes.
pub(crate) fn new_session() -> Result<()> {
    // SAFETY: setsid takes no arguments; it fails only for a process-group leader (reported).
    check(unsafe { libc::setsid() }, "setsid")?;
    Ok(())
}

pub fn launcher() -> Result<i32> {
    die_with_parent()?;
    new_session()?;
    for cg in std::env::var(crate::CGROUPS_ENV).unwrap_or_default().lines().filter(|l| !l.is_empty()) {
        std::fs::write(std::path::Path::new(cg).join("cgroup.procs"), "0").map_err(|e| format!("joining cgroup {cg}: {e}"))?;
    }
    // One line (compact JSON has no newline), or everything up to EOF.
    let mut json = Vec::new();
    std::io::BufRead::read_until(&mut std::io::stdin().lock(), b'\n', &mut json).map_err(|e| format!("reading the spec: {e}"))?;
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let spec: Spec = serde_json::from_slice(&json).map_err(|e| format!("the spec is not valid: {e}"))?;
    let spec = &spec;
    // A gated runtime waits for a byte on the spec's pipe; nothing else may inherit the pipe (close-on-exec).
    // A pre-started one's init keeps the control socket to receive its function (`activate`).
    let gate = if spec.gate || spec.prestart {
        // SAFETY: fcntl duplicates fd 0, which we own, to a new descriptor.
        Some(check(unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) }, "dup of the gate")?)
    } else {
        None
    };
    // The runtime must not inherit the spec's pipe.
    let null = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    // SAFETY: dup2 onto fd 0 of descriptors we own.
    check(unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 0) }, "dup2")?;
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // SAFETY: unshare only changes this process's namespace membership.
    check(unsafe { libc::unshare(flags) }, "unshare")?;
    // SAFETY: the launcher is single-threaded (a fresh exec of the openfc binary that has started no threads),
    // so the child may run arbitrary code after fork.
    let init = check(unsafe { libc::fork() }, "fork")?;
    if init == 0 {
        let (gate, ctrl) = if spec.prestart { (None, gate) } else { (gate, None) };
        let code = match namespace_init(spec, gate, ctrl) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("openfc sandbox: {e}");
                125
            }
        };
        // SAFETY: _exit ends the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    wait_exit(init)
}

/// pid 1 of the new pid namespace: builds the root, starts the runtime, reaps everything, mirrors its end.
fn namespace_init(spec: &Spec, gate: Option<libc::c_int>, ctrl: Option<libc::c_int>) -> Result<i32> {
    die_with_parent()?;
    new_session()?;
    mounts::build_root(spec)?;
    sethostname(&spec.hostname)?;
    loopback_up()?;
    // The runtime never runs as root, yet images' servers listen on ports like 80: let every user of this
    // network namespace (and only of it) bind low ports, as Docker and Podman do.
    let _ = std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0");
    for net in &spec.blackhole {
        // Before the runtime exists: these networks are unreachable from its first instruction.
        blackhole_route(*net).map_err(|e| format!("blackhole route to {net}: {e}"))?;
    }
    // With a user namespace, the runtime unshares it and waits while init (still privileged in the host's)
    // writes its id maps.
    let sync = match spec.userns_base {
        Some(_) => Some((pipe()?, pipe()?)),
        None => None,
    };
    // A pre-started runtime reads its function's activation line from a pipe init writes.
    let activation = match ctrl {
        Some(_) => Some(pipe()?),
        None => None,
    };
    // SAFETY: as in `launcher`, this process is single-threaded.
    let runtime = check(unsafe { libc::fork() }, "fork runtime")?;
    if runtime == 0 {
        if let Some((read, _)) = activation {
            // SAFETY: dup2 of a descriptor this process owns onto stdin (dup2 clears close-on-exec).
            check(unsafe { libc::dup2(read, 0) }, "dup2 activation")?;
        }
        let e = match sync {
            Some(((ready_r, ready_w), (go_r, go_w))) => {
                close(ready_r);
                close(go_w);
                enter_user_namespace(ready_w, go_r).and_then(|()| exec_runtime(spec, gate))
            }
            None => exec_runtime(spec, gate),
        };
        eprintln!("openfc sandbox: {}", e.unwrap_err());
        // SAFETY: see above.
        unsafe { libc::_exit(127) };
    }
    if let (Some(((ready_r, ready_w), (go_r, go_w))), Some(base)) = (sync, spec.userns_base) {
        close(ready_w);
        close(go_r);
        map_user_namespace(runtime, base, ready_r, go_w)?;
    }
    if let (Some(ctrl), Some((read, write))) = (ctrl, activation) {
        close(read);
        if let Some(code) = crate::activate::wait_activation(ctrl, runtime, write)? {
            return Ok(code);
        }
        close(ctrl);
    }
    // Reap orphans too; the namespace ends when the runtime does.
    loop {
        let mut status = 0;
        // SAFETY: valid out-pointer; -1 waits for any child.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == runtime {
            return Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) });
        }
        if pid < 0 && Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid: {}", Error::last_os_error()));
        }
    }
}

fn pipe() -> Result<(libc::c_int, libc::c_int)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, "pipe")?;
    Ok((fds[0], fds[1]))
}

fn close(fd: libc::c_int) {
    // SAFETY: closes a descriptor this process owns.
    unsafe { libc::close(fd) };
}

/// The runtime's side: a new user namespace (owning no other namespace: every mount and the network were set
/// up before, in the host's), then a byte to init and a wait for its answer.
fn enter_user_namespace(ready: libc::c_int, go: libc::c_int) -> Result<()> {
    // SAFETY: unshare takes a flag word.
    check(unsafe { libc::unshare(libc::CLONE_NEWUSER) }, "unshare(CLONE_NEWUSER)")?;
    let byte = 1u8;
    // SAFETY: writes one byte from `byte`, which outlives the call.
    if unsafe { libc::write(ready, (&byte as *const u8).cast(), 1) } != 1 {
        return Err(format!("telling init about the user namespace: {}", Error::last_os_error()));
    }
    close(ready);
    let mut answer = 0u8;
    // SAFETY: reads at most one byte into `answer`.
    if unsafe { libc::read(go, (&mut answer as *mut u8).cast(), 1) } != 1 {
        return Err("init could not map the user namespace".into());
    }
    close(go);
    Ok(())
}

/// Init's side: ids 0–65535 inside are host ids base… (the image's files were written owned by them), so uid 0
/// of an image is host uid `base`, never root.
fn map_user_namespace(runtime: libc::pid_t, base: u32, ready: libc::c_int, go: libc::c_int) -> Result<()> {
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into `byte`.
    let n = unsafe { libc::read(ready, (&mut byte as *mut u8).cast(), 1) };
    close(ready);
    if n != 1 {
        close(go);
        return Ok(()); // The runtime failed before unsharing; it reports why itself.
    }
    let map = format!("0 {base} 65536\n");
    for file in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{runtime}/{file}"), &map).map_err(|e| format!("writing the runtime's {file}: {e}"))?;
    }
    let go_byte = 1u8;
    // SAFETY: writes one byte from `go_byte`.
    unsafe { libc::write(go, (&go_byte as *const u8).cast(), 1) };
    close(go);
    Ok(())
}

fn sethostname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }, "sethostname")?;
    Ok(())
}

/// `ip route add blackhole NET`, said to the kernel over rtnetlink directly: spawning `ip` cost
/// milliseconds of every cold start of a function with outbound access.
pub(crate) fn blackhole_route(net: crate::Net) -> Result<()> {
    let (family, octets): (u8, Vec<u8>) = match net.addr() {
        std::net::IpAddr::V4(a) => (libc::AF_INET as u8, a.octets().to_vec()),
        std::net::IpAddr::V6(a) => (libc::AF_INET6 as u8, a.octets().to_vec()),
    };
    const NLMSG_HDR: usize = 16;
    const RTMSG: usize = 12;
    let attr_len = 4 + octets.len();
    let total = NLMSG_HDR + RTMSG + attr_len.next_multiple_of(4);
    let mut msg = Vec::with_capacity(total);
    // struct nlmsghdr
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&libc::RTM_NEWROUTE.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    msg.extend_from_slice(&[family, net.prefix(), 0, 0, libc::RT_TABLE_MAIN, libc::RTPROT_BOOT, libc::RT_SCOPE_UNIVERSE, libc::RTN_BLACKHOLE]);
    msg.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtattr RTA_DST + the address, padded to 4 bytes
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&libc::RTA_DST.to_ne_bytes());
    msg.extend_from_slice(&octets);
    msg.resize(total, 0);
    // SAFETY: plain socket creation; closed below.
    let fd = check(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) }, "netlink socket")?;
    let result = (|| {
        // SAFETY: the pointer and length describe `msg`; a zeroed sockaddr_nl addresses the kernel.
        let sent = unsafe {
            let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            libc::sendto(fd, msg.as_ptr().cast(), msg.len(), 0, (&kernel as *const libc::sockaddr_nl).cast(), std::mem::size_of::<libc::sockaddr_nl>() as u32)
        };
        if sent < 0 {
            return Err(format!("send: {}", Error::last_os_error()));
        }
        let mut reply = [0u8; 512];
        // SAFETY: the buffer is ours and its length is passed.
        let n = unsafe { libc::recv(fd, reply.as_mut_ptr().cast(), reply.len(), 0) };
        if n < 0 {
            return Err(format!("receive: {}", Error::last_os_error()));
        }
        // The acknowledgement: nlmsghdr with type NLMSG_ERROR, then struct nlmsgerr whose first field is
        // 0 or a negative errno.
        let n = n as usize;
        if n < NLMSG_HDR + 4 {
            return Err("short netlink reply".into());
        }
        let kind = u16::from_ne_bytes([reply[4], reply[5]]);
        if kind != libc::NLMSG_ERROR as u16 {
            return Err(format!("unexpected netlink reply type {kind}"));
        }
        let errno = i32::from_ne_bytes([reply[16], reply[17], reply[18], reply[19]]);
        if errno != 0 {
            return Err(Error::from_raw_os_error(-errno).to_string());
        }
        Ok(())
    })();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}

/// The new network namespace has only `lo`, down; bring it up so the runtime can listen and be reached.
fn loopback_up() -> Result<()> {
    // SAFETY: plain socket creation; closed below.
    let fd = check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }, "socket")?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
    let r = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &req)
        }
    };
    let err = Error::last_os_error();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if r < 0 { Err(format!("bringing up lo: {err}")) } else { Ok(()) }
}

/// Empties the bounding and ambient capability sets (dropping the bounding set needs CAP_SETPCAP, so this
/// runs before the uid change); the uid change then clears the permitted and effective sets, and
/// `clear_inheritable` the last one. Nothing the runtime execs can regain a capability.
fn drop_capabilities() -> Result<()> {
    const PR_CAPBSET_DROP: libc::c_int = 24;
    const PR_CAP_AMBIENT: libc::c_int = 47;
    const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; EINVAL marks the first capability this kernel does not know.
        if unsafe { libc::prctl(PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } < 0 {
            if Error::last_os_error().raw_os_error() == Some(libc::EINVAL) && cap > 0 {
                break;
            }
            return Err(format!("prctl(CAPBSET_DROP {cap}): {}", Error::last_os_error()));
        }
    }
    // SAFETY: as above.
    check(unsafe { libc::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) }, "prctl(CAP_AMBIENT_CLEAR_ALL)")?;
    Ok(())
}

/// Clears every capability set (run after the uid change, so only the inheritable set still holds any).
fn clear_inheritable() -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads a version-3 header and two data structs, both alive for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    check(r as libc::c_int, "capset")?;
    Ok(())
}

/// Waits for the gate's byte (see `Spec::gate`); EOF means the invoker gave up on this instance.
fn wait_gate(fd: libc::c_int) -> Result<()> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into `byte`, which outlives the call.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => return Ok(()),
            0 => return Err("the invoker closed the gate: not starting the runtime".into()),
            _ if Error::last_os_error().raw_os_error() == Some(libc::EINTR) => continue,
            _ => return Err(format!("waiting at the gate: {}", Error::last_os_error())),
        }
    }
}

/// Drops to the unprivileged user, applies limits and the syscall filter, and execs. Returns only on error.
pub(crate) fn exec_runtime(spec: &Spec, gate: Option<libc::c_int>) -> Result<()> {
    let rl = |res, n: u64, what| -> Result<()> {
        let lim = libc::rlimit { rlim_cur: n, rlim_max: n };
        // SAFETY: `lim` is a valid rlimit.
        check(unsafe { libc::setrlimit(res, &lim) }, what)?;
        Ok(())
    };
    // Never above the hard limit openfc itself runs under (raising it may be refused even to root).
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `current` is a valid out-pointer.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) }, "getrlimit(NOFILE)")?;
    rl(libc::RLIMIT_NOFILE, spec.nofile.min(current.rlim_max), "setrlimit(NOFILE)")?;
    rl(libc::RLIMIT_CORE, 0, "setrlimit(CORE)")?;
    let cwd = cstr(&spec.cwd.to_string_lossy())?;
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(cwd.as_ptr()) }, "chdir")?;
    drop_capabilities()?;
    // SAFETY: these calls take plain integers; order matters (groups, gid, then uid).
    unsafe {
        check(libc::setgroups(spec.groups.len(), spec.groups.as_ptr()), "setgroups")?;
        check(libc::setresgid(spec.gid, spec.gid, spec.gid), "setresgid")?;
        check(libc::setresuid(spec.uid, spec.uid, spec.uid), "setresuid")?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")?;
    }
    clear_inheritable()?;
    let argv: Vec<CString> = spec.argv.iter().map(|a| cstr(a)).collect::<Result<_>>()?;
    let envp: Vec<CString> = spec.env.iter().map(|(k, v)| cstr(&format!("{k}={v}"))).collect::<Result<_>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    if argv.is_empty() {
        return Err("empty argv".into());
    }
    // A bare program name (an image's ENTRYPOINT ["nginx"]) is looked up in the PATH the runtime gets.
    let program = match spec.argv[0].contains('/') {
        true => argv[0].clone(),
        false => cstr(&find_in_path(&spec.argv[0], spec.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str()))?)?,
    };
    // Last: everything above ran while the invoker prepared what the gate waits for.
    if let Some(fd) = gate {
        wait_gate(fd)?;
    }
    if spec.seccomp {
        filter::apply()?;
    }
    // SAFETY: argv and envp are NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(program.as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    Err(format!("exec {}: {}", spec.argv[0], Error::last_os_error()))
}

/// The first executable `name` in `path` (Docker's default PATH when unset), as execvp would find it.
fn find_in_path(name: &str, path: Option<&str>) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = path.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        if std::fs::metadata(&candidate).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
            return Ok(candidate);
        }
    }
    Err(format!("exec {name}: not found in PATH {path}"))
}
