//! First start and every start: the data directory, its lock, the root key, the store, the
//! account, and the admin credentials (created once, shown once).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use kms_core::ids::AccountId;
use kms_core::{Clock, Rng};
use kms_crypto::{
    FileRootKey, MissingKey, PassphraseParams, PassphraseRootKey, Pkcs11RootKey, RootKeyError, RootKeyProvider,
    SecretBytes, random_array,
};

use crate::config::RootKeySource;
use kms_store::{
    AccessKeyRecord, IdentityPolicyRecord, PrincipalRecord, PrincipalType, SqliteStore, Store, StoreError,
};

use crate::auth::secret_aad;
use crate::config::ServerConfig;

const ACCOUNT_SETTING: &str = "account_id";
const ADMIN_KEY_SETTING: &str = "admin_access_key_id";
const LOCK_FILE: &str = "ferrokms.lock";

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory cannot be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another process holds the data directory.
    #[error(
        "data directory {0} is in use by another ferrokms process (it holds {LOCK_FILE}); \
         two servers must not share one SQLite data directory"
    )]
    Locked(PathBuf),
    /// The database exists but its root key does not.
    #[error(
        "the store {database} is initialized but the root key file {root_key} does not exist; refusing to create \
         a new root key that could not decrypt the existing keys (restore the root key file or point \
         --root-key-file at it; every node of a cluster needs the same root key file)"
    )]
    MissingRootKey {
        /// The store.
        database: String,
        /// The missing root key file.
        root_key: PathBuf,
    },
    /// The configured root key is not the one the store's secrets are wrapped by.
    #[error("the store {database} cannot be opened with this root key: {why}")]
    RootKeyMismatch {
        /// The store.
        database: String,
        /// What differs.
        why: String,
    },
    /// Well-known development credentials were asked for on a non-loopback address.
    #[error(
        "--insecure-dev-credentials accepts the well-known key test/test and is refused on the non-loopback \
         address {0}; listen on 127.0.0.1 or drop the flag"
    )]
    InsecureOnNetwork(std::net::SocketAddr),
    /// Plain HTTP was asked for on a non-loopback address.
    #[error(
        "refusing to serve plain HTTP on the non-loopback address {0}: SigV4 protects requests from tampering but \
         not plaintext and data keys in answers from eavesdroppers; give --tls-cert and --tls-key (or run \
         `ferrokms init --self-signed`), listen on 127.0.0.1, or accept the risk with --insecure-http"
    )]
    PlainHttpOnNetwork(std::net::SocketAddr),
    /// The TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The root key could not be loaded or created.
    #[error(transparent)]
    RootKey(#[from] RootKeyError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store belongs to another account than the one asked for.
    #[error(
        "the store {store} was created for account {stored}, not {asked}; the account id is chosen once, when the \
         data directory (or database) is created"
    )]
    AccountMismatch {
        /// The store.
        store: String,
        /// The account it holds.
        stored: String,
        /// The account asked for (`--account-id`).
        asked: String,
    },
    /// Listening failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Admin credentials created on the first start.
pub struct AdminCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretBytes,
    /// Where they were written (mode 0600).
    pub file: PathBuf,
}

/// What start-up prepared.
pub struct Prepared {
    /// The data directory lock, held for the life of the server.
    pub lock: fs::File,
    /// The root key.
    pub root: Arc<dyn RootKeyProvider>,
    /// The same root, able to take a rotation's next root (`ferrokms root rotate`).
    pub rotating: Arc<kms_crypto::RotatingRoot>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The account that owns the admin principal (and the dev credentials).
    pub account: AccountId,
    /// Present only on the first start.
    pub new_admin: Option<AdminCredentials>,
}

fn data_dir_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::DataDir { path: path.to_owned(), source }
}

/// Creates the data directory (mode 0700), tightens an existing one that others may enter, and
/// takes its exclusive lock (held while the returned file is open).
///
/// # Errors
/// [`StartError::DataDir`] when it cannot be made private, [`StartError::Locked`] when another
/// process holds it.
pub fn lock_data_dir(dir: &Path) -> Result<fs::File, StartError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(data_dir_error(dir))?;
    private_directory(dir).map_err(data_dir_error(dir))?;
    let mut options = fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let lock = options.open(dir.join(LOCK_FILE)).map_err(data_dir_error(dir))?;
    #[cfg(unix)]
    lock.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600)).map_err(data_dir_error(dir))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(StartError::Locked(dir.to_owned())),
        Err(fs::TryLockError::Error(e)) => Err(StartError::DataDir { path: dir.to_owned(), source: e }),
    }
}

/// [`lock_data_dir`], waiting up to two seconds for a lock that is held. A server that just
/// stopped can hold it a moment longer than it lives: a program its process spawns meanwhile
/// (a process running several servers, as tests do) holds a copy of the lock's descriptor
/// between its fork and its exec.
///
/// # Errors
/// As [`lock_data_dir`], once the wait is over.
pub async fn lock_data_dir_soon(dir: &Path) -> Result<fs::File, StartError> {
    for _ in 0..40 {
        match lock_data_dir(dir) {
            Err(StartError::Locked(_)) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            other => return other,
        }
    }
    lock_data_dir(dir)
}

/// Makes `dir` (which exists) accessible to its owner only. A data directory that was created
/// by hand or by an older version with group or world access would let other local users read
/// the database (wrapped key material, audit trail) and, by default, the root key file next to
/// it; ferrokms says so and takes the access away.
fn private_directory(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "data directory {} had mode {mode:o} (group or others could enter it); setting it to 700",
                dir.display()
            );
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// The store setting that records the root key the store's secrets are wrapped by: its provider,
/// the provider's public parameters, and a check value only that root key opens. Every node of a
/// cluster reads it, so a node with another root refuses to start.
pub(crate) const ROOT_KEY_SETTING: &str = "root_key";
/// What the check value binds and holds.
pub(crate) const ROOT_CHECK_AAD: &[u8] = b"ferrokms root key check v1";
pub(crate) const ROOT_CHECK_TEXT: &[u8] = b"ferrokms";

/// A passphrase root key's salt and Argon2id costs.
type PassphraseRecord = (Vec<u8>, PassphraseParams);

/// A passphrase root's Argon2id salt (hex) and costs as recorded (absent for other roots), in
/// the root record and in a rotation's announcement alike.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PassphraseFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) memory_kib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) iterations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parallelism: Option<u32>,
}

impl PassphraseFields {
    /// The fields for `salt` and `params`.
    pub(crate) fn new(salt: &[u8], params: PassphraseParams) -> Self {
        Self {
            salt: Some(hex::encode(salt)),
            memory_kib: Some(params.memory_kib),
            iterations: Some(params.iterations),
            parallelism: Some(params.parallelism),
        }
    }

    /// The salt and costs (missing ones empty or zero, which derivation refuses).
    pub(crate) fn salt_and_params(&self) -> Result<(Vec<u8>, PassphraseParams), hex::FromHexError> {
        let params = PassphraseParams {
            memory_kib: self.memory_kib.unwrap_or_default(),
            iterations: self.iterations.unwrap_or_default(),
            parallelism: self.parallelism.unwrap_or_default(),
        };
        Ok((hex::decode(self.salt.as_deref().unwrap_or_default())?, params))
    }
}

/// The recorded root key.
#[derive(serde::Serialize, serde::Deserialize)]
struct RootRecord {
    provider: String,
    /// Passphrase: the Argon2id salt and costs.
    #[serde(flatten)]
    passphrase: PassphraseFields,
    /// PKCS#11: the token's and the key's labels (the module path may differ between nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_label: Option<String>,
    /// PKCS#11: labels of keys the root was rotated away from (a node still configured with one
    /// is moved to `key_label`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retired_key_labels: Vec<String>,
    /// The check value (hex).
    check: String,
}

/// Loads the root key the configuration names, creating it (from `rng`) only for a store that
/// was never initialized, and checks it is the one the store's secrets are wrapped by.
///
/// # Errors
/// [`StartError::MissingRootKey`] when the store holds data but the key file is missing;
/// [`StartError::RootKeyMismatch`] when the configured provider or key is not the recorded one.
pub async fn root_key(
    config: &ServerConfig,
    store: &dyn Store,
    rng: &dyn Rng,
) -> Result<Arc<dyn RootKeyProvider>, StartError> {
    let recorded: Option<RootRecord> = match store.setting(ROOT_KEY_SETTING).await? {
        Some(text) => {
            Some(serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("root key record: {e}")))?)
        }
        None => None,
    };
    let initialized = store.setting(ACCOUNT_SETTING).await?.is_some();
    let mismatch = |why: String| StartError::RootKeyMismatch { database: store.describe(), why };
    if let Some(rec) = &recorded
        && rec.provider != config.root_key_provider.name()
    {
        return Err(mismatch(format!(
            "it was initialized with a {} root key, and this start asks for a {} one",
            rec.provider,
            config.root_key_provider.name()
        )));
    }
    let (root, params): (Arc<dyn RootKeyProvider>, Option<PassphraseRecord>) = match &config.root_key_provider {
        RootKeySource::File => {
            let path = config.root_key_path();
            // A rotation killed between switching the record and turning the files.
            if let Some(rec) = &recorded {
                let check = hex::decode(&rec.check).map_err(|e| StoreError::Corrupt(format!("root key check: {e}")))?;
                crate::root_rotation::recover_files(&path, &check)?;
            }
            let root = if path.exists() {
                FileRootKey::load(&path)?
            } else if initialized {
                return Err(StartError::MissingRootKey { database: store.describe(), root_key: path });
            } else {
                FileRootKey::create(&path, rng)?
            };
            (Arc::new(root), None)
        }
        RootKeySource::Passphrase(passphrase) => {
            let (salt, params) = match &recorded {
                Some(rec) => {
                    rec.passphrase.salt_and_params().map_err(|e| StoreError::Corrupt(format!("root key salt: {e}")))?
                }
                None if initialized => {
                    return Err(mismatch(
                        "it was initialized with a file root key; a passphrase cannot open its secrets".to_owned(),
                    ));
                }
                None => (random_array::<16>(rng).to_vec(), PassphraseParams::RECOMMENDED),
            };
            let root = PassphraseRootKey::derive(passphrase.as_bytes(), &salt, params)?;
            (Arc::new(root), Some((salt, params)))
        }
        RootKeySource::Pkcs11 { location, pin } => {
            let mut location = location.clone();
            let missing = match &recorded {
                Some(rec) => {
                    let stored =
                        (rec.token_label.as_deref().unwrap_or_default(), rec.key_label.as_deref().unwrap_or_default());
                    // Configured with a key the root was rotated away from: the rotated-to key.
                    if stored.0 == location.token_label && rec.retired_key_labels.contains(&location.key_label) {
                        tracing::warn!(
                            "the root key was rotated from the HSM key '{}' to '{}'; using '{}' (update --pkcs11-key-label)",
                            location.key_label,
                            stored.1,
                            stored.1
                        );
                        stored.1.clone_into(&mut location.key_label);
                    }
                    if stored != (location.token_label.as_str(), location.key_label.as_str()) {
                        return Err(mismatch(format!(
                            "it was initialized with the PKCS#11 key '{}' on token '{}', and this start asks for the \
                             key '{}' on token '{}'",
                            stored.1, stored.0, location.key_label, location.token_label
                        )));
                    }
                    MissingKey::Refuse
                }
                None if initialized => {
                    return Err(mismatch(
                        "it was initialized with a file root key; an HSM key cannot open its secrets".to_owned(),
                    ));
                }
                // A new store: the key is generated in the token unless the operator made one.
                None => MissingKey::Create,
            };
            (Arc::new(Pkcs11RootKey::open(location, pin, missing)?), None)
        }
    };
    let labels = match &config.root_key_provider {
        RootKeySource::Pkcs11 { location, .. } => Some((location.token_label.clone(), location.key_label.clone())),
        RootKeySource::File | RootKeySource::Passphrase(_) => None,
    };
    match recorded {
        Some(rec) => {
            let check = hex::decode(&rec.check).map_err(|e| StoreError::Corrupt(format!("root key check: {e}")))?;
            if root.unwrap(ROOT_CHECK_AAD, &check).is_err() {
                return Err(mismatch(format!("the {} does not open its secrets", root.describe())));
            }
        }
        None => {
            let record = RootRecord {
                provider: config.root_key_provider.name().to_owned(),
                passphrase: params.map(|(salt, p)| PassphraseFields::new(&salt, p)).unwrap_or_default(),
                token_label: labels.as_ref().map(|(token, _)| token.clone()),
                key_label: labels.map(|(_, key)| key),
                retired_key_labels: Vec::new(),
                check: hex::encode(root.wrap(ROOT_CHECK_AAD, ROOT_CHECK_TEXT)?),
            };
            let text = serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if !store.init_setting(ROOT_KEY_SETTING, &text).await? {
                // Another node recorded its root first: this one must be the same.
                return Box::pin(root_key(config, store, rng)).await;
            }
        }
    }
    Ok(root)
}

/// Opens the configured store: PostgreSQL when a URL is given, else SQLite in the data
/// directory.
///
/// # Errors
/// [`StartError::Store`] when it cannot be opened or migrated.
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn Store>, StartError> {
    Ok(match &config.store_url {
        Some(url) => Arc::new(kms_store::PostgresStore::connect(url).await?),
        None => Arc::new(SqliteStore::open(&config.database_path())?),
    })
}

/// Prepares everything the server needs from its data directory.
///
/// # Errors
/// [`StartError`] describing what is wrong, for the operator.
pub async fn prepare(config: &ServerConfig, rng: &dyn Rng) -> Result<Prepared, StartError> {
    let lock = lock_data_dir_soon(&config.data_dir).await?;
    let store = open_store(config).await?;
    let root = root_key(config, store.as_ref(), rng).await?;
    let rotating = Arc::new(kms_crypto::RotatingRoot::new(root));
    // A rotation under way: wrap with its next root from the start.
    let opener = crate::root_rotation::Opener::new(config);
    if let Some(next) = crate::root_rotation::announced(store.as_ref(), rotating.as_ref(), &opener)
        .await
        .map_err(|e| StoreError::Corrupt(format!("root key rotation: {e}")))?
    {
        rotating.begin(next);
    }
    let root: Arc<dyn RootKeyProvider> = Arc::clone(&rotating) as Arc<dyn RootKeyProvider>;
    let account = account(store.as_ref(), rng, config.account_id.as_ref()).await?;
    store.init_setting("usage_tracking_start", &config.clock.now().unix_millis().to_string()).await?;
    let new_admin =
        admin_credentials(config, store.as_ref(), root.as_ref(), config.clock.as_ref(), &account, rng).await?;
    Ok(Prepared { lock, root, rotating, store, account, new_admin })
}

/// A fresh random 12-digit account id (not starting with 0).
pub(crate) fn new_account_id(rng: &dyn Rng) -> AccountId {
    let digits: [u8; 12] = random_array(rng);
    let mut id: String = digits.iter().map(|b| char::from(b'0' + b % 10)).collect();
    if id.starts_with('0') {
        id.replace_range(..1, "1");
    }
    AccountId::parse(&id).unwrap_or_else(|_| unreachable_account())
}

// INVARIANT: twelve ASCII digits always parse as an account id.
#[allow(clippy::panic)]
pub(crate) fn unreachable_account() -> AccountId {
    panic!("twelve digits are an account id")
}

/// The server's own account: the one recorded at the first start (`pinned`, if given, else a
/// random id), checked against `pinned` on every later start.
async fn account(store: &dyn Store, rng: &dyn Rng, pinned: Option<&AccountId>) -> Result<AccountId, StartError> {
    if store.setting(ACCOUNT_SETTING).await?.is_none() {
        let chosen = pinned.cloned().unwrap_or_else(|| new_account_id(rng));
        store.init_setting(ACCOUNT_SETTING, chosen.as_str()).await?;
    }
    let stored = store.setting(ACCOUNT_SETTING).await?.unwrap_or_default();
    let account =
        AccountId::parse(&stored).map_err(|_| StoreError::Corrupt(format!("account id setting '{stored}'")))?;
    match pinned {
        Some(asked) if *asked != account => Err(StartError::AccountMismatch {
            store: store.describe(),
            stored: account.to_string(),
            asked: asked.to_string(),
        }),
        _ => Ok(account),
    }
}

fn new_access_key_id(rng: &dyn Rng) -> String {
    crate::principals::new_principal_id("AKIA", rng)
}

async fn admin_credentials(
    config: &ServerConfig,
    store: &dyn Store,
    root: &dyn RootKeyProvider,
    clock: &dyn Clock,
    account: &AccountId,
    rng: &dyn Rng,
) -> Result<Option<AdminCredentials>, StartError> {
    if store.setting(ADMIN_KEY_SETTING).await?.is_some() {
        return Ok(None);
    }
    let access_key_id = new_access_key_id(rng);
    let raw: [u8; 30] = random_array(rng);
    let secret = SecretBytes::new(base64::engine::general_purpose::STANDARD.encode(raw).into_bytes());
    let record = AccessKeyRecord {
        access_key_id: access_key_id.clone(),
        account: account.clone(),
        principal_arn: format!("arn:aws:iam::{account}:user/admin"),
        wrapped_secret: root.wrap(&secret_aad(&access_key_id), secret.expose_secret())?,
        created: clock.now(),
        session: None,
        active: true,
        last_used: None,
    };
    create_admin_principal(store, account, clock, rng).await?;
    store.create_access_key(&record, &[]).await?;
    let file = config.credentials_path();
    write_credentials_file(&file, &access_key_id, &secret, account).map_err(data_dir_error(&config.data_dir))?;
    store.init_setting(ADMIN_KEY_SETTING, &access_key_id).await?;
    Ok(Some(AdminCredentials { access_key_id, secret_access_key: secret, file }))
}

/// The admin user and its identity policy: everything, like AWS's AdministratorAccess.
///
/// Its changes carry no audit events: on first start there is no request to record, and
/// CreateAccount records its request with the account's last change (the access key).
pub(crate) async fn create_admin_principal(
    store: &dyn Store,
    account: &AccountId,
    clock: &dyn Clock,
    rng: &dyn Rng,
) -> Result<(), StartError> {
    let arn = format!("arn:aws:iam::{account}:user/admin");
    if store.principal(&arn).await?.is_none() {
        let record = PrincipalRecord {
            arn: arn.clone(),
            account: account.clone(),
            kind: PrincipalType::User,
            name: "admin".into(),
            principal_id: crate::principals::new_principal_id("AIDA", rng),
            trust_policy: None,
            created: clock.now(),
            attributes: Default::default(),
        };
        store.create_principal(&record, &[]).await?;
    }
    let policy = IdentityPolicyRecord {
        principal_arn: arn,
        name: "AdministratorAccess".into(),
        document: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into(),
    };
    store.put_identity_policy(&policy, &[]).await?;
    Ok(())
}

/// Writes the admin credentials in the AWS shared-credentials format (profile `ferrokms`),
/// mode 0600, replacing a stale file from an interrupted first start.
fn write_credentials_file(path: &Path, id: &str, secret: &SecretBytes, account: &AccountId) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // A pre-existing file keeps its mode through `open`; make sure it is ours alone.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let text = zeroize::Zeroizing::new(format!(
        "# ferrokms admin credentials for account {account}. Keep this file secret.\n\
         # Use with: AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=ferrokms\n\
         [ferrokms]\naws_access_key_id = {id}\naws_secret_access_key = {}\n",
        path.display(),
        String::from_utf8_lossy(secret.expose_secret())
    ));
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
