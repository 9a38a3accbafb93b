//! Verify: whether a signature is the key's over a message (or its digest, or its μ).

use kms_api::Operation;
use kms_api::model::{VerifyRequest, VerifyResponse};
use kms_core::KmsError;
use kms_core::key::SigningAlgorithm;
use kms_crypto::CryptoError;

use super::members::{dry_run, grant_tokens, required, violation};
use super::sign::{message_type, refused, signing_key};
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: VerifyRequest,
) -> Result<VerifyResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let algorithm =
        SigningAlgorithm::parse(&required("signingAlgorithm", req.signing_algorithm)?).map_err(violation)?;
    let message_type = message_type(req.message_type.as_deref())?;
    let message = required("message", req.message)?;
    let signature = required("signature", req.signature)?;
    let key = signing_key(svc, ctx, req.key_id, Operation::Verify, algorithm, message_type).await?;
    dry_run(req.dry_run)?;
    let material = key.current().ok_or(ServiceError::Crypto(CryptoError::KeyLength))?;
    let valid = material
        .verify(algorithm, message_type, message.expose_secret(), &signature.0)
        .map_err(|e| refused(&key.record, algorithm, message_type, e))?;
    if !valid {
        return Err(KmsError::InvalidSignature.into());
    }
    Ok(VerifyResponse {
        key_id: Some(key.record.arn_string()),
        signature_valid: Some(true),
        signing_algorithm: Some(algorithm.as_str().to_owned()),
    })
}
