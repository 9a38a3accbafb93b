//! ScheduleKeyDeletion: the key becomes PendingDeletion for a 7–30 day window.

use kms_api::Operation;
use kms_api::model::{ScheduleKeyDeletionRequest, ScheduleKeyDeletionResponse};
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::key::{DELETION_WINDOW_DAYS, KeyState};

use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ScheduleKeyDeletionRequest,
) -> Result<ScheduleKeyDeletionResponse, ServiceError> {
    let (min, max, default) = DELETION_WINDOW_DAYS;
    let days = req.pending_window_in_days.unwrap_or(default);
    // The wire model allows 1–365; the service then insists on 7–30.
    if !(min..=max).contains(&days) {
        return Err(KmsError::InvalidRequest(RequestRule::PendingWindow(days)).into());
    }
    let days = u16::try_from(days).map_err(|_| KmsError::InvalidRequest(RequestRule::PendingWindow(days)))?;
    let key = managed_key(svc, ctx, req.key_id, Operation::ScheduleKeyDeletion.action(), RequestKeys::none()).await?;
    let now = svc.clock.now();
    svc.commit_key(
        ctx,
        key.record.key_id,
        |k| k.schedule_deletion(now, days),
        |next| ScheduleKeyDeletionResponse {
            key_id: Some(next.arn_string()),
            // A primary key that waits for its replicas' deletion has no date yet.
            deletion_date: next
                .deletion
                .filter(|_| next.state == KeyState::PendingDeletion)
                .map(|d| d.date.epoch_seconds_f64()),
            key_state: Some(next.state.as_str().to_owned()),
            pending_window_in_days: Some(i64::from(days)),
        },
    )
    .await
}
