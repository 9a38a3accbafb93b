//! GetParametersForImport: a fresh wrapping key pair (RSA 2048/3072/4096, or SM2) for importing
//! material into one `EXTERNAL` key, with the import token that carries its private half
//! ([`super::import_token`]); both are valid for 24 hours.

use kms_api::Operation;
use kms_api::base64_members::{Blob, SecretBlob};
use kms_api::model::{GetParametersForImportRequest, GetParametersForImportResponse};
use kms_core::KmsError;
use kms_core::error::{RequestRule, Unsupported};
use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{KeySpec, KeyState};
use kms_core::policy::condition_keys;
use kms_crypto::{KeyHandle, KeySecret, WrappingAlgorithm};
use std::sync::Arc;

use super::import_token;
use super::key_access::managed_key;
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GetParametersForImportRequest,
) -> Result<GetParametersForImportResponse, ServiceError> {
    let algorithm_name = req.wrapping_algorithm.unwrap_or_default();
    let spec_name = req.wrapping_key_spec.unwrap_or_default();
    let request = RequestKeys::none()
        .with(condition_keys::WRAPPING_ALGORITHM, algorithm_name.clone())
        .with(condition_keys::WRAPPING_KEY_SPEC, spec_name.clone());
    let key = managed_key(svc, ctx, req.key_id, Operation::GetParametersForImport.action(), request).await?;
    let record = &key.record;
    record.ensure_external()?;
    if matches!(record.state, KeyState::PendingDeletion | KeyState::PendingReplicaDeletion) {
        return Err(KmsError::InvalidState { arn: record.arn(), state: record.state }.into());
    }
    let Some(algorithm) = WrappingAlgorithm::parse(&algorithm_name) else {
        return Err(KmsError::Unsupported(Unsupported::Wrapping(format!(
            "The wrapping algorithm {algorithm_name} is no longer supported; use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256."
        )))
        .into());
    };
    // The model's enum checked the name: RSA_2048, RSA_3072, RSA_4096 or SM2.
    let spec = KeySpec::parse(&spec_name).map_err(super::members::violation)?;
    if !algorithm.fits(spec) {
        return Err(KmsError::InvalidRequest(RequestRule::WrappingCombination {
            algorithm: algorithm_name,
            spec: spec_name,
        })
        .into());
    }
    ctx.key_arn.set(record.arn_string());
    let rng = Arc::clone(&svc.rng);
    let rsa = spec != KeySpec::Sm2;
    let generated = crate::slow_crypto::run_if(rsa, move || {
        let secret = KeySecret::generate(spec, rng.as_ref())?;
        let handle = KeyHandle::from_secret(KeyId::from_bytes([0; 16]), MaterialId::from_bytes([0; 32]), &secret)?;
        Ok::<_, kms_crypto::CryptoError>((secret, handle))
    })
    .await
    .ok_or(ServiceError::Crypto(kms_crypto::CryptoError::UnsupportedKeySpec(spec)))?;
    let (secret, handle) = generated.map_err(ServiceError::Crypto)?;
    let public_key = handle.public_key_der().map_err(ServiceError::Crypto)?.to_vec();
    let valid_to = svc.clock.now().plus_millis(import_token::VALIDITY_MILLIS);
    let token = import_token::seal(svc.root.as_ref(), &record.arn(), algorithm, &secret, valid_to)?;
    Ok(GetParametersForImportResponse {
        key_id: Some(record.arn_string()),
        import_token: Some(Blob(token)),
        public_key: Some(SecretBlob(public_key.into())),
        parameters_valid_to: Some(valid_to.epoch_seconds_f64()),
    })
}
