//! A map whose misses are fetched once: concurrent lookups of one key share one in-flight fetch,
//! and hits are read in parallel under a read lock.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use tokio::sync::OnceCell;

use super::Clock;

struct Entry<V> {
    value: V,
    stored: SystemTime,
}

/// The result every waiter of one fetch receives.
type Shared<V, E> = Arc<OnceCell<Result<V, E>>>;

/// A cache with a time to live in which a miss is fetched by exactly one caller while the others
/// wait for that fetch (single flight).
pub(crate) struct SingleFlight<K, V, E> {
    entries: RwLock<HashMap<K, Entry<V>>>,
    in_flight: Mutex<HashMap<K, Shared<V, E>>>,
    ttl: Option<Duration>,
    clock: Arc<dyn Clock>,
}

impl<K, V, E> SingleFlight<K, V, E>
where
    K: Eq + Hash + Clone,
    V: Clone,
    E: Clone,
{
    /// `ttl: None` keeps entries until they are invalidated.
    pub(crate) fn new(ttl: Option<Duration>, clock: Arc<dyn Clock>) -> Self {
        Self { entries: RwLock::new(HashMap::new()), in_flight: Mutex::new(HashMap::new()), ttl, clock }
    }

    /// A fresh cached value, if any.
    pub(crate) fn fresh(&self, key: &K) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(key)?;
        let fresh = match self.ttl {
            None => true,
            // A clock that went backwards makes the entry stale rather than immortal.
            Some(ttl) => self.clock.now().duration_since(entry.stored).is_ok_and(|age| age < ttl),
        };
        fresh.then(|| entry.value.clone())
    }

    /// The cached value, or the result of `fetch` run once for all concurrent callers of `key`.
    /// Errors are shared with the callers that waited for the failed fetch but are not cached.
    pub(crate) async fn get_or_fetch<F, Fut>(&self, key: &K, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(hit) = self.fresh(key) {
            return Ok(hit);
        }
        let cell = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            in_flight.entry(key.clone()).or_insert_with(|| Arc::new(OnceCell::new())).clone()
        };
        let result = cell
            .get_or_init(|| async {
                // A fetch that finished between our miss and our joining may have stored it.
                if let Some(hit) = self.fresh(key) {
                    return Ok(hit);
                }
                let result = fetch().await;
                if let Ok(value) = &result {
                    self.store(key.clone(), value.clone());
                }
                result
            })
            .await
            .clone();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if in_flight.get(key).is_some_and(|current| Arc::ptr_eq(current, &cell)) {
            in_flight.remove(key);
        }
        result
    }

    /// Stores a value fetched elsewhere.
    pub(crate) fn store(&self, key: K, value: V) {
        let stored = self.clock.now();
        self.entries.write().unwrap_or_else(PoisonError::into_inner).insert(key, Entry { value, stored });
    }

    /// Drops one entry; returns whether there was one.
    pub(crate) fn remove(&self, key: &K) -> bool {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(key).is_some()
    }

    /// Drops every entry whose value matches; returns how many.
    pub(crate) fn remove_where(&self, mut matches: impl FnMut(&V) -> bool) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let before = entries.len();
        entries.retain(|_, entry| !matches(&entry.value));
        before - entries.len()
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// How many entries are held (fresh or not).
    pub(crate) fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}
