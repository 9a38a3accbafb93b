//! UpdateKeyDescription.

use kms_api::Operation;
use kms_api::dto::{Empty, UpdateKeyDescriptionRequest};

use super::validate::{key_id_present, managed_key, members, optional_length, present, required};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: UpdateKeyDescriptionRequest,
) -> Result<Empty, ServiceError> {
    members([
        key_id_present("keyId", req.key_id.as_deref()),
        present("description", req.description.as_ref()),
        optional_length("description", req.description.as_deref(), 0, 8192),
    ])?;
    let description = required("description", req.description)?;
    let key = managed_key(svc, ctx, req.key_id, Operation::UpdateKeyDescription.action(), RequestKeys::none()).await?;
    svc.commit_key(ctx, key.record.key_id, |k| k.describe(description.clone()), |_| Empty {}).await
}
