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
    /// How it replaced the previous material (`None` for the key's first material).
    pub rotation: Option<kms_core::key::RotationKind>,
}

/// Everything a key's cache entry is built from ([`crate::Store::key_bundle`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBundle {
    /// The key's record.
    pub record: kms_core::key::KeyRecord,
    /// Its materials, oldest first.
    pub materials: Vec<MaterialRecord>,
    /// Its key policy document.
    pub policy: Option<String>,
    /// Its grants.
    pub grants: Vec<GrantRecord>,
    /// Its tags, in key order.
    pub tags: Vec<kms_core::tag::Tag>,
    /// The aliases naming it, in name order.
    pub aliases: Vec<AliasRecord>,
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
    /// The principal's ARN (for temporary credentials, the role's ARN).
    pub principal_arn: String,
    /// The secret access key, wrapped by the root key with AAD = the access key id.
    pub wrapped_secret: Vec<u8>,
    /// When it was issued.
    pub created: Timestamp,
    /// For temporary credentials from AssumeRole: the session.
    pub session: Option<SessionRecord>,
}

/// The session behind temporary credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session name given to AssumeRole.
    pub session_name: String,
    /// SHA-256 of the session token (the token itself is never stored).
    pub token_digest: Vec<u8>,
    /// When the credentials stop working.
    pub expires: Timestamp,
}

/// What kind of principal a record describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalType {
    /// An IAM-style user.
    User,
    /// A role, assumed through AssumeRole.
    Role,
    /// A service principal such as `logs.us-east-1.amazonaws.com`.
    Service,
}

impl PrincipalType {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Role => "role",
            Self::Service => "service",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "role" => Some(Self::Role),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// A principal that ferrokms knows: user, role or service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalRecord {
    /// `arn:aws:iam::<acct>:user/<name>`, `…:role/<name>`, or the service name.
    pub arn: String,
    /// The owning account.
    pub account: AccountId,
    /// User, role or service.
    pub kind: PrincipalType,
    /// The user, role or service name.
    pub name: String,
    /// The unique id (`AIDA…` for users, `AROA…` for roles).
    pub principal_id: String,
    /// A role's trust policy (who may assume it).
    pub trust_policy: Option<String>,
    /// When it was created.
    pub created: Timestamp,
}

/// An inline identity policy attached to a user or role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityPolicyRecord {
    /// The principal it is attached to.
    pub principal_arn: String,
    /// The policy's name.
    pub name: String,
    /// The policy document.
    pub document: String,
}

/// A grant: permission for a grantee principal to use a key for some operations.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GrantRecord {
    /// The grant id (64 hex digits).
    pub grant_id: String,
    /// The key.
    pub key_id: KeyId,
    /// The key's account (grants live with the key).
    pub account: AccountId,
    /// The key's region.
    pub region: Region,
    /// The optional idempotency name.
    pub name: Option<String>,
    /// Who may use the grant.
    pub grantee_principal: String,
    /// The unique id (`AIDA…`, `AROA…`) of the grantee when it was a user or role that existed
    /// when the grant was made: a principal deleted and created again under the same name is
    /// another principal, and the grant does not reach it. `None` for grants stored before this
    /// was recorded and for grantees without one (accounts, services, sessions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee_id: Option<String>,
    /// Who may retire it, besides the grantee where AWS allows.
    pub retiring_principal: Option<String>,
    /// The operations it allows (`Encrypt`, `Decrypt`, …).
    pub operations: Vec<String>,
    /// Encryption context the request must equal.
    pub context_equals: Option<std::collections::BTreeMap<String, String>>,
    /// Encryption context the request must include.
    pub context_subset: Option<std::collections::BTreeMap<String, String>>,
    /// The principal that created the grant.
    pub issuing_principal: String,
    /// When it was created.
    pub created: Timestamp,
}

/// What a principal's deletion rewrites in key policies and role trust policies: the principal's
/// ARN as a JSON string (`"arn:aws:iam::…:user/bob"`) becomes its unique id (`"AIDA…"`), as IAM
/// shows a deleted principal. The statement then names the principal that was deleted and no
/// other: a user or role created again under the same name has another unique id and is not
/// reached. Returns (what to find, what to put instead).
pub(crate) fn principal_rebinding(arn: &str, principal_id: &str) -> (String, String) {
    (format!("\"{arn}\""), format!("\"{principal_id}\""))
}
