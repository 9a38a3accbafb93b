//! ListAliases: the account's aliases in the region, optionally only those of one key.

use kms_api::Operation;
use kms_api::model::{AliasListEntry, ListAliasesRequest, ListAliasesResponse};
use kms_core::KmsError;
use kms_core::ids::{AcceptedReferences, AliasArn, AliasName};

use super::members::{key_id_member, limit, marker, page};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{AccountScope, RequestContext, Service};

/// AWS documents 1–100 for ListAliases (the wire model allows up to 1000; larger limits are
/// answered with at most 100 entries, which AWS also permits).
const PAGE_MAX: usize = 100;

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ListAliasesRequest,
) -> Result<ListAliasesResponse, ServiceError> {
    let limit = limit(req.limit, 1000, 50)?.min(PAGE_MAX);
    let after = marker(req.marker)?.map(|m| AliasName::parse(&m).map_err(|_| KmsError::InvalidMarker)).transpose()?;
    let target = match req.key_id {
        Some(raw) => {
            let raw = key_id_member("keyId", Some(raw))?;
            let key = svc
                .resolve(
                    ctx,
                    &raw,
                    AcceptedReferences::KeysOnly,
                    AccountScope::OwnAccount,
                    Operation::ListAliases.action(),
                    RequestKeys::none(),
                )
                .await?;
            Some(key.record.key_id)
        }
        None => {
            svc.authorize_iam(ctx, Operation::ListAliases.action(), "*", RequestKeys::none()).await?;
            None
        }
    };
    let records =
        svc.store.list_aliases(&ctx.caller.principal.account, &ctx.region, target, after.as_ref(), limit + 1).await?;
    let (records, next_marker, truncated) = page(records, limit, |r| r.name.to_string());
    let aliases = records
        .into_iter()
        .map(|r| AliasListEntry {
            alias_arn: Some(AliasArn { region: r.region, account: r.account, name: r.name.clone() }.to_string()),
            alias_name: Some(r.name.to_string()),
            target_key_id: Some(r.target.to_string()),
            creation_date: Some(r.created.epoch_seconds_f64()),
            last_updated_date: Some(r.updated.epoch_seconds_f64()),
        })
        .collect();
    Ok(ListAliasesResponse { aliases: Some(aliases), next_marker, truncated: Some(truncated) })
}
