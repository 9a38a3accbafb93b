//! Policies: the IAM policy language as AWS KMS uses it, and the authorization decision.
//!
//! - [`PolicyDocument`] is a parsed key policy or identity (IAM) policy: statements with
//!   principals, actions, resources and conditions. [`KeyPolicy`] keeps a key policy's text as
//!   the client wrote it (AWS returns it verbatim) next to its parsed form.
//! - [`AuthzRequest`] describes one question: may this [`Principal`] perform this action on this
//!   key, given the request's [`ConditionContext`]?
//! - [`evaluate`] answers it from the key policy, the principal's identity policies and whether
//!   a grant applies, returning a [`Decision`].
//!
//! Everything here is pure: the current time (`aws:CurrentTime`, `aws:EpochTime`), the source
//! address and every other fact about the request arrive as condition keys.
//!
//! Semantics follow the AWS documentation: the IAM User Guide ("IAM JSON policy elements",
//! "Condition operators", "Policy evaluation logic", "Single-valued vs. multivalued context
//! keys", "Policy variables") and the AWS KMS Developer Guide ("Key policies in AWS KMS",
//! "Default key policy", "Allowing users in other accounts to use a KMS key", "AWS KMS condition
//! keys"). Where those pages are silent, the choice made is documented where it is implemented.

mod condition;
pub mod condition_keys;
mod document;
mod evaluate;
mod pattern;
mod request;
#[cfg(test)]
mod tests;

use std::fmt;

pub use condition::{Cidr, ConditionClause, ConditionOperator, ConditionTest, ConditionValues, SetQualifier};
pub use document::{
    ActionPattern, AwsPrincipal, Effect, PolicyDocument, PolicyKind, PolicyVersion, PrincipalBlock, PrincipalEntry,
    ResourcePattern, Scope, Statement,
};
pub use evaluate::{Decision, Denial, DeniedBy, evaluate};
pub use request::{AuthzRequest, ConditionContext, Principal, PrincipalKind};

use crate::ids::AccountId;

/// Largest key policy AWS accepts, in characters.
pub const MAX_POLICY_LEN: usize = 32_768;
/// The only key policy name.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Identifies a statement in an error message: its position in `Statement` and its `Sid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The statement's index in the `Statement` array (0 for a lone statement object).
    pub index: usize,
    /// The statement's `Sid`, when it has one.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the statement at index {}", self.index)?;
        match &self.sid {
            Some(sid) => write!(f, " (Sid {sid:?})"),
            None => Ok(()),
        }
    }
}

/// Why a policy document is refused. The `Display` text is the message of the
/// `MalformedPolicyDocumentException` the client sees, so it says which statement is wrong and
/// how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not JSON.
    #[error("The policy is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("The policy must be a JSON object.")]
    NotAnObject,
    /// A policy language version other than the two IAM knows (the value as JSON).
    #[error("The policy 'Version' must be \"2012-10-17\" or \"2008-10-17\", not {0}.")]
    Version(String),
    /// `Id` is not a string.
    #[error("The policy 'Id' must be a string.")]
    Id,
    /// A top-level member other than `Version`, `Id` and `Statement`.
    #[error("The policy has an unknown element {0:?}; a policy has 'Version', 'Id' and 'Statement'.")]
    UnknownTopLevelElement(String),
    /// `Statement` missing, empty, or neither an object nor an array.
    #[error("The policy must have a 'Statement': a statement object or a non-empty array of them.")]
    NoStatement,
    /// A statement that is not an object.
    #[error("In the policy, {0} is not a JSON object.")]
    StatementNotObject(StatementRef),
    /// A statement member that is not a policy element.
    #[error(
        "In {statement}, {name:?} is not a policy element; a statement has 'Sid', 'Effect', 'Principal' or \
         'NotPrincipal', 'Action' or 'NotAction', 'Resource' or 'NotResource', and 'Condition'."
    )]
    UnknownElement {
        /// The statement.
        statement: StatementRef,
        /// The unknown member.
        name: String,
    },
    /// An element of the wrong JSON type.
    #[error("In {statement}, '{element}' must be {expected}.")]
    ElementType {
        /// The statement.
        statement: StatementRef,
        /// The element.
        element: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A statement without `Effect`.
    #[error("In {0}, 'Effect' is missing; it must be \"Allow\" or \"Deny\".")]
    NoEffect(StatementRef),
    /// An `Effect` other than `Allow` or `Deny` (the value as JSON).
    #[error("In {statement}, 'Effect' must be \"Allow\" or \"Deny\", not {found}.")]
    InvalidEffect {
        /// The statement.
        statement: StatementRef,
        /// The value found.
        found: String,
    },
    /// A statement without `Action` or `NotAction`.
    #[error("In {0}, 'Action' or 'NotAction' is missing.")]
    NoAction(StatementRef),
    /// An element and its negation in one statement.
    #[error("In {statement}, '{element}' and '{negated}' are both present; a statement may have only one of them.")]
    Conflict {
        /// The statement.
        statement: StatementRef,
        /// The positive element (`Action`, `Principal`, `Resource`).
        element: &'static str,
        /// The negated element (`NotAction`, ...).
        negated: &'static str,
    },
    /// A key policy (or trust policy) statement without `Principal` or `NotPrincipal`.
    #[error(
        "In {0}, 'Principal' or 'NotPrincipal' is missing; every statement in a key policy must name the \
         principals it applies to."
    )]
    NoPrincipal(StatementRef),
    /// A role trust policy statement with `Resource` or `NotResource`.
    #[error("In {0}, 'Resource' is not allowed: a trust policy applies to the role it is attached to.")]
    ResourceInTrustPolicy(StatementRef),
    /// An identity policy statement with `Principal` or `NotPrincipal`.
    #[error("In {0}, 'Principal' is not allowed: an identity-based policy applies to the identity it is attached to.")]
    PrincipalInIdentityPolicy(StatementRef),
    /// A statement without `Resource` or `NotResource`.
    #[error("In {0}, 'Resource' or 'NotResource' is missing; in a key policy write \"Resource\": \"*\" (this key).")]
    NoResource(StatementRef),
    /// A user or role that does not exist (AWS: principals in a key policy must exist and be
    /// visible to KMS).
    #[error("Policy contains a statement with one or more invalid principals.")]
    UnknownPrincipal(String),
    /// A principal IAM would not accept (rendered as `"AWS": "..."`).
    #[error(
        "Policy contains a statement with one or more invalid principals: in {statement}, {principal} is not \"*\", \
         a 12-digit account id, or the ARN of an account root, IAM user, IAM role or assumed-role session (a \
         wildcard can only be the whole principal)."
    )]
    InvalidPrincipal {
        /// The statement.
        statement: StatementRef,
        /// The principal as written.
        principal: String,
    },
    /// A malformed action.
    #[error(
        "In {statement}, {action:?} is not an action: write \"kms:Encrypt\" (service prefix, colon, action name; \
         wildcards allowed) or \"*\"."
    )]
    InvalidAction {
        /// The statement.
        statement: StatementRef,
        /// The action as written.
        action: String,
    },
    /// A malformed resource.
    #[error(
        "In {statement}, {resource:?} is not a resource: write \"*\" or an ARN such as \
         \"arn:aws:kms:us-east-1:111122223333:key/*\"."
    )]
    InvalidResource {
        /// The statement.
        statement: StatementRef,
        /// The resource as written.
        resource: String,
    },
    /// A condition operator IAM does not define.
    #[error(
        "In {statement}, {operator:?} is not a condition operator (operators look like StringEquals, ArnLike, \
         ForAnyValue:StringLike or BoolIfExists)."
    )]
    UnknownConditionOperator {
        /// The statement.
        statement: StatementRef,
        /// The operator as written.
        operator: String,
    },
    /// A condition operator whose value is not an object of keys and values.
    #[error("In {statement}, the value of {operator} must be an object mapping condition keys to values.")]
    ConditionBlock {
        /// The statement.
        statement: StatementRef,
        /// The operator as written.
        operator: String,
    },
    /// A condition key without a service prefix.
    #[error(
        "In {statement}, the condition key {key:?} under {operator} must have a prefix, as in \"aws:SourceIp\" or \
         \"kms:EncryptionContext:Department\"."
    )]
    InvalidConditionKey {
        /// The statement.
        statement: StatementRef,
        /// The operator as written.
        operator: String,
        /// The key as written.
        key: String,
    },
    /// A condition value the operator cannot use.
    #[error("In {statement}, {operator} on {key:?} has the value {value}, which is not {expected}.")]
    InvalidConditionValue {
        /// The statement.
        statement: StatementRef,
        /// The operator as written.
        operator: String,
        /// The condition key.
        key: String,
        /// The offending value, as JSON.
        value: String,
        /// What the operator needs.
        expected: &'static str,
    },
    /// `ForAnyValue`/`ForAllValues` on `kms:EncryptionContext:<key>`, which AWS KMS refuses
    /// (`OverlyPermissiveCondition`): the key is single-valued, and the set operator lets requests
    /// without the encryption context pair through.
    #[error(
        "In {statement}, {operator} cannot be used with {key:?}: kms:EncryptionContext:<key> is single-valued, and a \
         set operator would also match requests without that encryption context pair (OverlyPermissiveCondition). \
         Remove the ForAnyValue/ForAllValues prefix."
    )]
    OverlyPermissiveCondition {
        /// The statement.
        statement: StatementRef,
        /// The operator as written.
        operator: String,
        /// The condition key.
        key: String,
    },
}

/// A key policy: the document as the client wrote it (AWS returns it verbatim) and its parsed
/// form.
#[derive(Clone, Debug)]
pub struct KeyPolicy {
    text: String,
    document: PolicyDocument,
}

impl PartialEq for KeyPolicy {
    /// Two key policies are equal when their texts are: the document is derived from the text.
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for KeyPolicy {}

impl KeyPolicy {
    /// Parses and validates a key policy. The text is kept verbatim.
    ///
    /// # Errors
    /// [`PolicyError`] naming the first problem (`MalformedPolicyDocumentException`).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let document = PolicyDocument::parse(text, PolicyKind::Key)?;
        Ok(Self { text: text.to_owned(), document })
    }

    /// The document text, as the client wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The parsed document.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// The key policy AWS gives a key created without one: the account's root principal may do
    /// anything with the key, which delegates access to the account's IAM policies.
    pub fn default_for(account: &AccountId) -> Self {
        // Laid out the way AWS renders its default policy, member order included.
        let text = format!(
            "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \
             \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \
             \"AWS\" : \"arn:aws:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
        );
        Self::from_stored(text)
    }

    /// Wraps a document that was validated when it was stored. Should it no longer parse (a
    /// stricter parser, a damaged store), its parsed form is the empty document, which allows
    /// nothing: failing closed is the only safe reading of a policy we cannot read.
    pub fn from_stored(text: String) -> Self {
        let document = PolicyDocument::from_stored(&text, PolicyKind::Key);
        Self { text, document }
    }
}
