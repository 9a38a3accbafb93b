//! Grant tokens: the opaque strings CreateGrant returns and cryptographic operations accept so
//! that a new grant takes effect before it is visible everywhere.
//!
//! Format (ours): `base64url-nopad(0x01 ‖ grant-id (32 bytes) ‖ check (16 bytes))`. Grants are
//! issued by a later component; until then every request's tokens are checked for form only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::KmsError;
use crate::validation::{Constraint, Violation, Violations};

/// Most grant tokens one request may carry.
pub const MAX_GRANT_TOKENS: usize = 10;
/// Longest grant token, in characters.
pub const MAX_GRANT_TOKEN_LEN: usize = 8192;
const TOKEN_VERSION: u8 = 0x01;
const TOKEN_LEN: usize = 1 + 32 + 16;

/// A grant token of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantToken {
    /// The grant the token refers to.
    pub grant_id: [u8; 32],
    /// Integrity check over the grant id, verified by whoever holds the grant secret.
    pub check: [u8; 16],
}

impl GrantToken {
    /// Parses one token.
    ///
    /// # Errors
    /// `InvalidGrantTokenException` for anything not in our format.
    pub fn parse(s: &str) -> Result<Self, KmsError> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| KmsError::InvalidGrantToken)?;
        let (&version, rest) = bytes.split_first().ok_or(KmsError::InvalidGrantToken)?;
        if version != TOKEN_VERSION || bytes.len() != TOKEN_LEN {
            return Err(KmsError::InvalidGrantToken);
        }
        let (id, check) = rest.split_at(32);
        let grant_id: [u8; 32] = id.try_into().map_err(|_| KmsError::InvalidGrantToken)?;
        let check: [u8; 16] = check.try_into().map_err(|_| KmsError::InvalidGrantToken)?;
        Ok(Self { grant_id, check })
    }

    /// The token's string form.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&self.grant_id);
        bytes.extend_from_slice(&self.check);
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// Validates a request's `GrantTokens` member: at most 10 tokens of 1–8192 characters
/// (`ValidationException`), each in our format (`InvalidGrantTokenException`).
///
/// # Errors
/// As above.
pub fn parse_all(tokens: &[String]) -> Result<Vec<GrantToken>, KmsError> {
    let mut violations = Violations::default();
    if tokens.len() > MAX_GRANT_TOKENS {
        violations.push(Violation::without_value("grantTokens", Constraint::MaxLength(MAX_GRANT_TOKENS)));
    }
    for t in tokens {
        violations.length("grantTokens", None, t.len(), 1, MAX_GRANT_TOKEN_LEN);
    }
    if !violations.is_empty() {
        return Err(KmsError::Validation(violations));
    }
    tokens.iter().map(|t| GrantToken::parse(t)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let t = GrantToken { grant_id: [7; 32], check: [9; 16] };
        assert_eq!(GrantToken::parse(&t.encode()).unwrap(), t);
        assert!(matches!(parse_all(&["nope".into()]), Err(KmsError::InvalidGrantToken)));
        assert!(matches!(parse_all(&vec![t.encode(); 11]), Err(KmsError::Validation(_))));
        assert!(matches!(parse_all(&[String::new()]), Err(KmsError::Validation(_))));
        assert_eq!(parse_all(&[t.encode()]).unwrap().len(), 1);
    }
}
