//! Binding the body to a signature verified from the request head: no scheme signs the body itself, each
//! signs a header that claims its hash (`Content-MD5` for FC and acs v1, `x-acs-content-sha256` for ACS3).
//! [`crate::verify_head`] checks the signature over that claim; [`BodyCheck`] then checks the body against
//! it, chunk by chunk as the body arrives.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::AuthError;

/// SHA-256 of the empty body: the ACS3 payload hash of a request without a body.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a verified signature claims about the body, to be checked once the body has been read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BodyCheck {
    /// The signed `Content-MD5` value (FC, acs v1), as sent.
    content_md5: Option<String>,
    /// The signed payload hash (ACS3), lower-case hex.
    sha256_hex: Option<String>,
}

impl BodyCheck {
    /// Nothing about the body is signed (FC or acs v1 without `Content-MD5`, e.g. fc2 Python and Tea `v2`).
    pub fn unsigned() -> Self {
        Self::default()
    }

    /// The body must match this `Content-MD5` header value (empty or blank values sign nothing).
    pub(crate) fn content_md5(value: Option<&str>) -> Self {
        BodyCheck {
            content_md5: value
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            sha256_hex: None,
        }
    }

    /// The body's SHA-256 must be `hex` (compared case-insensitively).
    pub(crate) fn sha256(hex: &str) -> Self {
        BodyCheck {
            content_md5: None,
            sha256_hex: Some(hex.trim().to_ascii_lowercase()),
        }
    }

    /// Whether anything about the body is signed.
    pub fn is_signed(&self) -> bool {
        self.content_md5.is_some() || self.sha256_hex.is_some()
    }

    /// A hasher to feed the body to as it arrives.
    pub fn hasher(&self) -> BodyHasher {
        BodyHasher {
            md5: self.content_md5.as_ref().map(|_| Md5::new()),
            sha256: self.sha256_hex.as_ref().map(|_| Sha256::new()),
            check: self.clone(),
        }
    }

    /// Checks a whole body at once.
    pub fn check(&self, body: &[u8]) -> Result<(), AuthError> {
        let mut hasher = self.hasher();
        hasher.update(body);
        hasher.finish()
    }
}

/// Hashes a body chunk by chunk for a [`BodyCheck`]; only the digests the check needs are computed.
#[derive(Debug, Clone)]
pub struct BodyHasher {
    md5: Option<Md5>,
    sha256: Option<Sha256>,
    check: BodyCheck,
}

impl BodyHasher {
    pub fn update(&mut self, chunk: &[u8]) {
        if let Some(md5) = &mut self.md5 {
            md5.update(chunk);
        }
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(chunk);
        }
    }

    /// Compares the digests with the signed claims.
    ///
    /// `Content-MD5` is accepted in the two forms clients send (spec §2.2): base64 of the binary digest (RFC
    /// 1864; the FC documentation, Java/Go SDKs) and base64 of the lower-case hex digest (`@alicloud/fc2`, so
    /// `fun`). fc2 Python and the Tea SDK send no `Content-MD5`.
    pub fn finish(self) -> Result<(), AuthError> {
        if let (Some(claimed), Some(md5)) = (&self.check.content_md5, self.md5) {
            let digest = md5.finalize();
            let binary = STANDARD.encode(digest);
            let hex_form = STANDARD.encode(hex::encode(digest));
            if *claimed != binary && *claimed != hex_form {
                return Err(AuthError::ContentMd5Mismatch);
            }
        }
        if let (Some(claimed), Some(sha256)) = (&self.check.sha256_hex, self.sha256)
            && *claimed != hex::encode(sha256.finalize())
        {
            return Err(AuthError::ContentSha256Mismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"serviceName":"svc"}"#;

    fn md5_forms(body: &[u8]) -> (String, String) {
        let digest = Md5::digest(body);
        (
            STANDARD.encode(digest),
            STANDARD.encode(hex::encode(digest)),
        )
    }

    #[test]
    fn content_md5_accepts_both_sdk_forms_and_refuses_other_bodies() {
        let (binary, hex_form) = md5_forms(BODY);
        // RFC 1864 example: the MD5 of "Hello" is 8b1a9953c4611296a827abf8c47804d7.
        assert_eq!(md5_forms(b"Hello").0, "ixqZU8RhEpaoJ6v4xHgE1w==");
        assert_eq!(
            md5_forms(b"Hello").1,
            "OGIxYTk5NTNjNDYxMTI5NmE4MjdhYmY4YzQ3ODA0ZDc="
        );
        for claimed in [&binary, &hex_form] {
            let check = BodyCheck::content_md5(Some(claimed));
            assert!(check.is_signed());
            assert_eq!(check.check(BODY), Ok(()));
            assert_eq!(check.check(b"{}"), Err(AuthError::ContentMd5Mismatch));
            assert_eq!(check.check(b""), Err(AuthError::ContentMd5Mismatch));
        }
        // Chunked feeding gives the same answer.
        let mut hasher = BodyCheck::content_md5(Some(&binary)).hasher();
        for chunk in BODY.chunks(3) {
            hasher.update(chunk);
        }
        assert_eq!(hasher.finish(), Ok(()));
        // Neither the hex digest itself nor a different case of the base64 is a form any client sends.
        let bare_hex = hex::encode(Md5::digest(BODY));
        assert_eq!(
            BodyCheck::content_md5(Some(&bare_hex)).check(BODY),
            Err(AuthError::ContentMd5Mismatch)
        );
        assert_eq!(
            BodyCheck::content_md5(Some(&binary.to_lowercase())).check(BODY),
            Err(AuthError::ContentMd5Mismatch)
        );
    }

    #[test]
    fn absent_or_empty_content_md5_signs_nothing() {
        for value in [None, Some(""), Some("  ")] {
            let check = BodyCheck::content_md5(value);
            assert!(!check.is_signed());
            assert_eq!(check.check(b"anything"), Ok(()));
        }
        assert_eq!(BodyCheck::unsigned().check(b"anything"), Ok(()));
    }

    #[test]
    fn sha256_claim_must_match_the_body() {
        let claimed = hex::encode(Sha256::digest(BODY)).to_uppercase();
        let check = BodyCheck::sha256(&format!(" {claimed} "));
        assert_eq!(check.check(BODY), Ok(()));
        assert_eq!(check.check(b"{}"), Err(AuthError::ContentSha256Mismatch));
        let empty = BodyCheck::sha256(EMPTY_SHA256);
        assert_eq!(empty.check(b""), Ok(()));
        assert_eq!(empty.check(b"x"), Err(AuthError::ContentSha256Mismatch));
    }
}
