//! CreateGrant: lets a grantee (an IAM principal, or an AWS service principal) use a key for some
//! operations, optionally only with a given encryption context or, for a service, source ARN.

use kms_api::Operation;
use kms_api::model::{CreateGrantRequest, CreateGrantResponse};
use kms_core::KmsError;
use kms_core::error::{Limit, RequestRule};
use kms_core::policy::condition_keys;
use kms_store::GrantRecord;

use super::grant_rules::{allowed_for, operations, token_for};
use super::key_access::usable_key;
use super::members::{dry_run, grant_tokens, members, present, required};
use crate::authz::{ChildGrant, RequestKeys};
use crate::commit::Change;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: CreateGrantRequest,
) -> Result<CreateGrantResponse, ServiceError> {
    let service = req.grantee_service_principal.clone();
    if service.is_none() {
        members([
            present("granteePrincipal", req.grantee_principal.as_ref()),
            grant_tokens(req.grant_tokens.as_ref()),
        ])?;
    } else if req.grantee_principal.is_some() {
        return Err(one_of("GranteePrincipal", "GranteeServicePrincipal"));
    }
    if req.retiring_principal.is_some() && req.retiring_service_principal.is_some() {
        return Err(one_of("RetiringPrincipal", "RetiringServicePrincipal"));
    }
    grant_tokens(req.grant_tokens.as_ref())?;
    // A grant to a service principal names the service; a grant to an IAM principal its ARN.
    let grantee = req.grantee_principal.clone().or_else(|| service.clone()).unwrap_or_default();
    let ops = operations(required("operations", req.operations)?)?;
    let constraints = req.constraints.unwrap_or_default();
    if constraints.encryption_context_equals.is_some() && constraints.encryption_context_subset.is_some() {
        return Err(KmsError::InvalidRequest(RequestRule::GrantConstraints).into());
    }
    if constraints.source_arn.is_some() && service.is_none() {
        return Err(KmsError::InvalidRequest(RequestRule::SourceArnWithoutService).into());
    }
    let mut request = RequestKeys::none()
        .with_all(condition_keys::GRANT_OPERATIONS, ops.clone())
        .with(condition_keys::GRANTEE_PRINCIPAL, grantee.clone())
        .with(condition_keys::GRANT_IS_FOR_AWS_RESOURCE, "false");
    if let Some(r) = &req.retiring_principal {
        request = request.with(condition_keys::RETIRING_PRINCIPAL, r.clone());
    }
    request = request.child_grant(ChildGrant {
        operations: ops.clone(),
        context_equals: constraints.encryption_context_equals.clone(),
        context_subset: constraints.encryption_context_subset.clone(),
    });
    let key = usable_key(svc, ctx, "keyId", req.key_id, Operation::CreateGrant.action(), request).await?;
    key.record.ensure_usable()?;
    allowed_for(&key.record, &ops)?;
    dry_run(req.dry_run)?;
    // Bound to the grantee's unique id, as AWS binds grants: a user or role created later
    // under the same name is not this grantee.
    let grantee_id = match service {
        Some(_) => None,
        None => svc
            .store
            .principal(&grantee)
            .await?
            .filter(|p| p.kind != kms_store::PrincipalType::Service)
            .map(|p| p.principal_id),
    };
    let candidate = |grant_id: String| GrantRecord {
        grant_id,
        key_id: key.record.key_id,
        account: key.record.account.clone(),
        region: key.record.region.clone(),
        name: req.name.clone(),
        grantee_principal: if service.is_some() { String::new() } else { grantee.clone() },
        grantee_service_principal: service.clone(),
        grantee_id: grantee_id.clone(),
        retiring_principal: req.retiring_principal.clone(),
        retiring_service_principal: req.retiring_service_principal.clone(),
        source_arn: constraints.source_arn.clone(),
        operations: ops.clone(),
        context_equals: constraints.encryption_context_equals.clone(),
        context_subset: constraints.encryption_context_subset.clone(),
        issuing_principal: ctx.caller.principal.arn.clone(),
        created: svc.clock.now(),
    };
    // A retry with the same name and parameters returns the same grant.
    if req.name.is_some() {
        for existing in svc.store.grants(key.record.key_id).await? {
            let same = GrantRecord { created: existing.created, ..candidate(existing.grant_id.clone()) };
            if same == existing {
                return Ok(CreateGrantResponse {
                    grant_token: Some(token_for(&existing.grant_id)),
                    grant_id: Some(existing.grant_id),
                });
            }
        }
    }
    let per_principal = svc.quotas.resources.grants_per_principal;
    let same_grantee = |g: &&GrantRecord| match &service {
        Some(name) => g.grantee_service_principal.as_ref() == Some(name),
        None => g.grantee_service_principal.is_none() && g.grantee_principal == grantee,
    };
    if key.grants.iter().filter(same_grantee).count() >= per_principal {
        return Err(KmsError::LimitExceeded(Limit::GrantsPerPrincipal(per_principal)).into());
    }
    let grant_id = hex::encode(kms_crypto::random_array::<32>(svc.rng.as_ref()));
    let response = CreateGrantResponse { grant_token: Some(token_for(&grant_id)), grant_id: Some(grant_id.clone()) };
    svc.commit(ctx, Change::CreateGrant(candidate(grant_id)), response).await
}

fn one_of(a: &'static str, b: &'static str) -> ServiceError {
    KmsError::InvalidRequest(RequestRule::OneOf(a, b)).into()
}
