//! The root key: the one key that wraps every other secret at rest.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::secret::{KeyMaterial, SecretBytes};

/// Wraps and unwraps secrets under a root key held somewhere safe (a file, a passphrase-derived
/// key, an HSM). Implementations never hand out the root key itself.
pub trait RootKeyProvider: Send + Sync {
    /// A short, non-secret description for logs (`file:/path`, `pkcs11:token=…;object=…`).
    fn describe(&self) -> String;

    /// Encrypts `secret`, binding `aad` (which callers make unique to the secret's owner, such as
    /// the key ARN and material id, so a wrapped value cannot be moved to another owner).
    ///
    /// # Errors
    /// [`RootKeyError`] if the provider cannot wrap.
    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError>;

    /// Decrypts what [`RootKeyProvider::wrap`] produced with the same `aad`.
    ///
    /// # Errors
    /// [`RootKeyError::Unwrap`] when the bytes were not wrapped by this root key for this `aad`.
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError>;
}

/// Root-key failures.
#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    /// Reading or creating the key file failed.
    #[error("root key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file's contents are not a root key.
    #[error("root key file {0} is not a ferrokms root key")]
    Format(PathBuf),
    /// A wrapped value did not authenticate under this root key: wrong root key or corruption.
    #[error("a wrapped secret did not authenticate under the root key (wrong root key, or corrupted data)")]
    Unwrap,
    /// The cipher refused to wrap.
    #[error("the root key cipher refused to wrap")]
    Wrap,
    /// A passphrase root key cannot be derived.
    #[error("passphrase root key: {0}")]
    Passphrase(String),
    /// The HSM root key cannot be used (module, token, PIN, key, or the device itself).
    #[error("PKCS#11 root key: {0}")]
    Pkcs11(#[from] crate::pkcs11::Pkcs11Error),
}

const FILE_HEADER: &str = "ferrokms-root-key-v1";
const WRAP_VERSION: u8 = 0x01;
const NONCE_LEN: usize = 12;

/// A root key kept in a file of its own (mode 0600), created by `ferrokms init` or on first
/// start. Wrapped values are `0x01 ‖ nonce(12) ‖ AES-256-GCM(secret) ‖ tag(16)`.
pub struct FileRootKey {
    path: PathBuf,
    cipher: AesRoot,
}

/// The cipher every root key provider that holds its key in memory wraps with:
/// `0x01 ‖ nonce(12) ‖ AES-256-GCM(secret) ‖ tag(16)`.
struct AesRoot(LessSafeKey);

impl AesRoot {
    fn new(material: &KeyMaterial) -> Option<Self> {
        UnboundKey::new(&AES_256_GCM, material.expose_secret()).ok().map(|k| Self(LessSafeKey::new(k)))
    }

    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        let nonce: [u8; NONCE_LEN] = crate::random_array(&crate::SystemRng);
        let mut out = Vec::with_capacity(1 + NONCE_LEN + secret.len() + 16);
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        let mut body = secret.to_vec();
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| RootKeyError::Wrap)?;
        out.extend_from_slice(&body);
        out.extend_from_slice(tag.as_ref());
        zeroize::Zeroize::zeroize(&mut body);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError> {
        let (&version, rest) = wrapped.split_first().ok_or(RootKeyError::Unwrap)?;
        if version != WRAP_VERSION || rest.len() < NONCE_LEN + 16 {
            return Err(RootKeyError::Unwrap);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| RootKeyError::Unwrap)?;
        let mut plain = zeroize::Zeroizing::new(sealed.to_vec());
        let len = self.0.open_in_place(nonce, Aad::from(aad), &mut plain).map_err(|_| RootKeyError::Unwrap)?.len();
        Ok(SecretBytes::new(plain.get(..len).unwrap_or_default().to_vec()))
    }
}

impl FileRootKey {
    /// Loads the root key at `path`.
    ///
    /// # Errors
    /// [`RootKeyError::Io`] if it cannot be read, [`RootKeyError::Format`] if it is not a key.
    pub fn load(path: &Path) -> Result<Self, RootKeyError> {
        let io = |source| RootKeyError::Io { path: path.to_owned(), source };
        let text = zeroize::Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        let mut lines = text.lines();
        if lines.next() != Some(FILE_HEADER) {
            return Err(RootKeyError::Format(path.to_owned()));
        }
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(lines.next().unwrap_or_default().trim(), bytes.as_mut())
            .map_err(|_| RootKeyError::Format(path.to_owned()))?;
        Self::from_material(path.to_owned(), &KeyMaterial::new(*bytes))
    }

    /// Creates a new root key file at `path` with mode 0600; refuses to overwrite one.
    ///
    /// # Errors
    /// [`RootKeyError::Io`], including when the file already exists.
    pub fn create(path: &Path, rng: &dyn kms_core::Rng) -> Result<Self, RootKeyError> {
        Self::create_with(path, &KeyMaterial::generate(rng))
    }

    /// Creates a root key file at `path` (mode 0600) holding `material`, such as the next root
    /// of a rotation that another node announced; refuses to overwrite one.
    ///
    /// # Errors
    /// [`RootKeyError::Io`], including when the file already exists.
    pub fn create_with(path: &Path, material: &KeyMaterial) -> Result<Self, RootKeyError> {
        let io = |source| RootKeyError::Io { path: path.to_owned(), source };
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io)?;
        let text = zeroize::Zeroizing::new(format!("{FILE_HEADER}\n{}\n", hex::encode(material.expose_secret())));
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        if let Some(dir) = path.parent() {
            // Make the new directory entry durable too.
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Self::from_material(path.to_owned(), material)
    }

    fn from_material(path: PathBuf, material: &KeyMaterial) -> Result<Self, RootKeyError> {
        let cipher = AesRoot::new(material).ok_or_else(|| RootKeyError::Format(path.clone()))?;
        Ok(Self { path, cipher })
    }
}

impl RootKeyProvider for FileRootKey {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        self.cipher.wrap(aad, secret)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError> {
        self.cipher.unwrap(aad, wrapped)
    }
}

/// The root key in force, and during a root-key rotation the one it replaces: wraps with the
/// new one, unwraps with whichever opens the value (new first). Until every stored secret is
/// wrapped again, both roots work; [`RotatingRoot::finish`] then drops the old one.
pub struct RotatingRoot {
    current: std::sync::RwLock<std::sync::Arc<dyn RootKeyProvider>>,
    previous: std::sync::RwLock<Option<std::sync::Arc<dyn RootKeyProvider>>>,
}

impl RotatingRoot {
    /// `root` alone.
    pub fn new(root: std::sync::Arc<dyn RootKeyProvider>) -> Self {
        Self { current: std::sync::RwLock::new(root), previous: std::sync::RwLock::new(None) }
    }

    fn current(&self) -> std::sync::Arc<dyn RootKeyProvider> {
        std::sync::Arc::clone(&self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn previous(&self) -> Option<std::sync::Arc<dyn RootKeyProvider>> {
        self.previous.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Starts wrapping with `next`, the current root kept for unwrapping.
    pub fn begin(&self, next: std::sync::Arc<dyn RootKeyProvider>) {
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let old = std::mem::replace(&mut *current, next);
        *self.previous.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(old);
    }

    /// Ends a rotation: only the current root remains.
    pub fn finish(&self) {
        *self.previous.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Whether a rotation is under way (two roots).
    pub fn rotating(&self) -> bool {
        self.previous().is_some()
    }
}

impl RootKeyProvider for RotatingRoot {
    fn describe(&self) -> String {
        match self.previous() {
            Some(previous) => format!("{} (rotating from {})", self.current().describe(), previous.describe()),
            None => self.current().describe(),
        }
    }

    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        self.current().wrap(aad, secret)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError> {
        match (self.current().unwrap(aad, wrapped), self.previous()) {
            (Err(RootKeyError::Unwrap), Some(previous)) => previous.unwrap(aad, wrapped),
            (result, _) => result,
        }
    }
}

/// Argon2id cost parameters of a passphrase root key, recorded with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseParams {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl PassphraseParams {
    /// OWASP's recommended minimum for Argon2id (19 MiB, 2 passes, 1 lane).
    pub const RECOMMENDED: Self = Self { memory_kib: 19_456, iterations: 2, parallelism: 1 };

    /// Whether these are at least [`PassphraseParams::RECOMMENDED`] (memory and passes).
    pub fn strong_enough(&self) -> bool {
        self.memory_kib >= Self::RECOMMENDED.memory_kib
            && self.iterations >= Self::RECOMMENDED.iterations
            && self.parallelism >= 1
    }
}

/// A root key derived from a passphrase with Argon2id, never stored: the salt and cost
/// parameters are recorded (they are not secret), the passphrase is given at every start.
pub struct PassphraseRootKey {
    cipher: AesRoot,
}

impl PassphraseRootKey {
    /// Derives the root key from `passphrase` with `salt` and `params`.
    ///
    /// # Errors
    /// [`RootKeyError::Passphrase`] for an empty passphrase, parameters weaker than OWASP's
    /// recommendation, or a derivation failure.
    pub fn derive(passphrase: &[u8], salt: &[u8], params: PassphraseParams) -> Result<Self, RootKeyError> {
        Self::from_material(&Self::derive_material(passphrase, salt, params)?)
    }

    /// The root key a passphrase root holds, from its AES key: how a running node takes the next
    /// root of a rotation to a new passphrase (announced wrapped by the current root).
    ///
    /// # Errors
    /// [`RootKeyError::Wrap`] if the cipher refuses the key.
    pub fn from_material(material: &KeyMaterial) -> Result<Self, RootKeyError> {
        Ok(Self { cipher: AesRoot::new(material).ok_or(RootKeyError::Wrap)? })
    }

    /// The AES key `passphrase`, `salt` and `params` derive (what [`PassphraseRootKey::derive`]
    /// wraps with).
    ///
    /// # Errors
    /// As [`PassphraseRootKey::derive`].
    pub fn derive_material(
        passphrase: &[u8],
        salt: &[u8],
        params: PassphraseParams,
    ) -> Result<KeyMaterial, RootKeyError> {
        if passphrase.is_empty() {
            return Err(RootKeyError::Passphrase("the passphrase is empty".into()));
        }
        if !params.strong_enough() {
            return Err(RootKeyError::Passphrase(format!("Argon2id parameters weaker than recommended: {params:?}")));
        }
        let argon_params = argon2::Params::new(params.memory_kib, params.iterations, params.parallelism, Some(32))
            .map_err(|e| RootKeyError::Passphrase(e.to_string()))?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, argon_params);
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, salt, key.as_mut())
            .map_err(|e| RootKeyError::Passphrase(e.to_string()))?;
        Ok(KeyMaterial::new(*key))
    }
}

impl RootKeyProvider for PassphraseRootKey {
    fn describe(&self) -> String {
        "passphrase (Argon2id)".to_owned()
    }

    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        self.cipher.wrap(aad, secret)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError> {
        self.cipher.unwrap(aad, wrapped)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::SystemRng;

    #[test]
    fn create_load_wrap_unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let created = FileRootKey::create(&path, &SystemRng).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(FileRootKey::create(&path, &SystemRng).is_err(), "must not overwrite");
        let wrapped = created.wrap(b"owner-1", b"secret").unwrap();
        let loaded = FileRootKey::load(&path).unwrap();
        assert_eq!(loaded.unwrap(b"owner-1", &wrapped).unwrap().expose_secret(), b"secret");
        assert!(loaded.unwrap(b"owner-2", &wrapped).is_err(), "aad binds the owner");
        let other = FileRootKey::create(&dir.path().join("other.key"), &SystemRng).unwrap();
        assert!(other.unwrap(b"owner-1", &wrapped).is_err());
        assert!(loaded.unwrap(b"owner-1", &[]).is_err());
    }

    /// During a rotation both roots open what they wrapped, new values are the new root's;
    /// once finished only the new root's open.
    #[test]
    fn a_rotating_root_wraps_with_the_new_and_opens_with_both() {
        let dir = tempfile::tempdir().unwrap();
        let old: std::sync::Arc<dyn RootKeyProvider> =
            std::sync::Arc::new(FileRootKey::create(&dir.path().join("old"), &SystemRng).unwrap());
        let new: std::sync::Arc<dyn RootKeyProvider> =
            std::sync::Arc::new(FileRootKey::create(&dir.path().join("new"), &SystemRng).unwrap());
        let root = RotatingRoot::new(std::sync::Arc::clone(&old));
        let before = root.wrap(b"a", b"one").unwrap();
        root.begin(std::sync::Arc::clone(&new));
        assert!(root.rotating());
        let during = root.wrap(b"a", b"two").unwrap();
        assert!(new.unwrap(b"a", &during).is_ok() && old.unwrap(b"a", &during).is_err(), "wrapped by the new root");
        assert_eq!(root.unwrap(b"a", &before).unwrap().expose_secret(), b"one");
        assert_eq!(root.unwrap(b"a", &during).unwrap().expose_secret(), b"two");
        root.finish();
        assert!(root.unwrap(b"a", &before).is_err(), "the old root is gone");
        assert!(root.unwrap(b"a", &during).is_ok());
    }

    #[test]
    fn passphrase_keys_follow_the_passphrase_salt_and_parameters() {
        let params = PassphraseParams::RECOMMENDED;
        let key = PassphraseRootKey::derive(b"correct horse", b"salt-0123456789a", params).unwrap();
        let wrapped = key.wrap(b"owner", b"secret").unwrap();
        let again = PassphraseRootKey::derive(b"correct horse", b"salt-0123456789a", params).unwrap();
        assert_eq!(again.unwrap(b"owner", &wrapped).unwrap().expose_secret(), b"secret");
        let wrong = PassphraseRootKey::derive(b"wrong horse", b"salt-0123456789a", params).unwrap();
        assert!(wrong.unwrap(b"owner", &wrapped).is_err());
        let salted = PassphraseRootKey::derive(b"correct horse", b"salt-0123456789b", params).unwrap();
        assert!(salted.unwrap(b"owner", &wrapped).is_err());
        let weak = PassphraseParams { memory_kib: 1024, ..params };
        assert!(matches!(PassphraseRootKey::derive(b"x", b"salt-0123456789a", weak), Err(RootKeyError::Passphrase(_))));
        assert!(matches!(
            PassphraseRootKey::derive(b"", b"salt-0123456789a", params),
            Err(RootKeyError::Passphrase(_))
        ));
    }
}
