//! Every file-system operation of the unpacker, confined beneath the image root.
//!
//! Names are resolved one component at a time from directory descriptors, like umoci's securejoin (the
//! test oracle) and the kernel's `RESOLVE_IN_ROOT`: a symlink met on the way is read and its target
//! continued inside the root (an absolute target restarts at the root, `..` stops at it), so `a -> /etc`
//! leads to `<root>/etc`, never to the host's. Each step opens a single component with `openat2`
//! (`RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so even a tree changed under our feet cannot move a step
//! outside its directory. The final component of an entry is never followed (`AT_SYMLINK_NOFOLLOW`,
//! `O_NOFOLLOW`). Doing the walk here rather than in one `openat2(RESOLVE_IN_ROOT)` call gives two things
//! the kernel call cannot: the canonical path (whiteouts need it, see `apply`) and umoci's `MkdirAll`
//! through a dangling symlink (`var/run -> /run` before `/run` exists).

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Uid, chmodat, chownat, mkdirat, openat, openat2,
    readlinkat, statat, unlinkat,
};
use rustix::io::Errno;

use super::fault::Fault;
use super::path::{join, show};

/// Linux's own bound on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// A directory reached inside the root: its descriptor (`O_PATH`) and its path without symlinks.
pub(crate) struct Located {
    pub(crate) fd: OwnedFd,
    pub(crate) canon: Vec<u8>,
}

/// How host owners are derived from tar owners (see `apply_layers`' `owner_base`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owners {
    pub(crate) base: Option<u32>,
}

impl Owners {
    /// Ids 65536 and above have no place in the 0–65535 the sandbox maps, so they become 65534 (nobody).
    pub(crate) fn host(self, uid: u64, gid: u64) -> Result<(Uid, Gid), Fault> {
        let one = |id: u64| -> Result<u32, Fault> {
            let raw = match self.base {
                Some(base) => base.checked_add(if id >= 65536 { 65534 } else { id as u32 }),
                None => u32::try_from(id).ok(),
            };
            // u32::MAX is chown's "leave unchanged", never an owner.
            raw.filter(|r| *r != u32::MAX).ok_or_else(|| Fault::refused(format!("owner id {id} out of range")))
        };
        Ok((Uid::from_raw(one(uid)?), Gid::from_raw(one(gid)?)))
    }

    /// The image's root user on the host.
    pub(crate) fn root(self) -> (Uid, Gid) {
        let base = self.base.unwrap_or(0);
        (Uid::from_raw(base), Gid::from_raw(base))
    }

    /// Owners are only written when a base is given or we may chown at all; without a base an unprivileged
    /// unpacker keeps its own uid (EPERM) instead of failing.
    pub(crate) fn tolerate(self, errno: Errno) -> bool {
        self.base.is_none() && errno == Errno::PERM
    }
}

/// The tree being built: the root, the owners, and what must wait for the last layer.
pub(crate) struct Tree {
    pub(crate) root: OwnedFd,
    pub(crate) owners: Owners,
    max_depth: usize,
    /// The last parent resolved, by its name as written: tar entries come grouped by directory.
    cache: Option<(Vec<u8>, Rc<Located>)>,
    /// Mode and mtime of every directory a layer described, keyed by canonical path and applied after the
    /// last layer: writing children changes a directory's mtime, and a read-only directory applied early
    /// would refuse the next layer's entries when the unpacker is not root.
    pub(crate) dir_meta: BTreeMap<Vec<u8>, DirMeta>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct DirMeta {
    pub(crate) mode: u32,
    pub(crate) mtime: Option<i64>,
}

impl Tree {
    pub(crate) fn open(root: &std::path::Path, owners: Owners, max_depth: usize) -> Result<Tree, Fault> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(root, flags, Mode::empty())
            .map_err(|e| Fault::os("open root", root.as_os_str().as_encoded_bytes(), e))?;
        Ok(Tree { root: fd, owners, max_depth, cache: None, dir_meta: BTreeMap::new() })
    }

    /// The directory `parts` names, created (umoci's `MkdirAll`, owned by the image's root) when `create`;
    /// `None` when it does not exist and `create` is false.
    pub(crate) fn dir(&mut self, parts: &[&[u8]], create: bool) -> Result<Option<Rc<Located>>, Fault> {
        let key = parts.join(&b'/');
        if let Some((cached, located)) = &self.cache
            && *cached == key
        {
            return Ok(Some(located.clone()));
        }
        let owners = self.owners;
        let mut mkdir = |dir: BorrowedFd<'_>, name: &[u8], canon: &[u8]| make_dir(dir, name, canon, owners, 0o755);
        let found = resolve(self.root.as_fd(), parts, self.max_depth, create.then_some(&mut mkdir))?;
        Ok(found.map(|located| {
            let located = Rc::new(located);
            self.cache = Some((key, located.clone()));
            located
        }))
    }

    /// Gives the root directory itself an owner (its descriptor is `O_PATH`, which `fchown` refuses).
    pub(crate) fn chown_root(&self, uid: Uid, gid: Gid) -> Result<(), Fault> {
        match chownat(&self.root, c"", Some(uid), Some(gid), AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW) {
            Err(e) if !self.owners.tolerate(e) => Err(Fault::os("chown", b"/", e)),
            _ => Ok(()),
        }
    }

    /// Removes `name` in `dir` (recursively) and forgets whatever was recorded beneath it.
    pub(crate) fn remove(&mut self, dir: BorrowedFd<'_>, name: &[u8], canon: &[u8]) -> Result<(), Fault> {
        // A removed directory (or one replaced by a symlink next) must not be served from the cache.
        self.cache = None;
        remove_all(dir, name, canon)?;
        let mut below = canon.to_vec();
        below.push(b'/');
        let doomed: Vec<Vec<u8>> = self
            .dir_meta
            .range(below.clone()..)
            .take_while(|(k, _)| k.starts_with(&below))
            .map(|(k, _)| k.clone())
            .chain(std::iter::once(canon.to_vec()))
            .collect();
        for key in doomed {
            self.dir_meta.remove(&key);
        }
        Ok(())
    }
}

/// Creates a directory owned by the image's root with an explicit mode (mkdir's is cut by the umask).
pub(crate) fn make_dir(dir: BorrowedFd<'_>, name: &[u8], canon: &[u8], owners: Owners, mode: u32) -> Result<(), Fault> {
    mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(|e| Fault::os("mkdir", canon, e))?;
    chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty()).map_err(|e| Fault::os("chmod", canon, e))?;
    let (uid, gid) = owners.root();
    match chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW) {
        Err(e) if !owners.tolerate(e) => Err(Fault::os("chown", canon, e)),
        _ => Ok(()),
    }
}

/// Creates a missing directory during a walk, given its parent, name and canonical path.
pub(crate) type MakeDir<'m> = &'m mut dyn FnMut(BorrowedFd<'_>, &[u8], &[u8]) -> Result<(), Fault>;

/// Walks `parts` from `root`, following symlinks inside the root. `mkdir` creates a missing directory (given
/// its parent, name and canonical path); without it a missing or non-directory component answers `None`.
pub(crate) fn resolve(
    root: BorrowedFd<'_>,
    parts: &[&[u8]],
    max_depth: usize,
    mut mkdir: Option<MakeDir<'_>>,
) -> Result<Option<Located>, Fault> {
    let mut stack: Vec<(OwnedFd, Vec<u8>)> = Vec::new();
    let mut pending: Vec<Vec<u8>> = parts.iter().rev().map(|p| p.to_vec()).collect();
    let mut links = 0;
    let canon_of = |stack: &[(OwnedFd, Vec<u8>)]| -> Vec<u8> {
        stack.iter().map(|(_, n)| n.as_slice()).collect::<Vec<_>>().join(&b'/')
    };
    while let Some(part) = pending.pop() {
        match part.as_slice() {
            b"" | b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let cur = stack.last().map_or(root, |(fd, _)| fd.as_fd());
        let here = join(&canon_of(&stack), &part);
        match kind_at(cur, &part, &here)? {
            Some(FileType::Directory) => {}
            Some(FileType::Symlink) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Fault::refused(format!("'{}': too many levels of symbolic links", show(&here))));
                }
                let target =
                    readlinkat(cur, part.as_slice(), Vec::new()).map_err(|e| Fault::os("readlink", &here, e))?;
                let target = target.into_bytes();
                if target.starts_with(b"/") {
                    stack.clear();
                }
                pending.extend(target.split(|b| *b == b'/').rev().map(<[u8]>::to_vec));
                continue;
            }
            Some(_) if mkdir.is_some() => {
                return Err(Fault::refused(format!("'{}' is not a directory", show(&here))));
            }
            Some(_) => return Ok(None),
            None => match mkdir.as_mut() {
                Some(make) => make(cur, &part, &here)?,
                None => return Ok(None),
            },
        }
        let fd = open_beneath(cur, &part, OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty())
            .map_err(|e| Fault::os("open", &here, e))?;
        stack.push((fd, part));
        if stack.len() > max_depth {
            return Err(Fault::Cap {
                limit: format!("{max_depth} path components"),
                actual: format!("'{}' after following symlinks", show(&here)),
            });
        }
    }
    let canon = canon_of(&stack);
    let fd = match stack.pop() {
        Some((fd, _)) => fd,
        None => openat(root, c".", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Fault::os("open", b"/", e))?,
    };
    Ok(Some(Located { fd, canon }))
}

/// Set once the kernel has said it has no `openat2` (before Linux 5.6, or a seccomp profile refusing it).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens one component of `dir`, never a symlink and never outside `dir`. Without `openat2` the same holds
/// through `O_NOFOLLOW`: `name` is a single component (no `/`) and never `..`.
pub(crate) fn open_beneath(dir: BorrowedFd<'_>, name: &[u8], flags: OFlags, mode: Mode) -> Result<OwnedFd, Errno> {
    if name.contains(&b'/') || name == b".." {
        return Err(Errno::INVAL);
    }
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match openat2(dir, name, flags, mode, how) {
            Err(Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    openat(dir, name, flags, mode)
}

/// The type of `name` in `dir` without following it; `None` when absent.
pub(crate) fn kind_at(dir: BorrowedFd<'_>, name: &[u8], shown: &[u8]) -> Result<Option<FileType>, Fault> {
    match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(Fault::os("stat", shown, e)),
    }
}

/// The names in a directory (without `.` and `..`), read before anything in it changes. `dir` may be an
/// `O_PATH` descriptor: listing goes through a fresh readable one.
pub(crate) fn list(dir: BorrowedFd<'_>, shown: &[u8]) -> Result<Vec<Vec<u8>>, Fault> {
    let mut names = Vec::new();
    let readable = openat(dir, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Fault::os("opendir", shown, e))?;
    let entries = Dir::new(readable).map_err(|e| Fault::os("opendir", shown, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Fault::os("readdir", shown, e))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

/// Opens a directory of `dir` (never through a symlink) as a base for `*at` calls.
pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &[u8], shown: &[u8]) -> Result<OwnedFd, Fault> {
    open_beneath(dir, name, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).map_err(|e| Fault::os("open", shown, e))
}

/// `rm -rf dir/name` without following any symlink; absent is fine.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &[u8], shown: &[u8]) -> Result<(), Fault> {
    match kind_at(dir, name, shown)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            let sub = open_dir(dir, name, shown)?;
            for child in list(sub.as_fd(), shown)? {
                remove_all(sub.as_fd(), &child, &join(shown, &child))?;
            }
            unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(|e| Fault::os("rmdir", shown, e))
        }
        Some(_) => unlinkat(dir, name, AtFlags::empty()).map_err(|e| Fault::os("unlink", shown, e)),
    }
}

/// The content of a regular file at `parts` beneath `root`, following symlinks inside the root (an image's
/// `/etc/passwd` may be one); `None` when there is no such file. Refused above `max_bytes`.
pub(crate) fn read_file_in_root(
    root: BorrowedFd<'_>,
    parts: &[&[u8]],
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, Fault> {
    use std::io::Read;
    let mut parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
    for _ in 0..=MAX_LINKS {
        parts.retain(|p| !p.is_empty() && p != b".");
        let Some((name, parents)) = parts.split_last() else { return Ok(None) };
        if name == b".." {
            return Ok(None);
        }
        let parents: Vec<&[u8]> = parents.iter().map(Vec::as_slice).collect();
        let Some(dir) = resolve(root, &parents, usize::MAX, None)? else { return Ok(None) };
        let shown = join(&dir.canon, name);
        match kind_at(dir.fd.as_fd(), name, &shown)? {
            Some(FileType::RegularFile) => {}
            Some(FileType::Symlink) => {
                let target = readlinkat(dir.fd.as_fd(), name.as_slice(), Vec::new())
                    .map_err(|e| Fault::os("readlink", &shown, e))?
                    .into_bytes();
                let base: &[u8] = if target.starts_with(b"/") { b"" } else { &dir.canon };
                parts = base.split(|b| *b == b'/').chain(target.split(|b| *b == b'/')).map(<[u8]>::to_vec).collect();
                continue;
            }
            _ => return Ok(None),
        }
        // NONBLOCK: the type was checked, but a FIFO swapped in must not hang the reader.
        let fd = open_beneath(dir.fd.as_fd(), name, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty())
            .map_err(|e| Fault::os("open", &shown, e))?;
        let mut content = Vec::new();
        std::fs::File::from(fd)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|e| Fault::Refused(format!("read '{}': {e}", show(&shown))))?;
        if content.len() as u64 > max_bytes {
            return Err(Fault::Cap { limit: format!("{max_bytes}-byte {}", show(&shown)), actual: "larger".into() });
        }
        return Ok(Some(content));
    }
    Err(Fault::refused(format!("'{}': too many levels of symbolic links", show(&parts.join(&b'/')))))
}
