//! GetPublicKey: the public half of an asymmetric key (DER SubjectPublicKeyInfo) and what it is
//! for, so that it can be used outside the service.

use kms_api::Operation;
use kms_api::base64_members::Blob;
use kms_api::model::{GetPublicKeyRequest, GetPublicKeyResponse};
use kms_core::KmsError;
use kms_core::error::Unsupported;

use super::key_access::usable_key;
use super::members::grant_tokens;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GetPublicKeyRequest,
) -> Result<GetPublicKeyResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let key = usable_key(svc, ctx, "keyId", req.key_id, Operation::GetPublicKey.action(), RequestKeys::none()).await?;
    key.record.ensure_usable()?;
    if !key.record.key_spec.is_asymmetric() {
        return Err(KmsError::Unsupported(Unsupported::PublicKey(key.record.arn().to_string())).into());
    }
    let material = key.current().ok_or(KmsError::Unsupported(Unsupported::PublicKey(key.record.arn_string())))?;
    let public_key = material.public_key_der().map_err(ServiceError::Crypto)?.to_vec();
    let names = |items: Vec<&'static str>| (!items.is_empty()).then(|| items.into_iter().map(str::to_owned).collect());
    let r = &key.record;
    Ok(GetPublicKeyResponse {
        key_id: Some(r.arn_string()),
        public_key: Some(Blob(public_key)),
        customer_master_key_spec: Some(r.key_spec.as_str().to_owned()),
        key_spec: Some(r.key_spec.as_str().to_owned()),
        key_usage: Some(r.key_usage.as_str().to_owned()),
        encryption_algorithms: names(r.encryption_algorithms().iter().map(|a| a.as_str()).collect()),
        signing_algorithms: names(r.signing_algorithms().iter().map(|a| a.as_str()).collect()),
        key_agreement_algorithms: names(r.key_agreement_algorithms().iter().map(|a| a.as_str()).collect()),
    })
}
