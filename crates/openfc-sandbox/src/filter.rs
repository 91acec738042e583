//! The seccomp allow-list: the system calls the supported runtimes make (python3, Node.js, go1 binaries,
//! the JVM, php-cli, custom runtimes and custom-container images — busybox and glibc servers), and nothing
//! else. A call not on the list fails with EPERM; a few fail with ENOSYS instead, where libc falls back to an
//! older call it may make (`ENOSYS_CALLS`, and every number newer than this list). On x86_64 every x32-ABI
//! call fails too, and a call made under another architecture kills the process (seccompiler's arch check).
//!
//! Where it came from: `strace -f -c` of each runtime running a small server workload outside the sandbox,
//! the calls common servers make on top (epoll, eventfd, signalfd, timerfd, sendfile, splice, ...), then the
//! e2e runtime suites run against a build whose default action is SECCOMP_RET_LOG instead of EPERM (see
//! `PROFILE`), the logged calls read back from the kernel log and each one decided here. To regenerate:
//! `scripts/seccomp-profile.sh` (it builds that binary in its own target directory, runs the suites against
//! it and prints every call the list lacks).
//!
//! What the list leaves out, on purpose (each fails with EPERM): namespaces (unshare, setns, clone with a
//! CLONE_NEW* flag), mounts (mount, umount2, pivot_root, chroot, the new mount API), other processes' memory
//! and descriptors (ptrace, process_vm_*, pidfd_getfd, kcmp, process_madvise), kernel keys, bpf,
//! perf_event_open, userfaultfd, io_uring, module loading, kexec, reboot, swap, accounting, quotas, clocks,
//! the hostname, I/O ports, modify_ldt, handles (open_by_handle_at), fanotify, syslog, sync (a host-wide
//! flush; syncfs and fsync stay), and any socket family other than Unix, IPv4, IPv6 and netlink.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use crate::sys::Result;

/// Set at build time (`OPENFC_SECCOMP_PROFILE=1 cargo build`, as `scripts/seccomp-profile.sh` does, into its
/// own target directory): calls the list refuses are allowed and logged (SECCOMP_RET_LOG, read back from the
/// kernel log) instead of refused. Never in a build that runs functions for anyone.
const PROFILE: bool = option_env!("OPENFC_SECCOMP_PROFILE").is_some();

// x86_64 numbers newer than the libc crate's table.
const SYS_CACHESTAT: i64 = 451;
const SYS_IO_PGETEVENTS: i64 = 333;
const SYS_MAP_SHADOW_STACK: i64 = 453;
const SYS_FUTEX_WAKE: i64 = 454;
const SYS_FUTEX_WAIT: i64 = 455;
const SYS_FUTEX_REQUEUE: i64 = 456;
const SYS_SETXATTRAT: i64 = 463;
const SYS_GETXATTRAT: i64 = 464;
const SYS_LISTXATTRAT: i64 = 465;
const SYS_REMOVEXATTRAT: i64 = 466;
const SYS_FILE_GETATTR: i64 = 468;
const SYS_FILE_SETATTR: i64 = 469;
/// The first x86_64 number this list has not considered (Linux 6.18's table ends at 469).
#[cfg(target_arch = "x86_64")]
const FIRST_UNKNOWN: u32 = 470;

macro_rules! calls {
    ($($name:ident),* $(,)?) => { &[$((libc::$name as i64, stringify!($name))),*] };
}

/// One group of the list: why the runtimes need it, and its calls (number, `SYS_` name).
struct Group {
    /// Documentation: the tests print it with the list (`cargo nextest run -p openfc-sandbox --no-capture
    /// the_list`).
    #[cfg_attr(not(test), allow(dead_code))]
    why: &'static str,
    calls: &'static [(i64, &'static str)],
}

/// The unconditional part of the list. Calls allowed only with some arguments are in `conditional`.
const GROUPS: &[Group] = &[
    Group {
        why: "memory: every allocator and loader (brk, mmap), the JVM's and Go's heaps and GCs (madvise, \
              mprotect for guard pages and JIT code, membarrier for safepoints), locked pages (OpenSSL's secure \
              heap), memfd for JIT double-mapping and anonymous files, pkeys and mseal (glibc and the JVM \
              protecting themselves), shadow stacks (glibc with CET)",
        calls: &[
            (libc::SYS_brk, "SYS_brk"),
            (libc::SYS_mmap, "SYS_mmap"),
            (libc::SYS_munmap, "SYS_munmap"),
            (libc::SYS_mprotect, "SYS_mprotect"),
            (libc::SYS_mremap, "SYS_mremap"),
            (libc::SYS_madvise, "SYS_madvise"),
            (libc::SYS_msync, "SYS_msync"),
            (libc::SYS_mincore, "SYS_mincore"),
            (libc::SYS_mlock, "SYS_mlock"),
            (libc::SYS_mlock2, "SYS_mlock2"),
            (libc::SYS_munlock, "SYS_munlock"),
            (libc::SYS_mlockall, "SYS_mlockall"),
            (libc::SYS_munlockall, "SYS_munlockall"),
            (libc::SYS_membarrier, "SYS_membarrier"),
            (libc::SYS_memfd_create, "SYS_memfd_create"),
            (libc::SYS_pkey_alloc, "SYS_pkey_alloc"),
            (libc::SYS_pkey_free, "SYS_pkey_free"),
            (libc::SYS_pkey_mprotect, "SYS_pkey_mprotect"),
            (libc::SYS_mseal, "SYS_mseal"),
            (SYS_MAP_SHADOW_STACK, "SYS_map_shadow_stack"),
        ],
    },
    Group {
        why: "files and descriptors: reading, writing and naming files in /tmp and the read-only tree, the \
              legacy x86_64 calls static and older binaries still make (open, stat, getdents, ...), the newer \
              ones glibc tries first (statx, faccessat2, fchmodat2, close_range, openat2), zero-copy transfers \
              servers use (sendfile, splice, tee, vmsplice, copy_file_range), advisory locks, extended attributes",
        calls: calls![
            SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_pread64, SYS_pwrite64, SYS_preadv, SYS_pwritev,
            SYS_preadv2, SYS_pwritev2, SYS_open, SYS_openat, SYS_openat2, SYS_creat, SYS_close, SYS_close_range,
            SYS_dup, SYS_dup2, SYS_dup3, SYS_fcntl, SYS_flock, SYS_lseek, SYS_fsync, SYS_fdatasync, SYS_syncfs,
            SYS_sync_file_range, SYS_truncate, SYS_ftruncate, SYS_fallocate, SYS_fadvise64, SYS_readahead,
            SYS_stat, SYS_fstat, SYS_lstat, SYS_newfstatat, SYS_statx, SYS_statfs, SYS_fstatfs, SYS_access,
            SYS_faccessat, SYS_faccessat2, SYS_readlink, SYS_readlinkat, SYS_getdents, SYS_getdents64,
            SYS_getcwd, SYS_chdir, SYS_fchdir, SYS_rename, SYS_renameat, SYS_renameat2, SYS_mkdir, SYS_mkdirat,
            SYS_rmdir, SYS_link, SYS_linkat, SYS_unlink, SYS_unlinkat, SYS_symlink, SYS_symlinkat, SYS_chmod,
            SYS_fchmod, SYS_fchmodat, SYS_fchmodat2, SYS_chown, SYS_fchown, SYS_lchown, SYS_fchownat, SYS_umask,
            SYS_utime, SYS_utimes, SYS_utimensat, SYS_futimesat, SYS_getxattr, SYS_lgetxattr, SYS_fgetxattr,
            SYS_listxattr, SYS_llistxattr, SYS_flistxattr, SYS_setxattr, SYS_lsetxattr, SYS_fsetxattr,
            SYS_removexattr, SYS_lremovexattr, SYS_fremovexattr, SYS_sendfile, SYS_splice, SYS_tee, SYS_vmsplice,
            SYS_copy_file_range, SYS_pipe, SYS_pipe2,
        ],
    },
    Group {
        why: "waiting for events: every event loop (epoll for libuv, Go's netpoller, asyncio, the JVM's NIO; \
              poll and select for the rest), eventfd, signalfd and timerfd (servers' wake-ups, signals and \
              timers as descriptors), inotify (file watchers, Node's fs.watch), Linux AIO (libaio users)",
        calls: calls![
            SYS_select, SYS_pselect6, SYS_poll, SYS_ppoll, SYS_epoll_create, SYS_epoll_create1, SYS_epoll_ctl,
            SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2, SYS_eventfd, SYS_eventfd2, SYS_signalfd,
            SYS_signalfd4, SYS_timerfd_create, SYS_timerfd_settime, SYS_timerfd_gettime, SYS_inotify_init,
            SYS_inotify_init1, SYS_inotify_add_watch, SYS_inotify_rm_watch, SYS_io_setup, SYS_io_destroy,
            SYS_io_submit, SYS_io_cancel, SYS_io_getevents,
        ],
    },
    Group {
        why: "sockets (the family of socket and socketpair is checked in `conditional`): the caPort server, \
              the Runtime API client, outbound calls, Unix sockets between a runtime's processes",
        calls: calls![
            SYS_bind, SYS_listen, SYS_accept, SYS_accept4, SYS_connect, SYS_getsockname, SYS_getpeername,
            SYS_sendto, SYS_recvfrom, SYS_sendmsg, SYS_recvmsg, SYS_sendmmsg, SYS_recvmmsg, SYS_shutdown,
            SYS_setsockopt, SYS_getsockopt,
        ],
    },
    Group {
        why: "processes and threads (clone's flags are checked in `conditional`): fork/exec of child processes \
              (shells, subprocess, child_process, os/exec), threads (set_tid_address, robust futex lists, \
              rseq, futexes), TLS and CPU features (arch_prctl), waiting for and signalling their own \
              processes (pidfd_open: asyncio's child watcher), sessions and process groups",
        calls: calls![
            SYS_fork, SYS_vfork, SYS_execve, SYS_execveat, SYS_exit, SYS_exit_group, SYS_wait4, SYS_waitid,
            SYS_kill, SYS_tkill, SYS_tgkill, SYS_pidfd_open, SYS_pidfd_send_signal, SYS_getpid, SYS_getppid,
            SYS_gettid, SYS_getpgid, SYS_setpgid, SYS_getpgrp, SYS_getsid, SYS_setsid, SYS_set_tid_address,
            SYS_set_robust_list, SYS_rseq, SYS_futex, SYS_futex_waitv, SYS_arch_prctl, SYS_restart_syscall,
        ],
    },
    Group {
        why: "numbers the libc crate lacks: io_pgetevents (AIO, above) and futex2 (Linux 6.7), the futex calls \
              newer libcs and runtimes use",
        calls: &[(SYS_IO_PGETEVENTS, "SYS_io_pgetevents"), (SYS_FUTEX_WAKE, "SYS_futex_wake"), (SYS_FUTEX_WAIT, "SYS_futex_wait"), (SYS_FUTEX_REQUEUE, "SYS_futex_requeue")],
    },
    Group {
        why: "scheduling: thread pools size themselves (sched_getaffinity), the JVM and Go yield and pin, \
              priorities may only be lowered without CAP_SYS_NICE",
        calls: calls![
            SYS_sched_yield, SYS_sched_getaffinity, SYS_sched_setaffinity, SYS_sched_getparam,
            SYS_sched_setparam, SYS_sched_getscheduler, SYS_sched_setscheduler, SYS_sched_get_priority_max,
            SYS_sched_get_priority_min, SYS_sched_rr_get_interval, SYS_sched_getattr, SYS_sched_setattr,
            SYS_getpriority, SYS_setpriority, SYS_ioprio_get, SYS_ioprio_set, SYS_getcpu,
        ],
    },
    Group {
        why: "signals: handlers, masks, alternate stacks (Go, the JVM), sigtimedwait and sigsuspend loops, \
              queued signals between a runtime's own threads",
        calls: calls![
            SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_rt_sigpending, SYS_rt_sigtimedwait,
            SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_rt_sigsuspend, SYS_sigaltstack, SYS_pause, SYS_alarm,
        ],
    },
    Group {
        why: "time and timers (reading clocks only; setting them is refused)",
        calls: calls![
            SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep, SYS_nanosleep, SYS_gettimeofday, SYS_time,
            SYS_getitimer, SYS_setitimer, SYS_timer_create, SYS_timer_settime, SYS_timer_gettime,
            SYS_timer_getoverrun, SYS_timer_delete, SYS_times,
        ],
    },
    Group {
        why: "identity, limits and the system's description: the set*id calls are for images whose entrypoint \
              drops to the user it already is (the kernel refuses any real change: no capabilities), capget/capset \
              likewise (libcap only ever lowers), rlimits (prlimit64: the JVM, Go, Node raise NOFILE to the hard \
              limit), uname, sysinfo and getrusage for runtimes sizing themselves",
        calls: calls![
            SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getresuid, SYS_getresgid, SYS_getgroups,
            SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid, SYS_setgroups,
            SYS_setfsuid, SYS_setfsgid, SYS_capget, SYS_capset, SYS_getrlimit, SYS_setrlimit, SYS_prlimit64,
            SYS_getrusage, SYS_sysinfo, SYS_uname, SYS_getrandom,
        ],
    },
    Group {
        why: "System V and POSIX IPC, in the instance's own IPC namespace: PHP's sysvsem/shmop, PostgreSQL-style \
              shared memory, message queues",
        calls: calls![
            SYS_shmget, SYS_shmat, SYS_shmdt, SYS_shmctl, SYS_semget, SYS_semop, SYS_semtimedop, SYS_semctl,
            SYS_msgget, SYS_msgsnd, SYS_msgrcv, SYS_msgctl, SYS_mq_open, SYS_mq_unlink, SYS_mq_timedsend,
            SYS_mq_timedreceive, SYS_mq_notify, SYS_mq_getsetattr,
        ],
    },
    Group {
        why: "a process restricting itself further: more seccomp filters (browsers' and runtimes' own sandboxes), \
              Landlock; both only ever take rights away",
        calls: calls![SYS_seccomp, SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self],
    },
];

/// Newer variants of calls on the list, refused with ENOSYS (not EPERM) so a libc that tries them first falls
/// back to the older call: clone3 (its flags are in memory, out of a filter's reach, so the namespace check on
/// clone's flags could not be made; glibc falls back to clone on ENOSYS), the *xattrat calls (Linux 6.13) and
/// file_getattr/file_setattr (6.16), new code paths for what the list already allows by path or descriptor.
/// cachestat (6.5) too: page-cache statistics, with no caller among the runtimes.
const ENOSYS_CALLS: &[(i64, &str)] = &[
    (libc::SYS_clone3, "SYS_clone3"),
    (SYS_SETXATTRAT, "SYS_setxattrat"),
    (SYS_GETXATTRAT, "SYS_getxattrat"),
    (SYS_LISTXATTRAT, "SYS_listxattrat"),
    (SYS_REMOVEXATTRAT, "SYS_removexattrat"),
    (SYS_FILE_GETATTR, "SYS_file_getattr"),
    (SYS_FILE_SETATTR, "SYS_file_setattr"),
    (SYS_CACHESTAT, "SYS_cachestat"),
];

/// `clone` flags that would create namespaces (the first step of many container escapes).
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// ioctl requests refused: pushing bytes into a terminal's input (a classic escape through a shared tty).
const DENIED_IOCTLS: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// Socket families: Unix, IPv4, IPv6, and netlink (glibc's getaddrinfo and getifaddrs, Node's
/// os.networkInterfaces). Packet, vsock, AF_ALG, RDS, TIPC and the rest are kernel code no runtime needs.
const SOCKET_FAMILIES: &[libc::c_int] = &[libc::AF_UNIX, libc::AF_INET, libc::AF_INET6, libc::AF_NETLINK];

/// prctl options allowed: naming threads, the parent-death signal, dumpability, the process's own seccomp
/// and no_new_privs, reading the capability sets, timer slack, child reaper (tini-like inits), THP and
/// speculation controls, VMA names (glibc and the JVM label their mappings), the Yama ptracer (crash
/// handlers set it; ptrace itself is refused). The rest (PR_SET_MM, syscall user dispatch, ...) is refused.
const PRCTL_OPTIONS: &[libc::c_int] = &[
    libc::PR_SET_PDEATHSIG,
    libc::PR_GET_PDEATHSIG,
    libc::PR_GET_DUMPABLE,
    libc::PR_SET_DUMPABLE,
    libc::PR_GET_KEEPCAPS,
    libc::PR_SET_KEEPCAPS,
    libc::PR_SET_NAME,
    libc::PR_GET_NAME,
    libc::PR_GET_SECCOMP,
    libc::PR_SET_SECCOMP,
    libc::PR_CAPBSET_READ,
    libc::PR_SET_TIMERSLACK,
    libc::PR_GET_TIMERSLACK,
    libc::PR_SET_CHILD_SUBREAPER,
    libc::PR_GET_CHILD_SUBREAPER,
    libc::PR_SET_NO_NEW_PRIVS,
    libc::PR_GET_NO_NEW_PRIVS,
    libc::PR_GET_TID_ADDRESS,
    libc::PR_SET_THP_DISABLE,
    libc::PR_GET_THP_DISABLE,
    libc::PR_CAP_AMBIENT,
    libc::PR_GET_SPECULATION_CTRL,
    libc::PR_SET_SPECULATION_CTRL,
    libc::PR_SET_VMA,
    libc::PR_SET_PTRACER,
];

fn cond(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, len, op, value).map_err(|e| format!("seccomp condition: {e}"))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule> {
    SeccompRule::new(conds).map_err(|e| format!("seccomp rule: {e}"))
}

/// One rule per value: the call is allowed when argument `arg` equals any of them.
fn any_of(arg: u8, values: impl IntoIterator<Item = u64>) -> Result<Vec<SeccompRule>> {
    values.into_iter().map(|v| rule(vec![cond(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)?])).collect()
}

/// The calls allowed only with some arguments (a call with rules is allowed when any of its rules matches).
fn conditional() -> Result<Vec<(i64, &'static str, Vec<SeccompRule>)>> {
    use SeccompCmpArgLen::{Dword, Qword};
    let fifo = |arg| rule(vec![cond(arg, Dword, SeccompCmpOp::MaskedEq(libc::S_IFMT as u64), libc::S_IFIFO as u64)?]);
    Ok(vec![
        // Processes and threads, without a new namespace (unshare and setns are not on the list at all).
        (libc::SYS_clone, "clone", vec![rule(vec![cond(0, Qword, SeccompCmpOp::MaskedEq(NAMESPACE_FLAGS), 0)?])?]),
        // Every request but terminal input injection: ioctls are per driver, and the sandbox's /dev holds
        // only null, zero, full, random, urandom (and the runtime's pipes and sockets).
        (
            libc::SYS_ioctl,
            "SYS_ioctl",
            vec![rule(DENIED_IOCTLS.iter().map(|r| cond(1, Dword, SeccompCmpOp::Ne, *r)).collect::<Result<_>>()?)?],
        ),
        // Only the query (0xffffffff) and plain PER_LINUX (0): a changed personality (READ_IMPLIES_EXEC,
        // ADDR_NO_RANDOMIZE) weakens the process's own memory protections.
        (libc::SYS_personality, "SYS_personality", any_of(0, [0, 0xffff_ffff])?),
        (libc::SYS_socket, "SYS_socket", any_of(0, SOCKET_FAMILIES.iter().map(|f| *f as u64))?),
        (libc::SYS_socketpair, "SYS_socketpair", any_of(0, [libc::AF_UNIX as u64])?),
        (libc::SYS_prctl, "SYS_prctl", any_of(0, PRCTL_OPTIONS.iter().map(|o| *o as u64))?),
        // mkfifo (Python's os.mkfifo, shells' process substitution); device nodes need capabilities anyway.
        (libc::SYS_mknod, "SYS_mknod", vec![fifo(1)?]),
        (libc::SYS_mknodat, "SYS_mknodat", vec![fifo(2)?]),
    ])
}

/// Every call the list allows, with or without conditions (number, name).
#[cfg(test)]
fn allowed() -> Result<Vec<(i64, &'static str)>> {
    let mut all: Vec<(i64, &str)> = GROUPS.iter().flat_map(|g| g.calls.iter().copied()).collect();
    all.extend(conditional()?.into_iter().map(|(nr, name, _)| (nr, name)));
    Ok(all)
}

fn program() -> Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, name) in GROUPS.iter().flat_map(|g| g.calls.iter()) {
        if rules.insert(*nr, Vec::new()).is_some() {
            return Err(format!("seccomp: {name} is on the allow-list twice"));
        }
    }
    for (nr, name, conditions) in conditional()? {
        if rules.insert(nr, conditions).is_some() {
            return Err(format!("seccomp: {name} is on the allow-list twice"));
        }
    }
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp arch: {e:?}"))?;
    let refuse = if PROFILE { SeccompAction::Log } else { SeccompAction::Errno(libc::EPERM as u32) };
    let filter = SeccompFilter::new(rules, refuse, SeccompAction::Allow, arch).map_err(|e| format!("seccomp filter: {e}"))?;
    filter.try_into().map_err(|e| format!("seccomp compile: {e:?}"))
}

/// The second filter, on the call's number alone: ENOSYS for `ENOSYS_CALLS`, for every number this list has
/// not considered (calls newer than it: libc falls back from those), and for the whole x32 ABI (numbers with
/// bit 30 set, the same audit arch as x86_64, which the allow-list would refuse anyway). It is installed after
/// the allow-list, so where both answer with an errno the kernel takes this one's (the most recently installed
/// filter wins among equal actions); everywhere else it allows, leaving the decision to the allow-list.
#[cfg(target_arch = "x86_64")]
fn enosys_program() -> BpfProgram {
    use seccompiler::sock_filter;
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JGE_K: u16 = 0x35;
    const BPF_JMP_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let n = ENOSYS_CALLS.len() as u8;
    let mut program = vec![
        sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        // Jump offsets count from the next instruction: the ENOSYS return is the last but one.
        sock_filter { code: BPF_JMP_JGE_K, jt: n + 2, jf: 0, k: 0x4000_0000 },
        sock_filter { code: BPF_JMP_JGE_K, jt: n + 1, jf: 0, k: FIRST_UNKNOWN },
    ];
    for (i, (nr, _)) in ENOSYS_CALLS.iter().enumerate() {
        program.push(sock_filter { code: BPF_JMP_JEQ_K, jt: n - i as u8, jf: 0, k: *nr as u32 });
    }
    program.push(sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ALLOW });
    program.push(sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ERRNO | libc::ENOSYS as u32 });
    program
}

/// Installs both filters on the calling thread; everything it execs keeps them. Runs last before execve, as the
/// runtime user, with no_new_privs set: seccompiler's own calls (prctl(PR_SET_NO_NEW_PRIVS), seccomp) and
/// execve are on the list, so the second filter and the exec pass the first.
pub fn apply() -> Result<()> {
    let program = program()?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp apply: {e}"))?;
    #[cfg(target_arch = "x86_64")]
    seccompiler::apply_filter(&enosys_program()).map_err(|e| format!("seccomp apply (enosys): {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_compiles_and_names_each_call_once() {
        let program = program().unwrap();
        assert!(program.len() < 4096, "{} instructions: over the kernel's limit", program.len());
        let all = allowed().unwrap();
        let mut numbers: Vec<i64> = all.iter().map(|(nr, _)| *nr).collect();
        numbers.sort();
        numbers.dedup();
        assert_eq!(numbers.len(), all.len());
        for (nr, name) in ENOSYS_CALLS {
            assert!(!numbers.contains(nr), "{name} is both allowed and ENOSYS");
        }
        for g in GROUPS {
            let names: Vec<&str> = g.calls.iter().map(|(_, n)| n.trim_start_matches("SYS_")).collect();
            println!("{}\n    {}", g.why, names.join(" "));
        }
        let conditional: Vec<&str> = conditional().unwrap().iter().map(|(_, n, _)| n.trim_start_matches("SYS_")).collect();
        println!("with conditions on their arguments\n    {}", conditional.join(" "));
        println!("{} calls allowed, {} instructions", all.len(), program.len());
    }

    #[test]
    fn the_dangerous_calls_are_not_on_it() {
        let numbers: Vec<i64> = allowed().unwrap().iter().map(|(nr, _)| *nr).collect();
        for nr in [
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_fsopen,
            libc::SYS_fsconfig,
            libc::SYS_fsmount,
            libc::SYS_fspick,
            libc::SYS_open_tree,
            libc::SYS_move_mount,
            libc::SYS_mount_setattr,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_ptrace,
            libc::SYS_process_vm_readv,
            libc::SYS_process_vm_writev,
            libc::SYS_pidfd_getfd,
            libc::SYS_kcmp,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_request_key,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_userfaultfd,
            libc::SYS_kexec_load,
            libc::SYS_kexec_file_load,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_delete_module,
            libc::SYS_swapon,
            libc::SYS_swapoff,
            libc::SYS_reboot,
            libc::SYS_acct,
            libc::SYS_quotactl,
            libc::SYS_clock_settime,
            libc::SYS_settimeofday,
            libc::SYS_adjtimex,
            libc::SYS_sethostname,
            libc::SYS_setdomainname,
            libc::SYS_iopl,
            libc::SYS_ioperm,
            libc::SYS_modify_ldt,
            libc::SYS_open_by_handle_at,
            libc::SYS_name_to_handle_at,
            libc::SYS_fanotify_init,
            libc::SYS_syslog,
            libc::SYS_sync,
        ] {
            assert!(!numbers.contains(&nr), "syscall {nr} is allowed");
        }
    }

    /// Installs both filters in a forked child, which checks what a few calls answer and then execs a dynamic
    /// binary (`/bin/true`, so the loader runs under the filter). Exit status: 0 when everything held, else the
    /// number of the first failed check.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_filters_refuse_what_is_not_listed_and_exec_still_works() {
        if PROFILE {
            return;
        }
        let program = program().unwrap();
        let enosys = enosys_program();
        let truebin = std::ffi::CString::new("/bin/true").unwrap();
        let argv = [truebin.as_ptr(), std::ptr::null()];
        let envp = [std::ptr::null::<libc::c_char>()];
        // SAFETY: the child only makes raw system calls (no allocation, no locks) and leaves by exec or _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: as above; every pointer passed is to memory the parent prepared, alive in the child.
            unsafe {
                let errno = || *libc::__errno_location();
                let refused = |r: libc::c_long, e: i32| r == -1 && errno() == e;
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || seccompiler::apply_filter(&program).is_err()
                    || seccompiler::apply_filter(&enosys).is_err()
                {
                    libc::_exit(1);
                }
                let checks: [(bool, i32); 12] = [
                    (refused(libc::syscall(libc::SYS_io_uring_setup, 1, 0), libc::EPERM), 2),
                    (refused(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER), libc::EPERM), 3),
                    (refused(libc::syscall(libc::SYS_clone3, 0, 0), libc::ENOSYS), 4),
                    (refused(libc::syscall(0x4000_0000 | libc::SYS_getpid), libc::ENOSYS), 5),
                    (refused(libc::syscall(FIRST_UNKNOWN as libc::c_long + 30), libc::ENOSYS), 6),
                    (refused(libc::syscall(libc::SYS_socket, libc::AF_PACKET, libc::SOCK_RAW, 0), libc::EPERM), 7),
                    (refused(libc::syscall(libc::SYS_personality, 0x0040000), libc::EPERM), 8),
                    (refused(libc::syscall(libc::SYS_ioctl, 0, libc::TIOCSTI, c"x".as_ptr()), libc::EPERM), 9),
                    (refused(libc::syscall(libc::SYS_prctl, libc::PR_SET_MM, 0, 0, 0, 0), libc::EPERM), 10),
                    (libc::syscall(libc::SYS_getpid) > 0, 11),
                    (libc::syscall(libc::SYS_personality, 0xffff_ffff_u64) >= 0, 12),
                    (refused(libc::syscall(libc::SYS_kcmp, 0, 0, 0, 0, 0), libc::EPERM), 13),
                ];
                for (ok, code) in checks {
                    if !ok {
                        libc::_exit(code);
                    }
                }
                let fd = libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0);
                if fd < 0 {
                    libc::_exit(14);
                }
                libc::execve(truebin.as_ptr(), argv.as_ptr(), envp.as_ptr());
                libc::_exit(15);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "the child died: status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "check {} failed", libc::WEXITSTATUS(status));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_enosys_filter_jumps_to_its_returns() {
        let p = enosys_program();
        let ret_errno = p.len() - 1;
        for (i, ins) in p.iter().enumerate().skip(1).take(p.len() - 3) {
            assert_eq!(i + 1 + ins.jt as usize, ret_errno, "instruction {i}");
        }
        assert_eq!(p[ret_errno].k, 0x0005_0000 | libc::ENOSYS as u32);
    }
}
