//! A key's `KeyMetadata`, as DescribeKey, CreateKey and ReplicateKey return it.

use kms_core::ids::{Region, render_key_arn};
use kms_core::key::{KeyRecord, KeyState};

use crate::model::{KeyMetadata, MultiRegionConfiguration, MultiRegionKey};

/// The metadata AWS reports for `k`.
pub fn key_metadata(k: &KeyRecord) -> KeyMetadata {
    /// A list member, absent when empty (as AWS leaves out the algorithms a key has none of).
    fn names<T>(items: &[T], name: fn(&T) -> &'static str) -> Option<Vec<String>> {
        (!items.is_empty()).then(|| items.iter().map(|i| name(i).to_owned()).collect())
    }
    KeyMetadata {
        aws_account_id: Some(k.account.to_string()),
        key_id: Some(k.key_id.to_string()),
        arn: Some(k.arn().to_string()),
        creation_date: Some(k.created.epoch_seconds_f64()),
        enabled: Some(k.enabled()),
        description: Some(k.description.clone()),
        key_usage: Some(k.key_usage.as_str().to_owned()),
        key_state: Some(k.state.as_str().to_owned()),
        // A primary waiting for its replicas' deletion has a window but no date yet.
        deletion_date: k.deletion.filter(|_| k.state == KeyState::PendingDeletion).map(|d| d.date.epoch_seconds_f64()),
        pending_deletion_window_in_days: k
            .deletion
            .filter(|_| k.state == KeyState::PendingReplicaDeletion)
            .map(|d| i64::from(d.window_days)),
        multi_region_configuration: k.multi_region_set.as_ref().map(|set| {
            let key = |region: &Region| MultiRegionKey {
                arn: Some(render_key_arn(region, &k.account, k.key_id.in_region(region))),
                region: Some(region.to_string()),
            };
            MultiRegionConfiguration {
                multi_region_key_type: k.multi_region_key_type().map(str::to_owned),
                primary_key: Some(key(&set.primary)),
                replica_keys: Some(set.replicas.iter().map(key).collect()),
            }
        }),
        origin: Some(k.origin.as_str().to_owned()),
        key_manager: Some(k.key_manager.as_str().to_owned()),
        customer_master_key_spec: Some(k.key_spec.as_str().to_owned()),
        key_spec: Some(k.key_spec.as_str().to_owned()),
        encryption_algorithms: names(k.encryption_algorithms(), |a| a.as_str()),
        signing_algorithms: names(k.signing_algorithms(), |a| a.as_str()),
        mac_algorithms: names(k.mac_algorithms(), |a| a.as_str()),
        key_agreement_algorithms: names(k.key_agreement_algorithms(), |a| a.as_str()),
        multi_region: Some(k.multi_region),
        // AWS reports the current key material only for symmetric encryption keys (and for
        // imported material, once there is some).
        current_key_material_id: (k.key_spec == kms_core::key::KeySpec::SymmetricDefault
            && (k.origin != kms_core::key::Origin::External || !k.imported.is_empty()))
        .then(|| k.current_material.to_string()),
        expiration_model: k.expiration_model().map(|m| m.as_str().to_owned()),
        valid_to: k.material_expires.map(kms_core::Timestamp::epoch_seconds_f64),
        ..KeyMetadata::default()
    }
}
