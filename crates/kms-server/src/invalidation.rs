//! Cache invalidation: the one place that makes this node's caches forget what a change made
//! stale, whether the change was made here or, heard through the store's change feed
//! ([`kms_store::invalidation`]), on another node.
//!
//! Every cache that can grant access is covered: keys (with their policies, grants, state and
//! the authorization decisions cached on them), aliases, credentials (access keys, sessions,
//! the principals they act as, and derived signing keys) and identity policies. Each also
//! expires on its own after the cache TTL, the fallback should a change not be heard of.
//!
//! A change made here is invalidated before its store call and again after it returns (or is
//! abandoned): a request that reloaded an entry while the change was in flight read the old
//! state, and the second invalidation both removes what it may have cached and, through the
//! caches' epochs, stops it from caching it later.

use std::sync::Arc;

use kms_store::{Invalidation, StoreError};

use crate::service::Service;

/// Invalidates its changes when dropped: after the store call it wraps returned, failed, or
/// was abandoned half-way (a cancelled request).
struct AfterCommit<'a> {
    service: &'a Service,
    changes: &'a [Invalidation],
}

impl Drop for AfterCommit<'_> {
    fn drop(&mut self) {
        for change in self.changes {
            self.service.invalidate(change);
        }
    }
}

impl Service {
    /// Makes every cache on this node forget what `change` made stale.
    pub fn invalidate(&self, change: &Invalidation) {
        match change {
            Invalidation::Key(id) => self.cache.invalidate_key(*id),
            Invalidation::Alias { account, region, name } => self.cache.invalidate_alias(account, region, name),
            Invalidation::AccessKey(id) => self.auth.forget(std::slice::from_ref(id)),
            // A group's or managed policy's ARN: whoever it applies to (its members, what it
            // is attached to) decides anew; IAM changes are rare, so every principal's
            // identity policies are read again.
            Invalidation::Principal(arn) if crate::iam::applies_to_others(arn) => self.identity.clear(),
            Invalidation::Principal(arn) => {
                self.auth.forget_principal(arn);
                self.identity.forget(arn);
            }
            Invalidation::All => {
                self.cache.clear();
                self.auth.clear();
                self.identity.clear();
            }
        }
    }

    /// Runs a store call that makes `changes`, invalidating them before it starts and again
    /// once it has committed (or failed, or was abandoned).
    pub(crate) async fn committing<T>(&self, changes: &[Invalidation], change: impl Future<Output = T>) -> T {
        let _after = AfterCommit { service: self, changes };
        for change in changes {
            self.invalidate(change);
        }
        change.await
    }

    /// Sets how long cached keys, aliases, credentials and identity policies are trusted
    /// without hearing of a change (the fallback bound on staleness).
    pub fn set_cache_ttl_millis(&self, ttl: i64) {
        self.cache.set_ttl_millis(ttl);
        self.auth.set_ttl_millis(ttl);
        self.identity.set_ttl_millis(ttl);
    }
}

/// Follows the store's change feed (when it has one: a store that several nodes share),
/// applying each change to this node's caches until the service is dropped or the task is
/// aborted. The feed is listening when this returns.
///
/// # Errors
/// The store could not set up its feed.
pub async fn follow(service: &Arc<Service>) -> Result<Option<tokio::task::JoinHandle<()>>, StoreError> {
    let Some(mut feed) = service.store.invalidations().await? else { return Ok(None) };
    let weak = Arc::downgrade(service);
    Ok(Some(tokio::spawn(async move {
        while let Some(change) = feed.next().await {
            let Some(service) = weak.upgrade() else { return };
            tracing::debug!(?change, "invalidating");
            service.invalidate(&change);
        }
    })))
}

/// The invalidation of an alias.
pub(crate) fn alias(arn: &kms_core::ids::AliasArn) -> Invalidation {
    Invalidation::Alias { account: arn.account.clone(), region: arn.region.clone(), name: arn.name.clone() }
}
