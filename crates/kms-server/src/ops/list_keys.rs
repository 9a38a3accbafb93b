//! ListKeys: the caller's keys in the request's region, paginated.

use kms_api::Operation;
use kms_api::model::{KeyListEntry, ListKeysRequest, ListKeysResponse};
use kms_core::KmsError;
use kms_core::ids::KeyId;

use super::members::{limit, marker, page};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListKeysRequest,
) -> Result<ListKeysResponse, ServiceError> {
    let limit = limit(req.limit, 1000, 100)?;
    // Our marker is the last key id of the previous page, in the form the store orders by.
    let after = marker(req.marker)?.map(|m| KeyId::parse_storage(&m).ok_or(KmsError::InvalidMarker)).transpose()?;
    svc.authorize_iam(ctx, Operation::ListKeys.action(), "*", RequestKeys::none()).await?;
    let ids = svc.store.list_keys(&ctx.caller.principal.account, &ctx.region, after, limit + 1).await?;
    let (ids, next_marker, truncated) = page(ids, limit, KeyId::storage);
    let keys = ids
        .into_iter()
        .map(|id| KeyListEntry { key_id: Some(id.to_string()), key_arn: Some(ctx.key_arn(id).to_string()) })
        .collect();
    Ok(ListKeysResponse { keys: Some(keys), next_marker, truncated: Some(truncated) })
}
