//! OCI layouts built with umoci (containers.md §7.3), read back, recompressed by hand, and compared.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use openfc_image::Limits;
use openfc_image::unpack::{LayerFile, apply_layers};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn is_root() -> bool {
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

pub fn sha256_file(path: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// How a recompressed layer is stored.
#[derive(Clone, Copy)]
pub enum Blob {
    Zstd,
    Tar,
    DockerGzip,
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub layout: PathBuf,
}

impl Fixture {
    /// `img:v1`: one layer holding busybox and the shapes the rules care about.
    pub fn base() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("img");
        let fx = Fixture { dir, layout };
        fx.umoci(&["init", "--layout", path_str(&fx.layout)]);
        fx.umoci(&["new", "--image", &fx.image("v1")]);
        let bundle = fx.dir.path().join("bundle");
        fx.umoci(&["unpack", "--rootless", "--image", &fx.image("v1"), path_str(&bundle)]);
        stage_rootfs(&bundle.join("rootfs"));
        fx.umoci(&["repack", "--image", &fx.image("v1"), path_str(&bundle)]);
        fx
    }

    pub fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.layout.display())
    }

    pub fn umoci(&self, args: &[&str]) -> String {
        run(Command::new("umoci").args(args))
    }

    /// `umoci unpack --rootless` of `tag`; its rootfs.
    pub fn umoci_unpack(&self, tag: &str) -> PathBuf {
        let bundle = self.dir.path().join(format!("oracle-{tag}"));
        self.umoci(&["unpack", "--rootless", "--image", &self.image(tag), path_str(&bundle)]);
        bundle.join("rootfs")
    }

    /// `apply_layers` of `tag` into a fresh directory.
    pub fn apply(&self, tag: &str) -> PathBuf {
        let root = self.dir.path().join(format!("ours-{tag}-{}", unique()));
        std::fs::create_dir(&root).unwrap();
        let base = is_root().then_some(1_000_000_000);
        apply_layers(&root, &self.layers(tag), &Limits::default(), base, tag).unwrap_or_else(|e| panic!("{tag}: {e}"));
        root
    }

    pub fn layers(&self, tag: &str) -> Vec<LayerFile> {
        let (diff_ids, media_types, digests) = self.read_layout(tag);
        diff_ids
            .into_iter()
            .zip(media_types)
            .zip(digests)
            .map(|((diff_id, media_type), digest)| LayerFile { path: self.blob(&digest), media_type, diff_id })
            .collect()
    }

    /// index.json → manifest → config: (DiffIDs, layer media types, layer digests).
    pub fn read_layout(&self, tag: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
        let manifest = self.manifest(tag);
        let config: Value =
            serde_json::from_slice(&std::fs::read(self.blob(manifest["config"]["digest"].as_str().unwrap())).unwrap())
                .unwrap();
        let strings = |v: &Value, key: &str| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| if key.is_empty() { x } else { &x[key] }.as_str().unwrap().to_string())
                .collect()
        };
        let diff_ids = strings(&config["rootfs"]["diff_ids"], "");
        let layers = &manifest["layers"];
        (diff_ids, strings(layers, "mediaType"), strings(layers, "digest"))
    }

    fn manifest(&self, tag: &str) -> Value {
        let index: Value = serde_json::from_slice(&std::fs::read(self.layout.join("index.json")).unwrap()).unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag}"));
        serde_json::from_slice(&std::fs::read(self.blob(entry["digest"].as_str().unwrap())).unwrap()).unwrap()
    }

    pub fn blob(&self, digest: &str) -> PathBuf {
        self.layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())
    }

    fn put_blob(&self, bytes: &[u8]) -> (String, u64) {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        std::fs::write(self.blob(&digest), bytes).unwrap();
        (digest, bytes.len() as u64)
    }

    /// Tags `to` as `from` with each gzip layer stored as `how` says (a new blob, media type, manifest and
    /// index entry; the config and its DiffIDs unchanged), the way containers.md §7.5 writes a zstd image.
    pub fn recompress(&self, from: &str, to: &str, how: &[Blob]) {
        let mut manifest = self.manifest(from);
        for (layer, how) in manifest["layers"].as_array_mut().unwrap().iter_mut().zip(how) {
            let mut tar = Vec::new();
            let gz = std::fs::File::open(self.blob(layer["digest"].as_str().unwrap())).unwrap();
            flate2::read::MultiGzDecoder::new(gz).read_to_end(&mut tar).unwrap();
            let (bytes, media_type) = match how {
                Blob::Zstd => (zstd::encode_all(&tar[..], 3).unwrap(), "application/vnd.oci.image.layer.v1.tar+zstd"),
                Blob::Tar => (tar, "application/vnd.oci.image.layer.v1.tar"),
                Blob::DockerGzip => (
                    std::fs::read(self.blob(layer["digest"].as_str().unwrap())).unwrap(),
                    "application/vnd.docker.image.rootfs.diff.tar.gzip",
                ),
            };
            let (digest, size) = self.put_blob(&bytes);
            layer["digest"] = json!(digest);
            layer["size"] = json!(size);
            layer["mediaType"] = json!(media_type);
        }
        let (digest, size) = self.put_blob(&serde_json::to_vec(&manifest).unwrap());
        let index_path = self.layout.join("index.json");
        let mut index: Value = serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": to},
        }));
        std::fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// busybox with a few applets, plus every entry shape: nested dirs, modes (setuid, setgid, sticky, 0700,
/// 0600, read-only dir), relative, absolute and dangling symlinks, a hard link, a FIFO, an empty file.
fn stage_rootfs(r: &Path) {
    let mkdir = |p: &str, mode: u32| {
        std::fs::create_dir_all(r.join(p)).unwrap();
        std::fs::set_permissions(r.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let file = |p: &str, content: &str, mode: u32| {
        std::fs::write(r.join(p), content).unwrap();
        std::fs::set_permissions(r.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let link = |target: &str, p: &str| std::os::unix::fs::symlink(target, r.join(p)).unwrap();
    for d in ["bin", "etc", "a/x", "a/y", "app/old", "lib", "home/app", "srv/shared"] {
        mkdir(d, 0o755);
    }
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "env", "ls", "id"] {
        link("busybox", &format!("bin/{applet}"));
    }
    file("bin/fc-handler", "#!/bin/sh\necho ok\n", 0o755);
    file("bin/suid", "s", 0o4755);
    mkdir("tmp", 0o1777);
    mkdir("srv/shared", 0o2775);
    mkdir("root", 0o700);
    file("root/secret", "s", 0o600);
    file(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        0o644,
    );
    file("etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n", 0o644);
    link("/proc/mounts", "etc/mtab");
    file("a/x/f", "hello", 0o644);
    file("a/y/g", "keep", 0o644);
    file("a/empty", "", 0o644);
    std::fs::hard_link(r.join("a/x/f"), r.join("a/hard")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("a/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    link("../a", "lib/alink");
    link("/nowhere/at/all", "a/dangling");
    file("app/old/o", "old", 0o644);
    mkdir("app/ro", 0o555);
}

/// What the comparison sees of a file: type, permission bits, content or target, link count.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, sha256: String, nlink: u64 },
    Symlink { target: PathBuf },
    Fifo { mode: u32 },
    Other { mode: u32 },
}

pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        let node = if kind.is_dir() {
            walk(root, &path, out);
            Node::Dir { mode }
        } else if kind.is_symlink() {
            Node::Symlink { target: std::fs::read_link(&path).unwrap() }
        } else if kind.is_file() {
            Node::File { mode, sha256: sha256_file(&path), nlink: meta.nlink() }
        } else if kind.is_fifo() {
            Node::Fifo { mode }
        } else {
            Node::Other { mode }
        };
        out.insert(rel, node);
    }
}

/// Paths `apply_layers` adds for the sandbox's mounts when the image lacks them (containers.md §3).
const MOUNT_TARGETS: [&str; 6] = ["proc", "dev", "tmp", "etc", "etc/resolv.conf", "etc/hosts"];

/// Same paths, types, modes (ownership and times aside), contents, link targets and hard-link counts.
pub fn assert_same_tree(oracle: &Path, ours: &Path, what: &str) {
    let want = snapshot(oracle);
    let mut got = snapshot(ours);
    for extra in MOUNT_TARGETS {
        if !want.contains_key(extra) {
            got.remove(extra);
        }
    }
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(missing.is_empty() && extra.is_empty(), "{what}: missing {missing:?}, extra {extra:?}");
    for (path, node) in &want {
        assert_eq!(&got[path], node, "{what}: {path}");
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(ours), mode(oracle), "{what}: the root directory");
    assert!(want.len() > 10, "{what}: the oracle tree is suspiciously small");
}
