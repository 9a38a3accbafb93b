//! Authentication: SigV4 verification against access keys that ferrokms issues.
//!
//! Secrets are stored wrapped by the root key; unwrapped ones and derived signing keys are
//! cached in memory (a signing key is valid for one access key, day, region and service), so a
//! warm caller costs no database read. Temporary credentials also carry a session token, checked
//! against its stored digest, and stop working at their expiry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use http::request::Parts;
use kms_api::{ApiError, Exception};
use kms_core::ids::{AccountId, Region};
use kms_core::policy::{Principal, PrincipalKind};
use kms_core::{Clock, Timestamp};
use kms_crypto::{RootKeyProvider, SecretBytes};
use kms_sigv4::{ErrorClass, SigV4Error, SigningKey};
use kms_store::Store;
use subtle::ConstantTimeEq;

use crate::error::ServiceError;
use crate::principals::{principal_of, root_principal};
use crate::service::Caller;

/// The access key id accepted with `--insecure-dev-credentials`.
pub const DEV_ACCESS_KEY_ID: &str = "test";
const DEV_SECRET: &[u8] = b"test";
const SIGNING_KEY_CACHE_LIMIT: usize = 10_000;
const SCOPES_PER_ACCESS_KEY: usize = 8;
const CREDENTIAL_CACHE_LIMIT: usize = 100_000;

/// The services whose requests this endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// AWS KMS (JSON 1.1).
    Kms,
    /// AWS STS (query protocol): GetCallerIdentity, AssumeRole.
    Sts,
    /// AWS IAM (query protocol): users, roles, access keys, policies.
    Iam,
    /// AWS CloudTrail (JSON 1.1): LookupEvents.
    CloudTrail,
}

/// A known access key.
struct Credential {
    principal: Arc<Principal>,
    secret: SecretBytes,
    /// For temporary credentials: SHA-256 of the session token and the expiry.
    session: Option<(Vec<u8>, Timestamp)>,
    /// The ARN of the principal the key belongs to (a session's: its role), whose deletion
    /// revokes it.
    owner: String,
    /// When the cached entry is read again from the store.
    reload: Timestamp,
    /// The principal's tags (see [`Caller::tags`]).
    tags: Arc<[(String, String)]>,
    /// When this node last recorded the key's use in the store (Unix ms; 0: not yet): uses are
    /// recorded at most once per [`KEY_USE_INTERVAL_MILLIS`].
    use_recorded: std::sync::atomic::AtomicI64,
}

/// How often a long-term key's last use is written to the store, per node.
const KEY_USE_INTERVAL_MILLIS: i64 = 60_000;

/// A derived signing key, the credential it was derived from and the scope it is for (date,
/// region, service).
struct ScopedKey {
    /// The credential entry whose secret it came from: a reloaded entry (whose secret may
    /// differ: an access key deleted and created again with the same id) does not use it.
    credential: std::sync::Weak<Credential>,
    date: String,
    region: String,
    service: String,
    key: Arc<SigningKey>,
}

impl ScopedKey {
    fn is_for(&self, credential: &Arc<Credential>, pending: &kms_sigv4::PendingRequest) -> bool {
        std::ptr::eq(self.credential.as_ptr(), Arc::as_ptr(credential))
            && self.date == pending.scope_date()
            && self.region == pending.region()
            && self.service == pending.service()
    }
}

/// Verifies requests and says who sent them.
pub struct Authenticator {
    store: Arc<dyn Store>,
    root: Arc<dyn RootKeyProvider>,
    clock: Arc<dyn Clock>,
    /// The operator's account: the only one whose service principals authenticate.
    operator_account: AccountId,
    dev: Option<Arc<Credential>>,
    credentials: RwLock<HashMap<String, Arc<Credential>>>,
    /// Signing keys by access key id (looked up by borrowing the request's id: a hit allocates
    /// nothing), then by scope.
    signing_keys: RwLock<HashMap<String, Vec<ScopedKey>>>,
    /// How long a cached credential is used before it is read again.
    ttl_millis: std::sync::atomic::AtomicI64,
    /// Bumped by every invalidation, before and after the change commits: a credential read
    /// from the store before a bump is not cached (it may predate the change).
    epoch: std::sync::atomic::AtomicU64,
}

fn sigv4_error(e: &SigV4Error) -> ApiError {
    let exception = match e.class() {
        ErrorClass::MissingAuthenticationToken => Exception::MissingAuthenticationToken,
        ErrorClass::IncompleteSignature => Exception::IncompleteSignature,
        ErrorClass::InvalidSignature => Exception::InvalidSignature,
        ErrorClass::UnrecognizedClient => Exception::UnrecognizedClient,
    };
    let message = e.to_string();
    ApiError::new(exception, (!message.is_empty()).then_some(message))
}

fn unrecognized() -> ServiceError {
    ServiceError::Api(sigv4_error(&SigV4Error::UnrecognizedClient))
}

fn expired() -> ServiceError {
    ServiceError::Api(ApiError::with_message(
        Exception::ExpiredToken,
        "The security token included in the request is expired",
    ))
}

/// The AAD that binds a wrapped secret access key to its access key id.
pub fn secret_aad(access_key_id: &str) -> Vec<u8> {
    format!("ferrokms:access-key:{access_key_id}").into_bytes()
}

/// The digest under which a session token is stored.
pub fn token_digest(token: &[u8]) -> Vec<u8> {
    kms_crypto::digest::sha256(token).to_vec()
}

impl Authenticator {
    /// An authenticator over the store's access keys; with `dev_account`, also the insecure
    /// `test`/`test` key acting as that account's root. Service principals authenticate only
    /// when they belong to `operator_account` (only the operator creates them).
    pub fn new(
        store: Arc<dyn Store>,
        root: Arc<dyn RootKeyProvider>,
        clock: Arc<dyn Clock>,
        operator_account: AccountId,
        dev_account: Option<AccountId>,
    ) -> Self {
        let dev = dev_account.map(|account| {
            Arc::new(Credential {
                principal: Arc::new(root_principal(&account)),
                secret: SecretBytes::new(DEV_SECRET.to_vec()),
                session: None,
                owner: String::new(),
                reload: Timestamp::from_unix_millis(i64::MAX),
                tags: Arc::new([]),
                use_recorded: std::sync::atomic::AtomicI64::new(i64::MAX),
            })
        });
        Self {
            store,
            root,
            clock,
            operator_account,
            dev,
            credentials: RwLock::default(),
            signing_keys: RwLock::default(),
            ttl_millis: std::sync::atomic::AtomicI64::new(crate::cache::DEFAULT_TTL_MILLIS),
            epoch: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Sets how long a cached credential is used before it is read again from the store.
    pub fn set_ttl_millis(&self, ttl: i64) {
        self.ttl_millis.store(ttl.max(0), std::sync::atomic::Ordering::Relaxed);
    }

    async fn credential(&self, access_key_id: &str) -> Result<Option<Arc<Credential>>, ServiceError> {
        if access_key_id == DEV_ACCESS_KEY_ID {
            return Ok(self.dev.clone());
        }
        let now = self.clock.now();
        if let Some(c) = self.credentials.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(access_key_id)
            && now < c.reload
        {
            return Ok(Some(Arc::clone(c)));
        }
        let epoch = self.epoch.load(std::sync::atomic::Ordering::SeqCst);
        // An inactive key (IAM's UpdateAccessKey) is as unknown as a deleted one.
        let Some(record) = self.store.access_key(access_key_id).await?.filter(|r| r.active) else {
            return Ok(None);
        };
        let owner = self.store.principal(&record.principal_arn).await?;
        let Some(principal) = principal_of(&record, owner.as_ref()) else {
            return Ok(None);
        };
        // A service principal stored in any other account (made before only the operator could
        // make them) would let that account speak as an AWS service: it is not a credential.
        if matches!(principal.kind, PrincipalKind::Service { .. }) && principal.account != self.operator_account {
            return Ok(None);
        }
        let secret = self.root.unwrap(&secret_aad(access_key_id), &record.wrapped_secret)?;
        let tags = crate::principals::principal_tags(owner.as_ref(), record.session.as_ref());
        let session = record.session.map(|s| (s.token_digest, s.expires));
        let reload = now.plus_millis(self.ttl_millis.load(std::sync::atomic::Ordering::Relaxed));
        let owner = record.principal_arn;
        // Sessions are not tracked (GetAccessKeyLastUsed is about long-term keys).
        let use_recorded = std::sync::atomic::AtomicI64::new(if session.is_some() { i64::MAX } else { 0 });
        let credential =
            Arc::new(Credential { principal: Arc::new(principal), secret, session, owner, reload, tags, use_recorded });
        let mut cache = self.credentials.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.epoch.load(std::sync::atomic::Ordering::SeqCst) != epoch {
            // Something was revoked while this was read: use it for this request (it was valid
            // when read, as if the request had come a moment earlier) but do not keep it.
            return Ok(Some(credential));
        }
        if cache.len() >= CREDENTIAL_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(access_key_id.to_owned(), Arc::clone(&credential));
        Ok(Some(credential))
    }

    /// The principal an access key acts as, if the key exists and (for a session) has not
    /// expired.
    ///
    /// # Errors
    /// A store or root-key failure.
    /// Records a long-term key's use in the store, in the background and at most once a
    /// minute per key on this node (IAM's GetAccessKeyLastUsed is as coarse).
    fn note_use(&self, credential: &Credential, access_key_id: &str, service: &str, region: &str) {
        use std::sync::atomic::Ordering;
        let now = self.clock.now();
        let last = credential.use_recorded.load(Ordering::Relaxed);
        if last == i64::MAX || now.unix_millis().saturating_sub(last) < KEY_USE_INTERVAL_MILLIS {
            return;
        }
        if credential
            .use_recorded
            .compare_exchange(last, now.unix_millis(), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let store = Arc::clone(&self.store);
        let id = access_key_id.to_owned();
        let used = kms_store::KeyUse { time: now, service: service.to_owned(), region: region.to_owned() };
        tokio::spawn(async move {
            if let Err(e) = store.record_key_use(&id, &used).await {
                tracing::debug!(access_key_id = %id, error = %e, "recording an access key's use failed");
            }
        });
    }

    pub(crate) async fn principal_for_key(&self, access_key_id: &str) -> Result<Option<Caller>, ServiceError> {
        let Some(credential) = self.credential(access_key_id).await? else { return Ok(None) };
        if credential.session.as_ref().is_some_and(|(_, expires)| self.clock.now() >= *expires) {
            return Ok(None);
        }
        Ok(Some(Caller {
            principal: Arc::clone(&credential.principal),
            access_key_id: access_key_id.to_owned(),
            tags: Arc::clone(&credential.tags),
        }))
    }

    /// Checks an access key pair typed into the web console's sign-in form (and, for a role
    /// session, its session token) against the same stored credential SigV4 verification uses:
    /// an inactive or deleted key is unknown, a session past its expiry is refused, and the
    /// secret and token digest are compared in constant time. Service principals act for AWS
    /// services, not people: they do not sign in.
    ///
    /// # Errors
    /// `UnrecognizedClientException` for an unknown key, a wrong secret or token, or a service
    /// principal; `ExpiredTokenException` for an expired session; a store or root-key failure.
    pub(crate) async fn verify_secret(
        &self,
        access_key_id: &str,
        secret: &[u8],
        session_token: Option<&str>,
    ) -> Result<Caller, ServiceError> {
        let credential = self.credential(access_key_id).await?.ok_or_else(unrecognized)?;
        let secret_matches = bool::from(credential.secret.expose_secret().ct_eq(secret));
        let token_matches = match (&credential.session, session_token) {
            (None, None) => true,
            (Some((digest, _)), Some(token)) => bool::from(token_digest(token.as_bytes()).ct_eq(digest)),
            _ => false,
        };
        if !(secret_matches & token_matches) || matches!(credential.principal.kind, PrincipalKind::Service { .. }) {
            return Err(unrecognized());
        }
        if credential.session.as_ref().is_some_and(|(_, expires)| self.clock.now() >= *expires) {
            return Err(expired());
        }
        Ok(Caller {
            principal: Arc::clone(&credential.principal),
            access_key_id: access_key_id.to_owned(),
            tags: Arc::clone(&credential.tags),
        })
    }

    /// When a session's credentials expire; `None` for a long-term access key.
    ///
    /// # Errors
    /// A store or root-key failure.
    pub(crate) async fn session_expiry(&self, access_key_id: &str) -> Result<Option<Timestamp>, ServiceError> {
        Ok(self.credential(access_key_id).await?.and_then(|c| c.session.as_ref().map(|(_, expires)| *expires)))
    }

    /// Forgets cached credentials (after an access key was deleted or changed).
    pub fn forget(&self, access_key_ids: &[String]) {
        let mut cache = self.credentials.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        for id in access_key_ids {
            cache.remove(id);
        }
        let mut keys = self.signing_keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.retain(|id, _| !access_key_ids.contains(id));
    }

    /// Forgets the cached credentials of a principal (its access keys and, for a role, its
    /// sessions), after it was deleted or changed.
    pub fn forget_principal(&self, arn: &str) {
        let mut cache = self.credentials.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut gone = Vec::new();
        cache.retain(|id, c| {
            let keep = c.owner != arn;
            if !keep {
                gone.push(id.clone());
            }
            keep
        });
        drop(cache);
        if !gone.is_empty() {
            let mut keys = self.signing_keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            keys.retain(|id, _| !gone.contains(id));
        }
    }

    /// Forgets every cached credential and signing key (changes may have been missed).
    pub fn clear(&self) {
        let mut cache = self.credentials.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        cache.clear();
        drop(cache);
        self.signing_keys.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// The signing key for the request's scope, and whether it came from the cache.
    fn signing_key(
        &self,
        credential: &Arc<Credential>,
        pending: &kms_sigv4::PendingRequest,
    ) -> (Arc<SigningKey>, bool) {
        let keys = self.signing_keys.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) =
            keys.get(pending.access_key_id()).and_then(|scopes| scopes.iter().find(|k| k.is_for(credential, pending)))
        {
            return (Arc::clone(&hit.key), true);
        }
        drop(keys);
        let key = SigningKey::derive(
            credential.secret.expose_secret(),
            pending.scope_date(),
            pending.region(),
            pending.service(),
        );
        (Arc::new(key), false)
    }

    /// Caches a signing key once a request signed with it verified, so that junk scopes cannot
    /// crowd out real ones.
    fn remember_signing_key(
        &self,
        credential: &Arc<Credential>,
        pending: &kms_sigv4::PendingRequest,
        key: Arc<SigningKey>,
    ) {
        let mut cache = self.signing_keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= SIGNING_KEY_CACHE_LIMIT && !cache.contains_key(pending.access_key_id()) {
            cache.clear();
        }
        let scopes = cache.entry(pending.access_key_id().to_owned()).or_default();
        // A few scopes per key at most (yesterday's and today's, a region or two).
        if scopes.len() >= SCOPES_PER_ACCESS_KEY {
            scopes.clear();
        }
        scopes.push(ScopedKey {
            credential: Arc::downgrade(credential),
            date: pending.scope_date().to_owned(),
            region: pending.region().to_owned(),
            service: pending.service().to_owned(),
            key,
        });
    }

    /// Verifies a request's signature and returns the endpoint it is for, the caller and the
    /// request's region.
    ///
    /// # Errors
    /// `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
    /// `InvalidSignatureException`, `UnrecognizedClientException` or `ExpiredTokenException` as
    /// AWS answers them.
    pub async fn authenticate(&self, parts: &Parts, body: &[u8]) -> Result<(Endpoint, Caller, Region), ServiceError> {
        let pending = kms_sigv4::parse(parts).map_err(|e| ServiceError::Api(sigv4_error(&e)))?;
        let endpoint = match pending.service() {
            "sts" => Endpoint::Sts,
            "iam" => Endpoint::Iam,
            "cloudtrail" => Endpoint::CloudTrail,
            _ => Endpoint::Kms,
        };
        let credential = self.credential(pending.access_key_id()).await?.ok_or_else(unrecognized)?;
        match (&credential.session, pending.security_token()) {
            (None, None) => {}
            (Some((digest, expires)), Some(token)) => {
                if !bool::from(token_digest(token.as_bytes()).ct_eq(digest)) {
                    return Err(unrecognized());
                }
                if self.clock.now() >= *expires {
                    return Err(expired());
                }
            }
            // A session key without its token, or a long-term key with one.
            _ => return Err(unrecognized()),
        }
        // Headers that change who the request acts as or for must be signed too.
        for name in [
            &crate::http::VIA_PRINCIPAL,
            &crate::http::FORWARD_ACCESS_TOKEN,
            &crate::http::SOURCE_ARN,
            &crate::http::SOURCE_ACCOUNT,
        ] {
            if parts.headers.contains_key(name) && !pending.is_signed(name.as_str()) {
                return Err(ServiceError::Api(ApiError::with_message(
                    Exception::IncompleteSignature,
                    format!("'{name}' must be a 'SignedHeader' in the AWS Authorization."),
                )));
            }
        }
        if matches!(endpoint, Endpoint::Kms | Endpoint::CloudTrail)
            && parts.headers.contains_key(&crate::http::X_AMZ_TARGET)
            && !pending.is_signed(crate::http::X_AMZ_TARGET.as_str())
        {
            // The body is signed but would not bind the operation: a captured DisableKey could
            // be replayed as ScheduleKeyDeletion. Every AWS SDK signs the target.
            return Err(ServiceError::Api(ApiError::with_message(
                Exception::IncompleteSignature,
                "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
            )));
        }
        let now = self.clock.now().unix_seconds();
        let service = match endpoint {
            Endpoint::Kms => "kms",
            Endpoint::Sts => "sts",
            Endpoint::Iam => "iam",
            Endpoint::CloudTrail => "cloudtrail",
        };
        let (key, cached) = self.signing_key(&credential, &pending);
        pending.verify(parts, body, &key, now, service).map_err(|e| ServiceError::Api(sigv4_error(&e)))?;
        if !cached {
            self.remember_signing_key(&credential, &pending, key);
        }
        let region = Region::parse(pending.region()).map_err(|_| {
            ServiceError::Api(ApiError::with_message(
                Exception::InvalidSignature,
                "Credential should be scoped to a valid region.",
            ))
        })?;
        self.note_use(&credential, pending.access_key_id(), service, region.as_str());
        let caller = Caller {
            principal: Arc::clone(&credential.principal),
            access_key_id: pending.access_key_id().to_owned(),
            tags: Arc::clone(&credential.tags),
        };
        Ok((endpoint, caller, region))
    }
}
