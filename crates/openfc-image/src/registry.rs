//! The distribution protocol through oci-client (containers.md §2.1, §2.4 steps 2–4): a reference resolved
//! to its linux/amd64 manifest (the pin) and config, checked against the limits, and blobs streamed to disk
//! with their digest verified. Retries are the caller's: `ImageError::transient()` says when.

mod document;
mod failure;
mod limits;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

pub use document::LAYER_TYPES;
use document::{Descriptor, Manifest, Refusal};
use failure::Ctx;
use limits::{LayerCheck, check_document_size, check_layers};

use crate::auth::{self, Credentials};
use crate::error::{ImageError, Limits};
use crate::reference::{ImageRef, Mirrors};

/// How openfc reaches registries (`--registry-auth-file`, `--insecure-registry`, `--registry-mirror`).
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Docker `config.json`; read again at every resolve.
    pub auth_file: Option<PathBuf>,
    /// `host:port` reached over plain HTTP (the host actually contacted, after mirrors).
    pub insecure: Vec<String>,
    pub mirrors: Mirrors,
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer (a stalled blob fails instead of hanging).
    pub read_timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            auth_file: None,
            insecure: Vec::new(),
            mirrors: Mirrors::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// What the image config says about running it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfigSummary {
    pub os: String,
    pub architecture: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    /// sha256 of each uncompressed layer, bottom first.
    pub diff_ids: Vec<String>,
}

/// One layer blob as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDesc {
    pub digest: String,
    /// One of [`LAYER_TYPES`].
    pub media_type: String,
    /// Compressed bytes.
    pub size: u64,
}

/// A reference resolved to what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedImage {
    pub reference: ImageRef,
    /// sha256 of the linux/amd64 image manifest: the pin.
    pub manifest_digest: String,
    /// sha256 of the index or manifest list the tag named, when it named one.
    pub index_digest: Option<String>,
    pub config_digest: String,
    pub config: ImageConfigSummary,
    /// Bottom first; as many as `config.diff_ids`.
    pub layers: Vec<LayerDesc>,
}

/// A registry client shared by every pull: cheap to clone.
///
/// oci-client remembers the first credentials it is given for a host and caches Basic credentials forever,
/// so one client per host is kept together with the credentials it was made for, and replaced when the
/// auth file changes them.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegistryConfig,
    sessions: Mutex<HashMap<String, Session>>,
}

#[derive(Clone)]
struct Session {
    client: oci_client::Client,
    credentials: Credentials,
}

/// Buffer between the network and the blob file: few, large writes.
const WRITE_BUFFER: usize = 1 << 20;

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Registry, ImageError> {
        if let Some(bad) = config
            .insecure
            .iter()
            .find(|h| h.is_empty() || h.contains('/'))
        {
            return Err(ImageError::Io(format!(
                "--insecure-registry '{bad}' is not a host[:port]"
            )));
        }
        let registry = Registry {
            inner: Arc::new(Inner {
                config,
                sessions: Mutex::new(HashMap::new()),
            }),
        };
        // Fail at start-up, not at the first pull, if the TLS stack cannot be set up.
        registry.client()?;
        Ok(registry)
    }

    /// `written` parsed with Docker's rules and this registry configuration's mirrors.
    pub fn parse(&self, written: &str) -> Result<ImageRef, ImageError> {
        ImageRef::parse(written, &self.inner.config.mirrors)
    }

    /// Tag (or digest) → the linux/amd64 manifest and its config, checked against `limits` (platform,
    /// document sizes, layer count and types, compressed total).
    pub async fn resolve(
        &self,
        reference: &ImageRef,
        limits: &Limits,
    ) -> Result<ResolvedImage, ImageError> {
        let session = self.session(&reference.registry, true).await?;
        self.resolve_with(&session, reference, limits).await
    }

    /// Same as [`Registry::resolve`] for an already pinned manifest digest.
    pub async fn resolve_pinned(
        &self,
        reference: &ImageRef,
        manifest_digest: &str,
        limits: &Limits,
    ) -> Result<ResolvedImage, ImageError> {
        crate::reference::check_digest(manifest_digest).map_err(|cause| ImageError::Reference {
            reference: reference.written.clone(),
            cause,
        })?;
        let session = self.session(&reference.registry, true).await?;
        let mut resolved = self
            .resolve_with(&session, &reference.pinned(manifest_digest), limits)
            .await?;
        resolved.reference = reference.clone();
        Ok(resolved)
    }

    /// Streams one blob into `dest`, a new file (it must not exist), verifying its digest and size; on any
    /// failure the file is removed. `progress` gets the bytes written so far after every chunk.
    pub async fn fetch_blob(
        &self,
        reference: &ImageRef,
        layer: &LayerDesc,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ImageError> {
        crate::reference::check_digest(&layer.digest).map_err(|cause| ImageError::Invalid {
            reference: reference.written.clone(),
            cause,
        })?;
        let session = self.session(&reference.registry, false).await?;
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .await
            .map_err(|e| ImageError::Io(format!("cannot create {}: {e}", dest.display())))?;
        // Removes the file on failure, and also when the caller drops this future (a timeout, a shutdown).
        let mut partial = PartialFile(Some(dest));
        self.stream_blob(&session, reference, layer, file, dest, progress)
            .await?;
        partial.0 = None;
        Ok(())
    }

    async fn stream_blob(
        &self,
        session: &Session,
        reference: &ImageRef,
        layer: &LayerDesc,
        file: tokio::fs::File,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), ImageError> {
        let ctx = self.ctx(reference, session);
        let what = format!("layer {}", layer.digest);
        let mut stream = session
            .client
            .pull_blob_stream(&reference.to_oci(), layer.digest.as_str())
            .await
            .map_err(|e| ctx.classify(e, &what))?;
        if stream.content_length.is_some_and(|n| n != layer.size) {
            return Err(ctx.corrupt(&what));
        }
        let write_err =
            |e: std::io::Error| ImageError::Io(format!("cannot write {}: {e}", dest.display()));
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ctx.on_stream(e, &what))?;
            written += chunk.len() as u64;
            // More than the manifest promised can only be a wrong blob; stop before filling the disk.
            if written > layer.size {
                return Err(ctx.corrupt(&what));
            }
            out.write_all(&chunk).await.map_err(write_err)?;
            progress(written);
        }
        if written != layer.size {
            return Err(ctx.corrupt(&what));
        }
        out.flush().await.map_err(write_err)?;
        // The caller renames the file into the content-addressed store: its content must be on disk first.
        out.into_inner().sync_all().await.map_err(write_err)
    }

    async fn resolve_with(
        &self,
        session: &Session,
        reference: &ImageRef,
        limits: &Limits,
    ) -> Result<ResolvedImage, ImageError> {
        let ctx = self.ctx(reference, session);
        let refuse = |r: Refusal| match r {
            Refusal::MediaType(t) => ImageError::MediaType(t),
            Refusal::Invalid(cause) => ctx.invalid(cause),
        };
        let top = reference.to_oci();
        let body = self.manifest(session, &ctx, &top, limits).await?;
        let top_digest = sha256(&body);
        let (config, layers, manifest_digest, index_digest) = match document::parse_manifest(&body)
            .map_err(refuse)?
        {
            Manifest::Image { config, layers } => (config, layers, top_digest, None),
            Manifest::Index(entries) => {
                let entry =
                    document::pick_amd64(&entries).map_err(|platform| ImageError::Platform {
                        reference: reference.written.clone(),
                        platform,
                    })?;
                document::check_descriptor_digest(&entry.digest).map_err(refuse)?;
                check_document_size(
                    reference,
                    "manifest",
                    document::size_of(&entry.digest, entry.size).map_err(refuse)?,
                    limits,
                )?;
                // oci-client checks the body against the digest it was asked for.
                let body = self
                    .manifest(
                        session,
                        &ctx,
                        &top.clone_with_digest(entry.digest.clone()),
                        limits,
                    )
                    .await?;
                match document::parse_manifest(&body).map_err(refuse)? {
                    Manifest::Image { config, layers } => {
                        (config, layers, entry.digest.clone(), Some(top_digest))
                    }
                    Manifest::Index(_) => {
                        return Err(
                            ctx.invalid(format!("index entry {} is another index", entry.digest))
                        );
                    }
                }
            }
        };
        let (summary, platform) = self.config(session, &ctx, &config, limits).await?;
        if summary.os != "linux" || summary.architecture != "amd64" {
            return Err(ImageError::Platform {
                reference: reference.written.clone(),
                platform,
            });
        }
        let layers = check_layers(reference, &layers, &summary, limits).map_err(|e| match e {
            LayerCheck::Refused(r) => refuse(r),
            LayerCheck::Image(e) => e,
        })?;
        Ok(ResolvedImage {
            reference: reference.clone(),
            manifest_digest,
            index_digest,
            config_digest: config.digest,
            config: summary,
            layers,
        })
    }

    /// One manifest document, bounded by the document limit.
    async fn manifest(
        &self,
        session: &Session,
        ctx: &Ctx<'_>,
        at: &oci_client::Reference,
        limits: &Limits,
    ) -> Result<bytes::Bytes, ImageError> {
        let what = format!("manifest {}", at.digest().or(at.tag()).unwrap_or("latest"));
        let (body, _) = session
            .client
            .pull_manifest_raw(at, &session.credentials.auth, document::MANIFEST_TYPES)
            .await
            .map_err(|e| ctx.classify(e, &what))?;
        check_document_size(ctx.image, "manifest", body.len() as u64, limits)?;
        Ok(body)
    }

    /// The image config blob (digest-checked while streaming, bounded by the document limit), parsed.
    async fn config(
        &self,
        session: &Session,
        ctx: &Ctx<'_>,
        config: &Descriptor,
        limits: &Limits,
    ) -> Result<(ImageConfigSummary, String), ImageError> {
        let refuse = |r: Refusal| match r {
            Refusal::MediaType(t) => ImageError::MediaType(t),
            Refusal::Invalid(cause) => ctx.invalid(cause),
        };
        document::check_config_type(config).map_err(refuse)?;
        document::check_descriptor_digest(&config.digest).map_err(refuse)?;
        let size = document::size_of(&config.digest, config.size).map_err(refuse)?;
        check_document_size(ctx.image, "image config", size, limits)?;
        let what = format!("config {}", config.digest);
        let mut stream = session
            .client
            .pull_blob_stream(&ctx.image.to_oci(), config.digest.as_str())
            .await
            .map_err(|e| ctx.classify(e, &what))?;
        let mut body = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ctx.on_stream(e, &what))?;
            if (body.len() + chunk.len()) as u64 > size {
                return Err(ctx.corrupt(&what));
            }
            body.extend_from_slice(&chunk);
        }
        document::parse_config(&body).map_err(refuse)
    }

    fn ctx<'a>(&self, image: &'a ImageRef, session: &'a Session) -> Ctx<'a> {
        Ctx {
            image,
            credentials: &session.credentials.source,
            insecure: self.inner.config.insecure.contains(&image.registry),
        }
    }

    /// The client for `host`. `fresh` reads the auth file again (a resolve: once per pull); a blob fetch
    /// reuses what the resolve found.
    async fn session(&self, host: &str, fresh: bool) -> Result<Session, ImageError> {
        if !fresh && let Some(session) = self.cached_session(host) {
            return Ok(session);
        }
        let auth_file = self.inner.config.auth_file.clone();
        let h = host.to_string();
        // The file is small, but a credsStore helper is a process to run.
        let credentials =
            tokio::task::spawn_blocking(move || auth::lookup(auth_file.as_deref(), &h))
                .await
                .map_err(|e| ImageError::Io(format!("credential lookup failed: {e}")))??;
        if let Some(session) = self
            .cached_session(host)
            .filter(|s| s.credentials == credentials)
        {
            return Ok(session);
        }
        let session = Session {
            client: self.client()?,
            credentials,
        };
        // Blob requests take their credentials from the client's store, not from an argument: store them
        // before anyone else can pick this session up.
        session
            .client
            .store_auth_if_needed(host, &session.credentials.auth)
            .await;
        self.sessions().insert(host.to_string(), session.clone());
        Ok(session)
    }

    fn cached_session(&self, host: &str) -> Option<Session> {
        self.sessions().get(host).cloned()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic elsewhere while holding the lock leaves the map intact: keep using it.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn client(&self) -> Result<oci_client::Client, ImageError> {
        let cfg = &self.inner.config;
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(cfg.insecure.clone()),
            connect_timeout: Some(cfg.connect_timeout),
            read_timeout: Some(cfg.read_timeout),
            // Indexes are resolved here (an index without amd64 must name what it has).
            platform_resolver: None,
            user_agent: concat!("openfc/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        oci_client::Client::try_from(config)
            .map_err(|e| ImageError::Io(format!("cannot set up the registry client: {e}")))
    }
}

/// A blob file being written: removed on drop unless disarmed (`None`).
struct PartialFile<'a>(Option<&'a Path>);

impl Drop for PartialFile<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn sha256(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}
