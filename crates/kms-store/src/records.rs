//! Records that exist only in storage (the key record itself lives in `kms-core`).

use kms_core::Timestamp;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};

/// One version of a key's material, wrapped by the root key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaterialRecord {
    /// The key.
    pub key_id: KeyId,
    /// The material id.
    pub material_id: MaterialId,
    /// The material, wrapped by the root key with AAD = key ARN ‖ material id.
    pub wrapped: Vec<u8>,
    /// When it was created.
    pub created: Timestamp,
}

/// An alias.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRecord {
    /// The owning account.
    pub account: AccountId,
    /// The region.
    pub region: Region,
    /// The alias name.
    pub name: AliasName,
    /// The key it points to.
    pub target: KeyId,
    /// When it was created.
    pub created: Timestamp,
    /// When it was last pointed at a key.
    pub updated: Timestamp,
}

/// An access key issued by ferrokms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessKeyRecord {
    /// The access key id (`AKIA…` or `ASIA…`).
    pub access_key_id: String,
    /// The account of the principal.
    pub account: AccountId,
    /// The principal's ARN.
    pub principal_arn: String,
    /// The secret access key, wrapped by the root key with AAD = the access key id.
    pub wrapped_secret: Vec<u8>,
    /// When it was issued.
    pub created: Timestamp,
}
