//! The image config's `User` resolved against the flattened tree's own `/etc/passwd` and `/etc/group`
//! (containers.md §4.4), by the rules runc and Docker apply (`libcontainer/user.GetExecUser`): a numeric
//! user needs no passwd entry, a name does; without a group the user's primary gid and the groups listing
//! the user apply; with one, supplementary groups are ignored.

use std::path::Path;

use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};

use crate::ImageError;
use crate::unpack::{UnpackFault, read_file_in_root};

/// Bigger than any real passwd or group file; keeps a hostile one from filling memory.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// runc's upper bound for ids written as numbers.
const MAX_ID: u32 = i32::MAX as u32;

/// Who the function's process runs as, inside the image's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The user's home in `/etc/passwd`, when it has an entry there.
    pub home: Option<String>,
}

/// Resolves `user` ("", "name", "uid", "name:group", "uid:gid", "uid:group", "name:gid") beneath `root`,
/// reading `etc/passwd` and `etc/group` confined to it (a symlink is followed inside the root, never out).
/// Ids of 65536 and above become 65534, as the layer owners do (`unpack::apply_layers`), so the user keeps
/// owning its files inside the sandbox's 0–65535 mapping.
pub fn resolve_user(root: &Path, user: &str, reference: &str) -> Result<RunUser, ImageError> {
    let invalid = |cause: String| ImageError::Invalid { reference: reference.to_string(), cause };
    let dir = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| ImageError::Io(format!("open {}: {}", root.display(), std::io::Error::from(e))))?;
    let read = |name: &[u8]| -> Result<Option<String>, ImageError> {
        match read_file_in_root(dir.as_fd(), &[b"etc", name], MAX_FILE_BYTES) {
            Ok(content) => Ok(content.map(|c| String::from_utf8_lossy(&c).into_owned())),
            Err(UnpackFault::Host(cause)) => Err(ImageError::Io(cause)),
            Err(UnpackFault::Refused(cause)) => Err(invalid(cause)),
            Err(UnpackFault::Cap { limit, .. }) => Err(invalid(format!("exceeds {limit}"))),
            Err(UnpackFault::DiffId) => Err(invalid("unreadable".into())),
        }
    };
    let passwd = read(b"passwd")?.unwrap_or_default();
    let group = read(b"group")?.unwrap_or_default();
    let mut resolved = resolve_spec(user, &passwd, &group).map_err(invalid)?;
    resolved.uid = squash(resolved.uid);
    resolved.gid = squash(resolved.gid);
    for gid in &mut resolved.groups {
        *gid = squash(*gid);
    }
    let mut seen = std::collections::HashSet::new();
    resolved.groups.retain(|g| seen.insert(*g));
    Ok(resolved)
}

fn squash(id: u32) -> u32 {
    if id >= 65536 { 65534 } else { id }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// Lines split on `:`, comments and malformed lines skipped (runc skips nothing but ignores bad numbers;
/// a line that names no valid id cannot be the one asked for).
fn fields(content: &str) -> impl Iterator<Item = Vec<&str>> {
    content.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| l.split(':').collect())
}

fn passwd_entries(content: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    fields(content).filter_map(|f| {
        Some(PasswdEntry {
            name: f.first()?,
            uid: f.get(2)?.parse().ok()?,
            gid: f.get(3)?.parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(content: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    fields(content).filter_map(|f| {
        Some(GroupEntry {
            name: f.first()?,
            gid: f.get(2)?.parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').map(str::trim).filter(|m| !m.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

fn numeric(s: &str) -> Option<u32> {
    s.parse::<u32>().ok()
}

/// The resolution itself, on file contents (empty when the image has no such file).
fn resolve_spec(spec: &str, passwd: &str, group: &str) -> Result<RunUser, String> {
    let (user, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    let user_id = numeric(user);
    let entry = passwd_entries(passwd).find(|e| match (user, user_id) {
        ("", _) => e.uid == 0,
        (_, Some(uid)) => e.uid == uid,
        (name, None) => e.name == name,
    });
    let mut run = RunUser { uid: 0, gid: 0, groups: Vec::new(), home: None };
    match (&entry, user_id) {
        (Some(e), _) => {
            run.uid = e.uid;
            run.gid = e.gid;
            run.home = Some(e.home.to_string()).filter(|h| !h.is_empty());
        }
        (None, Some(uid)) if uid > MAX_ID => return Err(format!("user id {uid} out of range")),
        (None, Some(uid)) => run.uid = uid,
        (None, None) if user.is_empty() => {}
        (None, None) => return Err(format!("user '{user}' not found in its /etc/passwd")),
    }
    match group_arg {
        Some(name_or_gid) => {
            let gid_arg = numeric(name_or_gid);
            let found = group_entries(group).find(|g| match gid_arg {
                Some(gid) => g.gid == gid,
                None => g.name == name_or_gid,
            });
            run.gid = match (found, gid_arg) {
                (Some(g), _) => g.gid,
                (None, Some(gid)) if gid > MAX_ID => return Err(format!("group id {gid} out of range")),
                (None, Some(gid)) => gid,
                (None, None) => return Err(format!("group '{name_or_gid}' not found in its /etc/group")),
            };
        }
        None => {
            if let Some(e) = &entry {
                run.groups = group_entries(group).filter(|g| g.members.contains(&e.name)).map(|g| g.gid).collect();
            }
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests;
