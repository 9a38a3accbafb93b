//! DisableKeyRotation.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::DisableKeyRotationRequest;

use kms_core::key::KeyRecord;

use super::key_access::managed_key;
use super::multi_region::{related_keys, synchronized};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: DisableKeyRotationRequest,
) -> Result<Empty, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::DisableKeyRotation.action(), RequestKeys::none()).await?;
    // A multi-Region key's rotation is set on its primary and carried to its replicas.
    key.record.ensure_not_replica("DisableKeyRotation")?;
    let related = related_keys(svc, &key.record).await?;
    let edit = |k: &KeyRecord| synchronized(k.disable_rotation()?, Vec::new(), &related, |_| Ok(Vec::new()));
    svc.commit_key(ctx, key.record.key_id, edit, |_| Empty {}).await
}
