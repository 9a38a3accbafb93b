//! Domain errors. Each variant carries typed fields; its `Display` is the message a client
//! sees. `kms-api` maps each variant to exactly one AWS exception name and HTTP status.

use crate::ids::{AliasArn, AliasNameError, KeyArn};
use crate::key::KeyState;
use crate::policy::PolicyError;
use crate::tag::TagError;
use crate::validation::Violations;

/// Everything a KMS request can fail with in the domain (not I/O, not authentication).
#[derive(Debug, Clone, thiserror::Error)]
pub enum KmsError {
    /// The key or alias does not exist, or the reference is malformed (`NotFoundException`).
    #[error("{0}")]
    NotFound(NotFound),
    /// The key is disabled (`DisabledException`).
    #[error("{0} is disabled.")]
    Disabled(KeyArn),
    /// The key's state forbids the operation (`KMSInvalidStateException`).
    #[error("{arn} is {}.", state.described())]
    InvalidState {
        /// The key.
        arn: KeyArn,
        /// Its current state.
        state: KeyState,
    },
    /// CancelKeyDeletion on a key that is not pending deletion (`KMSInvalidStateException`).
    #[error("{0} is not pending deletion.")]
    NotPendingDeletion(KeyArn),
    /// The ciphertext is not ours, was altered, or the encryption context differs
    /// (`InvalidCiphertextException`). Deliberately one message for all causes.
    #[error("")]
    InvalidCiphertext,
    /// Verify: the signature is not the key's over the message (`KMSInvalidSignatureException`).
    #[error("")]
    InvalidSignature,
    /// VerifyMac: the MAC is not the key's over the message (`KMSInvalidMacException`).
    #[error("")]
    InvalidMac,
    /// The key named in the request is not the key that produced the ciphertext
    /// (`IncorrectKeyException`).
    #[error("The key ID in the request does not identify a CMK that can perform this operation.")]
    IncorrectKey,
    /// Request members violate their constraints (`ValidationException`).
    #[error("{0}")]
    Validation(Violations),
    /// A request-level rule is broken (`ValidationException` with a free-form message).
    #[error("{0}")]
    InvalidRequest(RequestRule),
    /// The key cannot be used this way (`InvalidKeyUsageException`).
    #[error("{0}")]
    InvalidKeyUsage(Box<KeyUsageError>),
    /// The alias already exists (`AlreadyExistsException`).
    #[error("An alias with the name {0} already exists")]
    AlreadyExists(AliasArn),
    /// The alias name breaks the naming rules (`InvalidAliasNameException`).
    #[error("{0}")]
    InvalidAliasName(AliasNameError),
    /// A quota is exceeded (`LimitExceededException`).
    #[error("{0}")]
    LimitExceeded(Limit),
    /// The key policy document is not acceptable (`MalformedPolicyDocumentException`).
    #[error("{0}")]
    MalformedPolicyDocument(PolicyError),
    /// The new key policy would lock the caller out (`MalformedPolicyDocumentException`).
    #[error("The new key policy will not allow you to update the key policy in the future.")]
    PolicyLockout,
    /// A tag is not acceptable (`TagException`).
    #[error("{0}")]
    Tag(TagError),
    /// A pagination marker we did not issue (`InvalidMarkerException`).
    #[error("Invalid marker")]
    InvalidMarker,
    /// A grant token we did not issue (`InvalidGrantTokenException`).
    #[error("Invalid grant token")]
    InvalidGrantToken,
    /// The caller may not do this (`AccessDeniedException`).
    #[error("User: {} is not authorized to perform: {} on resource: {} {}", .0.principal, .0.action, .0.resource, .0.reason)]
    AccessDenied(Box<AccessDenied>),
    /// The request would have succeeded but asked for a dry run (`DryRunOperationException`).
    #[error("The request would have succeeded, but the DryRun option is set.")]
    DryRun,
    /// A valid AWS feature ferrokms does not offer yet (`UnsupportedOperationException`).
    #[error("{0}")]
    Unsupported(Unsupported),
    /// A multi-Region key already has a key in the region (`AlreadyExistsException`).
    #[error("{arn} already has a related multi-Region key in {region}.")]
    ReplicaExists {
        /// The key asked to replicate.
        arn: KeyArn,
        /// The region.
        region: String,
    },
    /// A multi-Region key has no replica in the region (`NotFoundException`).
    #[error("{arn} has no replica key in {region}.")]
    NoReplica {
        /// The primary key.
        arn: KeyArn,
        /// The region.
        region: String,
    },
    /// Importing key material failed (`InvalidImportTokenException`,
    /// `ExpiredImportTokenException`, `IncorrectKeyMaterialException`, …; see [`ImportError`]).
    #[error("{0}")]
    Import(ImportError),
}

/// Why GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial or an on-demand
/// rotation of imported material was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImportError {
    /// The key's material was not imported (`UnsupportedOperationException`).
    #[error("{0} does not have EXTERNAL origin: only keys created for imported key material take imported material.")]
    NotExternal(KeyArn),
    /// The import token was not issued for this key, or was altered (`InvalidImportTokenException`).
    #[error("The import token is not valid for {0}.")]
    InvalidToken(KeyArn),
    /// The import token's 24 hours are over (`ExpiredImportTokenException`).
    #[error("The import token expired; call GetParametersForImport for a new one.")]
    ExpiredToken,
    /// The material is not a key of the key's spec, or differs from what the key must keep
    /// (`IncorrectKeyMaterialException`).
    #[error("{0}")]
    IncorrectMaterial(String),
    /// DeleteImportedKeyMaterial of a material the key never had (`NotFoundException`).
    #[error("Key material {material} is not associated with {arn}.")]
    UnknownMaterial {
        /// The key.
        arn: KeyArn,
        /// The material id asked for.
        material: String,
    },
    /// The material is already deleted, or a second new material waits to become current
    /// (`KMSInvalidStateException`).
    #[error("{0}")]
    MaterialState(String),
}

/// Why a key or alias was not found.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotFound {
    /// No such key.
    #[error("Key '{0}' does not exist")]
    Key(KeyArn),
    /// No such alias.
    #[error("Alias {0} is not found.")]
    Alias(AliasArn),
    /// The `KeyId` member is not a key id (or not one this operation accepts).
    #[error("Invalid keyId '{0}'")]
    InvalidKeyId(String),
    /// The `KeyId` member looks like an ARN but is not a KMS key or alias ARN.
    #[error("Invalid arn {0}")]
    InvalidArn(String),
    /// No such grant.
    #[error("Grant ID {0} not found")]
    Grant(String),
    /// A key policy name other than `default`.
    #[error("No such policy exists: {0}")]
    Policy(String),
    /// The ARN names a different region than the request's (AWS names just that region).
    #[error("Invalid arn {0}")]
    ForeignRegion(crate::ids::Region),
}

/// Request-level rules that AWS reports as `ValidationException` with their own wording.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestRule {
    /// GenerateDataKey: exactly one of KeySpec and NumberOfBytes.
    #[error("Please specify either number of bytes or key spec.")]
    KeySpecXorNumberOfBytes,
    /// A key in another account was named for an operation that only works in the caller's.
    #[error("Cross-account access is not supported for this operation.")]
    CrossAccount,
    /// ScheduleKeyDeletion: the window must be 7–30 days.
    #[error("PendingWindowInDays should be between 7 and 30, but it is {0}")]
    PendingWindow(i64),
    /// An alias name without the `alias/` prefix.
    #[error(
        "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html"
    )]
    AliasPrefix,
    /// CreateAlias/UpdateAlias with a name the wire pattern allows but AWS refuses (a colon).
    #[error("{0} contains invalid characters for an alias")]
    AliasCharacters(String),
    /// CreateKey with both KeySpec and the deprecated CustomerMasterKeySpec.
    #[error(
        "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated."
    )]
    BothKeySpecs,
    /// UpdateAlias to a key of a different type or usage.
    #[error(
        "{0} cannot be the target of this alias: it differs in key type or key usage from the alias's current key."
    )]
    AliasTargetMismatch(crate::ids::KeyArn),
    /// A grant operation the key type does not support.
    #[error("Grant operation {0} is not permitted for this key type.")]
    GrantOperation(String),
    /// A grant with both kinds of encryption-context constraint.
    #[error("A grant constraint may specify EncryptionContextEquals or EncryptionContextSubset, not both.")]
    GrantConstraints,
    /// RetireGrant needs a grant token, or a key id with a grant id.
    #[error("Specify either a GrantToken, or both KeyId and GrantId.")]
    RetireGrantTarget,
    /// GenerateRandom without NumberOfBytes.
    #[error("NumberOfBytes is required.")]
    NumberOfBytesRequired,
    /// CreateGrant: a grant names one grantee, an IAM principal or an AWS service principal
    /// (and at most one retiring principal of either kind).
    #[error("Specify either {0} or {1}, not both.")]
    OneOf(&'static str, &'static str),
    /// CreateGrant: a SourceArn constraint on a grant whose grantee is not a service principal.
    #[error("The SourceArn grant constraint can be used only with a GranteeServicePrincipal.")]
    SourceArnWithoutService,
    /// CreateKey: a key other than a symmetric encryption key names its usage.
    #[error("You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")]
    KeyUsageRequired,
    /// CreateKey: a usage the key spec does not have.
    #[error("KeyUsage {usage} is not compatible with KeySpec {spec}.")]
    KeyUsageForSpec {
        /// The requested usage.
        usage: &'static str,
        /// The requested spec.
        spec: &'static str,
    },
    /// Sign/Verify: a message type the key spec does not take.
    #[error("Message type {message_type} is incompatible with key spec {spec}.")]
    MessageTypeForSpec {
        /// The requested message type.
        message_type: &'static str,
        /// The key's spec.
        spec: &'static str,
    },
    /// Sign/Verify: a digest whose length is not the algorithm's hash length.
    #[error("Digest is invalid length for algorithm {0}.")]
    DigestLength(&'static str),
    /// Sign/Verify with MessageType RAW: a message over 4096 bytes.
    #[error("Message is too long for MessageType RAW; use DIGEST for messages over 4096 bytes.")]
    RawMessageTooLong,
    /// DeriveSharedSecret: a peer public key that is not a DER public key on the key's curve.
    #[error("PublicKey is not a valid DER-encoded public key for the key spec {0}.")]
    PeerPublicKey(&'static str),
    /// A rule of a request member stated in its own words (ImportKeyMaterial's ValidTo with
    /// KEY_MATERIAL_EXPIRES only, and then required; a KeyMaterialId's form; …).
    #[error("{0}")]
    Rule(&'static str),
    /// ImportKeyMaterial: a KeyMaterialId with ImportType NEW_KEY_MATERIAL.
    #[error("You cannot specify a KeyMaterialId with ImportType NEW_KEY_MATERIAL.")]
    KeyMaterialIdWithNewMaterial,
    /// ImportKeyMaterial: KeyMaterialDescription and KeyMaterialId are for symmetric keys only.
    #[error("{0} is only valid for symmetric encryption KMS keys.")]
    SymmetricOnlyMember(&'static str),
    /// GetParametersForImport: a wrapping algorithm that does not fit the wrapping key spec.
    #[error("Wrapping algorithm {algorithm} cannot be used with wrapping key spec {spec}.")]
    WrappingCombination {
        /// The wrapping algorithm.
        algorithm: String,
        /// The wrapping key spec.
        spec: String,
    },
    /// Encrypt with an asymmetric key: a plaintext longer than the algorithm can take.
    #[error("Plaintext is too long for {algorithm} with key spec {spec}: at most {max} bytes.")]
    PlaintextForAlgorithm {
        /// The algorithm.
        algorithm: &'static str,
        /// The key's spec.
        spec: &'static str,
        /// The longest plaintext.
        max: usize,
    },
}

/// Why a key cannot be used the way the request asks.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyUsageError {
    /// The algorithm is not one the key supports.
    #[error("{arn} key usage is {usage} which is not valid for {operation}.")]
    Operation {
        /// The key.
        arn: KeyArn,
        /// The key's usage, as on the wire.
        usage: &'static str,
        /// The operation.
        operation: String,
    },
    /// An algorithm the key's spec does not have (signing, MAC, key agreement).
    #[error("Algorithm {algorithm} is incompatible with key spec {spec}.")]
    SpecAlgorithm {
        /// The requested algorithm, as on the wire.
        algorithm: &'static str,
        /// The key's spec.
        spec: &'static str,
    },
    /// The algorithm is not one the key supports.
    #[error("{arn} key usage is {usage} which is not valid for {operation} with algorithm {algorithm}.")]
    Algorithm {
        /// The key.
        arn: KeyArn,
        /// The key's usage, as on the wire.
        usage: &'static str,
        /// The operation.
        operation: String,
        /// The requested algorithm, as on the wire.
        algorithm: String,
    },
}

/// A quota that a request would exceed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
pub enum Limit {
    /// Too many tags on one key after a TagResource.
    #[error("The request would exceed the limit of {0} tags per KMS key.")]
    TagsPerKey(usize),
    /// Too many on-demand rotations of one key.
    #[error("The key has reached the limit of {0} on-demand rotations.")]
    OnDemandRotations(u32),
    /// Too many grants on one key.
    #[error("The request would exceed the limit of {0} grants per KMS key.")]
    GrantsPerKey(usize),
    /// A key policy larger than the service quota.
    #[error("The key policy exceeds the maximum size of {0} bytes.")]
    PolicySize(usize),
    /// Too many aliases in the account and region.
    #[error("The number of aliases would exceed the limit of {0}.")]
    Aliases(usize),
    /// Too many customer managed keys in the account and region (AWS's wording, with the
    /// quota and the current count).
    #[error("Key quota for this account in this region is {limit}, current usage is {usage}.")]
    Keys {
        /// The quota.
        limit: usize,
        /// Keys counted (at least the quota).
        usage: usize,
    },
    /// Too many aliases for one key (AWS's wording).
    #[error("Aliases per key quota for this account in this region is {limit}, current usage is {usage}.")]
    AliasesPerKey {
        /// The quota.
        limit: usize,
        /// Aliases on the key.
        usage: usize,
    },
    /// Too many grants for one grantee principal on one key.
    #[error("The request would exceed the limit of {0} grants for the grantee principal on this KMS key.")]
    GrantsPerPrincipal(usize),
}

/// An AWS feature ferrokms does not implement yet.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unsupported {
    /// A whole operation.
    #[error("ferrokms does not implement the {0} operation yet.")]
    Operation(String),
    /// A key origin other than AWS_KMS.
    #[error("ferrokms does not support Origin {0} yet; only AWS_KMS keys can be created.")]
    Origin(&'static str),
    /// Rotation of a key that cannot rotate.
    #[error(
        "{0} does not support automatic or on-demand key rotation (only symmetric encryption keys with key material generated by ferrokms do)."
    )]
    Rotation(String),
    /// GetPublicKey of a symmetric (encryption or HMAC) key.
    #[error("{0} is a symmetric KMS key, which has no public key.")]
    PublicKey(String),
    /// Custom key stores.
    #[error("ferrokms does not support custom key stores.")]
    CustomKeyStore,
    /// `Recipient` (Nitro Enclaves attestation): AWS would return only enclave-encrypted
    /// output, so answering in the clear would be wrong.
    #[error("ferrokms does not support the Recipient parameter (Nitro Enclaves attestation).")]
    Recipient,
    /// A multi-Region operation on a single-Region key.
    #[error("{0} is not a multi-Region key.")]
    NotMultiRegion(String),
    /// An operation of a multi-Region primary key asked of a replica.
    #[error("{arn} is a multi-Region replica key: {operation} is performed on its primary key, in {primary}.")]
    ReplicaKey {
        /// The replica.
        arn: String,
        /// The operation.
        operation: &'static str,
        /// The primary key's region.
        primary: String,
    },

    /// Imported material for a key spec AWS does not take it for.
    #[error("You cannot import key material into {0} KMS keys.")]
    ImportSpec(&'static str),
    /// A wrapping algorithm or wrapping key spec AWS no longer offers, or offers only in China
    /// regions.
    #[error("{0}")]
    Wrapping(String),
}

/// Who was refused what on which resource.
#[derive(Debug, Clone)]
pub struct AccessDenied {
    /// The caller's ARN.
    pub principal: String,
    /// The IAM action (`kms:Encrypt`).
    pub action: String,
    /// The resource ARN.
    pub resource: String,
    /// Why, in AWS's words ("because no resource-based policy allows the kms:Encrypt action").
    pub reason: String,
}
