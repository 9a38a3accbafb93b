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
    let arn = |name: &AliasName| {
        AliasArn { region: ctx.region.clone(), account: ctx.caller.principal.account.clone(), name: name.clone() }
            .to_string()
    };
    let mut entries: Vec<(String, AliasListEntry)> = records
        .into_iter()
        .map(|r| {
            let entry = AliasListEntry {
                alias_arn: Some(arn(&r.name)),
                alias_name: Some(r.name.to_string()),
                target_key_id: Some(r.target.to_string()),
                creation_date: Some(r.created.epoch_seconds_f64()),
                last_updated_date: Some(r.updated.epoch_seconds_f64()),
            };
            (r.name.to_string(), entry)
        })
        .collect();
    if target.is_none() {
        // The predefined aliases after the marker, among the stored ones, in name order.
        // AWS's predefined aliases of AWS managed keys are listed in every account and region,
        // without a TargetKeyId until the key exists.
        let predefined = crate::aws_managed::PREDEFINED
            .iter()
            .filter_map(|(name, _)| AliasName::parse(name).ok())
            .filter(|name| after.as_ref().is_none_or(|a| name.as_str() > a.as_str()))
            .filter(|name| !entries.iter().any(|(stored, _)| stored == name.as_str()))
            .map(|name| {
                let entry = AliasListEntry {
                    alias_arn: Some(arn(&name)),
                    alias_name: Some(name.to_string()),
                    ..AliasListEntry::default()
                };
                (name.to_string(), entry)
            })
            .collect::<Vec<_>>();
        entries.extend(predefined);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.truncate(limit + 1);
    }
    let (entries, next_marker, truncated) = page(entries, limit, |(name, _)| name.clone());
    let aliases = entries.into_iter().map(|(_, entry)| entry).collect();
    Ok(ListAliasesResponse { aliases: Some(aliases), next_marker, truncated: Some(truncated) })
}
