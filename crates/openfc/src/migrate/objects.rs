//! The code phase of `openfc migrate`: every object of the local code store (DATA_DIR/code) put into the target
//! bucket unless an object of the same size is already there (keys are content addresses, so same key and size
//! is the same package), and the verification pass: every package the target database names, read back from the
//! bucket and checked against its recorded size and CRC-64.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use openfc_core::ports::{BlobError, CodeStore};
use sqlx::PgConnection;

/// Objects up to this size are read and put whole; larger ones are streamed as a multipart upload.
const WHOLE: u64 = 8 << 20;
/// Objects in flight at once.
const PARALLEL: usize = 4;

pub struct LocalObject {
    pub key: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Every object under the local code store's root, keyed as the store keys them (`packages/sha256/<hex>.zip`).
pub fn local_objects(root: &Path) -> anyhow::Result<Vec<LocalObject>> {
    let mut out = Vec::new();
    if !root.exists() {
        return Ok(out);
    }
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            let path = entry.path();
            if meta.is_dir() {
                dirs.push(path);
                continue;
            }
            let key = path.strip_prefix(root)?.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/");
            // object_store writes `<key>#<n>` and renames it into place: such a file is an unfinished write.
            if meta.is_file() && !key.contains('#') {
                out.push(LocalObject { key, path, size: meta.len() });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

#[derive(Debug, Default)]
pub struct ObjectStats {
    pub copied: u64,
    pub copied_bytes: u64,
    pub present: u64,
}

/// Puts each object the target lacks (or holds with another size, e.g. an upload cut short elsewhere).
pub async fn copy(objects: &[LocalObject], target: &dyn CodeStore, bar: &ProgressBar) -> anyhow::Result<ObjectStats> {
    let results: Vec<bool> = futures::stream::iter(objects)
        .map(|o| async move {
            let copied = match target.size(&o.key).await {
                Ok(size) if size == o.size => false,
                Ok(_) | Err(BlobError::NotFound) => {
                    if o.size <= WHOLE {
                        let data = tokio::fs::read(&o.path).await.with_context(|| format!("reading {}", o.path.display()))?;
                        target.put(&o.key, Bytes::from(data)).await
                    } else {
                        target.put_file(&o.key, &o.path).await
                    }
                    .with_context(|| format!("copying code object {} to the bucket", o.key))?;
                    true
                }
                Err(e) => return Err(anyhow::anyhow!("code object {}: checking the bucket: {e}", o.key)),
            };
            bar.inc(o.size);
            Ok::<_, anyhow::Error>(copied)
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    let mut stats = ObjectStats::default();
    for (o, copied) in objects.iter().zip(results) {
        if copied {
            stats.copied += 1;
            stats.copied_bytes += o.size;
        } else {
            stats.present += 1;
        }
    }
    Ok(stats)
}

/// A package the target database names, and what the row records about it.
pub struct Reference {
    /// Index into `KINDS`.
    kind: usize,
    what: String,
    checksum: String,
    size: Option<i64>,
}

pub const KINDS: [&str; 3] = ["functions", "function versions", "layer versions"];

const CODE_REFERENCES: &str = "\
    SELECT 0, 'function ' || service_name || '/' || name, code_key, code_checksum, code_size FROM functions WHERE code_key IS NOT NULL \
    UNION ALL SELECT 1, 'function ' || service_name || '/' || name || ' version ' || version_id, code_key, code_checksum, code_size \
        FROM version_functions WHERE code_key IS NOT NULL \
    UNION ALL SELECT 2, 'layer ' || layer_name || ' version ' || version, code_key, code_checksum, code_size FROM layer_versions";

/// Every package the target database names, by key (packages are shared, each is read once).
pub type Named = BTreeMap<String, Vec<Reference>>;

/// A row of `CODE_REFERENCES`: kind, description, key, checksum, size.
type ReferenceRow = (i32, String, String, Option<String>, Option<i64>);

pub async fn named_packages(dst: &mut PgConnection) -> anyhow::Result<Named> {
    let rows: Vec<ReferenceRow> =
        sqlx::query_as(CODE_REFERENCES).fetch_all(&mut *dst).await.context("listing the code packages the target database names")?;
    let mut named = Named::new();
    for (kind, what, key, checksum, size) in rows {
        named.entry(key).or_default().push(Reference { kind: kind as usize, what, checksum: checksum.unwrap_or_default(), size });
    }
    Ok(named)
}

/// The bytes the verification reads, as the database records them.
pub fn named_bytes(named: &Named) -> u64 {
    named.values().filter_map(|refs| refs.first().and_then(|r| r.size)).map(|s| s.max(0) as u64).sum()
}

#[derive(Debug, Default)]
pub struct Verified {
    /// References checked, per entry of `KINDS`.
    pub references: [u64; 3],
    pub objects: u64,
    pub bytes: u64,
    pub problems: Vec<String>,
}

/// Reads every named package back from the target bucket: present, of the recorded size, with the recorded
/// CRC-64/XZ (what GetFunctionCode reports and SDKs check).
pub async fn verify(named: Named, target: &dyn CodeStore, bar: &ProgressBar) -> anyhow::Result<Verified> {
    let mut out = Verified::default();
    for (key, refs) in named {
        for r in &refs {
            out.references[r.kind] += 1;
        }
        let data = match read_all(target, &key).await {
            Ok(d) => d,
            Err(e) => {
                out.problems.extend(refs.iter().map(|r| format!("{}: code object {key} {e}", r.what)));
                continue;
            }
        };
        let len = data.len() as u64;
        out.objects += 1;
        out.bytes += len;
        bar.inc(len);
        let crc = tokio::task::spawn_blocking(move || openfc_core::code::crc64(&data)).await?;
        for r in &refs {
            if r.size.is_some_and(|s| s as u64 != len) {
                out.problems.push(format!("{}: code object {key} is {len} bytes, the database records {}", r.what, r.size.unwrap_or(0)));
            } else if r.checksum != crc.to_string() {
                out.problems.push(format!("{}: code object {key} has CRC-64 {crc}, the database records {}", r.what, r.checksum));
            }
        }
    }
    Ok(out)
}

async fn read_all(store: &dyn CodeStore, key: &str) -> Result<Vec<u8>, String> {
    let read = store.get(key, None).await.map_err(|e| match e {
        BlobError::NotFound => "is missing from the bucket".to_owned(),
        e => format!("could not be read: {e}"),
    })?;
    let mut data = Vec::with_capacity(read.size as usize);
    let mut stream = read.stream;
    while let Some(chunk) = stream.try_next().await.map_err(|e| format!("could not be read: {e}"))? {
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_objects_skip_unfinished_writes() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("packages/sha256");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(pkg.join("ab.zip"), b"12345").unwrap();
        std::fs::write(pkg.join("cd.zip#1"), b"partial").unwrap();
        let found = local_objects(dir.path()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].key.as_str(), found[0].size), ("packages/sha256/ab.zip", 5));
        assert!(local_objects(&dir.path().join("absent")).unwrap().is_empty());
    }
}
