//! GetKeyRotationStatus.

use kms_api::Operation;
use kms_api::model::{GetKeyRotationStatusRequest, GetKeyRotationStatusResponse};

use super::key_access::managed_key_or_arn;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GetKeyRotationStatusRequest,
) -> Result<GetKeyRotationStatusResponse, ServiceError> {
    let key =
        managed_key_or_arn(svc, ctx, req.key_id, Operation::GetKeyRotationStatus.action(), RequestKeys::none()).await?;
    let rotation = key.record.rotation;
    Ok(GetKeyRotationStatusResponse {
        key_rotation_enabled: Some(rotation.is_some()),
        key_id: Some(key.record.arn_string()),
        rotation_period_in_days: rotation.map(|r| i64::from(r.period_days)),
        next_rotation_date: rotation.map(|r| r.next.epoch_seconds_f64()),
        // On-demand rotations complete within the request, so none is ever in progress.
        on_demand_rotation_start_date: None,
    })
}
