//! Key policy documents: structural validation and the default key policy.
//!
//! Evaluation (principals, actions, conditions) is a separate concern; here a policy is
//! accepted when it is a well-formed IAM policy document.

use serde_json::{Map, Value};

use crate::ids::AccountId;

/// Largest key policy AWS accepts, in characters.
pub const MAX_POLICY_LEN: usize = 32_768;
/// The only key policy name.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Why a policy document is refused (`MalformedPolicyDocumentException`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON.
    #[error("The key policy is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("The key policy must be a JSON object.")]
    NotAnObject,
    /// Missing or empty Statement.
    #[error("The key policy must contain at least one statement in 'Statement'.")]
    NoStatement,
    /// A statement that is not an object.
    #[error("Statement {0} of the key policy is not a JSON object.")]
    StatementNotObject(usize),
    /// Effect missing or not Allow/Deny.
    #[error("Statement {0} of the key policy must have an 'Effect' of \"Allow\" or \"Deny\".")]
    Effect(usize),
    /// A statement without Action or NotAction.
    #[error("Statement {0} of the key policy must have an 'Action' or 'NotAction'.")]
    NoAction(usize),
    /// A statement without Principal or NotPrincipal (required in key policies).
    #[error("Statement {0} of the key policy must have a 'Principal' or 'NotPrincipal'.")]
    NoPrincipal(usize),
    /// An unknown policy language version.
    #[error("The key policy 'Version' must be \"2012-10-17\" or \"2008-10-17\".")]
    Version,
}

/// A key policy document that passed structural validation, kept as the client wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy(String);

impl KeyPolicy {
    /// Validates a policy document's structure. The text is kept verbatim, as AWS returns it.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first structural problem.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        let doc = value.as_object().ok_or(PolicyError::NotAnObject)?;
        if let Some(version) = doc.get("Version")
            && !matches!(version.as_str(), Some("2012-10-17" | "2008-10-17"))
        {
            return Err(PolicyError::Version);
        }
        let statements: Vec<&Value> = match doc.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => return Err(PolicyError::NoStatement),
        };
        for (i, statement) in statements.into_iter().enumerate() {
            check_statement(i, statement.as_object().ok_or(PolicyError::StatementNotObject(i))?)?;
        }
        Ok(Self(text.to_owned()))
    }

    /// The document text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key policy AWS gives a key created without one: the account's root principal may do
    /// anything with the key, which delegates access to the account's IAM policies.
    pub fn default_for(account: &AccountId) -> Self {
        // Laid out the way AWS renders its default policy, member order included.
        Self(format!(
            "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \
             \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \
             \"AWS\" : \"arn:aws:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
        ))
    }

    /// Wraps a document that was validated when it was stored.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

fn check_statement(i: usize, s: &Map<String, Value>) -> Result<(), PolicyError> {
    if !matches!(s.get("Effect").and_then(Value::as_str), Some("Allow" | "Deny")) {
        return Err(PolicyError::Effect(i));
    }
    if !s.contains_key("Action") && !s.contains_key("NotAction") {
        return Err(PolicyError::NoAction(i));
    }
    if !s.contains_key("Principal") && !s.contains_key("NotPrincipal") {
        return Err(PolicyError::NoPrincipal(i));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid_and_names_the_account_root() {
        let account = AccountId::parse("111122223333").unwrap();
        let p = KeyPolicy::default_for(&account);
        assert!(KeyPolicy::parse(p.as_str()).is_ok());
        assert!(p.as_str().contains("arn:aws:iam::111122223333:root"));
    }

    #[test]
    fn structural_errors() {
        assert!(matches!(KeyPolicy::parse("{"), Err(PolicyError::Json(_))));
        assert_eq!(KeyPolicy::parse("[]"), Err(PolicyError::NotAnObject));
        assert_eq!(KeyPolicy::parse("{\"Statement\":[]}"), Err(PolicyError::NoStatement));
        let no_effect = r#"{"Statement":{"Principal":"*","Action":"kms:*","Resource":"*"}}"#;
        assert_eq!(KeyPolicy::parse(no_effect), Err(PolicyError::Effect(0)));
        let bad_version = r#"{"Version":"2020","Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}"#;
        assert_eq!(KeyPolicy::parse(bad_version), Err(PolicyError::Version));
        let ok = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}"#;
        assert_eq!(KeyPolicy::parse(ok).unwrap().as_str(), ok);
    }
}
