//! GetKeyPolicy.

use kms_api::Operation;
use kms_api::dto::{GetKeyPolicyRequest, GetKeyPolicyResponse};
use kms_core::policy::DEFAULT_POLICY_NAME;
use kms_store::StoreError;

use super::validate::{key_id_present, managed_key, members, policy_name};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GetKeyPolicyRequest,
) -> Result<GetKeyPolicyResponse, ServiceError> {
    members([key_id_present("keyId", req.key_id.as_deref()), policy_name(req.policy_name)])?;
    let key = managed_key(svc, ctx, req.key_id, Operation::GetKeyPolicy.action(), RequestKeys::none()).await?;
    let policy = svc.store.policy(key.record.key_id).await?.ok_or(StoreError::NotFound)?;
    Ok(GetKeyPolicyResponse { policy, policy_name: DEFAULT_POLICY_NAME.to_owned() })
}
