//! ListGrants: a key's grants, optionally filtered by grant id or grantee.

use kms_api::Operation;
use kms_api::model::{ListGrantsRequest, ListGrantsResponse};

use super::grant_rules::entry;
use super::key_access::managed_key_or_arn;
use super::members::{limit, marker, page};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListGrantsRequest,
) -> Result<ListGrantsResponse, ServiceError> {
    let limit = limit(req.limit, 100, 50)?;
    let after = marker(req.marker)?;
    let key = managed_key_or_arn(svc, ctx, req.key_id, Operation::ListGrants.action(), RequestKeys::none()).await?;
    let arn = key.record.arn_string();
    let grants: Vec<_> = svc
        .store
        .grants(key.record.key_id)
        .await?
        .into_iter()
        .filter(|g| req.grant_id.as_ref().is_none_or(|id| *id == g.grant_id))
        .filter(|g| {
            req.grantee_principal
                .as_ref()
                .is_none_or(|p| *p == g.grantee_principal && g.grantee_service_principal.is_none())
        })
        .filter(|g| {
            req.grantee_service_principal.as_ref().is_none_or(|p| g.grantee_service_principal.as_ref() == Some(p))
        })
        .filter(|g| after.as_deref().is_none_or(|a| g.grant_id.as_str() > a))
        .take(limit + 1)
        .collect();
    let (grants, next_marker, truncated) = page(grants, limit, |g| g.grant_id.clone());
    Ok(ListGrantsResponse {
        grants: Some(grants.iter().map(|g| entry(g, arn.clone())).collect()),
        next_marker,
        truncated: Some(truncated),
    })
}
