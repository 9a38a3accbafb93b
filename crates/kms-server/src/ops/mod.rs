//! One handler per AWS operation, and the dispatcher that routes to them.
//!
//! Each handler decodes its DTO, checks it with AWS's constraints, loads what it needs, decides
//! in memory (the key state machine, the crypto) and persists in one store call.

mod cancel_key_deletion;
mod create_alias;
mod create_grant;
mod create_key;
mod decrypt;
mod delete_alias;
mod describe_key;
mod disable_key;
mod disable_key_rotation;
mod enable_key;
mod enable_key_rotation;
mod encrypt;
mod generate_data_key;
mod generate_random;
mod get_key_last_usage;
mod get_key_policy;
mod get_key_rotation_status;
mod grants;
mod list_aliases;
mod list_grants;
mod list_key_policies;
mod list_key_rotations;
mod list_keys;
mod list_resource_tags;
mod list_retirable_grants;
mod put_key_policy;
mod re_encrypt;
mod retire_grant;
mod revoke_grant;
mod rotate_key_on_demand;
mod schedule_key_deletion;
mod tag_resource;
mod untag_resource;
mod update_alias;
mod update_key_description;
pub(crate) mod validate;

use kms_api::{Operation, decode_request, encode_response};
use kms_core::KmsError;
use kms_core::error::Unsupported;

use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// Runs `op` on a request body and returns the response body.
///
/// # Errors
/// Whatever the operation fails with; unimplemented operations answer
/// `UnsupportedOperationException` naming the operation.
pub async fn dispatch(
    svc: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    macro_rules! call {
        ($handler:path) => {
            encode_response(&$handler(svc, ctx, decode_request(body)?).await?)
        };
        // Responses with a body writer of their own (the hot ones).
        (fast $handler:path) => {
            $handler(svc, ctx, decode_request(body)?).await?.to_json()
        };
    }
    Ok(match op {
        Operation::CreateKey => call!(create_key::handle),
        Operation::DescribeKey => call!(describe_key::handle),
        Operation::ListKeys => call!(list_keys::handle),
        Operation::EnableKey => call!(enable_key::handle),
        Operation::DisableKey => call!(disable_key::handle),
        Operation::UpdateKeyDescription => call!(update_key_description::handle),
        Operation::ScheduleKeyDeletion => call!(schedule_key_deletion::handle),
        Operation::CancelKeyDeletion => call!(cancel_key_deletion::handle),
        Operation::Encrypt => call!(fast encrypt::handle),
        Operation::Decrypt => call!(fast decrypt::handle),
        Operation::ReEncrypt => call!(re_encrypt::handle),
        Operation::GenerateDataKey => call!(fast generate_data_key::with_plaintext),
        Operation::GenerateDataKeyWithoutPlaintext => call!(fast generate_data_key::without_plaintext),
        Operation::GenerateRandom => call!(generate_random::handle),
        Operation::CreateAlias => call!(create_alias::handle),
        Operation::UpdateAlias => call!(update_alias::handle),
        Operation::DeleteAlias => call!(delete_alias::handle),
        Operation::ListAliases => call!(list_aliases::handle),
        Operation::TagResource => call!(tag_resource::handle),
        Operation::UntagResource => call!(untag_resource::handle),
        Operation::ListResourceTags => call!(list_resource_tags::handle),
        Operation::PutKeyPolicy => call!(put_key_policy::handle),
        Operation::GetKeyPolicy => call!(get_key_policy::handle),
        Operation::ListKeyPolicies => call!(list_key_policies::handle),
        Operation::CreateGrant => call!(create_grant::handle),
        Operation::GetKeyLastUsage => call!(get_key_last_usage::handle),
        Operation::EnableKeyRotation => call!(enable_key_rotation::handle),
        Operation::DisableKeyRotation => call!(disable_key_rotation::handle),
        Operation::GetKeyRotationStatus => call!(get_key_rotation_status::handle),
        Operation::RotateKeyOnDemand => call!(rotate_key_on_demand::handle),
        Operation::ListKeyRotations => call!(list_key_rotations::handle),
        Operation::ListGrants => call!(list_grants::handle),
        Operation::ListRetirableGrants => call!(list_retirable_grants::handle),
        Operation::RetireGrant => call!(retire_grant::handle),
        Operation::RevokeGrant => call!(revoke_grant::handle),
        Operation::ConnectCustomKeyStore
        | Operation::CreateCustomKeyStore
        | Operation::DeleteCustomKeyStore
        | Operation::DeleteImportedKeyMaterial
        | Operation::DeriveSharedSecret
        | Operation::DescribeCustomKeyStores
        | Operation::DisconnectCustomKeyStore
        | Operation::GenerateDataKeyPair
        | Operation::GenerateDataKeyPairWithoutPlaintext
        | Operation::GenerateMac
        | Operation::GetParametersForImport
        | Operation::GetPublicKey
        | Operation::ImportKeyMaterial
        | Operation::ReplicateKey
        | Operation::Sign
        | Operation::UpdateCustomKeyStore
        | Operation::UpdatePrimaryRegion
        | Operation::Verify
        | Operation::VerifyMac => {
            return Err(KmsError::Unsupported(Unsupported::Operation(op.name().to_owned())).into());
        }
    })
}
