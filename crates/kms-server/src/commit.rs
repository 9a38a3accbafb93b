//! The commit path: the one place where a control-plane change made by a handler reaches the
//! store.
//!
//! A handler loads, decides in memory, and describes its change as a [`Change`] (or, for a
//! read-modify-write of a key, as a function from the stored record to a [`KeyChange`]). Then
//! [`Service::commit`] / [`Service::commit_key`] apply it, always in the same way:
//!
//! 1. the request's audit event is built from the response the client will receive, and handed
//!    to the store call so that it is appended in the change's own transaction;
//! 2. the cache entries the change makes stale (keys, with the authorization decisions cached on
//!    them, and aliases) are invalidated before the store call and again after it
//!    ([`Service::committing`]);
//! 3. a compare-and-swap conflict on a key re-reads the stored record and applies the change
//!    again, a few times;
//! 4. the audit event is marked committed only when the store made the change, so that the
//!    listener records every other outcome itself (once);
//! 5. store refusals become the operation's AWS exception ([`Change::refused`]);
//! 6. what this node learns from a stored change is applied ([`Change::stored`]: a new key is
//!    counted and cached).
//!
//! Handlers (`ops/`, the admin and STS APIs) never call a store mutator, invalidate a cache or
//! mark an audit event themselves: a slip there would leave a stale key on a node or record a
//! request twice. The scheduler's changes take the same path through
//! [`Service::commit_unattended`], with their own (background) audit event. Only start-up
//! (`bootstrap`) writes to the store directly, before there is a cache or a request.

use kms_api::{ApiError, Exception};
use kms_core::KmsError;
use kms_core::error::{Limit, NotFound};
use kms_core::ids::{AliasArn, KeyId};
use kms_core::key::KeyRecord;
use kms_core::policy::KeyPolicy;
use kms_core::tag::{MAX_TAGS_PER_KEY, Tag};
use kms_crypto::KeyHandle;
use kms_store::{
    AccessKeyRecord, AliasRecord, GrantRecord, IdentityPolicyRecord, Invalidation, KeyUpdate, ManagedPolicyRecord,
    MaterialRecord, PrincipalRecord, StoreError,
};
use std::sync::Arc;

use crate::error::ServiceError;
use crate::service::{ControlEvent, RequestContext, Service};

/// How many times a read-modify-write of a key is applied when another writer got there first.
const KEY_ATTEMPTS: usize = 5;

/// A control-plane change to persist, as a handler describes it.
pub(crate) enum Change {
    /// A new key with its materials (none for a key awaiting imported material; its primary's
    /// for a multi-Region replica), policy and tags, and the other keys that change with it.
    CreateKey {
        /// The key.
        key: KeyRecord,
        /// Its materials, wrapped.
        materials: Vec<MaterialRecord>,
        /// Its first material ready to use, cached once the key is stored (a new key's).
        handle: Option<Arc<KeyHandle>>,
        /// Other keys changed with it (a multi-Region primary naming its new replica).
        updates: Vec<KeyUpdate>,
        /// Its policy.
        policy: KeyPolicy,
        /// Its tags.
        tags: Vec<Tag>,
    },
    /// A key's new record, stored if the key's revision is still the one it was derived from.
    UpdateKey(KeyRecord),
    /// Everything back to its state after initialization (`FerrokmsAdmin.Reset`, for test
    /// suites): see [`kms_store::Store::reset`].
    Reset,
    /// Keys' new records with their materials changed, all or none (compare-and-swap as
    /// above): the material a rotation or an import adds, the imported materials deleted or
    /// expired; a multi-Region key's primary and replicas together.
    UpdateKeys(Vec<KeyUpdate>),
    /// A new alias (its name must be free).
    CreateAlias(AliasRecord),
    /// An existing alias pointed at another key.
    UpdateAlias {
        /// The alias with its new target.
        alias: AliasRecord,
        /// The key it pointed at before.
        previous_target: KeyId,
    },
    /// An alias removed.
    DeleteAlias {
        /// The alias.
        arn: AliasArn,
        /// The key it points at.
        target: KeyId,
    },
    /// Tags added to a key or overwritten.
    PutTags {
        /// The key.
        key_id: KeyId,
        /// The tags.
        tags: Vec<Tag>,
    },
    /// Tags removed from a key, by tag key.
    RemoveTags {
        /// The key.
        key_id: KeyId,
        /// The tag keys.
        tag_keys: Vec<String>,
    },
    /// A key's policy replaced.
    PutPolicy {
        /// The key.
        key_id: KeyId,
        /// The new policy document.
        document: String,
    },
    /// A new grant (within the per-key grant quota).
    CreateGrant(GrantRecord),
    /// A grant ended (retired or revoked). A grant already gone is not an error: the change
    /// then commits nothing.
    DeleteGrant {
        /// The key the grant is for.
        key_id: KeyId,
        /// The grant.
        grant_id: String,
    },
    /// A key deleted for good at the end of its waiting period, with everything that is its
    /// own, if its stored revision is still `revision`.
    DeleteKey {
        /// The key.
        key_id: KeyId,
        /// The revision it was read at.
        revision: u64,
        /// Its aliases (deleted with it).
        aliases: Vec<AliasRecord>,
        /// Other keys changed with it (a multi-Region primary forgetting the replica).
        updates: Vec<KeyUpdate>,
    },
    /// A new user, role or service principal (its name must be free).
    CreatePrincipal(PrincipalRecord),
    /// A principal deleted, with its access keys, sessions and identity policies.
    DeletePrincipal {
        /// Its ARN.
        arn: String,
        /// What the not-found message names, should it be gone ("user alice").
        missing: String,
    },
    /// An identity policy of a principal added or replaced.
    PutIdentityPolicy {
        /// The policy.
        policy: IdentityPolicyRecord,
        /// What the not-found message names, should the principal be gone.
        missing: String,
    },
    /// An identity policy of a principal removed.
    DeleteIdentityPolicy {
        /// The principal's ARN.
        principal_arn: String,
        /// The policy's name.
        name: String,
        /// What the not-found message names, should the policy be gone.
        missing: String,
    },
    /// A new access key (long-term, or a session's).
    CreateAccessKey(AccessKeyRecord),
    /// An access key deleted. A key already gone is not an error: the change then commits
    /// nothing.
    DeleteAccessKey(String),
    /// A principal's trust policy or IAM attributes replaced.
    UpdatePrincipal {
        /// The principal as it is to be stored.
        principal: PrincipalRecord,
        /// What the not-found message names, should it be gone.
        missing: String,
    },
    /// A user renamed or moved to another path (IAM's UpdateUser).
    RenamePrincipal {
        /// Its ARN before.
        old_arn: String,
        /// It, renamed.
        renamed: PrincipalRecord,
    },
    /// A new customer managed policy (its name must be free).
    CreateManagedPolicy(ManagedPolicyRecord),
    /// A managed policy's versions changed, if it is still at the revision read.
    UpdateManagedPolicy(ManagedPolicyRecord),
    /// A managed policy deleted.
    DeleteManagedPolicy {
        /// Its ARN.
        arn: String,
    },
    /// An access key made active or inactive.
    SetAccessKeyActive {
        /// The key.
        id: String,
        /// Its new status.
        active: bool,
        /// What the not-found message names, should it be gone.
        missing: String,
    },
}

/// A read-modify-write of a key: what [`Service::commit_key`] stores in place of the record it
/// read.
pub(crate) enum KeyChange {
    /// The key's new record.
    Update(KeyRecord),
    /// The key's new record with its materials changed, and the keys that change with it (a
    /// multi-Region key's replicas).
    Keys {
        /// The key's own.
        key: KeyUpdate,
        /// The others'.
        others: Vec<KeyUpdate>,
    },
}

impl KeyChange {
    /// The key's new record with `add` and `remove` as its material changes, alone.
    pub(crate) fn materials(key: KeyRecord, add: Vec<MaterialRecord>, remove: Vec<kms_core::ids::MaterialId>) -> Self {
        Self::Keys { key: KeyUpdate { key, add, remove }, others: Vec::new() }
    }
}

impl From<KeyRecord> for KeyChange {
    fn from(key: KeyRecord) -> Self {
        Self::Update(key)
    }
}

impl KeyChange {
    /// The key's record as it will be stored.
    fn record(&self) -> &KeyRecord {
        match self {
            Self::Update(key) | Self::Keys { key: KeyUpdate { key, .. }, .. } => key,
        }
    }
}

impl From<KeyChange> for Change {
    fn from(change: KeyChange) -> Self {
        match change {
            KeyChange::Update(key) => Self::UpdateKey(key),
            KeyChange::Keys { key, others } => Self::UpdateKeys(std::iter::once(key).chain(others).collect()),
        }
    }
}

impl Change {
    /// What the change makes stale in this node's caches (other nodes hear of it through the
    /// store's change feed).
    fn invalidations(&self) -> Vec<Invalidation> {
        match self {
            // Nothing can have cached a key that did not exist ([`Change::stored`] caches it).
            Self::CreateKey { updates, .. } | Self::UpdateKeys(updates) => {
                updates.iter().map(|u| Invalidation::Key(u.key.key_id)).collect()
            }
            Self::UpdateKey(key) => vec![Invalidation::Key(key.key_id)],
            Self::Reset => vec![Invalidation::All],
            Self::CreateAlias(alias) => {
                vec![crate::invalidation::alias(&alias_arn(alias)), Invalidation::Key(alias.target)]
            }
            Self::UpdateAlias { alias, previous_target } => vec![
                crate::invalidation::alias(&alias_arn(alias)),
                Invalidation::Key(*previous_target),
                Invalidation::Key(alias.target),
            ],
            Self::DeleteAlias { arn, target } => vec![crate::invalidation::alias(arn), Invalidation::Key(*target)],
            Self::PutTags { key_id, .. }
            | Self::RemoveTags { key_id, .. }
            | Self::PutPolicy { key_id, .. }
            | Self::DeleteGrant { key_id, .. } => vec![Invalidation::Key(*key_id)],
            Self::CreateGrant(grant) => vec![Invalidation::Key(grant.key_id)],
            Self::DeleteKey { key_id, aliases, updates, .. } => std::iter::once(Invalidation::Key(*key_id))
                .chain(aliases.iter().map(|a| crate::invalidation::alias(&alias_arn(a))))
                .chain(updates.iter().map(|u| Invalidation::Key(u.key.key_id)))
                .collect(),
            // Key policies naming the principal are rewritten to its unique id by the store, so
            // this node's cached keys (whichever they are) are read again. Deleting a principal
            // is rare; other nodes hear of each key.
            Self::DeletePrincipal { arn, .. } => vec![Invalidation::Principal(arn.clone()), Invalidation::All],
            Self::PutIdentityPolicy { policy, .. } => vec![Invalidation::Principal(policy.principal_arn.clone())],
            Self::DeleteIdentityPolicy { principal_arn, .. } => vec![Invalidation::Principal(principal_arn.clone())],
            // Nothing can have cached what did not exist.
            Self::CreatePrincipal(_) | Self::CreateAccessKey(_) => Vec::new(),
            Self::DeleteAccessKey(id) | Self::SetAccessKeyActive { id, .. } => {
                vec![Invalidation::AccessKey(id.clone())]
            }
            Self::UpdatePrincipal { principal, .. } => vec![Invalidation::Principal(principal.arn.clone())],
            Self::RenamePrincipal { old_arn, renamed } => {
                vec![Invalidation::Principal(old_arn.clone()), Invalidation::Principal(renamed.arn.clone())]
            }
            // A policy's or group's ARN stands for everyone it applies to.
            Self::UpdateManagedPolicy(policy) => vec![Invalidation::Principal(policy.arn.clone())],
            Self::DeleteManagedPolicy { arn } => vec![Invalidation::Principal(arn.clone())],
            Self::CreateManagedPolicy(_) => Vec::new(),
        }
    }

    /// The store call that makes the change, appending `audit` in its transaction. Returns
    /// whether it changed anything (and so appended `audit`).
    async fn write(&self, svc: &Service, audit: &[kms_core::audit::AuditEvent]) -> Result<bool, StoreError> {
        let store = &svc.store;
        match self {
            Self::CreateKey { key, materials, policy, tags, updates, .. } => {
                store.create_key(key, materials, policy.as_str(), tags, updates, audit).await.map(|()| true)
            }
            Self::UpdateKey(key) => store.update_key(key, audit).await.map(|()| true),
            Self::Reset => store.reset(audit).await.map(|()| true),
            Self::UpdateKeys(updates) => store.update_keys(updates, audit).await.map(|()| true),
            Self::CreateAlias(alias) => store.create_alias(alias, audit).await.map(|()| true),
            Self::UpdateAlias { alias, .. } => store.update_alias(alias, audit).await.map(|()| true),
            Self::DeleteAlias { arn, .. } => {
                // Deleted by someone else meanwhile: nothing changed, and the request fails.
                found(store.delete_alias(&arn.account, &arn.region, &arn.name, audit).await?)
            }
            Self::PutTags { key_id, tags } => {
                store.put_tags(*key_id, tags, MAX_TAGS_PER_KEY, audit).await.map(|()| true)
            }
            Self::RemoveTags { key_id, tag_keys } => store.remove_tags(*key_id, tag_keys, audit).await.map(|()| true),
            Self::PutPolicy { key_id, document } => store.put_policy(*key_id, document, audit).await.map(|()| true),
            Self::CreateGrant(grant) => {
                store.create_grant(grant, svc.quotas.resources.grants_per_key, audit).await.map(|()| true)
            }
            // A grant retired by someone else meanwhile is gone all the same: success, recorded
            // without a change.
            Self::DeleteGrant { grant_id, .. } => store.delete_grant(grant_id, audit).await,
            Self::DeleteKey { key_id, revision, updates, .. } => {
                store.delete_key(*key_id, *revision, updates, audit).await
            }
            Self::CreatePrincipal(principal) => store.create_principal(principal, audit).await.map(|()| true),
            Self::DeletePrincipal { arn, .. } => found(store.delete_principal(arn, audit).await?),
            Self::PutIdentityPolicy { policy, .. } => store.put_identity_policy(policy, audit).await.map(|()| true),
            Self::DeleteIdentityPolicy { principal_arn, name, .. } => {
                found(store.delete_identity_policy(principal_arn, name, audit).await?)
            }
            Self::CreateAccessKey(record) => store.create_access_key(record, audit).await.map(|()| true),
            // Deleted by someone else meanwhile: gone all the same, and recorded without a change.
            Self::DeleteAccessKey(id) => store.delete_access_key(id, audit).await,
            Self::UpdatePrincipal { principal, .. } => found(store.update_principal(principal, audit).await?),
            Self::RenamePrincipal { old_arn, renamed } => found(store.rename_principal(old_arn, renamed, audit).await?),
            Self::CreateManagedPolicy(policy) => store.create_managed_policy(policy, audit).await.map(|()| true),
            Self::UpdateManagedPolicy(policy) => store.update_managed_policy(policy, audit).await.map(|()| true),
            Self::DeleteManagedPolicy { arn } => found(store.delete_managed_policy(arn, audit).await?),
            Self::SetAccessKeyActive { id, active, .. } => {
                found(store.set_access_key_active(id, *active, audit).await?)
            }
        }
    }

    /// What this node learns once the store made the change: a new key is counted against
    /// its account's quota and cached, ready to use.
    fn stored(self, svc: &Service) {
        match self {
            Self::CreateKey { key, handle, policy, materials, .. } => {
                // AWS managed keys do not count against the account's key quota.
                if key.key_manager == kms_core::key::KeyManager::Customer {
                    svc.key_created(&key.account, &key.region);
                }
                // A replica's materials are not ready here: its first use loads them.
                if handle.is_some() || materials.is_empty() {
                    svc.cache_new_key(key, handle, policy);
                }
            }
            Self::Reset => svc.quotas.key_counts.forget(),
            Self::UpdateKey(_)
            | Self::UpdateKeys(_)
            | Self::CreateAlias(_)
            | Self::UpdateAlias { .. }
            | Self::DeleteAlias { .. }
            | Self::PutTags { .. }
            | Self::RemoveTags { .. }
            | Self::PutPolicy { .. }
            | Self::CreateGrant(_)
            | Self::DeleteGrant { .. }
            | Self::DeleteKey { .. }
            | Self::CreatePrincipal(_)
            | Self::DeletePrincipal { .. }
            | Self::PutIdentityPolicy { .. }
            | Self::DeleteIdentityPolicy { .. }
            | Self::CreateAccessKey(_)
            | Self::DeleteAccessKey(_)
            | Self::UpdatePrincipal { .. }
            | Self::RenamePrincipal { .. }
            | Self::CreateManagedPolicy(_)
            | Self::UpdateManagedPolicy(_)
            | Self::DeleteManagedPolicy { .. }
            | Self::SetAccessKeyActive { .. } => {}
        }
    }

    /// The error the client sees when the store refused the change: each kind of change says
    /// which refusals are its operation's own exception; the rest are store failures.
    fn refused(self, error: StoreError) -> ServiceError {
        match (self, error) {
            (Self::CreateAlias(alias), StoreError::AlreadyExists) => KmsError::AlreadyExists(alias_arn(&alias)).into(),
            (Self::DeleteAlias { arn, .. }, StoreError::NotFound) => KmsError::NotFound(NotFound::Alias(arn)).into(),
            (Self::PutTags { .. }, StoreError::LimitExceeded(n)) => {
                KmsError::LimitExceeded(Limit::TagsPerKey(n)).into()
            }
            (Self::CreateGrant(_), StoreError::LimitExceeded(n)) => {
                KmsError::LimitExceeded(Limit::GrantsPerKey(n)).into()
            }
            (Self::CreatePrincipal(principal), StoreError::AlreadyExists) => ServiceError::Api(ApiError::with_message(
                Exception::AlreadyExists,
                crate::iam::already_exists_message(principal.kind, &principal.name),
            )),
            (
                Self::DeletePrincipal { missing, .. }
                | Self::PutIdentityPolicy { missing, .. }
                | Self::DeleteIdentityPolicy { missing, .. }
                | Self::UpdatePrincipal { missing, .. }
                | Self::SetAccessKeyActive { missing, .. },
                StoreError::NotFound,
            ) => crate::admin::not_found(&missing),
            (Self::RenamePrincipal { renamed, .. }, StoreError::AlreadyExists) => {
                ServiceError::Api(ApiError::with_message(
                    Exception::AlreadyExists,
                    crate::iam::already_exists_message(renamed.kind, &renamed.name),
                ))
            }
            (Self::RenamePrincipal { old_arn, .. }, StoreError::NotFound) => crate::admin::not_found(&old_arn),
            (Self::CreateManagedPolicy(policy), StoreError::AlreadyExists) => {
                ServiceError::Api(ApiError::with_message(
                    Exception::AlreadyExists,
                    format!("A policy called {} already exists. Duplicate names are not allowed.", policy.name),
                ))
            }
            (
                Self::UpdateManagedPolicy(ManagedPolicyRecord { arn, .. }) | Self::DeleteManagedPolicy { arn },
                StoreError::NotFound,
            ) => ServiceError::Api(ApiError::with_message(Exception::NotFound, format!("Policy {arn} was not found."))),
            // Every other refusal of these is a store failure. Listed by name, so that a new
            // kind of change decides what its refusals mean.
            (
                Self::CreateKey { .. }
                | Self::UpdateKey(_)
                | Self::Reset
                | Self::UpdateKeys(_)
                | Self::CreateAlias(_)
                | Self::UpdateAlias { .. }
                | Self::DeleteAlias { .. }
                | Self::PutTags { .. }
                | Self::RemoveTags { .. }
                | Self::PutPolicy { .. }
                | Self::CreateGrant(_)
                | Self::DeleteGrant { .. }
                | Self::DeleteKey { .. }
                | Self::CreatePrincipal(_)
                | Self::DeletePrincipal { .. }
                | Self::PutIdentityPolicy { .. }
                | Self::DeleteIdentityPolicy { .. }
                | Self::CreateAccessKey(_)
                | Self::DeleteAccessKey(_)
                | Self::UpdatePrincipal { .. }
                | Self::RenamePrincipal { .. }
                | Self::CreateManagedPolicy(_)
                | Self::UpdateManagedPolicy(_)
                | Self::DeleteManagedPolicy { .. }
                | Self::SetAccessKeyActive { .. },
                error,
            ) => error.into(),
        }
    }
}

/// A deletion's outcome as a change: a record already gone is [`StoreError::NotFound`].
fn found(deleted: bool) -> Result<bool, StoreError> {
    if deleted { Ok(true) } else { Err(StoreError::NotFound) }
}

/// The ARN of an alias record.
fn alias_arn(alias: &AliasRecord) -> AliasArn {
    AliasArn { region: alias.region.clone(), account: alias.account.clone(), name: alias.name.clone() }
}

impl Service {
    /// Persists `change` with the request's audit event (recording `response`, which is
    /// returned), invalidating what it makes stale.
    ///
    /// # Errors
    /// The operation's exception for a store refusal ([`Change::refused`]: an alias that exists
    /// or is gone, a tag or grant quota reached); `KMSInternalException` for store failures.
    pub(crate) async fn commit<R: serde::Serialize>(
        &self,
        ctx: &RequestContext,
        change: Change,
        response: R,
    ) -> Result<R, ServiceError> {
        match self.apply(&change, self.control_event_for(ctx, &response)).await {
            Ok(_) => {
                change.stored(self);
                Ok(response)
            }
            Err(error) => Err(change.refused(error)),
        }
    }

    /// Read-modify-write of a key: reads the stored record (not the cache, which may trail
    /// another writer), applies `edit`, and stores the result if nobody changed the key
    /// meanwhile, applying `edit` again to the newer record (a few times) if someone did.
    ///
    /// `respond` makes the operation's response from the record to store; it is returned, and
    /// recorded in the audit event committed with the change.
    ///
    /// # Errors
    /// What `edit` returns (the key's state forbids the change); `KMSInternalException` when the
    /// key is gone from the store, keeps changing under the edit, or the store fails.
    pub(crate) async fn commit_key<R, C, E>(
        &self,
        ctx: &RequestContext,
        key_id: KeyId,
        edit: impl Fn(&KeyRecord) -> Result<C, E>,
        respond: impl Fn(&KeyRecord) -> R,
    ) -> Result<R, ServiceError>
    where
        R: serde::Serialize,
        C: Into<KeyChange>,
        E: Into<ServiceError>,
    {
        for _ in 0..KEY_ATTEMPTS {
            let current = self.store.key(key_id).await?.ok_or(StoreError::NotFound)?;
            let next: KeyChange = edit(&current).map_err(Into::into)?.into();
            let response = respond(next.record());
            let change = Change::from(next);
            match self.apply(&change, self.control_event_for(ctx, &response)).await {
                Ok(_) => return Ok(response),
                Err(StoreError::Conflict) => {}
                Err(error) => return Err(change.refused(error)),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Persists a change nobody requested (the scheduler's), with its audit event, invalidating
    /// what it makes stale. Returns whether the change was made: one raced by another writer
    /// (the key changed or went meanwhile) is not, and is not retried; the next pass sees the
    /// new state.
    ///
    /// # Errors
    /// Store failures.
    pub(crate) async fn commit_unattended(
        &self,
        change: Change,
        event: kms_core::audit::AuditEvent,
    ) -> Result<bool, ServiceError> {
        match self.apply(&change, ControlEvent::unattended(event)).await {
            Ok(changed) => Ok(changed),
            Err(StoreError::Conflict | StoreError::NotFound) => Ok(false),
            Err(error) => Err(change.refused(error)),
        }
    }

    /// One attempt at a change: the store call with the audit event in its transaction, inside
    /// the change's invalidations; the event is marked committed when the store made the change.
    /// Returns whether it did.
    async fn apply(&self, change: &Change, audit: ControlEvent) -> Result<bool, StoreError> {
        let invalidations = change.invalidations();
        let changed = self.committing(&invalidations, change.write(self, &audit)).await?;
        if changed {
            audit.committed();
        }
        Ok(changed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use kms_core::Timestamp;
    use kms_core::ids::{AccountId, AliasName, Region};

    use super::*;

    fn alias(target: KeyId) -> AliasRecord {
        AliasRecord {
            account: AccountId::parse("111122223333").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            name: AliasName::parse("alias/app").unwrap(),
            target,
            created: Timestamp::from_unix_millis(0),
            updated: Timestamp::from_unix_millis(0),
        }
    }

    fn key(byte: u8) -> KeyId {
        KeyId::from_random_bytes([byte; 16])
    }

    #[test]
    fn an_alias_change_names_the_alias_and_every_key_it_concerns() {
        let (old, new) = (key(1), key(2));
        let change = Change::UpdateAlias { alias: alias(new), previous_target: old };
        let names = change.invalidations();
        assert!(names.contains(&crate::invalidation::alias(&alias_arn(&alias(new)))));
        assert!(names.contains(&Invalidation::Key(old)));
        assert!(names.contains(&Invalidation::Key(new)));
        let deleted = Change::DeleteAlias { arn: alias_arn(&alias(old)), target: old };
        assert!(deleted.invalidations().contains(&Invalidation::Key(old)));
    }

    #[test]
    fn store_refusals_become_the_operations_exceptions() {
        let taken = Change::CreateAlias(alias(key(1))).refused(StoreError::AlreadyExists);
        assert!(matches!(taken, ServiceError::Kms(KmsError::AlreadyExists(_))));
        let gone = Change::DeleteAlias { arn: alias_arn(&alias(key(1))), target: key(1) }.refused(StoreError::NotFound);
        assert!(matches!(gone, ServiceError::Kms(KmsError::NotFound(NotFound::Alias(_)))));
        let tags = Change::PutTags { key_id: key(1), tags: Vec::new() }.refused(StoreError::LimitExceeded(50));
        assert!(matches!(tags, ServiceError::Kms(KmsError::LimitExceeded(Limit::TagsPerKey(50)))));
        let grant = Change::DeleteGrant { key_id: key(1), grant_id: "g".into() }.refused(StoreError::Conflict);
        assert!(matches!(grant, ServiceError::Store(StoreError::Conflict)));
    }
}
