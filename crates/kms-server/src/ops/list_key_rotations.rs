//! ListKeyRotations: the key's completed rotations, oldest first.

use kms_api::Operation;
use kms_api::model::{ListKeyRotationsRequest, ListKeyRotationsResponse, RotationsListEntry};

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
    let arn = key.record.arn_string();
    let mut rotations: Vec<_> =
        svc.store.materials(key.record.key_id).await?.into_iter().filter(|m| m.rotation.is_some()).collect();
    if let Some(after) = after {
        match rotations.iter().position(|m| m.material_id.to_string() == after) {
            Some(at) => {
                rotations.drain(..=at);
            }
            None => return Err(kms_core::KmsError::InvalidMarker.into()),
        }
    }
    rotations.truncate(limit + 1);
    let (rotations, next_marker, truncated) = page(rotations, limit, |m| m.material_id.to_string());
    let rotations = rotations
        .into_iter()
        .map(|m| RotationsListEntry {
            key_id: Some(arn.clone()),
            key_material_id: Some(m.material_id.to_string()),
            rotation_date: Some(m.created.epoch_seconds_f64()),
            rotation_type: Some(m.rotation.map_or("AUTOMATIC", |r| r.as_str()).to_owned()),
            ..RotationsListEntry::default()
        })
        .collect();
    Ok(ListKeyRotationsResponse { rotations: Some(rotations), next_marker, truncated: Some(truncated) })
}
