//! ListKeyPolicies: every key has exactly one policy, named `default`.

use kms_api::Operation;
use kms_api::model::{ListKeyPoliciesRequest, ListKeyPoliciesResponse};
use kms_core::policy::DEFAULT_POLICY_NAME;

use super::key_access::managed_key;
use super::members::{limit, marker};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListKeyPoliciesRequest,
) -> Result<ListKeyPoliciesResponse, ServiceError> {
    limit(req.limit, 1000, 100)?;
    let after = marker(req.marker)?;
    managed_key(svc, ctx, req.key_id, Operation::ListKeyPolicies.action(), RequestKeys::none()).await?;
    let policy_names =
        if after.as_deref() >= Some(DEFAULT_POLICY_NAME) { vec![] } else { vec![DEFAULT_POLICY_NAME.to_owned()] };
    Ok(ListKeyPoliciesResponse { policy_names: Some(policy_names), next_marker: None, truncated: Some(false) })
}
