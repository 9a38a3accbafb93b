//! Quotas: request rates (token buckets per account, region and operation class, answered with
//! `ThrottlingException`) and resources (keys, aliases and grants, answered with
//! `LimitExceededException`).
//!
//! Buckets read the injected clock, so tests move a manual clock instead of sleeping. See
//! `docs/adr/0003-request-quotas.md` for why request quotas are off unless asked for.

use std::collections::HashMap;
use std::sync::Mutex;

use kms_api::{ApiError, Exception, Operation, QuotaClass};
use kms_core::error::Limit;
use kms_core::ids::{AccountId, AliasName, KeyId, Region};
use kms_core::{KmsError, Timestamp};

use crate::error::ServiceError;

/// The message of a throttled request, as AWS KMS words it (its throttling guide; other AWS
/// services answer `Rate exceeded`, KMS does not).
pub const THROTTLED: &str = "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// The class shared by the symmetric cryptographic operations (one quota for all of them).
pub const SYMMETRIC_CRYPTOGRAPHIC: &str = "cryptographic_symmetric";

/// AWS KMS's default rate for the shared symmetric cryptographic quota (requests per second,
/// per account and region); the regions of [`SYMMETRIC_BY_REGION`] allow more, and
/// [`RequestQuotas::aws`] follows them.
pub const SYMMETRIC_DEFAULT_RATE: u32 = 10_000;

/// AWS KMS's documented default request quotas, by class (requests per second, per account and
/// region), from the operation table: the shared symmetric class, then every operation with a
/// quota of its own.
pub fn aws_request_quotas() -> impl Iterator<Item = (&'static str, u32)> {
    std::iter::once((SYMMETRIC_CRYPTOGRAPHIC, SYMMETRIC_DEFAULT_RATE)).chain(Operation::ALL.iter().filter_map(|op| {
        match op.quota_class() {
            QuotaClass::Own(rate) => Some((op.name(), rate)),
            QuotaClass::Symmetric | QuotaClass::Unlisted => None,
        }
    }))
}

/// The regions whose shared symmetric quota is above AWS's default (requests per second).
pub const SYMMETRIC_BY_REGION: &[(&str, u32)] = &[
    ("us-east-1", 100_000),
    ("us-west-2", 100_000),
    ("eu-west-1", 100_000),
    ("us-east-2", 20_000),
    ("ap-southeast-1", 20_000),
    ("ap-southeast-2", 20_000),
    ("ap-northeast-1", 20_000),
    ("eu-central-1", 20_000),
    ("eu-west-2", 20_000),
];

/// The quota class of an operation: the shared symmetric class for cryptographic operations,
/// the operation's own name for the others in AWS's table, `None` for operations AWS does not
/// list (they are not throttled).
pub fn class_of(operation: &str) -> Option<&'static str> {
    let op = Operation::from_name(operation)?;
    match op.quota_class() {
        QuotaClass::Symmetric => Some(SYMMETRIC_CRYPTOGRAPHIC),
        QuotaClass::Own(_) => Some(op.name()),
        QuotaClass::Unlisted => None,
    }
}

/// Why a request-quota setting is not acceptable.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown request quota class '{0}' (expected {SYMMETRIC_CRYPTOGRAPHIC} or an operation name such as CreateKey)"
)]
pub struct UnknownClass(pub String);

/// Requests per second allowed for each operation class (per account and region). A class
/// absent from the table, or set to 0, is not throttled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestQuotas {
    rates: HashMap<&'static str, u32>,
    /// Whether the symmetric class follows AWS's regional values ([`SYMMETRIC_BY_REGION`])
    /// rather than one rate for every region (until it is set explicitly).
    symmetric_by_region: bool,
}

impl RequestQuotas {
    /// AWS KMS's documented defaults ([`aws_request_quotas`], and [`SYMMETRIC_BY_REGION`] for
    /// the shared symmetric class).
    pub fn aws() -> Self {
        Self { rates: aws_request_quotas().collect(), symmetric_by_region: true }
    }

    /// Sets one class's rate (0: not throttled).
    ///
    /// # Errors
    /// [`UnknownClass`] for a name that is neither the symmetric class nor an operation in AWS's
    /// table.
    pub fn set(&mut self, class: &str, per_second: u32) -> Result<(), UnknownClass> {
        let known = aws_request_quotas().map(|(known, _)| known).find(|known| *known == class);
        let class = known.ok_or_else(|| UnknownClass(class.to_owned()))?;
        if class == SYMMETRIC_CRYPTOGRAPHIC {
            // A configured symmetric rate applies in every region.
            self.symmetric_by_region = false;
        }
        self.rates.insert(class, per_second);
        Ok(())
    }

    /// The rate of a class outside the regions with their own symmetric quota, if it is
    /// throttled.
    pub fn rate(&self, class: &str) -> Option<u32> {
        self.rates.get(class).copied().filter(|r| *r > 0)
    }

    /// The rate of a class in a region, if it is throttled.
    pub fn rate_in(&self, class: &str, region: &str) -> Option<u32> {
        let regional = (self.symmetric_by_region && class == SYMMETRIC_CRYPTOGRAPHIC)
            .then(|| SYMMETRIC_BY_REGION.iter().find(|(r, _)| *r == region).map(|(_, rate)| *rate))
            .flatten();
        regional.or_else(|| self.rate(class))
    }
}

/// One bucket: `tokens` (in thousandths, to refill per millisecond without floats) as of `at`.
struct Bucket {
    milli_tokens: u64,
    at: i64,
}

/// The token buckets of every (account, region, class) that has sent a request.
pub struct RequestLimiter {
    quotas: RequestQuotas,
    buckets: Mutex<HashMap<(AccountId, Region, &'static str), Bucket>>,
}

impl RequestLimiter {
    /// Buckets for these quotas, each starting full.
    pub fn new(quotas: RequestQuotas) -> Self {
        Self { quotas, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes one token from the bucket of the request's account, region and operation class.
    /// A bucket holds one second's worth of requests and refills continuously.
    ///
    /// # Errors
    /// `ThrottlingException`, with the message AWS KMS gives, when the bucket is empty.
    pub fn admit(&self, account: &AccountId, region: &Region, operation: &str, now: Timestamp) -> Result<(), ApiError> {
        let Some(class) = class_of(operation) else { return Ok(()) };
        let Some(rate) = self.quotas.rate_in(class, region.as_str()) else { return Ok(()) };
        let capacity = u64::from(rate) * 1000;
        let now = now.unix_millis();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets
            .entry((account.clone(), region.clone(), class))
            .or_insert(Bucket { milli_tokens: capacity, at: now });
        let elapsed = u64::try_from(now.saturating_sub(bucket.at)).unwrap_or(0);
        // `rate` tokens per 1000 ms = `rate` milli-tokens per millisecond.
        bucket.milli_tokens = bucket.milli_tokens.saturating_add(elapsed.saturating_mul(u64::from(rate))).min(capacity);
        bucket.at = bucket.at.max(now);
        if bucket.milli_tokens < 1000 {
            return Err(ApiError::with_message(Exception::Throttling, THROTTLED));
        }
        bucket.milli_tokens -= 1000;
        Ok(())
    }
}

/// Resource quotas per account and region (AWS's defaults unless configured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceQuotas {
    /// Customer managed keys per account and region, in every key state (AWS: 100,000).
    pub keys: usize,
    /// Aliases per KMS key (AWS: 50).
    pub aliases_per_key: usize,
    /// Aliases per account and region; AWS no longer documents one, so none by default.
    pub aliases: Option<usize>,
    /// Grants per KMS key (AWS: 50,000).
    pub grants_per_key: usize,
    /// Grants for one grantee principal per KMS key (AWS: 500).
    pub grants_per_principal: usize,
}

impl Default for ResourceQuotas {
    fn default() -> Self {
        Self { keys: 100_000, aliases_per_key: 50, aliases: None, grants_per_key: 50_000, grants_per_principal: 500 }
    }
}

/// How long a cached key count is trusted before the store is counted again (it is also
/// counted again whenever the cached value says the quota is reached, so a stale count never
/// refuses a key that would fit).
const KEY_COUNT_TTL_MILLIS: i64 = 30_000;

/// Per account and region: how many keys the store held when last counted, plus those created
/// through this node since.
#[derive(Default)]
pub struct KeyCounts(Mutex<HashMap<(AccountId, Region), (usize, i64)>>);

impl KeyCounts {
    /// The cached count, if it is fresh.
    pub fn cached(&self, account: &AccountId, region: &Region, now: Timestamp) -> Option<usize> {
        let counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts
            .get(&(account.clone(), region.clone()))
            .filter(|(_, at)| now.unix_millis().saturating_sub(*at) < KEY_COUNT_TTL_MILLIS)
            .map(|(n, _)| *n)
    }

    /// Records a fresh count from the store.
    pub fn counted(&self, account: &AccountId, region: &Region, n: usize, now: Timestamp) {
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.insert((account.clone(), region.clone()), (n, now.unix_millis()));
    }

    /// Forgets every count (after a reset, which deleted every key).
    pub fn forget(&self) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// Notes a key created through this node.
    pub fn created(&self, account: &AccountId, region: &Region) {
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((n, _)) = counts.get_mut(&(account.clone(), region.clone())) {
            *n += 1;
        }
    }
}

/// Everything the service needs to enforce quotas.
#[derive(Default)]
pub struct Quotas {
    /// Request-rate buckets; `None` throttles nothing.
    pub requests: Option<RequestLimiter>,
    /// Resource quotas.
    pub resources: ResourceQuotas,
    /// Cached key counts for the key quota.
    pub key_counts: KeyCounts,
}

impl Quotas {
    /// Quotas as configured.
    pub fn new(requests: Option<RequestQuotas>, resources: ResourceQuotas) -> Self {
        Self { requests: requests.map(RequestLimiter::new), resources, key_counts: KeyCounts::default() }
    }

    /// Admits a request or throttles it (always admits when request quotas are off).
    ///
    /// # Errors
    /// `ThrottlingException` when the class's bucket is empty.
    pub fn admit(&self, account: &AccountId, region: &Region, operation: &str, now: Timestamp) -> Result<(), ApiError> {
        match &self.requests {
            Some(limiter) => limiter.admit(account, region, operation, now),
            None => Ok(()),
        }
    }
}

/// What an alias operation does to the number of aliases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AliasChange {
    /// CreateAlias: one more alias.
    Create,
    /// UpdateAlias: an existing alias points at another key.
    Retarget,
}

/// How many records a quota count reads from the store at a time.
const COUNT_PAGE: usize = 1000;

impl crate::service::Service {
    /// Checks that the account and region may have one more customer managed key. Keys in
    /// every state count, as in AWS. The count is cached (and bumped by each CreateKey through
    /// this node), and counted again from the store when stale or when it says the quota is
    /// reached.
    ///
    /// # Errors
    /// `LimitExceededException` at the quota; store errors.
    pub(crate) async fn ensure_room_for_key(&self, account: &AccountId, region: &Region) -> Result<(), ServiceError> {
        let limit = self.quotas.resources.keys;
        let now = self.clock.now();
        if self.quotas.key_counts.cached(account, region, now).is_some_and(|n| n < limit) {
            return Ok(());
        }
        let mut n = 0;
        let mut after = None;
        loop {
            let page = self.store.list_keys(account, region, after, COUNT_PAGE).await?;
            n += page.len();
            match page.last() {
                Some(last) if page.len() == COUNT_PAGE && n < limit => after = Some(*last),
                _ => break,
            }
        }
        self.quotas.key_counts.counted(account, region, n, now);
        if n >= limit {
            return Err(KmsError::LimitExceeded(Limit::Keys { limit, usage: n }).into());
        }
        Ok(())
    }

    /// Notes a key created, for the cached key count.
    pub(crate) fn key_created(&self, account: &AccountId, region: &Region) {
        self.quotas.key_counts.created(account, region);
    }

    /// Checks that one more alias may point at `target` and, for a new alias (not one moved
    /// from another key), that the account and region may have one more, when that is limited.
    ///
    /// # Errors
    /// `LimitExceededException` at a quota; store errors.
    pub(crate) async fn ensure_room_for_alias(
        &self,
        account: &AccountId,
        region: &Region,
        target: KeyId,
        change: AliasChange,
    ) -> Result<(), ServiceError> {
        let per_key = self.quotas.resources.aliases_per_key;
        let on_key = self.store.list_aliases(account, region, Some(target), None, per_key).await?.len();
        if on_key >= per_key {
            return Err(KmsError::LimitExceeded(Limit::AliasesPerKey { limit: per_key, usage: on_key }).into());
        }
        let Some(limit) = self.quotas.resources.aliases else { return Ok(()) };
        if change == AliasChange::Retarget {
            return Ok(());
        }
        let mut n = 0;
        let mut after: Option<AliasName> = None;
        loop {
            let page = self.store.list_aliases(account, region, None, after.as_ref(), COUNT_PAGE).await?;
            n += page.len();
            match page.last() {
                Some(last) if page.len() == COUNT_PAGE && n < limit => after = Some(last.name.clone()),
                _ => break,
            }
        }
        if n >= limit {
            return Err(KmsError::LimitExceeded(Limit::Aliases(limit)).into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    #[test]
    fn a_bucket_holds_one_second_and_refills_continuously() {
        let mut quotas = RequestQuotas::default();
        quotas.set("CreateKey", 2).unwrap();
        let limiter = RequestLimiter::new(quotas);
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let other = Region::parse("eu-west-1").unwrap();
        assert!(limiter.admit(&account, &region, "CreateKey", at(0)).is_ok());
        assert!(limiter.admit(&account, &region, "CreateKey", at(0)).is_ok());
        let e = limiter.admit(&account, &region, "CreateKey", at(0)).unwrap_err();
        assert_eq!(e.exception, Exception::Throttling);
        assert_eq!(e.message.as_deref(), Some(THROTTLED));
        // Another region has its own bucket; an unthrottled class is never refused.
        assert!(limiter.admit(&account, &other, "CreateKey", at(0)).is_ok());
        assert!(limiter.admit(&account, &region, "ListKeys", at(0)).is_ok());
        // Half a second refills one request at 2/s.
        assert!(limiter.admit(&account, &region, "CreateKey", at(499)).is_err());
        assert!(limiter.admit(&account, &region, "CreateKey", at(500)).is_ok());
        assert!(limiter.admit(&account, &region, "CreateKey", at(500)).is_err());
        // A long pause refills no more than one second's worth.
        for _ in 0..2 {
            assert!(limiter.admit(&account, &region, "CreateKey", at(60_000)).is_ok());
        }
        assert!(limiter.admit(&account, &region, "CreateKey", at(60_000)).is_err());
    }

    #[test]
    fn symmetric_operations_share_one_class() {
        let mut quotas = RequestQuotas::default();
        quotas.set(SYMMETRIC_CRYPTOGRAPHIC, 1).unwrap();
        let limiter = RequestLimiter::new(quotas);
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        assert!(limiter.admit(&account, &region, "Encrypt", at(0)).is_ok());
        assert!(limiter.admit(&account, &region, "Decrypt", at(0)).is_err());
        assert!(limiter.admit(&account, &region, "GenerateDataKey", at(0)).is_err());
    }

    #[test]
    fn aws_defaults_and_unknown_classes() {
        let aws = RequestQuotas::aws();
        assert_eq!(aws.rate(SYMMETRIC_CRYPTOGRAPHIC), Some(10_000));
        assert_eq!(aws.rate("CreateKey"), Some(5));
        assert_eq!(aws.rate("DescribeKey"), Some(2_000));
        assert_eq!(aws.rate("ListKeys"), Some(500));
        assert_eq!(aws.rate("ScheduleKeyDeletion"), Some(15));
        assert_eq!(aws.rate("GetKeyLastUsage"), Some(5));
        assert!(RequestQuotas::default().set("Nope", 1).is_err());
        assert_eq!(class_of("ReEncrypt"), Some(SYMMETRIC_CRYPTOGRAPHIC));
        assert_eq!(class_of("GenerateRandom"), Some(SYMMETRIC_CRYPTOGRAPHIC));
        assert_eq!(class_of("CreateGrant"), Some("CreateGrant"));
        assert_eq!(class_of("GetKeyLastUsage"), Some("GetKeyLastUsage"));
        assert_eq!(class_of("ListRetirableGrants"), Some("ListRetirableGrants"));
        let mut off = RequestQuotas::aws();
        off.set("CreateKey", 0).unwrap();
        assert_eq!(off.rate("CreateKey"), None);
    }

    /// The shared symmetric quota follows AWS's regional values until it is configured, and
    /// then the configured value holds everywhere; other classes have no regional values.
    #[test]
    fn the_symmetric_quota_depends_on_the_region() {
        let aws = RequestQuotas::aws();
        assert_eq!(aws.rate_in(SYMMETRIC_CRYPTOGRAPHIC, "us-east-1"), Some(100_000));
        assert_eq!(aws.rate_in(SYMMETRIC_CRYPTOGRAPHIC, "eu-central-1"), Some(20_000));
        assert_eq!(aws.rate_in(SYMMETRIC_CRYPTOGRAPHIC, "sa-east-1"), Some(10_000));
        assert_eq!(aws.rate_in("CreateKey", "us-east-1"), Some(5));
        let mut configured = RequestQuotas::aws();
        configured.set(SYMMETRIC_CRYPTOGRAPHIC, 300).unwrap();
        assert_eq!(configured.rate_in(SYMMETRIC_CRYPTOGRAPHIC, "us-east-1"), Some(300));
        assert_eq!(configured.rate_in(SYMMETRIC_CRYPTOGRAPHIC, "sa-east-1"), Some(300));
        // Throttled at the region's rate: 20,000 in a second in eu-central-1, not 20,001.
        let limiter = RequestLimiter::new(RequestQuotas::aws());
        let account = AccountId::parse("111122223333").unwrap();
        let region = Region::parse("eu-central-1").unwrap();
        for _ in 0..20_000 {
            assert!(limiter.admit(&account, &region, "Encrypt", at(0)).is_ok());
        }
        assert!(limiter.admit(&account, &region, "Decrypt", at(0)).is_err());
    }
}
