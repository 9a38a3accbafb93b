//! GenerateRandom: bytes from the system CSPRNG.

use kms_api::Operation;
use kms_api::base64_members::SecretBlob;
use kms_api::model::{GenerateRandomRequest, GenerateRandomResponse};
use kms_core::KmsError;
use kms_core::error::{RequestRule, Unsupported};
use zeroize::Zeroizing;

use super::members::{no_recipient, number_of_bytes};
use crate::authz::RequestKeys;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

pub(super) async fn handle(
    svc: &Service,
    ctx: &RequestContext,
    req: GenerateRandomRequest,
) -> Result<GenerateRandomResponse, ServiceError> {
    let n = req.number_of_bytes.ok_or(KmsError::InvalidRequest(RequestRule::NumberOfBytesRequired))?;
    let len = number_of_bytes(n)?;
    no_recipient(req.recipient.as_ref())?;
    if req.custom_key_store_id.is_some() {
        return Err(KmsError::Unsupported(Unsupported::CustomKeyStore).into());
    }
    svc.authorize_iam(ctx, Operation::GenerateRandom.action(), "*", RequestKeys::none()).await?;
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    svc.rng.fill(&mut bytes);
    Ok(GenerateRandomResponse { plaintext: Some(SecretBlob(bytes)), ciphertext_for_recipient: None })
}
