//! `apply_layers` against `umoci unpack` of the same images (containers.md §7.3), and hostile layers made
//! with GNU tar. Needs Debian's `umoci`, GNU `tar` and a static `/bin/busybox` (test.sh installs them); runs
//! offline and writes only beneath its temporary directories.

mod unpack_support;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use openfc_image::unpack::{LayerFile, apply_layers, chain_id};
use openfc_image::{ImageError, Limits};
use unpack_support::*;

#[test]
fn whiteout_fixtures_match_umoci_unpack() {
    let fx = Fixture::base();
    fx.umoci(&["insert", "--rootless", "--image", &fx.image("v1"), "--tag", "v2", "--whiteout", "/bin/cat"]);
    let newdir = fx.dir.path().join("newdir");
    std::fs::create_dir_all(newdir.join("sub")).unwrap();
    std::fs::write(newdir.join("sub/n"), "new").unwrap();
    fx.umoci(&[
        "insert",
        "--rootless",
        "--image",
        &fx.image("v2"),
        "--tag",
        "v3",
        "--opaque",
        path_str(&newdir),
        "/app",
    ]);
    // v4: the opaque marker of a/ comes after the siblings this layer writes there.
    let stage = fx.dir.path().join("stage4");
    std::fs::create_dir_all(stage.join("a/b/c")).unwrap();
    std::fs::write(stage.join("a/b/c/foo"), "foo").unwrap();
    std::fs::write(stage.join("a/.wh..wh..opq"), "").unwrap();
    let layer4 = fx.dir.path().join("layer4.tar");
    run(std::process::Command::new("tar").arg("-C").arg(&stage).arg("-cf").arg(&layer4).args([
        "--no-recursion",
        "a/",
        "a/b/",
        "a/b/c/",
        "a/b/c/foo",
        "a/.wh..wh..opq",
    ]));
    let listed = run(std::process::Command::new("tar").arg("-tf").arg(&layer4));
    assert!(listed.trim_end().ends_with("a/.wh..wh..opq"), "marker last: {listed}");
    fx.umoci(&["raw", "add-layer", "--image", &fx.image("v3"), "--tag", "v4", path_str(&layer4)]);

    for tag in ["v1", "v2", "v3", "v4"] {
        let ours = fx.apply(tag);
        let oracle = fx.umoci_unpack(tag);
        assert_same_tree(&oracle, &ours, tag);
    }

    // The rules really ran: spot checks that do not trust the oracle.
    let v4 = fx.apply("v4");
    assert!(!v4.join("bin/cat").exists() && v4.join("bin/sh").exists(), "v2 whited out bin/cat only");
    assert!(v4.join("app/sub/n").exists() && !v4.join("app/old").exists(), "v3 opaque /app");
    assert_eq!(std::fs::read_to_string(v4.join("a/b/c/foo")).unwrap(), "foo");
    assert!(!v4.join("a/x").exists() && !v4.join("a/fifo").exists(), "v4 hid a/'s lower children");
    let v1 = fx.apply("v1");
    let ino = |p: &str| std::fs::metadata(v1.join(p)).unwrap().ino();
    assert_eq!(ino("a/hard"), ino("a/x/f"), "hard link kept");
}

#[test]
fn zstd_uncompressed_and_docker_layers_give_the_same_tree() {
    let fx = Fixture::base();
    fx.umoci(&["insert", "--rootless", "--image", &fx.image("v1"), "--tag", "v2", "--whiteout", "/bin/cat"]);
    fx.recompress("v2", "v2-zstd", &[Blob::Zstd, Blob::Zstd]);
    fx.recompress("v2", "v2-mixed", &[Blob::Tar, Blob::DockerGzip]);
    let (_, zstd_types, _) = fx.read_layout("v2-zstd");
    assert!(zstd_types.iter().all(|t| t == "application/vnd.oci.image.layer.v1.tar+zstd"), "{zstd_types:?}");
    let oracle = fx.umoci_unpack("v2");
    for tag in ["v2-zstd", "v2-mixed"] {
        assert_same_tree(&oracle, &fx.apply(tag), tag);
    }
    let (diff_ids, _, _) = fx.read_layout("v2");
    assert_eq!(fx.read_layout("v2-zstd").0, diff_ids, "DiffIDs unchanged by recompression");
    assert_eq!(chain_id(&diff_ids).len(), 71);
}

#[test]
fn owners_shift_into_the_base_range() {
    if !is_root() {
        eprintln!("skipped: chown to other ids needs root");
        return;
    }
    let fx = Fixture::base();
    let stage = fx.dir.path().join("owners");
    std::fs::create_dir_all(&stage).unwrap();
    for name in ["root-file", "high-file", "app-file"] {
        std::fs::write(stage.join(name), name).unwrap();
    }
    // GNU tar's --owner applies to the whole archive: one layer per owner.
    let mut layers = fx.layers("v1");
    for (name, owner, group) in [("root-file", 0, 0), ("high-file", 70000, 70001), ("app-file", 1000, 1000)] {
        let out = fx.dir.path().join(format!("{name}.tar"));
        gnu_tar(&stage, &out, &[&format!("--owner={owner}"), &format!("--group={group}"), "--numeric-owner", name]);
        layers.push(tar_layer(&out));
    }
    let base = 1_000_000_000;
    let root = fx.dir.path().join("owned");
    std::fs::create_dir(&root).unwrap();
    apply_layers(&root, &layers, &Limits::default(), Some(base), "test/owners").unwrap();
    let owner = |p: &str| {
        let m = std::fs::symlink_metadata(root.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("root-file"), (base, base));
    assert_eq!(owner("high-file"), (base + 65534, base + 65534));
    assert_eq!(owner("app-file"), (base + 1000, base + 1000));
    assert_eq!(owner("bin/busybox"), (base, base), "umoci's layer is owned by 0 in the tar");
    assert_eq!(owner("bin/sh"), (base, base), "symlinks are chowned, not their targets");
}

#[test]
fn hostile_gnu_tar_layers_are_refused_or_confined() {
    let tmp = tempfile::tempdir().unwrap();
    let stage = tmp.path().join("stage");
    std::fs::create_dir_all(stage.join("z/etc")).unwrap();
    let marker = format!("openfc-oracle-{}", std::process::id());
    std::fs::write(stage.join("z/etc").join(&marker), "confined").unwrap();
    std::os::unix::fs::symlink("/", stage.join("a")).unwrap();
    std::fs::write(stage.join("x"), "x").unwrap();
    std::fs::hard_link(stage.join("x"), stage.join("hl")).unwrap();

    // `a -> /`, then `a/etc/<marker>` (no `a/` directory entry in between): lands in <root>/etc, never
    // in the host's /etc.
    let confined =
        gnu_tar(&stage, &tmp.path().join("confined.tar"), &["--transform=s,^z,a,", "a", &format!("z/etc/{marker}")]);
    let listed = run(std::process::Command::new("tar").arg("-tvf").arg(&confined));
    assert!(listed.contains("a -> /") && listed.contains(&format!("a/etc/{marker}")), "{listed}");
    let root = fresh(tmp.path(), "confined");
    apply_layers(&root, &[tar_layer(&confined)], &Limits::default(), None, "test/confined").unwrap();
    assert_eq!(std::fs::read_to_string(root.join("etc").join(&marker)).unwrap(), "confined");
    assert!(!Path::new("/etc").join(&marker).exists());

    // `../escape` kept by --absolute-names.
    let escape = gnu_tar(&stage, &tmp.path().join("escape.tar"), &["-P", "--transform=s,^x$,../escape,", "x"]);
    assert!(run(std::process::Command::new("tar").arg("-tPf").arg(&escape)).contains("../escape"));
    let err = apply_layers(&fresh(tmp.path(), "escape-root"), &[tar_layer(&escape)], &Limits::default(), None, "t")
        .unwrap_err();
    assert!(matches!(&err, ImageError::Layer { cause, .. } if cause.contains("'..'")), "{err}");
    assert!(!tmp.path().join("escape").exists());

    // A hard link whose target is not in the tree (its link renamed, the member it names not: flags `Rh`).
    let missing = gnu_tar(&stage, &tmp.path().join("missing.tar"), &["--transform=s,^x$,gone,Rh", "x", "hl"]);
    assert!(run(std::process::Command::new("tar").arg("-tvf").arg(&missing)).contains("hl link to gone"));
    let err =
        apply_layers(&fresh(tmp.path(), "missing"), &[tar_layer(&missing)], &Limits::default(), None, "t").unwrap_err();
    assert!(matches!(&err, ImageError::Layer { cause, .. } if cause.contains("does not exist")), "{err}");
}

#[test]
fn corrupt_and_oversized_images_fail_with_their_reason() {
    let fx = Fixture::base();
    let layers = fx.layers("v1");

    let mut corrupt = layers.clone();
    corrupt[0].diff_id = format!("sha256:{}", "0".repeat(64));
    let err =
        apply_layers(&fresh(fx.dir.path(), "corrupt"), &corrupt, &Limits::default(), None, "reg/app:1").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("layer sha256:{} (DiffID) of 'reg/app:1' does not match its digest", "0".repeat(64))
    );

    let small = Limits { max_bytes: 1 << 20, ..Limits::default() };
    let err = apply_layers(&fresh(fx.dir.path(), "big"), &layers, &small, None, "reg/app:1").unwrap_err();
    assert!(err.to_string().starts_with("image 'reg/app:1' exceeds 1 MiB uncompressed ("), "{err}");

    let few = Limits { max_entries: 5, ..Limits::default() };
    let err = apply_layers(&fresh(fx.dir.path(), "many"), &layers, &few, None, "reg/app:1").unwrap_err();
    assert!(matches!(&err, ImageError::TooLarge { limit, .. } if limit == "5 entries"), "{err}");

    let mut unknown = layers.clone();
    unknown[0].media_type = "application/vnd.oci.image.layer.v1.tar+lz4".into();
    let err = apply_layers(&fresh(fx.dir.path(), "mt"), &unknown, &Limits::default(), None, "reg/app:1").unwrap_err();
    assert!(matches!(err, ImageError::MediaType(_)), "{err}");
}

fn fresh(parent: &Path, name: &str) -> std::path::PathBuf {
    let root = parent.join(name);
    std::fs::create_dir(&root).unwrap();
    root
}

fn tar_layer(path: &Path) -> LayerFile {
    LayerFile {
        path: path.to_path_buf(),
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        diff_id: sha256_file(path),
    }
}

fn gnu_tar(stage: &Path, out: &Path, args: &[&str]) -> std::path::PathBuf {
    run(std::process::Command::new("tar").arg("-C").arg(stage).arg("-cf").arg(out).arg("--no-recursion").args(args));
    out.to_path_buf()
}
