//! Principals as the service sees them: ids, secrets, and how an access key turns into the
//! principal the policy evaluator reasons about.

use base64::Engine as _;
use kms_core::Rng;
use kms_core::ids::AccountId;
use kms_core::policy::{Principal, PrincipalKind};
use kms_crypto::{SecretBytes, random_array};
use kms_store::{AccessKeyRecord, PrincipalRecord, PrincipalType};

/// An AWS-style unique id: `prefix` and 16 characters of base32 (`AKIA…`, `ASIA…`, `AIDA…`,
/// `AROA…`).
pub fn new_principal_id(prefix: &str, rng: &dyn Rng) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes: [u8; 16] = random_array(rng);
    let tail: String = bytes.iter().map(|b| char::from(*ALPHABET.get(usize::from(b % 32)).unwrap_or(&b'A'))).collect();
    format!("{prefix}{tail}")
}

/// A new secret access key: 40 characters of base64.
pub fn new_secret(rng: &dyn Rng) -> SecretBytes {
    let raw: [u8; 30] = random_array(rng);
    SecretBytes::new(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes())
}

/// A new session token: 96 random bytes, base64.
pub fn new_session_token(rng: &dyn Rng) -> SecretBytes {
    let raw: [u8; 96] = random_array(rng);
    SecretBytes::new(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes())
}

/// The ARN of an account's root principal.
pub fn root_arn(account: &AccountId) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// The account root as a principal (the `--insecure-dev-credentials` identity).
pub fn root_principal(account: &AccountId) -> Principal {
    Principal {
        arn: root_arn(account),
        account: account.clone(),
        kind: PrincipalKind::Root,
        user_id: account.to_string(),
        username: None,
    }
}

/// The principal an access key acts as, given the record of the principal it belongs to.
pub fn principal_of(key: &AccessKeyRecord, owner: Option<&PrincipalRecord>) -> Option<Principal> {
    if key.principal_arn == root_arn(&key.account) {
        return Some(root_principal(&key.account));
    }
    let owner = owner?;
    let principal = match (owner.kind, &key.session) {
        // A user's long-term key, or a session of its own (STS GetSessionToken): the user.
        (PrincipalType::User, _) => Principal {
            arn: owner.arn.clone(),
            account: owner.account.clone(),
            kind: PrincipalKind::User,
            user_id: owner.principal_id.clone(),
            username: Some(owner.name.clone()),
        },
        (PrincipalType::Service, None) => Principal {
            arn: owner.name.clone(),
            account: owner.account.clone(),
            kind: PrincipalKind::Service { name: owner.name.clone() },
            user_id: owner.name.clone(),
            username: None,
        },
        (PrincipalType::Role, Some(session)) => Principal {
            arn: format!("arn:aws:sts::{}:assumed-role/{}/{}", owner.account, owner.name, session.session_name),
            account: owner.account.clone(),
            kind: PrincipalKind::AssumedRole {
                role_arn: owner.arn.clone(),
                session_name: session.session_name.clone(),
            },
            user_id: format!("{}:{}", owner.principal_id, session.session_name),
            username: None,
        },
        // Roles act only through sessions; services have no sessions; groups never act.
        (PrincipalType::Role, None)
        | (PrincipalType::Service, Some(_))
        | (PrincipalType::Group | PrincipalType::OidcProvider, _) => return None,
    };
    Some(principal)
}

/// The tags a principal carries into evaluation (`aws:PrincipalTag/…`): its own (a user's, or
/// a session's role's), with a session's tags replacing those of the same key (compared
/// without regard to case, as IAM compares tag keys).
pub fn principal_tags(
    owner: Option<&PrincipalRecord>,
    session: Option<&kms_store::SessionRecord>,
) -> std::sync::Arc<[(String, String)]> {
    let mut tags: Vec<(String, String)> =
        owner.map(|o| o.attributes.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect()).unwrap_or_default();
    for t in session.map(|s| s.tags.as_slice()).unwrap_or_default() {
        tags.retain(|(k, _)| !k.eq_ignore_ascii_case(&t.key));
        tags.push((t.key.clone(), t.value.clone()));
    }
    tags.into()
}
