//! ListResourceTags.

use kms_api::dto::{ListRequest, ListResourceTagsResponse, TagOut};

use super::validate::{limit, managed_key, marker};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListRequest,
) -> Result<ListResourceTagsResponse, ServiceError> {
    let limit = limit(req.limit, 50, 50)?;
    // Our marker is the last tag key of the previous page; tags are listed in key order.
    let after = marker(req.marker)?;
    let key = managed_key(svc, ctx, req.key_id, "kms:ListResourceTags", RequestKeys::none()).await?;
    let all = svc.store.tags(key.record.key_id).await?;
    let mut page: Vec<_> =
        all.into_iter().filter(|t| after.as_deref().is_none_or(|a| t.key.as_str() > a)).take(limit + 1).collect();
    let truncated = page.len() > limit;
    page.truncate(limit);
    let next_marker = if truncated { page.last().map(|t| t.key.clone()) } else { None };
    let tags = page.into_iter().map(|t| TagOut { tag_key: t.key, tag_value: t.value }).collect();
    Ok(ListResourceTagsResponse { tags, next_marker, truncated })
}
