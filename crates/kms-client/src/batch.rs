//! Batch key validation for compliance jobs that check many resources sharing a few keys.
//!
//! Within one [`BatchValidator::validate`] call:
//! - each distinct key reference costs exactly one `DescribeKey`, and each distinct key (by ARN)
//!   one `GetKeyPolicy` and, when a rule checks rotation, one `GetKeyRotationStatus`, however
//!   many resources use it and however many tasks ask at once (single flight);
//! - resources are checked with bounded concurrency;
//! - [`Mode::FailFast`] stops starting new resources after the first failing decision,
//!   [`Mode::CollectAll`] decides every resource;
//! - when the shared lookup of a key fails transiently (throttling, an internal error, no answer),
//!   each resource that uses the key looks it up on its own before it is declared an error;
//! - every decision is written as one JSON line to the audit writer, if one is set.
//!
//! The per-batch cache starts empty, so every batch sees the keys as they are now.

mod audit;
mod calls;
mod rules;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_kms::Client;
use aws_sdk_kms::types::{KeySpec, KeyState, OriginType};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use audit::AuditLine;
pub use calls::CallCounter;
pub use rules::{Check, CustomRule, KeyFacts, Needs, Rotation, Rule, default_rules};

use crate::resolve::{Clock, KeyInfo, KmsCallError, SingleFlight, SystemClock, describe};

/// Resources checked at once unless [`BatchOptions`] says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// A thing whose key is checked: a bucket, a table, a queue…
#[derive(Debug, Clone)]
pub struct Resource {
    /// Its name or ARN, as audit lines show it.
    pub id: String,
    /// Its key: alias name, alias ARN, key id or key ARN.
    pub key: String,
    /// What it expects of the key.
    pub rules: Arc<[Rule]>,
}

impl Resource {
    /// A resource with the [`default_rules`].
    pub fn new(id: impl Into<String>, key: impl Into<String>) -> Self {
        Self::with_rules(id, key, default_rules())
    }

    /// A resource with its own rules.
    pub fn with_rules(id: impl Into<String>, key: impl Into<String>, rules: impl Into<Arc<[Rule]>>) -> Self {
        Self { id: id.into(), key: key.into(), rules: rules.into() }
    }
}

/// Whether to stop at the first failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Decide every resource.
    #[default]
    CollectAll,
    /// After the first non-compliant or failed decision, start no more resources (those already
    /// being checked finish and are reported).
    FailFast,
}

/// The verdict on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every rule holds.
    Compliant,
    /// At least one rule fails, or the key does not exist.
    NonCompliant,
    /// The key could not be examined (access denied, KMS unreachable even for the resource's own
    /// lookup).
    Error,
}

impl Decision {
    /// `COMPLIANT`, `NON_COMPLIANT` or `ERROR`, as in audit lines.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compliant => "COMPLIANT",
            Self::NonCompliant => "NON_COMPLIANT",
            Self::Error => "ERROR",
        }
    }
}

/// How the key facts behind a decision were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// From the batch's shared lookup.
    Batch,
    /// From the resource's own lookup after the shared one failed transiently.
    Fallback,
}

impl Lookup {
    /// `batch` or `fallback`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Fallback => "fallback",
        }
    }
}

/// The decision on one resource.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The resource's id.
    pub resource: String,
    /// The key reference it named.
    pub key: String,
    /// The key's ARN, when the key was found.
    pub key_arn: Option<String>,
    /// The verdict.
    pub decision: Decision,
    /// Why it is not compliant, or what failed; empty when compliant.
    pub reasons: Vec<String>,
    /// Where the facts came from.
    pub lookup: Lookup,
}

/// The result of one batch.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    /// Decided resources, in the order they were given.
    pub outcomes: Vec<Outcome>,
    /// Resources not decided because [`Mode::FailFast`] stopped the batch, in the order given.
    pub skipped: Vec<String>,
}

impl BatchReport {
    /// How many outcomes have this decision.
    #[must_use]
    pub fn count(&self, decision: Decision) -> usize {
        self.outcomes.iter().filter(|o| o.decision == decision).count()
    }

    /// Whether every resource was decided compliant.
    #[must_use]
    pub fn all_compliant(&self) -> bool {
        self.skipped.is_empty() && self.outcomes.iter().all(|o| o.decision == Decision::Compliant)
    }
}

/// Settings of a [`BatchValidator`].
#[derive(Clone)]
pub struct BatchOptions {
    /// Resources checked at once. [default: 16]
    pub concurrency: usize,
    /// Fail fast or collect all. [default: collect all]
    pub mode: Mode,
    /// Timestamps of audit lines. [default: the system clock]
    pub clock: Arc<dyn Clock>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self { concurrency: DEFAULT_CONCURRENCY, mode: Mode::CollectAll, clock: Arc::new(SystemClock) }
    }
}

/// Where audit lines go; clones share one writer and lines never interleave.
#[derive(Clone)]
pub struct AuditWriter(Arc<Mutex<Box<dyn Write + Send>>>);

impl AuditWriter {
    /// Writes lines to `writer` (a file, stdout, a `Vec<u8>` behind your own sharing…).
    pub fn new(writer: impl Write + Send + 'static) -> Self {
        Self(Arc::new(Mutex::new(Box::new(writer))))
    }

    fn write_line(&self, line: &str) -> std::io::Result<()> {
        let mut writer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        writer.write_all(line.as_bytes())?;
        writer.write_all(b"\n")?;
        writer.flush()
    }
}

/// Validates the keys of many resources; see the [module documentation](self).
#[derive(Clone)]
pub struct BatchValidator {
    client: Client,
    options: BatchOptions,
    audit: Option<AuditWriter>,
}

/// The state one batch shares between its tasks.
struct BatchState {
    client: Client,
    needs: Needs,
    keys: SingleFlight<String, Arc<KeyInfo>, KmsCallError>,
    extras: SingleFlight<String, Extras, KmsCallError>,
    /// References whose shared lookup failed, and how: later resources do not repeat it.
    failed: Mutex<HashMap<String, KmsCallError>>,
}

#[derive(Debug, Clone, Default)]
struct Extras {
    policy: Option<serde_json::Value>,
    rotation: Option<Rotation>,
}

impl BatchValidator {
    /// A validator with the default options and no audit output.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self::with_options(client, BatchOptions::default())
    }

    /// A validator with the given options.
    #[must_use]
    pub fn with_options(client: Client, options: BatchOptions) -> Self {
        Self { client, options, audit: None }
    }

    /// Writes one JSON line per decision to `writer`.
    #[must_use]
    pub fn with_audit(mut self, writer: AuditWriter) -> Self {
        self.audit = Some(writer);
        self
    }

    /// Checks every resource (or, failing fast, until the first failure) and reports the
    /// decisions. Never fails as a whole: a key that cannot be examined makes its resources'
    /// decisions [`Decision::Error`]. An audit line that cannot be written is logged with
    /// `tracing` and the batch goes on.
    pub async fn validate(&self, resources: Vec<Resource>) -> BatchReport {
        let needs = rules::needs_of(resources.iter().flat_map(|r| r.rules.iter()));
        let state = Arc::new(BatchState {
            client: self.client.clone(),
            needs,
            keys: SingleFlight::new(None, self.options.clock.clone()),
            extras: SingleFlight::new(None, self.options.clock.clone()),
            failed: Mutex::new(HashMap::new()),
        });
        let permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let stop = Arc::new(AtomicBool::new(false));
        let total = resources.len();
        let mut tasks = JoinSet::new();
        for (index, resource) in resources.into_iter().enumerate() {
            let (state, permits, stop) = (state.clone(), permits.clone(), stop.clone());
            let (mode, audit, clock) = (self.options.mode, self.audit.clone(), self.options.clock.clone());
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = permits.acquire_owned().await.ok();
                if stop.load(Ordering::SeqCst) {
                    return (index, Err(resource.id));
                }
                let outcome = state.decide(&resource).await;
                if mode == Mode::FailFast && outcome.decision != Decision::Compliant {
                    stop.store(true, Ordering::SeqCst);
                }
                if let Some(audit) = &audit {
                    let line = AuditLine::of(&outcome, clock.now()).to_json();
                    if let Err(e) = audit.write_line(&line) {
                        tracing::error!(resource = %outcome.resource, "cannot write the audit line: {e}");
                    }
                }
                (index, Ok(outcome))
            });
        }
        let mut slots: Vec<Option<Result<Outcome, String>>> = (0..total).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => {
                    if let Some(slot) = slots.get_mut(index) {
                        *slot = Some(result);
                    }
                }
                Err(e) => tracing::error!("a validation task failed: {e}"),
            }
        }
        let mut report = BatchReport::default();
        for slot in slots.into_iter().flatten() {
            match slot {
                Ok(outcome) => report.outcomes.push(outcome),
                Err(id) => report.skipped.push(id),
            }
        }
        report
    }
}

impl BatchState {
    async fn decide(&self, resource: &Resource) -> Outcome {
        let (lookup, facts) = match self.shared_facts(&resource.key).await {
            Ok(facts) => (Lookup::Batch, Ok(facts)),
            Err(e) if e.is_transient() => {
                tracing::warn!(key = %resource.key, resource = %resource.id, "batch lookup failed ({e}); looking up alone");
                (Lookup::Fallback, self.own_facts(&resource.key).await)
            }
            Err(e) => (Lookup::Batch, Err(e)),
        };
        let mut outcome = Outcome {
            resource: resource.id.clone(),
            key: resource.key.clone(),
            key_arn: None,
            decision: Decision::Compliant,
            reasons: Vec::new(),
            lookup,
        };
        match facts {
            Ok(facts) => {
                outcome.key_arn = Some(facts.key.key_arn.clone());
                outcome.reasons = resource.rules.iter().filter_map(|rule| rule.check(&facts).err()).collect();
                if !outcome.reasons.is_empty() {
                    outcome.decision = Decision::NonCompliant;
                }
            }
            Err(e) => {
                outcome.decision =
                    if e.code() == Some("NotFoundException") { Decision::NonCompliant } else { Decision::Error };
                outcome.reasons.push(format!("key lookup failed: {e}"));
            }
        }
        outcome
    }

    /// The key's facts through the batch's single-flight caches; a failure is remembered so that
    /// no other resource repeats the shared lookup.
    async fn shared_facts(&self, reference: &str) -> Result<KeyFacts, KmsCallError> {
        if let Some(failure) = self.failed.lock().unwrap_or_else(PoisonError::into_inner).get(reference) {
            return Err(failure.clone());
        }
        let result: Result<KeyFacts, KmsCallError> = async {
            let key = self.keys.get_or_fetch(&reference.to_owned(), || describe(&self.client, reference)).await?;
            let extras = self.extras.get_or_fetch(&key.key_arn, || extras(&self.client, &key, self.needs)).await?;
            Ok(KeyFacts { key, policy: extras.policy, rotation: extras.rotation })
        }
        .await;
        if let Err(e) = &result {
            self.failed.lock().unwrap_or_else(PoisonError::into_inner).entry(reference.to_owned()).or_insert(e.clone());
        }
        result
    }

    /// The key's facts looked up for one resource alone, bypassing the batch's caches.
    async fn own_facts(&self, reference: &str) -> Result<KeyFacts, KmsCallError> {
        let key = describe(&self.client, reference).await?;
        let extras = extras(&self.client, &key, self.needs).await?;
        Ok(KeyFacts { key, policy: extras.policy, rotation: extras.rotation })
    }
}

/// `GetKeyPolicy` and `GetKeyRotationStatus`, as far as `needs` asks.
async fn extras(client: &Client, key: &KeyInfo, needs: Needs) -> Result<Extras, KmsCallError> {
    let mut extras = Extras::default();
    if needs.policy {
        let answer = client
            .get_key_policy()
            .key_id(&key.key_arn)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| KmsCallError::from_sdk(&e))?;
        let text = answer.policy.ok_or(KmsCallError::Incomplete { operation: "GetKeyPolicy", field: "Policy" })?;
        let parsed = serde_json::from_str(&text)
            .map_err(|_| KmsCallError::Incomplete { operation: "GetKeyPolicy", field: "Policy (as JSON)" })?;
        extras.policy = Some(parsed);
    }
    if needs.rotation {
        extras.rotation = Some(match rotation_not_applicable(key) {
            Some(why) => Rotation::NotApplicable(why),
            None => {
                let answer = client
                    .get_key_rotation_status()
                    .key_id(&key.key_arn)
                    .send()
                    .await
                    .map_err(|e| KmsCallError::from_sdk(&e))?;
                if answer.key_rotation_enabled { Rotation::Enabled } else { Rotation::Disabled }
            }
        });
    }
    Ok(extras)
}

/// Why `GetKeyRotationStatus` would be refused, so that it is not called.
fn rotation_not_applicable(key: &KeyInfo) -> Option<String> {
    let metadata = &key.metadata;
    if metadata.key_spec.as_ref() != Some(&KeySpec::SymmetricDefault) {
        return Some(format!("key spec {}", metadata.key_spec.as_ref().map_or("unknown", KeySpec::as_str)));
    }
    if metadata.origin.as_ref() == Some(&OriginType::External) {
        return Some("imported key material".to_owned());
    }
    match &metadata.key_state {
        Some(KeyState::Enabled | KeyState::Disabled) => None,
        Some(state) => Some(format!("key state {}", state.as_str())),
        None => Some("unknown key state".to_owned()),
    }
}

/// The distinct key references of a set of resources, for planning and reporting.
#[must_use]
pub fn distinct_keys(resources: &[Resource]) -> HashSet<&str> {
    resources.iter().map(|r| r.key.as_str()).collect()
}
