//! Identifiers: accounts, regions, key ids, key-material ids, alias names and ARNs.
//!
//! Each is a newtype whose constructor is its only validation ("parse, don't validate").

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{KmsError, NotFound};

/// The ARN partition ferrokms serves.
pub const PARTITION: &str = "aws";

/// A 12-digit AWS account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Parses a 12-digit account id.
    ///
    /// # Errors
    /// [`InvalidAccountId`] when `s` is not exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, InvalidAccountId> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidAccountId(s.to_owned()))
        }
    }

    /// The account id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The string given was not a 12-digit account id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("'{0}' is not a 12-digit account id")]
pub struct InvalidAccountId(pub String);

impl TryFrom<String> for AccountId {
    type Error = InvalidAccountId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<AccountId> for String {
    fn from(a: AccountId) -> Self {
        a.0
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS region name such as `us-east-1`, taken from the request's SigV4 credential scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    /// Parses a region name: 1–32 characters of lowercase letters, digits and hyphens.
    ///
    /// # Errors
    /// [`InvalidRegion`] for anything else.
    pub fn parse(s: &str) -> Result<Self, InvalidRegion> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidRegion(s.to_owned())) }
    }

    /// The region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The string given was not a region name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("'{0}' is not a region name")]
pub struct InvalidRegion(pub String);

impl TryFrom<String> for Region {
    type Error = InvalidRegion;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<Region> for String {
    fn from(r: Region) -> Self {
        r.0
    }
}
impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A KMS key id: a UUID, rendered lowercase and hyphenated, or for a multi-Region key `mrk-`
/// and 32 hex digits (AWS's two forms).
///
/// A multi-Region key has the same id in every region it is replicated to, while each replica
/// is a key of its own (its own record, policy, grants, tags and state). So the id of a key
/// *placed in a region* also carries a tag of that region ([`KeyId::in_region`]): the ids of
/// two replicas differ, and that is how stores and caches tell them apart
/// ([`KeyId::storage`]); what clients see ([`fmt::Display`], [`KeyId::as_bytes`]) is the same
/// id. Single-Region keys never carry a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct KeyId {
    id: Uuid,
    /// For a multi-Region key placed in a region: the region's tag (never 0); 0 otherwise.
    region_tag: u32,
}

/// The UUID version nibble that marks multi-Region key ids (UUIDv8, "custom"); single-Region
/// ids are version 4.
const MULTI_REGION_VERSION: usize = 8;

impl KeyId {
    /// A key id from 16 random bytes (the caller supplies randomness; the core has none).
    pub fn from_random_bytes(bytes: [u8; 16]) -> Self {
        Self { id: uuid::Builder::from_random_bytes(bytes).into_uuid(), region_tag: 0 }
    }

    /// A multi-Region key id (`mrk-…`) from 16 random bytes, not yet placed in a region.
    pub fn multi_region_from_random_bytes(bytes: [u8; 16]) -> Self {
        Self { id: uuid::Builder::from_custom_bytes(bytes).into_uuid(), region_tag: 0 }
    }

    /// The key id from its 16-byte binary form (as stored in ciphertext blobs), not placed in a
    /// region.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self { id: Uuid::from_bytes(bytes), region_tag: 0 }
    }

    /// The 16-byte binary form (the same in every region).
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.id.as_bytes()
    }

    /// Whether this is a multi-Region key's id (`mrk-…`).
    pub fn is_multi_region(&self) -> bool {
        self.id.get_version_num() == MULTI_REGION_VERSION
    }

    /// This id placed in `region`: for a multi-Region key, the id of its replica there; a
    /// single-Region key's id is the same everywhere.
    #[must_use]
    pub fn in_region(self, region: &Region) -> Self {
        if !self.is_multi_region() {
            return self;
        }
        // FNV-1a, never 0: a tag, not a secret; ReplicateKey refuses the (unlikely) region
        // whose tag another region of the key already has.
        let mut hash: u32 = 0x811c_9dc5;
        for b in region.as_str().bytes() {
            hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        Self { region_tag: hash | 1, ..self }
    }

    /// The id as clients see it, without a region.
    #[must_use]
    pub const fn public(self) -> Self {
        Self { region_tag: 0, ..self }
    }

    /// Parses the forms AWS uses: the hyphenated UUID (`1234abcd-12ab-34cd-56ef-1234567890ab`)
    /// or `mrk-` and 32 hex digits. The id is not placed in a region.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(hex_digits) = s.strip_prefix("mrk-") {
            if hex_digits.len() != 32 || !hex_digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return None;
            }
            let id = Uuid::try_parse(hex_digits).ok()?;
            return (id.get_version_num() == MULTI_REGION_VERSION).then_some(Self { id, region_tag: 0 });
        }
        if s.len() != 36 {
            return None;
        }
        let id = Uuid::try_parse(s).ok()?;
        (id.get_version_num() != MULTI_REGION_VERSION).then_some(Self { id, region_tag: 0 })
    }

    /// The form stores and caches key the id by: the id, and for a multi-Region key placed in
    /// a region, `.` and its region tag (8 hex digits).
    #[must_use]
    pub fn storage(&self) -> String {
        if self.region_tag == 0 { self.to_string() } else { format!("{self}.{:08x}", self.region_tag) }
    }

    /// Parses [`KeyId::storage`]'s form.
    pub fn parse_storage(s: &str) -> Option<Self> {
        match s.split_once('.') {
            None => Self::parse(s),
            Some((id, tag)) => {
                let id = Self::parse(id).filter(Self::is_multi_region)?;
                let region_tag = u32::from_str_radix(tag, 16).ok().filter(|t| *t != 0 && tag.len() == 8)?;
                Some(Self { region_tag, ..id })
            }
        }
    }

    /// Writes the id as clients see it into `buf`, returning it.
    fn encode<'a>(&self, buf: &'a mut [u8; 36]) -> &'a str {
        if self.is_multi_region() {
            let (prefix, rest) = buf.split_at_mut(4);
            prefix.copy_from_slice(b"mrk-");
            self.id.simple().encode_lower(rest);
            std::str::from_utf8(buf.get(..36).unwrap_or_default()).unwrap_or_default()
        } else {
            self.id.hyphenated().encode_lower(buf)
        }
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 36];
        f.write_str(self.encode(&mut buf))
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> Self {
        id.storage()
    }
}

impl TryFrom<String> for KeyId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse_storage(&s).ok_or_else(|| format!("not a key id: {s}"))
    }
}

/// Identifies one version of a key's backing material (AWS's `KeyMaterialId`): 32 bytes,
/// rendered as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct MaterialId([u8; 32]);

impl MaterialId {
    /// Wraps 32 bytes (random, supplied by the caller).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The binary form.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
impl fmt::Debug for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaterialId({self})")
    }
}
impl From<MaterialId> for String {
    fn from(m: MaterialId) -> Self {
        m.to_string()
    }
}
impl TryFrom<String> for MaterialId {
    type Error = hex::FromHexError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

/// `arn:aws:kms:<region>:<account>:key/<key-id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyArn {
    /// The key's region.
    pub region: Region,
    /// The key's account.
    pub account: AccountId,
    /// The key id.
    pub key_id: KeyId,
}

impl KeyArn {
    /// The ARN as a string (see [`render_key_arn`]).
    #[must_use]
    pub fn render(&self) -> String {
        render_key_arn(&self.region, &self.account, self.key_id)
    }
}

/// A key's ARN as a string, allocated once at its final size: it is rendered on every
/// cryptographic request (for the response and the audit record), where formatting machinery
/// and a growing string cost more than the rest of the request's bookkeeping.
#[must_use]
pub fn render_key_arn(region: &Region, account: &AccountId, key_id: KeyId) -> String {
    let mut buf = [0u8; 36];
    let id = key_id.encode(&mut buf);
    let parts = ["arn:", PARTITION, ":kms:", region.as_str(), ":", account.as_str(), ":key/", id];
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

impl fmt::Display for KeyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

/// Longest alias name AWS accepts.
pub const ALIAS_NAME_MAX_LEN: usize = 256;
/// The character class AWS states for alias names.
pub const ALIAS_NAME_PATTERN: &str = "^[a-zA-Z0-9:/_-]+$";
const ALIAS_PREFIX: &str = "alias/";
const RESERVED_ALIAS_PREFIX: &str = "alias/aws/";

/// An alias name: `alias/` followed by letters, digits, `/`, `_`, `-` (AWS's character set).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AliasName(String);

/// Why a string is not an acceptable alias name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AliasNameError {
    /// Empty or longer than [`ALIAS_NAME_MAX_LEN`].
    #[error("alias name length {0} is outside 1..=256")]
    Length(usize),
    /// A character outside [`ALIAS_NAME_PATTERN`].
    #[error("alias name contains a character outside {ALIAS_NAME_PATTERN}")]
    Pattern,
    /// Does not start with `alias/`, or is nothing but the prefix.
    #[error("alias name does not start with alias/")]
    Prefix,
    /// Starts with the reserved `alias/aws/` prefix (only for creating or renaming).
    #[error("Alias names beginning with alias/aws/ are reserved for AWS managed keys.")]
    Reserved,
}

impl AliasNameError {
    /// The exception AWS answers with for this problem in the `aliasName` member `value`:
    /// `ValidationException` for length, characters and a missing prefix;
    /// for the reserved prefix, the error the API answers with `NotAuthorizedException`.
    pub fn into_kms_error(self, value: &str) -> KmsError {
        use crate::validation::{Constraint, Violation, Violations};
        let violation =
            |constraint| KmsError::Validation(Violations(vec![Violation::with_value("aliasName", value, constraint)]));
        match self {
            Self::Length(0) => violation(Constraint::MinLength(1)),
            Self::Length(_) => violation(Constraint::MaxLength(ALIAS_NAME_MAX_LEN)),
            Self::Pattern => violation(Constraint::Pattern(ALIAS_NAME_PATTERN)),
            Self::Prefix => KmsError::InvalidRequest(crate::error::RequestRule::AliasPrefix),
            Self::Reserved => KmsError::InvalidAliasName(self),
        }
    }
}

impl AliasName {
    /// Parses a well-formed alias name. AWS-managed names (`alias/aws/...`) are accepted here,
    /// since they may be looked up; [`AliasName::ensure_customer_managed`] refuses them where a
    /// customer creates or deletes an alias.
    ///
    /// # Errors
    /// [`AliasNameError`] naming the broken rule.
    pub fn parse(s: &str) -> Result<Self, AliasNameError> {
        if s.is_empty() || s.len() > ALIAS_NAME_MAX_LEN {
            return Err(AliasNameError::Length(s.len()));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-')) {
            return Err(AliasNameError::Pattern);
        }
        if !s.starts_with(ALIAS_PREFIX) || s.len() == ALIAS_PREFIX.len() {
            return Err(AliasNameError::Prefix);
        }
        Ok(Self(s.to_owned()))
    }

    /// Refuses AWS-reserved names (`alias/aws/...`).
    ///
    /// # Errors
    /// [`AliasNameError::Reserved`].
    pub fn ensure_customer_managed(&self) -> Result<(), AliasNameError> {
        if self.0.starts_with(RESERVED_ALIAS_PREFIX) { Err(AliasNameError::Reserved) } else { Ok(()) }
    }

    /// The alias name, including the `alias/` prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AliasName {
    type Error = AliasNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}
impl From<AliasName> for String {
    fn from(a: AliasName) -> Self {
        a.0
    }
}
impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `arn:aws:kms:<region>:<account>:alias/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AliasArn {
    /// The alias's region.
    pub region: Region,
    /// The alias's account.
    pub account: AccountId,
    /// The alias name (with `alias/`).
    pub name: AliasName,
}

impl fmt::Display for AliasArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{PARTITION}:kms:{}:{}:{}", self.region, self.account, self.name)
    }
}

/// A `KeyId` request member in any of the four forms AWS accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyReference {
    /// A bare key id.
    Id(KeyId),
    /// A key ARN.
    KeyArn(KeyArn),
    /// An alias name, resolved in the caller's account and region.
    AliasName(AliasName),
    /// An alias ARN.
    AliasArn(AliasArn),
}

/// Which forms of key reference an operation accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptedReferences {
    /// Key id, key ARN, alias name or alias ARN (cryptographic operations, DescribeKey).
    KeysAndAliases,
    /// Key id or key ARN only (management operations such as EnableKey or TagResource).
    KeysOnly,
}

impl KeyReference {
    /// Parses a `KeyId` member.
    ///
    /// # Errors
    /// `NotFoundException` (as AWS) for a string that is none of the four forms, or for an alias
    /// where `accepted` is [`AcceptedReferences::KeysOnly`].
    pub fn parse(s: &str, accepted: AcceptedReferences) -> Result<Self, KmsError> {
        let parsed = if let Some(rest) = s.strip_prefix("arn:") {
            parse_arn(rest).ok_or_else(|| KmsError::NotFound(NotFound::InvalidArn(s.to_owned())))?
        } else if s.starts_with(ALIAS_PREFIX) {
            let name = AliasName::parse(s).map_err(|_| KmsError::NotFound(NotFound::InvalidKeyId(s.to_owned())))?;
            Self::AliasName(name)
        } else {
            let id = KeyId::parse(s).ok_or_else(|| KmsError::NotFound(NotFound::InvalidKeyId(s.to_owned())))?;
            Self::Id(id)
        };
        if accepted == AcceptedReferences::KeysOnly && matches!(parsed, Self::AliasName(_) | Self::AliasArn(_)) {
            return Err(KmsError::NotFound(NotFound::InvalidKeyId(s.to_owned())));
        }
        Ok(parsed)
    }
}

/// Parses the part of a KMS ARN after `arn:`.
fn parse_arn(rest: &str) -> Option<KeyReference> {
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = Region::parse(parts.next()?).ok()?;
    let account = AccountId::parse(parts.next()?).ok()?;
    let resource = parts.next()?;
    if partition != PARTITION || service != "kms" {
        return None;
    }
    if let Some(id) = resource.strip_prefix("key/") {
        let key_id = KeyId::parse(id)?;
        Some(KeyReference::KeyArn(KeyArn { region, account, key_id }))
    } else if resource.starts_with(ALIAS_PREFIX) {
        let name = AliasName::parse(resource).ok()?;
        Some(KeyReference::AliasArn(AliasArn { region, account, name }))
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn parses_the_four_forms() {
        let all = AcceptedReferences::KeysAndAliases;
        assert!(matches!(KeyReference::parse(ID, all).unwrap(), KeyReference::Id(k) if k.to_string() == ID));
        let arn = format!("arn:aws:kms:us-west-2:111122223333:key/{ID}");
        match KeyReference::parse(&arn, all).unwrap() {
            KeyReference::KeyArn(a) => assert_eq!(a.to_string(), arn),
            other => panic!("{other:?}"),
        }
        assert!(matches!(KeyReference::parse("alias/app", all).unwrap(), KeyReference::AliasName(_)));
        let alias_arn = "arn:aws:kms:us-west-2:111122223333:alias/app/x_1-2";
        match KeyReference::parse(alias_arn, all).unwrap() {
            KeyReference::AliasArn(a) => assert_eq!(a.to_string(), alias_arn),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_malformed_and_aliases_where_not_accepted() {
        let all = AcceptedReferences::KeysAndAliases;
        for bad in ["", "nope", "1234abcd", "arn:aws:kms:us-east-1:1:key/x", "arn:aws:s3:::bucket", "alias/"] {
            assert!(matches!(KeyReference::parse(bad, all), Err(KmsError::NotFound(_))), "{bad}");
        }
        assert!(KeyReference::parse("alias/app", AcceptedReferences::KeysOnly).is_err());
        assert!(KeyReference::parse(ID, AcceptedReferences::KeysOnly).is_ok());
    }

    #[test]
    fn alias_name_rules() {
        assert_eq!(AliasName::parse("app"), Err(AliasNameError::Prefix));
        assert_eq!(AliasName::parse("alias/"), Err(AliasNameError::Prefix));
        assert_eq!(AliasName::parse("alias/a b"), Err(AliasNameError::Pattern));
        assert_eq!(AliasName::parse(""), Err(AliasNameError::Length(0)));
        let long = format!("alias/{}", "a".repeat(251));
        assert_eq!(AliasName::parse(&long), Err(AliasNameError::Length(257)));
        let reserved = AliasName::parse("alias/aws/s3").unwrap();
        assert_eq!(reserved.ensure_customer_managed(), Err(AliasNameError::Reserved));
        assert!(AliasName::parse("alias/My_app:prod/1-2").unwrap().ensure_customer_managed().is_ok());
    }

    #[test]
    fn multi_region_ids_are_the_same_in_every_region_but_their_replicas_differ() {
        let mrk = KeyId::multi_region_from_random_bytes([0x5a; 16]);
        assert!(mrk.is_multi_region());
        let text = mrk.to_string();
        assert!(text.starts_with("mrk-") && text.len() == 36, "{text}");
        assert_eq!(KeyId::parse(&text), Some(mrk));
        let (east, west) = (Region::parse("us-east-1").unwrap(), Region::parse("eu-west-1").unwrap());
        let (a, b) = (mrk.in_region(&east), mrk.in_region(&west));
        assert_ne!(a, b);
        assert_eq!((a.to_string(), a.as_bytes()), (text.clone(), mrk.as_bytes()));
        assert_eq!(a.public(), mrk);
        assert_eq!(KeyId::parse_storage(&a.storage()), Some(a));
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), b);
        let arn = KeyArn { region: west, account: AccountId::parse("111122223333").unwrap(), key_id: b };
        assert_eq!(arn.to_string(), format!("arn:aws:kms:eu-west-1:111122223333:key/{text}"));
        // Single-Region ids ignore regions; neither form is taken for the other.
        let single = KeyId::from_random_bytes([0x5a; 16]);
        assert_eq!(single.in_region(&east), single);
        assert_eq!(KeyId::parse_storage(&single.storage()), Some(single));
        assert_eq!(KeyId::parse(&format!("mrk-{}", single.id.simple())), None);
        assert_eq!(KeyId::parse(&mrk.id.hyphenated().to_string()), None);
        assert_eq!(KeyId::parse("mrk-0123"), None);
        assert_eq!(KeyId::parse_storage(&format!("{single}.00000001")), None);
    }

    #[test]
    fn material_id_round_trips_hex() {
        let m = MaterialId::from_bytes([0xab; 32]);
        let s: String = m.into();
        assert_eq!(s.len(), 64);
        assert_eq!(MaterialId::try_from(s).unwrap(), m);
    }
}
