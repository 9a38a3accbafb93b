//! UpdateAlias: points an existing alias at another key of the same type and usage.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::UpdateAliasRequest;
use kms_core::KmsError;
use kms_core::error::{NotFound, RequestRule};
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
    req: UpdateAliasRequest,
) -> Result<Empty, ServiceError> {
    let name = alias_name(req.alias_name)?;
    name.ensure_customer_managed().map_err(|e| e.into_kms_error(name.as_str()))?;
    super::members::alias_characters(&name)?;
    let arn = AliasArn { region: ctx.region.clone(), account: ctx.caller.principal.account.clone(), name };
    svc.authorize_iam(ctx, Operation::UpdateAlias.action(), &arn.to_string(), RequestKeys::none()).await?;
    let target = managed_key(svc, ctx, req.target_key_id, Operation::UpdateAlias.action(), RequestKeys::none()).await?;
    let current = svc
        .store
        .alias(&arn.account, &arn.region, &arn.name)
        .await?
        .ok_or_else(|| KmsError::NotFound(NotFound::Alias(arn.clone())))?;
    target.record.ensure_manageable()?;
    if let Some(old) = svc.load_key(current.target).await? {
        svc.authorize(ctx, &old, Operation::UpdateAlias.action(), RequestKeys::none()).await?;
        let same_kind =
            old.record.key_spec == target.record.key_spec && old.record.key_usage == target.record.key_usage;
        if !same_kind {
            return Err(KmsError::InvalidRequest(RequestRule::AliasTargetMismatch(target.record.arn())).into());
        }
    }
    if current.target != target.record.key_id {
        svc.ensure_room_for_alias(&arn.account, &arn.region, target.record.key_id, crate::quota::AliasChange::Retarget)
            .await?;
    }
    let previous_target = current.target;
    let alias = AliasRecord { target: target.record.key_id, updated: svc.clock.now(), ..current };
    svc.commit(ctx, Change::UpdateAlias { alias, previous_target }, Empty {}).await
}
