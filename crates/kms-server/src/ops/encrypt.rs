//! Encrypt: up to 4096 bytes under a symmetric key, bound to the encryption context.

use kms_api::Operation;
use kms_api::base64_members::Blob;
use kms_api::model::{EncryptRequest, EncryptResponse};
use kms_core::KmsError;
use kms_core::context::EncryptionContext;
use kms_core::error::RequestRule;
use kms_core::key::{EncryptionAlgorithm, KeyUsage};
use kms_core::policy::condition_keys;

use super::key_access::usable_key;
use super::members::{algorithm, context, dry_run, grant_tokens, required};
use crate::authz::RequestKeys;
use crate::cache::CachedKey;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: EncryptRequest,
) -> Result<EncryptResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let plaintext = required("plaintext", req.plaintext)?;
    let algorithm = algorithm("encryptionAlgorithm", req.encryption_algorithm.as_deref())?;
    let encryption_context = context(req.encryption_context);
    let request = RequestKeys::none()
        .encryption_context(&encryption_context)
        .with(condition_keys::ENCRYPTION_ALGORITHM, algorithm.as_str());
    let key = usable_key(svc, ctx, "keyId", req.key_id, Operation::Encrypt.action(), request).await?;
    key.record.ensure_usable()?;
    key.record.ensure_usage("Encrypt", KeyUsage::EncryptDecrypt)?;
    key.record.ensure_encryption_algorithm("Encrypt", algorithm)?;
    dry_run(req.dry_run)?;
    let ciphertext = seal(svc, &key, algorithm, &encryption_context, plaintext.expose_secret())?;
    Ok(EncryptResponse {
        ciphertext_blob: Some(Blob(ciphertext)),
        key_id: Some(key.record.arn_string()),
        encryption_algorithm: Some(algorithm.as_str().to_owned()),
    })
}

/// Encrypts `plaintext` under the key's current material with `algorithm` (checked against the
/// key): a ciphertext blob bound to `context` for a symmetric key, the algorithm's raw output
/// (RSAES-OAEP, SM2PKE) for an asymmetric one, which takes no encryption context.
pub(super) fn seal(
    svc: &Service,
    key: &CachedKey,
    algorithm: EncryptionAlgorithm,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    let material = key.current().ok_or(ServiceError::Crypto(kms_crypto::CryptoError::KeyLength))?;
    if algorithm == EncryptionAlgorithm::SymmetricDefault {
        return material.encrypt(&svc.public_rng, context, plaintext).map_err(ServiceError::Crypto);
    }
    material.encrypt_asymmetric(algorithm, plaintext).map_err(|e| match e {
        kms_crypto::CryptoError::PlaintextTooLong { max } => {
            KmsError::InvalidRequest(RequestRule::PlaintextForAlgorithm {
                algorithm: algorithm.as_str(),
                spec: key.record.key_spec.as_str(),
                max,
            })
            .into()
        }
        e => ServiceError::Crypto(e),
    })
}
