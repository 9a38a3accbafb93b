//! What a resource expects of its key.

use std::sync::Arc;

use aws_sdk_kms::types::{KeyManagerType, KeySpec, KeyState, KeyUsageType};
use serde_json::Value;

use crate::resolve::KeyInfo;

/// The automatic-rotation status of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Automatic rotation is on.
    Enabled,
    /// Automatic rotation is off.
    Disabled,
    /// The key cannot rotate automatically (asymmetric, HMAC, imported material, or a state in
    /// which KMS does not answer); the text says why.
    NotApplicable(String),
}

/// Everything the rules look at, fetched once per key per batch.
#[derive(Debug, Clone)]
pub struct KeyFacts {
    /// `DescribeKey`.
    pub key: Arc<KeyInfo>,
    /// `GetKeyPolicy` (the `default` policy), parsed; `None` when no rule needed it.
    pub policy: Option<Value>,
    /// `GetKeyRotationStatus`; `None` when no rule needed it.
    pub rotation: Option<Rotation>,
}

/// Which extra calls a rule needs beyond `DescribeKey`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// `GetKeyPolicy`.
    pub policy: bool,
    /// `GetKeyRotationStatus`.
    pub rotation: bool,
}

impl Needs {
    fn union(self, other: Self) -> Self {
        Self { policy: self.policy || other.policy, rotation: self.rotation || other.rotation }
    }
}

/// The check of a [`CustomRule`]: `Err(reason)` when the key falls short.
pub type Check = dyn Fn(&KeyFacts) -> Result<(), String> + Send + Sync;

/// A rule of your own.
#[derive(Clone)]
pub struct CustomRule {
    name: String,
    needs: Needs,
    check: Arc<Check>,
}

impl std::fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomRule").field("name", &self.name).field("needs", &self.needs).finish_non_exhaustive()
    }
}

impl CustomRule {
    /// A rule named `name` (it appears in reasons) that looks at `DescribeKey` and whatever
    /// `needs` asks for.
    pub fn new(
        name: impl Into<String>,
        needs: Needs,
        check: impl Fn(&KeyFacts) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self { name: name.into(), needs, check: Arc::new(check) }
    }
}

/// One expectation about a resource's key.
#[derive(Debug, Clone)]
pub enum Rule {
    /// The key's state is `Enabled`.
    KeyEnabled,
    /// A customer managed key, not an AWS managed one.
    CustomerManaged,
    /// A symmetric encryption key (`SYMMETRIC_DEFAULT`, `ENCRYPT_DECRYPT`).
    SymmetricEncryption,
    /// Automatic rotation is enabled (costs a `GetKeyRotationStatus`).
    RotationEnabled,
    /// No `Allow` statement of the key policy grants anything to every principal (`"*"` or
    /// `{"AWS": "*"}`) without a `Condition` (costs a `GetKeyPolicy`).
    PolicyNotPublic,
    /// Yours.
    Custom(CustomRule),
}

/// The rules a resource gets unless it says otherwise: all five built-in ones.
#[must_use]
pub fn default_rules() -> Vec<Rule> {
    vec![
        Rule::KeyEnabled,
        Rule::CustomerManaged,
        Rule::SymmetricEncryption,
        Rule::RotationEnabled,
        Rule::PolicyNotPublic,
    ]
}

/// Which calls a set of rules needs.
pub(crate) fn needs_of<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Needs {
    rules.into_iter().fold(Needs::default(), |needs, rule| needs.union(rule.needs()))
}

impl Rule {
    /// The rule's name, as reasons and audit lines show it.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::KeyEnabled => "KeyEnabled",
            Self::CustomerManaged => "CustomerManaged",
            Self::SymmetricEncryption => "SymmetricEncryption",
            Self::RotationEnabled => "RotationEnabled",
            Self::PolicyNotPublic => "PolicyNotPublic",
            Self::Custom(custom) => &custom.name,
        }
    }

    /// The calls it needs beyond `DescribeKey`.
    #[must_use]
    pub fn needs(&self) -> Needs {
        match self {
            Self::KeyEnabled | Self::CustomerManaged | Self::SymmetricEncryption => Needs::default(),
            Self::RotationEnabled => Needs { rotation: true, policy: false },
            Self::PolicyNotPublic => Needs { policy: true, rotation: false },
            Self::Custom(custom) => custom.needs,
        }
    }

    /// Checks the key; `Err` carries the reason, prefixed with the rule's name.
    pub(crate) fn check(&self, facts: &KeyFacts) -> Result<(), String> {
        let metadata = &facts.key.metadata;
        let result = match self {
            Self::KeyEnabled => match &metadata.key_state {
                Some(KeyState::Enabled) => Ok(()),
                Some(state) => Err(format!("key state is {}", state.as_str())),
                None => Err("DescribeKey gave no KeyState".to_owned()),
            },
            Self::CustomerManaged => match &metadata.key_manager {
                Some(KeyManagerType::Customer) => Ok(()),
                Some(manager) => Err(format!("key manager is {}", manager.as_str())),
                None => Err("DescribeKey gave no KeyManager".to_owned()),
            },
            Self::SymmetricEncryption => {
                let spec = metadata.key_spec.as_ref();
                let usage = metadata.key_usage.as_ref();
                if spec == Some(&KeySpec::SymmetricDefault) && usage == Some(&KeyUsageType::EncryptDecrypt) {
                    Ok(())
                } else {
                    Err(format!(
                        "key spec {} with usage {}",
                        spec.map_or("unknown", KeySpec::as_str),
                        usage.map_or("unknown", KeyUsageType::as_str)
                    ))
                }
            }
            Self::RotationEnabled => match &facts.rotation {
                Some(Rotation::Enabled) => Ok(()),
                Some(Rotation::Disabled) => Err("automatic rotation is disabled".to_owned()),
                Some(Rotation::NotApplicable(why)) => Err(format!("automatic rotation is not possible: {why}")),
                None => Err("rotation status was not fetched".to_owned()),
            },
            Self::PolicyNotPublic => match &facts.policy {
                Some(policy) => public_statements(policy),
                None => Err("key policy was not fetched".to_owned()),
            },
            Self::Custom(custom) => (custom.check)(facts),
        };
        result.map_err(|reason| format!("{}: {reason}", self.name()))
    }
}

/// `Err` naming every unconditional `Allow` to everyone.
fn public_statements(policy: &Value) -> Result<(), String> {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err("key policy has no Statement".to_owned()),
    };
    let mut found = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        let allows = statement.get("Effect").and_then(Value::as_str) == Some("Allow");
        let conditional = statement.get("Condition").is_some_and(|c| c.as_object().is_some_and(|o| !o.is_empty()));
        if !allows || conditional || !names_everyone(statement.get("Principal")) {
            continue;
        }
        let label = statement.get("Sid").and_then(Value::as_str).map_or_else(|| format!("#{index}"), str::to_owned);
        let actions = match statement.get("Action") {
            Some(Value::String(one)) => one.clone(),
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => "(NotAction)".to_owned(),
        };
        found.push(format!("statement {label} allows {actions} to every principal without a condition"));
    }
    if found.is_empty() { Ok(()) } else { Err(found.join("; ")) }
}

fn names_everyone(principal: Option<&Value>) -> bool {
    let star = |v: &Value| match v {
        Value::String(s) => s == "*",
        Value::Array(list) => list.iter().any(|p| p.as_str() == Some("*")),
        _ => false,
    };
    match principal {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(map)) => map.get("AWS").is_some_and(star),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn public_policy_statements_are_named() {
        let policy: Value = serde_json::from_str(
            r#"{"Statement":[
                {"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
                {"Sid":"open","Effect":"Allow","Principal":{"AWS":["*"]},"Action":["kms:Decrypt","kms:*"],"Resource":"*"},
                {"Sid":"vpc","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}},
                {"Sid":"deny","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}
            ]}"#,
        )
        .unwrap();
        let reason = public_statements(&policy).unwrap_err();
        assert!(reason.contains("statement open allows kms:Decrypt,kms:*"), "{reason}");
        assert!(!reason.contains("root") && !reason.contains("vpc") && !reason.contains("deny"), "{reason}");
    }

    #[test]
    fn the_default_key_policy_is_not_public() {
        let policy: Value = serde_json::from_str(
            r#"{"Version":"2012-10-17","Statement":{"Sid":"Enable IAM User Permissions","Effect":"Allow",
                "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}}"#,
        )
        .unwrap();
        assert_eq!(public_statements(&policy), Ok(()));
    }
}
