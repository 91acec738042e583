//! Fuzz targets for what openfc-image reads from users and registries: image references (and the
//! operator's mirror list), and tar layers applied into a temporary root. Harness: docs/fuzzing.md.

include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/harness.rs"));

use std::path::Path;

use harness::{fuzz, lines};
use openfc_image::reference::check_digest;
use openfc_image::unpack::{LayerFile, apply_layers};
use openfc_image::{ImageRef, Limits, Mirrors};
use sha2::{Digest, Sha256};

/// References: never a panic; a parsed reference's canonical form parses again to the same reference,
/// and its digest, if any, is one openfc can store.
#[test]
fn fuzz_image_reference() {
    let dict: &[&[u8]] = &[
        b"docker.io/", b"library/", b"localhost:5000/", b":latest", b"@sha256:", b"/", b":", b"@", b"..", b"-", b"_",
        b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", b"=", b"\n",
    ];
    fuzz("image_reference", dict, |input| {
        let parts = lines(input, 2);
        let (written, mirror) = (&parts[0], &parts[1]);
        let mirrors = if mirror.is_empty() {
            Mirrors::default()
        } else {
            Mirrors::parse(&[mirror.as_str()]).unwrap_or_default()
        };
        let _ = check_digest(written);
        let Ok(image) = ImageRef::parse(written, &mirrors) else { return };
        if let Some(digest) = &image.digest {
            assert!(check_digest(digest).is_ok(), "{written:?}: digest {digest:?} accepted");
        }
        // Found here and fixed: `UPPER/case` used to be accepted as a Docker Hub repository whose canonical form
        // was then refused; upper-case repositories are refused now, so the round trip holds for every input.
        assert!(!image.repository.bytes().any(|b| b.is_ascii_uppercase()), "{written:?}: upper-case repository");
        let canonical = image.canonical();
        let again = ImageRef::parse(&canonical, &Mirrors::default())
            .unwrap_or_else(|e| panic!("{written:?}: canonical {canonical:?} does not parse: {e}"));
        assert_eq!(again.canonical(), canonical, "{written:?}");
    });
}

/// Everything under `dir`, symlinks not followed.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Tar layers (plain or gzip, one or two layers): never a panic, and nothing is written outside the root:
/// the root's parent holds exactly what it held before, and a decoy beside it is untouched.
#[test]
fn fuzz_tar_unpack() {
    let dict: &[&[u8]] = &[b"../", b"/", b".wh.", b".wh..wh..opq", b"ustar\x0000", b"ustar  \x00", b"0000644\x00", b"\x1f\x8b"];
    let limits = Limits { max_bytes: 1 << 20, max_entries: 256, max_depth: 32, ..Limits::default() };
    fuzz("tar", dict, |input| {
        let tmp = tempfile::tempdir().unwrap();
        let (parent, root) = (tmp.path().join("parent"), tmp.path().join("parent/root"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(parent.join("decoy"), b"decoy").unwrap();
        let blob = tmp.path().join("layer");
        std::fs::write(&blob, input).unwrap();
        let gzip = input.starts_with(b"\x1f\x8b");
        let layer = LayerFile {
            path: blob.clone(),
            media_type: if gzip { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" }
                .into(),
            diff_id: format!("sha256:{}", hex::encode(Sha256::digest(input))),
        };
        // Twice the same layer: the second applies over what the first made (symlinks included).
        let layers = if input.len() % 2 == 0 { vec![layer.clone()] } else { vec![layer.clone(), layer] };
        let _ = apply_layers(&root, &layers, &limits, None, "fuzz");
        let outside = listing(tmp.path()).into_iter().filter(|p| !p.starts_with("parent/root")).collect::<Vec<_>>();
        assert_eq!(outside, ["layer", "parent", "parent/decoy"], "a write landed outside the root");
        assert_eq!(std::fs::read(parent.join("decoy")).unwrap(), b"decoy");
    });
}
