//! DeleteAlias.

use kms_api::dto::{AliasRequest, Empty};
use kms_core::KmsError;
use kms_core::error::NotFound;
use kms_core::ids::AliasArn;

use super::validate::alias_name;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(svc: &Service, ctx: &RequestContext, req: AliasRequest) -> Result<Empty, ServiceError> {
    let name = alias_name(req.alias_name)?;
    name.ensure_customer_managed().map_err(|e| e.into_kms_error(name.as_str()))?;
    let arn = AliasArn { region: ctx.region.clone(), account: ctx.caller.account.clone(), name };
    let existed = svc.store.delete_alias(&arn.account, &arn.region, &arn.name).await?;
    svc.cache.forget_alias(&arn.account, &arn.region, &arn.name);
    if existed { Ok(Empty {}) } else { Err(KmsError::NotFound(NotFound::Alias(arn)).into()) }
}
