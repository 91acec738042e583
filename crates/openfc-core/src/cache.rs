//! A node-local read cache for the hot read paths (GetFunction, GetFunctionCode). This node's writes
//! invalidate it at once; other nodes' writes arrive as `cluster::Change`s (PostgreSQL LISTEN/NOTIFY),
//! applied by `HotCache::apply`, and the TTL bounds how long a lost message can leave an entry stale.
//! Mutations never read through it: their ETag checks always see the database.
//!
//! A read that missed stores what it read only if nothing was invalidated meanwhile (`ReadCache::epoch`):
//! otherwise a read that began before a write could put the old value back after the write's invalidation.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cluster::Change;
use std::time::{Duration, Instant};

/// The caches of the hot paths (GetFunction, GetFunctionCode, InvokeFunction), sharing one TTL.
pub struct HotCache {
    /// LATEST functions by (account, service, function).
    pub functions: ReadCache<(String, String, String), std::sync::Arc<crate::ports::FunctionRecord>>,
    /// Published function snapshots by (account, service, function, version): immutable while they exist.
    pub versions: ReadCache<(String, String, String, u64), std::sync::Arc<crate::ports::FunctionRecord>>,
    pub services: ReadCache<(String, String), std::sync::Arc<crate::ports::ServiceRecord>>,
    pub aliases: ReadCache<(String, String, String), crate::versions::Alias>,
    /// Layer versions by (account, ARN): immutable while they exist.
    pub layers: ReadCache<(String, String), crate::ports::LayerVersionRecord>,
    /// On-demand configs' maximumInstanceCount by (account, resource); `None` when unset.
    pub on_demand: ReadCache<(String, String), Option<i64>>,
    /// Invocation specs by function state (`invocation::PreparedKey`), looked up by the key's hash so a hit
    /// builds no key (the entry holds the key, compared on a hit): a state's spec never changes, so the TTL
    /// only bounds how long a gone state's spec is kept.
    pub specs: ReadCache<u64, (crate::invocation::PreparedKey, std::sync::Arc<crate::invocation::FunctionSpec>)>,
    /// Custom domains by host name, and their compiled routes (`domains`).
    pub domains: crate::domains::DomainCache,
    /// HTTP triggers by (account, "service/function/qualifier").
    pub http_triggers: ReadCache<(String, String), crate::trigger_config::Trigger>,
    /// Effective async configs by (account, "service/function/qualifier").
    pub async_policies: ReadCache<(String, String), crate::asyncq::AsyncPolicy>,
}

impl HotCache {
    pub fn new(ttl: Duration) -> Self {
        HotCache {
            functions: ReadCache::new(ttl, 100_000),
            versions: ReadCache::new(ttl, 100_000),
            services: ReadCache::new(ttl, 10_000),
            aliases: ReadCache::new(ttl, 10_000),
            layers: ReadCache::new(ttl, 10_000),
            on_demand: ReadCache::new(ttl, 10_000),
            specs: ReadCache::new(ttl.max(Duration::from_secs(1)), 10_000),
            domains: crate::domains::DomainCache::new(ttl),
            async_policies: ReadCache::new(ttl, 10_000),
            http_triggers: ReadCache::new(ttl, 10_000),
        }
    }
}

impl HotCache {
    /// Drops what `change` made stale (this node's own writes and, through the cluster, other nodes').
    pub fn apply(&self, change: &Change) {
        match change {
            Change::Service { account, service } => self.services.invalidate(&(account.clone(), service.clone())),
            Change::Function { account, service, function } => {
                self.functions.invalidate(&(account.clone(), service.clone(), function.clone()));
                // The on-demand layout (`DocKey::OnDemand`) with any qualifier.
                let (od_start, od_end) = (format!("services/{service}."), format!("/functions/{function}"));
                self.on_demand.invalidate_where(|(a, k)| a == account && k.starts_with(&od_start) && k.ends_with(&od_end));
                self.forget_function_parts(account, service, function);
            }
            Change::Version { account, service, version } => {
                self.versions.invalidate_where(|k| k.0 == *account && k.1 == *service && k.3 == *version)
            }
            Change::Alias { account, service, alias } => {
                self.aliases.invalidate(&(account.clone(), service.clone(), alias.clone()))
            }
            Change::OnDemand { account, key } => self.on_demand.invalidate(&(account.clone(), key.clone())),
            Change::AsyncConfigs { account, service, function } => {
                let prefix = crate::dockey::prefix::function_parts(service, function);
                self.async_policies.invalidate_where(|(a, k)| a == account && k.starts_with(&prefix));
            }
            Change::HttpTriggers { account, service, function } => {
                let prefix = crate::dockey::prefix::function_parts(service, function);
                self.http_triggers.invalidate_where(|(a, k)| a == account && k.starts_with(&prefix));
            }
            Change::Domain { key } => self.domains.invalidate(key),
            // Not cached here: the keyring lives in the binary, which applies it.
            Change::Keys => {}
            Change::All => {
                self.functions.clear();
                self.versions.clear();
                self.services.clear();
                self.aliases.clear();
                self.on_demand.clear();
                self.domains.clear();
                self.http_triggers.clear();
                self.async_policies.clear();
            }
        }
    }

    fn forget_function_parts(&self, account: &str, service: &str, function: &str) {
        let prefix = crate::dockey::prefix::function_parts(service, function);
        self.async_policies.invalidate_where(|(a, k)| a == account && k.starts_with(&prefix));
        self.http_triggers.invalidate_where(|(a, k)| a == account && k.starts_with(&prefix));
    }
}

pub struct ReadCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    map: RwLock<HashMap<K, (Instant, V)>>,
    /// Bumped by every invalidation; see the module doc.
    epoch: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        ReadCache { ttl, max_entries, map: RwLock::new(HashMap::new()), epoch: AtomicU64::new(0) }
    }

    /// Read before the database read whose result is then `put`.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.read().expect("cache lock");
        map.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    /// What `f` makes of the fresh entry of `key`, under the read lock: nothing of it is cloned but what `f`
    /// returns.
    pub fn get_with<R>(&self, key: &K, f: impl FnOnce(&V) -> Option<R>) -> Option<R> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.read().expect("cache lock");
        map.get(key).filter(|(at, _)| at.elapsed() < self.ttl).and_then(|(_, v)| f(v))
    }

    /// Stores what a read that began at `since` (an `epoch()`) found, unless something was invalidated
    /// since then.
    pub fn put(&self, since: u64, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().expect("cache lock");
        if self.epoch.load(Ordering::Acquire) != since {
            return;
        }
        if map.len() >= self.max_entries {
            let ttl = self.ttl;
            map.retain(|_, (at, _)| at.elapsed() < ttl);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }

    pub fn invalidate(&self, key: &K) {
        let mut map = self.map.write().expect("cache lock");
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(key);
    }

    pub fn invalidate_where(&self, pred: impl Fn(&K) -> bool) {
        let mut map = self.map.write().expect("cache lock");
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.retain(|k, _| !pred(k));
    }

    pub fn clear(&self) {
        let mut map = self.map.write().expect("cache lock");
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_invalidation_and_bounds() {
        let c = ReadCache::new(Duration::from_millis(50), 2);
        c.put(c.epoch(), "a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        assert_eq!(c.get_with(&"a", |v| Some(v + 1)), Some(2));
        assert_eq!(c.get_with(&"a", |_| None::<i32>), None);
        c.invalidate(&"a");
        assert_eq!(c.get(&"a"), None);
        c.put(c.epoch(), "a", 1);
        c.put(c.epoch(), "b", 2);
        c.put(c.epoch(), "c", 3);
        assert_eq!(c.get(&"c"), Some(3));
        assert!(c.get(&"a").is_none() || c.get(&"b").is_none(), "bounded");
        c.invalidate_where(|k| *k == "c");
        assert_eq!(c.get(&"c"), None);
        c.put(c.epoch(), "d", 4);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&"d"), None);
        let off = ReadCache::new(Duration::ZERO, 2);
        off.put(off.epoch(), "a", 1);
        assert_eq!(off.get(&"a"), None);
        assert_eq!(off.get_with(&"a", |v| Some(*v)), None);
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_stored() {
        let c = ReadCache::new(Duration::from_secs(60), 10);
        let before_read = c.epoch();
        c.invalidate(&"b");
        c.put(before_read, "a", "old");
        assert_eq!(c.get(&"a"), None);
        c.put(c.epoch(), "a", "new");
        assert_eq!(c.get(&"a"), Some("new"));
    }

    #[test]
    fn a_change_drops_what_it_names_and_no_more() {
        let hot = HotCache::new(Duration::from_secs(60));
        let key = |fun: &str| ("1".to_owned(), format!("services/s.LATEST/functions/{fun}"));
        hot.on_demand.put(hot.on_demand.epoch(), key("a"), Some(1));
        hot.on_demand.put(hot.on_demand.epoch(), key("b"), Some(2));
        hot.apply(&Change::Function { account: "1".into(), service: "s".into(), function: "a".into() });
        assert_eq!(hot.on_demand.get(&key("a")), None);
        assert_eq!(hot.on_demand.get(&key("b")), Some(Some(2)));
        hot.apply(&Change::Function { account: "2".into(), service: "s".into(), function: "b".into() });
        assert_eq!(hot.on_demand.get(&key("b")), Some(Some(2)), "another account's function");
        hot.apply(&Change::All);
        assert_eq!(hot.on_demand.get(&key("b")), None);
    }
}
