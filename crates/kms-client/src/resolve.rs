//! Key resolution with a cache: a key reference (alias name, alias ARN, key id or key ARN) →
//! the key's ARN and its `DescribeKey` metadata, kept for a configurable time to live (default
//! one hour).
//!
//! One `DescribeKey` answers both questions, so a miss costs exactly one call, and concurrent
//! misses of one reference share that call (single flight). Hits are read in parallel. The cache
//! is `Send + Sync`; share it with an `Arc`.
//!
//! A cached answer goes stale when the key is disabled, deleted or its alias moves. A caller that
//! gets `NotFoundException`, `DisabledException` or `KMSInvalidStateException` from an operation
//! on a cached key reports it with [`KeyResolver::report`] (or lets [`KeyResolver::call`] do it),
//! and the next lookup asks KMS again.
//!
//! Time comes from a [`Clock`], so tests move it instead of sleeping.

mod cache;

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_sdk_kms::Client;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::types::KeyMetadata;

pub(crate) use cache::SingleFlight;

/// How long a resolved key is used before KMS is asked again, unless [`ResolverOptions`] says
/// otherwise.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// Error codes that mean "what you cached about this key is no longer true".
pub const STALE_KEY_ERRORS: [&str; 3] = ["NotFoundException", "DisabledException", "KMSInvalidStateException"];

/// Error codes worth trying again: the request may succeed a moment later.
pub const TRANSIENT_ERRORS: [&str; 5] = [
    "ThrottlingException",
    "KMSInternalException",
    "DependencyTimeoutException",
    "ServiceUnavailableException",
    "RequestLimitExceeded",
];

/// The source of "now" for time-to-live decisions and audit timestamps.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the client reads the wall clock
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn new(start: SystemTime) -> Self {
        Self { now: Mutex::new(start) }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What KMS said about a key reference.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// The key's id (a UUID, or `mrk-…` for multi-Region keys).
    pub key_id: String,
    /// The key's ARN: what to pass to operations so that an alias moving mid-way cannot change
    /// the key under you.
    pub key_arn: String,
    /// The whole `DescribeKey` answer.
    pub metadata: KeyMetadata,
}

/// A failed KMS call, reduced to what callers decide on. `Clone` so that every waiter of a
/// shared fetch gets it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KmsCallError {
    /// KMS answered with an exception.
    #[error("{code}: {message}")]
    Service {
        /// The exception name (`__type`), such as `NotFoundException`.
        code: String,
        /// The exception's message.
        message: String,
    },
    /// No answer: connection, timeout, or an answer that could not be read.
    #[error("no answer from KMS: {0}")]
    Transport(String),
    /// An answer without a field that it must have.
    #[error("KMS answered {operation} without {field}")]
    Incomplete {
        /// The operation.
        operation: &'static str,
        /// The missing field.
        field: &'static str,
    },
}

impl KmsCallError {
    /// Converts an SDK error.
    pub fn from_sdk<E, R>(error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match error {
            SdkError::ServiceError(service) => {
                let err = service.err();
                Self::Service {
                    code: err.code().unwrap_or("UnknownError").to_owned(),
                    message: err.message().unwrap_or_default().to_owned(),
                }
            }
            other => Self::Transport(causes(other)),
        }
    }

    /// The exception name, for service errors.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the call may succeed if tried again shortly (throttling, internal errors, no
    /// answer at all).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Service { code, .. } => TRANSIENT_ERRORS.contains(&code.as_str()),
            Self::Transport(_) => true,
            Self::Incomplete { .. } => false,
        }
    }

    /// Whether the error says that cached facts about the key are out of date.
    #[must_use]
    pub fn means_stale_key(&self) -> bool {
        self.code().is_some_and(is_stale_key_code)
    }
}

/// An error and its causes, each once, without debug dumps: fit for a log or an audit line.
fn causes(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = next.source();
    }
    parts.join(": ")
}

/// Whether an exception name says that cached facts about the key are out of date.
#[must_use]
pub fn is_stale_key_code(code: &str) -> bool {
    STALE_KEY_ERRORS.contains(&code)
}

/// Settings of a [`KeyResolver`].
#[derive(Clone)]
pub struct ResolverOptions {
    /// How long an answer is used. [default: one hour]
    pub ttl: Duration,
    /// Where "now" comes from. [default: the system clock]
    pub clock: Arc<dyn Clock>,
}

impl Default for ResolverOptions {
    fn default() -> Self {
        Self { ttl: DEFAULT_TTL, clock: Arc::new(SystemClock) }
    }
}

/// The error of [`KeyResolver::call`]: resolving the key, or the operation itself.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E: std::error::Error + 'static> {
    /// The key reference could not be resolved.
    #[error("resolving the key: {0}")]
    Resolve(#[source] KmsCallError),
    /// The operation failed (after one retry when a moved alias made the cached key stale).
    #[error("{0}")]
    Operation(#[source] E),
}

/// Resolves key references through `DescribeKey`, caching the answers.
pub struct KeyResolver {
    client: Client,
    cache: SingleFlight<String, Arc<KeyInfo>, KmsCallError>,
}

impl std::fmt::Debug for KeyResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyResolver").field("entries", &self.cache.len()).finish_non_exhaustive()
    }
}

impl KeyResolver {
    /// A resolver with a one-hour time to live and the system clock.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self::with_options(client, ResolverOptions::default())
    }

    /// A resolver with the given settings.
    #[must_use]
    pub fn with_options(client: Client, options: ResolverOptions) -> Self {
        Self { client, cache: SingleFlight::new(Some(options.ttl), options.clock) }
    }

    /// The client it calls KMS with.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Resolves an alias name (`alias/…`), alias ARN, key id or key ARN: from the cache when a
    /// fresh answer is there, else with one `DescribeKey` shared by all concurrent callers.
    ///
    /// # Errors
    /// `NotFoundException` for an unknown key or alias, `AccessDeniedException` when the caller
    /// may not `kms:DescribeKey`, or [`KmsCallError::Transport`]. Errors are not cached.
    pub async fn resolve(&self, reference: &str) -> Result<Arc<KeyInfo>, KmsCallError> {
        let key = reference.to_owned();
        self.cache.get_or_fetch(&key, || describe(&self.client, reference)).await
    }

    /// The cached answer for a reference, if fresh, without calling KMS.
    #[must_use]
    pub fn cached(&self, reference: &str) -> Option<Arc<KeyInfo>> {
        self.cache.fresh(&reference.to_owned())
    }

    /// Forgets a reference and every other reference cached for the same key (its other aliases,
    /// its id, its ARN). Returns how many entries were dropped.
    pub fn invalidate(&self, reference: &str) -> usize {
        let key = reference.to_owned();
        let arn = self.cache.fresh(&key).map(|info| info.key_arn.clone());
        let removed = usize::from(self.cache.remove(&key));
        match arn {
            Some(arn) => removed + self.cache.remove_where(|info| info.key_arn == arn),
            None => removed,
        }
    }

    /// Forgets every reference that resolved to this key ARN. Returns how many.
    pub fn invalidate_key(&self, key_arn: &str) -> usize {
        self.cache.remove_where(|info| info.key_arn == key_arn)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.cache.clear();
    }

    /// Reports the error of an operation that used `reference`: a `NotFoundException`,
    /// `DisabledException` or `KMSInvalidStateException` invalidates it (see
    /// [`invalidate`](Self::invalidate)); other errors are ignored. Returns whether it
    /// invalidated.
    pub fn report<E: ProvideErrorMetadata>(&self, reference: &str, error: &E) -> bool {
        self.report_code(reference, error.code())
    }

    /// [`report`](Self::report) for a bare exception name.
    pub fn report_code(&self, reference: &str, code: Option<&str>) -> bool {
        if code.is_some_and(is_stale_key_code) {
            self.invalidate(reference);
            true
        } else {
            false
        }
    }

    /// Runs `operation` with the resolved key. On a stale-key error the reference is
    /// invalidated; when it is an alias that now names another key, the operation runs once
    /// more with that key.
    ///
    /// # Errors
    /// [`CallError::Resolve`] when the reference does not resolve, [`CallError::Operation`] with
    /// the operation's own error otherwise.
    pub async fn call<T, E, F, Fut>(&self, reference: &str, mut operation: F) -> Result<T, CallError<E>>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        F: FnMut(Arc<KeyInfo>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let key = self.resolve(reference).await.map_err(CallError::Resolve)?;
        let error = match operation(key.clone()).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !self.report(reference, &error) {
            return Err(CallError::Operation(error));
        }
        match self.resolve(reference).await {
            Ok(fresh) if fresh.key_arn != key.key_arn => operation(fresh).await.map_err(CallError::Operation),
            _ => Err(CallError::Operation(error)),
        }
    }
}

/// One `DescribeKey`.
pub(crate) async fn describe(client: &Client, reference: &str) -> Result<Arc<KeyInfo>, KmsCallError> {
    let answer = client.describe_key().key_id(reference).send().await.map_err(|e| KmsCallError::from_sdk(&e))?;
    let metadata =
        answer.key_metadata.ok_or(KmsCallError::Incomplete { operation: "DescribeKey", field: "KeyMetadata" })?;
    let key_arn =
        metadata.arn.clone().ok_or(KmsCallError::Incomplete { operation: "DescribeKey", field: "KeyMetadata.Arn" })?;
    Ok(Arc::new(KeyInfo { key_id: metadata.key_id.clone(), key_arn, metadata }))
}
