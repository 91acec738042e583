//! Code packages unpacked once per content address and shared read-only by every instance that runs them.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use openfc_core::ports::{CodeRef, CodeStore};
use sha2::Digest as _;

use crate::InvokeError;

pub struct Packages {
    root: PathBuf,
    store: Arc<dyn CodeStore>,
    max_unzipped: u64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Packages {
    pub fn new(root: PathBuf, store: Arc<dyn CodeStore>, max_unzipped: u64) -> Self {
        Packages { root, store, max_unzipped, locks: Mutex::new(HashMap::new()) }
    }

    fn dir_for(&self, code: &CodeRef) -> PathBuf {
        let name = code.key.rsplit('/').next().unwrap_or(&code.key).trim_end_matches(".zip");
        self.root.join(name)
    }

    /// The package's unpacked directory, unpacking it first if this is its first use.
    pub async fn unpacked(&self, code: &CodeRef) -> Result<PathBuf, InvokeError> {
        let dir = self.dir_for(code);
        if dir.is_dir() {
            touch(&dir);
            return Ok(dir);
        }
        let lock = self.locks.lock().expect("package locks").entry(code.key.clone()).or_default().clone();
        let _guard = lock.lock().await;
        if dir.is_dir() {
            return Ok(dir);
        }
        std::fs::create_dir_all(&self.root).map_err(|e| InvokeError::internal(format!("package dir: {e}")))?;
        let tmp_zip = self.root.join(format!(".{}.zip.tmp", uuid::Uuid::new_v4().simple()));
        // The temporary copy goes whatever happens: a failed download or unpack must not leave one per attempt.
        let fetched = self.fetch(code, &tmp_zip).await;
        let result = match fetched {
            Ok(()) => {
                let (zip, root, max, target) = (tmp_zip.clone(), self.root.clone(), self.max_unzipped, dir.clone());
                tokio::task::spawn_blocking(move || extract(&zip, &root, &target, max))
                    .await
                    .map_err(|e| InvokeError::internal(format!("unpack task: {e}")))
                    .and_then(|r| r.map_err(|e| InvokeError::internal(format!("unpacking {}: {e}", code.key))))
            }
            Err(e) => Err(e),
        };
        let _ = tokio::fs::remove_file(&tmp_zip).await;
        result.map(|()| dir)
    }

    /// Streams a stored package into `path`.
    async fn fetch(&self, code: &CodeRef, path: &Path) -> Result<(), InvokeError> {
        use tokio::io::AsyncWriteExt;
        let mut read = self.store.get(&code.key, None).await.map_err(|e| InvokeError::internal(format!("reading package: {e}")))?;
        let mut file = tokio::fs::File::create(path).await.map_err(|e| InvokeError::internal(e.to_string()))?;
        while let Some(chunk) = read.stream.next().await {
            let chunk = chunk.map_err(|e| InvokeError::internal(format!("reading package: {e}")))?;
            file.write_all(&chunk).await.map_err(|e| InvokeError::internal(e.to_string()))?;
        }
        file.flush().await.map_err(|e| InvokeError::internal(e.to_string()))
    }
}

impl Packages {
    /// The layers merged into one directory, in order (a later layer's file wins), built once per list.
    pub async fn merged_layers(&self, layers: &[CodeRef]) -> Result<PathBuf, InvokeError> {
        let id: Vec<String> = layers.iter().map(|l| self.dir_for(l).file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        let id = id.join("+");
        // A cryptographic name: with a CRC, a layer list could be crafted to collide with another account's
        // and be served its merged directory.
        let name = hex::encode(sha2::Sha256::digest(id.as_bytes()));
        let target = self.root.with_file_name("layers").join(name);
        if target.is_dir() {
            touch(&target);
            return Ok(target);
        }
        let lock = self.locks.lock().expect("package locks").entry(format!("layers:{id}")).or_default().clone();
        let _guard = lock.lock().await;
        if target.is_dir() {
            return Ok(target);
        }
        // Only now the single layers: instances use the merged directory, so the sweeper removes these, and
        // unpacking them before the check above made every later cold start fetch them again.
        let mut dirs = Vec::new();
        for l in layers {
            dirs.push(self.unpacked(l).await?);
        }
        let t = target.clone();
        tokio::task::spawn_blocking(move || merge(&dirs, &t))
            .await
            .map_err(|e| InvokeError::internal(format!("merge task: {e}")))?
            .map_err(|e| InvokeError::internal(format!("merging layers: {e}")))?;
        Ok(target)
    }
}

/// Marks a directory as used now, so the sweeper leaves it alone.
fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

impl Packages {
    /// Removes unpacked packages and merged layers that no running instance uses and nobody has used for
    /// `min_age` (leftover staging directories too). Blocking: call from a blocking thread.
    pub fn sweep(&self, in_use: &std::collections::HashSet<PathBuf>, min_age: std::time::Duration) -> usize {
        sweep_dirs(&[self.root.clone(), self.root.with_file_name("layers")], in_use, min_age)
    }
}

fn sweep_dirs(roots: &[PathBuf], in_use: &std::collections::HashSet<PathBuf>, min_age: std::time::Duration) -> usize {
    let mut removed = 0;
    for root in roots {
        let Ok(entries) = std::fs::read_dir(root) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > min_age);
            if old && !in_use.contains(&path) {
                let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                if gone.is_ok() {
                    removed += 1;
                }
            }
        }
    }
    removed
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755))?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            let _ = std::fs::remove_file(&dest);
            std::fs::copy(e.path(), &dest)?;
        }
    }
    Ok(())
}

fn merge(dirs: &[PathBuf], target: &Path) -> std::io::Result<()> {
    let parent = target.parent().ok_or_else(|| std::io::Error::other("no parent"))?;
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&staging)?;
    for d in dirs {
        copy_tree(d, &staging)?;
    }
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))?;
    match std::fs::rename(&staging, target) {
        Ok(()) => Ok(()),
        Err(_) if target.is_dir() => std::fs::remove_dir_all(&staging),
        Err(e) => Err(e),
    }
}

/// Extracts into a fresh directory, then renames it into place, so a half-extracted package is never used.
fn extract(zip_path: &Path, root: &Path, target: &Path, max: u64) -> std::io::Result<()> {
    let staging = root.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&staging)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))?;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path)?).map_err(std::io::Error::other)?;
    let mut written: u64 = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(std::io::Error::other)?;
        // Validated at upload; checked again because this is where it would matter.
        let Some(rel) = entry.enclosed_name() else { continue };
        if entry.is_symlink() {
            continue;
        }
        let path = staging.join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::File::create(&path)?;
        let n = std::io::copy(&mut (&mut entry).take(max.saturating_sub(written) + 1), &mut out)?;
        written += n;
        if written > max {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(std::io::Error::other(format!("unpacks to more than {max} bytes")));
        }
        // Everyone may read; executables stay executable (the sandbox user is not the owner).
        let exec = entry.unix_mode().is_some_and(|m| m & 0o111 != 0);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))?;
    }
    // Directories created implicitly get the umask's mode; make them traversable.
    for dir in walk_dirs(&staging)? {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    }
    match std::fs::rename(&staging, target) {
        Ok(()) => Ok(()),
        // Another process unpacked the same content first.
        Err(_) if target.is_dir() => std::fs::remove_dir_all(&staging),
        Err(e) => Err(e),
    }
}

/// `root` and every directory below it.
pub(crate) fn walk_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        for e in std::fs::read_dir(&out[i])? {
            let e = e?;
            if e.file_type()?.is_dir() {
                out.push(e.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime};

    fn dir_aged(root: &Path, name: &str, age_secs: u64) -> PathBuf {
        let d = root.join(name);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        let f = std::fs::File::open(&d).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(age_secs)).unwrap();
        d
    }

    #[test]
    fn sweep_removes_only_old_unused_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("packages");
        let old_unused = dir_aged(&root, "a", 3600);
        let old_used = dir_aged(&root, "b", 3600);
        let fresh = dir_aged(&root, "c", 0);
        let in_use = HashSet::from([old_used.clone()]);
        assert_eq!(sweep_dirs(&[root.clone(), tmp.path().join("missing")], &in_use, Duration::from_secs(600)), 1);
        assert!(!old_unused.exists());
        assert!(old_used.exists() && fresh.exists());
        touch(&old_used);
        assert_eq!(sweep_dirs(&[root], &HashSet::new(), Duration::from_secs(600)), 0, "touched counts as used");
    }
}
