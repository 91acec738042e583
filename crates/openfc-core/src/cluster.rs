//! Many nodes on one database: each node registers itself and heartbeats (`ClusterStore`), knows which
//! nodes are alive, and tells the others what it changed so their hot caches drop it at once
//! (`Change`, published after the write commits; the cache TTL stays the safety net for a lost message).
//!
//! Cluster-wide instance numbers are split by the live nodes, without a round trip per cold start: each
//! node takes its share of a provision config's `target` and of an on-demand `maximumInstanceCount`
//! (`Cluster::share`), the remainder going to nodes chosen by the function's hash so that it does not
//! always land on the same node.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ports::MetaError;

/// What a write changed, as the other nodes' caches need to hear it (see `cache::HotCache::apply`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
pub enum Change {
    Service { account: String, service: String },
    /// A function's LATEST, and what hangs on it (on-demand and async configs, HTTP triggers).
    Function { account: String, service: String, function: String },
    Version { account: String, service: String, version: u64 },
    Alias { account: String, service: String, alias: String },
    /// An on-demand config, by its resource key (`configs::on_demand_key`).
    OnDemand { account: String, key: String },
    /// The async configs of a function (any qualifier).
    AsyncConfigs { account: String, service: String, function: String },
    /// The HTTP triggers of a function (any qualifier).
    HttpTriggers { account: String, service: String, function: String },
    /// A custom domain, by its lower-case key.
    Domain { key: String },
    /// AccessKeys or their policies.
    Keys,
    /// Anything: after a listener lost its connection (messages may have been missed).
    All,
}

/// A node as registered in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    pub id: String,
    /// Where the node listens, as it was told (`--public-url`, else the listen address).
    pub address: String,
    pub started_ms: i64,
    pub heartbeat_ms: i64,
    pub version: String,
}

/// A running function instance, as ListInstances reports it on any node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InstanceInfo {
    pub id: String,
    pub account_id: String,
    pub service: String,
    pub function: String,
    /// The version it runs: `LATEST` or a published version's id.
    pub version: String,
}

/// The database side of the cluster. SQLite implements it for one process (nothing to tell anyone).
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Inserts or refreshes this node's row.
    async fn heartbeat(&self, node: &NodeRecord) -> Result<(), MetaError>;
    /// Nodes whose last heartbeat is at or after `since_ms`, by id.
    async fn nodes(&self, since_ms: i64) -> Result<Vec<NodeRecord>, MetaError>;
    /// Removes the row (a clean stop); rows of nodes dead longer than `before_ms` are pruned too.
    async fn leave(&self, id: &str, before_ms: i64) -> Result<(), MetaError>;
    /// Tells every other node (best effort: a lost message costs at most the cache TTL).
    async fn publish(&self, origin: &str, change: &Change) -> Result<(), MetaError>;
    /// Replaces what this node last said runs on it.
    async fn replace_instances(&self, node: &str, instances: &[InstanceInfo]) -> Result<(), MetaError>;
    /// The instances of a function on nodes whose heartbeat is at or after `since_ms`, by id.
    async fn function_instances(
        &self,
        account: &str,
        service: &str,
        function: &str,
        since_ms: i64,
    ) -> Result<Vec<InstanceInfo>, MetaError>;
}

/// Whether a signature was seen before, cluster-wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Never, or only as an expired signature: now held by the caller's `holder`.
    First,
    /// Already, first at this time (ms).
    SeenAt(i64),
}

/// The signatures of mutating requests every node has accepted, so that a request replayed to another node
/// is refused there too (each node also keeps its own memory, checked first: `openfc_auth::ReplayCache`).
#[async_trait]
pub trait SignatureLedger: Send + Sync {
    /// Records `key` as first seen now, held by `holder`, until `expires_ms`, unless a live record exists.
    async fn sight(&self, key: &str, now_ms: i64, expires_ms: i64, holder: &str) -> Result<Sighting, MetaError>;
    /// Forgets `key` if `holder` still holds it (its request did not take effect; an honest retry may follow).
    async fn forget(&self, key: &str, holder: &str) -> Result<(), MetaError>;
    /// Drops records expired by `now_ms`.
    async fn prune(&self, now_ms: i64) -> Result<u64, MetaError>;
}

/// How often a node heartbeats, and after how long without one it is dead.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

/// This node's view of the cluster.
pub struct Cluster {
    pub id: String,
    store: Option<Arc<dyn ClusterStore>>,
    /// Live node ids, sorted; always contains this node.
    live: RwLock<Vec<String>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("id", &self.id).field("live", &self.live()).finish()
    }
}

impl Cluster {
    /// One node alone (tests, or a store that is not shared).
    pub fn single() -> Arc<Self> {
        Self::new(new_node_id(), None)
    }

    pub fn new(id: String, store: Option<Arc<dyn ClusterStore>>) -> Arc<Self> {
        let live = RwLock::new(vec![id.clone()]);
        Arc::new(Cluster { id, store, live })
    }

    /// Live node ids (this one included), sorted.
    pub fn live(&self) -> Vec<String> {
        self.live.read().expect("cluster view").clone()
    }

    /// This node's part of `total` spread over the live nodes; `salt` (a hash of what is counted) picks
    /// which nodes take the remainder.
    pub fn share(&self, total: usize, salt: u64) -> usize {
        let live = self.live.read().expect("cluster view");
        let n = live.len().max(1);
        let rank = live.iter().position(|id| *id == self.id).unwrap_or(0);
        let turn = (rank + (salt % n as u64) as usize) % n;
        total / n + usize::from(turn < total % n)
    }

    /// This node's part of a cap: its share, but at least one so that every node can serve the function
    /// (the cluster-wide bound is then `max(cap, nodes)`).
    pub fn cap(&self, cap: usize, salt: u64) -> usize {
        if cap == 0 { 0 } else { self.share(cap, salt).max(1) }
    }

    /// Tells the other nodes; a failure is logged, the TTL covers it.
    pub async fn publish(&self, change: &Change) {
        if let Some(store) = &self.store
            && let Err(e) = store.publish(&self.id, change).await
        {
            tracing::warn!(error = %e, ?change, "could not tell other nodes about a change; they see it within the cache TTL");
        }
    }

    /// The instances of a function on the live nodes (as each last reported them, at most a heartbeat ago).
    pub async fn function_instances(
        &self,
        account: &str,
        service: &str,
        function: &str,
        now_ms: i64,
    ) -> Result<Vec<InstanceInfo>, MetaError> {
        match &self.store {
            Some(store) => store.function_instances(account, service, function, now_ms - DEAD_AFTER.as_millis() as i64).await,
            None => Ok(Vec::new()),
        }
    }

    /// Registers this node, then heartbeats, refreshes the live view and reports this node's instances (when
    /// they changed) until the process ends.
    pub async fn run(
        self: Arc<Self>,
        address: String,
        version: String,
        now_ms: impl Fn() -> i64 + Send,
        instances: impl Fn() -> Vec<InstanceInfo> + Send,
    ) {
        let Some(store) = self.store.clone() else { return };
        let mut node = NodeRecord { id: self.id.clone(), address, started_ms: now_ms(), heartbeat_ms: 0, version };
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known = 0usize;
        let mut reported: Option<Vec<InstanceInfo>> = None;
        loop {
            tick.tick().await;
            node.heartbeat_ms = now_ms();
            if let Err(e) = store.heartbeat(&node).await {
                tracing::warn!(error = %e, "node heartbeat failed");
                continue;
            }
            let mut now = instances();
            now.sort();
            if reported.as_ref() != Some(&now) {
                match store.replace_instances(&self.id, &now).await {
                    Ok(()) => reported = Some(now),
                    Err(e) => tracing::warn!(error = %e, "reporting this node's instances failed"),
                }
            }
            match store.nodes(node.heartbeat_ms - DEAD_AFTER.as_millis() as i64).await {
                Ok(nodes) => {
                    let mut ids: Vec<String> = nodes.into_iter().map(|n| n.id).collect();
                    if !ids.contains(&self.id) {
                        ids.push(self.id.clone());
                    }
                    ids.sort();
                    if ids.len() != known {
                        tracing::info!(nodes = ids.len(), "cluster membership changed");
                        known = ids.len();
                    }
                    *self.live.write().expect("cluster view") = ids;
                }
                Err(e) => tracing::warn!(error = %e, "reading the node list failed"),
            }
        }
    }

    /// Leaves the cluster on a clean stop, pruning rows of nodes dead for an hour.
    pub async fn leave(&self, now_ms: i64) {
        if let Some(store) = &self.store {
            let _ = store.leave(&self.id, now_ms - 3_600_000).await;
        }
    }
}

/// A hash of what is counted, the same on every node (FNV-1a: std's hasher may differ between builds).
pub fn salt(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A fresh node id: random, so a restarted node is a new node (its old row ages out).
pub fn new_node_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_of(ids: &[&str], me: &str) -> Arc<Cluster> {
        let c = Cluster::new(me.to_owned(), None);
        *c.live.write().unwrap() = ids.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn shares_add_up_to_the_total_whatever_the_salt() {
        let ids = ["a", "b", "c"];
        for total in 0..10 {
            for salt in 0..7u64 {
                let sum: usize = ids.iter().map(|me| cluster_of(&ids, me).share(total, salt)).sum();
                assert_eq!(sum, total, "total {total} salt {salt}");
            }
        }
    }

    #[test]
    fn the_remainder_moves_with_the_salt() {
        let ids = ["a", "b", "c"];
        let takers: std::collections::HashSet<&str> =
            (0..3u64).map(|salt| *ids.iter().find(|me| cluster_of(&ids, me).share(1, salt) == 1).unwrap()).collect();
        assert_eq!(takers.len(), 3);
    }

    #[test]
    fn a_cap_leaves_every_node_one() {
        let ids = ["a", "b", "c"];
        for me in ids {
            assert_eq!(cluster_of(&ids, me).cap(1, 0), 1);
            assert_eq!(cluster_of(&ids, me).cap(0, 0), 0);
        }
        let sum: usize = ids.iter().map(|me| cluster_of(&ids, me).cap(7, 5)).sum();
        assert_eq!(sum, 7);
        assert_eq!(Cluster::single().share(5, 3), 5);
    }

    #[test]
    fn changes_read_back_as_sent() {
        let c = Change::Function { account: "1".into(), service: "s".into(), function: "f".into() };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), c);
        assert_eq!(serde_json::from_str::<Change>(r#"{"k":"all"}"#).unwrap(), Change::All);
    }
}
