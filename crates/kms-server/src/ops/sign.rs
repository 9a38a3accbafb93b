//! Sign: a signature over a message (or its digest, or its ML-DSA μ) with an asymmetric key of
//! usage SIGN_VERIFY.

use kms_api::Operation;
use kms_api::base64_members::Blob;
use kms_api::model::{SignRequest, SignResponse};
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::key::{KeyRecord, KeyUsage, MessageType, SigningAlgorithm};
use kms_core::policy::condition_keys;
use kms_crypto::CryptoError;

use super::key_access::usable_key;
use super::members::{dry_run, grant_tokens, required, violation};
use crate::authz::RequestKeys;
use crate::cache::CachedKey;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: SignRequest,
) -> Result<SignResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let algorithm =
        SigningAlgorithm::parse(&required("signingAlgorithm", req.signing_algorithm)?).map_err(violation)?;
    let message_type = message_type(req.message_type.as_deref())?;
    let message = required("message", req.message)?;
    let key = signing_key(svc, ctx, req.key_id, Operation::Sign, algorithm, message_type).await?;
    dry_run(req.dry_run)?;
    let material = key.current().ok_or(ServiceError::Crypto(CryptoError::KeyLength))?;
    let signature = material
        .sign(algorithm, message_type, message.expose_secret())
        .map_err(|e| refused(&key.record, algorithm, message_type, e))?;
    Ok(SignResponse {
        key_id: Some(key.record.arn_string()),
        signature: Some(Blob(signature)),
        signing_algorithm: Some(algorithm.as_str().to_owned()),
    })
}

/// The `MessageType` member, `RAW` when absent.
pub(super) fn message_type(value: Option<&str>) -> Result<MessageType, KmsError> {
    value.map_or(Ok(MessageType::Raw), |v| MessageType::parse(v).map_err(violation))
}

/// The key a Sign or Verify names, resolved, authorized with the algorithm and message type as
/// condition keys, and checked for the operation: enabled, SIGN_VERIFY, and the algorithm one
/// of its spec's.
pub(super) async fn signing_key(
    svc: &Service,
    ctx: &RequestContext,
    key_id: Option<String>,
    operation: Operation,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
) -> Result<std::sync::Arc<CachedKey>, ServiceError> {
    let request = RequestKeys::none()
        .with(condition_keys::SIGNING_ALGORITHM, algorithm.as_str())
        .with(condition_keys::MESSAGE_TYPE, message_type.as_str());
    let key = usable_key(svc, ctx, "keyId", key_id, operation.action(), request).await?;
    key.record.ensure_usable()?;
    key.record.ensure_usage(operation.name(), KeyUsage::SignVerify)?;
    key.record.ensure_spec_algorithm(key.record.signing_algorithms(), algorithm, algorithm.as_str())?;
    Ok(key)
}

/// What the client sees when the key refuses to sign or verify: a message type the spec does
/// not take or a digest of the wrong length are the request's fault (`ValidationException`).
pub(super) fn refused(
    key: &KeyRecord,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    error: CryptoError,
) -> ServiceError {
    match error {
        CryptoError::UnsupportedMessageType { .. } => KmsError::InvalidRequest(RequestRule::MessageTypeForSpec {
            message_type: message_type.as_str(),
            spec: key.key_spec.as_str(),
        })
        .into(),
        CryptoError::DigestLength { .. } => {
            KmsError::InvalidRequest(RequestRule::DigestLength(algorithm.as_str())).into()
        }
        e => ServiceError::Crypto(e),
    }
}
