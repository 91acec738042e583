//! The seccomp deny-list: system calls a function has no business making, answered with EPERM; terminal
//! input injection (TIOCSTI, TIOCLINUX) refused; and on x86_64 every x32-ABI call refused, so no denied call
//! is reachable under its x32 number.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

use crate::sys::Result;

const DENIED: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_userfaultfd,
    libc::SYS_clock_settime,
    libc::SYS_settimeofday,
    libc::SYS_adjtimex,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_lookup_dcookie,
    libc::SYS_fanotify_init,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    // io_uring performs I/O (and, on older kernels, much more) out of the filter's sight.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // The new mount API: each is a way to mount what `mount` is refused for.
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_mount_setattr,
];

/// ioctl requests refused: pushing bytes into a terminal's input (a classic escape through a shared tty).
const DENIED_IOCTLS: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// `clone` flags that would create namespaces (the first step of many container escapes).
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

fn install(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<()> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp arch: {e:?}"))?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let program: BpfProgram = filter.try_into().map_err(|e| format!("seccomp compile: {e:?}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp apply: {e}"))
}

/// Refuses every system call made through the x32 ABI (numbers with bit 30 set, same audit arch as x86_64):
/// seccompiler matches exact numbers, so without this a denied call stays reachable as `nr | 0x4000_0000` on
/// kernels built with x32 support.
#[cfg(target_arch = "x86_64")]
fn refuse_x32() -> Result<()> {
    use seccompiler::sock_filter;
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let program = vec![
        sock_filter { code: BPF_LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        sock_filter { code: BPF_JMP_JGE_K, jt: 0, jf: 1, k: 0x4000_0000 },
        sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ERRNO | libc::ENOSYS as u32 },
        sock_filter { code: BPF_RET_K, jt: 0, jf: 0, k: RET_ALLOW },
    ];
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp apply (x32): {e}"))
}

pub fn apply() -> Result<()> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED.iter().map(|s| (*s, Vec::new())).collect();
    // clone with any namespace flag: one rule per flag (a rule matches when all its conditions do).
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|f| {
            let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*f as u64), *f as u64)
                .map_err(|e| format!("seccomp condition: {e}"))?;
            SeccompRule::new(vec![cond]).map_err(|e| format!("seccomp rule: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let ioctl_rules = DENIED_IOCTLS
        .iter()
        .map(|req| {
            let cond = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, *req)
                .map_err(|e| format!("seccomp condition: {e}"))?;
            SeccompRule::new(vec![cond]).map_err(|e| format!("seccomp rule: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    rules.insert(libc::SYS_ioctl, ioctl_rules);
    // personality: only the query (0xffffffff) and plain PER_LINUX (0); a changed personality (say
    // READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE) weakens the process's own memory protections.
    let keep = |v: u64| SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, v).map_err(|e| format!("seccomp condition: {e}"));
    let personality = SeccompRule::new(vec![keep(0)?, keep(0xffff_ffff)?]).map_err(|e| format!("seccomp rule: {e}"))?;
    rules.insert(libc::SYS_personality, vec![personality]);
    #[cfg(target_arch = "x86_64")]
    refuse_x32()?;
    install(rules, libc::EPERM)?;
    // clone3 passes its flags in memory, out of a filter's reach: answer ENOSYS so libc falls back to clone.
    install(BTreeMap::from([(libc::SYS_clone3, Vec::new())]), libc::ENOSYS)
}
