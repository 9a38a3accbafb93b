//! ferrokms persistence.
//!
//! The [`Store`] trait is everything the service needs from a database, expressed in records
//! (never wire DTOs). Backends: SQLite in a data directory (the default) and PostgreSQL for
//! several nodes sharing one database.
//! Stores hold secrets only wrapped by the root key: they never see key material, plaintext or
//! secret access keys in the clear. Every method is one transaction.
//!
//! Every mutation takes the audit events that describe it (`audit: &[AuditEvent]`) and appends
//! them to the audit chain in the same transaction as the change: the change and its record are
//! committed together or not at all. A refused change (already exists, not found, conflict,
//! limit) and a change that finds nothing to do (deleting what is not there) append nothing. An
//! empty slice records nothing (first-start bootstrap, tests).
//!
//! Cargo features: `sqlite` (default) builds [`SqliteStore`], `postgres` builds
//! [`PostgresStore`]; a build needs neither to use the trait and records. `test-support` adds the
//! [`conformance`] suite that every backend's tests run, and (with `sqlite`) [`test_support`]'s
//! helpers for tests that tamper with a stored audit trail; release builds leave it out.
//!
//! The backends share their SQL (`statements`: each statement written once, yielded in each
//! dialect at compile time) and their record decoding (`records`: one decoder per record over
//! either driver's rows). Each backend's schema is a numbered list of `.sql` migrations
//! (`migrations/sqlite/NNNN_*.sql`, `migrations/postgres/NNNN_*.sql`) applied at start-up,
//! forward only; version N is the same tables on both.

pub mod audit;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod audit_block;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod statements;
#[cfg(all(feature = "test-support", feature = "sqlite"))]
pub mod test_support;

#[cfg(any(test, feature = "test-support"))]
pub mod conformance;
pub mod invalidation;

use async_trait::async_trait;
use kms_core::Timestamp;
use kms_core::audit::AuditEvent;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};

use crate::audit::{AuditDigest, AuditFilter, AuditRow};
use kms_core::key::KeyRecord;
use kms_core::tag::Tag;

pub use invalidation::{Invalidation, InvalidationFeed};
#[cfg(feature = "postgres")]
pub use postgres::{FEED_APPLICATION_NAME, PostgresStore};
pub use records::{
    ACTIVE, AccessKeyRecord, AliasRecord, GrantRecord, INACTIVE, IdentityPolicyRecord, KeyBundle, KeyUse,
    ManagedPolicyRecord, MaterialRecord, OidcProviderAttributes, PolicyVersionRecord, PrincipalAttributes,
    PrincipalRecord, PrincipalTag, PrincipalType, SessionRecord,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Store failures, each a distinct case the service decides how to answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique record already exists (alias name, key id, access key id).
    #[error("the record already exists")]
    AlreadyExists,
    /// The record to change does not exist.
    #[error("the record does not exist")]
    NotFound,
    /// The record changed since it was read (compare-and-swap on its revision failed).
    #[error("the record was changed concurrently")]
    Conflict,
    /// A per-record quota would be exceeded (tags per key).
    #[error("the limit of {0} would be exceeded")]
    LimitExceeded(usize),
    /// A stored record could not be decoded.
    #[error("a stored record is corrupt: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Shorthand.
pub type StoreResult<T> = Result<T, StoreError>;

/// A key's new record, stored if its stored revision is still the one before (compare-and-swap),
/// with the materials that change with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUpdate {
    /// The new record.
    pub key: KeyRecord,
    /// Materials added (wrapped).
    pub add: Vec<MaterialRecord>,
    /// Materials removed.
    pub remove: Vec<MaterialId>,
}

impl KeyUpdate {
    /// A new record with its materials unchanged.
    pub fn record(key: KeyRecord) -> Self {
        Self { key, add: Vec::new(), remove: Vec::new() }
    }
}

/// The right to run a background role (scheduler, event delivery) on behalf of every node that
/// shares the store. Held while the value lives; released when it is dropped or its node dies.
pub struct Leadership {
    alive: Box<dyn Fn() -> bool + Send + Sync>,
}

impl Leadership {
    /// Leadership that cannot be lost (a store only one node can open).
    pub fn exclusive() -> Self {
        Self { alive: Box::new(|| true) }
    }

    /// Leadership that lasts while `alive` says so.
    pub fn while_alive(alive: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self { alive: Box::new(alive) }
    }

    /// Whether it still holds (its connection to the database is up).
    pub fn is_held(&self) -> bool {
        (self.alive)()
    }
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership").field("held", &self.is_held()).finish()
    }
}

/// Everything ferrokms persists.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A non-secret description for logs and start-up output (`sqlite:/path/ferrokms.db`).
    fn describe(&self) -> String;

    /// Tries to become the one node that runs `role`; `None` while another node holds it.
    /// A store that only one node can open always grants it.
    async fn try_lead(&self, _role: &str) -> StoreResult<Option<Leadership>> {
        Ok(Some(Leadership::exclusive()))
    }

    /// The feed of what changes committed by any node sharing the store make stale (see
    /// [`invalidation`]), already listening when this returns; `None` for a store that only one
    /// node can open, whose node invalidates its own caches.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the feed cannot be set up.
    async fn invalidations(&self) -> StoreResult<Option<InvalidationFeed>> {
        Ok(None)
    }

    /// Reads a server-wide setting.
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Writes a server-wide setting unless it is already set; returns whether it wrote.
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<bool>;
    /// Writes (or overwrites) a server-wide setting.
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()>;

    /// Creates a key with its materials (none for a key awaiting imported material; every
    /// material of its primary for a multi-Region replica), its policy and its tags, and applies
    /// `updates` to other keys (a multi-Region primary naming its new replica), atomically.
    async fn create_key(
        &self,
        key: &KeyRecord,
        materials: &[MaterialRecord],
        policy: &str,
        tags: &[Tag],
        updates: &[KeyUpdate],
        audit: &[AuditEvent],
    ) -> StoreResult<()>;
    /// Reads a key.
    async fn key(&self, id: KeyId) -> StoreResult<Option<KeyRecord>>;
    /// Replaces a key whose stored revision is `key.revision - 1`.
    ///
    /// [`StoreError::Conflict`] if it changed meanwhile, [`StoreError::NotFound`] if it is gone.
    async fn update_key(&self, key: &KeyRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Key ids of an account in a region, in key-id order, after `after`, at most `limit`.
    async fn list_keys(
        &self,
        account: &AccountId,
        region: &Region,
        after: Option<KeyId>,
        limit: usize,
    ) -> StoreResult<Vec<KeyId>>;
    /// Applies `updates` — each a key's record (compare-and-swap on its revision, as
    /// [`Store::update_key`]) with materials added (a rotation's or an import's) and removed
    /// (imported material deleted or expired) — with the audit events, in one transaction: all
    /// or none. Several keys change together when a multi-Region key's primary and replicas do.
    async fn update_keys(&self, updates: &[KeyUpdate], audit: &[AuditEvent]) -> StoreResult<()>;
    /// Keys with work due at `now`: an automatic rotation (`rotation.next <= now`), a
    /// scheduled deletion (`deletion.date <= now`) or an expiry of imported material
    /// (`material_expires <= now`), at most `limit`.
    async fn due_keys(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<KeyId>>;
    /// Deletes a key for good — its record, materials, policy, tags, aliases and grants — if its
    /// stored revision is still `revision`, and applies `updates` to other keys (a multi-Region
    /// primary forgetting the replica), with the audit events, in one transaction. Returns
    /// whether it was deleted (if not, nothing changed).
    async fn delete_key(
        &self,
        id: KeyId,
        revision: u64,
        updates: &[KeyUpdate],
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    /// Returns the store to its state after initialization, for test suites: deletes every key
    /// (with its materials, policy, tags, aliases and grants), every user, role and service
    /// principal with their access keys, sessions and identity policies, keeping the accounts,
    /// each account's admin user with its long-term access keys and AdministratorAccess
    /// policy, the settings and the audit trail (to which `audit` is appended). Every node
    /// forgets everything it cached.
    async fn reset(&self, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Every material of a key, oldest first.
    async fn materials(&self, id: KeyId) -> StoreResult<Vec<MaterialRecord>>;
    /// Everything a key's cache entry is built from, read together: its record, materials,
    /// policy document, grants, tags and the aliases naming it; `None` if there is no such key.
    /// Every key-cache miss reads this. The default reads the parts one call at a time; a store
    /// that can reads them in one round trip, from one snapshot.
    async fn key_bundle(&self, id: KeyId) -> StoreResult<Option<KeyBundle>> {
        let Some(record) = self.key(id).await? else { return Ok(None) };
        let aliases = self.list_aliases(&record.account, &record.region, Some(id), None, usize::MAX >> 1).await?;
        Ok(Some(KeyBundle {
            materials: self.materials(id).await?,
            policy: self.policy(id).await?,
            grants: self.grants(id).await?,
            tags: self.tags(id).await?,
            aliases,
            record,
        }))
    }

    /// Creates an alias; [`StoreError::AlreadyExists`] if the name is taken in its account and
    /// region.
    async fn create_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Points an existing alias at another key; [`StoreError::NotFound`] if there is none.
    async fn update_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Deletes an alias; returns whether it existed (if not, `audit` is not appended).
    async fn delete_alias(
        &self,
        account: &AccountId,
        region: &Region,
        name: &AliasName,
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    /// Reads an alias.
    async fn alias(&self, account: &AccountId, region: &Region, name: &AliasName) -> StoreResult<Option<AliasRecord>>;
    /// Aliases of an account in a region (optionally only those naming `target`), in name order,
    /// after `after`, at most `limit`.
    async fn list_aliases(
        &self,
        account: &AccountId,
        region: &Region,
        target: Option<KeyId>,
        after: Option<&AliasName>,
        limit: usize,
    ) -> StoreResult<Vec<AliasRecord>>;

    /// A key's tags in key order.
    async fn tags(&self, id: KeyId) -> StoreResult<Vec<Tag>>;
    /// Adds or overwrites tags; [`StoreError::LimitExceeded`] if the key would carry more than
    /// `max` tags (and nothing changes).
    async fn put_tags(&self, id: KeyId, tags: &[Tag], max: usize, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Removes tags by key (absent keys are ignored).
    async fn remove_tags(&self, id: KeyId, keys: &[String], audit: &[AuditEvent]) -> StoreResult<()>;

    /// A key's policy document.
    async fn policy(&self, id: KeyId) -> StoreResult<Option<String>>;
    /// Replaces a key's policy document; [`StoreError::NotFound`] if the key has none.
    async fn put_policy(&self, id: KeyId, document: &str, audit: &[AuditEvent]) -> StoreResult<()>;

    /// Reads an access key.
    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    /// Creates an access key; [`StoreError::AlreadyExists`] if the id is taken.
    async fn create_access_key(&self, record: &AccessKeyRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Deletes an access key; returns whether it existed (if not, `audit` is not appended).
    async fn delete_access_key(&self, id: &str, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// Every key's materials after `after` (key and material id), at most `limit`, in that
    /// order: what a root-key rotation wraps again.
    async fn materials_after(
        &self,
        after: Option<(KeyId, MaterialId)>,
        limit: usize,
    ) -> StoreResult<Vec<MaterialRecord>>;
    /// Replaces a material's wrapping if it is still `old`; whether it was.
    async fn rewrap_material(
        &self,
        key_id: KeyId,
        material_id: MaterialId,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool>;
    /// Every access key after `after` (by id), at most `limit`.
    async fn access_keys_after(&self, after: &str, limit: usize) -> StoreResult<Vec<AccessKeyRecord>>;
    /// Replaces an access key's wrapped secret if it is still `old`; whether it was.
    async fn rewrap_access_key(&self, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;
    /// Records a long-term access key's last use (no audit event: a use is audited as its
    /// request).
    async fn record_key_use(&self, id: &str, used: &KeyUse) -> StoreResult<()>;
    /// Makes an access key active or inactive; whether it exists.
    async fn set_access_key_active(&self, id: &str, active: bool, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// The access keys of a principal.
    async fn access_keys_of(&self, principal_arn: &str) -> StoreResult<Vec<AccessKeyRecord>>;

    /// Creates a principal; [`StoreError::AlreadyExists`] if its ARN or name is taken.
    async fn create_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Reads a principal by ARN.
    async fn principal(&self, arn: &str) -> StoreResult<Option<PrincipalRecord>>;
    /// A principal by its account, kind and name (IAM names are unique per account and kind,
    /// whatever their path).
    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: PrincipalType,
        name: &str,
    ) -> StoreResult<Option<PrincipalRecord>>;
    /// Gives the principal at `old_arn` a new ARN, name and attributes (IAM's UpdateUser), its
    /// access keys and identity policies following it; whether it existed.
    /// [`StoreError::AlreadyExists`] when the new name is taken.
    async fn rename_principal(
        &self,
        old_arn: &str,
        renamed: &PrincipalRecord,
        audit: &[AuditEvent],
    ) -> StoreResult<bool>;
    /// Replaces a principal's trust policy and attributes; whether it exists.
    async fn update_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<bool>;

    /// Creates a managed policy ([`StoreError::AlreadyExists`] when its name is taken).
    async fn create_managed_policy(&self, record: &ManagedPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// A managed policy by ARN, with its revision.
    async fn managed_policy(&self, arn: &str) -> StoreResult<Option<ManagedPolicyRecord>>;
    /// An account's managed policies, by name.
    async fn managed_policies(&self, account: &AccountId) -> StoreResult<Vec<ManagedPolicyRecord>>;
    /// Replaces a managed policy if it is still at `record.revision` ([`StoreError::Conflict`]
    /// otherwise; [`StoreError::NotFound`] when it is gone).
    async fn update_managed_policy(&self, record: &ManagedPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Deletes a managed policy; whether it existed.
    async fn delete_managed_policy(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// The principals of an account.
    async fn list_principals(&self, account: &AccountId) -> StoreResult<Vec<PrincipalRecord>>;
    /// Deletes a principal with its access keys and identity policies; returns whether it existed
    /// (if not, nothing is deleted and `audit` is not appended). Key policies and role trust
    /// policies that name the principal by ARN are rewritten, in the same transaction, to name
    /// its unique id instead (as IAM does), so that a principal created again under the same
    /// name does not inherit them.
    async fn delete_principal(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool>;

    /// Adds or replaces an identity policy; [`StoreError::NotFound`] if the principal is unknown.
    async fn put_identity_policy(&self, record: &IdentityPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()>;
    /// Removes an identity policy; returns whether it existed (if not, `audit` is not appended).
    async fn delete_identity_policy(&self, principal_arn: &str, name: &str, audit: &[AuditEvent]) -> StoreResult<bool>;
    /// A principal's identity policies.
    async fn identity_policies(&self, principal_arn: &str) -> StoreResult<Vec<IdentityPolicyRecord>>;

    /// Creates a grant unless its key already has `max_per_key` ([`StoreError::LimitExceeded`]).
    async fn create_grant(&self, grant: &GrantRecord, max_per_key: usize, audit: &[AuditEvent]) -> StoreResult<()>;
    /// A key's grants.
    async fn grants(&self, key_id: KeyId) -> StoreResult<Vec<GrantRecord>>;
    /// A grant by id.
    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>>;
    /// Grants in `account` whose retiring principal (an IAM principal's ARN, or an AWS service
    /// principal's name) is `principal`.
    async fn grants_for_retiring(&self, account: &AccountId, principal: &str) -> StoreResult<Vec<GrantRecord>>;
    /// Deletes a grant; returns whether it existed (if not, `audit` is not appended).
    async fn delete_grant(&self, grant_id: &str, audit: &[AuditEvent]) -> StoreResult<bool>;

    /// How many keys are in each state (for metrics).
    async fn key_states(&self) -> StoreResult<Vec<(String, u64)>>;

    /// Appends events to the audit chain, in order, in one transaction (events that describe no
    /// store change: failed requests, reads, cryptographic operations, background actions).
    /// Shared rather than borrowed: a backend that writes on another thread keeps the batch
    /// without copying every record, and the caller keeps it to retry.
    async fn append_audit(&self, events: std::sync::Arc<[AuditEvent]>) -> StoreResult<()>;
    /// Audit records after `after_seq`, in chain order, at most `limit`.
    async fn audit_after(&self, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRow>>;
    /// Audit records matching `filter`, newest first.
    async fn audit_query(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>>;
    /// The newest successful cryptographic operation on a key.
    async fn last_key_usage(&self, key_arn: &str) -> StoreResult<Option<AuditRow>>;
    /// The chain's last record: its sequence number and hash.
    async fn audit_head(&self) -> StoreResult<Option<(u64, Vec<u8>)>>;
    /// The newest record older than `cutoff`.
    async fn audit_seq_before(&self, cutoff: Timestamp) -> StoreResult<Option<u64>>;
    /// Deletes the records before `seq` (retention). Record `seq`, pinned by a signed digest,
    /// stays as the anchor of what remains (and the chain's head, should nothing follow it).
    async fn prune_audit(&self, seq: u64) -> StoreResult<u64>;
    /// Stores a signed digest.
    async fn put_audit_digest(&self, digest: &AuditDigest) -> StoreResult<()>;
    /// Every signed digest, oldest first.
    async fn audit_digests(&self) -> StoreResult<Vec<AuditDigest>>;
}
