//! A limit on requests that fail authentication, per source address.
//!
//! Such requests come from anyone who can reach the port, and each leaves an audit record that
//! is kept for years. Past a small burst, a source's failed requests are answered with
//! `ThrottlingException` and leave nothing but a counter; requests that authenticate are never
//! limited here, so a client that signs its requests is served from an address that also sends
//! garbage.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Sources tracked at once. Past this, the sources whose buckets are full again are forgotten;
/// if all are still in debt (many sources failing at once), new sources share one bucket, so
/// that the memory stays bounded whatever the number of addresses.
const MAX_SOURCES: usize = 10_000;

/// How often (at most) the map is swept for forgettable sources when it is full, in ms.
const SWEEP_INTERVAL_MILLIS: i64 = 1000;

/// Tokens are counted in thousandths, so that rates below one per millisecond refill smoothly.
const MILLI: u64 = 1000;

/// Where a request came from, as far as the limit is concerned: an IPv4 address, or the /64
/// prefix of an IPv6 address (one host usually has a whole /64 to choose addresses from).
#[derive(Clone, Copy, Hash, PartialEq, Eq, Debug)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into())),
            },
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    /// When it was last refilled (unix ms).
    at: i64,
}

struct Buckets {
    by_source: HashMap<Source, Bucket>,
    /// Shared by sources that arrive while the map is full of sources in debt.
    overflow: Bucket,
    last_sweep: i64,
}

/// Token buckets of failed-authentication requests, keyed by source.
pub(crate) struct FailedAuthLimiter {
    buckets: Mutex<Buckets>,
    /// Requests a source may fail in a burst.
    burst: u64,
    /// Failed requests per second a source may keep sending.
    per_second: u64,
    /// Requests refused by this limit.
    refused: AtomicU64,
}

impl FailedAuthLimiter {
    /// A limit of `burst` failures at once, refilled at `per_second`; a burst of 0 turns the
    /// limit off.
    pub(crate) fn new(burst: u32, per_second: u32) -> Self {
        let full = Bucket { milli_tokens: u64::from(burst) * MILLI, at: i64::MIN };
        Self {
            buckets: Mutex::new(Buckets { by_source: HashMap::new(), overflow: full, last_sweep: i64::MIN }),
            burst: u64::from(burst),
            per_second: u64::from(per_second),
            refused: AtomicU64::new(0),
        }
    }

    /// Takes one failed request from `ip`'s bucket at `now` (unix ms): whether it may be answered
    /// (and audited) normally. A refusal is counted.
    pub(crate) fn admit(&self, ip: IpAddr, now: i64) -> bool {
        if self.burst == 0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let source = Source::of(ip);
        if !buckets.by_source.contains_key(&source) {
            if buckets.by_source.len() >= MAX_SOURCES {
                self.sweep(&mut buckets, now);
            }
            if buckets.by_source.len() < MAX_SOURCES {
                buckets.by_source.insert(source, Bucket { milli_tokens: self.capacity(), at: now });
            }
        }
        let Buckets { by_source, overflow, .. } = &mut *buckets;
        let bucket = by_source.get_mut(&source).unwrap_or(overflow);
        self.refill(bucket, now);
        if bucket.milli_tokens >= MILLI {
            bucket.milli_tokens -= MILLI;
            return true;
        }
        drop(buckets);
        self.refused.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Whether `ip`'s bucket is empty at `now`: the web console's sign-in asks before it checks
    /// a secret, so that a source past its limit cannot keep guessing (nothing is taken).
    pub(crate) fn exhausted(&self, ip: IpAddr, now: i64) -> bool {
        if self.burst == 0 {
            return false;
        }
        let buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(bucket) = buckets
            .by_source
            .get(&Source::of(ip))
            .or_else(|| (buckets.by_source.len() >= MAX_SOURCES).then_some(&buckets.overflow))
        else {
            return false;
        };
        let mut bucket = *bucket;
        drop(buckets);
        self.refill(&mut bucket, now);
        bucket.milli_tokens < MILLI
    }

    /// Requests refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    fn capacity(&self) -> u64 {
        self.burst * MILLI
    }

    fn refill(&self, bucket: &mut Bucket, now: i64) {
        let elapsed = u64::try_from(now.saturating_sub(bucket.at)).unwrap_or(0);
        // per_second tokens a second = per_second thousandths a millisecond.
        let added = elapsed.saturating_mul(self.per_second);
        bucket.milli_tokens = bucket.milli_tokens.saturating_add(added).min(self.capacity());
        bucket.at = bucket.at.max(now);
    }

    /// Forgets the sources whose buckets are full again (they would start full anyway), at
    /// most once per [`SWEEP_INTERVAL_MILLIS`].
    fn sweep(&self, buckets: &mut Buckets, now: i64) {
        if now.saturating_sub(buckets.last_sweep) < SWEEP_INTERVAL_MILLIS {
            return;
        }
        buckets.last_sweep = now;
        buckets.by_source.retain(|_, bucket| {
            let mut bucket = *bucket;
            self.refill(&mut bucket, now);
            bucket.milli_tokens < self.capacity()
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_gets_its_burst_then_its_rate() {
        let limit = FailedAuthLimiter::new(3, 2);
        let now = 1_000_000;
        assert!((0..3).all(|_| limit.admit(ip("10.0.0.1"), now)));
        assert!(!limit.admit(ip("10.0.0.1"), now), "past the burst");
        assert!(limit.admit(ip("10.0.0.2"), now), "another source has its own bucket");
        assert!(limit.admit(ip("10.0.0.1"), now + 500), "one token back after half a second at 2/s");
        assert!(!limit.admit(ip("10.0.0.1"), now + 500));
        assert_eq!(limit.refused(), 2);
    }

    /// The console's sign-in asks before checking a guess: asking takes nothing, and a source
    /// is exhausted exactly when its next failure would be refused.
    #[test]
    fn exhausted_only_looks() {
        let limit = FailedAuthLimiter::new(2, 1);
        assert!(!limit.exhausted(ip("10.0.0.1"), 0), "an unknown source has its burst");
        assert!(limit.admit(ip("10.0.0.1"), 0));
        assert!(!limit.exhausted(ip("10.0.0.1"), 0));
        assert!(!limit.exhausted(ip("10.0.0.1"), 0), "asking took nothing");
        assert!(limit.admit(ip("10.0.0.1"), 0));
        assert!(limit.exhausted(ip("10.0.0.1"), 0));
        assert!(!limit.exhausted(ip("10.0.0.2"), 0));
        assert!(!limit.exhausted(ip("10.0.0.1"), 1000), "refilled at 1/s");
        assert!(!FailedAuthLimiter::new(0, 0).exhausted(ip("10.0.0.1"), 0), "a burst of 0 is no limit");
        assert_eq!(limit.refused(), 0);
    }

    #[test]
    fn ipv6_sources_are_their_64_bit_prefix() {
        let limit = FailedAuthLimiter::new(1, 1);
        assert!(limit.admit(ip("2001:db8::1"), 0));
        assert!(!limit.admit(ip("2001:db8::ffff:1234"), 0), "same /64");
        assert!(limit.admit(ip("2001:db8:0:1::1"), 0), "another /64");
        assert!(limit.admit(ip("::ffff:10.0.0.9"), 0));
        assert!(!limit.admit(ip("10.0.0.9"), 0), "an IPv4-mapped address is the IPv4 address");
    }

    /// Many sources failing at once do not grow the map past its bound: the newest share one
    /// bucket, and sources that recovered are forgotten to make room.
    #[test]
    fn the_map_is_bounded() {
        let limit = FailedAuthLimiter::new(1, 1);
        let source = |i: u32| IpAddr::V4(std::net::Ipv4Addr::from(i));
        for i in 0..u32::try_from(MAX_SOURCES).unwrap() {
            assert!(limit.admit(source(i), 0));
        }
        let extra = u32::try_from(MAX_SOURCES).unwrap();
        assert!(limit.admit(source(extra), 0), "the shared bucket's one token");
        assert!(!limit.admit(source(extra + 1), 0), "shared, and spent");
        assert_eq!(limit.buckets.lock().unwrap().by_source.len(), MAX_SOURCES);
        // A second later every bucket is full again: they are forgotten, and a new source gets
        // its own.
        assert!(limit.admit(source(extra + 2), 1000));
        assert_eq!(limit.buckets.lock().unwrap().by_source.len(), 1);
    }

    #[test]
    fn a_burst_of_zero_turns_the_limit_off() {
        let limit = FailedAuthLimiter::new(0, 0);
        assert!((0..100).all(|_| limit.admit(ip("10.0.0.1"), 0)));
    }
}
