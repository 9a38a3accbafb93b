//! Delivery of the audit trail as CloudTrail delivers it: gzip JSON log files of
//! `{"Records": [...]}` every few minutes, named and laid out as CloudTrail names them
//! (`[prefix/]AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<id>.json.gz`),
//! and digest files that list the log files delivered since the last digest with their SHA-256,
//! chained to the previous digest and signed with SHA256withRSA as CloudTrail signs them
//! (`…/CloudTrail-Digest/<region>/…/<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<time>.json.gz`),
//! so that `aws cloudtrail validate-logs` checks them against the public keys ListPublicKeys
//! serves ([`crate::cloudtrail`]). Files go to one [`TrailSink`]: a local directory or an
//! S3-compatible bucket ([`sink`]); the files are built once, here, for both.
//!
//! Delivery survives restarts and outages of the destination without losing or duplicating a
//! file. Its position (the last audit record delivered) and the batch it is delivering are one
//! setting in the store, written only after the batch's files were stored: a batch is planned
//! (its last record recorded) before its first file is written, so a retry, after an outage or a
//! crash, builds exactly the same files from exactly the same records (names derive from the
//! records' sequence range, gzip output is deterministic) and stores them again over
//! themselves. A digest is recorded before its file is written and no later digest is made
//! until it is, so the chain has no gap. One node delivers (the holder of the `cloudtrail`
//! leadership); failed rounds are retried with exponential backoff.

pub mod sink;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use kms_core::{Clock, Timestamp};
use kms_crypto::RootKeyProvider;
use kms_crypto::signing::RsaSha256SigningKey;
use kms_store::Store;
use kms_store::audit::AuditRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, warn};

pub use sink::{BucketCredentials, BucketSink, BucketTarget, DigestSignature, DirectorySink, LOCAL_BUCKET, TrailSink};

/// The trail's name when none is configured.
pub const DEFAULT_TRAIL_NAME: &str = "ferrokms";
/// The signature algorithm of digests (CloudTrail's name for RSASSA-PKCS1-v1_5 with SHA-256).
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
/// The signature algorithm of digests written before digests were RSA-signed.
pub const LEGACY_SIGNATURE_ALGORITHM: &str = "Ed25519";

/// Where delivered files go.
#[derive(Clone, Debug)]
pub enum Destination {
    /// A local directory (the `AWSLogs/` tree is written under it).
    Directory(PathBuf),
    /// An S3-compatible bucket.
    Bucket(BucketTarget),
}

/// Where and how often the trail is delivered.
#[derive(Clone, Debug)]
pub struct TrailDelivery {
    /// Where the files go.
    pub destination: Destination,
    /// The trail's name, in digest names and its ARN (`arn:aws:cloudtrail:<home region>:<account>:trail/<name>`).
    pub name: String,
    /// How often new records are delivered (CloudTrail: about every 5 minutes).
    pub interval: Duration,
    /// How often digests are written (CloudTrail: hourly).
    pub digest_interval: Duration,
}

impl TrailDelivery {
    /// What the CloudTrail API says about this trail (DescribeTrails, GetTrail).
    pub fn info(&self, home_region: &str) -> TrailInfo {
        let (bucket, prefix) = match &self.destination {
            Destination::Directory(_) => (LOCAL_BUCKET.to_owned(), None),
            Destination::Bucket(b) => (
                b.bucket.clone(),
                b.prefix.as_deref().map(|p| p.trim_matches('/').to_owned()).filter(|p| !p.is_empty()),
            ),
        };
        TrailInfo { name: self.name.clone(), home_region: home_region.to_owned(), bucket, prefix }
    }
}

/// The configured trail as the CloudTrail API describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailInfo {
    /// The trail's name.
    pub name: String,
    /// The region its ARN names (the server's default region).
    pub home_region: String,
    /// The bucket digests name (`local` for a directory).
    pub bucket: String,
    /// The key prefix, if any.
    pub prefix: Option<String>,
}

impl TrailInfo {
    /// The trail's ARN in `account`.
    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:cloudtrail:{}:{account}:trail/{}", self.home_region, self.name)
    }
}

/// Whether `name` is a valid trail name, by CloudTrail's rules: 3 to 128 ASCII letters, digits,
/// periods, underscores and hyphens, starting and ending with a letter or digit, no two of
/// `._-` adjacent, and not in the form of an IP address.
pub fn valid_trail_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let punctuation = |b: &u8| matches!(b, b'.' | b'_' | b'-');
    let ip_like =
        name.split('.').count() == 4 && name.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (3..=128).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || punctuation(b))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !bytes.windows(2).any(|w| w.iter().all(punctuation))
        && !ip_like
}

/// Why a delivery round stopped (it is retried from the same position).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] kms_store::StoreError),
    /// The delivery state in the store is not readable.
    #[error("the delivery state is corrupt: {0}")]
    State(#[from] serde_json::Error),
    /// A file could not be written to the directory.
    #[error("writing {object}: {source}")]
    Write {
        /// The object's name.
        object: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bucket refused or did not answer a PUT.
    #[error("putting s3://{bucket}/{object}: {message}")]
    Put {
        /// The bucket.
        bucket: String,
        /// The object's name.
        object: String,
        /// What the SDK reported.
        message: String,
    },
    /// The digest key could not be created, unwrapped or used.
    #[error("the CloudTrail digest key: {0}")]
    Key(String),
}

/// Most records one batch holds.
const ROUND_RECORDS: usize = 10_000;
/// Where a deployment delivering before 0.1's delivery state kept its position.
const LEGACY_CURSOR_SETTING: &str = "cloudtrail_cursor";
const STATE_SETTING: &str = "cloudtrail_state";
/// The last failed round's error (empty after a successful one), for GetTrailStatus.
const ERROR_SETTING: &str = "cloudtrail_error";
/// The digest-signing key, wrapped by the root key (hex), as the audit trail's own key is kept.
const SIGNING_KEY_SETTING: &str = "cloudtrail_signing_key";
const SIGNING_KEY_AAD: &[u8] = b"ferrokms:cloudtrail-digest-key";
/// The digest keys' public halves with their validity (JSON), for ListPublicKeys.
const PUBLIC_KEYS_SETTING: &str = "cloudtrail_public_keys";
/// Longest wait between retries of a failed round (or the interval, if longer).
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A delivered log file, until a digest lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Delivered {
    object: String,
    hash: String,
    oldest: i64,
    newest: i64,
}

fn written_by_default() -> bool {
    true
}

/// Per account and region: the files awaiting a digest and the last digest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Chain {
    pending: Vec<Delivered>,
    previous_object: Option<String>,
    previous_hash: Option<String>,
    previous_signature: Option<String>,
    last_end: Option<i64>,
    /// The last digest's text: recorded before its file is written, so a crash or an outage in
    /// between writes the same file later instead of leaving a gap in the chain.
    #[serde(default)]
    last_text: Option<String>,
    /// Whether the last digest's file is stored. (States written before this field existed
    /// wrote the file in the same round.)
    #[serde(default = "written_by_default")]
    last_written: bool,
    /// The last digest's signature algorithm.
    #[serde(default)]
    last_algorithm: Option<String>,
}

/// A batch of records being delivered: those after the cursor up to `through`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Plan {
    through: u64,
    files: usize,
}

/// The delivery state kept in the store (one setting, written whole; one node writes it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    chains: BTreeMap<String, Chain>,
    last_digest: i64,
    /// The last record delivered; `None` in states written before it moved here from its own
    /// setting.
    #[serde(default)]
    cursor: Option<u64>,
    #[serde(default)]
    planned: Option<Plan>,
    #[serde(default)]
    last_delivery: Option<i64>,
    #[serde(default)]
    last_digest_delivery: Option<i64>,
}

/// `2026-12-07T07:45:00Z` parts for names and paths.
fn name_time(t: Timestamp, with_seconds: bool) -> (String, String) {
    let rfc = t.rfc3339(); // 2026-12-07T07:45:12.345Z
    let date = rfc.get(..10).unwrap_or_default().replace('-', "/");
    let compact: String = rfc.get(..if with_seconds { 19 } else { 16 }).unwrap_or_default().replace(['-', ':'], "");
    (date, format!("{compact}Z"))
}

/// A time as CloudTrail writes it in digests: `2026-12-07T07:45:12Z` (whole seconds).
fn digest_time(millis: i64) -> String {
    Timestamp::from_unix_millis(millis.div_euclid(1000) * 1000).rfc3339()
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(kms_crypto::digest::sha256(data))
}

/// `contents` gzipped. The header carries no time or name, so the same contents always give
/// the same bytes (a file written again is the same object).
fn gzip(contents: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(contents);
    gz.finish().unwrap_or_default()
}

/// The string a digest's signature covers, as CloudTrail builds it: the end time, the
/// digest's `bucket/object`, the hex SHA-256 of the uncompressed digest and the previous
/// digest's signature (`null` for the first).
pub fn string_to_sign(
    end_time: &str,
    bucket: &str,
    object: &str,
    digest_hash: &str,
    previous_signature: Option<&str>,
) -> String {
    format!("{end_time}\n{bucket}/{object}\n{digest_hash}\n{}", previous_signature.unwrap_or("null"))
}

/// The digest key's fingerprint as digests and ListPublicKeys give it: the hex SHA-256 of its
/// PKCS#1 DER public key.
pub fn fingerprint(public_key_pkcs1: &[u8]) -> String {
    hex_sha256(public_key_pkcs1)
}

/// A digest-signing public key, as ListPublicKeys lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyRecord {
    /// PKCS#1 `RSAPublicKey` DER, base64.
    pub value: String,
    /// [`fingerprint`] of the key.
    pub fingerprint: String,
    /// When the key started signing (Unix milliseconds).
    pub valid_from: i64,
    /// When it stopped (replaced); `None` while it signs.
    #[serde(default)]
    pub valid_until: Option<i64>,
}

/// The digest-signing public keys, oldest first.
///
/// # Errors
/// A store failure.
pub async fn public_keys(store: &dyn Store) -> Result<Vec<PublicKeyRecord>, DeliveryError> {
    Ok(match store.setting(PUBLIC_KEYS_SETTING).await? {
        Some(text) => serde_json::from_str(&text)?,
        None => Vec::new(),
    })
}

/// The digest signer: the key and its fingerprint.
pub struct DigestSigner {
    key: RsaSha256SigningKey,
    fingerprint: String,
}

impl DigestSigner {
    fn sign(&self, message: &str) -> Result<String, DeliveryError> {
        self.key.sign(message.as_bytes()).map(hex::encode).map_err(|e| DeliveryError::Key(e.to_string()))
    }
}

/// The digest-signing key: created on first use (RSA 2048), stored wrapped by the root key,
/// its public half listed for ListPublicKeys. A key that no longer unwraps (the root key was
/// rotated without re-wrapping it) is replaced by a new one; the old public key stays listed,
/// valid until then, so the digests it signed still validate.
///
/// # Errors
/// [`DeliveryError::Key`] or a store failure.
pub async fn digest_signer(
    store: &dyn Store,
    root: &dyn RootKeyProvider,
    clock: &dyn Clock,
) -> Result<DigestSigner, DeliveryError> {
    let key_error = |e: &dyn std::fmt::Display| DeliveryError::Key(e.to_string());
    let generate = || -> Result<String, DeliveryError> {
        let key = RsaSha256SigningKey::generate().map_err(|e| key_error(&e))?;
        let pkcs8 = key.to_pkcs8().map_err(|e| key_error(&e))?;
        Ok(hex::encode(root.wrap(SIGNING_KEY_AAD, pkcs8.expose_secret()).map_err(|e| key_error(&e))?))
    };
    let stored = match store.setting(SIGNING_KEY_SETTING).await? {
        Some(text) => text,
        None => {
            store.init_setting(SIGNING_KEY_SETTING, &generate()?).await?;
            // Another node may have won the race: use what is stored.
            store.setting(SIGNING_KEY_SETTING).await?.ok_or_else(|| key_error(&"not stored"))?
        }
    };
    let wrapped = hex::decode(stored.trim()).map_err(|e| key_error(&e))?;
    let key = match root.unwrap(SIGNING_KEY_AAD, &wrapped) {
        Ok(pkcs8) => RsaSha256SigningKey::from_pkcs8(&pkcs8).map_err(|e| key_error(&e))?,
        Err(kms_crypto::RootKeyError::Unwrap) => {
            warn!("the CloudTrail digest key does not unwrap under the root key: a new one signs from now on");
            let text = generate()?;
            store.set_setting(SIGNING_KEY_SETTING, &text).await?;
            let wrapped = hex::decode(text).map_err(|e| key_error(&e))?;
            let pkcs8 = root.unwrap(SIGNING_KEY_AAD, &wrapped).map_err(|e| key_error(&e))?;
            RsaSha256SigningKey::from_pkcs8(&pkcs8).map_err(|e| key_error(&e))?
        }
        Err(e) => return Err(key_error(&e)),
    };
    let public = key.public_key_pkcs1().to_vec();
    let fingerprint = fingerprint(&public);
    // Listed by whoever loads it: the list always holds the stored key's public half.
    let mut keys = public_keys(store).await?;
    if !keys.iter().any(|k| k.fingerprint == fingerprint) {
        let now = clock.now().unix_millis();
        for k in keys.iter_mut().filter(|k| k.valid_until.is_none()) {
            k.valid_until = Some(now);
        }
        keys.push(PublicKeyRecord {
            value: base64::engine::general_purpose::STANDARD.encode(&public),
            fingerprint: fingerprint.clone(),
            valid_from: now,
            valid_until: None,
        });
        store.set_setting(PUBLIC_KEYS_SETTING, &serde_json::to_string(&keys)?).await?;
    }
    Ok(DigestSigner { key, fingerprint })
}

/// What delivery has not yet done, for the backlog gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Audit records after the last one delivered.
    pub records: u64,
    /// Files built (a planned batch's log files, recorded digests) but not yet stored.
    pub files: u64,
}

/// The backlog as the store holds it (any node can read it).
///
/// # Errors
/// A store failure or an unreadable state.
pub async fn backlog(store: &dyn Store) -> Result<Backlog, DeliveryError> {
    let state = load(store).await?;
    let head = store.audit_head().await?.map_or(0, |(seq, _)| seq);
    let unwritten = state.chains.values().filter(|c| !c.last_written && c.last_text.is_some()).count();
    let files = state.planned.map_or(0, |p| p.files).saturating_add(unwritten);
    Ok(Backlog {
        records: head.saturating_sub(state.cursor.unwrap_or(0)),
        files: u64::try_from(files).unwrap_or(u64::MAX),
    })
}

/// What GetTrailStatus reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// When log files were last stored.
    pub last_delivery: Option<Timestamp>,
    /// When a digest was last stored.
    pub last_digest_delivery: Option<Timestamp>,
    /// The last round's error, if it failed.
    pub last_error: Option<String>,
}

/// The delivery status the store holds.
///
/// # Errors
/// A store failure or an unreadable state.
pub async fn status(store: &dyn Store) -> Result<Status, DeliveryError> {
    let state = load(store).await?;
    let last_error = store.setting(ERROR_SETTING).await?.filter(|e| !e.is_empty());
    Ok(Status {
        last_delivery: state.last_delivery.map(Timestamp::from_unix_millis),
        last_digest_delivery: state.last_digest_delivery.map(Timestamp::from_unix_millis),
        last_error,
    })
}

/// How long to wait before retrying after `failures` failed rounds in a row.
fn backoff(interval: Duration, failures: u32) -> Duration {
    let base = interval.min(Duration::from_secs(1));
    let cap = MAX_BACKOFF.max(interval);
    base.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(cap)
}

/// Starts delivering; runs until aborted. `home_region` is the trail's region (the server's
/// default region).
pub fn spawn(
    store: Arc<dyn Store>,
    root: Arc<dyn RootKeyProvider>,
    clock: Arc<dyn Clock>,
    config: TrailDelivery,
    home_region: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let sink: Box<dyn TrailSink> = match &config.destination {
            Destination::Directory(dir) => Box::new(DirectorySink::new(dir.clone())),
            Destination::Bucket(target) => Box::new(BucketSink::connect(target, &home_region).await),
        };
        let info = config.info(&home_region);
        let mut leadership: Option<kms_store::Leadership> = None;
        let mut signer: Option<DigestSigner> = None;
        let mut failures: u32 = 0;
        let mut delay = config.interval;
        loop {
            tokio::time::sleep(delay).await;
            delay = config.interval;
            if !leadership.as_ref().is_some_and(kms_store::Leadership::is_held) {
                leadership = store.try_lead("cloudtrail").await.unwrap_or(None);
                if leadership.is_none() {
                    continue;
                }
            }
            let result = match &signer {
                Some(s) => {
                    deliver(store.as_ref(), clock.as_ref(), s, sink.as_ref(), &info, config.digest_interval).await
                }
                None => match digest_signer(store.as_ref(), root.as_ref(), clock.as_ref()).await {
                    Ok(s) => {
                        let signer = signer.insert(s);
                        deliver(store.as_ref(), clock.as_ref(), signer, sink.as_ref(), &info, config.digest_interval)
                            .await
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(more) => {
                    if failures > 0 {
                        info!("CloudTrail delivery to {} resumed after {failures} failed rounds", sink.describe());
                        let _ = store.set_setting(ERROR_SETTING, "").await;
                    }
                    failures = 0;
                    if more == More::Waiting {
                        delay = Duration::ZERO;
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    delay = backoff(config.interval, failures);
                    warn!("CloudTrail delivery to {} (retrying in {delay:?}): {e}", sink.describe());
                    let _ = store.set_setting(ERROR_SETTING, &e.to_string()).await;
                }
            }
        }
    })
}

/// Whether a round left records behind (a full batch was delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    /// More records wait: deliver again at once.
    Waiting,
    /// Caught up.
    CaughtUp,
}

async fn load(store: &dyn Store) -> Result<State, DeliveryError> {
    let mut state: State = match store.setting(STATE_SETTING).await? {
        Some(text) => serde_json::from_str(&text)?,
        None => State::default(),
    };
    if state.cursor.is_none() {
        state.cursor = Some(store.setting(LEGACY_CURSOR_SETTING).await?.and_then(|c| c.parse().ok()).unwrap_or(0));
    }
    Ok(state)
}

async fn save(store: &dyn Store, state: &State) -> Result<(), DeliveryError> {
    store.set_setting(STATE_SETTING, &serde_json::to_string(state)?).await?;
    Ok(())
}

/// One round: the last digests if not yet stored, the planned batch (or a new one) of log
/// files, then digests when due.
///
/// # Errors
/// What failed; the round is retried from the same position and builds the same files.
pub async fn deliver(
    store: &dyn Store,
    clock: &dyn Clock,
    signer: &DigestSigner,
    sink: &dyn TrailSink,
    trail: &TrailInfo,
    digest_interval: Duration,
) -> Result<More, DeliveryError> {
    let mut state = load(store).await?;
    // 1. A digest recorded but not stored goes first: no later digest may follow it until it is.
    write_digests(store, sink, &mut state, clock).await?;

    // 2. Log files: the planned batch again, or a new one.
    let cursor = state.cursor.unwrap_or(0);
    let mut more = More::CaughtUp;
    let mut rows = store.audit_after(cursor, ROUND_RECORDS).await?;
    let through = match state.planned {
        Some(plan) => Some(plan.through),
        None => rows.last().map(|r| r.seq),
    };
    if let Some(through) = through {
        rows.retain(|r| r.seq <= through);
        if rows.len() >= ROUND_RECORDS {
            more = More::Waiting;
        }
        let files: Vec<(LogFile, String)> = group(&rows)
            .into_iter()
            .map(|((account, region), group)| {
                log_file(sink.prefix(), &account, &region, &group).map(|file| (file, format!("{account}/{region}")))
            })
            .collect::<Result<_, _>>()?;
        if state.planned.is_none() {
            // Recorded before the first file is stored: a retry builds exactly these files.
            state.planned = Some(Plan { through, files: files.len() });
            save(store, &state).await?;
        }
        for (file, _) in &files {
            sink.put(&file.delivered.object, file.gzipped.clone(), None).await?;
        }
        for (file, chain) in files {
            let chain = state.chains.entry(chain).or_default();
            if !chain.pending.iter().any(|d| d.object == file.delivered.object) {
                chain.pending.push(file.delivered);
            }
        }
        // The position moves only now that every file of the batch is stored, in the same
        // setting as what lists them.
        state.cursor = Some(through);
        state.planned = None;
        state.last_delivery = Some(clock.now().unix_millis());
        save(store, &state).await?;
    }

    // 3. Digests, when due.
    let now = clock.now();
    // Digest names carry the time to the second, as CloudTrail's do: at most one a second.
    let interval = i64::try_from(digest_interval.as_millis()).unwrap_or(i64::MAX).max(1000);
    let due = now.unix_millis() / 1000 > state.last_digest / 1000
        && now.unix_millis().saturating_sub(state.last_digest) >= interval;
    if due && !state.chains.is_empty() {
        for (key, chain) in &mut state.chains {
            let (account, region) = key.split_once('/').unwrap_or((key, ""));
            next_digest(sink, trail, account, region, chain, signer, now)?;
        }
        state.last_digest = now.unix_millis();
        // Recorded first, stored second (see `Chain::last_text`).
        save(store, &state).await?;
        write_digests(store, sink, &mut state, clock).await?;
    }
    Ok(more)
}

/// Stores every chain's last digest not yet stored, and records that it is.
async fn write_digests(
    store: &dyn Store,
    sink: &dyn TrailSink,
    state: &mut State,
    clock: &dyn Clock,
) -> Result<(), DeliveryError> {
    let mut wrote = false;
    let mut failed = None;
    for chain in state.chains.values_mut().filter(|c| !c.last_written) {
        let (Some(object), Some(text), Some(signature)) =
            (&chain.previous_object, &chain.last_text, &chain.previous_signature)
        else {
            continue;
        };
        let signature = DigestSignature {
            hex: signature.clone(),
            algorithm: chain.last_algorithm.clone().unwrap_or_else(|| SIGNATURE_ALGORITHM.to_owned()),
        };
        match sink.put(object, gzip(text.as_bytes()), Some(&signature)).await {
            Ok(()) => {
                chain.last_written = true;
                wrote = true;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if wrote {
        state.last_digest_delivery = Some(clock.now().unix_millis());
        save(store, state).await?;
    }
    failed.map_or(Ok(()), Err)
}

/// Records by the account and region they belong to (`recipientAccountId`, `awsRegion`), in
/// order; records of no account (failed authentication) are not delivered.
fn group(rows: &[AuditRow]) -> BTreeMap<(String, String), Vec<&AuditRow>> {
    let mut groups: BTreeMap<(String, String), Vec<&AuditRow>> = BTreeMap::new();
    for row in rows {
        let Ok(record) = serde_json::from_str::<Value>(&row.record) else { continue };
        let account = record.get("recipientAccountId").and_then(Value::as_str);
        let region = record.get("awsRegion").and_then(Value::as_str);
        if let (Some(account), Some(region)) = (account, region) {
            groups.entry((account.to_owned(), region.to_owned())).or_default().push(row);
        }
    }
    groups
}

/// A log file, built.
struct LogFile {
    delivered: Delivered,
    gzipped: Vec<u8>,
}

fn with_prefix(prefix: Option<&str>, object: String) -> String {
    match prefix {
        Some(p) => format!("{p}/{object}"),
        None => object,
    }
}

/// Builds one log file; its name is a function of its records (the time of the first, the
/// sequence range), so building it again builds the same file.
fn log_file(prefix: Option<&str>, account: &str, region: &str, rows: &[&AuditRow]) -> Result<LogFile, DeliveryError> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Err(DeliveryError::Write { object: String::new(), source: std::io::Error::other("no records") });
    };
    let mut body = String::from("{\"Records\":[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&row.record);
    }
    body.push_str("]}");
    let (date, stamp) = name_time(first.time, false);
    let unique = hex_sha256(format!("{}-{}", first.seq, last.seq).as_bytes());
    let object = with_prefix(
        prefix,
        format!(
            "AWSLogs/{account}/CloudTrail/{region}/{date}/{account}_CloudTrail_{region}_{stamp}_{}.json.gz",
            unique.get(..16).unwrap_or_default()
        ),
    );
    let oldest = rows.iter().map(|r| r.time.unix_millis()).min().unwrap_or_default();
    let newest = rows.iter().map(|r| r.time.unix_millis()).max().unwrap_or_default();
    Ok(LogFile {
        delivered: Delivered { object, hash: hex_sha256(body.as_bytes()), oldest, newest },
        gzipped: gzip(body.as_bytes()),
    })
}

/// The digest of what `chain` delivered since its last digest, signed and chained, made the
/// chain's last (its file is stored by [`write_digests`]).
fn next_digest(
    sink: &dyn TrailSink,
    trail: &TrailInfo,
    account: &str,
    region: &str,
    chain: &mut Chain,
    signer: &DigestSigner,
    now: Timestamp,
) -> Result<(), DeliveryError> {
    let (date, stamp) = name_time(now, true);
    let object = with_prefix(
        sink.prefix(),
        format!(
            "AWSLogs/{account}/CloudTrail-Digest/{region}/{date}/{account}_CloudTrail-Digest_{region}_{}_{}_{stamp}.json.gz",
            trail.name, trail.home_region
        ),
    );
    let bucket = sink.bucket();
    let start =
        chain.last_end.unwrap_or_else(|| chain.pending.iter().map(|d| d.oldest).min().unwrap_or(now.unix_millis()));
    let end = digest_time(now.unix_millis());
    let files: Vec<Value> = chain
        .pending
        .iter()
        .map(|d| {
            json!({"s3Bucket": bucket, "s3Object": d.object, "hashValue": d.hash, "hashAlgorithm": "SHA-256",
                   "oldestEventTime": digest_time(d.oldest), "newestEventTime": digest_time(d.newest)})
        })
        .collect();
    let previous_bucket = chain.previous_object.as_ref().map(|_| bucket);
    let digest = json!({
        "awsAccountId": account,
        "digestStartTime": digest_time(start),
        "digestEndTime": end,
        "digestS3Bucket": bucket,
        "digestS3Object": object,
        "digestPublicKeyFingerprint": signer.fingerprint,
        "digestSignatureAlgorithm": SIGNATURE_ALGORITHM,
        "newestEventTime": chain.pending.iter().map(|d| d.newest).max().map(digest_time),
        "oldestEventTime": chain.pending.iter().map(|d| d.oldest).min().map(digest_time),
        "previousDigestS3Bucket": previous_bucket,
        "previousDigestS3Object": chain.previous_object,
        "previousDigestHashValue": chain.previous_hash,
        "previousDigestHashAlgorithm": chain.previous_hash.as_ref().map(|_| "SHA-256"),
        "previousDigestSignature": chain.previous_signature,
        "logFiles": files,
    });
    let text = digest.to_string();
    let hash = hex_sha256(text.as_bytes());
    let signature = signer.sign(&string_to_sign(&end, bucket, &object, &hash, chain.previous_signature.as_deref()))?;
    chain.pending.clear();
    chain.previous_object = Some(object);
    chain.previous_hash = Some(hash);
    chain.previous_signature = Some(signature);
    chain.last_end = Some(now.unix_millis());
    chain.last_text = Some(text);
    chain.last_written = false;
    chain.last_algorithm = Some(SIGNATURE_ALGORITHM.to_owned());
    Ok(())
}

/// What [`validate`] checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Validated {
    /// Digest files whose signature and chain held.
    pub digests: usize,
    /// Log files whose hash matched their digest's.
    pub log_files: usize,
}

/// The keys [`validate`] checks digest signatures with.
#[derive(Debug, Default)]
pub struct VerificationKeys {
    /// The audit trail's Ed25519 public key, for digests written before digests were
    /// RSA-signed.
    pub ed25519: Option<Vec<u8>>,
    /// The RSA digest keys (as ListPublicKeys serves them).
    pub rsa: Vec<PublicKeyRecord>,
}

impl VerificationKeys {
    fn verify(&self, digest: &Value, signed: &str, signature: &[u8]) -> bool {
        match digest.get("digestSignatureAlgorithm").and_then(Value::as_str) {
            Some(LEGACY_SIGNATURE_ALGORITHM) => self
                .ed25519
                .as_deref()
                .is_some_and(|k| kms_crypto::signing::ed25519_verify(k, signed.as_bytes(), signature)),
            Some(SIGNATURE_ALGORITHM) => {
                let fingerprint = digest.get("digestPublicKeyFingerprint").and_then(Value::as_str);
                self.rsa.iter().filter(|k| Some(k.fingerprint.as_str()) == fingerprint).any(|k| {
                    base64::engine::general_purpose::STANDARD.decode(&k.value).is_ok_and(|public| {
                        kms_crypto::signing::rsa_sha256_verify(&public, signed.as_bytes(), signature)
                    })
                })
            }
            _ => false,
        }
    }
}

fn read_gz(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(std::fs::File::open(path)?), &mut out)?;
    Ok(out)
}

/// The files below `dir` whose path ends with `suffix`, sorted.
fn files_below(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_below(&path, suffix, out);
        } else if path.to_string_lossy().ends_with(suffix) {
            out.push(path);
        }
    }
    out.sort();
}

/// Checks a trail delivered to `dir` as `aws cloudtrail validate-logs` checks one in a bucket:
/// every digest's signature (SHA256withRSA by the key its fingerprint names, or Ed25519 for
/// digests written before) and its link to the previous digest, and every log file a digest
/// lists against its hash. A log file removed or edited, a digest removed, edited or out of the
/// chain, is named.
///
/// # Errors
/// Every problem found, one per line.
pub fn validate(dir: &Path, keys: &VerificationKeys) -> Result<Validated, Vec<String>> {
    let mut problems = Vec::new();
    let mut report = Validated::default();
    let mut digests = Vec::new();
    files_below(&dir.join("AWSLogs"), ".json.gz", &mut digests);
    digests.retain(|p| p.to_string_lossy().contains("/CloudTrail-Digest/"));
    // Per account and region, in time order (the names sort by time).
    let mut previous: BTreeMap<String, String> = BTreeMap::new();
    for path in &digests {
        let shown = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let Ok(text) = read_gz(path) else {
            problems.push(format!("{shown}: not a gzip file"));
            continue;
        };
        let Ok(digest) = serde_json::from_slice::<Value>(&text) else {
            problems.push(format!("{shown}: not a digest"));
            continue;
        };
        let str_of = |name: &str| digest.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        let object = str_of("digestS3Object");
        if object != shown {
            problems.push(format!("{shown}: moved (the digest names itself {object})"));
            continue;
        }
        let chain_key = format!("{}/{}", str_of("awsAccountId"), object.split('/').nth(3).unwrap_or_default());
        let signature = std::fs::read_to_string(format!("{}.sig", path.display())).unwrap_or_default();
        let previous_signature = digest.get("previousDigestSignature").and_then(Value::as_str);
        let signed = string_to_sign(
            &str_of("digestEndTime"),
            &str_of("digestS3Bucket"),
            &object,
            &hex_sha256(&text),
            previous_signature,
        );
        let signature_ok = hex::decode(signature.trim()).is_ok_and(|s| keys.verify(&digest, &signed, &s));
        if !signature_ok {
            problems.push(format!("{shown}: the digest's signature does not verify (edited, or not ferrokms's)"));
            continue;
        }
        if let Some(expected) = previous.get(&chain_key)
            && previous_signature != Some(expected.as_str())
        {
            problems.push(format!("{shown}: does not follow the digest before it (a digest was removed)"));
        }
        previous.insert(chain_key, signature.trim().to_owned());
        report.digests += 1;
        for file in digest.get("logFiles").and_then(Value::as_array).into_iter().flatten() {
            let name = file.get("s3Object").and_then(Value::as_str).unwrap_or_default();
            let expected = file.get("hashValue").and_then(Value::as_str).unwrap_or_default();
            match read_gz(&dir.join(name)) {
                Err(_) => problems.push(format!("{name}: listed by {shown} but missing")),
                Ok(body) if hex_sha256(&body) != expected => {
                    problems.push(format!("{name}: edited after delivery (its hash is not the digest's)"));
                }
                Ok(_) => report.log_files += 1,
            }
        }
    }
    if problems.is_empty() { Ok(report) } else { Err(problems) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_cloudtrail() {
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        assert_eq!(name_time(t, false), ("2023/11/14".to_owned(), "20231114T2213Z".to_owned()));
        assert_eq!(name_time(t, true).1, "20231114T221320Z");
        assert_eq!(string_to_sign("E", "b", "o", "h", None), "E\nb/o\nh\nnull");
        assert_eq!(digest_time(1_700_000_000_999), "2023-11-14T22:13:20Z");
        let info = TrailInfo {
            name: "t".into(),
            home_region: "eu-west-1".into(),
            bucket: "b".into(),
            prefix: Some("p".into()),
        };
        assert_eq!(info.arn("111122223333"), "arn:aws:cloudtrail:eu-west-1:111122223333:trail/t");
    }

    /// CloudTrail's trail name rules.
    #[test]
    fn trail_names() {
        for good in ["ferrokms", "my-trail.v2", "a_b", "abc", "1trail"] {
            assert!(valid_trail_name(good), "{good}");
        }
        for bad in
            ["ab", "-trail", "trail-", "my--trail", "my-_trail", "tr ail", "192.168.5.4", "tráil", &"a".repeat(129)]
        {
            assert!(!valid_trail_name(bad), "{bad}");
        }
    }

    /// The same contents always gzip to the same bytes (a retried PUT stores the same object).
    #[test]
    fn gzip_is_deterministic() {
        let a = gzip(b"{\"Records\":[]}");
        assert_eq!(a, gzip(b"{\"Records\":[]}"));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(a.as_slice()), &mut out).unwrap();
        assert_eq!(out, b"{\"Records\":[]}");
    }

    /// Retries back off exponentially from the interval (at most a second), up to ten seconds
    /// or the interval if longer.
    #[test]
    fn backoff_grows_and_is_capped() {
        let ms = Duration::from_millis;
        assert_eq!(backoff(ms(200), 1), ms(200));
        assert_eq!(backoff(ms(200), 3), ms(800));
        assert_eq!(backoff(ms(200), 30), Duration::from_secs(10));
        assert_eq!(backoff(Duration::from_secs(300), 1), Duration::from_secs(1));
        assert_eq!(backoff(Duration::from_secs(300), 12), Duration::from_secs(300));
    }

    /// A directory sink that can be down, or fail after a number of PUTs, and counts what it
    /// was given per object.
    struct Flaky {
        inner: DirectorySink,
        /// PUTs left before it fails (`None`: never).
        left: std::sync::Mutex<Option<usize>>,
        puts: std::sync::Mutex<BTreeMap<String, Vec<Vec<u8>>>>,
    }

    impl Flaky {
        fn fail_after(&self, n: Option<usize>) {
            *self.left.lock().unwrap() = n;
        }
        fn puts_of(&self, object: &str) -> Vec<Vec<u8>> {
            self.puts.lock().unwrap().get(object).cloned().unwrap_or_default()
        }
    }

    #[async_trait::async_trait]
    impl TrailSink for Flaky {
        fn bucket(&self) -> &str {
            self.inner.bucket()
        }
        fn prefix(&self) -> Option<&str> {
            None
        }
        async fn put(
            &self,
            object: &str,
            gzipped: Vec<u8>,
            signature: Option<&DigestSignature>,
        ) -> Result<(), DeliveryError> {
            {
                let mut left = self.left.lock().unwrap();
                match left.as_mut() {
                    Some(0) => {
                        return Err(DeliveryError::Put {
                            bucket: "b".into(),
                            object: object.into(),
                            message: "down".into(),
                        });
                    }
                    Some(n) => *n -= 1,
                    None => {}
                }
            }
            self.puts.lock().unwrap().entry(object.to_owned()).or_default().push(gzipped.clone());
            self.inner.put(object, gzipped, signature).await
        }
        fn describe(&self) -> String {
            "flaky".into()
        }
    }

    const KEY_A: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const KEY_B: &str = "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    async fn record(store: &Arc<dyn Store>, root: &Arc<dyn RootKeyProvider>, events: &[(usize, &str)]) {
        let trail = crate::audit::AuditTrail::start(
            Arc::clone(store),
            Arc::clone(root),
            Arc::new(crate::clock::SystemClock),
            Arc::new(kms_crypto::SystemRng),
        );
        for (n, key) in events {
            let time = Timestamp::from_unix_millis(1_700_000_000_000);
            trail.record(crate::audit::background_event(format!("event-{n}"), time, "RotateKey", key, json!({}))).await;
        }
        trail.close().await;
    }

    /// Delivery retried after a failure part-way through a batch stores the same files again
    /// (same names, same bytes) holding the same records, even though more records arrived
    /// meanwhile; no digest is made while the last one is not stored; and in the end every
    /// record is in exactly one file, every file in exactly one digest, and the whole validates.
    #[tokio::test]
    async fn a_failed_round_is_retried_with_the_same_files_and_no_gap_in_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(kms_store::SqliteStore::open(&dir.path().join("db")).unwrap());
        let root: Arc<dyn RootKeyProvider> =
            Arc::new(kms_crypto::FileRootKey::create(&dir.path().join("root"), &kms_crypto::SystemRng).unwrap());
        let clock = kms_core::ManualClock::new(Timestamp::from_unix_millis(1_700_000_100_000));
        let out = dir.path().join("trail");
        let sink = Flaky {
            inner: DirectorySink::new(out.clone()),
            left: std::sync::Mutex::new(None),
            puts: std::sync::Mutex::new(BTreeMap::new()),
        };
        let trail =
            TrailInfo { name: "t1".into(), home_region: "us-east-1".into(), bucket: LOCAL_BUCKET.into(), prefix: None };
        let signer = digest_signer(store.as_ref(), root.as_ref(), &clock).await.unwrap();
        let hour = Duration::from_secs(3600);
        let round = || deliver(store.as_ref(), &clock, &signer, &sink, &trail, hour);

        // A batch of two files (two accounts): the first is stored, the second fails.
        record(&store, &root, &[(0, KEY_A), (1, KEY_B), (2, KEY_A)]).await;
        sink.fail_after(Some(1));
        assert!(matches!(round().await, Err(DeliveryError::Put { .. })));
        assert_eq!(backlog(store.as_ref()).await.unwrap(), Backlog { records: 3, files: 2 });
        let stored: Vec<String> = sink.puts.lock().unwrap().keys().cloned().collect();
        assert_eq!(stored.len(), 1);
        // More records arrive while the bucket is down; then it is back.
        record(&store, &root, &[(3, KEY_A)]).await;
        assert!(round().await.is_err());
        sink.fail_after(None);
        assert_eq!(round().await.unwrap(), More::CaughtUp);
        let again = sink.puts_of(&stored[0]);
        assert!(again.len() >= 2 && again.iter().all(|bytes| *bytes == again[0]), "the same file, byte for byte");
        assert_eq!(backlog(store.as_ref()).await.unwrap(), Backlog { records: 1, files: 0 });
        round().await.unwrap();
        assert_eq!(backlog(store.as_ref()).await.unwrap(), Backlog::default());

        // A digest is due but cannot be stored: none follows it until it is.
        clock.advance_millis(3_600_000);
        sink.fail_after(Some(0));
        assert!(round().await.is_err());
        let recorded = load(store.as_ref()).await.unwrap();
        assert_eq!(backlog(store.as_ref()).await.unwrap().files, 2, "one digest per account waits");
        clock.advance_millis(3_600_000);
        assert!(round().await.is_err());
        let unchanged = load(store.as_ref()).await.unwrap();
        for (key, chain) in &recorded.chains {
            assert_eq!(unchanged.chains[key].previous_object, chain.previous_object, "no digest over an unstored one");
        }
        sink.fail_after(None);
        round().await.unwrap();
        clock.advance_millis(3_600_000);
        record(&store, &root, &[(4, KEY_B)]).await;
        round().await.unwrap();
        assert_eq!(backlog(store.as_ref()).await.unwrap(), Backlog::default());

        // Each record in one file, each file in one digest, and it all validates.
        let keys = VerificationKeys { ed25519: None, rsa: public_keys(store.as_ref()).await.unwrap() };
        let report = validate(&out, &keys).unwrap();
        assert_eq!(report, Validated { digests: 8, log_files: 4 }, "two accounts, four digest rounds");
        let mut seen = BTreeMap::new();
        let mut logs = Vec::new();
        files_below(&out.join("AWSLogs"), ".json.gz", &mut logs);
        logs.retain(|p| p.to_string_lossy().contains("/CloudTrail/"));
        for path in &logs {
            let doc: Value = serde_json::from_slice(&read_gz(path).unwrap()).unwrap();
            for r in doc["Records"].as_array().unwrap() {
                *seen.entry(r["eventID"].as_str().unwrap().to_owned()).or_insert(0) += 1;
            }
        }
        assert_eq!(logs.len(), 4);
        assert_eq!(seen.len(), 5);
        assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    }

    /// Digests written before digests were RSA-signed (Ed25519, the signature in `.sig`) still
    /// validate, and the RSA digest after one chains to it; a wrong key fails either.
    #[tokio::test]
    async fn legacy_ed25519_digests_still_validate_and_chain_into_rsa_ones() {
        let dir = tempfile::tempdir().unwrap();
        let sink = DirectorySink::new(dir.path().to_owned());
        let legacy_key = kms_crypto::signing::Ed25519SigningKey::generate(&kms_crypto::SystemRng).unwrap();
        let object = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2023/11/14/111122223333_CloudTrail-Digest_us-east-1_ferrokms_us-east-1_20231114T221320Z.json.gz";
        let legacy = json!({
            "awsAccountId": "111122223333", "digestStartTime": "2023-11-14T21:13:20Z",
            "digestEndTime": "2023-11-14T22:13:20Z", "digestS3Bucket": LOCAL_BUCKET, "digestS3Object": object,
            "digestPublicKeyFingerprint": hex_sha256(legacy_key.public_key()), "digestSignatureAlgorithm": "Ed25519",
            "previousDigestSignature": null, "logFiles": [],
        })
        .to_string();
        let legacy_signature = hex::encode(
            legacy_key.sign(
                string_to_sign("2023-11-14T22:13:20Z", LOCAL_BUCKET, object, &hex_sha256(legacy.as_bytes()), None)
                    .as_bytes(),
            ),
        );
        let signature = DigestSignature { hex: legacy_signature.clone(), algorithm: "Ed25519".into() };
        sink.put(object, gzip(legacy.as_bytes()), Some(&signature)).await.unwrap();
        let rsa = RsaSha256SigningKey::generate().unwrap();
        let public = rsa.public_key_pkcs1().to_vec();
        let signer = DigestSigner { fingerprint: fingerprint(&public), key: rsa };
        let mut chain = Chain {
            previous_object: Some(object.to_owned()),
            previous_hash: Some(hex_sha256(legacy.as_bytes())),
            previous_signature: Some(legacy_signature),
            last_end: Some(1_700_000_000_000),
            ..Chain::default()
        };
        let trail = TrailInfo {
            name: "ferrokms".into(),
            home_region: "us-east-1".into(),
            bucket: LOCAL_BUCKET.into(),
            prefix: None,
        };
        next_digest(
            &sink,
            &trail,
            "111122223333",
            "us-east-1",
            &mut chain,
            &signer,
            Timestamp::from_unix_millis(1_700_003_600_000),
        )
        .unwrap();
        let signature =
            DigestSignature { hex: chain.previous_signature.clone().unwrap(), algorithm: SIGNATURE_ALGORITHM.into() };
        let rsa_object = chain.previous_object.clone().unwrap();
        sink.put(&rsa_object, gzip(chain.last_text.clone().unwrap().as_bytes()), Some(&signature)).await.unwrap();
        let record = PublicKeyRecord {
            value: base64::engine::general_purpose::STANDARD.encode(&public),
            fingerprint: fingerprint(&public),
            valid_from: 0,
            valid_until: None,
        };
        let keys = VerificationKeys { ed25519: Some(legacy_key.public_key().to_vec()), rsa: vec![record.clone()] };
        assert_eq!(validate(dir.path(), &keys), Ok(Validated { digests: 2, log_files: 0 }));
        let other = kms_crypto::signing::Ed25519SigningKey::generate(&kms_crypto::SystemRng).unwrap();
        let wrong = VerificationKeys { ed25519: Some(other.public_key().to_vec()), rsa: vec![record] };
        let problems = validate(dir.path(), &wrong).unwrap_err();
        assert!(
            problems.len() == 1 && problems[0].contains("20231114T221320Z") && problems[0].contains("does not verify"),
            "{problems:?}"
        );
        let no_rsa = VerificationKeys { ed25519: Some(legacy_key.public_key().to_vec()), rsa: vec![] };
        let problems = validate(dir.path(), &no_rsa).unwrap_err();
        assert!(problems.len() == 1 && problems[0].contains(&rsa_object), "{problems:?}");
    }
}
