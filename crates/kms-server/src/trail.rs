//! Delivery of the audit trail as CloudTrail delivers it: gzip JSON log files of
//! `{"Records": [...]}` every few minutes, named and laid out as CloudTrail names them
//! (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<id>.json.gz`),
//! and digest files that list the log files delivered since the last digest with their SHA-256,
//! chained to the previous digest and signed (`…/CloudTrail-Digest/…`, the signature beside each
//! digest in `<digest>.sig`), written to a local directory.
//!
//! Delivery follows a cursor (the last audit record delivered) kept in the store, so it survives
//! restarts: a log file's name is derived from the records it holds, so a file written again
//! after a crash replaces itself rather than duplicating records. One node delivers (the
//! holder of the `cloudtrail` leadership). Digests are signed with the audit trail's Ed25519
//! key (`audit_public_key` in the store; `ferrokms audit validate-logs` checks them).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kms_core::{Clock, Rng, Timestamp};
use kms_crypto::RootKeyProvider;
use kms_crypto::signing::Ed25519SigningKey;
use kms_store::Store;
use kms_store::audit::AuditRow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::warn;

/// Where and how often the trail is delivered.
#[derive(Clone, Debug)]
pub struct TrailDelivery {
    /// The directory the `AWSLogs/` tree is written under.
    pub dir: PathBuf,
    /// How often new records are delivered (CloudTrail: about every 5 minutes).
    pub interval: Duration,
    /// How often digests are written (CloudTrail: hourly).
    pub digest_interval: Duration,
}

/// The bucket name digests name for files in a local directory.
pub const LOCAL_BUCKET: &str = "local";
/// Most records one delivery round reads.
const ROUND_RECORDS: usize = 10_000;
const CURSOR_SETTING: &str = "cloudtrail_cursor";
const STATE_SETTING: &str = "cloudtrail_state";

/// A delivered log file, until a digest lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Delivered {
    object: String,
    hash: String,
    oldest: i64,
    newest: i64,
}

/// Per account and region: the files awaiting a digest and the last digest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Chain {
    pending: Vec<Delivered>,
    previous_object: Option<String>,
    previous_hash: Option<String>,
    previous_signature: Option<String>,
    last_end: Option<i64>,
    /// The last digest's text: recorded before its file is written, so a crash in between
    /// writes the same file on the next round instead of leaving a gap in the chain.
    #[serde(default)]
    last_text: Option<String>,
}

/// The delivery state kept in the store (one setting; one node writes it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct State {
    chains: BTreeMap<String, Chain>,
    last_digest: i64,
}

/// `2026-12-07T07:45:00Z` parts for names and paths.
fn name_time(t: Timestamp, with_seconds: bool) -> (String, String) {
    let rfc = t.rfc3339(); // 2026-12-07T07:45:12.345Z
    let date = rfc.get(..10).unwrap_or_default().replace('-', "/");
    let compact: String = rfc.get(..if with_seconds { 19 } else { 16 }).unwrap_or_default().replace(['-', ':'], "");
    (date, format!("{compact}Z"))
}

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(kms_crypto::digest::sha256(data))
}

/// Writes `contents` gzipped to `dir/relative` atomically (a temporary file renamed over it).
fn write_gz(dir: &Path, relative: &str, contents: &[u8]) -> std::io::Result<()> {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let file = std::fs::File::create(&tmp)?;
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        gz.write_all(contents)?;
        gz.finish()?.sync_all()?;
    }
    std::fs::rename(&tmp, &path)
}

/// The string a digest's signature covers, as CloudTrail builds it.
pub fn string_to_sign(end_time: &str, object: &str, digest_hash: &str, previous_signature: Option<&str>) -> String {
    format!("{end_time}\n{LOCAL_BUCKET}/{object}\n{digest_hash}\n{}", previous_signature.unwrap_or("null"))
}

/// Starts delivering; runs until aborted.
pub fn spawn(
    store: Arc<dyn Store>,
    root: Arc<dyn RootKeyProvider>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    config: TrailDelivery,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut leadership: Option<kms_store::Leadership> = None;
        let mut signer: Option<Ed25519SigningKey> = None;
        loop {
            tokio::time::sleep(config.interval).await;
            if !leadership.as_ref().is_some_and(kms_store::Leadership::is_held) {
                leadership = store.try_lead("cloudtrail").await.unwrap_or(None);
                if leadership.is_none() {
                    continue;
                }
            }
            if signer.is_none() {
                signer = crate::audit::digest_key(store.as_ref(), root.as_ref(), rng.as_ref()).await;
            }
            if let Err(e) = deliver(store.as_ref(), clock.as_ref(), signer.as_ref(), &config).await {
                warn!("CloudTrail delivery to {}: {e}", config.dir.display());
            }
        }
    })
}

/// One round: new records into log files, then digests when due.
///
/// # Errors
/// A message naming what failed (the round is retried from the same cursor).
pub async fn deliver(
    store: &dyn Store,
    clock: &dyn Clock,
    signer: Option<&Ed25519SigningKey>,
    config: &TrailDelivery,
) -> Result<(), String> {
    let cursor: u64 =
        store.setting(CURSOR_SETTING).await.map_err(|e| e.to_string())?.and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut state: State = store
        .setting(STATE_SETTING)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let rows = store.audit_after(cursor, ROUND_RECORDS).await.map_err(|e| e.to_string())?;
    if let Some(last) = rows.last() {
        for ((account, region), group) in group(&rows) {
            let delivered = write_log_file(&config.dir, &account, &region, &group).map_err(|e| e.to_string())?;
            let chain = state.chains.entry(format!("{account}/{region}")).or_default();
            if !chain.pending.iter().any(|d| d.object == delivered.object) {
                chain.pending.push(delivered);
            }
        }
        // The files first, then what lists them, then the cursor: a crash in between writes
        // the same files again.
        save(store, STATE_SETTING, &state).await?;
        store.set_setting(CURSOR_SETTING, &last.seq.to_string()).await.map_err(|e| e.to_string())?;
    }
    let now = clock.now();
    // Digest names carry the time to the second, as CloudTrail's do: at most one a second.
    let interval = i64::try_from(config.digest_interval.as_millis()).unwrap_or(i64::MAX).max(1000);
    let due = now.unix_millis() / 1000 > state.last_digest / 1000
        && now.unix_millis().saturating_sub(state.last_digest) >= interval;
    if let (true, Some(signer)) = (due, signer) {
        for (key, chain) in &mut state.chains {
            let (account, region) = key.split_once('/').unwrap_or((key, ""));
            next_digest(account, region, chain, signer, now);
        }
        state.last_digest = now.unix_millis();
        // Recorded first, written second (see `Chain::last_text`).
        save(store, STATE_SETTING, &state).await?;
    }
    for chain in state.chains.values() {
        write_last_digest(&config.dir, chain).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes a chain's last digest (and its signature) unless already there.
fn write_last_digest(dir: &Path, chain: &Chain) -> std::io::Result<()> {
    let (Some(object), Some(text), Some(signature)) =
        (&chain.previous_object, &chain.last_text, &chain.previous_signature)
    else {
        return Ok(());
    };
    let signature_file = dir.join(format!("{object}.sig"));
    if signature_file.exists() {
        return Ok(());
    }
    write_gz(dir, object, text.as_bytes())?;
    std::fs::write(signature_file, signature)
}

async fn save(store: &dyn Store, name: &str, state: &State) -> Result<(), String> {
    let text = serde_json::to_string(state).map_err(|e| e.to_string())?;
    store.set_setting(name, &text).await.map_err(|e| e.to_string())
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

/// Writes one log file; its name is a function of its records (first and last record), so
/// writing it again writes the same file.
fn write_log_file(dir: &Path, account: &str, region: &str, rows: &[&AuditRow]) -> std::io::Result<Delivered> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Err(std::io::Error::other("no records"));
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
    let object = format!(
        "AWSLogs/{account}/CloudTrail/{region}/{date}/{account}_CloudTrail_{region}_{stamp}_{}.json.gz",
        unique.get(..16).unwrap_or_default()
    );
    write_gz(dir, &object, body.as_bytes())?;
    let oldest = rows.iter().map(|r| r.time.unix_millis()).min().unwrap_or_default();
    let newest = rows.iter().map(|r| r.time.unix_millis()).max().unwrap_or_default();
    Ok(Delivered { object, hash: hex_sha256(body.as_bytes()), oldest, newest })
}

/// The digest of what `chain` delivered since its last digest, signed and chained, made the
/// chain's last (its file is written by [`write_last_digest`]).
fn next_digest(account: &str, region: &str, chain: &mut Chain, signer: &Ed25519SigningKey, now: Timestamp) {
    let (date, stamp) = name_time(now, true);
    let object = format!(
        "AWSLogs/{account}/CloudTrail-Digest/{region}/{date}/{account}_CloudTrail-Digest_{region}_ferrokms_{region}_{stamp}.json.gz"
    );
    let iso = |ms: i64| Timestamp::from_unix_millis(ms).rfc3339();
    let start =
        chain.last_end.unwrap_or_else(|| chain.pending.iter().map(|d| d.oldest).min().unwrap_or(now.unix_millis()));
    let end = now.rfc3339();
    let files: Vec<Value> = chain
        .pending
        .iter()
        .map(|d| {
            json!({"s3Bucket": LOCAL_BUCKET, "s3Object": d.object, "hashValue": d.hash, "hashAlgorithm": "SHA-256",
                   "oldestEventTime": iso(d.oldest), "newestEventTime": iso(d.newest)})
        })
        .collect();
    let digest = json!({
        "awsAccountId": account,
        "digestStartTime": iso(start),
        "digestEndTime": end,
        "digestS3Bucket": LOCAL_BUCKET,
        "digestS3Object": object,
        "digestPublicKeyFingerprint": hex_sha256(signer.public_key()),
        "digestSignatureAlgorithm": "Ed25519",
        "newestEventTime": chain.pending.iter().map(|d| d.newest).max().map(iso),
        "oldestEventTime": chain.pending.iter().map(|d| d.oldest).min().map(iso),
        "previousDigestS3Bucket": chain.previous_object.as_ref().map(|_| LOCAL_BUCKET),
        "previousDigestS3Object": chain.previous_object,
        "previousDigestHashValue": chain.previous_hash,
        "previousDigestHashAlgorithm": chain.previous_hash.as_ref().map(|_| "SHA-256"),
        "previousDigestSignature": chain.previous_signature,
        "logFiles": files,
    });
    let text = digest.to_string();
    let hash = hex_sha256(text.as_bytes());
    let signature =
        hex::encode(signer.sign(string_to_sign(&end, &object, &hash, chain.previous_signature.as_deref()).as_bytes()));
    chain.pending.clear();
    chain.previous_object = Some(object);
    chain.previous_hash = Some(hash);
    chain.previous_signature = Some(signature);
    chain.last_end = Some(now.unix_millis());
    chain.last_text = Some(text);
}

/// What [`validate`] checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Validated {
    /// Digest files whose signature and chain held.
    pub digests: usize,
    /// Log files whose hash matched their digest's.
    pub log_files: usize,
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

/// Checks a delivered trail under `dir` as `aws cloudtrail validate-logs` checks one: every
/// digest's signature (by `public_key`, the audit trail's Ed25519 key) and its link to the
/// previous digest, and every log file a digest lists against its hash. A log file removed or
/// edited, a digest removed, edited or out of the chain, is named.
///
/// # Errors
/// Every problem found, one per line.
pub fn validate(dir: &Path, public_key: &[u8]) -> Result<Validated, Vec<String>> {
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
        let chain_key = format!("{}/{}", str_of("awsAccountId"), object.split('/').nth(3).unwrap_or_default());
        let signature = std::fs::read_to_string(format!("{}.sig", path.display())).unwrap_or_default();
        let previous_signature = digest.get("previousDigestSignature").and_then(Value::as_str);
        let signed = string_to_sign(&str_of("digestEndTime"), &object, &hex_sha256(&text), previous_signature);
        let signature_ok = hex::decode(signature.trim())
            .is_ok_and(|s| kms_crypto::signing::ed25519_verify(public_key, signed.as_bytes(), &s));
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
mod tests {
    use super::*;

    #[test]
    fn names_follow_cloudtrail() {
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        assert_eq!(name_time(t, false), ("2023/11/14".to_owned(), "20231114T2213Z".to_owned()));
        assert_eq!(name_time(t, true).1, "20231114T221320Z");
        assert_eq!(string_to_sign("E", "o", "h", None), "E\nlocal/o\nh\nnull");
    }
}
