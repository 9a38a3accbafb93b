//! Request members as the handlers take them: required members and the rules AWS's model
//! cannot state (checked together, as AWS reports them), pagination, encryption context, grant
//! tokens, algorithms, dry runs. The model's own constraints were checked when the request was
//! decoded (`kms_api::model`).

use kms_api::ContextMap;
use kms_core::KmsError;
use kms_core::context::EncryptionContext;
use kms_core::error::RequestRule;
use kms_core::grant_token;
use kms_core::key::EncryptionAlgorithm;
use kms_core::validation::{Constraint, Violation, Violations};

/// Longest `KeyId` member.
pub const KEY_ID_MAX_LEN: usize = 2048;
/// Largest ciphertext blob accepted.
pub const MAX_CIPHERTEXT: usize = 6144;
/// Largest NumberOfBytes for data keys and random bytes.
pub const MAX_NUMBER_OF_BYTES: i64 = 1024;

/// A required member, or AWS's "must not be null" violation.
pub fn required<T>(field: &'static str, value: Option<T>) -> Result<T, KmsError> {
    value.ok_or_else(|| KmsError::Validation(Violations(vec![Violation::without_value(field, Constraint::NotNull)])))
}

/// Runs a request's member checks together and reports every constraint violation among them
/// in one `ValidationException` ("2 validation errors detected: …; …"), as AWS's request
/// validation does, instead of only the first. When no member breaks a constraint, the first
/// other error (an invalid grant token, say) is the answer. The checks borrow the request;
/// a handler runs this first and then takes its members as before.
pub fn members(checks: impl IntoIterator<Item = Result<(), KmsError>>) -> Result<(), KmsError> {
    let mut found = Violations::default();
    let mut other = None;
    for check in checks {
        match check {
            Ok(()) => {}
            Err(KmsError::Validation(v)) => found.0.extend(v.0),
            Err(e) => {
                other.get_or_insert(e);
            }
        }
    }
    if !found.is_empty() {
        return Err(KmsError::Validation(found));
    }
    other.map_or(Ok(()), Err)
}

/// Checks that a required member is present (for [`members`]).
pub fn present<T>(field: &'static str, value: Option<&T>) -> Result<(), KmsError> {
    required(field, value).map(drop)
}

/// One violation as an error.
pub fn violation(v: Violation) -> KmsError {
    KmsError::Validation(Violations(vec![v]))
}

/// Checks a length, echoing the value in the message.
pub fn length(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), KmsError> {
    let mut v = Violations::default();
    v.length(field, Some(value), value.chars().count(), min, max);
    if v.is_empty() { Ok(()) } else { Err(KmsError::Validation(v)) }
}

/// Checks a blob member's length in bytes, without echoing its value.
pub fn blob_length(field: &'static str, len: usize, min: usize, max: usize) -> Result<(), KmsError> {
    let mut v = Violations::default();
    v.length(field, None, len, min, max);
    if v.is_empty() { Ok(()) } else { Err(KmsError::Validation(v)) }
}

/// Checks an integer range.
pub fn range(field: &'static str, value: i64, min: i64, max: i64) -> Result<(), KmsError> {
    let mut v = Violations::default();
    v.range(field, value, min, max);
    if v.is_empty() { Ok(()) } else { Err(KmsError::Validation(v)) }
}

/// A required `KeyId`-like member: present and 1–2048 characters.
pub fn key_id_member(field: &'static str, value: Option<String>) -> Result<String, KmsError> {
    let value = required(field, value)?;
    length(field, &value, 1, KEY_ID_MAX_LEN)?;
    Ok(value)
}

/// An optional pagination `Limit` in `min..=max`, defaulting to `default`.
pub fn limit(value: Option<i64>, max: i64, default: usize) -> Result<usize, KmsError> {
    match value {
        None => Ok(default),
        Some(n) => {
            range("limit", n, 1, max)?;
            usize::try_from(n).map_err(|_| KmsError::InvalidMarker)
        }
    }
}

/// Cuts a page from `items` (fetched with one extra to tell whether more follow): the first
/// `limit` items, the marker naming the last of them when more follow, and whether more follow.
pub fn page<T>(mut items: Vec<T>, limit: usize, marker_of: impl Fn(&T) -> String) -> (Vec<T>, Option<String>, bool) {
    let truncated = items.len() > limit;
    items.truncate(limit);
    let next_marker = if truncated { items.last().map(marker_of) } else { None };
    (items, next_marker, truncated)
}

/// An optional `Marker`: 1–1024 characters.
pub fn marker(value: Option<String>) -> Result<Option<String>, KmsError> {
    if let Some(m) = &value {
        length("marker", m, 1, 1024)?;
    }
    Ok(value)
}

/// The encryption context member.
pub fn context(value: Option<ContextMap>) -> EncryptionContext {
    value.map(EncryptionContext::from).unwrap_or_default()
}

/// The `GrantTokens` member: checked for form (grants are not issued yet).
pub fn grant_tokens(value: Option<&Vec<String>>) -> Result<(), KmsError> {
    grant_token::parse_all(value.map(Vec::as_slice).unwrap_or_default()).map(|_| ())
}

/// An optional `EncryptionAlgorithm`-like member, defaulting to SYMMETRIC_DEFAULT.
pub fn algorithm(field: &'static str, value: Option<&str>) -> Result<EncryptionAlgorithm, KmsError> {
    match value {
        None => Ok(EncryptionAlgorithm::SymmetricDefault),
        Some(s) => EncryptionAlgorithm::parse(s).map_err(|v| violation(Violation { field: field.into(), ..v })),
    }
}

/// `DryRun`: after every check passed, say so instead of acting.
pub fn dry_run(value: Option<bool>) -> Result<(), KmsError> {
    if value == Some(true) { Err(KmsError::DryRun) } else { Ok(()) }
}

/// Whether a Decrypt or ReEncrypt is a dry run that skips the ciphertext (`DryRun` with
/// `DryRunModifiers: [IGNORE_CIPHERTEXT]`): only the named key's permissions are checked, and
/// the ciphertext may be absent.
pub fn ignores_ciphertext(dry_run: Option<bool>, modifiers: Option<&Vec<String>>) -> bool {
    dry_run == Some(true) && modifiers.is_some_and(|m| m.iter().any(|m| m == "IGNORE_CIPHERTEXT"))
}

/// `Recipient`: refused before any crypto, since AWS would then return only
/// enclave-encrypted output and never plaintext.
pub fn no_recipient(value: Option<&kms_api::model::RecipientInfo>) -> Result<(), KmsError> {
    if value.is_some() { Err(KmsError::Unsupported(kms_core::error::Unsupported::Recipient)) } else { Ok(()) }
}

/// `NumberOfBytes` in 1–1024.
pub fn number_of_bytes(n: i64) -> Result<usize, KmsError> {
    range("numberOfBytes", n, 1, MAX_NUMBER_OF_BYTES)?;
    usize::try_from(n).map_err(|_| KmsError::InvalidRequest(RequestRule::KeySpecXorNumberOfBytes))
}

/// A required `AliasName` member, checked as AWS does (the reserved prefix is the caller's
/// decision).
pub fn alias_name(value: Option<String>) -> Result<kms_core::ids::AliasName, KmsError> {
    let raw = required("aliasName", value)?;
    kms_core::ids::AliasName::parse(&raw).map_err(|e| e.into_kms_error(&raw))
}

/// Refuses a colon in a new alias name: the wire pattern (`^[a-zA-Z0-9:/_-]+$`) allows it, but
/// AWS answers CreateAlias and UpdateAlias with "alias/x:y contains invalid characters for an
/// alias" (ValidationException), since a colon would make alias ARNs ambiguous.
pub fn alias_characters(name: &kms_core::ids::AliasName) -> Result<(), KmsError> {
    if name.as_str().contains(':') {
        return Err(KmsError::InvalidRequest(kms_core::error::RequestRule::AliasCharacters(name.as_str().to_owned())));
    }
    Ok(())
}

/// An optional `PolicyName` (its form checked by the model): the only policy is `default`.
pub fn policy_name(value: Option<String>) -> Result<(), KmsError> {
    let Some(name) = value else { return Ok(()) };
    if name == kms_core::policy::DEFAULT_POLICY_NAME {
        Ok(())
    } else {
        Err(KmsError::NotFound(kms_core::error::NotFound::Policy(name)))
    }
}
