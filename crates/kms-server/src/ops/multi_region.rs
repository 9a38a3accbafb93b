//! What the operations on multi-Region keys share: reading a key's related keys (the same key
//! in its other regions) from the store, and carrying a change of the primary's synchronized
//! properties (material, rotation, the set's regions) to them in the same transaction.

use kms_core::Timestamp;
use kms_core::key::{KeyRecord, MultiRegionSet};
use kms_store::{KeyUpdate, MaterialRecord, StoreError};

use crate::commit::KeyChange;
use crate::error::ServiceError;
use crate::service::Service;

/// The key's related multi-Region keys as stored now (none for a single-Region key).
///
/// # Errors
/// Store failures; `KMSInternalException` if a related key the set names is missing.
pub(crate) async fn related_keys(svc: &Service, key: &KeyRecord) -> Result<Vec<KeyRecord>, ServiceError> {
    let mut out = Vec::new();
    for region in key.related_regions() {
        let id = key.key_id.in_region(&region);
        out.push(svc.store.key(id).await?.ok_or(StoreError::NotFound)?);
    }
    Ok(out)
}

/// Every key of a set given its new regions `set`, as updates.
pub(crate) fn with_set(keys: &[KeyRecord], set: &MultiRegionSet, now: Timestamp) -> Vec<KeyUpdate> {
    keys.iter().map(|k| KeyUpdate::record(k.with_multi_region_set(set.clone(), now))).collect()
}

/// A key's change of synchronized properties (`next`, with `add` its new materials) carried to
/// its related keys `related`, each with the materials `add_for` makes for it: one transaction.
pub(crate) fn synchronized(
    next: KeyRecord,
    add: Vec<MaterialRecord>,
    related: &[KeyRecord],
    add_for: impl Fn(&KeyRecord) -> Result<Vec<MaterialRecord>, ServiceError>,
) -> Result<KeyChange, ServiceError> {
    let others = related
        .iter()
        .map(|r| {
            let key = r.synchronized_with(&next);
            Ok(KeyUpdate { add: add_for(&key)?, key, remove: Vec::new() })
        })
        .collect::<Result<_, ServiceError>>()?;
    Ok(KeyChange::Keys { key: KeyUpdate { key: next, add, remove: Vec::new() }, others })
}
