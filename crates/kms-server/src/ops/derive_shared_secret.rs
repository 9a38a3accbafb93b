//! DeriveSharedSecret: the raw ECDH shared secret of a KEY_AGREEMENT key and a peer's public
//! key (DER SubjectPublicKeyInfo on the key's curve).

use kms_api::Operation;
use kms_api::base64_members::SecretBlob;
use kms_api::model::{DeriveSharedSecretRequest, DeriveSharedSecretResponse};
use kms_core::KmsError;
use kms_core::error::RequestRule;
use kms_core::key::{KeyAgreementAlgorithm, KeyUsage};
use kms_core::policy::condition_keys;
use kms_crypto::CryptoError;

use super::key_access::usable_key;
use super::members::{dry_run, grant_tokens, no_recipient, required, violation};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: DeriveSharedSecretRequest,
) -> Result<DeriveSharedSecretResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let algorithm = KeyAgreementAlgorithm::parse(&required("keyAgreementAlgorithm", req.key_agreement_algorithm)?)
        .map_err(violation)?;
    let peer = required("publicKey", req.public_key)?;
    no_recipient(req.recipient.as_ref())?;
    let request = RequestKeys::none().with(condition_keys::KEY_AGREEMENT_ALGORITHM, algorithm.as_str());
    let operation = Operation::DeriveSharedSecret;
    let key = usable_key(svc, ctx, "keyId", req.key_id, operation.action(), request).await?;
    key.record.ensure_usable()?;
    key.record.ensure_usage(operation.name(), KeyUsage::KeyAgreement)?;
    key.record.ensure_spec_algorithm(key.record.key_agreement_algorithms(), algorithm, algorithm.as_str())?;
    dry_run(req.dry_run)?;
    let material = key.current().ok_or(ServiceError::Crypto(CryptoError::KeyLength))?;
    let secret = material.derive_shared_secret(algorithm, &peer.0).map_err(|e| match e {
        CryptoError::InvalidPeerKey => {
            KmsError::InvalidRequest(RequestRule::PeerPublicKey(key.record.key_spec.as_str())).into()
        }
        e => ServiceError::Crypto(e),
    })?;
    Ok(DeriveSharedSecretResponse {
        key_id: Some(key.record.arn_string()),
        shared_secret: Some(SecretBlob(zeroize::Zeroizing::new(secret.expose_secret().to_vec()))),
        key_agreement_algorithm: Some(algorithm.as_str().to_owned()),
        key_origin: Some(key.record.origin.as_str().to_owned()),
        ciphertext_for_recipient: None,
    })
}
