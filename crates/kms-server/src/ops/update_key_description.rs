//! UpdateKeyDescription.

use kms_api::dto::{Empty, UpdateKeyDescriptionRequest};

use super::validate::{length, managed_key, required};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: UpdateKeyDescriptionRequest,
) -> Result<Empty, ServiceError> {
    let description = required("description", req.description)?;
    length("description", &description, 0, 8192)?;
    let key = managed_key(svc, ctx, req.key_id, "kms:UpdateKeyDescription", RequestKeys::none()).await?;
    svc.update_key(ctx, key.record.key_id, |k| k.describe(description.clone()), |_| Empty {}).await
}
