//! RotateKeyOnDemand: new key material now (at most 25 times per key). The rotation completes
//! within the request: the new material is stored, wrapped, with the key's new record. A key of
//! imported material rotates to the material imported for it (ImportType NEW_KEY_MATERIAL).

use kms_api::Operation;
use kms_api::model::{RotateKeyOnDemandRequest, RotateKeyOnDemandResponse};
use kms_core::ids::MaterialId;
use kms_core::key::{KeyRecord, Origin, RotationKind};
use kms_crypto::{KeySecret, random_array};

use super::key_access::managed_key;
use super::multi_region::{related_keys, synchronized};
use crate::authz::RequestKeys;
use crate::commit::KeyChange;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: RotateKeyOnDemandRequest,
) -> Result<RotateKeyOnDemandResponse, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::RotateKeyOnDemand.action(), RequestKeys::none()).await?;
    // A multi-Region key rotates through its primary, which carries the new material to its
    // replicas in the same transaction.
    key.record.ensure_not_replica("RotateKeyOnDemand")?;
    let related = related_keys(svc, &key.record).await?;
    // Imported material: the material imported for the next rotation becomes current.
    if key.record.origin == Origin::External {
        let rotate = |current: &KeyRecord| {
            synchronized(current.rotate_to_imported(svc.clock.now())?, Vec::new(), &related, |_| Ok(Vec::new()))
        };
        return svc
            .commit_key(ctx, key.record.key_id, rotate, |next| RotateKeyOnDemandResponse {
                key_id: Some(next.arn_string()),
            })
            .await;
    }
    // Fresh material for every attempt: a retry rotates from the newer record.
    let rotate = |current: &KeyRecord| -> Result<KeyChange, ServiceError> {
        let material_id = MaterialId::from_bytes(random_array(svc.rng.as_ref()));
        let next = current.rotate(svc.clock.now(), material_id, RotationKind::OnDemand)?;
        let material = KeySecret::generate(next.key_spec, svc.rng.as_ref()).map_err(ServiceError::Crypto)?;
        let wrap =
            |k: &KeyRecord| Ok(vec![svc.wrap_material(k, material_id, &material, Some(RotationKind::OnDemand))?]);
        synchronized(next.clone(), wrap(&next)?, &related, wrap)
    };
    svc.commit_key(ctx, key.record.key_id, rotate, |next| RotateKeyOnDemandResponse { key_id: Some(next.arn_string()) })
        .await
}
