//! EnableKeyRotation: automatic rotation every 90–2560 days (default 365).

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::EnableKeyRotationRequest;
use kms_core::key::ROTATION_PERIOD_DAYS;

use kms_core::key::KeyRecord;

use super::key_access::managed_key;
use super::multi_region::{related_keys, synchronized};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: EnableKeyRotationRequest,
) -> Result<Empty, ServiceError> {
    let (min, max, default) = ROTATION_PERIOD_DAYS;
    let days = req.rotation_period_in_days.unwrap_or(default);
    // The model's range (the same as ours) keeps the value far inside u16; the default is in it.
    let days = u16::try_from(days.clamp(min, max)).unwrap_or(u16::MAX);
    let key = managed_key(svc, ctx, req.key_id, Operation::EnableKeyRotation.action(), RequestKeys::none()).await?;
    let now = svc.clock.now();
    // A multi-Region key's rotation is set on its primary and carried to its replicas.
    key.record.ensure_not_replica("EnableKeyRotation")?;
    let related = related_keys(svc, &key.record).await?;
    let edit = |k: &KeyRecord| synchronized(k.enable_rotation(now, days)?, Vec::new(), &related, |_| Ok(Vec::new()));
    svc.commit_key(ctx, key.record.key_id, edit, |_| Empty {}).await
}
