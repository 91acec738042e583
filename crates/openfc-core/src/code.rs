//! Code packages: base64 decoding, zip validation (paths, symlinks, zip bombs), the CRC-64/XZ checksum
//! FC reports (spec §7), and the content address under which a package is stored once.

use std::io::Cursor;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::error::{CoreError, CoreResult};
use crate::ports::CodeRef;

/// Limits on what a package may be. Defaults follow FC's API limit (100 MB zip).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageLimits {
    pub max_size: u64,
    pub max_entries: usize,
    pub max_unzipped: u64,
}

impl Default for PackageLimits {
    fn default() -> Self {
        PackageLimits { max_size: 100 * 1024 * 1024, max_entries: 65_536, max_unzipped: 2 * 1024 * 1024 * 1024 }
    }
}

/// CRC-64/XZ, as OSS's `x-oss-hash-crc64ecma` and FC's `codeChecksum`.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Xz, data)
}

/// Decodes `code.zipFile`, refusing early (before allocating) what cannot fit under `max` bytes.
pub fn decode_zip_file(text: &str, max: u64) -> CoreResult<Vec<u8>> {
    let estimate = (text.len() as u64 / 4) * 3;
    if estimate > max + 3 {
        return Err(CoreError::EntityTooLarge(max));
    }
    let decoded = match STANDARD_PAD_INDIFFERENT.decode(text.as_bytes()) {
        Ok(d) => d,
        // Some encoders wrap lines; accept that, at the cost of one copy.
        Err(_) if text.bytes().any(|b| b.is_ascii_whitespace()) => {
            let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
            STANDARD_PAD_INDIFFERENT.decode(compact).map_err(bad_base64)?
        }
        Err(e) => return Err(bad_base64(e)),
    };
    if decoded.len() as u64 > max {
        return Err(CoreError::EntityTooLarge(max));
    }
    Ok(decoded)
}

fn bad_base64(e: base64::DecodeError) -> CoreError {
    CoreError::invalid(format!("Code.ZipFile is set to an invalid value (allowed: base64 text): {e}"))
}

/// A validated package, ready to store.
#[derive(Debug, Clone)]
pub struct Package {
    pub bytes: Bytes,
    pub code: CodeRef,
}

/// Validates the zip and computes its checksum and content address. CPU-bound: call from a blocking thread.
pub fn inspect(bytes: Bytes, limits: &PackageLimits) -> CoreResult<Package> {
    if bytes.len() as u64 > limits.max_size {
        return Err(CoreError::EntityTooLarge(limits.max_size));
    }
    validate_zip(&bytes, limits)?;
    let checksum = crc64(&bytes);
    let digest = Sha256::digest(&bytes);
    let key = format!("packages/sha256/{}.zip", hex::encode(digest));
    let size = bytes.len() as u64;
    Ok(Package { bytes, code: CodeRef { key, checksum, size } })
}

fn validate_zip(bytes: &[u8], limits: &PackageLimits) -> CoreResult<()> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| CoreError::invalid(format!("the code package is not a valid zip file: {e}")))?;
    if archive.len() > limits.max_entries {
        return Err(CoreError::invalid(format!(
            "the code package has {} entries, more than the limit of {}",
            archive.len(),
            limits.max_entries
        )));
    }
    let mut unzipped: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| CoreError::invalid(format!("the code package is not a valid zip file: {e}")))?;
        let name = entry.name().map(|n| n.into_owned()).unwrap_or_else(|_| format!("#{i}"));
        if entry.enclosed_name().is_none() || name.starts_with('/') || name.starts_with('\\') {
            return Err(CoreError::invalid(format!(
                "the code package entry '{name}' has an absolute path or leaves the package directory ('..')"
            )));
        }
        if entry.is_symlink() {
            return Err(CoreError::invalid(format!("the code package entry '{name}' is a symbolic link")));
        }
        unzipped = unzipped.saturating_add(entry.size());
        if unzipped > limits.max_unzipped {
            return Err(CoreError::invalid(format!(
                "the code package unpacks to more than {} bytes",
                limits.max_unzipped
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    #[test]
    fn crc64_vectors() {
        for (input, expected) in [
            (&b""[..], 0u64),
            (b"hello world", 5981764153023615706),
            (b"123456789", 11051210869376104954),
        ] {
            assert_eq!(crc64(input), expected, "{input:?}");
        }
    }

    fn zip_of(entries: &[(&str, &[u8])], symlink: Option<&str>) -> Bytes {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, SimpleFileOptions::default()).unwrap();
            w.write_all(data).unwrap();
        }
        if let Some(link) = symlink {
            w.add_symlink(link, "/etc/passwd", SimpleFileOptions::default()).unwrap();
        }
        Bytes::from(w.finish().unwrap().into_inner())
    }

    fn check(bytes: Bytes, limits: PackageLimits, expected: Result<(), &str>) {
        match (inspect(bytes, &limits), expected) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{e} lacks {needle}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn zip_validation() {
        let lim = PackageLimits::default();
        check(zip_of(&[("index.py", b"x"), ("lib/a.py", b"y")], None), lim, Ok(()));
        check(Bytes::from_static(b"not a zip"), lim, Err("not a valid zip"));
        check(zip_of(&[("../evil", b"x")], None), lim, Err("leaves the package"));
        check(zip_of(&[("/etc/evil", b"x")], None), lim, Err("absolute path"));
        check(zip_of(&[("ok", b"x")], Some("link")), lim, Err("symbolic link"));
        let few = PackageLimits { max_entries: 1, ..lim };
        check(zip_of(&[("a", b"x"), ("b", b"y")], None), few, Err("entries"));
        let small = PackageLimits { max_unzipped: 10, ..lim };
        check(zip_of(&[("a", &[0u8; 11])], None), small, Err("unpacks to more"));
        let tiny = PackageLimits { max_size: 10, ..lim };
        check(zip_of(&[("a", b"x")], None), tiny, Err("payload size exceeds"));
    }

    #[test]
    fn same_bytes_same_address() {
        let z = zip_of(&[("a", b"x")], None);
        let a = inspect(z.clone(), &PackageLimits::default()).unwrap();
        let b = inspect(z.clone(), &PackageLimits::default()).unwrap();
        assert_eq!(a.code, b.code);
        assert_eq!(a.code.checksum, crc64(&z));
        assert_eq!(a.code.size, z.len() as u64);
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(decode_zip_file("aGVsbG8=", 100).unwrap(), b"hello");
        assert_eq!(decode_zip_file("aGVs\nbG8=", 100).unwrap(), b"hello");
        assert!(matches!(decode_zip_file("!!!", 100), Err(CoreError::InvalidArgument(_))));
        assert!(matches!(decode_zip_file("aGVsbG8=", 4), Err(CoreError::EntityTooLarge(4))));
        assert!(matches!(decode_zip_file(&"A".repeat(400), 100), Err(CoreError::EntityTooLarge(100))));
    }
}
