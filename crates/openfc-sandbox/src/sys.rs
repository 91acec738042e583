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
fn wait_exit(pid: libc::pid_t) -> Result<i32> {
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

fn die_with_parent() -> Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) }, "prctl(PDEATHSIG)")?;
    Ok(())
}

pub fn launcher(spec: &Spec) -> Result<i32> {
    die_with_parent()?;
    for cg in &spec.cgroups {
        std::fs::write(cg.join("cgroup.procs"), "0").map_err(|e| format!("joining cgroup {}: {e}", cg.display()))?;
    }
    let flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    // SAFETY: unshare only changes this process's namespace membership.
    check(unsafe { libc::unshare(flags) }, "unshare")?;
    // SAFETY: the launcher is single-threaded (a fresh exec of the openfc binary that has started no threads),
    // so the child may run arbitrary code after fork.
    let init = check(unsafe { libc::fork() }, "fork")?;
    if init == 0 {
        let code = match namespace_init(spec) {
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
fn namespace_init(spec: &Spec) -> Result<i32> {
    die_with_parent()?;
    mounts::build_root(spec)?;
    sethostname(&spec.hostname)?;
    loopback_up()?;
    for addr in &spec.blackhole {
        // Before the runtime exists: the host's own addresses are unreachable from its first instruction.
        let status = std::process::Command::new("/usr/sbin/ip")
            .args(["route", "add", "blackhole", &format!("{addr}/32")])
            .status()
            .map_err(|e| format!("ip route add blackhole {addr}: {e}"))?;
        if !status.success() {
            return Err(format!("ip route add blackhole {addr}: {status}"));
        }
    }
    // SAFETY: as in `launcher`, this process is single-threaded.
    let runtime = check(unsafe { libc::fork() }, "fork runtime")?;
    if runtime == 0 {
        let e = exec_runtime(spec);
        eprintln!("openfc sandbox: {}", e.unwrap_err());
        // SAFETY: see above.
        unsafe { libc::_exit(127) };
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

fn sethostname(name: &str) -> Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }, "sethostname")?;
    Ok(())
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

/// Drops to the unprivileged user, applies limits and the syscall filter, and execs. Returns only on error.
fn exec_runtime(spec: &Spec) -> Result<()> {
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
    // SAFETY: these calls take plain integers; order matters (groups, gid, then uid).
    unsafe {
        check(libc::setgroups(0, std::ptr::null()), "setgroups")?;
        check(libc::setresgid(spec.gid, spec.gid, spec.gid), "setresgid")?;
        check(libc::setresuid(spec.uid, spec.uid, spec.uid), "setresuid")?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")?;
    }
    let argv: Vec<CString> = spec.argv.iter().map(|a| cstr(a)).collect::<Result<_>>()?;
    let envp: Vec<CString> = spec.env.iter().map(|(k, v)| cstr(&format!("{k}={v}"))).collect::<Result<_>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut env_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    env_ptrs.push(std::ptr::null());
    if argv.is_empty() {
        return Err("empty argv".into());
    }
    if spec.seccomp {
        filter::apply()?;
    }
    // SAFETY: argv and envp are NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(argv[0].as_ptr(), argv_ptrs.as_ptr(), env_ptrs.as_ptr()) };
    Err(format!("exec {}: {}", spec.argv[0], Error::last_os_error()))
}
