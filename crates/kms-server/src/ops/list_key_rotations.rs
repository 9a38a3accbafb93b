//! ListKeyRotations: the key's completed rotations, oldest first; with `IncludeKeyMaterial`
//! `ALL_KEY_MATERIAL`, every material of the key (for imported material, with its import state,
//! expiration and description).

use kms_api::Operation;
use kms_api::model::{ListKeyRotationsRequest, ListKeyRotationsResponse, RotationsListEntry};
use kms_core::ids::MaterialId;
use kms_core::key::{Origin, RotationKind};

use super::key_access::managed_key;
use super::members::{limit, marker, page};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListKeyRotationsRequest,
) -> Result<ListKeyRotationsResponse, ServiceError> {
    let limit = limit(req.limit, 1000, 100)?;
    // Our marker is the material id of the last rotation of the previous page.
    let after = marker(req.marker)?;
    let key = managed_key(svc, ctx, req.key_id, Operation::ListKeyRotations.action(), RequestKeys::none()).await?;
    let all = req.include_key_material.as_deref() == Some("ALL_KEY_MATERIAL");
    let record = &key.record;
    let arn = record.arn_string();
    let entry = |id: MaterialId| RotationsListEntry {
        key_id: Some(arn.clone()),
        key_material_id: Some(id.to_string()),
        key_material_state: Some(record.material_state(id).to_owned()),
        ..RotationsListEntry::default()
    };
    // (material id, entry): the marker is the material id of the last entry of the previous page.
    let mut rotations: Vec<(MaterialId, RotationsListEntry)> = if record.origin == Origin::External {
        record
            .imported
            .iter()
            .filter(|m| all || m.rotated_in)
            .map(|m| {
                let rotated = m.current_since.filter(|_| m.rotated_in);
                (
                    m.id,
                    RotationsListEntry {
                        key_material_description: m.description.clone(),
                        import_state: Some(m.import_state().to_owned()),
                        expiration_model: Some(m.expiration_model().as_str().to_owned()),
                        valid_to: m.valid_to.map(kms_core::Timestamp::epoch_seconds_f64),
                        rotation_date: rotated.map(kms_core::Timestamp::epoch_seconds_f64),
                        rotation_type: rotated.map(|_| RotationKind::OnDemand.as_str().to_owned()),
                        ..entry(m.id)
                    },
                )
            })
            .collect()
    } else {
        svc.store
            .materials(record.key_id)
            .await?
            .into_iter()
            .filter(|m| all || m.rotation.is_some())
            .map(|m| {
                (
                    m.material_id,
                    RotationsListEntry {
                        rotation_date: m.rotation.map(|_| m.created.epoch_seconds_f64()),
                        rotation_type: m.rotation.map(|r| r.as_str().to_owned()),
                        ..entry(m.material_id)
                    },
                )
            })
            .collect()
    };
    if let Some(after) = after {
        match rotations.iter().position(|(id, _)| id.to_string() == after) {
            Some(at) => {
                rotations.drain(..=at);
            }
            None => return Err(kms_core::KmsError::InvalidMarker.into()),
        }
    }
    rotations.truncate(limit + 1);
    let (rotations, next_marker, truncated) = page(rotations, limit, |(id, _)| id.to_string());
    let rotations = rotations.into_iter().map(|(_, entry)| entry).collect();
    Ok(ListKeyRotationsResponse { rotations: Some(rotations), next_marker, truncated: Some(truncated) })
}
