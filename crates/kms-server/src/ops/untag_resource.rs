//! UntagResource.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::UntagResourceRequest;

use super::key_access::managed_key;
use super::members::required;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: UntagResourceRequest,
) -> Result<Empty, ServiceError> {
    let keys = required("tagKeys", req.tag_keys)?;
    let request = RequestKeys::none().with_all("aws:TagKeys", keys.clone());
    let key = managed_key(svc, ctx, req.key_id, Operation::UntagResource.action(), request).await?;
    key.record.ensure_manageable()?;
    svc.commit(ctx, Change::RemoveTags { key_id: key.record.key_id, tag_keys: keys }, Empty {}).await
}
