//! The scheduler: performs automatic rotations, scheduled deletions and expiries of imported key
//! material when they fall due by the injected clock. Each action is one store transaction (the new record with its material,
//! or the removal of the key and everything hanging off it, each with its audit record), so an
//! interrupted action either happened completely or not at all, and a restart picks up whatever
//! is still due.

use std::sync::Arc;
use std::time::Duration;

use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{KeyRecord, KeyState, RotationKind};
use kms_crypto::{KeySecret, random_array};
use serde_json::json;
use tracing::{error, info};

use kms_store::KeyUpdate;

use crate::commit::Change;
use crate::error::ServiceError;
use crate::ops::multi_region::{related_keys, synchronized, with_set};
use crate::service::Service;

/// How many due keys one pass takes from the store at a time.
const BATCH: usize = 100;

impl Service {
    /// Performs every rotation and deletion due now; returns how many actions were taken.
    ///
    /// # Errors
    /// A store or root-key failure (the remaining work is picked up by the next pass).
    pub async fn run_due_work(&self) -> Result<usize, ServiceError> {
        let now = self.clock.now();
        let mut done = 0;
        loop {
            let due = self.store.due_keys(now, BATCH).await?;
            let mut progressed = false;
            for id in &due {
                if self.perform_due(*id).await? {
                    done += 1;
                    progressed = true;
                }
            }
            // Keys whose due work cannot run now (a disabled key's rotation waits until it is
            // enabled again) stay due; stop when a pass changes nothing.
            if due.len() < BATCH || !progressed {
                let pruned = self.prune_audit_trail().await?;
                if pruned > 0 {
                    info!(records = pruned, "audit records past their retention period removed");
                }
                *self.scheduler_pass.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
                return Ok(done);
            }
        }
    }

    async fn perform_due(&self, id: KeyId) -> Result<bool, ServiceError> {
        let now = self.clock.now();
        let Some(key) = self.store.key(id).await? else { return Ok(false) };
        let arn = key.arn_string();
        if let Some(deletion) = key.deletion
            && key.state == KeyState::PendingDeletion
            && deletion.date <= now
        {
            let aliases = self.store.list_aliases(&key.account, &key.region, Some(id), None, usize::MAX >> 1).await?;
            let event = crate::audit::background_event(
                crate::audit::new_event_id(self.rng.as_ref()),
                now,
                "DeleteKey",
                &arn,
                json!({"keyState": "PendingDeletion", "deletionDate": deletion.date.rfc3339()}),
            );
            // The other keys of a multi-Region set forget this one (a primary waiting for its
            // replicas starts its own waiting period when the last goes).
            let updates = match &key.multi_region_set {
                Some(set) => {
                    let mut set = set.clone();
                    set.replicas.retain(|r| *r != key.region);
                    with_set(&related_keys(self, &key).await?, &set, now)
                }
                None => Vec::new(),
            };
            let change = Change::DeleteKey { key_id: id, revision: key.revision, aliases, updates };
            let deleted = self.commit_unattended(change, event).await?;
            if deleted {
                info!(key = %arn, "deleted a key at the end of its waiting period");
            }
            return Ok(deleted);
        }
        if let Some((next, expired)) = key.expire_imported(now) {
            let ids: Vec<String> = expired.iter().map(ToString::to_string).collect();
            let event = crate::audit::background_event(
                crate::audit::new_event_id(self.rng.as_ref()),
                now,
                "DeleteExpiredKeyMaterial",
                &arn,
                json!({"keyMaterialIds": ids, "keyState": next.state.as_str()}),
            );
            let change = Change::UpdateKeys(vec![KeyUpdate { key: next, add: Vec::new(), remove: expired }]);
            let deleted = self.commit_unattended(change, event).await?;
            if deleted {
                info!(key = %arn, "deleted imported key material at its expiry");
            }
            return Ok(deleted);
        }
        // A multi-Region replica rotates with its primary.
        let Some(rotation) = key.rotation.filter(|r| r.next <= now && !key.is_replica()) else { return Ok(false) };
        let material_id = MaterialId::from_bytes(random_array(self.rng.as_ref()));
        let Ok(next) = key.rotate(now, material_id, RotationKind::Automatic) else { return Ok(false) };
        let material = KeySecret::generate(next.key_spec, self.rng.as_ref()).map_err(ServiceError::Crypto)?;
        let wrap =
            |k: &KeyRecord| Ok(vec![self.wrap_material(k, material_id, &material, Some(RotationKind::Automatic))?]);
        let related = related_keys(self, &key).await?;
        let event = crate::audit::background_event(
            crate::audit::new_event_id(self.rng.as_ref()),
            now,
            "RotateKey",
            &arn,
            json!({"keyMaterialId": material_id.to_string(), "rotationPeriodInDays": rotation.period_days}),
        );
        // Someone changed the key meanwhile: not rotated; the next pass sees the new state.
        let change = Change::from(synchronized(next.clone(), wrap(&next)?, &related, wrap)?);
        let rotated = self.commit_unattended(change, event).await?;
        if rotated {
            info!(key = %arn, "rotated key material on schedule");
        }
        Ok(rotated)
    }
}

/// Runs the scheduler every `interval` until the service is dropped — on one node at a time:
/// with several nodes on one database, the node holding the scheduler's leadership runs it, and
/// another takes over when that node dies.
pub fn spawn(service: &Arc<Service>, interval: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(service);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leadership: Option<kms_store::Leadership> = None;
        loop {
            tick.tick().await;
            let Some(service) = weak.upgrade() else { return };
            if !leadership.as_ref().is_some_and(kms_store::Leadership::is_held) {
                leadership = service.store.try_lead("scheduler").await.unwrap_or_else(|e| {
                    error!("cannot contend for the scheduler: {e}");
                    None
                });
                if leadership.is_some() {
                    info!("this node now runs the scheduler");
                }
            }
            if leadership.is_none() {
                continue;
            }
            if let Err(e) = service.run_due_work().await {
                error!("scheduler pass failed, will retry: {e}");
            }
        }
    })
}
