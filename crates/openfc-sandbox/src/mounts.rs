//! The instance's root file system: a tmpfs with read-only binds of the system directories, the package,
//! layers and runtime shims; a minimal `/etc`; a size-capped `/tmp`; a new `/proc`; a minimal `/dev` (no
//! terminal). Then `pivot_root`. Every bind is read-only, nosuid and nodev down to its last submount.

use std::ffi::CString;
use std::io::Error;
use std::path::{Path, PathBuf};

use crate::Spec;
use crate::sys::{Result, check};

/// Host directories every runtime needs, shown read-only.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64"];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// The host `/etc` entries an instance sees (the rest of `/etc` — unit files, operator configs, keys — stays
/// hidden): the dynamic linker's cache, TLS roots, time zone, name-service and protocol tables, and the
/// configuration of language runtimes from the distribution. passwd, group, hosts, hostname and
/// resolv.conf are generated per instance (`Spec::etc_files`).
const ETC_ENTRIES: &[&str] = &[
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates", "ca-certificates.conf", "alternatives",
    "localtime", "timezone", "nsswitch.conf", "host.conf", "gai.conf", "protocols", "services", "rpc", "mime.types",
    "os-release", "debian_version", "mtab", "perl", "fonts", "magic", "magic.mime", "environment",
];
/// Host `/etc` entries shown by prefix: distribution configuration of the runtimes (python3.11, java-17-openjdk,
/// php/8.2, nodejs).
const ETC_PREFIXES: &[&str] = &["python3", "java-", "php", "node"];

fn c(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| format!("NUL in path {}", p.display()))
}

fn mount(src: Option<&Path>, target: &Path, fstype: Option<&str>, flags: libc::c_ulong, data: Option<&str>) -> Result<()> {
    let src_c = src.map(c).transpose()?;
    let target_c = c(target)?;
    let fstype_c = fstype.map(|f| CString::new(f).expect("static fs type"));
    let data_c = data.map(|d| CString::new(d).expect("mount options"));
    // SAFETY: all pointers are valid C strings or null, alive for the call.
    let r = unsafe {
        libc::mount(
            src_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            target_c.as_ptr(),
            fstype_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            flags,
            data_c.as_ref().map_or(std::ptr::null(), |s| s.as_ptr().cast()),
        )
    };
    check(r, &format!("mount {} on {}", src.map_or("-".into(), |s| s.display().to_string()), target.display()))?;
    Ok(())
}

/// `mount_setattr(dirfd, path, flags)` setting read-only, nosuid and nodev; the raw return value.
pub(crate) fn seal_at(dirfd: libc::c_int, path: &std::ffi::CStr, flags: libc::c_int) -> libc::c_long {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    let attr = MountAttr { attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: a valid C string and a mount_attr of the size passed, both alive for the call.
    unsafe {
        libc::syscall(libc::SYS_mount_setattr, dirfd, path.as_ptr(), flags, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    }
}

/// Makes the mount at `target` and every mount below it read-only, nosuid and nodev. A remount of a bind
/// changes only the top mount, so a submount of a bound host directory would stay writable; mount_setattr
/// (Linux 5.12) reaches them all. Older kernels: the top mount is remounted.
fn seal_recursive(target: &Path) -> Result<()> {
    let target_c = c(target)?;
    let r = seal_at(libc::AT_FDCWD, &target_c, libc::AT_RECURSIVE);
    if r == 0 {
        return Ok(());
    }
    // ENOSYS: a kernel before 5.12; EPERM: a container's seccomp profile that does not know the call.
    if !matches!(Error::last_os_error().raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
        return Err(format!("mount_setattr {}: {}", target.display(), Error::last_os_error()));
    }
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_REC;
    mount(None, target, None, flags, None)
}

/// Binds `src` at `target` read-only (a bind mount ignores MS_RDONLY until remounted).
fn bind_ro(src: &Path, target: &Path) -> Result<()> {
    if src.is_dir() {
        std::fs::create_dir_all(target).map_err(|e| format!("mkdir {}: {e}", target.display()))?;
    } else {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("mkdir {}: {e}", parent.display()))?;
        }
        std::fs::write(target, b"").map_err(|e| format!("touch {}: {e}", target.display()))?;
    }
    mount(Some(src), target, None, libc::MS_BIND | libc::MS_REC, None)?;
    seal_recursive(target)
}

/// Shows a host entry at `target`: a symlink is recreated (merged /usr, /etc/localtime), anything else bound.
fn show_host_entry(host: &Path, target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(host) {
        Ok(m) if m.file_type().is_symlink() => {
            let to = std::fs::read_link(host).map_err(|e| format!("readlink {}: {e}", host.display()))?;
            std::os::unix::fs::symlink(to, target).map_err(|e| format!("symlink {}: {e}", target.display()))
        }
        Ok(_) => bind_ro(host, target),
        Err(_) => Ok(()),
    }
}

/// The instance's `/etc`: the generated files, then the host entries of `ETC_ENTRIES` / `ETC_PREFIXES`.
fn build_etc(spec: &Spec, etc: &Path) -> Result<()> {
    std::fs::create_dir_all(etc).map_err(|e| format!("mkdir /etc: {e}"))?;
    for (name, text) in &spec.etc_files {
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            return Err(format!("bad /etc file name {name:?}"));
        }
        std::fs::write(etc.join(name), text).map_err(|e| format!("writing /etc/{name}: {e}"))?;
    }
    let Ok(entries) = std::fs::read_dir("/etc") else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let wanted = ETC_ENTRIES.contains(&name) || ETC_PREFIXES.iter().any(|p| name.starts_with(p));
        if wanted && !spec.etc_files.iter().any(|(n, _)| n == name) {
            show_host_entry(&entry.path(), &etc.join(name))?;
        }
    }
    Ok(())
}

fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

pub fn build_root(spec: &Spec) -> Result<()> {
    // Nothing we mount propagates back to the host.
    mount(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    if let Some(tree) = &spec.rootfs {
        return build_image_root(spec, tree);
    }
    let root = &spec.root;
    mount(Some(Path::new("tmpfs")), root, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some("size=16m,mode=0755"))?;
    for dir in SYSTEM_DIRS {
        // Merged /usr: /bin -> usr/bin and friends stay symlinks.
        show_host_entry(Path::new(dir), &inside(root, Path::new(dir)))?;
    }
    build_etc(spec, &inside(root, Path::new("/etc")))?;
    for (host, at) in &spec.binds {
        bind_ro(host, &inside(root, at))?;
    }
    let tmp = inside(root, Path::new("/tmp"));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("mkdir /tmp: {e}"))?;
    // `/opt` exists in every instance, as on FC (layers are shown there); `/code` and `/opt` are where a
    // pre-started runtime's function is attached when one is handed over (`activate`).
    for dir in ["/code", "/opt"] {
        std::fs::create_dir_all(inside(root, Path::new(dir))).map_err(|e| format!("mkdir {dir}: {e}"))?;
    }
    mount_special(spec, root)?;

    let old = root.join(".old");
    std::fs::create_dir_all(&old).map_err(|e| format!("mkdir .old: {e}"))?;
    let (root_c, old_c) = (c(root)?, c(&old)?);
    // SAFETY: pivot_root has no libc wrapper; both arguments are valid C strings.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, root_c.as_ptr(), old_c.as_ptr()) } as libc::c_int, "pivot_root")?;
    let slash = CString::new("/").expect("static");
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(slash.as_ptr()) }, "chdir /")?;
    let old_inside = CString::new("/.old").expect("static");
    // SAFETY: valid C string; MNT_DETACH lazily detaches the host's tree from this namespace.
    check(unsafe { libc::umount2(old_inside.as_ptr(), libc::MNT_DETACH) }, "umount old root")?;
    let _ = std::fs::remove_dir("/.old");
    // The root itself becomes read-only: only /tmp is writable.
    let flags = libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
    mount(None, Path::new("/"), None, flags, None)
}

/// A container image's root: `spec.root` gets a small private tmpfs holding the generated `/etc` files and the
/// mount point of the image's tree, which is bound there read-only (shared by every instance of the image).
/// `/tmp`, `/dev`, `/proc` and the `/etc` files are mounted over it — the unpacker made those targets plain
/// directories and files, never symlinks — and the tree becomes `/` with `pivot_root(".", ".")`, which needs no
/// directory for the old root inside a read-only tree.
fn build_image_root(spec: &Spec, tree: &Path) -> Result<()> {
    let stage = &spec.root;
    mount(Some(Path::new("tmpfs")), stage, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some("size=1m,mode=0700"))?;
    let etc_src = stage.join("etc");
    std::fs::create_dir_all(&etc_src).map_err(|e| format!("mkdir {}: {e}", etc_src.display()))?;
    let root = stage.join("root");
    std::fs::create_dir_all(&root).map_err(|e| format!("mkdir {}: {e}", root.display()))?;
    mount(Some(tree), &root, None, libc::MS_BIND | libc::MS_REC, None)?;
    seal_recursive(&root)?;
    for name in ["hosts", "resolv.conf"] {
        let text = spec.etc_files.iter().find(|(n, _)| n == name).map_or("", |(_, t)| t.as_str());
        let src = etc_src.join(name);
        std::fs::write(&src, text).map_err(|e| format!("writing {}: {e}", src.display()))?;
        let target = inside(&root, &Path::new("/etc").join(name));
        if std::fs::symlink_metadata(&target).map(|m| m.is_file()).unwrap_or(false) {
            mount(Some(&src), &target, None, libc::MS_BIND, None)?;
            seal_recursive(&target)?;
        }
    }
    mount_special(spec, &root)?;
    let root_c = c(&root)?;
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(root_c.as_ptr()) }, "chdir to the image root")?;
    let dot = CString::new(".").expect("static");
    // SAFETY: pivot_root has no libc wrapper; both arguments are valid C strings. With new and old root both
    // ".", the old root is stacked on top of the new one and detached next.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) } as libc::c_int, "pivot_root")?;
    // SAFETY: valid C string; MNT_DETACH lazily detaches the host's tree (stacked on ".") from this namespace.
    check(unsafe { libc::umount2(dot.as_ptr(), libc::MNT_DETACH) }, "umount old root")?;
    let slash = CString::new("/").expect("static");
    // SAFETY: valid C string.
    check(unsafe { libc::chdir(slash.as_ptr()) }, "chdir /")?;
    Ok(())
}

/// A private `devpts` at `/dev/pts` with `/dev/ptmx` leading to it, as a container has: terminals made here
/// (InstanceExec's, opened by openfc through `/proc/PID/root/dev/pts/ptmx`, or a function's own) are named
/// inside the instance (`tty` prints `/dev/pts/0`), and the host's terminals stay out of sight. Best effort: an
/// instance without it still runs, and InstanceExec then opens the terminal on the host's devpts.
fn mount_devpts(dev: &Path) {
    let pts = dev.join("pts");
    if std::fs::create_dir_all(&pts).is_err() {
        return;
    }
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    if mount(Some(Path::new("devpts")), &pts, Some("devpts"), flags, Some("newinstance,ptmxmode=0666,mode=0620")).is_ok() {
        let _ = std::os::unix::fs::symlink("pts/ptmx", dev.join("ptmx"));
    }
}

/// The writable, capped `/tmp`, a minimal `/dev` and a fresh `/proc` beneath `root` (their directories exist).
fn mount_special(spec: &Spec, root: &Path) -> Result<()> {
    let tmp = inside(root, Path::new("/tmp"));
    let opts = format!("size={}m,mode=1777", spec.tmp_mib);
    mount(Some(Path::new("tmpfs")), &tmp, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some(&opts))?;
    let dev = inside(root, Path::new("/dev"));
    std::fs::create_dir_all(&dev).map_err(|e| format!("mkdir /dev: {e}"))?;
    mount(Some(Path::new("tmpfs")), &dev, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NOEXEC, Some("size=64k,mode=0755"))?;
    for d in DEVICES {
        let host = Path::new("/dev").join(d);
        if host.exists() {
            let target = dev.join(d);
            std::fs::write(&target, b"").map_err(|e| format!("touch /dev/{d}: {e}"))?;
            mount(Some(&host), &target, None, libc::MS_BIND, None)?;
        }
    }
    std::fs::create_dir_all(dev.join("shm")).map_err(|e| format!("mkdir /dev/shm: {e}"))?;
    mount_devpts(&dev);
    let proc_dir = inside(root, Path::new("/proc"));
    std::fs::create_dir_all(&proc_dir).map_err(|e| format!("mkdir /proc: {e}"))?;
    mount(Some(Path::new("proc")), &proc_dir, Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)
}
