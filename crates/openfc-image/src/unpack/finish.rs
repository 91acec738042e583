//! What happens once, after the last layer: the sandbox's mount targets made plain, then directory modes
//! and mtimes applied children first.

use rustix::fd::AsFd;
use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, chmodat, fchmod, fchown, futimens, openat, utimensat,
};

use super::fault::Fault;
use super::fsroot::{DirMeta, Tree, kind_at, make_dir, open_beneath, open_dir, resolve};
use super::path::{join, parent, show};

/// Directories the launcher mounts over (containers.md §4.1), with the mode a missing one gets.
const MOUNT_DIRS: [(&[u8], u32); 4] = [(b"proc", 0o755), (b"dev", 0o755), (b"tmp", 0o1777), (b"etc", 0o755)];
/// Files the launcher binds read-only into `etc/`.
const MOUNT_FILES: [&[u8]; 2] = [b"resolv.conf", b"hosts"];

/// Makes every mount target a plain directory or file owned by the image's root. A symlink there would be
/// followed on the host side when the launcher mounts over it, so it is replaced, never honoured.
pub(crate) fn mount_targets(tree: &mut Tree) -> Result<(), Fault> {
    let root = tree.root.try_clone().map_err(|e| Fault::Host(format!("dup root: {e}")))?;
    for (name, mode) in MOUNT_DIRS {
        match kind_at(root.as_fd(), name, name)? {
            Some(FileType::Directory) => continue,
            Some(kind) => {
                tracing::info!(path = %show(name), ?kind, "image mount target replaced by a plain directory");
                tree.remove(root.as_fd(), name, name)?;
            }
            None => {}
        }
        make_dir(root.as_fd(), name, name, tree.owners, mode)?;
        tree.dir_meta.insert(name.to_vec(), DirMeta { mode, mtime: None });
    }
    let etc = open_dir(root.as_fd(), b"etc", b"etc")?;
    for name in MOUNT_FILES {
        let shown = join(b"etc", name);
        match kind_at(etc.as_fd(), name, &shown)? {
            Some(FileType::RegularFile) => continue,
            Some(kind) => {
                tracing::info!(path = %show(&shown), ?kind, "image mount target replaced by an empty file");
                tree.remove(etc.as_fd(), name, &shown)?;
            }
            None => {}
        }
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let file = open_beneath(etc.as_fd(), name, flags, Mode::from_raw_mode(0o644))
            .map_err(|e| Fault::os("create", &shown, e))?;
        let (uid, gid) = tree.owners.root();
        if let Err(e) = fchown(&file, Some(uid), Some(gid))
            && !tree.owners.tolerate(e)
        {
            return Err(Fault::os("chown", &shown, e));
        }
        fchmod(&file, Mode::from_raw_mode(0o644)).map_err(|e| Fault::os("chmod", &shown, e))?;
    }
    Ok(())
}

/// Applies the recorded directory modes and mtimes. Reverse path order puts every directory after all of
/// its descendants: their writes no longer move its mtime, and a directory made read-only (or 0) by the
/// image is only closed once nothing beneath it is left to do.
pub(crate) fn dir_metadata(tree: &Tree, max_depth: usize) -> Result<(), Fault> {
    for (canon, meta) in tree.dir_meta.iter().rev() {
        let times = meta.mtime.map(|s| {
            let at = Timespec { tv_sec: s, tv_nsec: 0 };
            Timestamps { last_access: at, last_modification: at }
        });
        let mode = Mode::from_raw_mode(meta.mode);
        if canon.is_empty() {
            let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
            let root = openat(&tree.root, c".", flags, Mode::empty()).map_err(|e| Fault::os("open", b"/", e))?;
            fchmod(&root, mode).map_err(|e| Fault::os("chmod", b"/", e))?;
            if let Some(times) = &times {
                futimens(&root, times).map_err(|e| Fault::os("utimens", b"/", e))?;
            }
            continue;
        }
        let parent_path = parent(canon).unwrap_or_default();
        let name = &canon[parent_path.len() + usize::from(!parent_path.is_empty())..];
        let parts: Vec<&[u8]> = parent_path.split(|b| *b == b'/').filter(|p| !p.is_empty()).collect();
        let Some(dir) = resolve(tree.root.as_fd(), &parts, max_depth, None)? else { continue };
        // Only a directory still standing at its recorded path gets its mode: chmodat follows symlinks.
        if kind_at(dir.fd.as_fd(), name, canon)? != Some(FileType::Directory) {
            continue;
        }
        chmodat(dir.fd.as_fd(), name, mode, AtFlags::empty()).map_err(|e| Fault::os("chmod", canon, e))?;
        if let Some(times) = &times {
            utimensat(dir.fd.as_fd(), name, times, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| Fault::os("utimens", canon, e))?;
        }
    }
    Ok(())
}
