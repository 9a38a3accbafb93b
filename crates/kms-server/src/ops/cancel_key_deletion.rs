//! CancelKeyDeletion: back to Disabled, as AWS leaves a rescued key.

use kms_api::Operation;
use kms_api::dto::KeyIdResponse;
use kms_api::model::CancelKeyDeletionRequest;

use super::validate::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: CancelKeyDeletionRequest,
) -> Result<KeyIdResponse, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::CancelKeyDeletion.action(), RequestKeys::none()).await?;
    svc.commit_key(ctx, key.record.key_id, |k| k.cancel_deletion(), |next| KeyIdResponse { key_id: next.arn_string() })
        .await
}
