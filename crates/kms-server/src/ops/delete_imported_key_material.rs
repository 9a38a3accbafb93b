//! DeleteImportedKeyMaterial: removes imported material (the current material unless a
//! `KeyMaterialId` names another); without its current material the key is `PendingImport`
//! until the same material is imported again. The key's metadata stays.

use kms_api::Operation;
use kms_api::model::{DeleteImportedKeyMaterialRequest, DeleteImportedKeyMaterialResponse};
use kms_core::KmsError;
use kms_core::error::ImportError;
use kms_core::ids::MaterialId;
use kms_core::key::KeyRecord;

use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::commit::KeyChange;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: DeleteImportedKeyMaterialRequest,
) -> Result<DeleteImportedKeyMaterialResponse, ServiceError> {
    let key =
        managed_key(svc, ctx, req.key_id, Operation::DeleteImportedKeyMaterial.action(), RequestKeys::none()).await?;
    let arn = key.record.arn();
    let material = match req.key_material_id {
        // The model's pattern checked the form: 64 hex digits.
        Some(id) => Some(
            MaterialId::try_from(id.clone())
                .map_err(|_| KmsError::Import(ImportError::UnknownMaterial { arn: arn.clone(), material: id }))?,
        ),
        None => None,
    };
    key.record.delete_imported(material)?;
    let edit = |current: &KeyRecord| -> Result<KeyChange, ServiceError> {
        let (next, gone) = current.delete_imported(material)?;
        Ok(KeyChange::materials(next, Vec::new(), vec![gone]))
    };
    let deleted = material.unwrap_or(key.record.current_material);
    svc.commit_key(ctx, key.record.key_id, edit, |next| DeleteImportedKeyMaterialResponse {
        key_id: Some(next.arn_string()),
        key_material_id: Some(deleted.to_string()),
    })
    .await
}
