//! ListRetirableGrants: the grants a principal may retire.

use kms_api::Operation;
use kms_api::model::{ListGrantsResponse, ListRetirableGrantsRequest};
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::ids::KeyArn;

use super::grant_rules::entry;
use super::members::{limit, marker, page, required};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListRetirableGrantsRequest,
) -> Result<ListGrantsResponse, ServiceError> {
    let limit = limit(req.limit, 100, 50)?;
    let after = marker(req.marker)?;
    // AWS requires neither member since RetiringServicePrincipal came; one is needed.
    let principal = match (req.retiring_principal, req.retiring_service_principal) {
        (Some(p), None) | (None, Some(p)) => p,
        (Some(_), Some(_)) => {
            return Err(
                KmsError::InvalidRequest(RequestRule::OneOf("RetiringPrincipal", "RetiringServicePrincipal")).into()
            );
        }
        (None, None) => required("retiringPrincipal", None::<String>)?,
    };
    svc.authorize_iam(ctx, Operation::ListRetirableGrants.action(), "*", RequestKeys::none()).await?;
    let grants: Vec<_> = svc
        .store
        .grants_for_retiring(&ctx.caller.principal.account, &principal)
        .await?
        .into_iter()
        .filter(|g| g.region == ctx.region)
        .filter(|g| after.as_deref().is_none_or(|a| g.grant_id.as_str() > a))
        .take(limit + 1)
        .collect();
    let (grants, next_marker, truncated) = page(grants, limit, |g| g.grant_id.clone());
    let grants = grants
        .iter()
        .map(|g| {
            let arn = KeyArn { region: g.region.clone(), account: g.account.clone(), key_id: g.key_id };
            entry(g, arn.to_string())
        })
        .collect();
    Ok(ListGrantsResponse { grants: Some(grants), next_marker, truncated: Some(truncated) })
}
