//! Authorization: every request that names a key is checked against the key policy, the
//! caller's identity policies and the key's grants, with the AWS condition keys of the request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use kms_core::KmsError;
use kms_core::context::EncryptionContext;
use kms_core::error::AccessDenied;
use kms_core::policy::condition_keys;
use kms_core::policy::{
    AuthzRequest, ConditionContext, Decision, KeyPolicy, PolicyDocument, PolicyError, PolicyKind, Principal,
    PrincipalKind, evaluate,
};
use kms_store::GrantRecord;

use crate::cache::CachedKey;
use crate::error::ServiceError;
use crate::service::{RequestContext, Service};

/// The request-specific condition keys an operation contributes (encryption context,
/// algorithm, grant details…). Global and key-derived keys are added by [`Service::authorize`].
#[derive(Default)]
pub struct RequestKeys {
    pub(crate) context: ConditionContext,
    pub(crate) encryption_context: Option<EncryptionContext>,
    /// For CreateGrant: the grant it would create (a grant that allows CreateGrant allows only
    /// grants no wider than itself).
    pub(crate) child_grant: Option<ChildGrant>,
}

/// Encryption-context pairs of a grant constraint.
type Pairs = std::collections::BTreeMap<String, String>;

/// What a CreateGrant request asks for, as a parent grant's CreateGrant permission judges it.
#[derive(Debug, Default)]
pub struct ChildGrant {
    /// The operations the new grant would allow.
    pub operations: Vec<String>,
    /// Its `EncryptionContextEquals` constraint.
    pub context_equals: Option<Pairs>,
    /// Its `EncryptionContextSubset` constraint.
    pub context_subset: Option<Pairs>,
}

impl RequestKeys {
    /// No request-specific keys.
    pub fn none() -> Self {
        Self::default()
    }

    /// `kms:EncryptionContext:<k>` and `kms:EncryptionContextKeys` from a request's context
    /// (also used to check grant constraints).
    pub fn encryption_context(mut self, ctx: &EncryptionContext) -> Self {
        for (k, v) in ctx.pairs() {
            self.context.insert(format!("{}{k}", condition_keys::ENCRYPTION_CONTEXT_PREFIX), v.clone());
        }
        self.context.insert_multi(
            condition_keys::ENCRYPTION_CONTEXT_KEYS,
            ctx.pairs().keys().cloned().collect::<Vec<String>>(),
        );
        self.encryption_context = Some(ctx.clone());
        self
    }

    /// The grant a CreateGrant request would create.
    pub fn child_grant(mut self, child: ChildGrant) -> Self {
        self.child_grant = Some(child);
        self
    }

    /// Any other condition key.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    /// A multi-valued condition key.
    pub fn with_all(mut self, key: &str, values: Vec<String>) -> Self {
        self.context.insert_multi(key.to_owned(), values);
        self
    }
}

/// One principal's identity policies as cached.
struct IdentityEntry {
    documents: Arc<Vec<PolicyDocument>>,
    /// The stored (name, document) pairs they were parsed from, to tell whether a reload found
    /// a change.
    source: Vec<(String, String)>,
    /// When they are read again from the store.
    reload: kms_core::Timestamp,
}

/// Parsed identity policies per principal ARN, invalidated by the admin operations (on every
/// node, see [`crate::invalidation`]) and read again after the cache TTL.
pub struct IdentityPolicyCache {
    entries: RwLock<HashMap<String, IdentityEntry>>,
    /// Bumped by every change to any principal's identity policies, and by every invalidation:
    /// decisions cached under an older generation are not reused, and policies read from the
    /// store under an older generation are not cached.
    generation: AtomicU64,
    ttl_millis: std::sync::atomic::AtomicI64,
}

impl Default for IdentityPolicyCache {
    fn default() -> Self {
        Self {
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            ttl_millis: std::sync::atomic::AtomicI64::new(crate::cache::DEFAULT_TTL_MILLIS),
        }
    }
}

impl IdentityPolicyCache {
    /// Forgets one principal's policies (and, through the generation, every decision cached
    /// while they applied).
    pub fn forget(&self, principal_arn: &str) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.remove(principal_arn);
    }

    /// Forgets every principal's policies (changes may have been missed).
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }

    /// Sets how long cached policies are used before they are read again.
    pub fn set_ttl_millis(&self, ttl: i64) {
        self.ttl_millis.store(ttl.max(0), Ordering::Relaxed);
    }

    /// Bumped by every change to any principal's identity policies.
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Cached policies of `owner` still fresh at `now`.
    fn fresh(&self, owner: &str, now: kms_core::Timestamp) -> Option<Arc<Vec<PolicyDocument>>> {
        let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(owner).filter(|e| now < e.reload).map(|e| Arc::clone(&e.documents))
    }

    /// Caches policies read from the store when the generation was `generation`, unless
    /// something was invalidated since. A reload (after the TTL) that finds them changed bumps
    /// the generation: decisions cached under the old ones go too.
    fn put(&self, owner: &str, entry: IdentityEntry, generation: u64) {
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation() != generation {
            return;
        }
        if entries.get(owner).is_some_and(|old| old.source != entry.source) {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        entries.insert(owner.to_owned(), entry);
    }
}

/// Most principals with decisions cached per key, and most decisions per principal; past
/// either bound the whole set is dropped and relearned.
const DECISIONS_PER_KEY: usize = 1024;
const DECISIONS_PER_PRINCIPAL: usize = 32;

/// One reusable decision: for this principal id, action, grant outcome and identity-policy
/// generation.
#[derive(Debug)]
struct CachedDecision {
    user_id: String,
    action: String,
    grant_allows: bool,
    generation: u64,
    decision: Decision,
}

/// Authorization decisions on one key, by principal ARN. Only filled when neither the key
/// policy nor the caller's identity policies read anything of the request (no conditions, no
/// resource variables): the decision is then a function of the principal, the action, the key
/// (its policy and ARN, fixed for the life of the cache entry), whether a grant applies, and
/// the identity policies (their generation). Lookups by ARN borrow, so a hit allocates nothing.
#[derive(Debug, Default)]
pub struct DecisionCache(Mutex<HashMap<String, Vec<CachedDecision>>>);

impl DecisionCache {
    fn get(&self, principal: &Principal, action: &str, grant_allows: bool, generation: u64) -> Option<Decision> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(principal.arn.as_str())?
            .iter()
            .find(|d| {
                d.generation == generation
                    && d.grant_allows == grant_allows
                    && d.action == action
                    && d.user_id == principal.user_id
            })
            .map(|d| d.decision)
    }

    fn put(&self, principal: &Principal, action: &str, grant_allows: bool, generation: u64, decision: Decision) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= DECISIONS_PER_KEY && !map.contains_key(principal.arn.as_str()) {
            map.clear();
        }
        let entries = map.entry(principal.arn.clone()).or_default();
        entries.retain(|d| d.generation == generation);
        if entries.len() >= DECISIONS_PER_PRINCIPAL {
            entries.clear();
        }
        entries.push(CachedDecision {
            user_id: principal.user_id.clone(),
            action: action.to_owned(),
            grant_allows,
            generation,
            decision,
        });
    }

    /// Number of cached decisions (for tests).
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values().map(Vec::len).sum()
    }

    /// Whether no decision is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ARN whose identity policies apply to a principal (a session uses its role's).
fn policy_owner(principal: &Principal) -> Option<&str> {
    match &principal.kind {
        PrincipalKind::User => Some(&principal.arn),
        PrincipalKind::AssumedRole { role_arn, .. } => Some(role_arn),
        PrincipalKind::Root | PrincipalKind::Service { .. } | PrincipalKind::WebIdentity { .. } => None,
    }
}

/// Grant operations whose requests carry an encryption context: a grant's encryption-context
/// constraints apply to these only (AWS ignores them for DescribeKey, RetireGrant and the
/// operations that take no context).
const CONTEXT_OPERATIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
];

/// Whether `pairs` holds every pair of `required`: keys compared without regard to case,
/// values exactly, as AWS compares grant constraints.
fn contains_pairs(pairs: &Pairs, required: &Pairs) -> bool {
    required.iter().all(|(k, v)| pairs.iter().any(|(pk, pv)| pk.eq_ignore_ascii_case(k) && pv == v))
}

/// Whether two constraints hold the same pairs (keys without regard to case).
fn same_pairs(a: &Pairs, b: &Pairs) -> bool {
    a.len() == b.len() && contains_pairs(a, b)
}

/// Whether a grant's constraints let a request with `context` through.
fn constraints_admit(grant: &GrantRecord, context: Option<&EncryptionContext>) -> bool {
    let empty = EncryptionContext::empty();
    let request = context.unwrap_or(&empty).pairs();
    grant.context_equals.as_ref().is_none_or(|equals| same_pairs(request, equals))
        && grant.context_subset.as_ref().is_none_or(|subset| contains_pairs(request, subset))
}

/// Whether a grant made by the holder of `parent` is no wider than `parent`: a subset of its
/// operations, and constraints at least as strict (the same `EncryptionContextEquals`; for a
/// parent's `EncryptionContextSubset`, a constraint holding all of its pairs).
fn within_parent(parent: &GrantRecord, child: &ChildGrant) -> bool {
    let operations = child.operations.iter().all(|op| parent.operations.contains(op));
    let strict = match (&parent.context_equals, &parent.context_subset) {
        (Some(equals), _) => child.context_equals.as_ref().is_some_and(|c| same_pairs(c, equals)),
        (None, Some(subset)) => {
            child.context_equals.as_ref().or(child.context_subset.as_ref()).is_some_and(|c| contains_pairs(c, subset))
        }
        (None, None) => true,
    };
    operations && strict
}

/// Whether a grant lets `principal` perform `operation` with the request's keys.
fn grant_allows(
    grant: &GrantRecord,
    principal: &Principal,
    source_arn: Option<&str>,
    operation: &str,
    request: &RequestKeys,
) -> bool {
    let grantee_matches = match (&principal.kind, &grant.grantee_service_principal) {
        // A grant to an AWS service principal: that service, for the SourceArn it names if any.
        (PrincipalKind::Service { name }, Some(service)) => {
            name == service && grant.source_arn.as_deref().is_none_or(|arn| source_arn == Some(arn))
        }
        (_, Some(_)) => false,
        (kind, None) => grantee_is(grant, principal, kind),
    };
    if !grantee_matches || !grant.operations.iter().any(|o| o == operation) {
        return false;
    }
    if operation == "CreateGrant" {
        // Without the child grant nothing can be checked: allow nothing.
        return request.child_grant.as_ref().is_some_and(|child| within_parent(grant, child));
    }
    !CONTEXT_OPERATIONS.contains(&operation) || constraints_admit(grant, request.encryption_context.as_ref())
}

/// Whether a grant to an IAM principal reaches `principal`.
fn grantee_is(grant: &GrantRecord, principal: &Principal, kind: &PrincipalKind) -> bool {
    match kind {
        PrincipalKind::AssumedRole { role_arn, .. } if *role_arn == grant.grantee_principal => {
            // A session's unique id is `<role id>:<session name>`.
            let role_id = principal.user_id.split(':').next().unwrap_or_default();
            grant.grantee_id.as_deref().is_none_or(|id| id == role_id)
        }
        _ => {
            grant.grantee_principal == principal.arn
                && grant.grantee_id.as_deref().is_none_or(|id| id == principal.user_id)
        }
    }
}

impl Service {
    /// The caller's identity policies, parsed (cached until a change to them is heard of, or
    /// for the cache TTL).
    pub(crate) async fn identity_policies(
        &self,
        principal: &Principal,
    ) -> Result<Arc<Vec<PolicyDocument>>, ServiceError> {
        let Some(owner) = policy_owner(principal) else {
            return Ok(Arc::new(Vec::new()));
        };
        let now = self.clock.now();
        if let Some(hit) = self.identity.fresh(owner, now) {
            return Ok(hit);
        }
        let generation = self.identity.generation();
        // Inline, attached managed, and (for a user) its groups' policies.
        let source = self.identity_sources(owner).await?;
        // Documents were validated when they were attached; one that no longer parses allows
        // nothing.
        let docs: Vec<PolicyDocument> = source
            .iter()
            .map(|(_, document)| {
                PolicyDocument::parse(document, PolicyKind::Identity).unwrap_or_else(|_| PolicyDocument::empty())
            })
            .collect();
        let docs = Arc::new(docs);
        let reload = now.plus_millis(self.identity.ttl_millis.load(Ordering::Relaxed));
        self.identity.put(owner, IdentityEntry { documents: Arc::clone(&docs), source, reload }, generation);
        Ok(docs)
    }

    pub(crate) fn global_keys(&self, ctx: &RequestContext, keys: &mut ConditionContext) {
        let now = self.clock.now();
        keys.insert("aws:CurrentTime".to_owned(), now.rfc3339());
        keys.insert("aws:EpochTime".to_owned(), now.unix_seconds().to_string());
        keys.insert("aws:SourceIp".to_owned(), ctx.source_ip.to_string());
        keys.insert("aws:SecureTransport".to_owned(), (ctx.transport == crate::service::Transport::Tls).to_string());
        keys.insert(condition_keys::CALLER_ACCOUNT.to_owned(), ctx.caller.principal.account.to_string());
        for (key, value) in ctx.caller.tags.iter() {
            keys.insert(format!("aws:PrincipalTag/{key}"), value.clone());
        }
        if let Some(arn) = &ctx.source_arn {
            keys.insert("aws:SourceArn".to_owned(), arn.clone());
        }
        if let Some(account) = &ctx.source_account {
            keys.insert("aws:SourceAccount".to_owned(), account.clone());
        }
        if let Some(service) = &ctx.via_service {
            keys.insert(condition_keys::VIA_SERVICE.to_owned(), service.clone());
            keys.insert_multi("aws:CalledVia".to_owned(), vec![service.clone()]);
        }
    }

    /// Checks that the caller may perform `action` on `key`.
    ///
    /// # Errors
    /// `AccessDeniedException` naming the principal, action, key and the policy that did not
    /// allow it.
    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        key: &CachedKey,
        action: &str,
        request: RequestKeys,
    ) -> Result<(), ServiceError> {
        let decision = self.decision(ctx, key, action, request).await?;
        decide(decision, ctx, action, || key.record.arn_string())
    }

    /// What [`Service::authorize`] decides (also IAM's SimulatePrincipalPolicy's answer for a
    /// key): the key policy, the caller's identity policies and the key's grants together.
    pub(crate) async fn decision(
        &self,
        ctx: &RequestContext,
        key: &CachedKey,
        action: &str,
        request: RequestKeys,
    ) -> Result<Decision, ServiceError> {
        // Read before the policies, so that a change racing with this request can only make the
        // decision land under a generation that is already stale.
        let generation = self.identity.generation();
        let identity = self.identity_policies(&ctx.caller.principal).await?;
        let operation = action.trim_start_matches(kms_api::operation::ACTION_PREFIX);
        let grants = key
            .grants
            .iter()
            .any(|g| grant_allows(g, &ctx.caller.principal, ctx.source_arn.as_deref(), operation, &request));
        let reusable = !key.policy_reads_request && !identity.iter().any(PolicyDocument::reads_request);
        if reusable && let Some(decision) = key.decisions.get(&ctx.caller.principal, action, grants, generation) {
            return Ok(decision);
        }
        let mut keys = request.context;
        self.global_keys(ctx, &mut keys);
        keys.insert(condition_keys::KEY_SPEC.to_owned(), key.record.key_spec.as_str().to_owned());
        keys.insert(condition_keys::KEY_USAGE.to_owned(), key.record.key_usage.as_str().to_owned());
        keys.insert(condition_keys::KEY_ORIGIN.to_owned(), key.record.origin.as_str().to_owned());
        keys.insert(condition_keys::MULTI_REGION.to_owned(), key.record.multi_region.to_string());
        if let Some(kind) = key.record.multi_region_key_type() {
            keys.insert(condition_keys::MULTI_REGION_KEY_TYPE.to_owned(), kind.to_owned());
        }
        keys.insert_multi(condition_keys::RESOURCE_ALIASES.to_owned(), key.aliases.clone());
        for tag in &key.tags {
            keys.insert(format!("aws:ResourceTag/{}", tag.key), tag.value.clone());
        }
        let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
        let resource = key.record.arn_string();
        let req = AuthzRequest {
            principal: &ctx.caller.principal,
            action,
            resource: &resource,
            resource_account: &key.record.account,
            context: &keys,
        };
        let decision = evaluate(&req, key.policy.document(), &identity_refs, grants);
        if reusable {
            key.decisions.put(&ctx.caller.principal, action, grants, generation, decision);
        }
        Ok(decision)
    }

    /// Checks an action that IAM policies alone govern (CreateKey, ListKeys, GenerateRandom,
    /// ListAliases, the alias side of alias operations).
    pub(crate) async fn authorize_iam(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource: &str,
        request: RequestKeys,
    ) -> Result<(), ServiceError> {
        let decision = self.iam_decision(ctx, action, resource, request).await?;
        decide(decision, ctx, action, || resource.to_owned())
    }

    /// What [`Service::authorize_iam`] decides, without failing.
    pub(crate) async fn iam_decision(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource: &str,
        request: RequestKeys,
    ) -> Result<Decision, ServiceError> {
        let mut keys = request.context;
        self.global_keys(ctx, &mut keys);
        let identity = self.identity_policies(&ctx.caller.principal).await?;
        let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
        // An account-wide resource policy that delegates everything to IAM.
        let delegate = delegate_to_iam(&ctx.caller.principal.account);
        let req = AuthzRequest {
            principal: &ctx.caller.principal,
            action,
            resource,
            resource_account: &ctx.caller.principal.account,
            context: &keys,
        };
        Ok(evaluate(&req, &delegate, &identity_refs, false))
    }

    /// The policy-lockout safety check: would `policy` still let the caller change the key
    /// policy later?
    /// Checks that every IAM user and role a key policy names exists (AWS refuses a key policy
    /// naming principals that do not, with MalformedPolicyDocumentException). Account roots,
    /// services, unique ids (a deleted principal, as IAM shows it) and sessions are not looked up.
    ///
    /// # Errors
    /// `MalformedPolicyDocumentException`; store errors.
    pub(crate) async fn ensure_principals_exist(&self, policy: &KeyPolicy) -> Result<(), ServiceError> {
        for arn in policy.document().named_users_and_roles() {
            let known = self.store.principal(arn).await?;
            if known.is_none_or(|p| p.kind == kms_store::PrincipalType::Service) {
                return Err(KmsError::MalformedPolicyDocument(PolicyError::UnknownPrincipal(arn.to_owned())).into());
            }
        }
        Ok(())
    }

    pub(crate) async fn lockout_safe(
        &self,
        ctx: &RequestContext,
        policy: &KeyPolicy,
        key_arn: &str,
        key_account: &kms_core::ids::AccountId,
    ) -> Result<bool, ServiceError> {
        let mut keys = ConditionContext::default();
        self.global_keys(ctx, &mut keys);
        let identity = self.identity_policies(&ctx.caller.principal).await?;
        let identity_refs: Vec<&PolicyDocument> = identity.iter().collect();
        let req = AuthzRequest {
            principal: &ctx.caller.principal,
            action: kms_api::Operation::PutKeyPolicy.action(),
            resource: key_arn,
            resource_account: key_account,
            context: &keys,
        };
        Ok(matches!(evaluate(&req, policy.document(), &identity_refs, false), Decision::Allow))
    }
}

/// A resource policy that hands every decision to the account's IAM policies.
fn delegate_to_iam(account: &kms_core::ids::AccountId) -> PolicyDocument {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"*","Resource":"*"}}]}}"#
    );
    PolicyDocument::parse(&text, PolicyKind::Key).unwrap_or_else(|_| PolicyDocument::empty())
}

fn decide(
    decision: Decision,
    ctx: &RequestContext,
    action: &str,
    resource: impl FnOnce() -> String,
) -> Result<(), ServiceError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Deny(denial) => Err(KmsError::AccessDenied(Box::new(AccessDenied {
            principal: ctx.caller.principal.arn.clone(),
            action: action.to_owned(),
            resource: resource(),
            reason: denial.reason(action),
        }))
        .into()),
    }
}
