//! Which key a request names, and may the caller use it for this: the `KeyId` forms each
//! operation accepts, resolved in the caller's account (or another's by ARN) and authorized.

use kms_core::ids::AcceptedReferences;

use super::members::key_id_member;
use crate::authz::RequestKeys;
use crate::cache::CachedKey;
use crate::error::ServiceError;
use crate::service::{AccountScope, RequestContext, Service};

/// Resolves a key for a management operation: key id or key ARN, own account.
pub async fn managed_key(
    svc: &Service,
    ctx: &RequestContext,
    key_id: Option<String>,
    action: &str,
    request: RequestKeys,
) -> Result<std::sync::Arc<CachedKey>, ServiceError> {
    key_or_arn(svc, ctx, key_id, AccountScope::OwnAccount, action, request).await
}

/// Resolves a key for an operation that takes a key id or key ARN and allows another
/// account's key by ARN (the grant operations).
pub async fn managed_key_or_arn(
    svc: &Service,
    ctx: &RequestContext,
    key_id: Option<String>,
    action: &str,
    request: RequestKeys,
) -> Result<std::sync::Arc<CachedKey>, ServiceError> {
    key_or_arn(svc, ctx, key_id, AccountScope::CrossAccount, action, request).await
}

/// A `KeyId` member that takes a key id or key ARN (no aliases), resolved in `scope`.
async fn key_or_arn(
    svc: &Service,
    ctx: &RequestContext,
    key_id: Option<String>,
    scope: AccountScope,
    action: &str,
    request: RequestKeys,
) -> Result<std::sync::Arc<CachedKey>, ServiceError> {
    let raw = key_id_member("keyId", key_id)?;
    svc.resolve(ctx, &raw, AcceptedReferences::KeysOnly, scope, action, request).await
}

/// Resolves a key for a cryptographic operation or DescribeKey: any of the four forms, other
/// accounts by ARN.
pub async fn usable_key(
    svc: &Service,
    ctx: &RequestContext,
    field: &'static str,
    key_id: Option<String>,
    action: &str,
    request: RequestKeys,
) -> Result<std::sync::Arc<CachedKey>, ServiceError> {
    let raw = key_id_member(field, key_id)?;
    svc.resolve(ctx, &raw, AcceptedReferences::KeysAndAliases, AccountScope::CrossAccount, action, request).await
}
