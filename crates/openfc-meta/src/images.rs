//! `ImageMeta` on the same SQL (openfc-core::images): custom-container image pulls, shared by every node. A
//! lease is taken, renewed and settled by conditional UPDATEs naming the owner, so two nodes never both settle
//! one pull; the pulled image is stored as JSON text.

use async_trait::async_trait;
use openfc_core::images::{ImageMeta, ImagePullRecord, PullStatus, PullUser, PulledImage};
use openfc_core::ports::MetaError;

use crate::rows::Cols;
use crate::{SqlMeta, map_err};

const INSERT: &str = "INSERT INTO image_pulls (id, account_id, reference, status, reason, image, owner, lease_until_ms, \
     created_ms, updated_ms, has_command) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const GET: &str = "SELECT * FROM image_pulls WHERE id = $1";
const NAMED: &str = "UPDATE image_pulls SET named = 1 WHERE id = $1";
const RENEW: &str = "UPDATE image_pulls SET lease_until_ms = $1 WHERE id = $2 AND owner = $3 AND status = 'Preparing'";
const SETTLE: &str = "UPDATE image_pulls SET status = $1, reason = $2, image = $3, updated_ms = $4 \
     WHERE id = $5 AND owner = $6 AND status = 'Preparing'";
const CANDIDATES: &str = "SELECT id FROM image_pulls WHERE status = 'Preparing' AND lease_until_ms < $1 \
     ORDER BY lease_until_ms LIMIT $2";
const CLAIM: &str = "UPDATE image_pulls SET owner = $1, lease_until_ms = $2 \
     WHERE id = $3 AND status = 'Preparing' AND lease_until_ms < $4 RETURNING *";
const RETRY: &str = "UPDATE image_pulls SET status = 'Preparing', reason = '', lease_until_ms = 0, updated_ms = $1 \
     WHERE reference = $2 AND status = 'Failed'";
const LIST: &str = "SELECT * FROM image_pulls ORDER BY created_ms";
const DELETE: &str = "DELETE FROM image_pulls WHERE id = $1";
// `_image` in a stored configuration names the pull (LIKE's `_` matches itself too; rows are parsed after).
const FUNCTION_USERS: &str = "SELECT account_id, service_name, name, config FROM functions WHERE config LIKE '%\"_image\"%'";
const VERSION_USERS: &str = "SELECT account_id, service_name, name, version_id, config FROM version_functions \
     WHERE config LIKE '%\"_image\"%'";

fn pull_from_row(r: &impl Cols) -> Result<ImagePullRecord, MetaError> {
    let status = r.text("status")?;
    let image = match r.opt_text("image")? {
        Some(text) => Some(
            serde_json::from_str::<PulledImage>(&text).map_err(|e| MetaError::Backend(format!("image_pulls.image: {e}")))?,
        ),
        None => None,
    };
    Ok(ImagePullRecord {
        id: r.text("id")?,
        account_id: r.text("account_id")?,
        reference: r.text("reference")?,
        has_command: r.int("has_command")? != 0,
        named: r.int("named")? != 0,
        status: PullStatus::parse(&status).ok_or_else(|| MetaError::Backend(format!("bad pull status {status}")))?,
        reason: r.text("reason")?,
        image,
        owner: r.text("owner")?,
        lease_until_ms: r.int("lease_until_ms")?,
        created_ms: r.int("created_ms")?,
        updated_ms: r.int("updated_ms")?,
    })
}

fn user_from_row(r: &impl Cols, version: Option<u64>) -> Result<Option<PullUser>, MetaError> {
    let config: serde_json::Value =
        serde_json::from_str(&r.text("config")?).map_err(|e| MetaError::Backend(format!("config: {e}")))?;
    Ok(openfc_core::images::pull_of(&config).map(|pull| PullUser {
        pull: pull.to_owned(),
        account_id: r.text("account_id").unwrap_or_default(),
        service: r.text("service_name").unwrap_or_default(),
        function: r.text("name").unwrap_or_default(),
        version,
    }))
}

#[async_trait]
impl ImageMeta for SqlMeta {
    async fn create_image_pull(&self, rec: &ImagePullRecord) -> Result<(), MetaError> {
        let image = match &rec.image {
            Some(i) => Some(serde_json::to_string(i).map_err(|e| MetaError::Backend(e.to_string()))?),
            None => None,
        };
        on_pool!(self, p => sqlx::query(INSERT).bind(&rec.id).bind(&rec.account_id).bind(&rec.reference)
            .bind(rec.status.as_str()).bind(&rec.reason).bind(&image).bind(&rec.owner).bind(rec.lease_until_ms)
            .bind(rec.created_ms).bind(rec.updated_ms).bind(i64::from(rec.has_command)).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn get_image_pull(&self, id: &str) -> Result<ImagePullRecord, MetaError> {
        on_pool!(self, p => {
            let row = sqlx::query(GET).bind(id).fetch_optional(p).await.map_err(map_err)?;
            pull_from_row(&row.ok_or(MetaError::NotFound)?)
        })
    }

    async fn mark_image_pull_named(&self, id: &str) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(NAMED).bind(id).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn renew_image_pull(&self, id: &str, owner: &str, until_ms: i64) -> Result<bool, MetaError> {
        on_pool!(self, p => Ok(sqlx::query(RENEW).bind(until_ms).bind(id).bind(owner).execute(p).await
            .map_err(map_err)?.rows_affected() == 1))
    }

    async fn settle_image_pull(
        &self,
        id: &str,
        owner: &str,
        status: PullStatus,
        reason: &str,
        image: Option<&PulledImage>,
        now_ms: i64,
    ) -> Result<bool, MetaError> {
        let image = match image {
            Some(i) => Some(serde_json::to_string(i).map_err(|e| MetaError::Backend(e.to_string()))?),
            None => None,
        };
        on_pool!(self, p => Ok(sqlx::query(SETTLE).bind(status.as_str()).bind(reason).bind(&image).bind(now_ms)
            .bind(id).bind(owner).execute(p).await.map_err(map_err)?.rows_affected() == 1))
    }

    async fn claim_image_pulls(&self, owner: &str, now_ms: i64, until_ms: i64, limit: usize) -> Result<Vec<ImagePullRecord>, MetaError> {
        on_pool!(self, p => {
            let candidates = sqlx::query(CANDIDATES).bind(now_ms).bind(limit as i64).fetch_all(p).await.map_err(map_err)?;
            let mut out = Vec::new();
            for c in &candidates {
                let row = sqlx::query(CLAIM).bind(owner).bind(until_ms).bind(c.text("id")?).bind(now_ms)
                    .fetch_optional(p).await.map_err(map_err)?;
                if let Some(row) = row {
                    out.push(pull_from_row(&row)?);
                }
            }
            Ok(out)
        })
    }

    async fn retry_failed_image_pulls(&self, reference: &str, now_ms: i64) -> Result<u64, MetaError> {
        on_pool!(self, p => Ok(sqlx::query(RETRY).bind(now_ms).bind(reference).execute(p).await.map_err(map_err)?.rows_affected()))
    }

    async fn list_image_pulls(&self) -> Result<Vec<ImagePullRecord>, MetaError> {
        on_pool!(self, p => sqlx::query(LIST).fetch_all(p).await.map_err(map_err)?.iter().map(pull_from_row).collect())
    }

    async fn delete_image_pulls(&self, ids: &[String]) -> Result<(), MetaError> {
        for id in ids {
            on_pool!(self, p => sqlx::query(DELETE).bind(id).execute(p).await.map(|_| ()).map_err(map_err))?;
        }
        Ok(())
    }

    async fn image_pull_users(&self) -> Result<Vec<PullUser>, MetaError> {
        on_pool!(self, p => {
            let mut out = Vec::new();
            for row in sqlx::query(FUNCTION_USERS).fetch_all(p).await.map_err(map_err)? {
                out.extend(user_from_row(&row, None)?);
            }
            for row in sqlx::query(VERSION_USERS).fetch_all(p).await.map_err(map_err)? {
                let v = row.int("version_id")?.max(0) as u64;
                out.extend(user_from_row(&row, Some(v))?);
            }
            Ok(out)
        })
    }
}
