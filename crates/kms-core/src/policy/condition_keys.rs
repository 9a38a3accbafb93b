//! The names of AWS KMS's policy condition keys that requests carry (`kms:<Name>`), once: the
//! handlers set them, policies and grants test them.

/// `kms:BypassPolicyLockoutSafetyCheck`.
pub const BYPASS_POLICY_LOCKOUT_SAFETY_CHECK: &str = "kms:BypassPolicyLockoutSafetyCheck";

/// `kms:CallerAccount`.
pub const CALLER_ACCOUNT: &str = "kms:CallerAccount";

/// `kms:DataKeyPairSpec`.
pub const DATA_KEY_PAIR_SPEC: &str = "kms:DataKeyPairSpec";

/// `kms:EncryptionAlgorithm`.
pub const ENCRYPTION_ALGORITHM: &str = "kms:EncryptionAlgorithm";

/// `kms:EncryptionContextKeys`.
pub const ENCRYPTION_CONTEXT_KEYS: &str = "kms:EncryptionContextKeys";

/// `kms:GrantIsForAWSResource`.
pub const GRANT_IS_FOR_AWS_RESOURCE: &str = "kms:GrantIsForAWSResource";

/// `kms:GrantOperations`.
pub const GRANT_OPERATIONS: &str = "kms:GrantOperations";

/// `kms:GranteePrincipal`.
pub const GRANTEE_PRINCIPAL: &str = "kms:GranteePrincipal";

/// `kms:KeyAgreementAlgorithm`.
pub const KEY_AGREEMENT_ALGORITHM: &str = "kms:KeyAgreementAlgorithm";

/// `kms:KeyOrigin`.
pub const KEY_ORIGIN: &str = "kms:KeyOrigin";

/// `kms:KeySpec`.
pub const KEY_SPEC: &str = "kms:KeySpec";

/// `kms:KeyUsage`.
pub const KEY_USAGE: &str = "kms:KeyUsage";

/// `kms:MacAlgorithm`.
pub const MAC_ALGORITHM: &str = "kms:MacAlgorithm";

/// `kms:MessageType`.
pub const MESSAGE_TYPE: &str = "kms:MessageType";

/// `kms:MultiRegion`.
pub const MULTI_REGION: &str = "kms:MultiRegion";

/// `kms:RequestAlias`.
pub const REQUEST_ALIAS: &str = "kms:RequestAlias";

/// `kms:ResourceAliases`.
pub const RESOURCE_ALIASES: &str = "kms:ResourceAliases";

/// `kms:RetiringPrincipal`.
pub const RETIRING_PRINCIPAL: &str = "kms:RetiringPrincipal";

/// `kms:SigningAlgorithm`.
pub const SIGNING_ALGORITHM: &str = "kms:SigningAlgorithm";

/// `kms:ViaService`.
pub const VIA_SERVICE: &str = "kms:ViaService";

/// The prefix of `kms:EncryptionContext:<key>`.
pub const ENCRYPTION_CONTEXT_PREFIX: &str = "kms:EncryptionContext:";

/// ImportKeyMaterial: the expiration model of the imported material.
pub const EXPIRATION_MODEL: &str = "kms:ExpirationModel";

/// ImportKeyMaterial: when the imported material expires (seconds since the epoch).
pub const VALID_TO: &str = "kms:ValidTo";

/// GetParametersForImport: the wrapping algorithm asked for.
pub const WRAPPING_ALGORITHM: &str = "kms:WrappingAlgorithm";

/// GetParametersForImport: the wrapping key spec asked for.
pub const WRAPPING_KEY_SPEC: &str = "kms:WrappingKeySpec";

/// CreateKey and every operation on a multi-Region key: `PRIMARY` or `REPLICA`.
pub const MULTI_REGION_KEY_TYPE: &str = "kms:MultiRegionKeyType";

/// UpdatePrimaryRegion: the region of the new primary key.
pub const PRIMARY_REGION: &str = "kms:PrimaryRegion";

/// ReplicateKey: the region of the new replica.
pub const REPLICA_REGION: &str = "kms:ReplicaRegion";
