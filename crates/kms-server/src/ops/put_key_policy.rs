//! PutKeyPolicy: replaces the key policy (validated as a document; evaluation comes later).

use kms_api::dto::{Empty, PutKeyPolicyRequest};

use super::create_key::policy_document;
use super::validate::{managed_key, policy_name, required};
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: PutKeyPolicyRequest,
) -> Result<Empty, ServiceError> {
    policy_name(req.policy_name)?;
    let policy = policy_document(&required("policy", req.policy)?)?;
    let key = managed_key(svc, ctx, req.key_id, "kms:PutKeyPolicy").await?;
    svc.store.put_policy(key.record.key_id, policy.as_str()).await?;
    Ok(Empty {})
}
