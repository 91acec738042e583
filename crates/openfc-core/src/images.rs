//! Custom-container images (containers.md §2): pulled at Create/UpdateFunction in the background, never on
//! the invoke path. Each such write starts one *pull* — a row shared by every node (`ImageMeta`) — and the
//! function's stored configuration names it (`_image.pull`); published versions copy the configuration and so
//! name the same pull. A pull settles once: `Ready` with the manifest digest it pinned (a re-pushed tag changes
//! nothing until the next UpdateFunction starts a new pull), or `Failed` with a reason. The node that took the
//! request runs the pull under a lease it renews; any node takes over a pull whose lease ran out.
//!
//! The `ImagePuller` port does the work (registry, blobs, flattening: `openfc-image`); core decides when, keeps
//! the state, and builds what runs (`ContainerPlan`: argv by the Kubernetes rule, containers.md §4.2).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoreError, CoreResult};
use crate::function::CustomContainerConfig;
use crate::ports::{FunctionRecord, MetaError};

/// Longest reason kept for a failed pull.
const MAX_REASON: usize = 1024;

/// The key in a stored function configuration that names its pull.
pub const CONFIG_KEY: &str = "_image";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullStatus {
    Preparing,
    Ready,
    Failed,
}

impl PullStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PullStatus::Preparing => "Preparing",
            PullStatus::Ready => "Ready",
            PullStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<PullStatus> {
        match s {
            "Preparing" => Some(PullStatus::Preparing),
            "Ready" => Some(PullStatus::Ready),
            "Failed" => Some(PullStatus::Failed),
            _ => None,
        }
    }
}

/// One layer of a pulled image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledLayer {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub diff_id: String,
}

/// The image user, resolved against the image's own `/etc/passwd` and `/etc/group` at pull time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// What a settled pull pinned: enough for any node to rebuild the flattened tree from the blobs and to run it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledImage {
    /// The registry host contacted (after mirrors).
    pub registry: String,
    /// The platform manifest's digest: the pin.
    pub digest: String,
    pub config_digest: String,
    /// ChainID of all layers: the flattened tree's key.
    pub chain_id: String,
    pub layers: Vec<PulledLayer>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: ImageUser,
    pub compressed_bytes: u64,
    pub unpacked_bytes: u64,
}

/// A pull as stored (shared by every node).
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePullRecord {
    pub id: String,
    pub account_id: String,
    /// The image as the function names it.
    pub reference: String,
    /// The function sets `customContainerConfig.command` or `args`: an image without ENTRYPOINT or CMD can run.
    pub has_command: bool,
    /// The function naming it was written (until then, no user does not make it garbage).
    pub named: bool,
    pub status: PullStatus,
    pub reason: String,
    pub image: Option<PulledImage>,
    /// The node running it, and until when (ms since the epoch); renewed while it runs.
    pub owner: String,
    pub lease_until_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// Why a pull failed; `transient` failures are retried with back-off before the pull is settled `Failed`.
#[derive(Debug, Clone)]
pub struct PullFailure {
    pub reason: String,
    pub transient: bool,
}

/// The pull state shared by every node (implemented on the metadata database).
#[async_trait::async_trait]
pub trait ImageMeta: Send + Sync {
    async fn create_image_pull(&self, rec: &ImagePullRecord) -> Result<(), MetaError>;
    async fn get_image_pull(&self, id: &str) -> Result<ImagePullRecord, MetaError>;
    /// Records that the function naming the pull was written.
    async fn mark_image_pull_named(&self, id: &str) -> Result<(), MetaError>;
    /// Extends the lease of a `Preparing` pull `owner` holds; false when it no longer holds it.
    async fn renew_image_pull(&self, id: &str, owner: &str, until_ms: i64) -> Result<bool, MetaError>;
    /// Settles a `Preparing` pull `owner` holds; false (nothing written) when it no longer holds it.
    async fn settle_image_pull(
        &self,
        id: &str,
        owner: &str,
        status: PullStatus,
        reason: &str,
        image: Option<&PulledImage>,
        now_ms: i64,
    ) -> Result<bool, MetaError>;
    /// Takes up to `limit` `Preparing` pulls whose lease ended before `now_ms` (their node died), one winner each.
    async fn claim_image_pulls(&self, owner: &str, now_ms: i64, until_ms: i64, limit: usize) -> Result<Vec<ImagePullRecord>, MetaError>;
    /// Puts `Failed` pulls of `reference` back to `Preparing` with an ended lease (any node takes them up).
    async fn retry_failed_image_pulls(&self, reference: &str, now_ms: i64) -> Result<u64, MetaError>;
    async fn list_image_pulls(&self) -> Result<Vec<ImagePullRecord>, MetaError>;
    async fn delete_image_pulls(&self, ids: &[String]) -> Result<(), MetaError>;
    /// The configurations of every function and published version that name a pull (for references and GC).
    async fn image_pull_users(&self) -> Result<Vec<PullUser>, MetaError>;
}

/// A function or published version naming a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullUser {
    pub pull: String,
    pub account_id: String,
    pub service: String,
    pub function: String,
    /// `None`: LATEST.
    pub version: Option<u64>,
}

/// Downloads, verifies and flattens images (`openfc-image`).
#[async_trait::async_trait]
pub trait ImagePuller: Send + Sync {
    /// Resolves `reference` to its linux/amd64 manifest, stores the blobs and flattens them on this node.
    async fn pull(&self, reference: &str) -> Result<PulledImage, PullFailure>;
}

/// The pull named by a stored function configuration.
pub fn pull_of(config: &Value) -> Option<&str> {
    config.get(CONFIG_KEY)?.get("pull")?.as_str()
}

pub fn set_pull(config: &mut Value, pull: &str) {
    if let Value::Object(m) = config {
        m.insert(CONFIG_KEY.into(), serde_json::json!({ "pull": pull }));
    }
}

/// A stored configuration of a custom-container function whose image is no web server.
pub fn non_web_container(config: &Value) -> bool {
    config.get("runtime").and_then(Value::as_str) == Some("custom-container")
        && config.get("customContainerConfig").and_then(|c| c.get("webServerMode")).and_then(Value::as_bool) == Some(false)
}

/// The most event bytes a non-web image can be given: `FC_CUSTOM_CONTAINER_EVENT=` and the value must fit one
/// environment string (MAX_ARG_STRLEN, 131,072 bytes with its NUL).
pub const MAX_NON_WEB_EVENT: usize = 131_072 - "FC_CUSTOM_CONTAINER_EVENT=".len() - 1;

/// Refuses an event a non-web image cannot be given in its environment.
pub fn check_non_web_event(event: &[u8]) -> CoreResult<()> {
    if event.len() > MAX_NON_WEB_EVENT {
        return Err(CoreError::EntityTooLarge(MAX_NON_WEB_EVENT as u64));
    }
    if event.contains(&0) {
        return Err(CoreError::invalid("the event of a custom-container function with webServerMode false is passed in an environment variable and must not contain NUL bytes"));
    }
    if std::str::from_utf8(event).is_err() {
        return Err(CoreError::invalid("the event of a custom-container function with webServerMode false is passed in an environment variable and must be UTF-8 text"));
    }
    Ok(())
}

/// What runs in a container instance (containers.md §4.2–4.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerPlan {
    /// The image as the function names it.
    pub reference: String,
    pub image: Arc<PulledImage>,
    pub argv: Vec<String>,
    /// The image's `Env` (`KEY=value`), before the function's and FC's variables.
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub web_server_mode: bool,
}

impl std::hash::Hash for PulledImage {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.digest.hash(state);
    }
}

/// argv by the Kubernetes rule: `command` replaces ENTRYPOINT, `args` replaces CMD, `command` without `args`
/// drops CMD. `None`: nothing to run.
pub fn argv(entrypoint: &[String], cmd: &[String], command: Option<Vec<String>>, args: Option<Vec<String>>) -> Option<Vec<String>> {
    let argv: Vec<String> = match (command, args) {
        (Some(c), Some(a)) => c.into_iter().chain(a).collect(),
        (Some(c), None) => c,
        (None, Some(a)) => entrypoint.iter().cloned().chain(a).collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    };
    if argv.is_empty() { None } else { Some(argv) }
}

impl ContainerPlan {
    pub fn new(image: Arc<PulledImage>, config: &CustomContainerConfig, reference: &str) -> CoreResult<ContainerPlan> {
        let argv = argv(&image.entrypoint, &image.cmd, config.command_argv()?, config.args_argv()?).ok_or_else(|| {
            CoreError::FunctionNotStarted(format!(
                "image '{reference}' has no ENTRYPOINT or CMD and the function sets no command"
            ))
        })?;
        let env = image
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.clone(), String::new()),
            })
            .collect();
        let cwd = if image.working_dir.is_empty() { "/".to_owned() } else { image.working_dir.clone() };
        Ok(ContainerPlan { reference: reference.to_owned(), image, argv, env, cwd, web_server_mode: config.web_server_mode })
    }
}

/// Settings of this node's pulls.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    /// A pull's lease; renewed every third of it while the pull runs.
    pub lease: Duration,
    /// Back-off before each retry of a transient failure (containers.md §2.4 step 6: 1 s, 4 s, 16 s).
    pub retry_backoff: Vec<Duration>,
    /// How often a node looks for pulls whose node died.
    pub reconcile_every: Duration,
}

impl Default for ImageSettings {
    fn default() -> Self {
        ImageSettings {
            lease: Duration::from_secs(30),
            retry_backoff: vec![Duration::from_secs(1), Duration::from_secs(4), Duration::from_secs(16)],
            reconcile_every: Duration::from_secs(2),
        }
    }
}

/// This node's side of image pulls.
pub struct Images {
    pub meta: Arc<dyn ImageMeta>,
    pub puller: Arc<dyn ImagePuller>,
    pub settings: ImageSettings,
    /// This node's name in leases (unique per process).
    pub node: String,
    /// Settled pulls never change: kept once read.
    settled: std::sync::Mutex<std::collections::HashMap<String, Arc<ImagePullRecord>>>,
    /// Rung when a pull this node runs settles, so waiting invocations look again at once.
    changed: tokio::sync::Notify,
    in_flight: std::sync::atomic::AtomicUsize,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Images {
    pub fn new(meta: Arc<dyn ImageMeta>, puller: Arc<dyn ImagePuller>, settings: ImageSettings, node: String) -> Images {
        Images {
            meta,
            puller,
            settings,
            node,
            settled: Default::default(),
            changed: tokio::sync::Notify::new(),
            in_flight: Default::default(),
        }
    }

    /// Pulls this node runs now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records a new pull of `reference`, held by this node; `launch` starts it once the function that names
    /// it is written (`abandon` if that write fails).
    pub async fn create(&self, account: &str, reference: &str, has_command: bool) -> CoreResult<ImagePullRecord> {
        let now = now_ms();
        let rec = ImagePullRecord {
            id: uuid::Uuid::new_v4().simple().to_string(),
            account_id: account.to_owned(),
            reference: reference.to_owned(),
            has_command,
            named: false,
            status: PullStatus::Preparing,
            reason: String::new(),
            image: None,
            owner: self.node.clone(),
            lease_until_ms: now + self.settings.lease.as_millis() as i64,
            created_ms: now,
            updated_ms: now,
        };
        self.meta.create_image_pull(&rec).await?;
        Ok(rec)
    }

    pub async fn launch(self: &Arc<Self>, rec: ImagePullRecord) {
        if let Err(e) = self.meta.mark_image_pull_named(&rec.id).await {
            // Only garbage collection reads it: an unmarked pull is merely kept longer.
            tracing::warn!(pull = %rec.id, error = %e, "could not mark an image pull as named");
        }
        tokio::spawn(self.clone().run(rec));
    }

    pub async fn abandon(&self, rec: &ImagePullRecord) {
        if let Err(e) = self.meta.delete_image_pulls(std::slice::from_ref(&rec.id)).await {
            tracing::warn!(pull = %rec.id, error = %e, "could not remove an unused image pull");
        }
    }

    /// The pull's state: settled pulls from memory, `Preparing` ones from the database.
    pub async fn get(&self, id: &str) -> CoreResult<Arc<ImagePullRecord>> {
        if let Some(rec) = self.settled.lock().expect("settled pulls").get(id) {
            return Ok(rec.clone());
        }
        let rec = Arc::new(self.meta.get_image_pull(id).await.map_err(|e| match e {
            MetaError::NotFound => CoreError::Internal(format!("image pull {id} is missing")),
            other => other.into(),
        })?);
        // A Failed pull may be retried by the operator (`openfc images pull`): only Ready is final.
        if rec.status == PullStatus::Ready {
            let mut settled = self.settled.lock().expect("settled pulls");
            // Bounded: past this many, start over (each miss is one read).
            if settled.len() >= 10_000 {
                settled.clear();
            }
            settled.insert(id.to_owned(), rec.clone());
        }
        Ok(rec)
    }

    /// Waits until the pull is Ready (bounded by `wait`): the pulled image, or the FC error to answer.
    pub async fn ready(&self, id: &str, reference: &str, wait: Duration) -> CoreResult<Arc<PulledImage>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.changed.notified();
            let rec = self.get(id).await?;
            match rec.status {
                PullStatus::Ready => {
                    return rec
                        .image
                        .clone()
                        .map(Arc::new)
                        .ok_or_else(|| CoreError::Internal(format!("image pull {id} is Ready without an image")));
                }
                PullStatus::Failed => return Err(CoreError::PullImageFailed(rec.reason.clone())),
                PullStatus::Preparing => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(CoreError::FunctionNotStarted(format!(
                    "the image '{reference}' is still being pulled (accelerationInfo.status Preparing); try again when GetFunction shows Ready"
                )));
            }
            // Another node may run the pull: look again at least every 250 ms.
            let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(250)), changed).await;
        }
    }

    /// Runs one pull this node holds, renewing its lease, retrying transient failures, and settles it.
    async fn run(self: Arc<Self>, rec: ImagePullRecord) {
        use std::sync::atomic::Ordering::Relaxed;
        self.in_flight.fetch_add(1, Relaxed);
        let started = std::time::Instant::now();
        let outcome = {
            let work = self.pull_with_retries(&rec.reference);
            tokio::pin!(work);
            let mut renew = tokio::time::interval(self.settings.lease / 3);
            renew.tick().await;
            loop {
                tokio::select! {
                    out = &mut work => break Some(out),
                    _ = renew.tick() => {
                        let until = now_ms() + self.settings.lease.as_millis() as i64;
                        match self.meta.renew_image_pull(&rec.id, &self.node, until).await {
                            Ok(true) => {}
                            // Another node took it over (this one was too slow to renew): let it finish.
                            Ok(false) => break None,
                            Err(e) => tracing::warn!(pull = %rec.id, error = %e, "could not renew an image pull's lease"),
                        }
                    }
                }
            }
        };
        self.in_flight.fetch_sub(1, Relaxed);
        let Some(outcome) = outcome else {
            tracing::warn!(pull = %rec.id, image = %rec.reference, "image pull lost its lease to another node");
            return;
        };
        let outcome = outcome.map_err(|mut f| {
            // Reasons reach clients: a registry's own error text is kept short.
            if f.reason.len() > MAX_REASON {
                let mut end = MAX_REASON;
                while !f.reason.is_char_boundary(end) {
                    end -= 1;
                }
                f.reason.truncate(end);
                f.reason.push('…');
            }
            f
        });
        let (status, reason, image) = match outcome {
            // Nothing to run is known now, not at the first invocation (containers.md §4.2).
            Ok(image) if !rec.has_command && image.entrypoint.is_empty() && image.cmd.is_empty() => (
                PullStatus::Failed,
                format!("image '{}' has no ENTRYPOINT or CMD and the function sets no command", rec.reference),
                None,
            ),
            Ok(image) => (PullStatus::Ready, String::new(), Some(image)),
            Err(f) => (PullStatus::Failed, f.reason, None),
        };
        metrics::histogram!("openfc_image_pull_seconds", "status" => status.as_str()).record(started.elapsed().as_secs_f64());
        match self.meta.settle_image_pull(&rec.id, &self.node, status, &reason, image.as_ref(), now_ms()).await {
            Ok(true) => {
                if status == PullStatus::Ready {
                    tracing::info!(pull = %rec.id, image = %rec.reference, secs = started.elapsed().as_secs_f64(), "image ready");
                } else {
                    tracing::warn!(pull = %rec.id, image = %rec.reference, %reason, "image pull failed");
                }
            }
            Ok(false) => tracing::warn!(pull = %rec.id, "image pull settled by another node"),
            Err(e) => tracing::warn!(pull = %rec.id, error = %e, "could not record an image pull's result"),
        }
        self.changed.notify_waiters();
    }

    async fn pull_with_retries(&self, reference: &str) -> Result<PulledImage, PullFailure> {
        let mut backoff = self.settings.retry_backoff.iter();
        loop {
            match self.puller.pull(reference).await {
                Ok(image) => return Ok(image),
                Err(f) if f.transient => match backoff.next() {
                    Some(wait) => {
                        tracing::info!(image = %reference, reason = %f.reason, retry_in_ms = wait.as_millis() as u64, "image pull failed; retrying");
                        tokio::time::sleep(*wait).await;
                    }
                    None => return Err(f),
                },
                Err(f) => return Err(f),
            }
        }
    }

    /// Takes over pulls whose node died, every `reconcile_every`, forever.
    pub async fn reconcile(self: Arc<Self>) {
        loop {
            let now = now_ms();
            match self.meta.claim_image_pulls(&self.node, now, now + self.settings.lease.as_millis() as i64, 4).await {
                Ok(claimed) => {
                    for rec in claimed {
                        tracing::info!(pull = %rec.id, image = %rec.reference, "taking over an image pull");
                        tokio::spawn(self.clone().run(rec));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not look for abandoned image pulls"),
            }
            tokio::time::sleep(self.settings.reconcile_every).await;
        }
    }
}

/// Pulls by who uses them (`openfc images ls`, garbage collection).
pub struct PullInventory {
    pub pulls: Vec<(ImagePullRecord, Vec<PullUser>)>,
}

impl PullInventory {
    pub async fn read(meta: &dyn ImageMeta) -> Result<PullInventory, MetaError> {
        // Pulls first: one created after this read is not judged on users read before it was named.
        let pulls = meta.list_image_pulls().await?;
        let users = meta.image_pull_users().await?;
        let pulls = pulls
            .into_iter()
            .map(|p| {
                let mine = users.iter().filter(|u| u.pull == p.id).cloned().collect();
                (p, mine)
            })
            .collect();
        Ok(PullInventory { pulls })
    }

    /// Images some function or version runs (or will run: pulls still preparing are kept by the caller).
    pub fn in_use(&self) -> Vec<PulledImage> {
        self.pulls.iter().filter(|(_, u)| !u.is_empty()).filter_map(|(p, _)| p.image.clone()).collect()
    }

    /// Pulls no function or version names any more: named once and no longer, or never named for ten minutes
    /// (a pull is recorded just before the function that names it is written, and may settle before that write
    /// lands; one whose write failed is removed at once).
    pub fn unused(&self, now_ms: i64) -> Vec<String> {
        const UNNAMED_GRACE_MS: i64 = 10 * 60 * 1000;
        self.pulls
            .iter()
            .filter(|(p, u)| u.is_empty() && (p.named || now_ms - p.created_ms > UNNAMED_GRACE_MS))
            .map(|(p, _)| p.id.clone())
            .collect()
    }
}

/// `accelerationInfo` for GetFunction: `{status}`, plus openfc's `reason` when the pull failed.
pub fn acceleration_info(rec: &ImagePullRecord) -> Value {
    match rec.status {
        PullStatus::Failed => serde_json::json!({ "status": "Failed", "reason": rec.reason }),
        s => serde_json::json!({ "status": s.as_str() }),
    }
}

impl crate::usecase::Fc {
    /// GetFunction's answer: a container function's `customContainerConfig` gains `accelerationInfo`.
    pub async fn function_with_image_state(&self, rec: &FunctionRecord) -> CoreResult<Value> {
        let mut out = crate::function::function_json(rec);
        let (Some(images), Some(pull)) = (&self.images, pull_of(&rec.config)) else { return Ok(out) };
        let info = acceleration_info(&*images.get(pull).await?);
        if let Some(Value::Object(ccc)) = out.get_mut("customContainerConfig") {
            ccc.insert("accelerationInfo".into(), info);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "images_tests.rs"]
mod tests;
