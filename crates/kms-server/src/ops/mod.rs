//! One handler per AWS operation, and the dispatcher that routes to them.
//!
//! Each handler decodes its DTO, checks it with AWS's constraints, loads what it needs, decides
//! in memory (the key state machine, the crypto) and persists in one store call.

mod cancel_key_deletion;
mod create_alias;
mod create_grant;
pub(crate) mod create_key;
mod decrypt;
mod delete_alias;
mod delete_imported_key_material;
mod derive_shared_secret;
mod describe_key;
mod disable_key;
mod disable_key_rotation;
mod enable_key;
mod enable_key_rotation;
mod encrypt;
mod generate_data_key;
mod generate_data_key_pair;
mod generate_mac;
mod generate_random;
mod get_key_last_usage;
mod get_key_policy;
mod get_key_rotation_status;
mod get_parameters_for_import;
mod get_public_key;
mod grant_rules;
mod import_key_material;
mod import_token;
pub(crate) mod key_access;
mod list_aliases;
mod list_grants;
mod list_key_policies;
mod list_key_rotations;
mod list_keys;
mod list_resource_tags;
mod list_retirable_grants;
pub(crate) mod members;
pub(crate) mod multi_region;
mod put_key_policy;
mod re_encrypt;
mod replicate_key;
mod retire_grant;
mod revoke_grant;
mod rotate_key_on_demand;
mod schedule_key_deletion;
mod sign;
mod tag_resource;
mod untag_resource;
mod update_alias;
mod update_key_description;
mod update_primary_region;
mod verify;
mod verify_mac;

use kms_api::{Operation, Request, encode_response};
use kms_core::KmsError;
use kms_core::error::Unsupported;

use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// Runs `op` on a request body and returns the response body.
///
/// # Errors
/// Whatever the operation fails with; the operations not implemented yet (the last arm) answer
/// `UnsupportedOperationException` naming the operation, after their request was decoded and
/// checked like any other.
pub async fn dispatch(
    svc: &Service,
    ctx: &RequestContext,
    op: Operation,
    body: &[u8],
) -> Result<Vec<u8>, ServiceError> {
    macro_rules! call {
        ($handler:path, $request:ident) => {
            encode_response(&$handler(svc, ctx, $request).await?)
        };
        // Responses with a body writer of their own (the hot ones).
        (fast $handler:path, $request:ident) => {
            $handler(svc, ctx, $request).await?.to_json()
        };
    }
    // One arm per row of the operation table (exhaustive: implementing an operation is moving it
    // from the last arm to one of its own).
    Ok(match Request::decode(op, body)? {
        Request::CreateKey(r) => call!(create_key::handle, r),
        Request::DescribeKey(r) => call!(describe_key::handle, r),
        Request::ListKeys(r) => call!(list_keys::handle, r),
        Request::EnableKey(r) => call!(enable_key::handle, r),
        Request::DisableKey(r) => call!(disable_key::handle, r),
        Request::UpdateKeyDescription(r) => call!(update_key_description::handle, r),
        Request::ScheduleKeyDeletion(r) => call!(schedule_key_deletion::handle, r),
        Request::CancelKeyDeletion(r) => call!(cancel_key_deletion::handle, r),
        Request::Encrypt(r) => call!(fast encrypt::handle, r),
        Request::Decrypt(r) => call!(fast decrypt::handle, r),
        Request::ReEncrypt(r) => call!(re_encrypt::handle, r),
        Request::GenerateDataKey(r) => call!(fast generate_data_key::with_plaintext, r),
        Request::GenerateDataKeyWithoutPlaintext(r) => call!(fast generate_data_key::without_plaintext, r),
        Request::GenerateRandom(r) => call!(generate_random::handle, r),
        Request::CreateAlias(r) => call!(create_alias::handle, r),
        Request::UpdateAlias(r) => call!(update_alias::handle, r),
        Request::DeleteAlias(r) => call!(delete_alias::handle, r),
        Request::ListAliases(r) => call!(list_aliases::handle, r),
        Request::TagResource(r) => call!(tag_resource::handle, r),
        Request::UntagResource(r) => call!(untag_resource::handle, r),
        Request::ListResourceTags(r) => call!(list_resource_tags::handle, r),
        Request::PutKeyPolicy(r) => call!(put_key_policy::handle, r),
        Request::GetKeyPolicy(r) => call!(get_key_policy::handle, r),
        Request::ListKeyPolicies(r) => call!(list_key_policies::handle, r),
        Request::CreateGrant(r) => call!(create_grant::handle, r),
        Request::GetKeyLastUsage(r) => call!(get_key_last_usage::handle, r),
        Request::EnableKeyRotation(r) => call!(enable_key_rotation::handle, r),
        Request::DisableKeyRotation(r) => call!(disable_key_rotation::handle, r),
        Request::GetKeyRotationStatus(r) => call!(get_key_rotation_status::handle, r),
        Request::RotateKeyOnDemand(r) => call!(rotate_key_on_demand::handle, r),
        Request::ListKeyRotations(r) => call!(list_key_rotations::handle, r),
        Request::ListGrants(r) => call!(list_grants::handle, r),
        Request::ListRetirableGrants(r) => call!(list_retirable_grants::handle, r),
        Request::RetireGrant(r) => call!(retire_grant::handle, r),
        Request::RevokeGrant(r) => call!(revoke_grant::handle, r),
        Request::Sign(r) => call!(fast sign::handle, r),
        Request::Verify(r) => call!(verify::handle, r),
        Request::GetPublicKey(r) => call!(get_public_key::handle, r),
        Request::GenerateMac(r) => call!(generate_mac::handle, r),
        Request::VerifyMac(r) => call!(verify_mac::handle, r),
        Request::DeriveSharedSecret(r) => call!(derive_shared_secret::handle, r),
        Request::GenerateDataKeyPair(r) => call!(generate_data_key_pair::with_plaintext, r),
        Request::GenerateDataKeyPairWithoutPlaintext(r) => call!(generate_data_key_pair::without_plaintext, r),
        Request::GetParametersForImport(r) => call!(get_parameters_for_import::handle, r),
        Request::ImportKeyMaterial(r) => call!(import_key_material::handle, r),
        Request::DeleteImportedKeyMaterial(r) => call!(delete_imported_key_material::handle, r),
        Request::ReplicateKey(r) => call!(replicate_key::handle, r),
        Request::UpdatePrimaryRegion(r) => call!(update_primary_region::handle, r),
        Request::ConnectCustomKeyStore(_)
        | Request::CreateCustomKeyStore(_)
        | Request::DeleteCustomKeyStore(_)
        | Request::DescribeCustomKeyStores(_)
        | Request::DisconnectCustomKeyStore(_)
        | Request::UpdateCustomKeyStore(_) => {
            return Err(KmsError::Unsupported(Unsupported::Operation(op.name().to_owned())).into());
        }
    })
}
