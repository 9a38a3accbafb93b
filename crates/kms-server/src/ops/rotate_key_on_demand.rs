//! RotateKeyOnDemand: new key material now (at most 25 times per key). The rotation completes
//! within the request: the new material is stored, wrapped, with the key's new record.

use kms_api::Operation;
use kms_api::dto::{KeyIdRequest, KeyIdResponse};
use kms_core::ids::MaterialId;
use kms_core::key::RotationKind;
use kms_crypto::{KeySecret, random_array};
use kms_store::{Invalidation, StoreError};

use super::validate::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// How many times a rotation is retried when another writer changed the key meanwhile.
const ATTEMPTS: usize = 5;

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: KeyIdRequest,
) -> Result<KeyIdResponse, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::RotateKeyOnDemand.action(), RequestKeys::none()).await?;
    let id = key.record.key_id;
    for _ in 0..ATTEMPTS {
        let current = svc.store.key(id).await?.ok_or(StoreError::NotFound)?;
        let material_id = MaterialId::from_bytes(random_array(svc.rng.as_ref()));
        let next = current.rotate(svc.clock.now(), material_id, RotationKind::OnDemand)?;
        let material = KeySecret::generate(next.key_spec, svc.rng.as_ref()).map_err(ServiceError::Crypto)?;
        let wrapped = svc.wrap_material(&next, &material, Some(RotationKind::OnDemand))?;
        let response = KeyIdResponse { key_id: next.arn_string() };
        let audit = svc.control_event_for(ctx, &response);
        match svc.committing(&[Invalidation::Key(id)], svc.store.rotate_key(&next, &wrapped, &audit)).await {
            Ok(()) => {
                audit.committed();
                return Ok(response);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Conflict.into())
}
