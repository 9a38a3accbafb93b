//! GenerateDataKey and GenerateDataKeyWithoutPlaintext: a fresh data key from the CSPRNG,
//! returned encrypted under the KMS key (and in plaintext for the first).

use kms_api::Operation;
use kms_api::base64_members::{Blob, SecretBlob};
use kms_api::model::{
    GenerateDataKeyRequest, GenerateDataKeyResponse, GenerateDataKeyWithoutPlaintextRequest,
    GenerateDataKeyWithoutPlaintextResponse,
};
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::key::{DataKeySpec, EncryptionAlgorithm, KeyUsage};
use zeroize::Zeroizing;

use super::encrypt::seal;
use super::key_access::usable_key;
use super::members::{context, dry_run, grant_tokens, no_recipient, number_of_bytes, violation};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn with_plaintext(
    svc: &Service,
    ctx: &RequestContext,
    req: GenerateDataKeyRequest,
) -> Result<GenerateDataKeyResponse, ServiceError> {
    generate(svc, ctx, req, Operation::GenerateDataKey, true).await
}

pub(super) async fn without_plaintext(
    svc: &Service,
    ctx: &RequestContext,
    req: GenerateDataKeyWithoutPlaintextRequest,
) -> Result<GenerateDataKeyWithoutPlaintextResponse, ServiceError> {
    // The same members but `Recipient`, which has no use without a plaintext.
    let req = GenerateDataKeyRequest {
        dry_run: req.dry_run,
        encryption_context: req.encryption_context,
        grant_tokens: req.grant_tokens,
        key_id: req.key_id,
        key_spec: req.key_spec,
        number_of_bytes: req.number_of_bytes,
        recipient: None,
    };
    let generated = generate(svc, ctx, req, Operation::GenerateDataKeyWithoutPlaintext, false).await?;
    Ok(GenerateDataKeyWithoutPlaintextResponse {
        ciphertext_blob: generated.ciphertext_blob,
        key_id: generated.key_id,
        key_material_id: generated.key_material_id,
    })
}

async fn generate(
    svc: &Service,
    ctx: &RequestContext,
    req: GenerateDataKeyRequest,
    operation: Operation,
    return_plaintext: bool,
) -> Result<GenerateDataKeyResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let len = match (req.key_spec.as_deref(), req.number_of_bytes) {
        (Some(spec), None) => DataKeySpec::parse(spec).map_err(violation)?.byte_len(),
        (None, Some(n)) => number_of_bytes(n)?,
        _ => return Err(KmsError::InvalidRequest(RequestRule::KeySpecXorNumberOfBytes).into()),
    };
    no_recipient(req.recipient.as_ref())?;
    let encryption_context = context(req.encryption_context);
    let request = RequestKeys::none().encryption_context(&encryption_context);
    let key = usable_key(svc, ctx, "keyId", req.key_id, operation.action(), request).await?;
    key.record.ensure_usable()?;
    key.record.ensure_usage(operation.name(), KeyUsage::EncryptDecrypt)?;
    key.record.ensure_encryption_algorithm(operation.name(), EncryptionAlgorithm::SymmetricDefault)?;
    dry_run(req.dry_run)?;
    let mut data_key = Zeroizing::new(vec![0u8; len]);
    svc.rng.fill(&mut data_key);
    let ciphertext = seal(svc, &key, EncryptionAlgorithm::SymmetricDefault, &encryption_context, &data_key)?;
    Ok(GenerateDataKeyResponse {
        ciphertext_blob: Some(Blob(ciphertext)),
        plaintext: return_plaintext.then(|| SecretBlob(data_key)),
        key_id: Some(key.record.arn_string()),
        key_material_id: Some(key.record.current_material.to_string()),
        ciphertext_for_recipient: None,
    })
}
