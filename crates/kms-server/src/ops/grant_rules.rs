//! The rules the grant operations share: grant ids and tokens, the operations a grant may
//! allow, and the wire view of a grant.

use kms_api::model::{GrantConstraints, GrantListEntry};
use kms_core::KmsError;
use kms_core::grant_token::GrantToken;
use kms_core::validation::{Constraint, Violation};
use kms_store::GrantRecord;

use super::members::violation;

/// The token that names a grant (ours: the grant id and a check digest).
pub fn token_for(grant_id: &str) -> String {
    let mut id = [0u8; 32];
    let _ = hex::decode_to_slice(grant_id, &mut id);
    let digest = kms_crypto::digest::sha256(&id);
    let mut check = [0u8; 16];
    check.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
    GrantToken { grant_id: id, check }.encode()
}

/// The grant id a token names.
///
/// # Errors
/// `InvalidGrantTokenException` for a token that is not ours.
pub fn grant_id_of(token: &str) -> Result<String, KmsError> {
    let t = GrantToken::parse(token)?;
    if token_for(&hex::encode(t.grant_id)) != token {
        return Err(KmsError::InvalidGrantToken);
    }
    Ok(hex::encode(t.grant_id))
}

/// A request's `Operations`, sorted and without repeats (AWS's value set was checked when the
/// request was decoded; what the key allows is checked once it is known: [`allowed_for`]).
pub fn operations(ops: Vec<String>) -> Result<Vec<String>, KmsError> {
    if ops.is_empty() {
        return Err(violation(Violation::without_value("operations", Constraint::NotNull)));
    }
    let mut ops = ops;
    ops.sort();
    ops.dedup();
    Ok(ops)
}

/// Checks that a grant on `key` may allow each of `ops`.
pub fn allowed_for(key: &kms_core::key::KeyRecord, ops: &[String]) -> Result<(), KmsError> {
    let allowed = key.grant_operations();
    match ops.iter().find(|op| !allowed.contains(&op.as_str())) {
        Some(op) => Err(KmsError::InvalidRequest(kms_core::error::RequestRule::GrantOperation(op.clone()))),
        None => Ok(()),
    }
}

/// The wire view of a grant.
pub fn entry(g: &GrantRecord, key_arn: String) -> GrantListEntry {
    let constrained = g.context_equals.is_some() || g.context_subset.is_some() || g.source_arn.is_some();
    let constraints = constrained.then(|| GrantConstraints {
        encryption_context_subset: g.context_subset.clone(),
        encryption_context_equals: g.context_equals.clone(),
        source_arn: g.source_arn.clone(),
    });
    GrantListEntry {
        key_id: Some(key_arn),
        grant_id: Some(g.grant_id.clone()),
        name: g.name.clone(),
        creation_date: Some(g.created.epoch_seconds_f64()),
        // A grant names either an IAM principal or an AWS service principal.
        grantee_principal: g.grantee_service_principal.is_none().then(|| g.grantee_principal.clone()),
        grantee_service_principal: g.grantee_service_principal.clone(),
        retiring_principal: g.retiring_principal.clone(),
        retiring_service_principal: g.retiring_service_principal.clone(),
        issuing_account: Some(format!("arn:aws:iam::{}:root", g.account)),
        operations: Some(g.operations.clone()),
        constraints,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let id = "ab".repeat(32);
        let token = token_for(&id);
        assert_eq!(grant_id_of(&token).unwrap(), id);
        let forged = GrantToken { grant_id: [0xab; 32], check: [0; 16] }.encode();
        assert!(grant_id_of(&forged).is_err());
        assert!(operations(Vec::new()).is_err());
        assert_eq!(operations(vec!["Encrypt".into(), "Decrypt".into(), "Encrypt".into()]).unwrap().len(), 2);
    }
}
