//! Layer rules on hand-made tars (the umoci comparison lives in `tests/unpack_oracle.rs`).

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::*;

const A: &str = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
const B: &str = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
const C: &str = "sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6";

#[test]
fn chain_id_matches_vectors_computed_with_sha256sum() {
    // printf '%s %s' "$A" "$B" | sha256sum, then the same with that result and "$C".
    assert_eq!(chain_id(&[]), "");
    assert_eq!(chain_id(&[A.into()]), A);
    assert_eq!(
        chain_id(&[A.into(), B.into()]),
        "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676"
    );
    assert_eq!(
        chain_id(&[A.into(), B.into(), C.into()]),
        "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106"
    );
}

#[test]
fn media_types_pick_the_decompressor() {
    for (mt, want) in [
        ("application/vnd.oci.image.layer.v1.tar", Compression::None),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Compression::Gzip),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Compression::Zstd),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression::Gzip),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Compression::Gzip),
        ("application/vnd.docker.image.rootfs.diff.tar", Compression::None),
    ] {
        assert_eq!(Compression::of(mt).unwrap(), want, "{mt}");
    }
    assert!(matches!(
        Compression::of("application/vnd.oci.image.layer.v1.tar+bzip2"),
        Err(ImageError::MediaType(m)) if m.ends_with("bzip2")
    ));
}

#[test]
fn human_bytes_words_whole_units() {
    assert_eq!(human_bytes(10 << 30), "10 GiB");
    assert_eq!(human_bytes(3 << 20), "3 MiB");
    assert_eq!(human_bytes(1000), "1000 bytes");
}

/// A tar written entry by entry, names unchecked (hostile names are the point of some tests).
struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }

    fn entry(mut self, name: &str, kind: tar::EntryType, mode: u32, link: &str, data: &[u8]) -> Layer {
        let mut h = tar::Header::new_gnu();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn owned(mut self, name: &str, uid: u64, gid: u64) -> Layer {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_size(0);
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    fn dir(self, name: &str, mode: u32) -> Layer {
        self.entry(name, tar::EntryType::Directory, mode, "", b"")
    }
    fn file(self, name: &str, data: &str) -> Layer {
        self.entry(name, tar::EntryType::Regular, 0o644, "", data.as_bytes())
    }
    fn symlink(self, name: &str, target: &str) -> Layer {
        self.entry(name, tar::EntryType::Symlink, 0o777, target, b"")
    }
    fn hardlink(self, name: &str, target: &str) -> Layer {
        self.entry(name, tar::EntryType::Link, 0o644, target, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn diff_id(tar: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(tar)))
}

/// Writes each tar as an uncompressed blob and applies them into `<tmp>/root`.
fn apply(
    tmp: &Path,
    tars: Vec<Vec<u8>>,
    limits: &Limits,
    base: Option<u32>,
) -> Result<(PathBuf, UnpackStats), ImageError> {
    let root = tmp.join("root");
    std::fs::create_dir(&root).unwrap();
    let mut layers = Vec::new();
    for (i, tar) in tars.iter().enumerate() {
        let path = tmp.join(format!("layer{i}.tar"));
        std::fs::write(&path, tar).unwrap();
        layers.push(LayerFile {
            path,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            diff_id: diff_id(tar),
        });
    }
    apply_layers(&root, &layers, limits, base, "test/image:1").map(|s| (root, s))
}

fn read(root: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(root.join(rel)).ok()
}

fn exists(root: &Path, rel: &str) -> bool {
    std::fs::symlink_metadata(root.join(rel)).is_ok()
}

#[test]
fn whiteout_hides_lower_files_only() {
    let tmp = tempfile::tempdir().unwrap();
    let lower =
        Layer::new().dir("a/", 0o755).file("a/x", "lower x").file("a/y", "lower y").file("a/z", "lower z").bytes();
    // `.wh.x` after this layer's own `x` keeps it; `.wh.z` before this layer's `z` removes only the lower one.
    let upper = Layer::new()
        .file("a/x", "upper x")
        .file("a/.wh.x", "")
        .file("a/.wh.y", "")
        .file("a/.wh.z", "")
        .file("a/z", "upper z")
        .file("a/.wh.never-existed", "")
        .bytes();
    let (root, _) = apply(tmp.path(), vec![lower, upper], &Limits::default(), None).unwrap();
    assert_eq!(read(&root, "a/x").as_deref(), Some("upper x"));
    assert!(!exists(&root, "a/y"));
    assert_eq!(read(&root, "a/z").as_deref(), Some("upper z"));
    assert!(!exists(&root, "a/.wh.x") && !exists(&root, "a/.wh.y") && !exists(&root, "a/.wh.never-existed"));
}

#[test]
fn opaque_marker_after_its_siblings_keeps_them_and_clears_lower_children() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = Layer::new().dir("a/", 0o755).file("a/old", "o").dir("a/sub/", 0o755).file("a/sub/deep", "d").bytes();
    let upper = Layer::new()
        .dir("a/", 0o755)
        .dir("a/sub/", 0o755)
        .file("a/sub/new", "n")
        .file("a/before", "b")
        .file("a/.wh..wh..opq", "")
        .file("a/after", "f")
        .bytes();
    let (root, _) = apply(tmp.path(), vec![lower, upper], &Limits::default(), None).unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(root.join("a")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["after", "before", "sub"]);
    assert!(exists(&root, "a/sub/new"));
    assert!(!exists(&root, "a/sub/deep"), "a lower child inside a directory this layer wrote is hidden too");
}

#[test]
fn overwrites_replace_types_and_keep_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = Layer::new()
        .dir("d/", 0o755)
        .file("d/keep", "k")
        .file("f", "file")
        .dir("g/", 0o755)
        .file("g/child", "c")
        .bytes();
    let upper =
        Layer::new().dir("d/", 0o700).dir("f/", 0o755).file("g", "now a file").symlink("d/keep2", "keep").bytes();
    let (root, _) = apply(tmp.path(), vec![lower, upper], &Limits::default(), None).unwrap();
    assert_eq!(read(&root, "d/keep").as_deref(), Some("k"), "dir over dir keeps its children");
    assert_eq!(std::fs::metadata(root.join("d")).unwrap().permissions().mode() & 0o7777, 0o700);
    assert!(root.join("f").is_dir());
    assert_eq!(read(&root, "g").as_deref(), Some("now a file"));
    assert_eq!(std::fs::read_link(root.join("d/keep2")).unwrap(), Path::new("keep"));
}

#[test]
fn modes_special_bits_fifo_devices_and_mtimes() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new()
        .dir("ro/", 0o555)
        .entry("ro/suid", tar::EntryType::Regular, 0o4755, "", b"s")
        .entry("ro/fifo", tar::EntryType::Fifo, 0o640, "", b"")
        .entry("ro/null", tar::EntryType::Char, 0o666, "", b"")
        .entry("ro/sda", tar::EntryType::Block, 0o660, "", b"")
        .bytes();
    let (root, stats) = apply(tmp.path(), vec![layer], &Limits::default(), None).unwrap();
    assert_eq!(stats.skipped, 2);
    assert_eq!(stats.entries, 5);
    let meta = |rel: &str| std::fs::symlink_metadata(root.join(rel)).unwrap();
    assert_eq!(meta("ro").permissions().mode() & 0o7777, 0o555);
    assert_eq!(meta("ro").mtime(), 1_600_000_000, "directory mtime applied after its children");
    assert_eq!(meta("ro/suid").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(meta("ro/suid").mtime(), 1_600_000_000);
    assert!(meta("ro/fifo").file_type().is_fifo());
    assert_eq!(meta("ro/fifo").permissions().mode() & 0o7777, 0o640);
    assert!(!exists(&root, "ro/null") && !exists(&root, "ro/sda"));
}

#[test]
fn hard_links_need_an_existing_target() {
    let tmp = tempfile::tempdir().unwrap();
    let lower = Layer::new().file("bin/tool", "t").bytes();
    let upper = Layer::new().hardlink("usr/tool", "/bin/tool").bytes();
    let (root, _) = apply(tmp.path(), vec![lower, upper], &Limits::default(), None).unwrap();
    let ino = |rel: &str| std::fs::metadata(root.join(rel)).unwrap().ino();
    assert_eq!(ino("usr/tool"), ino("bin/tool"));

    let tmp = tempfile::tempdir().unwrap();
    let bad = Layer::new().hardlink("x", "missing/target").bytes();
    let err = apply(tmp.path(), vec![bad], &Limits::default(), None).unwrap_err();
    assert!(matches!(&err, ImageError::Layer { cause, .. } if cause.contains("does not exist")), "{err}");
}

#[test]
fn dotdot_and_root_replacement_are_refused_and_nothing_lands_outside() {
    for (name, layer) in [
        ("dotdot", Layer::new().file("../escape", "x").bytes()),
        ("nested dotdot", Layer::new().dir("a/", 0o755).file("a/../../escape", "x").bytes()),
        ("hard link out", Layer::new().hardlink("x", "../escape").bytes()),
        ("root symlink", Layer::new().symlink("./", "/").bytes()),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let err = apply(tmp.path(), vec![layer], &Limits::default(), None).unwrap_err();
        assert!(matches!(err, ImageError::Layer { .. }), "{name}: {err}");
        assert!(!tmp.path().join("escape").exists(), "{name}");
    }
}

#[test]
fn symlinked_parents_resolve_inside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = format!("openfc-unpack-test-{}", std::process::id());
    let layer = Layer::new()
        .symlink("a", "/")
        .file(&format!("a/etc/{marker}"), "in root")
        .symlink("up", "../../../../../..")
        .file(&format!("up/tmp/{marker}"), "also in root")
        .symlink("dangling", "/made/by/mkdirall")
        .file("dangling/f", "through a dangling link")
        .bytes();
    let (root, _) = apply(tmp.path(), vec![layer], &Limits::default(), None).unwrap();
    assert_eq!(read(&root, &format!("etc/{marker}")).as_deref(), Some("in root"));
    assert_eq!(read(&root, &format!("tmp/{marker}")).as_deref(), Some("also in root"));
    assert_eq!(read(&root, "made/by/mkdirall/f").as_deref(), Some("through a dangling link"));
    assert!(!Path::new("/etc").join(&marker).exists() && !Path::new("/tmp").join(&marker).exists());
    assert!(!tmp.path().join("etc").exists() && !tmp.path().join("tmp").exists());
}

#[test]
fn symlink_loops_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new().symlink("l1", "l2").symlink("l2", "l1").file("l1/x", "x").bytes();
    let err = apply(tmp.path(), vec![layer], &Limits::default(), None).unwrap_err();
    assert!(matches!(&err, ImageError::Layer { cause, .. } if cause.contains("symbolic links")), "{err}");
}

#[test]
fn mount_targets_become_plain() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new()
        .symlink("tmp", "/")
        .file("proc", "not a dir")
        .dir("etc/", 0o755)
        .symlink("etc/resolv.conf", "/etc/resolv.conf")
        .dir("etc/hosts/", 0o755)
        .bytes();
    let (root, _) = apply(tmp.path(), vec![layer], &Limits::default(), None).unwrap();
    for dir in ["proc", "dev", "tmp", "etc"] {
        assert!(std::fs::symlink_metadata(root.join(dir)).unwrap().is_dir(), "{dir}");
    }
    assert_eq!(std::fs::metadata(root.join("tmp")).unwrap().permissions().mode() & 0o7777, 0o1777);
    for file in ["etc/resolv.conf", "etc/hosts"] {
        let meta = std::fs::symlink_metadata(root.join(file)).unwrap();
        assert!(meta.is_file() && meta.len() == 0, "{file}");
    }
}

#[test]
fn owners_shift_into_the_base_range() {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
        return; // chown to other ids needs root; the oracle test runs as root on the test machine
    }
    let tmp = tempfile::tempdir().unwrap();
    let layer = Layer::new().owned("root-owned", 0, 0).owned("app", 1000, 1001).owned("big", 70000, 70001).bytes();
    let base = 1_000_000_000;
    let (root, _) = apply(tmp.path(), vec![layer], &Limits::default(), Some(base)).unwrap();
    let owner = |rel: &str| {
        let m = std::fs::symlink_metadata(root.join(rel)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("root-owned"), (base, base));
    assert_eq!(owner("app"), (base + 1000, base + 1001));
    assert_eq!(owner("big"), (base + 65534, base + 65534));
    assert_eq!(owner("proc"), (base, base), "mount targets belong to the image's root");
    assert_eq!(owner(""), (base, base));
}

#[test]
fn diff_id_covers_the_whole_stream_and_catches_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tar = Layer::new().file("f", "content").bytes();
    tar.extend_from_slice(&[0u8; 4096]); // padding after the end-of-archive blocks, as some tools write
    let (root, stats) = apply(tmp.path(), vec![tar.clone()], &Limits::default(), None).unwrap();
    assert_eq!(read(&root, "f").as_deref(), Some("content"));
    assert_eq!(stats.bytes, tar.len() as u64);

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let path = tmp.path().join("l.tar");
    std::fs::write(&path, &tar).unwrap();
    let layer = LayerFile { path, media_type: "application/vnd.oci.image.layer.v1.tar".into(), diff_id: A.into() };
    let err = apply_layers(&root, &[layer], &Limits::default(), None, "test/image:1").unwrap_err();
    assert!(matches!(&err, ImageError::Corrupt { what, .. } if what == &format!("layer {A} (DiffID)")), "{err}");
}

#[test]
fn gzip_members_and_zstd_frames_decompress() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = Layer::new().file("hello", &"x".repeat(100_000)).bytes();
    let (first, second) = tar.split_at(3000);
    // Two concatenated gzip members, as pigz writes.
    let mut gz = Vec::new();
    for part in [first, second] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        gz.extend(enc.finish().unwrap());
    }
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    for (i, (blob, mt)) in [
        (gz, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        (zst, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ]
    .into_iter()
    .enumerate()
    {
        let root = tmp.path().join(format!("root{i}"));
        std::fs::create_dir(&root).unwrap();
        let path = tmp.path().join(format!("blob{i}"));
        std::fs::write(&path, blob).unwrap();
        let layer = LayerFile { path, media_type: mt.into(), diff_id: diff_id(&tar) };
        let stats = apply_layers(&root, &[layer], &Limits::default(), None, "r").unwrap();
        assert_eq!(std::fs::read(root.join("hello")).unwrap().len(), 100_000, "{mt}");
        assert_eq!(stats.bytes, tar.len() as u64);
    }
}

#[test]
fn caps_are_enforced() {
    let big = Layer::new().file("big", &"x".repeat(50_000)).bytes();
    let many = Layer::new().file("1", "").file("2", "").file("3", "").file("4", "").bytes();
    let deep = Layer::new().file("a/b/c/d/e", "").bytes();
    let cases: Vec<(Vec<Vec<u8>>, Limits, &str)> = vec![
        (vec![big], Limits { max_bytes: 10_000, ..Limits::default() }, "10000 bytes uncompressed"),
        (vec![many], Limits { max_entries: 3, ..Limits::default() }, "3 entries"),
        (vec![deep.clone()], Limits { max_depth: 4, ..Limits::default() }, "4 path components"),
        (vec![deep.clone()], Limits { max_path_bytes: 5, ..Limits::default() }, "5-byte paths"),
        (vec![deep.clone(), deep], Limits { max_layers: 1, ..Limits::default() }, "1 layers"),
    ];
    for (tars, limits, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let err = apply(tmp.path(), tars, &limits, None).unwrap_err();
        assert!(matches!(&err, ImageError::TooLarge { limit, .. } if limit == want), "{want}: {err}");
        assert!(err.to_string().starts_with("image 'test/image:1' exceeds"), "{err}");
    }
}

#[test]
fn symlink_depth_through_links_is_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = Limits { max_depth: 5, ..Limits::default() };
    // Each entry is short, but `s` expands to five components and `s/t` to six.
    let layer = Layer::new().symlink("s", "a/b/c/d/e").file("s/t/u", "x").bytes();
    let err = apply(tmp.path(), vec![layer], &limits, None).unwrap_err();
    assert!(matches!(&err, ImageError::TooLarge { limit, .. } if limit == "5 path components"), "{err}");
}

#[test]
fn bad_inputs_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let layer =
        |mt: &str, diff: &str| LayerFile { path: tmp.path().join("nope"), media_type: mt.into(), diff_id: diff.into() };
    let err = apply_layers(&root, &[layer("text/plain", A)], &Limits::default(), None, "r").unwrap_err();
    assert!(matches!(err, ImageError::MediaType(_)));
    let err = apply_layers(
        &root,
        &[layer("application/vnd.oci.image.layer.v1.tar", "md5:00")],
        &Limits::default(),
        None,
        "r",
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::Invalid { .. }));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

#[test]
fn a_stream_ending_after_the_data_is_complete_but_not_one_ending_inside_it() {
    // umoci 0.4.7's `insert` writes layers like the first: no padding, no end-of-archive blocks.
    let full = Layer::new().file("a", "first").file("b", "last").bytes();
    let end_of_b_data = 512 * 3 + 4;
    let tmp = tempfile::tempdir().unwrap();
    let (root, _) = apply(tmp.path(), vec![full[..end_of_b_data].to_vec()], &Limits::default(), None).unwrap();
    assert_eq!(read(&root, "b").as_deref(), Some("last"));

    let tmp = tempfile::tempdir().unwrap();
    let err = apply(tmp.path(), vec![full[..end_of_b_data - 2].to_vec()], &Limits::default(), None).unwrap_err();
    assert!(
        matches!(&err, ImageError::Layer { cause, .. } if cause.contains("'b': the tar stream ends inside")),
        "{err}"
    );
}
