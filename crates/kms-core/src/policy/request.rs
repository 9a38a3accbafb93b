//! The request side of an authorization question: who asks, to do what, on which key, and the
//! condition keys that describe the request.

use std::collections::BTreeMap;

use crate::ids::AccountId;

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN: `arn:aws:iam::<acct>:root`, `arn:aws:iam::<acct>:user/<path/><name>`,
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`, or a service principal name.
    pub arn: String,
    /// The account the caller belongs to. Not consulted for service principals.
    pub account: AccountId,
    /// What kind of principal this is.
    pub kind: PrincipalKind,
    /// The unique id AWS reports as `aws:userid`: the account id for the root user, the user's
    /// unique id (`AIDA...`) for a user, `<role id>:<session name>` for an assumed role.
    pub user_id: String,
    /// The friendly user name (`aws:username`); only users have one.
    pub username: Option<String>,
}

/// The kinds of principal a request can come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root user.
    Root,
    /// An IAM user.
    User,
    /// A session of an assumed IAM role.
    AssumedRole {
        /// The role's ARN, `arn:aws:iam::<acct>:role/<path/><name>`.
        role_arn: String,
        /// The session name.
        session_name: String,
    },
    /// An AWS service acting as itself, such as `logs.us-east-1.amazonaws.com`.
    Service {
        /// The service principal name.
        name: String,
    },
    /// The holder of a token from an OpenID Connect provider, asking to assume a role with it
    /// (STS AssumeRoleWithWebIdentity; the only thing such a caller can ask).
    WebIdentity {
        /// The provider's ARN (`arn:aws:iam::<acct>:oidc-provider/<issuer>`), as a trust
        /// policy's `"Federated"` principal names it.
        provider: String,
    },
}

/// One authorization question: may `principal` perform `action` on `resource`?
#[derive(Clone, Copy, Debug)]
pub struct AuthzRequest<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The IAM action, such as `kms:Encrypt`.
    pub action: &'a str,
    /// The ARN of the key the action is on.
    pub resource: &'a str,
    /// The account that owns the key.
    pub resource_account: &'a AccountId,
    /// Condition keys describing the request (see [`ConditionContext`]).
    pub context: &'a ConditionContext,
}

/// Condition keys and their values for one request, looked up case-insensitively as IAM does
/// (`aws:SourceIp` and `AWS:sourceip` are the same key, and so are `kms:EncryptionContext:Dept`
/// and `kms:encryptioncontext:dept`, as the AWS KMS developer guide states).
///
/// The caller supplies everything that describes the request: `aws:CurrentTime` (ISO 8601),
/// `aws:EpochTime`, `aws:SourceIp`, `aws:SecureTransport`, `kms:EncryptionContext:<key>`,
/// `kms:EncryptionContextKeys` (multi-valued), `kms:CallerAccount`, `kms:ViaService`, tags and
/// so on. The principal keys (`aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`,
/// `aws:username`, `aws:userid`) are derived by the evaluator from the principal and take
/// precedence over anything supplied here. `BinaryEquals` compares base64-encoded values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionContext {
    /// Lower-cased key → (key as given, values).
    entries: BTreeMap<String, (String, Vec<String>)>,
}

impl ConditionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the single value `value`, replacing any earlier values.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.insert_multi(key, vec![value.into()])
    }

    /// Sets the multi-valued `key` to `values`, replacing any earlier values. An empty set of
    /// values behaves as an absent key, as in IAM.
    pub fn insert_multi(&mut self, key: impl Into<String>, values: Vec<String>) -> &mut Self {
        let key = key.into();
        self.entries.insert(key.to_lowercase(), (key, values));
        self
    }

    /// The values of `key` (case-insensitive), or `None` when the key is absent or has no values.
    pub fn values(&self, key: &str) -> Option<&[String]> {
        self.entries.get(&key.to_lowercase()).map(|(_, values)| values.as_slice()).filter(|v| !v.is_empty())
    }

    /// The keys as given, with their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.values().map(|(key, values)| (key.as_str(), values.as_slice()))
    }
}

/// The global keys IAM derives from the principal, so that callers need not.
pub(crate) fn principal_keys(principal: &Principal) -> ConditionContext {
    let mut keys = ConditionContext::new();
    let principal_type = match &principal.kind {
        PrincipalKind::Service { name } => {
            // Service principals have no ARN, account, type or user id in the request context.
            keys.insert("aws:PrincipalServiceName", name.as_str()).insert("aws:PrincipalIsAWSService", "true");
            return keys;
        }
        PrincipalKind::WebIdentity { .. } => {
            // Only the token's claims describe such a caller (as `<issuer>:sub` and the like).
            keys.insert("aws:PrincipalType", "WebIdentityUser");
            return keys;
        }
        PrincipalKind::Root => "Account",
        PrincipalKind::User => "User",
        PrincipalKind::AssumedRole { .. } => "AssumedRole",
    };
    // For a role session AWS reports the role's ARN, not the session's.
    let arn = match &principal.kind {
        PrincipalKind::AssumedRole { role_arn, .. } => role_arn.as_str(),
        _ => principal.arn.as_str(),
    };
    keys.insert("aws:PrincipalArn", arn)
        .insert("aws:PrincipalAccount", principal.account.as_str())
        .insert("aws:PrincipalType", principal_type)
        .insert("aws:PrincipalIsAWSService", "false")
        .insert("aws:userid", principal.user_id.as_str());
    if let (PrincipalKind::User, Some(name)) = (&principal.kind, &principal.username) {
        keys.insert("aws:username", name.as_str());
    }
    keys
}

/// The principal keys; a caller-supplied value for one of these is ignored.
const PRINCIPAL_KEYS: [&str; 7] = [
    "aws:principalarn",
    "aws:principalaccount",
    "aws:principaltype",
    "aws:principalisawsservice",
    "aws:principalservicename",
    "aws:userid",
    "aws:username",
];

/// The condition keys of one request: the derived principal keys, then the caller's context.
pub(crate) struct RequestKeys<'a> {
    derived: ConditionContext,
    supplied: &'a ConditionContext,
}

impl<'a> RequestKeys<'a> {
    pub(crate) fn new(principal: &Principal, supplied: &'a ConditionContext) -> Self {
        Self { derived: principal_keys(principal), supplied }
    }

    /// The values of `key`, `None` when absent or empty.
    pub(crate) fn values(&self, key: &str) -> Option<&[String]> {
        if PRINCIPAL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            self.derived.values(key)
        } else {
            self.supplied.values(key)
        }
    }

    /// The value of the policy variable `${key}`: only a key with exactly one value has one.
    pub(crate) fn variable(&self, key: &str) -> Option<String> {
        match self.values(key)? {
            [value] => Some(value.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_empty_is_absent() {
        let mut c = ConditionContext::new();
        c.insert("kms:EncryptionContext:AppName", "ExampleApp")
            .insert_multi("kms:EncryptionContextKeys", vec!["AppName".into()]);
        c.insert_multi("aws:TagKeys", Vec::new());
        assert_eq!(c.values("KMS:encryptioncontext:appname").unwrap(), ["ExampleApp"]);
        assert_eq!(c.values("kms:EncryptionContextKeys").unwrap(), ["AppName"]);
        assert!(c.values("aws:TagKeys").is_none());
        assert!(c.values("aws:SourceIp").is_none());
        assert_eq!(c.iter().count(), 3);
    }

    #[test]
    fn derived_keys_follow_aws() {
        let session = Principal {
            arn: "arn:aws:sts::111122223333:assumed-role/Admin/alice".into(),
            account: AccountId::parse("111122223333").unwrap(),
            kind: PrincipalKind::AssumedRole {
                role_arn: "arn:aws:iam::111122223333:role/Admin".into(),
                session_name: "alice".into(),
            },
            user_id: "AROAEXAMPLE:alice".into(),
            username: None,
        };
        let keys = principal_keys(&session);
        assert_eq!(keys.values("aws:principalarn").unwrap(), ["arn:aws:iam::111122223333:role/Admin"]);
        assert_eq!(keys.values("aws:PrincipalType").unwrap(), ["AssumedRole"]);
        assert!(keys.values("aws:username").is_none());
        let service = Principal { kind: PrincipalKind::Service { name: "logs.amazonaws.com".into() }, ..session };
        let keys = principal_keys(&service);
        assert!(keys.values("aws:PrincipalArn").is_none());
        assert_eq!(keys.values("aws:PrincipalServiceName").unwrap(), ["logs.amazonaws.com"]);
    }
}
