//! EnableKey.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::EnableKeyRequest;

use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(svc: &Service, ctx: &RequestContext, req: EnableKeyRequest) -> Result<Empty, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::EnableKey.action(), RequestKeys::none()).await?;
    svc.commit_key(ctx, key.record.key_id, |k| k.enable(), |_| Empty {}).await
}
