//! Why an image could not be prepared, worded for `accelerationInfo.reason` and the invoke error
//! (containers.md §2.6): every message names the image as written, the registry contacted and the cause.

/// Caps applied while pulling and unpacking (containers.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Uncompressed bytes of all layers together.
    pub max_bytes: u64,
    pub max_layers: usize,
    pub max_entries: u64,
    pub max_path_bytes: usize,
    pub max_depth: usize,
    /// Manifest and config documents.
    pub max_document_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 10 << 30,
            max_layers: 128,
            max_entries: 1_000_000,
            max_path_bytes: 4096,
            max_depth: 256,
            max_document_bytes: 4 << 20,
        }
    }
}

/// A failed pull or unpack. `permanent()` tells a retry apart from a failure: only `Unreachable` and
/// `Transient` are worth another attempt.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image '{reference}' not found in registry {registry}")]
    NotFound { reference: String, registry: String },
    #[error("registry {registry} refused access to '{repository}' (credentials: {credentials})")]
    Denied { registry: String, repository: String, credentials: String },
    #[error("registry {registry} unreachable: {cause}")]
    Unreachable { registry: String, cause: String },
    #[error("registry {registry} answered an error: {cause}")]
    Transient { registry: String, cause: String },
    /// HTTPS to a registry that speaks plain HTTP (not listed with --insecure-registry): permanent.
    #[error("registry {registry} unreachable: {cause}")]
    PlainHttp { registry: String, cause: String },
    /// A 4xx answer other than 401/403/404: retrying would get the same.
    #[error("registry {registry} rejected the request: {cause}")]
    Rejected { registry: String, cause: String },
    /// The auth file cannot be used for this registry (unreadable, malformed, identity token).
    #[error("credentials for registry {registry} cannot be used: {cause}")]
    Credentials { registry: String, cause: String },
    #[error("image '{reference}' is {platform}; openfc runs linux/amd64 only")]
    Platform { reference: String, platform: String },
    #[error("image '{reference}' exceeds {limit} ({actual})")]
    TooLarge { reference: String, limit: String, actual: String },
    #[error("{what} of '{reference}' does not match its digest")]
    Corrupt { reference: String, what: String },
    #[error("unsupported media type {0}")]
    MediaType(String),
    #[error("image '{reference}' is not a valid image: {cause}")]
    Invalid { reference: String, cause: String },
    #[error("invalid image reference '{reference}': {cause}")]
    Reference { reference: String, cause: String },
    #[error("layer {layer}: {cause}")]
    Layer { layer: String, cause: String },
    #[error("{0}")]
    Io(String),
}

impl ImageError {
    /// Whether trying again later could succeed (containers.md §2.4 step 6).
    pub fn transient(&self) -> bool {
        matches!(self, ImageError::Unreachable { .. } | ImageError::Transient { .. } | ImageError::Io(_))
    }
}

impl From<std::io::Error> for ImageError {
    fn from(e: std::io::Error) -> ImageError {
        ImageError::Io(e.to_string())
    }
}
