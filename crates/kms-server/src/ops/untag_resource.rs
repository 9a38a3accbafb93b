//! UntagResource.

use kms_api::Operation;
use kms_api::dto::{Empty, UntagResourceRequest};
use kms_core::KmsError;
use kms_core::validation::Violations;

use super::validate::{key_id_present, managed_key, members, present, required};
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: UntagResourceRequest,
) -> Result<Empty, ServiceError> {
    members([key_id_present("keyId", req.key_id.as_deref()), present("tagKeys", req.tag_keys.as_ref())])?;
    let keys = required("tagKeys", req.tag_keys)?;
    let mut v = Violations::default();
    for (i, k) in keys.iter().enumerate() {
        v.length(format!("tagKeys.{}.member", i + 1), Some(k), k.chars().count(), 1, 128);
    }
    if !v.is_empty() {
        return Err(KmsError::Validation(v).into());
    }
    let request = RequestKeys::none().with_all("aws:TagKeys", keys.clone());
    let key = managed_key(svc, ctx, req.key_id, Operation::UntagResource.action(), request).await?;
    key.record.ensure_manageable()?;
    svc.commit(ctx, Change::RemoveTags { key_id: key.record.key_id, tag_keys: keys }, Empty {}).await
}
