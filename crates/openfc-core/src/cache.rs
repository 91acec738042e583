//! A node-local read cache for the hot read paths (GetFunction, GetFunctionCode). This node's writes
//! invalidate it at once; writes made by other nodes sharing the database become visible within the TTL.
//! Mutations never read through it: their ETag checks always see the database.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
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

pub struct ReadCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    map: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        ReadCache { ttl, max_entries, map: RwLock::new(HashMap::new()) }
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

    pub fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.write().expect("cache lock");
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
        self.map.write().expect("cache lock").remove(key);
    }

    pub fn invalidate_where(&self, pred: impl Fn(&K) -> bool) {
        self.map.write().expect("cache lock").retain(|k, _| !pred(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_invalidation_and_bounds() {
        let c = ReadCache::new(Duration::from_millis(50), 2);
        c.put("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        assert_eq!(c.get_with(&"a", |v| Some(v + 1)), Some(2));
        assert_eq!(c.get_with(&"a", |_| None::<i32>), None);
        c.invalidate(&"a");
        assert_eq!(c.get(&"a"), None);
        c.put("a", 1);
        c.put("b", 2);
        c.put("c", 3);
        assert_eq!(c.get(&"c"), Some(3));
        assert!(c.get(&"a").is_none() || c.get(&"b").is_none(), "bounded");
        c.invalidate_where(|k| *k == "c");
        assert_eq!(c.get(&"c"), None);
        c.put("d", 4);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&"d"), None);
        let off = ReadCache::new(Duration::ZERO, 2);
        off.put("a", 1);
        assert_eq!(off.get(&"a"), None);
        assert_eq!(off.get_with(&"a", |v| Some(*v)), None);
    }
}
