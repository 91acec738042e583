//! The instance's root file system: a tmpfs with read-only binds of the system directories, the package,
//! layers and runtime shims; a size-capped `/tmp`; a new `/proc`; a minimal `/dev`. Then `pivot_root`.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::Spec;
use crate::sys::{Result, check};

/// Host directories every runtime needs, shown read-only.
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

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
    mount(None, target, None, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_REC, None)
}

fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

pub fn build_root(spec: &Spec) -> Result<()> {
    let root = &spec.root;
    // Nothing we mount propagates back to the host.
    mount(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    mount(Some(Path::new("tmpfs")), root, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some("size=16m,mode=0755"))?;
    for dir in SYSTEM_DIRS {
        let host = Path::new(dir);
        let target = inside(root, host);
        match std::fs::symlink_metadata(host) {
            // Merged /usr: /bin -> usr/bin and friends stay symlinks.
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(host).map_err(|e| format!("readlink {dir}: {e}"))?;
                std::os::unix::fs::symlink(to, &target).map_err(|e| format!("symlink {dir}: {e}"))?;
            }
            Ok(_) => bind_ro(host, &target)?,
            Err(_) => {}
        }
    }
    for (host, at) in &spec.binds {
        bind_ro(host, &inside(root, at))?;
    }
    let tmp = inside(root, Path::new("/tmp"));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("mkdir /tmp: {e}"))?;
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
    let proc_dir = inside(root, Path::new("/proc"));
    std::fs::create_dir_all(&proc_dir).map_err(|e| format!("mkdir /proc: {e}"))?;
    mount(Some(Path::new("proc")), &proc_dir, Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)?;

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
    mount(None, Path::new("/"), None, libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_BIND | libc::MS_NOSUID, None)
}
