//! The typed policy document and its parser.
//!
//! The parser accepts the JSON that IAM accepts (a `Statement` object or array, a string or an
//! array for `Action`, `Resource` and principal values, scalars or arrays for condition values)
//! and refuses, with a [`PolicyError`] naming the statement, anything it would otherwise have to
//! guess about. Unknown elements are refused too: a misspelt `"Conditon"` silently dropped
//! would turn a narrow `Allow` into a broad one.

use serde_json::{Map, Value};

use super::condition::{ConditionClause, parse_block};
use super::pattern::{Pattern, arn_parts};
use super::{PolicyError, StatementRef};
use crate::ids::AccountId;

/// Which kind of policy a document is; the two differ in what a statement must name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// A key policy (resource-based): every statement names its principals.
    Key,
    /// An identity-based (IAM) policy: statements apply to the identity the policy is attached
    /// to and must not name principals.
    Identity,
    /// A role's trust policy (`AssumeRolePolicyDocument`): statements name principals and have
    /// no `Resource`, the resource being the role itself.
    RoleTrust,
}

/// The policy language version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `2012-10-17`, the current version: policy variables are interpolated.
    Version2012,
    /// `2008-10-17`, the original version (and the meaning of an absent `Version`): `${...}` is
    /// literal text.
    Version2008,
}

/// A parsed policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    /// The `Version` element, if present.
    pub version: Option<PolicyVersion>,
    /// The `Id` element, if present.
    pub id: Option<String>,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The statement allows what it matches.
    Allow,
    /// The statement denies what it matches, overriding any allow.
    Deny,
}

/// An element that can be written positively (`Action`) or negatively (`NotAction`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope<T> {
    /// `Action`, `Principal`, `Resource`: the statement applies to what is listed.
    Only(T),
    /// `NotAction`, `NotPrincipal`, `NotResource`: the statement applies to everything else.
    AllExcept(T),
}

/// One statement of a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// The optional statement id.
    pub sid: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// `Principal` / `NotPrincipal`: present in key policies, absent in identity policies.
    pub principal: Option<Scope<PrincipalBlock>>,
    /// `Action` / `NotAction`.
    pub action: Scope<Vec<ActionPattern>>,
    /// `Resource` / `NotResource`: `None` only in a role trust policy, where the resource is the
    /// role. In a key policy `"*"` means the key itself.
    pub resource: Option<Scope<Vec<ResourcePattern>>>,
    /// The conditions, all of which must hold (an absent `Condition` is an empty list).
    pub condition: Vec<ConditionClause>,
}

/// The principals named by a `Principal` or `NotPrincipal` element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalBlock(pub Vec<PrincipalEntry>);

/// One principal named in a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// `"Principal": "*"`: everyone.
    Everyone,
    /// A value under `"AWS"`.
    Aws(AwsPrincipal),
    /// A value under `"Service"`, such as `logs.us-east-1.amazonaws.com`.
    Service(String),
    /// A value under `"Federated"` (an identity provider). Parsed; ferrokms has no federation,
    /// so it never matches.
    Federated(String),
    /// A value under `"CanonicalUser"` (an Amazon S3 concept). Parsed; never matches.
    CanonicalUser(String),
}

/// A value under `"AWS"` in a principal element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// `"*"`: every principal, as `"Principal": "*"` (the IAM User Guide calls them equivalent).
    Any,
    /// `"111122223333"` or `"arn:aws:iam::111122223333:root"`: the account, which in a key
    /// policy delegates to the account's IAM policies.
    Account(AccountId),
    /// `arn:aws:iam::<acct>:user/<path/><name>`.
    User(String),
    /// `arn:aws:iam::<acct>:role/<path/><name>`: every session of the role.
    Role(String),
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`: one session.
    AssumedRole(String),
    /// `arn:aws:sts::<acct>:federated-user/<name>`.
    FederatedUser(String),
    /// A unique id (`AIDA...`, `AROA...`), which IAM shows in place of a deleted principal.
    UniqueId(String),
}

/// An `Action` pattern such as `kms:Encrypt*`, matched case-insensitively as IAM does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionPattern {
    text: String,
    pattern: Pattern,
}

/// A `Resource` pattern: `"*"` or an ARN with wildcards and (in 2012-10-17) policy variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePattern(String);

const TOP_LEVEL_ELEMENTS: [&str; 3] = ["Version", "Id", "Statement"];
const STATEMENT_ELEMENTS: [&str; 9] =
    ["Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition"];

impl PolicyDocument {
    /// The IAM users and roles the document names by ARN in its `Principal` and `NotPrincipal`
    /// elements (which must exist when a key policy is set, as AWS requires).
    pub fn named_users_and_roles(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .filter_map(|s| s.principal.as_ref())
            .flat_map(|scope| match scope {
                Scope::Only(block) | Scope::AllExcept(block) => block.0.iter(),
            })
            .filter_map(|entry| match entry {
                PrincipalEntry::Aws(AwsPrincipal::User(arn) | AwsPrincipal::Role(arn)) => Some(arn.as_str()),
                _ => None,
            })
    }

    /// Parses and validates a policy document of the given kind.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first problem (`MalformedPolicyDocumentException`).
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Self, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Json(e.to_string()))?;
        Self::from_json(&value, kind)
    }

    /// Validates an already-decoded JSON document; see [`PolicyDocument::parse`].
    ///
    /// # Errors
    /// [`PolicyError`] naming the first problem.
    pub fn from_json(value: &Value, kind: PolicyKind) -> Result<Self, PolicyError> {
        let doc = value.as_object().ok_or(PolicyError::NotAnObject)?;
        if let Some(name) = doc.keys().find(|k| !TOP_LEVEL_ELEMENTS.contains(&k.as_str())) {
            return Err(PolicyError::UnknownTopLevelElement(name.clone()));
        }
        let version = match doc.get("Version") {
            None => None,
            Some(Value::String(v)) if v == "2012-10-17" => Some(PolicyVersion::Version2012),
            Some(Value::String(v)) if v == "2008-10-17" => Some(PolicyVersion::Version2008),
            Some(other) => return Err(PolicyError::Version(other.to_string())),
        };
        let id = match doc.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => return Err(PolicyError::Id),
        };
        let items: Vec<&Value> = match doc.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
            Some(item @ Value::Object(_)) => vec![item],
            _ => return Err(PolicyError::NoStatement),
        };
        let interpolate = version == Some(PolicyVersion::Version2012);
        let statements = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| parse_statement(index, item, kind, interpolate))
            .collect::<Result<_, _>>()?;
        Ok(Self { version, id, statements })
    }

    /// Reads a document that was validated when it was stored. Should it no longer parse (a
    /// stricter parser, a damaged store), the result is the empty document, which allows
    /// nothing: failing closed is the only safe reading of a policy we cannot read.
    pub fn from_stored(text: &str, kind: PolicyKind) -> Self {
        Self::parse(text, kind).unwrap_or_else(|_| Self::empty())
    }

    /// A document with no statements: it allows nothing.
    pub fn empty() -> Self {
        Self { version: Some(PolicyVersion::Version2012), id: None, statements: Vec::new() }
    }

    /// Whether policy variables are interpolated (version 2012-10-17 only).
    pub fn interpolates_variables(&self) -> bool {
        self.version == Some(PolicyVersion::Version2012)
    }

    /// Whether a decision under this document can depend on anything beyond the principal,
    /// the action and the resource: a `Condition` (request time, source address, encryption
    /// context, tags…) or a policy variable in a resource. When it cannot, a decision may be
    /// reused for the same principal, action and resource.
    pub fn reads_request(&self) -> bool {
        self.statements.iter().any(|s| {
            !s.condition.is_empty()
                || s.resource.as_ref().is_some_and(|scope| {
                    let (Scope::Only(patterns) | Scope::AllExcept(patterns)) = scope;
                    patterns.iter().any(|p| p.as_str().contains("${"))
                })
        })
    }
}

fn parse_statement(index: usize, item: &Value, kind: PolicyKind, interpolate: bool) -> Result<Statement, PolicyError> {
    let anonymous = StatementRef { index, sid: None };
    let s = item.as_object().ok_or_else(|| PolicyError::StatementNotObject(anonymous.clone()))?;
    let sid = match s.get("Sid") {
        None => None,
        Some(Value::String(sid)) => Some(sid.clone()),
        Some(_) => return Err(PolicyError::ElementType { statement: anonymous, element: "Sid", expected: "a string" }),
    };
    let at = StatementRef { index, sid };
    if let Some(name) = s.keys().find(|k| !STATEMENT_ELEMENTS.contains(&k.as_str())) {
        return Err(PolicyError::UnknownElement { statement: at, name: name.clone() });
    }
    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => return Err(PolicyError::InvalidEffect { statement: at, found: other.to_string() }),
        None => return Err(PolicyError::NoEffect(at)),
    };

    let action = pick(s, "Action", "NotAction", &at)?.ok_or_else(|| PolicyError::NoAction(at.clone()))?;
    let action = action.try_map(|(element, value)| {
        strings(value, element, &at)?
            .into_iter()
            .map(|a| {
                ActionPattern::parse(&a).ok_or_else(|| PolicyError::InvalidAction { statement: at.clone(), action: a })
            })
            .collect()
    })?;

    let principal = pick(s, "Principal", "NotPrincipal", &at)?;
    let principal = match (kind, principal) {
        (PolicyKind::Key | PolicyKind::RoleTrust, None) => return Err(PolicyError::NoPrincipal(at)),
        (PolicyKind::Identity, Some(_)) => return Err(PolicyError::PrincipalInIdentityPolicy(at)),
        (_, principal) => principal.map(|p| p.try_map(|(_, value)| parse_principals(value, &at))).transpose()?,
    };

    let resource = match (kind, pick(s, "Resource", "NotResource", &at)?) {
        (PolicyKind::RoleTrust, None) => None,
        (PolicyKind::RoleTrust, Some(_)) => return Err(PolicyError::ResourceInTrustPolicy(at)),
        (PolicyKind::Key | PolicyKind::Identity, None) => return Err(PolicyError::NoResource(at)),
        (PolicyKind::Key | PolicyKind::Identity, Some(resource)) => Some(resource.try_map(|(element, value)| {
            strings(value, element, &at)?
                .into_iter()
                .map(|r| {
                    ResourcePattern::parse(&r)
                        .ok_or_else(|| PolicyError::InvalidResource { statement: at.clone(), resource: r })
                })
                .collect()
        })?),
    };

    let condition = match s.get("Condition") {
        Some(block) => parse_block(block, &at, interpolate)?,
        None => Vec::new(),
    };
    Ok(Statement { sid: at.sid, effect, principal, action, resource, condition })
}

impl<T> Scope<T> {
    fn try_map<U>(self, f: impl FnOnce(T) -> Result<U, PolicyError>) -> Result<Scope<U>, PolicyError> {
        Ok(match self {
            Self::Only(x) => Scope::Only(f(x)?),
            Self::AllExcept(x) => Scope::AllExcept(f(x)?),
        })
    }
}

/// The positive or negative form of an element, refusing both at once.
fn pick<'v>(
    s: &'v Map<String, Value>,
    positive: &'static str,
    negative: &'static str,
    at: &StatementRef,
) -> Result<Option<Scope<(&'static str, &'v Value)>>, PolicyError> {
    match (s.get(positive), s.get(negative)) {
        (Some(_), Some(_)) => {
            Err(PolicyError::Conflict { statement: at.clone(), element: positive, negated: negative })
        }
        (Some(v), None) => Ok(Some(Scope::Only((positive, v)))),
        (None, Some(v)) => Ok(Some(Scope::AllExcept((negative, v)))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty array of strings.
fn strings(value: &Value, element: &'static str, at: &StatementRef) -> Result<Vec<String>, PolicyError> {
    let list = match value {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items.iter().map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => None,
    };
    list.ok_or_else(|| PolicyError::ElementType {
        statement: at.clone(),
        element,
        expected: "a string or a non-empty array of strings",
    })
}

fn parse_principals(value: &Value, at: &StatementRef) -> Result<PrincipalBlock, PolicyError> {
    let invalid = |principal: String| PolicyError::InvalidPrincipal { statement: at.clone(), principal };
    let map = match value {
        Value::String(s) if s == "*" => return Ok(PrincipalBlock(vec![PrincipalEntry::Everyone])),
        Value::Object(map) if !map.is_empty() => map,
        other => return Err(invalid(other.to_string())),
    };
    let mut entries = Vec::new();
    for (kind, ids) in map {
        let rendered = |id: &str| format!("\"{kind}\": {}", Value::String(id.to_owned()));
        let ids = match ids {
            Value::String(id) => vec![id.clone()],
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(format!("\"{kind}\": {ids}")))?,
            other => return Err(invalid(format!("\"{kind}\": {other}"))),
        };
        for id in ids {
            let plain = !id.is_empty() && !id.contains(['*', '?']) && !id.contains(char::is_whitespace);
            let entry = match kind.as_str() {
                "AWS" => AwsPrincipal::parse(&id).map(PrincipalEntry::Aws),
                "Service" => plain.then(|| PrincipalEntry::Service(id.clone())),
                "Federated" => plain.then(|| PrincipalEntry::Federated(id.clone())),
                "CanonicalUser" => plain.then(|| PrincipalEntry::CanonicalUser(id.clone())),
                _ => None,
            };
            entries.push(entry.ok_or_else(|| invalid(rendered(&id)))?);
        }
    }
    Ok(PrincipalBlock(entries))
}

impl AwsPrincipal {
    /// Parses a value written under `"AWS"`; `None` when it is not a principal IAM accepts.
    /// Wildcards may only be the whole value: IAM cannot match part of a principal.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "*" {
            return Some(Self::Any);
        }
        if let Ok(account) = AccountId::parse(s) {
            return Some(Self::Account(account));
        }
        if s.contains(['*', '?']) || s.contains(char::is_whitespace) {
            return None;
        }
        let Some(rest) = s.strip_prefix("arn:") else {
            let unique_id = (16..=128).contains(&s.len())
                && s.starts_with('A')
                && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            return unique_id.then(|| Self::UniqueId(s.to_owned()));
        };
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts.as_slice() else {
            return None;
        };
        let account = AccountId::parse(account).ok()?;
        if partition.is_empty() || !region.is_empty() {
            return None;
        }
        let named =
            |prefix: &str| resource.strip_prefix(prefix).is_some_and(|name| !name.is_empty() && !name.ends_with('/'));
        match *service {
            "iam" if *resource == "root" => Some(Self::Account(account)),
            "iam" if named("user/") => Some(Self::User(s.to_owned())),
            "iam" if named("role/") => Some(Self::Role(s.to_owned())),
            "sts" if named("federated-user/") => Some(Self::FederatedUser(s.to_owned())),
            "sts" => {
                let (role, session) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
                (!role.is_empty() && !session.is_empty() && !session.contains('/'))
                    .then(|| Self::AssumedRole(s.to_owned()))
            }
            _ => None,
        }
    }
}

impl ActionPattern {
    /// Parses `"*"` or `service:action` (wildcards allowed in either part).
    pub fn parse(s: &str) -> Option<Self> {
        let service_and_action = s
            .split_once(':')
            .is_some_and(|(service, action)| !service.is_empty() && !action.is_empty() && !action.contains(':'));
        let well_formed = s == "*" || (service_and_action && !s.contains(char::is_whitespace));
        let pattern = Pattern::compile(&s.to_lowercase(), None)?;
        well_formed.then(|| Self { text: s.to_owned(), pattern })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `action` (such as `kms:Encrypt`) matches; service prefix and action name are
    /// case-insensitive.
    pub fn matches(&self, action: &str) -> bool {
        self.pattern.matches(&action.to_lowercase())
    }
}

impl ResourcePattern {
    /// Parses `"*"` or an ARN pattern of six colon-separated parts.
    pub fn parse(s: &str) -> Option<Self> {
        let well_formed = s == "*" || (s.starts_with("arn:") && arn_parts(s).len() == 6);
        well_formed.then(|| Self(s.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn aws_principals() {
        use AwsPrincipal as P;
        let acct = || AccountId::parse("111122223333").unwrap();
        assert_eq!(P::parse("*"), Some(P::Any));
        assert_eq!(P::parse("111122223333"), Some(P::Account(acct())));
        assert_eq!(P::parse("arn:aws:iam::111122223333:root"), Some(P::Account(acct())));
        assert!(matches!(P::parse("arn:aws:iam::111122223333:user/division/alice"), Some(P::User(_))));
        assert!(matches!(P::parse("arn:aws:iam::111122223333:role/KMSAdminRole"), Some(P::Role(_))));
        assert!(matches!(P::parse("arn:aws:sts::111122223333:assumed-role/Admin/alice"), Some(P::AssumedRole(_))));
        assert!(matches!(P::parse("arn:aws:sts::111122223333:federated-user/bob"), Some(P::FederatedUser(_))));
        assert!(matches!(P::parse("AIDAJQABLZS4A3QDU576Q"), Some(P::UniqueId(_))));
        for bad in [
            "arn:aws:iam::111122223333:user/*",
            "arn:aws:iam::1111:root",
            "arn:aws:iam:us-east-1:111122223333:root",
            "arn:aws:iam::111122223333:group/admins",
            "arn:aws:iam::111122223333:user/",
            "arn:aws:sts::111122223333:assumed-role/Admin",
            "arn:aws:s3:::bucket",
            "alice",
            "",
            "11112222333",
        ] {
            assert_eq!(P::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn actions_and_resources() {
        let a = ActionPattern::parse("KMS:encrypt*").unwrap();
        assert!(a.matches("kms:Encrypt") && a.matches("kms:EncryptSomething"));
        assert!(!a.matches("kms:Decrypt"));
        assert!(ActionPattern::parse("*").unwrap().matches("kms:Anything"));
        for bad in ["Encrypt", "kms:", ":Encrypt", "kms:a:b", "kms :Encrypt", ""] {
            assert!(ActionPattern::parse(bad).is_none(), "{bad}");
        }
        assert!(ResourcePattern::parse("*").is_some());
        assert!(ResourcePattern::parse("arn:aws:kms:*:${aws:PrincipalAccount}:key/*").is_some());
        assert!(ResourcePattern::parse("arn:aws:kms:*").is_none());
        assert!(ResourcePattern::parse("key/1234").is_none());
    }
}
