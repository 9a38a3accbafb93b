//! The service: shared state and the operations every handler builds on (key loading through
//! the cache, key-reference resolution, compare-and-swap key updates, material wrapping).

use std::collections::HashMap;
use std::sync::Arc;

use kms_core::audit::AuditEvent;
use kms_core::error::NotFound;
use kms_core::ids::{AcceptedReferences, AccountId, AliasArn, KeyArn, KeyId, KeyReference, MaterialId, Region};
use kms_core::key::KeyRecord;
use kms_core::policy::KeyPolicy;
use kms_core::policy::Principal;
use kms_core::policy::condition_keys;
use kms_core::{Clock, KmsError, Rng};
use kms_crypto::{KeyHandle, KeySecret, RootKeyProvider};
use kms_store::{GrantRecord, MaterialRecord, Store};

use crate::audit::AuditDraft;
use crate::auth::Authenticator;
use crate::authz::{IdentityPolicyCache, RequestKeys};
use crate::cache::{CachedKey, KeyCache};
use crate::error::ServiceError;

/// Who sent a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The principal, as the policy evaluator sees it (shared with the credential cache: a
    /// request takes a reference, not a copy of its strings).
    pub principal: Arc<Principal>,
    /// The access key that signed the request.
    pub access_key_id: String,
    /// The principal's tags (`aws:PrincipalTag/…`): a user's or role's own, a session's
    /// overriding its role's of the same key.
    pub tags: Arc<[(String, String)]>,
}

/// One authenticated request's context.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The caller.
    pub caller: Caller,
    /// The region from the SigV4 credential scope.
    pub region: Region,
    /// The request id returned in `x-amzn-RequestId`.
    pub request_id: String,
    /// The client's address (`aws:SourceIp`).
    pub source_ip: std::net::IpAddr,
    /// How the request arrived (`aws:SecureTransport`).
    pub transport: Transport,
    /// For a service principal acting for a resource: that resource (`aws:SourceArn`).
    pub source_arn: Option<String>,
    /// For a service principal acting for a resource: its account (`aws:SourceAccount`).
    pub source_account: Option<String>,
    /// When a service calls on a principal's behalf: the service (`kms:ViaService`).
    pub via_service: Option<String>,
    /// The keys the request turned out to concern, for the audit record.
    pub key_arn: ConcernedKeys,
    /// What the request's audit event is built from, shared by clones of this context. `None`
    /// for in-process calls that are not audited (tests, benchmarks): their changes carry no
    /// event.
    pub audit: Option<Arc<AuditDraft>>,
}

/// The keys a request turned out to concern, for its audit record: the first it resolved and a
/// second one (ReEncrypt resolves its destination and its source; both count as used).
#[derive(Clone, Debug, Default)]
pub struct ConcernedKeys {
    first: std::sync::OnceLock<String>,
    second: std::sync::OnceLock<String>,
}

impl ConcernedKeys {
    /// Notes a key the request resolved (a third distinct key is not recorded; no operation
    /// has one).
    pub fn set(&self, arn: String) {
        if let Err(arn) = self.first.set(arn)
            && self.first.get() != Some(&arn)
        {
            let _ = self.second.set(arn);
        }
    }

    /// The first key noted.
    pub fn get(&self) -> Option<&str> {
        self.first.get().map(String::as_str)
    }

    /// The second key noted, if the request concerned two.
    pub fn other(&self) -> Option<&str> {
        self.second.get().map(String::as_str)
    }
}

impl RequestContext {
    /// Whether the request's audit event was committed in the transaction of its change (the
    /// listener then does not record it again).
    pub fn audit_committed(&self) -> bool {
        self.audit.as_ref().is_some_and(|draft| draft.committed())
    }

    /// The ARN a key id would have in the caller's account and region.
    pub fn key_arn(&self, key_id: KeyId) -> KeyArn {
        KeyArn { region: self.region.clone(), account: self.caller.principal.account.clone(), key_id }
    }
}

/// The connection a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP (`aws:SecureTransport` is false).
    Plain,
    /// HTTPS (`aws:SecureTransport` is true).
    Tls,
}

/// Whether an operation may use a key in another account (given by ARN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountScope {
    /// Management operations: the caller's own account only.
    OwnAccount,
    /// Cryptographic operations and DescribeKey: other accounts' keys by ARN, subject to their
    /// key policies.
    CrossAccount,
}

/// The audit event of one control-plane change, handed to the store call that makes the change
/// (it dereferences to the slice that call takes). Call [`ControlEvent::committed`] once that
/// call succeeded, so that the listener does not record the request a second time.
pub(crate) struct ControlEvent {
    events: Vec<AuditEvent>,
    draft: Option<Arc<AuditDraft>>,
}

impl std::ops::Deref for ControlEvent {
    type Target = [AuditEvent];

    fn deref(&self) -> &[AuditEvent] {
        &self.events
    }
}

impl ControlEvent {
    /// The event of a change nobody requested (the scheduler's): there is no request whose
    /// record it would replace.
    pub(crate) fn unattended(event: AuditEvent) -> Self {
        Self { events: vec![event], draft: None }
    }

    /// Notes that the store committed the event with the change.
    pub(crate) fn committed(self) {
        if let Some(draft) = &self.draft
            && !self.events.is_empty()
        {
            draft.mark_committed();
        }
    }
}

/// A response as the audit record's `responseElements` see it: the JSON the client receives.
fn response_json<T: serde::Serialize>(response: &T) -> Option<serde_json::Value> {
    serde_json::to_value(response).ok()
}

/// The KMS service.
pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) root: Arc<dyn RootKeyProvider>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    /// Nonces, salts and ids, pooled over `rng` (never secrets: those come from `rng`).
    pub(crate) public_rng: kms_crypto::PublicRandom,
    pub(crate) cache: KeyCache,
    pub(crate) auth: Authenticator,
    pub(crate) identity: IdentityPolicyCache,
    pub(crate) audit: crate::audit::AuditTrail,
    pub(crate) metrics: crate::metrics::Metrics,
    /// When the scheduler last completed a pass.
    pub(crate) scheduler_pass: std::sync::Mutex<Option<kms_core::Timestamp>>,
    /// The event sinks, by cursor name, for the backlog gauge.
    pub(crate) sink_names: std::sync::Mutex<Vec<String>>,
    /// The CloudTrail trail this server delivers, if it delivers one (DescribeTrails, the
    /// delivery backlog gauges).
    pub(crate) trail: std::sync::OnceLock<crate::trail::TrailInfo>,
    /// How many days audit records are kept.
    pub(crate) audit_retention_days: std::sync::atomic::AtomicI64,
    /// Request-rate and resource quotas.
    pub(crate) quotas: crate::quota::Quotas,
    /// The server's own account, created at first start: the operator's. Only its principals
    /// create accounts and service principals, and service principals live only there.
    pub(crate) operator_account: AccountId,
    /// The key that signs forward access tokens, loaded on first use.
    pub(crate) forward_key: tokio::sync::OnceCell<kms_crypto::MacKey>,
    /// Started for development (`--insecure-dev-credentials`).
    development: bool,
}

/// The AAD binding wrapped key material to its key and material id.
pub fn material_aad(arn: &KeyArn, material: MaterialId) -> Vec<u8> {
    let mut aad = arn.to_string().into_bytes();
    aad.push(0);
    aad.extend_from_slice(material.as_bytes());
    aad
}

impl Service {
    /// Assembles a service for the server whose own (operator) account is `operator_account`;
    /// `insecure_dev_credentials` also accepts the well-known `test`/`test` key as that
    /// account's root.
    pub fn new(
        store: Arc<dyn Store>,
        root: Arc<dyn RootKeyProvider>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        key_cache_capacity: usize,
        operator_account: AccountId,
        insecure_dev_credentials: bool,
    ) -> Self {
        let dev_account = insecure_dev_credentials.then(|| operator_account.clone());
        let auth = Authenticator::new(
            Arc::clone(&store),
            Arc::clone(&root),
            Arc::clone(&clock),
            operator_account.clone(),
            dev_account,
        );
        let audit = crate::audit::AuditTrail::start(
            Arc::clone(&store),
            Arc::clone(&root),
            Arc::clone(&clock),
            Arc::clone(&rng),
        );
        Self {
            store,
            root,
            clock,
            public_rng: kms_crypto::PublicRandom::new(Arc::clone(&rng)),
            rng,
            cache: KeyCache::new(key_cache_capacity),
            auth,
            identity: IdentityPolicyCache::default(),
            audit,
            metrics: crate::metrics::Metrics::default(),
            scheduler_pass: std::sync::Mutex::new(None),
            sink_names: std::sync::Mutex::new(Vec::new()),
            trail: std::sync::OnceLock::new(),
            audit_retention_days: std::sync::atomic::AtomicI64::new(crate::config::DEFAULT_AUDIT_RETENTION_DAYS),
            quotas: crate::quota::Quotas::default(),
            operator_account,
            forward_key: tokio::sync::OnceCell::new(),
            development: insecure_dev_credentials,
        }
    }

    /// The authenticator.
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// Writes every queued audit event and stops the audit writer (part of a clean shutdown).
    pub async fn close_audit(&self) {
        self.audit.close().await;
    }

    /// The Prometheus exposition text.
    pub async fn metrics_text(&self) -> String {
        let states = self.store.key_states().await.unwrap_or_default();
        let now = self.clock.now();
        let last_pass = *self.scheduler_pass.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        #[allow(clippy::cast_precision_loss)] // milliseconds fit an f64 exactly for centuries
        let scheduler_lag_seconds = last_pass.map(|t| (now.unix_millis() - t.unix_millis()) as f64 / 1000.0);
        let head = self.store.audit_head().await.ok().flatten().map_or(0, |(s, _)| s);
        let names = self.sink_names.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut sink_backlogs = Vec::with_capacity(names.len());
        for name in names {
            let cursor = self.store.setting(&format!("event_cursor:{name}")).await.ok().flatten();
            let cursor: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(head);
            sink_backlogs.push((name, head.saturating_sub(cursor)));
        }
        let trail_backlog = match self.trail.get() {
            Some(_) => crate::trail::backlog(self.store.as_ref()).await.ok(),
            None => None,
        };
        let gauges = crate::metrics::Gauges { scheduler_lag_seconds, sink_backlogs, trail_backlog };
        self.metrics.render(&states, self.audit.backlog(), self.cache.len(), &gauges)
    }

    /// Sets how many days audit records are kept.
    pub fn set_audit_retention_days(&self, days: i64) {
        self.audit_retention_days.store(days.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Deletes audit records older than the retention period, up to the newest one pinned by a
    /// signed digest (which stays, anchoring what remains for `audit verify`). Returns how many
    /// records went.
    ///
    /// # Errors
    /// A store failure.
    pub async fn prune_audit_trail(&self) -> Result<u64, ServiceError> {
        let days = self.audit_retention_days.load(std::sync::atomic::Ordering::Relaxed);
        let cutoff = self.clock.now().plus_days(-days);
        let Some(newest_expired) = self.store.audit_seq_before(cutoff).await? else { return Ok(0) };
        let digests = self.store.audit_digests().await?;
        let Some(anchor) = digests.iter().rev().find(|d| d.seq <= newest_expired) else { return Ok(0) };
        Ok(self.store.prune_audit(anchor.seq).await?)
    }

    /// Audit events queued but not yet committed.
    pub fn audit_backlog(&self) -> i64 {
        self.audit.backlog()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Number of keys currently cached.
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }

    /// Number of authorization decisions cached on a key (`key_id` is a bare key id); 0 when
    /// the key is not cached.
    pub fn cached_decisions(&self, key_id: &str) -> usize {
        KeyId::parse(key_id).and_then(|id| self.cache.key(id, self.clock.now())).map_or(0, |k| k.decisions.len())
    }

    /// Whether the server was started for development (`--insecure-dev-credentials`): only then
    /// may a caller choose a key's id (`FerrokmsAdmin.CreatePinnedKey`).
    pub(crate) fn development(&self) -> bool {
        self.development
    }

    /// Wraps key material `material_id` of `record` for storage.
    pub(crate) fn wrap_material(
        &self,
        record: &KeyRecord,
        material_id: MaterialId,
        material: &KeySecret,
        rotation: Option<kms_core::key::RotationKind>,
    ) -> Result<MaterialRecord, ServiceError> {
        let aad = material_aad(&record.arn(), material_id);
        Ok(MaterialRecord {
            key_id: record.key_id,
            material_id,
            wrapped: material.wrap(self.root.as_ref(), &aad)?,
            created: self.clock.now(),
            rotation,
        })
    }

    /// Builds a cache entry from a record and its stored materials, policy and grants.
    fn assemble(
        &self,
        record: KeyRecord,
        materials: Vec<MaterialRecord>,
        policy: KeyPolicy,
        grants: Vec<GrantRecord>,
    ) -> Result<CachedKey, ServiceError> {
        let arn = record.arn();
        let mut ready = HashMap::with_capacity(materials.len());
        for m in materials {
            let aad = material_aad(&arn, m.material_id);
            let secret = KeySecret::unwrap(record.key_spec, self.root.as_ref(), &aad, &m.wrapped)?;
            let key = KeyHandle::from_secret(record.key_id, m.material_id, &secret).map_err(ServiceError::Crypto)?;
            ready.insert(m.material_id, Arc::new(key));
        }
        Ok(CachedKey::new(record, Arc::new(policy), Arc::new(grants), ready))
    }

    /// Caches a key just created, with its first material ready to use (none for a key
    /// awaiting imported material).
    pub(crate) fn cache_new_key(&self, record: KeyRecord, material: Option<Arc<KeyHandle>>, policy: KeyPolicy) {
        let materials = material.map(|m| (record.current_material, m)).into_iter().collect();
        self.cache.put_key(
            Arc::new(CachedKey::new(record, Arc::new(policy), Arc::new(Vec::new()), materials)),
            self.clock.now(),
        );
    }

    /// A key by id, from the cache or else the store (then cached).
    pub(crate) async fn load_key(&self, id: KeyId) -> Result<Option<Arc<CachedKey>>, ServiceError> {
        if let Some(hit) = self.cache.key(id, self.clock.now()) {
            self.metrics.cache(true);
            return Ok(Some(hit));
        }
        self.metrics.cache(false);
        let epoch = self.cache.epoch();
        let Some(bundle) = self.store.key_bundle(id).await? else {
            return Ok(None);
        };
        let kms_store::KeyBundle { record, materials, policy, grants, tags, aliases } = bundle;
        let policy = KeyPolicy::from_stored(policy.unwrap_or_default());
        let aliases = aliases.into_iter().map(|a| a.name.to_string()).collect();
        let entry = Arc::new(self.assemble(record, materials, policy, grants)?.with_tags_and_aliases(tags, aliases));
        self.cache.put_key_if_current(Arc::clone(&entry), epoch, self.clock.now());
        Ok(Some(entry))
    }

    /// Resolves a `KeyId` member to a key and authorizes `action` on it, as AWS does for the
    /// operation: which forms it accepts, whether another account's key may be named, and the
    /// region of the request.
    ///
    /// # Errors
    /// `NotFoundException` for unknown or unacceptable references; `AccessDeniedException` when
    /// the policies do not allow the caller.
    pub(crate) async fn resolve(
        &self,
        ctx: &RequestContext,
        raw: &str,
        accepted: AcceptedReferences,
        scope: AccountScope,
        action: &str,
        request: RequestKeys,
    ) -> Result<Arc<CachedKey>, ServiceError> {
        let mut request = request;
        let caller_account = &ctx.caller.principal.account;
        // Another account's key is named by ARN; whether it (or its alias) exists is that
        // account's business. AWS answers a reference into another account that the caller may
        // not use with AccessDeniedException whether or not the key is there, naming what the
        // caller named (never the key behind an alias).
        let foreign_denial = |resource: &str| {
            ServiceError::Kms(KmsError::AccessDenied(Box::new(kms_core::error::AccessDenied {
                principal: ctx.caller.principal.arn.clone(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                reason: format!("because no resource-based policy allows the {action} action"),
            })))
        };
        let mut foreign_alias = None;
        let (account, region, key_id) = match KeyReference::parse(raw, accepted)? {
            KeyReference::Id(id) => (caller_account.clone(), ctx.region.clone(), id),
            KeyReference::KeyArn(arn) => (arn.account, arn.region, arn.key_id),
            KeyReference::AliasName(name) => {
                let arn = AliasArn { region: ctx.region.clone(), account: caller_account.clone(), name };
                let target = match self.alias_target(&arn).await {
                    // AWS creates an AWS managed key when its predefined alias is first used.
                    Err(ServiceError::Kms(KmsError::NotFound(_))) if arn.name.as_str().starts_with("alias/aws/") => {
                        self.aws_managed_key(&arn)
                            .await?
                            .ok_or_else(|| KmsError::NotFound(NotFound::Alias(arn.clone())))?
                    }
                    other => other?,
                };
                request = request.with(condition_keys::REQUEST_ALIAS, arn.name.to_string());
                (arn.account, arn.region, target)
            }
            KeyReference::AliasArn(arn) => {
                if arn.region != ctx.region {
                    return Err(KmsError::NotFound(NotFound::ForeignRegion(arn.region)).into());
                }
                if arn.account != *caller_account && scope == AccountScope::OwnAccount {
                    return Err(KmsError::NotFound(NotFound::InvalidArn(raw.to_owned())).into());
                }
                let target = match self.alias_target(&arn).await {
                    Err(ServiceError::Kms(KmsError::NotFound(_))) if arn.account != *caller_account => {
                        return Err(foreign_denial(raw));
                    }
                    other => other?,
                };
                if arn.account != *caller_account {
                    foreign_alias = Some(raw);
                }
                request = request.with(condition_keys::REQUEST_ALIAS, arn.name.to_string());
                (arn.account, arn.region, target)
            }
        };
        if region != ctx.region {
            return Err(KmsError::NotFound(NotFound::ForeignRegion(region)).into());
        }
        // A multi-Region key's id names its replica in the region asked.
        let key_id = key_id.in_region(&region);
        let arn = KeyArn { region, account, key_id };
        let foreign = arn.account != *caller_account;
        if foreign && scope == AccountScope::OwnAccount {
            // Management operations never reach into another account: to the caller, the key
            // simply is not there.
            return Err(KmsError::NotFound(NotFound::InvalidArn(raw.to_owned())).into());
        }
        let key = match self.load_key(key_id).await? {
            Some(key) if key.record.account == arn.account && key.record.region == arn.region => key,
            _ if foreign => return Err(foreign_denial(raw)),
            _ => return Err(KmsError::NotFound(NotFound::Key(arn)).into()),
        };
        ctx.key_arn.set(key.record.arn_string());
        match self.authorize(ctx, &key, action, request).await {
            Err(ServiceError::Kms(KmsError::AccessDenied(mut denied))) if foreign_alias.is_some() => {
                denied.resource = foreign_alias.unwrap_or_default().to_owned();
                Err(ServiceError::Kms(KmsError::AccessDenied(denied)))
            }
            other => other.map(|()| key),
        }
    }

    async fn alias_target(&self, arn: &AliasArn) -> Result<KeyId, ServiceError> {
        if let Some(id) = self.cache.alias(&arn.account, &arn.region, &arn.name, self.clock.now()) {
            return Ok(id);
        }
        let epoch = self.cache.epoch();
        let record = self.store.alias(&arn.account, &arn.region, &arn.name).await?;
        let record = record.ok_or_else(|| KmsError::NotFound(NotFound::Alias(arn.clone())))?;
        self.cache.put_alias_if_current(&arn.account, &arn.region, &arn.name, record.target, epoch, self.clock.now());
        Ok(record.target)
    }

    /// An alias as the store has it now (not the cache, which may trail another writer). When
    /// the store has none, this node's cached entry for the name goes too, so that the name
    /// stops resolving here at once.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn stored_alias(&self, arn: &AliasArn) -> Result<Option<kms_store::AliasRecord>, ServiceError> {
        let record = self.store.alias(&arn.account, &arn.region, &arn.name).await?;
        if record.is_none() {
            self.invalidate(&crate::invalidation::alias(arn));
        }
        Ok(record)
    }

    /// The audit event of a successful control-plane change, built before the change commits
    /// so that the store appends it in the same transaction. `response` is what the client will
    /// receive (`responseElements`, scrubbed as on the asynchronous path, so that both paths
    /// produce the same record). Empty for a request that is not audited.
    pub(crate) fn control_event(&self, ctx: &RequestContext, response: Option<&serde_json::Value>) -> ControlEvent {
        let Some(draft) = &ctx.audit else {
            return ControlEvent { events: Vec::new(), draft: None };
        };
        let region = ctx.region.to_string();
        let name = if draft.event_name.is_empty() { "Unknown" } else { draft.event_name.as_str() };
        let event = crate::audit::event(crate::audit::EventInput {
            event_id: crate::audit::new_event_id(self.rng.as_ref()),
            request_id: &ctx.request_id,
            time: self.clock.now(),
            event_name: name,
            event_source: draft.event_source,
            caller: Some(&ctx.caller),
            via_service: ctx.via_service.as_deref(),
            // Only shown for unauthenticated callers; this one is authenticated.
            presented_access_key: None,
            region: &region,
            source_ip: ctx.source_ip.to_string(),
            user_agent: &draft.user_agent,
            request: draft.request.as_ref(),
            response,
            error: None,
            key_arn: ctx.key_arn.get(),
            other_key_arn: ctx.key_arn.other(),
            read_only: crate::audit::read_only(name),
        });
        ControlEvent { events: vec![event], draft: Some(Arc::clone(draft)) }
    }

    /// [`Service::control_event`] for a response DTO.
    pub(crate) fn control_event_for<T: serde::Serialize>(&self, ctx: &RequestContext, response: &T) -> ControlEvent {
        self.control_event(ctx, response_json(response).as_ref())
    }
}
