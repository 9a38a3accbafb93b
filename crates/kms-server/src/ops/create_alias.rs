//! CreateAlias: a new alias name (unique in the account and region) for a key.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::CreateAliasRequest;
use kms_core::ids::AliasArn;
use kms_store::AliasRecord;

use super::key_access::managed_key;
use super::members::alias_name;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: CreateAliasRequest,
) -> Result<Empty, ServiceError> {
    let name = alias_name(req.alias_name)?;
    name.ensure_customer_managed().map_err(|e| e.into_kms_error(name.as_str()))?;
    super::members::alias_characters(&name)?;
    let alias_arn =
        AliasArn { region: ctx.region.clone(), account: ctx.caller.principal.account.clone(), name: name.clone() };
    svc.authorize_iam(ctx, Operation::CreateAlias.action(), &alias_arn.to_string(), RequestKeys::none()).await?;
    let target = managed_key(svc, ctx, req.target_key_id, Operation::CreateAlias.action(), RequestKeys::none()).await?;
    target.record.ensure_manageable()?;
    svc.ensure_room_for_alias(
        &alias_arn.account,
        &alias_arn.region,
        target.record.key_id,
        crate::quota::AliasChange::Create,
    )
    .await?;
    let now = svc.clock.now();
    let record = AliasRecord {
        account: ctx.caller.principal.account.clone(),
        region: ctx.region.clone(),
        name: name.clone(),
        target: target.record.key_id,
        created: now,
        updated: now,
    };
    // A name taken meanwhile is refused with AlreadyExistsException.
    svc.commit(ctx, Change::CreateAlias(record), Empty {}).await
}
