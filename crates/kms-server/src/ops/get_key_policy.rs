//! GetKeyPolicy.

use kms_api::Operation;
use kms_api::model::{GetKeyPolicyRequest, GetKeyPolicyResponse};
use kms_core::policy::DEFAULT_POLICY_NAME;
use kms_store::StoreError;

use super::key_access::managed_key;
use super::members::policy_name;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GetKeyPolicyRequest,
) -> Result<GetKeyPolicyResponse, ServiceError> {
    policy_name(req.policy_name)?;
    let key = managed_key(svc, ctx, req.key_id, Operation::GetKeyPolicy.action(), RequestKeys::none()).await?;
    let policy = svc.store.policy(key.record.key_id).await?.ok_or(StoreError::NotFound)?;
    Ok(GetKeyPolicyResponse { policy: Some(policy), policy_name: Some(DEFAULT_POLICY_NAME.to_owned()) })
}
