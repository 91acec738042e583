//! Refusing replayed requests: a bounded memory of the signatures seen while they are still inside the
//! clock-skew window.
//!
//! A signature stays acceptable for 15 minutes after its request time, so a captured mutating request could
//! be sent again (to delete a re-created service, to put back code that was since replaced...). The cache
//! remembers each signature until the skew window would refuse it anyway and refuses a second sighting:
//!
//! * signatures that cover a per-request nonce (`x-acs-signature-nonce`, which the Tea SDK signs on every
//!   attempt, retries included) are refused on any second sighting;
//! * FC-scheme signatures (fc2 Python, `@alicloud/fc2`, `fun`) cover no nonce and a `Date` with one-second
//!   resolution, so a client sending the same request twice within a second produces the same signature.
//!   A repeat within [`ReplayCache::grace`] of the first sighting is therefore tolerated; later ones are refused.
//!
//! The caller releases a claim ([`ReplayCache::release`]) when the request did not take effect and a client
//! may retry it unchanged: fc2 Python resends the very same signed PUT/DELETE after a 500, 502 or 504.
//!
//! The memory is bounded: entries leave when their signature expires, and past `capacity` the entries whose
//! signatures expire soonest are dropped first (protection then covers the most recent requests only).
//! It is a pure data structure; the caller owns the clock and the lock.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::{AuthError, ParsedAuthorization, Scheme};

/// The identity of one signature: 128 bits of SHA-256 over the scheme, the AccessKeyId and the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplayKey(u128);

impl ReplayKey {
    /// 32 hex digits, the same on every node (the shared ledger's key).
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }

    pub(crate) fn of(auth: &ParsedAuthorization) -> Self {
        let scheme: u8 = match auth.scheme {
            Scheme::Fc => 1,
            Scheme::Acs3 => 2,
            Scheme::AcsV1 => 3,
        };
        let digest = Sha256::new()
            .chain_update([scheme])
            .chain_update(auth.access_key_id.as_bytes())
            .chain_update([0])
            .chain_update(&auth.signature)
            .finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        ReplayKey(u128::from_be_bytes(first))
    }
}

/// Proof that a request was the first to use its signature; pass it to [`ReplayCache::release`] to let the
/// same signature through again.
#[derive(Debug, PartialEq, Eq)]
pub struct ReplayClaim {
    key: ReplayKey,
    generation: u64,
}

#[derive(Debug)]
struct Seen {
    first_seen: Instant,
    expires: Instant,
    generation: u64,
}

/// A bounded, expiring set of the signatures of mutating requests already accepted.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashMap<ReplayKey, Seen>,
    /// Every insertion, soonest expiry first; entries whose generation no longer matches `seen` are stale.
    by_expiry: BinaryHeap<Reverse<(Instant, u64, ReplayKey)>>,
    capacity: usize,
    grace: Duration,
    next_generation: u64,
}

impl ReplayCache {
    /// `capacity` signatures at most (at least one); identical nonce-less requests are tolerated within `grace`
    /// of the first.
    pub fn new(capacity: usize, grace: Duration) -> Self {
        ReplayCache {
            seen: HashMap::new(),
            by_expiry: BinaryHeap::new(),
            capacity: capacity.max(1),
            grace,
            next_generation: 0,
        }
    }

    /// How long after its first sighting a nonce-less signature may be seen again.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Signatures currently remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Admits a request whose signature was verified at `now`: `Ok(Some(claim))` for its first sighting,
    /// `Ok(None)` for a tolerated repeat (nonce-less, within the grace), `Err(AuthError::Replayed)` otherwise.
    ///
    /// `nonce_signed` and `valid_for` come from [`crate::Verified`]: the signature is remembered until the
    /// clock-skew window would refuse it (plus a second for clock granularity).
    pub fn admit(
        &mut self,
        key: ReplayKey,
        nonce_signed: bool,
        valid_for: Duration,
        now: Instant,
    ) -> Result<Option<ReplayClaim>, AuthError> {
        self.purge(now);
        if let Some(seen) = self.seen.get(&key) {
            let repeat_in_grace =
                !nonce_signed && now.saturating_duration_since(seen.first_seen) <= self.grace;
            return if repeat_in_grace {
                Ok(None)
            } else {
                Err(AuthError::Replayed)
            };
        }
        while self.seen.len() >= self.capacity {
            self.evict_soonest();
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let expires = now + valid_for + Duration::from_secs(1);
        self.seen.insert(
            key,
            Seen {
                first_seen: now,
                expires,
                generation,
            },
        );
        self.by_expiry.push(Reverse((expires, generation, key)));
        if self.by_expiry.len() > 2 * self.capacity {
            self.compact();
        }
        Ok(Some(ReplayClaim { key, generation }))
    }

    /// Forgets the signature of a claimed request that did not take effect, so that the client's unchanged
    /// retry is accepted. A claim whose entry has since expired or been replaced does nothing.
    pub fn release(&mut self, claim: ReplayClaim) {
        if self
            .seen
            .get(&claim.key)
            .is_some_and(|seen| seen.generation == claim.generation)
        {
            self.seen.remove(&claim.key);
        }
    }

    /// Drops the entries whose signatures the skew window refuses by now.
    fn purge(&mut self, now: Instant) {
        while let Some(Reverse((expires, _, _))) = self.by_expiry.peek() {
            if *expires > now {
                break;
            }
            self.pop_soonest();
        }
    }

    /// Drops the live entry that expires soonest (stale heap entries on the way are discarded).
    fn evict_soonest(&mut self) {
        while let Some(removed) = self.pop_soonest() {
            if removed {
                return;
            }
        }
    }

    /// Pops the heap's top; `Some(true)` if it was a live entry (now removed), `Some(false)` if stale.
    fn pop_soonest(&mut self) -> Option<bool> {
        let Reverse((_, generation, key)) = self.by_expiry.pop()?;
        let live = self
            .seen
            .get(&key)
            .is_some_and(|seen| seen.generation == generation);
        if live {
            self.seen.remove(&key);
        }
        Some(live)
    }

    /// Rebuilds the heap from the live entries (released claims leave stale heap entries behind).
    fn compact(&mut self) {
        self.by_expiry = self
            .seen
            .iter()
            .map(|(key, seen)| Reverse((seen.expires, seen.generation, *key)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(900);
    const GRACE: Duration = Duration::from_secs(5);

    fn key(n: u128) -> ReplayKey {
        ReplayKey(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn nonce_signed_repeat_is_refused_at_once() {
        let mut cache = ReplayCache::new(10, GRACE);
        let t = Instant::now();
        assert!(cache.admit(key(1), true, WINDOW, t).unwrap().is_some());
        assert_eq!(
            cache.admit(key(1), true, WINDOW, t),
            Err(AuthError::Replayed)
        );
        assert!(cache.admit(key(2), true, WINDOW, t).unwrap().is_some());
    }

    #[test]
    fn nonce_less_repeat_is_tolerated_within_the_grace_only() {
        let mut cache = ReplayCache::new(10, GRACE);
        let t = Instant::now();
        assert!(cache.admit(key(1), false, WINDOW, t).unwrap().is_some());
        assert_eq!(cache.admit(key(1), false, WINDOW, t + secs(1)), Ok(None));
        assert_eq!(cache.admit(key(1), false, WINDOW, t + GRACE), Ok(None));
        // The grace counts from the first sighting, not the latest repeat.
        assert_eq!(
            cache.admit(key(1), false, WINDOW, t + GRACE + secs(1)),
            Err(AuthError::Replayed)
        );
        assert_eq!(
            cache.admit(key(1), false, WINDOW, t + secs(600)),
            Err(AuthError::Replayed)
        );
    }

    #[test]
    fn entries_expire_with_their_signature() {
        let mut cache = ReplayCache::new(10, GRACE);
        let t = Instant::now();
        cache.admit(key(1), true, secs(60), t).unwrap();
        cache.admit(key(2), true, WINDOW, t).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.admit(key(1), true, secs(60), t + Duration::from_millis(60_999)),
            Err(AuthError::Replayed),
            "kept a second past the window"
        );
        // Past the window the clock-skew check refuses the signature; the cache no longer needs it.
        assert!(
            cache
                .admit(key(3), true, WINDOW, t + secs(62))
                .unwrap()
                .is_some()
        );
        assert_eq!(cache.len(), 2, "key 1 was purged");
        assert!(
            cache
                .admit(key(1), true, secs(60), t + secs(62))
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn released_claim_lets_the_same_signature_through_again() {
        let mut cache = ReplayCache::new(10, GRACE);
        let t = Instant::now();
        let claim = cache.admit(key(1), false, WINDOW, t).unwrap().unwrap();
        cache.release(claim);
        assert!(cache.is_empty());
        // fc2 Python's retry after a 500 comes seconds later with the same signature.
        let again = cache
            .admit(key(1), false, WINDOW, t + secs(30))
            .unwrap()
            .unwrap();
        assert_eq!(
            cache.admit(key(1), false, WINDOW, t + secs(60)),
            Err(AuthError::Replayed)
        );
        // A stale claim (its entry replaced since) does not forget the newer entry.
        let stale = ReplayClaim {
            key: key(1),
            generation: again.generation + 100,
        };
        cache.release(stale);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn capacity_bounds_memory_and_evicts_the_soonest_expiring() {
        let mut cache = ReplayCache::new(3, GRACE);
        let t = Instant::now();
        cache.admit(key(1), true, secs(600), t).unwrap();
        cache.admit(key(2), true, secs(100), t).unwrap();
        cache.admit(key(3), true, secs(900), t).unwrap();
        cache.admit(key(4), true, secs(900), t).unwrap();
        assert_eq!(cache.len(), 3);
        assert!(
            cache.admit(key(2), true, secs(100), t).unwrap().is_some(),
            "key 2 was evicted"
        );
        for n in [3, 4] {
            assert_eq!(
                cache.admit(key(n), true, WINDOW, t),
                Err(AuthError::Replayed)
            );
        }
        for n in 10..10_000 {
            let claim = cache.admit(key(n), true, WINDOW, t).unwrap().unwrap();
            if n % 2 == 0 {
                cache.release(claim);
            }
            assert!(cache.len() <= 3);
            assert!(cache.by_expiry.len() <= 2 * 3 + 1);
        }
    }

    #[test]
    fn keys_differ_by_scheme_access_key_and_signature() {
        let parsed = |value: &str| crate::parse_authorization(value).unwrap();
        let a = ReplayKey::of(&parsed("FC ak:AAAA"));
        assert_eq!(a, ReplayKey::of(&parsed("fc  ak:AAAA")));
        assert_ne!(a, ReplayKey::of(&parsed("FC ak:AAAB")));
        assert_ne!(a, ReplayKey::of(&parsed("FC ak2:AAAA")));
        assert_ne!(a, ReplayKey::of(&parsed("acs ak:AAAA")));
    }
}
