//! Decrypt: finds the key in the blob (or checks the one named), then authenticates the
//! ciphertext with the encryption context.

use kms_api::Operation;
use std::sync::Arc;

use kms_api::base64_members::{Blob, SecretBlob};
use kms_api::model::{DecryptRequest, DecryptResponse};
use kms_core::KmsError;
use kms_core::ciphertext_blob;
use kms_core::context::EncryptionContext;
use kms_core::ids::MaterialId;
use kms_core::key::{EncryptionAlgorithm, KeyUsage};
use kms_core::policy::condition_keys;
use kms_crypto::SecretBytes;

use super::key_access::usable_key;
use super::members::{
    MAX_CIPHERTEXT, algorithm, blob_length, context, dry_run, grant_tokens, ignores_ciphertext, members, no_recipient,
    present, required,
};
use crate::authz::RequestKeys;
use crate::cache::CachedKey;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: DecryptRequest,
) -> Result<DecryptResponse, ServiceError> {
    let skip_ciphertext = ignores_ciphertext(req.dry_run, req.dry_run_modifiers.as_ref());
    // AWS's model requires neither member: which one is needed depends on the dry run.
    members([
        if skip_ciphertext { Ok(()) } else { present("ciphertextBlob", req.ciphertext_blob.as_ref()) },
        grant_tokens(req.grant_tokens.as_ref()),
        if skip_ciphertext { present("keyId", req.key_id.as_ref()) } else { Ok(()) },
    ])?;
    let algorithm = algorithm("encryptionAlgorithm", req.encryption_algorithm.as_deref())?;
    no_recipient(req.recipient.as_ref())?;
    if skip_ciphertext {
        // A dry run of the permissions alone: the named key, authorized as a Decrypt with this
        // encryption context would be, then DryRunOperationException.
        let request = RequestKeys::none()
            .encryption_context(&context(req.encryption_context))
            .with(condition_keys::ENCRYPTION_ALGORITHM, algorithm.as_str());
        let key = usable_key(svc, ctx, "keyId", req.key_id, Operation::Decrypt.action(), request).await?;
        key.record.ensure_usable()?;
        return Err(KmsError::DryRun.into());
    }
    let ciphertext = required("ciphertextBlob", req.ciphertext_blob)?;
    let source = Source { field: "keyId", key_id: req.key_id, algorithm };
    let opened = open(
        svc,
        ctx,
        "ciphertextBlob",
        &ciphertext,
        &context(req.encryption_context),
        source,
        Operation::Decrypt.action(),
    )
    .await?;
    dry_run(req.dry_run)?;
    Ok(DecryptResponse {
        key_id: Some(opened.key.record.arn_string()),
        plaintext: Some(SecretBlob(zeroize::Zeroizing::new(opened.plaintext.expose_secret().to_vec()))),
        encryption_algorithm: Some(algorithm.as_str().to_owned()),
        key_material_id: Some(opened.material.to_string()),
        ciphertext_for_recipient: None,
    })
}

/// The optional key and algorithm a caller names for the ciphertext.
pub(super) struct Source {
    pub field: &'static str,
    pub key_id: Option<String>,
    pub algorithm: EncryptionAlgorithm,
}

/// A decrypted ciphertext.
pub(super) struct Opened {
    pub key: Arc<CachedKey>,
    pub material: MaterialId,
    pub plaintext: SecretBytes,
}

/// Authenticates and decrypts a ciphertext blob (Decrypt, and ReEncrypt's source side).
pub(super) async fn open(
    svc: &Service,
    ctx: &RequestContext,
    blob_field: &'static str,
    ciphertext: &Blob,
    encryption_context: &EncryptionContext,
    source: Source,
    action: &str,
) -> Result<Opened, ServiceError> {
    blob_length(blob_field, ciphertext.0.len(), 1, MAX_CIPHERTEXT)?;
    let request = || {
        RequestKeys::none()
            .encryption_context(encryption_context)
            .with(condition_keys::ENCRYPTION_ALGORITHM, source.algorithm.as_str())
    };
    let operation = action.trim_start_matches(kms_api::operation::ACTION_PREFIX);
    if source.algorithm != EncryptionAlgorithm::SymmetricDefault {
        // An asymmetric algorithm's raw ciphertext names no key: the caller names it.
        let raw = required(source.field, source.key_id)?;
        let key = usable_key(svc, ctx, source.field, Some(raw), action, request()).await?;
        key.record.ensure_usable()?;
        key.record.ensure_usage(operation, KeyUsage::EncryptDecrypt)?;
        key.record.ensure_encryption_algorithm(operation, source.algorithm)?;
        let material = key.current().ok_or(KmsError::InvalidCiphertext)?;
        let plaintext =
            material.decrypt_asymmetric(source.algorithm, &ciphertext.0).map_err(|_| KmsError::InvalidCiphertext)?;
        return Ok(Opened { material: key.record.current_material, key, plaintext });
    }
    let decoded = ciphertext_blob::decode(&ciphertext.0).map_err(|_| KmsError::InvalidCiphertext)?;
    let key = match source.key_id {
        Some(raw) => {
            let named = usable_key(svc, ctx, source.field, Some(raw), action, request()).await?;
            if named.record.key_id.public() != decoded.header.key_id {
                return Err(KmsError::IncorrectKey.into());
            }
            named
        }
        None => {
            // The key comes from the blob. It must live in the request's region; a blob naming a
            // key we do not have is indistinguishable from a forged one.
            let key =
                svc.load_key(decoded.header.key_id.in_region(&ctx.region)).await?.ok_or(KmsError::InvalidCiphertext)?;
            if key.record.region != ctx.region {
                return Err(KmsError::InvalidCiphertext.into());
            }
            ctx.key_arn.set(key.record.arn_string());
            svc.authorize(ctx, &key, action, request()).await?;
            key
        }
    };
    key.record.ensure_usable()?;
    key.record.ensure_usage(operation, KeyUsage::EncryptDecrypt)?;
    key.record.ensure_encryption_algorithm(operation, source.algorithm)?;
    let material = key.material(decoded.header.material_id).ok_or(KmsError::InvalidCiphertext)?;
    let plaintext = material.decrypt(&decoded, encryption_context).map_err(|_| KmsError::InvalidCiphertext)?;
    Ok(Opened { material: decoded.header.material_id, key, plaintext })
}
