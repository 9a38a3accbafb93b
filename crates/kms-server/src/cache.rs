//! The key cache: key records with their material unwrapped and ready to use, so that
//! Encrypt, Decrypt and GenerateDataKey on a warm key touch no database.
//!
//! Bounded: past its capacity an arbitrary entry is evicted (its material is zeroized when the
//! last request using it finishes). A mutation, on this node or (heard through the store's
//! change feed) on another, removes the entry once it commits; see [`crate::invalidation`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kms_core::Timestamp;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
use kms_core::key::KeyRecord;
use kms_core::policy::KeyPolicy;
use kms_core::tag::Tag;
use kms_crypto::KeyHandle;
use kms_store::GrantRecord;

/// A key as the hot path uses it: record, a ready key handle per material, parsed key policy
/// and grants.
#[derive(Debug)]
pub struct CachedKey {
    /// The key's record.
    pub record: KeyRecord,
    /// The key policy, parsed.
    pub policy: Arc<KeyPolicy>,
    /// The key's grants.
    pub grants: Arc<Vec<GrantRecord>>,
    /// The key's tags (`aws:ResourceTag/…`).
    pub tags: Vec<Tag>,
    /// The names of the aliases pointing at the key (`kms:ResourceAliases`).
    pub aliases: Vec<String>,
    materials: HashMap<MaterialId, Arc<KeyHandle>>,
    /// Whether the key policy reads anything of the request (conditions, variables); if not,
    /// its decisions may be reused (see [`crate::authz::DecisionCache`]).
    pub(crate) policy_reads_request: bool,
    /// Reusable authorization decisions on this key. Every change to the key, its policy or
    /// its grants replaces the cache entry, and these decisions with it.
    pub(crate) decisions: crate::authz::DecisionCache,
}

impl CachedKey {
    /// Assembles a cache entry.
    pub fn new(
        record: KeyRecord,
        policy: Arc<KeyPolicy>,
        grants: Arc<Vec<GrantRecord>>,
        materials: HashMap<MaterialId, Arc<KeyHandle>>,
    ) -> Self {
        let policy_reads_request = policy.document().reads_request();
        Self {
            record,
            policy,
            grants,
            tags: Vec::new(),
            aliases: Vec::new(),
            materials,
            policy_reads_request,
            decisions: crate::authz::DecisionCache::default(),
        }
    }

    /// The same entry with the key's tags and alias names.
    pub fn with_tags_and_aliases(mut self, tags: Vec<Tag>, aliases: Vec<String>) -> Self {
        self.tags = tags;
        self.aliases = aliases;
        self
    }

    /// The material that new ciphertext uses.
    pub fn current(&self) -> Option<&KeyHandle> {
        self.material(self.record.current_material)
    }

    /// A material by id (older materials stay available for Decrypt).
    pub fn material(&self, id: MaterialId) -> Option<&KeyHandle> {
        self.materials.get(&id).map(Arc::as_ref)
    }
}

type AliasKey = (AccountId, Region, AliasName);

/// How long a cached key, alias, credential or identity policy is trusted before it is read
/// again from the store: the bound on how stale a change this node did not hear of (its
/// notification lost, or made directly in a shared database) can be here.
pub const DEFAULT_TTL_MILLIS: i64 = 30_000;

/// Bounded maps from key id to cached key and from alias to key id, each entry with an expiry.
pub struct KeyCache {
    keys: RwLock<HashMap<KeyId, (Arc<CachedKey>, Timestamp)>>,
    aliases: RwLock<HashMap<AliasKey, (KeyId, Timestamp)>>,
    capacity: usize,
    ttl_millis: std::sync::atomic::AtomicI64,
    /// Bumped before every mutation and again after it committed; a loader that read the store
    /// before a bump must not cache what it read, or it could install the state from before a
    /// change that has since committed.
    epoch: std::sync::atomic::AtomicU64,
}

fn bounded_insert<K: std::hash::Hash + Eq + Clone, V>(map: &mut HashMap<K, V>, capacity: usize, k: K, v: V) {
    if map.len() >= capacity
        && !map.contains_key(&k)
        && let Some(victim) = map.keys().next().cloned()
    {
        map.remove(&victim);
    }
    map.insert(k, v);
}

impl KeyCache {
    /// A cache holding at most `capacity` keys (and as many aliases).
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: RwLock::default(),
            aliases: RwLock::default(),
            capacity: capacity.max(1),
            ttl_millis: std::sync::atomic::AtomicI64::new(DEFAULT_TTL_MILLIS),
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Sets how long entries are trusted.
    pub fn set_ttl_millis(&self, ttl: i64) {
        self.ttl_millis.store(ttl.max(0), std::sync::atomic::Ordering::Relaxed);
    }

    fn expiry(&self, now: Timestamp) -> Timestamp {
        now.plus_millis(self.ttl_millis.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The current mutation epoch; pass it to [`KeyCache::put_key_if_current`] after loading.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets a key, before it is changed in the store and again once the change committed
    /// (see [`crate::invalidation`]): a loader that read the store before the commit then
    /// caches nothing.
    pub fn invalidate_key(&self, id: KeyId) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
    }

    /// Forgets an alias before it is changed in the store.
    pub fn invalidate_alias(&self, account: &AccountId, region: &Region, name: &AliasName) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.forget_alias(account, region, name);
    }

    /// Forgets every key and alias (changes may have been missed).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.aliases.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// Caches a key loaded from the store, unless something changed since `epoch` was read.
    pub fn put_key_if_current(&self, key: Arc<CachedKey>, epoch: u64, now: Timestamp) {
        let mut map = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.epoch() == epoch {
            bounded_insert(&mut map, self.capacity, key.record.key_id, (key, self.expiry(now)));
        }
    }

    /// Caches an alias resolved from the store, unless something changed since `epoch`.
    pub fn put_alias_if_current(
        &self,
        account: &AccountId,
        region: &Region,
        name: &AliasName,
        target: KeyId,
        epoch: u64,
        now: Timestamp,
    ) {
        let mut map = self.aliases.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.epoch() == epoch {
            let entry = (target, self.expiry(now));
            bounded_insert(&mut map, self.capacity, (account.clone(), region.clone(), name.clone()), entry);
        }
    }

    /// A cached key that has not expired at `now`.
    pub fn key(&self, id: KeyId, now: Timestamp) -> Option<Arc<CachedKey>> {
        let map = self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&id).filter(|(_, expires)| now < *expires).map(|(k, _)| Arc::clone(k))
    }

    /// Caches (or replaces) a key.
    pub fn put_key(&self, key: Arc<CachedKey>, now: Timestamp) {
        let mut map = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        bounded_insert(&mut map, self.capacity, key.record.key_id, (key, self.expiry(now)));
    }

    /// The key an alias points to, if cached and not expired at `now`.
    pub fn alias(&self, account: &AccountId, region: &Region, name: &AliasName, now: Timestamp) -> Option<KeyId> {
        let key = (account.clone(), region.clone(), name.clone());
        let map = self.aliases.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&key).filter(|(_, expires)| now < *expires).map(|(id, _)| *id)
    }

    /// Forgets an alias.
    fn forget_alias(&self, account: &AccountId, region: &Region, name: &AliasName) {
        let key = (account.clone(), region.clone(), name.clone());
        self.aliases.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&key);
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let mut m = HashMap::new();
        for i in 0..10 {
            bounded_insert(&mut m, 3, i, i);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&9), Some(&9));
    }
}
