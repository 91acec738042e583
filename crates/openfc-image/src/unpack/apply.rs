//! One layer's entries written over the tree below it, with the OCI whiteout rules (image-spec layer.md).
//!
//! A whiteout hides lower content only. Like umoci (`oci/layer/tar_extract.go`), the layer remembers every
//! canonical path it wrote and all their ancestors (`upper`); a whiteout removes what is not in that set and
//! descends into what is. So `.wh.x` met after the layer's own `x` keeps it, and an opaque marker clears the
//! lower children of its directory whether it comes before or after the layer's own children there.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::rc::Rc;

use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, chmodat, chownat, fchmod, fchown, futimens, linkat, mknodat,
    symlinkat, utimensat,
};
use tar::EntryType;

use super::fault::Fault;
use super::fsroot::{DirMeta, Located, Tree, kind_at, list, open_beneath};
use super::path::{PathFault, clean, join, parent, show};
use crate::Limits;

const OPAQUE: &[u8] = b".wh..wh..opq";
const WHITEOUT: &[u8] = b".wh.";

/// The metadata a tar header gives a new file.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
}

impl Meta {
    /// An empty numeric field reads as 0, as Go's archive/tar (umoci) reads it; garbage is refused.
    fn of(header: &tar::Header, raw: &[u8]) -> Result<Meta, Fault> {
        let old = header.as_old();
        let field = |name: &str, bytes: &[u8], value: std::io::Result<u64>| -> Result<u64, Fault> {
            match value {
                Ok(v) => Ok(v),
                Err(_) if bytes.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
                Err(_) => Err(Fault::refused(format!("'{}': unreadable {name} in its tar header", show(raw)))),
            }
        };
        Ok(Meta {
            mode: field("mode", &old.mode, header.mode().map(u64::from))? as u32 & 0o7777,
            uid: field("uid", &old.uid, header.uid())?,
            gid: field("gid", &old.gid, header.gid())?,
            mtime: field("mtime", &old.mtime, header.mtime())?.min(i64::MAX as u64) as i64,
        })
    }

    fn times(self) -> Timestamps {
        let at = Timespec { tv_sec: self.mtime, tv_nsec: 0 };
        Timestamps { last_access: at, last_modification: at }
    }
}

/// The state of one layer being applied.
pub(crate) struct LayerApply<'t> {
    tree: &'t mut Tree,
    limits: &'t Limits,
    /// Canonical paths this layer wrote, and their ancestors.
    upper: HashSet<Vec<u8>>,
    /// Devices skipped (the sandbox brings its own `/dev`).
    pub(crate) skipped: u64,
    /// Data bytes of the current entry read by `file` (the caller drains the rest and checks the total).
    consumed: u64,
    buf: Vec<u8>,
}

impl<'t> LayerApply<'t> {
    pub(crate) fn new(tree: &'t mut Tree, limits: &'t Limits) -> LayerApply<'t> {
        LayerApply { tree, limits, upper: HashSet::new(), skipped: 0, consumed: 0, buf: vec![0; 128 << 10] }
    }

    pub(crate) fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), Fault> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        // A pax global header describes the archive, not a file.
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let parts = clean(&raw, self.limits).map_err(|f| path_fault(f, &raw, self.limits))?;
        let Some((name, parents)) = parts.split_last() else {
            return self.root_entry(kind, Meta::of(entry.header(), &raw)?);
        };
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            return self.whiteout(parents, name, hidden);
        }
        let meta = Meta::of(entry.header(), &raw)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => self.file(parents, name, meta, entry),
            EntryType::Directory => self.dir(parents, name, meta),
            EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                self.symlink(parents, name, meta, &target)
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                self.hard_link(parents, name, &raw, &target)
            }
            EntryType::Fifo => self.fifo(parents, name, meta),
            EntryType::Char | EntryType::Block => {
                // Whatever lower layers had there is replaced, by nothing.
                if let Some(dir) = self.tree.dir(parents, false)? {
                    self.tree.remove(dir.fd.as_fd(), name, &join(&dir.canon, name))?;
                }
                self.skipped += 1;
                Ok(())
            }
            other => Err(Fault::refused(format!("'{}': unsupported tar entry type {other:?}", show(&raw)))),
        }
    }

    /// How many data bytes of the last entry were read, reset for the next one.
    pub(crate) fn take_consumed(&mut self) -> u64 {
        std::mem::take(&mut self.consumed)
    }

    /// `./` itself: only a directory may describe it (anything else would turn the root into a link).
    fn root_entry(&mut self, kind: EntryType, meta: Meta) -> Result<(), Fault> {
        if kind != EntryType::Directory {
            return Err(Fault::refused(format!("the root of the layer is a {kind:?}, not a directory")));
        }
        let (uid, gid) = self.tree.owners.host(meta.uid, meta.gid)?;
        self.tree.chown_root(uid, gid)?;
        self.tree.dir_meta.insert(Vec::new(), DirMeta { mode: meta.mode, mtime: Some(meta.mtime) });
        Ok(())
    }

    /// The parent directory of a new entry (created if missing), its canonical path, and whatever is
    /// already there removed unless `keep_dir` and it is a directory. Answers whether a directory was kept.
    fn place(&mut self, parents: &[&[u8]], name: &[u8], keep_dir: bool) -> Result<(Rc<Located>, Vec<u8>, bool), Fault> {
        let dir = self.tree.dir(parents, true)?.ok_or_else(|| Fault::refused("parent vanished"))?;
        let canon = join(&dir.canon, name);
        let kept = match kind_at(dir.fd.as_fd(), name, &canon)? {
            None => false,
            Some(FileType::Directory) if keep_dir => true,
            Some(_) => {
                self.tree.remove(dir.fd.as_fd(), name, &canon)?;
                false
            }
        };
        Ok((dir, canon, kept))
    }

    fn dir(&mut self, parents: &[&[u8]], name: &[u8], meta: Meta) -> Result<(), Fault> {
        let (dir, canon, kept) = self.place(parents, name, true)?;
        if !kept {
            rustix::fs::mkdirat(dir.fd.as_fd(), name, Mode::from_raw_mode(0o755))
                .map_err(|e| Fault::os("mkdir", &canon, e))?;
            // Modes wait for the last layer (fsroot::Tree::dir_meta); until then the owner may write.
            chmodat(dir.fd.as_fd(), name, Mode::from_raw_mode(0o755), AtFlags::empty())
                .map_err(|e| Fault::os("chmod", &canon, e))?;
        }
        self.chown_at(dir.fd.as_fd(), name, &canon, meta)?;
        self.tree.dir_meta.insert(canon.clone(), DirMeta { mode: meta.mode, mtime: Some(meta.mtime) });
        self.mark(canon);
        Ok(())
    }

    fn file<R: Read>(&mut self, parents: &[&[u8]], name: &[u8], meta: Meta, data: &mut R) -> Result<(), Fault> {
        let (dir, canon, _) = self.place(parents, name, false)?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        let fd = open_beneath(dir.fd.as_fd(), name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| Fault::os("create", &canon, e))?;
        let mut file = std::fs::File::from(fd);
        loop {
            let n = data.read(&mut self.buf).map_err(Fault::stream)?;
            if n == 0 {
                break;
            }
            file.write_all(&self.buf[..n]).map_err(|e| Fault::write(&canon, e))?;
            self.consumed += n as u64;
        }
        let (uid, gid) = self.tree.owners.host(meta.uid, meta.gid)?;
        if let Err(e) = fchown(&file, Some(uid), Some(gid))
            && !self.tree.owners.tolerate(e)
        {
            return Err(Fault::os("chown", &canon, e));
        }
        // After the chown, which clears setuid/setgid.
        fchmod(&file, Mode::from_raw_mode(meta.mode)).map_err(|e| Fault::os("chmod", &canon, e))?;
        futimens(&file, &meta.times()).map_err(|e| Fault::os("utimens", &canon, e))?;
        self.mark(canon);
        Ok(())
    }

    fn symlink(&mut self, parents: &[&[u8]], name: &[u8], meta: Meta, target: &[u8]) -> Result<(), Fault> {
        let (dir, canon, _) = self.place(parents, name, false)?;
        // Verbatim: absolute and `..` targets resolve inside the instance's root when it runs.
        symlinkat(target, dir.fd.as_fd(), name).map_err(|e| Fault::os("symlink", &canon, e))?;
        self.chown_at(dir.fd.as_fd(), name, &canon, meta)?;
        utimensat(dir.fd.as_fd(), name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Fault::os("utimens", &canon, e))?;
        self.mark(canon);
        Ok(())
    }

    /// A hard link needs its target already in the tree (this layer or a lower one), resolved inside the
    /// root with its own last component not followed (a link to a symlink links the symlink).
    fn hard_link(&mut self, parents: &[&[u8]], name: &[u8], raw: &[u8], target: &[u8]) -> Result<(), Fault> {
        let missing =
            || Fault::refused(format!("hard link '{}' to '{}', which does not exist", show(raw), show(target)));
        let tparts = clean(target, self.limits).map_err(|f| path_fault(f, target, self.limits))?;
        let Some((tname, tparents)) = tparts.split_last() else { return Err(missing()) };
        let (dir, canon, _) = self.place(parents, name, false)?;
        let tdir = self.tree.dir(tparents, false)?.ok_or_else(missing)?;
        match linkat(tdir.fd.as_fd(), *tname, dir.fd.as_fd(), name, AtFlags::empty()) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(Fault::os("link", &canon, e)),
        }
        self.mark(canon);
        Ok(())
    }

    fn fifo(&mut self, parents: &[&[u8]], name: &[u8], meta: Meta) -> Result<(), Fault> {
        let (dir, canon, _) = self.place(parents, name, false)?;
        mknodat(dir.fd.as_fd(), name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
            .map_err(|e| Fault::os("mkfifo", &canon, e))?;
        self.chown_at(dir.fd.as_fd(), name, &canon, meta)?;
        // chmodat follows a final symlink, but this name is the FIFO just made.
        chmodat(dir.fd.as_fd(), name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(|e| Fault::os("chmod", &canon, e))?;
        utimensat(dir.fd.as_fd(), name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Fault::os("utimens", &canon, e))?;
        self.mark(canon);
        Ok(())
    }

    /// `.wh.<name>` removes `<name>` from lower layers, `.wh..wh..opq` every lower child of its directory.
    /// Neither is written. A missing target is fine: an earlier whiteout may have removed it already.
    fn whiteout(&mut self, parents: &[&[u8]], marker: &[u8], hidden: &[u8]) -> Result<(), Fault> {
        let Some(dir) = self.tree.dir(parents, false)? else { return Ok(()) };
        if marker == OPAQUE {
            for child in list(dir.fd.as_fd(), &dir.canon)? {
                self.prune(dir.fd.as_fd(), &child, &join(&dir.canon, &child))?;
            }
            return Ok(());
        }
        if matches!(hidden, b"" | b"." | b"..") {
            return Err(Fault::refused(format!("whiteout '{}' names no file", show(&join(&dir.canon, marker)))));
        }
        self.prune(dir.fd.as_fd(), hidden, &join(&dir.canon, hidden))
    }

    /// Removes `name` unless this layer wrote it; descends into a directory this layer wrote into.
    fn prune(&mut self, dir: BorrowedFd<'_>, name: &[u8], canon: &[u8]) -> Result<(), Fault> {
        if !self.upper.contains(canon) {
            return self.tree.remove(dir, name, canon);
        }
        if kind_at(dir, name, canon)? == Some(FileType::Directory) {
            let sub = super::fsroot::open_dir(dir, name, canon)?;
            for child in list(sub.as_fd(), canon)? {
                self.prune(sub.as_fd(), &child, &join(canon, &child))?;
            }
        }
        Ok(())
    }

    fn chown_at(&self, dir: BorrowedFd<'_>, name: &[u8], canon: &[u8], meta: Meta) -> Result<(), Fault> {
        let (uid, gid) = self.tree.owners.host(meta.uid, meta.gid)?;
        match chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW) {
            Err(e) if !self.tree.owners.tolerate(e) => Err(Fault::os("chown", canon, e)),
            _ => Ok(()),
        }
    }

    /// Records `canon` and its ancestors as written by this layer. Every insertion records a whole chain,
    /// so the first ancestor already present proves the rest are.
    fn mark(&mut self, canon: Vec<u8>) {
        let mut next = Some(canon);
        while let Some(path) = next {
            next = parent(&path).filter(|p| !p.is_empty()).map(<[u8]>::to_vec);
            if !self.upper.insert(path) {
                break;
            }
        }
    }
}

pub(crate) fn path_fault(fault: PathFault, raw: &[u8], limits: &Limits) -> Fault {
    let shown = show(&raw[..raw.len().min(200)]);
    match fault {
        PathFault::Nul => Fault::refused(format!("'{shown}': NUL byte in a path")),
        PathFault::DotDot => Fault::refused(format!("'{shown}': '..' in a path")),
        PathFault::TooLong(len) => Fault::Cap {
            limit: format!("{}-byte paths", limits.max_path_bytes),
            actual: format!("a {len}-byte path '{shown}'"),
        },
        PathFault::TooDeep(depth) => Fault::Cap {
            limit: format!("{} path components", limits.max_depth),
            actual: format!("{depth} components in '{shown}'"),
        },
    }
}
