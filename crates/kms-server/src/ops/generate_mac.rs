//! GenerateMac: an HMAC of a message with a key of usage GENERATE_VERIFY_MAC.

use kms_api::Operation;
use kms_api::base64_members::Blob;
use kms_api::model::{GenerateMacRequest, GenerateMacResponse};
use kms_core::key::{KeyUsage, MacAlgorithm};
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
    req: GenerateMacRequest,
) -> Result<GenerateMacResponse, ServiceError> {
    grant_tokens(req.grant_tokens.as_ref())?;
    let algorithm = MacAlgorithm::parse(&required("macAlgorithm", req.mac_algorithm)?).map_err(violation)?;
    let message = required("message", req.message)?;
    let key = mac_key(svc, ctx, req.key_id, Operation::GenerateMac, algorithm).await?;
    dry_run(req.dry_run)?;
    let material = key.current().ok_or(ServiceError::Crypto(CryptoError::KeyLength))?;
    let mac = material.generate_mac(algorithm, message.expose_secret()).map_err(ServiceError::Crypto)?;
    Ok(GenerateMacResponse {
        key_id: Some(key.record.arn_string()),
        mac: Some(Blob(mac)),
        mac_algorithm: Some(algorithm.as_str().to_owned()),
    })
}

/// The key a GenerateMac or VerifyMac names, resolved, authorized with the algorithm as a
/// condition key, and checked: enabled, GENERATE_VERIFY_MAC, and the algorithm its spec's.
pub(super) async fn mac_key(
    svc: &Service,
    ctx: &RequestContext,
    key_id: Option<String>,
    operation: Operation,
    algorithm: MacAlgorithm,
) -> Result<std::sync::Arc<CachedKey>, ServiceError> {
    let request = RequestKeys::none().with(condition_keys::MAC_ALGORITHM, algorithm.as_str());
    let key = usable_key(svc, ctx, "keyId", key_id, operation.action(), request).await?;
    key.record.ensure_usable()?;
    key.record.ensure_usage(operation.name(), KeyUsage::GenerateVerifyMac)?;
    key.record.ensure_spec_algorithm(key.record.mac_algorithms(), algorithm, algorithm.as_str())?;
    Ok(key)
}
