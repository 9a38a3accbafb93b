//! DisableKey: takes effect for the very next request on this node (the cache is updated in
//! the same step as the store).

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::DisableKeyRequest;

use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(svc: &Service, ctx: &RequestContext, req: DisableKeyRequest) -> Result<Empty, ServiceError> {
    let key = managed_key(svc, ctx, req.key_id, Operation::DisableKey.action(), RequestKeys::none()).await?;
    svc.commit_key(ctx, key.record.key_id, |k| k.disable(), |_| Empty {}).await
}
