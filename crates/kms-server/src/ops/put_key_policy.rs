//! PutKeyPolicy: replaces the key policy (validated as a document; evaluation comes later).

use kms_api::Operation;
use kms_api::dto::{Empty, PutKeyPolicyRequest};
use kms_store::Invalidation;

use super::create_key::policy_document;
use super::validate::{key_id_present, managed_key, members, policy_name, present, required};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};
use kms_core::KmsError;

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: PutKeyPolicyRequest,
) -> Result<Empty, ServiceError> {
    members([
        key_id_present("keyId", req.key_id.as_deref()),
        present("policy", req.policy.as_ref()),
        policy_name(req.policy_name),
    ])?;
    let policy = policy_document(&required("policy", req.policy)?)?;
    let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
    let request = RequestKeys::none().with("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string());
    let key = managed_key(svc, ctx, req.key_id, Operation::PutKeyPolicy.action(), request).await?;
    if !bypass && !svc.lockout_safe(ctx, &policy, &key.record.arn_string(), &key.record.account).await? {
        return Err(KmsError::PolicyLockout.into());
    }
    let audit = svc.control_event_for(ctx, &Empty {});
    let changes = [Invalidation::Key(key.record.key_id)];
    svc.committing(&changes, svc.store.put_policy(key.record.key_id, policy.as_str(), &audit)).await?;
    audit.committed();
    Ok(Empty {})
}
