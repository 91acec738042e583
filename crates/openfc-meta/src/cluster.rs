//! `ClusterStore` on the same SQL (openfc-core::cluster): the node table, and the change feed. On
//! PostgreSQL a change is a `NOTIFY` on one channel, heard by every node's `LISTEN` connection
//! (`SqlMeta::listen`); SQLite is one process's, so there is nobody to tell.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openfc_core::cluster::{Change, ClusterStore, InstanceInfo, NodeRecord, SignatureLedger, Sighting};
use openfc_core::ports::MetaError;
use sqlx::postgres::PgListener;

use crate::rows::Cols;
use crate::{Pool, SqlMeta, map_err};

/// The channel every node listens on.
const CHANNEL: &str = "openfc_changes";

const HEARTBEAT: &str = "INSERT INTO nodes (id, address, version, started_ms, heartbeat_ms) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms, address = excluded.address";
const LIVE: &str = "SELECT * FROM nodes WHERE heartbeat_ms >= $1 ORDER BY id";
const LEAVE: &str = "DELETE FROM nodes WHERE id = $1 OR heartbeat_ms < $2";
const LEAVE_INSTANCES: &str = "DELETE FROM node_instances WHERE node_id = $1 \
     OR node_id NOT IN (SELECT id FROM nodes WHERE heartbeat_ms >= $2)";
const FORGET_INSTANCES: &str = "DELETE FROM node_instances WHERE node_id = $1";
const ADD_INSTANCE: &str = "INSERT INTO node_instances (node_id, id, account_id, service_name, function_name, version) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const FUNCTION_INSTANCES: &str = "SELECT i.* FROM node_instances i JOIN nodes n ON n.id = i.node_id \
     WHERE i.account_id = $1 AND i.service_name = $2 AND i.function_name = $3 AND n.heartbeat_ms >= $4 ORDER BY i.id";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// What travels on the channel: the change, and who made it (a node ignores its own).
#[derive(serde::Serialize, serde::Deserialize)]
struct Message {
    origin: String,
    change: Change,
}

fn node_from_row(r: &impl Cols) -> Result<NodeRecord, MetaError> {
    Ok(NodeRecord {
        id: r.text("id")?,
        address: r.text("address")?,
        version: r.text("version")?,
        started_ms: r.int("started_ms")?,
        heartbeat_ms: r.int("heartbeat_ms")?,
    })
}

#[async_trait]
impl ClusterStore for SqlMeta {
    async fn heartbeat(&self, n: &NodeRecord) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(HEARTBEAT).bind(&n.id).bind(&n.address).bind(&n.version).bind(n.started_ms)
            .bind(n.heartbeat_ms).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn nodes(&self, since_ms: i64) -> Result<Vec<NodeRecord>, MetaError> {
        on_pool!(self, p => sqlx::query(LIVE).bind(since_ms).fetch_all(p).await.map_err(map_err)?.iter().map(node_from_row).collect())
    }

    async fn leave(&self, id: &str, before_ms: i64) -> Result<(), MetaError> {
        on_pool!(self, p => {
            sqlx::query(LEAVE_INSTANCES).bind(id).bind(before_ms).execute(p).await.map_err(map_err)?;
            sqlx::query(LEAVE).bind(id).bind(before_ms).execute(p).await.map(|_| ()).map_err(map_err)
        })
    }

    async fn replace_instances(&self, node: &str, instances: &[InstanceInfo]) -> Result<(), MetaError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await.map_err(map_err)?;
            sqlx::query(FORGET_INSTANCES).bind(node).execute(&mut *tx).await.map_err(map_err)?;
            for i in instances {
                sqlx::query(ADD_INSTANCE).bind(node).bind(&i.id).bind(&i.account_id).bind(&i.service).bind(&i.function)
                    .bind(&i.version).execute(&mut *tx).await.map_err(map_err)?;
            }
            tx.commit().await.map_err(map_err)
        })
    }

    async fn function_instances(
        &self,
        account: &str,
        service: &str,
        function: &str,
        since_ms: i64,
    ) -> Result<Vec<InstanceInfo>, MetaError> {
        on_pool!(self, p => sqlx::query(FUNCTION_INSTANCES).bind(account).bind(service).bind(function).bind(since_ms)
            .fetch_all(p).await.map_err(map_err)?.iter().map(|r| Ok(InstanceInfo {
                id: r.text("id")?,
                account_id: r.text("account_id")?,
                service: r.text("service_name")?,
                function: r.text("function_name")?,
                version: r.text("version")?,
            })).collect())
    }

    async fn publish(&self, origin: &str, change: &Change) -> Result<(), MetaError> {
        let Pool::Postgres(p) = &self.pool else { return Ok(()) };
        let text = serde_json::to_string(&Message { origin: origin.to_owned(), change: change.clone() })
            .map_err(|e| MetaError::Backend(e.to_string()))?;
        sqlx::query(NOTIFY).bind(CHANNEL).bind(text).execute(p).await.map(|_| ()).map_err(map_err)
    }
}

impl SqlMeta {
    /// Hears the other nodes' changes until the process ends, handing each to `apply`; after the listening
    /// connection was lost (messages may have been missed meanwhile) `apply` gets `Change::All`. Returns at
    /// once on SQLite.
    pub async fn listen(self: Arc<Self>, me: String, apply: Arc<dyn Fn(Change) + Send + Sync>) {
        let Pool::Postgres(pool) = &self.pool else { return };
        loop {
            let mut listener = match PgListener::connect_with(pool).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes; retrying (the cache TTL bounds staleness)");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %e, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever was missed before this connection listened.
            apply(Change::All);
            loop {
                match listener.try_recv().await {
                    Ok(Some(n)) => match serde_json::from_str::<Message>(n.payload()) {
                        Ok(m) if m.origin != me => apply(m.change),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, payload = n.payload(), "unreadable change message"),
                    },
                    // The connection dropped; the listener reconnects and re-listens at the next call.
                    Ok(None) => {
                        tracing::warn!("lost the change feed's connection; reconnecting");
                        apply(Change::All);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed failed; reconnecting");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A live record wins; an expired one is taken over (the signature's window has passed, so this is a new
/// request that happens to sign the same — practically never, but never refused for it).
const SIGHT: &str = "INSERT INTO seen_signatures (key, first_seen_ms, expires_ms, holder) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (key) DO UPDATE SET first_seen_ms = excluded.first_seen_ms, expires_ms = excluded.expires_ms, \
     holder = excluded.holder WHERE seen_signatures.expires_ms < excluded.first_seen_ms \
     RETURNING holder";
const SEEN: &str = "SELECT first_seen_ms FROM seen_signatures WHERE key = $1";
const FORGET: &str = "DELETE FROM seen_signatures WHERE key = $1 AND holder = $2";
const PRUNE: &str = "DELETE FROM seen_signatures WHERE expires_ms < $1";

#[async_trait]
impl SignatureLedger for SqlMeta {
    async fn sight(&self, key: &str, now_ms: i64, expires_ms: i64, holder: &str) -> Result<Sighting, MetaError> {
        on_pool!(self, p => {
            let won = sqlx::query(SIGHT).bind(key).bind(now_ms).bind(expires_ms).bind(holder)
                .fetch_optional(p).await.map_err(map_err)?;
            if won.is_some() {
                return Ok(Sighting::First);
            }
            let first = sqlx::query(SEEN).bind(key).fetch_optional(p).await.map_err(map_err)?;
            // Gone between the two statements (its holder's request failed and released it): taken as seen
            // just now, so only a tolerated repeat passes; the client's own retry later finds it free.
            Ok(match first {
                Some(row) => Sighting::SeenAt(row.int("first_seen_ms")?),
                None => Sighting::SeenAt(now_ms),
            })
        })
    }

    async fn forget(&self, key: &str, holder: &str) -> Result<(), MetaError> {
        on_pool!(self, p => sqlx::query(FORGET).bind(key).bind(holder).execute(p).await.map(|_| ()).map_err(map_err))
    }

    async fn prune(&self, now_ms: i64) -> Result<u64, MetaError> {
        on_pool!(self, p => Ok(sqlx::query(PRUNE).bind(now_ms).execute(p).await.map_err(map_err)?.rows_affected()))
    }
}
