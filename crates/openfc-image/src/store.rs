//! The node's image store (containers.md §2.4–2.5) and core's `ImagePuller`:
//!
//! ```text
//! <dir>/blobs/sha256/<hex>   verified blobs (layers), shared by every image that has them
//! <dir>/trees/<hex>/         flattened root file systems, by the ChainID of their layers (read-only use)
//! <dir>/trees/<hex>.json     what the tree is (reference, digest, bytes); its mtime is the last use
//! <dir>/tmp/                 downloads and builds in progress (renamed into place when complete)
//! ```
//!
//! A blob or tree exists under its final name only once complete and verified, so a crash leaves at worst
//! garbage in `tmp/` (cleared at start). Concurrent pulls of images sharing layers download each blob once
//! (a lock per digest) and build each tree once (a lock per ChainID).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::TryStreamExt;
use openfc_core::images::{ImagePuller, ImageUser, PullFailure, PulledImage, PulledLayer};
use openfc_core::ports::CodeStore;
use sha2::Digest;

use crate::error::{ImageError, Limits};
use crate::reference::{ImageRef, Mirrors};
use crate::registry::{LayerDesc, Registry, RegistryConfig};
use crate::unpack::{LayerFile, apply_layers, chain_id};

/// How the store is set up (from openfc's flags).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub dir: PathBuf,
    pub limits: Limits,
    /// Host owner = base + image uid/gid (`None`: owners kept, when openfc does not run as root).
    pub owner_base: Option<u32>,
    /// Unreferenced trees and blobs are evicted, least recently used first, above this many bytes.
    pub budget_bytes: u64,
    pub registry: RegistryConfig,
}

/// What a pull is doing, for progress output.
#[derive(Debug, Clone)]
pub enum Progress {
    Resolved { digest: String, layers: usize, compressed_bytes: u64 },
    Blob { digest: String, done: u64, total: u64, cached: bool },
    Unpacking { chain_id: String },
    Ready { bytes: u64 },
}

/// Sizes for `/health` and `openfc images ls`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Usage {
    pub blobs: usize,
    pub blob_bytes: u64,
    pub trees: usize,
    pub tree_bytes: u64,
}

/// What a tree's sidecar records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct TreeInfo {
    reference: String,
    digest: String,
    bytes: u64,
    /// The layer blobs the tree was built from.
    #[serde(default)]
    layers: Vec<String>,
}

pub struct ImageStore {
    cfg: StoreConfig,
    registry: Registry,
    mirrors: Mirrors,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The store every node shares (S3): verified blobs are copied there, and a node lacking one reads it
    /// there rather than from the registry.
    shared: Option<Arc<dyn CodeStore>>,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore").field("dir", &self.cfg.dir).finish()
    }
}

fn hex_of(digest: &str) -> Result<&str, ImageError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ImageError::MediaType(format!("digest {digest} (only sha256 is supported)")))
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let what = format!("{what} {}", path.display());
    move |e| ImageError::Io(format!("{what}: {e}"))
}

impl ImageStore {
    pub fn open(cfg: StoreConfig) -> Result<ImageStore, ImageError> {
        for sub in ["blobs/sha256", "trees", "tmp"] {
            let p = cfg.dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io("creating", &p))?;
        }
        let registry = Registry::new(cfg.registry.clone())?;
        let mirrors = cfg.registry.mirrors.clone();
        Ok(ImageStore { cfg, registry, mirrors, locks: Mutex::new(HashMap::new()), shared: None })
    }

    /// Removes what was in progress when the server last stopped. Only the server calls this, at start: an
    /// `openfc images` command runs beside a live server, whose downloads and builds are in `tmp/`.
    pub fn sweep_tmp(&self) {
        if let Ok(entries) = std::fs::read_dir(self.cfg.dir.join("tmp")) {
            for e in entries.flatten() {
                let _ = remove_any(&e.path());
            }
        }
    }

    /// Shares blobs through `shared` (the S3 code store of a many-node setup).
    pub fn with_shared(mut self, shared: Arc<dyn CodeStore>) -> ImageStore {
        self.shared = Some(shared);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().expect("image store locks");
        // Forget locks nobody holds or waits for, so the map stays as small as the work in flight.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_owned()).or_default().clone()
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.cfg.dir.join("blobs/sha256").join(hex_of(digest)?))
    }

    pub fn tree_path(&self, chain_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.cfg.dir.join("trees").join(self.tree_name(chain_id)?))
    }

    /// A tree's directory name: its ChainID and the owners its files were written with (another
    /// `--image-uid-base`, or none when not root, needs a tree of its own: the ids must match the instance's map).
    fn tree_name(&self, chain_id: &str) -> Result<String, ImageError> {
        let hex = hex_of(chain_id)?;
        Ok(match self.cfg.owner_base {
            Some(base) => format!("{hex}-u{base}"),
            None => format!("{hex}-ids"),
        })
    }

    fn tmp_path(&self, what: &str) -> PathBuf {
        self.cfg.dir.join("tmp").join(format!("{what}-{}", uuid_like()))
    }

    /// Resolves, downloads and verifies, and flattens `reference` on this node.
    pub async fn pull(&self, reference: &str, progress: &(dyn Fn(Progress) + Send + Sync)) -> Result<PulledImage, ImageError> {
        let r = ImageRef::parse(reference, &self.mirrors)?;
        let resolved = self.registry.resolve(&r, &self.cfg.limits).await?;
        let compressed: u64 = resolved.layers.iter().map(|l| l.size).sum();
        progress(Progress::Resolved {
            digest: resolved.manifest_digest.clone(),
            layers: resolved.layers.len(),
            compressed_bytes: compressed,
        });
        if resolved.config.diff_ids.len() != resolved.layers.len() {
            return Err(ImageError::Invalid {
                reference: reference.to_owned(),
                cause: format!("{} layers but {} diff_ids in its config", resolved.layers.len(), resolved.config.diff_ids.len()),
            });
        }
        let layers: Vec<PulledLayer> = resolved
            .layers
            .iter()
            .zip(&resolved.config.diff_ids)
            .map(|(l, d)| PulledLayer { digest: l.digest.clone(), media_type: l.media_type.clone(), size: l.size, diff_id: d.clone() })
            .collect();
        for layer in &resolved.layers {
            self.fetch(&r, layer, progress).await?;
        }
        let chain = chain_id(&resolved.config.diff_ids);
        let mut image = PulledImage {
            registry: r.registry.clone(),
            digest: resolved.manifest_digest.clone(),
            config_digest: resolved.config_digest.clone(),
            chain_id: chain.clone(),
            layers,
            entrypoint: resolved.config.entrypoint.clone(),
            cmd: resolved.config.cmd.clone(),
            env: resolved.config.env.clone(),
            working_dir: resolved.config.working_dir.clone(),
            user: ImageUser::default(),
            compressed_bytes: compressed,
            unpacked_bytes: 0,
        };
        progress(Progress::Unpacking { chain_id: chain.clone() });
        let (tree, bytes) = self.build_tree(reference, &image).await?;
        image.unpacked_bytes = bytes;
        let (user_spec, written) = (resolved.config.user.clone(), reference.to_owned());
        let user = tokio::task::spawn_blocking(move || crate::user::resolve_user(&tree, &user_spec, &written))
            .await
            .map_err(|e| ImageError::Io(format!("resolving the image user: {e}")))??;
        image.user = ImageUser { uid: user.uid, gid: user.gid, groups: user.groups, home: user.home };
        progress(Progress::Ready { bytes });
        Ok(image)
    }

    /// One blob into the store, unless it is there already.
    async fn fetch(&self, r: &ImageRef, layer: &LayerDesc, progress: &(dyn Fn(Progress) + Send + Sync)) -> Result<(), ImageError> {
        let path = self.blob_path(&layer.digest)?;
        let lock = self.lock_for(&layer.digest);
        let _held = lock.lock().await;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            metrics::counter!("openfc_image_blob_cache_hits_total").increment(1);
            progress(Progress::Blob { digest: layer.digest.clone(), done: layer.size, total: layer.size, cached: true });
            return Ok(());
        }
        let tmp = self.tmp_path("blob");
        let (digest, total) = (layer.digest.clone(), layer.size);
        let report = |done: u64| progress(Progress::Blob { digest: digest.clone(), done, total, cached: false });
        if let Some(shared) = &self.shared {
            match self.fetch_shared(shared.as_ref(), r, layer, &tmp).await {
                Ok(true) => {
                    metrics::counter!("openfc_image_blob_shared_hits_total").increment(1);
                    report(total);
                    return tokio::fs::rename(&tmp, &path).await.map_err(io("storing blob", &path));
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(blob = %layer.digest, error = %e, "could not read a blob from the shared store; asking the registry"),
            }
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        let result = self.registry.fetch_blob(r, layer, &tmp, &report).await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        metrics::counter!("openfc_image_pull_bytes_total").increment(layer.size);
        tokio::fs::rename(&tmp, &path).await.map_err(io("storing blob", &path))?;
        if let Some(shared) = &self.shared {
            // Other nodes read it there; a failure only costs them a registry download.
            if let Err(e) = shared.put_file(&shared_key(&layer.digest)?, &path).await {
                tracing::warn!(blob = %layer.digest, error = %e, "could not copy a blob to the shared store");
            }
        }
        Ok(())
    }

    /// Copies a blob from the shared store into `dest`, checking its digest; false when it is not there.
    async fn fetch_shared(&self, shared: &dyn CodeStore, r: &ImageRef, layer: &LayerDesc, dest: &Path) -> Result<bool, ImageError> {
        use tokio::io::AsyncWriteExt;
        let key = shared_key(&layer.digest)?;
        let read = match shared.get(&key, None).await {
            Ok(read) => read,
            Err(openfc_core::ports::BlobError::NotFound) => return Ok(false),
            Err(e) => return Err(ImageError::Io(format!("shared store: {e}"))),
        };
        let mut file = tokio::fs::File::create_new(dest).await.map_err(io("creating", dest))?;
        let mut hasher = sha2::Sha256::new();
        let mut stream = read.stream;
        while let Some(chunk) = stream.try_next().await.map_err(|e| ImageError::Io(format!("shared store: {e}")))? {
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io("writing", dest))?;
        }
        file.sync_all().await.map_err(io("syncing", dest))?;
        if format!("sha256:{}", hex::encode(hasher.finalize())) != layer.digest {
            return Err(ImageError::Corrupt { reference: r.written.clone(), what: format!("shared copy of layer {}", layer.digest) });
        }
        Ok(true)
    }

    /// The flattened tree of `image` on this node, built from its blobs if missing (and the blobs fetched
    /// again by the pinned digest when this node lacks them). Marks the tree used now.
    pub async fn rootfs(&self, reference: &str, image: &PulledImage) -> Result<PathBuf, ImageError> {
        let tree = self.tree_path(&image.chain_id)?;
        if !tokio::fs::try_exists(&tree).await.unwrap_or(false) {
            let missing: Vec<&PulledLayer> =
                image.layers.iter().filter(|l| self.blob_path(&l.digest).is_ok_and(|p| !p.exists())).collect();
            if !missing.is_empty() {
                let r = ImageRef::parse(reference, &self.mirrors)?;
                for l in missing {
                    let desc = LayerDesc { digest: l.digest.clone(), media_type: l.media_type.clone(), size: l.size };
                    self.fetch(&r, &desc, &|_| {}).await?;
                }
            }
            self.build_tree(reference, image).await?;
        }
        touch(&tree.with_extension("json"));
        Ok(tree)
    }

    /// Applies the layers into a fresh directory and renames it to the ChainID. Returns (tree, bytes).
    async fn build_tree(&self, reference: &str, image: &PulledImage) -> Result<(PathBuf, u64), ImageError> {
        let tree = self.tree_path(&image.chain_id)?;
        let lock = self.lock_for(&image.chain_id);
        let _held = lock.lock().await;
        let sidecar = tree.with_extension("json");
        if tokio::fs::try_exists(&tree).await.unwrap_or(false) {
            let bytes = read_info(&sidecar).map_or(0, |i| i.bytes);
            return Ok((tree, bytes));
        }
        let mut files = Vec::new();
        for l in &image.layers {
            files.push(LayerFile { path: self.blob_path(&l.digest)?, media_type: l.media_type.clone(), diff_id: l.diff_id.clone() });
        }
        let tmp = self.tmp_path("tree");
        let (limits, base, written, tmp2) = (self.cfg.limits, self.cfg.owner_base, reference.to_owned(), tmp.clone());
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            std::fs::create_dir(&tmp2).map_err(io("creating", &tmp2))?;
            apply_layers(&tmp2, &files, &limits, base, &written)
        })
        .await
        .map_err(|e| ImageError::Io(format!("unpacking: {e}")))?;
        let stats = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = tokio::task::spawn_blocking(move || remove_any(&tmp)).await;
                return Err(e);
            }
        };
        metrics::histogram!("openfc_image_unpack_seconds").record(started.elapsed().as_secs_f64());
        let info = TreeInfo {
            reference: reference.to_owned(),
            digest: image.digest.clone(),
            bytes: stats.bytes,
            layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
        };
        std::fs::write(&sidecar, serde_json::to_vec(&info).unwrap_or_default()).map_err(io("writing", &sidecar))?;
        tokio::fs::rename(&tmp, &tree).await.map_err(io("storing tree", &tree))?;
        Ok((tree, stats.bytes))
    }

    /// What the store holds now.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for (_, size) in list_files(&self.cfg.dir.join("blobs/sha256")) {
            u.blobs += 1;
            u.blob_bytes += size;
        }
        for (_, info) in self.trees() {
            u.trees += 1;
            u.tree_bytes += info.map_or(0, |i| i.bytes);
        }
        u
    }

    /// Trees on this node: (ChainID, reference it was pulled as, manifest digest, unpacked bytes).
    pub fn cached(&self) -> Vec<(String, String, String, u64)> {
        self.trees()
            .into_iter()
            .filter_map(|(p, info)| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                let hex = name.split('-').next().unwrap_or_default().to_owned();
                let info = info?;
                Some((format!("sha256:{hex}"), info.reference, info.digest, info.bytes))
            })
            .collect()
    }

    fn trees(&self) -> Vec<(PathBuf, Option<TreeInfo>)> {
        let dir = self.cfg.dir.join("trees");
        let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .map(|p| {
                let info = read_info(&p.with_extension("json"));
                (p, info)
            })
            .collect()
    }

    /// Removes the trees pulled as `reference` that no image in `keep` uses, and their blobs no other tree or
    /// kept image needs. Returns the bytes freed.
    pub fn remove_reference(&self, reference: &str, keep: &[PulledImage]) -> Result<u64, ImageError> {
        let kept_trees: HashSet<String> = keep.iter().filter_map(|i| self.tree_name(&i.chain_id).ok()).collect();
        let mut needed: HashSet<String> = keep.iter().flat_map(|i| i.layers.iter().map(|l| l.digest.clone())).collect();
        let mut doomed = Vec::new();
        for (tree, info) in self.trees() {
            let name = tree.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match info {
                Some(i) if i.reference == reference && !kept_trees.contains(name.as_str()) => doomed.push((tree, i)),
                Some(i) => needed.extend(i.layers),
                None => {}
            }
        }
        let mut freed = 0;
        for (tree, info) in doomed {
            remove_any(&tree).map_err(io("removing", &tree))?;
            let _ = std::fs::remove_file(tree.with_extension("json"));
            freed += info.bytes;
            for digest in info.layers.iter().filter(|d| !needed.contains(*d)) {
                let blob = self.blob_path(digest)?;
                freed += std::fs::metadata(&blob).map_or(0, |m| m.len());
                let _ = std::fs::remove_file(&blob);
            }
        }
        Ok(freed)
    }

    /// Removes trees and blobs no image in `keep` uses. `all`: every such one; else only least recently used
    /// ones until the store is within its budget. Returns the bytes freed.
    /// Files changed within `grace` are kept: a blob stored moments ago may belong to a pull still running.
    pub fn collect(&self, keep: &[PulledImage], in_use: &HashSet<PathBuf>, all: bool, grace: Duration) -> Result<u64, ImageError> {
        let keep_trees: HashSet<String> = keep.iter().filter_map(|i| self.tree_name(&i.chain_id).ok()).collect();
        let keep_blobs: HashSet<String> =
            keep.iter().flat_map(|i| i.layers.iter()).filter_map(|l| hex_of(&l.digest).ok().map(str::to_owned)).collect();
        let usage = self.usage();
        let mut over = (usage.blob_bytes + usage.tree_bytes).saturating_sub(if all { 0 } else { self.cfg.budget_bytes });
        if !all && over == 0 {
            return Ok(0);
        }
        let mut candidates: Vec<(SystemTime, PathBuf, u64)> = Vec::new();
        for (tree, info) in self.trees() {
            let name = tree.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !keep_trees.contains(&name) {
                let used = std::fs::metadata(tree.with_extension("json")).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                candidates.push((used, tree, info.map_or(0, |i| i.bytes)));
            }
        }
        for (blob, size) in list_files(&self.cfg.dir.join("blobs/sha256")) {
            let name = blob.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if !keep_blobs.contains(&name) {
                let used = std::fs::metadata(&blob).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                candidates.push((used, blob, size));
            }
        }
        candidates.sort();
        // A blob stored or a tree built moments ago may belong to a pull about to settle; a tree a live instance
        // shows is never removed under it.
        let fresh = SystemTime::now() - grace;
        candidates.retain(|(used, path, _)| *used < fresh && !in_use.contains(path));
        let mut freed = 0;
        for (_, path, size) in candidates {
            if !all && over == 0 {
                break;
            }
            remove_any(&path).map_err(io("removing", &path))?;
            let _ = std::fs::remove_file(path.with_extension("json"));
            freed += size;
            over = over.saturating_sub(size);
        }
        Ok(freed)
    }
}

/// Where a blob lives in the shared store.
fn shared_key(digest: &str) -> Result<String, ImageError> {
    Ok(format!("images/blobs/sha256/{}", hex_of(digest)?))
}

/// How long a new blob or a used tree is safe from the budget's collection.
pub const GRACE: Duration = Duration::from_secs(600);

fn read_info(path: &Path) -> Option<TreeInfo> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Marks a tree used (its sidecar's mtime), at most once a minute.
fn touch(sidecar: &Path) {
    let stale = std::fs::metadata(sidecar)
        .and_then(|m| m.modified())
        .map_or(true, |t| t.elapsed().unwrap_or_default() > Duration::from_secs(60));
    if stale && let Ok(f) = std::fs::OpenOptions::new().append(true).open(sidecar) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn list_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            m.is_file().then(|| (e.path(), m.len()))
        })
        .collect()
}

/// Removes a file or a whole tree. Never follows symlinks (remove_dir_all does not).
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn uuid_like() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[async_trait::async_trait]
impl ImagePuller for ImageStore {
    async fn pull(&self, reference: &str) -> Result<PulledImage, PullFailure> {
        ImageStore::pull(self, reference, &|_| {}).await.map_err(|e| {
            // Every reason names the image as the function wrote it (containers.md §2.6).
            let text = e.to_string();
            let reason = if text.contains(reference) { text } else { format!("image '{reference}': {text}") };
            PullFailure { transient: e.transient(), reason }
        })
    }
}
