//! Pulls by who uses them (`openfc images ls`, garbage collection).

use super::{ImageMeta, ImagePullRecord, PullUser, PulledImage};
use crate::ports::MetaError;

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
