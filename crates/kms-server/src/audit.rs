//! The audit trail as the service writes it: a CloudTrail-shaped event per request, written
//! off the request path in small batches, chained in the store, with periodic signed digests.
//!
//! Two paths into the chain:
//! - A successful control-plane change (CreateKey, PutKeyPolicy, ScheduleKeyDeletion, the admin
//!   API, AssumeRole…) builds its event before committing, from the request's [`AuditDraft`],
//!   and hands it to the store call that makes the change, which appends it in the same
//!   transaction: the change is never without its record, nor the record without its change.
//!   The draft then notes it, and the listener records nothing more for that request.
//! - Everything else (failed requests, reads, cryptographic operations, changes that turned out
//!   to change nothing) goes through the batching writer below when the response is sent.
//!
//! Durability bound of the second path: an event is handed to the writer when its response is
//! sent; the writer commits whatever has arrived every [`LINGER`] (or sooner when [`MAX_BATCH`]
//! events are waiting). A crash therefore loses at most the events of the last [`LINGER`] plus
//! the batch being committed, and never more than [`QUEUE_CAPACITY`] + [`MAX_BATCH`] events
//! (requests wait for room in the queue rather than outrun the writer); a clean shutdown writes
//! everything before it completes. Records
//! of the first path are never lost, but they may precede in the chain the records of requests
//! answered just before them that are still waiting for the writer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use kms_api::ApiError;
use kms_core::audit::{AuditEvent, scrub};
use kms_core::policy::PrincipalKind;
use kms_core::{Clock, Timestamp};
use kms_crypto::RootKeyProvider;
use kms_store::Store;
use kms_store::audit::AuditDigest;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tracing::{error, warn};

use crate::service::Caller;

/// How long the writer gathers events before committing them.
pub const LINGER: Duration = Duration::from_millis(50);
/// Most events committed in one transaction.
pub const MAX_BATCH: usize = 1000;
/// Most events waiting for the writer. When requests outpace the writer, they wait for room
/// (back-pressure) instead of piling up: this bounds both memory and how many answered
/// requests a crash can leave unrecorded.
pub const QUEUE_CAPACITY: usize = 8192;
/// A signed digest after this many records…
const DIGEST_EVERY_RECORDS: u64 = 1000;
/// …or this long, whichever comes first.
const DIGEST_EVERY: Duration = Duration::from_secs(60);
const SIGNING_KEY_SETTING: &str = "audit_signing_key";
/// The setting holding the digest-verification public key (hex).
pub const PUBLIC_KEY_SETTING: &str = "audit_public_key";

/// What a request's audit event is built from that is known before its handler runs, so that
/// a control-plane change can build its event before it commits. Shared by the clones of a
/// [`crate::RequestContext`].
pub struct AuditDraft {
    /// `eventName`.
    pub event_name: String,
    /// `eventSource` (`kms.amazonaws.com`, `sts.amazonaws.com`, `ferrokms.admin`).
    pub event_source: &'static str,
    /// `userAgent`.
    pub user_agent: String,
    /// `requestParameters`, already scrubbed (no plaintext or secrets are held here).
    pub request: Option<Value>,
    committed: AtomicBool,
}

impl AuditDraft {
    /// A draft for a request; `request` is scrubbed here.
    pub fn new(event_name: String, event_source: &'static str, user_agent: String, request: Option<&Value>) -> Self {
        Self { event_name, event_source, user_agent, request: request.map(scrub), committed: AtomicBool::new(false) }
    }

    /// Whether the request's event was committed with its change (and must not be recorded
    /// again).
    pub fn committed(&self) -> bool {
        self.committed.load(Ordering::SeqCst)
    }

    /// Notes that the store committed the request's event together with its change.
    pub(crate) fn mark_committed(&self) {
        self.committed.store(true, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for AuditDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The request parameters stay out of debug output even though they are scrubbed.
        f.debug_struct("AuditDraft")
            .field("event_name", &self.event_name)
            .field("event_source", &self.event_source)
            .field("committed", &self.committed())
            .finish_non_exhaustive()
    }
}

/// A fresh CloudTrail `eventID` (a random UUID).
pub fn new_event_id(rng: &dyn kms_core::Rng) -> String {
    uuid::Builder::from_random_bytes(kms_crypto::random_array(rng)).into_uuid().hyphenated().to_string()
}

/// Whether an operation only reads (CloudTrail's `readOnly`).
pub fn read_only(name: &str) -> bool {
    name.starts_with("Describe")
        || name.starts_with("List")
        || name.starts_with("Get")
        || name == "GenerateRandom"
        || kms_core::audit::CRYPTOGRAPHIC_OPERATIONS.contains(&name)
}

/// Everything an event is built from.
pub struct EventInput<'a> {
    /// CloudTrail `eventID`.
    pub event_id: String,
    /// `requestID`.
    pub request_id: &'a str,
    /// When.
    pub time: Timestamp,
    /// `eventName`.
    pub event_name: &'a str,
    /// `eventSource` (`kms.amazonaws.com`, `sts.amazonaws.com`, `ferrokms.admin`).
    pub event_source: &'a str,
    /// The authenticated caller, if authentication succeeded.
    pub caller: Option<&'a Caller>,
    /// The service that made the call for the caller (`kms:ViaService`).
    pub via_service: Option<&'a str>,
    /// The access key id from the request, when authentication failed.
    pub presented_access_key: Option<&'a str>,
    /// The request's region.
    pub region: &'a str,
    /// `sourceIPAddress`.
    pub source_ip: String,
    /// `userAgent`.
    pub user_agent: &'a str,
    /// The request members, already scrubbed ([`AuditDraft::new`] scrubs them once per request).
    pub request: Option<&'a Value>,
    /// The response members, recorded for management events (scrubbed here).
    pub response: Option<&'a Value>,
    /// The error, for failed requests.
    pub error: Option<&'a ApiError>,
    /// The key concerned.
    pub key_arn: Option<&'a str>,
    /// Whether the operation only reads.
    pub read_only: bool,
}

fn user_identity(caller: Option<&Caller>, via: Option<&str>, presented: Option<&str>) -> Value {
    let Some(c) = caller else {
        return json!({"type": "Unknown", "accessKeyId": presented});
    };
    let p = &c.principal;
    let mut identity = match &p.kind {
        PrincipalKind::Root => {
            json!({"type": "Root", "principalId": p.user_id, "arn": p.arn, "accountId": p.account.as_str()})
        }
        PrincipalKind::User => json!({
            "type": "IAMUser", "principalId": p.user_id, "arn": p.arn, "accountId": p.account.as_str(),
            "userName": p.username,
        }),
        PrincipalKind::AssumedRole { role_arn, .. } => json!({
            "type": "AssumedRole", "principalId": p.user_id, "arn": p.arn, "accountId": p.account.as_str(),
            "sessionContext": {"sessionIssuer": {
                "type": "Role", "arn": role_arn, "accountId": p.account.as_str(),
                "principalId": p.user_id.split(':').next().unwrap_or_default(),
                "userName": role_arn.rsplit('/').next().unwrap_or_default(),
            }},
        }),
        PrincipalKind::Service { name } => json!({"type": "AWSService", "invokedBy": name}),
    };
    if let Some(map) = identity.as_object_mut() {
        if !matches!(p.kind, PrincipalKind::Service { .. }) {
            map.insert("accessKeyId".into(), Value::String(c.access_key_id.clone()));
        }
        if let Some(service) = via {
            map.insert("invokedBy".into(), Value::String(service.to_owned()));
        }
    }
    identity
}

/// Builds the CloudTrail-shaped event.
pub fn event(input: EventInput<'_>) -> AuditEvent {
    let account = input.caller.map(|c| c.principal.account.to_string());
    let resources = input.key_arn.map(|arn| {
        let owner = arn.split(':').nth(4).unwrap_or_default();
        json!([{"accountId": owner, "type": "AWS::KMS::Key", "ARN": arn}])
    });
    let recipient = input.key_arn.and_then(|arn| arn.split(':').nth(4).map(str::to_owned)).or(account.clone());
    let record = json!({
        "eventVersion": "1.08",
        "userIdentity": user_identity(input.caller, input.via_service, input.presented_access_key),
        "eventTime": input.time.rfc3339(),
        "eventSource": input.event_source,
        "eventName": input.event_name,
        "awsRegion": input.region,
        "sourceIPAddress": input.via_service.map_or(input.source_ip, str::to_owned),
        "userAgent": input.user_agent,
        "requestParameters": input.request.cloned(),
        // CloudTrail writes null, not {}, for operations that return nothing.
        "responseElements": if input.read_only {
            None
        } else {
            input.response.filter(|v| v.as_object().is_none_or(|m| !m.is_empty())).map(scrub)
        },
        "errorCode": input.error.map(|e| e.exception.name()),
        "errorMessage": input.error.and_then(|e| e.message.clone()),
        "requestID": input.request_id,
        "eventID": input.event_id,
        "readOnly": input.read_only,
        "resources": resources,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": recipient,
        "eventCategory": "Management",
    });
    AuditEvent {
        event_id: input.event_id.clone(),
        time: input.time,
        event_name: input.event_name.to_owned(),
        key_arn: input.key_arn.map(str::to_owned),
        principal: input.caller.map_or_else(|| "-".to_owned(), |c| c.principal.arn.clone()),
        error_code: input.error.map(|e| e.exception.name().to_owned()),
        record,
    }
}

/// A background action (rotation, deletion…) as an audit event, with `kms.amazonaws.com` as
/// the acting service, as CloudTrail records them.
pub fn background_event(event_id: String, time: Timestamp, name: &str, key_arn: &str, details: Value) -> AuditEvent {
    let account = key_arn.split(':').nth(4).unwrap_or_default().to_owned();
    let region = key_arn.split(':').nth(3).unwrap_or_default().to_owned();
    let record = json!({
        "eventVersion": "1.08",
        "userIdentity": {"accountId": account, "invokedBy": "kms.amazonaws.com"},
        "eventTime": time.rfc3339(),
        "eventSource": "kms.amazonaws.com",
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": "kms.amazonaws.com",
        "userAgent": "kms.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "additionalEventData": details,
        "eventID": event_id,
        "readOnly": false,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": key_arn}],
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    AuditEvent {
        event_id,
        time,
        event_name: name.to_owned(),
        key_arn: Some(key_arn.to_owned()),
        principal: "kms.amazonaws.com".into(),
        error_code: None,
        record,
    }
}

/// The signing key for digests: created on first use, stored wrapped by the root key, its
/// public half stored in the clear for `ferrokms audit verify`.
async fn digest_key(store: &dyn Store, root: &dyn RootKeyProvider) -> Option<Ed25519KeyPair> {
    let aad = b"ferrokms:audit-digest-key";
    let stored = store.setting(SIGNING_KEY_SETTING).await.ok()?;
    let wrapped = match stored {
        Some(hex_text) => hex::decode(hex_text).ok()?,
        None => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).ok()?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).ok()?;
            let wrapped = root.wrap(aad, pkcs8.as_ref()).ok()?;
            store.init_setting(PUBLIC_KEY_SETTING, &hex::encode(pair.public_key().as_ref())).await.ok()?;
            store.init_setting(SIGNING_KEY_SETTING, &hex::encode(&wrapped)).await.ok()?;
            // Another node may have won the race: use what is stored.
            hex::decode(store.setting(SIGNING_KEY_SETTING).await.ok()??).ok()?
        }
    };
    let pkcs8 = root.unwrap(aad, &wrapped).ok()?;
    Ed25519KeyPair::from_pkcs8(pkcs8.expose_secret()).ok()
}

/// The writer: receives events, commits them in batches, signs digests.
pub struct AuditTrail {
    /// Taken (dropped) on close. A std lock held only to clone the sender: every request passes
    /// here, and an async mutex would make them queue behind each other.
    sender: std::sync::RwLock<Option<mpsc::Sender<AuditEvent>>>,
    backlog: Arc<AtomicI64>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl AuditTrail {
    /// Starts the writer task.
    pub fn start(store: Arc<dyn Store>, root: Arc<dyn RootKeyProvider>, clock: Arc<dyn Clock>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let backlog = Arc::new(AtomicI64::new(0));
        let task = tokio::spawn(write_loop(store, root, clock, receiver, Arc::clone(&backlog)));
        Self { sender: std::sync::RwLock::new(Some(sender)), backlog, task: Mutex::new(Some(task)) }
    }

    /// Queues an event (waits only if [`QUEUE_CAPACITY`] events are already waiting).
    pub async fn record(&self, event: AuditEvent) {
        let sender = self.sender.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match sender {
            Some(s) => {
                self.backlog.fetch_add(1, Ordering::SeqCst);
                if s.send(event).await.is_err() {
                    self.backlog.fetch_sub(1, Ordering::SeqCst);
                    error!("audit writer is gone; an audit event was not recorded");
                }
            }
            None => error!("audit trail is closed; an audit event was not recorded"),
        }
    }

    /// Events queued but not yet committed.
    pub fn backlog(&self) -> i64 {
        self.backlog.load(Ordering::SeqCst)
    }

    /// Writes everything queued and stops the writer.
    pub async fn close(&self) {
        self.sender.write().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    root: Arc<dyn RootKeyProvider>,
    clock: Arc<dyn Clock>,
    mut receiver: mpsc::Receiver<AuditEvent>,
    backlog: Arc<AtomicI64>,
) {
    let signer = digest_key(store.as_ref(), root.as_ref()).await;
    if signer.is_none() {
        warn!("audit digests are disabled: the digest signing key could not be loaded");
    }
    let mut last_digest_seq = store.audit_digests().await.ok().and_then(|d| d.last().map(|d| d.seq)).unwrap_or(0);
    let mut last_digest_at = tokio::time::Instant::now();
    // Wakes the writer even when no batch arrives (control-plane events are committed by their
    // own transactions), so digests keep coming during quiet periods.
    let mut tick = tokio::time::interval(DIGEST_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            received = receiver.recv() => match received {
                Some(e) => Some(e),
                None => break,
            },
            _ = tick.tick() => None,
        };
        let Some(first) = first else {
            if let Some(signer) = &signer
                && last_digest_at.elapsed() >= DIGEST_EVERY
                && sign_digest(store.as_ref(), signer, clock.now(), last_digest_seq).await
            {
                last_digest_seq = store.audit_head().await.ok().flatten().map_or(last_digest_seq, |(s, _)| s);
                last_digest_at = tokio::time::Instant::now();
            }
            continue;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            // Takes everything already waiting in one go, then waits for more until the deadline.
            let room = MAX_BATCH - batch.len();
            match tokio::time::timeout_at(deadline, receiver.recv_many(&mut batch, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        commit(store.as_ref(), &batch).await;
        backlog.fetch_sub(i64::try_from(batch.len()).unwrap_or(i64::MAX), Ordering::SeqCst);
        if let Some(signer) = &signer {
            let due = last_digest_at.elapsed() >= DIGEST_EVERY;
            if let Ok(Some((seq, _))) = store.audit_head().await
                && (seq >= last_digest_seq + DIGEST_EVERY_RECORDS || (due && seq > last_digest_seq))
                && sign_digest(store.as_ref(), signer, clock.now(), last_digest_seq).await
            {
                last_digest_seq = seq;
                last_digest_at = tokio::time::Instant::now();
            }
        }
    }
    // Closing: one last digest over everything written.
    if let Some(signer) = &signer {
        sign_digest(store.as_ref(), signer, clock.now(), last_digest_seq).await;
    }
}

/// Commits a batch, retrying until the store takes it: an acknowledged request's event is not
/// dropped because the database was briefly unavailable.
async fn commit(store: &dyn Store, batch: &[AuditEvent]) {
    let mut delay = Duration::from_millis(50);
    loop {
        match store.append_audit(batch).await {
            Ok(()) => return,
            Err(e) => {
                error!("audit batch of {} events not written yet: {e}; retrying", batch.len());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Signs the chain's current head unless it is at or before `last_signed` (the newest digest the
/// writer knows of); returns whether a digest was written. The writer tracks `last_signed`
/// itself rather than reading every digest back from the store before each one: that read grew
/// with the trail (one digest per 1,000 records) and held the store's connection on every batch.
/// A digest another node wrote for the same record is refused by the store (one per `seq`).
pub async fn sign_digest(store: &dyn Store, signer: &Ed25519KeyPair, now: Timestamp, last_signed: u64) -> bool {
    let Ok(Some((seq, hash))) = store.audit_head().await else { return false };
    if seq <= last_signed {
        return false;
    }
    let signature = signer.sign(&AuditDigest::signed_bytes(seq, &hash, now)).as_ref().to_vec();
    store.put_audit_digest(&AuditDigest { seq, hash, created: now, signature }).await.is_ok()
}
