//! RevokeGrant: a key administrator ends a grant.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::RevokeGrantRequest;
use kms_core::KmsError;
use kms_core::error::NotFound;

use super::key_access::managed_key_or_arn;
use super::members::{dry_run, required};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: RevokeGrantRequest,
) -> Result<Empty, ServiceError> {
    let grant_id = required("grantId", req.grant_id)?;
    let key = managed_key_or_arn(svc, ctx, req.key_id, Operation::RevokeGrant.action(), RequestKeys::none()).await?;
    let grant = svc.store.grant(&grant_id).await?.filter(|g| g.key_id == key.record.key_id);
    let grant = grant.ok_or(KmsError::NotFound(NotFound::Grant(grant_id)))?;
    dry_run(req.dry_run)?;
    svc.commit(ctx, Change::DeleteGrant { key_id: grant.key_id, grant_id: grant.grant_id }, Empty {}).await
}
