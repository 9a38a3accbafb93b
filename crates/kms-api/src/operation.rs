//! The operation table: every operation of the AWS KMS API, once, with every fact the server
//! derives from it — its `X-Amz-Target` name, its request type (and so its decoder), the IAM
//! action that authorizes it, its request-quota class and whether it only reads or uses a key.
//!
//! Dispatch matches on [`Request`], so an operation added to the table without a handler (or a
//! decision to answer `UnsupportedOperationException`) does not compile; fuzzing decodes
//! through [`Request::decode`]; quotas, audit and metrics read [`Operation`]'s methods.

use crate::model::*;
use crate::{ApiError, decode_request};

/// What an operation does, for the audit trail (`readOnly`) and GetKeyLastUsage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Changes something (a key, an alias, a grant, a policy…).
    Write,
    /// Only reads (Describe*, Get*, List*).
    Read,
    /// Uses a key's material (counts as use of the key; recorded read-only, as CloudTrail does).
    Cryptographic,
}

/// An operation's request-quota class, as AWS KMS's quota table lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaClass {
    /// The quota shared by the symmetric cryptographic operations.
    Symmetric,
    /// Its own quota, with AWS's default rate (requests per second, per account and region).
    Own(u32),
    /// Not in AWS's table: not throttled.
    Unlisted,
}

macro_rules! operations {
    ($($name:ident ($request:ty) : $kind:ident, $quota:expr;)+) => {
        /// Every operation of the AWS KMS API (TrentService), implemented or not.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Operation { $($name),+ }

        impl Operation {
            /// Every operation.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),+];

            /// The operation's name, as in `TrentService.<name>`.
            pub const fn name(self) -> &'static str {
                match self { $(Self::$name => stringify!($name)),+ }
            }

            /// Looks an operation up by name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $(stringify!($name) => Some(Self::$name),)+ _ => None }
            }

            /// The IAM action that authorizes the operation (`kms:<name>`).
            pub const fn action(self) -> &'static str {
                match self { $(Self::$name => concat!("kms:", stringify!($name))),+ }
            }

            /// What the operation does.
            pub const fn kind(self) -> Kind {
                match self { $(Self::$name => Kind::$kind),+ }
            }

            /// The operation's request-quota class.
            pub const fn quota_class(self) -> QuotaClass {
                use QuotaClass::*;
                match self { $(Self::$name => $quota),+ }
            }
        }

        /// A decoded request: one variant per operation, holding its request structure (checked
        /// against AWS's constraints).
        #[derive(Debug)]
        #[allow(missing_docs)]
        pub enum Request { $($name($request)),+ }

        impl Request {
            /// Decodes `body` as the request of `operation`.
            ///
            /// # Errors
            /// `SerializationException` (see [`decode_request`]).
            pub fn decode(operation: Operation, body: &[u8]) -> Result<Self, ApiError> {
                Ok(match operation {
                    $(Operation::$name => Request::$name(decode_request::<$request>(body)?),)+
                })
            }
        }
    };
}

// Name (request type, from the model): kind, quota class (AWS's default rate). Which ones the
// server implements is kms-server's dispatcher's business.
operations! {
    CancelKeyDeletion(CancelKeyDeletionRequest): Write, Own(5);
    ConnectCustomKeyStore(ConnectCustomKeyStoreRequest): Write, Unlisted;
    CreateAlias(CreateAliasRequest): Write, Own(5);
    CreateCustomKeyStore(CreateCustomKeyStoreRequest): Write, Unlisted;
    CreateGrant(CreateGrantRequest): Write, Own(50);
    CreateKey(CreateKeyRequest): Write, Own(5);
    Decrypt(DecryptRequest): Cryptographic, Symmetric;
    DeleteAlias(DeleteAliasRequest): Write, Own(15);
    DeleteCustomKeyStore(DeleteCustomKeyStoreRequest): Write, Unlisted;
    DeleteImportedKeyMaterial(DeleteImportedKeyMaterialRequest): Write, Own(15);
    DeriveSharedSecret(DeriveSharedSecretRequest): Cryptographic, Unlisted;
    DescribeCustomKeyStores(DescribeCustomKeyStoresRequest): Read, Unlisted;
    DescribeKey(DescribeKeyRequest): Read, Own(2_000);
    DisableKey(DisableKeyRequest): Write, Own(5);
    DisableKeyRotation(DisableKeyRotationRequest): Write, Own(5);
    DisconnectCustomKeyStore(DisconnectCustomKeyStoreRequest): Write, Unlisted;
    EnableKey(EnableKeyRequest): Write, Own(5);
    EnableKeyRotation(EnableKeyRotationRequest): Write, Own(15);
    Encrypt(EncryptRequest): Cryptographic, Symmetric;
    GenerateDataKey(GenerateDataKeyRequest): Cryptographic, Symmetric;
    GenerateDataKeyPair(GenerateDataKeyPairRequest): Cryptographic, Unlisted;
    GenerateDataKeyPairWithoutPlaintext(GenerateDataKeyPairWithoutPlaintextRequest): Cryptographic, Unlisted;
    GenerateDataKeyWithoutPlaintext(GenerateDataKeyWithoutPlaintextRequest): Cryptographic, Symmetric;
    GenerateMac(GenerateMacRequest): Cryptographic, Symmetric;
    GenerateRandom(GenerateRandomRequest): Read, Symmetric;
    GetKeyLastUsage(GetKeyLastUsageRequest): Read, Own(5);
    GetKeyPolicy(GetKeyPolicyRequest): Read, Own(1_000);
    GetKeyRotationStatus(GetKeyRotationStatusRequest): Read, Own(1_000);
    GetParametersForImport(GetParametersForImportRequest): Read, Own(1);
    GetPublicKey(GetPublicKeyRequest): Read, Own(2_000);
    ImportKeyMaterial(ImportKeyMaterialRequest): Write, Own(15);
    ListAliases(ListAliasesRequest): Read, Own(100);
    ListGrants(ListGrantsRequest): Read, Own(100);
    ListKeyPolicies(ListKeyPoliciesRequest): Read, Own(100);
    ListKeyRotations(ListKeyRotationsRequest): Read, Own(100);
    ListKeys(ListKeysRequest): Read, Own(500);
    ListResourceTags(ListResourceTagsRequest): Read, Own(2_000);
    ListRetirableGrants(ListRetirableGrantsRequest): Read, Own(100);
    PutKeyPolicy(PutKeyPolicyRequest): Write, Own(15);
    ReEncrypt(ReEncryptRequest): Cryptographic, Symmetric;
    ReplicateKey(ReplicateKeyRequest): Write, Own(5);
    RetireGrant(RetireGrantRequest): Write, Own(50);
    RevokeGrant(RevokeGrantRequest): Write, Own(50);
    RotateKeyOnDemand(RotateKeyOnDemandRequest): Write, Own(5);
    ScheduleKeyDeletion(ScheduleKeyDeletionRequest): Write, Own(15);
    Sign(SignRequest): Cryptographic, Unlisted;
    TagResource(TagResourceRequest): Write, Own(10);
    UntagResource(UntagResourceRequest): Write, Own(5);
    UpdateAlias(UpdateAliasRequest): Write, Own(5);
    UpdateCustomKeyStore(UpdateCustomKeyStoreRequest): Write, Unlisted;
    UpdateKeyDescription(UpdateKeyDescriptionRequest): Write, Own(5);
    UpdatePrimaryRegion(UpdatePrimaryRegionRequest): Write, Own(5);
    Verify(VerifyRequest): Cryptographic, Unlisted;
    VerifyMac(VerifyMacRequest): Cryptographic, Symmetric;
}

/// The service prefix of every IAM action of AWS KMS.
pub const ACTION_PREFIX: &str = "kms:";

/// The IAM actions that authorize ReEncrypt: one on the source key, one on the destination
/// (AWS has no `kms:ReEncrypt` action).
pub mod re_encrypt_actions {
    /// On the key that decrypts.
    pub const FROM: &str = "kms:ReEncryptFrom";
    /// On the key that encrypts.
    pub const TO: &str = "kms:ReEncryptTo";
}

impl Operation {
    /// Parses an `X-Amz-Target` header value.
    pub fn from_target(target: &str) -> Option<Self> {
        target.strip_prefix(crate::TARGET_PREFIX).and_then(Self::from_name)
    }

    /// Whether the operation only reads (CloudTrail's `readOnly`; cryptographic operations are
    /// recorded as read-only).
    pub const fn is_read_only(self) -> bool {
        !matches!(self.kind(), Kind::Write)
    }

    /// Whether the operation uses a key's material (what GetKeyLastUsage reports).
    pub const fn is_cryptographic(self) -> bool {
        matches!(self.kind(), Kind::Cryptographic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_round_trip() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_target(&format!("TrentService.{}", op.name())), Some(*op));
            assert_eq!(op.action(), format!("kms:{}", op.name()));
        }
        assert_eq!(Operation::from_target("TrentService.Nope"), None);
        assert_eq!(Operation::from_target("Encrypt"), None);
    }

    /// The kinds follow AWS's naming: Describe/Get/List read, the data-plane operations use
    /// keys, and everything else writes (GenerateRandom reads: it touches no key).
    #[test]
    fn kinds_follow_the_names() {
        for op in Operation::ALL {
            let name = op.name();
            let reads = ["Describe", "Get", "List"].iter().any(|p| name.starts_with(p));
            match op.kind() {
                Kind::Read => assert!(reads || name == "GenerateRandom", "{name}"),
                Kind::Write => assert!(!reads, "{name}"),
                Kind::Cryptographic => assert!(!reads, "{name}"),
            }
        }
    }

    /// The operations that count as use of a key are the table's cryptographic ones (kms-core
    /// keeps the list by name for the stores, which do not know the wire layer).
    #[test]
    fn cryptographic_operations_match_kms_core() {
        let mut from_table: Vec<&str> =
            Operation::ALL.iter().filter(|op| op.is_cryptographic()).map(|op| op.name()).collect();
        let mut in_core = kms_core::audit::CRYPTOGRAPHIC_OPERATIONS.to_vec();
        from_table.sort_unstable();
        in_core.sort_unstable();
        assert_eq!(from_table, in_core);
    }

    /// Every operation decodes its body into its own request structure.
    #[test]
    fn every_operation_decodes_its_request() {
        assert!(Request::decode(Operation::Sign, b"not json").is_err());
        assert!(matches!(
            Request::decode(Operation::Sign, br#"{"KeyId":"k","Message":"AA==","SigningAlgorithm":"ECDSA_SHA_256"}"#),
            Ok(Request::Sign(_))
        ));
        assert!(matches!(Request::decode(Operation::ListKeys, b""), Ok(Request::ListKeys(_))));
    }
}
