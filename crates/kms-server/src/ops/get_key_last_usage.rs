//! GetKeyLastUsage: the key's last successful cryptographic operation, answered from the audit
//! trail (so it trails the request path by at most the audit writer's linger interval).

use kms_api::Operation;
use kms_api::model::{GetKeyLastUsageRequest, GetKeyLastUsageResponse, KeyLastUsageData};

use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// The setting that records when usage tracking began (the first start).
pub const TRACKING_START_SETTING: &str = "usage_tracking_start";

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GetKeyLastUsageRequest,
) -> Result<GetKeyLastUsageResponse, ServiceError> {
    // Not a cross-account operation in AWS: another account's key ARN names nothing here.
    let key = managed_key(svc, ctx, req.key_id, Operation::GetKeyLastUsage.action(), RequestKeys::none()).await?;
    let arn = key.record.arn_string();
    let last = svc.store.last_key_usage(&arn).await?;
    let key_last_usage = last.and_then(|row| {
        let record: serde_json::Value = serde_json::from_str(&row.record).ok()?;
        Some(KeyLastUsageData {
            operation: Some(row.event_name),
            timestamp: Some(row.time.epoch_seconds_f64()),
            cloud_trail_event_id: Some(row.event_id),
            kms_request_id: Some(record.get("requestID")?.as_str()?.to_owned()),
        })
    });
    let started = svc
        .store
        .setting(TRACKING_START_SETTING)
        .await?
        .and_then(|s| s.parse::<i64>().ok())
        .map_or(key.record.created, kms_core::Timestamp::from_unix_millis);
    Ok(GetKeyLastUsageResponse {
        key_id: Some(arn),
        key_last_usage,
        tracking_start_date: Some(started.epoch_seconds_f64()),
        key_creation_date: Some(key.record.created.epoch_seconds_f64()),
    })
}
