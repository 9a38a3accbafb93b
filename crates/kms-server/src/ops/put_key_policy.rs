//! PutKeyPolicy: replaces the key policy (validated as a document; evaluation comes later).

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::PutKeyPolicyRequest;

use super::create_key::policy_document;
use super::key_access::managed_key;
use super::members::{policy_name, required};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};
use kms_core::KmsError;
use kms_core::policy::condition_keys;

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: PutKeyPolicyRequest,
) -> Result<Empty, ServiceError> {
    policy_name(req.policy_name)?;
    let policy = policy_document(&required("policy", req.policy)?)?;
    let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
    let request = RequestKeys::none().with(condition_keys::BYPASS_POLICY_LOCKOUT_SAFETY_CHECK, bypass.to_string());
    let key = managed_key(svc, ctx, req.key_id, Operation::PutKeyPolicy.action(), request).await?;
    if !bypass && !svc.lockout_safe(ctx, &policy, &key.record.arn_string(), &key.record.account).await? {
        return Err(KmsError::PolicyLockout.into());
    }
    svc.ensure_principals_exist(&policy).await?;
    let change = Change::PutPolicy { key_id: key.record.key_id, document: policy.as_str().to_owned() };
    svc.commit(ctx, change, Empty {}).await
}
