//! CancelKeyDeletion: back to Disabled, as AWS leaves a rescued key.

use kms_api::Operation;
use kms_api::model::{CancelKeyDeletionRequest, CancelKeyDeletionResponse};

use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: CancelKeyDeletionRequest,
) -> Result<CancelKeyDeletionResponse, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::CancelKeyDeletion.action(), RequestKeys::none()).await?;
    svc.commit_key(
        ctx,
        key.record.key_id,
        |k| k.cancel_deletion(),
        |next| CancelKeyDeletionResponse { key_id: Some(next.arn_string()) },
    )
    .await
}
