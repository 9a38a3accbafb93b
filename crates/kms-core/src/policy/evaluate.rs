//! The authorization decision: key policy, identity policies and grants, evaluated as AWS KMS
//! documents it ("Key policies in AWS KMS", "Default key policy", "Allowing users in other
//! accounts to use a KMS key", and the IAM User Guide's "Policy evaluation logic").
//!
//! 1. An applicable `Deny` in the key policy or in any identity policy denies (explicit deny).
//! 2. A grant that covers the request allows it.
//! 3. The key policy must allow the request, either to the principal itself or to the
//!    principal's account. Naming the account (`"111122223333"` or
//!    `"arn:aws:iam::111122223333:root"`) does not allow any user or role by itself: it lets the
//!    account's IAM policies delegate the permission, so an identity policy must allow it too.
//!    The account root user has every IAM permission implicitly, so for it the key policy alone
//!    is enough.
//! 4. A principal from another account always needs an identity policy allow as well (unless it
//!    is that account's root user), even when the key policy names it.
//! 5. A service principal has no identity policies: only a key policy statement naming the
//!    service, or every principal, allows it.

use super::condition::ConditionClause;
use super::document::{
    AwsPrincipal, Effect, PolicyDocument, PolicyKind, PrincipalBlock, PrincipalEntry, Scope, Statement,
};
use super::pattern::{ArnPattern, Resolver};
use super::request::{AuthzRequest, Principal, PrincipalKind, RequestKeys};
use crate::ids::AccountId;

/// The outcome of [`evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request is authorized.
    Allow,
    /// The request is refused.
    Deny(Denial),
}

impl Decision {
    /// Whether the request is authorized.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Why a request was refused, for the `AccessDeniedException` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Denial {
    /// `true` when a `Deny` statement applied; `false` when nothing allowed the request.
    pub explicit: bool,
    /// The kind of policy that denied, or that failed to allow.
    pub policy: DeniedBy,
}

/// The kind of policy a [`Denial`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeniedBy {
    /// The key policy (AWS says "resource-based policy").
    KeyPolicy,
    /// The principal's IAM policies ("identity-based policy").
    IdentityPolicy,
}

impl Denial {
    /// The clause AWS appends to `User: <arn> is not authorized to perform: <action> on
    /// resource: <arn>`, such as `because no resource-based policy allows the kms:Encrypt
    /// action` or `with an explicit deny in a resource-based policy`.
    pub fn reason(&self, action: &str) -> String {
        match (self.explicit, self.policy) {
            (true, DeniedBy::KeyPolicy) => "with an explicit deny in a resource-based policy".to_owned(),
            (true, DeniedBy::IdentityPolicy) => "with an explicit deny in an identity-based policy".to_owned(),
            (false, DeniedBy::KeyPolicy) => format!("because no resource-based policy allows the {action} action"),
            (false, DeniedBy::IdentityPolicy) => format!("because no identity-based policy allows the {action} action"),
        }
    }
}

/// How a statement's principal element reaches the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// Through the caller's account: delegates to the account's IAM policies.
    Account,
    /// The caller itself (or everyone).
    Direct,
}

/// Decides one request. Pure: the current time, source address and every other fact about the
/// request come in through `req.context`.
///
/// `identity_policies` are the IAM policies of the principal (for a role session, the role's);
/// `grant_allows` says whether a grant on the key covers this request.
pub fn evaluate(
    req: &AuthzRequest<'_>,
    key_policy: &PolicyDocument,
    identity_policies: &[&PolicyDocument],
    grant_allows: bool,
) -> Decision {
    let keys = RequestKeys::new(req.principal, req.context);
    let reach = |doc: &PolicyDocument, kind: PolicyKind, effect: Effect| {
        doc.statements
            .iter()
            .filter(|s| s.effect == effect)
            .filter_map(|s| statement_reach(s, doc.interpolates_variables(), kind, req, &keys))
            .max()
    };
    let deny = |explicit: bool, policy: DeniedBy| Decision::Deny(Denial { explicit, policy });

    if reach(key_policy, PolicyKind::Key, Effect::Deny).is_some() {
        return deny(true, DeniedBy::KeyPolicy);
    }
    if identity_policies.iter().any(|doc| reach(doc, PolicyKind::Identity, Effect::Deny).is_some()) {
        return deny(true, DeniedBy::IdentityPolicy);
    }
    if grant_allows {
        return Decision::Allow;
    }

    let principal = req.principal;
    let identity_allows = match principal.kind {
        PrincipalKind::Root => true,
        PrincipalKind::Service { .. } | PrincipalKind::WebIdentity { .. } => false,
        PrincipalKind::User | PrincipalKind::AssumedRole { .. } => {
            identity_policies.iter().any(|doc| reach(doc, PolicyKind::Identity, Effect::Allow).is_some())
        }
    };
    let own_account =
        matches!(principal.kind, PrincipalKind::Service { .. }) || principal.account == *req.resource_account;
    match reach(key_policy, PolicyKind::Key, Effect::Allow) {
        None => deny(false, DeniedBy::KeyPolicy),
        Some(Reach::Direct) if own_account => Decision::Allow,
        Some(_) if identity_allows => Decision::Allow,
        Some(_) => deny(false, DeniedBy::IdentityPolicy),
    }
}

/// How the statement reaches the caller, if it applies to this request at all.
fn statement_reach(
    statement: &Statement,
    interpolate: bool,
    kind: PolicyKind,
    req: &AuthzRequest<'_>,
    keys: &RequestKeys<'_>,
) -> Option<Reach> {
    let reach = match (&statement.principal, kind) {
        // An identity policy applies to the identity it is attached to.
        (None, PolicyKind::Identity) => Reach::Direct,
        // A resource-based statement without principals applies to no one.
        (None, PolicyKind::Key | PolicyKind::RoleTrust) => return None,
        (Some(Scope::Only(block)), _) => principal_reach(block, req.principal)?,
        (Some(Scope::AllExcept(block)), _) => not_principal_reach(block, req.principal, statement.effect)?,
    };
    let action = match &statement.action {
        Scope::Only(patterns) => patterns.iter().any(|p| p.matches(req.action)),
        Scope::AllExcept(patterns) => !patterns.iter().any(|p| p.matches(req.action)),
    };
    let resolve = |key: &str| keys.variable(key);
    let variables: Option<Resolver<'_>> = if interpolate { Some(&resolve) } else { None };
    let applies = action
        && statement.resource.as_ref().is_none_or(|r| resource_matches(r, req.resource, variables))
        && statement.condition.iter().all(|c: &ConditionClause| c.holds(keys, interpolate));
    applies.then_some(reach)
}

/// `Resource` matches when any pattern matches; a pattern whose policy variable cannot be
/// resolved matches nothing. `NotResource` matches when no pattern matches, and not at all when
/// a variable cannot be resolved (IAM: the statement is then invalid for the request).
fn resource_matches(
    scope: &Scope<Vec<super::document::ResourcePattern>>,
    resource: &str,
    variables: Option<Resolver<'_>>,
) -> bool {
    match scope {
        Scope::Only(patterns) => {
            patterns.iter().any(|p| ArnPattern::compile(p.as_str(), variables).is_some_and(|arn| arn.matches(resource)))
        }
        Scope::AllExcept(patterns) => patterns
            .iter()
            .all(|p| ArnPattern::compile(p.as_str(), variables).is_some_and(|arn| !arn.matches(resource))),
    }
}

fn principal_reach(block: &PrincipalBlock, principal: &Principal) -> Option<Reach> {
    block.0.iter().filter_map(|entry| entry_reach(entry, principal)).max()
}

fn entry_reach(entry: &PrincipalEntry, p: &Principal) -> Option<Reach> {
    let direct = |hit: bool| hit.then_some(Reach::Direct);
    let is_service = matches!(p.kind, PrincipalKind::Service { .. });
    match entry {
        PrincipalEntry::Everyone | PrincipalEntry::Aws(AwsPrincipal::Any) => Some(Reach::Direct),
        PrincipalEntry::Aws(AwsPrincipal::Account(account)) => match p.kind {
            _ if is_service || p.account != *account => None,
            // The root user is the account principal itself.
            PrincipalKind::Root => Some(Reach::Direct),
            _ => Some(Reach::Account),
        },
        PrincipalEntry::Aws(AwsPrincipal::User(arn)) => direct(p.kind == PrincipalKind::User && p.arn == *arn),
        PrincipalEntry::Aws(AwsPrincipal::Role(arn)) => {
            direct(matches!(&p.kind, PrincipalKind::AssumedRole { role_arn, .. } if role_arn == arn))
        }
        PrincipalEntry::Aws(AwsPrincipal::AssumedRole(arn) | AwsPrincipal::FederatedUser(arn)) => {
            direct(!is_service && p.arn == *arn)
        }
        PrincipalEntry::Aws(AwsPrincipal::UniqueId(id)) => direct(!is_service && unique_id_matches(id, p)),
        PrincipalEntry::Service(name) => {
            direct(matches!(&p.kind, PrincipalKind::Service { name: n } if n.eq_ignore_ascii_case(name)))
        }
        PrincipalEntry::Federated(provider) => {
            direct(matches!(&p.kind, PrincipalKind::WebIdentity { provider: p } if p == provider))
        }
        PrincipalEntry::CanonicalUser(_) => None,
    }
}

/// A user's unique id is its `aws:userid`; a role's is the part before `:<session>`.
fn unique_id_matches(id: &str, p: &Principal) -> bool {
    p.user_id == id || p.user_id.strip_prefix(id).is_some_and(|rest| rest.starts_with(':'))
}

/// One identity a request is made under: AWS evaluates `NotPrincipal` against each.
enum Facet<'a> {
    Account(&'a AccountId),
    /// The user or session ARN.
    Caller,
    Role(&'a str),
    Service(&'a str),
    Federated(&'a str),
}

/// `NotPrincipal`. The IAM User Guide ("NotPrincipal") says a request is made under several
/// identities at once (the session, its role, the account), and a `Deny` with `NotPrincipal`
/// exempts the caller only when every one of them is listed. An `Allow` with `NotPrincipal`
/// (which AWS advises against) is read just as cautiously: it applies only when none of them is
/// listed.
fn not_principal_reach(block: &PrincipalBlock, p: &Principal, effect: Effect) -> Option<Reach> {
    let facets = match &p.kind {
        PrincipalKind::Root => vec![Facet::Account(&p.account)],
        PrincipalKind::User => vec![Facet::Caller, Facet::Account(&p.account)],
        PrincipalKind::AssumedRole { role_arn, .. } => {
            vec![Facet::Caller, Facet::Role(role_arn), Facet::Account(&p.account)]
        }
        PrincipalKind::Service { name } => vec![Facet::Service(name)],
        PrincipalKind::WebIdentity { provider } => vec![Facet::Federated(provider)],
    };
    let listed = |facet: &Facet<'_>| block.0.iter().any(|entry| names(entry, facet, p));
    let applies = match effect {
        Effect::Deny => !facets.iter().all(listed),
        Effect::Allow => !facets.iter().any(listed),
    };
    applies.then_some(Reach::Direct)
}

fn names(entry: &PrincipalEntry, facet: &Facet<'_>, p: &Principal) -> bool {
    use AwsPrincipal as A;
    match (entry, facet) {
        (PrincipalEntry::Everyone | PrincipalEntry::Aws(A::Any), _) => true,
        (PrincipalEntry::Aws(A::Account(listed)), Facet::Account(account)) => listed == *account,
        (PrincipalEntry::Aws(A::User(arn) | A::AssumedRole(arn) | A::FederatedUser(arn)), Facet::Caller) => {
            p.arn == *arn
        }
        (PrincipalEntry::Aws(A::UniqueId(id)), Facet::Caller) => unique_id_matches(id, p),
        (PrincipalEntry::Aws(A::Role(arn)), Facet::Role(role)) => arn == role,
        (PrincipalEntry::Service(listed), Facet::Service(name)) => listed.eq_ignore_ascii_case(name),
        (PrincipalEntry::Federated(listed), Facet::Federated(provider)) => listed == provider,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_reasons_use_aws_wording() {
        let d = |explicit, policy| Denial { explicit, policy }.reason("kms:Encrypt");
        assert_eq!(d(false, DeniedBy::KeyPolicy), "because no resource-based policy allows the kms:Encrypt action");
        assert_eq!(
            d(false, DeniedBy::IdentityPolicy),
            "because no identity-based policy allows the kms:Encrypt action"
        );
        assert_eq!(d(true, DeniedBy::KeyPolicy), "with an explicit deny in a resource-based policy");
        assert_eq!(d(true, DeniedBy::IdentityPolicy), "with an explicit deny in an identity-based policy");
    }
}
