//! Records that exist only in storage (the key record itself lives in `kms-core`).

use kms_core::Timestamp;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};

use crate::StoreResult;

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
    /// Whether the key authenticates (IAM's `Active`; `Inactive` keys are refused).
    pub active: bool,
    /// When a long-term key was last used (IAM's GetAccessKeyLastUsed).
    pub last_used: Option<KeyUse>,
}

/// A use of an access key: when, for which service, in which region.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyUse {
    /// When.
    pub time: Timestamp,
    /// The service's short name (`kms`, `sts`, `iam`).
    pub service: String,
    /// The region signed for.
    pub region: String,
}

/// IAM's spelling of an access key's status.
pub const ACTIVE: &str = "Active";
/// IAM's spelling of a disabled access key's status.
pub const INACTIVE: &str = "Inactive";

impl AccessKeyRecord {
    /// IAM's `Status`.
    pub const fn status(&self) -> &'static str {
        if self.active { ACTIVE } else { INACTIVE }
    }
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
    /// The session's tags (AssumeRole's `Tags`), which override the role's own of the same key.
    pub tags: Vec<PrincipalTag>,
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
    /// An IAM group: users' shared policies; never a caller itself.
    Group,
    /// An OpenID Connect identity provider (its tokens assume roles that trust it).
    OidcProvider,
}

impl PrincipalType {
    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Role => "role",
            Self::Service => "service",
            Self::Group => "group",
            Self::OidcProvider => "oidc-provider",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "role" => Some(Self::Role),
            "service" => Some(Self::Service),
            "group" => Some(Self::Group),
            "oidc-provider" => Some(Self::OidcProvider),
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
    /// What the IAM API sets on users and roles beyond their name.
    pub attributes: PrincipalAttributes,
}

/// A user's or role's IAM attributes, stored as one JSON document.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrincipalAttributes {
    /// IAM's path (`/` when absent); part of the ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A role's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A role's longest session, in seconds (one hour when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u32>,
    /// Tags, in the order set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<PrincipalTag>,
    /// The ARNs of the managed policies attached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attached_policies: Vec<String>,
    /// A user's groups, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// An OpenID Connect provider's settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcProviderAttributes>,
}

/// What an OpenID Connect provider is registered with.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OidcProviderAttributes {
    /// The issuer URL (`https://…`), as tokens' `iss` claim names it.
    pub url: String,
    /// The audiences (`aud`) accepted.
    pub client_ids: Vec<String>,
    /// The server certificate thumbprints IAM records (kept and shown; ferrokms does not fetch
    /// from the issuer, so they are not used).
    pub thumbprints: Vec<String>,
    /// The provider's signing keys, a JWKS document (given to ferrokms, not fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
}

impl PrincipalAttributes {
    /// The stored text: `None` when nothing is set.
    pub fn to_stored(&self) -> Option<String> {
        (*self != Self::default()).then(|| serde_json::to_string(self).unwrap_or_default())
    }
}

/// A tag on a user or role.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrincipalTag {
    /// The tag key.
    pub key: String,
    /// The tag value.
    pub value: String,
}

/// A customer managed policy and its versions (stored as JSON; `revision` is the store's).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManagedPolicyRecord {
    /// `arn:aws:iam::<acct>:policy<path><name>`.
    pub arn: String,
    /// The owning account.
    pub account: AccountId,
    /// The policy's name (unique in the account).
    pub name: String,
    /// Its unique id (`ANPA…`).
    pub policy_id: String,
    /// IAM's path.
    pub path: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was created.
    pub created: Timestamp,
    /// When its default version last changed.
    pub updated: Timestamp,
    /// The version in force (`v1`, `v2`, …).
    pub default_version: String,
    /// The number the next version gets.
    pub next_version: u32,
    /// Its versions (at most five), oldest first.
    pub versions: Vec<PolicyVersionRecord>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<PrincipalTag>,
    /// The stored revision this record was read at (0 for a new one).
    #[serde(skip)]
    pub revision: u64,
}

impl ManagedPolicyRecord {
    /// The document of the version in force.
    pub fn default_document(&self) -> Option<&str> {
        self.versions.iter().find(|v| v.id == self.default_version).map(|v| v.document.as_str())
    }
}

/// One version of a managed policy.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyVersionRecord {
    /// `v1`, `v2`, …
    pub id: String,
    /// The policy document.
    pub document: String,
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
    /// Who may use the grant: an IAM principal's ARN, or empty for a grant to an AWS service
    /// principal ([`GrantRecord::grantee_service_principal`]).
    pub grantee_principal: String,
    /// For a grant to an AWS service principal (`GranteeServicePrincipal`), its name, such as
    /// `logs.us-east-1.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grantee_service_principal: Option<String>,
    /// An AWS service principal that may retire the grant (`RetiringServicePrincipal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_service_principal: Option<String>,
    /// The `SourceArn` constraint: the grant applies only to a service principal's requests
    /// made for this resource (`aws:SourceArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
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
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn principal_rebinding(arn: &str, principal_id: &str) -> (String, String) {
    (format!("\"{arn}\""), format!("\"{principal_id}\""))
}

/// A result row as both backends' decoders read it: typed columns by index. Implemented for
/// rusqlite's and tokio-postgres's rows, so that each record is decoded by one function.
///
/// A column of the wrong type is an error ([`crate::StoreError::Corrupt`] or [`crate::StoreError::Backend`],
/// as the driver reports it), never a panic.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) trait Columns {
    /// A `TEXT` column.
    fn text(&self, index: usize) -> StoreResult<String>;
    /// A nullable `TEXT` column.
    fn optional_text(&self, index: usize) -> StoreResult<Option<String>>;
    /// An integer column (SQLite `INTEGER`, PostgreSQL `BIGINT`).
    fn integer(&self, index: usize) -> StoreResult<i64>;
    /// A nullable integer column.
    fn optional_integer(&self, index: usize) -> StoreResult<Option<i64>>;
    /// A `BLOB` / `BYTEA` column.
    fn bytes(&self, index: usize) -> StoreResult<Vec<u8>>;
    /// A nullable `BLOB` / `BYTEA` column.
    fn optional_bytes(&self, index: usize) -> StoreResult<Option<Vec<u8>>>;
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod decode {
    use kms_core::Timestamp;
    use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
    use kms_core::key::KeyRecord;
    use kms_core::tag::Tag;

    use super::{
        ACTIVE, AccessKeyRecord, AliasRecord, Columns, GrantRecord, IdentityPolicyRecord, KeyUse, ManagedPolicyRecord,
        MaterialRecord, PrincipalAttributes, PrincipalRecord, PrincipalType, SessionRecord,
    };
    use crate::audit::{AuditDigest, AuditRow};
    use crate::{StoreError, StoreResult};

    /// A driver's failure as [`StoreError::Backend`].
    pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend(Box::new(e))
    }

    /// A key's revision as stored.
    pub(crate) fn revision(key: &KeyRecord) -> StoreResult<i64> {
        i64::try_from(key.revision).map_err(backend)
    }

    /// A row limit as a statement parameter.
    pub(crate) fn limit(limit: usize) -> StoreResult<i64> {
        i64::try_from(limit).map_err(backend)
    }

    /// A key's record stored as JSON, in column 0.
    pub(crate) fn key_record(row: &dyn Columns) -> StoreResult<KeyRecord> {
        serde_json::from_str(&row.text(0)?).map_err(|e| StoreError::Corrupt(format!("key record: {e}")))
    }

    /// A key's record as stored (JSON).
    pub(crate) fn encode_key(key: &KeyRecord) -> StoreResult<String> {
        serde_json::to_string(key).map_err(backend)
    }

    /// A grant stored as JSON, in column 0.
    pub(crate) fn grant_record(row: &dyn Columns) -> StoreResult<GrantRecord> {
        serde_json::from_str(&row.text(0)?).map_err(|e| StoreError::Corrupt(format!("grant record: {e}")))
    }

    /// A grant as stored (JSON).
    pub(crate) fn encode_grant(grant: &GrantRecord) -> StoreResult<String> {
        serde_json::to_string(grant).map_err(backend)
    }

    /// A key id in column 0.
    pub(crate) fn key_id(row: &dyn Columns) -> StoreResult<KeyId> {
        parse_key_id(&row.text(0)?)
    }

    /// A stored key id.
    pub(crate) fn parse_key_id(s: &str) -> StoreResult<KeyId> {
        KeyId::parse_storage(s).ok_or_else(|| StoreError::Corrupt(format!("key id {s}")))
    }

    /// A material of `key_id` from `material_id, wrapped, created, rotation_type`.
    pub(crate) fn material_record(key_id: KeyId, row: &dyn Columns) -> StoreResult<MaterialRecord> {
        let material_id: [u8; 32] =
            row.bytes(0)?.try_into().map_err(|_| StoreError::Corrupt("material id length".into()))?;
        Ok(MaterialRecord {
            key_id,
            material_id: MaterialId::from_bytes(material_id),
            wrapped: row.bytes(1)?,
            created: Timestamp::from_unix_millis(row.integer(2)?),
            rotation: row.optional_text(3)?.as_deref().and_then(kms_core::key::RotationKind::parse),
        })
    }

    /// A material with its key, from `key_id, material_id, wrapped, created, rotation_type`.
    pub(crate) fn material_with_key(row: &dyn Columns) -> StoreResult<MaterialRecord> {
        let key = row.text(0)?;
        let key_id = KeyId::parse_storage(&key).ok_or_else(|| StoreError::Corrupt(format!("key id {key}")))?;
        let material_id: [u8; 32] =
            row.bytes(1)?.try_into().map_err(|_| StoreError::Corrupt("material id length".into()))?;
        Ok(MaterialRecord {
            key_id,
            material_id: MaterialId::from_bytes(material_id),
            wrapped: row.bytes(2)?,
            created: Timestamp::from_unix_millis(row.integer(3)?),
            rotation: row.optional_text(4)?.as_deref().and_then(kms_core::key::RotationKind::parse),
        })
    }

    /// An alias from `account, region, name, key_id, created, updated`.
    pub(crate) fn alias_record(row: &dyn Columns) -> StoreResult<AliasRecord> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("alias {what}"));
        Ok(AliasRecord {
            account: AccountId::parse(&row.text(0)?).map_err(|_| corrupt("account"))?,
            region: Region::parse(&row.text(1)?).map_err(|_| corrupt("region"))?,
            name: AliasName::parse(&row.text(2)?).map_err(|_| corrupt("name"))?,
            target: parse_key_id(&row.text(3)?)?,
            created: Timestamp::from_unix_millis(row.integer(4)?),
            updated: Timestamp::from_unix_millis(row.integer(5)?),
        })
    }

    /// A tag from `tag_key, tag_value`.
    pub(crate) fn tag(row: &dyn Columns) -> StoreResult<Tag> {
        Ok(Tag { key: row.text(0)?, value: row.text(1)? })
    }

    /// An access key from `access_key_id, account, principal_arn, wrapped_secret, created,
    /// session_name, token_digest, expires` (the last three all set for temporary credentials).
    pub(crate) fn access_key_record(row: &dyn Columns) -> StoreResult<AccessKeyRecord> {
        let session = match (row.optional_text(5)?, row.optional_bytes(6)?, row.optional_integer(7)?) {
            (Some(session_name), Some(token_digest), Some(expires)) => {
                let tags = match row.optional_text(9)? {
                    None => Vec::new(),
                    Some(json) => {
                        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("session tags: {e}")))?
                    }
                };
                Some(SessionRecord { session_name, token_digest, expires: Timestamp::from_unix_millis(expires), tags })
            }
            _ => None,
        };
        Ok(AccessKeyRecord {
            access_key_id: row.text(0)?,
            account: AccountId::parse(&row.text(1)?).map_err(|_| StoreError::Corrupt("access key account".into()))?,
            principal_arn: row.text(2)?,
            wrapped_secret: row.bytes(3)?,
            created: Timestamp::from_unix_millis(row.integer(4)?),
            session,
            active: row.optional_text(8)?.is_none_or(|s| s == ACTIVE),
            last_used: match row.optional_text(10)? {
                None => None,
                Some(json) => {
                    Some(serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("key use: {e}")))?)
                }
            },
        })
    }

    /// A principal from `arn, account, kind, name, principal_id, trust_policy, created`.
    pub(crate) fn principal_record(row: &dyn Columns) -> StoreResult<PrincipalRecord> {
        let kind = row.text(2)?;
        Ok(PrincipalRecord {
            arn: row.text(0)?,
            account: AccountId::parse(&row.text(1)?).map_err(|_| StoreError::Corrupt("principal account".into()))?,
            kind: PrincipalType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("principal kind {kind}")))?,
            name: row.text(3)?,
            principal_id: row.text(4)?,
            trust_policy: row.optional_text(5)?,
            created: Timestamp::from_unix_millis(row.integer(6)?),
            attributes: match row.optional_text(7)? {
                None => PrincipalAttributes::default(),
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("principal attributes: {e}")))?,
            },
        })
    }

    /// A managed policy's stored JSON.
    pub(crate) fn encode_managed_policy(record: &ManagedPolicyRecord) -> StoreResult<String> {
        serde_json::to_string(record).map_err(backend)
    }

    /// A key use as stored.
    pub(crate) fn key_use(used: Option<&KeyUse>) -> StoreResult<Option<String>> {
        used.map(|u| serde_json::to_string(u).map_err(backend)).transpose()
    }

    /// A session's tags as stored (`None`: no session, or none).
    pub(crate) fn session_tags(session: Option<&SessionRecord>) -> StoreResult<Option<String>> {
        match session {
            Some(s) if !s.tags.is_empty() => serde_json::to_string(&s.tags).map(Some).map_err(backend),
            _ => Ok(None),
        }
    }

    /// A managed policy from `record, revision`.
    pub(crate) fn managed_policy_record(row: &dyn Columns) -> StoreResult<ManagedPolicyRecord> {
        let mut record: ManagedPolicyRecord =
            serde_json::from_str(&row.text(0)?).map_err(|e| StoreError::Corrupt(format!("managed policy: {e}")))?;
        record.revision = u64::try_from(row.integer(1)?).unwrap_or_default();
        Ok(record)
    }

    /// An identity policy from `principal_arn, name, document`.
    pub(crate) fn identity_policy_record(row: &dyn Columns) -> StoreResult<IdentityPolicyRecord> {
        Ok(IdentityPolicyRecord { principal_arn: row.text(0)?, name: row.text(1)?, document: row.text(2)? })
    }

    /// A stored audit sequence number.
    pub(crate) fn seq(row: &dyn Columns, index: usize) -> StoreResult<u64> {
        let seq = row.integer(index)?;
        u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("audit sequence number {seq}")))
    }

    /// A signed digest from `seq, hash, created, signature`.
    pub(crate) fn audit_digest(row: &dyn Columns) -> StoreResult<AuditDigest> {
        Ok(AuditDigest {
            seq: seq(row, 0)?,
            hash: row.bytes(1)?,
            created: Timestamp::from_unix_millis(row.integer(2)?),
            signature: row.bytes(3)?,
        })
    }

    /// An audit record from the columns of `audit_log` (see
    /// `crate::statements::audit_log_columns`).
    pub(crate) fn audit_row(row: &dyn Columns) -> StoreResult<AuditRow> {
        Ok(AuditRow {
            seq: seq(row, 0)?,
            event_id: row.text(1)?,
            time: Timestamp::from_unix_millis(row.integer(2)?),
            event_name: row.text(3)?,
            key_arn: row.optional_text(4)?,
            principal: row.text(5)?,
            error_code: row.optional_text(6)?,
            record: row.text(7)?,
            prev_hash: row.bytes(8)?,
            hash: row.bytes(9)?,
            other_key_arn: row.optional_text(10)?,
        })
    }

    /// A count per key state from `state, count`.
    pub(crate) fn state_count(row: &dyn Columns) -> StoreResult<(String, u64)> {
        Ok((row.text(0)?, u64::try_from(row.integer(1)?).unwrap_or_default()))
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use decode::*;
