//! GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh key pair of any
//! KeyPairSpec, its private key (PKCS#8) encrypted under a symmetric encryption key with the
//! encryption context, and its public key (DER SubjectPublicKeyInfo).

use std::sync::Arc;

use kms_api::Operation;
use kms_api::base64_members::{Blob, SecretBlob};
use kms_api::model::{
    GenerateDataKeyPairRequest, GenerateDataKeyPairResponse, GenerateDataKeyPairWithoutPlaintextRequest,
    GenerateDataKeyPairWithoutPlaintextResponse,
};
use kms_core::key::{DataKeyPairSpec, EncryptionAlgorithm, KeyUsage};
use kms_core::policy::condition_keys;
use kms_crypto::{CryptoError, SecretBytes};

use super::encrypt::seal;
use super::key_access::usable_key;
use super::members::{context, dry_run, grant_tokens, no_recipient, required, violation};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn with_plaintext(
    svc: &Service,
    ctx: &RequestContext,
    req: GenerateDataKeyPairRequest,
) -> Result<GenerateDataKeyPairResponse, ServiceError> {
    no_recipient(req.recipient.as_ref())?;
    let pair = generate(svc, ctx, Operation::GenerateDataKeyPair, req).await?;
    Ok(GenerateDataKeyPairResponse {
        key_id: Some(pair.key_id),
        key_material_id: Some(pair.key_material_id),
        key_pair_spec: Some(pair.spec.as_str().to_owned()),
        private_key_ciphertext_blob: Some(Blob(pair.private_ciphertext)),
        private_key_plaintext: Some(SecretBlob(zeroize::Zeroizing::new(pair.private_key.expose_secret().to_vec()))),
        public_key: Some(Blob(pair.public_key)),
        ciphertext_for_recipient: None,
    })
}

pub(super) async fn without_plaintext(
    svc: &Service,
    ctx: &RequestContext,
    req: GenerateDataKeyPairWithoutPlaintextRequest,
) -> Result<GenerateDataKeyPairWithoutPlaintextResponse, ServiceError> {
    // The same members but `Recipient`, which has no use without a plaintext.
    let req = GenerateDataKeyPairRequest {
        dry_run: req.dry_run,
        encryption_context: req.encryption_context,
        grant_tokens: req.grant_tokens,
        key_id: req.key_id,
        key_pair_spec: req.key_pair_spec,
        recipient: None,
    };
    let pair = generate(svc, ctx, Operation::GenerateDataKeyPairWithoutPlaintext, req).await?;
    Ok(GenerateDataKeyPairWithoutPlaintextResponse {
        key_id: Some(pair.key_id),
        key_material_id: Some(pair.key_material_id),
        key_pair_spec: Some(pair.spec.as_str().to_owned()),
        private_key_ciphertext_blob: Some(Blob(pair.private_ciphertext)),
        public_key: Some(Blob(pair.public_key)),
    })
}

/// A generated pair, its private key sealed under the named key.
struct Pair {
    key_id: String,
    key_material_id: String,
    spec: DataKeyPairSpec,
    private_key: SecretBytes,
    private_ciphertext: Vec<u8>,
    public_key: Vec<u8>,
}

async fn generate(
    svc: &Service,
    ctx: &RequestContext,
    operation: Operation,
    m: GenerateDataKeyPairRequest,
) -> Result<Pair, ServiceError> {
    grant_tokens(m.grant_tokens.as_ref())?;
    let spec = DataKeyPairSpec::parse(&required("keyPairSpec", m.key_pair_spec)?).map_err(violation)?;
    let encryption_context = context(m.encryption_context);
    let request = RequestKeys::none()
        .encryption_context(&encryption_context)
        .with(condition_keys::DATA_KEY_PAIR_SPEC, spec.as_str())
        .with(condition_keys::ENCRYPTION_ALGORITHM, EncryptionAlgorithm::SymmetricDefault.as_str());
    let key = usable_key(svc, ctx, "keyId", m.key_id, operation.action(), request).await?;
    key.record.ensure_usable()?;
    key.record.ensure_usage(operation.name(), KeyUsage::EncryptDecrypt)?;
    key.record.ensure_encryption_algorithm(operation.name(), EncryptionAlgorithm::SymmetricDefault)?;
    dry_run(m.dry_run)?;
    let (private_key, public_key) = key_pair(svc, spec).await?;
    let private_ciphertext =
        seal(svc, &key, EncryptionAlgorithm::SymmetricDefault, &encryption_context, private_key.expose_secret())?;
    Ok(Pair {
        key_id: key.record.arn_string(),
        key_material_id: key.record.current_material.to_string(),
        spec,
        private_key,
        private_ciphertext,
        public_key,
    })
}

/// A fresh pair; RSA pairs (up to a second for RSA_4096) are generated off the request path's
/// threads ([`crate::slow_crypto`]).
async fn key_pair(svc: &Service, spec: DataKeyPairSpec) -> Result<(SecretBytes, Vec<u8>), ServiceError> {
    let rng = Arc::clone(&svc.rng);
    let rsa = matches!(spec, DataKeyPairSpec::Rsa2048 | DataKeyPairSpec::Rsa3072 | DataKeyPairSpec::Rsa4096);
    crate::slow_crypto::run_if(rsa, move || kms_crypto::generate_key_pair(spec, rng.as_ref()))
        .await
        .ok_or(ServiceError::Crypto(CryptoError::UnsupportedKeySpec(spec.key_spec())))?
        .map_err(ServiceError::Crypto)
}
