//! UpdateKeyDescription.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::UpdateKeyDescriptionRequest;

use super::key_access::managed_key;
use super::members::required;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: UpdateKeyDescriptionRequest,
) -> Result<Empty, ServiceError> {
    let description = required("description", req.description)?;
    let key = managed_key(svc, ctx, req.key_id, Operation::UpdateKeyDescription.action(), RequestKeys::none()).await?;
    svc.commit_key(ctx, key.record.key_id, |k| k.describe(description.clone()), |_| Empty {}).await
}
