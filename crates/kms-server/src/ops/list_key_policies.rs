//! ListKeyPolicies: every key has exactly one policy, named `default`.

use kms_api::Operation;
use kms_api::dto::{ListKeyPoliciesResponse, ListRequest};
use kms_core::policy::DEFAULT_POLICY_NAME;

use super::validate::{key_id_present, limit, managed_key, marker, members, paging};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListRequest,
) -> Result<ListKeyPoliciesResponse, ServiceError> {
    members([key_id_present("keyId", req.key_id.as_deref())].into_iter().chain(paging(
        req.limit,
        1000,
        req.marker.as_deref(),
    )))?;
    limit(req.limit, 1000, 100)?;
    let after = marker(req.marker)?;
    managed_key(svc, ctx, req.key_id, Operation::ListKeyPolicies.action(), RequestKeys::none()).await?;
    let policy_names =
        if after.as_deref() >= Some(DEFAULT_POLICY_NAME) { vec![] } else { vec![DEFAULT_POLICY_NAME.to_owned()] };
    Ok(ListKeyPoliciesResponse { policy_names, next_marker: None, truncated: false })
}
