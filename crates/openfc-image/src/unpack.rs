//! Layers applied into one flattened tree (containers.md §3), on the synchronous `tar` crate (callers use
//! `spawn_blocking`). Each layer is decompressed as a stream, hashed while read (the DiffID proves the
//! decompressor's output) and applied with the OCI whiteout rules (`apply`); every write goes through
//! descriptors confined beneath the root (`fsroot`). After the last layer the sandbox's mount targets are
//! made plain and directory modes and mtimes applied (`finish`).
//!
//! On error the tree is left half-written: the caller unpacks into a fresh directory and discards it.

mod apply;
mod fault;
mod finish;
mod fsroot;
mod path;

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{ImageError, Limits};
use fault::Fault;
use fsroot::{Owners, Tree};

pub(crate) use fault::Fault as UnpackFault;
pub(crate) use fsroot::read_file_in_root;

/// One layer blob on local disk, as the manifest describes it.
#[derive(Debug, Clone)]
pub struct LayerFile {
    pub path: PathBuf,
    pub media_type: String,
    /// `sha256:<hex>` from the config's `rootfs.diff_ids`.
    pub diff_id: String,
}

#[derive(Debug, Default, Clone)]
pub struct UnpackStats {
    /// Uncompressed tar bytes, all layers together.
    pub bytes: u64,
    /// Tar entries, whiteouts included.
    pub entries: u64,
    /// Device entries not created (the sandbox brings its own `/dev`).
    pub skipped: u64,
}

/// Applies `layers` bottom to top into `root`, a fresh empty directory created by the caller.
///
/// `owner_base`: `None` keeps tar uid/gid as they are (an unprivileged unpacker, which may not chown, keeps
/// its own instead); `Some(base)` writes host owner `base + id`, ids 65536 and above taken as 65534 first, so
/// a user namespace mapping 0–65535 to `[base, base+65536)` shows the image's owners (containers.md §4.4).
pub fn apply_layers(
    root: &Path,
    layers: &[LayerFile],
    limits: &Limits,
    owner_base: Option<u32>,
    reference: &str,
) -> Result<UnpackStats, ImageError> {
    if layers.len() > limits.max_layers {
        return Err(too_large(reference, format!("{} layers", limits.max_layers), format!("{} layers", layers.len())));
    }
    // Everything that can be refused without reading a byte is refused before writing one.
    let mut plan = Vec::with_capacity(layers.len());
    for layer in layers {
        let compression = Compression::of(&layer.media_type)?;
        if !is_sha256_digest(&layer.diff_id) {
            let cause = format!("layer DiffID '{}' is not a sha256 digest", layer.diff_id);
            return Err(ImageError::Invalid { reference: reference.to_string(), cause });
        }
        plan.push((layer, compression));
    }
    if owner_base.is_some_and(|base| base.checked_add(65536).is_none()) {
        let cause = format!("owner base {} leaves no room for 65536 ids", owner_base.unwrap_or_default());
        return Err(ImageError::Invalid { reference: reference.to_string(), cause });
    }

    let owners = Owners { base: owner_base };
    let whole = |fault: Fault| finish_error(fault, reference);
    let mut tree = Tree::open(root, owners, limits.max_depth).map_err(whole)?;
    if owner_base.is_some() {
        let (uid, gid) = owners.root();
        tree.chown_root(uid, gid).map_err(whole)?;
    }
    // The caller's fresh directory (often 0700) becomes the image's `/`: 0755 unless a layer says otherwise.
    tree.dir_meta.insert(Vec::new(), fsroot::DirMeta { mode: 0o755, mtime: None });
    let budget = Budget { bytes: Cell::new(0), max_bytes: limits.max_bytes, over: Cell::new(false) };
    let mut stats = UnpackStats::default();
    for (index, (layer, compression)) in plan.into_iter().enumerate() {
        apply_one(&mut tree, layer, compression, limits, &budget, &mut stats).map_err(|fault| {
            if budget.over.get() {
                let actual = format!("{} bytes by layer {} of {}", budget.bytes.get(), index + 1, layers.len());
                return too_large(reference, format!("{} uncompressed", human_bytes(limits.max_bytes)), actual);
            }
            layer_error(fault, &layer.diff_id, reference)
        })?;
    }
    stats.bytes = budget.bytes.get();
    finish::mount_targets(&mut tree).map_err(whole)?;
    finish::dir_metadata(&tree, limits.max_depth).map_err(whole)?;
    Ok(stats)
}

/// ChainID of a list of DiffIDs (image-spec config.md): ChainID(L0) = DiffID(L0),
/// ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)). Empty for no layers.
pub fn chain_id(diff_ids: &[String]) -> String {
    let mut ids = diff_ids.iter();
    let Some(first) = ids.next() else { return String::new() };
    ids.fold(first.clone(), |chain, diff| {
        format!("sha256:{}", hex::encode(Sha256::digest(format!("{chain} {diff}").as_bytes())))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// By media type, as the manifest says (image-spec layer.md, Docker's schema 2 and containerd's names).
    fn of(media_type: &str) -> Result<Compression, ImageError> {
        Ok(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Compression::Zstd,
            other => return Err(ImageError::MediaType(other.to_string())),
        })
    }
}

/// The uncompressed-bytes cap, shared by all layers.
struct Budget {
    bytes: Cell<u64>,
    max_bytes: u64,
    over: Cell<bool>,
}

/// Hashes and counts the decompressed stream on its way to the tar reader.
struct Tally<'b, R> {
    inner: R,
    hasher: Sha256,
    budget: &'b Budget,
}

impl<R: Read> Read for Tally<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        let total = self.budget.bytes.get().saturating_add(n as u64);
        self.budget.bytes.set(total);
        if total > self.budget.max_bytes {
            self.budget.over.set(true);
            return Err(io::Error::other("uncompressed size cap reached"));
        }
        Ok(n)
    }
}

fn apply_one(
    tree: &mut Tree,
    layer: &LayerFile,
    compression: Compression,
    limits: &Limits,
    budget: &Budget,
    stats: &mut UnpackStats,
) -> Result<(), Fault> {
    let file = File::open(&layer.path).map_err(|e| Fault::Host(format!("open blob {}: {e}", layer.path.display())))?;
    let blob = BufReader::with_capacity(128 << 10, file);
    let stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(blob),
        // Multi-member: pigz and some registries write concatenated gzip members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(blob).map_err(Fault::stream)?),
    };
    let tally = Tally { inner: stream, hasher: Sha256::new(), budget };
    let mut archive = tar::Archive::new(BufReader::with_capacity(128 << 10, tally));
    let mut apply = apply::LayerApply::new(tree, limits);
    let mut entries = archive.entries().map_err(Fault::stream)?;
    loop {
        let mut entry = match entries.next() {
            None => break,
            Some(Ok(entry)) => entry,
            Some(Err(e)) if is_missing_trailer(&e) => break,
            Some(Err(e)) => return Err(Fault::stream(e)),
        };
        stats.entries += 1;
        if stats.entries > limits.max_entries {
            return Err(Fault::Cap {
                limit: format!("{} entries", limits.max_entries),
                actual: format!("more in layer {}", layer.diff_id),
            });
        }
        let size = entry.size();
        apply.entry(&mut entry)?;
        // The tar crate reads an entry's data through `Take`, which ends quietly at a short stream.
        let drained = io::copy(&mut entry, &mut io::sink()).map_err(Fault::stream)?;
        if apply.take_consumed() + drained != size {
            let name = path::show(&entry.path_bytes());
            return Err(Fault::refused(format!("'{name}': the tar stream ends inside its {size} bytes of data")));
        }
    }
    stats.skipped += apply.skipped;
    // The DiffID covers the whole stream, including what follows the end-of-archive blocks.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(Fault::stream)?;
    let digest = format!("sha256:{}", hex::encode(rest.into_inner().hasher.finalize()));
    if digest != layer.diff_id {
        tracing::warn!(layer = %layer.diff_id, %digest, "layer DiffID mismatch");
        return Err(Fault::DiffId);
    }
    Ok(())
}

/// Go's archive/tar (Docker, containerd, umoci) takes a stream that ends right after an entry's data, with
/// neither the padding to 512 bytes nor the end-of-archive blocks, as a complete archive; umoci 0.4.7's
/// `insert` writes such layers. The tar crate reports it while skipping that padding. Every entry's data was
/// checked complete before the next one is read, so what is missing here is padding, not content.
fn is_missing_trailer(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Other && err.to_string() == "unexpected EOF during skip"
}

fn layer_error(fault: Fault, diff_id: &str, reference: &str) -> ImageError {
    match fault {
        Fault::DiffId => {
            ImageError::Corrupt { reference: reference.to_string(), what: format!("layer {diff_id} (DiffID)") }
        }
        Fault::Refused(cause) => ImageError::Layer { layer: diff_id.to_string(), cause },
        Fault::Host(cause) => ImageError::Io(format!("layer {diff_id}: {cause}")),
        Fault::Cap { limit, actual } => too_large(reference, limit, actual),
    }
}

fn finish_error(fault: Fault, reference: &str) -> ImageError {
    match fault {
        Fault::Refused(cause) => ImageError::Invalid { reference: reference.to_string(), cause },
        Fault::Host(cause) => ImageError::Io(cause),
        Fault::Cap { limit, actual } => too_large(reference, limit, actual),
        Fault::DiffId => ImageError::Invalid { reference: reference.to_string(), cause: "DiffID mismatch".into() },
    }
}

fn too_large(reference: &str, limit: String, actual: String) -> ImageError {
    ImageError::TooLarge { reference: reference.to_string(), limit, actual }
}

fn is_sha256_digest(digest: &str) -> bool {
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// `10 GiB`, `512 MiB`, or plain bytes when not a whole unit.
fn human_bytes(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests;
