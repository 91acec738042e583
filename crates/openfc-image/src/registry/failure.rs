//! oci-client's errors turned into containers.md §2.6 reasons. Typed statuses and OCI error codes decide;
//! only transport failures (which reqwest reports without a status) are told apart by their source chain.

use std::error::Error as StdError;

use oci_client::errors::{DigestError, OciDistributionError, OciEnvelope, OciErrorCode};

use crate::error::ImageError;
use crate::reference::ImageRef;

/// The pull an error belongs to: every message names the image, the registry and the credentials used.
pub(crate) struct Ctx<'a> {
    pub image: &'a ImageRef,
    pub credentials: &'a str,
    /// Whether plain HTTP is allowed for this registry (a TLS failure then means something else).
    pub insecure: bool,
}

impl Ctx<'_> {
    pub fn not_found(&self) -> ImageError {
        ImageError::NotFound {
            reference: self.image.written.clone(),
            registry: self.image.registry.clone(),
        }
    }

    pub fn denied(&self) -> ImageError {
        ImageError::Denied {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            credentials: self.credentials.to_string(),
        }
    }

    pub fn unreachable(&self, cause: String) -> ImageError {
        ImageError::Unreachable {
            registry: self.image.registry.clone(),
            cause,
        }
    }

    pub fn transient(&self, cause: String) -> ImageError {
        ImageError::Transient {
            registry: self.image.registry.clone(),
            cause,
        }
    }

    pub fn rejected(&self, cause: String) -> ImageError {
        ImageError::Rejected {
            registry: self.image.registry.clone(),
            cause,
        }
    }

    pub fn invalid(&self, cause: String) -> ImageError {
        ImageError::Invalid {
            reference: self.image.written.clone(),
            cause,
        }
    }

    pub fn corrupt(&self, what: &str) -> ImageError {
        ImageError::Corrupt {
            reference: self.image.written.clone(),
            what: what.to_string(),
        }
    }

    /// Maps an oci-client error met while fetching `what` (`manifest`, `config sha256:…`, `layer sha256:…`).
    pub fn classify(&self, e: OciDistributionError, what: &str) -> ImageError {
        use OciDistributionError as E;
        match e {
            E::RegistryError { envelope, .. } => self.on_envelope(&envelope),
            E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => self.denied(),
            E::ServerError { code, message, .. } => self.on_status(code, &message),
            E::DigestError(d) => self.on_digest(d, what),
            E::RequestError(r) => {
                // reqwest's own flags are the typed part; the chain only words the cause.
                let cause = chain(&r);
                if r.is_builder() {
                    self.rejected(format!("cannot build a request for {what}: {cause}"))
                } else if r.is_timeout() {
                    self.unreachable(format!("timed out: {cause}"))
                } else if r.is_connect() {
                    self.on_connect(&r, cause)
                } else {
                    self.unreachable(cause)
                }
            }
            E::IoError(io) => self.on_stream(io, what),
            E::UnsupportedMediaTypeError(t) => ImageError::MediaType(t),
            e @ (E::JsonError(_)
            | E::ManifestParsingError(_)
            | E::VersionedParsingError(_)
            | E::UnsupportedSchemaVersionError(_)
            | E::ManifestEncodingError(_)) => self.invalid(format!("{what}: {e}")),
            other => self.rejected(format!("{what}: {other}")),
        }
    }

    /// A failure while a body streams: the digest check (oci-client's verifying stream wraps it in an
    /// io::Error) or the connection.
    pub fn on_stream(&self, io: std::io::Error, what: &str) -> ImageError {
        match io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<DigestError>())
        {
            Some(DigestError::VerificationError { .. }) => self.corrupt(what),
            Some(other) => self.rejected(format!("{what}: {other}")),
            None => self.unreachable(format!("transfer of {what} failed: {}", chain(&io))),
        }
    }

    fn on_envelope(&self, envelope: &OciEnvelope) -> ImageError {
        let Some(first) = envelope.errors.first() else {
            return self.rejected("an error without a code".into());
        };
        match first.code {
            OciErrorCode::ManifestUnknown
            | OciErrorCode::NameUnknown
            | OciErrorCode::NotFound
            | OciErrorCode::BlobUnknown
            | OciErrorCode::ManifestBlobUnknown => self.not_found(),
            OciErrorCode::Unauthorized | OciErrorCode::Denied => self.denied(),
            OciErrorCode::Toomanyrequests => {
                self.transient(format!("too many requests: {}", first.message))
            }
            ref code => {
                let code = serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string));
                self.rejected(format!(
                    "{}: {}",
                    code.unwrap_or_else(|| "error".into()),
                    first.message
                ))
            }
        }
    }

    fn on_status(&self, code: u16, message: &str) -> ImageError {
        let cause = format!("HTTP {code}: {}", excerpt(message));
        match code {
            401 | 403 => self.denied(),
            404 => self.not_found(),
            408 | 429 | 500..=599 => self.transient(cause),
            _ => self.rejected(cause),
        }
    }

    fn on_digest(&self, e: DigestError, what: &str) -> ImageError {
        match e {
            DigestError::VerificationError { .. } => self.corrupt(what),
            other => self.rejected(format!("{what}: {other}")),
        }
    }

    /// A failed connection. rustls reports a peer that does not speak TLS as invalid data, which is what a
    /// plain-HTTP registry looks like from HTTPS: say so, and name the flag that allows it.
    fn on_connect(&self, e: &(dyn StdError + 'static), cause: String) -> ImageError {
        let tls = !self.insecure
            && sources(e).any(|s| s.downcast_ref::<std::io::Error>().is_some_and(invalid_data));
        if tls {
            let host = &self.image.registry;
            // A configuration mistake: retrying cannot help, so it fails at once.
            ImageError::PlainHttp {
                registry: host.clone(),
                cause: format!("TLS handshake failed ({cause}); is it plain HTTP? add --insecure-registry {host}"),
            }
        } else {
            self.unreachable(cause)
        }
    }
}

/// Whether an io::Error is, or wraps, an `InvalidData` one (hyper wraps rustls's io::Error in another,
/// and io::Error's `source()` skips the wrapped error itself).
fn invalid_data(io: &std::io::Error) -> bool {
    let mut current = io;
    loop {
        if current.kind() == std::io::ErrorKind::InvalidData {
            return true;
        }
        match current
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        {
            Some(inner) => current = inner,
            None => return false,
        }
    }
}

fn sources<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |e: &&'a (dyn StdError + 'static)| (*e).source())
}

/// `outer: inner: …`, skipping a source whose text the previous one already shows.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = String::new();
    for s in sources(e) {
        let text = s.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// Error bodies can be whole HTML pages: keep the start of the first line.
fn excerpt(message: &str) -> String {
    let line = message.trim().lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Mirrors;

    fn classify(e: OciDistributionError) -> ImageError {
        let image = ImageRef::parse("r.io/fc/app:v1", &Mirrors::default()).unwrap();
        Ctx {
            image: &image,
            credentials: "none",
            insecure: false,
        }
        .classify(e, "manifest v1")
    }

    fn envelope(code: &str) -> OciDistributionError {
        let json = format!(r#"{{"errors":[{{"code":"{code}","message":"m"}}]}}"#);
        OciDistributionError::RegistryError {
            envelope: serde_json::from_str(&json).unwrap(),
            url: "u".into(),
        }
    }

    fn status(code: u16) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "<html>\nbusy".into(),
        }
    }

    #[test]
    fn registry_error_codes() {
        for code in ["MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"] {
            assert!(
                matches!(classify(envelope(code)), ImageError::NotFound { .. }),
                "{code}"
            );
        }
        for code in ["UNAUTHORIZED", "DENIED"] {
            assert!(
                matches!(classify(envelope(code)), ImageError::Denied { .. }),
                "{code}"
            );
        }
        assert!(classify(envelope("TOOMANYREQUESTS")).transient());
        let e = classify(envelope("NAME_INVALID"));
        assert!(
            matches!(e, ImageError::Rejected { .. }) && !e.transient(),
            "{e:?}"
        );
        assert!(e.to_string().contains("NAME_INVALID: m"), "{e}");
        assert!(
            classify(envelope("ARTIFACT_LOCKED"))
                .to_string()
                .contains("ARTIFACT_LOCKED")
        );
    }

    #[test]
    fn http_statuses() {
        assert!(matches!(classify(status(404)), ImageError::NotFound { .. }));
        assert!(matches!(classify(status(403)), ImageError::Denied { .. }));
        for code in [500, 502, 503, 429, 408] {
            let e = classify(status(code));
            assert!(matches!(e, ImageError::Transient { .. }), "{code}: {e:?}");
            assert!(
                e.to_string().ends_with(&format!("HTTP {code}: <html>")),
                "{e}"
            );
        }
        assert!(matches!(classify(status(400)), ImageError::Rejected { .. }));
        let e = classify(OciDistributionError::UnauthorizedError { url: "u".into() });
        assert_eq!(
            e.to_string(),
            "registry r.io refused access to 'fc/app' (credentials: none)"
        );
    }

    #[test]
    fn digest_mismatch_is_corrupt_wherever_it_is_met() {
        let mismatch = || DigestError::VerificationError {
            expected: "a".into(),
            actual: "b".into(),
        };
        let e = classify(OciDistributionError::DigestError(mismatch()));
        assert_eq!(
            e.to_string(),
            "manifest v1 of 'r.io/fc/app:v1' does not match its digest"
        );
        let e = classify(OciDistributionError::IoError(std::io::Error::other(
            mismatch(),
        )));
        assert!(matches!(e, ImageError::Corrupt { .. }), "{e:?}");
        let e = classify(OciDistributionError::IoError(std::io::Error::other(
            "reset",
        )));
        assert!(matches!(e, ImageError::Unreachable { .. }), "{e:?}");
    }
}
