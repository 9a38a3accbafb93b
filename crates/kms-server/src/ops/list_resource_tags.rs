//! ListResourceTags.

use kms_api::Operation;
use kms_api::model::{ListResourceTagsRequest, ListResourceTagsResponse, Tag};

use super::key_access::managed_key;
use super::members::{limit, marker, page};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListResourceTagsRequest,
) -> Result<ListResourceTagsResponse, ServiceError> {
    let limit = limit(req.limit, 50, 50)?;
    // Our marker is the last tag key of the previous page; tags are listed in key order.
    let after = marker(req.marker)?;
    let key = managed_key(svc, ctx, req.key_id, Operation::ListResourceTags.action(), RequestKeys::none()).await?;
    let all = svc.store.tags(key.record.key_id).await?;
    let tags: Vec<_> =
        all.into_iter().filter(|t| after.as_deref().is_none_or(|a| t.key.as_str() > a)).take(limit + 1).collect();
    let (tags, next_marker, truncated) = page(tags, limit, |t| t.key.clone());
    let tags = tags.into_iter().map(|t| Tag { tag_key: Some(t.key), tag_value: Some(t.value) }).collect();
    Ok(ListResourceTagsResponse { tags: Some(tags), next_marker, truncated: Some(truncated) })
}
