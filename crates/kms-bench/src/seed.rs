//! Seeds a data directory with many keys straight through the store (no HTTP), for the
//! large-keyring memory and start-up measurement. Keys are built the way CreateKey builds them:
//! fresh material wrapped by the root key with AAD = key ARN ‖ material id, the default key
//! policy. Writes go out from many tasks at once so the store's group commit batches them.

use std::path::Path;
use std::sync::Arc;

use kms_core::ids::{KeyId, MaterialId, Region};
use kms_core::key::KeyRequest;
use kms_core::policy::KeyPolicy;
use kms_crypto::{KeySecret, SystemRng, random_array};
use kms_server::ServerConfig;
use kms_store::MaterialRecord;

/// How many creations are in flight at once.
const PARALLEL: usize = 256;

/// Creates `count` keys in `data_dir` (initializing it like a first start when needed) and
/// writes their ids, one a line, to `DATA_DIR/bench-key-ids`. Returns the ids.
///
/// # Errors
/// A description of what failed.
pub async fn seed(data_dir: &Path, count: usize, region: &str) -> Result<Vec<String>, String> {
    let config = ServerConfig::new(data_dir.to_path_buf());
    let prepared = kms_server::bootstrap::prepare(&config, &SystemRng).await.map_err(|e| e.to_string())?;
    let region = Region::parse(region).map_err(|e| e.to_string())?;
    let policy = Arc::new(KeyPolicy::default_for(&prepared.account).as_str().to_owned());
    let store = Arc::clone(&prepared.store);
    let root = Arc::clone(&prepared.root);
    let now = config.clock.now();
    let mut ids = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    for i in 0..count {
        let record = KeyRequest::symmetric_default().new_key(
            KeyId::from_random_bytes(random_array(&SystemRng)),
            prepared.account.clone(),
            region.clone(),
            now,
            format!("ferrokms-bench seed {i}"),
            MaterialId::from_bytes(random_array(&SystemRng)),
        );
        let material = KeySecret::generate(record.key_spec, &SystemRng).map_err(|e| e.to_string())?;
        let aad = kms_server::service::material_aad(&record.arn(), record.current_material);
        let wrapped = material.wrap(root.as_ref(), &aad).map_err(|e| e.to_string())?;
        let material = MaterialRecord {
            key_id: record.key_id,
            material_id: record.current_material,
            wrapped,
            created: now,
            rotation: None,
        };
        ids.push(record.key_id.to_string());
        let (store, policy) = (Arc::clone(&store), Arc::clone(&policy));
        pending.spawn(async move {
            store.create_key(&record, std::slice::from_ref(&material), &policy, &[], &[], &[]).await
        });
        while pending.len() >= PARALLEL {
            if let Some(done) = pending.join_next().await {
                done.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            }
        }
    }
    while let Some(done) = pending.join_next().await {
        done.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    std::fs::write(data_dir.join("bench-key-ids"), ids.join("\n")).map_err(|e| e.to_string())?;
    Ok(ids)
}
