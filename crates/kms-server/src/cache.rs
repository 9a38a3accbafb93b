//! The key cache: key records with their material unwrapped and ready to use, so that
//! Encrypt, Decrypt and GenerateDataKey on a warm key touch no database.
//!
//! Bounded: past its capacity an arbitrary entry is evicted (its material is zeroized when the
//! last request using it finishes). A mutation on this node replaces the entry at once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
use kms_core::key::KeyRecord;
use kms_crypto::SymmetricKey;

/// A key as the hot path uses it.
#[derive(Debug)]
pub struct CachedKey {
    /// The key's record.
    pub record: KeyRecord,
    materials: HashMap<MaterialId, Arc<SymmetricKey>>,
}

impl CachedKey {
    /// Assembles a cache entry.
    pub fn new(record: KeyRecord, materials: HashMap<MaterialId, Arc<SymmetricKey>>) -> Self {
        Self { record, materials }
    }

    /// The material that new ciphertext uses.
    pub fn current(&self) -> Option<&SymmetricKey> {
        self.material(self.record.current_material)
    }

    /// A material by id (older materials stay available for Decrypt).
    pub fn material(&self, id: MaterialId) -> Option<&SymmetricKey> {
        self.materials.get(&id).map(Arc::as_ref)
    }

    /// The same materials under a changed record.
    pub fn with_record(&self, record: KeyRecord) -> Self {
        Self { record, materials: self.materials.clone() }
    }
}

type AliasKey = (AccountId, Region, AliasName);

/// Bounded maps from key id to cached key and from alias to key id.
pub struct KeyCache {
    keys: RwLock<HashMap<KeyId, Arc<CachedKey>>>,
    aliases: RwLock<HashMap<AliasKey, KeyId>>,
    capacity: usize,
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
        Self { keys: RwLock::default(), aliases: RwLock::default(), capacity: capacity.max(1) }
    }

    /// A cached key.
    pub fn key(&self, id: KeyId) -> Option<Arc<CachedKey>> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id).cloned()
    }

    /// Caches (or replaces) a key.
    pub fn put_key(&self, key: Arc<CachedKey>) {
        let mut map = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        bounded_insert(&mut map, self.capacity, key.record.key_id, key);
    }

    /// Replaces the record of a cached key, keeping its materials; drops the entry if the
    /// materials are not cached (the next use reloads it).
    pub fn update_record(&self, record: &KeyRecord) {
        let mut map = self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = map.get(&record.key_id).cloned() {
            map.insert(record.key_id, Arc::new(entry.with_record(record.clone())));
        }
    }

    /// The key an alias points to, if cached.
    pub fn alias(&self, account: &AccountId, region: &Region, name: &AliasName) -> Option<KeyId> {
        let key = (account.clone(), region.clone(), name.clone());
        self.aliases.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).copied()
    }

    /// Caches an alias.
    pub fn put_alias(&self, account: &AccountId, region: &Region, name: &AliasName, target: KeyId) {
        let mut map = self.aliases.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        bounded_insert(&mut map, self.capacity, (account.clone(), region.clone(), name.clone()), target);
    }

    /// Forgets an alias (after it changed or was deleted).
    pub fn forget_alias(&self, account: &AccountId, region: &Region, name: &AliasName) {
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
