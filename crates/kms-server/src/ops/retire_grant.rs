//! RetireGrant: the grant's retiring principal (or its grantee, when the grant allows
//! RetireGrant, or anyone the key policy allows) ends a grant, by token or by key and grant id.

use kms_api::Empty;
use kms_api::Operation;
use kms_api::model::RetireGrantRequest;
use kms_core::KmsError;
use kms_core::error::NotFound;
use kms_core::policy::PrincipalKind;
use kms_store::GrantRecord;

use super::grant_rules::grant_id_of;
use super::key_access::managed_key_or_arn;
use super::members::dry_run;
use crate::authz::RequestKeys;
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

fn may_retire_without_policy(grant: &GrantRecord, ctx: &RequestContext) -> bool {
    let principal = &ctx.caller.principal;
    let is = |p: &str| {
        principal.arn == p || matches!(&principal.kind, PrincipalKind::AssumedRole { role_arn, .. } if role_arn == p)
    };
    let service = match &principal.kind {
        PrincipalKind::Service { name } => Some(name.as_str()),
        _ => None,
    };
    let grantee = match &grant.grantee_service_principal {
        Some(s) => service == Some(s.as_str()),
        None => is(&grant.grantee_principal),
    };
    grant.retiring_principal.as_deref().is_some_and(is)
        || (service.is_some() && grant.retiring_service_principal.as_deref() == service)
        || (grantee && grant.operations.iter().any(|o| o == "RetireGrant"))
}

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: RetireGrantRequest,
) -> Result<Empty, ServiceError> {
    let grant = match (req.grant_token, req.key_id, req.grant_id) {
        (Some(token), _, _) => {
            let id = grant_id_of(&token)?;
            svc.store.grant(&id).await?.ok_or(KmsError::NotFound(NotFound::Grant(id)))?
        }
        (None, Some(key_id), Some(grant_id)) => {
            let key =
                managed_key_or_arn(svc, ctx, Some(key_id), Operation::RetireGrant.action(), RequestKeys::none()).await;
            let grant =
                svc.store.grant(&grant_id).await?.ok_or(KmsError::NotFound(NotFound::Grant(grant_id.clone())))?;
            match key {
                Ok(key) if key.record.key_id == grant.key_id => {}
                // Without key-policy permission, a retiring principal or grantee may still retire.
                Err(_) if may_retire_without_policy(&grant, ctx) => {}
                Ok(_) => return Err(KmsError::NotFound(NotFound::Grant(grant_id)).into()),
                Err(e) => return Err(e),
            }
            grant
        }
        _ => return Err(KmsError::InvalidRequest(kms_core::error::RequestRule::RetireGrantTarget).into()),
    };
    if !may_retire_without_policy(&grant, ctx) {
        let key =
            svc.load_key(grant.key_id).await?.ok_or(KmsError::NotFound(NotFound::Grant(grant.grant_id.clone())))?;
        svc.authorize(ctx, &key, Operation::RetireGrant.action(), RequestKeys::none()).await?;
    }
    dry_run(req.dry_run)?;
    svc.commit(ctx, Change::DeleteGrant { key_id: grant.key_id, grant_id: grant.grant_id }, Empty {}).await
}
