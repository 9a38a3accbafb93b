//! Root-key rotation while the servers run (`ferrokms root rotate`), for every root-key
//! provider: a new key file, a new passphrase, or a new key in the same HSM token.
//!
//! 1. *Announce*: the next root goes into the store's `root_key_next` record with a check value
//!    only it opens. A file or passphrase root's next AES key is in the record wrapped by the
//!    current root, so that every node — each with its own copy of the root, on its own machine
//!    — can take it (a file node also writes it to `<root>.next`, 0600, beside its own root
//!    file); an HSM root's next key is generated in the token and the record names its label.
//!    Servers see the record within a second and from then on wrap new secrets with the next
//!    root, unwrapping with either ([`kms_crypto::RotatingRoot`]).
//! 2. *Re-wrap*: every key material, access key secret and stored secret (the audit digest key,
//!    the forward-access token key) is unwrapped with whichever root opens it and wrapped with
//!    the new one, each replaced only if still as read (a concurrent change wins and is read
//!    again on the next pass). Passes repeat until one finds nothing under the old root.
//! 3. *Finish*: the store's root record becomes the next root's (its check value, a passphrase
//!    root's salt and costs, an HSM root's key label), `root_key_next` is cleared, and each file
//!    node turns its files: `<root>` → `<root>.previous`, `<root>.next` → `<root>`. Servers drop
//!    the old root. A passphrase node needs the new passphrase at its next start; an HSM node
//!    configured with the old key label is moved to the new one (the record lists retired
//!    labels).
//!
//! Every step is idempotent, so a rotation killed at any point is completed by running it again;
//! a server started in between takes the announced root, and finishes the file turn of a
//! rotation whose record was already switched (see [`recover_files`]). Secrets sealed for a
//! short time (import tokens) are not re-wrapped: ones issued before the rotation finished must
//! be requested again.
//!
//! While a file or passphrase rotation is under way the store holds the next root wrapped by the
//! old one; the record is cleared when it finishes (a store copy taken meanwhile opens with the
//! old root, as it did before the rotation).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kms_core::Rng;
use kms_core::ids::KeyArn;
use kms_crypto::{
    FileRootKey, KeyMaterial, MissingKey, PassphraseParams, PassphraseRootKey, Pkcs11Location, Pkcs11RootKey,
    RootKeyError, RootKeyProvider,
};
use kms_store::Store;
use serde::{Deserialize, Serialize};

use crate::bootstrap::{PassphraseFields, ROOT_CHECK_AAD, ROOT_CHECK_TEXT, ROOT_KEY_SETTING};
use crate::config::{RootKeySource, ServerConfig};

/// The setting announcing the next root (empty when no rotation is under way).
pub const NEXT_SETTING: &str = "root_key_next";
/// What the announced next root's AES key is wrapped with by the current root.
const NEXT_AAD: &[u8] = b"ferrokms:root-key-next";
/// Secrets kept in settings, hex-encoded, with the associated data they were wrapped with.
pub const WRAPPED_SETTINGS: &[(&str, &[u8])] = &[
    ("audit_signing_key", b"ferrokms:audit-digest-key"),
    ("forward_access_key", b"ferrokms:forward-access-key"),
    ("cloudtrail_signing_key", b"ferrokms:cloudtrail-digest-key"),
];
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
#[derive(Debug, Default, Serialize, Deserialize)]
struct NextRecord {
    /// The check value only the next root opens (hex).
    check: String,
    /// File and passphrase roots: the next root's AES key wrapped by the current root (hex).
    /// Absent in rotations announced before it existed: the key is then only in `<root>.next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped: Option<String>,
    /// Passphrase roots: the next root's Argon2id salt and costs.
    #[serde(flatten)]
    passphrase: PassphraseFields,
    /// HSM roots: the next key's label in the same token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_label: Option<String>,
}

/// How this node opens roots, from its configuration (never the passphrase: a running node
/// takes a next passphrase root from the announcement).
#[derive(Clone)]
pub enum Opener {
    /// A key file; the next one is written to `<root>.next`.
    File(PathBuf),
    /// A passphrase-derived root.
    Passphrase,
    /// A key in an HSM token; the next one is another key in the same token.
    Pkcs11 {
        /// The module, token and current key.
        location: Pkcs11Location,
        /// The token's user PIN.
        pin: zeroize::Zeroizing<String>,
    },
}

impl Opener {
    /// The opener `config`'s root-key provider implies.
    pub fn new(config: &ServerConfig) -> Self {
        match &config.root_key_provider {
            RootKeySource::File => Self::File(config.root_key_path()),
            RootKeySource::Passphrase(_) => Self::Passphrase,
            RootKeySource::Pkcs11 { location, pin } => Self::Pkcs11 { location: location.clone(), pin: pin.clone() },
        }
    }
}

/// What a rotation moves to, as `ferrokms root rotate` is asked.
pub enum NextRoot {
    /// A new random key file (`<root>.next`, then `<root>`).
    File,
    /// A root derived from this new passphrase (a fresh salt, OWASP's recommended costs).
    Passphrase(zeroize::Zeroizing<String>),
    /// A new AES key generated in the same token under this label (`None`: the label of a
    /// rotation already announced, or the current label with a time suffix).
    Pkcs11(Option<String>),
}

/// The announced rotation, if one is under way and not already recorded as finished.
async fn pending(store: &dyn Store) -> Result<Option<NextRecord>, String> {
    let Some(text) = store.setting(NEXT_SETTING).await.map_err(text)?.filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let record: NextRecord = serde_json::from_str(&text).map_err(text_of)?;
    // Killed between switching the root record and clearing this one: finished.
    if root_check(store).await?.is_some_and(|check| check == record.check) {
        return Ok(None);
    }
    Ok(Some(record))
}

/// The recorded root's check value (hex), if the store has a root.
async fn root_check(store: &dyn Store) -> Result<Option<String>, String> {
    let Some(text) = store.setting(ROOT_KEY_SETTING).await.map_err(text)? else { return Ok(None) };
    let record: serde_json::Value = serde_json::from_str(&text).map_err(text_of)?;
    Ok(record.get("check").and_then(serde_json::Value::as_str).map(str::to_owned))
}

fn text_of(e: serde_json::Error) -> String {
    format!("root key record: {e}")
}

fn unhex(value: &str) -> Result<Vec<u8>, String> {
    hex::decode(value).map_err(|e| format!("root key record: {e}"))
}

/// The next root's AES key from the announcement, unwrapped by `current`.
fn next_material(current: &dyn RootKeyProvider, wrapped: &str) -> Result<KeyMaterial, String> {
    let secret = current.unwrap(NEXT_AAD, &unhex(wrapped)?).map_err(|e| match e {
        RootKeyError::Unwrap => "the announced next root key is not wrapped by this node's root key".to_owned(),
        other => other.to_string(),
    })?;
    KeyMaterial::from_slice(secret.expose_secret()).ok_or_else(|| "the announced next root key is malformed".into())
}

/// Opens the root `record` announces, on this node, and checks it is the announced one.
fn open_next(
    record: &NextRecord,
    current: &dyn RootKeyProvider,
    opener: &Opener,
) -> Result<Arc<dyn RootKeyProvider>, String> {
    let next: Arc<dyn RootKeyProvider> = match opener {
        Opener::File(root) => {
            let path = next_path(root);
            let check = unhex(&record.check)?;
            let on_disk = FileRootKey::load(&path).ok().filter(|k| k.unwrap(ROOT_CHECK_AAD, &check).is_ok());
            match (on_disk, &record.wrapped) {
                (Some(key), _) => Arc::new(key),
                (None, Some(wrapped)) => {
                    // This node's copy of the next root, beside its own root file.
                    let material = next_material(current, wrapped)?;
                    if path.exists() {
                        std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    }
                    Arc::new(FileRootKey::create_with(&path, &material).map_err(text)?)
                }
                (None, None) => return Err(format!("the next root key file {} is missing", path.display())),
            }
        }
        Opener::Passphrase => {
            let wrapped = record.wrapped.as_deref().ok_or("the announced passphrase root is missing its key")?;
            Arc::new(PassphraseRootKey::from_material(&next_material(current, wrapped)?).map_err(text)?)
        }
        Opener::Pkcs11 { location, pin } => {
            let key_label = record.key_label.clone().ok_or("the announced HSM root is missing its key label")?;
            let location = Pkcs11Location { key_label, ..location.clone() };
            Arc::new(Pkcs11RootKey::open(location, pin, MissingKey::Refuse).map_err(text)?)
        }
    };
    if next.unwrap(ROOT_CHECK_AAD, &unhex(&record.check)?).is_err() {
        return Err(format!("{} does not open the announced next root's check value", next.describe()));
    }
    Ok(next)
}

/// The next root announced in the store, opened on this node, if a rotation is under way.
///
/// # Errors
/// The store's failure, or a next root this node cannot open.
pub async fn announced(
    store: &dyn Store,
    current: &dyn RootKeyProvider,
    opener: &Opener,
) -> Result<Option<Arc<dyn RootKeyProvider>>, String> {
    match pending(store).await? {
        Some(record) => open_next(&record, current, opener).map(Some),
        None => Ok(None),
    }
}

/// Announces the next root (or returns the one already announced, which a run that was
/// stopped or killed goes on with).
///
/// # Errors
/// A request that disagrees with the rotation already under way, or a file, HSM or store failure.
pub async fn announce(
    store: &dyn Store,
    current: &dyn RootKeyProvider,
    opener: &Opener,
    next: NextRoot,
    rng: &dyn Rng,
) -> Result<Arc<dyn RootKeyProvider>, String> {
    if let Some(record) = pending(store).await? {
        let root = open_next(&record, current, opener)?;
        match (&next, opener) {
            (NextRoot::Passphrase(passphrase), Opener::Passphrase) => {
                let (salt, params) =
                    record.passphrase.salt_and_params().map_err(|e| format!("root key record: {e}"))?;
                let derived = PassphraseRootKey::derive(passphrase.as_bytes(), &salt, params).map_err(text)?;
                if derived.unwrap(ROOT_CHECK_AAD, &unhex(&record.check)?).is_err() {
                    return Err("a rotation to another passphrase is under way; give that passphrase to go on".into());
                }
            }
            (NextRoot::Pkcs11(Some(label)), Opener::Pkcs11 { .. }) if record.key_label.as_ref() != Some(label) => {
                return Err(format!(
                    "a rotation to the HSM key '{}' is under way; run again without --new-pkcs11-key-label or with that label",
                    record.key_label.unwrap_or_default()
                ));
            }
            _ => {}
        }
        return Ok(root);
    }
    let mut record = NextRecord::default();
    let root: Arc<dyn RootKeyProvider> = match (next, opener) {
        (NextRoot::File, Opener::File(root)) => {
            let material = KeyMaterial::generate(rng);
            let path = next_path(root);
            // Not announced, so nothing was wrapped with it: a leftover of a run killed early.
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let key = FileRootKey::create_with(&path, &material).map_err(text)?;
            record.wrapped = Some(hex::encode(current.wrap(NEXT_AAD, material.expose_secret()).map_err(text)?));
            Arc::new(key)
        }
        (NextRoot::Passphrase(passphrase), Opener::Passphrase) => {
            let salt = kms_crypto::random_array::<16>(rng);
            let params = PassphraseParams::RECOMMENDED;
            let material = PassphraseRootKey::derive_material(passphrase.as_bytes(), &salt, params).map_err(text)?;
            record.wrapped = Some(hex::encode(current.wrap(NEXT_AAD, material.expose_secret()).map_err(text)?));
            record.passphrase = PassphraseFields::new(&salt, params);
            Arc::new(PassphraseRootKey::from_material(&material).map_err(text)?)
        }
        (NextRoot::Pkcs11(label), Opener::Pkcs11 { location, pin }) => {
            let key_label = label.unwrap_or_else(|| {
                let now = kms_core::Clock::now(&crate::clock::SystemClock).unix_millis() / 1000;
                format!("{}-{now}", location.key_label)
            });
            if key_label == location.key_label {
                return Err(format!("the HSM key '{key_label}' is the current root; name a new label"));
            }
            let location = Pkcs11Location { key_label: key_label.clone(), ..location.clone() };
            record.key_label = Some(key_label);
            Arc::new(Pkcs11RootKey::open(location, pin, MissingKey::Create).map_err(text)?)
        }
        _ => return Err("the next root key must come from the same provider as the current one".into()),
    };
    record.check = hex::encode(root.wrap(ROOT_CHECK_AAD, ROOT_CHECK_TEXT).map_err(text)?);
    let text_record = serde_json::to_string(&record).map_err(text)?;
    store.set_setting(NEXT_SETTING, &text_record).await.map_err(text)?;
    Ok(root)
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

/// Makes the announced root the root: the store's record (check value, and a passphrase root's
/// salt and costs or an HSM root's key label), then this node's files.
///
/// # Errors
/// A store or file failure (running it again completes it).
pub async fn finish(store: &dyn Store, opener: &Opener) -> Result<(), String> {
    if let Some(next) = pending(store).await? {
        let recorded = store.setting(ROOT_KEY_SETTING).await.map_err(text)?.ok_or("no root key record")?;
        let mut record: serde_json::Value = serde_json::from_str(&recorded).map_err(text_of)?;
        let map = record.as_object_mut().ok_or("root key record: not an object")?;
        map.insert("check".into(), next.check.clone().into());
        if let serde_json::Value::Object(fields) = serde_json::to_value(&next.passphrase).map_err(text)? {
            map.extend(fields);
        }
        if let Some(label) = next.key_label {
            let old = map.insert("key_label".into(), label.into());
            let retired = map.entry("retired_key_labels").or_insert_with(|| serde_json::json!([]));
            if let (Some(old), Some(list)) = (old, retired.as_array_mut()) {
                list.push(old);
            }
        }
        store.set_setting(ROOT_KEY_SETTING, &record.to_string()).await.map_err(text)?;
    }
    store.set_setting(NEXT_SETTING, "").await.map_err(text)?;
    settle_files(store, opener).await
}

/// Completes a rotation whose root record was already switched when it was killed (before it
/// cleared its announcement). Returns whether there was one.
///
/// # Errors
/// A store or file failure.
pub async fn complete_switched(store: &dyn Store, opener: &Opener) -> Result<bool, String> {
    let announced = store.setting(NEXT_SETTING).await.map_err(text)?.is_some_and(|r| !r.is_empty());
    if announced && pending(store).await?.is_none() {
        finish(store, opener).await?;
        return Ok(true);
    }
    Ok(false)
}

/// A file node's turn once a rotation finished: its files follow the store's root record.
async fn settle_files(store: &dyn Store, opener: &Opener) -> Result<(), String> {
    let (Opener::File(root), Some(check)) = (opener, root_check(store).await?) else { return Ok(()) };
    recover_files(root, &unhex(&check)?).map(|_| ()).map_err(text)
}

/// `<root>` → `<root>.previous`, `<root>.next` → `<root>`, if `<root>.next` is the recorded root
/// (opens `check`). Safe against another process turning the same files at the same time (a
/// server and `ferrokms root rotate` on one machine): the root being replaced is pinned by a
/// hard link and kept only if it is still the old one, and the final rename is atomic, so
/// `<root>` always exists.
fn turn_files(root: &Path, check: &[u8]) -> std::io::Result<bool> {
    let next = next_path(root);
    let opens = |path: &Path| FileRootKey::load(path).is_ok_and(|k| k.unwrap(ROOT_CHECK_AAD, check).is_ok());
    if !next.exists() || !opens(&next) {
        return Ok(false);
    }
    static TURNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let turn = TURNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pin = PathBuf::from(format!("{}.turning-{}-{turn}", root.display(), std::process::id()));
    let _ = std::fs::remove_file(&pin);
    match std::fs::hard_link(root, &pin) {
        Ok(()) if opens(&pin) => std::fs::remove_file(&pin)?,
        Ok(()) => std::fs::rename(&pin, previous_path(root))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match std::fs::rename(&next, root) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// At start: a rotation whose record was switched but whose files were not turned (killed in
/// between, or this node was down when it finished) is completed, if `<root>.next` opens the
/// recorded check value. Returns whether files were turned.
///
/// # Errors
/// A file that cannot be renamed.
pub fn recover_files(root: &Path, recorded_check: &[u8]) -> Result<bool, RootKeyError> {
    turn_files(root, recorded_check).map_err(|source| RootKeyError::Io { path: root.to_owned(), source })
}

/// The store's root, opened with `config` (for `ferrokms root rotate`); refuses a store that
/// has none yet rather than creating one.
///
/// # Errors
/// No root recorded, or the configured root is not the recorded one.
pub async fn current_root(
    config: &ServerConfig,
    store: &dyn Store,
    rng: &dyn Rng,
) -> Result<Arc<dyn RootKeyProvider>, String> {
    if store.setting(ROOT_KEY_SETTING).await.map_err(text)?.is_none() {
        return Err(format!("{} has no root key yet: start the server or run `ferrokms init` first", store.describe()));
    }
    crate::bootstrap::root_key(config, store, rng).await.map_err(text)
}

/// Follows rotations announced in the store (every `poll`): starts wrapping with the next root
/// once it is announced, drops the old one (and, on a file node, turns its files) once the
/// rotation finished.
pub fn follow(
    store: Arc<dyn Store>,
    rotating: Arc<kms_crypto::RotatingRoot>,
    opener: Opener,
    poll: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(poll).await;
            let step = async {
                match (pending(store.as_ref()).await?, rotating.rotating()) {
                    (Some(record), false) => {
                        let next = open_next(&record, rotating.as_ref(), &opener)?;
                        tracing::info!("root key rotation: wrapping with {}", next.describe());
                        rotating.begin(next);
                    }
                    (None, true) => {
                        settle_files(store.as_ref(), &opener).await?;
                        tracing::info!("root key rotation finished");
                        rotating.finish();
                    }
                    _ => {}
                }
                Ok::<_, String>(())
            };
            if let Err(e) = step.await {
                tracing::warn!("root key rotation: {e}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// A server and `ferrokms root rotate` turning the same files at once: whatever the
    /// interleaving, `<root>` always exists, ends as the new root, and `<root>.previous` is the
    /// old one.
    #[test]
    fn concurrent_turns_keep_a_root_file_and_the_old_one() {
        for _ in 0..50 {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("root.key");
            let old = FileRootKey::create(&root, &kms_crypto::SystemRng).unwrap();
            let next = FileRootKey::create(&next_path(&root), &kms_crypto::SystemRng).unwrap();
            let check = next.wrap(ROOT_CHECK_AAD, ROOT_CHECK_TEXT).unwrap();
            let (old_bytes, next_bytes) = (std::fs::read(&root).unwrap(), std::fs::read(next_path(&root)).unwrap());
            let stop = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|s| {
                s.spawn(|| {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        assert!(root.exists(), "the root file vanished mid-turn");
                    }
                });
                let turners: Vec<_> = (0..2).map(|_| s.spawn(|| turn_files(&root, &check).unwrap())).collect();
                let turned: Vec<bool> = turners.into_iter().map(|t| t.join().unwrap()).collect();
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                assert!(turned.iter().any(|t| *t), "one of them turned the files");
            });
            assert_eq!(std::fs::read(&root).unwrap(), next_bytes);
            assert_eq!(std::fs::read(previous_path(&root)).unwrap(), old_bytes);
            assert!(!next_path(&root).exists());
            assert!(!turn_files(&root, &check).unwrap(), "nothing left to turn");
            drop(old);
        }
    }
}
