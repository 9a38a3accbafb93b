//! Root-key rotation for file root keys, while the server runs (`ferrokms root rotate`).
//!
//! 1. *Announce*: a new key file beside the root key (`<root>.next`, 0600) and its check value
//!    in the store (`root_key_next`). Servers see it within a second and from then on wrap new
//!    secrets with it, unwrapping with either root ([`kms_crypto::RotatingRoot`]).
//! 2. *Re-wrap*: every key material, access key secret and stored secret (the audit digest key,
//!    the forward-access token key) is unwrapped with whichever root opens it and wrapped with
//!    the new one, each replaced only if still as read (a concurrent change wins and is read
//!    again on the next pass). Passes repeat until one finds nothing under the old root.
//! 3. *Finish*: the store's root record becomes the new root's, `root_key_next` is cleared, and
//!    the files turn: `<root>` → `<root>.previous`, `<root>.next` → `<root>`. Servers drop the
//!    old root.
//!
//! Every step is idempotent, so a rotation killed at any point is completed by running it again;
//! a server started in between finishes the file renames of a rotation whose record was
//! already switched (see [`recover_files`]). Secrets sealed for a short time (import tokens) are
//! not re-wrapped: ones issued before the rotation finished must be requested again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kms_core::Rng;
use kms_core::ids::KeyArn;
use kms_crypto::{FileRootKey, RootKeyError, RootKeyProvider};
use kms_store::Store;
use serde::{Deserialize, Serialize};

/// The setting announcing the next root: its check value (empty when no rotation is under way).
pub const NEXT_SETTING: &str = "root_key_next";
/// Secrets kept in settings, hex-encoded, with the associated data they were wrapped with.
const WRAPPED_SETTINGS: &[(&str, &[u8])] =
    &[("audit_signing_key", b"ferrokms:audit-digest-key"), ("forward_access_key", b"ferrokms:forward-access-key")];
/// Records read per page while re-wrapping.
const PAGE: usize = 500;

/// An operator's action on the root key as an audit record (`eventSource` `ferrokms.admin`,
/// no account: the whole server's).
pub fn audit_event(
    rng: &dyn Rng,
    time: kms_core::Timestamp,
    name: &str,
    details: serde_json::Value,
) -> kms_core::audit::AuditEvent {
    let event_id = crate::audit::new_event_id(rng);
    let record = serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "Operator", "invokedBy": "ferrokms root"},
        "eventTime": time.rfc3339(),
        "eventSource": "ferrokms.admin",
        "eventName": name,
        "sourceIPAddress": "ferrokms root",
        "userAgent": "ferrokms root",
        "requestParameters": null,
        "responseElements": null,
        "additionalEventData": details,
        "eventID": event_id,
        "readOnly": false,
        "resources": null,
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "eventCategory": "Management",
    });
    kms_core::audit::AuditEvent {
        record: kms_core::audit::canonical_text(&record),
        event_id,
        time,
        event_name: name.to_owned(),
        key_arn: None,
        other_key_arn: None,
        principal: "ferrokms root".to_owned(),
        error_code: None,
    }
}

/// `<root>.next`: the root a rotation moves to.
pub fn next_path(root: &Path) -> PathBuf {
    PathBuf::from(format!("{}.next", root.display()))
}

/// `<root>.previous`: the root a finished rotation moved from (kept for backups made before
/// it; destroy it when none needs it).
pub fn previous_path(root: &Path) -> PathBuf {
    PathBuf::from(format!("{}.previous", root.display()))
}

/// What `root_key_next` holds.
#[derive(Debug, Serialize, Deserialize)]
struct NextRecord {
    check: String,
}

/// How far a re-wrap went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Key materials wrapped again.
    pub materials: usize,
    /// Access key secrets wrapped again.
    pub access_keys: usize,
    /// Secrets in settings wrapped again.
    pub settings: usize,
    /// Secrets found already under the new root.
    pub already: usize,
}

impl Progress {
    /// Secrets wrapped again.
    pub const fn rewrapped(&self) -> usize {
        self.materials + self.access_keys + self.settings
    }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Which root opens `wrapped`: `Ok(None)` when the new one does already, `Ok(Some(secret))`
/// when only the old one does.
fn opened(
    old: &dyn RootKeyProvider,
    next: &dyn RootKeyProvider,
    aad: &[u8],
    wrapped: &[u8],
) -> Result<Option<kms_crypto::SecretBytes>, String> {
    if next.unwrap(aad, wrapped).is_ok() {
        return Ok(None);
    }
    old.unwrap(aad, wrapped).map(Some).map_err(|e| match e {
        RootKeyError::Unwrap => "a stored secret opens under neither the current nor the next root key".to_owned(),
        other => other.to_string(),
    })
}

/// The next root: loaded from `<root>.next`, or created there; announced to the servers.
///
/// # Errors
/// A message naming the file or the store failure.
pub async fn announce(store: &dyn Store, root: &Path, rng: &dyn Rng) -> Result<Arc<dyn RootKeyProvider>, String> {
    let path = next_path(root);
    let next = if path.exists() { FileRootKey::load(&path) } else { FileRootKey::create(&path, rng) }.map_err(text)?;
    let check =
        hex::encode(next.wrap(crate::bootstrap::ROOT_CHECK_AAD, crate::bootstrap::ROOT_CHECK_TEXT).map_err(text)?);
    let record = serde_json::to_string(&NextRecord { check }).map_err(text)?;
    store.set_setting(NEXT_SETTING, &record).await.map_err(text)?;
    Ok(Arc::new(next))
}

/// The next root announced in the store, if a rotation is under way and `<root>.next` opens
/// its check value.
///
/// # Errors
/// The store's failure.
pub async fn announced(store: &dyn Store, root: &Path) -> Result<Option<Arc<dyn RootKeyProvider>>, String> {
    let Some(record) = store.setting(NEXT_SETTING).await.map_err(text)?.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let record: NextRecord = serde_json::from_str(&record).map_err(text)?;
    let Ok(next) = FileRootKey::load(&next_path(root)) else { return Ok(None) };
    let check = hex::decode(&record.check).map_err(text)?;
    Ok(next
        .unwrap(crate::bootstrap::ROOT_CHECK_AAD, &check)
        .is_ok()
        .then(|| Arc::new(next) as Arc<dyn RootKeyProvider>))
}

/// One pass over every stored secret, wrapping with `next` what only `old` opens; at most
/// `limit` re-wraps (then it stops early). `report` sees the progress every page.
///
/// # Errors
/// A secret neither root opens, or a store failure.
pub async fn rewrap(
    store: &dyn Store,
    old: &dyn RootKeyProvider,
    next: &dyn RootKeyProvider,
    limit: Option<usize>,
    report: &mut dyn FnMut(&Progress),
) -> Result<Progress, String> {
    let mut progress = Progress::default();
    let room = |p: &Progress| limit.is_none_or(|l| p.rewrapped() < l);
    let mut after = None;
    'materials: loop {
        let page = store.materials_after(after, PAGE).await.map_err(text)?;
        let Some(last) = page.last() else { break };
        after = Some((last.key_id, last.material_id));
        for m in &page {
            if !room(&progress) {
                break 'materials;
            }
            // The key's ARN is in the associated data; a key deleted meanwhile needs nothing.
            let Some(key) = store.key(m.key_id).await.map_err(text)? else { continue };
            let arn = KeyArn { region: key.region.clone(), account: key.account.clone(), key_id: key.key_id };
            let aad = crate::service::material_aad(&arn, m.material_id);
            match opened(old, next, &aad, &m.wrapped)? {
                None => progress.already += 1,
                Some(secret) => {
                    let wrapped = next.wrap(&aad, secret.expose_secret()).map_err(text)?;
                    if store.rewrap_material(m.key_id, m.material_id, &m.wrapped, &wrapped).await.map_err(text)? {
                        progress.materials += 1;
                    }
                }
            }
        }
        report(&progress);
    }
    let mut after = String::new();
    'access: loop {
        let page = store.access_keys_after(&after, PAGE).await.map_err(text)?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.access_key_id);
        for k in &page {
            if !room(&progress) {
                break 'access;
            }
            let aad = crate::auth::secret_aad(&k.access_key_id);
            match opened(old, next, &aad, &k.wrapped_secret)? {
                None => progress.already += 1,
                Some(secret) => {
                    let wrapped = next.wrap(&aad, secret.expose_secret()).map_err(text)?;
                    if store.rewrap_access_key(&k.access_key_id, &k.wrapped_secret, &wrapped).await.map_err(text)? {
                        progress.access_keys += 1;
                    }
                }
            }
        }
        report(&progress);
    }
    for (name, aad) in WRAPPED_SETTINGS {
        if !room(&progress) {
            break;
        }
        let Some(stored) = store.setting(name).await.map_err(text)? else { continue };
        let wrapped = hex::decode(&stored).map_err(text)?;
        match opened(old, next, aad, &wrapped)? {
            None => progress.already += 1,
            Some(secret) => {
                let again = next.wrap(aad, secret.expose_secret()).map_err(text)?;
                store.set_setting(name, &hex::encode(again)).await.map_err(text)?;
                progress.settings += 1;
            }
        }
    }
    report(&progress);
    Ok(progress)
}

/// Makes the next root the root: the store's record, then the files.
///
/// # Errors
/// A store or file failure (running it again completes it).
pub async fn finish(store: &dyn Store, root: &Path, next: &dyn RootKeyProvider) -> Result<(), String> {
    let recorded =
        store.setting(crate::bootstrap::ROOT_KEY_SETTING).await.map_err(text)?.ok_or("no root key record")?;
    let mut record: serde_json::Value = serde_json::from_str(&recorded).map_err(text)?;
    let check =
        hex::encode(next.wrap(crate::bootstrap::ROOT_CHECK_AAD, crate::bootstrap::ROOT_CHECK_TEXT).map_err(text)?);
    if let Some(map) = record.as_object_mut() {
        map.insert("check".into(), serde_json::Value::String(check));
    }
    store.set_setting(crate::bootstrap::ROOT_KEY_SETTING, &record.to_string()).await.map_err(text)?;
    store.set_setting(NEXT_SETTING, "").await.map_err(text)?;
    turn_files(root).map_err(text)
}

/// `<root>` → `<root>.previous`, `<root>.next` → `<root>`, each step only if still to do.
fn turn_files(root: &Path) -> std::io::Result<()> {
    let next = next_path(root);
    if !next.exists() {
        return Ok(());
    }
    if root.exists() {
        std::fs::rename(root, previous_path(root))?;
    }
    std::fs::rename(&next, root)
}

/// At start: a rotation whose record was switched but whose files were not turned (killed in
/// between) is completed, if `<root>.next` opens the recorded check value. Returns whether
/// files were turned.
///
/// # Errors
/// A file that cannot be renamed or read.
pub fn recover_files(root: &Path, recorded_check: &[u8]) -> Result<bool, RootKeyError> {
    let next = next_path(root);
    if !next.exists() {
        return Ok(false);
    }
    let next_opens = FileRootKey::load(&next)?.unwrap(crate::bootstrap::ROOT_CHECK_AAD, recorded_check).is_ok();
    let current_opens = root.exists()
        && FileRootKey::load(root).is_ok_and(|r| r.unwrap(crate::bootstrap::ROOT_CHECK_AAD, recorded_check).is_ok());
    if next_opens && !current_opens {
        turn_files(root).map_err(|source| RootKeyError::Io { path: root.to_owned(), source })?;
        return Ok(true);
    }
    Ok(false)
}

/// Follows rotations announced in the store (every `poll`): starts wrapping with the next root
/// once it is announced, drops the old one once the rotation finished.
pub fn follow(
    store: Arc<dyn Store>,
    rotating: Arc<kms_crypto::RotatingRoot>,
    root: PathBuf,
    poll: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            match announced(store.as_ref(), &root).await {
                Ok(Some(next)) if !rotating.rotating() => {
                    tracing::info!("root key rotation: wrapping with {}", next.describe());
                    rotating.begin(next);
                }
                Ok(None) if rotating.rotating() => {
                    tracing::info!("root key rotation finished");
                    rotating.finish();
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("root key rotation state unreadable: {e}"),
            }
        }
    })
}
