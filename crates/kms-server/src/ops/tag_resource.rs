//! TagResource: adds or overwrites tags, at most 50 per key.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::TagResourceRequest;

use super::create_key::tags;
use super::key_access::managed_key;
use super::members::required;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: TagResourceRequest,
) -> Result<Empty, ServiceError> {
    let tags = tags(required("tags", req.tags)?)?;
    let mut request = RequestKeys::none().with_all("aws:TagKeys", tags.iter().map(|t| t.key.clone()).collect());
    for t in &tags {
        request = request.with(&format!("aws:RequestTag/{}", t.key), t.value.clone());
    }
    let key = managed_key(svc, ctx, req.key_id, Operation::TagResource.action(), request).await?;
    key.record.ensure_manageable()?;
    svc.commit(ctx, Change::PutTags { key_id: key.record.key_id, tags }, Empty {}).await
}
