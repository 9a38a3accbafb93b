//! DeleteAlias.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::DeleteAliasRequest;
use kms_core::KmsError;
use kms_core::error::NotFound;
use kms_core::ids::AliasArn;

use super::members::alias_name;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: DeleteAliasRequest,
) -> Result<Empty, ServiceError> {
    let name = alias_name(req.alias_name)?;
    name.ensure_customer_managed().map_err(|e| e.into_kms_error(name.as_str()))?;
    let arn = AliasArn { region: ctx.region.clone(), account: ctx.caller.principal.account.clone(), name };
    svc.authorize_iam(ctx, Operation::DeleteAlias.action(), &arn.to_string(), RequestKeys::none()).await?;
    let current = svc.stored_alias(&arn).await?;
    if let Some(key) = match &current {
        Some(alias) => svc.load_key(alias.target).await?,
        None => None,
    } {
        svc.authorize(ctx, &key, Operation::DeleteAlias.action(), RequestKeys::none()).await?;
    }
    let Some(alias) = &current else {
        return Err(KmsError::NotFound(NotFound::Alias(arn)).into());
    };
    // Deleted by someone else meanwhile, the alias is not found: nothing changed, and the
    // failure is recorded as such.
    svc.commit(ctx, Change::DeleteAlias { arn, target: alias.target }, Empty {}).await
}
