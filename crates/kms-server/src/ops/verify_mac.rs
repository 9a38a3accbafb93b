//! VerifyMac: whether a MAC is the key's over a message (compared in constant time).

use kms_api::Operation;
use kms_api::model::{VerifyMacRequest, VerifyMacResponse};
use kms_core::KmsError;
use kms_core::key::MacAlgorithm;
use kms_crypto::CryptoError;

use super::generate_mac::mac_key;
use super::members::{dry_run, grant_tokens, required, violation};
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: VerifyMacRequest,
) -> Result<VerifyMacResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let algorithm = MacAlgorithm::parse(&required("macAlgorithm", req.mac_algorithm)?).map_err(violation)?;
    let message = required("message", req.message)?;
    let mac = required("mac", req.mac)?;
    let key = mac_key(svc, ctx, req.key_id, Operation::VerifyMac, algorithm).await?;
    dry_run(req.dry_run)?;
    let material = key.current().ok_or(ServiceError::Crypto(CryptoError::KeyLength))?;
    if !material.verify_mac(algorithm, message.expose_secret(), &mac.0).map_err(ServiceError::Crypto)? {
        return Err(KmsError::InvalidMac.into());
    }
    Ok(VerifyMacResponse {
        key_id: Some(key.record.arn_string()),
        mac_valid: Some(true),
        mac_algorithm: Some(algorithm.as_str().to_owned()),
    })
}
