//! ReEncrypt: decrypts under the source key and context and encrypts under the destination
//! key and context, without the plaintext leaving the service.

use kms_api::base64_members::Blob;
use kms_api::model::{ReEncryptRequest, ReEncryptResponse};
use kms_api::operation::re_encrypt_actions;
use kms_core::key::KeyUsage;
use kms_core::policy::condition_keys;

use super::decrypt::{Source, open};
use super::encrypt::seal;
use super::key_access::usable_key;
use super::members::{algorithm, context, dry_run, grant_tokens, ignores_ciphertext, members, present, required};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: ReEncryptRequest,
) -> Result<ReEncryptResponse, ServiceError> {
    let skip_ciphertext = ignores_ciphertext(req.dry_run, req.dry_run_modifiers.as_ref());
    // AWS's model does not require these: which are needed depends on the dry run.
    members([
        if skip_ciphertext { Ok(()) } else { present("ciphertextBlob", req.ciphertext_blob.as_ref()) },
        if skip_ciphertext { present("sourceKeyId", req.source_key_id.as_ref()) } else { Ok(()) },
        grant_tokens(req.grant_tokens.as_ref()),
    ])?;
    let source_algorithm = algorithm("sourceEncryptionAlgorithm", req.source_encryption_algorithm.as_deref())?;
    let destination_algorithm =
        algorithm("destinationEncryptionAlgorithm", req.destination_encryption_algorithm.as_deref())?;
    let destination_context = context(req.destination_encryption_context);
    let request = RequestKeys::none()
        .encryption_context(&destination_context)
        .with(condition_keys::ENCRYPTION_ALGORITHM, destination_algorithm.as_str());
    let destination =
        usable_key(svc, ctx, "destinationKeyId", req.destination_key_id, re_encrypt_actions::TO, request).await?;
    if skip_ciphertext {
        // A dry run of the permissions alone: both keys authorized as ReEncrypt would be.
        let request = RequestKeys::none()
            .encryption_context(&context(req.source_encryption_context))
            .with(condition_keys::ENCRYPTION_ALGORITHM, source_algorithm.as_str());
        let source = usable_key(svc, ctx, "sourceKeyId", req.source_key_id, re_encrypt_actions::FROM, request).await?;
        source.record.ensure_usable()?;
        destination.record.ensure_usable()?;
        return Err(kms_core::KmsError::DryRun.into());
    }
    let ciphertext = required("ciphertextBlob", req.ciphertext_blob)?;
    let source = Source { field: "sourceKeyId", key_id: req.source_key_id, algorithm: source_algorithm };
    let opened = open(
        svc,
        ctx,
        "ciphertextBlob",
        &ciphertext,
        &context(req.source_encryption_context),
        source,
        re_encrypt_actions::FROM,
    )
    .await?;
    destination.record.ensure_usable()?;
    destination.record.ensure_usage("ReEncrypt", KeyUsage::EncryptDecrypt)?;
    destination.record.ensure_encryption_algorithm("ReEncrypt", destination_algorithm)?;
    dry_run(req.dry_run)?;
    let sealed =
        seal(svc, &destination, destination_algorithm, &destination_context, opened.plaintext.expose_secret())?;
    Ok(ReEncryptResponse {
        ciphertext_blob: Some(Blob(sealed)),
        source_key_id: Some(opened.key.record.arn_string()),
        key_id: Some(destination.record.arn_string()),
        source_encryption_algorithm: Some(source_algorithm.as_str().to_owned()),
        destination_encryption_algorithm: Some(destination_algorithm.as_str().to_owned()),
        source_key_material_id: Some(opened.material.to_string()),
        destination_key_material_id: Some(destination.record.current_material.to_string()),
    })
}
