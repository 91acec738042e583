//! Custom-container images (containers.md §2): pulled at Create/UpdateFunction in the background, never on
//! the invoke path. Each such write starts one *pull* — a row shared by every node (`ImageMeta`) — and the
//! function's stored configuration names it (`_image.pull`); published versions copy the configuration and so
//! name the same pull. A pull settles once: `Ready` with the manifest digest it pinned (a re-pushed tag changes
//! nothing until the next UpdateFunction starts a new pull), or `Failed` with a reason. The node that took the
//! request runs the pull under a lease it renews; any node takes over a pull whose lease ran out.
//!
//! The `ImagePuller` port does the work (registry, blobs, flattening: `openfc-image`); core decides when, keeps
//! the state, and builds what runs (`ContainerPlan`: argv by the Kubernetes rule, containers.md §4.2).

mod inventory;
mod plan;
mod pull;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CoreResult;
use crate::ports::{FunctionRecord, MetaError};

pub use inventory::PullInventory;
pub use plan::{ContainerPlan, MAX_NON_WEB_EVENT, argv, check_non_web_event, non_web_container};
pub use pull::{ImageSettings, Images};

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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
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
